"""Context-parallel flags for DeepSeek-V3.2 through the host's parser and resolution pipeline (in process).

Both strategies resolve for V3.2 (the host alone refuses zigzag for it), zigzag
without the DeepEP / EP = TP / dense-TP-1 settings the host forces for its own
zigzag path, and bad layouts are refused with a ``StartupRefusal`` naming the flags.
"""

import argparse

import pytest

from dsv32_plugin.refusal import StartupRefusal

CP_FIELDS = ("attn_cp_size", "cp_strategy", "moe_a2a_backend", "ep_size", "moe_dense_tp_size", "attention_backend")


def resolve(host, model, *extra):
    from sglang.srt.arg_groups.overrides import resolution_result

    parser = argparse.ArgumentParser(prog="sglang serve")
    host.ServerArgs.add_cli_args(parser)
    argv = ["--model-path", model, "--device", "cpu", "--skip-tokenizer-init", *extra]
    record = host.ServerArgs.from_cli_args(parser.parse_args(argv))
    record.resolve_once()
    return {field: resolution_result(record, field) for field in CP_FIELDS}


@pytest.mark.parametrize("strategy", ["interleave", "zigzag"])
def test_both_strategies_resolve_for_v32_without_deepep(host, tiny_v32, strategy):
    from sglang.srt.layers.cp.base import get_cp_strategy

    resolved = resolve(host, tiny_v32, "--tp", "2", "--enable-prefill-cp", "--cp-strategy", strategy)
    assert resolved == {"attn_cp_size": 2, "cp_strategy": strategy, "moe_a2a_backend": "none", "ep_size": 1,
                        "moe_dense_tp_size": None, "attention_backend": "dsa"}
    assert get_cp_strategy().name == strategy and get_cp_strategy().cp_size == 2


@pytest.mark.parametrize("extra, words", [
    pytest.param(["--tp", "4", "--attn-cp-size", "3", "--cp-strategy", "interleave"],
                 ["context-parallel width 3", "does not divide the --tp 4 ranks", "--attn-cp-size dividing 4"],
                 id="width-not-dividing-tp"),
    pytest.param(["--tp", "2", "--cp-strategy", "zigzag", "--attention-backend", "torch_native"],
                 ["the torch_native prefill attention backend cannot run", "--attention-backend dsa"],
                 id="non-dsa-backend"),
    pytest.param(["--tp", "2", "--cp-strategy", "interleave", "--prefill-attention-backend", "triton"],
                 ["the triton prefill attention backend cannot run"], id="non-dsa-prefill-backend"),
    pytest.param(["--tp", "2"], ["--enable-prefill-cp needs --cp-strategy interleave"], id="no-strategy"),
])
def test_layouts_the_plugin_cannot_run_are_refused_naming_the_flags(host, tiny_v32, extra, words):
    with pytest.raises(StartupRefusal) as refusal:
        resolve(host, tiny_v32, "--enable-prefill-cp", *extra)
    message = str(refusal.value)
    assert message.startswith("dsv32-plugin: ") and "\n" not in message
    assert all(word in message for word in words), message
