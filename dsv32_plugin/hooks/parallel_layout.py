"""Start-up check of the parallel layout against DeepSeek-V3.2's shapes, in the launcher.

After the host's argument resolution (``run_resolution_pipeline``, AFTER), for
a checkpoint the plugin serves: the widths the host derived (attention TP,
MoE EP/TP) must divide the heads, experts and FFN sizes, and EP needs a GPU.
Failing here names the flags in the launcher, before any rank starts; the
same mistake found while building the model would surface as a scheduler
traceback instead.
"""

from __future__ import annotations

from typing import Any

from dsv32_plugin.hooks import ledger
from dsv32_plugin.host import touches
from dsv32_plugin.policy import is_v32, layout_problems, refuse


def check_layout(_result: None, server_args: Any) -> None:
    from sglang.srt.arg_groups.overrides import model_config_of, resolving_view
    from sglang.srt.runtime_context import parallel_widths_of

    view = resolving_view(server_args)
    if str(view.model_path).lower() in ("none", "dummy"):
        return
    hf_config = model_config_of(view).hf_config
    if not is_v32(hf_config):
        return
    refuse(layout_problems(hf_config, parallel_widths_of(view), view.tp_size, view.ep_size, view.device or "cuda"))


def install() -> None:
    ledger.hook(touches.RESOLUTION_PIPELINE, check_layout)
