"""Start a stock ``python -m sglang.launch_server`` outside the repo, talk to it, and stop it cleanly.

The one launcher of the tests, the GPU serving driver and the benchmarks::

    with launch(checkpoint, workdir, "--dtype", "float32") as server:
        out = server.generate({"input_ids": [1, 2, 3], "sampling_params": {"max_new_tokens": 4}})

The server runs in its own session (process group): when a host child dies, sglang kills its
whole group, which must never include the caller. No pytest import: a server that exits or is
not ready in time raises ``ServerFailed`` with the end of its log.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Optional

READY_TIMEOUT_S = 600  # ~40 s (one rank) to ~3 min (two ranks) on a 2-core CPU machine; CI may be slower
STOP_TIMEOUT_S = 30
# sglang's CPU engine (SGLANG_USE_CPU_ENGINE=1, which launch sets), no graphs (decode graphs would be
# captured by the CPU graph runner; the plugin turns V3.2's prefill graphs off itself, and this turns them
# off for other models), --max-total-tokens bounding the KV pool, which otherwise sizes itself from free
# RAM. No --attention-backend: on CPU the host picks torch_native, and the plugin picks dsa for V3.2.
CPU_FLAGS = ("--device", "cpu", "--disable-decode-cuda-graph", "--disable-prefill-cuda-graph",
             "--skip-server-warmup", "--max-total-tokens", "4096")
LOG_TAIL = 6000


class ServerFailed(RuntimeError):
    """The server exited, or was not ready in time; the message ends with its log."""


@dataclass
class Server:
    url: str
    process: subprocess.Popen
    log: Path

    def log_text(self) -> str:
        return self.log.read_text(errors="replace")

    def post(self, path: str, body: dict, timeout: float = 120) -> tuple[int, dict]:
        req = urllib.request.Request(self.url + path, json.dumps(body).encode(),
                                     {"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=timeout) as resp:
                return resp.status, json.loads(resp.read())
        except urllib.error.HTTPError as err:
            return err.code, json.loads(err.read() or b"{}")

    def generate(self, body: dict, timeout: float = 120) -> dict:
        """``/generate``'s answer; AssertionError with the body unless it answered 200."""
        status, out = self.post("/generate", body, timeout)
        assert status == 200, out
        return out

    def stream(self, path: str, body: dict, timeout: float = 120) -> list[dict]:
        """The JSON events of a server-sent-event stream (``data: {...}`` lines, without [DONE])."""
        req = urllib.request.Request(self.url + path, json.dumps(body).encode(),
                                     {"Content-Type": "application/json"})
        events = []
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            for raw in resp:
                line = raw.decode().strip()
                if line.startswith("data:") and line != "data: [DONE]":
                    events.append(json.loads(line[len("data:"):]))
        return events


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(url + "/health", timeout=5) as resp:
            return resp.status == 200
    except (OSError, urllib.error.URLError):
        return False


def _stop(process: subprocess.Popen) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(STOP_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(STOP_TIMEOUT_S)


@contextlib.contextmanager
def launch(model: Path, workdir: Path, *extra: str, flags: tuple[str, ...] = CPU_FLAGS, env: Optional[dict] = None,
           cwd: Optional[Path] = None, ready_timeout_s: float = READY_TIMEOUT_S) -> Iterator[Server]:
    """Yield a ready ``Server`` started with ``flags`` + ``extra``; on exit kill its process group and wait.

    The server gets this process's environment without TRITON_INTERPRET (which tests/conftest.py sets on
    CPU machines), as a user would start it, plus ``SGLANG_USE_CPU_ENGINE=1`` and ``env``. It runs in
    ``cwd`` (default ``workdir``, which holds its log).
    """
    port = free_port()
    log = Path(workdir) / f"server-{port}.log"
    env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"} | {
        "SGLANG_USE_CPU_ENGINE": "1", "PYTHONUNBUFFERED": "1", **(env or {})}
    cmd = [sys.executable, "-m", "sglang.launch_server", "--model-path", str(model),
           "--host", "127.0.0.1", "--port", str(port), *flags, *extra]
    with open(log, "wb") as out:
        process = subprocess.Popen(cmd, cwd=cwd or workdir, env=env, stdout=out, stderr=subprocess.STDOUT,
                                   start_new_session=True)
    server = Server(f"http://127.0.0.1:{port}", process, log)
    try:
        deadline = time.monotonic() + ready_timeout_s
        while not _healthy(server.url):
            if process.poll() is not None:
                raise ServerFailed(f"server exited with {process.returncode} before ready:\n"
                                   f"{server.log_text()[-LOG_TAIL:]}")
            if time.monotonic() > deadline:
                raise ServerFailed(f"server not ready after {ready_timeout_s} s:\n{server.log_text()[-LOG_TAIL:]}")
            time.sleep(1)
        yield server
    finally:
        _stop(process)


def live_group_members(pgid: int, wait_s: float = 10) -> list[int]:
    """Pids of the group's processes that are still running (zombies awaiting reaping don't count)."""
    import psutil

    deadline = time.monotonic() + wait_s
    while True:
        live = []
        for proc in psutil.process_iter(["status"]):
            with contextlib.suppress(psutil.Error, ProcessLookupError):
                if os.getpgid(proc.pid) == pgid and proc.info["status"] != psutil.STATUS_ZOMBIE:
                    live.append(proc.pid)
        if not live or time.monotonic() > deadline:
            return live
        time.sleep(0.5)
