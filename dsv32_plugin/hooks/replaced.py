"""``replaced(owner, name, value)``: an attribute swapped for the length of a ``with`` block.

For hooks that run a host function on the CPU where it asks ``torch.cuda`` a question only a GPU
can answer; the original comes back even if the block raises.
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
