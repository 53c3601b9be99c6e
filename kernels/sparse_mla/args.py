"""Argument contract of sparse MLA prefill and decode, checked alike by the Triton
kernels, their float32 reference and the adapters that follow the same signatures."""

import torch

from ..layout import fp8_dims


def check_prefill_args(q, kv, indices, topk_length) -> None:
    """Shape contract of ``sparse_mla_prefill`` (reference and kernel alike)."""
    if q.dim() != 3 or kv.dim() != 2 or kv.shape[1] != q.shape[2] or indices.dim() != 2 or indices.shape[0] != q.shape[0]:
        raise ValueError(
            f"need q [T, H, D], kv [S, D], indices [T, topk]; got {tuple(q.shape)}, "
            f"{tuple(kv.shape)}, {tuple(indices.shape)}"
        )
    if topk_length is not None and topk_length.shape != q.shape[:1]:
        raise ValueError(f"topk_length must be [T], got {tuple(topk_length.shape)}")


def check_decode_args(q, pages, indices, topk_length, d_v: int) -> bool:
    """Shape contract of ``sparse_mla_decode``; returns whether ``pages`` is the FP8 layout.

    ``pages`` is the cache as ``as_pages`` returns it.
    """
    if q.dim() != 4 or indices.dim() != 3 or indices.shape[:2] != q.shape[:2]:
        raise ValueError(f"need q [B, s_q, H, D] and indices [B, s_q, topk]; got {tuple(q.shape)}, {tuple(indices.shape)}")
    if topk_length is not None and topk_length.shape != q.shape[:2]:
        raise ValueError(f"topk_length must be [B, s_q], got {tuple(topk_length.shape)}")
    D = q.shape[3]
    if pages.dtype == torch.uint8:
        d_nope, _ = fp8_dims(pages.shape[-1], D)
        if d_nope != d_v:
            raise ValueError(f"the FP8 cache quantises {d_nope} values per token but d_v={d_v}; they must match")
        return True
    if pages.shape[-1] != D:
        raise ValueError(f"cache rows hold {pages.shape[-1]} values, q has D={D}")
    return False
