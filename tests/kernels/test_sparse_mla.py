"""Sparse MLA: the float32 reference against a naive per-row softmax over explicit
index sets, then the Triton kernels against the reference (CPU interpreter at
small odd shapes; real shapes on the GPU)."""

import math

import pytest
import torch

from dsv32_plugin.kernels import reference as ref


def naive_rows(q_row, rows, sm_scale, d_v):
    """float64 softmax attention of q_row [H, D] over explicit rows [n, D]; n may be 0."""
    H = q_row.shape[0]
    if rows.shape[0] == 0:
        return torch.zeros(H, d_v, dtype=torch.float64), torch.full((H,), -math.inf, dtype=torch.float64)
    s = q_row.double() @ rows.double().T * sm_scale
    lse = torch.logsumexp(s, dim=-1)
    return torch.softmax(s, dim=-1) @ rows.double()[:, :d_v], lse


def explicit_set(idx_row, limit, length):
    """The index entries of one row that count: in range, inside topk_length, in listed order."""
    n = idx_row.shape[0] if length is None else int(length)
    return [int(i) for i in idx_row[:n] if 0 <= int(i) < limit]


def random_indices(gen, rows, topk, limit, p_skip=0.25):
    """int32 [rows, topk] of kv rows with -1, < -1 and >= limit entries sprinkled in."""
    idx = torch.randint(0, limit, (rows, topk), generator=gen, dtype=torch.int32)
    r = torch.rand(rows, topk, generator=gen)
    idx[r < p_skip] = -1
    idx[(r >= p_skip) & (r < p_skip + 0.05)] = limit + 3  # out of range: skipped
    idx[(r >= p_skip + 0.05) & (r < p_skip + 0.08)] = -7  # below -1: skipped
    return idx


PREFILL_SHAPES = [
    # T, H, d_nope, d_rope, S, topk, use_length
    pytest.param(5, 4, 128, 32, 37, 16, False, id="tiny-model-dims"),
    pytest.param(3, 2, 64, 16, 9, 24, True, id="context-shorter-than-topk-with-lengths"),
    pytest.param(4, 3, 512, 64, 70, 40, True, id="real-dims-odd-heads"),
]


