"""The trimming behind the one-GPU PD comparison's carry (``pd_pack.py``, ``pd_wheels.sh``), checked on the CPU.

The device runs the CUDA build of Mooncake, which cannot load here; the same trimming applied to the
installed non-CUDA build (scripts/install_cpu.sh) must leave an engine that loads and starts its TCP
transport on its own, with only its closure copied. sglang_router's Python files alone, through
``tests/e2e/mini_lb.py``, must route a batch as the router does (bootstrap fields to both servers, the
decode server's answer back). ``missing_libs_env`` (the device side) must add a library the system lacks
from a Debian package, and only that one.
"""

from __future__ import annotations

import importlib.util
import json
import shutil
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

import pd_pack

E2E = Path(__file__).resolve().parents[1] / "e2e"


def installed(module: str) -> Path:
    """The site-packages directory holding ``module`` (skip when it is not installed)."""
    try:
        spec = importlib.util.find_spec(module)
    except ModuleNotFoundError:
        spec = None
    if spec is None or spec.origin is None:
        pytest.skip(f"needs {module} (scripts/install_cpu.sh)")
    return Path(spec.origin).resolve().parents[1]


def test_trimmed_mooncake_engine_loads_and_listens_alone(tmp_path):
    site = installed("mooncake.engine")
    files = pd_pack.trim_mooncake(site, tmp_path)
    names = {p.name for p in files}
    assert {"engine.so", "libetcd_wrapper.so", "libasio.so"} <= names
    assert not names & {"store.so", "mooncake_master", "mooncake_client", "transfer_engine_bench"}, names
    assert sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*") if p.is_file()) == sorted(
        [*files, Path("mooncake/__init__.py")])
    assert pd_pack.check(tmp_path) == []  # ldd finds every library: the RPATHs resolve in the copy
    probe = ("import mooncake.engine as m, importlib.util as u; e = m.TransferEngine(); "
             "print(m.__file__, u.find_spec('mooncake.store'), e.initialize('127.0.0.1', 'P2PHANDSHAKE', 'tcp', ''))")
    out = subprocess.run([sys.executable, "-c", probe], env={"PYTHONPATH": str(tmp_path), "PATH": "/usr/bin:/bin"},
                         capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert out.stdout.split() == [str(tmp_path / "mooncake" / "engine.so"), "None", "0"], out.stderr[-3000:]


class _Backend(BaseHTTPRequestHandler):
    """A stand-in sglang server: records each /generate body, answers with its role."""

    def do_POST(self):  # noqa: N802
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        self.server.bodies.append(body)
        answer = json.dumps([{"role": self.server.role, "text": "x"}] * len(body["input_ids"])).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)

    def log_message(self, *args):
        pass


def test_mini_lb_routes_a_batch_without_the_rust_router(tmp_path, monkeypatch):
    site = installed("sglang_router.launch_router")
    sys.path.insert(0, str(E2E))
    try:
        import pd_deployment
    finally:
        sys.path.remove(str(E2E))
    pd_pack.trim_router(site, tmp_path / "site")
    assert not list((tmp_path / "site").rglob("*.so"))
    monkeypatch.setenv("PYTHONPATH", str(tmp_path / "site"))
    servers = []
    for role in ("prefill", "decode"):
        httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Backend)
        httpd.role, httpd.bodies = role, []
        threading.Thread(target=httpd.serve_forever, daemon=True).start()
        servers.append(httpd)
    try:
        prefill, decode = (pd_deployment.Server(f"http://127.0.0.1:{s.server_port}", None, None) for s in servers)
        deployment = pd_deployment.Deployment(prefill, 8998, decode)
        with pd_deployment.router(deployment, tmp_path, mini_lb=True) as lb:
            answer = lb.generate({"input_ids": [[1, 2, 3], [4, 5]], "sampling_params": {"max_new_tokens": 1}})
            log = lb.log_text()
    finally:
        for httpd in servers:
            httpd.shutdown()
    assert "Rust Router is not installed" in log  # the trimmed package's, not the installed one
    assert [a["role"] for a in answer] == ["decode", "decode"]
    (to_prefill,), (to_decode,) = (s.bodies for s in servers)
    assert to_prefill == to_decode
    assert to_decode["bootstrap_host"] == ["127.0.0.1"] * 2 and to_decode["bootstrap_port"] == [8998] * 2
    assert len(set(to_decode["bootstrap_room"])) == 2


@pytest.mark.skipif(not (shutil.which("gcc") and shutil.which("dpkg-deb")), reason="needs gcc and dpkg-deb")
def test_missing_libs_env_adds_only_what_the_system_lacks(tmp_path):
    lib_dir = tmp_path / "pkg" / "usr" / "lib" / "x86_64-linux-gnu"
    lib_dir.mkdir(parents=True)
    (tmp_path / "fake.c").write_text("int dsv32_fake(void) { return 7; }\n")
    (tmp_path / "user.c").write_text("int dsv32_fake(void);\nint user(void) { return dsv32_fake(); }\n")
    subprocess.run(["gcc", "-shared", "-fPIC", "-Wl,-soname,libdsv32fake.so.1", "-o",
                    str(lib_dir / "libdsv32fake.so.1.0.0"), str(tmp_path / "fake.c")], check=True)
    (lib_dir / "libdsv32fake.so.1").symlink_to("libdsv32fake.so.1.0.0")
    # An ELF that links it and libz (which the system has, and the same package also holds).
    subprocess.run(["gcc", "-shared", "-fPIC", "-o", str(tmp_path / "user.so"), str(tmp_path / "user.c"),
                    "-Wl,--no-as-needed", f"-L{lib_dir}", "-l:libdsv32fake.so.1", "-lz"], check=True)
    shutil.copy2(pd_pack.ldd(tmp_path / "user.so", {"LD_LIBRARY_PATH": str(lib_dir)})[0]["libz.so.1"],
                 lib_dir / "libz.so.1")
    (tmp_path / "pkg" / "DEBIAN").mkdir()
    (tmp_path / "pkg" / "DEBIAN" / "control").write_text(
        "Package: dsv32-fake\nVersion: 1\nArchitecture: amd64\nMaintainer: t <t@t>\nDescription: t\n")
    subprocess.run(["dpkg-deb", "-b", str(tmp_path / "pkg"), str(tmp_path / "fake.deb")], check=True,
                   capture_output=True)
    assert pd_pack.ldd(tmp_path / "user.so", {})[0]["libdsv32fake.so.1"] is None
    env, added, missing = pd_pack.missing_libs_env(tmp_path / "user.so", [tmp_path / "fake.deb"], tmp_path / "w",
                                                   {"PATH": "/usr/bin:/bin"})
    assert (added, missing) == (["libdsv32fake.so.1"], [])
    libs, _ = pd_pack.ldd(tmp_path / "user.so", env)
    assert libs["libdsv32fake.so.1"] == str(tmp_path / "w" / "lib" / "libdsv32fake.so.1")
    assert not libs["libz.so.1"].startswith(str(tmp_path))  # the system's own stays
    # Nothing missing: the environment is left as it was.
    assert pd_pack.missing_libs_env(tmp_path / "user.so", [], tmp_path / "w2", {"PATH": "/usr/bin:/bin"}) == (
        {"PATH": "/usr/bin:/bin"}, [], ["libdsv32fake.so.1"])
