"""The one Triton sparse-MLA attention kernel behind prefill and decode.

A program owns one query row (a prefill token, or one (request, verify
position) of decode), a block of BLOCK_H heads and one split of the index
list. Per step it gathers BLOCK_N KV rows through the indices (masked loads:
skipped or out-of-range entries are never read), computes
``S = q_nope . k_nope^T + q_rope . k_rope^T`` (d_qk = D_V + D_ROPE, both powers
of two), runs an online softmax in base 2 with float32 statistics and
accumulates ``P . V`` with V = k_nope (the first D_V values of the row) in
float32. Programs of the same row and different head blocks get adjacent ids
so the second gather of a row hits L2.

With one split the kernel writes the final bf16 output and lse; with several
it writes float32 partial outputs and lses that ``_combine_splits_kernel``
merges (decode at small batch, where rows alone cannot fill the GPU).
KV rows come either from a bf16 buffer or from the FP8 656-byte cache layout,
dequantised in registers by ``kv_cache.load_kv_fp8_rows``.
"""

import dataclasses
import math

import torch
import triton
import triton.language as tl

from ._triton_utils import dot_operand
from .kv_cache import load_kv_fp8_rows
from .target import launch_target

_LN2 = math.log(2.0)


# An integer argument that can be 1 is never specialised (docs/kernels.md, "Specialisation"): Triton
# turns an argument equal to 1 into a compile-time constant. num_slots and n_heads also feed the two
# runtime branches below; with num_slots == 1 (a one-row context: the host's /health_generate prefills
# one token) the constant folded its branch away and Triton 3.6's software pipeliner failed on the
# unconditional dot feeding a dot inside the other branch ("PassManager::run failed" in make_ttgir).
@triton.jit(do_not_specialize=["num_slots", "stride_lr", "stride_ls", "n_heads", "n_head_blocks"])
def _sparse_mla_fwd_kernel(
    q_ptr, stride_qr, stride_qh,  # q [rows, H, D_V + D_ROPE]
    kv_ptr, stride_kv_page, stride_kv_tok, num_slots,  # pages [P, PAGE_SIZE, W]
    idx_ptr, stride_ir, len_ptr, topk, tokens_per_split,  # indices [rows, topk], lengths [rows]
    out_ptr, stride_or, stride_os, stride_oh,  # out [rows, (splits,) H, D_V]
    lse_ptr, stride_lr, stride_ls,  # lse [rows, (splits,) H]
    n_heads, n_head_blocks, qk_scale_log2,
    HAS_LENGTH: tl.constexpr, KV_FP8: tl.constexpr, PAGE_SIZE: tl.constexpr,
    D_V: tl.constexpr, D_ROPE: tl.constexpr, BLOCK_H: tl.constexpr, BLOCK_N: tl.constexpr,
    PREFETCH_IDX: tl.constexpr, DEFER_SUM: tl.constexpr, DOT_FP32: tl.constexpr, FP8_HW: tl.constexpr,
):
    pid = tl.program_id(0)
    row = pid // n_head_blocks
    split = tl.program_id(1)
    heads = (pid % n_head_blocks) * BLOCK_H + tl.arange(0, BLOCK_H)
    head_ok = heads < n_heads
    q_rows = q_ptr + row.to(tl.int64) * stride_qr + heads[:, None] * stride_qh
    q_nope = tl.load(q_rows + tl.arange(0, D_V)[None, :], mask=head_ok[:, None], other=0.0)
    q_rope = tl.load(q_rows + D_V + tl.arange(0, D_ROPE)[None, :], mask=head_ok[:, None], other=0.0)
    q_nope = dot_operand(q_nope, DOT_FP32)
    q_rope = dot_operand(q_rope, DOT_FP32)

    lo = split * tokens_per_split
    hi = tl.minimum(lo + tokens_per_split, topk)
    if HAS_LENGTH:
        hi = tl.minimum(hi, tl.load(len_ptr + row))
    idx_row = idx_ptr + row.to(tl.int64) * stride_ir

    m_i = tl.full([BLOCK_H], float("-inf"), tl.float32)
    if DEFER_SUM:
        # row sums kept per column and reduced once after the loop: with the score tile
        # split across warpgroups each per-step row reduction crosses them (shared memory + barrier)
        l_i = tl.zeros([BLOCK_H, BLOCK_N], tl.float32)
    else:
        l_i = tl.zeros([BLOCK_H], tl.float32)
    acc = tl.zeros([BLOCK_H, D_V], tl.float32)
    if PREFETCH_IDX:
        slot_next = tl.load(idx_row + lo + tl.arange(0, BLOCK_N), mask=lo + tl.arange(0, BLOCK_N) < hi, other=-1)
    for start in range(lo, hi, BLOCK_N):
        if PREFETCH_IDX:
            # indices of the next block are loaded one step ahead, so the gather addresses
            # are loop-carried and the pipeliner can start the next gather early
            slot = slot_next
            offs_next = start + BLOCK_N + tl.arange(0, BLOCK_N)
            slot_next = tl.load(idx_row + offs_next, mask=offs_next < hi, other=-1)
        else:
            offs = start + tl.arange(0, BLOCK_N)
            slot = tl.load(idx_row + offs, mask=offs < hi, other=-1)
        valid = (slot >= 0) & (slot < num_slots)
        page = (slot // PAGE_SIZE).to(tl.int64)
        row_ptr = kv_ptr + page * stride_kv_page + (slot % PAGE_SIZE) * stride_kv_tok
        if KV_FP8:
            k_nope, k_rope = load_kv_fp8_rows(row_ptr, valid, D_V, D_ROPE, BLOCK_N, FP8_HW)
        else:
            k_nope = tl.load(row_ptr[:, None] + tl.arange(0, D_V)[None, :], mask=valid[:, None], other=0.0)
            k_rope = tl.load(row_ptr[:, None] + D_V + tl.arange(0, D_ROPE)[None, :], mask=valid[:, None], other=0.0)
        k_nope = dot_operand(k_nope, DOT_FP32)
        # Triton lays a dot whose result feeds another dot out with all warps along M (flash
        # attention's layout): with 64 heads and 8 warps both warpgroups would compute the
        # whole score tile, twice the QK work. Inside an if/else the dot's result only
        # reaches the branch's yield, so Triton splits N across the warpgroups instead
        # (prefill +22%, FP8 decode -8 to -10%). Both branches are the same dot, so the condition
        # does not matter; rope and nope sit in two branches with different conditions (two
        # ifs on one condition would be merged, chaining rope into nope again).
        k_rope = dot_operand(k_rope, DOT_FP32)
        if num_slots > 0:
            s = tl.dot(q_rope, tl.trans(k_rope))
        else:
            s = tl.dot(q_rope, tl.trans(k_rope))
        if n_heads > 0:
            s = tl.dot(q_nope, tl.trans(k_nope), s)
        else:
            s = tl.dot(q_nope, tl.trans(k_nope), s)
        s = tl.where(valid[None, :], s * qk_scale_log2, float("-inf"))
        m_new = tl.maximum(m_i, tl.max(s, axis=1))
        alpha = tl.exp2(m_i - tl.where(m_new == float("-inf"), 0.0, m_new))  # 0 while nothing was valid
        acc = acc * alpha[:, None]
        if DEFER_SUM:
            l_i = l_i * alpha[:, None]
        else:
            l_i = l_i * alpha
        m_i = m_new
        p = tl.exp2(s - tl.where(m_i == float("-inf"), 0.0, m_i)[:, None])  # rows with nothing valid yet: 0
        if DEFER_SUM:
            l_i += p
        else:
            l_i += tl.sum(p, axis=1)
        acc = tl.dot(dot_operand(p, DOT_FP32), k_nope, acc)

    if DEFER_SUM:
        l_i = tl.sum(l_i, axis=1)
    has_any = l_i > 0.0
    out = acc / tl.where(has_any, l_i, 1.0)[:, None]
    lse = tl.where(has_any, (m_i + tl.log2(tl.where(has_any, l_i, 1.0))) * 0.6931471805599453, float("-inf"))
    dst = out_ptr + row.to(tl.int64) * stride_or + split * stride_os + heads[:, None] * stride_oh
    tl.store(dst + tl.arange(0, D_V)[None, :], out.to(out_ptr.dtype.element_ty), mask=head_ok[:, None])
    tl.store(lse_ptr + row.to(tl.int64) * stride_lr + split * stride_ls + heads, lse, mask=head_ok)


@triton.jit(do_not_specialize=["stride_pls", "stride_lr", "n_heads"])
def _combine_splits_kernel(
    part_ptr, stride_pr, stride_ps, stride_ph,  # partial out [rows, splits, H, D_V] float32
    plse_ptr, stride_plr, stride_pls,  # partial lse [rows, splits, H]
    out_ptr, stride_or, stride_oh,  # out [rows, H, D_V]
    lse_ptr, stride_lr,  # lse [rows, H]
    n_heads, n_splits,
    SPLITS_P2: tl.constexpr, BLOCK_H: tl.constexpr, BLOCK_D: tl.constexpr,
):
    """One program per (row, head block, BLOCK_D slice of d_v): out = sum_s w_s out_s, w = softmax(lse_s)."""
    row = tl.program_id(0).to(tl.int64)
    heads = tl.program_id(1) * BLOCK_H + tl.arange(0, BLOCK_H)
    cols = tl.program_id(2) * BLOCK_D + tl.arange(0, BLOCK_D)
    head_ok = heads < n_heads
    splits = tl.arange(0, SPLITS_P2)
    lse_rows = plse_ptr + row * stride_plr + splits[:, None] * stride_pls + heads[None, :]
    all_lse = tl.load(lse_rows, mask=(splits[:, None] < n_splits) & head_ok[None, :], other=float("-inf"))
    m = tl.max(all_lse, axis=0)
    m_use = tl.where(m == float("-inf"), 0.0, m)
    total = tl.sum(tl.exp(all_lse - m_use[None, :]), axis=0)
    acc = tl.zeros([BLOCK_H, BLOCK_D], tl.float32)
    parts = part_ptr + row * stride_pr + heads[:, None] * stride_ph + cols[None, :]
    for s in range(n_splits):
        w = tl.exp(tl.load(plse_ptr + row * stride_plr + s * stride_pls + heads, mask=head_ok, other=float("-inf")) - m_use)
        acc += w[:, None] * tl.load(parts + s * stride_ps, mask=head_ok[:, None], other=0.0)
    has_any = total > 0.0
    out = acc / tl.where(has_any, total, 1.0)[:, None]
    tl.store(out_ptr + row * stride_or + heads[:, None] * stride_oh + cols[None, :],
             out.to(out_ptr.dtype.element_ty), mask=head_ok[:, None])
    if tl.program_id(2) == 0:
        lse = tl.where(has_any, m_use + tl.log(tl.where(has_any, total, 1.0)), float("-inf"))
        tl.store(lse_ptr + row * stride_lr + heads, lse, mask=head_ok)


@dataclasses.dataclass(frozen=True)
class LaunchConfig:
    """Tile sizes and launch options of ``_sparse_mla_fwd_kernel`` (benchmarks sweep these)."""

    block_h: int
    block_n: int
    num_warps: int
    num_stages: int
    num_splits: int = 1
    prefetch_indices: bool = False
    defer_sum: bool = False


def default_config(
    q_rows: int, n_heads: int, topk: int, device: torch.device, split: bool, kv_fp8: bool = False
) -> LaunchConfig:
    """Launch choice measured on an H200 (docs/perf.md); ``split`` for decode.

    A 64-head program fills an SM (its float32 accumulator takes half the register
    file); 16/32-head programs share one two ways. Decode splits the index list to
    fill that many programs but no more (each split costs a float32 partial round
    trip), and never below 128 indices for small head blocks, whose steps are cheap.
    Decode gathers come from HBM: once a program runs more than four steps, loading
    the next indices a step ahead pays (bf16 cache B=128: -31%), and FP8 rows, 57% of
    a bf16 row's shared memory, leave room for a third stage. Prefill gathers mostly
    hit L2, where the prefetch costs 1.5%. Deferred row sums gain 4% for FP8 decode
    (B=32) and lose 3% for prefill.
    """
    block_h = min(64, max(16, triton.next_power_of_2(n_heads)))
    target = launch_target(device)
    if target.interpreter:  # decode tests run the deferred row sums, prefill tests the per-step ones
        return LaunchConfig(block_h, 16, 4, 1, 2 if split and topk > 16 else 1, defer_sum=split)
    block_n = 64 if block_h == 64 else 32
    num_warps = 8 if block_h == 64 else 4
    num_splits = 1
    if split:
        programs = q_rows * triton.cdiv(n_heads, block_h)
        slots = target.sm_count * (1 if block_h == 64 else 2)
        min_split = block_n if block_h == 64 else 128
        num_splits = max(1, min(slots // programs, triton.cdiv(topk, min_split)))
    deep = split and triton.cdiv(topk, num_splits) > 4 * block_n
    return LaunchConfig(block_h, block_n, num_warps, 3 if deep and kv_fp8 else 2, num_splits,
                        prefetch_indices=deep, defer_sum=kv_fp8 and block_h == 64)


def check_dims(d_qk: int, d_v: int) -> int:
    """Return d_rope = d_qk - d_v; both parts must be powers of two >= 16 (Triton tiles)."""
    d_rope = d_qk - d_v
    for name, d in (("d_v", d_v), ("d_qk - d_v (rope)", d_rope)):
        if d < 16 or d & (d - 1):
            raise ValueError(
                f"the Triton sparse MLA kernel needs {name} a power of two >= 16 (got d_qk={d_qk}, d_v={d_v}); "
                "use dsv32_plugin.kernels.reference for other sizes"
            )
    return d_rope


def sparse_mla_forward(
    q: torch.Tensor,  # [rows, H, d_qk]
    kv_pages: torch.Tensor,  # [num_pages, page_size, W] bf16 (W = d_qk) or uint8 FP8 rows
    indices: torch.Tensor,  # [rows, topk] int32 global slots
    topk_length: torch.Tensor | None,  # [rows] int32
    sm_scale: float,
    d_v: int,
    kv_fp8: bool,
    config: LaunchConfig,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Launch the kernel (and the split combine); returns out [rows, H, d_v] in q.dtype, lse [rows, H] float32."""
    rows, n_heads, d_qk = q.shape
    d_rope = check_dims(d_qk, d_v)
    topk = indices.shape[1]
    out = torch.empty(rows, n_heads, d_v, dtype=q.dtype, device=q.device)
    lse = torch.empty(rows, n_heads, dtype=torch.float32, device=q.device)
    if rows == 0 or n_heads == 0:
        return out, lse
    c = config
    n_head_blocks = triton.cdiv(n_heads, c.block_h)
    splits = max(1, min(c.num_splits, triton.cdiv(max(topk, 1), c.block_n)))
    tokens_per_split = triton.cdiv(triton.cdiv(max(topk, 1), splits), c.block_n) * c.block_n
    splits = triton.cdiv(max(topk, 1), tokens_per_split)
    if splits == 1:
        part, part_lse = out, lse
        part_strides = (out.stride(0), 0, out.stride(1))
        lse_strides = (lse.stride(0), 0)
    else:
        part = torch.empty(rows, splits, n_heads, d_v, dtype=torch.float32, device=q.device)
        part_lse = torch.empty(rows, splits, n_heads, dtype=torch.float32, device=q.device)
        part_strides = (part.stride(0), part.stride(1), part.stride(2))
        lse_strides = (part_lse.stride(0), part_lse.stride(1))
    num_pages, page_size, _ = kv_pages.shape
    target = launch_target(q.device)
    _sparse_mla_fwd_kernel[(rows * n_head_blocks, splits)](
        q, q.stride(0), q.stride(1),
        kv_pages, kv_pages.stride(0), kv_pages.stride(1), num_pages * page_size,
        indices, indices.stride(0), indices if topk_length is None else topk_length, topk, tokens_per_split,
        part, *part_strides,
        part_lse, *lse_strides,
        n_heads, n_head_blocks, sm_scale / _LN2,
        HAS_LENGTH=topk_length is not None, KV_FP8=kv_fp8, PAGE_SIZE=page_size,
        D_V=d_v, D_ROPE=d_rope, BLOCK_H=c.block_h, BLOCK_N=c.block_n,
        PREFETCH_IDX=c.prefetch_indices, DEFER_SUM=c.defer_sum, DOT_FP32=target.dot_fp32, FP8_HW=target.fp8_hardware,
        num_warps=c.num_warps, num_stages=c.num_stages,
    )
    if splits > 1:
        block_h, block_d = 16, min(d_v, 128)
        _combine_splits_kernel[(rows, triton.cdiv(n_heads, block_h), d_v // block_d)](
            part, part.stride(0), part.stride(1), part.stride(2),
            part_lse, part_lse.stride(0), part_lse.stride(1),
            out, out.stride(0), out.stride(1),
            lse, lse.stride(0),
            n_heads, splits, SPLITS_P2=triton.next_power_of_2(splits), BLOCK_H=block_h, BLOCK_D=block_d,
            num_warps=4,
        )
    return out, lse
