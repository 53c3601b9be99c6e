"""benchmarks/bench_decode_layer.py and its table/plot helper, on the CPU.

The device numbers come from the lead's GPU run (docs/perf.md); here the same script runs
the tiny checkpoint's layer end to end on sglang's CPU engine (float32, torch reference DSA
backend, FP8 KV cache, the graph contract called eagerly), and its pieces are checked alone:
the private shuffled pages that replace a prefill, the recorded calls' input restore, the tables.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import bench_decode_layer as bench  # benchmarks/ is on the path (pyproject's pytest pythonpath)
import plot_decode_layer as plots
import pytest
import torch


def test_every_request_gets_its_own_shuffled_pages_and_page_0_stays_padding():
    requests, context, page = 5, 300, bench.PAGE
    req_to_token = torch.zeros(requests + 2, context + 4, dtype=torch.int32)
    bench.assign_pages(req_to_token, requests, context, seed=3)
    slots = req_to_token[1 : requests + 1, :context].long()
    assert (req_to_token[0] == 0).all() and (req_to_token[requests + 1] == 0).all()
    assert slots.unique().numel() == requests * context  # no slot shared by two positions
    assert (slots >= page).all()  # page 0 is the runners' padding page
    pages = slots // page
    assert (slots % page == torch.arange(context) % page).all()  # position p at offset p % 64 of its page
    assert (pages[:, ::page].repeat_interleave(page, 1)[:, :context] == pages).all()  # 64 positions per page
    assert not (pages[:, 1::page].diff(dim=1) == 1).all()  # shuffled, not one contiguous run


def test_recorded_call_restores_in_place_inputs_keeps_strides_and_shares_caches(monkeypatch):
    monkeypatch.setattr(bench, "MAX_RESTORED_BYTES", 1024)
    base = torch.arange(24.0).view(4, 6)
    view = base[:, :3]  # a strided view, like q[..., :nope]
    cache = torch.zeros(1000)  # 4000 bytes: over the cap, passed as it is
    call = bench.Call("add", lambda x, c: (x.add_(1), c.add_(1)), (view, cache), {})
    assert call.args[0].stride() == view.stride() and call.args[0].data_ptr() != view.data_ptr()
    assert call.args[1] is cache
    call()
    call()
    assert torch.equal(call.args[0], view + 2)
    call.restore()
    assert torch.equal(call.args[0], view) and (cache == 2).all()
    assert torch.equal(base, torch.arange(24.0).view(4, 6))  # the recorded tensor itself is never touched


def _report():
    def case(batch, step, parts):
        entries = [{"name": n, "us": us} for n, us in parts]
        total = sum(us for _, us in parts)
        return {"batch": batch, "context": 4096, "step_us": step, "parts": entries, "parts_sum_us": total,
                "ratio": step / total, "complete": True, "graph_vs_eager_rel_err": 1e-3, "finite": True,
                "details": [{"name": "sparse_decode kernel", "within": bench.SPARSE_MLA, "us": 20.0}]}

    return {
        "meta": {"device": "GPU", "kv_cache_dtype": "fp8_e4m3", "dsa_decode": "triton"},
        "cases": [case(1, 110.0, [("q_a_proj", 40.0), (bench.SPARSE_MLA, 60.0)]),
                  case(32, 250.0, [("q_a_proj", 50.0), (bench.SPARSE_MLA, 150.0)]),
                  {"batch": 128, "context": 32768, "error": "Traceback ...\nRuntimeError: boom"}],
    }


def test_tables_give_step_sum_ratio_and_details_under_their_part():
    summary = plots.summary_table(_report()).splitlines()
    assert summary[2].startswith("| 1 | 4096 | 110.0 | 100.0 | **1.10** |")
    assert summary[3].startswith("| 32 | 4096 | 250.0 | 200.0 | **1.25** |")
    assert "RuntimeError: boom" in summary[4]
    parts = plots.parts_table(_report()).splitlines()
    assert parts[0] == "| op | B=1 C=4K | B=32 C=4K |"
    assert parts[3] == f"| {bench.SPARSE_MLA} | 60.0 | 150.0 |"
    assert parts[4] == "| &nbsp;&nbsp;of which sparse_decode kernel | 20.0 | 20.0 |"
    assert parts[-2:] == ["| **sum of parts** | 100.0 | 200.0 |", "| **step (graph)** | 110.0 | 250.0 |"]


def test_every_named_part_has_a_plot_group():
    names = [name for _, name in bench.MODULE_PARTS] + [bench.SELECT_TOPK] + [
        "DSA metadata (in-graph refresh)", "absorbed bmm q_nope x W_UK", "absorbed bmm o x W_UV"]
    assert [n for n in names if plots.group_of(n) == plots.OTHER] == []


def test_plot_draws(tmp_path):
    pytest.importorskip("matplotlib")
    plots.plot(_report(), str(tmp_path / "plot.png"))
    assert (tmp_path / "plot.png").stat().st_size > 10_000


@pytest.mark.slow
def test_tiny_layer_decode_step_and_every_part_on_cpu(tmp_path):
    """The whole script on sglang's CPU engine: ModelRunner, random caches, contract, parts, JSON."""
    env = {k: v for k, v in os.environ.items() if k not in ("TRITON_INTERPRET", "SGLANG_PLUGINS")}
    # TORCHDYNAMO_DISABLE: the host's CPU TopK is torch.compile'd (~30 s to compile here, nothing to test).
    env.update(SGLANG_USE_CPU_ENGINE="1", TORCHDYNAMO_DISABLE="1")
    proc = subprocess.run([sys.executable, bench.__file__, "--tiny", "--out", str(tmp_path),
                           "--batch", "1", "3", "--context", "130", "--reps", "1"],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    report = json.loads((tmp_path / "decode_layer.json").read_text())
    meta = report["meta"]
    assert meta["weights"] == "dummy_init" and meta["dsa_decode"] == "torch" and not meta["graphs"]
    assert meta["config"]["index_n_heads"] == 64 and meta["config"]["index_topk"] < 130  # sparse rows
    expected = ["DSA metadata (in-graph refresh)"] + [name for _, name in bench.MODULE_PARTS]
    assert [(c["batch"], c["context"]) for c in report["cases"]] == [(1, 130), (3, 130)]
    for case in report["cases"]:
        names = [p["name"] for p in case["parts"]]
        assert [n for n in names if n in expected] == expected  # every op recorded once, in layer order
        assert {bench.SELECT_TOPK, "absorbed bmm q_nope x W_UK", "absorbed bmm o x W_UV"} <= set(names)
        assert len(names) == len(expected) + 3
        assert {(d["name"], d["within"]) for d in case["details"]} == {
            ("quantize_index_q kernel", bench.SELECT_TOPK), ("indexer_decode kernel", bench.SELECT_TOPK),
            ("sparse_decode kernel", bench.SPARSE_MLA)}
        assert case["complete"] and all(p["us"] > 0 for p in case["parts"] + case["details"])
        assert case["parts_sum_us"] == pytest.approx(sum(p["us"] for p in case["parts"]))
        assert case["ratio"] == pytest.approx(case["step_us"] / case["parts_sum_us"])
        # The step through the graph contract equals the backend's eager metadata path on the same caches.
        assert case["finite"] and case["graph_vs_eager_rel_err"] < 1e-6
