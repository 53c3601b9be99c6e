"""Exact row-wise top-k of fp32 scores (Triton): sample-bounded single pass + radix select.

``topk_rows(scores, starts, ends, topk)`` keeps, for each row r, the ``topk``
largest of ``scores[r, starts[r]:ends[r]]`` and returns their column numbers
(int32 ``[R, topk]``; valid first, then -1). A range of at most ``topk`` columns
returns all of it, in order, without reading a score. Only columns inside the
range are read, so the rest of a row may be uninitialised memory.

One program per row. Scores are compared as uint32 keys whose unsigned order is
the float order (NaN ranks as -inf):

1. Bounds from a sample: sort ``SAMPLE`` evenly spaced keys and take the keys at
   the sample ranks ``topk/n * SAMPLE -/+ (4 sigma + 4)`` as ``hi`` / ``lo``, so
   the topk-th largest key very probably lies in ``[lo, hi]``.
2. One pass over the row: keys above ``hi`` go straight to the output, keys in
   ``[lo, hi]`` (typically a few thousand) to a per-row candidate buffer, both
   compacted with one prefix sum.
3. If the bounds held (fewer than topk above ``hi``, at least topk at or above
   ``lo``, candidates fit), an exact radix select over the candidates in
   registers finds the rest. Otherwise (adversarial or tie-heavy rows) a
   streaming radix select over the whole row, one byte per pass, decides.

A radix select finds the key of the k-th largest element one byte at a time
(most significant first) from a 256-bin histogram of the keys that still match
the digits chosen so far; it stops early when the threshold bin is taken whole.
Elements equal to the threshold are taken in column order (ties are arbitrary).
"""

import torch
import triton
import triton.language as tl

from ._triton_utils import check_launchable

CANDIDATES = 4096  # candidate buffer per row (int64 each)


@triton.jit
def radix_key(x):
    """uint32 key with the same order as the fp32 value (NaN -> -inf)."""
    x = tl.where(x == x, x, float("-inf"))
    bits = x.to(tl.uint32, bitcast=True)
    return tl.where((bits >> 31) != 0, bits ^ 0xFFFFFFFF, bits | 0x80000000)


@triton.jit
def _pick_digit(hist, remaining):
    """Digit whose bin holds the remaining-th largest key; (digit, its count, count above it)."""
    bins = tl.arange(0, 256)
    at_or_above = tl.cumsum(hist, 0, reverse=True)
    digit = tl.sum((at_or_above >= remaining).to(tl.int32), 0) - 1
    bin_count = tl.sum(tl.where(bins == digit, hist, 0), 0)
    above = tl.sum(tl.where(bins > digit, hist, 0), 0)
    return digit, bin_count, above


@triton.jit
def _emit(key, cols, valid, prefix, known, remaining, taken_above, seen_equal, out_ptr, above_base, equal_base):
    """Write ``cols`` of keys above the threshold prefix at ``above_base + rank`` and of
    the first ``remaining`` keys equal to it at ``equal_base + rank``; return the new counts."""
    masked = key & known
    above = (valid & (masked > prefix)).to(tl.int32)
    equal = (valid & (masked == prefix)).to(tl.int32)
    run = tl.cumsum(above + (equal << 16), 0)  # both prefix sums in one scan (blocks < 2^16)
    above_slot = taken_above + (run & 0xFFFF) - 1
    equal_rank = seen_equal + (run >> 16) - 1
    take = (above != 0) | ((equal != 0) & (equal_rank < remaining))
    slot = tl.where(above != 0, above_base + above_slot, equal_base + equal_rank)
    tl.store(out_ptr + slot, cols, mask=take)
    return taken_above + tl.sum(above, 0), seen_equal + tl.sum(equal, 0)


@triton.jit
def _streaming_select(row_scores, row_out, start, end, TOPK: tl.constexpr, BLOCK: tl.constexpr):
    """Exact top-k of the whole row by radix select, re-reading the row per byte."""
    offs = tl.arange(0, BLOCK)
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
            digit, bin_count, above = _pick_digit(hist, remaining)
            remaining -= above
            prefix |= digit.to(tl.uint32) << shift
            known |= tl.full((), 0xFF, tl.uint32) << shift
    taken_above = tl.zeros((), tl.int32)
    seen_equal = tl.zeros((), tl.int32)
    for c in range(start, end, BLOCK):
        cols = c + offs
        inside = cols < end
        key = radix_key(tl.load(row_scores + cols, mask=inside, other=0.0))
        taken_above, seen_equal = _emit(key, cols, inside, prefix, known, remaining, taken_above, seen_equal,
                                        row_out, 0, TOPK - remaining)


