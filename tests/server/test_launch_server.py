"""A real stock sglang server on CPU loads the plugin in its main process and its scheduler."""

import importlib.util
import re

import psutil
import pytest

from conftest import launch, live_group_members
from dsv32_plugin import __version__
from dsv32_plugin.testing.tiny_llama import make_tiny_llama

pytestmark = pytest.mark.server

REGISTER_LINE = re.compile(rf"dsv32-plugin {re.escape(__version__)} registering in (\S+) \(pid (\d+)\)")


def test_plugin_registers_in_main_and_scheduler_and_server_answers(tmp_path):
    model = make_tiny_llama(tmp_path / "tiny-llama")
    with launch(model, tmp_path) as server:
        scheduler_pids = {p.pid for p in psutil.Process(server.process.pid).children(recursive=True)
                          if "scheduler" in " ".join(p.cmdline())}
        status, body = server.post("/generate", {"text": "Hello, tell me a story",
                                                 "sampling_params": {"max_new_tokens": 8, "temperature": 0}})
        assert status == 200, body
        assert body["meta_info"]["completion_tokens"] == 8 and isinstance(body["text"], str)
        log = server.log_text()
    assert live_group_members(server.process.pid) == [], "server processes survived shutdown"

    registered = {int(pid): name for name, pid in REGISTER_LINE.findall(log)}
    assert registered.get(server.process.pid) == "MainProcess", log[-4000:]
    assert scheduler_pids and scheduler_pids <= set(registered), (scheduler_pids, registered)
    if importlib.util.find_spec("sgl_kernel") is None:
        assert log.count("using the plugin's torch CPU stand-in") >= 1
