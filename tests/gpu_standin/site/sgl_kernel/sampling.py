"""Top-k / top-p renormalisation of sampling probabilities (``probs [B, V]``, rows summing to 1).

Both keep, per row, every probability at or above a threshold (ties at the
threshold are kept, as the real kernels' pivot search does), zero the rest and
rescale the kept ones to sum to 1. ``top_k`` / ``top_p`` are one value for all
rows or a ``[B]`` tensor.
"""

from __future__ import annotations

from typing import Union

import torch


def _per_row(value: Union[torch.Tensor, int, float], probs: torch.Tensor, dtype) -> torch.Tensor:
    if isinstance(value, torch.Tensor):
        return value.to(device=probs.device, dtype=dtype).reshape(-1, 1)
    return torch.full((probs.shape[0], 1), value, device=probs.device, dtype=dtype)


def _keep_at_or_above(probs: torch.Tensor, threshold: torch.Tensor) -> torch.Tensor:
    kept = torch.where(probs >= threshold, probs, torch.zeros_like(probs))
    return kept / kept.sum(-1, keepdim=True)


def top_k_renorm_prob(probs: torch.Tensor, top_k: Union[torch.Tensor, int]) -> torch.Tensor:
    """Keep the ``top_k`` largest probabilities of each row (``top_k`` clamped to ``[1, V]``)."""
    k = _per_row(top_k, probs, torch.long).clamp(1, probs.shape[-1])
    kth_largest = probs.sort(-1, descending=True).values.gather(-1, k - 1)
    return _keep_at_or_above(probs, kth_largest)


def top_p_renorm_prob(probs: torch.Tensor, top_p: Union[torch.Tensor, float]) -> torch.Tensor:
    """Keep the fewest largest probabilities of each row whose sum reaches ``top_p`` (at least one)."""
    p = _per_row(top_p, probs, probs.dtype)
    ordered = probs.sort(-1, descending=True).values
    mass_before = ordered.cumsum(-1) - ordered
    last_kept = ((mass_before < p).sum(-1, keepdim=True) - 1).clamp(min=0)
    return _keep_at_or_above(probs, ordered.gather(-1, last_kept))
