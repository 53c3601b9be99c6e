"""Float32 reference twin of the MoE block: DeepSeek noaux_tc routing and a loop over experts.

    s = sigmoid(x W_gate^T); choice = s + bias
    groups ranked by the sum of their top-2 choice scores; topk_group groups kept
    top_k experts by choice score inside them; w = s at those experts, / sum(w) (norm_topk_prob)
    y = routed_scaling_factor * sum_k w_k SwiGLU_k(x) + SwiGLU_shared(x)
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def route(logits, bias, n_group: int, topk_group: int, top_k: int, normalise: bool):
    """``(weights [T, top_k] fp32, experts [T, top_k] int64)``."""
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
        weights = weights / weights.sum(-1, keepdim=True)
    return weights, chosen


def swiglu(x, gate, up, down):
    return F.linear(F.silu(F.linear(x, gate)) * F.linear(x, up), down)


def moe_reference(x: torch.Tensor, tensors: dict, config) -> torch.Tensor:
    """The MoE block on ``x [T, H]`` from checkpoint-named ``tensors`` (``gate.weight``, ``experts.{e}.*``, ...)."""
    x = x.float()
    t = {k: v.float() for k, v in tensors.items()}
    weights, chosen = route(x @ t["gate.weight"].T, t["gate.e_score_correction_bias"], config.n_group,
                            config.topk_group, config.num_experts_per_tok, config.norm_topk_prob)
    out = torch.zeros_like(x)
    for expert in range(config.n_routed_experts):
        token, slot = torch.where(chosen == expert)
        if token.numel():
            p = f"experts.{expert}."
            y = swiglu(x[token], t[p + "gate_proj.weight"], t[p + "up_proj.weight"], t[p + "down_proj.weight"])
            out.index_add_(0, token, y * weights[token, slot, None])
    shared = swiglu(x, t["shared_experts.gate_proj.weight"], t["shared_experts.up_proj.weight"],
                    t["shared_experts.down_proj.weight"])
    return config.routed_scaling_factor * out + shared
