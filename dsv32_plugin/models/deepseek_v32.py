"""DeepSeek-V3.2 (``DeepseekV32ForCausalLM``) for sglang: MLA + DSA indexer, dense then MoE layers.

    h = embed(ids)
    for each layer: h += attn(RMSNorm(h)); h += ffn(RMSNorm(h))
        (ffn: SwiGLU for layers < first_k_dense_replace, DeepSeek MoE after)
    logits = lm_head(RMSNorm(h))

The residual stream, the norms and every communication between the attention
and FFN stages (all-reduce, reduce-scatter, DP-attention gathers, pipeline
hand-over) are the host's stage boundaries (``layers/layer_boundary``): each
layer declares an attention stage and an FFN stage, and the host binds them
for the parallel layout in effect. Sharding of the layers themselves:
``models/parallel.py``. Attention runs through the active attention backend
(the plugin's DSA backend); the checkpoint's MTP layer
(``model.layers.{num_hidden_layers}``) belongs to the draft model
``deepseek_v32_mtp``.
"""

from __future__ import annotations

from typing import Iterable

import torch
from sglang.srt.layers.layer_boundary import append_stages, declare_attn, declare_ffn
from sglang.srt.layers.layer_boundary.residual import batch as residual_batch
from sglang.srt.layers.layernorm import RMSNorm
from sglang.srt.layers.logits_processor import LogitsProcessor
from sglang.srt.layers.utils import PPMissingLayer
from sglang.srt.layers.vocab_parallel_embedding import (
    ParallelLMHead,
    VocabParallelEmbedding,
    get_embedding_tp_kwargs,
)
from sglang.srt.runtime_context import get_parallel, get_spec
from sglang.srt.utils import make_pp_layers
from torch import nn

from dsv32_plugin.models.mla import DSAMLAttention
from dsv32_plugin.models.moe import DeepseekMoE, SwiGLUMLP
from dsv32_plugin.models.parallel import dense_mlp_group
from dsv32_plugin.models.weights import load_params, serving_quant_config


def is_moe_layer(config, layer_id: int, *, is_nextn: bool = False) -> bool:
    """MoE FFN: every MTP layer, and layer ids from ``first_k_dense_replace`` on (every ``moe_layer_freq``-th)."""
    freq = getattr(config, "moe_layer_freq", 1) or 1
    return is_nextn or (layer_id >= config.first_k_dense_replace and layer_id % freq == 0)


def model_device() -> str:
    from sglang.srt.runtime_context import get_device

    return get_device().device


class DeepseekV32DecoderLayer(nn.Module):
    def __init__(self, config, layer_id: int, quant_config=None, prefix: str = "", device: str = "cpu",
                 *, is_nextn: bool = False):
        super().__init__()
        self.self_attn = DSAMLAttention(config, layer_id, quant_config, f"{prefix}.self_attn", device)
        if is_moe_layer(config, layer_id, is_nextn=is_nextn):
            self.mlp = DeepseekMoE(config, layer_id, quant_config, f"{prefix}.mlp")
        else:
            self.mlp = SwiGLUMLP(config.hidden_size, config.intermediate_size, quant_config, f"{prefix}.mlp",
                                 parallel_group=dense_mlp_group())
        self.input_layernorm = RMSNorm(config.hidden_size, eps=config.rms_norm_eps)
        self.post_attention_layernorm = RMSNorm(config.hidden_size, eps=config.rms_norm_eps)
        attn, ffn = self.stage_facts(config, layer_id, is_nextn=is_nextn)
        self.attn_boundary, self.ffn_boundary = append_stages(
            (attn, self.input_layernorm), (ffn, self.post_attention_layernorm)
        )

    @staticmethod
    def stage_facts(config, layer_id: int, *, is_nextn: bool = False):
        """The stages layer ``layer_id`` declares, from the config alone (other pipeline ranks ask too)."""
        return (
            declare_attn(),
            declare_ffn(
                sparse=is_moe_layer(config, layer_id, is_nextn=is_nextn),
                next_layer_sparse=is_moe_layer(config, layer_id + 1),
            ),
        )

    def forward(self, positions, hidden, forward_batch):
        hidden = self.attn_boundary.prepare(hidden, forward_batch)
        hidden = self.self_attn(positions, hidden, forward_batch)
        hidden = self.attn_boundary.finish(hidden, forward_batch)
        hidden = self.ffn_boundary.prepare(hidden, forward_batch)
        hidden = self.mlp(hidden)
        return self.ffn_boundary.finish(hidden, forward_batch)


def needs_embedding(pp_group) -> bool:
    """The first pipeline stage embeds; with EAGLE the last does too (the draft shares its table)."""
    return pp_group.is_first_rank or (pp_group.is_last_rank and get_spec().speculative_algorithm is not None)


