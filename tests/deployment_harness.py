"""Resolve GPU launch commands the way a GPU machine with a full sglang install would, on this CPU.

``resolve_commands(jobs, workdir)`` runs one child process (plugins loaded once, as ``launch_server``
loads them) that, for each job ``{"argv": [...], "hardware": "h200", "env": {...}}``:

* pretends the hardware: ``torch.cuda`` answers with the GPU's compute capability, name, memory and the
  node's GPU count (``dsv32_plugin.cli.deployments.HARDWARE``), and the GPU libraries a full install has
  and the plugin checks for (``flash_mla``; sgl-kernel's FA3 on sm90) are present;
* finds the Hugging Face model ids of the DeepSeek-V3.2 family in an offline hub cache holding their
  config.json (real shapes and quantization; no weights), so a command keeps its ``--model-path``;
* parses the argv with sglang's own parser (``ServerArgs.add_cli_args``), builds the record and runs the
  host's resolution (``resolve_once``) with the plugin's hooks (a job with ``"resolve": False`` stops
  after parsing);
* reports either ``{"error": "<Type>: <message>"}`` or, for every flag the argv gives, its parsed and its
  resolved value, a few resolved fields, and the modules of the classes the host would build: model,
  MTP draft, attention backend, tool-call and reasoning detectors, DSA kernels.

``assert_plugin_serves`` is the check both the cookbook and the launch-command tests make of a result.
Nothing is launched: model construction, weights and kernels are out of scope here.
"""

from __future__ import annotations

import functools
import json
import os
import pathlib
import subprocess
import sys

HUB_SNAPSHOT = "0" * 40

# The published DeepSeek-V3.2 shapes (config.json of deepseek-ai/DeepSeek-V3.2, -Exp and -Speciale).
REAL_SHAPES = {
    "first_k_dense_replace": 3, "hidden_size": 7168, "index_head_dim": 128, "index_n_heads": 64,
    "index_topk": 2048, "intermediate_size": 18432, "kv_lora_rank": 512, "moe_intermediate_size": 2048,
    "n_group": 8, "n_routed_experts": 256, "num_attention_heads": 128, "num_experts_per_tok": 8,
    "num_hidden_layers": 61, "num_key_value_heads": 128, "q_lora_rank": 1536, "qk_nope_head_dim": 128,
    "qk_rope_head_dim": 64, "topk_group": 4, "v_head_dim": 128, "vocab_size": 129280,
}
# ModelOpt's NVFP4 export of the same model (nvidia/DeepSeek-V3.2-NVFP4).
NVFP4_QUANTIZATION = {"quant_method": "modelopt", "quant_algo": "NVFP4", "group_size": 16,
                      "kv_cache_quant_algo": None, "exclude_modules": ["lm_head"]}
# Hub id -> (tiny-config variant, quantization_config or None for the FP8 block config).
HUB_MODELS = {
    "deepseek-ai/DeepSeek-V3.2": ("v32", None),
    "deepseek-ai/DeepSeek-V3.2-Exp": ("v32-exp", None),
    "deepseek-ai/DeepSeek-V3.2-Speciale": ("speciale", None),
    "nvidia/DeepSeek-V3.2-NVFP4": ("v32", NVFP4_QUANTIZATION),
}
REPORTED_FIELDS = ("attention_backend", "dsa_prefill_backend", "dsa_decode_backend", "kv_cache_dtype",
                   "tp_size", "dp_size", "attn_dp_size", "ep_size", "pp_size", "attn_cp_size",
                   "enable_prefill_cp", "cp_strategy", "speculative_algorithm", "quantization",
                   "tool_call_parser", "reasoning_parser", "disaggregation_mode")


def write_hub(cache: pathlib.Path) -> None:
    """An offline Hugging Face hub cache holding only the config.json of each ``HUB_MODELS`` id."""
    from dsv32_plugin.testing.tiny_config import make_config

    for model_id, (variant, quantization) in HUB_MODELS.items():
        repo = cache / ("models--" + model_id.replace("/", "--"))
        snapshot = repo / "snapshots" / HUB_SNAPSHOT
        snapshot.mkdir(parents=True, exist_ok=True)
        (repo / "refs").mkdir(exist_ok=True)
        (repo / "refs" / "main").write_text(HUB_SNAPSHOT)
        config = make_config(variant, REAL_SHAPES["vocab_size"], fp8=True) | REAL_SHAPES
        config.pop("dsv32_tiny_variant")
        if quantization is not None:
            config["quantization_config"] = quantization
        (snapshot / "config.json").write_text(json.dumps(config, indent=2))


