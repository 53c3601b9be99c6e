"""The only way a hooks module touches the host, and the record of what it did in this process.

Each function takes the touch's entry in ``dsv32_plugin.host.touches`` (target, kind, texts),
finds the host object from its dotted ``owner``, makes the touch and records it with the module
that made it:

* ``set_entry`` -- write one key of a host mapping (``ModelRegistry.models``,
  ``ATTENTION_BACKENDS``, the parser maps; ``sys.modules`` for the CPU ``sgl_kernel`` stand-in);
* ``set_attribute`` -- set one process-wide attribute (``sys.excepthook``);
* ``prepend_path`` -- put a plugin-owned directory first on ``sys.path`` (only the CPU stand-in
  does, so that spawned host processes import it before registering);
* ``hook`` -- register a ``HookRegistry`` hook (BEFORE/AFTER/AROUND/REPLACE) on the target; the
  host applies it after all plugins ran.

``TOUCHES`` lists what was done, so tests can check it against the table.
"""

from __future__ import annotations

import importlib
import sys
from dataclasses import dataclass
from typing import Any, Callable

from dsv32_plugin.host.touches import ENTRY, HOOK_KINDS, Touch


@dataclass(frozen=True)
class MadeTouch:
    touch: Touch
    module: str  # the module that called the ledger

    @property
    def target(self) -> str:
        return self.touch.target

    @property
    def kind(self) -> str:
        return self.touch.kind


TOUCHES: list[MadeTouch] = []


def host_object(path: str) -> Any:
    """The object at dotted ``path``: its longest importable module prefix, then attributes."""
    parts = path.split(".")
    for split in range(len(parts), 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:split]))
        except ModuleNotFoundError:
            continue
        for name in parts[split:]:
            obj = getattr(obj, name)
        return obj
    raise ModuleNotFoundError(f"no module in host path {path!r}")


def _check_kind(touch: Touch, *kinds: str) -> None:
    if touch.kind not in kinds:
        raise ValueError(f"{touch.target} has kind {touch.kind}, not {' or '.join(kinds)}")


def _record(touch: Touch) -> None:
    # frame 0 _record, 1 the ledger function, 2 the hooks module calling it
    made = MadeTouch(touch, sys._getframe(2).f_globals.get("__name__", ""))
    if made not in TOUCHES:
        TOUCHES.append(made)


def set_entry(touch: Touch, value: Any) -> None:
    """``<owner>[key] = value``."""
    _check_kind(touch, ENTRY)
    host_object(touch.owner)[touch.key] = value
    _record(touch)


def set_attribute(touch: Touch, value: Any) -> None:
    """``setattr`` of the attribute ``owner`` names (``sys.excepthook``)."""
    _check_kind(touch, ENTRY)
    owner, name = touch.owner.rsplit(".", 1)
    setattr(host_object(owner), name, value)
    _record(touch)


def prepend_path(touch: Touch, directory: str) -> None:
    """``directory`` first on ``sys.path`` unless present; recorded under the touch's label (its key)."""
    _check_kind(touch, ENTRY)
    if directory not in sys.path:
        sys.path.insert(0, directory)
    _record(touch)


def hook(touch: Touch, fn: Callable) -> None:
    """Register ``fn`` on the touch's target with the host's HookRegistry, as its kind."""
    from sglang.srt.plugins.hook_registry import HookRegistry, HookType

    _check_kind(touch, *HOOK_KINDS)
    HookRegistry.register(touch.owner, fn, HookType[touch.kind])
    _record(touch)
