"""The FP8 indexer's q quantiser (Triton): Hadamard rotation, e4m3 per head, the scale folded into the weights.

One launch for what was a matmul, casts and the torch quantiser: each program encodes
``BLOCK_M`` (token, head) rows of q with ``hadamard_fp8.rotate_quantize_rows`` and multiplies
those rows' head weights by their scales. Reference: ``indexer/reference.py``'s
``quantize_index_q``.
"""

import torch
import triton
import triton.language as tl

from .._triton_utils import check_launchable
from ..hadamard_fp8 import rotate_quantize_rows
from ..target import launch_target

_BLOCK_M = 64  # (token, head) rows a program: one decode token's 64 heads


@triton.jit(do_not_specialize=["num_rows"])
def _quantize_index_q_kernel(
    q_ptr, w_ptr, q_out_ptr, w_out_ptr, num_rows,  # q [R, D], weights [R], R = T * Hi rows, contiguous
    D: tl.constexpr, BLOCK_M: tl.constexpr, FP8_HW: tl.constexpr, DOT_FP32: tl.constexpr,
):
    rows = tl.program_id(0) * BLOCK_M + tl.arange(0, BLOCK_M)
    ok = rows < num_rows
    offsets = rows.to(tl.int64)[:, None] * D + tl.arange(0, D)[None, :]
    codes, scale = rotate_quantize_rows(tl.load(q_ptr + offsets, mask=ok[:, None], other=0), D, DOT_FP32, FP8_HW)
    tl.store(q_out_ptr + offsets, codes, mask=ok[:, None])
    w = tl.load(w_ptr + rows, mask=ok, other=0.0).to(tl.float32)
    tl.store(w_out_ptr + rows, w * scale, mask=ok)


def quantize_index_q(q: torch.Tensor, weights: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``(q_fp8, weights * q_scale)`` from q ``[T, Hi, D]`` before the Hadamard and weights ``[T, Hi]``.

    Same contract as the reference: q rotated (``hadamard_rotate``), quantised per (token, head)
    over D to float8_e4m3fn with a power-of-two scale; the scales are folded into the returned
    float32 weights ``[T, Hi]``. D a power of two >= 16; bf16, fp16 or float32 q. Static shapes,
    no host synchronisation (runs inside CUDA graphs).
    """
    if q.dim() != 3 or weights.shape != q.shape[:2]:
        raise ValueError(f"need q [T, Hi, D] and weights [T, Hi], got {tuple(q.shape)}, {tuple(weights.shape)}")
    dim = q.shape[-1]
    if dim & (dim - 1) or dim < 16:
        raise ValueError(f"the indexer head dim must be a power of two >= 16, got {dim}")
    if not q.is_floating_point():
        raise ValueError(f"q must be floating point, got {q.dtype}")
    check_launchable(q, weights)
    q, weights = q.contiguous(), weights.contiguous()
    q_fp8 = torch.empty(q.shape, dtype=torch.float8_e4m3fn, device=q.device)
    w_out = torch.empty(weights.shape, dtype=torch.float32, device=q.device)
    num_rows = q.shape[0] * q.shape[1]
    if num_rows == 0:
        return q_fp8, w_out
    target = launch_target(q.device)
    _quantize_index_q_kernel[(triton.cdiv(num_rows, _BLOCK_M),)](
        q, weights, q_fp8.view(torch.uint8), w_out, num_rows,
        D=dim, BLOCK_M=_BLOCK_M, FP8_HW=target.fp8_hardware, DOT_FP32=target.dot_fp32, num_warps=4,
    )
    return q_fp8, w_out