PLUGIN_CLASSES = {
    "model": "dsv32_plugin.models.deepseek_v32",
    "draft": "dsv32_plugin.models.deepseek_v32_mtp",
    "attention": "dsv32_plugin.hooks.attention",
    "dsa_prefill": "dsv32_plugin.attention.dispatch",
    "dsa_decode": "dsv32_plugin.attention.dispatch",
    "tool_parser": "dsv32_plugin.parsers.",
    "reasoning_parser": "dsv32_plugin.parsers.reasoning",
}


# (field, value as given) -> the same value as resolution spells it
SPELLINGS = {("kv_cache_dtype", "bf16"): "bfloat16"}


def assert_plugin_serves(command: str, result: dict) -> None:
    """The command resolved, every class the host would build is the plugin's, every flag kept its value.

    Kept means the resolved field equals the parsed one, except where sglang 0.5.23 itself moves a value:
    ``--dp N --enable-dp-attention`` becomes attention-DP width N (``dp_size`` 1, the deprecated flag
    false), the cookbook's ``--collect-tokens-histogram`` is what ``--enable-metrics`` does, and a value
    may come back in the host's own spelling (``SPELLINGS``).
    """
    assert "error" not in result, (command, result)
    for role, module in result["classes"].items():
        assert module.startswith(PLUGIN_CLASSES[role]), (command, role, module)
    parsed, fields = result["parsed"], result["resolved"]
    assert ("draft" in result["classes"]) == bool(parsed.get("speculative_algorithm")), command
    for dest, value in parsed.items():
        if dest == "enable_dp_attention":
            assert fields["attn_dp_size"] == parsed["dp_size"] and fields["dp_size"] == 1, command
        elif dest == "dp_size" and parsed.get("enable_dp_attention"):
            continue
        elif dest == "collect_tokens_histogram":
            assert fields["enable_metrics"] is True, command
        else:
            assert fields[dest] == SPELLINGS.get((dest, value), value), (command, dest, value, fields[dest])
    if parsed.get("enable_prefill_cp"):
        assert fields["attn_cp_size"] == fields["tp_size"] // fields["attn_dp_size"] > 1, command


