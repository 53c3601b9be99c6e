"""The model's MoE block (host TopK + host FusedMoE + shared expert) equals the float32 reference loop.

Built in a fresh process with a published CPU server config (the host's MoE
layers read it at construction), 8 experts in 4 groups (2 kept, 2 per token),
random weights loaded through the model's own loader, random inputs of odd
token counts; the reference (``moe_reference.py``) routes and loops over
experts in float32.
"""

from __future__ import annotations

import pytest

from pyrun import last_json, run_python

from dsv32_plugin.testing.server import free_port

SCRIPT = """
import json, sys, torch
sys.path.insert(0, {tests!r})
import sglang.srt.plugins as plugins
plugins.load_plugins()
from sglang.srt import runtime_context as rc
from sglang.srt.configs.model_config import ModelConfig
from sglang.srt.server_args import ServerArgs
from torch import nn
from dsv32_plugin.models.weights import load_params
from dsv32_plugin.testing import make_tiny_checkpoint
from models.moe_reference import moe_reference

ckpt = make_tiny_checkpoint("ckpt", overrides={{"n_routed_experts": 8, "n_group": 4, "topk_group": 2}})
args = ServerArgs(model_path=str(ckpt), device="cpu", skip_tokenizer_init=True, dtype="float32")
rc.publish(args, role="scheduler", ranks=rc.SpawnRanks(world_rank=0))
from sglang.srt.distributed import init_distributed_environment, initialize_model_parallel
init_distributed_environment(world_size=1, rank=0, local_rank=0, backend="gloo",
                             distributed_init_method="tcp://127.0.0.1:{port}")
initialize_model_parallel(backend="gloo")
config = ModelConfig.from_server_args(args).hf_config
torch.set_default_dtype(torch.float32)
from dsv32_plugin.models.moe import DeepseekMoE

holder = nn.Module()
holder.mlp = DeepseekMoE(config, layer_id=1)
gen = torch.Generator().manual_seed(0)
h, inter, experts = config.hidden_size, config.moe_intermediate_size, config.n_routed_experts
tensors = {{"gate.weight": torch.randn(experts, h, generator=gen) / h**0.5,
           "gate.e_score_correction_bias": 0.1 * torch.randn(experts, generator=gen)}}
for p in [f"experts.{{e}}." for e in range(experts)] + ["shared_experts."]:
    tensors[p + "gate_proj.weight"] = torch.randn(inter, h, generator=gen) / h**0.5
    tensors[p + "up_proj.weight"] = torch.randn(inter, h, generator=gen) / h**0.5
    tensors[p + "down_proj.weight"] = torch.randn(h, inter, generator=gen) / inter**0.5
loaded = load_params(holder, [("mlp." + k, v) for k, v in tensors.items()], lambda n: n, dequantize=False)
errors = {{}}
for tokens in {token_counts!r}:
    x = torch.randn(tokens, h, generator=gen)
    with torch.no_grad():
        ours = holder.mlp(x.clone())
    ref = moe_reference(x, tensors, config)
    errors[tokens] = ((ours - ref).abs().max() / ref.abs().max()).item() if tokens else float(ours.numel())
print(json.dumps({{"errors": errors, "loaded": sorted(loaded)}}))
"""

TOKEN_COUNTS = [1, 7, 61, 0]


def test_host_topk_and_fused_moe_equal_the_reference_loop(tmp_path):
    import pathlib

    tests = str(pathlib.Path(__file__).resolve().parents[1])
    script = SCRIPT.format(tests=tests, token_counts=TOKEN_COUNTS, port=free_port())
    result = last_json(run_python(script, tmp_path,
                                  SGLANG_USE_CPU_ENGINE="1"))
    assert result["loaded"] == sorted(["mlp.gate.weight", "mlp.gate.e_score_correction_bias", "mlp.experts.w13_weight",
                                       "mlp.experts.w2_weight", "mlp.shared_experts.gate_up_proj.weight",
                                       "mlp.shared_experts.down_proj.weight"])
    for tokens, err in result["errors"].items():
        assert err < 1e-5, (tokens, err)