@pytest.mark.parametrize("T,H,d_nope,d_rope,S,topk,use_length", PREFILL_SHAPES)
def test_reference_prefill_matches_naive_softmax(T, H, d_nope, d_rope, S, topk, use_length):
    gen = torch.Generator().manual_seed(T * 100 + S)
    D = d_nope + d_rope
    q = torch.randn(T, H, D, generator=gen)
    kv = torch.randn(S + 2, D, generator=gen)
    kv[S:] = float("nan")  # rows past S are never indexed validly
    kv = kv[:S]
    idx = random_indices(gen, T, topk, S)
    idx[0, :] = -1  # an empty row
    idx[1, :3] = idx[1, 3]  # duplicates count once per listing
    length = torch.randint(0, topk + 1, (T,), generator=gen, dtype=torch.int32) if use_length else None
    sm_scale = D**-0.5
    out, lse = ref.sparse_mla_prefill(q, kv, idx, sm_scale, d_v=d_nope, topk_length=length)
    assert out.shape == (T, H, d_nope) and out.dtype == q.dtype and lse.dtype == torch.float32
    for t in range(T):
        sel = explicit_set(idx[t], S, None if length is None else length[t])
        want_out, want_lse = naive_rows(q[t], kv[sel], sm_scale, d_nope)
        torch.testing.assert_close(out[t].double(), want_out, atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(lse[t].double(), want_lse, atol=1e-5, rtol=1e-5)
    assert torch.equal(out[0], torch.zeros_like(out[0])) and torch.all(lse[0] == -math.inf)


def test_reference_prefill_ignores_nan_in_skipped_rows():
    gen = torch.Generator().manual_seed(7)
    q = torch.randn(2, 2, 160, generator=gen)
    kv = torch.randn(6, 160, generator=gen)
    kv[0] = float("nan")  # row 0 is what a naive "clamp -1 to 0" gather would read
    idx = torch.tensor([[1, -1, 2, 9], [-1, -1, -1, -1]], dtype=torch.int32)
    out, lse = ref.sparse_mla_prefill(q, kv, idx, 0.1, d_v=128)
    assert torch.isfinite(out).all() and not torch.isnan(lse).any()
    assert lse[1].eq(-math.inf).all() and out[1].eq(0).all()


def paged_cache(gen, num_pages, page_size, D, fp8, d_nope):
    """A paged cache filled with NaN (bf16) / 0xFF NaN bytes (FP8) plus the kv it would hold."""
    kv = torch.randn(num_pages * page_size, D, generator=gen).to(torch.bfloat16)
    if fp8:
        cache = torch.full((num_pages, page_size, ref.kv_cache.fp8_row_bytes(d_nope, D - d_nope)), 0xFF, dtype=torch.uint8)
    else:
        cache = torch.full((num_pages, page_size, D), float("nan"), dtype=torch.bfloat16)
    return cache, kv


DECODE_SHAPES = [
    # B, s_q, H, d_nope, d_rope, page_size, num_pages, topk, fp8
    pytest.param(2, 1, 4, 128, 32, 16, 5, 24, False, id="bf16-tiny-dims"),
    pytest.param(2, 3, 2, 128, 32, 8, 6, 20, True, id="fp8-mtp-sq3-pages-crossed"),
    pytest.param(1, 2, 3, 512, 64, 64, 2, 40, True, id="fp8-real-dims"),
]


@pytest.mark.parametrize("B,s_q,H,d_nope,d_rope,page_size,num_pages,topk,fp8", DECODE_SHAPES)
def test_reference_decode_matches_naive_softmax(B, s_q, H, d_nope, d_rope, page_size, num_pages, topk, fp8):
    gen = torch.Generator().manual_seed(B * 10 + s_q)
    D = d_nope + d_rope
    cache, kv = paged_cache(gen, num_pages, page_size, D, fp8, d_nope)
    n_slots = num_pages * page_size
    idx = random_indices(gen, B * s_q, topk, n_slots).reshape(B, s_q, topk)
    used = idx[(idx >= 0) & (idx < n_slots)].unique().long()
    ref.store_mla_kv(cache, used, kv[used])  # only indexed slots get real data; the rest stays NaN
    stored = ref.dequantize_kv_fp8(cache.reshape(n_slots, -1), d_nope, d_rope) if fp8 else cache.reshape(n_slots, D)
    length = torch.randint(0, topk + 1, (B, s_q), generator=gen, dtype=torch.int32)
    q = torch.randn(B, s_q, H, D, generator=gen).to(torch.bfloat16)
    sm_scale = 0.13
    out, lse = ref.sparse_mla_decode(q, cache, idx, sm_scale, d_v=d_nope, topk_length=length)
    assert out.shape == (B, s_q, H, d_nope) and out.dtype == torch.bfloat16 and lse.shape == (B, s_q, H)
    for b in range(B):
        for i in range(s_q):
            sel = explicit_set(idx[b, i], n_slots, length[b, i])
            want_out, want_lse = naive_rows(q[b, i].float(), stored[sel].float(), sm_scale, d_nope)
            torch.testing.assert_close(out[b, i].double(), want_out, atol=2e-2, rtol=2e-2)  # bf16 out
            torch.testing.assert_close(lse[b, i].double(), want_lse, atol=1e-4, rtol=1e-5)


def test_reference_decode_rejects_mismatched_cache_width():
    q = torch.zeros(1, 1, 2, 576, dtype=torch.bfloat16)
    idx = torch.zeros(1, 1, 4, dtype=torch.int32)
    with pytest.raises(ValueError):
        ref.sparse_mla_decode(q, torch.zeros(2, 64, 600, dtype=torch.uint8), idx, 0.1)
    with pytest.raises(ValueError):
        ref.sparse_mla_decode(q, torch.zeros(2, 64, 512, dtype=torch.bfloat16), idx, 0.1)
