"""A real stock sglang server on CPU loads the plugin in its main process and its scheduler, answers,
and stops cleanly: a tiny Llama (host code only) and the tiny DeepSeek-V3.2 with the seed's flags."""

import importlib.util
import pathlib
import re

import psutil
import pytest

from dsv32_plugin import __version__
from dsv32_plugin.hooks.models import MISSING_CPU_OP
from dsv32_plugin.testing.server import CPU_FLAGS, launch, live_group_members
from dsv32_plugin.testing.tiny_llama import make_tiny_llama

pytestmark = pytest.mark.server

REGISTER_LINE = re.compile(rf"dsv32-plugin {re.escape(__version__)} registering in (\S+) \(pid (\d+)\)")
SEED_FLAGS = ("--tool-call-parser", "deepseekv32", "--reasoning-parser", "deepseek-v3")


def generate(server):
    status, body = server.post("/generate", {"text": "Hello, tell me a story",
                                             "sampling_params": {"max_new_tokens": 8, "temperature": 0}})
    assert status == 200, body
    assert body["meta_info"]["completion_tokens"] == 8 and isinstance(body["text"], str)


def chat(server):
    status, body = server.post("/v1/chat/completions", {
        "model": "tiny", "max_tokens": 8, "temperature": 0,
        "messages": [{"role": "user", "content": "What is the capital of France?"}]})
    assert status == 200, body
    message = body["choices"][0]["message"]
    assert body["usage"]["completion_tokens"] >= 1 and message["role"] == "assistant"
    assert isinstance(message["content"], str) or isinstance(message["reasoning_content"], str)


@pytest.mark.parametrize("model, extra, request_once", [
    pytest.param("tiny-llama", (), generate, id="tiny-llama"),
    pytest.param("tiny-v32", SEED_FLAGS, chat, id="tiny-v32-seed-flags"),
])
def test_plugin_registers_in_main_and_scheduler_and_server_answers(tmp_path, tiny_v32_checkpoint, model, extra,
                                                                   request_once):
    model = make_tiny_llama(tmp_path / "model") if model == "tiny-llama" else tiny_v32_checkpoint
    with launch(model, tmp_path, *extra) as server:
        scheduler_pids = {p.pid for p in psutil.Process(server.process.pid).children(recursive=True)
                          if "scheduler" in " ".join(p.cmdline())}
        request_once(server)
        log = server.log_text()
    assert live_group_members(server.process.pid) == [], "server processes survived shutdown"

    registered = {int(pid): name for name, pid in REGISTER_LINE.findall(log)}
    assert registered.get(server.process.pid) == "MainProcess", log[-4000:]
    assert scheduler_pids and scheduler_pids <= set(registered), (scheduler_pids, registered)
    if importlib.util.find_spec("sgl_kernel") is None:
        assert "using the plugin's torch CPU stand-in" in log
        # Host model modules needing compiled CPU ops: one line of ours per process, not one per module.
        assert MISSING_CPU_OP not in log and "need compiled sgl_kernel CPU ops" in log, log[-4000:]



def test_server_started_from_the_clone_root_runs_the_source_tree(tmp_path, tiny_v32_checkpoint):
    # `python -m` puts the working directory first on sys.path, so every process imports the clone's
    # dsv32_plugin/: its links to kernels/, parsers/ and templates/ must make it the whole package.
    repo = pathlib.Path(__file__).resolve().parents[2]
    # With the warm-up: skipping it makes the host post /freeze_gc before it listens (a logged traceback).
    flags = tuple(flag for flag in CPU_FLAGS if flag != "--skip-server-warmup")
    with launch(tiny_v32_checkpoint, tmp_path, *SEED_FLAGS, flags=flags, cwd=repo) as server:
        chat(server)
        log = server.log_text()
    assert log.count(f"from {repo / 'dsv32_plugin'}") >= 2, log[-4000:]  # main process and scheduler
    assert "Traceback" not in log and "skipped" not in log, log[-4000:]
