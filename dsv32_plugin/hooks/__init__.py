"""Host touches, one module per concern, and nothing else.

Each module has an ``install()`` called by ``dsv32_plugin.plugin.register``.
Every touch is made through ``dsv32_plugin.hooks.ledger`` from its entry in
``dsv32_plugin.host.touches`` (target, why, undo, remove-when), so that it is
recorded; docs/hooks.md is written from that table and tests/test_ledger.py
checks that register() makes exactly its touches. What the hooks decide
(is this V3.2, which layouts are refused) is ``dsv32_plugin.policy``'s.
"""
