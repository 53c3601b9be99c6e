"""Prefill-decode disaggregation on one GPU gives one ordinary server's tokens, both KV formats (``pd_one_gpu.py``).

Run on the device by ``tests/gpu/run_device.sh pd`` (docs/gpu_testing.md), with ``.whl/`` holding the
CUDA build of ``mooncake-transfer-engine`` and ``sglang-router`` (wheels) and, under ``.whl/debs/``,
Debian's ``libibverbs1``, ``libnl-3-200`` and ``libnl-route-3-200``, which Mooncake's engine links even
for TCP and which the device image lacks (unpacked here with ``dpkg -x`` onto ``LD_LIBRARY_PATH``).
"""

from __future__ import annotations

import json
import os
import pathlib
import subprocess
import sys

import pytest

import pd_one_gpu

pytestmark = pytest.mark.gpu
DEBS = pathlib.Path(__file__).resolve().parents[2] / ".whl" / "debs"
DRIVER_TIMEOUT_S = 1500


def ibverbs_env(tmp_path) -> dict:
    """The environment with the carried libibverbs on ``LD_LIBRARY_PATH`` (none carried: unchanged)."""
    env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}
    debs = sorted(DEBS.glob("*.deb"))
    if debs:
        root = tmp_path / "debs"
        for deb in debs:
            subprocess.run(["dpkg", "-x", str(deb), str(root)], check=True)
        libs = [str(p) for p in root.glob("usr/lib/*-linux-gnu")] + [str(p) for p in root.glob("lib/*-linux-gnu")]
        env["LD_LIBRARY_PATH"] = os.pathsep.join([*libs, *filter(None, [env.get("LD_LIBRARY_PATH")])])
    return env


@pytest.mark.parametrize("kv_cache_dtype", ["fp8_e4m3", "bf16"])
def test_pd_on_one_gpu_gives_one_servers_tokens(kv_cache_dtype, tmp_path):
    out = pathlib.Path(os.environ.get("DSV32_GPU_OUT") or tmp_path) / f"pd-{kv_cache_dtype}.json"
    cmd = [sys.executable, pd_one_gpu.__file__, str(out), "--kv-cache-dtype", kv_cache_dtype,
           "--workdir", str(tmp_path / "work")]
    proc = subprocess.run(cmd, cwd=tmp_path, env=ibverbs_env(tmp_path), capture_output=True, text=True,
                          timeout=DRIVER_TIMEOUT_S)
    print(proc.stdout[-4000:])
    assert out.exists(), f"driver wrote nothing (exit {proc.returncode}):\n{proc.stderr[-6000:]}"
    comparison = json.loads(out.read_text())["comparison"]
    assert comparison["ok"], comparison
