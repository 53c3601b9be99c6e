"""Feed-forward blocks: the dense SwiGLU MLP and the DeepSeek MoE (sigmoid router, grouped top-k).

Router (``mlp.gate``, float32): ``s = sigmoid(x W^T)``; choice scores ``s + bias``
(``e_score_correction_bias``, selection only); groups ranked by the sum of their
top-2 choice scores, ``topk_group`` groups kept; ``num_experts_per_tok`` experts
chosen inside them; weights = un-biased ``s`` at the chosen experts, normalised
to sum 1 (``norm_topk_prob``) times ``routed_scaling_factor``. The shared
expert is always added.

The experts run as a plain torch loop over the experts that received tokens:
the host's fused MoE needs sgl-kernel's CPU ops (AMX) or a GPU, so this is the
plugin's CPU fallback (docs/model.md).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from sglang.srt.layers.linear import ReplicatedLinear
from torch import nn


class SwiGLUMLP(nn.Module):
    def __init__(self, hidden: int, inter: int, quant_config=None, prefix: str = ""):
        super().__init__()
        self.gate_proj = ReplicatedLinear(hidden, inter, bias=False, quant_config=quant_config,
                                          prefix=f"{prefix}.gate_proj")
        self.up_proj = ReplicatedLinear(hidden, inter, bias=False, quant_config=quant_config,
                                        prefix=f"{prefix}.up_proj")
        self.down_proj = ReplicatedLinear(inter, hidden, bias=False, quant_config=quant_config,
                                          prefix=f"{prefix}.down_proj")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.down_proj(F.silu(self.gate_proj(x)[0]) * self.up_proj(x)[0])[0]


def route(logits: torch.Tensor, bias: torch.Tensor, n_group: int, topk_group: int, top_k: int,
          normalise: bool, scaling: float) -> tuple[torch.Tensor, torch.Tensor]:
    """DeepSeek noaux_tc routing: ``(weights [T, top_k] fp32, experts [T, top_k] int64)``."""
    scores = logits.float().sigmoid()
    choice = scores + bias.float()
    tokens, experts = choice.shape
    group_scores = choice.view(tokens, n_group, experts // n_group).topk(2, dim=-1)[0].sum(-1)
    keep = torch.zeros_like(group_scores, dtype=torch.bool)
    keep.scatter_(1, group_scores.topk(topk_group, dim=-1)[1], True)
    keep = keep[:, :, None].expand(-1, -1, experts // n_group).reshape(tokens, experts)
    chosen = choice.masked_fill(~keep, float("-inf")).topk(top_k, dim=-1)[1]
    weights = scores.gather(1, chosen)
    if normalise:
        weights = weights / (weights.sum(-1, keepdim=True) + 1e-20)
    return weights * scaling, chosen


class DeepseekMoE(nn.Module):
    """Routed experts ``mlp.experts.{e}.{gate,up,down}_proj`` + ``mlp.shared_experts`` + ``mlp.gate``."""

    def __init__(self, config, quant_config=None, prefix: str = ""):
        super().__init__()
        self.n_group = config.n_group
        self.topk_group = config.topk_group
        self.top_k = config.num_experts_per_tok
        self.normalise = getattr(config, "norm_topk_prob", True)
        self.scaling = config.routed_scaling_factor
        h, inter = config.hidden_size, config.moe_intermediate_size
        self.gate = nn.Linear(h, config.n_routed_experts, bias=False, dtype=torch.float32)
        self.gate.e_score_correction_bias = nn.Parameter(
            torch.zeros(config.n_routed_experts, dtype=torch.float32), requires_grad=False
        )
        self.experts = nn.ModuleList(
            SwiGLUMLP(h, inter, quant_config, f"{prefix}.experts.{e}") for e in range(config.n_routed_experts)
        )
        self.shared_experts = SwiGLUMLP(h, inter * config.n_shared_experts, quant_config, f"{prefix}.shared_experts")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        weights, chosen = route(self.gate(x.float()), self.gate.e_score_correction_bias, self.n_group,
                                self.topk_group, self.top_k, self.normalise, self.scaling)
        out = torch.zeros_like(x, dtype=torch.float32)
        for expert in chosen.unique().tolist():
            token, slot = torch.where(chosen == expert)
            y = self.experts[expert](x[token]).float() * weights[token, slot, None]
            out.index_add_(0, token, y)
        return (out + self.shared_experts(x).float()).to(x.dtype)
