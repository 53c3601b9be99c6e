"""Lightning-indexer prefill: FP8 scores over a contiguous key buffer + exact top-k (Triton).

``indexer_topk_prefill`` processes query rows in chunks: one kernel writes the
fp32 scores of a chunk into a scratch buffer of at most ``LOGITS_BUDGET_BYTES``
(only columns inside each row's range are written, and key blocks outside every
row's range of a program are skipped), then ``topk_rows`` selects from it. Extra
memory is that fixed budget, never ``T x S`` fp32.
"""

import torch
import triton
import triton.language as tl

from ._triton_utils import check_launchable
from .indexer_logits import head_block, score_tile
from .target import launch_target
from .topk import topk_rows

LOGITS_BUDGET_BYTES = 256 << 20


@triton.jit(do_not_specialize=["num_rows"])
def _prefill_logits_kernel(
    q_ptr, k_ptr, k_scale_ptr, w_ptr, starts_ptr, ends_ptr, logits_ptr, logits_stride,
    row0, num_rows, num_keys, num_heads,
    D: tl.constexpr, BLOCK_H: tl.constexpr, BLOCK_T: tl.constexpr, BLOCK_S: tl.constexpr,
    FP8_HW: tl.constexpr, DOT_FP32: tl.constexpr, NUM_STAGES: tl.constexpr,
):
    first = row0 + tl.program_id(0) * BLOCK_T
    rows = first + tl.arange(0, BLOCK_T)
    row_ok = rows < num_rows
    starts = tl.minimum(tl.maximum(tl.load(starts_ptr + rows, mask=row_ok, other=num_keys), 0), num_keys)
    ends = tl.minimum(tl.maximum(tl.load(ends_ptr + rows, mask=row_ok, other=0), 0), num_keys)
    lo = tl.min(starts, 0) // BLOCK_S * BLOCK_S
    hi = tl.max(ends, 0)

    dims = tl.arange(0, D)
    pair = tl.arange(0, BLOCK_T * BLOCK_H)
    q_row = (first + pair // BLOCK_H).to(tl.int64)
    q_head = pair % BLOCK_H
    q_ok = (q_row < num_rows) & (q_head < num_heads)
    q = tl.load(q_ptr + (q_row * num_heads + q_head)[:, None] * D + dims[None, :], mask=q_ok[:, None], other=0)
    heads = tl.arange(0, BLOCK_H)
    w_ok = row_ok[:, None] & (heads[None, :] < num_heads)
    w = tl.load(w_ptr + rows.to(tl.int64)[:, None] * num_heads + heads[None, :], mask=w_ok, other=0.0)

    out_rows = logits_ptr + (rows - row0).to(tl.int64)[None, :] * logits_stride
    for s0 in tl.range(lo, hi, BLOCK_S, num_stages=NUM_STAGES):
        keys = s0 + tl.arange(0, BLOCK_S)
        key_ok = keys < num_keys
        k = tl.load(k_ptr + keys.to(tl.int64)[:, None] * D + dims[None, :], mask=key_ok[:, None], other=0)
        k_scale = tl.load(k_scale_ptr + keys, mask=key_ok, other=0.0)
        scores = score_tile(k, q, w, k_scale, BLOCK_S, BLOCK_T, BLOCK_H, FP8_HW, DOT_FP32)
        inside = (keys[:, None] >= starts[None, :]) & (keys[:, None] < ends[None, :])
        tl.store(out_rows + keys[:, None], scores, mask=inside)


def _check_inputs(q, k, k_scale, weights, k_start, k_end):
    if q.dim() != 3 or k.dim() != 2 or q.shape[2] != k.shape[1]:
        raise ValueError(f"q must be [T, H, D] and k [S, D], got {tuple(q.shape)} and {tuple(k.shape)}")
    if q.dtype != torch.float8_e4m3fn or k.dtype != torch.float8_e4m3fn:
        raise ValueError(f"q and k must be float8_e4m3fn, got {q.dtype} and {k.dtype}")
    num_tokens, num_heads, dim = q.shape
    if dim < 16 or dim & (dim - 1):
        raise ValueError(f"head dim must be a power of two >= 16, got {dim}")
    if k_scale.shape != (k.shape[0],) or weights.shape != (num_tokens, num_heads):
        raise ValueError(f"k_scale {tuple(k_scale.shape)} / weights {tuple(weights.shape)} do not match q and k")
    if k_start.shape != (num_tokens,) or k_end.shape != (num_tokens,):
        raise ValueError("k_start and k_end must be [T]")


def indexer_topk_prefill(q, k, k_scale, weights, k_start, k_end, topk: int = 2048, block_t: int = 4,
                         block_s: int = 64, num_warps: int = 4, num_stages: int = 3) -> torch.Tensor:
    """Top-k key positions per query row (same contract as the reference).

    q ``[T, H, D]`` fp8 e4m3, k ``[S, D]`` fp8 e4m3, k_scale ``[S]`` fp32, weights
    ``[T, H]`` fp32 (q scales and softmax scale folded in), k_start / k_end ``[T]``
    int: row t attends ``[k_start[t], k_end[t])`` (clamped to ``[0, S]``). Returns
    int32 ``[T, topk]`` absolute positions in k, valid first, -1 padded; a range of
    at most topk keys returns all of it; an empty range gives a row of -1.
    The block/warp arguments are tuning knobs; the defaults won the H200 sweep (docs/perf.md).
    """
    _check_inputs(q, k, k_scale, weights, k_start, k_end)
    device = check_launchable(q, k, k_scale, weights, k_start, k_end)
    num_tokens, num_heads, dim = q.shape
    num_keys = k.shape[0]
    out = torch.empty(num_tokens, topk, dtype=torch.int32, device=device)
    if num_tokens == 0:
        return out
    q, k = q.contiguous(), k.contiguous()
    k_scale, weights = k_scale.float().contiguous(), weights.float().contiguous()
    starts = k_start.int().clamp(0, num_keys).contiguous()  # the scratch may be wider than S (S = 0)
    ends = k_end.int().clamp(0, num_keys).contiguous()
    chunk = LOGITS_BUDGET_BYTES // (4 * max(1, num_keys)) // block_t * block_t
    chunk = min(max(block_t, chunk), triton.cdiv(num_tokens, block_t) * block_t)
    logits = torch.empty(chunk, max(1, num_keys), dtype=torch.float32, device=device)
    for row0 in range(0, num_tokens, chunk):
        rows = min(chunk, num_tokens - row0)
        write_prefill_logits(q, k, k_scale, weights, starts, ends, logits, row0, rows,
                             block_t=block_t, block_s=block_s, num_warps=num_warps, num_stages=num_stages)
        topk_rows(logits[:rows], starts[row0 : row0 + rows], ends[row0 : row0 + rows], topk, out=out[row0 : row0 + rows])
    return out


def write_prefill_logits(q, k, k_scale, weights, starts, ends, logits, row0, rows, block_t=4, block_s=64,
                         num_warps=4, num_stages=3) -> None:
    """Scores of query rows ``[row0, row0 + rows)`` into ``logits[r - row0, s]`` for s in each row's range.

    Inputs as ``indexer_topk_prefill`` after its checks (contiguous; starts/ends int32).
    """
    num_heads, dim = q.shape[1], q.shape[2]
    target = launch_target(q.device)
    _prefill_logits_kernel[(triton.cdiv(rows, block_t),)](
        q.view(torch.uint8), k.view(torch.uint8), k_scale, weights, starts, ends, logits, logits.stride(0),
        row0, row0 + rows, k.shape[0], num_heads,
        D=dim, BLOCK_H=head_block(num_heads), BLOCK_T=block_t, BLOCK_S=block_s,
        FP8_HW=target.fp8_hardware, DOT_FP32=target.dot_fp32, NUM_STAGES=num_stages, num_warps=num_warps,
    )
