"""``deepseek-v3`` reasoning through the host's ReasoningParser, alone and ahead of the tool parser."""

import json
import random

import pytest
from parser_harness import every_char, make_tool, one_shot, random_cuts, streamed
from sglang.srt.parser.reasoning_parser import ReasoningParser

from dsv32_plugin.parsers.reasoning import DeepSeekV32ReasoningDetector

TOOLS = [make_tool("get_weather", {"city": {"type": "string"}})]
DSML = ('\n\n<｜DSML｜function_calls>\n<｜DSML｜invoke name="get_weather">\n'
        '<｜DSML｜parameter name="city" string="true">Oslo</｜DSML｜parameter>\n</｜DSML｜invoke>\n</｜DSML｜function_calls>')
V31 = '<｜tool▁calls▁begin｜><｜tool▁call▁begin｜>get_weather<｜tool▁sep｜>{"city": "Oslo"}<｜tool▁call▁end｜><｜tool▁calls▁end｜>'
OSLO = [("get_weather", {"city": "Oslo"})]


def assert_agree(text, thinking, parser="deepseekv32", tools=TOOLS):
    expected = one_shot(text, tools, parser=parser, thinking=thinking)
    rng = random.Random(1)
    for cuts in [every_char(text)] + [random_cuts(rng, len(text), 5) for _ in range(10)] + [[c] for c in range(1, len(text))]:
        assert streamed(text, tools, cuts, parser=parser, thinking=thinking) == expected, cuts
    reasoning, content, calls = expected
    return reasoning, content, [(n, json.loads(a)) for n, a in calls]


CASES = [
    pytest.param("Let me think.</think>The answer is 4.", True, ("Let me think.", "The answer is 4.", []), id="thinking-on"),
    pytest.param("The answer is 4.", False, ("", "The answer is 4.", []), id="thinking-off"),
    pytest.param("x </think> y <think>", False, ("", "x </think> y <think>", []), id="thinking-off-tags-are-text"),
    pytest.param("Still thinking when cut", True, ("Still thinking when cut", "", []), id="missing-end"),
    pytest.param("<think>Again.</think>A", True, ("Again.", "A", []), id="repeated-think-start-dropped"),
    pytest.param("<think>Unforced.</think>A", False, ("Unforced.", "A", []), id="output-opens-thinking"),
    pytest.param("Need weather.</think>" + DSML, True, ("Need weather.", "", OSLO), id="reasoning-then-tool-call"),
    pytest.param("Need weather." + DSML, True, ("Need weather.\n\n", "", OSLO), id="tool-call-inside-unclosed-thinking"),
    pytest.param("Weather: " + DSML, False, ("", "Weather: ", OSLO), id="thinking-off-tool-call"),
    pytest.param("a</thi", True, ("a</thi", "", []), id="partial-end-token-at-cut-off"),
]


@pytest.mark.parametrize(("text", "thinking", "expected"), CASES)
def test_reasoning_with_tool_parser(text, thinking, expected):
    assert assert_agree(text, thinking) == expected


def test_v31_call_inside_unclosed_thinking():
    assert assert_agree("Need weather." + V31, True, parser="deepseekv31") == ("Need weather.", "", OSLO)


def test_host_attributes_and_buffered_reasoning():
    detector = ReasoningParser("deepseek-v3").detector
    assert isinstance(detector, DeepSeekV32ReasoningDetector)
    assert detector.reasoning_default == "explicit_thinking"
    assert (detector.think_start_token, detector.think_end_token) == ("<think>", "</think>")
    assert detector.thinks_internally and not detector.force_reasoning

    parser = ReasoningParser("deepseek-v3", stream_reasoning=False, force_reasoning=True)
    pieces = [parser.parse_stream_chunk(ch) for ch in "abc</think>de"]
    assert [r for r, _ in pieces if r] == ["abc"]  # held until the reasoning ends
    assert "".join(n or "" for _, n in pieces) == "de"


def test_force_nonempty_content_follows_host_rule():
    detector = DeepSeekV32ReasoningDetector(force_reasoning=True, force_nonempty_content=True)
    assert detector.detect_and_parse("only thoughts").normal_text == "only thoughts"
    streaming = DeepSeekV32ReasoningDetector(force_reasoning=True, force_nonempty_content=True)
    streamed_reasoning = streaming.parse_streaming_increment("only thoughts").reasoning_text
    assert streamed_reasoning == "only thoughts" and streaming.finish().normal_text == "only thoughts"
