"""Fused indexer-key store: Hadamard-rotate, quantise to FP8 and scatter into the paged cache (Triton).

Cache layout (``kernels/layout.py`` has the full description): per layer a
uint8 ``[num_pages, 64 * (D + 4)]``; a page holds 64 FP8 keys token-major, then
their 64 fp32 scales. Slot ``loc`` is page ``loc // 64``, offset ``loc % 64``.
Float keys arrive before the indexer's Hadamard rotation, which the store applies
(``hadamard_fp8.py``); pre-quantised keys are cache contents and are stored as they are.
"""

import torch
import triton
import triton.language as tl

from .._triton_utils import check_launchable
from ..hadamard_fp8 import rotate_quantize_rows
from ..layout import INDEX_K_PAGE_SIZE, index_k_head_dim
from ..target import launch_target


@triton.jit(do_not_specialize=["num_tokens"])
def _store_index_k_kernel(
    k_ptr, k_scale_ptr, slots_ptr, keys_ptr, scales_ptr, num_tokens, capacity,
    D: tl.constexpr, BLOCK_N: tl.constexpr, QUANTIZE: tl.constexpr, FP8_HW: tl.constexpr, DOT_FP32: tl.constexpr,
):
    PAGE: tl.constexpr = 64
    PAGE_BYTES: tl.constexpr = PAGE * (D + 4)
    tok = tl.program_id(0) * BLOCK_N + tl.arange(0, BLOCK_N)
    dims = tl.arange(0, D)
    slot = tl.load(slots_ptr + tok, mask=tok < num_tokens, other=-1).to(tl.int64)
    ok = (tok < num_tokens) & (slot >= 0) & (slot < capacity)
    x = tl.load(k_ptr + tok.to(tl.int64)[:, None] * D + dims[None, :], mask=ok[:, None], other=0)
    if QUANTIZE:
        x, scale = rotate_quantize_rows(x, D, DOT_FP32, FP8_HW)
    else:
        scale = tl.load(k_scale_ptr + tok, mask=ok, other=0.0)
    page = slot // PAGE
    offset = slot % PAGE
    tl.store(keys_ptr + (page * PAGE_BYTES + offset * D)[:, None] + dims[None, :], x, mask=ok[:, None])
    tl.store(scales_ptr + page * (PAGE_BYTES // 4) + (PAGE * D) // 4 + offset, scale, mask=ok)


def store_index_k(cache: torch.Tensor, slots: torch.Tensor, k: torch.Tensor, k_scale: torch.Tensor | None = None) -> None:
    """Write keys into the paged indexer cache in place (same contract as the reference).

    cache uint8 ``[num_pages, 64*(D+4)]``; slots int ``[N]`` (< 0 or beyond the cache:
    skipped); k ``[N, D]`` either bf16/fp16/fp32 before the Hadamard (k_scale None: rotated,
    then quantised per token to e4m3 with a power-of-two scale, fused) or float8_e4m3fn
    cache contents with k_scale ``[N]`` fp32 (stored as they are).
    """
    head_dim = index_k_head_dim(cache)
    if k.dim() != 2 or k.shape[1] != head_dim or slots.shape != (k.shape[0],):
        raise ValueError(f"k {tuple(k.shape)} / slots {tuple(slots.shape)} do not match a cache of D={head_dim}")
    if head_dim & (head_dim - 1) or head_dim < 16:
        raise ValueError(f"key width must be a power of two >= 16, got {head_dim}")
    quantize = k_scale is None
    if not quantize and (k.dtype != torch.float8_e4m3fn or k_scale.shape != (k.shape[0],)):
        raise ValueError(f"pre-quantised keys must be float8_e4m3fn with k_scale [N], got {k.dtype}")
    if quantize and not k.is_floating_point():
        raise ValueError(f"keys must be floating point, got {k.dtype}")
    check_launchable(cache, slots, k)
    if not cache.is_contiguous():
        raise ValueError("the indexer K cache must be contiguous")
    num_tokens = k.shape[0]
    if num_tokens == 0:
        return
    k = k.contiguous()
    scale_arg = k if quantize else k_scale.float().contiguous()
    block_n = 16  # the smallest tl.dot M
    target = launch_target(k.device)
    _store_index_k_kernel[(triton.cdiv(num_tokens, block_n),)](
        k if quantize else k.view(torch.uint8), scale_arg, slots.contiguous(), cache, cache.view(torch.float32),
        num_tokens, cache.shape[0] * INDEX_K_PAGE_SIZE,
        D=head_dim, BLOCK_N=block_n, QUANTIZE=quantize, FP8_HW=target.fp8_hardware, DOT_FP32=target.dot_fp32,
        num_warps=4,
    )
