"""Import the host modules of the V3.2 CUDA serving path on a GPU-less machine, as if on an H200.

    python fake_cuda_imports.py            (with the stand-in's site directory first on PYTHONPATH)

``torch.cuda`` is made to report one sm90 device, so every ``if _is_cuda:`` branch of the host
takes its CUDA imports (nothing here allocates device memory). Prints one JSON line:
``{"failed": {module: error}, "sgl_kernel": file of the sgl_kernel imported}``; the stand-in's
``DSV32_SGL_KERNEL_LOG`` files list the names the host asked for and did not find.
"""

from __future__ import annotations

import importlib
import json
import types

import torch

# What the serving processes import: launcher, scheduler, model runner and graph runners, the
# layers our model is built from (norms, activations, linear/FP8, fused MoE, top-k, RoPE,
# logits, sampler), memory pools and radix cache, EAGLE workers, and the plugin itself.
MODULES = (
    "sglang.launch_server",
    "sglang.srt.entrypoints.engine",
    "sglang.srt.entrypoints.http_server",
    "sglang.srt.managers.scheduler",
    "sglang.srt.managers.tokenizer_manager",
    "sglang.srt.managers.detokenizer_manager",
    "sglang.srt.model_executor.model_runner",
    "sglang.srt.model_executor.runner.decode_cuda_graph_runner",
    "sglang.srt.model_executor.runner.prefill_cuda_graph_runner",
    "sglang.srt.model_executor.runner_backend_utils.weak_ref_tensor",
    "sglang.srt.model_executor.runner_backend_utils.breakable_cuda_graph.breakable_cuda_graph",
    "sglang.srt.layers.layernorm",
    "sglang.srt.layers.activation",
    "sglang.srt.layers.linear",
    "sglang.srt.layers.layer_boundary",
    "sglang.srt.layers.quantization.fp8",
    "sglang.srt.layers.quantization.fp8_utils",
    "sglang.srt.layers.moe.fused_moe_triton.layer",
    "sglang.srt.layers.moe.ep_moe.layer",
    "sglang.srt.layers.moe.moe_runner.triton",
    "sglang.srt.layers.moe.topk",
    "sglang.srt.layers.rotary_embedding",
    "sglang.srt.layers.logits_processor",
    "sglang.srt.layers.vocab_parallel_embedding",
    "sglang.srt.layers.sampler",
    "sglang.srt.layers.attention.dsa_backend",
    "sglang.srt.mem_cache.unified_radix_cache",
    "sglang.srt.mem_cache.memory_pool_host",
    "sglang.srt.distributed.device_communicators.custom_all_reduce",
    "sglang.srt.constrained.xgrammar_backend",
    "sglang.srt.speculative.eagle_worker_v2",
    "sglang.srt.speculative.eagle_draft_cuda_graph_runner",
    "sglang.srt.speculative.eagle_draft_extend_cuda_graph_runner",
    "sglang.srt.speculative.eagle_utils",
    "sglang.srt.speculative.draft_utils",
    "dsv32_plugin.models.deepseek_v32",
    "dsv32_plugin.models.deepseek_v32_mtp",
    "dsv32_plugin.attention.backend",
    "dsv32_plugin.attention.dispatch",
)


def pretend_h200() -> None:
    props = types.SimpleNamespace(name="NVIDIA H200", major=9, minor=0, total_memory=140 << 30,
                                  multi_processor_count=132, L2_cache_size=50 << 20, warp_size=32, gcnArchName="")
    torch.cuda.is_available = lambda: True
    torch.cuda.device_count = lambda: 1
    torch.cuda.current_device = lambda: 0
    torch.cuda.get_device_capability = lambda device=None: (9, 0)
    torch.cuda.get_device_name = lambda device=None: props.name
    torch.cuda.get_device_properties = lambda device=None: props


def main() -> None:
    pretend_h200()
    failed = {}
    for name in MODULES:
        try:
            importlib.import_module(name)
        except Exception as exc:
            failed[name] = f"{type(exc).__name__}: {exc}"[:500]
    import sgl_kernel

    print(json.dumps({"failed": failed, "sgl_kernel": sgl_kernel.__file__}))


if __name__ == "__main__":
    main()
