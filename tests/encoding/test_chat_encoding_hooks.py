"""hooks/chat_encoding.install: it makes the table's chat-encoding touches, and its drop-in keeps the host's signature."""

import inspect

import pytest

from dsv32_plugin.encoding.variants import (
    SPECIALE_TOOLS_ERROR,
    check_speciale_tools,
    is_speciale,
    speciale_template_kwargs,
)
from dsv32_plugin.hooks import chat_encoding, ledger
from dsv32_plugin.host import touches


def installed_touches(monkeypatch) -> list[tuple[touches.Touch, object]]:
    made = []
    monkeypatch.setattr(chat_encoding.ledger, "hook", lambda touch, fn: made.append((touch, fn)))
    chat_encoding.install()
    return made


def test_install_makes_the_tables_chat_encoding_touches(monkeypatch):
    expected = {t for t in touches.TOUCHES if t.module == chat_encoding.__name__}
    assert expected and {touch for touch, _ in installed_touches(monkeypatch)} == expected


def test_every_target_exists_in_the_host_with_a_matching_signature(monkeypatch):
    pytest.importorskip("sglang.srt.entrypoints.openai.serving_chat")
    for touch, fn in installed_touches(monkeypatch):
        original = inspect.unwrap(ledger.host_object(touch.owner))
        if touch.kind == "REPLACE":  # a drop-in: same parameters as the host function
            assert list(inspect.signature(fn).parameters) == list(inspect.signature(original).parameters)
        else:
            assert callable(original)


@pytest.mark.parametrize(
    ("names", "expected"),
    [
        pytest.param(("/models/DeepSeek-V3.2-Speciale", None, None), True, id="path"),
        pytest.param((None, "deepseek-v3.2-speciale", None), True, id="served-name"),
        pytest.param(("/models/x", "x", "deepseek-ai/DeepSeek-V3.2-SPECIALE"), True, id="config-name-any-case"),
        pytest.param(("/models/DeepSeek-V3.2", "DeepSeek-V3.2", None), False, id="v32"),
        pytest.param((None, None, None), False, id="nothing-known"),
    ],
)
def test_is_speciale(names, expected):
    assert is_speciale(*names) is expected


class Message:  # a pydantic-like message object
    def __init__(self, tools=None):
        self.tools = tools


TOOL = {"type": "function", "function": {"name": "f"}}


@pytest.mark.parametrize(
    ("tools", "tool_choice", "messages", "refused"),
    [
        pytest.param([TOOL], "auto", [], True, id="request-tools"),
        pytest.param([TOOL], "required", [], True, id="required"),
        pytest.param([TOOL], "none", [], False, id="tool-choice-none"),
        pytest.param(None, "auto", [{"role": "developer", "tools": [TOOL]}], True, id="dict-message-tools"),
        pytest.param(None, "none", [Message([TOOL])], True, id="object-message-tools-always-rendered"),
        pytest.param(None, "auto", [Message(), {"role": "user"}], False, id="no-tools"),
    ],
)
def test_speciale_tools_policy(tools, tool_choice, messages, refused):
    if refused:
        with pytest.raises(ValueError, match="Speciale does not support tool calling"):
            check_speciale_tools(tools, tool_choice, messages)
    else:
        check_speciale_tools(tools, tool_choice, messages)
    assert "tool_choice" in SPECIALE_TOOLS_ERROR


@pytest.mark.parametrize(
    ("request_kwargs", "server_defaults", "expected"),
    [
        pytest.param(None, None, {"thinking": True}, id="unset-defaults-on"),
        pytest.param({"x": 1}, {}, {"x": 1, "thinking": True}, id="other-kwargs-kept"),
        pytest.param({"thinking": False}, None, {"thinking": False}, id="request-explicit-off"),
        pytest.param(None, {"thinking": False}, {}, id="server-default-respected"),
    ],
)
def test_speciale_thinking_default(request_kwargs, server_defaults, expected):
    before = dict(request_kwargs or {})
    assert speciale_template_kwargs(request_kwargs, server_defaults) == expected
    assert (request_kwargs or {}) == before
