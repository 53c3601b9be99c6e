"""Drive sglang 0.5.23's OpenAI chat serving code end to end with the plugin's parsers.

``OpenAIServingChat`` builds the prompt (``_process_messages``, the tiny
checkpoint's tokenizer) and the responses: ``_handle_non_streaming_request``
and ``_generate_chat_stream``, with the tokenizer manager's
``generate_request`` replaced by canned model output.  The parsed
``ChatCompletionResponse`` and the reassembled SSE stream must carry the same
content, reasoning, tool calls and finish reason.
"""

import asyncio
import json
import types

import pytest
from sglang.srt.entrypoints.openai import serving_chat
from sglang.srt.entrypoints.openai.protocol import ChatCompletionRequest, ChatCompletionResponse
from sglang.srt.parser.template_manager import TemplateManager

from dsv32_plugin.testing.tiny_tokenizer import load_tokenizer

TOOLS = [{"type": "function", "function": {"name": "get_weather", "parameters": {
    "type": "object", "properties": {"city": {"type": "string"}, "days": {"type": "integer"}}}}}]
MESSAGES = [{"role": "user", "content": "Weather in Oslo and Rome?"}]
DSML = ('\n\n<｜DSML｜function_calls>\n'
        '<｜DSML｜invoke name="get_weather">\n<｜DSML｜parameter name="city" string="true">Oslo</｜DSML｜parameter>\n'
        '<｜DSML｜parameter name="days" string="true">2</｜DSML｜parameter>\n</｜DSML｜invoke>\n'
        '<｜DSML｜invoke name="get_weather">\n<｜DSML｜parameter name="city" string="true"> Rome </｜DSML｜parameter>\n'
        '</｜DSML｜invoke>\n</｜DSML｜function_calls>')
V31 = ('<｜tool▁calls▁begin｜><｜tool▁call▁begin｜>get_weather<｜tool▁sep｜>{"city": "Oslo", "days": "2"}<｜tool▁call▁end｜>'
       '<｜tool▁call▁begin｜>get_weather<｜tool▁sep｜>{"city": " Rome "}<｜tool▁call▁end｜><｜tool▁calls▁end｜>')
CALLS = [("get_weather", {"city": "Oslo", "days": 2}), ("get_weather", {"city": " Rome "})]


@pytest.fixture(scope="module")
def tokenizer(tmp_path_factory):
    return load_tokenizer(tmp_path_factory.mktemp("tok") / "DeepSeek-V3.2-tiny")


class _ServingConfig(types.SimpleNamespace):
    """Stand-in for the serving config a launched server publishes: unset flags read as None."""

    def __getattr__(self, name):
        return None


def make_serving(tokenizer, monkeypatch, tool_call_parser, outputs):
    config = _ServingConfig(enable_cache_report=False, incremental_streaming_output=False)
    monkeypatch.setattr(serving_chat, "get_serving", lambda: config)
    hf_config = types.SimpleNamespace(architectures=["DeepseekV32ForCausalLM"], model_type="deepseek_v32",
                                      name_or_path="deepseek-ai/DeepSeek-V3.2")
    model_config = types.SimpleNamespace(hf_config=hf_config, is_multimodal=False, get_default_sampling_params=lambda: {})
    values = {"tool_call_parser": tool_call_parser, "reasoning_parser": "deepseek-v3"}

    async def generate_request(adapted_request, raw_request):
        for output in outputs:
            yield output

    manager = types.SimpleNamespace(tokenizer=tokenizer, model_config=model_config, config_value=values.get,
                                    server_args=None, model_path="m", served_model_name="m",
                                    generate_request=generate_request)
    return serving_chat.OpenAIServingChat(manager, TemplateManager())


def generation(text, cuts):
    """Cumulative-text chunks as the tokenizer manager streams them; the last one finishes."""
    bounds = [c for c in cuts if 0 < c < len(text)] + [len(text)]
    return [{"text": text[:end], "output_ids": [], "meta_info": {
        "id": "chatcmpl-1", "weight_version": "default", "prompt_tokens": 5, "completion_tokens": i + 1, "cached_tokens": 0,
        "finish_reason": {"type": "stop", "matched": 1} if end == len(text) else None}}
        for i, end in enumerate(bounds)]


