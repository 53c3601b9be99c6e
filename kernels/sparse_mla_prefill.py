"""Sparse MLA prefill (Triton): query tokens attend over gathered rows of a contiguous bf16 KV buffer."""

import torch

from ._triton_utils import check_launchable
from .sparse_mla_core import LaunchConfig, default_config, sparse_mla_forward


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
    if q.dim() != 3 or kv.dim() != 2 or kv.shape[1] != q.shape[2] or indices.dim() != 2 or indices.shape[0] != q.shape[0]:
        raise ValueError(
            f"need q [T, H, D], kv [S, D], indices [T, topk]; got {tuple(q.shape)}, {tuple(kv.shape)}, {tuple(indices.shape)}"
        )
    if topk_length is not None and topk_length.shape != q.shape[:1]:
        raise ValueError(f"topk_length must be [T], got {tuple(topk_length.shape)}")
    check_launchable(q, kv, indices, *([] if topk_length is None else [topk_length]))
    q = q if q.stride(2) == 1 else q.contiguous()
    kv = kv if kv.stride(1) == 1 else kv.contiguous()
    indices = indices.to(torch.int32).contiguous()
    lengths = None if topk_length is None else topk_length.to(torch.int32).contiguous()
    if config is None:
        config = default_config(q.shape[0], q.shape[1], indices.shape[1], q.device, split=False)
    # kv rows are pages of one token: slot s -> page s
    return sparse_mla_forward(q, kv.unsqueeze(1), indices, lengths, sm_scale, d_v, False, config)
