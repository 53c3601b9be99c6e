"""Parallel layouts: the widths DeepSeek-V3.2's shapes allow, and the launcher's one-line refusal."""

from __future__ import annotations

import subprocess
import sys
import pytest

from dsv32_plugin.policy import layout_problems, release_config

V32 = release_config()


def widths(tp: int, attn_dp: int = 1, ep: int = 1) -> dict:
    return {"attn_tp_size": tp // attn_dp, "moe_tp_size": tp // ep}


@pytest.mark.parametrize("tp, attn_dp, ep", [(8, 1, 1), (8, 8, 8), (16, 1, 1), (16, 2, 16), (4, 1, 2), (16, 16, 16)])
def test_cookbook_layouts_fit_the_real_shapes(tp, attn_dp, ep):
    assert layout_problems(V32, widths(tp, attn_dp, ep), tp, ep, "cuda") == []


@pytest.mark.parametrize("tp, attn_dp, ep, device, words", [
    (3, 1, 1, "cuda", ["128 attention heads", "--tp 3"]),
    (8, 1, 3, "cuda", ["256 routed experts", "--ep 3"]),
    (2, 1, 2, "cpu", ["--ep 2 needs a GPU", "--ep 1"]),
    (32, 1, 1, "cuda", ["FP8 128x128 blocks: MoE expert width", "= 64 is not a multiple of 128"]),
])
def test_layouts_that_cannot_run_are_named(tp, attn_dp, ep, device, words):
    problems = layout_problems(V32, widths(tp, attn_dp, ep), tp, ep, device)
    assert problems and all(any(w in p for p in problems) for w in words), problems


def test_launcher_refuses_a_bad_tp_in_one_line(tmp_path, tiny_v32):
    """--tp 3 with 4 heads: stock launch_server exits 1 printing one error line, no traceback, no rank started."""
    proc = subprocess.run(
        [sys.executable, "-m", "sglang.launch_server", "--model-path", tiny_v32, "--device", "cpu", "--tp", "3"],
        cwd=tmp_path, capture_output=True, text=True, timeout=300,
        env={"PATH": "/usr/bin:/bin", "SGLANG_USE_CPU_ENGINE": "1", "HOME": str(tmp_path)},
    )
    assert proc.returncode == 1, proc.stderr[-3000:]
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, proc.stderr[-3000:]
    assert errors[0].startswith(
        "error: dsv32-plugin: 4 attention heads do not split over 3 attention-TP ranks (--tp 3 / DP attention / CP); "
        "choose --tp (or --tp / --dp) dividing 4; moe_intermediate_size 128 does not split over 3 MoE-TP ranks"
    ), errors
    assert "Traceback" not in proc.stderr
