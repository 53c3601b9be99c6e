"""Pin how the plugin's encoder differs from sglang 0.5.23's in-tree encoding_dsv32."""

import copy
import difflib
import inspect
import json
import pathlib

import pytest

from dsv32_plugin.encoding import encode_messages

intree_module = pytest.importorskip("sglang.srt.entrypoints.openai.encoding_dsv32")


def intree_encode(messages, thinking_mode):
    # Resolved at call time: once the plugin's hook is applied in this process the module
    # attribute is the plugin's wrapper (and the hook registry rebinds any module global
    # that held the original), so unwrap to the in-tree function.
    return inspect.unwrap(intree_module.encode_messages)(messages, thinking_mode)

DATA = pathlib.Path(__file__).parent / "data"

NO_TOOLS = [
    {"role": "system", "content": "S"},
    {"role": "user", "content": "a"},
    {"role": "assistant", "content": "c1", "reasoning_content": "r1"},
    {"role": "user", "content": "b"},
    {"role": "assistant", "reasoning_content": "r2", "tool_calls": [
        {"type": "function", "function": {"name": "f", "arguments": '{"p": "x\\n", "n": [1]}'}}]},
    {"role": "tool", "content": "out"},
]


@pytest.mark.parametrize("thinking", [False, True], ids=["chat", "thinking"])
def test_same_as_intree_without_tools(thinking):
    mode = "thinking" if thinking else "chat"
    assert encode_messages(NO_TOOLS, thinking=thinking) == intree_encode(copy.deepcopy(NO_TOOLS), mode)


def test_intree_tools_block_lacks_seven_blank_lines():
    sample = json.loads((DATA / "test_input.json").read_text(encoding="utf-8"))
    ours = encode_messages(sample["messages"], tools=sample["tools"], thinking=True)
    messages = copy.deepcopy(sample["messages"])
    messages[0]["tools"] = sample["tools"]
    theirs = intree_encode(messages, "thinking")
    ops = [op for op in difflib.SequenceMatcher(None, theirs, ours, autojunk=False).get_opcodes() if op[0] != "equal"]
    assert [op[0] for op in ops] == ["insert"] * 7
    assert all(ours[j1:j2] == "\n" for _, _, _, j1, j2 in ops)
    tools_end = ours.index("</functions>")
    assert all(j2 <= tools_end for *_, j2 in ops)