def resolve_commands(jobs: list[dict], workdir: pathlib.Path, timeout: float = 900) -> list[dict]:
    """Results of ``jobs`` (see the module docstring), from one child process run in ``workdir``."""
    write_hub(workdir / "hub")
    (workdir / "jobs.json").write_text(json.dumps(jobs))
    cleared = ("TRITON_INTERPRET", "SGLANG_USE_CPU_ENGINE", "SGLANG_PLUGINS")
    env = {k: v for k, v in os.environ.items() if k not in cleared} | {
        "HF_HUB_CACHE": str(workdir / "hub"), "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    done = subprocess.run([sys.executable, __file__, "jobs.json"], cwd=workdir, env=env,
                          capture_output=True, text=True, timeout=timeout)
    assert done.returncode == 0, done.stderr[-4000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


# -- the child process ------------------------------------------------------------------------------


def _pretend_gpus(hardware_id: str) -> None:
    """Make this process look like one node of ``hardware_id`` GPUs with a full sglang install."""
    import importlib.machinery
    import types

    import torch

    from dsv32_plugin.cli.deployments import HARDWARE

    gpu = HARDWARE[hardware_id]
    total = gpu.memory_gb << 30
    torch.cuda.is_available = lambda: True
    torch.cuda.device_count = lambda: gpu.gpus_per_node
    torch.cuda.get_device_capability = lambda device=None: gpu.capability
    torch.cuda.get_device_name = lambda device=None: gpu.name
    torch.cuda.get_device_properties = lambda device=None: types.SimpleNamespace(
        name=gpu.name, total_memory=total, major=gpu.capability[0], minor=gpu.capability[1],
        multi_processor_count=132)
    torch.cuda.mem_get_info = lambda device=None: (total - (2 << 30), total)
    flash_mla = types.ModuleType("flash_mla")
    flash_mla.__spec__ = importlib.machinery.ModuleSpec("flash_mla", None)
    fa3 = types.ModuleType("sgl_kernel.flash_attn")
    fa3.is_fa3_supported = lambda device=None: gpu.capability[0] == 9
    sys.modules.update({"flash_mla": flash_mla, "sgl_kernel.flash_attn": fa3})
    from sglang.srt.utils import common

    for cached in (common.get_device, common.get_device_count):
        cached.cache_clear()


def _jsonable(value):
    return value if isinstance(value, (str, int, float, bool, type(None))) else repr(value)


def _given_dests(parser, argv: list[str]) -> list[str]:
    """Fields the argv sets, by argparse's own matching (aliases, and prefixes such as ``--dp``)."""
    dests = []
    for arg in argv:
        if arg.startswith("--"):
            matched = parser._parse_optional(arg)  # (action, option string, explicit value) on Python 3.11
            if matched and matched[0] is not None:
                dests.append(matched[0].dest)
    return list(dict.fromkeys(dests))


def _module_of(obj) -> str:
    return getattr(obj, "__module__", "") or ""


def _classes(record) -> dict:
    from sglang.srt.arg_groups.overrides import model_config_of, resolution_result
    from sglang.srt.function_call.function_call_parser import FunctionCallParser
    from sglang.srt.layers.attention.attention_registry import ATTENTION_BACKENDS
    from sglang.srt.models.registry import ModelRegistry
    from sglang.srt.parser.reasoning_parser import ReasoningParser

    from dsv32_plugin.attention.dispatch import BACKENDS
    from dsv32_plugin.policy import is_v32

    hf_config = model_config_of(record).hf_config
    classes = {"model": _module_of(ModelRegistry.models[hf_config.architectures[0]]),
               "attention": _module_of(ATTENTION_BACKENDS[resolution_result(record, "attention_backend")])}
    if resolution_result(record, "speculative_algorithm"):
        # The host rewrites a V3.2 draft's arch to this key; the plugin's entry builds its MTP for V3.2 configs.
        draft = _module_of(ModelRegistry.models["DeepseekV3ForCausalLMNextN"])
        plugins = draft == "dsv32_plugin.hooks.models" and is_v32(hf_config)
        classes["draft"] = "dsv32_plugin.models.deepseek_v32_mtp" if plugins else draft
    for phase in ("prefill", "decode"):
        name = resolution_result(record, f"dsa_{phase}_backend")
        classes[f"dsa_{phase}"] = "dsv32_plugin.attention.dispatch" if name in BACKENDS else f"host: {name}"
    tool_parser = resolution_result(record, "tool_call_parser")
    if tool_parser:
        classes["tool_parser"] = _module_of(FunctionCallParser.ToolCallParserEnum[tool_parser])
    reasoning = resolution_result(record, "reasoning_parser")
    if reasoning:
        classes["reasoning_parser"] = _module_of(ReasoningParser.DetectorMap[reasoning])
    return classes


@functools.cache
def _parser():
    """sglang's parser with the plugin's flags, built once (argparse keeps no state between parses)."""
    import argparse

    from sglang.srt.server_args import ServerArgs

    parser = argparse.ArgumentParser(prog="sglang.launch_server", exit_on_error=False)
    ServerArgs.add_cli_args(parser)
    return parser


def _resolve(job: dict) -> dict:
    import contextlib
    import io

    from sglang.srt.arg_groups.overrides import resolution_result
    from sglang.srt.server_args import ServerArgs

    os.environ.update(job.get("env", {}))
    parser = _parser()
    usage_error = io.StringIO()
    try:
        with contextlib.redirect_stderr(usage_error):  # argparse prints its message, then exits
            namespace = parser.parse_args(job["argv"])
        if not job.get("resolve", True):
            return {"parsed": {dest: _jsonable(getattr(namespace, dest)) for dest in _given_dests(parser, job["argv"])}}
        record = ServerArgs.from_cli_args(namespace)
        record.resolve_once()
    except (Exception, SystemExit) as exc:
        return {"error": f"{type(exc).__name__}: {exc} {usage_error.getvalue().strip()}"}
    finally:
        for name in job.get("env", {}):
            os.environ.pop(name, None)
    given = _given_dests(parser, job["argv"])
    return {
        "parsed": {dest: _jsonable(getattr(namespace, dest)) for dest in given},
        "resolved": {dest: _jsonable(resolution_result(record, dest)) for dest in (*given, *REPORTED_FIELDS)},
        "classes": _classes(record),
    }


def _main(jobs_file: str) -> None:
    from sglang.srt.plugins import load_plugins

    load_plugins()  # on this CPU: the plugin installs its CPU sgl_kernel stand-in, as on any GPU-less machine
    results = []
    hardware = None
    for job in json.loads(pathlib.Path(jobs_file).read_text()):
        if job["hardware"] != hardware:
            hardware = job["hardware"]
            _pretend_gpus(hardware)
        results.append(_resolve(job))
    print(json.dumps(results))


if __name__ == "__main__":
    _main(sys.argv[1])
