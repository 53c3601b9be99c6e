"""Test-only sglang plugin of the GPU serving harness (tests/gpu/serving_driver.py).

sglang loads it in every server process when ``tests/gpu/site`` is on ``PYTHONPATH`` (its
dist-info declares a ``sglang.srt.plugins`` entry point), next to dsv32-plugin. Through the
host's ``HookRegistry`` it:

* replaces the dummy loader's weights of a DeepSeek-V3.2 model (``--load-format dummy``) by
  ``dsv32_plugin.testing.dummy_init`` (``DSV32_HARNESS_DRAFTABLE=1``: its draftable shape);
  other models keep the host's values;
* with ``DSV32_HARNESS_REPORT=DIR``, makes each process that loads a model keep
  ``DIR/report-<pid>.json`` up to date: per model (target / draft) the parameter dtypes and
  the float8 parameter names and the embedding's standard deviation, and the number of forward passes per
  ``role:forward_mode:graph|eager`` and of EAGLE draft graph executions -- the evidence
  that CUDA graphs really ran and FP8 weights stayed FP8.
"""

from __future__ import annotations

import collections
import json
import os

import torch

_report: dict = {"pid": os.getpid(), "models": [], "forward": collections.Counter(), "draft_graphs": collections.Counter()}

_DRAFT_GRAPH_RUNNERS = (
    "sglang.srt.speculative.eagle_draft_cuda_graph_runner.EAGLEDraftCudaGraphRunner",
    "sglang.srt.speculative.eagle_draft_extend_cuda_graph_runner.EAGLEDraftExtendCudaGraphRunner",
)


def _write_report() -> None:
    directory = os.environ.get("DSV32_HARNESS_REPORT")
    if not directory:
        return
    path = os.path.join(directory, f"report-{os.getpid()}.json")
    with open(path + ".tmp", "w") as out:
        json.dump(_report, out)
    os.replace(path + ".tmp", path)


def _is_v32(model) -> bool:
    return hasattr(getattr(model, "config", None), "index_topk")


def _dummy_weights(original, model, *args, **kwargs):
    if not _is_v32(model):
        return original(model, *args, **kwargs)
    from dsv32_plugin.testing.dummy_init import initialise

    initialise(model, draftable=os.environ.get("DSV32_HARNESS_DRAFTABLE") == "1")


def _after_load_model(result, runner, *args, **kwargs):
    dtypes = collections.Counter()
    float8, embed_std = [], None
    for name, param in runner.model.named_parameters():
        dtypes[str(param.dtype)] += 1
        if param.dtype == torch.float8_e4m3fn:
            float8.append(name)
        if name.endswith("embed_tokens.weight"):  # ~1 from dummy_init, ~6e-4 from the host's dummy values
            embed_std = param.float().std().item()
    _report["models"].append({
        "role": "draft" if getattr(runner, "is_draft_worker", False) else "target",
        "class": type(runner.model).__name__,
        "dtypes": dict(dtypes),
        "float8_params": float8,
        "embed_std": embed_std,
    })
    _write_report()


def _after_forward(result, runner, *args, **kwargs):
    batch = kwargs.get("forward_batch", args[0] if args else None)
    role = "draft" if getattr(runner, "is_draft_worker", False) else "target"
    mode = getattr(getattr(batch, "forward_mode", None), "name", "unknown")
    _report["forward"][f"{role}:{mode}:{'graph' if getattr(result, 'can_run_graph', False) else 'eager'}"] += 1
    _write_report()


def _counting(runner_class: str):
    name = runner_class.rsplit(".", 1)[-1]

    def after_execute(result, *args, **kwargs):
        _report["draft_graphs"][name] += 1
        _write_report()

    return after_execute


def register() -> None:
    from sglang.srt.plugins.hook_registry import HookRegistry, HookType

    HookRegistry.register("sglang.srt.model_loader.weight_utils.initialize_dummy_weights", _dummy_weights,
                          HookType.AROUND)
    if not os.environ.get("DSV32_HARNESS_REPORT"):
        return
    runner = "sglang.srt.model_executor.model_runner.ModelRunner"
    HookRegistry.register(f"{runner}.load_model", _after_load_model, HookType.AFTER)
    HookRegistry.register(f"{runner}.forward", _after_forward, HookType.AFTER)
    for runner_class in _DRAFT_GRAPH_RUNNERS:
        HookRegistry.register(f"{runner_class}.execute", _counting(runner_class), HookType.AFTER)
