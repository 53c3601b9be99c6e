"""The float32 indexer reference against brute-force loops and its own spec."""

import math

import pytest
import torch
from indexer_topk_checks import assert_topk_row, brute_force_scores

from dsv32_plugin.kernels import reference as ref


def _fp8_inputs(num_q, num_k, heads, dim, seed=0):
    gen = torch.Generator().manual_seed(seed)
    q, q_scale = ref.quantize_fp8_blockwise(torch.randn(num_q, heads, dim, generator=gen))
    k, k_scale = ref.quantize_fp8_blockwise(torch.randn(num_k, dim, generator=gen))
    weights = torch.randn(num_q, heads, generator=gen) * q_scale[..., 0] * dim**-0.5
    return q, k, k_scale[:, 0], weights


def test_hadamard_matches_sylvester_matrix_and_is_orthonormal():
    h4 = torch.tensor([[1, 1, 1, 1], [1, -1, 1, -1], [1, 1, -1, -1], [1, -1, -1, 1]], dtype=torch.float32)
    x = torch.randn(5, 4)
    torch.testing.assert_close(ref.hadamard_rotate(x), x @ h4 / 2)
    y = torch.randn(3, 7, 128)
    torch.testing.assert_close(ref.hadamard_rotate(ref.hadamard_rotate(y)), y, atol=1e-5, rtol=1e-5)
    a, b = torch.randn(2, 64).unbind(0)
    torch.testing.assert_close(ref.hadamard_rotate(a) @ ref.hadamard_rotate(b), a @ b, atol=1e-4, rtol=1e-4)
    assert ref.hadamard_rotate(x.bfloat16()).dtype == torch.bfloat16
    with pytest.raises(ValueError):
        ref.hadamard_rotate(torch.randn(2, 48))


@pytest.mark.parametrize(
    "shape, block, n_scales",
    [pytest.param((3, 128), 128, 1, id="head128"), pytest.param((2, 5, 64), 128, 1, id="dim64-block-shrinks"),
     pytest.param((4, 256), 128, 2, id="two-blocks"), pytest.param((6, 32), 16, 2, id="dim32-block16")],
)
def test_quantize_fp8_blockwise_power_of_two_scales(shape, block, n_scales):
    x = torch.randn(shape) * 7
    x[0] = 0.0  # an all-zero row: finite scale, zero codes
    x_fp8, scale = ref.quantize_fp8_blockwise(x, block)
    assert x_fp8.dtype == torch.float8_e4m3fn and scale.shape == (*shape[:-1], n_scales)
    assert torch.isfinite(scale).all() and (scale > 0).all()
    torch.testing.assert_close(torch.exp2(torch.log2(scale).round()), scale)  # ue8m0
    tiles = x.reshape(*shape[:-1], n_scales, -1)
    amax = tiles.abs().amax(-1).clamp_min(1e-4)
    assert (amax / scale <= 448).all() and (amax / scale > 224).all()  # the smallest power of two that fits
    back = (x_fp8.float().reshape(tiles.shape) * scale[..., None]).reshape(shape)
    assert (back[0] == 0).all()
    torch.testing.assert_close(back, x, atol=0, rtol=0.07)  # e4m3: 3 mantissa bits


@pytest.mark.parametrize("heads, dim", [pytest.param(3, 32, id="h3-d32"), pytest.param(4, 64, id="h4-d64")])
def test_indexer_scores_matches_loops(heads, dim):
    q, k, k_scale, weights = _fp8_inputs(5, 7, heads, dim)
    want = brute_force_scores(q.float(), k.float(), k_scale, weights)
    torch.testing.assert_close(ref.indexer_scores(q, k, weights, k_scale).double(), want, atol=1e-4, rtol=1e-5)
    torch.testing.assert_close(
        ref.indexer_scores(q.float(), k.float(), weights).double(), brute_force_scores(q.float(), k.float(), None, weights),
        atol=1e-4, rtol=1e-5,
    )


