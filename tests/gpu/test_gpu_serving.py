"""Stock sglang serving DeepSeek-V3.2 with the plugin on one GPU: CUDA graphs, KV dtypes, DSA backends, MTP.

Every test reads the JSON of ``serving_driver.py``, which starts each server configuration once
for a checkpoint kind (``tiny``: FP8 safetensors; ``real``: real width, dummy weights) and runs
all prompt sets in it; the driver runs once per kind and session (configurations limited by
``DSV32_GPU_CONFIGS``, space-separated; no server started later than ``DSV32_GPU_DEADLINE_S``
seconds into the run; JSON to ``$DSV32_GPU_OUT/serving-<kind>.json``). A configuration not run
skips the tests that need it.
Run on the device by ``tests/gpu/run_device.sh`` (docs/gpu_testing.md).
"""

from __future__ import annotations

import json
import os
import pathlib
import subprocess
import sys

import pytest

import serving_driver
from serving_driver import BACKENDS, KV_DTYPES, TWO_GPU_LAYOUTS, compare

pytestmark = pytest.mark.gpu
KINDS = ("tiny", "real")
DRIVER_TIMEOUT_S = 3000


@pytest.fixture(scope="session")
def served(tmp_path_factory):
    """kind -> the driver's summary (run on first use)."""
    cache: dict[str, dict] = {}

    def get(kind: str) -> dict:
        if kind not in cache:
            out = pathlib.Path(os.environ.get("DSV32_GPU_OUT") or tmp_path_factory.mktemp("gpu-out"))
            path = out / f"serving-{kind}.json"
            configs = os.environ.get("DSV32_GPU_CONFIGS", "").split()
            deadline = os.environ.get("DSV32_GPU_DEADLINE_S")
            cmd = [sys.executable, serving_driver.__file__, kind, str(path), *(["--configs", *configs] if configs else []),
                   *(["--start-deadline-s", deadline] if deadline else [])]
            proc = subprocess.run(cmd, cwd=out, timeout=DRIVER_TIMEOUT_S, capture_output=True, text=True)
            print(proc.stdout[-4000:])
            assert path.exists(), f"driver wrote nothing (exit {proc.returncode}):\n{proc.stderr[-4000:]}"
            cache[kind] = json.loads(path.read_text())
        return cache[kind]

    return get


def config(summary: dict, name: str) -> dict:
    result = summary["configs"].get(name)
    if result is None:
        pytest.skip(f"{name} not run (not a configuration of this checkpoint, or left out by DSV32_GPU_CONFIGS)")
    if result.get("skipped"):
        pytest.skip(f"{name}: {result['skipped']}")
    assert result["ok"], f"{name}: {result.get('error')}\n{result.get('log_tail', '')}"
    return result


def forward_passes(result: dict, role: str, mode: str, how: str) -> int:
    return sum(n for r in result["reports"] for key, n in r["forward"].items() if key == f"{role}:{mode}:{how}")


def graph_passes(result: dict) -> int:
    return sum(n for r in result["reports"] for key, n in r["forward"].items() if key.endswith(":graph"))


def assert_same_tokens(reference: dict, other: dict) -> dict:
    c = compare(reference, other)
    print(f"exact {c['exact']}, near ties {c['near_ties']}")
    assert c["ok"], f"diverged (first position, smallest top-2 gap): {c['diverged']}"
    return c


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("kv", KV_DTYPES)
@pytest.mark.parametrize("kind", KINDS)
def test_cuda_graphs_give_the_eager_greedy_tokens(served, kind, kv, backend):
    """100- and 3000-token prompts at batch 1, 3, 17: 64 greedy tokens with graphs = without."""
    summary = served(kind)
    eager, graphs = config(summary, f"{kv}-{backend}-eager"), config(summary, f"{kv}-{backend}-graphs")
    assert_same_tokens(eager, graphs)
    assert forward_passes(graphs, "target", "DECODE", "graph") > 0, graphs["reports"]
    assert graph_passes(eager) == 0, eager["reports"]


@pytest.mark.parametrize("kind", KINDS)
def test_mtp_gives_the_plain_greedy_tokens(served, kind):
    """EAGLE (3 steps, top-k 1, 4 draft tokens) with graphs = plain decoding with graphs; drafts are accepted."""
    summary = served(kind)
    plain, mtp = config(summary, "plain-graphs"), config(summary, "mtp-graphs")
    assert_same_tokens(plain, mtp)
    accept = [a for run in mtp["runs"].values() for a in run["accept_length"] if a is not None]
    mean = sum(accept) / len(accept) if accept else 0.0
    print(f"{kind}: mean accept length {mean:.3f} over {len(accept)} requests")
    assert mean > 1.0
    assert sum(sum(r["draft_graphs"].values()) for r in mtp["reports"]) > 0, mtp["reports"]
    assert forward_passes(mtp, "target", "TARGET_VERIFY", "graph") > 0, mtp["reports"]


@pytest.mark.parametrize("layout", TWO_GPU_LAYOUTS)
@pytest.mark.parametrize("kind", ["tiny"])  # dummy weights are drawn per shard: not comparable across layouts
def test_two_gpu_layouts_give_the_one_gpu_greedy_tokens(served, kind, layout):
    """``--tp 2``, ``--tp 2 --ep 2``, ``--tp 2 --dp 2 --enable-dp-attention`` (graphs on) = one GPU on the
    tiny FP8 checkpoint (needs nvidia-h200-x2)."""
    summary = served(kind)
    two = config(summary, layout)
    assert_same_tokens(config(summary, "bf16-triton-graphs"), two)
    assert forward_passes(two, "target", "DECODE", "graph") > 0, two["reports"]


@pytest.mark.parametrize("kind", KINDS)
def test_fp8_weights_stay_fp8_on_the_gpu(served, kind):
    """The FP8 block checkpoint is served through the host's Fp8Config: projections stay float8_e4m3fn."""
    summary = served(kind)
    ran = [r for r in summary["configs"].values() if r["ok"]]
    if not ran:
        pytest.skip("no configuration ran")
    models = [m for r in ran for report in r["reports"] for m in report["models"]]
    targets = [m for m in models if m["role"] == "target"]
    assert targets and all(m["float8_params"] for m in targets), [(m["class"], m["dtypes"]) for m in targets]
    drafts = [m for m in models if m["role"] == "draft"]
    assert all(m["float8_params"] for m in drafts), [(m["class"], m["dtypes"]) for m in drafts]


@pytest.mark.parametrize("kind", KINDS)
def test_every_server_ran_clean(served, kind):
    """Finite logprobs everywhere; the sgl_kernel stand-in never hit an import-only or missing name."""
    summary = served(kind)
    for name, result in summary["configs"].items():
        if not result["ok"]:
            continue
        assert all(run["finite"] for run in result["runs"].values()), name
        assert not result["standin"]["unsupported"] and not result["standin"]["missing"], (name, result["standin"])
