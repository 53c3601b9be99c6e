"""Prefill CUDA graphs are turned off for DeepSeek-V3.2 by the plugin, with one log line; other models keep them.

Resolved through the host's real parser and pipeline (helpers of ``test_server_args``, fixtures of ``conftest.py``).
"""

import logging

import pytest
from test_server_args import cpu_argv, parse

from dsv32_plugin.hooks import ledger
from dsv32_plugin.host import touches


@pytest.fixture
def plugin_log(caplog):
    logger = logging.getLogger("dsv32_plugin")
    logger.addHandler(caplog.handler)
    yield caplog
    logger.removeHandler(caplog.handler)


def prefill_backend(host, argv) -> str:
    from sglang.srt.arg_groups.overrides import resolution_result

    record = parse(host, argv)
    record.resolve_once()
    return resolution_result(record, "cuda_graph_config").prefill.backend


def test_the_hook_is_in_the_ledger(host):
    assert touches.PREFILL_GRAPHS in {made.touch for made in ledger.TOUCHES}


@pytest.mark.parametrize("requested", ["breakable", "full"])
def test_v32_prefill_graphs_are_off_with_one_log_line(host, tiny_v32, plugin_log, requested):
    assert prefill_backend(host, cpu_argv(tiny_v32, "--cuda-graph-backend-prefill", requested)) == "disabled"
    lines = [r.getMessage() for r in plugin_log.records if "prefill CUDA graphs off" in r.getMessage()]
    assert lines == [f"dsv32-plugin: prefill CUDA graphs off for DeepSeek-V3.2 (were {requested}, set explicitly): "
                     "the DSA indexer's prefill runs eagerly; decode and speculative graphs stay on"]


def test_the_cuda_default_is_turned_off_too(host, tiny_v32, plugin_log, monkeypatch):
    from sglang.srt.model_executor import cuda_graph_config

    monkeypatch.setattr(cuda_graph_config, "default_prefill_backend", lambda: "breakable")  # as on CUDA
    assert prefill_backend(host, cpu_argv(tiny_v32)) == "disabled"
    assert any("(were breakable):" in r.getMessage() for r in plugin_log.records)


def test_other_models_keep_their_prefill_graphs(host, tiny_llama, plugin_log):
    assert prefill_backend(host, cpu_argv(tiny_llama, "--cuda-graph-backend-prefill", "breakable")) == "breakable"
    assert not any("prefill CUDA graphs off" in r.getMessage() for r in plugin_log.records)
