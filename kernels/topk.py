"""Exact row-wise top-k of fp32 scores by radix select (Triton).

``topk_rows(scores, starts, ends, topk)`` keeps, for each row r, the ``topk``
largest of ``scores[r, starts[r]:ends[r]]`` and returns their column numbers
(int32 ``[R, topk]``; valid first, then -1). A range of at most ``topk`` columns
returns all of it, in order, without reading a score. Only columns inside the
range are ever read, so the rest of a row may be uninitialised memory.

Algorithm (one program per row, memory bounded by the row itself): map each
float to a uint32 key whose unsigned order is the float order (NaN ranks as
-inf), then find the key of the topk-th largest element one byte at a time
(most significant first) with a 256-bin histogram of the keys that still
match the digits chosen so far — at most 4 passes, fewer when the threshold
bin is taken whole. A last pass writes every element above the threshold and
the first (by column) of those equal to it, compacted with prefix sums.
"""

import torch
import triton
import triton.language as tl

from ._triton_utils import check_launchable

_RADIX_BINS = 256


@triton.jit
def radix_key(x):
    """uint32 key with the same order as the fp32 value (NaN -> -inf)."""
    x = tl.where(x == x, x, float("-inf"))
    bits = x.to(tl.uint32, bitcast=True)
    return tl.where((bits >> 31) != 0, bits ^ 0xFFFFFFFF, bits | 0x80000000)


@triton.jit
def _topk_row_kernel(
    scores_ptr, scores_stride, starts_ptr, ends_ptr, out_ptr, out_stride, num_cols,
    TOPK: tl.constexpr, BLOCK: tl.constexpr,
):
    row = tl.program_id(0).to(tl.int64)
    start = tl.maximum(tl.load(starts_ptr + row), 0)
    end = tl.minimum(tl.load(ends_ptr + row), num_cols)
    count = end - start
    row_scores = scores_ptr + row * scores_stride
    row_out = out_ptr + row * out_stride
    offs = tl.arange(0, BLOCK)
    if count <= TOPK:
        for c in range(0, TOPK, BLOCK):
            i = c + offs
            tl.store(row_out + i, tl.where(i < count, start + i, -1), mask=i < TOPK)
    else:
        bins = tl.arange(0, 256)
        prefix = tl.zeros((), tl.uint32)  # digits of the threshold key found so far
        known = tl.zeros((), tl.uint32)  # mask of those digits
        remaining = tl.full((), TOPK, tl.int32)  # how many still to take at or below the prefix
        bin_count = tl.full((), -1, tl.int32)
        for p in tl.static_range(4):
            if bin_count != remaining:  # else the threshold bin is taken whole: done
                shift = 24 - 8 * p
                hist = tl.zeros([256], tl.int32)
                for c in range(start, end, BLOCK):
                    cols = c + offs
                    inside = cols < end
                    key = radix_key(tl.load(row_scores + cols, mask=inside, other=0.0))
                    match = inside & ((key & known) == prefix)
                    hist += tl.histogram(((key >> shift) & 0xFF).to(tl.int32), 256, mask=match)
                at_or_above = tl.cumsum(hist, 0, reverse=True)
                digit = tl.sum((at_or_above >= remaining).to(tl.int32), 0) - 1
                bin_count = tl.sum(tl.where(bins == digit, hist, 0), 0)
                remaining -= tl.sum(tl.where(bins > digit, hist, 0), 0)
                prefix |= digit.to(tl.uint32) << shift
                known |= tl.full((), 0xFF, tl.uint32) << shift
        taken_above = tl.zeros((), tl.int32)
        seen_equal = tl.zeros((), tl.int32)
        for c in range(start, end, BLOCK):
            cols = c + offs
            inside = cols < end
            top = tl.load(row_scores + cols, mask=inside, other=0.0)
            key = radix_key(top) & known
            above = (inside & (key > prefix)).to(tl.int32)
            equal = (inside & (key == prefix)).to(tl.int32)
            above_slot = taken_above + tl.cumsum(above, 0) - 1
            equal_rank = seen_equal + tl.cumsum(equal, 0) - 1
            take = (above != 0) | ((equal != 0) & (equal_rank < remaining))
            slot = tl.where(above != 0, above_slot, TOPK - remaining + equal_rank)
            tl.store(row_out + slot, cols, mask=take)
            taken_above += tl.sum(above, 0)
            seen_equal += tl.sum(equal, 0)


def topk_launch_config(num_rows: int, max_cols: int) -> tuple[int, int]:
    """(BLOCK, num_warps): wide blocks when few rows must use the whole GPU alone."""
    if num_rows >= 128:
        return 2048, 8
    return min(8192, max(1024, triton.next_power_of_2(max_cols))), 16


def topk_rows(scores: torch.Tensor, starts: torch.Tensor, ends: torch.Tensor, topk: int = 2048,
              out: torch.Tensor | None = None, block: int | None = None, num_warps: int | None = None) -> torch.Tensor:
    """Columns of the ``topk`` best scores of each row within ``[starts[r], ends[r])``.

    scores: fp32 ``[R, C]`` (last dim contiguous); starts / ends: int32 ``[R]``
    (clamped to ``[0, C]``). Returns int32 ``[R, topk]`` (or fills ``out``), valid
    columns first, -1 after; order among the valid ones is unspecified.
    ``block`` / ``num_warps`` override the launch configuration (tests, benchmarks).
    """
    check_launchable(scores, starts, ends)
    if scores.dtype != torch.float32 or scores.dim() != 2 or scores.stride(1) != 1:
        raise ValueError(f"scores must be fp32 [R, C] with contiguous rows, got {scores.dtype} {tuple(scores.shape)}")
    if topk < 1:
        raise ValueError(f"topk must be positive, got {topk}")
    num_rows, num_cols = scores.shape
    if out is None:
        out = torch.empty(num_rows, topk, dtype=torch.int32, device=scores.device)
    if num_rows == 0:
        return out
    default_block, default_warps = topk_launch_config(num_rows, num_cols)
    block, warps = block or default_block, num_warps or default_warps
    _topk_row_kernel[(num_rows,)](
        scores, scores.stride(0), starts.int(), ends.int(), out, out.stride(0), num_cols,
        TOPK=topk, BLOCK=block, num_warps=warps,
    )
    return out
