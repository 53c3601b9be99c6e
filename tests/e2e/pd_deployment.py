"""Prefill-decode disaggregation on CPU, started as a user starts it: two stock ``launch_server``s and the router.

* prefill server: ``--disaggregation-mode prefill --disaggregation-bootstrap-port P``;
* decode server: ``--disaggregation-mode decode``;
* router: ``python -m sglang_router.launch_router --pd-disaggregation --prefill URL P --decode URL``
  (PyPI ``sglang-router``, the host's router); or, with ``router(..., mini_lb=True)``, the package's Python
  load balancer (``--mini-lb``, through ``mini_lb.py``, which needs no Rust extension).

The KV caches move through the host's default transfer backend, Mooncake, over its TCP transport
(``MOONCAKE_PROTOCOL=tcp``; PyPI ``mooncake-transfer-engine-non-cuda``, scripts/install_cpu.sh).
``SGLANG_HOST_IP=127.0.0.1`` keeps the transfer engine and the bootstrap server on loopback (the host
otherwise advertises the machine's first network address).
"""

from __future__ import annotations

import contextlib
import http.client
import importlib.util
import json
import random
import subprocess
import sys
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest
from dsv32_plugin.testing import server as _launcher
from dsv32_plugin.testing.server import launch

MOONCAKE_TCP = {"MOONCAKE_PROTOCOL": "tcp", "SGLANG_HOST_IP": "127.0.0.1"}
MINI_LB = Path(__file__).resolve().parent / "mini_lb.py"
LOOPBACK = "127.0.0.1"
ROUTER_READY_TIMEOUT_S = 60
SETTLE_TIMEOUT_S = 60  # a failed transfer frees its pages when the host notices (heartbeat: 5 s x 2 misses)
Server = _launcher.Server


def get_json(server: Server, path: str, timeout: float = 10) -> dict:
    with urllib.request.urlopen(server.url + path, timeout=timeout) as resp:
        return json.loads(resp.read())


