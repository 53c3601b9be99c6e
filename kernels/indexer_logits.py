"""Triton pieces shared by the prefill and decode indexer kernels.

Both compute a tile of index scores with keys on the MMA's M dimension and
(query row, head) pairs on N: ``acc = k_tile [BLOCK_S, D] @ q_tile^T [D, R*BLOCK_H]``.
The head sum then runs along N, i.e. inside a thread's registers and a quad of
lanes, never across warps.
"""

import triton
import triton.language as tl

from .e4m3 import e4m3_dot_operand


def head_block(num_heads: int) -> int:
    """Heads padded to a power of two >= 16 (the smallest MMA N tile)."""
    return max(16, triton.next_power_of_2(num_heads))


@triton.jit
def score_tile(k, q, w, k_scale, BLOCK_S: tl.constexpr, ROWS: tl.constexpr, BLOCK_H: tl.constexpr,
               FP8_HW: tl.constexpr, DOT_FP32: tl.constexpr):
    """Scores ``[BLOCK_S, ROWS]`` of keys against query rows.

    k ``[BLOCK_S, D]`` and q ``[ROWS*BLOCK_H, D]`` (row-major (row, head)) uint8 e4m3 bytes,
    w ``[ROWS, BLOCK_H]`` fp32 (0 on padded heads), k_scale ``[BLOCK_S]`` fp32:
    ``out[s, r] = k_scale[s] * sum_h w[r, h] * relu(k[s] . q[r, h])``.
    """
    acc = tl.dot(e4m3_dot_operand(k, FP8_HW, DOT_FP32), tl.trans(e4m3_dot_operand(q, FP8_HW, DOT_FP32)))
    acc = tl.reshape(tl.maximum(acc, 0.0), (BLOCK_S, ROWS, BLOCK_H))
    return tl.sum(acc * w[None, :, :], axis=2) * k_scale[:, None]
