"""Checkpoint loading shared by the target and the MTP draft: FP8 block dequantisation and parameter copy.

DeepSeek FP8 checkpoints store a projection as ``<name>.weight`` float8_e4m3fn
``[out, in]`` plus ``<name>.weight_scale_inv`` float32 ``[ceil(out/128),
ceil(in/128)]`` (dequant multiplier per 128x128 block). The host's FP8 linear
methods need a GPU (or sgl-kernel's AMX CPU ops), so on other devices the
plugin dequantises such pairs to the model dtype while loading.
"""

from __future__ import annotations

from typing import Iterable, Iterator

import torch
from sglang.srt.model_loader.weight_utils import default_weight_loader

FP8_BLOCK = 128


def dequantize_fp8_block(weight: torch.Tensor, scale_inv: torch.Tensor, block: int = FP8_BLOCK) -> torch.Tensor:
    """``weight.float() * scale_inv`` broadcast over ``block x block`` tiles -> float32 ``[out, in]``."""
    out_dim, in_dim = weight.shape
    scale = scale_inv.float().repeat_interleave(block, 0)[:out_dim].repeat_interleave(block, 1)[:, :in_dim]
    return weight.float() * scale


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


def load_params(module: torch.nn.Module, weights: Iterable[tuple[str, torch.Tensor]], rename) -> set[str]:
    """Copy checkpoint tensors into ``module``'s parameters.

    ``rename(name)`` maps a checkpoint name to a parameter name, or None to skip
    it. Unknown names raise (a silently skipped tensor is a wrong model).
    """
    params = dict(module.named_parameters())
    loaded = set()
    for name, tensor in dequantized(weights):
        target = rename(name)
        if target is None:
            continue
        if target not in params:
            raise KeyError(f"checkpoint tensor {name!r} -> {target!r} has no parameter in {type(module).__name__}")
        param = params[target]
        getattr(param, "weight_loader", default_weight_loader)(param, tensor)
        loaded.add(target)
    return loaded
