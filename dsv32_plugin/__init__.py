"""dsv32-plugin: DeepSeek-V3.2 for stock sglang.

Importing this package is cheap (no torch, no sglang). The host calls
``register`` through the ``sglang.srt.plugins`` entry point in every process.
"""

__version__ = "0.1.0"


def register() -> None:
    """Entry point ``dsv32 = dsv32_plugin:register``; see ``dsv32_plugin.plugin``."""
    from dsv32_plugin.plugin import register as _register

    _register()
