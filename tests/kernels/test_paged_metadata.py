"""Paged metadata refresh (request lengths, 64-token page ids): the reference against hand-computed
values, then the one-launch Triton kernel against the reference over named odd shapes."""

import os

import pytest
import torch

if not torch.cuda.is_available():  # CPU CI: Triton kernels run in the interpreter
    os.environ.setdefault("TRITON_INTERPRET", "1")

from dsv32_plugin.kernels.cache import paged_metadata  # noqa: E402
from dsv32_plugin.kernels import reference as ref  # noqa: E402

DEVICE = "cuda" if torch.cuda.is_available() else "cpu"
POISON = -7  # never a page id the refresh writes here


def test_reference_writes_the_documented_values():
    req_to_token = torch.arange(3 * 200, dtype=torch.int32).view(3, 200) + 1000  # 200: 4 pages, not 64-aligned
    req_to_token[2, 64] = -1  # a stale entry past a request's length: floor division
    positions = torch.tensor([5, 9, 7, 130, 128, 129])  # 2 requests x 3 rows, unsorted within a request
    kv_len = torch.zeros(2, dtype=torch.int32)
    table = torch.full((2, 4), POISON, dtype=torch.int32)
    ref.fill_paged_metadata(kv_len, table, positions, torch.tensor([2, 0, 1]), req_to_token, 3, step=2)
    assert kv_len.tolist() == [9 + 1 + 2, 130 + 1 + 2]
    assert table.tolist() == [[(1400 + 64 * j) // 64 if j != 1 else -1 for j in range(4)],
                              [(1000 + 64 * j) // 64 for j in range(4)]]


def _inputs(batch, rows, context, padded, seed):
    """A scheduler's tensors: ``padded`` trailing requests as a CUDA-graph replay pads them (row 0, position 0)."""
    gen = torch.Generator().manual_seed(seed)
    pool_rows = batch + 2
    width = context + 1 + 17  # req_to_token's width: not a multiple of 64
    req_to_token = torch.randint(0, 1 << 20, (pool_rows, width), generator=gen, dtype=torch.int32)
    req_to_token[1, ::5] = -1  # stale entries: the kernel floors like the reference's //
    req_pool_indices = torch.randperm(pool_rows, generator=gen)[:batch]
    lengths = torch.randint(rows, context + 1, (batch,), generator=gen)
    positions = (lengths[:, None] - rows + torch.arange(rows)).flatten()
    if padded:
        req_pool_indices[-padded:] = 0
        positions[-padded * rows:] = 0
    extra = torch.randint(0, 100, (3,), generator=gen)  # rows past the batch: never read
    return torch.cat([positions, extra]), torch.cat([req_pool_indices, torch.zeros(2, dtype=torch.long)]), req_to_token


CASES = [  # batch, rows per request, context (not 64-aligned), padded requests, step, write pages
    pytest.param(1, 1, 1, 0, 0, True, id="B1-w1-one-token"),
    pytest.param(1, 1, 4133, 0, 0, True, id="B1-w1-ctx4133"),
    pytest.param(1, 1, 40001, 0, 0, True, id="B1-w1-ctx40001-two-column-blocks"),
    pytest.param(3, 1, 777, 1, 0, True, id="B3-w1-padded"),
    pytest.param(3, 4, 777, 0, 0, True, id="B3-w4-verify"),
    pytest.param(17, 4, 1000, 5, 0, True, id="B17-w4-padded"),
    pytest.param(17, 1, 1000, 0, 2, True, id="B17-w1-step2"),
    pytest.param(3, 1, 777, 0, 1, False, id="B3-w1-step1-shared-pages"),
    pytest.param(1, 4, 65, 0, 0, False, id="B1-w4-lengths-only"),
]


@pytest.mark.parametrize("batch, rows, context, padded, step, pages", CASES)
@pytest.mark.parametrize("num_pages", [pytest.param("longest", id="eager"), pytest.param("context", id="graph")])
def test_kernel_matches_reference(batch, rows, context, padded, step, pages, num_pages):
    positions, req_pool_indices, req_to_token = _inputs(batch, rows, context, padded, seed=batch * 10 + rows)
    longest = int(positions[: batch * rows].max()) + 1 + step
    width = -(-(longest if num_pages == "longest" else req_to_token.shape[1]) // 64)
    want_len = torch.full((batch,), POISON, dtype=torch.int32)
    want_table = torch.full((batch, width), POISON, dtype=torch.int32)
    ref.fill_paged_metadata(want_len, want_table if pages else None, positions, req_pool_indices, req_to_token, rows,
                            step)
    got_len = torch.full_like(want_len, POISON, device=DEVICE)
    got_table = torch.full_like(want_table, POISON, device=DEVICE)
    paged_metadata.fill_paged_metadata(got_len, got_table if pages else None, positions.to(DEVICE),
                                       req_pool_indices.to(DEVICE), req_to_token.to(DEVICE), rows, step)
    assert torch.equal(got_len.cpu(), want_len)
    assert torch.equal(got_table.cpu(), want_table)  # POISON left untouched without pages
    assert pages or (got_table == POISON).all()


def test_refuses_a_table_wider_than_req_to_token():
    req_to_token = torch.zeros(2, 130, dtype=torch.int32, device=DEVICE)
    args = (torch.zeros(4, dtype=torch.long, device=DEVICE), torch.zeros(2, dtype=torch.long, device=DEVICE),
            req_to_token, 1)
    for fill in (ref.fill_paged_metadata, paged_metadata.fill_paged_metadata):
        with pytest.raises(ValueError):
            fill(torch.zeros(2, dtype=torch.int32, device=DEVICE), torch.zeros(2, 4, dtype=torch.int32, device=DEVICE),
                 *args)
        with pytest.raises(ValueError):
            fill(torch.zeros(5, dtype=torch.int32, device=DEVICE), None, *args)  # 5 requests, 4 positions
