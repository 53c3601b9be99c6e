"""What dsv32-plugin serves, and the one-line refusals of what it does not: the start-up policy.

One home for the rules the launcher's hooks, the scheduler's KV pool and draft backends, and the
``dsv32-plugin launch-command`` generator must agree on:

* what a DeepSeek-V3.2 checkpoint is (``is_v32``) and the released checkpoints' shapes;
* which checkpoint quantizations the model loads;
* which server-argument combinations it refuses (HiSparse, chunk sizes, DSA pool features, draft top-k);
* context-parallel modes and layouts (``CP_MODES``, ``cp_problems``);
* which parallel layouts the shapes allow (``layout_problems``).

Each check returns the problems it finds, each naming the flag, the numbers and the way out;
``refuse`` raises them as one ``StartupRefusal``. The DSA kernel choice and its refusals live with
the kernel table in ``attention/dispatch.py``. No sglang or torch import: the CLI reads this too.
"""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any, Iterable, Optional

from dsv32_plugin.refusal import StartupRefusal

# -- what DeepSeek-V3.2 is ------------------------------------------------------------------------------

TARGET_ARCH = "DeepseekV32ForCausalLM"
# The key the host rewrites every DeepSeek V3-family draft's arch to (configs/model_config.py).
DRAFT_ARCH = "DeepseekV3ForCausalLMNextN"


def is_v32(hf_config: Any) -> bool:
    """A DeepSeek-V3.2 config, the one test every hook uses to decide whether it acts.

    ``index_topk`` set, and the arch is ``DeepseekV32ForCausalLM`` or the NextN key the host
    rewrites a V3.2 draft's arch to.
    """
    archs = getattr(hf_config, "architectures", None) or []
    return getattr(hf_config, "index_topk", None) is not None and (TARGET_ARCH in archs or DRAFT_ARCH in archs)


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


# -- checkpoints ------------------------------------------------------------------------------------------

# Checkpoint quantizations (sglang's ModelConfig.quantization) the plugin's DeepSeek-V3.2 model loads:
# unquantised, and DeepSeek's FP8 with 128x128 block scales. ModelOpt NVFP4 (modelopt_fp4) and the rest
# would reach a model that builds its layers without them.
LOADABLE_QUANTIZATIONS = (None, "fp8")


def quantization_problems(quantization: Optional[str]) -> list[str]:
    if quantization in LOADABLE_QUANTIZATIONS:
        return []
    return [
        f"--quantization {quantization}: dsv32-plugin's DeepSeek-V3.2 loads bf16 and FP8 block-scaled "
        "checkpoints only; serve this checkpoint with sglang's in-tree DeepSeek-V3.2 (prefix the command "
        "with SGLANG_PLUGINS=none), or use the FP8 checkpoint deepseek-ai/DeepSeek-V3.2"
    ]


# -- server arguments -------------------------------------------------------------------------------------

def server_args_problems(*, enable_hisparse: bool, quantization: Optional[str], chunked_prefill_size: Optional[int],
                         page_size: Optional[int]) -> list[str]:
    """What the launcher refuses for a V3.2 checkpoint before choosing its DSA kernels."""
    problems = []
    if enable_hisparse:
        problems.append("--enable-hisparse is not supported by the plugin's DSA backend; leave it out")
    problems += quantization_problems(quantization)
    chunk, page = chunked_prefill_size, page_size
    if chunk is not None and chunk > 0 and page and chunk % page:
        problems.append(f"--chunked-prefill-size {chunk} must be a multiple of the DSA page size {page} "
                        f"(e.g. {max(page, chunk // page * page)})")
    return problems


def kv_pool_problems(*, page_size: int, dsa_page_size: int, index_kpool: int, index_kpool_compress: bool,
                     dcp_replicated: bool) -> list[str]:
    """What the plugin's DSA KV pool cannot hold (the host forces the page size for DSA checkpoints)."""
    problems = []
    if page_size != dsa_page_size:
        problems.append(f"the DSA pool needs --page-size {dsa_page_size}, got {page_size}")
    if index_kpool != 1 or index_kpool_compress or dcp_replicated:
        problems.append("the plugin's DSA pool supports neither index kpool nor DCP; leave those flags out")
    return problems


def draft_problems(*, eagle_topk: int) -> list[str]:
    """What the V3.2 MTP draft's multi-step decode refuses."""
    if eagle_topk == 1:
        return []
    return [f"the DeepSeek-V3.2 MTP draft needs --speculative-eagle-topk 1, got {eagle_topk}"]


# -- context parallelism ----------------------------------------------------------------------------------

# The cookbook's --nsa-prefill-cp-mode values and the host's --cp-strategy values they mean.
CP_MODES = {"in-seq-split": "zigzag", "round-robin-split": "interleave"}
# The host's attention-backend names that reach the plugin's DSA backend for V3.2.
DSA_BACKEND_NAMES = ("dsa", "nsa")


def cp_problems(*, cp_strategy: Optional[str], cp_size: int, attn_dp_size: int, tp_size: int,
                prefill_backend: str) -> list[str]:
    """Why V3.2 cannot run this context-parallel layout (``--enable-prefill-cp``); empty: it can."""
    problems = []
    if cp_strategy is None:
        problems.append("--enable-prefill-cp needs --cp-strategy interleave (round-robin-split) or zigzag "
                        "(in-seq-split)")
    cp, dp, tp = cp_size, attn_dp_size, tp_size
    if cp > 1 and tp % (cp * dp):
        problems.append(f"the context-parallel width {cp} (--attn-cp-size, or --tp / --attn-dp-size) times "
                        f"--attn-dp-size {dp} does not divide the --tp {tp} ranks; choose --attn-cp-size dividing "
                        f"{tp // dp if tp % dp == 0 else tp}")
    if prefill_backend not in DSA_BACKEND_NAMES:
        problems.append(f"--enable-prefill-cp: the {prefill_backend} prefill attention backend cannot run "
                        "DeepSeek-V3.2's context-parallel prefill; use --attention-backend dsa (dsv32-plugin's "
                        "DSA backend, every --dsa-prefill-backend)")
    return problems


# -- parallel layouts -------------------------------------------------------------------------------------

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


def fp8_block(hf_config: Any) -> Optional[int]:
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


# -- refusing ---------------------------------------------------------------------------------------------

def refuse(problems: Iterable[str]) -> None:
    """Raise the problems found, if any, as one ``StartupRefusal`` line."""
    problems = list(problems)
    if problems:
        raise StartupRefusal("; ".join(problems))