class DeepseekV32Model(nn.Module):
    def __init__(self, config, quant_config=None, prefix: str = "model"):
        super().__init__()
        device = model_device()
        self.pp_group = get_parallel().pp_group
        if needs_embedding(self.pp_group):
            self.embed_tokens = VocabParallelEmbedding(config.vocab_size, config.hidden_size,
                                                       **get_embedding_tp_kwargs())
        else:
            self.embed_tokens = PPMissingLayer()
        self.layers, self.start_layer, self.end_layer = make_pp_layers(
            config.num_hidden_layers,
            lambda idx, prefix: DeepseekV32DecoderLayer(config, idx, quant_config, prefix, device),
            prefix=f"{prefix}.layers",
            stage_facts=lambda idx: DeepseekV32DecoderLayer.stage_facts(config, idx),
        )
        if self.pp_group.is_last_rank:
            self.norm = RMSNorm(config.hidden_size, eps=config.rms_norm_eps)
        else:
            self.norm = PPMissingLayer(return_tuple=True)

    def forward(self, input_ids, positions, forward_batch, input_embeds=None, pp_proxy_tensors=None):
        """Final-normed hidden states ``[T, hidden]`` on the last stage, the hand-over elsewhere."""
        if self.pp_group.is_first_rank:
            hidden = self.embed_tokens(input_ids) if input_embeds is None else input_embeds
            residual_batch.start(forward_batch)
        else:
            hidden = self.layers[self.start_layer].attn_boundary.from_pp(pp_proxy_tensors, forward_batch)
        for i in range(self.start_layer, self.end_layer):
            hidden = self.layers[i](positions, hidden, forward_batch)
        if not self.pp_group.is_last_rank:
            return residual_batch.to_pp(hidden, forward_batch)
        hidden = residual_batch.complete_output(hidden, forward_batch)
        if forward_batch.forward_mode.is_idle():
            return hidden
        return residual_batch.final_norm(hidden, forward_batch, self.norm)


class SharedEmbedHead:
    """``model.embed_tokens`` and ``lm_head`` as the host asks for them: EAGLE hands them over
    between target and draft; the context-parallel runner embeds a whole batch, then shards it."""

    def get_input_embeddings(self) -> nn.Module:
        return self.model.embed_tokens

    def get_embed_and_head(self):
        return self.model.embed_tokens.weight, self.lm_head.weight

    def set_embed_and_head(self, embed, head):
        del self.model.embed_tokens.weight
        del self.lm_head.weight
        self.model.embed_tokens.weight = embed
        self.lm_head.weight = head


def missing_module_prefixes(module: nn.Module) -> tuple[str, ...]:
    """``"name."`` of every pipeline placeholder: their checkpoint tensors live on another stage."""
    return tuple(f"{name}." for name, m in module.named_modules() if isinstance(m, PPMissingLayer))


class DeepseekV32ForCausalLM(SharedEmbedHead, nn.Module):
    def __init__(self, config, quant_config=None, prefix: str = ""):
        super().__init__()
        self.config = config
        self.quant_config = serving_quant_config(quant_config)
        self.pp_group = get_parallel().pp_group
        self.model = DeepseekV32Model(config, self.quant_config)
        if self.pp_group.is_last_rank:
            self.lm_head = ParallelLMHead(config.vocab_size, config.hidden_size,
                                          use_attn_tp_group=get_parallel().enable_dp_lm_head)
        else:
            self.lm_head = PPMissingLayer()
        self.logits_processor = LogitsProcessor(config)
        self.capture_aux_hidden_states = False

    @property
    def start_layer(self) -> int:
        return self.model.start_layer

    @property
    def end_layer(self) -> int:
        return self.model.end_layer

    @classmethod
    def get_model_config_for_expert_location(cls, config):
        from sglang.srt.eplb.expert_location import ModelConfigForExpertLocation

        return ModelConfigForExpertLocation(
            num_layers=config.num_hidden_layers, num_logical_experts=config.n_routed_experts,
            num_groups=config.n_group,
        )

    @torch.no_grad()
    def forward(self, input_ids, positions, forward_batch, input_embeds=None, pp_proxy_tensors=None, **_):
        hidden = self.model(input_ids, positions, forward_batch, input_embeds, pp_proxy_tensors)
        if not self.pp_group.is_last_rank:
            return hidden
        return self.logits_processor(input_ids, hidden, self.lm_head, forward_batch)

    def load_weights(self, weights: Iterable[tuple[str, torch.Tensor]]) -> set[str]:
        num_layers = self.config.num_hidden_layers
        elsewhere = missing_module_prefixes(self)

        def rename(name: str):
            if name.startswith("model.layers.") and int(name.split(".")[2]) >= num_layers:
                return None  # the MTP layer: the draft model loads it
            if "rotary_emb.inv_freq" in name or name.startswith(elsewhere):
                return None
            return name

        loaded = load_params(self, weights, rename, dequantize=self.quant_config is None)
        self.post_load_weights()
        return loaded

    def post_load_weights(self) -> None:
        """Split this rank's ``kv_b_proj`` into the absorbed ``w_kc``/``w_vc`` (also after dummy loading)."""
        for i in range(self.model.start_layer, self.model.end_layer):
            layer = self.model.layers[i]
            layer.self_attn.split_kv_b(layer.input_layernorm.weight.dtype)


EntryClass = [DeepseekV32ForCausalLM]
