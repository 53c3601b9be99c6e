"""Float32 reference of the paged indexer K cache (sglang / DeepGEMM layout).

Layout, one uint8 tensor per layer, ``[num_pages, page_size * (D + 4)]``,
page_size = 64::

    bytes [0, 64*D)            FP8 e4m3 keys, token-major (D bytes per token)
    bytes [64*D, 64*D + 256)   64 fp32 scales, one per token (dequant multiplier)

Slot ``loc`` (the same slot id as the MLA KV cache) lives in page ``loc // 64``
at offset ``loc % 64``. Keys and scales are NOT interleaved per token.
"""

import torch

INDEX_K_PAGE_SIZE = 64


def index_k_head_dim(cache: torch.Tensor) -> int:
    """Key width D of a cache ``[num_pages, 64 * (D + 4)]`` uint8."""
    if cache.dtype != torch.uint8 or cache.dim() != 2 or cache.shape[1] % INDEX_K_PAGE_SIZE:
        raise ValueError(f"indexer K cache must be uint8 [pages, 64*(D+4)], got {cache.dtype} {tuple(cache.shape)}")
    head_dim = cache.shape[1] // INDEX_K_PAGE_SIZE - 4
    if head_dim <= 0:
        raise ValueError(f"indexer K cache row of {cache.shape[1]} bytes holds no key")
    return head_dim


def store_index_k(cache: torch.Tensor, slots: torch.Tensor, k: torch.Tensor, k_scale: torch.Tensor | None = None) -> None:
    """Write keys into the cache in place.

    cache: uint8 ``[num_pages, 64*(D+4)]``. slots: int ``[N]`` slot ids; slots < 0
    or beyond the cache are skipped. k: ``[N, D]`` float8_e4m3fn with ``k_scale``
    ``[N]`` fp32, or a float tensor (k_scale None) that is quantised per token
    with a power-of-two scale (``quantize_fp8_blockwise`` with block = D).
    """
    head_dim = index_k_head_dim(cache)
    if k.dim() != 2 or k.shape[1] != head_dim or slots.shape != (k.shape[0],):
        raise ValueError(f"k {tuple(k.shape)} / slots {tuple(slots.shape)} do not match a cache of D={head_dim}")
    if k_scale is None:
        from .indexer import quantize_fp8_blockwise  # here: indexer imports this module

        k, k_scale = quantize_fp8_blockwise(k.float(), block=head_dim)
        k_scale = k_scale[:, 0]
    if k.dtype != torch.float8_e4m3fn:
        raise ValueError(f"k must be float8_e4m3fn when k_scale is given, got {k.dtype}")
    num_pages = cache.shape[0]
    slots = slots.long()
    keep = (slots >= 0) & (slots < num_pages * INDEX_K_PAGE_SIZE)
    slots, k, k_scale = slots[keep], k[keep], k_scale.reshape(-1)[keep].float()
    page, offset = slots // INDEX_K_PAGE_SIZE, slots % INDEX_K_PAGE_SIZE
    key_bytes = INDEX_K_PAGE_SIZE * head_dim
    keys = cache[:, :key_bytes].view(num_pages, INDEX_K_PAGE_SIZE, head_dim)
    keys[page, offset] = k.view(torch.uint8)
    scale_bytes = k_scale.contiguous().view(torch.uint8).view(-1, 4)
    scale_cols = key_bytes + 4 * offset[:, None] + torch.arange(4, device=cache.device)
    cache[page[:, None], scale_cols] = scale_bytes


def gather_index_k(cache: torch.Tensor, slots: torch.Tensor):
    """Read keys back: ``(k_fp8 [N, D] float8_e4m3fn, k_scale [N] fp32)``.

    Slots < 0 or beyond the cache give zero keys and scale 0 (nothing is read there).
    """
    head_dim = index_k_head_dim(cache)
    num_pages = cache.shape[0]
    slots = slots.long().reshape(-1)
    valid = (slots >= 0) & (slots < num_pages * INDEX_K_PAGE_SIZE)
    safe = torch.where(valid, slots, 0)
    page, offset = safe // INDEX_K_PAGE_SIZE, safe % INDEX_K_PAGE_SIZE
    key_bytes = INDEX_K_PAGE_SIZE * head_dim
    keys = cache[:, :key_bytes].view(num_pages, INDEX_K_PAGE_SIZE, head_dim)[page, offset]
    scale_cols = key_bytes + 4 * offset[:, None] + torch.arange(4, device=cache.device)
    scales = cache[page[:, None], scale_cols].contiguous().view(torch.float32).reshape(-1)
    keys = torch.where(valid[:, None], keys, 0)
    scales = torch.where(valid, scales, 0.0)
    return keys.view(torch.float8_e4m3fn), scales
