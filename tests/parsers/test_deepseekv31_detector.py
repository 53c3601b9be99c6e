"""``deepseekv31`` (V3.1 / V3.2-Exp) tool calls through the host's FunctionCallParser."""

import json
import random

import partial_json_parser
import pytest
from parser_harness import every_char, make_tool, one_shot, random_cuts, streamed
from sglang.srt.function_call.deepseekv31_detector import DeepSeekV31Detector as InTreeDetector

from dsv32_plugin.parsers.deepseekv31 import DeepSeekV31Detector

TOOLS = [make_tool("get_weather", {"city": {"type": "string"}, "days": {"type": "integer"}, "note": {"type": "string"}}),
         make_tool("now")]
CB, CE = "<｜tool▁calls▁begin｜>", "<｜tool▁calls▁end｜>"


def call(name, args):
    return f"<｜tool▁call▁begin｜>{name}<｜tool▁sep｜>{args}<｜tool▁call▁end｜>"


def calls_block(*calls, prose="Checking. "):
    return prose + CB + "".join(calls) + CE


def assert_agree(text, splits=10, seed=0):
    expected = one_shot(text, TOOLS, parser="deepseekv31")
    rng = random.Random(seed)
    plans = [every_char(text)] + [random_cuts(rng, len(text)) for _ in range(splits)]
    plans += [[cut] for cut in range(1, len(text))]
    for cuts in plans:
        assert streamed(text, TOOLS, cuts, parser="deepseekv31") == expected, cuts
    return expected


CASES = [
    pytest.param(calls_block(call("get_weather", '{"city": "Tokyo", "days": 3}')), "Checking.",
                 [("get_weather", {"city": "Tokyo", "days": 3})], id="basic"),
    pytest.param(calls_block(call("get_weather", '{"city": "a\\"b\\\\c\\n\\u00e9\\ud83d\\ude00", "note": "x"}')),
                 "Checking.", [("get_weather", {"city": 'a"b\\c\né😀', "note": "x"})], id="escapes-and-surrogates"),
    pytest.param(calls_block(call("get_weather", '{"city": "x\\ud83d", "note": "\\udc00"}')), "Checking.",
                 [("get_weather", {"city": "x\ufffd", "note": "\ufffd"})], id="lone-surrogates-replaced"),
    pytest.param(calls_block(call("get_weather", '{"days": "12", "city": 7}')), "Checking.",
                 [("get_weather", {"days": 12, "city": "7"})], id="schema-coercion"),
    pytest.param(calls_block(call("get_weather", '{"city": "A"}'), call("now", "{}")), "Checking.",
                 [("get_weather", {"city": "A"}), ("now", {})], id="parallel"),
    pytest.param(calls_block(call("nope", '{"a": 1}'), call("now", "{}")), "Checking.", [("now", {})], id="unknown-dropped"),
    pytest.param(calls_block(call("get_weather", '{"city": "A", "days": tru}')), "Checking.",
                 [("get_weather", {"city": "A"})], id="malformed-value-stops-reading"),
    pytest.param(calls_block(call("get_weather", '{{"city": "A"}')), "Checking.", [("get_weather", {})],
                 id="doubled-brace"),
    pytest.param(calls_block(call("get_weather", "[1, 2]")), "Checking.", [("get_weather", {})], id="not-an-object"),
    pytest.param("Checking. " + CB + "<｜tool▁call▁begin｜>get_weather<｜tool▁sep｜>" + '{"city": "Par', "Checking.",
                 [("get_weather", {"city": "Par"})], id="truncated-in-string"),
    pytest.param("Checking. " + CB + "<｜tool▁call▁begin｜>get_wea", "Checking. " + CB + "<｜tool▁call▁begin｜>get_wea",
                 [], id="truncated-in-name-is-text"),
    pytest.param("Hi <｜tool▁call▁begin｜>get_wea", "Hi <｜tool▁call▁begin｜>get_wea", [],
                 id="bare-call-without-separator-is-text"),
    pytest.param(CB + "junk" + CE + " " + calls_block(call("now", "{}"), prose="Then "), CB + "junk" + CE + " Then",
                 [("now", {})], id="unparsed-block-then-a-call"),
    pytest.param(calls_block(call("now", "{}")) + " Done.", "Checking. Done.", [("now", {})], id="prose-after"),
    pytest.param("Hi " + call("get_weather", '{"days": 1.0}'), "Hi", [("get_weather", {"days": 1})], id="bare-call"),
    pytest.param("a <｜tool▁calls▁beg", "a <｜tool▁calls▁beg", [], id="partial-token-at-end-is-text"),
    pytest.param("x <｜tool▁call▁end｜> y", "x  y", [], id="stray-closer-dropped"),
]


@pytest.mark.parametrize(("text", "content", "calls"), CASES)
def test_v31_calls(text, content, calls):
    _, got_content, got_calls = assert_agree(text)
    assert got_content == content
    assert [(n, json.loads(a)) for n, a in got_calls] == calls


def test_v31_char_streaming_holds_back_partial_tokens():
    text = calls_block(call("get_weather", '{"city": "Tokyo"}'), prose="Sure")
    detector = DeepSeekV31Detector()
    content = "".join(detector.parse_streaming_increment(ch, TOOLS).normal_text for ch in text)
    content += detector.finish(TOOLS).normal_text
    assert content == "Sure"
    intree = InTreeDetector()
    leaked = "".join(intree.parse_streaming_increment(ch, TOOLS).normal_text for ch in text)
    assert "<｜tool" in leaked  # sglang 0.5.23 releases the token's characters as content


def test_v31_string_arguments_stream_incrementally():
    note = "line of text " * 30
    text = calls_block(call("get_weather", json.dumps({"note": note, "days": 2})))
    detector = DeepSeekV31Detector()
    pieces = [item.parameters for i in range(0, len(text), 5)
              for item in detector.parse_streaming_increment(text[i:i + 5], TOOLS).calls if item.name is None]
    pieces += [i.parameters for i in detector.finish(TOOLS).calls]
    assert len(pieces) > 30
    assert json.loads("".join(pieces)) == {"note": note, "days": 2}
    for n in range(1, len(pieces)):  # every partial concatenation is a prefix of valid JSON
        assert isinstance(partial_json_parser.loads("".join(pieces[:n])), dict)


# vLLM's tests for its DeepSeek-V3.1 tool parser (tests/tool_parsers/test_deepseekv31_tool_parser.py,
# test_extract_tool_calls_unparsable_block): a start token with no parsable call is no tool call, and the
# content is the whole output.
UNPARSABLE = [
    pytest.param("Let me look that up." + CB + "get_weather", id="cut-off-in-the-block"),
    pytest.param(CB + 'foo<｜tool▁sep｜>{"x":1}' + CE, id="call-markers-missing"),
]


@pytest.mark.parametrize("text", UNPARSABLE)
def test_unparsable_markup_keeps_the_text(text):
    assert assert_agree(text) == ("", text, [])

