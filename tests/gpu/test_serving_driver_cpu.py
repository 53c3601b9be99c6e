"""The GPU serving harness's plumbing, on sglang's CPU engine (so a device run does not find it broken).

``serving_driver.py --cpu-smoke`` runs the tiny checkpoint's ``mtp-graphs`` configuration (EAGLE
on draftable dummy weights) with tiny prompt sets: sglang must load the test-only harness plugin
from ``tests/gpu/site`` in the server processes (its dummy weights, its reports for target and
draft), and the driver must collect outputs, logprob gaps and accept lengths. ``compare`` is
checked on made-up runs. Graphs and the GPU stand-in are not exercised here (CPU engine, CPU
stand-in).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

import serving_driver
from serving_driver import CPU_SMOKE, NEAR_TIE, compare

pytestmark = [pytest.mark.server, pytest.mark.slow]


def test_driver_runs_a_server_with_the_harness_plugin(tmp_path):
    out = tmp_path / "serving.json"
    cmd = [sys.executable, serving_driver.__file__, "tiny", str(out), "--configs", "mtp-graphs", "--cpu-smoke",
           "--workdir", str(tmp_path / "work")]
    proc = subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True, timeout=1500,
                          env={k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"})
    assert out.exists(), proc.stderr[-4000:]
    summary = json.loads(out.read_text())
    assert summary["tree_core_probe"]["ok"] and summary["server_env"] == {}
    result = summary["configs"]["mtp-graphs"]
    assert result["ok"], (result.get("error"), result.get("log_tail"))
    assert set(result["runs"]) == {f"len{n}-bs{b}" for n in CPU_SMOKE.lengths for b in CPU_SMOKE.batches}
    for key, run in result["runs"].items():
        batch = int(key.rsplit("bs", 1)[1])
        assert [len(ids) for ids in run["output_ids"]] == [CPU_SMOKE.new_tokens] * batch
        assert run["finite"] and all(g is not None and g >= 0 for row in run["top2_gap"] for g in row)
    models = {m["role"]: m for r in result["reports"] for m in r["models"]}
    assert set(models) == {"target", "draft"} and models["target"]["embed_std"] > 0.5  # dummy_init's weights
    forward = {k for r in result["reports"] for k in r["forward"]}
    assert {"target:EXTEND:eager", "target:TARGET_VERIFY:eager", "draft:EXTEND:eager"} <= forward, forward
    accept = [a for run in result["runs"].values() for a in run["accept_length"]]
    assert all(a is not None for a in accept) and sum(accept) / len(accept) > 1.0  # the draftable shape works


def run_of(ids: list[list[int]], gaps: list[list[float]]) -> dict:
    return {"runs": {"len5-bs2": {"output_ids": ids, "top2_gap": gaps}}}


def test_compare_tells_rounding_from_divergence():
    ref = run_of([[1, 2, 3], [4, 5, 6]], [[0.5, 0.5, 0.5], [0.5, NEAR_TIE / 2, 0.5]])
    same = compare(ref, run_of([[1, 2, 3], [4, 5, 6]], [[0.5] * 3] * 2))
    assert same == {"ok": True, "exact": 2, "near_ties": [], "diverged": []}
    near = compare(ref, run_of([[1, 2, 3], [4, 7, 6]], [[0.5] * 3] * 2))  # differs where the top-2 were 0.025 apart
    assert near["ok"] and near["exact"] == 1
    assert near["near_ties"] == [{"run": "len5-bs2", "seq": 1, "position": 1, "top2_gap": NEAR_TIE / 2}]
    far = compare(ref, run_of([[9, 2, 3], [4, 5, 6]], [[0.5] * 3] * 2))
    assert not far["ok"] and far["diverged"] == [{"run": "len5-bs2", "seq": 0, "position": 0, "top2_gap": 0.5}]
    assert not compare(ref, {"runs": {}})["ok"]


def test_a_failed_server_keeps_the_compiler_diagnostics(tmp_path):
    (tmp_path / "server-1.log").write_text(
        "loading\n"
        'loc("sparse_mla_core.py":90:20): error: failed to legalize operation \'tt.dot\'\n'
        "note: see current operation\n"
        + "traceback line\n" * 500 + "RuntimeError: PassManager::run failed\n")
    assert serving_driver._diagnostics(tmp_path) == [
        'loc("sparse_mla_core.py":90:20): error: failed to legalize operation \'tt.dot\'',
        "note: see current operation"]
