"""YaRN RoPE of DeepSeek-V3.2 through the host's rotary layers, and the MLA softmax scale.

The checkpoint's ``rope_scaling`` ({"type": "yarn", factor, beta_fast, ...}) maps
to the host's ``deepseek_yarn`` rotary embedding (the only scaling the host's CPU
path builds). MLA uses the interleaved (GPT-J) style, the indexer the
half-split (NeoX) style, with the same frequencies.
"""

from __future__ import annotations

import math

import torch
from sglang.srt.layers.rotary_embedding import get_rope_wrapper


def deepseek_rope_scaling(config) -> dict | None:
    scaling = getattr(config, "rope_scaling", None)
    if not scaling:
        return None
    return {**scaling, "rope_type": "deepseek_yarn"}


def rope_theta(config) -> float:
    """``rope_theta`` (transformers 5 keeps it inside ``rope_parameters``)."""
    theta = getattr(config, "rope_theta", None)
    if theta is None:
        theta = (getattr(config, "rope_parameters", None) or {}).get("rope_theta", 10000.0)
    return float(theta)


def yarn_mscale(config) -> float:
    """``0.1 * mscale_all_dim * ln(factor) + 1`` (1 without YaRN)."""
    scaling = getattr(config, "rope_scaling", None) or {}
    factor = float(scaling.get("factor", 1.0))
    mscale_all_dim = float(scaling.get("mscale_all_dim", 0.0))
    if factor <= 1 or not mscale_all_dim:
        return 1.0
    return 0.1 * mscale_all_dim * math.log(factor) + 1.0


def mla_softmax_scale(config) -> float:
    """``(nope + rope)^-0.5 * mscale^2`` (0.13523378 for V3.2): 192, not 576, in absorbed form too."""
    return (config.qk_nope_head_dim + config.qk_rope_head_dim) ** -0.5 * yarn_mscale(config) ** 2


def make_rope(config, *, neox: bool, device: str):
    """The host's rotary embedding over ``qk_rope_head_dim`` dims."""
    dim = config.qk_rope_head_dim
    return get_rope_wrapper(
        dim,
        rotary_dim=dim,
        max_position=config.max_position_embeddings,
        base=rope_theta(config),
        rope_scaling=deepseek_rope_scaling(config),
        is_neox_style=neox,
        device=device,
    )


def apply_rope(rope, positions: torch.Tensor, q: torch.Tensor, k: torch.Tensor):
    """Rotate q ``[T, Hq, R]`` and k ``[T, Hk, R]``; shapes are kept."""
    q_out, k_out = rope(positions, q, k)
    return q_out.reshape(q.shape), k_out.reshape(k.shape)
