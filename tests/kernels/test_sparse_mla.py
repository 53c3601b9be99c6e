"""Sparse MLA: the float32 reference against a naive per-row softmax over explicit
index sets, then the Triton kernels against the reference (CPU interpreter at
small odd shapes; real shapes on the GPU)."""

import math

import pytest
import torch

from dsv32_plugin.kernels import reference as ref
from dsv32_plugin.kernels.layout import fp8_row_bytes


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
        cache = torch.full((num_pages, page_size, fp8_row_bytes(d_nope, D - d_nope)), 0xFF, dtype=torch.uint8)
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


# ---------------------------------------------------------------------------
# Triton kernels against the reference. On the CPU they run in the Triton
# interpreter, which decides interpret-vs-compile when a kernel is decorated:
# the variable must be set before the kernel modules are imported.
if not torch.cuda.is_available():
    import os

    os.environ.setdefault("TRITON_INTERPRET", "1")

from dsv32_plugin.kernels.sparse_mla.kernel import LaunchConfig  # noqa: E402
from dsv32_plugin.kernels.sparse_mla.interface import sparse_mla_decode, sparse_mla_prefill  # noqa: E402

DEVICE = "cuda" if torch.cuda.is_available() else "cpu"


def assert_matches_reference(out, lse, want_out, want_lse, atol=2e-2):
    assert out.dtype == torch.bfloat16 and lse.dtype == torch.float32
    assert torch.isfinite(out.float()).all() and not torch.isnan(lse).any()
    torch.testing.assert_close(out.float().cpu(), want_out.float().cpu(), atol=atol, rtol=2e-2)
    assert torch.equal(torch.isinf(lse).cpu(), torch.isinf(want_lse).cpu())
    torch.testing.assert_close(lse.cpu(), want_lse.cpu(), atol=2e-4, rtol=1e-5)


