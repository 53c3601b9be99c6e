"""``deepseekv32`` tool calls through the host's FunctionCallParser, one-shot and streamed."""

import json
import random

import partial_json_parser
import pytest
from parser_harness import every_char, make_tool, one_shot, random_cuts, streamed
from sglang.srt.function_call.deepseekv32_detector import DeepSeekV32Detector as InTreeDetector
from sglang.srt.function_call.function_call_parser import FunctionCallParser

from dsv32_plugin.parsers.deepseekv32 import DeepSeekV32Detector

B, E = "<｜DSML｜function_calls>", "</｜DSML｜function_calls>"
PROPS = {
    "city": {"type": "string"}, "days": {"type": "integer"}, "ratio": {"type": "number"},
    "flag": {"type": "boolean"}, "tags": {"type": "array"}, "opts": {"type": "object"},
    "maybe": {"type": ["integer", "null"]}, "id": {"anyOf": [{"type": "integer"}, {"type": "string"}]},
    "code": {"type": "string"},
}
TOOLS = [make_tool("get_weather", PROPS), make_tool("now")]


def param(name, raw, string):
    return f'<｜DSML｜parameter name="{name}" string="{string}">{raw}</｜DSML｜parameter>'


def block(*invokes, prose="Let me check.\n\n"):
    return prose + B + "\n" + "\n".join(invokes) + "\n" + E


def invoke(name, *params):
    return f'<｜DSML｜invoke name="{name}">\n' + "\n".join(param(*p) for p in params) + "\n</｜DSML｜invoke>"


def assert_agree(text, tools=TOOLS, thinking=None, splits=10, seed=0):
    """One-shot result; streaming with 1-char, every 2-way and random splits gives the same."""
    expected = one_shot(text, tools, thinking=thinking)
    rng = random.Random(seed)
    plans = [every_char(text)] + [random_cuts(rng, len(text)) for _ in range(splits)]
    plans += [[cut] for cut in range(1, len(text))] if len(text) < 400 else []
    for cuts in plans:
        assert streamed(text, tools, cuts, thinking=thinking) == expected, cuts
    return expected


ARGUMENT_CASES = [
    pytest.param(("city", "  San Francisco\n\n", "true"), {"city": "  San Francisco\n\n"}, id="string-verbatim-whitespace"),
    pytest.param(("code", 'def f():\n\treturn "a\\b"  \n', "true"), {"code": 'def f():\n\treturn "a\\b"  \n'},
                 id="code-quotes-backslashes-tabs"),
    pytest.param(("city", "東京 ☀️ \"q\" </b> <", "true"), {"city": "東京 ☀️ \"q\" </b> <"}, id="unicode-and-angle-brackets"),
    pytest.param(("days", "42", "true"), {"days": 42}, id="int-schema-string-true"),
    pytest.param(("city", "7", "false"), {"city": "7"}, id="string-schema-bare-number"),
    pytest.param(("ratio", " 0.25 ", "false"), {"ratio": 0.25}, id="number"),
    pytest.param(("flag", "true", "false"), {"flag": True}, id="boolean"),
    pytest.param(("flag", "false", "true"), {"flag": False}, id="boolean-from-string-true"),
    pytest.param(("tags", '["a", 1, null, {"k": "v"}]', "false"), {"tags": ["a", 1, None, {"k": "v"}]}, id="array"),
    pytest.param(("tags", '["x"]', "true"), {"tags": ["x"]}, id="array-schema-string-true"),
    pytest.param(("opts", '{"nested": {"deep": [true, "é"]}}', "false"), {"opts": {"nested": {"deep": [True, "é"]}}},
                 id="object"),
    pytest.param(("maybe", "null", "false"), {"maybe": None}, id="union-null"),
    pytest.param(("maybe", "5", "true"), {"maybe": 5}, id="union-int-from-string"),
    pytest.param(("id", "12", "true"), {"id": "12"}, id="anyOf-string-admitted-kept"),
    pytest.param(("id", "12", "false"), {"id": 12}, id="anyOf-int-kept"),
    pytest.param(("days", "Сегодня хорошая погода", "false"), {"days": "Сегодня хорошая погода"},
                 id="non-json-string-false-kept-as-string"),
    pytest.param(("ratio", "NaN", "false"), {"ratio": "NaN"}, id="nan-is-not-json"),
    pytest.param(("unknown_key", '{"a": 1}', "false"), {"unknown_key": {"a": 1}}, id="key-outside-schema"),
    pytest.param(("city", "", "true"), {"city": ""}, id="empty-string"),
]


