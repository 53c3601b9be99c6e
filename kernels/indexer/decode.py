"""Lightning-indexer decode / verify: scores read straight from the paged FP8
indexer cache, exact top-k, and the position -> cache-slot transform (Triton).

Shapes are static given the inputs' shapes (the scratch scores are
``[B * s_q, max_pages * 64]`` fp32) and nothing syncs with the host, so a call
captures into a CUDA graph. Only pages holding a request's first ``seq_lens[b]``
tokens are read; scores beyond a row's range are neither written nor read.
"""

import torch
import triton
import triton.language as tl

from .._triton_utils import check_launchable
from .logits import head_block, score_tile
from ..layout import INDEX_K_PAGE_SIZE, index_k_head_dim
from ..target import launch_target
from .topk import topk_rows


@triton.jit(do_not_specialize=["page_table_stride", "max_pages", "s_q", "num_splits"])
def _decode_logits_kernel(
    q_ptr, keys_ptr, scales_ptr, w_ptr, seq_lens_ptr, page_table_ptr, page_table_stride,
    logits_ptr, logits_stride, ends_ptr, num_cache_pages, max_pages, num_heads, s_q, num_splits,
    D: tl.constexpr, BLOCK_H: tl.constexpr, BLOCK_Q: tl.constexpr, BLOCK_S: tl.constexpr,
    FP8_HW: tl.constexpr, DOT_FP32: tl.constexpr, NUM_STAGES: tl.constexpr, WRITE_ENDS: tl.constexpr,
):
    PAGE: tl.constexpr = 64
    PAGE_BYTES: tl.constexpr = PAGE * (D + 4)
    req = tl.program_id(0)
    seq_len = tl.load(seq_lens_ptr + req)
    length = tl.minimum(seq_len, max_pages * PAGE)
    first = tl.program_id(1) * BLOCK_S
    if WRITE_ENDS:  # the top-k's row ends: position i sees seq_len - s_q + i + 1 keys
        if tl.program_id(1) == 0:
            i = tl.arange(0, BLOCK_Q)
            tl.store(ends_ptr + req * s_q + i, tl.minimum(seq_len - s_q + 1 + i, max_pages * PAGE), mask=i < s_q)
    if first < length:
        dims = tl.arange(0, D)
        pair = tl.arange(0, BLOCK_Q * BLOCK_H)
        q_row = req * s_q + pair // BLOCK_H
        q_head = pair % BLOCK_H
        q_ok = (pair // BLOCK_H < s_q) & (q_head < num_heads)
        q = tl.load(q_ptr + (q_row.to(tl.int64) * num_heads + q_head)[:, None] * D + dims[None, :],
                    mask=q_ok[:, None], other=0)
        rows = tl.arange(0, BLOCK_Q)
        heads = tl.arange(0, BLOCK_H)
        w_ok = (rows[:, None] < s_q) & (heads[None, :] < num_heads)
        w = tl.load(w_ptr + (req * s_q + rows).to(tl.int64)[:, None] * num_heads + heads[None, :], mask=w_ok, other=0.0)
        out_rows = logits_ptr + (req * s_q + rows).to(tl.int64)[None, :] * logits_stride
        page_row = page_table_ptr + req.to(tl.int64) * page_table_stride
        # Tiles of a request are dealt round-robin to its num_splits programs, so every request's
        # actual length (not the graph's whole-context page table) is spread over all of them.
        for t0 in tl.range(first, length, num_splits * BLOCK_S, num_stages=NUM_STAGES):
            tok = t0 + tl.arange(0, BLOCK_S)
            tok_ok = tok < length
            page = tl.load(page_row + tok // PAGE, mask=tok_ok, other=0).to(tl.int64)
            tok_ok &= (page >= 0) & (page < num_cache_pages)
            offset = tok % PAGE
            k = tl.load(keys_ptr + (page * PAGE_BYTES + offset * D)[:, None] + dims[None, :], mask=tok_ok[:, None], other=0)
            k_scale = tl.load(scales_ptr + page * (PAGE_BYTES // 4) + (PAGE * D) // 4 + offset, mask=tok_ok, other=0.0)
            scores = score_tile(k, q, w, k_scale, BLOCK_S, BLOCK_Q, BLOCK_H, FP8_HW, DOT_FP32)
            tl.store(out_rows + tok[:, None], scores, mask=tok_ok[:, None] & (rows[None, :] < s_q))


def indexer_topk_decode(q, k_cache, weights, seq_lens, page_table, topk: int = 2048, block_s: int = 128,
                        num_warps: int = 4, num_stages: int = 3, programs_per_sm: int = 4) -> torch.Tensor:
    """Top-k positions per (request, verify position) (same contract as the reference).

    q ``[B, s_q, H, D]`` fp8 e4m3; k_cache uint8 ``[num_pages, 64*(D+4)]``; weights
    ``[B, s_q, H]`` fp32; seq_lens ``[B]`` int (cached tokens incl. the s_q new
    ones); page_table ``[B, max_pages]`` int32 page ids. Position i of request b
    sees ``[0, seq_lens[b] - s_q + i + 1)``. Returns int32 ``[B, s_q, topk]``
    positions within the request, valid first, -1 padded. The block/warp arguments
    are tuning knobs; the defaults won the H200 sweep (docs/perf.md).
    """
    if q.dim() != 4 or q.dtype != torch.float8_e4m3fn:
        raise ValueError(f"q must be float8_e4m3fn [B, s_q, H, D], got {q.dtype} {tuple(q.shape)}")
    batch, s_q, num_heads, dim = q.shape
    if index_k_head_dim(k_cache) != dim or not k_cache.is_contiguous():
        raise ValueError(f"contiguous cache of D={dim} expected, got {tuple(k_cache.shape)}")
    if weights.shape != (batch, s_q, num_heads) or seq_lens.shape != (batch,) or page_table.dim() != 2 \
            or page_table.shape[0] != batch:
        raise ValueError("weights [B, s_q, H], seq_lens [B] and page_table [B, max_pages] expected")
    device = check_launchable(q, k_cache, weights, seq_lens, page_table)
    capacity = page_table.shape[1] * INDEX_K_PAGE_SIZE
    out = torch.empty(batch * s_q, topk, dtype=torch.int32, device=device)
    if batch * s_q == 0:
        return out.view(batch, s_q, topk)
    ends = torch.empty(batch * s_q, dtype=torch.int32, device=device)
    logits = torch.empty(batch * s_q, max(1, capacity), dtype=torch.float32, device=device)
    write_decode_logits(q, k_cache, weights, seq_lens, page_table, logits, block_s=block_s, num_warps=num_warps,
                        num_stages=num_stages, programs_per_sm=programs_per_sm, row_ends=ends)
    topk_rows(logits, None, ends, topk, out=out)
    return out.view(batch, s_q, topk)


def write_decode_logits(q, k_cache, weights, seq_lens, page_table, logits, block_s=128, num_warps=4, num_stages=3,
                        programs_per_sm: int = 4, row_ends: torch.Tensor | None = None) -> None:
    """Scores into ``logits [B * s_q, max_pages * 64]``: row ``b * s_q + i``, column = position,
    for positions < min(seq_lens[b], max_pages * 64). Inputs as ``indexer_topk_decode``.
    ``row_ends`` (int32 ``[B * s_q]``), if given, receives each row's key count
    ``min(seq_lens[b] - s_q + i + 1, max_pages * 64)`` (the same launch, so a decode step
    spends no kernels on it)."""
    batch, s_q, num_heads, dim = q.shape
    capacity = page_table.shape[1] * INDEX_K_PAGE_SIZE
    splits = decode_splits(batch, capacity, block_s, q.device, programs_per_sm)
    target = launch_target(q.device)
    page_table = page_table.int()
    _decode_logits_kernel[(batch, splits)](
        q.contiguous().view(torch.uint8), k_cache, k_cache.view(torch.float32), weights.float().contiguous(),
        seq_lens.int(), page_table, page_table.stride(0), logits, logits.stride(0),
        logits if row_ends is None else row_ends, k_cache.shape[0], page_table.shape[1], num_heads, s_q, splits,
        D=dim, BLOCK_H=head_block(num_heads), BLOCK_Q=triton.next_power_of_2(s_q), BLOCK_S=block_s,
        FP8_HW=target.fp8_hardware, DOT_FP32=target.dot_fp32, NUM_STAGES=num_stages, WRITE_ENDS=row_ends is not None,
        num_warps=num_warps,
    )


def decode_splits(batch: int, capacity: int, block_s: int, device: torch.device, programs_per_sm: int = 4) -> int:
    """Programs per request: about ``programs_per_sm`` per SM over the batch, at most one per key tile.

    The grid is fixed when a CUDA graph is captured, while the lengths vary per replay, so the split
    depends on the batch only; a program whose first tile lies beyond its request's length exits.
    """
    sms = launch_target(device).sm_count
    return max(1, min(triton.cdiv(capacity, block_s), triton.cdiv(programs_per_sm * sms, batch)))


@triton.jit(do_not_specialize=["table_stride", "table_cols"])
def _positions_to_slots_kernel(pos_ptr, table_ptr, out_ptr, per_row, table_stride, table_cols,
                               PAGE_SIZE: tl.constexpr, BLOCK: tl.constexpr):
    row = tl.program_id(0).to(tl.int64)
    cols = tl.program_id(1) * BLOCK + tl.arange(0, BLOCK)
    col_ok = cols < per_row
    pos = tl.load(pos_ptr + row * per_row + cols, mask=col_ok, other=-1)
    valid = (pos >= 0) & (pos < table_cols * PAGE_SIZE)
    entry = tl.load(table_ptr + row * table_stride + pos // PAGE_SIZE, mask=col_ok & valid, other=0)
    slot = entry.to(tl.int64) * PAGE_SIZE + pos % PAGE_SIZE
    tl.store(out_ptr + row * per_row + cols, tl.where(valid, slot, -1).to(tl.int32), mask=col_ok)


def topk_positions_to_slots(positions: torch.Tensor, table: torch.Tensor, page_size: int = 1) -> torch.Tensor:
    """Request-local positions -> global cache slots (same contract as the reference).

    positions int32 ``[R, topk]`` or ``[B, s_q, topk]``; table ``[R or B, n]``:
    sglang's per-token ``page_table_1`` (page_size 1) or page ids (page_size 64).
    -1 and positions beyond the table give -1.
    """
    if positions.shape[0] != table.shape[0] or table.dim() != 2:
        raise ValueError(f"positions {tuple(positions.shape)} and table {tuple(table.shape)} differ in rows")
    check_launchable(positions, table)
    out = torch.empty(positions.shape, dtype=torch.int32, device=positions.device)
    rows = positions.shape[0]
    per_row = positions[0].numel() if rows else 0
    if rows == 0 or per_row == 0:
        return out
    block = 1024
    table = table.int()
    _positions_to_slots_kernel[(rows, triton.cdiv(per_row, block))](
        positions.int().contiguous(), table, out, per_row, table.stride(0), table.shape[1],
        PAGE_SIZE=page_size, BLOCK=block, num_warps=4,
    )
    return out
