"""Load the test-only GPU ``sgl_kernel`` stand-in (``site/sgl_kernel``) under a private module name.

Tests must not make it ``sgl_kernel`` in pytest's process: other tests check which
``sgl_kernel`` the plugin's CPU fallbacks find there.
"""

from __future__ import annotations

import importlib.util
import pathlib
import sys

SITE = pathlib.Path(__file__).resolve().parent / "site"
NAME = "dsv32_gpu_standin_sgl_kernel"


def load_standin():
    if NAME in sys.modules:
        return sys.modules[NAME]
    package = SITE / "sgl_kernel"
    spec = importlib.util.spec_from_file_location(NAME, package / "__init__.py",
                                                  submodule_search_locations=[str(package)])
    module = importlib.util.module_from_spec(spec)
    sys.modules[NAME] = module
    spec.loader.exec_module(module)
    return module
