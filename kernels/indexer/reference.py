"""Float32 reference of the DSA lightning indexer (dsa_spec.md §2).

Score of query token t against key s (one shared key head, MQA)::

    I[t, s] = k_scale[s] * sum_h weights[t, h] * relu(q[t, h, :] . k[s, :])

``weights`` already carries the q scales, the softmax scale D^-0.5 and H^-0.5.
The top-k keeps the ``topk`` best keys of each query's attendable range and
returns their positions, valid ones first, then -1 padding (order among the
valid ones is not part of the contract). Ties are broken arbitrarily.
"""

import torch

from ..cache.index_k_reference import gather_index_k
from ..fp8 import quantize_fp8_blockwise
from ..hadamard import hadamard_rotate
from ..layout import INDEX_K_PAGE_SIZE

_SCORE_CHUNK_ELEMENTS = 1 << 25  # bound of the [rows, heads, keys] fp32 temporary


def quantize_index_q(q: torch.Tensor, weights: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The FP8 indexer's q: ``(q_fp8 [T, Hi, D], weights * q_scale [T, Hi] fp32)``.

    q ``[T, Hi, D]`` before the Hadamard: rotated (``hadamard_rotate``, float32), quantised per
    (token, head) over D (``quantize_fp8_blockwise``, ue8m0 scale); each row's scale is folded
    into its head weight, which the scores multiply with.
    """
    q_fp8, scale = quantize_fp8_blockwise(hadamard_rotate(q.float()), block=q.shape[-1])
    return q_fp8, weights.float() * scale[..., 0]


def indexer_scores(q: torch.Tensor, k: torch.Tensor, weights: torch.Tensor, k_scale: torch.Tensor | None = None) -> torch.Tensor:
    """Index scores ``[T, S]`` fp32 from q ``[T, H, D]``, k ``[S, D]``, weights ``[T, H]``.

    q and k may be fp8 (scales folded into weights / k_scale ``[S]``) or float.
    Rows are processed in chunks so the ``[rows, H, S]`` temporary stays bounded.
    """
    num_tokens, num_heads, _ = q.shape
    k32 = k.float()
    out = torch.empty(num_tokens, k.shape[0], dtype=torch.float32, device=q.device)
    rows = max(1, _SCORE_CHUNK_ELEMENTS // max(1, num_heads * k.shape[0]))
    for start in range(0, num_tokens, rows):
        q32 = q[start : start + rows].float()
        logits = torch.relu(torch.einsum("thd,sd->ths", q32, k32))
        out[start : start + rows] = torch.einsum("ths,th->ts", logits, weights[start : start + rows].float())
    if k_scale is not None:
        out *= k_scale.float().reshape(1, -1)
    return out


def _topk_in_range(scores: torch.Tensor, start: torch.Tensor, end: torch.Tensor, topk: int) -> torch.Tensor:
    """Positions of the ``topk`` best scores of each row inside ``[start, end)``.

    scores ``[R, S]``; returns int32 ``[R, topk]``: valid positions first, -1 after.
    """
    num_rows, num_keys = scores.shape
    out = torch.full((num_rows, topk), -1, dtype=torch.int32, device=scores.device)
    if num_keys == 0 or num_rows == 0:
        return out
    cols = torch.arange(num_keys, device=scores.device)
    inside = (cols >= start[:, None]) & (cols < end[:, None])
    # Rank in-range positions first (NaN scores rank lowest but are still in range).
    ranked = torch.where(inside, torch.nan_to_num(scores, nan=-torch.inf), -torch.inf)
    keep = min(topk, num_keys)
    _, idx = torch.topk(ranked, keep, dim=1)
    chosen_inside = torch.gather(inside, 1, idx)
    out[:, :keep] = torch.where(chosen_inside, idx, -1).to(torch.int32)
    return out


def indexer_topk_prefill(q, k, k_scale, weights, k_start, k_end, topk: int = 2048) -> torch.Tensor:
    """Top-k key positions per query row over a contiguous key buffer.

    q ``[T, H, D]`` fp8 (or float), k ``[S, D]`` fp8 (or float), k_scale ``[S]`` fp32,
    weights ``[T, H]`` fp32, k_start / k_end ``[T]`` int (row t attends
    ``[k_start[t], k_end[t])``, clamped to ``[0, S)``). Returns int32 ``[T, topk]``
    ABSOLUTE positions in k, -1 padded; a range of at most ``topk`` keys returns
    all of it; an empty range gives a row of -1.
    """
    num_keys = k.shape[0]
    start = k_start.long().clamp(0, num_keys)
    end = k_end.long().clamp(0, num_keys)
    out = torch.empty(q.shape[0], topk, dtype=torch.int32, device=q.device)
    rows = max(1, _SCORE_CHUNK_ELEMENTS // max(1, num_keys))
    for r0 in range(0, q.shape[0], rows):
        r1 = r0 + rows
        scores = indexer_scores(q[r0:r1], k, weights[r0:r1], k_scale)
        out[r0:r1] = _topk_in_range(scores, start[r0:r1], end[r0:r1], topk)
    return out


def indexer_topk_decode(q, k_cache, weights, seq_lens, page_table, topk: int = 2048) -> torch.Tensor:
    """Top-k positions per (request, verify position) over the paged indexer K cache.

    q ``[B, s_q, H, D]`` fp8 (FP8 pages) or float (exact rows); k_cache either
    format of ``kernels.layout``; weights ``[B, s_q, H]`` fp32; seq_lens ``[B]``
    int (tokens in the cache, including the s_q new ones); page_table
    ``[B, max_pages]`` int32 (page ids of the request's 64-token pages).
    Verify position i of request b sees positions ``[0, seq_lens[b] - s_q + i + 1)``.
    Returns int32 ``[B, s_q, topk]`` positions within the request, -1 padded.
    Only slots of positions < seq_lens[b] are read. Shapes depend only on the
    inputs' shapes and nothing reads a tensor value on the host, so the
    function captures into a CUDA graph.
    """
    batch, s_q = q.shape[:2]
    capacity = page_table.shape[1] * INDEX_K_PAGE_SIZE
    out = torch.full((batch, s_q, topk), -1, dtype=torch.int32, device=q.device)
    pos = torch.arange(capacity, device=q.device)
    starts = torch.zeros(s_q, dtype=torch.long, device=q.device)
    for b in range(batch):
        length = seq_lens[b].long()
        slots = page_table[b, pos // INDEX_K_PAGE_SIZE].long() * INDEX_K_PAGE_SIZE + pos % INDEX_K_PAGE_SIZE
        keys, k_scale = gather_index_k(k_cache, torch.where(pos < length, slots, -1))
        scores = indexer_scores(q[b], keys, weights[b], k_scale)
        ends = (length - s_q + 1 + torch.arange(s_q, device=q.device)).clamp(0, capacity)
        out[b] = _topk_in_range(scores, starts, ends, topk)
    return out


def topk_positions_to_slots(positions: torch.Tensor, table: torch.Tensor, page_size: int = 1) -> torch.Tensor:
    """Map request-local top-k positions to global cache slots (-1 stays -1).

    positions: int ``[R, topk]`` or ``[B, s_q, topk]``. table: one row per leading
    row of positions (``[R, n]`` or ``[B, n]``, shared by the s_q rows of a request).
    With ``page_size == 1`` the table is sglang's per-token ``page_table_1`` and
    ``slot = table[r, p]``; with ``page_size == 64`` it holds page ids and
    ``slot = table[r, p // 64] * 64 + p % 64``. Positions beyond the table give -1.
    """
    if positions.shape[0] != table.shape[0]:
        raise ValueError(f"positions {tuple(positions.shape)} and table {tuple(table.shape)} differ in rows")
    flat = positions.reshape(positions.shape[0], -1).long()
    if table.shape[1] == 0:
        return torch.full_like(positions, -1, dtype=torch.int32)
    valid = (flat >= 0) & (flat < table.shape[1] * page_size)
    safe = torch.where(valid, flat, 0)
    entry = torch.gather(table.long(), 1, safe // page_size)
    slots = entry * page_size + safe % page_size
    return torch.where(valid, slots, -1).to(torch.int32).reshape(positions.shape)
