"""Checkpoint loading shared by the target and the MTP draft: name mapping into the host's layers.

Checkpoint names (``model.layers.{i}.``...) and where they go:

==========================================  ============================================  =========
checkpoint tensor                           parameter                                     loader
==========================================  ============================================  =========
``mlp.{gate,up}_proj.W``                    ``mlp.gate_up_proj.W``                        shard 0 / 1
``mlp.shared_experts.{gate,up}_proj.W``     ``mlp.shared_experts.gate_up_proj.W``         shard 0 / 1
``mlp.experts.{e}.gate_proj.W``             ``mlp.experts.w13_W``                         expert e, w1
``mlp.experts.{e}.up_proj.W``               ``mlp.experts.w13_W``                         expert e, w3
``mlp.experts.{e}.down_proj.W``             ``mlp.experts.w2_W``                          expert e, w2
everything else                             the same name                                 param's own
==========================================  ============================================  =========

``W`` is ``weight`` or, in FP8 checkpoints, ``weight_scale_inv``. Each
parameter's ``weight_loader`` (the host's) takes the full tensor and keeps
this rank's shard (tensor, expert or vocab parallel); experts of other EP
ranks are dropped there.

FP8: DeepSeek stores a projection as ``W.weight`` float8_e4m3fn ``[out, in]``
plus ``W.weight_scale_inv`` float32 ``[ceil(out/128), ceil(in/128)]`` (dequant
multiplier per 128x128 block). On CUDA the host's FP8 methods load both as
they are; elsewhere (no FP8 GEMMs on the CPU without AMX) each pair is
dequantised to float32 while loading (``dequantize=True``).
"""

from __future__ import annotations

import re
from typing import Callable, Iterable, Iterator, Optional

import torch
from sglang.srt.model_loader.weight_utils import default_weight_loader

FP8_BLOCK = 128

# (parameter piece, checkpoint piece, shard id) of the merged gate/up projections.
_STACKED = (("gate_up_proj", "gate_proj", 0), ("gate_up_proj", "up_proj", 1))
# mlp.experts.{e}.{gate,up,down}_proj.{weight,weight_scale_inv} -> FusedMoE's w13_/w2_ parameters.
_EXPERT = re.compile(r"\.experts\.(\d+)\.(gate|up|down)_proj\.(weight(?:_scale_inv)?)$")
_EXPERT_SHARD = {"gate": ("w13", "w1"), "up": ("w13", "w3"), "down": ("w2", "w2")}


def serving_quant_config(quant_config):
    """The quant config the layers are built with: the host's on CUDA, none elsewhere (dequantise at load)."""
    from sglang.srt.runtime_context import get_device

    return quant_config if get_device().device == "cuda" else None


def dequantize_fp8_block(weight: torch.Tensor, scale_inv: torch.Tensor, block: int = FP8_BLOCK) -> torch.Tensor:
    """``weight.float() * scale_inv`` broadcast over ``block x block`` tiles -> float32 ``[out, in]``."""
    out_dim, in_dim = weight.shape
    scale = scale_inv.float().repeat_interleave(block, 0)[:out_dim].repeat_interleave(block, 1)[:, :in_dim]
    return weight.float() * scale.to(weight.device)


def dequantized_weight(linear: torch.nn.Module) -> torch.Tensor:
    """A linear layer's weight ``[out, in]`` in float32, FP8 blocks dequantised (this rank's shard)."""
    weight = linear.weight
    if weight.dtype == torch.float8_e4m3fn:
        return dequantize_fp8_block(weight, linear.weight_scale_inv)
    return weight.float()


def dequantized(weights: Iterable[tuple[str, torch.Tensor]]) -> Iterator[tuple[str, torch.Tensor]]:
    """Yield checkpoint tensors with every FP8 ``weight`` / ``weight_scale_inv`` pair merged."""
    fp8: dict[str, torch.Tensor] = {}
    scales: dict[str, torch.Tensor] = {}
    for name, tensor in weights:
        if name.endswith(".weight_scale_inv"):
            scales[name[: -len("_scale_inv")]] = tensor
        elif tensor.dtype == torch.float8_e4m3fn:
            fp8[name] = tensor
        else:
            yield name, tensor
            continue
        key = name[: -len("_scale_inv")] if name.endswith("_scale_inv") else name
        if key in fp8 and key in scales:
            yield key, dequantize_fp8_block(fp8.pop(key), scales.pop(key))
    if fp8 or scales:
        raise ValueError(f"FP8 weights without a matching scale (or scales without weights): {sorted({*fp8, *scales})[:4]}")


def _load_one(params: dict, name: str, tensor: torch.Tensor) -> Optional[str]:
    """Load one tensor under parameter-space ``name``; the parameter's name, or None if unknown."""
    expert = _EXPERT.search(name)
    if expert:
        expert_id, proj, kind = expert.groups()
        param_piece, shard = _EXPERT_SHARD[proj]
        target = f"{name[: expert.start()]}.experts.{param_piece}_{kind}"
        if target not in params:
            return None
        param = params[target]
        param.weight_loader(param, tensor, target, shard_id=shard, expert_id=int(expert_id))
        return target
    for param_piece, ckpt_piece, shard in _STACKED:
        if f".{ckpt_piece}." in name:
            target = name.replace(f".{ckpt_piece}.", f".{param_piece}.")
            if target not in params:
                return None
            param = params[target]
            param.weight_loader(param, tensor, shard)
            return target
    if name not in params:
        return None
    param = params[name]
    getattr(param, "weight_loader", default_weight_loader)(param, tensor)
    return name


def load_params(module: torch.nn.Module, weights: Iterable[tuple[str, torch.Tensor]],
                rename: Callable[[str], Optional[str]], *, dequantize: bool) -> set[str]:
    """Copy checkpoint tensors into ``module``'s parameters; the names of those loaded.

    ``rename(name)`` maps a checkpoint name to a parameter-space name (before
    the merges above), or None to skip it (another model's tensor, a layer of
    another pipeline stage). A tensor with no parameter raises: a silently
    skipped tensor is a wrong model.
    """
    params = dict(module.named_parameters())
    loaded = set()
    for name, tensor in dequantized(weights) if dequantize else weights:
        target = rename(name)
        if target is None:
            continue
        param_name = _load_one(params, target, tensor)
        if param_name is None:
            raise KeyError(f"checkpoint tensor {name!r} -> {target!r} has no parameter in {type(module).__name__}")
        loaded.add(param_name)
    return loaded
