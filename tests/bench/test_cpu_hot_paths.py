"""The CPU hot paths as pytest-benchmark cases: timed and printed in every run, never asserted on time.

* the streaming tool-call parse of one long DSML call, 8 characters a chunk, at 2K / 8K / 32K-character
  arguments: the plugin's detector and stock sglang 0.5.23's (``extra_info``: microseconds per chunk);
* the prompt encoding of a long multi-turn conversation with tools, reasoning and tool results;
* the DSA backend's eager metadata build for a decode batch and for an extend batch.

Each case checks what it timed is right (same calls parsed, prompt non-empty, shapes), so a case
cannot pass on a broken path. Rounds are few: the numbers are for reading, not for gating.
"""

from __future__ import annotations

import json
from types import SimpleNamespace

import pytest
import torch
from sglang.srt.entrypoints.openai.protocol import Tool
from sglang.srt.function_call.deepseekv32_detector import DeepSeekV32Detector as StockDetector

from dsv32_plugin.encoding import encode_messages
from dsv32_plugin.parsers.deepseekv32 import DeepSeekV32Detector

CHUNK = 8  # characters a streamed piece; a token is ~4
TOOLS = [Tool(type="function", function={"name": "write_file", "parameters": {
    "type": "object", "properties": {"path": {"type": "string"}, "content": {"type": "string"}}}})]
DETECTORS = {"plugin": DeepSeekV32Detector, "sglang": StockDetector}


def dsml_call(content_chars: int) -> str:
    line = "def f(x):\n    return x * 2  # line\n"
    content = (line * -(-content_chars // len(line)))[:content_chars]
    return ("I'll write it.\n\n<｜DSML｜function_calls>\n<｜DSML｜invoke name=\"write_file\">\n"
            '<｜DSML｜parameter name="path" string="true">src/f.py</｜DSML｜parameter>\n'
            f'<｜DSML｜parameter name="content" string="true">{content}</｜DSML｜parameter>\n'
            "</｜DSML｜invoke>\n</｜DSML｜function_calls>")


def stream(detector_class, text: str) -> tuple[list[str], str]:
    """(tool names, concatenated argument pieces) of ``text`` streamed in CHUNK-character pieces."""
    detector, names, arguments = detector_class(), [], []
    for start in range(0, len(text), CHUNK):
        for item in detector.parse_streaming_increment(text[start:start + CHUNK], TOOLS).calls:
            (names if item.name else arguments).append(item.name or item.parameters)
    if hasattr(detector, "finish"):  # the plugin's detector sends what a stream end completes
        arguments += [item.parameters for item in detector.finish(TOOLS).calls]
    return names, "".join(arguments)


@pytest.mark.parametrize("parser", list(DETECTORS))
@pytest.mark.parametrize("chars", [2048, 8192, 32768], ids=lambda n: f"{n // 1024}K")
def test_streaming_tool_call_parse(benchmark, parser, chars):
    text = dsml_call(chars)
    chunks = -(-len(text) // CHUNK)
    rounds = 1 if parser == "sglang" and chars > 8192 else 3  # stock: seconds a round at 32K
    names, arguments = benchmark.pedantic(stream, (DETECTORS[parser], text), rounds=rounds, iterations=1)
    assert names == ["write_file"]
    if parser == "plugin":  # stock sglang's streamed pieces are not always valid JSON: only the name is checked
        assert len(json.loads(arguments)["content"]) == chars
    benchmark.extra_info.update(chunks=chunks, us_per_chunk=round(benchmark.stats.stats.median / chunks * 1e6, 2))


def long_conversation(turns: int) -> list[dict]:
    messages = [{"role": "system", "content": "You are a careful assistant."}]
    for i in range(turns):
        messages.append({"role": "user", "content": f"Step {i}: what is the weather in city {i}? " * 4})
        messages.append({"role": "assistant", "content": "", "reasoning_content": f"Look it up ({i}).", "tool_calls": [
            {"id": f"c{i}", "type": "function",
             "function": {"name": "get_weather", "arguments": json.dumps({"city": f"city {i}", "days": i % 7})}}]})
        messages.append({"role": "tool", "tool_call_id": f"c{i}", "content": json.dumps({"temp": 20 + i % 9})})
        messages.append({"role": "assistant", "content": f"It is {20 + i % 9} degrees in city {i}."})
    messages.append({"role": "user", "content": "Summarise."})
    return messages


def test_chat_encoding_of_a_long_conversation(benchmark):
    tools = [{"type": "function", "function": {"name": "get_weather", "description": "Weather of a city",
                                               "parameters": {"type": "object", "properties": {
                                                   "city": {"type": "string"}, "days": {"type": "integer"}}}}}]
    messages = long_conversation(100)
    prompt = benchmark.pedantic(encode_messages, (messages,), {"tools": tools, "thinking": True}, rounds=10,
                                iterations=1)
    assert prompt.count("<｜User｜>") == 101 and prompt.endswith("<think>")
    benchmark.extra_info.update(messages=len(messages), prompt_chars=len(prompt))


def forward_batch(extend: bool, batch: int, context: int) -> SimpleNamespace:
    """What the metadata builders read of a host ForwardBatch: decode (1 row a request) or extend (64 new rows)."""
    new = 64 if extend else 1
    positions = torch.cat([torch.arange(context - new, context) for _ in range(batch)])
    return SimpleNamespace(batch_size=batch, positions=positions, req_pool_indices=torch.arange(1, batch + 1),
                           extend_seq_lens=torch.full((batch,), new, dtype=torch.int32))


@pytest.mark.parametrize("mode", ["decode", "extend"])
def test_dsa_metadata_build(benchmark, mode):
    from dsv32_plugin.attention.metadata import build_paged_metadata, build_ragged_metadata
    from dsv32_plugin.kernels.reference import fill_paged_metadata

    batch, context = 32, 4096
    req_to_token = torch.arange((batch + 2) * context, dtype=torch.int32).view(batch + 2, context)
    fb = forward_batch(mode == "extend", batch, context)
    if mode == "decode":
        md = benchmark.pedantic(build_paged_metadata, (fb, req_to_token, 1, fill_paged_metadata), rounds=50, iterations=1)
        assert md.page_table.shape == (batch, context // 64) and (md.req_kv_len == context).all()
    else:
        md = benchmark.pedantic(build_ragged_metadata, (fb, req_to_token, 2048), rounds=20, iterations=1)
        assert md.ragged_slots.numel() == batch * context and not md.dense
