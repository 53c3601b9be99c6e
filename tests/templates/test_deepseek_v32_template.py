"""templates/deepseek_v32.jinja renders exactly what encode_messages renders.

The template is loaded the way sglang 0.5.23 loads ``--chat-template`` files
(``TemplateManager._load_jinja_template``: strip newlines, literal backslash-n
-> newline) onto the tiny checkpoint's tokenizer and rendered by transformers'
``apply_chat_template`` with ``tools=[...]`` and ``thinking`` as a template
kwarg; tool-call arguments in history are dicts, as sglang passes them.
"""

import copy
import json
import pathlib
import random
import types

import jinja2
import pytest

from dsv32_plugin import templates
from dsv32_plugin.encoding import EncodingError, encode_messages
from dsv32_plugin.testing.tiny_tokenizer import load_tokenizer, save_tokenizer

DATA = pathlib.Path(__file__).parents[1] / "encoding" / "data"


@pytest.fixture(scope="module")
def tokenizer(tmp_path_factory):
    from sglang.srt.parser.template_manager import TemplateManager

    tok = load_tokenizer(tmp_path_factory.mktemp("tok"))
    manager = TemplateManager()
    manager._load_jinja_template(types.SimpleNamespace(tokenizer=tok), templates.path("deepseek_v32.jinja"))
    assert manager.jinja_template_content_format == "string"  # sglang flattens content parts for us
    return tok


def render(tokenizer, messages, tools=None, thinking=None, add_generation_prompt=True):
    kwargs = {} if thinking is None else {"thinking": thinking}
    return tokenizer.apply_chat_template(
        copy.deepcopy(messages), tools=tools, tokenize=False, add_generation_prompt=add_generation_prompt, **kwargs
    )


def parsed_arguments(messages):
    """History as sglang hands it to templates: arguments parsed from JSON strings to dicts."""
    messages = copy.deepcopy(messages)
    for message in messages:
        for call in message.get("tool_calls") or []:
            if isinstance(call["function"]["arguments"], str):
                call["function"]["arguments"] = json.loads(call["function"]["arguments"])
    return messages


@pytest.mark.parametrize("name", ["test_input.json", "test_input_search_wo_date.json"])
def test_official_samples(tokenizer, name):
    sample = json.loads((DATA / name).read_text(encoding="utf-8"))
    messages = parsed_arguments(sample["messages"])
    expected = encode_messages(sample["messages"], tools=sample.get("tools"), thinking=True)
    assert render(tokenizer, messages, tools=sample.get("tools"), thinking=True) == expected


# ---- many generated conversations -------------------------------------------------------------

