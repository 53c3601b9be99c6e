"""Weight bytes per rank of the full DeepSeek-V3.2 (671B, FP8, 61 layers + MTP) under the cookbook's layouts.

    python weight_memory.py            one JSON object per layout
    python weight_memory.py --markdown the table docs/model.md carries

The plugin's own layers are built on the meta device (no memory, no GPU) with
the host's ``Fp8Config`` (128x128 blocks), one rank's view of each layout set
through ``get_parallel().override``: one dense layer, one MoE layer, the MTP
layer (its decoder, ``eh_proj`` and norms; embedding and head are shared),
embedding, final norm and LM head, plus the absorbed ``w_kc``/``w_vc``
each attention layer keeps in bf16. Totals: 3 dense + 58 MoE layers + MTP.
Stage boundaries hold no weights and need real process groups to bind, so the
layer stack is left unbound (an exception leaves ``layer_stack`` before it binds).

KV room on an H200 (139 GiB usable, as torch reports it): 90% of it for weights
and caches (sglang's static fraction on large GPUs is about that), the rest for
activations and graphs; per token the cache holds, per layer, the MLA latent
(656 B FP8 or 1152 B bf16) and the indexer key (128 FP8 + 4 B scale).
"""

from __future__ import annotations

import json
import sys

GIB = 2**30
H200_USABLE = 139 * GIB
STATIC_FRACTION = 0.9
LAYERS, DENSE_LAYERS = 61, 3
KV_BYTES_PER_LAYER = {"fp8_e4m3": 656 + 132, "bf16": 1152 + 132}

VOCAB = 129280

# flags -> this rank's parallel widths (rank 0 of each group)
LAYOUTS = {
    "--tp 8": dict(tp_size=8, attn_tp_size=8, attn_dp_size=1, moe_ep_size=1, moe_tp_size=8),
    "--tp 8 --ep 8": dict(tp_size=8, attn_tp_size=8, attn_dp_size=1, moe_ep_size=8, moe_tp_size=1),
    "--tp 8 --dp 8 --enable-dp-attention --ep 8": dict(tp_size=8, attn_tp_size=1, attn_dp_size=8, moe_ep_size=8,
                                                       moe_tp_size=1, enable_dp_attention=True),
    "--tp 16 (2 nodes)": dict(tp_size=16, attn_tp_size=16, attn_dp_size=1, moe_ep_size=1, moe_tp_size=16),
}
RANKS = dict(tp_rank=0, attn_tp_rank=0, attn_dp_rank=0, moe_ep_rank=0, moe_tp_rank=0)


def _nbytes(*modules) -> int:
    total = 0
    for module in modules:
        total += sum(p.numel() * p.element_size() for p in module.parameters())
        total += sum(b.numel() * b.element_size() for b in module.buffers())
    return total


class _Built(Exception):
    """Leaves ``layer_stack`` before it binds the stages (which needs process groups)."""


