"""Fixtures of the hook tests that parse and resolve server arguments in process."""

import os

import pytest


@pytest.fixture(scope="module")
def host():
    """``sglang.srt.server_args`` with the plugin's hooks applied (as in every sglang process)."""
    if "dsv32" not in os.environ.get("SGLANG_PLUGINS", "dsv32").split(","):
        pytest.skip("SGLANG_PLUGINS filters the plugin out")
    from sglang.srt.plugins import load_plugins

    load_plugins()
    from sglang.srt import server_args

    return server_args


@pytest.fixture(scope="module")
def tiny_v32(tiny_v32_checkpoint):
    return str(tiny_v32_checkpoint)


@pytest.fixture(scope="module")
def tiny_llama(tmp_path_factory):
    from transformers import LlamaConfig

    path = tmp_path_factory.mktemp("tiny_llama")
    LlamaConfig(
        vocab_size=256,
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=1,
        num_attention_heads=4,
        architectures=["LlamaForCausalLM"],
    ).save_pretrained(path)
    return str(path)
