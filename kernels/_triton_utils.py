"""Helpers shared by the Triton kernels: dot operands and launch checks.

Under ``TRITON_INTERPRET=1`` (CPU CI) ``tl.dot`` on bfloat16 operands returns
garbage (see ``docs/kernels.md``), while fp32 and fp8 operands are exact. Every
kernel therefore takes a ``DOT_FP32`` constexpr (``launch_target(device).dot_fp32``)
and casts its dot operands through ``dot_operand``; on a GPU the operands stay
bf16 so tensor cores are used.
"""

import torch
import triton
import triton.language as tl

from .interpreter import interpreting


@triton.jit
def dot_operand(x, DOT_FP32: tl.constexpr):
    """Cast a tile for ``tl.dot``: float32 in the interpreter, bfloat16 on a GPU."""
    if DOT_FP32:
        return x.to(tl.float32)
    else:
        return x.to(tl.bfloat16)


def check_launchable(*tensors: torch.Tensor) -> torch.device:
    """Check the tensors share one device that Triton can run on; return it.

    CUDA tensors always qualify; CPU tensors only under the interpreter, so a
    CPU call without it fails with a clear message instead of a Triton error.
    """
    devices = {t.device for t in tensors}
    if len(devices) != 1:
        raise ValueError(f"all tensors must be on one device, got {sorted(map(str, devices))}")
    device = devices.pop()
    if device.type == "cpu" and not interpreting():
        raise RuntimeError(
            "Triton kernels need a CUDA tensor; on the CPU set TRITON_INTERPRET=1 "
            "or use dsv32_plugin.kernels.reference"
        )
    return device
