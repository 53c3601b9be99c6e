"""On a GPU: the Triton DSA path, driven as a server drives it, equals the float32 reference.

``server_calls.py`` runs a server's calls (a one-token health-check prefill, a fresh batch,
a chunk and a single token over a cached prefix longer than top-k, decode, a lone decode,
EAGLE verify) through the backend with the Triton kernels and with the
float32 reference kernels, at real width (128 heads at --tp 1, 16 at --tp 8, 576/512,
top-k 2048, indexer 64 x 128) and on the tiny test checkpoint's dims, for both KV formats.
The pool's rows, the backend's index transform and the launchers' choices are the server's.

Per step: the Triton indexer's top-k equals the reference's (as sets, but for rows whose
boundary scores tie within FP8 rounding: at most 1% of a row), and the attention call's
output (each backend attending over its own selection) agrees within bf16 rounding. ``DSV32_TRITON_PRE_SM89=1`` (kernels/target.py) runs
the pre-sm89 path (e4m3 bytes decoded in software, fp16 dots; what A100s run) on the same inputs.
"""

from __future__ import annotations

import pytest
import torch

from dsv32_plugin.kernels.target import PRE_SM89_SWITCH
from server_calls import KV_DTYPES, REAL_TP1, REAL_TP8, TINY, make_backend, run_server_calls

pytestmark = pytest.mark.gpu


def _selection_overlap(a: torch.Tensor, b: torch.Tensor) -> float:
    """Smallest per-row share of ``a``'s valid positions that ``b`` also selected."""
    worst = 1.0
    for row_a, row_b in zip(a.tolist(), b.tolist()):
        mine = {p for p in row_a if p >= 0}
        if mine or any(p >= 0 for p in row_b):
            worst = min(worst, len(mine & set(row_b)) / max(len(mine), 1))
    return worst


def _rel_l2(x: torch.Tensor, y: torch.Tensor) -> float:
    return float((x.float() - y.float()).norm() / y.float().norm().clamp_min(1e-6))


@pytest.mark.parametrize("pre_sm89", [False, True], ids=["native", "pre-sm89-path"])
@pytest.mark.parametrize("kv", list(KV_DTYPES))
@pytest.mark.parametrize("shape", [REAL_TP1, REAL_TP8, TINY], ids=lambda s: s.name)
def test_triton_server_calls_equal_reference(shape, kv, pre_sm89, monkeypatch):
    monkeypatch.setenv(PRE_SM89_SWITCH, "1" if pre_sm89 else "0")
    reference = run_server_calls(make_backend(shape, KV_DTYPES[kv], "cuda", "torch", monkeypatch), shape, "cuda")
    triton_own = run_server_calls(make_backend(shape, KV_DTYPES[kv], "cuda", "triton", monkeypatch), shape, "cuda")
    torch.cuda.synchronize()
    for step, (ref_topk, ref_out) in reference.items():
        ours_topk, ours_out = triton_own[step]
        if step in ("cp_encode", "graph_refresh"):  # cache writers and metadata: Triton on CUDA in both backends
            continue
        assert _selection_overlap(ours_topk, ref_topk) >= 0.99, step
        assert torch.isfinite(ours_out.float()).all(), step
        assert _rel_l2(ours_out, ref_out) < 1e-2, (step, _rel_l2(ours_out, ref_out))
