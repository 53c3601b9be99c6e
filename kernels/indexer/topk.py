"""Exact row-wise top-k of fp32 scores (Triton): sample-bounded single pass + radix select.

``topk_rows(scores, starts, ends, topk)`` keeps, for each row r, the ``topk``
largest of ``scores[r, starts[r]:ends[r]]`` and returns their column numbers
(int32 ``[R, topk]``; valid first, then -1). A range of at most ``topk`` columns
returns all of it, in order, without reading a score. Only columns inside the
range are read, so the rest of a row may be uninitialised memory.

Scores are compared as uint32 keys whose unsigned order is
the float order (NaN ranks as -inf):

1. Bounds from a sample: from ``SAMPLE`` evenly spaced keys, the 16-bit key
   prefixes at the sample ranks ``topk/n * SAMPLE -/+ (4 sigma + 4)`` (found with
   two 256-bin histograms, widened to whole prefix buckets) give ``hi`` / ``lo``,
   so the topk-th largest key very probably lies in ``[lo, hi]``.
2. One pass over the row: keys above ``hi`` go straight to the output, keys in
   ``[lo, hi]`` (typically a few thousand) to a per-row candidate buffer, both
   compacted with one prefix sum.
3. If the bounds held (fewer than topk above ``hi``, at least topk at or above
   ``lo``, candidates fit), an exact radix select over the candidates finds the
   rest (digits that ``lo`` and ``hi`` share need no pass). Otherwise
   (adversarial or tie-heavy rows) the same radix select runs over the whole row.

A radix select finds the key of the k-th largest element one byte at a time
(most significant first) from a 256-bin histogram of the keys that still match
the digits chosen so far; it stops early when the threshold bin is taken whole.
Elements equal to the threshold are taken in column order: ties go to the lower
column, whatever the launch configuration.

Launches: one program per row when the rows fill the GPU; for a few long rows
(decode at small batch) step 2 is split, S programs per row each filtering one
slice into its own segments, and a second launch concatenates the segments in
slice order (so the candidates stay in column order) and runs step 3. Both give
the same output.
"""

import torch
import triton
import triton.language as tl

from .._triton_utils import check_launchable
from ..target import launch_target

CANDIDATES = 8192  # candidate buffer per row (int64 each)


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
def _running_counts(a, b):
    """Inclusive running counts of two 0/1 int32 flag vectors and their totals, both from one
    scan of ``a + (b << 16)`` (a block holds fewer than 2^16 elements)."""
    packed = a + (b << 16)
    run = tl.cumsum(packed, 0)
    total = tl.sum(packed, 0)
    return run & 0xFFFF, run >> 16, total & 0xFFFF, total >> 16


@triton.jit
def _emit(key, cols, valid, prefix, known, remaining, taken_above, seen_equal, out_ptr, above_base, equal_base):
    """Write ``cols`` of keys above the threshold prefix at ``above_base + rank`` and of
    the first ``remaining`` keys equal to it at ``equal_base + rank``; return the new counts."""
    masked = key & known
    above = (valid & (masked > prefix)).to(tl.int32)
    equal = (valid & (masked == prefix)).to(tl.int32)
    above_run, equal_run, above_total, equal_total = _running_counts(above, equal)
    above_slot = taken_above + above_run - 1
    equal_rank = seen_equal + equal_run - 1
    take = (above != 0) | ((equal != 0) & (equal_rank < remaining))
    slot = tl.where(above != 0, above_base + above_slot, equal_base + equal_rank)
    tl.store(out_ptr + slot, cols, mask=take)
    return taken_above + above_total, seen_equal + equal_total


@triton.jit
def _keys_at(ptr, idx, inside, PACKED: tl.constexpr):
    """(key, column) at ``idx``: fp32 scores of a row (column = idx), or packed candidates."""
    if PACKED:
        packed = tl.load(ptr + idx, mask=inside, other=0)
        return (packed >> 32).to(tl.uint32), (packed & 0xFFFFFFFF).to(tl.int32)
    else:
        return radix_key(tl.load(ptr + idx, mask=inside, other=0.0)), idx


