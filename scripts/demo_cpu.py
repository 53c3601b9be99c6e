"""The CPU demo after installing (run by scripts/demo_cpu.sh with the venv's python).

Builds a tiny random-weight DeepSeek-V3.2 checkpoint, starts the stock ``python -m sglang.launch_server``
with DeepSeek-V3.2's flags on the CPU, says what the server chose (model class, attention backend and
kernels, parsers: read from its log), sends one chat request, stops the server the way sglang shuts down
cleanly, and removes its working directory (kept on failure, or when ``DEMO_DIR`` names it).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

READY_TIMEOUT_S = 600
STOP_TIMEOUT_S = 60
# SGLANG_USE_CPU_ENGINE=1 (set below) selects sglang's CPU engine; no decode graphs (the CPU graph runner
# would compile them; the plugin turns V3.2's prefill graphs off itself); --max-total-tokens bounds the KV
# pool, which otherwise sizes itself from free RAM. No --skip-server-warmup: without the warm-up the host
# posts /freeze_gc before its HTTP server listens and logs a ConnectionRefusedError traceback.
# The README shows this command (tests/server/test_demo.py checks they agree).
FLAGS = ("--device", "cpu", "--disable-decode-cuda-graph", "--max-total-tokens", "4096",
         "--tool-call-parser", "deepseekv32", "--reasoning-parser", "deepseek-v3")
PLUGIN_MODEL_MODULE = "dsv32_plugin.models.deepseek_v32"


def build_checkpoint(path: Path) -> None:
    subprocess.run([sys.executable, "-m", "dsv32_plugin.testing.tiny_checkpoint", str(path), "--variant", "v32"],
                   check=True, stdout=subprocess.DEVNULL)


def wait_ready(url: str, server: subprocess.Popen, log: Path) -> None:
    deadline = time.monotonic() + READY_TIMEOUT_S
    while True:
        try:
            with urllib.request.urlopen(url + "/health", timeout=5):  # 503 while warming up raises
                return
        except OSError:
            if server.poll() is not None:
                sys.exit(f"server exited with {server.returncode}; last lines of {log}:\n{log.read_text()[-5000:]}")
            if time.monotonic() > deadline:
                sys.exit(f"server not ready after {READY_TIMEOUT_S} s; log: {log}")
            time.sleep(2)


def stop(server: subprocess.Popen) -> int:
    """SIGTERM to the launcher only: it drains, tells its scheduler and detokenizer to exit, then exits.

    (SIGTERM to the whole process group would kill the children under it, and the launcher would log
    them as crashed.) Whatever is left after STOP_TIMEOUT_S is killed with the group.
    """
    server.send_signal(signal.SIGTERM)
    try:
        return server.wait(STOP_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        os.killpg(server.pid, signal.SIGKILL)
        return server.wait()


def what_was_chosen(log: str) -> list[str]:
    """Lines saying which plugin, model class, attention backend and kernels the server used."""
    lines = []
    places = re.findall(r"dsv32-plugin (\S+) registering in (\S+) \(pid \d+\) from (\S+)", log)
    if places:
        version, where = places[0][0], places[0][2]
        lines.append(f"plugin:      dsv32-plugin {version} from {where}, registered in "
                     + ", ".join(process for _, process, _ in places))
    failures = re.findall(r"dsv32-plugin: step (\S+) (?:skipped|failed): .*", log)
    lines += [f"WARNING:     {line}" for line in re.findall(r"dsv32-plugin: step \S+ (?:skipped|failed): .*", log)]

    def failed_step(hooks_module: str) -> bool:
        return any(step.startswith(f"dsv32_plugin.hooks.{hooks_module}:") for step in failures)

    built = re.search(r"Load weight end\..*?type=(\w+)", log)
    if built:
        owner = "sglang's own (the plugin's models step failed)" if failed_step("models") else f"from {PLUGIN_MODEL_MODULE}"
        lines.append(f"model class: {built.group(1)} {owner}")
    backend = re.search(r"dsv32-plugin DSA backend: (.*)", log)
    resolved = re.search(r"'attention_backend': '(\w+)'", log)
    if backend and resolved:
        lines.append(f"attention:   --attention-backend {resolved.group(1)} -> the plugin's DSA backend, {backend.group(1)}")
    tools, reasoning = (re.search(rf"'{field}': '([\w-]+)'", log) for field in ("tool_call_parser", "reasoning_parser"))
    if tools and reasoning:
        owner = "sglang's own" if failed_step("parsers") else "the plugin's detectors"
        lines.append(f"parsers:     tool calls {tools.group(1)}, reasoning {reasoning.group(1)} ({owner})")
    return lines


def chat(url: str) -> dict:
    body = {"model": "tiny-v32", "max_tokens": 24, "temperature": 0,
            "messages": [{"role": "user", "content": "What is the capital of France?"}]}
    request = urllib.request.Request(url + "/v1/chat/completions", json.dumps(body).encode(),
                                     {"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=300) as response:
        return json.loads(response.read())["choices"][0]["message"]


def demo(work: Path, port: int) -> None:
    checkpoint, log = work / "tiny-v32", work / "server.log"
    build_checkpoint(checkpoint)
    print(f"checkpoint:  {checkpoint} (tiny DeepSeek-V3.2, random weights)")
    print(f"server log:  {log}")
    url = f"http://127.0.0.1:{port}"
    command = [sys.executable, "-m", "sglang.launch_server", "--model-path", str(checkpoint),
               "--host", "127.0.0.1", "--port", str(port), *FLAGS]
    print("starting:    SGLANG_USE_CPU_ENGINE=1 python -m sglang.launch_server", *command[3:], flush=True)
    env = {**os.environ, "SGLANG_USE_CPU_ENGINE": "1"}
    with open(log, "wb") as out:
        # Its own session: Ctrl-C reaches this script, which then stops the server as below.
        server = subprocess.Popen(command, cwd=work, env=env, stdout=out, stderr=subprocess.STDOUT,
                                  start_new_session=True)
    try:
        wait_ready(url, server, log)
        print(*what_was_chosen(log.read_text(errors="replace")), sep="\n")
        print("answer:     ", json.dumps(chat(url), ensure_ascii=False), "(random text: random weights)")
    finally:
        code = stop(server)
    text = log.read_text(errors="replace")
    problems = [line for line in text.splitlines() if "Traceback" in line or "crashed" in line]
    print(f"stopped:     server exited with {code}; log " + ("clean (no traceback)" if not problems else
                                                             f"has {len(problems)} problem line(s): {problems[:3]}"))
    if code != 0 or problems:
        sys.exit(1)


def main() -> None:
    port = int(os.environ.get("PORT", "30000"))
    chosen = os.environ.get("DEMO_DIR")
    work = Path(chosen).resolve() if chosen else Path(tempfile.mkdtemp(prefix="dsv32-demo-"))
    work.mkdir(parents=True, exist_ok=True)
    succeeded = False
    try:
        demo(work, port)
        succeeded = True
    finally:
        if succeeded and not chosen:
            shutil.rmtree(work)
            print(f"removed:     {work} (set DEMO_DIR=<dir> to keep the checkpoint and server log)")
        else:
            print(f"kept:        {work}")


if __name__ == "__main__":
    main()
