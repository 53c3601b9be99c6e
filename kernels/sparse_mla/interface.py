"""Sparse MLA launchers (Triton) over ``kernel.py``.

* ``sparse_mla_prefill``: query tokens attend over gathered rows of a contiguous bf16 KV buffer.
* ``sparse_mla_decode``: decode / MTP verify over a paged bf16 or FP8 (656-byte) MLA cache.
"""

import torch

from .._triton_utils import check_launchable
from ..layout import as_pages
from .args import check_decode_args, check_prefill_args
from .kernel import LaunchConfig, default_config, sparse_mla_forward


def sparse_mla_prefill(
    q: torch.Tensor,
    kv: torch.Tensor,
    indices: torch.Tensor,
    sm_scale: float,
    d_v: int = 512,
    topk_length: torch.Tensor | None = None,
    *,
    config: LaunchConfig | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Same contract as ``reference.sparse_mla_prefill``.

    q [T, H, D] bf16; kv [S, D] bf16 (V = kv[:, :d_v]); indices [T, topk] int32 rows
    of kv, -1 / out of range = skip (never read); topk_length [T] int32 or None.
    Returns out [T, H, d_v] bf16 and lse [T, H] float32 (natural log; -inf and
    out = 0 for a row with no valid index). d_v and D - d_v must be powers of two
    >= 16 (576 = 512 + 64; test models 128 + 32, 64 + 16). ``config`` overrides
    the tile choice (benchmarks).
    """
    check_prefill_args(q, kv, indices, topk_length)
    check_launchable(q, kv, indices, *([] if topk_length is None else [topk_length]))
    q = q if q.stride(2) == 1 else q.contiguous()
    kv = kv if kv.stride(1) == 1 else kv.contiguous()
    indices = indices.to(torch.int32).contiguous()
    lengths = None if topk_length is None else topk_length.to(torch.int32).contiguous()
    if config is None:
        config = default_config(q.shape[0], q.shape[1], indices.shape[1], q.device, split=False)
    # kv rows are pages of one token: slot s -> page s
    return sparse_mla_forward(q, kv.unsqueeze(1), indices, lengths, sm_scale, d_v, False, config)


def sparse_mla_decode(
    q: torch.Tensor,
    kv_cache: torch.Tensor,
    indices: torch.Tensor,
    sm_scale: float,
    d_v: int = 512,
    topk_length: torch.Tensor | None = None,
    *,
    config: LaunchConfig | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Same contract as ``reference.sparse_mla_decode``.

    q [B, s_q, H, D] bf16 (s_q > 1 for MTP verify); kv_cache [num_pages, page_size, D]
    bf16 or uint8 [num_pages, page_size, row_bytes] FP8 (656 bytes for D = 576, with
    d_nope = d_v), a [.., 1, W] head axis accepted; indices [B, s_q, topk] int32 global
    slots (page * page_size + offset), -1 / out of range = skip (never read);
    topk_length [B, s_q] or None. Returns out [B, s_q, H, d_v] bf16, lse [B, s_q, H]
    float32. Long index lists at small batch are split across programs and merged;
    no host sync, so it captures into a CUDA graph.
    """
    pages = as_pages(kv_cache)
    kv_fp8 = check_decode_args(q, pages, indices, topk_length, d_v)
    B, s_q, H, D = q.shape
    if pages.stride(2) != 1:
        raise ValueError("cache rows must be contiguous")
    check_launchable(q, pages, indices, *([] if topk_length is None else [topk_length]))
    rows = q.reshape(B * s_q, H, D)
    rows = rows if rows.stride(2) == 1 else rows.contiguous()
    idx = indices.reshape(B * s_q, -1).to(torch.int32).contiguous()
    lengths = None if topk_length is None else topk_length.reshape(-1).to(torch.int32).contiguous()
    if config is None:
        config = default_config(B * s_q, H, idx.shape[1], q.device, split=True, kv_fp8=kv_fp8)
    out, lse = sparse_mla_forward(rows, pages, idx, lengths, sm_scale, d_v, kv_fp8, config)
    return out.reshape(B, s_q, H, d_v), lse.reshape(B, s_q, H)
