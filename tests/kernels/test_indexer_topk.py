"""Radix top-k kernel (kernels/indexer/topk.py) against torch.topk-equivalent checks.

On CPU the Triton kernel runs in the interpreter (TRITON_INTERPRET=1).
"""

import os

import pytest
import torch

if not torch.cuda.is_available():  # CPU CI: Triton kernels run in the interpreter
    os.environ.setdefault("TRITON_INTERPRET", "1")

from indexer_topk_checks import assert_topk_row  # noqa: E402

from dsv32_plugin.kernels.indexer import topk  # noqa: E402
from dsv32_plugin.kernels.indexer.topk import topk_rows  # noqa: E402

DEVICE = "cuda" if torch.cuda.is_available() else "cpu"


def _scores(kind, cols, gen):
    x = torch.randn(cols, generator=gen)
    if kind == "ties":
        x = x.round()  # few distinct values, many ties at the threshold
    elif kind == "all-equal":
        x = torch.full((cols,), 0.75)
    elif kind == "nan-inf-zeros":
        x[::7] = float("nan")
        x[1::11] = float("inf")
        x[2::13] = float("-inf")
        x[3::5] = 0.0
        x[4::5] = -0.0
    elif kind == "threshold-bin-whole":  # first byte already splits the top-k off: early exit
        x = torch.tensor([8.0, 8.0, 4.0, 4.0, 2.0, 2.0]).repeat(cols // 6 + 1)[:cols]
    elif kind == "negative":
        x = -x.abs() - 1
    elif kind == "sample-adversarial":  # the sampled columns are the smallest: bounds miss, streaming select
        x = x.abs() + 10
        x[torch.arange(topk.topk_sample_size(cols)) * cols // topk.topk_sample_size(cols)] = -5.0
    return x


@pytest.mark.parametrize(
    "kind, cols, k, block",
    [pytest.param("random", 300, 16, None, id="random-one-block"),
     pytest.param("random", 2500, 64, 512, id="random-five-blocks"),
     pytest.param("ties", 700, 40, 256, id="ties"),
     pytest.param("all-equal", 200, 33, None, id="all-equal"),
     pytest.param("nan-inf-zeros", 400, 50, 128, id="nan-inf-zeros"),
     pytest.param("threshold-bin-whole", 60, 20, None, id="threshold-bin-whole"),
     pytest.param("negative", 257, 256, None, id="negative-topk-just-below-count"),
     pytest.param("sample-adversarial", 300, 20, 128, id="sample-adversarial-streaming-fallback"),
     pytest.param("random", 4500, 100, 1024, id="long-row-sampled-bounds")],
)
def test_topk_rows_selects_a_best_set(kind, cols, k, block):
    gen = torch.Generator().manual_seed(cols + k)
    rows = 4
    scores = torch.stack([_scores(kind, cols, gen) for _ in range(rows)])
    if kind == "threshold-bin-whole":
        scores[:] = scores[0]
    starts = torch.tensor([0, 3, cols // 3, 0], dtype=torch.int32)
    if kind == "sample-adversarial":
        starts[:] = 0  # the sample is taken relative to the range start
    ends = torch.tensor([cols, cols - 1, cols, cols], dtype=torch.int32)
    out = topk_rows(scores.to(DEVICE), starts.to(DEVICE), ends.to(DEVICE), k, block=block).cpu()
    assert out.shape == (rows, k) and out.dtype == torch.int32
    ranked = torch.nan_to_num(scores, nan=-torch.inf)  # NaN ranks lowest
    for r in range(rows):
        assert_topk_row(out[r], ranked[r], starts[r], ends[r], k, atol=0, rtol=0)


def test_short_empty_and_inverted_ranges_need_no_scores():
    scores = torch.full((4, 50), float("nan"), device=DEVICE)  # never read: ranges <= topk
    starts = torch.tensor([5, 0, 30, -9], dtype=torch.int32, device=DEVICE)
    ends = torch.tensor([9, 0, 10, 3], dtype=torch.int32, device=DEVICE)
    out = topk_rows(scores, starts, ends, topk=8).cpu()
    assert out[0].tolist() == [5, 6, 7, 8, -1, -1, -1, -1]
    assert (out[1] == -1).all() and (out[2] == -1).all()
    assert out[3].tolist() == [0, 1, 2, -1, -1, -1, -1, -1]  # start clamped to 0


def test_bad_arguments_are_refused():
    with pytest.raises(ValueError):
        topk_rows(torch.zeros(2, 8, dtype=torch.float16, device=DEVICE), torch.zeros(2, dtype=torch.int32, device=DEVICE),
                  torch.ones(2, dtype=torch.int32, device=DEVICE))
    with pytest.raises(ValueError):
        topk_rows(torch.zeros(2, 8, device=DEVICE), torch.zeros(2, dtype=torch.int32, device=DEVICE),
                  torch.ones(2, dtype=torch.int32, device=DEVICE), topk=0)


@pytest.mark.parametrize("kind, cols, k", [
    pytest.param("random", 5000, 100, id="random"),
    pytest.param("ties", 3000, 64, id="ties"),
    pytest.param("sample-adversarial", 3000, 40, id="sample-adversarial-whole-row-fallback"),
    pytest.param("nan-inf-zeros", 2100, 700, id="nan-inf-zeros"),
    pytest.param("random", 2100, 2048, id="topk-near-count"),
])
@pytest.mark.parametrize("splits", [2, 5])
def test_split_rows_give_the_one_program_output(kind, cols, k, splits):
    """Few long rows are filtered in slices by several programs and merged: the same output, entry for entry."""
    gen = torch.Generator().manual_seed(cols + splits)
    scores = torch.stack([_scores(kind, cols, gen) for _ in range(3)]).to(DEVICE)
    starts = torch.tensor([0, 7, 0], dtype=torch.int32, device=DEVICE)
    ends = torch.tensor([cols, cols - 5, k - 3], dtype=torch.int32, device=DEVICE)  # the last row: <= k columns
    whole = topk_rows(scores, starts, ends, k, splits=1)
    assert torch.equal(topk_rows(scores, starts, ends, k, splits=splits), whole)
    for r in range(3):
        assert_topk_row(whole[r].cpu(), torch.nan_to_num(scores[r].cpu(), nan=-torch.inf), starts[r], ends[r], k, 0, 0)


@pytest.mark.parametrize("splits", [1, 3])
def test_ties_at_the_threshold_go_to_the_lower_column(splits):
    """Deterministic tie-break (chunked, CP and multi-rank runs must agree): equal scores at the
    threshold are taken lowest column first."""
    cols, k = 2500, 50
    scores = torch.zeros(1, cols)
    scores[0, 1000:1030] = 2.0  # 30 clear winners, then 2470 tied zeros for the last 20 places
    out = topk_rows(scores.to(DEVICE), torch.zeros(1, dtype=torch.int32, device=DEVICE),
                    torch.full((1,), cols, dtype=torch.int32, device=DEVICE), k, splits=splits).cpu()[0]
    assert sorted(out.tolist()) == sorted(list(range(1000, 1030)) + list(range(20)))


@pytest.mark.parametrize("splits", [1, 3])
def test_no_starts_means_every_row_from_column_zero(splits):
    gen = torch.Generator().manual_seed(7)
    scores = torch.randn(3, 3000, generator=gen).to(DEVICE)
    ends = torch.tensor([3000, 2500, 40], dtype=torch.int32, device=DEVICE)
    zeros = torch.zeros(3, dtype=torch.int32, device=DEVICE)
    assert torch.equal(topk_rows(scores, None, ends, 64, splits=splits), topk_rows(scores, zeros, ends, 64, splits=splits))