@pytest.mark.parametrize(
    "num_q, num_k, topk",
    [pytest.param(6, 40, 8, id="ranges-longer-than-topk"), pytest.param(5, 12, 16, id="context-shorter-than-topk"),
     pytest.param(4, 30, 30, id="topk-equals-keys")],
)
def test_prefill_topk_against_brute_force(num_q, num_k, topk):
    q, k, k_scale, weights = _fp8_inputs(num_q, num_k, 4, 32, seed=1)
    gen = torch.Generator().manual_seed(2)
    start = torch.randint(0, num_k // 2, (num_q,), generator=gen)
    end = start + torch.randint(0, num_k // 2 + 1, (num_q,), generator=gen)
    start[0], end[0] = 3, 3  # empty range
    out = ref.indexer_topk_prefill(q, k, k_scale, weights, start, end, topk)
    assert out.dtype == torch.int32 and out.shape == (num_q, topk)
    assert (out[0] == -1).all()
    scores = brute_force_scores(q.float(), k.float(), k_scale, weights)
    for t in range(num_q):
        assert_topk_row(out[t], scores[t], start[t], end[t], topk)


def test_prefill_topk_ties_pick_a_best_set():
    q, k, k_scale, weights = _fp8_inputs(3, 8, 2, 32, seed=3)
    k = k[torch.tensor([0, 1, 0, 1, 2, 2, 2, 3])]  # repeated keys: equal scores
    k_scale = k_scale[torch.tensor([0, 1, 0, 1, 2, 2, 2, 3])]
    start, end = torch.zeros(3, dtype=torch.int32), torch.full((3,), 8, dtype=torch.int32)
    out = ref.indexer_topk_prefill(q, k, k_scale, weights, start, end, topk=3)
    scores = brute_force_scores(q.float(), k.float(), k_scale, weights)
    for t in range(3):
        assert_topk_row(out[t], scores[t], 0, 8, 3)


def test_prefill_ranges_beyond_the_keys_are_clamped():
    q, k, k_scale, weights = _fp8_inputs(2, 5, 2, 32)
    out = ref.indexer_topk_prefill(q, k, k_scale, weights, torch.tensor([-4, 2]), torch.tensor([9, 100]), topk=8)
    assert sorted(out[0, :5].tolist()) == [0, 1, 2, 3, 4] and (out[0, 5:] == -1).all()
    assert sorted(out[1, :3].tolist()) == [2, 3, 4] and (out[1, 3:] == -1).all()


def _paged_cache(seq_lens, dim, pages_per_req, seed=0):
    """A cache whose unused bytes are NaN, requests on shuffled pages; returns cache, page_table, per-request keys."""
    gen = torch.Generator().manual_seed(seed)
    num_pages = len(seq_lens) * pages_per_req + 2
    cache = torch.full((num_pages, 64 * (dim + 4) // 4), math.nan).view(torch.uint8)
    page_table = torch.randperm(num_pages, generator=gen)[: len(seq_lens) * pages_per_req].view(len(seq_lens), -1).int()
    keys = []
    for b, length in enumerate(seq_lens):
        k_fp8, k_scale = ref.quantize_fp8_blockwise(torch.randn(length, dim, generator=gen), block=dim)
        k_scale = k_scale[:, 0] * torch.rand(length, generator=gen)  # non-power-of-two scales are stored as given
        pos = torch.arange(length)
        slots = page_table[b, pos // 64].long() * 64 + pos % 64
        ref.store_index_k(cache, slots, k_fp8, k_scale)
        keys.append((k_fp8, k_scale))
    return cache, page_table, keys


@pytest.mark.parametrize(
    "seq_lens, s_q, topk",
    [pytest.param([70, 5, 130], 1, 16, id="pages-crossed-s_q1"), pytest.param([66, 3, 128], 3, 64, id="verify-s_q3"),
     pytest.param([2, 64], 3, 8, id="seq-shorter-than-s_q")],
)
def test_decode_topk_against_brute_force(seq_lens, s_q, topk):
    dim, heads = 32, 3
    cache, page_table, keys = _paged_cache(seq_lens, dim, pages_per_req=3)
    gen = torch.Generator().manual_seed(5)
    q, q_scale = ref.quantize_fp8_blockwise(torch.randn(len(seq_lens), s_q, heads, dim, generator=gen))
    weights = torch.randn(len(seq_lens), s_q, heads, generator=gen) * q_scale[..., 0]
    out = ref.indexer_topk_decode(q, cache, weights, torch.tensor(seq_lens), page_table, topk)
    assert out.shape == (len(seq_lens), s_q, topk) and out.dtype == torch.int32
    for b, (k_fp8, k_scale) in enumerate(keys):
        scores = brute_force_scores(q[b].float(), k_fp8.float(), k_scale, weights[b])
        for i in range(s_q):
            assert_topk_row(out[b, i], scores[i], 0, seq_lens[b] - s_q + i + 1, topk)


def test_positions_to_slots_per_token_and_per_page_tables_agree():
    gen = torch.Generator().manual_seed(0)
    page_table = torch.randperm(10, generator=gen)[:6].view(2, 3).int()
    pos = torch.arange(192)
    page_table_1 = (page_table[:, pos // 64].long() * 64 + pos % 64).int()
    positions = torch.tensor([[[0, 63, 64, 191, -1]], [[5, -1, 130, 500, -7]]], dtype=torch.int32)
    by_token = ref.topk_positions_to_slots(positions, page_table_1)
    by_page = ref.topk_positions_to_slots(positions, page_table, page_size=64)
    assert by_token.dtype == torch.int32 and by_token.shape == positions.shape
    torch.testing.assert_close(by_token, by_page)
    assert by_token[0, 0].tolist() == [page_table[0, 0] * 64, page_table[0, 0] * 64 + 63, page_table[0, 1] * 64,
                                       page_table[0, 2] * 64 + 63, -1]
    assert by_token[1, 0].tolist() == [page_table[1, 0] * 64 + 5, -1, page_table[1, 2] * 64 + 2, -1, -1]
