"""A second tiny checkpoint, built by transformers itself: ``DeepseekV32Config`` + ``save_pretrained``.

Independent of ``dsv32_plugin.testing``'s writer (names, layouts and init come
from transformers 5.19). The config gets the original-checkpoint keys sglang
reads (``moe_layer_freq``, ``topk_method``, ``scoring_func``, ``ep_size``, a
YaRN ``rope_scaling``) and the tokenizer files are copied from the plugin's
tiny checkpoint. 16 indexer heads make exact score ties (all heads' ReLU at 0)
rare, so decode logprobs can be compared tightly.
"""

from __future__ import annotations

import json
import pathlib
import shutil

import torch

YARN = {"type": "yarn", "rope_type": "yarn", "factor": 40.0, "original_max_position_embeddings": 4096,
        "beta_fast": 32.0, "beta_slow": 1.0, "mscale": 1.0, "mscale_all_dim": 1.0, "rope_theta": 10000.0}


def make_hf_built_checkpoint(directory: pathlib.Path, tokenizer_dir: pathlib.Path, vocab_size: int) -> pathlib.Path:
    from transformers import AutoModelForCausalLM, DeepseekV32Config

    config = DeepseekV32Config(
        vocab_size=vocab_size, hidden_size=64, intermediate_size=96, moe_intermediate_size=32,
        num_hidden_layers=2, num_attention_heads=2, num_key_value_heads=2, n_shared_experts=1,
        n_routed_experts=8, n_group=4, topk_group=2, num_experts_per_tok=2, routed_scaling_factor=2.5,
        kv_lora_rank=128, q_lora_rank=64, qk_rope_head_dim=16, qk_nope_head_dim=16, v_head_dim=16,
        first_k_dense_replace=1, mlp_layer_types=["dense", "sparse"], index_topk=8, index_head_dim=32,
        index_n_heads=16, initializer_range=0.3, rope_parameters=dict(YARN), max_position_embeddings=163840,
    )
    torch.manual_seed(7)
    model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    with torch.no_grad():  # random (not zero) router bias and norms, as a trained model has
        for name, param in model.named_parameters():
            if "norm" in name:
                param.copy_(1 + 0.1 * torch.randn_like(param))
        for layer in model.model.layers:
            bias = getattr(getattr(layer.mlp, "gate", None), "e_score_correction_bias", None)
            if bias is not None:
                bias.copy_(0.05 * torch.randn_like(bias))
    model.save_pretrained(directory)
    raw = json.loads((directory / "config.json").read_text())
    raw.update(moe_layer_freq=1, topk_method="noaux_tc", scoring_func="sigmoid", ep_size=1,
               num_nextn_predict_layers=0, rope_scaling=dict(YARN), rope_theta=10000.0,
               architectures=["DeepseekV32ForCausalLM"])
    (directory / "config.json").write_text(json.dumps(raw, indent=2))
    for name in ("tokenizer.json", "tokenizer_config.json"):
        shutil.copy(tokenizer_dir / name, directory / name)
    return directory
