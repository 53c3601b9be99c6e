"""Scaled FP8 matrix product (per-tensor or per-row/column scales), computed in float32.

``out [M, N] = (mat_a [M, K] * scales_a) @ (mat_b [K, N] * scales_b) + bias``, with
``scales_a`` ``[M, 1]``/``[M]`` or one value and ``scales_b`` ``[N, 1]``/``[1, N]``/``[N]``
or one value. Slower than the real kernel, exact up to the final rounding.
"""

from __future__ import annotations

from typing import Optional

import torch


def fp8_scaled_mm(mat_a: torch.Tensor, mat_b: torch.Tensor, scales_a: torch.Tensor, scales_b: torch.Tensor,
                  out_dtype: torch.dtype, bias: Optional[torch.Tensor] = None) -> torch.Tensor:
    m, n = mat_a.shape[0], mat_b.shape[1]
    scale_a = scales_a.float().reshape(m, 1) if scales_a.numel() == m else scales_a.float().reshape(1, 1)
    scale_b = scales_b.float().reshape(1, n) if scales_b.numel() == n else scales_b.float().reshape(1, 1)
    out = (mat_a.float() * scale_a) @ (mat_b.float() * scale_b)
    if bias is not None:
        out = out + bias.float()
    return out.to(out_dtype)
