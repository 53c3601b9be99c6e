"""Indexer kernels at the real model shapes (64 heads x 128, top-2048) on a GPU,
and the decode indexer captured into a CUDA graph and replayed on new inputs."""

import math

import pytest
import torch
from fp8_checks import assert_fp8_rows_close
from indexer_topk_checks import assert_topk_row

from dsv32_plugin.kernels import reference as ref

pytestmark = pytest.mark.gpu
HEADS, DIM, TOPK = 64, 128, 2048


def _fp8_queries(shape, gen):
    q, q_scale = ref.quantize_fp8_blockwise(torch.randn(*shape, HEADS, DIM, generator=gen, device="cuda"))
    weights = torch.randn(*shape, HEADS, generator=gen, device="cuda") * q_scale[..., 0] * (HEADS * DIM) ** -0.5
    return q, weights


def test_prefill_real_shape_causal_tail():
    from dsv32_plugin.kernels import indexer_topk_prefill

    gen = torch.Generator(device="cuda").manual_seed(0)
    num_q, num_k = 192, 32768
    q, weights = _fp8_queries((num_q,), gen)
    k, k_scale = ref.quantize_fp8_blockwise(torch.randn(num_k, DIM, generator=gen, device="cuda"))
    k_scale = k_scale[:, 0]
    start = torch.zeros(num_q, dtype=torch.int32, device="cuda")
    start[::5] = 30000  # some short ranges (<= topk)
    end = (num_k - num_q + 1 + torch.arange(num_q, device="cuda")).int()
    out = indexer_topk_prefill(q, k, k_scale, weights, start, end, TOPK)
    rows = list(range(0, num_q, 11)) + [num_q - 1]
    scores = ref.indexer_scores(q[rows], k, weights[rows], k_scale)
    for i, t in enumerate(rows):
        tol = 1e-3 * float(scores[i].abs().max())
        assert_topk_row(out[t], scores[i], int(start[t]), int(end[t]), TOPK, atol=tol)


def _paged(seq_lens, max_pages, gen):
    num_pages = len(seq_lens) * max_pages
    cache = torch.full((num_pages, 64 * (DIM + 4) // 4), math.nan, device="cuda").view(torch.uint8)
    page_table = torch.randperm(num_pages, generator=gen, device="cuda").view(len(seq_lens), max_pages).int()
    from dsv32_plugin.kernels import store_index_k

    for b, length in enumerate(seq_lens):
        pos = torch.arange(length, device="cuda")
        keys = torch.randn(length, DIM, generator=gen, device="cuda").bfloat16()
        store_index_k(cache, page_table[b, pos // 64].long() * 64 + pos % 64, keys)
    return cache, page_table


def _check_decode(out, q, cache, weights, seq_lens, page_table, s_q):
    for b, length in enumerate(seq_lens):
        pos = torch.arange(length, device="cuda")
        k_fp8, k_scale = ref.gather_index_k(cache, page_table[b, pos // 64].long() * 64 + pos % 64)
        scores = ref.indexer_scores(q[b], k_fp8, weights[b], k_scale)
        for i in range(s_q):
            tol = 1e-3 * float(scores[i].abs().max())
            assert_topk_row(out[b, i], scores[i], 0, length - s_q + i + 1, TOPK, atol=tol)


def test_decode_real_shape_and_cuda_graph_replay():
    from dsv32_plugin.kernels import indexer_topk_decode

    gen = torch.Generator(device="cuda").manual_seed(1)
    s_q, max_pages = 2, 320  # up to 20480 tokens
    lens_a, lens_b = [20480, 1500, 9000, 2049], [777, 20000, 4100, 64]
    cache, page_table = _paged(lens_a, max_pages, gen)
    q, weights = _fp8_queries((4, s_q), gen)
    seq_lens = torch.tensor(lens_a, dtype=torch.int32, device="cuda")
    eager = indexer_topk_decode(q, cache, weights, seq_lens, page_table, TOPK)
    _check_decode(eager, q, cache, weights, lens_a, page_table, s_q)

    graph = torch.cuda.CUDAGraph()
    stream = torch.cuda.Stream()
    stream.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(stream):  # warm-up (compiles) outside the capture
        indexer_topk_decode(q, cache, weights, seq_lens, page_table, TOPK)
        with torch.cuda.graph(graph, stream=stream):
            static_out = indexer_topk_decode(q, cache, weights, seq_lens, page_table, TOPK)
    torch.cuda.current_stream().wait_stream(stream)

    cache_b, page_table_b = _paged(lens_b, max_pages, gen)
    q_b, weights_b = _fp8_queries((4, s_q), gen)
    cache.copy_(cache_b)
    page_table.copy_(page_table_b)
    q.copy_(q_b)
    weights.copy_(weights_b)
    seq_lens.copy_(torch.tensor(lens_b, dtype=torch.int32))
    graph.replay()
    torch.cuda.synchronize()
    assert torch.equal(static_out, indexer_topk_decode(q, cache, weights, seq_lens, page_table, TOPK))
    _check_decode(static_out, q, cache, weights, lens_b, page_table, s_q)


def test_store_real_shape_matches_reference():
    from dsv32_plugin.kernels import store_index_k

    gen = torch.Generator(device="cuda").manual_seed(2)
    keys = (torch.randn(5000, DIM, generator=gen, device="cuda") * 4).bfloat16()
    slots = torch.randperm(100 * 64, generator=gen, device="cuda")[:5000]
    slots[::97] = -1
    got = torch.zeros(100, 64 * (DIM + 4), dtype=torch.uint8, device="cuda")
    want = got.clone()
    store_index_k(got, slots, keys)
    ref.store_index_k(want, slots, keys)
    # The store's Hadamard sums in the tensor cores' order, torch's matmul in its own: a code may move one step.
    assert_fp8_rows_close(*ref.gather_index_k(got, slots), *ref.gather_index_k(want, slots))
