"""encode_messages against hand-written golden prompts (docs/chat_format.md, format table).

Token literals are spelled out here rather than imported, so a typo in the
encoder's token table fails these tests.
"""

import copy
import json
import pathlib

import pytest

from dsv32_plugin.encoding import EncodingError, encode_messages

BOS = "<｜begin▁of▁sentence｜>"
EOS = "<｜end▁of▁sentence｜>"
U = "<｜User｜>"
A = "<｜Assistant｜>"
FC_OPEN = "<｜DSML｜function_calls>"
FC_CLOSE = "</｜DSML｜function_calls>"

DATA = pathlib.Path(__file__).parent / "data"


def official_tools_block() -> tuple[list, str]:
    """The weather sample's tools and the tools block DeepSeek rendered for them."""
    sample = json.loads((DATA / "test_input.json").read_text(encoding="utf-8"))
    output = (DATA / "test_output.txt").read_text(encoding="utf-8")
    system = sample["messages"][0]["content"] + "\n\n"
    assert output.startswith(BOS + system)
    block = output[len(BOS + system) : output.index(U)]
    return sample["tools"], block


def call(name, arguments, call_id="c"):
    return {"id": call_id, "type": "function", "function": {"name": name, "arguments": arguments}}


def test_chat_turn_thinking_off_and_on():
    messages = [{"role": "system", "content": "S"}, {"role": "user", "content": "hi"}]
    assert encode_messages(messages) == BOS + "S" + U + "hi" + A + "</think>"
    assert encode_messages(messages, thinking=True) == BOS + "S" + U + "hi" + A + "<think>"


def test_earlier_reasoning_is_dropped():
    messages = [
        {"role": "user", "content": "a"},
        {"role": "assistant", "content": "c1", "reasoning_content": "r1"},
        {"role": "user", "content": "b"},
    ]
    expected = BOS + U + "a" + A + "</think>" + "c1" + EOS + U + "b" + A
    assert encode_messages(messages, thinking=True) == expected + "<think>"
    assert encode_messages(messages, thinking=False) == expected + "</think>"


AGENTIC = [
    {"role": "user", "content": "q"},
    {
        "role": "assistant",
        "content": "",
        "reasoning_content": "r",
        "tool_calls": [call("get", '{"x": 1, "s": "a b"}')],
    },
    {"role": "tool", "tool_call_id": "c", "content": "res"},
]
AGENTIC_CALL = (
    "\n\n" + FC_OPEN + "\n"
    '<｜DSML｜invoke name="get">\n'
    '<｜DSML｜parameter name="x" string="false">1</｜DSML｜parameter>\n'
    '<｜DSML｜parameter name="s" string="true">a b</｜DSML｜parameter>\n'
    "</｜DSML｜invoke>\n" + FC_CLOSE + EOS
)
AGENTIC_RESULT = "\n\n<function_results>\n<result>res</result>\n</function_results>\n\n"


def test_agentic_turn_keeps_reasoning_in_thinking_mode():
    expected = BOS + U + "q" + A + "<think>" + "r</think>" + AGENTIC_CALL + AGENTIC_RESULT + "<think>"
    assert encode_messages(AGENTIC, thinking=True) == expected


def test_agentic_turn_in_chat_mode():
    expected = BOS + U + "q" + A + "</think>" + AGENTIC_CALL + AGENTIC_RESULT + "</think>"
    assert encode_messages(AGENTIC, thinking=False) == expected


def test_tool_results_are_grouped_per_assistant_turn():
    messages = [
        {"role": "user", "content": "q"},
        {"role": "assistant", "tool_calls": [call("f", "{}"), call("g", {"k": [1, 2]})]},
        {"role": "tool", "content": "one"},
        {"role": "tool", "content": "two"},
        {"role": "assistant", "content": "done"},
    ]
    expected = (
        BOS + U + "q" + A + "</think>"
        + "\n\n" + FC_OPEN + "\n"
        + '<｜DSML｜invoke name="f">\n\n</｜DSML｜invoke>\n'
        + '<｜DSML｜invoke name="g">\n<｜DSML｜parameter name="k" string="false">[1, 2]</｜DSML｜parameter>\n</｜DSML｜invoke>\n'
        + FC_CLOSE + EOS
        + "\n\n<function_results>\n<result>one</result>\n<result>two</result>\n</function_results>\n\n</think>"
        + "done" + EOS
    )
    assert encode_messages(messages) == expected


@pytest.mark.parametrize(
    ("value", "rendered", "is_string"),
    [
        pytest.param("  leading and trailing  \n", "  leading and trailing  \n", "true", id="string-verbatim"),
        pytest.param('quote " and <tag> & \\', 'quote " and <tag> & \\', "true", id="string-unescaped"),
        pytest.param("", "", "true", id="empty-string"),
        pytest.param("汉字 ü", "汉字 ü", "true", id="unicode-string"),
        pytest.param(-2.5, "-2.5", "false", id="float"),
        pytest.param(True, "true", "false", id="bool"),
        pytest.param(None, "null", "false", id="null"),
        pytest.param({"a": {"b": ["x", 1]}}, '{"a": {"b": ["x", 1]}}', "false", id="object"),
        pytest.param(["é", None], '["é", null]', "false", id="array-unicode"),
    ],
)
def test_parameter_values(value, rendered, is_string):
    messages = [{"role": "user", "content": "q"}, {"role": "assistant", "tool_calls": [call("f", {"v": value})]}]
    expected_param = f'<｜DSML｜parameter name="v" string="{is_string}">{rendered}</｜DSML｜parameter>'
    assert f'<｜DSML｜invoke name="f">\n{expected_param}\n</｜DSML｜invoke>' in encode_messages(messages)
    as_json = [{"role": "user", "content": "q"}, {"role": "assistant", "tool_calls": [call("f", json.dumps({"v": value}))]}]
    assert encode_messages(as_json) == encode_messages(messages)


