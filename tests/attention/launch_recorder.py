"""Record the Triton launches a code path makes, without running them.

Under ``TRITON_INTERPRET=1`` every ``kernel[grid](...)`` goes through
``InterpretedFunction.run``; inside ``recording_launches()`` that call is recorded
and skipped. Combined with ``dsv32_plugin.kernels.target.configured_for(target)`` the
launchers choose what they would choose on that GPU, so the record is the set of
launches a server on that GPU makes, ready to be compiled for it
(``compile_launches.py``). Outputs stay uninitialised: only shapes, dtypes and
launch choices matter here, never values.

A launch is kept as JSON-ready data: the kernel (``module:function``), positional
arguments (a tensor as its dtype and whether its address is 16-byte aligned -- what
Triton specialises a pointer on --, numbers and None as themselves) and keyword
arguments (constexprs and launch options such as ``num_warps``).
"""

from __future__ import annotations

import contextlib

import torch
from triton.runtime.interpreter import InterpretedFunction


def _arg(value):
    if isinstance(value, torch.Tensor):
        return {"tensor": str(value.dtype).removeprefix("torch."), "aligned": value.data_ptr() % 16 == 0}
    if value is None or isinstance(value, (bool, int, float)):
        return value
    raise TypeError(f"cannot record a launch argument of type {type(value).__name__}")


@contextlib.contextmanager
def recording_launches():
    """Yields the list that every launch in the block is appended to (and not run)."""
    launches: list[dict] = []
    original = InterpretedFunction.run

    def record(self, *args, grid, warmup, **kwargs):
        if warmup:
            return None
        launches.append({
            "kernel": f"{self.fn.__module__}:{self.fn.__name__}",
            "args": [_arg(a) for a in args],
            "kwargs": {name: _arg(value) for name, value in sorted(kwargs.items())},
        })
        return None

    InterpretedFunction.run = record
    try:
        yield launches
    finally:
        InterpretedFunction.run = original


def distinct(launches: list[dict]) -> list[dict]:
    """Launches with the same kernel, arguments and options once, in first-seen order."""
    seen, kept = set(), []
    for launch in launches:
        key = repr(launch)
        if key not in seen:
            seen.add(key)
            kept.append(launch)
    return kept
