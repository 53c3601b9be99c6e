"""Multi-head latent attention with absorbed projections and the DSA indexer (dsa_spec.md §3.1).

    q_latent = RMSNorm(q_a_proj(x))                               [T, q_lora]
    q = q_b_proj(q_latent) -> [q_nope (Dn) | q_pe (R)] per head     [T, H, Dn + R]
    [c_kv | k_pe] = kv_a_proj_with_mqa(x); c_kv = RMSNorm(c_kv)    [T, Dl], [T, R]
    interleaved RoPE on q_pe, k_pe
    q_abs[h] = q_nope[h] @ W_UK[h]                                  [T, H, Dl]
    o_lat = DSA(q_abs | q_pe over cached [c_kv | k_pe], indexer top-k)  [T, H, Dl]
    o[h] = o_lat[h] @ W_UV[h]; out = o_proj(o)

``W_UK [H, Dn, Dl]`` and ``W_UV [H, Dl, Dv]`` are views of ``kv_b_proj``
(rows ``h*(Dn+Dv) + [0, Dn)`` and ``+ [Dn, Dn+Dv)``), split once after loading.
"""

from __future__ import annotations

import torch
from sglang.srt.layers.layernorm import RMSNorm
from sglang.srt.layers.linear import ReplicatedLinear
from sglang.srt.layers.radix_attention import RadixAttention
from sglang.srt.model_executor.forward_context import get_attn_backend
from torch import nn

from dsv32_plugin.models.indexer import LightningIndexer
from dsv32_plugin.models.rope import apply_rope, make_rope, mla_softmax_scale


class DSAMLAttention(nn.Module):
    def __init__(self, config, layer_id: int, quant_config=None, prefix: str = "", device: str = "cpu"):
        super().__init__()
        self.num_heads = config.num_attention_heads
        self.nope_dim = config.qk_nope_head_dim
        self.rope_dim = config.qk_rope_head_dim
        self.v_dim = config.v_head_dim
        self.kv_lora_rank = config.kv_lora_rank
        h, heads = config.hidden_size, self.num_heads

        def linear(name, n_in, n_out, quant=quant_config):
            return ReplicatedLinear(n_in, n_out, bias=False, quant_config=quant, prefix=f"{prefix}.{name}")

        self.q_a_proj = linear("q_a_proj", h, config.q_lora_rank)
        self.q_a_layernorm = RMSNorm(config.q_lora_rank, eps=config.rms_norm_eps)
        self.q_b_proj = linear("q_b_proj", config.q_lora_rank, heads * (self.nope_dim + self.rope_dim))
        self.kv_a_proj_with_mqa = linear("kv_a_proj_with_mqa", h, self.kv_lora_rank + self.rope_dim)
        self.kv_a_layernorm = RMSNorm(self.kv_lora_rank, eps=config.rms_norm_eps)
        self.kv_b_proj = linear("kv_b_proj", self.kv_lora_rank, heads * (self.nope_dim + self.v_dim))
        self.o_proj = linear("o_proj", heads * self.v_dim, h)
        self.rotary_emb = make_rope(config, neox=False, device=device)
        self.indexer = LightningIndexer(config, layer_id, quant_config, f"{prefix}.indexer", device)
        self.attn = RadixAttention(
            heads,
            self.kv_lora_rank + self.rope_dim,
            mla_softmax_scale(config),
            num_kv_heads=1,
            layer_id=layer_id,
            v_head_dim=self.kv_lora_rank,
            prefix=f"{prefix}.attn",
        )
        self.w_kc: torch.Tensor | None = None
        self.w_vc: torch.Tensor | None = None

    def split_kv_b(self, dequantized_weight: torch.Tensor | None = None) -> None:
        """Make ``w_kc [H, Dn, Dl]`` and ``w_vc [H, Dl, Dv]`` from kv_b_proj (after loading)."""
        weight = self.kv_b_proj.weight if dequantized_weight is None else dequantized_weight
        per_head = weight.view(self.num_heads, self.nope_dim + self.v_dim, self.kv_lora_rank)
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
        q = self.q_b_proj(q_latent)[0].view(tokens, self.num_heads, self.nope_dim + self.rope_dim)
        q_pe, k_pe = apply_rope(self.rotary_emb, positions, q[..., self.nope_dim :].contiguous(), k_pe.contiguous())
        q_abs = torch.bmm(q[..., : self.nope_dim].transpose(0, 1), self.w_kc).transpose(0, 1)
        backend = get_attn_backend()
        topk = self.indexer(hidden, q_latent, positions, forward_batch, backend)
        o_lat = self.attn(
            q_abs.reshape(tokens, -1), c_kv, c_kv, forward_batch, q_rope=q_pe, k_rope=k_pe, topk_indices=topk
        )
        o = torch.bmm(o_lat.view(tokens, self.num_heads, self.kv_lora_rank).transpose(0, 1), self.w_vc)
        return self.o_proj(o.transpose(0, 1).reshape(tokens, -1))[0]
