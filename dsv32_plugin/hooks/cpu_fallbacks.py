"""What a GPU-less machine lacks for stock sglang's CPU engine: an ``sgl_kernel``.

sglang 0.5.23 with ``SGLANG_USE_CPU_ENGINE=1`` imports ``*_cpu`` ops from
``sgl_kernel`` at module import (memory pool, allocation, speculative decoding).
PyPI's ``sglang-kernel`` is CUDA-only: without a GPU it fails to load, and the
lean CI install does not have it at all. When CUDA is absent and ``import
sgl_kernel`` fails, ``install`` exposes ``dsv32_plugin.sgl_kernel_cpu`` as
``sgl_kernel``:

* ``sys.modules["sgl_kernel"]`` in this process, and
* ``sgl_kernel_cpu/shim`` first on ``sys.path``, so that processes the host spawns
  (scheduler, detokenizer), which inherit ``sys.path`` and import the host's
  modules while unpickling, *before* their own ``register()``, find it too.

With CUDA, or with an ``sgl_kernel`` that loads (a CPU build from source), it
touches nothing. ``SGLANG_USE_CPU_ENGINE=1`` itself is left to the user (README):
the host reads it at import time of modules already loaded before plugins run,
so setting it here would leave the process half CPU, half CUDA.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import pathlib
import sys

from dsv32_plugin.hooks import ledger
from dsv32_plugin.host import touches

logger = logging.getLogger("dsv32_plugin")

SHIM_DIR = pathlib.Path(__file__).resolve().parents[1] / "sgl_kernel_cpu" / "shim"


def install() -> None:
    import torch

    if torch.cuda.is_available():
        return
    if os.environ.get("SGLANG_USE_CPU_ENGINE") != "1":
        logger.info("dsv32-plugin: no CUDA device; set SGLANG_USE_CPU_ENGINE=1 to serve with sglang's CPU engine")
    module, reason = _importable_sgl_kernel()
    if module is not None and not _is_stand_in(module):
        return
    ledger.prepend_path(touches.SHIM_ON_PATH, str(SHIM_DIR))
    ledger.set_entry(touches.STAND_IN_MODULE, module or _load_shim())
    if reason:
        logger.info("dsv32-plugin: sgl_kernel unavailable (%s); using the plugin's torch CPU stand-in", reason)


def _is_stand_in(module) -> bool:
    return getattr(module, "DSV32_PLUGIN_STAND_IN", False)


def _importable_sgl_kernel():
    """(module, None) if ``import sgl_kernel`` works here (real or an inherited stand-in), else (None, why)."""
    try:
        import sgl_kernel
    except Exception as exc:  # ImportError, or OSError from a CUDA-only build's loader
        for name in [n for n in sys.modules if n.startswith("sgl_kernel.")]:
            del sys.modules[name]  # half-imported submodules of the failed real package
        return None, f"{type(exc).__name__}: {exc}"
    return sgl_kernel, None


def _load_shim():
    spec = importlib.util.spec_from_file_location("sgl_kernel", SHIM_DIR / "sgl_kernel.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