@triton.jit
def _radix_threshold(ptr, begin, end, need, lo, hi, PACKED: tl.constexpr, BLOCK: tl.constexpr):
    """Digits (``prefix`` under mask ``known``) of the need-th largest key in ``[begin, end)``,
    all keys in ``[lo, hi]``, and how many keys equal to it to take (``remaining``)."""
    offs = tl.arange(0, BLOCK)
    prefix = tl.zeros((), tl.uint32)
    known = tl.zeros((), tl.uint32)
    remaining = need
    bin_count = tl.full((), -1, tl.int32)
    for p in tl.static_range(4):
        shift = 24 - 8 * p
        if bin_count != remaining:  # else the threshold bin is taken whole: done
            if (lo >> shift) == (hi >> shift):  # every key has this digit: no pass needed
                prefix |= ((lo >> shift) & 0xFF) << shift
            else:
                hist = tl.zeros([256], tl.int32)
                for c in range(begin, end, BLOCK):
                    idx = c + offs
                    inside = idx < end
                    key, _ = _keys_at(ptr, idx, inside, PACKED)
                    match = inside & ((key & known) == prefix)
                    hist += tl.histogram(((key >> shift) & 0xFF).to(tl.int32), 256, mask=match)
                digit, bin_count, above = _pick_digit(hist, remaining)
                remaining -= above
                prefix |= digit.to(tl.uint32) << shift
            known |= tl.full((), 0xFF, tl.uint32) << shift
    return prefix, known, remaining


@triton.jit
def _select(ptr, begin, end, need, lo, hi, row_out, out_base, PACKED: tl.constexpr, BLOCK: tl.constexpr):
    """Write the columns of the ``need`` largest keys of ``[begin, end)`` to ``row_out[out_base:]``."""
    prefix, known, remaining = _radix_threshold(ptr, begin, end, need, lo, hi, PACKED, BLOCK)
    offs = tl.arange(0, BLOCK)
    taken_above = tl.zeros((), tl.int32)
    seen_equal = tl.zeros((), tl.int32)
    for c in range(begin, end, BLOCK):
        idx = c + offs
        inside = idx < end
        key, col = _keys_at(ptr, idx, inside, PACKED)
        taken_above, seen_equal = _emit(key, col, inside, prefix, known, remaining, taken_above, seen_equal,
                                        row_out, out_base, out_base + need - remaining)


