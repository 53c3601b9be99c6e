"""Float32 reference of the indexer K cache writer and reader, both formats of ``kernels.layout``.

FP8 pages (uint8 ``[num_pages, 64 * (D + 4)]``: 64 keys then 64 fp32 scales per
page) or exact rows (float32 ``[num_pages * 64, D]``, row = slot). Slot ids
are those of the MLA cache.
"""

import torch

from ..layout import INDEX_K_PAGE_SIZE, index_k_head_dim, index_k_is_exact, index_k_slots
from ..fp8 import quantize_fp8_blockwise
from ..hadamard import hadamard_rotate


def store_index_k(cache: torch.Tensor, slots: torch.Tensor, k: torch.Tensor, k_scale: torch.Tensor | None = None) -> None:
    """Write keys into the cache in place.

    slots: int ``[N]`` slot ids; slots < 0 or beyond the cache are skipped.
    k_scale None: k ``[N, D]`` float keys before the indexer's Hadamard rotation, which
    the store applies (``hadamard_rotate``), then encodes: FP8 pages quantise per token
    with a power-of-two scale (``quantize_fp8_blockwise`` with block = D), exact rows
    store float32. k_scale ``[N]`` given: k is cache contents (what ``gather_index_k``
    returns), stored as it is: float8_e4m3fn keys for FP8 pages, or float rows times
    ``k_scale`` for exact rows.
    """
    exact = index_k_is_exact(cache)
    head_dim = cache.shape[1] if exact else index_k_head_dim(cache)
    if k.dim() != 2 or k.shape[1] != head_dim or slots.shape != (k.shape[0],):
        raise ValueError(f"k {tuple(k.shape)} / slots {tuple(slots.shape)} do not match a cache of D={head_dim}")
    slots = slots.long()
    keep = (slots >= 0) & (slots < index_k_slots(cache))
    if exact:
        rows = hadamard_rotate(k.float()) if k_scale is None else k.float() * k_scale.float()[:, None]
        cache[slots[keep]] = rows[keep]
        return
    if k_scale is None:
        k, k_scale = quantize_fp8_blockwise(hadamard_rotate(k.float()), block=head_dim)
        k_scale = k_scale[:, 0]
    if k.dtype != torch.float8_e4m3fn:
        raise ValueError(f"k must be float8_e4m3fn when k_scale is given, got {k.dtype}")
    num_pages = cache.shape[0]
    slots, k, k_scale = slots[keep], k[keep], k_scale.reshape(-1)[keep].float()
    page, offset = slots // INDEX_K_PAGE_SIZE, slots % INDEX_K_PAGE_SIZE
    key_bytes = INDEX_K_PAGE_SIZE * head_dim
    keys = cache[:, :key_bytes].view(num_pages, INDEX_K_PAGE_SIZE, head_dim)
    keys[page, offset] = k.view(torch.uint8)
    scale_bytes = k_scale.contiguous().view(torch.uint8).view(-1, 4)
    scale_cols = key_bytes + 4 * offset[:, None] + torch.arange(4, device=cache.device)
    cache[page[:, None], scale_cols] = scale_bytes


def gather_index_k(cache: torch.Tensor, slots: torch.Tensor):
    """Read keys back: ``(k [N, D], k_scale [N] fp32)``; float8_e4m3fn keys from FP8 pages,
    float32 keys with scale 1 from exact rows.

    Slots < 0 or beyond the cache give zero keys and scale 0 (nothing is read there).
    Static shapes, no host synchronisation.
    """
    slots = slots.long().reshape(-1)
    valid = (slots >= 0) & (slots < index_k_slots(cache))
    safe = torch.where(valid, slots, 0)
    if index_k_is_exact(cache):
        return torch.where(valid[:, None], cache[safe], 0.0), valid.float()
    head_dim = index_k_head_dim(cache)
    num_pages = cache.shape[0]
    page, offset = safe // INDEX_K_PAGE_SIZE, safe % INDEX_K_PAGE_SIZE
    key_bytes = INDEX_K_PAGE_SIZE * head_dim
    keys = cache[:, :key_bytes].view(num_pages, INDEX_K_PAGE_SIZE, head_dim)[page, offset]
    scale_cols = key_bytes + 4 * offset[:, None] + torch.arange(4, device=cache.device)
    scales = cache[page[:, None], scale_cols].contiguous().view(torch.float32).reshape(-1)
    keys = torch.where(valid[:, None], keys, 0)
    scales = torch.where(valid, scales, 0.0)
    return keys.view(torch.float8_e4m3fn), scales
