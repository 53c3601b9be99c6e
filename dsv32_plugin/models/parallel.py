"""The sharding seam: which host groups the model's layers use (which layouts the shapes allow: ``dsv32_plugin.policy``).

==================================  =========================  ================================
piece                               group                      what a rank holds
==================================  =========================  ================================
q_a / kv_a projections, indexer     replicated                 everything
q_b_proj, kv_b_proj, o_proj          attention TP               heads / attn_tp heads
routed experts                      MoE EP x MoE TP            experts / ep, inter / moe_tp
shared expert, dense MLP            TP (replicated when the    inter / tp
                                    host runs them fully DP)
embedding, LM head                  vocab parallel             vocab / tp (attention TP under
                                                               DP attention)
==================================  =========================  ================================

with ``attn_tp = tp / attn_dp / attn_cp`` and ``moe_tp = tp / ep / moe_dp``
(the host's widths, ``runtime_context.parallel_widths_of``).
"""

from __future__ import annotations

def attn_tp_size() -> int:
    from sglang.srt.runtime_context import get_parallel

    return get_parallel().attn_tp_size


def dense_mlp_group() -> str:
    """The dense MLP's linear group: replicated when the host keeps dense FFNs fully data parallel."""
    from sglang.srt.layers.layer_boundary import is_dense_ffn_fully_dp

    return "replicated" if is_dense_ffn_fully_dp() else "tp"