def prefill_case(seed, T, H, d_v, d_rope, S, topk, lengths="random", causal=False):
    gen = torch.Generator().manual_seed(seed)
    D = d_v + d_rope
    q = torch.randn(T, H, D, generator=gen).bfloat16()
    kv = torch.randn(S + 8, D, generator=gen).bfloat16()
    kv[S:] = float("nan")  # memory past the rows; never indexed validly
    if causal:  # SGL-style context < topk: [0 .. n-1, -1, ...]
        idx = torch.full((T, topk), -1, dtype=torch.int32)
        for t in range(T):
            n = min(topk, 1 + t * S // max(1, T - 1))
            idx[t, :n] = torch.randperm(S, generator=gen)[:n].int() if n <= S else torch.arange(n)
    else:
        idx = random_indices(gen, T, topk, S)
    length = None
    if lengths == "random":
        length = torch.randint(0, topk + 1, (T,), generator=gen, dtype=torch.int32)
    idx[-1] = -1  # an empty row
    return q, kv[:S], idx, length


PREFILL_KERNEL_CASES = [
    # seed, T, H, d_v, d_rope, S, topk, lengths, causal
    pytest.param(1, 5, 4, 128, 32, 37, 40, "random", False, id="tiny-dims-h4-lengths"),
    pytest.param(2, 4, 3, 512, 64, 50, 32, None, False, id="real-dims-h3-minus1-anywhere"),
    pytest.param(3, 6, 2, 64, 16, 9, 48, None, True, id="context-shorter-than-topk"),
    pytest.param(4, 3, 72, 64, 16, 30, 24, "random", False, id="h72-two-head-blocks"),
]


@pytest.mark.parametrize("seed,T,H,d_v,d_rope,S,topk,lengths,causal", PREFILL_KERNEL_CASES)
def test_prefill_kernel_matches_reference(seed, T, H, d_v, d_rope, S, topk, lengths, causal):
    q, kv, idx, length = prefill_case(seed, T, H, d_v, d_rope, S, topk, lengths, causal)
    want = ref.sparse_mla_prefill(q, kv, idx, 0.1, d_v=d_v, topk_length=length)
    dev = [t if t is None else t.to(DEVICE) for t in (q, kv, idx, length)]
    out, lse = sparse_mla_prefill(dev[0], dev[1], dev[2], 0.1, d_v=d_v, topk_length=dev[3])
    assert out.shape == (T, H, d_v) and lse.shape == (T, H)
    assert_matches_reference(out, lse, *want)
    assert out[-1].eq(0).all() and lse[-1].eq(float("-inf")).all()


def test_kernels_handle_topk_zero_and_no_rows():
    q = torch.randn(3, 2, 160).bfloat16().to(DEVICE)
    kv = torch.randn(5, 160).bfloat16().to(DEVICE)
    no_idx = torch.zeros(3, 0, dtype=torch.int32, device=DEVICE)
    out, lse = sparse_mla_prefill(q, kv, no_idx, 0.1, d_v=128)
    assert out.eq(0).all() and lse.eq(float("-inf")).all()
    out, lse = sparse_mla_decode(q[None], kv.view(5, 1, 160), no_idx[None], 0.1, d_v=128)
    assert out.eq(0).all() and lse.eq(float("-inf")).all()
    out, lse = sparse_mla_prefill(q[:0], kv, no_idx[:0], 0.1, d_v=128)
    assert out.shape == (0, 2, 128) and lse.shape == (0, 2)


def test_prefill_kernel_rejects_unsupported_dims():
    q = torch.zeros(1, 2, 96, dtype=torch.bfloat16, device=DEVICE)
    kv = torch.zeros(4, 96, dtype=torch.bfloat16, device=DEVICE)
    idx = torch.zeros(1, 16, dtype=torch.int32, device=DEVICE)
    with pytest.raises(ValueError, match="power of two"):
        sparse_mla_prefill(q, kv, idx, 0.1, d_v=72)


def decode_case(seed, B, s_q, H, d_v, d_rope, page_size, num_pages, topk, fp8, zero_tiles=False):
    """Cache poisoned with NaN except at indexed slots; indices cross pages; lengths random."""
    gen = torch.Generator().manual_seed(seed)
    D = d_v + d_rope
    cache, kv = paged_cache(gen, num_pages, page_size, D, fp8, d_v)
    if zero_tiles:
        kv[::2, :128] = 0  # all-zero FP8 tiles
    n_slots = num_pages * page_size
    idx = random_indices(gen, B * s_q, topk, n_slots).reshape(B, s_q, topk)
    idx[0, 0, : min(topk, 2 * page_size)] = torch.arange(min(topk, 2 * page_size))  # a run across a page edge
    used = idx[(idx >= 0) & (idx < n_slots)].unique().long()
    ref.store_mla_kv(cache, used, kv[used])
    length = torch.randint(0, topk + 1, (B, s_q), generator=gen, dtype=torch.int32)
    length[-1, -1] = 0  # an empty row
    q = torch.randn(B, s_q, H, D, generator=gen).bfloat16()
    return q, cache, idx, length


DECODE_KERNEL_CASES = [
    # seed, B, s_q, H, d_v, d_rope, page_size, num_pages, topk, fp8, zero_tiles, splits
    pytest.param(1, 2, 1, 4, 128, 32, 16, 5, 40, False, False, None, id="bf16-tiny-dims"),
    pytest.param(2, 2, 2, 3, 512, 64, 64, 2, 48, True, True, None, id="fp8-656B-mtp-sq2-zero-tiles"),
    pytest.param(3, 1, 3, 16, 128, 32, 8, 7, 56, True, False, 3, id="fp8-sq3-h16-uneven-splits"),
    pytest.param(4, 3, 1, 2, 64, 16, 4, 3, 32, False, False, 1, id="bf16-context-shorter-than-topk"),
]


@pytest.mark.parametrize("seed,B,s_q,H,d_v,d_rope,page_size,num_pages,topk,fp8,zero_tiles,splits", DECODE_KERNEL_CASES)
def test_decode_kernel_matches_reference(seed, B, s_q, H, d_v, d_rope, page_size, num_pages, topk, fp8, zero_tiles, splits):
    q, cache, idx, length = decode_case(seed, B, s_q, H, d_v, d_rope, page_size, num_pages, topk, fp8, zero_tiles)
    want = ref.sparse_mla_decode(q, cache, idx, 0.13, d_v=d_v, topk_length=length)
    config = None if splits is None else LaunchConfig(16, 16, 4, 1, splits, prefetch_indices=splits == 3)
    out, lse = sparse_mla_decode(
        q.to(DEVICE), cache.to(DEVICE), idx.to(DEVICE), 0.13, d_v=d_v, topk_length=length.to(DEVICE), config=config
    )
    assert out.shape == (B, s_q, H, d_v) and lse.shape == (B, s_q, H)
    assert_matches_reference(out, lse, *want)
    assert out[-1, -1].eq(0).all() and lse[-1, -1].eq(float("-inf")).all()


def test_decode_kernel_accepts_flashmla_cache_shape_and_checks_layout():
    q, cache, idx, _ = decode_case(5, 1, 1, 2, 128, 32, 8, 3, 16, True)
    out4, lse4 = sparse_mla_decode(q.to(DEVICE), cache.unsqueeze(2).to(DEVICE), idx.to(DEVICE), 0.2, d_v=128)
    out3, lse3 = sparse_mla_decode(q.to(DEVICE), cache.to(DEVICE), idx.to(DEVICE), 0.2, d_v=128)
    assert torch.equal(out4, out3) and torch.equal(lse4, lse3)
    with pytest.raises(ValueError, match="must match"):
        sparse_mla_decode(q.to(DEVICE), cache.to(DEVICE), idx.to(DEVICE), 0.2, d_v=64)
    assert cache.shape[-1] == fp8_row_bytes(128, 32)


# ---------------------------------------------------------------------------
# Real DeepSeek-V3.2 shapes on the GPU (bf16 tensor-core path).


def rel_l2(got, want):
    return ((got.float() - want.float()).norm() / want.float().norm()).item()


@pytest.mark.gpu
@pytest.mark.parametrize("S", [pytest.param(300, id="context-shorter-than-topk"), pytest.param(8192, id="S8192")])
def test_prefill_real_shape_gpu(S):
    gen = torch.Generator(device="cuda").manual_seed(S)
    T, H, topk = 96, 128, 2048
    q = torch.randn(T, H, 576, device="cuda", generator=gen).bfloat16()
    kv = torch.randn(S, 576, device="cuda", generator=gen).bfloat16()
    idx = torch.randint(0, S, (T, topk), device="cuda", generator=gen, dtype=torch.int32)
    idx[torch.rand(T, topk, device="cuda", generator=gen) < 0.1] = -1
    idx[5] = -1
    length = torch.randint(0, topk + 1, (T,), device="cuda", generator=gen, dtype=torch.int32)
    out, lse = sparse_mla_prefill(q, kv, idx, 0.1352, topk_length=length)
    want_out, want_lse = ref.sparse_mla_prefill(q, kv, idx, 0.1352, topk_length=length)
    assert rel_l2(out, want_out) < 1e-2
    assert_matches_reference(out, lse, want_out, want_lse, atol=3e-2)


@pytest.mark.gpu
@pytest.mark.parametrize(
    "B,s_q,H,fp8",
    [pytest.param(3, 2, 128, True, id="fp8-h128-mtp"), pytest.param(5, 1, 16, True, id="fp8-h16"),
     pytest.param(2, 3, 128, False, id="bf16-h128-mtp"), pytest.param(33, 1, 64, False, id="bf16-h64")],
)
def test_decode_real_shape_gpu(B, s_q, H, fp8):
    q, cache, idx, length = decode_case(B, B, s_q, H, 512, 64, 64, 80, 2048, fp8)
    q, cache, idx, length = q.cuda(), cache.cuda(), idx.cuda(), length.cuda()
    length[0, 0] = 2048
    out, lse = sparse_mla_decode(q, cache, idx, 0.1352, topk_length=length)
    want_out, want_lse = ref.sparse_mla_decode(q, cache, idx, 0.1352, topk_length=length)
    assert rel_l2(out, want_out) < 1e-2
    assert_matches_reference(out, lse, want_out, want_lse, atol=3e-2)


@pytest.mark.gpu
def test_decode_cuda_graph_replays_with_new_inputs_gpu():
    q, cache, idx, length = (t.cuda() for t in decode_case(11, 4, 1, 128, 512, 64, 64, 40, 2048, True))
    static = [q.clone(), idx.clone(), length.clone()]
    sparse_mla_decode(*static[:1], cache, static[1], 0.1352, topk_length=static[2])  # compile outside capture
    torch.cuda.synchronize()
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        g_out, g_lse = sparse_mla_decode(static[0], cache, static[1], 0.1352, topk_length=static[2])
    for seed in (12, 13):
        q2, cache2, idx2, length2 = (t.cuda() for t in decode_case(seed, 4, 1, 128, 512, 64, 64, 40, 2048, True))
        cache.copy_(cache2)
        for dst, src in zip(static, (q2, idx2, length2)):
            dst.copy_(src)
        graph.replay()
        want_out, want_lse = sparse_mla_decode(q2, cache2, idx2, 0.1352, topk_length=length2)
        torch.testing.assert_close(g_out, want_out, atol=0, rtol=0)
        torch.testing.assert_close(g_lse, want_lse, atol=0, rtol=0)
