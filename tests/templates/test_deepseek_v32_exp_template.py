"""templates/deepseek_v32_exp.jinja: DeepSeek-V3.1-style prompts for DeepSeek-V3.2-Exp.

Expected strings are written out from the V3.1 / V3.2-Exp model card and official
template behaviour; tool-call turns are also read back with sglang's in-tree
``deepseekv31`` detector, the parser V3.2-Exp is served with.
"""

import copy
import json
import types

import jinja2
import pytest

from dsv32_plugin import templates
from dsv32_plugin.testing.tiny_tokenizer import load_tokenizer, save_tokenizer

BOS = "<｜begin▁of▁sentence｜>"
EOS = "<｜end▁of▁sentence｜>"
U, A = "<｜User｜>", "<｜Assistant｜>"

WEATHER = {"type": "function", "function": {"name": "get_weather", "description": "Weather of a city",
                                            "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}}
TIME = {"type": "function", "function": {"name": "now", "description": "Current time", "parameters": {"type": "object", "properties": {}}}}

TOOLS_TEXT = (
    "\n\n## Tools\nYou have access to the following tools:\n"
    "\n### get_weather\nDescription: Weather of a city\n\n"
    'Parameters: {"type": "object", "properties": {"city": {"type": "string"}}}\n'
    "\n### now\nDescription: Current time\n\n"
    'Parameters: {"type": "object", "properties": {}}\n'
    "\nIMPORTANT: ALWAYS adhere to this exact format for tool use:\n"
    "<｜tool▁calls▁begin｜><｜tool▁call▁begin｜>tool_call_name<｜tool▁sep｜>tool_call_arguments"
    "<｜tool▁call▁end｜>{{additional_tool_calls}}<｜tool▁calls▁end｜>\n\n"
    "Where:\n"
    "- `tool_call_name` must be an exact match to one of the available tools\n"
    "- `tool_call_arguments` must be valid JSON that strictly follows the tool's Parameters Schema\n"
    "- For multiple tool calls, chain them directly without separators or spaces\n"
)

CALL_TURN = [
    {"role": "system", "content": "S"},
    {"role": "user", "content": "Weather in Paris and the time?"},
    {"role": "assistant", "content": None, "reasoning_content": "dropped",
     "tool_calls": [{"id": "a", "type": "function", "function": {"name": "get_weather", "arguments": {"city": "Paris"}}},
                    {"id": "b", "type": "function", "function": {"name": "now", "arguments": "{}"}}]},
    {"role": "tool", "tool_call_id": "a", "content": "21C"},
    {"role": "tool", "tool_call_id": "b", "content": "noon"},
]
CALLS_TEXT = (
    "<｜tool▁calls▁begin｜>"
    '<｜tool▁call▁begin｜>get_weather<｜tool▁sep｜>{"city": "Paris"}<｜tool▁call▁end｜>'
    "<｜tool▁call▁begin｜>now<｜tool▁sep｜>{}<｜tool▁call▁end｜>"
    "<｜tool▁calls▁end｜>" + EOS
)


@pytest.fixture(scope="module")
def tokenizer(tmp_path_factory):
    from sglang.srt.parser.template_manager import TemplateManager

    tok = load_tokenizer(tmp_path_factory.mktemp("tok"))
    TemplateManager()._load_jinja_template(types.SimpleNamespace(tokenizer=tok), templates.path("deepseek_v32_exp.jinja"))
    return tok


def render(tokenizer, messages, tools=None, add_generation_prompt=True, **kwargs):
    return tokenizer.apply_chat_template(copy.deepcopy(messages), tools=tools, tokenize=False,
                                         add_generation_prompt=add_generation_prompt, **kwargs)


CASES = [
    pytest.param([{"role": "system", "content": "S"}, {"role": "user", "content": "hi"}], {},
                 BOS + "S" + U + "hi" + A + "</think>", id="chat"),
    pytest.param([{"role": "user", "content": "hi"}], {"thinking": True}, BOS + U + "hi" + A + "<think>", id="thinking"),
    pytest.param([{"role": "system", "content": "S1"}, {"role": "system", "content": "S2"}, {"role": "user", "content": "q"}],
                 {}, BOS + "S1\n\nS2" + U + "q" + A + "</think>", id="two-system-prompts"),
    pytest.param([{"role": "user", "content": "q1"}, {"role": "assistant", "content": "<think>r</think>a1", "reasoning_content": "r"},
                  {"role": "user", "content": "q2"}], {"thinking": True},
                 BOS + U + "q1" + A + "</think>" + "a1" + EOS + U + "q2" + A + "<think>", id="multi-turn-thinking-dropped"),
    pytest.param(CALL_TURN, {}, BOS + "S" + U + "Weather in Paris and the time?" + A + "</think>" + CALLS_TEXT
                 + "<｜tool▁output▁begin｜>21C<｜tool▁output▁end｜><｜tool▁output▁begin｜>noon<｜tool▁output▁end｜>",
                 id="tool-calls-and-results-no-generation-prompt"),
    pytest.param(CALL_TURN + [{"role": "assistant", "content": "It is 21C at noon."}], {},
                 BOS + "S" + U + "Weather in Paris and the time?" + A + "</think>" + CALLS_TEXT
                 + "<｜tool▁output▁begin｜>21C<｜tool▁output▁end｜><｜tool▁output▁begin｜>noon<｜tool▁output▁end｜>"
                 + "It is 21C at noon." + EOS, id="answer-after-tool-results"),
]


@pytest.mark.parametrize(("messages", "kwargs", "expected"), CASES)
def test_known_good_prompts(tokenizer, messages, kwargs, expected):
    assert render(tokenizer, messages, **kwargs) == expected


def test_tools_block_follows_the_system_prompt(tokenizer):
    messages = [{"role": "system", "content": "S"}, {"role": "user", "content": "q"}]
    assert render(tokenizer, messages, tools=[WEATHER, TIME]) == BOS + "S" + TOOLS_TEXT + U + "q" + A + "</think>"


def test_rendered_tool_calls_parse_back_with_the_v31_detector(tokenizer):
    from sglang.srt.entrypoints.openai.protocol import Tool
    from sglang.srt.function_call.deepseekv31_detector import DeepSeekV31Detector

    prompt = render(tokenizer, CALL_TURN[:3], add_generation_prompt=False)
    turn = prompt[prompt.index(A + "</think>") + len(A + "</think>") : -len(EOS)]
    result = DeepSeekV31Detector().detect_and_parse(turn, [Tool(**WEATHER), Tool(**TIME)])
    assert [(c.name, json.loads(c.parameters)) for c in result.calls] == [("get_weather", {"city": "Paris"}), ("now", {})]
    assert result.normal_text == ""


def test_unknown_role_is_refused(tokenizer):
    with pytest.raises(jinja2.TemplateError, match="developer"):
        render(tokenizer, [{"role": "developer", "content": "x"}])


@pytest.mark.parametrize(("messages", "kwargs", "expected"), CASES)
def test_tiny_v32_exp_tokenizer_renders_the_same_from_tokenizer_config(tmp_path, messages, kwargs, expected):
    # The tiny v32-exp checkpoint ships this file raw in tokenizer_config.json (the HF way,
    # no sglang newline rewriting): it must render the same.
    from transformers import AutoTokenizer

    from dsv32_plugin.testing.tiny_checkpoint import exp_chat_template

    save_tokenizer(tmp_path, chat_template=exp_chat_template())
    assert render(AutoTokenizer.from_pretrained(str(tmp_path)), messages, **kwargs) == expected
