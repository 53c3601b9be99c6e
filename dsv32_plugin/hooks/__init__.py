"""Host touches, one module per concern.

Each module has an ``install()`` called by ``dsv32_plugin.plugin.register``.
Every touch is made through ``dsv32_plugin.hooks.ledger`` so that it is
recorded; docs/hooks.md is the human-readable ledger (target, why, how to undo)
and tests/test_ledger.py checks that the two agree.
"""
