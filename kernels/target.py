"""The machine a Triton launch is configured for: every capability question the launchers ask.

A launcher never asks CUDA directly; it asks ``launch_target(device)`` and reads the answer:

* ``arch`` -- compute capability as one number (90 = sm90), 0 in the CPU interpreter;
* ``sm_count`` -- streaming multiprocessors, to size grids (a nominal 4 in the interpreter);
* ``fp8_hardware`` -- FP8 types in the kernels (``tl.float8e4nv`` conversions and ``tl.dot``): sm89
  and later. Before sm89 Triton rejects the type, so the kernels decode and encode e4m3 bytes in
  software and take fp16 dot operands (``e4m3.py``); the interpreter takes the software path too;
* ``dot_fp32`` -- the interpreter only: its bf16 ``tl.dot`` is wrong (docs/kernels.md), so the
  kernels upcast dot operands to float32 there.

``DSV32_TRITON_PRE_SM89=1`` in the environment forces the pre-sm89 path on any GPU, so that the
code sm80/sm86 GPUs (A100, A10, RTX 30xx) run can be run and checked on a Hopper machine.

``configured_for(target)`` makes launches configure for ``target`` whatever their tensors' device
is: ahead-of-time compile checks use it to record, from interpreted CPU runs, the launches a given
GPU would get (tests/kernels/test_compile_targets.py).
"""

from __future__ import annotations

import contextlib
import contextvars
import dataclasses
import functools
import os

import torch


PRE_SM89_SWITCH = "DSV32_TRITON_PRE_SM89"


@dataclasses.dataclass(frozen=True)
class Target:
    arch: int  # 10 * major + minor; 0 = the CPU interpreter
    sm_count: int
    pre_sm89: bool = False  # DSV32_TRITON_PRE_SM89=1: the pre-sm89 path whatever the arch

    @property
    def interpreter(self) -> bool:
        return self.arch == 0

    @property
    def fp8_hardware(self) -> bool:
        return self.arch >= 89 and not self.pre_sm89

    @property
    def dot_fp32(self) -> bool:
        return self.interpreter


INTERPRETER = Target(arch=0, sm_count=4)
_override: contextvars.ContextVar[Target | None] = contextvars.ContextVar("dsv32_launch_target", default=None)


def _pre_sm89_forced() -> bool:
    return os.environ.get(PRE_SM89_SWITCH, "0").strip().lower() not in ("", "0", "false", "no", "off")


@functools.lru_cache(maxsize=None)
def _cuda_target(index: int, pre_sm89: bool) -> Target:
    major, minor = torch.cuda.get_device_capability(index)
    sms = torch.cuda.get_device_properties(index).multi_processor_count
    return Target(arch=10 * major + minor, sm_count=sms, pre_sm89=pre_sm89)


def launch_target(device: torch.device) -> Target:
    """The target a launch on ``device`` is configured for (see the module docstring)."""
    forced = _override.get()
    if forced is not None:
        return forced
    device = torch.device(device)
    if device.type == "cuda":
        index = device.index if device.index is not None else torch.cuda.current_device()
        return _cuda_target(index, _pre_sm89_forced())
    return INTERPRETER


@contextlib.contextmanager
def configured_for(target: Target):
    """Within the block, every launch is configured for ``target`` (ahead-of-time compile checks)."""
    token = _override.set(target)
    try:
        yield target
    finally:
        _override.reset(token)