def rank_bytes(config, widths: dict) -> dict:
    import torch
    from sglang.srt.layers.layer_boundary import layer_stack
    from sglang.srt.layers.layernorm import RMSNorm
    from sglang.srt.layers.linear import ReplicatedLinear
    from sglang.srt.layers.quantization.fp8 import Fp8Config
    from sglang.srt.layers.vocab_parallel_embedding import (
        ParallelLMHead,
        VocabParallelEmbedding,
        get_embedding_tp_kwargs,
    )
    from sglang.srt.runtime_context import get_parallel

    from dsv32_plugin.models.deepseek_v32 import DeepseekV32DecoderLayer

    fp8 = Fp8Config(is_checkpoint_fp8_serialized=True, weight_block_size=[128, 128])
    h = config.hidden_size
    with get_parallel().override(**widths, **RANKS), torch.device("meta"):
        try:
            with layer_stack():
                dense = DeepseekV32DecoderLayer(config, 0, fp8, "model.layers.0", "cpu")
                moe = DeepseekV32DecoderLayer(config, DENSE_LAYERS, fp8, f"model.layers.{DENSE_LAYERS}", "cpu")
                # The MTP layer's decoder (DeepseekV32MTPModel binds its own stack when built whole).
                mtp_decoder = DeepseekV32DecoderLayer(config, 0, fp8, "model.decoder", "cpu", is_nextn=True)
                raise _Built
        except _Built:
            pass
        # The MTP layer's own pieces besides the decoder (embedding and head are the target's).
        mtp_rest = (ReplicatedLinear(2 * h, h, bias=False), RMSNorm(h), RMSNorm(h), RMSNorm(h))
        ends = (
            VocabParallelEmbedding(config.vocab_size, h, **get_embedding_tp_kwargs()),
            ParallelLMHead(config.vocab_size, h, use_attn_tp_group=get_parallel().enable_dp_lm_head),
            RMSNorm(h),
        )
        dense.self_attn.split_kv_b(torch.bfloat16)
    absorbed = _nbytes_of_tensors(dense.self_attn.w_kc, dense.self_attn.w_vc)
    per_dense, per_moe = _nbytes(dense) + absorbed, _nbytes(moe) + absorbed
    mtp_bytes = _nbytes(mtp_decoder, *mtp_rest) + absorbed
    total = DENSE_LAYERS * per_dense + (LAYERS - DENSE_LAYERS) * per_moe + mtp_bytes + _nbytes(*ends)
    return {"dense_layer": per_dense, "moe_layer": per_moe, "mtp": mtp_bytes, "total": total}


def _nbytes_of_tensors(*tensors) -> int:
    return sum(t.numel() * t.element_size() for t in tensors)


def kv_tokens(weights: int, kv_dtype: str) -> int:
    """Cache tokens per rank after the weights (MLA latent + indexer key, every layer)."""
    room = STATIC_FRACTION * H200_USABLE - weights
    return max(0, int(room // (LAYERS * KV_BYTES_PER_LAYER[kv_dtype])))


def measure() -> list[dict]:
    import torch
    from transformers import PretrainedConfig

    import sglang.srt.plugins as plugins
    from sglang.srt import runtime_context
    from sglang.srt.server_args import ServerArgs

    from dsv32_plugin.testing import make_tiny_checkpoint
    from dsv32_plugin.testing.real_width import REAL_WIDTH
    from dsv32_plugin.testing.tiny_config import make_config

    plugins.load_plugins()
    # The host's layers read the published server config while they are built.
    args = ServerArgs(model_path=str(make_tiny_checkpoint("tiny")), device="cpu", skip_tokenizer_init=True)
    runtime_context.publish(args, role="scheduler", ranks=runtime_context.SpawnRanks(world_rank=0))
    # The release's layer count and dense prefix over the per-layer sizes the real-width checkpoints use.
    full_size = {**REAL_WIDTH, "first_k_dense_replace": DENSE_LAYERS, "num_hidden_layers": LAYERS}
    config = PretrainedConfig(**make_config("v32", VOCAB, fp8=True, overrides=full_size))
    torch.set_default_dtype(torch.bfloat16)
    rows = []
    for flags, widths in LAYOUTS.items():
        sizes = rank_bytes(config, widths)
        rows.append({"layout": flags, **sizes, "kv_tokens_fp8": kv_tokens(sizes["total"], "fp8_e4m3"),
                     "kv_tokens_bf16": kv_tokens(sizes["total"], "bf16")})
    return rows


def markdown(rows: list[dict]) -> str:
    lines = [
        "| layout | weights / GPU | MoE layer | dense layer | MTP layer | KV tokens / GPU (FP8 cache) | (bf16 cache) |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| `{r['layout']}` | {r['total'] / GIB:.1f} GiB | {r['moe_layer'] / GIB:.2f} GiB | "
            f"{r['dense_layer'] / GIB:.2f} GiB | {r['mtp'] / GIB:.2f} GiB | {r['kv_tokens_fp8']:,} | "
            f"{r['kv_tokens_bf16']:,} |"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    result = measure()
    print(markdown(result) if "--markdown" in sys.argv else json.dumps(result))
