"""Prefill CUDA graphs off for DeepSeek-V3.2, by itself, with one log line.

sglang 0.5.23 captures prefill by default on CUDA ("breakable" graphs: the
model body is captured at padded token counts and only ``RadixAttention`` runs
eagerly between graph segments). The plugin's model now does all of DSA inside
its ``RadixAttention`` call (the indexer's projections, static in shape, before
it), so that eager break is where the data-dependent work (ragged metadata,
top-k selection) happens. Still off because it has never run: nothing has shown
the host's breakable prefill graph replaying V3.2's extend (its eager attention
scope narrows the host's own kwargs, not the indexer's, which the backend
narrows itself; the metadata must be built outside the capture). After the host's own prefill-graph compatibility pass
(``cuda_graph_hook.apply_cuda_graph_compatibility``, which every path that
enables prefill graphs runs), a V3.2 checkpoint gets the prefill phase
disabled; decode, target-verify and draft graphs stay on. An explicit
``--cuda-graph-backend-prefill`` is overridden the same way (the log says so).
"""

from __future__ import annotations

import logging
from typing import Any

from dsv32_plugin.hooks import ledger
from dsv32_plugin.hooks.models import serves_v32
from dsv32_plugin.host import touches

logger = logging.getLogger("dsv32_plugin")

_SOURCE = "dsv32_plugin.hooks.prefill_graphs"


def prefill_graphs_off_for_v32(original, server_args: Any) -> None:
    original(server_args)
    from sglang.srt.arg_groups.overrides import declare_resolution, resolving_view
    from sglang.srt.model_executor.cuda_graph_config import Backend, Phase, with_phase

    config = resolving_view(server_args).cuda_graph_config
    backend = config.prefill.backend
    if backend == Backend.DISABLED or not serves_v32(server_args):
        return
    off = with_phase(config, Phase.PREFILL, backend=Backend.DISABLED)
    declare_resolution(server_args, _SOURCE, cuda_graph_config=off)
    explicit = (Phase.PREFILL, "backend") in getattr(server_args, "_cuda_graph_config_locked", set())
    logger.info(
        "dsv32-plugin: prefill CUDA graphs off for DeepSeek-V3.2 (were %s%s): the DSA indexer's prefill runs "
        "eagerly; decode and speculative graphs stay on",
        backend, ", set explicitly" if explicit else "",
    )


def install() -> None:
    ledger.hook(touches.PREFILL_GRAPHS, prefill_graphs_off_for_v32)
