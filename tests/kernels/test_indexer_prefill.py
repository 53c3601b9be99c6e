"""Triton indexer prefill (FP8 scores + top-k) against the float32 reference.

Selections are compared as sets judged by reference scores (ties: any best
set passes, checked through the selected-score multiset).
"""

import os

import pytest
import torch

if not torch.cuda.is_available():  # CPU CI: Triton kernels run in the interpreter
    os.environ.setdefault("TRITON_INTERPRET", "1")

from indexer_topk_checks import assert_topk_row  # noqa: E402

from dsv32_plugin.kernels.indexer import prefill as indexer_prefill  # noqa: E402
from dsv32_plugin.kernels import reference as ref  # noqa: E402

DEVICE = "cuda" if torch.cuda.is_available() else "cpu"


def _inputs(num_q, num_k, heads, dim, gen, kind):
    q, q_scale = ref.quantize_fp8_blockwise(torch.randn(num_q, heads, dim, generator=gen))
    k_float = torch.randn(num_k, dim, generator=gen)
    if kind == "ties":
        k_float = k_float[torch.randint(0, 5, (num_k,), generator=gen)]  # 5 distinct keys
    if kind == "zero-tiles":
        k_float[::3] = 0.0  # all-zero FP8 tiles: score exactly 0
        q = q.clone()
        q[0] = 0  # a query whose every score is 0
    k, k_scale = ref.quantize_fp8_blockwise(k_float)
    weights = torch.randn(num_q, heads, generator=gen) * q_scale[..., 0] * dim**-0.5
    return q, k, k_scale[:, 0], weights


def _ranges(num_q, num_k, gen, kind):
    if kind == "causal":  # the last num_q tokens of a num_k-token sequence
        end = num_k - num_q + 1 + torch.arange(num_q)
        return torch.zeros(num_q, dtype=torch.int32), end.int()
    start = torch.randint(-3, num_k // 2, (num_q,), generator=gen)
    end = start + torch.randint(0, num_k, (num_q,), generator=gen)
    start[0], end[0] = 7, 7  # empty range
    return start.int(), end.int()


SHAPES = [
    pytest.param(4, 96, 64, 128, 32, "causal", id="h64-d128-causal"),
    pytest.param(7, 300, 5, 32, 16, "ragged", id="h5-d32-ragged-clamped-empty"),
    pytest.param(3, 20, 4, 64, 64, "ragged", id="context-shorter-than-topk"),
    pytest.param(5, 150, 3, 32, 8, "ties", id="ties"),
    pytest.param(5, 130, 16, 32, 24, "zero-tiles", id="all-zero-fp8-tiles"),
]


@pytest.mark.parametrize("num_q, num_k, heads, dim, topk, kind", SHAPES)
def test_prefill_matches_reference(num_q, num_k, heads, dim, topk, kind):
    gen = torch.Generator().manual_seed(num_q * 1000 + num_k)
    q, k, k_scale, weights = _inputs(num_q, num_k, heads, dim, gen, kind)
    start, end = _ranges(num_q, num_k, gen, "causal" if kind == "causal" else "ragged")
    args = [t.to(DEVICE) for t in (q, k, k_scale, weights, start, end)]
    out = indexer_prefill.indexer_topk_prefill(*args, topk=topk).cpu()
    assert out.shape == (num_q, topk) and out.dtype == torch.int32
    scores = ref.indexer_scores(q, k, weights, k_scale)
    tol = 1e-3 * float(scores.abs().max()) if DEVICE == "cuda" else 1e-5  # FP8 MMA accumulation on GPUs
    for t in range(num_q):
        assert_topk_row(out[t], scores[t], max(int(start[t]), 0), min(int(end[t]), num_k), topk, atol=tol)


def test_prefill_in_several_logit_chunks(monkeypatch):
    """A tiny budget forces one program-row block per chunk: same answer."""
    gen = torch.Generator().manual_seed(9)
    q, k, k_scale, weights = _inputs(7, 90, 4, 32, gen, "random")
    start, end = _ranges(7, 90, gen, "ragged")
    args = [t.to(DEVICE) for t in (q, k, k_scale, weights, start, end)]
    monkeypatch.setattr(indexer_prefill, "LOGITS_BUDGET_BYTES", 4 * 90 * 2)
    out = indexer_prefill.indexer_topk_prefill(*args, topk=12).cpu()
    scores = ref.indexer_scores(q, k, weights, k_scale)
    for t in range(7):
        assert_topk_row(out[t], scores[t], max(int(start[t]), 0), min(int(end[t]), 90), 12, atol=1e-3)


def test_prefill_with_no_keys_gives_minus_one():
    q = torch.zeros(2, 4, 32).to(torch.float8_e4m3fn)
    k = torch.zeros(0, 32).to(torch.float8_e4m3fn)
    out = indexer_prefill.indexer_topk_prefill(q.to(DEVICE), k.to(DEVICE), torch.ones(0, device=DEVICE),
                                               torch.ones(2, 4, device=DEVICE), torch.tensor([0, 0], device=DEVICE),
                                               torch.tensor([5, 0], device=DEVICE), topk=4).cpu()
    assert (out == -1).all()


def test_prefill_refuses_non_fp8_inputs():
    q = torch.zeros(2, 4, 32, device=DEVICE)
    k = torch.zeros(5, 32, device=DEVICE)
    with pytest.raises(ValueError):
        indexer_prefill.indexer_topk_prefill(q, k, torch.ones(5, device=DEVICE), torch.ones(2, 4, device=DEVICE),
                                             torch.zeros(2, device=DEVICE), torch.ones(2, device=DEVICE))
