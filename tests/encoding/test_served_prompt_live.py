"""A real stock ``sglang.launch_server`` (CPU, tiny Llama with the V3.2 tokenizer) serves the plugin's prompt.

``--tool-call-parser deepseekv32`` selects the dsv32 encoder path whatever the
architecture, so the prompt route is exercised end to end, through the host's
own plugin loading and hook application, independently of the V3.2 model.
"""

import pytest
from transformers import AutoTokenizer

from dsv32_plugin.encoding import encode_messages
from dsv32_plugin.testing.server import launch
from dsv32_plugin.testing.tiny_llama import make_tiny_llama

pytestmark = pytest.mark.server

TOOLS = [{"type": "function", "function": {"name": "get_weather", "description": "Weather of a city",
                                           "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}}]
MESSAGES = [
    {"role": "user", "content": "Weather in Paris?"},
    {"role": "assistant", "content": "", "reasoning_content": "Use the tool.", "tool_calls": [
        {"id": "c1", "type": "function", "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'}}]},
    {"role": "tool", "tool_call_id": "c1", "content": "21C"},
]


def chat(server, **fields):
    body = {"model": "m", "max_tokens": 1, "temperature": 0, "return_prompt_token_ids": True, **fields}
    return server.post("/v1/chat/completions", body)


def test_live_server_serves_the_plugin_prompt(tmp_path):
    # One launch (minutes on 2 CPU cores); the Speciale policy runs the same hook mechanism and is
    # covered against the host's real serving class in test_serving_prompt.py.
    model = make_tiny_llama(tmp_path / "tiny-llama")
    tokenizer = AutoTokenizer.from_pretrained(str(model))
    flags = ("--tool-call-parser", "deepseekv32", "--reasoning-parser", "deepseek-v3")
    with launch(model, tmp_path, *flags) as server:
        status, body = chat(server, messages=MESSAGES, tools=TOOLS, chat_template_kwargs={"thinking": True})
        assert status == 200, body
        expected = encode_messages(MESSAGES, tools=TOOLS, thinking=True)
        # Official text (tools block with its blank lines), one BOS.
        assert body["choices"][0]["prompt_token_ids"] == tokenizer.encode(expected, add_special_tokens=False)
