"""Triton indexer decode (paged FP8 cache -> top-k) and the slot transform,
against the float32 reference, with NaN poison in every byte nothing wrote."""

import math
import os

import pytest
import torch

if not torch.cuda.is_available():  # CPU CI: Triton kernels run in the interpreter
    os.environ.setdefault("TRITON_INTERPRET", "1")

from indexer_topk_checks import assert_topk_row  # noqa: E402

from dsv32_plugin.kernels.indexer import decode as indexer_decode  # noqa: E402
from dsv32_plugin.kernels import reference as ref  # noqa: E402

DEVICE = "cuda" if torch.cuda.is_available() else "cpu"


def poisoned_paged_cache(seq_lens, dim, pages_per_req, gen, tie_keys=False):
    """NaN everywhere, then each request's keys on shuffled pages. Page-table entries
    past a request's pages point at a NaN page or are -1: they must not be read."""
    num_pages = len(seq_lens) * pages_per_req + 1
    cache = torch.full((num_pages, 64 * (dim + 4) // 4), math.nan).view(torch.uint8)
    nan_page = num_pages - 1
    order = torch.randperm(num_pages - 1, generator=gen).view(len(seq_lens), pages_per_req)
    page_table = order.clone().int()
    for b, length in enumerate(seq_lens):
        used = -(-length // 64)
        page_table[b, used:] = torch.tensor([nan_page, -1]).repeat(pages_per_req)[: pages_per_req - used].int()
        keys = torch.randn(length, dim, generator=gen)
        if tie_keys:
            keys = keys[torch.randint(0, 3, (length,), generator=gen)]
        pos = torch.arange(length)
        ref.store_index_k(cache, order[b, pos // 64].long() * 64 + pos % 64, keys)
    return cache, page_table


DECODE_SHAPES = [
    pytest.param([70, 5, 130], 1, 3, 32, 16, False, id="pages-crossed-s_q1"),
    pytest.param([66, 3, 128], 3, 64, 64, 64, False, id="verify-s_q3-h64"),
    pytest.param([2, 0, 64], 3, 4, 32, 8, False, id="seq-shorter-than-s_q-and-empty"),
    pytest.param([200, 90], 2, 5, 32, 100, True, id="ties-context-shorter-than-topk"),
    # a CUDA graph's page table spans the whole context: one request far shorter than it (split top-k)
    pytest.param([1500], 1, 4, 32, 100, False, id="lone-request-in-a-wide-page-table"),
]


@pytest.mark.parametrize("seq_lens, s_q, heads, dim, topk, ties", DECODE_SHAPES)
def test_decode_matches_reference(seq_lens, s_q, heads, dim, topk, ties):
    gen = torch.Generator().manual_seed(sum(seq_lens) + s_q)
    pages = max(4, 2 * -(-max(seq_lens) // 64))
    cache, page_table = poisoned_paged_cache(seq_lens, dim, pages_per_req=pages, gen=gen, tie_keys=ties)
    q, q_scale = ref.quantize_fp8_blockwise(torch.randn(len(seq_lens), s_q, heads, dim, generator=gen))
    weights = torch.randn(len(seq_lens), s_q, heads, generator=gen) * q_scale[..., 0]
    lens = torch.tensor(seq_lens, dtype=torch.int32)
    args = [t.to(DEVICE) for t in (q, cache, weights, lens, page_table)]
    out = indexer_decode.indexer_topk_decode(*args, topk=topk).cpu()
    assert out.shape == (len(seq_lens), s_q, topk) and out.dtype == torch.int32
    for b, length in enumerate(seq_lens):
        pos = torch.arange(length)
        k_fp8, k_scale = ref.gather_index_k(cache, page_table[b, pos // 64].long() * 64 + pos % 64)
        scores = ref.indexer_scores(q[b], k_fp8, weights[b], k_scale)
        assert not scores.isnan().any()
        tol = 1e-3 * float(scores.abs().max()) if DEVICE == "cuda" and length else 1e-5
        for i in range(s_q):
            assert_topk_row(out[b, i], scores[i], 0, length - s_q + i + 1, topk, atol=tol)


@pytest.mark.parametrize("page_size", [pytest.param(1, id="page_table_1"), pytest.param(64, id="page-ids")])
def test_positions_to_slots_matches_reference(page_size):
    gen = torch.Generator().manual_seed(page_size)
    page_table = torch.randperm(12, generator=gen)[:9].view(3, 3).int()
    pos = torch.arange(192)
    table = page_table if page_size == 64 else (page_table[:, pos // 64].long() * 64 + pos % 64).int()
    positions = torch.randint(-2, 200, (3, 2, 40), generator=gen, dtype=torch.int32)  # -1, -2, beyond the table
    got = indexer_decode.topk_positions_to_slots(positions.to(DEVICE), table.to(DEVICE), page_size).cpu()
    assert torch.equal(got, ref.topk_positions_to_slots(positions, table, page_size))
    flat = positions[:, 0]
    got2 = indexer_decode.topk_positions_to_slots(flat.to(DEVICE), table.to(DEVICE), page_size).cpu()
    assert torch.equal(got2, ref.topk_positions_to_slots(flat, table, page_size))
