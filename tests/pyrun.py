"""Run a Python script in a fresh interpreter: for tests of process-wide state (sys.modules,
sys.path, the ledger, spawned children) that must not leak into or from pytest's process."""

from __future__ import annotations

import json
import os
import pathlib
import subprocess
import sys
import textwrap

# Variables the plugin or the host read at import time; a test opts in explicitly.
_CLEARED = ("TRITON_INTERPRET", "SGLANG_USE_CPU_ENGINE", "SGLANG_PLUGINS")


def run_python(code: str, cwd, timeout: float = 300, **env: str) -> subprocess.CompletedProcess:
    """Write ``code`` (dedented) to ``cwd/script.py`` and run it there (outside the repo root)."""
    script = pathlib.Path(cwd) / "script.py"
    script.write_text(textwrap.dedent(code))
    full_env = {k: v for k, v in os.environ.items() if k not in _CLEARED}
    full_env.update(env)
    return subprocess.run([sys.executable, str(script)], cwd=cwd, env=full_env,
                          capture_output=True, text=True, timeout=timeout)


def last_json(proc: subprocess.CompletedProcess):
    """The JSON value on the script's last stdout line; fails with its stderr if it crashed."""
    assert proc.returncode == 0, proc.stderr[-4000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])
