"""The full DeepSeek-V3.2 fits 8 (or 16) H200s in the cookbook's layouts, with room for long contexts.

``weight_memory.py`` builds the plugin's layers on the meta device at full size
(FP8 blocks) for one rank of each layout and sums the bytes; docs/model.md
carries the same table (regenerate with ``python tests/models/weight_memory.py
--markdown`` from outside the repository root).
"""

from __future__ import annotations

import json
import pathlib
import subprocess
import sys

import pytest

HERE = pathlib.Path(__file__).resolve().parent
MODEL_MD = HERE.parents[1] / "docs" / "model.md"
MAX_CONTEXT = 163840  # max_position_embeddings of DeepSeek-V3.2


@pytest.fixture(scope="module")
def rows(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("weight_memory")
    env = {"PATH": "/usr/bin:/bin", "HOME": str(workdir), "SGLANG_USE_CPU_ENGINE": "1"}
    proc = subprocess.run([sys.executable, str(HERE / "weight_memory.py")], cwd=workdir, env=env,
                          capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-4000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_every_layout_fits_an_h200_with_a_full_context_of_cache(rows):
    sys.path.insert(0, str(HERE))
    from weight_memory import H200_USABLE, STATIC_FRACTION

    assert [r["layout"] for r in rows] == ["--tp 8", "--tp 8 --ep 8", "--tp 8 --dp 8 --enable-dp-attention --ep 8",
                                           "--tp 16 (2 nodes)"]
    for r in rows:
        assert r["total"] < STATIC_FRACTION * H200_USABLE, r
        assert r["kv_tokens_fp8"] >= MAX_CONTEXT and r["kv_tokens_bf16"] >= MAX_CONTEXT, r
    by_layout = {r["layout"]: r["total"] for r in rows}
    # 671B FP8 weights over 8 ranks is ~79 GiB before what every rank replicates.
    assert 75 * 2**30 < by_layout["--tp 8"] < 95 * 2**30
    assert by_layout["--tp 16 (2 nodes)"] < 0.6 * by_layout["--tp 8"]


def test_docs_carry_the_measured_table(rows):
    sys.path.insert(0, str(HERE))
    from weight_memory import markdown

    table = markdown(rows)
    print(table)
    assert table in MODEL_MD.read_text(), "docs/model.md's weight table is stale: regenerate it"
