"""MLA KV cache in FlashMLA's "V32" FP8 layout, and paged-cache stores (float32 reference).

Byte layout and paged shapes: ``dsv32_plugin.kernels.layout``. Scales are
powers of two, ``2^ceil(log2(max(amax / 448, 1e-4)))`` over each tile's
absolute maximum (FlashMLA's ``tests/quant.py`` rule): dequantisation is exact
in bf16, an all-zero tile gets a finite scale and zero bytes (no NaN).
"""

import torch

from ..layout import FP8_TILE, as_pages, fp8_dims, fp8_row_bytes
from ..fp8 import FP8_E4M3_MAX, pow2_ceil

SCALE_INV_MIN = 1e-4


def pow2_scale(amax: torch.Tensor) -> torch.Tensor:
    """Power-of-two dequant scale ``2^ceil(log2(max(amax/448, 1e-4)))``, float32, bit-exact."""
    return pow2_ceil(torch.clamp_min(amax.float() / FP8_E4M3_MAX, SCALE_INV_MIN))


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
    fp8 = (tiles / scale[..., None]).clamp(-FP8_E4M3_MAX, FP8_E4M3_MAX).to(torch.float8_e4m3fn)
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
