"""Context-parallel prefill for DeepSeek-V3.2: both host strategies, refusals, the CPU runner.

The host's CP machinery (``--enable-prefill-cp --cp-strategy interleave|zigzag``,
the width ``attn_cp_size = tp / attn_dp`` its DeepSeek override sets) shards the
tokens and the layer boundaries move them; the plugin's DSA backend does the
attention (``attention/context_parallel.py``). Three hooks, V3.2 only (docs/hooks.md):

1. ``parallel_hook.handle_context_parallelism`` (AROUND): refuse, in one line
   naming the flags, a CP width that does not divide the ranks, a prefill
   attention backend other than the plugin's DSA backend, and a missing
   ``--cp-strategy``; and let ``zigzag`` through the host's by-name refusal of
   V3.2 zigzag (its own DSA backend has no zigzag path; the plugin's has).
2. ``overrides.collect_model_override_declarations`` (AROUND): for zigzag the
   host's DeepSeek override forces ``moe_a2a_backend=deepep``, ``ep_size=tp`` and
   ``moe_dense_tp_size=1`` (what its own zigzag path needs); the plugin's MoE runs
   CP batches on the boundary's gathered rows and needs none of them, and DeepEP
   cannot run on a CPU, so those three leave V3.2's declarations and the flags
   given (or their defaults) stand.
3. ``EagerRunner._execute_extend_cp`` (AROUND), CPU only: the runner asks
   ``torch.cuda.current_stream()`` for the last hidden-state gather, which neither
   strategy uses; without CUDA it answers None for that call.
"""

from __future__ import annotations

import logging
from typing import Any

from dsv32_plugin.hooks import ledger
from dsv32_plugin.hooks.models import serves_v32
from dsv32_plugin.hooks.replaced import cuda_answered_without_gpu
from dsv32_plugin.host import touches
from dsv32_plugin.policy import cp_problems, is_v32, refuse

_SOURCE = "dsv32_plugin.hooks.context_parallel"
# What the host's DeepSeek override forces for zigzag (model_overrides/deepseek_v2.py).
ZIGZAG_FORCED = ("moe_a2a_backend", "ep_size", "moe_dense_tp_size")

logger = logging.getLogger("dsv32_plugin")


# -- 1. refusals, and zigzag for V3.2 ----------------------------------------


def _around_context_parallelism(original, server_args: Any) -> None:
    from sglang.srt.arg_groups.model_override_base import attention_backends_of
    from sglang.srt.arg_groups.overrides import declare_resolution, resolved_view, resolving_view

    cfg = resolving_view(server_args)
    if not cfg.enable_prefill_cp or not serves_v32(server_args):
        return original(server_args)
    view = resolved_view(server_args)
    refuse(cp_problems(cp_strategy=view.cp_strategy, cp_size=view.attn_cp_size, attn_dp_size=view.attn_dp_size,
                       tp_size=view.tp_size, prefill_backend=attention_backends_of(view)[0]))
    if cfg.cp_strategy != "zigzag":
        return original(server_args)
    # The host refuses V3.2 + zigzag by name; it reads the strategy nowhere else
    # in this step but to build its per-process strategy, rebuilt below.
    declare_resolution(server_args, _SOURCE, cp_strategy="interleave")
    try:
        original(server_args)
    finally:
        declare_resolution(server_args, _SOURCE, cp_strategy="zigzag")
    from sglang.srt.layers.cp.base import init_cp_strategy

    init_cp_strategy(enable_prefill_cp=True, cp_size=resolved_view(server_args).attn_cp_size, cp_strategy="zigzag")


# -- 2. zigzag without DeepEP --------------------------------------------------


def _around_model_declarations(original, architecture: str, server_args: Any, hf_config: Any):
    from sglang.srt.arg_groups.overrides import resolving_view

    declarations = original(architecture, server_args, hf_config)
    cfg = resolving_view(server_args)
    if not (cfg.enable_prefill_cp and cfg.cp_strategy == "zigzag" and is_v32(hf_config)):
        return declarations
    kept, dropped = [], {}
    for source, declared in declarations:
        if source.endswith("_deepseek_family_overrides"):
            dropped.update({k: v for k, v in declared.items() if k in ZIGZAG_FORCED})
            declared = {k: v for k, v in declared.items() if k not in ZIGZAG_FORCED}
        if declared:
            kept.append((source, declared))
    if dropped:
        logger.info("dsv32-plugin: zigzag CP for DeepSeek-V3.2 runs on the plugin's DSA backend; not forcing %s "
                    "(the host's zigzag requirements; its warning above does not apply)",
                    ", ".join(f"{k}={v}" for k, v in dropped.items()))
    return kept


# -- 3. CPU: the runner's CUDA stream ------------------------------------------


def _no_stream():
    return None


_around_cp_runner = cuda_answered_without_gpu("current_stream", _no_stream)


def install() -> None:
    ledger.hook(touches.CONTEXT_PARALLELISM, _around_context_parallelism)
    ledger.hook(touches.MODEL_OVERRIDE_DECLARATIONS, _around_model_declarations)
    ledger.hook(touches.CP_EXTEND_RUNNER, _around_cp_runner)
