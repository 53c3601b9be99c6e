"""The README's first command, scripts/demo_cpu.sh, with this venv: it says what the server chose,
answers, stops the server without a traceback in its log and removes its temporary directory; the
command it starts is the README's "start the CPU server yourself" command."""

import os
import pathlib
import re
import shlex
import subprocess
import sys

import pytest

from dsv32_plugin.testing.server import free_port

pytestmark = pytest.mark.server

REPO = pathlib.Path(__file__).resolve().parents[2]
DEMO = REPO / "scripts" / "demo_cpu.sh"


def server_flags(command: str) -> list[str]:
    """The flags of a ``python -m sglang.launch_server`` command, without --model-path, --host and --port."""
    words = shlex.split(command.replace("\\\n", " "))
    words = words[words.index("sglang.launch_server") + 1:]
    flags, skip = [], False
    for word in words:
        if skip:
            skip = False
        elif word in ("--model-path", "--host", "--port"):
            skip = True
        else:
            flags.append(word)
    return flags


def readme_cpu_server_command() -> str:
    section = (REPO / "README.md").read_text().split("To start the CPU server yourself", 1)[1]
    return re.search(r"^ +SGLANG_USE_CPU_ENGINE=1 .*?\n(?: +--.*\n)*", section, re.M).group(0)


def test_demo_reports_its_choices_and_cleans_up(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"} | {
        "DSV32_VENV": sys.prefix, "PORT": str(free_port()), "TMPDIR": str(tmp_path)}
    done = subprocess.run(["bash", str(DEMO)], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=900)
    out = done.stdout
    assert done.returncode == 0, out + done.stderr[-3000:]
    assert re.search(r"^plugin: .* registered in MainProcess, Process-\d, Process-\d$", out, re.M), out
    assert "model class: DeepseekV32ForCausalLM from dsv32_plugin.models.deepseek_v32\n" in out, out
    assert "attention:   --attention-backend dsa -> the plugin's DSA backend, prefill=torch decode=torch" in out, out
    assert "parsers:     tool calls deepseekv32, reasoning deepseek-v3 (the plugin's detectors)\n" in out, out
    assert re.search(r"^answer: +\{\"role\": \"assistant\"", out, re.M), out
    assert "stopped:     server exited with 0; log clean (no traceback)\n" in out, out
    started = re.search(r"^starting: +(.*)$", out, re.M).group(1)
    assert server_flags(started) == server_flags(readme_cpu_server_command()), started
    work = re.search(r"^removed: +(\S+)", out, re.M).group(1)
    assert re.search(rf"^server log:  {re.escape(work)}/server.log$", out, re.M), out
    assert not pathlib.Path(work).exists() and not list(tmp_path.glob("dsv32-demo-*"))
