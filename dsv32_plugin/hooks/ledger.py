"""Record of every host touch made in this process.

Kinds of touch:

* ``set_entry`` / ``append_name`` -- write one key of a host registry (a dict or
  a list the host reads by name, e.g. ``ModelRegistry.models`` or
  ``ToolCallParserEnum``); also ``sys.modules`` for the CPU ``sgl_kernel`` stand-in.
* ``set_attribute`` -- set one process-wide attribute (``sys.excepthook``).
* ``prepend_path`` -- put a plugin-owned directory first on ``sys.path`` (only the
  CPU stand-in does, so that spawned host processes import it before registering).
* ``hook`` -- register a ``HookRegistry`` hook (BEFORE/AFTER/AROUND/REPLACE) on
  a dotted target; the host applies it after all plugins ran.

``TOUCHES`` lists what was done, so tests and ``docs/hooks.md`` can be
checked against it.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from typing import Any, Callable, MutableMapping


@dataclass(frozen=True)
class HostTouch:
    target: str  # dotted path of the host object touched (with [key] for entries)
    kind: str  # "entry" or a HookType name
    why: str
    undo: str
    module: str = ""  # the hooks module that made the touch (filled in by the ledger)


TOUCHES: list[HostTouch] = []


def _record(touch: HostTouch) -> None:
    # frame 0 _record, 1 the ledger function, 2 the hooks module calling it
    caller = sys._getframe(2).f_globals.get("__name__", "")
    touch = HostTouch(touch.target, touch.kind, touch.why, touch.undo, caller)
    if touch not in TOUCHES:
        TOUCHES.append(touch)


def set_entry(
    target: str,
    mapping: MutableMapping[str, Any],
    key: str,
    value: Any,
    *,
    why: str,
    undo: str,
) -> None:
    """``mapping[key] = value``, recorded as ``target[key]``."""
    mapping[key] = value
    _record(HostTouch(f"{target}[{key}]", "entry", why, undo))


def append_name(target: str, names: list, name: str, *, why: str, undo: str) -> None:
    """Append ``name`` to a host list of choices unless present."""
    if name not in names:
        names.append(name)
    _record(HostTouch(f"{target}[{name}]", "entry", why, undo))


def set_attribute(target: str, owner: Any, name: str, value: Any, *, why: str, undo: str) -> None:
    """``setattr(owner, name, value)`` for a process-wide attribute the host reads (``sys.excepthook``)."""
    setattr(owner, name, value)
    _record(HostTouch(target, "entry", why, undo))


def prepend_path(directory: str, *, label: str, why: str, undo: str) -> None:
    """Insert ``directory`` at the front of ``sys.path`` unless present; recorded as ``sys.path[label]``.

    ``label`` names the directory independently of where the plugin is installed.
    """
    if directory not in sys.path:
        sys.path.insert(0, directory)
    _record(HostTouch(f"sys.path[{label}]", "entry", why, undo))


def hook(target: str, fn: Callable, hook_type: str, *, why: str, undo: str) -> None:
    """Register ``fn`` on ``target`` with the host's HookRegistry.

    ``hook_type`` is the HookType name: "BEFORE", "AFTER", "AROUND", "REPLACE".
    """
    from sglang.srt.plugins.hook_registry import HookRegistry, HookType

    HookRegistry.register(target, fn, HookType[hook_type])
    _record(HostTouch(target, hook_type, why, undo))
