"""Prefill-decode disaggregation on one GPU gives one ordinary server's tokens, both KV formats (``pd_one_gpu.py``).

Run on the device by ``tests/gpu/run_device.sh pd`` (docs/gpu_testing.md), carrying ``.pd/`` from
``tests/gpu/pd_wheels.sh``: ``pd-site.tar.xz`` (Mooncake's transfer engine alone, from its CUDA build, and
sglang_router's Python files: the driver then starts the mini load balancer), which run_device.sh unpacks
onto ``PYTHONPATH``, and ``debs/``, the Debian packages of the system libraries the engine links even for
TCP (libibverbs, libmlx5, libnuma, libcurl and theirs). Of those, only the libraries the device lacks go on
the driver's ``LD_LIBRARY_PATH`` (``pd_pack.missing_libs_env``); the test fails at once, before any server
starts, if the engine still misses one that neither they nor the device's CUDA provide.
"""

from __future__ import annotations

import importlib.util
import json
import os
import pathlib
import subprocess
import sys

import pytest

import pd_one_gpu
import pd_pack

pytestmark = pytest.mark.gpu
DEBS = pathlib.Path(__file__).resolve().parents[2] / ".pd" / "debs"
DRIVER_TIMEOUT_S = 1500


def engine_env(tmp_path) -> dict:
    """The environment with the carried system libraries the Mooncake engine lacks here on ``LD_LIBRARY_PATH``."""
    env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}
    try:
        spec = importlib.util.find_spec("mooncake.engine")
    except ModuleNotFoundError:
        spec = None
    if spec is None or spec.origin is None:
        pytest.fail("no mooncake.engine: bash tests/gpu/pd_wheels.sh here, carry .pd (docs/gpu_testing.md)")
    env, added, missing = pd_pack.missing_libs_env(pathlib.Path(spec.origin), sorted(DEBS.glob("*.deb")),
                                                   tmp_path / "libs", env)
    print(f"[test_gpu_pd] {spec.origin}: carried libraries added: {' '.join(added) or '-'}; "
          f"not found by ldd: {' '.join(missing) or '-'}")
    unexpected = [n for n in missing if not pd_pack.FROM_THE_DEVICE.fullmatch(n)]
    assert not unexpected, f"the Mooncake engine cannot load here, missing {unexpected}"
    return env


@pytest.mark.parametrize("kv_cache_dtype", ["fp8_e4m3", "bf16"])
def test_pd_on_one_gpu_gives_one_servers_tokens(kv_cache_dtype, tmp_path):
    out = pathlib.Path(os.environ.get("DSV32_GPU_OUT") or tmp_path) / f"pd-{kv_cache_dtype}.json"
    cmd = [sys.executable, pd_one_gpu.__file__, str(out), "--kv-cache-dtype", kv_cache_dtype,
           "--workdir", str(tmp_path / "work")]
    proc = subprocess.run(cmd, cwd=tmp_path, env=engine_env(tmp_path), capture_output=True, text=True,
                          timeout=DRIVER_TIMEOUT_S)
    print(proc.stdout[-4000:])
    assert out.exists(), f"driver wrote nothing (exit {proc.returncode}):\n{proc.stderr[-6000:]}"
    comparison = json.loads(out.read_text())["comparison"]
    assert comparison["ok"], comparison
