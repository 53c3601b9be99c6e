"""Norms and gated activations, as sgl_kernel's (flashinfer-derived) kernels compute them.

Every op works in float32 and rounds once into the output dtype, in place where
the real op is in place. Shapes: ``input [..., hidden]``, ``weight [hidden]``;
the gated activations split ``input [..., 2d]`` into ``x = input[..., :d]`` and
``y = input[..., d:]`` and write ``out [..., d]``. Plain torch ops only: no host
synchronisation, so CUDA graphs capture them. ``enable_pdl`` is accepted and
ignored (programmatic dependent launch is a launch detail of the real kernels).
Unlike the real kernels, no 16-byte alignment of the hidden size is required.
"""

from __future__ import annotations

from typing import Optional

import torch
import torch.nn.functional as F


def _normalised(x: torch.Tensor, eps: float) -> torch.Tensor:
    """``x / sqrt(mean(x^2) + eps)`` over the last dim, float32."""
    return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps)


def _norm_into(out: Optional[torch.Tensor], like: torch.Tensor, value: torch.Tensor) -> torch.Tensor:
    if out is None:
        return value.to(like.dtype)
    out.copy_(value)
    return out


def rmsnorm(input: torch.Tensor, weight: torch.Tensor, eps: float = 1e-6, out: Optional[torch.Tensor] = None,
            enable_pdl: Optional[bool] = None) -> torch.Tensor:
    """``out = input / RMS(input) * weight``."""
    return _norm_into(out, input, _normalised(input.float(), eps) * weight.float())


def gemma_rmsnorm(input: torch.Tensor, weight: torch.Tensor, eps: float = 1e-6, out: Optional[torch.Tensor] = None,
                  enable_pdl: Optional[bool] = None) -> torch.Tensor:
    """``out = input / RMS(input) * (1 + weight)``."""
    return _norm_into(out, input, _normalised(input.float(), eps) * (1.0 + weight.float()))


def _fused_add(input: torch.Tensor, residual: torch.Tensor, scale: torch.Tensor, eps: float) -> None:
    total = input.float() + residual.float()
    residual.copy_(total)
    input.copy_(_normalised(total, eps) * scale)  # normalises the float32 sum, not the rounded residual


def fused_add_rmsnorm(input: torch.Tensor, residual: torch.Tensor, weight: torch.Tensor, eps: float = 1e-6,
                      enable_pdl: Optional[bool] = None) -> None:
    """In place: ``residual += input``, then ``input = residual / RMS(residual) * weight``."""
    _fused_add(input, residual, weight.float(), eps)


def gemma_fused_add_rmsnorm(input: torch.Tensor, residual: torch.Tensor, weight: torch.Tensor, eps: float = 1e-6,
                            enable_pdl: Optional[bool] = None) -> None:
    """In place: ``residual += input``, then ``input = residual / RMS(residual) * (1 + weight)``."""
    _fused_add(input, residual, 1.0 + weight.float(), eps)


def _gated(act, input: torch.Tensor, out: Optional[torch.Tensor]) -> torch.Tensor:
    d = input.shape[-1] // 2
    if input.shape[-1] != 2 * d:
        raise ValueError(f"gated activation needs an even last dim, got {tuple(input.shape)}")
    if out is not None and out.shape != input.shape[:-1] + (d,):
        raise ValueError(f"out {tuple(out.shape)} does not match input {tuple(input.shape)} (last dim halved)")
    value = act(input[..., :d].float()) * input[..., d:].float()
    if out is None:
        return value.to(input.dtype)
    out.copy_(value)
    return out


def silu_and_mul(input: torch.Tensor, out: Optional[torch.Tensor] = None) -> torch.Tensor:
    """``silu(x) * y``."""
    return _gated(F.silu, input, out)


def gelu_and_mul(input: torch.Tensor, out: Optional[torch.Tensor] = None) -> torch.Tensor:
    """``gelu(x) * y`` (exact erf GELU)."""
    return _gated(F.gelu, input, out)


def gelu_tanh_and_mul(input: torch.Tensor, out: Optional[torch.Tensor] = None) -> torch.Tensor:
    """``gelu_tanh(x) * y`` (tanh approximation)."""
    return _gated(lambda x: F.gelu(x, approximate="tanh"), input, out)
