"""The host's CUDA-path modules import with the GPU stand-in as ``sgl_kernel`` (CUDA faked on CPU).

On the device a missing name would stop the server at start-up; here every ``if _is_cuda:``
import branch of the V3.2 serving path runs against the stand-in (``fake_cuda_imports.py``),
no module may fail, and the host may ask for no name the stand-in lacks (a ``missing`` line
in its log; names imported under ``try`` with a host fallback would show up there too).
"""

from __future__ import annotations

import json
import os
import pathlib
import subprocess
import sys

from gpu_standin_loader import SITE

SCRIPT = pathlib.Path(__file__).resolve().parent / "fake_cuda_imports.py"


def test_host_cuda_imports_find_every_name(tmp_path):
    log = tmp_path / "log"
    log.mkdir()
    env = {k: v for k, v in os.environ.items() if k not in ("TRITON_INTERPRET", "SGLANG_USE_CPU_ENGINE")}
    env.update(PYTHONPATH=os.pathsep.join([str(SITE), env.get("PYTHONPATH", "")]).rstrip(os.pathsep),
               DSV32_SGL_KERNEL_LOG=str(log))
    proc = subprocess.run([sys.executable, str(SCRIPT)], cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=600)
    assert proc.returncode == 0, proc.stderr[-4000:]
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert pathlib.Path(result["sgl_kernel"]).is_relative_to(SITE), result["sgl_kernel"]
    assert result["failed"] == {}
    missing = {line.split()[1] for f in log.iterdir() for line in f.read_text().splitlines() if line.startswith("missing")}
    assert not missing, sorted(missing)
    # sgl_kernel.allreduce stays absent: the host then disables its custom all-reduce and uses NCCL
    assert "Failed to import from custom_ar" in proc.stderr
