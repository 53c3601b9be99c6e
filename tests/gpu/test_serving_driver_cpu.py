"""The GPU serving harness's plumbing, on sglang's CPU engine (so a device run does not find it broken).

``serving_driver.py --cpu-smoke`` runs the tiny checkpoint's ``plain-graphs`` and ``mtp-graphs``
configurations (dummy weights, draftable) with tiny prompt sets: the test-only harness plugin
must be loaded by sglang from ``tests/gpu/site`` in the server processes (its dummy weights, its
reports), the driver must collect outputs, logprob gaps and accept lengths, and compare them.
Graphs and the GPU stand-in are not exercised here (CPU engine, CPU stand-in).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

import serving_driver
from serving_driver import CPU_SMOKE

pytestmark = [pytest.mark.server, pytest.mark.slow]


def test_driver_runs_servers_with_the_harness_plugin(tmp_path):
    out = tmp_path / "serving.json"
    cmd = [sys.executable, serving_driver.__file__, "tiny", str(out), "--configs", "plain-graphs", "mtp-graphs",
           "--parallel", "1", "--cpu-smoke", "--workdir", str(tmp_path / "work")]
    proc = subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True, timeout=1500,
                          env={k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"})
    assert out.exists(), proc.stderr[-4000:]
    summary = json.loads(out.read_text())
    assert summary["tree_core_probe"]["ok"] and summary["server_env"] == {}
    runs = {f"len{n}-bs{b}" for n in CPU_SMOKE.lengths for b in CPU_SMOKE.batches}
    for name in ("plain-graphs", "mtp-graphs"):
        result = summary["configs"][name]
        assert result["ok"], (name, result.get("error"), result.get("log_tail"))
        assert set(result["runs"]) == runs
        for key, run in result["runs"].items():
            batch = int(key.rsplit("bs", 1)[1])
            assert [len(ids) for ids in run["output_ids"]] == [CPU_SMOKE.new_tokens] * batch
            assert run["finite"] and all(g is not None and g >= 0 for row in run["top2_gap"] for g in row)
        models = [m for r in result["reports"] for m in r["models"]]
        assert {m["role"] for m in models} == ({"target", "draft"} if name == "mtp-graphs" else {"target"})
        assert all(m["embed_std"] > 0.5 for m in models if m["role"] == "target")  # dummy_init's weights
        forward = {k for r in result["reports"] for k in r["forward"]}
        assert {"target:EXTEND:eager", "target:DECODE:eager"} <= forward or name == "mtp-graphs", forward
    mtp = summary["configs"]["mtp-graphs"]
    accept = [a for run in mtp["runs"].values() for a in run["accept_length"]]
    assert all(a is not None for a in accept) and sum(accept) / len(accept) > 1.0  # draftable shape works
    comparison = summary["comparisons"]["mtp = plain (graphs)"]
    sequences = len(CPU_SMOKE.lengths) * sum(CPU_SMOKE.batches)
    assert comparison["ok"] and comparison["exact"] == sequences and not comparison["near_ties"], comparison
