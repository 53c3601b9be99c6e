"""Triton pieces shared by the prefill and decode indexer kernels.

Both compute a tile of index scores with keys on the MMA's M dimension and
(query row, head) pairs on N: ``acc = k_tile [BLOCK_S, D] @ q_tile^T [D, R*BLOCK_H]``.
The head sum then runs along N, i.e. inside a thread's registers and a quad of
lanes, never across warps.
"""

import torch
import triton
import triton.language as tl

from .interpreter import interpreting


def fp8_dot_supported(device: torch.device) -> bool:
    """FP8 tensor-core dots exist on sm89+ (and are exact in the interpreter)."""
    if device.type != "cuda":
        return interpreting()
    return torch.cuda.get_device_capability(device) >= (8, 9)


def head_block(num_heads: int) -> int:
    """Heads padded to a power of two >= 16 (the smallest MMA N tile)."""
    return max(16, triton.next_power_of_2(num_heads))


@triton.jit
def score_tile(k, q, w, k_scale, BLOCK_S: tl.constexpr, ROWS: tl.constexpr, BLOCK_H: tl.constexpr, FP8_DOT: tl.constexpr):
    """Scores ``[BLOCK_S, ROWS]`` of keys against query rows.

    k ``[BLOCK_S, D]`` fp8, q ``[ROWS*BLOCK_H, D]`` fp8 (row-major (row, head)),
    w ``[ROWS, BLOCK_H]`` fp32 (0 on padded heads), k_scale ``[BLOCK_S]`` fp32:
    ``out[s, r] = k_scale[s] * sum_h w[r, h] * relu(k[s] . q[r, h])``.
    """
    if FP8_DOT:
        acc = tl.dot(k, tl.trans(q))
    else:  # pre-sm89: e4m3 values are exact in fp16
        acc = tl.dot(k.to(tl.float16), tl.trans(q.to(tl.float16)))
    acc = tl.reshape(tl.maximum(acc, 0.0), (BLOCK_S, ROWS, BLOCK_H))
    return tl.sum(acc * w[None, :, :], axis=2) * k_scale[:, None]