TEXTS = ["hi", "", "  spaced  \n", 'quote " and \\ back', "汉字 ü é", "{{ not jinja }} {% x %}", "a\\nb", "line1\nline2"]
VALUES = ["Paris", "", " pad\n", 'q"uote', "汉字", 0, -3, 2.5, True, False, None, [1, "a"], {"k": {"n": [None]}}, []]
TOOLS = [
    {"type": "function", "function": {"name": "get_weather", "description": "Weather", "parameters": {
        "type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}},
    {"type": "function", "function": {"name": "run", "description": "Run code ✓", "parameters": {
        "type": "object", "properties": {"code": {"type": "string"}, "timeout": {"type": "integer"}}}}},
]


def random_call(rng, index):
    arguments = {f"p{i}": rng.choice(VALUES) for i in range(rng.randrange(4))}
    return {"id": f"call_{index}", "type": "function",
            "function": {"name": rng.choice(["get_weather", "run"]), "arguments": arguments}}


def random_conversation(rng):
    """A valid conversation: optional system, then user/developer turns answered by chat or agentic turns."""
    messages = []
    if rng.random() < 0.6:
        system = {"role": "system", "content": rng.choice(TEXTS)}
        if rng.random() < 0.2:
            system["response_format"] = {"type": "json_object"}
        messages.append(system)
    for _ in range(rng.randrange(1, 4)):
        role = "developer" if rng.random() < 0.15 else "user"
        turn = {"role": role, "content": rng.choice([t for t in TEXTS if t]) if role == "developer" else rng.choice(TEXTS)}
        if role == "developer" and rng.random() < 0.5:
            turn["tools"] = TOOLS[: rng.randrange(1, 3)]
        messages.append(turn)
        for _ in range(rng.randrange(3)):  # agentic steps
            calls = [random_call(rng, len(messages) * 10 + i) for i in range(rng.randrange(1, 3))]
            messages.append({"role": "assistant", "content": rng.choice(["", None, "let me check"]),
                             "reasoning_content": rng.choice(["", "thinking…", None]), "tool_calls": calls})
            messages += [{"role": "tool", "tool_call_id": c["id"], "content": rng.choice(TEXTS)} for c in calls]
        if rng.random() < 0.7:
            messages.append({"role": "assistant", "content": rng.choice(TEXTS), "reasoning_content": rng.choice(TEXTS)})
    if rng.random() < 0.5 and messages[-1]["role"] == "assistant":
        messages.append({"role": "user", "content": rng.choice(TEXTS)})
    return messages


@pytest.mark.parametrize("seed", range(60))
def test_generated_conversations(tokenizer, seed):
    rng = random.Random(seed)
    messages = random_conversation(rng)
    tools = TOOLS if rng.random() < 0.5 and not (messages[0]["role"] == "system" and messages[0].get("tools")) else None
    thinking = rng.choice([True, False, None])
    add_generation_prompt = rng.random() < 0.8
    expected = encode_messages(messages, tools=tools, thinking=bool(thinking), add_generation_prompt=add_generation_prompt)
    assert render(tokenizer, messages, tools, thinking, add_generation_prompt) == expected


def test_request_tools_without_system_message(tokenizer):
    messages = [{"role": "user", "content": "q"}]
    rendered = render(tokenizer, messages, tools=TOOLS)
    assert rendered == encode_messages(messages, tools=TOOLS)
    assert rendered.startswith("<｜begin▁of▁sentence｜>\n\n## Tools\n\n")


def test_null_content_and_arguments(tokenizer):
    messages = [{"role": "user", "content": None},
                {"role": "assistant", "content": None, "tool_calls": [{"function": {"name": "f", "arguments": None}}]},
                {"role": "tool", "content": None}]
    assert render(tokenizer, messages, thinking=True) == encode_messages(messages, thinking=True)


def test_thinking_defaults_off(tokenizer):
    messages = [{"role": "user", "content": "q"}]
    assert render(tokenizer, messages).endswith("<｜Assistant｜></think>")
    assert render(tokenizer, messages, thinking=True).endswith("<｜Assistant｜><think>")


@pytest.mark.parametrize(
    "messages",
    [
        pytest.param([{"role": "tool", "content": "x"}], id="tool-without-call"),
        pytest.param([{"role": "developer", "content": ""}], id="empty-developer"),
        pytest.param([{"role": "wizard", "content": "x"}], id="unknown-role"),
        pytest.param([{"role": "assistant", "tool_calls": [{"function": {"name": "f", "arguments": [1]}}]}], id="list-arguments"),
        pytest.param([{"role": "user", "content": 5}], id="non-string-content"),
    ],
)
def test_invalid_conversations_fail_in_both(tokenizer, messages):
    with pytest.raises(EncodingError):
        encode_messages(messages)
    with pytest.raises(jinja2.TemplateError):  # sglang answers these with 400
        render(tokenizer, messages)


def test_string_arguments_are_refused_by_the_template(tokenizer):
    # Jinja cannot parse JSON; sglang always parses history arguments before rendering.
    messages = [{"role": "user", "content": "q"},
                {"role": "assistant", "tool_calls": [{"function": {"name": "f", "arguments": "{}"}}]}]
    with pytest.raises(jinja2.TemplateError, match="mapping"):
        render(tokenizer, messages)


@pytest.mark.parametrize("seed", range(5))
def test_raw_file_in_tokenizer_config_renders_the_same(tmp_path, tokenizer, seed):
    # Shipped in tokenizer_config.json as is (the HF way, no sglang newline rewriting).
    from transformers import AutoTokenizer

    save_tokenizer(tmp_path, chat_template=pathlib.Path(templates.path("deepseek_v32.jinja")).read_text())
    raw = AutoTokenizer.from_pretrained(str(tmp_path))
    messages = random_conversation(random.Random(seed))
    assert render(raw, messages, TOOLS, True) == render(tokenizer, messages, TOOLS, True)