@triton.jit
def _candidate_select(key, cols, valid, lo, hi, need, row_out, out_base):
    """Exact top-``need`` of a register block of candidate keys, all in ``[lo, hi]``."""
    prefix = tl.zeros((), tl.uint32)
    known = tl.zeros((), tl.uint32)
    remaining = need
    bin_count = tl.full((), -1, tl.int32)
    for p in tl.static_range(4):
        shift = 24 - 8 * p
        if bin_count != remaining:
            if (lo >> shift) == (hi >> shift):  # every candidate has this digit: no histogram needed
                prefix |= ((lo >> shift) & 0xFF) << shift
            else:
                match = valid & ((key & known) == prefix)
                hist = tl.histogram(((key >> shift) & 0xFF).to(tl.int32), 256, mask=match)
                digit, bin_count, above = _pick_digit(hist, remaining)
                remaining -= above
                prefix |= digit.to(tl.uint32) << shift
            known |= tl.full((), 0xFF, tl.uint32) << shift
    _emit(key, cols, valid, prefix, known, remaining, 0, 0, row_out, out_base, out_base + need - remaining)


@triton.jit
def _topk_row_kernel(
    scores_ptr, scores_stride, starts_ptr, ends_ptr, out_ptr, out_stride, cand_ptr, num_cols,
    TOPK: tl.constexpr, BLOCK: tl.constexpr, SAMPLE: tl.constexpr, CAND: tl.constexpr,
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
        # 1. bounds [lo, hi] on the threshold key from a sorted sample
        ranks = tl.arange(0, SAMPLE)
        sample = tl.load(row_scores + start + (ranks.to(tl.int64) * count) // SAMPLE)
        sample = tl.sort(radix_key(sample), descending=True)
        share = TOPK / count.to(tl.float32)
        expect = share * SAMPLE
        margin = 4.0 * tl.sqrt(expect * (1.0 - share)) + 4.0
        rank_hi = tl.floor(expect - margin).to(tl.int32)
        rank_lo = tl.ceil(expect + margin).to(tl.int32)
        hi = tl.where(rank_hi >= 0, tl.max(tl.where(ranks == rank_hi, sample, 0), 0), 0xFFFFFFFF).to(tl.uint32)
        lo = tl.where(rank_lo < SAMPLE, tl.max(tl.where(ranks == rank_lo, sample, 0), 0), 0).to(tl.uint32)
        # 2. one pass: above hi -> output, within [lo, hi] -> candidates
        row_cand = cand_ptr + row * CAND
        n_above = tl.zeros((), tl.int32)
        n_cand = tl.zeros((), tl.int32)
        for c in range(start, end, BLOCK):
            cols = c + offs
            inside = cols < end
            key = radix_key(tl.load(row_scores + cols, mask=inside, other=0.0))
            above = (inside & (key > hi)).to(tl.int32)
            cand = (inside & (key >= lo) & (key <= hi)).to(tl.int32)
            run = tl.cumsum(above + (cand << 16), 0)
            above_slot = n_above + (run & 0xFFFF) - 1
            cand_slot = n_cand + (run >> 16) - 1
            tl.store(row_out + above_slot, cols, mask=(above != 0) & (above_slot < TOPK))
            packed = (key.to(tl.int64) << 32) | cols.to(tl.int64)
            tl.store(row_cand + cand_slot, packed, mask=(cand != 0) & (cand_slot < CAND))
            n_above += tl.sum(above, 0)
            n_cand += tl.sum(cand, 0)
        # 3. exact finish over the candidates, or the whole row if the bounds missed
        if (n_above <= TOPK) & (n_above + n_cand >= TOPK) & (n_cand <= CAND):
            slots = tl.arange(0, CAND)
            valid = slots < n_cand
            packed = tl.load(row_cand + slots, mask=valid, other=0)
            _candidate_select((packed >> 32).to(tl.uint32), (packed & 0xFFFFFFFF).to(tl.int32), valid,
                              lo, hi, TOPK - n_above, row_out, n_above)
        else:
            _streaming_select(row_scores, row_out, start, end, TOPK, BLOCK)


def topk_sample_size(num_cols: int) -> int:
    """Keys sampled per row for the bounds (short rows: a rough bound is enough,
    since all of a row fits the candidate buffer)."""
    if num_cols <= CANDIDATES:
        return 64
    return 1024 if num_cols <= 65536 else 2048


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
    Scratch: ``R x min(4096, C)`` int64 candidates.
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
    cand = max(256, min(CANDIDATES, triton.next_power_of_2(num_cols)))  # a row's candidates <= its length
    candidates = torch.empty(num_rows, cand, dtype=torch.int64, device=scores.device)
    _topk_row_kernel[(num_rows,)](
        scores, scores.stride(0), starts.int(), ends.int(), out, out.stride(0), candidates, num_cols,
        TOPK=topk, BLOCK=block, SAMPLE=topk_sample_size(num_cols), CAND=cand, num_warps=warps,
    )
    return out
