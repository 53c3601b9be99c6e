"""The FP8 indexer's encoding inside Triton kernels: Hadamard rotation of a row tile, then e4m3 codes
with one power-of-two (ue8m0) scale per row.

The Triton twin of ``quantize_fp8_blockwise(hadamard_rotate(x), block=D)`` (``fp8.py``,
``hadamard.py``), shared by the q quantiser (``indexer/quantize_q.py``) and the index-K store
(``cache/index_k.py``), so that the rotation costs no launch and no round trip through memory
of its own.

The rotation is one ``tl.dot`` with the ±1 Sylvester matrix, built in registers from the
indices (``H[i, j] = (-1)^popcount(i & j)``). bf16 / fp16 inputs are dot operands as they are
(±1 and the inputs are exact in them; fp32 accumulation); float32 inputs take an fp32 dot in
IEEE precision (TF32 would drop their low bits). The ±1 sums are then scaled by ``D^-0.5`` once,
as the reference does. Summation order is the dot's, so the rotated values can differ from
torch's matmul in the last float32 bit where the sums are not exact, and an FP8 code can then
round the other way (tests/kernels/test_index_fp8_encode.py bounds that).
"""

import triton
import triton.language as tl

from .e4m3 import e4m3_bits


@triton.jit
def _sylvester(D: tl.constexpr):
    """±1 int32 ``[D, D]``: ``(-1)^parity(i & j)``, the parity folded onto bit 0 (D <= 2^16)."""
    i = tl.arange(0, D)
    v = i[:, None] & i[None, :]
    v = v ^ (v >> 8)
    v = v ^ (v >> 4)
    v = v ^ (v >> 2)
    v = v ^ (v >> 1)
    return 1 - 2 * (v & 1)


@triton.jit
def _hadamard_rows(x, D: tl.constexpr, DOT_FP32: tl.constexpr):
    """``(x @ H_D) * D^-0.5`` as float32, x ``[M, D]`` (M >= 16) bf16, fp16 or float32."""
    signs = _sylvester(D)
    if DOT_FP32 or x.dtype == tl.float32:
        acc = tl.dot(x.to(tl.float32), signs.to(tl.float32), input_precision="ieee")
    else:
        acc = tl.dot(x, signs.to(x.dtype))
    return acc * (D**-0.5)


@triton.jit
def _quantize_rows(x):
    """Float32 ``[M, D]`` -> ``(x / scale, scale [M])``, x / scale clamped to the e4m3 range.

    ``scale = 2^ceil(log2(max(amax, 1e-4) / 448))`` built from the float's bits (exact, unlike a
    float log2, so kernel and reference agree), divided by as a multiplication with its exact
    reciprocal.
    """
    amax = tl.maximum(tl.max(tl.abs(x), axis=1), 1e-4)
    bits = (amax / 448.0).to(tl.int32, bitcast=True)
    biased_exp = ((bits >> 23) & 0xFF) + ((bits & 0x7FFFFF) != 0).to(tl.int32)
    scale = (biased_exp << 23).to(tl.float32, bitcast=True)
    inv_scale = ((254 - biased_exp) << 23).to(tl.float32, bitcast=True)
    return tl.minimum(tl.maximum(x * inv_scale[:, None], -448.0), 448.0), scale


@triton.jit
def rotate_quantize_rows(x, D: tl.constexpr, DOT_FP32: tl.constexpr, FP8_HW: tl.constexpr):
    """Rows ``x [M, D]`` before the Hadamard -> ``(uint8 e4m3 codes [M, D], float32 scale [M])``."""
    scaled, scale = _quantize_rows(_hadamard_rows(x, D, DOT_FP32))
    return e4m3_bits(scaled, FP8_HW), scale
