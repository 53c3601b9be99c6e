"""Triton kernels for the MLA KV cache: FP8 quantise/dequantise and the paged store.

Byte layout and paged-cache shapes: ``kernels/layout.py``; scale rule: the reference
``dsv32_plugin.kernels.reference.kv_cache`` (FlashMLA "V32": 512 fp8 bytes,
4 float32 power-of-two scales, 64 bf16 rope values = 656 bytes per token).
``load_kv_fp8_rows`` is the one dequantiser; the sparse MLA decode kernel
calls it too.
"""

import torch
import triton
import triton.language as tl

from ._triton_utils import check_launchable
from .e4m3 import e4m3_bits, e4m3_value
from .layout import as_pages, fp8_dims, fp8_row_bytes
from .target import launch_target

_BLOCK_ROWS = 16


@triton.jit
def load_kv_fp8_rows(row_ptr, valid, D_NOPE: tl.constexpr, D_ROPE: tl.constexpr, BLOCK_N: tl.constexpr,
                     FP8_HW: tl.constexpr):
    """Dequantise packed rows. row_ptr [BLOCK_N] uint8 pointers; masked rows are not read.

    Returns (nope [BLOCK_N, D_NOPE], rope [BLOCK_N, D_ROPE]), both bfloat16.
    """
    N_TILES: tl.constexpr = D_NOPE // 128
    raw = tl.load(row_ptr[:, None] + tl.arange(0, D_NOPE)[None, :], mask=valid[:, None], other=0)
    scale_ptr = (row_ptr + D_NOPE).to(tl.pointer_type(tl.float32))
    scale = tl.load(scale_ptr[:, None] + tl.arange(0, N_TILES)[None, :], mask=valid[:, None], other=0.0)
    x = tl.reshape(e4m3_value(raw, FP8_HW), (BLOCK_N, N_TILES, 128))
    nope = tl.reshape(x * scale[:, :, None], (BLOCK_N, D_NOPE)).to(tl.bfloat16)
    rope_ptr = (row_ptr + D_NOPE + 4 * N_TILES).to(tl.pointer_type(tl.bfloat16))
    rope = tl.load(rope_ptr[:, None] + tl.arange(0, D_ROPE)[None, :], mask=valid[:, None], other=0.0)
    return nope, rope


@triton.jit
def _pow2_scale(amax):
    """2^ceil(log2(max(amax / 448, 1e-4))) from the float32 bits (exact, like the reference)."""
    s = tl.maximum(amax / 448.0, 1e-4)
    bits = s.to(tl.int32, bitcast=True)
    exponent = ((bits >> 23) & 0xFF) + ((bits & 0x7FFFFF) != 0).to(tl.int32)
    return (exponent << 23).to(tl.float32, bitcast=True)