@pytest.mark.parametrize(("param_spec", "expected"), ARGUMENT_CASES)
def test_argument_values(param_spec, expected):
    text = block(invoke("get_weather", param_spec))
    _, content, calls = assert_agree(text, splits=5)
    assert content == "Let me check."
    assert [(name, json.loads(args)) for name, args in calls] == [("get_weather", expected)]
    assert calls[0][1] == json.dumps(expected, ensure_ascii=False)  # canonical text


def test_many_parameters_keep_order_and_first_duplicate_wins():
    text = block(invoke("get_weather", ("days", "3", "false"), ("city", "Paris", "true"), ("days", "9", "false")))
    _, _, calls = assert_agree(text)
    assert calls == [("get_weather", '{"days": 3, "city": "Paris"}')]


MARKUP_CASES = [
    pytest.param(block(invoke("get_weather", ("city", "A", "true")), invoke("now")), "Let me check.",
                 [("get_weather", {"city": "A"}), ("now", {})], id="parallel-calls"),
    pytest.param(block(invoke("get_weather", ("city", "A", "true"))).removesuffix(E), "Let me check.",
                 [("get_weather", {"city": "A"})], id="unclosed-block-complete-invoke"),
    pytest.param(block(invoke("get_weather", ("city", "A", "true"))).split("</｜DSML｜invoke>")[0] + "</｜DSML｜inv",
                 "Let me check.",
                 [("get_weather", {"city": "A"})], id="truncated-mid-invoke"),
    pytest.param(block(invoke("get_weather"))[:-30] + '<｜DSML｜parameter name="city" string="true">Par', "Let me check.",
                 [("get_weather", {"city": "Par"})], id="truncated-mid-value"),
    pytest.param(block(invoke("nope", ("x", "1", "false")), invoke("now")), "Let me check.", [("now", {})],
                 id="unknown-tool-dropped"),
    pytest.param(block(invoke("now")) + "\n\nAnything else?", "Let me check.\n\nAnything else?", [("now", {})],
                 id="prose-after-block"),
    pytest.param(block(invoke("now")) + block(invoke("now"), prose="\n\nMore:\n\n"), "Let me check.\n\nMore:",
                 [("now", {}), ("now", {})], id="two-blocks"),
    pytest.param("Sure." + invoke("get_weather", ("days", "2", "false")), "Sure.", [("get_weather", {"days": 2})],
                 id="bare-invoke-structural-tag"),
    pytest.param(block('<｜DSML｜invoke name="get_weather">\n{"city": "Oslo", "days": "4"}\n</｜DSML｜invoke>'),
                 "Let me check.", [("get_weather", {"city": "Oslo", "days": 4})], id="json-body"),
    pytest.param(block('<｜DSML｜invoke name="get_weather">\n{not json}\n</｜DSML｜invoke>'),
                 "Let me check.", [("get_weather", {})], id="invalid-json-body"),
    pytest.param(block('<｜DSML｜invoke name="get_weather">\n<｜DSML｜parameter nme="x">1</｜DSML｜parameter>\n'
                       '<｜DSML｜parameter name="city">Rome</｜DSML｜parameter>\n</｜DSML｜invoke>'),
                 "Let me check.", [("get_weather", {"city": "Rome"})], id="malformed-param-tags"),
    pytest.param("No tools here, just <b>html</b> and a < sign\n\n", "No tools here, just <b>html</b> and a < sign\n\n", [],
                 id="plain-text-untouched"),
    pytest.param("Here:\n\n<｜DSML｜function_calls", "Here:\n\n<｜DSML｜function_calls", [], id="partial-opener-at-end-is-text"),
]


