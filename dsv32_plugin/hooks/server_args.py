"""Server arguments: the DSA backend flags and their resolution for DeepSeek-V3.2.

Four hooks, all recorded in the ledger (docs/hooks.md):

1. ``ServerArgs.add_cli_args`` (AFTER): ``--dsa-prefill-backend`` /
   ``--dsa-decode-backend`` also accept the plugin's choices
   (``dispatch.CHOICES``); ``--nsa-prefill-backend`` / ``--nsa-decode-backend``
   (the seed's spellings, dropped in 0.5.23) are aliases that store into the
   same ServerArgs fields, and so are the DeepSeek-V3.2 cookbook's context-parallel
   spellings ``--enable-nsa-prefill-context-parallel`` (= ``--enable-prefill-cp``)
   and ``--nsa-prefill-cp-mode in-seq-split|round-robin-split`` (= ``--cp-strategy
   zigzag|interleave``), and its ``--cuda-graph-max-bs`` (split in 0.5.23; it
   meant the decode graphs' batch size: ``--cuda-graph-max-bs-decode``, while the
   bare spelling is now an ambiguous prefix); its ``--collect-tokens-histogram``
   is accepted and stores nothing (0.5.23 collects those histograms whenever
   ``--enable-metrics`` is on). The values therefore ride on the record that the
   launcher pickles to every child process; no ``from_cli_args`` hook needed.
2. ``model_hook.handle_model_specific_adjustments`` (AROUND), on CPU for a
   checkpoint the plugin serves only: with no attention backend flag, declare
   ``dsa`` (the host has already declared ``intel_amx`` for every CPU model,
   which would hide the DSA default); and let the host's unconditional
   ``torch.cuda.get_device_capability()`` in its DSA branch answer (0, 0)
   instead of failing without a driver (its value is unused there).
3. ``overrides._dsa_kv_cache_dtype_default`` (AROUND), CPU only: keep
   ``auto`` (the model dtype: bf16, or float32 for ``--dtype float32`` parity
   runs); accept bf16 and fp8_e4m3; refuse the rest with the choices.
4. ``overrides._dsa_split_backend_resolution`` (AROUND), any device: defaults
   and validation come from ``dispatch`` (the host's version asks CUDA for the
   capability and rejects ``triton`` outside ROCm); also refuses a chunked
   prefill size that is not a multiple of the 64-token DSA page, and a
   checkpoint quantization the model cannot load, and HiSparse (``dsv32_plugin.policy``).

Checkpoints the plugin does not serve (other DSA families such as GLM-5,
non-DSA models) go through the host's code unchanged. The host itself forces
page size 64 for DSA checkpoints on CPU and CUDA (``_deepseek_family_overrides``).
"""

from __future__ import annotations

import argparse
import logging
from typing import Any

from dsv32_plugin.hooks import ledger
from dsv32_plugin.hooks.models import serves_v32
from dsv32_plugin.hooks.replaced import replaced
from dsv32_plugin.host import touches
from dsv32_plugin.policy import CP_MODES, refuse, server_args_problems

logger = logging.getLogger("dsv32_plugin")

_BACKEND_FLAGS = {
    "dsa_prefill_backend": "--nsa-prefill-backend",
    "dsa_decode_backend": "--nsa-decode-backend",
}
_SOURCE = "dsv32_plugin.hooks.server_args"


# -- 1. flags ---------------------------------------------------------------


def _extend_flags(_result: None, parser: argparse.ArgumentParser) -> None:
    _extend_backend_flags(parser)
    _add_cookbook_aliases(parser)


def _extend_backend_flags(parser: argparse.ArgumentParser) -> None:
    from dsv32_plugin.attention.dispatch import BACKENDS, HOST_ALIASES

    for dest, alias in _BACKEND_FLAGS.items():
        action = next(a for a in parser._actions if a.dest == dest)
        ours = list(BACKENDS) + (list(HOST_ALIASES) if dest == "dsa_prefill_backend" else [])
        action.choices = list(action.choices) + [c for c in ours if c not in action.choices]
        action.help = f"{action.help or ''} dsv32-plugin backends: {', '.join(BACKENDS)} (docs/attention.md)."
        parser.add_argument(
            alias,
            dest=dest,
            choices=action.choices,
            default=argparse.SUPPRESS,
            help=f"Alias of {action.option_strings[0]} (spelling of sglang before 0.5.23).",
        )


class _CpModeAlias(argparse.Action):
    """``--nsa-prefill-cp-mode MODE`` stores the ``--cp-strategy`` value that MODE names."""

    def __call__(self, parser, namespace, value, option_string=None):
        setattr(namespace, self.dest, CP_MODES[value])


