"""Byte layouts of the DSA caches: the one description the Triton kernels and their float32 twins share.

MLA KV cache, FlashMLA's "V32" FP8 layout. A cached MLA token is
``[c_kv (d_nope) | k_pe (d_rope)]`` (DeepSeek-V3.2: 512 + 64 = 576 values),
stored in ``fp8_row_bytes(d_nope, d_rope)`` bytes (656 for 512 + 64)::

    bytes [0, d_nope)                    c_kv as float8_e4m3fn, tiles of 128 values
    bytes [d_nope, d_nope + 4*n_tiles)   n_tiles = d_nope / 128 float32 scales, one per tile
    bytes [.., + 2*d_rope)               k_pe as bfloat16 (not quantised)
    dequant: c_kv[i] = fp8[i] * scale[i // 128]

``d_nope`` must be a multiple of 128 (the tile). An unquantised cache stores
the ``d_nope + d_rope`` values in the cache dtype (bf16, or float32 on CPU).
Paged caches are ``[num_pages, page_size, W]`` (FlashMLA's and sglang's
``[num_pages, page_size, 1, W]`` is accepted too); slot = page * page_size + offset.

Indexer K cache (sglang / DeepGEMM layout), one per layer, same slot ids as the
MLA cache, in one of two formats:

* FP8 pages, uint8 ``[num_pages, 64 * (D + 4)]``::

      bytes [0, 64*D)            64 FP8 e4m3 keys, token-major (D bytes per token)
      bytes [64*D, 64*D + 256)   64 fp32 scales, one per token (dequant multiplier)

  slot ``loc`` lives in page ``loc // 64`` at offset ``loc % 64``; keys and
  scales are not interleaved per token;
* exact rows, float32 ``[num_pages * 64, D]``, row = slot (the model runs in
  float32: the indexer scores without quantisation).
"""

import torch

INDEX_K_PAGE_SIZE = 64
FP8_TILE = 128


def index_k_is_exact(cache: torch.Tensor) -> bool:
    """Whether an indexer cache is in the exact float32 rows format (else FP8 pages)."""
    return cache.dtype == torch.float32


def index_k_head_dim(cache: torch.Tensor) -> int:
    """Key width D of an FP8-pages indexer cache ``[num_pages, 64 * (D + 4)]`` uint8."""
    if cache.dtype != torch.uint8 or cache.dim() != 2 or cache.shape[1] % INDEX_K_PAGE_SIZE:
        raise ValueError(f"indexer K cache must be uint8 [pages, 64*(D+4)], got {cache.dtype} {tuple(cache.shape)}")
    head_dim = cache.shape[1] // INDEX_K_PAGE_SIZE - 4
    if head_dim <= 0:
        raise ValueError(f"indexer K cache row of {cache.shape[1]} bytes holds no key")
    return head_dim


def index_k_slots(cache: torch.Tensor) -> int:
    """Slots an indexer cache holds (either format)."""
    return cache.shape[0] if index_k_is_exact(cache) else cache.shape[0] * INDEX_K_PAGE_SIZE


def fp8_row_bytes(d_nope: int, d_rope: int) -> int:
    """Bytes per token of the FP8 MLA layout; raises ValueError unless d_nope % 128 == 0."""
    if d_nope <= 0 or d_nope % FP8_TILE or d_rope < 0:
        raise ValueError(
            f"FP8 KV layout needs d_nope a positive multiple of {FP8_TILE} and d_rope >= 0, "
            f"got d_nope={d_nope}, d_rope={d_rope}"
        )
    return d_nope + 4 * (d_nope // FP8_TILE) + 2 * d_rope


def fp8_dims(row_bytes: int, d_qk: int) -> tuple[int, int]:
    """(d_nope, d_rope) of the FP8 layout whose rows are ``row_bytes`` wide for ``d_qk`` values.

    ``row_bytes = 2*d_qk - 31/32 * d_nope`` has exactly one solution; ValueError if
    it is not a valid layout (e.g. 656 bytes with d_qk 576 -> (512, 64)).
    """
    d_nope, rem = divmod((2 * d_qk - row_bytes) * 32, 31)
    if rem or not 0 < d_nope <= d_qk or d_nope % FP8_TILE:
        raise ValueError(f"{row_bytes}-byte rows are not an FP8 KV layout for {d_qk}-value tokens")
    d_rope = d_qk - d_nope
    assert fp8_row_bytes(d_nope, d_rope) == row_bytes
    return d_nope, d_rope


def as_pages(cache: torch.Tensor) -> torch.Tensor:
    """View a paged cache as ``[num_pages, page_size, W]`` (drops a FlashMLA-style h_k=1 axis)."""
    if cache.dim() == 4 and cache.shape[2] == 1:
        return cache[:, :, 0]
    if cache.dim() != 3:
        raise ValueError(f"paged cache must be [num_pages, page_size, W], got {tuple(cache.shape)}")
    return cache
