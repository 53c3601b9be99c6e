"""``replaced(owner, name, value)``: an attribute swapped for the length of a ``with`` block.

For hooks that run a host function on the CPU where it asks ``torch.cuda`` a question only a GPU
can answer; the original comes back even if the block raises. ``cuda_answered_without_gpu(name, value)``
is such an AROUND hook: without CUDA, ``torch.cuda.<name>`` is ``value`` during the host's call.
"""

from __future__ import annotations

import contextlib
from typing import Any, Iterator


@contextlib.contextmanager
def replaced(owner: Any, name: str, value: Any) -> Iterator[None]:
    original = getattr(owner, name)
    setattr(owner, name, value)
    try:
        yield
    finally:
        setattr(owner, name, original)


def cuda_answered_without_gpu(name: str, value: Any):
    """An AROUND hook function: without CUDA, ``torch.cuda.<name>`` is ``value`` while the original runs."""

    def around(original, *args, **kwargs):
        import torch

        if torch.cuda.is_available():
            return original(*args, **kwargs)
        with replaced(torch.cuda, name, value):
            return original(*args, **kwargs)

    return around
