"""hooks/chat_encoding.install: what it touches exists in the host and is listed in docs/hooks.md."""

import inspect
import pathlib
import pkgutil
import re

import pytest

from dsv32_plugin.encoding.variants import (
    SPECIALE_TOOLS_ERROR,
    check_speciale_tools,
    is_speciale,
    speciale_template_kwargs,
)
from dsv32_plugin.hooks import chat_encoding

HOOKS_DOC = pathlib.Path(__file__).parents[2] / "docs" / "hooks.md"


def installed_touches(monkeypatch) -> list[tuple[str, str, object]]:
    touches = []
    monkeypatch.setattr(chat_encoding.ledger, "hook", lambda target, fn, kind, **_: touches.append((target, kind, fn)))
    chat_encoding.install()
    return touches


def test_every_touch_has_a_row_in_hooks_doc(monkeypatch):
    rows = set(re.findall(r"^\| `([^`]+)` \| (\w+) \| `hooks/chat_encoding\.py` \|", HOOKS_DOC.read_text(), re.M))
    assert {(target, kind) for target, kind, _ in installed_touches(monkeypatch)} == rows


def test_every_target_exists_in_the_host_with_a_matching_signature(monkeypatch):
    pytest.importorskip("sglang.srt.entrypoints.openai.serving_chat")
    for target, kind, fn in installed_touches(monkeypatch):
        original = inspect.unwrap(pkgutil.resolve_name(target))
        if kind == "REPLACE":  # a drop-in: same parameters as the host function
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