@triton.jit(do_not_specialize=["n_rows", "page_size", "num_slots"])
def _store_kv_kernel(
    kv_ptr, stride_kv,  # kv [N, D_NOPE + D_ROPE], element strides
    slot_ptr,  # slots [N] int (ignored when IDENTITY_SLOTS)
    cache_ptr, stride_page, stride_tok,  # cache pages [num_pages, page_size, W], element strides
    n_rows, page_size, num_slots,
    CACHE_FP8: tl.constexpr, IDENTITY_SLOTS: tl.constexpr,
    D_NOPE: tl.constexpr, D_ROPE: tl.constexpr, BLOCK_R: tl.constexpr, FP8_HW: tl.constexpr,
):
    rows = tl.program_id(0) * BLOCK_R + tl.arange(0, BLOCK_R)
    in_rows = rows < n_rows
    if IDENTITY_SLOTS:
        slots = rows.to(tl.int64)
    else:
        slots = tl.load(slot_ptr + rows, mask=in_rows, other=-1).to(tl.int64)
    valid = in_rows & (slots >= 0) & (slots < num_slots)
    page = slots // page_size
    dst = cache_ptr + page * stride_page + (slots - page * page_size) * stride_tok  # [BLOCK_R]
    src = kv_ptr + rows.to(tl.int64) * stride_kv
    nope = tl.load(src[:, None] + tl.arange(0, D_NOPE)[None, :], mask=valid[:, None], other=0.0)
    rope = tl.load(src[:, None] + D_NOPE + tl.arange(0, D_ROPE)[None, :], mask=valid[:, None], other=0.0)
    if CACHE_FP8:
        N_TILES: tl.constexpr = D_NOPE // 128
        x = tl.reshape(nope.to(tl.float32), (BLOCK_R, N_TILES, 128))
        scale = _pow2_scale(tl.max(tl.abs(x), axis=2))  # [BLOCK_R, N_TILES]
        q = e4m3_bits(tl.minimum(tl.maximum(x / scale[:, :, None], -448.0), 448.0), FP8_HW)
        q = tl.reshape(q, (BLOCK_R, D_NOPE))
        tl.store(dst[:, None] + tl.arange(0, D_NOPE)[None, :], q, mask=valid[:, None])
        scale_dst = (dst + D_NOPE).to(tl.pointer_type(tl.float32))
        tl.store(scale_dst[:, None] + tl.arange(0, N_TILES)[None, :], scale, mask=valid[:, None])
        rope_dst = (dst + D_NOPE + 4 * N_TILES).to(tl.pointer_type(tl.bfloat16))
        tl.store(rope_dst[:, None] + tl.arange(0, D_ROPE)[None, :], rope.to(tl.bfloat16), mask=valid[:, None])
    else:
        ty = cache_ptr.dtype.element_ty
        tl.store(dst[:, None] + tl.arange(0, D_NOPE)[None, :], nope.to(ty), mask=valid[:, None])
        tl.store(dst[:, None] + D_NOPE + tl.arange(0, D_ROPE)[None, :], rope.to(ty), mask=valid[:, None])


@triton.jit(do_not_specialize=["n_rows"])
def _dequantize_kernel(
    packed_ptr, stride_p, out_ptr, stride_o, n_rows,
    D_NOPE: tl.constexpr, D_ROPE: tl.constexpr, BLOCK_R: tl.constexpr, FP8_HW: tl.constexpr,
):
    rows = tl.program_id(0) * BLOCK_R + tl.arange(0, BLOCK_R)
    valid = rows < n_rows
    nope, rope = load_kv_fp8_rows(packed_ptr + rows.to(tl.int64) * stride_p, valid, D_NOPE, D_ROPE, BLOCK_R, FP8_HW)
    dst = out_ptr + rows.to(tl.int64)[:, None] * stride_o
    ty = out_ptr.dtype.element_ty
    tl.store(dst + tl.arange(0, D_NOPE)[None, :], nope.to(ty), mask=valid[:, None])
    tl.store(dst + D_NOPE + tl.arange(0, D_ROPE)[None, :], rope.to(ty), mask=valid[:, None])


def _check_pow2_split(d_nope: int, d_rope: int) -> None:
    # Triton tiles are powers of two; the FP8 layout also needs whole 128-value tiles.
    for name, d in (("d_nope", d_nope), ("d_rope", d_rope)):
        if d < 16 or d & (d - 1):
            raise ValueError(f"Triton KV kernels need {name} a power of two >= 16, got {d}")


def _launch_store(cache_pages: torch.Tensor, slots: torch.Tensor | None, kv: torch.Tensor, d_nope: int) -> None:
    n = kv.shape[0]
    if n == 0:
        return
    d_rope = kv.shape[1] - d_nope
    _check_pow2_split(d_nope, d_rope)
    num_pages, page_size, _ = cache_pages.shape
    _store_kv_kernel[(triton.cdiv(n, _BLOCK_ROWS),)](
        kv, kv.stride(0), kv if slots is None else slots,
        cache_pages, cache_pages.stride(0), cache_pages.stride(1),
        n, page_size, num_pages * page_size,
        CACHE_FP8=cache_pages.dtype == torch.uint8, IDENTITY_SLOTS=slots is None,
        D_NOPE=d_nope, D_ROPE=d_rope, BLOCK_R=_BLOCK_ROWS, FP8_HW=launch_target(kv.device).fp8_hardware,
    )


