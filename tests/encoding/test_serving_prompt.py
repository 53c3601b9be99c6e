"""Drive sglang 0.5.23's OpenAI chat serving code with the plugin registered.

``OpenAIServingChat._process_messages`` builds the prompt exactly as a live
server does (``--tool-call-parser deepseekv32``, no chat template); only the
tokenizer manager is a stand-in holding the tiny checkpoint's tokenizer.
"""

import copy
import inspect
import types

import pytest

pytest.importorskip("sglang.srt.entrypoints.openai.serving_chat")

from sglang.srt.entrypoints.openai import encoding_dsv32, serving_chat  # noqa: E402
from sglang.srt.entrypoints.openai.protocol import ChatCompletionRequest  # noqa: E402
from sglang.srt.parser.template_manager import TemplateManager  # noqa: E402
from sglang.srt.plugins.hook_registry import HookRegistry  # noqa: E402

import dsv32_plugin  # noqa: E402
from dsv32_plugin import templates  # noqa: E402
from dsv32_plugin.encoding import encode_messages  # noqa: E402
from dsv32_plugin.hooks import chat_encoding  # noqa: E402
from dsv32_plugin.testing.tiny_tokenizer import load_tokenizer, save_tokenizer  # noqa: E402

TOOLS = [
    {"type": "function", "function": {"name": "get_weather", "description": "Weather of a city",
     "parameters": {"type": "object", "properties": {"city": {"type": "string"}, "days": {"type": "integer"}},
                    "required": ["city"]}}},
    {"type": "function", "function": {"name": "now", "description": "Current time", "parameters": {"type": "object", "properties": {}}}},
]

AGENTIC = [
    {"role": "system", "content": "You are helpful."},
    {"role": "user", "content": "Weather in Paris?"},
    {"role": "assistant", "content": None, "reasoning_content": "Need the tool.",
     "tool_calls": [{"id": "c1", "type": "function",
                     "function": {"name": "get_weather", "arguments": '{"city": "Paris", "days": 2}'}}]},
    {"role": "tool", "tool_call_id": "c1", "content": '{"temp": 21}'},
]


@pytest.fixture(scope="module")
def tokenizer(tmp_path_factory):
    return load_tokenizer(tmp_path_factory.mktemp("tok") / "DeepSeek-V3.2-tiny")


@pytest.fixture(scope="module")
def plugin_hooks():
    dsv32_plugin.register()
    HookRegistry.apply_hooks()
    assert getattr(encoding_dsv32.encode_messages, "__wrapped__", None) is not None, "encoder hook not applied"


def make_serving(tokenizer, monkeypatch, model_name="deepseek-ai/DeepSeek-V3.2", tool_call_parser="deepseekv32",
                 template_manager=None):
    # The serving config namespace is published by a launched server; stand in for the one read here.
    monkeypatch.setattr(serving_chat, "get_serving", lambda: types.SimpleNamespace(default_chat_template_kwargs=None))
    hf_config = types.SimpleNamespace(architectures=["DeepseekV32ForCausalLM"], model_type="deepseek_v32", name_or_path=model_name)
    model_config = types.SimpleNamespace(hf_config=hf_config, is_multimodal=False, get_default_sampling_params=lambda: {})
    values = {"tool_call_parser": tool_call_parser, "reasoning_parser": "deepseek-v3"}
    manager = types.SimpleNamespace(tokenizer=tokenizer, model_config=model_config, config_value=values.get,
                                    server_args=None, model_path=model_name, served_model_name=model_name)
    serving = serving_chat.OpenAIServingChat(manager, template_manager or TemplateManager())
    assert serving.chat_encoding_spec == (None if template_manager else "dsv32")
    return serving


def served_prompt(serving, **request):
    result = serving._process_messages(ChatCompletionRequest(model="m", **request), False)
    return result.prompt_ids


CASES = [
    pytest.param(dict(messages=[{"role": "user", "content": "hi"}], chat_template_kwargs={"thinking": False}),
                 dict(messages=[{"role": "user", "content": "hi"}], thinking=False), id="chat-no-tools"),
    pytest.param(dict(messages=AGENTIC, tools=TOOLS, chat_template_kwargs={"thinking": True}),
                 dict(messages=AGENTIC, tools=TOOLS, thinking=True), id="agentic-thinking-tools"),
    pytest.param(dict(messages=AGENTIC[1:], tools=TOOLS, chat_template_kwargs={"thinking": False}),
                 dict(messages=AGENTIC[1:], tools=TOOLS, thinking=False), id="no-system-tools-chat"),
    pytest.param(dict(messages=AGENTIC, tools=TOOLS, tool_choice="none", chat_template_kwargs={"thinking": True}),
                 dict(messages=AGENTIC, thinking=True), id="tool-choice-none"),
    pytest.param(dict(messages=[{"role": "user", "content": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}]}],
                      chat_template_kwargs={"thinking": True}),
                 dict(messages=[{"role": "user", "content": "a b"}], thinking=True), id="parts-content-flattened"),
]


@pytest.mark.parametrize(("request_fields", "expected_args"), CASES)
def test_served_prompt_is_the_plugin_encoding(request_fields, expected_args, tokenizer, plugin_hooks, monkeypatch):
    calls = []
    original = chat_encoding.render_messages
    monkeypatch.setattr(chat_encoding, "render_messages", lambda *a, **k: calls.append(1) or original(*a, **k))
    serving = make_serving(tokenizer, monkeypatch)
    before = copy.deepcopy(request_fields)

    ids = served_prompt(serving, **copy.deepcopy(request_fields))

    expected_text = encode_messages(**expected_args)
    assert calls, "the served prompt did not go through the plugin's encoder"
    assert ids == tokenizer.encode(expected_text, add_special_tokens=False)
    assert ids.count(tokenizer.bos_token_id) == 1 and ids[0] == tokenizer.bos_token_id
    assert tokenizer.decode(ids) == expected_text
    assert request_fields == before


