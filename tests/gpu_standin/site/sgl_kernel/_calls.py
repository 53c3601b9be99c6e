"""Which stand-in names the host used, and the stubs for names it only imports.

With ``DSV32_SGL_KERNEL_LOG=DIR`` every process appends one line per event to
``DIR/sgl_kernel-<pid>.log``, once per (event, name): ``called NAME`` (an
implemented op ran), ``unsupported NAME`` (a stub was called, then raised) and
``missing NAME`` (the host asked for a name the stand-in does not define).
The GPU serving harness (tests/gpu) reads these files to report which ops the
V3.2 serving path really used on the device.
"""

from __future__ import annotations

import functools
import os

_seen: set[tuple[str, str]] = set()


def record(event: str, name: str) -> None:
    if (event, name) in _seen:
        return
    _seen.add((event, name))
    directory = os.environ.get("DSV32_SGL_KERNEL_LOG")
    if directory:
        with open(os.path.join(directory, f"sgl_kernel-{os.getpid()}.log"), "a") as log:
            log.write(f"{event} {name}\n")


def recorded(name: str):
    """Decorator: record the first call of the op exported as ``sgl_kernel.<name>``."""

    def wrap(fn):
        @functools.wraps(fn)
        def op(*args, **kwargs):
            if ("called", name) not in _seen:
                record("called", name)
            return fn(*args, **kwargs)

        return op

    return wrap


def unsupported(name: str):
    """A stub for a name the host imports but the V3.2 serving path should never call."""

    def op(*args, **kwargs):
        record("unsupported", name)
        raise NotImplementedError(
            f"sgl_kernel.{name} is only a name in dsv32-plugin's test-only GPU stand-in (tests/gpu_standin): "
            "the host imports it, the DeepSeek-V3.2 serving path was not expected to call it; "
            "implement it there (torch, with a reference test) if it is needed"
        )

    op.__name__ = op.__qualname__ = name.rsplit(".", 1)[-1]
    return op


def qualified(module_name: str, name: str) -> str:
    """``name`` relative to the package: ``rmsnorm``, ``kvcacheio.transfer_kv_direct``."""
    _package, *submodule = module_name.split(".", 1)
    return ".".join([*submodule, name])


def stubs(module_name: str, names: tuple[str, ...]) -> dict:
    """``{name: unsupported stub}`` for a module's import-only names."""
    return {name: unsupported(qualified(module_name, name)) for name in names}


def missing(module_name: str, name: str) -> AttributeError:
    """Module ``__getattr__`` body: record the request, then fail as a plain missing name would
    (``from sgl_kernel import X`` turns it into the ImportError the host's fallbacks expect)."""
    if not name.startswith("__"):
        record("missing", qualified(module_name, name))
    return AttributeError(f"module {module_name!r} (dsv32-plugin's GPU stand-in) has no attribute {name!r}")
