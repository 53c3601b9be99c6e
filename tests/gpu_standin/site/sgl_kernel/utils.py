"""``is_arch_support_pdl``: whether the GPU can use programmatic dependent launch (sm90 and newer)."""

from __future__ import annotations

import functools

import torch


@functools.lru_cache(maxsize=None)
def is_arch_support_pdl() -> bool:
    return torch.cuda.is_available() and torch.cuda.get_device_capability()[0] >= 9