def _check_rows(kv: torch.Tensor) -> None:
    if kv.dim() != 2 or kv.stride(1) != 1:
        raise ValueError(f"kv must be [N, D] with unit stride in D, got {tuple(kv.shape)} strides {kv.stride()}")


def quantize_kv_fp8(kv: torch.Tensor, d_nope: int = 512) -> torch.Tensor:
    """kv [N, d_nope + d_rope] bf16 -> uint8 [N, row_bytes] (656 for 512 + 64); see the reference."""
    _check_rows(kv)
    check_launchable(kv)
    row_bytes = fp8_row_bytes(d_nope, kv.shape[1] - d_nope)
    packed = torch.empty(kv.shape[0], 1, row_bytes, dtype=torch.uint8, device=kv.device)
    _launch_store(packed, None, kv, d_nope)
    return packed.view(kv.shape[0], row_bytes)


def dequantize_kv_fp8(
    packed: torch.Tensor, d_nope: int = 512, d_rope: int = 64, dtype: torch.dtype = torch.bfloat16
) -> torch.Tensor:
    """uint8 [N, row_bytes] -> [N, d_nope + d_rope] of ``dtype`` (exact in bf16 for power-of-two scales)."""
    row_bytes = fp8_row_bytes(d_nope, d_rope)
    if packed.dtype != torch.uint8 or packed.dim() != 2 or packed.shape[1] != row_bytes or packed.stride(1) != 1:
        raise ValueError(f"expected uint8 [N, {row_bytes}] rows, got {packed.dtype} {tuple(packed.shape)}")
    _check_pow2_split(d_nope, d_rope)
    check_launchable(packed)
    n = packed.shape[0]
    out = torch.empty(n, d_nope + d_rope, dtype=dtype, device=packed.device)
    if n:
        _dequantize_kernel[(triton.cdiv(n, _BLOCK_ROWS),)](
            packed, packed.stride(0), out, out.stride(0), n, D_NOPE=d_nope, D_ROPE=d_rope, BLOCK_R=_BLOCK_ROWS,
            FP8_HW=launch_target(packed.device).fp8_hardware,
        )
    return out


def store_mla_kv(cache: torch.Tensor, slots: torch.Tensor, kv: torch.Tensor) -> torch.Tensor:
    """Write kv [N, D] into a paged cache at global slots [N] in place (quantising into a uint8 cache).

    cache: [num_pages, page_size, D] bf16/float or [num_pages, page_size, row_bytes] uint8
    (a FlashMLA-style [.., 1, W] axis is accepted). Slots < 0 or past the cache are skipped.
    Returns ``cache``. CUDA-graph safe (no host sync).
    """
    pages = as_pages(cache)
    _check_rows(kv)
    if slots.shape != kv.shape[:1]:
        raise ValueError(f"slots must be [N] for kv [N, D], got {tuple(slots.shape)}")
    if pages.stride(2) != 1:
        raise ValueError("cache rows must be contiguous")
    check_launchable(pages, slots, kv)
    if pages.dtype == torch.uint8:
        d_nope, _ = fp8_dims(pages.shape[2], kv.shape[1])
    elif pages.shape[2] != kv.shape[1]:
        raise ValueError(f"kv has {kv.shape[1]} values per token, cache rows hold {pages.shape[2]}")
    else:
        d_nope = 1 << (kv.shape[1].bit_length() - 1)  # largest power of two: 576 -> 512 + 64
    _launch_store(pages, slots, kv, d_nope)
    return cache

