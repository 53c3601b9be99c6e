"""Command-line tools (console script ``dsv32-plugin``; also ``python -m dsv32_plugin.cli``).

Importing them is cheap: no torch, no sglang.
"""
