"""sgl-kernel's FlashAttention 3: absent from the stand-in (``is_fa3_supported`` answers False)."""

from __future__ import annotations

from ._calls import missing, stubs

globals().update(stubs(__name__, ("flash_attn_varlen_func", "flash_attn_with_kvcache")))


def is_fa3_supported(device=None) -> bool:
    return False


def __getattr__(name):
    raise missing(__name__, name)
