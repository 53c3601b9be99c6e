"""Random weights at the tiny checkpoint's scales for a DeepSeek-V3.2 model built by ``--load-format dummy``.

The host's dummy loader gives every parameter U(-1e-3, 1e-3) with one seed for all: FP8
projections round to zero, norms are ~0, every layer is the same, logits are flat and
indexer scores tie, so greedy outputs say nothing. ``initialise(model)`` gives each
parameter the distribution ``tiny_weights`` gives the checkpoint tensor it comes from,
chosen by its name in the serving model and seeded by that name:

=======================================  ==============================================
parameter (name ends with)               values
=======================================  ==============================================
``embed_tokens.weight``                  N(0, 1)
``lm_head.weight``, ``head.weight``,     N(0, 1/sqrt(fan_in))
``mlp.gate.weight`` (router)
``e_score_correction_bias``              N(0, 0.01)
``<...norm>.weight`` / ``.bias``         1 + N(0, 0.05) / N(0, 0.05)
``...scale`` (not ``_scale_inv``)        1 (a neutral quantisation scale)
any other >= 2-D weight                  N(0, 0.5/sqrt(fan_in)), fan_in = last dim
any other 1-D parameter                  0
``<weight>_scale_inv``                   set with its FP8 weight (below)
=======================================  ==============================================

FP8 weights (``float8_e4m3fn`` with a ``<name>_scale_inv`` sibling: ``weight_scale_inv``
of a linear layer, ``w13_weight_scale_inv`` of FusedMoE) are drawn in float32 and
block-quantised by ``tiny_weights.quantise_fp8_blockwise``, one 2-D slice (expert) at a time.

``draftable=True`` reshapes the model as tests/e2e/test_mtp.py does for a checkpoint, so
that an MTP draft is mostly accepted and the accept length means something: attention and
FFN output projections x0.05 (the target becomes nearly a bigram model), the MTP
``eh_proj = [I | N(0, 0.1/sqrt(H))]`` (mostly the embedding half) and ``enorm`` 1.

Values are per parameter as the model holds it: a tensor-parallel shard gets its own
draw, so dummy weights are not comparable across parallel layouts.
"""

from __future__ import annotations

import math
import zlib

import torch

from dsv32_plugin.testing.tiny_weights import quantise_fp8_blockwise

DRAFT_OUTPUT_SCALE = 0.05
_HEADS = ("lm_head.weight", "head.weight", "mlp.gate.weight")
_OUTPUT_PROJECTIONS = ("o_proj.weight", "down_proj.weight", "w2_weight")


def _module_of(name: str) -> str:
    return name.rsplit(".", 2)[-2] if name.count(".") else ""


def _fill(name: str, shape: torch.Size, gen: torch.Generator, device, draftable: bool) -> torch.Tensor:
    """The float32 values of parameter ``name`` (before any FP8 quantisation)."""

    def normal(std: float) -> torch.Tensor:
        return torch.randn(shape, generator=gen, device=device) * std

    module = _module_of(name)
    if name.endswith("embed_tokens.weight"):
        return normal(1.0)
    if name.endswith("e_score_correction_bias"):
        return normal(0.01)
    if name.endswith("scale"):
        return torch.ones(shape, device=device)
    if "norm" in module:
        if draftable and module == "enorm":
            return torch.ones(shape, device=device)
        return 1.0 + normal(0.05) if name.endswith(".weight") else normal(0.05)
    if len(shape) < 2:
        return torch.zeros(shape, device=device)
    fan_in = shape[-1]
    if draftable and module == "eh_proj":
        hidden = shape[0]
        return torch.cat([torch.eye(hidden, device=device), normal(0.1 / math.sqrt(hidden))[:, hidden:]], dim=1)
    gain = 1.0 if name.endswith(_HEADS) else 0.5
    if draftable and name.endswith(_OUTPUT_PROJECTIONS):
        gain *= DRAFT_OUTPUT_SCALE
    return normal(gain / math.sqrt(fan_in))


@torch.no_grad()
def initialise(model: torch.nn.Module, *, seed: int = 0, draftable: bool = False) -> None:
    """Overwrite every floating-point parameter of ``model`` as described in the module docstring."""
    params = dict(model.named_parameters())
    for name, param in params.items():
        if not param.dtype.is_floating_point or name.endswith("_scale_inv"):
            continue
        gen = torch.Generator(device=param.device).manual_seed(seed * 1_000_003 + zlib.crc32(name.encode()))
        if param.dtype != torch.float8_e4m3fn:
            param.copy_(_fill(name, param.shape, gen, param.device, draftable))
            continue
        scale = params.get(name + "_scale_inv")
        if scale is None:
            raise ValueError(f"FP8 parameter {name} has no {name}_scale_inv sibling to hold its block scales")
        slices = [(param, scale)] if param.dim() == 2 else list(zip(param, scale))  # FusedMoE: per expert
        for weight, weight_scale in slices:
            q, s = quantise_fp8_blockwise(_fill(name, weight.shape, gen, param.device, draftable))
            weight.copy_(q)
            weight_scale.copy_(s)
