"""FP8 e4m3 quantisation with power-of-two scales (float32 reference).

Both DSA caches quantise with scales ``2^ceil(log2(s))`` (ue8m0): dequantising
is then exact in bf16. ``pow2_ceil`` computes that power of two from the
float's bits; the MLA cache (``cache/kv_reference.py``) and the indexer
(``quantize_fp8_blockwise``) differ only in where they floor ``s``.
"""

import torch

FP8_E4M3_MAX = 448.0
_AMAX_FLOOR = 1e-4  # all-zero blocks get a finite scale, never 0/0


def pow2_ceil(s: torch.Tensor) -> torch.Tensor:
    """``2^ceil(log2(s))`` for positive float32 ``s``, bit-exact.

    ``frexp`` gives s = m * 2^e with m in [0.5, 1): ceil(log2 s) is e - 1 when
    m == 0.5 (s is a power of two) and e otherwise, with no log2 rounding.
    """
    mantissa, exponent = torch.frexp(s)
    exponent = exponent - (mantissa == 0.5).to(exponent.dtype)
    return torch.ldexp(torch.ones_like(s), exponent)


def quantize_fp8_blockwise(x: torch.Tensor, block: int = 128):
    """Quantise the last dim in blocks of ``min(block, D)`` to e4m3 with ue8m0 scales.

    Returns ``(x_fp8 [..., D] float8_e4m3fn, scale [..., D // block] fp32)`` with
    ``scale = 2^ceil(log2(max(amax, 1e-4) / 448))`` and ``x ~= x_fp8 * scale``.
    Static shapes, no host synchronisation (the backend quantises the indexer's
    q with it inside CUDA graphs).
    """
    dim = x.shape[-1]
    block = min(block, dim)
    if dim % block:
        raise ValueError(f"last dim {dim} is not a multiple of the block {block}")
    tiles = x.float().reshape(*x.shape[:-1], dim // block, block)
    amax = tiles.abs().amax(-1).clamp_min(_AMAX_FLOOR)
    scale = pow2_ceil(amax / FP8_E4M3_MAX)
    x_fp8 = (tiles / scale[..., None]).clamp(-FP8_E4M3_MAX, FP8_E4M3_MAX).to(torch.float8_e4m3fn)
    return x_fp8.reshape(x.shape), scale
