"""decode_output inverts the encoder's assistant turns and never raises."""

import json
import pathlib
import random

import pytest

from dsv32_plugin.encoding import decode_output, encode_messages

DATA = pathlib.Path(__file__).parent / "data"
EOS = "<｜end▁of▁sentence｜>"


def rendered_turn(assistant: dict, thinking: bool) -> str:
    """The model text of ``assistant`` as the encoder renders it after a user turn."""
    user = [{"role": "user", "content": "q"}]
    return encode_messages(user + [assistant], thinking=thinking)[len(encode_messages(user, thinking=thinking)) :]


def expected_calls(assistant: dict) -> list:
    return [
        {"type": "function", "function": {"name": c["function"]["name"],
                                          "arguments": json.dumps(c["function"]["arguments"], ensure_ascii=False)}}
        for c in assistant.get("tool_calls") or []
    ]


VALUES = ["Paris", "", " pad\n\n", 'q"uote <b>', "汉字", 0, -3, 2.5e-7, True, None, [1, "a"], {"k": {"n": [None]}}]
CONTENTS = ["", "Answer.", "two\n\nparagraphs", "trailing blank\n\n", "  lead", "汉字 ✓"]


def random_assistant(rng):
    message = {"role": "assistant", "content": rng.choice(CONTENTS), "reasoning_content": rng.choice(CONTENTS[1:])}
    if rng.random() < 0.7:
        message["tool_calls"] = [
            {"type": "function", "function": {"name": rng.choice(["f", "get_weather", "run_code"]),
                                              "arguments": {f"p{i}": rng.choice(VALUES) for i in range(rng.randrange(4))}}}
            for _ in range(rng.randrange(1, 3))
        ]
    return message


@pytest.mark.parametrize("thinking", [True, False], ids=["thinking", "chat"])
@pytest.mark.parametrize("seed", range(25))
def test_round_trip(seed, thinking):
    assistant = random_assistant(random.Random(seed))
    content, reasoning, calls = decode_output(rendered_turn(assistant, thinking), thinking)
    assert content == assistant["content"]
    assert reasoning == (assistant["reasoning_content"] if thinking else "")
    assert calls == expected_calls(assistant)


def test_official_sample_final_turns():
    sample = json.loads((DATA / "test_input.json").read_text(encoding="utf-8"))
    output = (DATA / "test_output.txt").read_text(encoding="utf-8").removesuffix("\n")
    # The last agentic turn: assistant(tool calls) after the last user turn, rendered after "<think>".
    start = output.rindex("<｜Assistant｜><think>") + len("<｜Assistant｜><think>")
    turn = output[start : output.index(EOS, start) + len(EOS)]
    content, reasoning, calls = decode_output(turn, thinking=True)
    message = sample["messages"][-4]
    assert reasoning == message["reasoning_content"] and content == ""
    assert [(c["function"]["name"], json.loads(c["function"]["arguments"])) for c in calls] == [
        (c["function"]["name"], json.loads(c["function"]["arguments"])) for c in message["tool_calls"]]


BLOCK = '\n\n<｜DSML｜function_calls>\n<｜DSML｜invoke name="f">\n<｜DSML｜parameter name="x" string="false">1</｜DSML｜parameter>\n</｜DSML｜invoke>\n</｜DSML｜function_calls>'


@pytest.mark.parametrize(
    ("text", "thinking", "expected"),
    [
        pytest.param("still thinking", True, ("", "still thinking", 0), id="cut-off-in-reasoning"),
        pytest.param("plan" + BLOCK, True, ("", "plan", 1), id="block-inside-unclosed-thinking"),
        pytest.param("r</think>" + "x" + EOS, True, ("x", "r", 0), id="plain-answer"),
        pytest.param("no think tags" + EOS, False, ("no think tags", "", 0), id="chat-mode"),
        pytest.param('<｜DSML｜invoke name="f">\n<｜DSML｜parameter name="x" string="false">not json</｜DSML｜parameter>\n</｜DSML｜invoke>',
                     False, ("", "", 1), id="bare-invoke-non-json-value"),
    ],
)
def test_lenient_decoding(text, thinking, expected):
    content, reasoning, calls = decode_output(text, thinking)
    assert (content, reasoning, len(calls)) == expected
    for call in calls:
        assert isinstance(json.loads(call["function"]["arguments"]), dict)


def test_non_json_value_is_kept_as_text():
    text = '<｜DSML｜invoke name="f">\n<｜DSML｜parameter name="x" string="false">Привет</｜DSML｜parameter>\n</｜DSML｜invoke>'
    _, _, calls = decode_output(text, thinking=False)
    assert json.loads(calls[0]["function"]["arguments"]) == {"x": "Привет"}


@pytest.mark.parametrize("seed", range(4))
def test_mutated_outputs_never_raise(seed):
    rng = random.Random(seed)
    base = rendered_turn(random_assistant(rng) | {"tool_calls": [{"function": {"name": "f", "arguments": {"a": "x", "b": [1]}}}]}, True)
    for _ in range(250):
        chars = list(base)
        for _ in range(rng.randrange(1, 6)):
            i = rng.randrange(len(chars))
            op = rng.random()
            if op < 0.4:
                del chars[i]
            elif op < 0.7:
                chars.insert(i, rng.choice("<>/\"=｜\n{}"))
            else:
                chars[i:] = chars[i : i + rng.randrange(1, 40)]  # truncate mid-way
        content, reasoning, calls = decode_output("".join(chars), rng.random() < 0.5)
        assert isinstance(content, str) and isinstance(reasoning, str)
        for call in calls:
            assert isinstance(json.loads(call["function"]["arguments"]), dict)
