"""config.json for the tiny DeepSeek-V3.2 checkpoints.

Same keys as the real DeepSeek-V3.2 config.json (including the ones sglang reads
that a transformers-5 ``DeepseekV32Config`` would not write: ``moe_layer_freq``,
``topk_method``, ``scoring_func``, ``ep_size``, ``rope_scaling``), with small sizes:

=====================  ======  =========================================================
key                    value   why this value
=====================  ======  =========================================================
hidden_size            64      small
num_hidden_layers      3       layer 0 dense (first_k_dense_replace=1), layers 1-2 MoE
num_attention_heads    4
q_lora_rank            128     a multiple of 128: FP8 blocks of the fused q_a + kv_a
                               projection line up (as 1536 does in the real model)
kv_lora_rank           128     one 128-wide tile of the FP8 656-byte-style KV cache
qk_nope/rope, v dims   32      rope first in the indexer head (index_head_dim = 2 x rope)
index_n_heads          4
index_head_dim         64      not 128: tests must not rely on the real size
index_topk             16      prompts longer than 16 tokens take the sparse path
intermediate_size      128     multiples of 128 so merged gate/up FP8 blocks line up
moe_intermediate_size  128
n_routed_experts       4       n_group 2, topk_group 1, num_experts_per_tok 2
n_shared_experts       1
=====================  ======  =========================================================

``num_nextn_predict_layers = 1``: the MTP layer is ``model.layers.3``.
"""

from __future__ import annotations

VARIANTS = ("v32", "v32-exp", "speciale")

QUANTIZATION_CONFIG = {
    "activation_scheme": "dynamic",
    "fmt": "e4m3",
    "quant_method": "fp8",
    "scale_fmt": "ue8m0",
    "weight_block_size": [128, 128],
}


def make_config(variant: str, vocab_size: int, *, fp8: bool, overrides: dict | None = None) -> dict:
    """The config.json dict; ``variant`` is recorded as ``dsv32_tiny_variant``; ``overrides`` replace keys."""
    if variant not in VARIANTS:
        raise ValueError(f"unknown variant {variant!r}; choose one of {VARIANTS}")
    config = {
        "architectures": ["DeepseekV32ForCausalLM"],
        "model_type": "deepseek_v32",
        "dsv32_tiny_variant": variant,
        "attention_bias": False,
        "attention_dropout": 0.0,
        "bos_token_id": 0,
        "eos_token_id": 1,
        "ep_size": 1,
        "first_k_dense_replace": 1,
        "hidden_act": "silu",
        "hidden_size": 64,
        "index_head_dim": 64,
        "index_n_heads": 4,
        "index_topk": 16,
        "initializer_range": 0.02,
        "intermediate_size": 128,
        "kv_lora_rank": 128,
        "max_position_embeddings": 163840,
        "moe_intermediate_size": 128,
        "moe_layer_freq": 1,
        "n_group": 2,
        "n_routed_experts": 4,
        "n_shared_experts": 1,
        "norm_topk_prob": True,
        "num_attention_heads": 4,
        "num_experts_per_tok": 2,
        "num_hidden_layers": 3,
        "num_key_value_heads": 4,
        "num_nextn_predict_layers": 1,
        "q_lora_rank": 128,
        "qk_nope_head_dim": 32,
        "qk_rope_head_dim": 32,
        "rms_norm_eps": 1e-06,
        "rope_scaling": {
            "beta_fast": 32,
            "beta_slow": 1,
            "factor": 40,
            "mscale": 1.0,
            "mscale_all_dim": 1.0,
            "original_max_position_embeddings": 4096,
            "type": "yarn",
        },
        "rope_theta": 10000,
        "routed_scaling_factor": 2.5,
        "scoring_func": "sigmoid",
        "tie_word_embeddings": False,
        "topk_group": 1,
        "topk_method": "noaux_tc",
        "torch_dtype": "bfloat16",
        "use_cache": True,
        "v_head_dim": 32,
        "vocab_size": vocab_size,
    }
    unknown = set(overrides or ()) - set(config)
    if unknown:
        raise ValueError(f"unknown config keys {sorted(unknown)}")
    config.update(overrides or {})
    if fp8:
        config["quantization_config"] = dict(QUANTIZATION_CONFIG)
    return config