@pytest.mark.parametrize(("text", "content", "calls"), MARKUP_CASES)
def test_markup_robustness(text, content, calls):
    _, got_content, got_calls = assert_agree(text)
    assert got_content == content
    assert [(name, json.loads(args)) for name, args in got_calls] == calls


def test_unknown_tool_forwarded_when_host_says_so(monkeypatch):
    monkeypatch.setenv("SGLANG_FORWARD_UNKNOWN_TOOLS", "true")
    text = block(invoke("nope", ("x", "1", "false")), invoke("now"))
    _, _, calls = assert_agree(text, splits=3)
    assert calls == [("nope", '{"x": 1}'), ("now", "{}")]
    items = FunctionCallParser(TOOLS, "deepseekv32").parse_non_stream(text)[1]
    assert [i.tool_index for i in items] == [-1, 1]  # one-shot: position in the request's tools


def test_arguments_stream_incrementally():
    code = "print('hello')\n" * 20
    text = block(invoke("get_weather", ("code", code, "true"), ("days", "3", "false")))
    detector = DeepSeekV32Detector()
    pieces, names = [], []
    for i in range(0, len(text), 7):
        for item in detector.parse_streaming_increment(text[i:i + 7], TOOLS).calls:
            (names if item.name else pieces).append(item.name or item.parameters)
    pieces += [i.parameters for i in detector.finish(TOOLS).calls]
    assert names == ["get_weather"]
    assert len(pieces) > 30  # the code value arrives in pieces, not as one finished call
    assert json.loads("".join(pieces)) == {"code": code, "days": 3}
    prefix = ""
    for piece in pieces[:-1]:  # every partial concatenation is a prefix of valid JSON, unfinished
        prefix += piece
        assert isinstance(partial_json_parser.loads(prefix), dict)
        with pytest.raises(json.JSONDecodeError):
            json.loads(prefix)


def test_host_unstreamed_args_check_sends_nothing_extra():
    from sglang.srt.entrypoints.openai.serving_chat import OpenAIServingChat

    text = block(invoke("get_weather", ("city", "A", "true"))).removesuffix("</｜DSML｜invoke>\n" + E)
    parser = FunctionCallParser(TOOLS, "deepseekv32")
    parser.parse_stream_chunk(text)
    parser.parse_stream_end()
    assert OpenAIServingChat._check_for_unstreamed_tool_args(None, parser, {}, None, 0, 0) is None


def test_no_tools_in_request_leaves_text_alone():
    text = block(invoke("now"))
    assert one_shot(text, []) == ("", text, [])


# sglang 0.5.23's in-tree detector on the same inputs: the defects this plugin fixes.


def _intree(text, tools=TOOLS):
    detector = InTreeDetector()
    return [(c.name, json.loads(c.parameters)) for c in detector.detect_and_parse(text, tools).calls]


def test_intree_defects_fixed():
    verbatim = block(invoke("get_weather", ("city", "  two spaces\n", "true")))
    assert _intree(verbatim) == [("get_weather", {"city": "two spaces"})]  # stripped
    assert json.loads(one_shot(verbatim, TOOLS)[2][0][1]) == {"city": "  two spaces\n"}

    typed = block(invoke("get_weather", ("days", "42", "true"), ("city", "7", "false")))
    assert _intree(typed) == [("get_weather", {"days": "42", "city": 7})]  # no schema
    assert json.loads(one_shot(typed, TOOLS)[2][0][1]) == {"days": 42, "city": "7"}

    unclosed = block(invoke("now")).removesuffix(E)
    assert _intree(unclosed) == []  # dropped one-shot, yet emitted when streamed
    assert one_shot(unclosed, TOOLS)[2] == [("now", "{}")]

    unknown = block(invoke("nope"))
    streamed_intree = InTreeDetector().parse_streaming_increment(unknown, TOOLS).calls
    assert [c.name for c in streamed_intree] == ["nope"] and _intree(unknown) == []
    assert streamed(unknown, TOOLS, [10])[2] == one_shot(unknown, TOOLS)[2] == []
