"""Stock ``python -m sglang.launch_server`` on a V3.2 checkpoint, on CPU, with no attention flag.

Reuses ``tests/server/sglang_server.py``'s ``launch`` (own process group, clean stop)
loaded under a private name, with CPU flags that leave ``--attention-backend``
out: the plugin must pick its DSA backend by itself. Page size 64 comes from
the host's DSA override.
"""

from __future__ import annotations

import importlib.util
import json
import pathlib
import sys
import urllib.request

_SERVER_MODULE = pathlib.Path(__file__).resolve().parents[1] / "server" / "sglang_server.py"
_spec = importlib.util.spec_from_file_location("_v32_server_launcher", _SERVER_MODULE)
_launcher = importlib.util.module_from_spec(_spec)
sys.modules[_spec.name] = _launcher  # dataclasses look their module up there
_spec.loader.exec_module(_launcher)
_launcher.CPU_FLAGS = ("--device", "cpu", "--disable-cuda-graph", "--skip-server-warmup",
                       "--max-total-tokens", "4096")

launch = _launcher.launch


def generate(server, body: dict, timeout: float = 120) -> dict:
    status, out = server.post("/generate", body, timeout)
    assert status == 200, out
    return out


def stream_lines(server, path: str, body: dict, timeout: float = 120) -> list[dict]:
    """The JSON events of a server-sent-event stream (``data: {...}`` lines, without [DONE])."""
    req = urllib.request.Request(server.url + path, json.dumps(body).encode(), {"Content-Type": "application/json"})
    events = []
    with urllib.request.urlopen(req, timeout=timeout) as resp:
        for raw in resp:
            line = raw.decode().strip()
            if line.startswith("data:") and line != "data: [DONE]":
                events.append(json.loads(line[len("data:"):]))
    return events