def test_tools_argument_inserts_empty_system_message():
    tools, block = official_tools_block()
    messages = [{"role": "user", "content": "q"}]
    assert encode_messages(messages, tools=tools) == BOS + "\n\n" + block + U + "q" + A + "</think>"


def test_tools_argument_goes_on_existing_system_message():
    tools, block = official_tools_block()
    messages = [{"role": "system", "content": "S"}, {"role": "user", "content": "q"}]
    assert encode_messages(messages, tools=tools) == BOS + "S\n\n" + block + U + "q" + A + "</think>"


def test_developer_turn_with_tools_and_response_format():
    tools, block = official_tools_block()
    fmt = {"type": "json_object"}
    messages = [{"role": "developer", "content": "do it", "tools": tools, "response_format": fmt}]
    expected = (
        BOS + U + "\n\n" + block
        + "\n\n## Response Format:\n\nYou MUST strictly adhere to the following schema to reply:\n"
        + '{"type": "json_object"}'
        + "\n\n# The user's message is: do it" + A + "<think>"
    )
    assert encode_messages(messages, thinking=True) == expected


def test_system_response_format():
    fmt = {"type": "json_schema", "json_schema": {"name": "n", "schema": {"type": "object"}}}
    messages = [{"role": "system", "content": "S", "response_format": fmt}, {"role": "user", "content": "q"}]
    expected = (
        BOS + "S\n\n## Response Format:\n\nYou MUST strictly adhere to the following schema to reply:\n"
        + json.dumps(fmt) + U + "q" + A + "</think>"
    )
    assert encode_messages(messages) == expected


def test_missing_arguments_render_an_empty_invoke():
    messages = [{"role": "assistant", "tool_calls": [call("f", None)]}]
    assert encode_messages(messages) == encode_messages([{"role": "assistant", "tool_calls": [call("f", {})]}])
    assert '<｜DSML｜invoke name="f">\n\n</｜DSML｜invoke>' in encode_messages(messages)


def test_none_content_renders_empty():
    messages = [{"role": "user", "content": None}, {"role": "assistant", "content": None}]
    assert encode_messages(messages) == BOS + U + A + "</think>" + EOS


def test_assistant_without_reasoning_after_last_user_in_thinking_mode():
    # The official encoder raises here; clients that drop reasoning_content get a safe prompt.
    messages = [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}]
    assert encode_messages(messages, thinking=True) == BOS + U + "q" + A + "<think>" + "</think>a" + EOS


@pytest.mark.parametrize(
    ("messages", "ending"),
    [
        pytest.param([{"role": "user", "content": "hi"}], U + "hi", id="user"),
        pytest.param(AGENTIC, "</result>\n</function_results>", id="tool-group-closed"),
        pytest.param(AGENTIC[:2], FC_CLOSE + EOS, id="assistant"),
    ],
)
def test_without_generation_prompt_the_last_hand_over_is_left_off(messages, ending):
    prompt = encode_messages(messages, thinking=True, add_generation_prompt=False)
    assert prompt.endswith(ending)
    full = encode_messages(messages, thinking=True)
    assert full.startswith(prompt)
    assert full[len(prompt) :] in ("", A + "<think>", "\n\n<think>")


def test_input_is_not_mutated():
    tools, _ = official_tools_block()
    messages = [{"role": "system", "content": "S"}] + copy.deepcopy(AGENTIC)
    before, tools_before = copy.deepcopy(messages), copy.deepcopy(tools)
    encode_messages(messages, tools=tools, thinking=True)
    encode_messages(messages[1:], tools=tools, thinking=False)
    assert messages == before and tools == tools_before


@pytest.mark.parametrize(
    ("messages", "tools", "match"),
    [
        pytest.param([{"role": "tool", "content": "x"}], None, "tool result", id="tool-first"),
        pytest.param([{"role": "user", "content": "q"}, {"role": "tool", "content": "x"}], None, "tool result", id="tool-after-user"),
        pytest.param(AGENTIC + [{"role": "tool", "content": "extra"}], None, "tool result", id="more-results-than-calls"),
        pytest.param([{"role": "developer", "content": ""}], None, "developer", id="empty-developer"),
        pytest.param([{"role": "wizard", "content": "x"}], None, "unknown role", id="unknown-role"),
        pytest.param(["hi"], None, "dict", id="not-a-dict"),
        pytest.param([{"role": "user", "content": [{"type": "text", "text": "x"}]}], None, "string", id="parts-content"),
        pytest.param([{"role": "assistant", "tool_calls": [call("f", "{bad")]}], None, "JSON", id="bad-json-arguments"),
        pytest.param([{"role": "assistant", "tool_calls": [call("f", "[1]")]}], None, "object", id="array-arguments"),
        pytest.param([{"role": "assistant", "tool_calls": [{"function": {"arguments": "{}"}}]}], None, "name", id="nameless-call"),
        pytest.param([{"role": "assistant", "tool_calls": [call("f", {"v": object()})]}], None, "serializable", id="unserializable-value"),
        pytest.param([{"role": "system", "content": "", "tools": [{"name": "f"}]}], None, "function", id="tool-not-openai-format"),
        pytest.param([{"role": "system", "content": "", "tools": [{"type": "function", "function": {"name": "f"}}]}], [{"type": "function", "function": {"name": "g"}}], "both", id="tools-twice"),
    ],
)
def test_invalid_conversations_raise_a_clear_error(messages, tools, match):
    with pytest.raises(EncodingError, match=match):
        encode_messages(messages, tools=tools)
    assert issubclass(EncodingError, ValueError)  # sglang turns ValueError into HTTP 400
