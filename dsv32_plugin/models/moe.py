"""Feed-forward blocks of DeepSeek-V3.2 from the host's parallel layers: the SwiGLU MLP and the MoE.

Router (``mlp.gate``, float32, ours): ``logits = x W^T``. Selection is the host's
``TopK`` (DeepSeek ``noaux_tc``): ``s = sigmoid(logits)``, choice scores
``s + e_score_correction_bias``, groups ranked by the sum of their top-2 choice
scores, ``topk_group`` groups kept, ``num_experts_per_tok`` experts chosen in
them, weights = un-biased ``s`` renormalised (``norm_topk_prob``). The routed
experts are the host's fused MoE for the quant config (``FusedMoE``, or the
DeepEP all-to-all class under ``--moe-a2a-backend deepep``); the shared expert
is a SwiGLU MLP sharded over TP (replicated under all-to-all backends).

    out = routed_scaling_factor * sum_k w_k expert_k(x) + shared(x)

The routed scale is applied here, once, on every device: the host's runners
disagree on whether they apply it (Triton does when told, the CPU path does
not), so neither TopK nor FusedMoE is given the factor.

Output sums: under TP/EP each rank's output is a partial sum; the layer's FFN
stage boundary completes it (all-reduce, or reduce-scatter under DP attention).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from sglang.srt.layers.activation import SiluAndMul
from sglang.srt.layers.linear import MergedColumnParallelLinear, RowParallelLinear
from sglang.srt.layers.moe import get_moe_a2a_backend
from sglang.srt.layers.moe.ep_moe.layer import get_moe_impl_class
from sglang.srt.layers.moe.topk import TopK
from sglang.srt.layers.moe.utils import RoutingMethodType
from torch import nn


class SwiGLUMLP(nn.Module):
    """``down(silu(gate(x)) * up(x))``; ``gate_up_proj`` holds ``[gate; up]`` (checkpoint: two weights).

    ``parallel_group``: ``"tp"`` shards the intermediate dim (partial output),
    ``"replicated"`` keeps it whole on every rank (complete output).
    """

    def __init__(self, hidden: int, inter: int, quant_config=None, prefix: str = "", parallel_group: str = "tp"):
        super().__init__()
        self.gate_up_proj = MergedColumnParallelLinear(
            hidden, [inter, inter], bias=False, quant_config=quant_config, prefix=f"{prefix}.gate_up_proj",
            parallel_group=parallel_group,
        )
        self.down_proj = RowParallelLinear(
            inter, hidden, bias=False, quant_config=quant_config, reduce_results=False,
            prefix=f"{prefix}.down_proj", parallel_group=parallel_group,
        )
        self.act = SiluAndMul()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[0] == 0:
            return x
        return self.down_proj(self.act(self.gate_up_proj(x)[0]))[0]


class RouterGate(nn.Module):
    """``mlp.gate``: float32 weight ``[E, H]`` and ``e_score_correction_bias [E]`` (selection only)."""

    def __init__(self, hidden: int, n_experts: int):
        super().__init__()
        self.weight = nn.Parameter(torch.empty(n_experts, hidden, dtype=torch.float32), requires_grad=False)
        self.e_score_correction_bias = nn.Parameter(torch.zeros(n_experts, dtype=torch.float32), requires_grad=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.linear(x.float(), self.weight)


def uses_all_to_all() -> bool:
    """Whether routed tokens travel by an expert-parallel all-to-all (DeepEP and kin)."""
    a2a = get_moe_a2a_backend()
    return not a2a.is_none()


class DeepseekMoE(nn.Module):
    """``mlp.gate`` + ``mlp.experts`` (host fused MoE) + ``mlp.shared_experts``."""

    def __init__(self, config, layer_id: int, quant_config=None, prefix: str = ""):
        super().__init__()
        self.scaling = float(config.routed_scaling_factor)
        h = config.hidden_size
        self.gate = RouterGate(h, config.n_routed_experts)
        self.experts = get_moe_impl_class(quant_config)(
            num_experts=config.n_routed_experts,
            top_k=config.num_experts_per_tok,
            hidden_size=h,
            intermediate_size=config.moe_intermediate_size,
            layer_id=layer_id,
            quant_config=quant_config,
            prefix=f"{prefix}.experts",
            routing_method_type=RoutingMethodType.DeepSeekV3,
        )
        self.topk = TopK(
            top_k=config.num_experts_per_tok,
            layer_id=layer_id,
            renormalize=getattr(config, "norm_topk_prob", True),
            use_grouped_topk=True,
            num_expert_group=config.n_group,
            topk_group=config.topk_group,
            scoring_func=getattr(config, "scoring_func", "sigmoid"),
            correction_bias=self.gate.e_score_correction_bias,
            quant_config=quant_config,
        )
        self.topk.bind_runner_backend(self.experts.runner_backend, routing_method_type=self.experts.routing_method_type)
        # Under an all-to-all each rank's routed output holds only its own
        # tokens, complete; a TP-sharded shared expert would need a reduction
        # the boundary no longer does, so it is replicated there (as the host's
        # DeepSeek models do).
        self.all_to_all = uses_all_to_all()
        self.shared_experts = SwiGLUMLP(
            h, config.moe_intermediate_size * config.n_shared_experts, quant_config, f"{prefix}.shared_experts",
            parallel_group="replicated" if self.all_to_all else "tp",
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[0] == 0:
            if not self.all_to_all:
                return x  # no rows: nothing to compute, and no collective inside the experts
            # An all-to-all needs every rank, rows or not.
            return self.experts(x, self.topk.empty_topk_output(x.device))
        routed = self.experts(x, self.topk(x, self.gate(x)))
        return self.shared_experts(x).add_(routed, alpha=self.scaling)
