"""Shared helpers for the parser tests: the host's parser classes driven the way
sglang 0.5.23's chat serving drives them, and DeepSeek's own sample outputs."""

from __future__ import annotations

import json
import pathlib
import random
import re

from sglang.srt.entrypoints.openai.protocol import Tool
from sglang.srt.function_call.function_call_parser import FunctionCallParser
from sglang.srt.parser.reasoning_parser import ReasoningParser

SAMPLES = pathlib.Path(__file__).resolve().parents[1] / "encoding" / "data"
# An assistant turn in a rendered prompt: the think token the prompt ends with
# (thinking mode: "<think>"), then the model's output up to EOS.
_TURN = re.compile(r"(?:<｜Assistant｜>|</function_results>\n\n)(<think>|</think>)(.*?)<｜end▁of▁sentence｜>", re.S)


def make_tool(name: str, properties: dict | None = None) -> Tool:
    return Tool(type="function", function={"name": name, "parameters": {"type": "object", "properties": properties or {}}})


def sample_turns() -> list[tuple[bool, str, dict, list[Tool]]]:
    """(thinking, model output, the assistant message it renders, tools) for every
    assistant turn of DeepSeek's two official encoder samples."""
    turns = []
    for stem in ("test", "test_search_wo_date"):
        request = json.loads((SAMPLES / f"{stem.replace('test', 'test_input', 1)}.json").read_text())
        tools = request.get("tools") or next(m["tools"] for m in request["messages"] if m.get("tools"))
        prompt = (SAMPLES / f"{stem.replace('test', 'test_output', 1)}.txt").read_text()
        assistants = [m for m in request["messages"] if m["role"] == "assistant"]
        outputs = _TURN.findall(prompt, prompt.index("</functions>"))  # past the tools block's example
        assert len(outputs) == len(assistants)
        hosted = [Tool(type="function", function=t["function"]) for t in tools]
        for (think, output), message in zip(outputs, assistants):
            turns.append((think == "<think>", output, message, hosted))
    return turns


# -- the host's parsers, as serving_chat drives them ----------------------------


def reasoning_parser(thinking: bool, stream: bool) -> ReasoningParser:
    # Serving: stream_reasoning=False for one-shot responses, the request's flag (default True) when streaming.
    return ReasoningParser("deepseek-v3", stream_reasoning=stream, force_reasoning=thinking)


def one_shot(text: str, tools: list[Tool], parser: str = "deepseekv32", thinking: bool | None = None):
    """(reasoning, content, [(name, arguments)]) as the non-streaming response builder gets them."""
    reasoning = ""
    if thinking is not None:
        reasoning, text = reasoning_parser(thinking, stream=False).parse_non_stream(text)
        reasoning = reasoning or ""
    calls_parser = FunctionCallParser(tools, parser)
    if calls_parser.has_tool_call(text):
        text, calls = calls_parser.parse_non_stream(text)
    else:
        calls = []
    return reasoning, text, [(c.name, c.parameters) for c in calls]


def streamed(text: str, tools: list[Tool], cuts: list[int], parser: str = "deepseekv32", thinking: bool | None = None):
    """Same triple, from feeding ``text`` cut at ``cuts`` through the streaming path.

    Also checks the streaming contract: a call's name comes once, in its first
    item; ``tool_index`` counts calls from 0; the detector's
    ``prev_tool_call_arr`` / ``streamed_args_for_tool`` hold what was sent.
    """
    reasoner = reasoning_parser(thinking, stream=True) if thinking is not None else None
    calls_parser = FunctionCallParser(tools, parser)
    reasoning, content, calls = [], [], []

    def tool_step(delta: str, last: bool) -> None:
        normal, items = calls_parser.parse_stream_chunk(delta)
        if last:
            end_text, end_items = calls_parser.parse_stream_end()
            normal, items = normal + end_text, items + end_items
        content.append(normal)
        for item in items:
            if item.name is not None:
                assert item.tool_index == len(calls) and item.parameters == ""
                calls.append([item.name, ""])
            else:
                assert 0 <= item.tool_index < len(calls)
                calls[item.tool_index][1] += item.parameters

    bounds = [0, *sorted(set(c for c in cuts if 0 < c < len(text))), len(text)]
    for start, end in zip(bounds, bounds[1:]):
        last = end == len(text)
        delta = text[start:end]
        if reasoner is not None:
            r, delta = reasoner.parse_stream_chunk(delta)
            if last:
                end_r, end_n = reasoner.parse_stream_end()
                r, delta = (r or "") + (end_r or ""), (delta or "") + (end_n or "")
            reasoning.append(r or "")
        tool_step(delta or "", last)
    detector = calls_parser.detector
    assert [c[1] for c in calls] == detector.streamed_args_for_tool[: len(calls)]
    assert [{"name": n, "arguments": a} for n, a in calls] == detector.prev_tool_call_arr[: len(calls)]
    return "".join(reasoning), "".join(content), [tuple(c) for c in calls]


def random_cuts(rng: random.Random, length: int, max_piece: int = 8) -> list[int]:
    cuts, at = [], 0
    while at < length:
        at += rng.randint(1, max_piece)
        cuts.append(at)
    return cuts


def every_char(text: str) -> list[int]:
    return list(range(1, len(text)))