@pytest.fixture(scope="module")
def template_setup(tmp_path_factory):
    """A tokenizer carrying templates/deepseek_v32.jinja, loaded as ``--chat-template`` loads it."""
    from transformers import AutoTokenizer

    directory = tmp_path_factory.mktemp("tok_template")
    save_tokenizer(directory, chat_template=None)
    tok = AutoTokenizer.from_pretrained(str(directory))
    manager = TemplateManager()
    manager._load_jinja_template(types.SimpleNamespace(tokenizer=tok), templates.path("deepseek_v32.jinja"))
    return tok, manager


@pytest.mark.parametrize(("request_fields", "expected_args"), CASES)
def test_served_prompt_through_chat_template(request_fields, expected_args, template_setup, plugin_hooks, monkeypatch):
    # --chat-template deepseek_v32.jinja without --tool-call-parser deepseekv32: sglang's Jinja path.
    tok, manager = template_setup
    serving = make_serving(tok, monkeypatch, tool_call_parser=None, template_manager=manager)
    ids = served_prompt(serving, **copy.deepcopy(request_fields))
    assert ids == tok.encode(encode_messages(**expected_args), add_special_tokens=False)


def test_served_tools_prompt_differs_from_intree(tokenizer, plugin_hooks, monkeypatch):
    ids = served_prompt(make_serving(tokenizer, monkeypatch), messages=AGENTIC, tools=TOOLS,
                        chat_template_kwargs={"thinking": True})
    intree_messages = copy.deepcopy(AGENTIC)
    intree_messages[0]["tools"] = TOOLS
    intree_text = inspect.unwrap(encoding_dsv32.encode_messages)(intree_messages, thinking_mode="thinking")
    served = tokenizer.decode(ids)
    assert served != intree_text and served.count("\n") == intree_text.count("\n") + 7


def test_host_adapter_keeps_intree_signature():
    messages = [{"role": "system", "content": "S"}, {"role": "user", "content": "a"},
                {"role": "assistant", "content": "b"}, {"role": "user", "content": "c"}]
    full = chat_encoding.encode_messages_for_host(messages, "thinking")
    assert full == encode_messages(messages, thinking=True)
    tail = chat_encoding.encode_messages_for_host(messages[2:], "thinking", context=messages[:2])
    # Context turns shape the rendering (which user turn is last) but are not emitted, nor is BOS.
    assert tail == "b<｜end▁of▁sentence｜><｜User｜>c<｜Assistant｜><think>"
    assert full == "<｜begin▁of▁sentence｜>S<｜User｜>a<｜Assistant｜></think>" + tail
    assert chat_encoding.encode_messages_for_host(messages, "chat", add_default_bos_token=False) == \
        encode_messages(messages)[len("<｜begin▁of▁sentence｜>"):]
    with pytest.raises(ValueError, match="thinking_mode"):
        chat_encoding.encode_messages_for_host(messages, "deep")


SPECIALE = "deepseek-ai/DeepSeek-V3.2-Speciale"


@pytest.mark.parametrize(
    "request_fields",
    [
        pytest.param(dict(messages=AGENTIC[:2], tools=TOOLS), id="request-tools"),
        pytest.param(dict(messages=[{"role": "developer", "content": "x", "tools": TOOLS}]), id="message-tools"),
    ],
)
def test_speciale_refuses_tools(request_fields, tokenizer, plugin_hooks, monkeypatch):
    serving = make_serving(tokenizer, monkeypatch, model_name=SPECIALE)
    with pytest.raises(ValueError, match="Speciale does not support tool calling"):
        served_prompt(serving, chat_template_kwargs={"thinking": True}, **request_fields)


def test_speciale_thinks_by_default(tokenizer, plugin_hooks, monkeypatch):
    serving = make_serving(tokenizer, monkeypatch, model_name=SPECIALE)
    request = ChatCompletionRequest(model="m", messages=AGENTIC[:2])
    result = serving._process_messages(request, False)
    assert result.prompt_ids == tokenizer.encode(encode_messages(AGENTIC[:2], thinking=True), add_special_tokens=False)
    assert result.require_reasoning  # the reasoning parser is forced to match the <think> prompt
    explicit = served_prompt(serving, messages=AGENTIC[:2], chat_template_kwargs={"thinking": False})
    assert explicit == tokenizer.encode(encode_messages(AGENTIC[:2], thinking=False), add_special_tokens=False)
    # V3.2 keeps the host default (thinking off).
    plain = served_prompt(make_serving(tokenizer, monkeypatch), messages=AGENTIC[:2])
    assert plain == tokenizer.encode(encode_messages(AGENTIC[:2], thinking=False), add_special_tokens=False)


def test_speciale_serves_without_tools_or_with_tool_choice_none(tokenizer, plugin_hooks, monkeypatch):
    serving = make_serving(tokenizer, monkeypatch, model_name=SPECIALE)
    plain = served_prompt(serving, messages=AGENTIC[:2], chat_template_kwargs={"thinking": True})
    opted_out = served_prompt(serving, messages=AGENTIC[:2], tools=TOOLS, tool_choice="none",
                              chat_template_kwargs={"thinking": True})
    assert plain == opted_out == tokenizer.encode(encode_messages(AGENTIC[:2], thinking=True), add_special_tokens=False)
    # V3.2 (not Speciale) with the same tools is served.
    assert served_prompt(make_serving(tokenizer, monkeypatch), messages=AGENTIC[:2], tools=TOOLS)
