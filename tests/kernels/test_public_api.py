"""The lazily exported kernel and reference names stay functions.

A public name must not equal its module's name: importing that submodule
rebinds the package attribute to the module (this broke the backend's second
lookup once).
"""

import importlib

import pytest

from dsv32_plugin import kernels
from dsv32_plugin.kernels import reference


@pytest.mark.parametrize("package", [kernels, reference], ids=["kernels", "reference"])
def test_exports_resolve_to_functions_after_their_modules_are_imported(package):
    for module in set(package._EXPORTS.values()):  # modules of the op folders, relative to dsv32_plugin.kernels
        importlib.import_module(f"{kernels.__name__}.{module}")
    for name in package.__all__:
        assert callable(getattr(package, name)), name
        assert name not in package._EXPORTS.values(), f"{name} shadows its module"
