"""The lightning indexer's projections (dsa_spec.md §2): q, k and head weights for the backend.

Weights under ``self_attn.indexer.``: ``wq_b [Hi*D, q_lora]``, ``wk [D, hidden]``,
``k_norm`` (LayerNorm with bias, eps 1e-6, float32), ``weights_proj [Hi, hidden]``.

    q = wq_b(q_latent)             [T, Hi, D]   (q_latent: MLA's q_a_layernorm output)
    k = LayerNorm(wk(x))           [T, D]
    NeoX RoPE on dims [0, R) of q and k (R = qk_rope_head_dim), written back in place
    w = weights_proj(x) * Hi^-0.5 * D^-0.5   [T, Hi] fp32

The model passes q, k and w with its attention call; the Hadamard rotation on all D
(``x @ H_D / sqrt(D)``), scoring, quantisation and the caches belong to the attention
backend (``DSABackend``), whose FP8 kernels rotate while they quantise.
"""

from __future__ import annotations

import torch
from sglang.srt.layers.linear import ReplicatedLinear
from torch import nn

from dsv32_plugin.models.rope import apply_rope, make_rope


class LightningIndexer(nn.Module):
    def __init__(self, config, quant_config=None, prefix: str = "", device: str = "cpu"):
        super().__init__()
        self.n_heads = config.index_n_heads
        self.head_dim = config.index_head_dim
        self.rope_dim = config.qk_rope_head_dim
        self.wq_b = ReplicatedLinear(config.q_lora_rank, self.n_heads * self.head_dim, bias=False,
                                     quant_config=quant_config, prefix=f"{prefix}.wq_b")
        self.wk = ReplicatedLinear(config.hidden_size, self.head_dim, bias=False, quant_config=quant_config,
                                   prefix=f"{prefix}.wk")
        self.k_norm = nn.LayerNorm(self.head_dim, eps=1e-6, dtype=torch.float32)
        self.weights_proj = ReplicatedLinear(config.hidden_size, self.n_heads, bias=False, quant_config=None,
                                             prefix=f"{prefix}.weights_proj")
        self.rotary_emb = make_rope(config, neox=True, device=device)
        self.weight_scale = self.n_heads**-0.5 * self.head_dim**-0.5

    def forward(self, hidden: torch.Tensor, q_latent: torch.Tensor,
                positions: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """The attention call's ``index_q [T, Hi, D]``, ``index_k [T, D]`` (after RoPE, before the Hadamard)
        and ``index_weights [T, Hi]`` fp32."""
        tokens = hidden.shape[0]
        q = self.wq_b(q_latent)[0].view(tokens, self.n_heads, self.head_dim)
        k = self.k_norm(self.wk(hidden)[0].float()).to(hidden.dtype)
        r = self.rope_dim
        q_rot, k_rot = apply_rope(self.rotary_emb, positions, q[..., :r].contiguous(), k[:, None, :r].contiguous())
        # q and k are this call's own tensors: the rotated dims go back in place, no concatenation.
        q[..., :r] = q_rot
        k[:, :r] = k_rot[:, 0]
        weights = self.weights_proj(hidden)[0].float() * self.weight_scale
        return q, k, weights
