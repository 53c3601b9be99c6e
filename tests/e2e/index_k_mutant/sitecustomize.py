"""Mutant for tests/e2e/test_pd_disaggregation.py: a decode server started with this folder first on
``PYTHONPATH`` is sent the latent KV rows but no indexer keys.

Python imports ``sitecustomize`` when it starts, in every process of the server (the spawned scheduler
inherits ``PYTHONPATH``). This one adds a step to the plugin's ``register()`` (importing only the
plugin's light top-level modules): ``withhold_index_k:install``.
"""

import dsv32_plugin.plugin as plugin

plugin.STEPS = (*plugin.STEPS, "withhold_index_k:install")