def reassemble(sse_lines):
    """(content, reasoning, [(id, name, arguments)], finish_reason) from an SSE stream."""
    content, reasoning, calls, finish = "", "", {}, None
    for line in sse_lines:
        if not line.startswith("data: {"):
            continue
        for choice in json.loads(line[6:])["choices"]:
            delta = choice["delta"]
            content += delta.get("content") or ""
            reasoning += delta.get("reasoning_content") or ""
            for call in delta.get("tool_calls") or []:
                entry = calls.setdefault(call["index"], [None, None, ""])
                if call.get("id"):
                    assert entry[0] is None, "id sent twice"
                    entry[0] = call["id"]
                if call["function"].get("name"):
                    assert entry[1] is None, "name sent twice"
                    entry[1] = call["function"]["name"]
                entry[2] += call["function"].get("arguments") or ""
            finish = choice.get("finish_reason") or finish
    return content, reasoning, [tuple(calls[i]) for i in sorted(calls)], finish


async def _collect(agen):
    return [chunk async for chunk in agen]


def serve(tokenizer, monkeypatch, parser, output, cuts, **request_fields):
    """(non-streaming response, streamed reassembly, prompt text) for one canned output."""
    serving = make_serving(tokenizer, monkeypatch, parser, generation(output, [])[-1:])
    request = ChatCompletionRequest(model="m", messages=MESSAGES, **request_fields)
    prompt = tokenizer.decode(serving._process_messages(request, False).prompt_ids)
    response = asyncio.run(serving._handle_non_streaming_request(None, request, None))

    serving = make_serving(tokenizer, monkeypatch, parser, generation(output, cuts))
    request = ChatCompletionRequest(model="m", messages=MESSAGES, stream=True, **request_fields)
    serving._process_messages(request, False)
    stream = reassemble(asyncio.run(_collect(serving._generate_chat_stream(None, request, None))))
    return response, stream, prompt


CASES = [
    pytest.param("deepseekv32", True, "I should look both up.</think>" + DSML, "", "I should look both up.", CALLS,
                 id="thinking-then-dsml-calls"),
    pytest.param("deepseekv32", True, "Look both up." + DSML, "", "Look both up.\n\n", CALLS,
                 id="dsml-calls-inside-unclosed-thinking"),
    pytest.param("deepseekv32", False, "Checking." + DSML, "Checking.", None, CALLS, id="thinking-off-dsml-calls"),
    pytest.param("deepseekv32", False, "Oslo: 3°C, Rome: 14°C.", "Oslo: 3°C, Rome: 14°C.", None, [], id="thinking-off-answer"),
    pytest.param("deepseekv32", True, "Still thinking", "", "Still thinking", [], id="missing-think-end"),
    pytest.param("deepseekv31", False, "Checking." + V31, "Checking.", None, CALLS, id="v31-calls"),
]


@pytest.mark.parametrize(("parser", "thinking", "output", "content", "reasoning", "calls"), CASES)
def test_chat_responses(parser, thinking, output, content, reasoning, calls, tokenizer, monkeypatch):
    cuts = list(range(1, len(output), 3))  # cuts land inside tags and special tokens
    response, stream, prompt = serve(tokenizer, monkeypatch, parser, output, cuts, tools=TOOLS,
                                     chat_template_kwargs={"thinking": thinking})
    assert prompt.endswith("<｜Assistant｜><think>" if thinking else "<｜Assistant｜></think>")
    assert "## Tools" in prompt

    assert isinstance(response, ChatCompletionResponse)
    message, choice = response.choices[0].message, response.choices[0]
    assert message.content == content
    assert message.reasoning_content == reasoning
    got_calls = [(c.function.name, json.loads(c.function.arguments)) for c in message.tool_calls or []]
    assert got_calls == calls
    assert [c.index for c in message.tool_calls or []] == list(range(len(calls)))
    assert all(c.id.startswith("call_") for c in message.tool_calls or [])
    assert choice.finish_reason == ("tool_calls" if calls else "stop")

    s_content, s_reasoning, s_calls, s_finish = stream
    assert (s_content, s_reasoning or None, s_finish) == (content, reasoning, choice.finish_reason)
    assert [(name, json.loads(args)) for _, name, args in s_calls] == calls
    assert [args for _, _, args in s_calls] == [c.function.arguments for c in message.tool_calls or []]
    assert all(call_id.startswith("call_") for call_id, _, _ in s_calls)