def abort(server: Server, rid: str) -> None:
    """``/abort_request`` for one request id (the host answers 200 with no body)."""
    req = urllib.request.Request(server.url + "/abort_request", json.dumps({"rid": rid}).encode(),
                                 {"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=30) as resp:
        assert resp.status == 200


def load(server: Server) -> dict:
    """The scheduler's load (``/v1/loads``): running requests, used tokens, PD queue lengths."""
    return get_json(server, "/v1/loads?include=core,disagg")["loads"][0]


def holds_nothing(state: dict) -> bool:
    """No running request, no token held outside the radix cache, every PD queue empty."""
    queues = {k: v for k, v in state["disaggregation"].items() if k.endswith("_reqs")}
    return state["num_running_reqs"] == 0 and state["num_used_tokens"] == 0 and not any(queues.values())


def wait_for(predicate, what: str, timeout: float = SETTLE_TIMEOUT_S, interval: float = 0.5):
    """Poll ``predicate()`` until it returns a truthy value (returned); fail naming ``what`` after ``timeout``."""
    deadline = time.monotonic() + timeout
    while not (value := predicate()):
        if time.monotonic() > deadline:
            pytest.fail(f"not within {timeout} s: {what}")
        time.sleep(interval)
    return value


def assert_pools_free(*servers: Server) -> None:
    """Every server's pools back at their free size (its radix cache may keep finished prefixes)."""
    for server in servers:
        wait_for(lambda: holds_nothing(load(server)), f"{server.url} frees its KV pool: {load(server)}")


@dataclass
class Deployment:
    prefill: Server
    bootstrap_port: int
    decode: Server

    def bootstrap(self, body: dict) -> dict:
        """``body`` with the prefill server's bootstrap address and fresh rooms, as the router adds them."""
        batch = isinstance(body.get("input_ids", [None])[0], list)
        rooms = [random.getrandbits(63) for _ in body["input_ids"]] if batch else random.getrandbits(63)
        hosts = [LOOPBACK] * len(rooms) if batch else LOOPBACK
        ports = [self.bootstrap_port] * len(rooms) if batch else self.bootstrap_port
        return {**body, "bootstrap_host": hosts, "bootstrap_port": ports, "bootstrap_room": rooms}

    def route(self, body: dict, timeout: float = 600) -> tuple[tuple[int | None, dict], tuple[int | None, dict]]:
        """The router's job for one call, by hand: the same bootstrapped body to both servers at once.

        Returns both answers, (status, json) of the prefill server then of the decode server; a server
        that dropped the connection (killed) answers ``(None, {"error": ...})``.
        """
        body = self.bootstrap(body)
        with ThreadPoolExecutor(2) as pool:
            answers = [pool.submit(_answer, s, body, timeout) for s in (self.prefill, self.decode)]
            return answers[0].result(), answers[1].result()


def _answer(server: Server, body: dict, timeout: float) -> tuple[int | None, dict]:
    try:
        return server.post("/generate", body, timeout)
    except (OSError, http.client.HTTPException) as exc:  # URLError is an OSError
        return None, {"error": repr(exc)}


def _launch(ckpt: Path, workdir: Path, *extra: str, device_flags: tuple | None, env: dict | None):
    """The launcher's ``launch`` with the Mooncake environment; ``device_flags`` None: its CPU flags."""
    flags = {} if device_flags is None else {"flags": device_flags}
    return launch(ckpt, workdir, *extra, env=MOONCAKE_TCP | (env or {}), **flags)


@contextlib.contextmanager
def prefill_server(ckpt: Path, workdir: Path, *extra: str, device_flags: tuple | None = None, env: dict | None = None):
    """Yield ``(server, bootstrap_port)`` of a ready prefill server."""
    port = _launcher.free_port()
    with _launch(ckpt, workdir, "--disaggregation-mode", "prefill", "--disaggregation-bootstrap-port", str(port),
                 *extra, device_flags=device_flags, env=env) as server:
        yield server, port


def decode_server(ckpt: Path, workdir: Path, *extra: str, device_flags: tuple | None = None, env: dict | None = None):
    return _launch(ckpt, workdir, "--disaggregation-mode", "decode", *extra, device_flags=device_flags, env=env)


def rust_router_installed() -> bool:
    """Whether sglang_router's Rust extension (the router proper) is importable."""
    try:
        return importlib.util.find_spec("sglang_router.sglang_router_rs") is not None
    except ModuleNotFoundError:  # no sglang_router at all
        return False


@contextlib.contextmanager
def router(deployment: Deployment, workdir: Path, *, mini_lb: bool = False):
    """Yield the host's router (a ``Server``) in PD mode once it reports both workers healthy.

    ``mini_lb``: sglang_router's Python ``MiniLoadBalancer`` instead (random pairs, the request's bootstrap
    fields added as the router adds them; ``mini_lb.py``), ready once it answers ``/health`` (it has no
    ``/readiness``; the servers it fronts are ready before it starts).
    """
    port = _launcher.free_port()
    log = workdir / f"router-{port}.log"
    args = ["--pd-disaggregation", "--prefill", deployment.prefill.url, str(deployment.bootstrap_port),
            "--decode", deployment.decode.url, "--host", LOOPBACK, "--port", str(port)]
    cmd = ([sys.executable, str(MINI_LB), "--mini-lb", *args] if mini_lb
           else [sys.executable, "-m", "sglang_router.launch_router", *args])
    with open(log, "wb") as out:
        process = subprocess.Popen(cmd, cwd=workdir, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    server = Server(f"http://{LOOPBACK}:{port}", process, log)

    def ready():
        if process.poll() is not None:
            pytest.fail(f"router exited with {process.returncode}:\n{server.log_text()[-4000:]}")
        with contextlib.suppress(OSError, urllib.error.URLError, ValueError):
            if mini_lb:
                with urllib.request.urlopen(server.url + "/health", timeout=10) as resp:
                    return resp.status == 200
            return get_json(server, "/readiness").get("healthy_workers") == 2
        return False

    try:
        wait_for(ready, "the router reports both workers healthy", timeout=ROUTER_READY_TIMEOUT_S)
        yield server
    finally:
        _launcher._stop(process)