def _add_cookbook_aliases(parser: argparse.ArgumentParser) -> None:
    """The DeepSeek-V3.2 cookbook's spellings of flags that sglang 0.5.23 renamed."""
    parser.add_argument(
        "--enable-nsa-prefill-context-parallel",
        dest="enable_prefill_cp",
        action="store_true",
        default=argparse.SUPPRESS,
        help="Alias of --enable-prefill-cp (DeepSeek-V3.2 cookbook spelling).",
    )
    parser.add_argument(
        "--nsa-prefill-cp-mode",
        dest="cp_strategy",
        action=_CpModeAlias,
        choices=list(CP_MODES),
        default=argparse.SUPPRESS,
        help="Alias of --cp-strategy (DeepSeek-V3.2 cookbook spelling): "
        + ", ".join(f"{mode} = {strategy}" for mode, strategy in CP_MODES.items()) + ".",
    )
    parser.add_argument(
        "--collect-tokens-histogram",
        action="store_true",
        default=argparse.SUPPRESS,
        help="Accepted for the DeepSeek-V3.2 cookbook's commands (sglang before 0.5.23): 0.5.23 always "
        "collects the prompt and generation token histograms when --enable-metrics is on.",
    )
    parser.add_argument(
        "--cuda-graph-max-bs",
        dest="cuda_graph_max_bs_decode",
        type=int,
        default=argparse.SUPPRESS,
        help="Alias of --cuda-graph-max-bs-decode (spelling of sglang before 0.5.23, DeepSeek-V3.2 cookbook).",
    )


# -- 2. CPU: attention backend and the capability probe ---------------------


def _no_cuda_capability(device=None) -> tuple[int, int]:
    """What the CPU has for a CUDA compute capability: none, reported as (0, 0)."""
    return (0, 0)


def _around_model_specific_adjustments(original, server_args: Any) -> None:
    import torch
    from sglang.srt.arg_groups.overrides import declare_resolution, resolving_view

    if resolving_view(server_args).device != "cpu" or not serves_v32(server_args):
        return original(server_args)
    # The record's own fields are the operator's input (declarations live beside them).
    fields = ("attention_backend", "prefill_attention_backend", "decode_attention_backend")
    if all(getattr(server_args, field) is None for field in fields):
        declare_resolution(server_args, _SOURCE, attention_backend="dsa")
        logger.info("dsv32-plugin: DeepSeek-V3.2 on CPU -> attention backend dsa")
    with replaced(torch.cuda, "get_device_capability", _no_cuda_capability):
        return original(server_args)


# -- 3. CPU: KV-cache dtype -------------------------------------------------


def _around_kv_cache_dtype_default(original, view: Any) -> dict:
    if view.device != "cpu" or not serves_v32(view):
        return original(view)
    from dsv32_plugin.attention.dispatch import kv_cache_format

    kv_cache_format(view.kv_cache_dtype)  # ValueError naming the choices
    return {"kv_cache_dtype": "bfloat16"} if view.kv_cache_dtype == "bf16" else {}


# -- 4. backends from the dispatch table ------------------------------------


def _device_of(view: Any):
    import torch

    if view.device == "cuda" or (view.device is None and torch.cuda.is_available()):
        return torch.device("cuda")
    return torch.device(view.device or "cpu")


def _around_split_backend_resolution(original, view: Any) -> dict:
    if not serves_v32(view):
        return original(view)
    from sglang.srt.arg_groups.overrides import model_config_of

    from dsv32_plugin.attention.dispatch import mla_head_dims, select_kernels

    refuse(server_args_problems(
        enable_hisparse=view.enable_hisparse, quantization=model_config_of(view).quantization,
        chunked_prefill_size=view.chunked_prefill_size, page_size=view.page_size,
    ))
    kernels = select_kernels(
        view.dsa_prefill_backend, view.dsa_decode_backend, device=_device_of(view), kv_cache_dtype=view.kv_cache_dtype,
        head_dims=mla_head_dims(model_config_of(view).hf_config),
    )
    logger.info(
        "dsv32-plugin: DSA backends prefill=%s decode=%s (%s KV cache)",
        kernels.prefill_name,
        kernels.decode_name,
        view.kv_cache_dtype,
    )
    declared = {}
    if view.dsa_prefill_backend is None:
        declared["dsa_prefill_backend"] = kernels.prefill_name
    if view.dsa_decode_backend is None:
        declared["dsa_decode_backend"] = kernels.decode_name
    return declared


def install() -> None:
    ledger.hook(touches.CLI_ARGS, _extend_flags)
    ledger.hook(touches.MODEL_SPECIFIC_ADJUSTMENTS, _around_model_specific_adjustments)
    ledger.hook(touches.KV_CACHE_DTYPE_DEFAULT, _around_kv_cache_dtype_default)
    ledger.hook(touches.SPLIT_BACKEND_RESOLUTION, _around_split_backend_resolution)
