"""DSABackend on a real DSAIndexedKVPool, driven by hand-built forward batches (no server).

Random latent rows, indexer keys and queries for one 80-token request are fed
(a) as one extend, (b) as a 64-token chunk then a 16-token extend over the
cached prefix, (c) as 79 tokens then one decode step. All three must give the
same top-k and the same attention output for the shared rows, and rows that
see at most index_topk keys (dense path) must equal plain causal softmax
attention computed here.
"""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch
from sglang.srt.model_executor.forward_batch_info import ForwardMode

import dsv32_plugin.attention.dispatch as dispatch
from dsv32_plugin.attention.backend import DSABackend
from dsv32_plugin.attention.pool import DSAIndexedKVPool
from fake_runner import fake_model_runner

HEADS, DL, R, DI, HI, TOPK, SEQ = 2, 128, 32, 64, 4, 16, 80
SCALE = 0.2


def make_backend(kv_dtype: torch.dtype, monkeypatch, kernels: str | None = None) -> DSABackend:
    monkeypatch.setattr(dispatch, "configured_backends", lambda: (kernels, kernels))
    width = DL + R if kv_dtype != torch.float8_e4m3fn else DL + 4 + 2 * R
    pool = DSAIndexedKVPool(256, 64, DL, kv_dtype, R, 1, "cpu", DI, False, width)
    req_to_token = torch.zeros(2, 512, dtype=torch.int32)
    req_to_token[1, :SEQ] = torch.arange(64, 64 + SEQ)  # slots of request 1 (page-aligned)
    return DSABackend(fake_model_runner(pool, req_to_token, topk=TOPK, kv_lora_rank=DL, rope=R))


def inputs(seed=0, dtype=torch.float32):
    g = torch.Generator().manual_seed(seed)
    return {name: torch.randn(*shape, generator=g).to(dtype if name != "w" else torch.float32) for name, shape in {
        "q": (SEQ, HEADS, DL), "q_rope": (SEQ, HEADS, R), "c_kv": (SEQ, 1, DL), "k_rope": (SEQ, 1, R),
        "iq": (SEQ, HI, DI), "ik": (SEQ, DI), "w": (SEQ, HI)}.items()}


def run(backend, x, start: int, end: int, decode: bool):
    """Feed rows [start, end) of request 1; returns (top-k positions, output [rows, H, DL])."""
    rows = torch.arange(start, end)
    batch = SimpleNamespace(
        forward_mode=ForwardMode.DECODE if decode else ForwardMode.EXTEND, batch_size=1, positions=rows,
        extend_seq_lens=None if decode else torch.tensor([end - start]), req_pool_indices=torch.tensor([1]),
        out_cache_loc=64 + rows, seq_lens=torch.tensor([end]),
    )
    backend.init_forward_metadata(batch)
    index = {"index_q": x["iq"][rows], "index_k": x["ik"][rows], "index_weights": x["w"][rows]}
    layer = SimpleNamespace(layer_id=0, tp_q_head_num=HEADS, scaling=SCALE)
    forward = backend.forward_decode if decode else backend.forward_extend
    out = forward(x["q"][rows].reshape(len(rows), -1), x["c_kv"][rows], x["c_kv"][rows], layer, batch,
                  q_rope=x["q_rope"][rows], k_rope=x["k_rope"][rows], **index)
    topk = backend.select_topk(0, batch, *index.values())  # what the call selected
    return topk, out.view(len(rows), HEADS, DL)


@pytest.mark.parametrize("kv_dtype", [pytest.param(torch.float32, id="float32-exact"),
                                      pytest.param(torch.bfloat16, id="bf16-fp8-indexer"),
                                      pytest.param(torch.float8_e4m3fn, id="fp8-kv")])
def test_chunked_and_decode_equal_one_extend(kv_dtype, monkeypatch):
    x = inputs()
    whole_topk, whole = run(make_backend(kv_dtype, monkeypatch), x, 0, SEQ, decode=False)
    chunked = make_backend(kv_dtype, monkeypatch)
    run(chunked, x, 0, 64, decode=False)
    tail_topk, tail = run(chunked, x, 64, SEQ, decode=False)
    stepped = make_backend(kv_dtype, monkeypatch)
    run(stepped, x, 0, SEQ - 1, decode=False)
    last_topk, last = run(stepped, x, SEQ - 1, SEQ, decode=True)
    same = lambda a, b: [set(r.tolist()) for r in a] == [set(r.tolist()) for r in b]  # noqa: E731
    assert same(tail_topk, whole_topk[64:]) and same(last_topk, whole_topk[-1:])
    assert (whole_topk[TOPK:] >= 0).all() and (whole_topk[:TOPK - 1, -1] == -1).all()
    torch.testing.assert_close(tail, whole[64:], rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(last, whole[-1:], rtol=1e-5, atol=1e-5)


def test_dense_rows_equal_causal_softmax_attention(monkeypatch):
    x = inputs(1)
    n = TOPK  # every row sees at most TOPK keys: the dense path
    _, out = run(make_backend(torch.float32, monkeypatch), x, 0, n, decode=False)
    q = torch.cat([x["q"][:n], x["q_rope"][:n]], -1)
    kv = torch.cat([x["c_kv"][:n, 0], x["k_rope"][:n, 0]], -1)
    scores = torch.einsum("thd,sd->ths", q, kv) * SCALE
    scores = scores.masked_fill(torch.ones(n, n, dtype=torch.bool).triu(1)[:, None, :], float("-inf"))
    expected = torch.einsum("ths,sd->thd", scores.softmax(-1), kv[:, :DL])
    torch.testing.assert_close(out, expected, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("kv_dtype", [pytest.param(torch.bfloat16, id="bf16-kv"),
                                      pytest.param(torch.float8_e4m3fn, id="fp8-kv")])
def test_triton_kernels_through_the_backend_match_the_reference(kv_dtype, monkeypatch):
    """The backend's calls into the ``triton`` kernels (interpreted on CPU) give the reference's results.

    Indexer inputs are made positive, so every score is positive and exact ties
    (which either side may break its own way) do not occur.
    """
    x = inputs(2, torch.bfloat16)
    x.update(iq=x["iq"].abs(), ik=x["ik"].abs(), w=x["w"].abs())
    results = {}
    for kernels in ("torch", "triton"):
        backend = make_backend(kv_dtype, monkeypatch, kernels)
        assert backend.kernels.prefill_name == kernels
        extend_topk, extend = run(backend, x, 0, SEQ - 1, decode=False)
        decode_topk, decode = run(backend, x, SEQ - 1, SEQ, decode=True)
        results[kernels] = (extend_topk, extend, decode_topk, decode)
    (ref_et, ref_e, ref_dt, ref_d), (tri_et, tri_e, tri_dt, tri_d) = results["torch"], results["triton"]
    as_sets = lambda t: [set(r.tolist()) for r in t]  # noqa: E731
    assert as_sets(tri_et) == as_sets(ref_et) and as_sets(tri_dt) == as_sets(ref_dt)
    torch.testing.assert_close(tri_e.float(), ref_e.float(), rtol=2e-2, atol=2e-2)
    torch.testing.assert_close(tri_d.float(), ref_d.float(), rtol=2e-2, atol=2e-2)
