"""MLA KV cache in FlashMLA's "V32" FP8 layout, and paged-cache stores (float32 reference).

A cached MLA token is ``kv = [c_kv (d_nope) | k_pe (d_rope)]`` (DeepSeek-V3.2:
512 + 64 = 576 values). The FP8 cache stores each token as ``d_nope + 4 *
d_nope / 128 + 2 * d_rope`` bytes (656 for 512 + 64)::

    bytes [0, d_nope)                    c_kv as float8_e4m3fn, tiles of 128 values
    bytes [d_nope, d_nope + 4*n_tiles)   n_tiles = d_nope / 128 float32 scales, one per tile
    bytes [.., + 2*d_rope)               k_pe as bfloat16 (not quantised)
    dequant: c_kv[i] = fp8[i] * scale[i // 128]

Scales are powers of two, ``2^ceil(log2(max(amax / 448, 1e-4)))`` over each
tile's absolute maximum (FlashMLA's ``tests/quant.py`` rule): dequantisation is
exact in bf16, an all-zero tile gets a finite scale and zero bytes (no NaN).
``d_nope`` must be a multiple of 128 (the tile); other sizes raise ValueError.

Paged caches are ``[num_pages, page_size, W]`` (``[num_pages, page_size, 1, W]``
as FlashMLA and sglang shape it is accepted too) with ``W = d_nope + d_rope``
for bf16/float caches or the packed byte width for a uint8 FP8 cache. A
global slot is ``page * page_size + offset``.
"""

import torch

FP8_TILE = 128
FP8_MAX = 448.0
SCALE_INV_MIN = 1e-4


def fp8_row_bytes(d_nope: int, d_rope: int) -> int:
    """Bytes per token of the FP8 layout; raises ValueError unless d_nope % 128 == 0."""
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


def pow2_scale(amax: torch.Tensor) -> torch.Tensor:
    """Power-of-two dequant scale ``2^ceil(log2(max(amax/448, 1e-4)))``, float32, bit-exact.

    ``frexp`` gives s = m * 2^e with m in [0.5, 1): ceil(log2 s) is e - 1 when
    m == 0.5 (s is a power of two) and e otherwise, with no log2 rounding.
    """
    s = torch.clamp_min(amax.float() / FP8_MAX, SCALE_INV_MIN)
    mantissa, exponent = torch.frexp(s)
    exponent = exponent - (mantissa == 0.5).to(exponent.dtype)
    return torch.ldexp(torch.ones_like(s), exponent)


def quantize_kv_fp8(kv: torch.Tensor, d_nope: int = 512) -> torch.Tensor:
    """Pack ``kv [..., d_nope + d_rope]`` (any float dtype) into uint8 ``[..., row_bytes]``.

    Byte layout in the module docstring; 576 values -> 656 bytes by default.
    """
    d_rope = kv.shape[-1] - d_nope
    row_bytes = fp8_row_bytes(d_nope, d_rope)
    lead = kv.shape[:-1]
    x = kv.reshape(-1, kv.shape[-1])
    n_tiles = d_nope // FP8_TILE
    tiles = x[:, :d_nope].float().reshape(-1, n_tiles, FP8_TILE)
    scale = pow2_scale(tiles.abs().amax(dim=-1))  # [N, n_tiles]
    fp8 = (tiles / scale[..., None]).clamp(-FP8_MAX, FP8_MAX).to(torch.float8_e4m3fn)
    packed = torch.empty(x.shape[0], row_bytes, dtype=torch.uint8, device=kv.device)
    packed[:, :d_nope] = fp8.reshape(-1, d_nope).view(torch.uint8)
    packed[:, d_nope : d_nope + 4 * n_tiles] = scale.view(torch.uint8).reshape(-1, 4 * n_tiles)
    packed[:, d_nope + 4 * n_tiles :] = x[:, d_nope:].to(torch.bfloat16).view(torch.uint8)
    return packed.reshape(*lead, row_bytes)


def dequantize_kv_fp8(
    packed: torch.Tensor, d_nope: int = 512, d_rope: int = 64, dtype: torch.dtype = torch.bfloat16
) -> torch.Tensor:
    """Unpack uint8 ``[..., row_bytes]`` into ``[..., d_nope + d_rope]`` of ``dtype``.

    With power-of-two scales the bf16 result is exact.
    """
    row_bytes = fp8_row_bytes(d_nope, d_rope)
    if packed.dtype != torch.uint8 or packed.shape[-1] != row_bytes:
        raise ValueError(
            f"expected uint8 [..., {row_bytes}] for d_nope={d_nope}, d_rope={d_rope}, "
            f"got {packed.dtype} {tuple(packed.shape)}"
        )
    lead = packed.shape[:-1]
    p = packed.reshape(-1, row_bytes)
    n_tiles = d_nope // FP8_TILE
    fp8 = p[:, :d_nope].contiguous().view(torch.float8_e4m3fn).float()
    scale = p[:, d_nope : d_nope + 4 * n_tiles].contiguous().view(torch.float32)
    nope = (fp8.reshape(-1, n_tiles, FP8_TILE) * scale[..., None]).reshape(-1, d_nope)
    rope = p[:, d_nope + 4 * n_tiles :].contiguous().view(torch.bfloat16).float()
    return torch.cat([nope, rope], dim=-1).to(dtype).reshape(*lead, d_nope + d_rope)


def as_pages(cache: torch.Tensor) -> torch.Tensor:
    """View a paged cache as ``[num_pages, page_size, W]`` (drops a FlashMLA-style h_k=1 axis)."""
    if cache.dim() == 4 and cache.shape[2] == 1:
        return cache[:, :, 0]
    if cache.dim() != 3:
        raise ValueError(f"paged cache must be [num_pages, page_size, W], got {tuple(cache.shape)}")
    return cache


def store_mla_kv(cache: torch.Tensor, slots: torch.Tensor, kv: torch.Tensor) -> torch.Tensor:
    """Write ``kv [N, D]`` into ``cache`` at global ``slots [N]``, in place; returns ``cache``.

    A bf16/float cache stores the values cast to its dtype; a uint8 cache
    stores ``quantize_kv_fp8`` rows (d_nope derived from D and the byte width).
    Slots < 0 or beyond the cache are skipped. Duplicate slots: one of the rows wins.
    """
    pages = as_pages(cache)
    num_pages, page_size, width = pages.shape
    if kv.dim() != 2 or slots.shape != kv.shape[:1]:
        raise ValueError(f"need kv [N, D] and slots [N], got {tuple(kv.shape)} and {tuple(slots.shape)}")
    if pages.dtype == torch.uint8:
        d_nope, _ = fp8_dims(width, kv.shape[1])
        rows = quantize_kv_fp8(kv, d_nope=d_nope)
    elif kv.shape[1] != width:
        raise ValueError(f"kv has {kv.shape[1]} values per token, cache rows hold {width}")
    else:
        rows = kv.to(pages.dtype)
    slots = slots.long()
    keep = (slots >= 0) & (slots < num_pages * page_size)
    s = slots[keep]
    pages[s // page_size, s % page_size] = rows[keep]
    return cache
