"""``sgl_kernel`` for GPU-less machines, put on ``sys.path`` by ``dsv32_plugin.hooks.cpu_fallbacks``.

This directory is not a package: it holds only this top-level module, so that
sglang's spawned processes (which inherit the parent's ``sys.path``) can import
``sgl_kernel`` before their own plugin registration runs. See ``dsv32_plugin.sgl_kernel_cpu``.
"""

from dsv32_plugin.sgl_kernel_cpu import *  # noqa: F401,F403
from dsv32_plugin.sgl_kernel_cpu import __all__  # noqa: F401

DSV32_PLUGIN_STAND_IN = True