@triton.jit
def _sample_bounds(row_scores, start, count, TOPK: tl.constexpr, SAMPLE: tl.constexpr):
    """Keys (lo, hi) around the expected threshold from SAMPLE evenly spaced keys:
    the 16-bit key prefixes at sample ranks expect -/+ (4 sigma + 4), widened to whole buckets."""
    ranks = tl.arange(0, SAMPLE)
    keys = radix_key(tl.load(row_scores + start + (ranks.to(tl.int64) * count) // SAMPLE))
    share = TOPK / count.to(tl.float32)
    expect = share * SAMPLE
    margin = 4.0 * tl.sqrt(expect * (1.0 - share)) + 4.0
    rank_hi = tl.floor(expect - margin).to(tl.int32)  # descending ranks, 0 = largest
    rank_lo = tl.ceil(expect + margin).to(tl.int32)
    want_hi = tl.maximum(rank_hi, 0) + 1
    want_lo = tl.minimum(rank_lo, SAMPLE - 1) + 1
    top = (keys >> 24).to(tl.int32)
    hist = tl.histogram(top, 256)
    top_hi, _, above_hi = _pick_digit(hist, want_hi)
    top_lo, _, above_lo = _pick_digit(hist, want_lo)
    second = ((keys >> 16) & 0xFF).to(tl.int32)
    next_hi, _, _ = _pick_digit(tl.histogram(second, 256, mask=top == top_hi), want_hi - above_hi)
    next_lo, _, _ = _pick_digit(tl.histogram(second, 256, mask=top == top_lo), want_lo - above_lo)
    hi = (top_hi.to(tl.uint32) << 24) | (next_hi.to(tl.uint32) << 16) | 0xFFFF
    lo = (top_lo.to(tl.uint32) << 24) | (next_lo.to(tl.uint32) << 16)
    hi = tl.where(rank_hi >= 0, hi, 0xFFFFFFFF).to(tl.uint32)
    lo = tl.where(rank_lo < SAMPLE, lo, 0).to(tl.uint32)
    return lo, hi


@triton.jit
def _filter(row_scores, begin, end, lo, hi, above_out, above_cap, cand_out, cand_cap, BLOCK: tl.constexpr):
    """Columns of ``[begin, end)`` whose keys are above ``hi`` -> ``above_out``, keys in ``[lo, hi]`` ->
    ``cand_out`` as ``key << 32 | column`` (int64), both in column order, each cut at its capacity.
    Returns the true counts (n_above, n_cand), which may exceed the capacities."""
    offs = tl.arange(0, BLOCK)
    n_above = tl.zeros((), tl.int32)
    n_cand = tl.zeros((), tl.int32)
    for c in range(begin, end, BLOCK):
        cols = c + offs
        inside = cols < end
        key = radix_key(tl.load(row_scores + cols, mask=inside, other=0.0))
        above = (inside & (key > hi)).to(tl.int32)
        cand = (inside & (key >= lo) & (key <= hi)).to(tl.int32)
        above_run, cand_run, above_total, cand_total = _running_counts(above, cand)
        above_slot = n_above + above_run - 1
        cand_slot = n_cand + cand_run - 1
        tl.store(above_out + above_slot, cols, mask=(above != 0) & (above_slot < above_cap))
        packed = (key.to(tl.int64) << 32) | cols.to(tl.int64)
        tl.store(cand_out + cand_slot, packed, mask=(cand != 0) & (cand_slot < cand_cap))
        n_above += above_total
        n_cand += cand_total
    return n_above, n_cand


@triton.jit
def _finish(row_scores, start, end, n_above, n_cand, lo, hi, row_cand, row_out,
            TOPK: tl.constexpr, CAND: tl.constexpr, BLOCK: tl.constexpr):
    """The rest of the row's top-k once ``n_above`` columns are in ``row_out`` and ``n_cand``
    candidates (column order) in ``row_cand``: a radix select over the candidates if the
    bounds held, else over the whole row."""
    if (n_above <= TOPK) & (n_above + n_cand >= TOPK) & (n_cand <= CAND):
        _select(row_cand, 0, n_cand, TOPK - n_above, lo, hi, row_out, n_above, True, BLOCK)
    else:  # the sample misled us (adversarial or tie-heavy row): exact select over the whole row
        _select(row_scores, start, end, TOPK, tl.zeros((), tl.uint32), tl.full((), 0xFFFFFFFF, tl.uint32),
                row_out, 0, False, BLOCK)


@triton.jit
def _write_range(row_out, start, count, TOPK: tl.constexpr, BLOCK: tl.constexpr):
    """A range of at most TOPK columns: all of it, in order, then -1."""
    offs = tl.arange(0, BLOCK)
    for c in range(0, TOPK, BLOCK):
        i = c + offs
        tl.store(row_out + i, tl.where(i < count, start + i, -1), mask=i < TOPK)


@triton.jit
def _row_range(starts_ptr, ends_ptr, row, num_cols, HAS_STARTS: tl.constexpr):
    start = tl.maximum(tl.load(starts_ptr + row), 0) if HAS_STARTS else 0
    end = tl.minimum(tl.load(ends_ptr + row), num_cols)
    return start, end


@triton.jit(do_not_specialize=["num_cols"])
def _topk_row_kernel(
    scores_ptr, scores_stride, starts_ptr, ends_ptr, out_ptr, out_stride, cand_ptr, num_cols,
    TOPK: tl.constexpr, BLOCK: tl.constexpr, SAMPLE: tl.constexpr, CAND: tl.constexpr, HAS_STARTS: tl.constexpr,
):
    """One program per row: bounds, one filtering pass, select."""
    row = tl.program_id(0).to(tl.int64)
    start, end = _row_range(starts_ptr, ends_ptr, row, num_cols, HAS_STARTS)
    count = end - start
    row_scores = scores_ptr + row * scores_stride
    row_out = out_ptr + row * out_stride
    if count <= TOPK:
        _write_range(row_out, start, count, TOPK, BLOCK)
    else:
        lo, hi = _sample_bounds(row_scores, start, count, TOPK, SAMPLE)
        row_cand = cand_ptr + row * CAND
        n_above, n_cand = _filter(row_scores, start, end, lo, hi, row_out, TOPK, row_cand, CAND, BLOCK)
        _finish(row_scores, start, end, n_above, n_cand, lo, hi, row_cand, row_out, TOPK, CAND, BLOCK)


@triton.jit(do_not_specialize=["num_cols", "seg_cap"])
def _topk_split_filter_kernel(
    scores_ptr, scores_stride, starts_ptr, ends_ptr, above_ptr, seg_ptr, counts_ptr, num_cols, seg_cap,
    TOPK: tl.constexpr, BLOCK: tl.constexpr, SAMPLE: tl.constexpr, SPLITS: tl.constexpr, HAS_STARTS: tl.constexpr,
):
    """Program (row, j) filters the j-th of SPLITS equal slices of the row into its own segments
    (above ``[TOPK]`` int32, candidates ``[seg_cap]`` int64) and writes its counts; program j = 0
    also writes the bounds. Every program computes the same bounds from the same sample."""
    row = tl.program_id(0).to(tl.int64)
    j = tl.program_id(1)
    start, end = _row_range(starts_ptr, ends_ptr, row, num_cols, HAS_STARTS)
    count = end - start
    if count > TOPK:
        row_scores = scores_ptr + row * scores_stride
        lo, hi = _sample_bounds(row_scores, start, count, TOPK, SAMPLE)
        width = tl.cdiv(count, SPLITS)
        begin = start + j * width
        stop = tl.minimum(begin + width, end)
        seg = row * SPLITS + j
        n_above, n_cand = _filter(row_scores, begin, stop, lo, hi, above_ptr + seg * TOPK, TOPK,
                                  seg_ptr + seg * seg_cap, seg_cap, BLOCK)
        counts = counts_ptr + row * (2 * SPLITS + 2)
        tl.store(counts + 2 * j, n_above)
        tl.store(counts + 2 * j + 1, n_cand)
        if j == 0:
            tl.store(counts + 2 * SPLITS, lo.to(tl.int32, bitcast=True))
            tl.store(counts + 2 * SPLITS + 1, hi.to(tl.int32, bitcast=True))


@triton.jit
def _concat_segments(seg_base, seg_stride, counts, total, dst, SPLITS_P2: tl.constexpr, COPY: tl.constexpr):
    """Copy the first ``total`` entries of segments ``0..`` (segment j: ``counts[j]`` entries at
    ``seg_base + j * seg_stride``, counts 0 past the last) to ``dst``, back to back, in one pass:
    each output index finds its segment among the running ends."""
    seg_ends = tl.cumsum(counts, 0)
    seg_starts = seg_ends - counts
    js = tl.arange(0, SPLITS_P2)
    offs = tl.arange(0, COPY)
    for i0 in range(0, total, COPY):
        i = i0 + offs
        ok = i < total
        j = tl.sum((i[:, None] >= seg_ends[None, :]).to(tl.int32), axis=1)
        first = tl.sum(tl.where(js[None, :] == j[:, None], seg_starts[None, :], 0), axis=1)
        tl.store(dst + i, tl.load(seg_base + j.to(tl.int64) * seg_stride + (i - first), mask=ok), mask=ok)


@triton.jit(do_not_specialize=["num_cols", "seg_cap"])
def _topk_split_merge_kernel(
    scores_ptr, scores_stride, starts_ptr, ends_ptr, out_ptr, out_stride, above_ptr, seg_ptr, counts_ptr,
    cand_ptr, num_cols, seg_cap,
    TOPK: tl.constexpr, BLOCK: tl.constexpr, SPLITS: tl.constexpr, SPLITS_P2: tl.constexpr, CAND: tl.constexpr,
    COPY: tl.constexpr, HAS_STARTS: tl.constexpr,
):
    """One program per row: concatenate the segments in slice order (so columns stay in order and
    ties go to the lower column, as in the one-program kernel), then select."""
    row = tl.program_id(0).to(tl.int64)
    start, end = _row_range(starts_ptr, ends_ptr, row, num_cols, HAS_STARTS)
    count = end - start
    row_out = out_ptr + row * out_stride
    if count <= TOPK:
        _write_range(row_out, start, count, TOPK, BLOCK)
    else:
        counts = counts_ptr + row * (2 * SPLITS + 2)
        lo = tl.load(counts + 2 * SPLITS).to(tl.uint32, bitcast=True)
        hi = tl.load(counts + 2 * SPLITS + 1).to(tl.uint32, bitcast=True)
        js = tl.arange(0, SPLITS_P2)
        above_counts = tl.load(counts + 2 * js, mask=js < SPLITS, other=0)
        cand_counts = tl.load(counts + 2 * js + 1, mask=js < SPLITS, other=0)
        n_above = tl.sum(above_counts, 0)
        n_cand = tl.sum(cand_counts, 0)
        row_cand = cand_ptr + row * CAND
        if (n_above <= TOPK) & (n_cand <= CAND):  # else _finish selects over the whole row
            _concat_segments(above_ptr + row * SPLITS * TOPK, TOPK, above_counts, n_above, row_out, SPLITS_P2, COPY)
            _concat_segments(seg_ptr + row * SPLITS * seg_cap, seg_cap, cand_counts, n_cand, row_cand, SPLITS_P2, COPY)
        _finish(scores_ptr + row * scores_stride, start, end, n_above, n_cand, lo, hi, row_cand, row_out,
                TOPK, CAND, BLOCK)


def topk_sample_size(num_cols: int) -> int:
    """Keys sampled per row for the bounds (short rows: a rough bound is enough,
    since all of a row fits the candidate buffer)."""
    if num_cols <= 4096:
        return 64
    return 1024 if num_cols <= 65536 else 2048


def topk_launch_config(num_rows: int, max_cols: int) -> tuple[int, int]:
    """(BLOCK, num_warps) of the one-program-per-row kernel: wide blocks when few rows must use the GPU alone."""
    if num_rows >= 128:
        return 2048, 8
    return min(8192, max(1024, triton.next_power_of_2(max_cols))), 16


def topk_splits(num_rows: int, num_cols: int, sm_count: int) -> int:
    """Slices per row: 1 (one program per row) unless the rows leave most SMs idle; then enough
    slices of at least 1024 columns to give each SM about one, at most 32."""
    if 2 * num_rows > sm_count:
        return 1
    return max(1, min(32, sm_count // num_rows, num_cols // 1024))


def topk_rows(scores: torch.Tensor, starts: torch.Tensor | None, ends: torch.Tensor, topk: int = 2048,
              out: torch.Tensor | None = None, block: int | None = None, num_warps: int | None = None,
              splits: int | None = None) -> torch.Tensor:
    """Columns of the ``topk`` best scores of each row within ``[starts[r], ends[r])``.

    scores: fp32 ``[R, C]`` (last dim contiguous); starts / ends: int32 ``[R]``
    (clamped to ``[0, C]``; ``starts=None``: every row from column 0, with no tensor to fill). Returns int32 ``[R, topk]`` (or fills ``out``), valid
    columns first, then -1; valid columns in the order of the selection (the same
    for every launch configuration), ties at the threshold going to the lower column.
    ``block`` / ``num_warps`` / ``splits`` override the launch configuration (tests,
    benchmarks). With ``splits`` S > 1 (few rows), S programs per row filter one
    slice each and a second launch merges and selects.
    Scratch: ``R x min(8192, C)`` int64 candidates; with S > 1 also ``R x C`` int64
    and ``R x S x topk`` int32 segments.
    """
    check_launchable(scores, ends, *([] if starts is None else [starts]))
    if scores.dtype != torch.float32 or scores.dim() != 2 or scores.stride(1) != 1:
        raise ValueError(f"scores must be fp32 [R, C] with contiguous rows, got {scores.dtype} {tuple(scores.shape)}")
    if topk < 1:
        raise ValueError(f"topk must be positive, got {topk}")
    num_rows, num_cols = scores.shape
    if out is None:
        out = torch.empty(num_rows, topk, dtype=torch.int32, device=scores.device)
    if num_rows == 0:
        return out
    device = scores.device
    splits = splits or topk_splits(num_rows, num_cols, launch_target(device).sm_count)
    cand = min(CANDIDATES, triton.next_power_of_2(num_cols))  # a row's candidates <= its length
    candidates = torch.empty(num_rows, cand, dtype=torch.int64, device=device)
    has_starts = starts is not None
    ends, sample = ends.int(), topk_sample_size(num_cols)
    starts = starts.int() if has_starts else ends  # an unread stand-in pointer
    if splits == 1:
        default_block, default_warps = topk_launch_config(num_rows, num_cols)
        _topk_row_kernel[(num_rows,)](
            scores, scores.stride(0), starts, ends, out, out.stride(0), candidates, num_cols,
            TOPK=topk, BLOCK=block or default_block, SAMPLE=sample, CAND=cand, HAS_STARTS=has_starts,
            num_warps=num_warps or default_warps,
        )
        return out
    seg_cap = triton.cdiv(num_cols, splits)
    above = torch.empty(num_rows, splits, topk, dtype=torch.int32, device=device)
    segments = torch.empty(num_rows, splits, seg_cap, dtype=torch.int64, device=device)
    counts = torch.empty(num_rows, 2 * splits + 2, dtype=torch.int32, device=device)
    slice_block = min(2048, max(256, triton.next_power_of_2(seg_cap)))
    _topk_split_filter_kernel[(num_rows, splits)](
        scores, scores.stride(0), starts, ends, above, segments, counts, num_cols, seg_cap,
        TOPK=topk, BLOCK=block or slice_block, SAMPLE=sample, SPLITS=splits, HAS_STARTS=has_starts,
        num_warps=num_warps or 8,
    )
    _topk_split_merge_kernel[(num_rows,)](
        scores, scores.stride(0), starts, ends, out, out.stride(0), above, segments, counts, candidates,
        num_cols, seg_cap, TOPK=topk, BLOCK=block or 4096, SPLITS=splits, SPLITS_P2=triton.next_power_of_2(splits),
        CAND=cand, COPY=1024, HAS_STARTS=has_starts,
        num_warps=num_warps or 16,
    )
    return out
