"""Multi-head latent attention with absorbed projections and the DSA indexer (dsa_spec.md §3.1).

    q_latent = RMSNorm(q_a_proj(x))                               [T, q_lora]
    q = q_b_proj(q_latent) -> [q_nope (Dn) | q_pe (R)] per head     [T, h, Dn + R]
    [c_kv | k_pe] = kv_a_proj_with_mqa(x); c_kv = RMSNorm(c_kv)    [T, Dl], [T, R]
    interleaved RoPE on q_pe, k_pe
    q_abs[h] = q_nope[h] @ W_UK[h]                                  [T, h, Dl]
    o_lat = DSA(q_abs | q_pe over cached [c_kv | k_pe], indexer q/k/w)  [T, h, Dl]
            (one attention call: the backend stores both caches, selects top-k, attends)
    o[h] = o_lat[h] @ W_UV[h]; out = o_proj(o)                      [T, hidden] partial

Sharding over the attention-TP group (size ``attn_tp``; ``h = heads / attn_tp``
local heads): ``q_a_proj``, ``kv_a_proj_with_mqa`` and the indexer are
replicated (every rank needs the whole latent and the same top-k);
``q_b_proj`` and ``kv_b_proj`` are column-parallel over heads; ``o_proj`` is
row-parallel without its reduction, which the layer's stage boundary does.

``W_UK [h, Dn, Dl]`` and ``W_UV [h, Dl, Dv]`` come from this rank's rows of
``kv_b_proj`` (rows ``j*(Dn+Dv) + [0, Dn)`` and ``+ [Dn, Dn+Dv)`` of local head
j), split once after loading; an FP8 ``kv_b_proj`` is dequantised for that,
per rank, and is not used afterwards.
"""

from __future__ import annotations

import torch
from sglang.srt.layers.layernorm import RMSNorm
from sglang.srt.layers.linear import ColumnParallelLinear, ReplicatedLinear, RowParallelLinear
from sglang.srt.layers.radix_attention import RadixAttention
from torch import nn

from dsv32_plugin.models.indexer import LightningIndexer
from dsv32_plugin.models.parallel import attn_tp_size
from dsv32_plugin.models.rope import apply_rope, make_rope, mla_softmax_scale
from dsv32_plugin.models.weights import dequantized_weight


class DSAMLAttention(nn.Module):
    def __init__(self, config, layer_id: int, quant_config=None, prefix: str = "", device: str = "cpu"):
        super().__init__()
        self.num_local_heads = config.num_attention_heads // attn_tp_size()
        self.nope_dim = config.qk_nope_head_dim
        self.rope_dim = config.qk_rope_head_dim
        self.v_dim = config.v_head_dim
        self.kv_lora_rank = config.kv_lora_rank
        h, heads = config.hidden_size, config.num_attention_heads

        self.q_a_proj = ReplicatedLinear(h, config.q_lora_rank, bias=False, quant_config=quant_config,
                                         prefix=f"{prefix}.q_a_proj")
        self.q_a_layernorm = RMSNorm(config.q_lora_rank, eps=config.rms_norm_eps)
        self.q_b_proj = ColumnParallelLinear(
            config.q_lora_rank, heads * (self.nope_dim + self.rope_dim), bias=False, quant_config=quant_config,
            prefix=f"{prefix}.q_b_proj", parallel_group="attn_tp",
        )
        self.kv_a_proj_with_mqa = ReplicatedLinear(h, self.kv_lora_rank + self.rope_dim, bias=False,
                                                   quant_config=quant_config, prefix=f"{prefix}.kv_a_proj_with_mqa")
        self.kv_a_layernorm = RMSNorm(self.kv_lora_rank, eps=config.rms_norm_eps)
        self.kv_b_proj = ColumnParallelLinear(
            self.kv_lora_rank, heads * (self.nope_dim + self.v_dim), bias=False, quant_config=quant_config,
            prefix=f"{prefix}.kv_b_proj", parallel_group="attn_tp",
        )
        self.o_proj = RowParallelLinear(
            heads * self.v_dim, h, bias=False, quant_config=quant_config, reduce_results=False,
            prefix=f"{prefix}.o_proj", parallel_group="attn_tp",
        )
        self.rotary_emb = make_rope(config, neox=False, device=device)
        self.indexer = LightningIndexer(config, quant_config, f"{prefix}.indexer", device)
        self.attn = RadixAttention(
            self.num_local_heads,
            self.kv_lora_rank + self.rope_dim,
            mla_softmax_scale(config),
            num_kv_heads=1,
            layer_id=layer_id,
            v_head_dim=self.kv_lora_rank,
            prefix=f"{prefix}.attn",
        )
        self.w_kc: torch.Tensor | None = None
        self.w_vc: torch.Tensor | None = None

    def split_kv_b(self, dtype: torch.dtype) -> None:
        """Make ``w_kc [h, Dn, Dl]`` and ``w_vc [h, Dl, Dv]`` in ``dtype`` from this rank's ``kv_b_proj``."""
        weight = dequantized_weight(self.kv_b_proj).to(dtype)
        per_head = weight.view(self.num_local_heads, self.nope_dim + self.v_dim, self.kv_lora_rank)
        self.w_kc = per_head[:, : self.nope_dim].contiguous()
        self.w_vc = per_head[:, self.nope_dim :].transpose(1, 2).contiguous()

    def forward(self, positions: torch.Tensor, hidden: torch.Tensor, forward_batch) -> torch.Tensor:
        tokens = hidden.shape[0]
        if tokens == 0:
            return hidden
        q_latent = self.q_a_layernorm(self.q_a_proj(hidden)[0])
        kv_a = self.kv_a_proj_with_mqa(hidden)[0]
        c_kv = self.kv_a_layernorm(kv_a[:, : self.kv_lora_rank].contiguous())
        k_pe = kv_a[:, None, self.kv_lora_rank :]
        q = self.q_b_proj(q_latent)[0].view(tokens, self.num_local_heads, self.nope_dim + self.rope_dim)
        q_pe, k_pe = apply_rope(self.rotary_emb, positions, q[..., self.nope_dim :].contiguous(), k_pe.contiguous())
        q_abs = torch.bmm(q[..., : self.nope_dim].transpose(0, 1), self.w_kc).transpose(0, 1)
        index_q, index_k, index_weights = self.indexer(hidden, q_latent, positions)
        o_lat = self.attn(q_abs.reshape(tokens, -1), c_kv, c_kv, forward_batch, q_rope=q_pe, k_rope=k_pe,
                          index_q=index_q, index_k=index_k, index_weights=index_weights)
        o = torch.bmm(o_lat.view(tokens, self.num_local_heads, self.kv_lora_rank).transpose(0, 1), self.w_vc)
        return self.o_proj(o.transpose(0, 1).reshape(tokens, -1))[0]
