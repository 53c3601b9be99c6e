"""DeepSeek-V3.2 (``DeepseekV32ForCausalLM``) for sglang: MLA + DSA indexer, dense then MoE layers.

    h = embed(ids)
    for each layer: h += attn(RMSNorm(h)); h += ffn(RMSNorm(h))
        (ffn: SwiGLU for layers < first_k_dense_replace, DeepSeek MoE after)
    logits = lm_head(RMSNorm(h))

Attention runs through the active attention backend (the plugin's DSA
backend); the checkpoint's MTP layer (``model.layers.{num_hidden_layers}``)
belongs to the draft model ``deepseek_v32_mtp``.
"""

from __future__ import annotations

from typing import Iterable

import torch
from sglang.srt.layers.layernorm import RMSNorm
from sglang.srt.layers.logits_processor import LogitsProcessor
from sglang.srt.layers.vocab_parallel_embedding import ParallelLMHead, VocabParallelEmbedding
from torch import nn

from dsv32_plugin.models.mla import DSAMLAttention
from dsv32_plugin.models.moe import DeepseekMoE, SwiGLUMLP
from dsv32_plugin.models.weights import load_params


def is_moe_layer(config, layer_id: int) -> bool:
    freq = getattr(config, "moe_layer_freq", 1) or 1
    return layer_id >= config.first_k_dense_replace and layer_id % freq == 0


def model_device() -> str:
    from sglang.srt.runtime_context import get_device

    return get_device().device


class DeepseekV32DecoderLayer(nn.Module):
    def __init__(self, config, layer_id: int, quant_config=None, prefix: str = "", device: str = "cpu",
                 moe: bool | None = None):
        super().__init__()
        self.input_layernorm = RMSNorm(config.hidden_size, eps=config.rms_norm_eps)
        self.post_attention_layernorm = RMSNorm(config.hidden_size, eps=config.rms_norm_eps)
        self.self_attn = DSAMLAttention(config, layer_id, quant_config, f"{prefix}.self_attn", device)
        if is_moe_layer(config, layer_id) if moe is None else moe:
            self.mlp = DeepseekMoE(config, quant_config, f"{prefix}.mlp")
        else:
            self.mlp = SwiGLUMLP(config.hidden_size, config.intermediate_size, quant_config, f"{prefix}.mlp")

    def forward(self, positions, hidden, forward_batch):
        hidden = hidden + self.self_attn(positions, self.input_layernorm(hidden), forward_batch)
        return hidden + self.mlp(self.post_attention_layernorm(hidden))


class DeepseekV32Model(nn.Module):
    def __init__(self, config, quant_config=None, prefix: str = "model"):
        super().__init__()
        device = model_device()
        self.embed_tokens = VocabParallelEmbedding(config.vocab_size, config.hidden_size)
        self.layers = nn.ModuleList(
            DeepseekV32DecoderLayer(config, i, quant_config, f"{prefix}.layers.{i}", device)
            for i in range(config.num_hidden_layers)
        )
        self.norm = RMSNorm(config.hidden_size, eps=config.rms_norm_eps)

    def forward(self, input_ids, positions, forward_batch, input_embeds=None):
        """Final-normed hidden states ``[T, hidden]``."""
        hidden = self.embed_tokens(input_ids) if input_embeds is None else input_embeds
        for layer in self.layers:
            hidden = layer(positions, hidden, forward_batch)
        return self.norm(hidden)


def require_one_rank() -> None:
    """Refuse tensor/pipeline/expert parallelism at start-up: the layers are replicated, not sharded."""
    from sglang.srt.distributed.parallel_state import (
        get_moe_expert_parallel_world_size,
        get_pipeline_model_parallel_world_size,
        get_tensor_model_parallel_world_size,
    )

    sizes = {
        "--tp": get_tensor_model_parallel_world_size(),
        "--pp": get_pipeline_model_parallel_world_size(),
        "--ep": get_moe_expert_parallel_world_size(),
    }
    sharded = {flag: size for flag, size in sizes.items() if size > 1}
    if sharded:
        raise NotImplementedError(
            f"dsv32-plugin's DeepseekV32ForCausalLM runs on one rank only so far (got {sharded}); "
            "serve with --tp 1, or without the plugin (SGLANG_PLUGINS set to a list without 'dsv32')"
        )


class SharedEmbedHead:
    """EAGLE's hand-over of ``model.embed_tokens`` and ``lm_head`` between target and draft."""

    def get_embed_and_head(self):
        return self.model.embed_tokens.weight, self.lm_head.weight

    def set_embed_and_head(self, embed, head):
        del self.model.embed_tokens.weight
        del self.lm_head.weight
        self.model.embed_tokens.weight = embed
        self.lm_head.weight = head


class DeepseekV32ForCausalLM(SharedEmbedHead, nn.Module):
    def __init__(self, config, quant_config=None, prefix: str = ""):
        super().__init__()
        require_one_rank()
        # FP8 block weights are dequantised while loading (models/weights.py), so
        # the layers are built unquantised whatever quantization_config says.
        self.config = config
        self.model = DeepseekV32Model(config, None)
        self.lm_head = ParallelLMHead(config.vocab_size, config.hidden_size)
        self.logits_processor = LogitsProcessor(config)
        self.capture_aux_hidden_states = False

    @torch.no_grad()
    def forward(self, input_ids, positions, forward_batch, input_embeds=None, **_):
        hidden = self.model(input_ids, positions, forward_batch, input_embeds)
        return self.logits_processor(input_ids, hidden, self.lm_head, forward_batch)

    def load_weights(self, weights: Iterable[tuple[str, torch.Tensor]]) -> set[str]:
        num_layers = self.config.num_hidden_layers

        def rename(name: str):
            if name.startswith("model.layers."):
                layer_id = int(name.split(".")[2])
                if layer_id >= num_layers:  # the MTP layer: the draft model loads it
                    return None
            if "rotary_emb.inv_freq" in name:
                return None
            return name

        loaded = load_params(self, weights, rename)
        for layer in self.model.layers:
            layer.self_attn.split_kv_b()
        return loaded


EntryClass = [DeepseekV32ForCausalLM]
