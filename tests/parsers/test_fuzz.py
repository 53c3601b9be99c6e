"""Random mutations of real model outputs (DeepSeek's own V3.2 sample turns).

For each mutated output: nothing raises (nor takes the detectors' safety-net
path, which logs an error), streaming with random cuts equals one-shot parsing
(reasoning, content, calls), arguments are JSON objects, no piece of content
text holds recognised markup, and no user-visible text is lost: the reasoning split
reassembles the output, and content keeps the prose before the first DSML tag.
"""

import json
import logging
import random
import re

import pytest
from parser_harness import one_shot, random_cuts, sample_turns, streamed
from sglang.srt.parser.reasoning_parser import ReasoningParser

from dsv32_plugin.parsers import dsml, v31_markup

DSML_MUTATIONS = 10_000
V31_MUTATIONS = 2_000
DSML_FRAGMENTS = [
    "<｜DSML｜", "</｜DSML｜", "function_calls>", "invoke", "parameter", ' name="', '" string="true">', ' string="false">',
    ">", "<", "/", '"', "\n", "\n\n", "{", "}", "[1,", ":", "\\", "</think>", "<think>", "é", "😀", "NaN", "null", "42",
    dsml.BLOCK_OPEN, dsml.BLOCK_CLOSE, dsml.INVOKE_CLOSE, dsml.PARAM_CLOSE, '<｜DSML｜invoke name="get_weather">',
    '<｜DSML｜parameter name="date" string="false">',
]
OUTSIDE_MARKERS = (dsml.BLOCK_OPEN, dsml.INVOKE_OPEN, dsml.BLOCK_CLOSE, dsml.INVOKE_CLOSE, dsml.PARAM_CLOSE)
V31_FRAGMENTS = [
    v31_markup.CALLS_BEGIN, v31_markup.CALLS_END, v31_markup.CALL_BEGIN, v31_markup.CALL_END, v31_markup.SEP,
    "<｜tool", "▁", "｜>", "<", "{", "}", '"', "\\", "\\u", "\\ud83d", ",", ":", "1", "tru", " ", "\n", "get_weather",
]


def _crop(text: str) -> str:
    # Long reasoning adds time, not coverage: keep the head and the markup-rich tail.
    return text if len(text) <= 700 else text[:100] + text[-600:]


def _mutate(rng: random.Random, text: str, fragments: list[str], anchor: str) -> str:
    for _ in range(rng.randint(1, 3)):
        anchors = [m.start() for m in re.finditer(re.escape(anchor), text)] if rng.random() < 0.7 else []
        at = min(len(text), rng.choice(anchors) + rng.randint(-3, 30)) if anchors else rng.randint(0, len(text))
        at = max(at, 0)
        op = rng.randrange(5)
        if op == 0:
            text = text[:at] + text[at + rng.randint(1, 12):]
        elif op == 1:
            text = text[:at] + rng.choice(fragments) + text[at:]
        elif op == 2:
            text = text[:at] + text[at:at + rng.randint(1, 40)] + text[at:]
        elif op == 3:
            text = text[:at]
        else:
            span = rng.randint(1, 6)
            text = text[:at] + rng.choice(fragments) + text[at + span:]
    return text


class _Errors(logging.Handler):
    def __init__(self):
        super().__init__(logging.ERROR)
        self.records = []

    def emit(self, record):
        self.records.append(record)


@pytest.fixture
def parser_errors():
    handler = _Errors()
    logger = logging.getLogger("dsv32_plugin.parsers")
    logger.addHandler(handler)
    yield handler.records
    logger.removeHandler(handler)


def _check(text, tools, thinking, parser, rng, errors):
    expected = one_shot(text, tools, parser=parser, thinking=thinking)
    assert streamed(text, tools, random_cuts(rng, len(text), rng.choice((8, 24, 64))), parser=parser,
                    thinking=thinking) == expected, text
    assert not errors, text
    reasoning, content, calls = expected
    for _, arguments in calls:
        assert isinstance(json.loads(arguments), dict)
    return reasoning, content


def test_fuzz_dsml_real_outputs(parser_errors):
    rng = random.Random(20251201)
    turns = [(thinking, _crop(output), tools) for thinking, output, _, tools in sample_turns()]
    for n in range(DSML_MUTATIONS):
        thinking, output, tools = turns[n % len(turns)]
        text = _mutate(rng, output, DSML_FRAGMENTS, "<｜DSML｜")
        reasoning, content = _check(text, tools, thinking, "deepseekv32", rng, parser_errors)

        # Reasoning split loses nothing: reasoning + (</think>) + the tool parser's input == output.
        r, normal = ReasoningParser("deepseek-v3", stream_reasoning=False, force_reasoning=thinking).parse_non_stream(text)
        assert r == reasoning
        rebuilt = [r + normal, r + "</think>" + normal]
        assert text in rebuilt + ["<think>" + x for x in rebuilt], text
        # Prose before the first DSML tag survives.
        first_tag = min((i for i in (normal.find("<｜DSML｜"), normal.find("</｜DSML｜")) if i != -1), default=-1)
        if first_tag == -1:
            assert content == normal, text
        else:
            assert content.startswith(normal[:first_tag].removesuffix("\n\n")), text
        # No recognised markup in any piece of text. (Their concatenation may still
        # spell a marker, e.g. "<｜D" + dropped stray closer + "SML｜...": that is the
        # model's own text on both sides of broken markup, kept.)
        scanner = dsml.DsmlScanner()
        pieces = [e[1] for e in scanner.feed(normal) + scanner.finish() if e[0] == "text"]
        assert "".join(pieces) == content
        assert not any(marker in piece for piece in pieces for marker in OUTSIDE_MARKERS), text


def test_fuzz_v31_outputs(parser_errors):
    rng = random.Random(7)
    outputs = []
    for _, _, message, tools in sample_turns():
        calls = "".join(
            f"{v31_markup.CALL_BEGIN}{c['function']['name']}{v31_markup.SEP}{c['function']['arguments']}{v31_markup.CALL_END}"
            for c in message.get("tool_calls") or []
        )
        if calls:
            outputs.append(((message.get("content") or "")[:200] + v31_markup.CALLS_BEGIN + calls + v31_markup.CALLS_END,
                            tools))
    for n in range(V31_MUTATIONS):
        output, tools = outputs[n % len(outputs)]
        text = _mutate(rng, output, V31_FRAGMENTS, "<｜tool")
        _, content = _check(text, tools, None, "deepseekv31", rng, parser_errors)
        first = text.find("<｜tool")
        assert content.startswith(text if first == -1 else text[:first].rstrip()), text
