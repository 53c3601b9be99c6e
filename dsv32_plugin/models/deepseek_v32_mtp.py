"""DeepSeek-V3.2 MTP draft (NextN) for sglang's EAGLE worker.

Checkpoint layer ``model.layers.{N}`` (N = num_hidden_layers) holds
``enorm``, ``hnorm``, ``eh_proj [H, 2H]``, one full decoder layer (MLA + DSA
indexer + MoE, its own caches in the draft's pool) and ``shared_head.norm``;
its ``embed_tokens`` / ``shared_head.head`` equal the target's and are
replaced by the target's tensors (``set_embed_and_head``), which are sharded
the same way (vocab parallel), as is the decoder layer (``models/parallel.py``).

For draft position t, with ``h_t`` the target's hidden state as the EAGLE
worker captures it (the final-normed one the target's logits come from) and
``x_{t+1}`` the next token::

    u = eh_proj([enorm(embed(x_{t+1})) | hnorm(h_t)])     # embedding first, hidden second
    u = DecoderLayer(u)                                    # layer id 0 of the draft's pool
    logits = lm_head(shared_head.norm(u))
"""

from __future__ import annotations

from typing import Iterable

import torch
from sglang.srt.layers.layer_boundary import layer_stack
from sglang.srt.layers.layer_boundary.residual import batch as residual_batch
from sglang.srt.layers.layernorm import RMSNorm
from sglang.srt.layers.linear import ReplicatedLinear
from sglang.srt.layers.logits_processor import LogitsProcessor
from sglang.srt.layers.vocab_parallel_embedding import (
    ParallelLMHead,
    VocabParallelEmbedding,
    get_embedding_tp_kwargs,
)
from sglang.srt.runtime_context import get_parallel
from torch import nn

from dsv32_plugin.models.deepseek_v32 import DeepseekV32DecoderLayer, SharedEmbedHead, model_device
from dsv32_plugin.models.weights import load_params, serving_quant_config


class DeepseekV32MTPModel(nn.Module):
    def __init__(self, config, quant_config=None):
        super().__init__()
        h = config.hidden_size
        self.embed_tokens = VocabParallelEmbedding(config.vocab_size, h, **get_embedding_tp_kwargs())
        self.enorm = RMSNorm(h, eps=config.rms_norm_eps)
        self.hnorm = RMSNorm(h, eps=config.rms_norm_eps)
        self.eh_proj = ReplicatedLinear(2 * h, h, bias=False, prefix="model.eh_proj")  # bf16 in the checkpoint
        # Layer id 0: the draft's KV pool holds this one layer. Its own layer
        # stack: the draft's one layer binds its stages alone.
        with layer_stack():
            self.decoder = DeepseekV32DecoderLayer(config, 0, quant_config, "model.decoder", model_device(),
                                                   is_nextn=True)
        self.shared_head = nn.Module()
        self.shared_head.norm = RMSNorm(h, eps=config.rms_norm_eps)

    def forward(self, input_ids, positions, forward_batch, input_embeds: torch.Tensor | None = None):
        """``h_t``: the EAGLE input's ``spec_info.hidden_states``. The host's context-parallel runner
        passes this rank's rows of the embeddings as ``input_embeds`` and has sharded those too."""
        hidden = self.embed_tokens(input_ids) if input_embeds is None else input_embeds
        previous_hidden = forward_batch.spec_info.hidden_states
        if hidden.shape[0]:
            joined = torch.cat([self.enorm(hidden), self.hnorm(previous_hidden.to(hidden.dtype))], dim=-1)
            hidden = self.eh_proj(joined)[0]
        residual_batch.start(forward_batch)
        hidden = self.decoder(positions, hidden, forward_batch)
        hidden = residual_batch.complete_output(hidden, forward_batch)
        if forward_batch.forward_mode.is_idle():
            return hidden
        return residual_batch.final_norm(hidden, forward_batch, self.shared_head.norm)


class DeepseekV32MTP(SharedEmbedHead, nn.Module):
    """The draft model the host builds for ``DeepseekV3ForCausalLMNextN`` on a V3.2 checkpoint."""

    def __init__(self, config, quant_config=None, prefix: str = ""):
        super().__init__()
        self.config = config
        self.quant_config = serving_quant_config(quant_config)
        self.model = DeepseekV32MTPModel(config, self.quant_config)
        self.lm_head = ParallelLMHead(config.vocab_size, config.hidden_size,
                                      use_attn_tp_group=get_parallel().enable_dp_lm_head)
        self.logits_processor = LogitsProcessor(config)
        self.pp_group = get_parallel().pp_group  # the host's context-parallel runner asks

    @torch.no_grad()
    def forward(self, input_ids, positions, forward_batch, **_):
        hidden = self.model(input_ids, positions, forward_batch)
        return self.logits_processor(input_ids, hidden, self.lm_head, forward_batch)

    def load_weights(self, weights: Iterable[tuple[str, torch.Tensor]]) -> set[str]:
        mtp_prefix = f"model.layers.{self.config.num_hidden_layers}."
        own = ("embed_tokens.", "enorm.", "hnorm.", "eh_proj.", "shared_head.norm.")

        def rename(name: str):
            if not name.startswith(mtp_prefix):
                return None  # the target's tensors
            rest = name[len(mtp_prefix):]
            if rest.startswith("shared_head.head."):
                return "lm_head." + rest[len("shared_head.head."):]
            if rest.startswith(own):
                return "model." + rest
            return "model.decoder." + rest

        loaded = load_params(self, weights, rename, dequantize=self.quant_config is None)
        self.post_load_weights()
        return loaded

    def post_load_weights(self) -> None:
        decoder = self.model.decoder
        decoder.self_attn.split_kv_b(decoder.input_layernorm.weight.dtype)
