"""Helpers shared by the Triton kernels: interpreter detection, fp8 rounding, launch checks.

Under ``TRITON_INTERPRET=1`` (CPU CI) ``tl.dot`` on bfloat16 operands returns
garbage (see ``docs/kernels.md`` and the shared ``triton_cpu.md``), while fp32
and fp8 operands are exact. Every kernel therefore takes a ``DOT_FP32``
constexpr, decided here once, and casts its dot operands through
``dot_operand``; on a GPU the operands stay bf16 so tensor cores are used.
"""

import torch
import triton
import triton.language as tl

from .interpreter import interpreting


def dot_fp32() -> bool:
    """Value of the ``DOT_FP32`` constexpr: upcast ``tl.dot`` operands to float32 when interpreting."""
    return interpreting()


@triton.jit
def dot_operand(x, DOT_FP32: tl.constexpr):
    """Cast a tile for ``tl.dot``: float32 in the interpreter, bfloat16 on a GPU."""
    if DOT_FP32:
        return x.to(tl.float32)
    else:
        return x.to(tl.bfloat16)


@triton.jit
def to_fp8e4nv(x, INTERPRET: tl.constexpr):
    """Round float32 ``x`` (already clamped to +-448) to float8e4nv, nearest-even.

    The interpreter's own cast rounds ties away and loses mantissa carries
    (7.75 -> 4.0), so there the rounding is done on the float32 bits and the
    cast only sees exactly representable values; on a GPU ``cvt.rn`` is used.
    """
    if INTERPRET:
        a = tl.abs(x)
        bits = a.to(tl.int32, bitcast=True)
        # keep 3 mantissa bits: add half an ulp (minus one when the kept lsb is even), truncate
        normal = ((bits + 0x7FFFF + ((bits >> 20) & 1)) & -0x100000).to(tl.float32, bitcast=True)
        # below 2^-6 e4m3 is subnormal with spacing 2^-9: round a * 512 to an integer (1.5 * 2^23 trick)
        subnormal = ((a * 512.0 + 12582912.0) - 12582912.0) * 0.001953125
        r = tl.where(a >= 0.015625, normal, subnormal)
        return tl.where(x.to(tl.int32, bitcast=True) < 0, -r, r).to(tl.float8e4nv)  # keeps -0.0
    else:
        return x.to(tl.float8e4nv)


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
