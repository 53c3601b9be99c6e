"""The GPU kernel benchmarks as pytest-benchmark cases (``pytest -m gpu --benchmark-only bench/``).

Inputs come from the device scripts in benchmarks/ (on the import path through pytest's ``pythonpath``
setting), so the shapes are the ones docs/perf.md reports: sparse MLA prefill (T=4096 of S=32768,
128 heads, top-2048) and decode (B=64, FP8 and bf16 caches), the indexer's prefill and decode top-k,
and FlashMLA on the same inputs where it is installed. Each case checks its output against the float32
reference on its first rows before timing; times (CUDA-synchronised calls) are printed and kept as
JSON with ``--benchmark-json`` (tests/gpu/run_device.sh bench), never asserted on.
"""

from __future__ import annotations

import pytest
import torch

pytestmark = pytest.mark.gpu

ROUNDS, WARMUP = 20, 3
CHECK_ROWS = 64


def timed(benchmark, fn):
    def synchronised():
        fn()
        torch.cuda.synchronize()

    benchmark.pedantic(synchronised, rounds=ROUNDS, iterations=1, warmup_rounds=WARMUP)


@pytest.fixture(scope="module")
def sparse_mla():
    import bench_sparse_mla

    return bench_sparse_mla


@pytest.mark.parametrize("impl", ["triton", "flashmla"])
def test_sparse_mla_prefill(benchmark, sparse_mla, impl):
    from dsv32_plugin.kernels import reference as ref
    from dsv32_plugin.kernels.sparse_mla.interface import sparse_mla_prefill

    q, kv, idx = sparse_mla.prefill_inputs(4096, 32768)
    scale, d_v = sparse_mla.SM_SCALE, sparse_mla.D_V
    if impl == "flashmla":
        flash_mla = pytest.importorskip("flash_mla")
        call = lambda: flash_mla.flash_mla_sparse_fwd(q, kv.unsqueeze(1), idx.unsqueeze(1), scale, d_v,  # noqa: E731
                                                      use_legacy=True)
    else:
        call = lambda: sparse_mla_prefill(q, kv, idx, scale)  # noqa: E731
    out = call()[0]
    want = ref.sparse_mla_prefill(q[:CHECK_ROWS], kv, idx[:CHECK_ROWS], scale)[0]
    assert sparse_mla.rel_l2(out[:CHECK_ROWS], want) < 1e-2
    timed(benchmark, call)


@pytest.mark.parametrize("cache", ["fp8", "bf16"])
def test_sparse_mla_decode(benchmark, sparse_mla, cache):
    from dsv32_plugin.kernels import reference as ref
    from dsv32_plugin.kernels.sparse_mla.interface import sparse_mla_decode

    q, kv_cache, idx = sparse_mla.decode_inputs(64, 128, cache == "fp8")
    scale, d_v = sparse_mla.SM_SCALE, sparse_mla.D_V
    call = lambda: sparse_mla_decode(q, kv_cache, idx, scale, d_v)  # noqa: E731
    rows = slice(0, 2)
    want = ref.sparse_mla_decode(q[rows], kv_cache, idx[rows], scale, d_v)[0]
    assert sparse_mla.rel_l2(call()[0][rows], want) < 1e-2
    timed(benchmark, call)


@pytest.fixture(scope="module")
def indexer():
    import bench_indexer

    return bench_indexer


def test_indexer_prefill_topk(benchmark, indexer):
    from dsv32_plugin.kernels.indexer.prefill import indexer_topk_prefill

    q, weights, k, k_scale, start, end = indexer.prefill_inputs(torch.Generator(device="cuda").manual_seed(0))
    call = lambda: indexer_topk_prefill(q, k, k_scale, weights, start, end, indexer.TOPK)  # noqa: E731
    top = call()[::512].long()  # every row picks TOPK distinct keys of its causal window
    assert top.shape[1] == indexer.TOPK and ((top >= start[::512, None]) & (top < end[::512, None])).all()
    assert all(row.unique().numel() == indexer.TOPK for row in top)
    timed(benchmark, call)


def test_indexer_decode_topk(benchmark, indexer):
    from dsv32_plugin.kernels.indexer.decode import indexer_topk_decode

    q, cache, weights, seq_lens, page_table = indexer.decode_inputs(torch.Generator(device="cuda").manual_seed(0),
                                                                    32768)
    call = lambda: indexer_topk_decode(q, cache, weights, seq_lens, page_table, indexer.TOPK)  # noqa: E731
    top = call().view(q.shape[0], -1).long()  # positions: TOPK distinct ones of each context
    assert top.shape[1] == indexer.TOPK and ((top >= 0) & (top < 32768)).all()
    timed(benchmark, call)
