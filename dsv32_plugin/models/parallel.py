"""The sharding seam: which host groups the model's layers use, and which layouts the shapes allow.

==================================  =========================  ================================
piece                               group                      what a rank holds
==================================  =========================  ================================
q_a / kv_a projections, indexer     replicated                 everything
q_b_proj, kv_b_proj, o_proj          attention TP               heads / attn_tp heads
routed experts                      MoE EP x MoE TP            experts / ep, inter / moe_tp
shared expert, dense MLP            TP (replicated when the    inter / tp
                                    host runs them fully DP)
embedding, LM head                  vocab parallel             vocab / tp (attention TP under
                                                               DP attention)
==================================  =========================  ================================

with ``attn_tp = tp / attn_dp / attn_cp`` and ``moe_tp = tp / ep / moe_dp``
(the host's widths, ``runtime_context.parallel_widths_of``).
"""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

# The per-layer sizes of DeepSeek-V3.2's config.json (all three releases), and its FP8 format.
RELEASE_SHAPES = {
    "hidden_size": 7168, "num_attention_heads": 128, "num_key_value_heads": 128, "q_lora_rank": 1536,
    "kv_lora_rank": 512, "qk_nope_head_dim": 128, "qk_rope_head_dim": 64, "v_head_dim": 128,
    "index_n_heads": 64, "index_head_dim": 128, "index_topk": 2048, "n_routed_experts": 256,
    "num_experts_per_tok": 8, "n_group": 8, "topk_group": 4, "n_shared_experts": 1,
    "moe_intermediate_size": 2048, "intermediate_size": 18432,
}
RELEASE_FP8 = {"weight_block_size": [128, 128]}


def release_config() -> SimpleNamespace:
    """What ``layout_problems`` reads of the released checkpoint's config (FP8 block weights)."""
    return SimpleNamespace(**RELEASE_SHAPES, quantization_config=RELEASE_FP8)


def attn_tp_size() -> int:
    from sglang.srt.runtime_context import get_parallel

    return get_parallel().attn_tp_size


def dense_mlp_group() -> str:
    """The dense MLP's linear group: replicated when the host keeps dense FFNs fully data parallel."""
    from sglang.srt.layers.layer_boundary import is_dense_ffn_fully_dp

    return "replicated" if is_dense_ffn_fully_dp() else "tp"


def layout_problems(hf_config: Any, widths: dict, tp_size: int, ep_size: int, device: str) -> list[str]:
    """Why this model cannot run with these parallel widths (empty: it can).

    ``widths``: the host's derived widths (``attn_tp_size``, ``moe_tp_size``).
    Each problem names the flag and the numbers.
    """
    problems = []
    heads, attn_tp = hf_config.num_attention_heads, widths["attn_tp_size"]
    if heads % attn_tp:
        problems.append(
            f"{heads} attention heads do not split over {attn_tp} attention-TP ranks "
            f"(--tp {tp_size} / DP attention / CP); choose --tp (or --tp / --dp) dividing {heads}"
        )
    experts = hf_config.n_routed_experts
    if experts % ep_size:
        problems.append(f"{experts} routed experts do not split over --ep {ep_size}; choose --ep dividing {experts}")
    moe_tp, inter = widths["moe_tp_size"], hf_config.moe_intermediate_size
    if inter % moe_tp:
        problems.append(
            f"moe_intermediate_size {inter} does not split over {moe_tp} MoE-TP ranks (--tp {tp_size} / --ep {ep_size})"
        )
    if hf_config.intermediate_size % tp_size:
        problems.append(f"intermediate_size {hf_config.intermediate_size} does not split over --tp {tp_size}")
    block = fp8_block(hf_config) if device == "cuda" else None
    if block and not problems:
        problems += _fp8_block_problems(hf_config, widths, tp_size, block)
    if device == "cpu" and ep_size > 1:
        # The host's CPU MoE path (fused_moe_native) indexes with the -1 ids
        # that experts of other EP ranks get, so EP cannot run there.
        problems.append(f"--ep {ep_size} needs a GPU (the host's CPU MoE has no expert parallelism); use --ep 1 on CPU")
    return problems


def fp8_block(hf_config: Any) -> int | None:
    """The checkpoint's FP8 block edge (128 for DeepSeek), or None if it is not block-quantised."""
    quant = getattr(hf_config, "quantization_config", None) or {}
    size = quant.get("weight_block_size") if isinstance(quant, dict) else None
    return int(size[0]) if size else None


def _fp8_block_problems(hf_config: Any, widths: dict, tp_size: int, block: int) -> list[str]:
    """Shards that would cut an FP8 128x128 block (the host's FP8 methods refuse them while building)."""
    local_heads = hf_config.num_attention_heads // widths["attn_tp_size"]
    shards = {
        "MoE expert width (moe_intermediate_size / MoE-TP ranks)":
            hf_config.moe_intermediate_size // widths["moe_tp_size"],
        "shared-expert width (moe_intermediate_size * n_shared_experts / --tp)":
            hf_config.moe_intermediate_size * hf_config.n_shared_experts // tp_size,
        "dense-MLP width (intermediate_size / --tp)": hf_config.intermediate_size // tp_size,
    }
    if widths["attn_tp_size"] > 1:
        shards["o_proj input (local heads * v_head_dim)"] = local_heads * hf_config.v_head_dim
        shards["q_b_proj output (local heads * qk head dim)"] = local_heads * (
            hf_config.qk_nope_head_dim + hf_config.qk_rope_head_dim)
    return [
        f"FP8 {block}x{block} blocks: {what} = {size} is not a multiple of {block}; use a smaller --tp (or --ep)"
        for what, size in shards.items() if size % block
    ]
