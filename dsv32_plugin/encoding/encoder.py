"""DeepSeek-V3.2 prompt encoder (messages -> prompt text).

Renders exactly what DeepSeek's official ``encoding/encoding_dsv32.py`` renders
for every conversation it accepts (checked byte for byte against DeepSeek's own
sample pairs in tests/encoding/data). Per message (``last user`` = the last
``user`` or ``developer`` message; ``think`` = ``<think>`` if thinking and the
message is at/after the last user, else ``</think>``)::

    system     content [+ "\\n\\n" + tools block] [+ "\\n\\n" + response-format block]
    user       <｜User｜>content <｜Assistant｜>think
    developer  <｜User｜>[\\n\\n tools][\\n\\n response format]\\n\\n# The user's message is: content <｜Assistant｜>think
    assistant  [reasoning</think>] content [\\n\\n<｜DSML｜function_calls>...] <｜end▁of▁sentence｜>
               (reasoning only when thinking and after the last user)
    tool       [\\n\\n<function_results>] \\n<result>content</result> [\\n</function_results> \\n\\nthink]
               (opening before the first result of a call group, closing after the last)

The whole prompt is BOS + the concatenation. The pieces written after
``<｜User｜>content`` and after ``</function_results>`` hand the turn to the
model; ``add_generation_prompt=False`` leaves them off the last message.

Deliberate differences, all on input the official encoder rejects or mangles:
``content=None`` renders as "" (official: the text "None" for user/tool turns);
``arguments=None`` renders as a call without arguments;
tool-call ``arguments`` may be a dict as well as a JSON string; an assistant turn
after the last user with neither reasoning nor tool calls renders an empty
reasoning in thinking mode (official: exception); invalid conversations raise
``EncodingError`` (a ``ValueError``) naming the message, never a bare assert.
"""

from __future__ import annotations

import json
from typing import Any, Iterable, Sequence

from dsv32_plugin.encoding.system_blocks import response_format_block, to_json, tools_block
from dsv32_plugin.encoding.tokens import ASSISTANT, BOS, EOS, THINK_END, THINK_START, USER
from dsv32_plugin.parsers.dsml import BLOCK_CLOSE, BLOCK_OPEN, INVOKE_CLOSE, INVOKE_OPEN, PARAM_CLOSE, PARAM_OPEN

FUNCTION_RESULTS_OPEN = "<function_results>"
FUNCTION_RESULTS_CLOSE = "</function_results>"


class EncodingError(ValueError):
    """The conversation cannot be rendered in the V3.2 format (sglang answers 400)."""


def encode_messages(
    messages: Sequence[dict],
    tools: list | None = None,
    thinking: bool = False,
    add_generation_prompt: bool = True,
) -> str:
    """BOS + every message rendered; ``tools`` (OpenAI format) are attached like sglang does.

    ``tools`` go on the first message, which must then be a system message: an
    empty one is inserted in front when it is not (sglang's serving path does
    the same, so a tools prompt without a system message starts
    ``BOS + "\\n\\n## Tools"``). A message may also carry its own ``tools`` or
    ``response_format`` (system and developer turns render them); giving
    ``tools`` here when the first system message already carries tools is an
    error rather than a silent overwrite. The input is never mutated.
    """
    conversation = attach_tools(messages, tools)
    return BOS + "".join(render_messages(conversation, thinking, add_generation_prompt))


def attach_tools(messages: Sequence[dict], tools: list | None) -> list[dict]:
    """A shallow copy of ``messages`` whose first (system) message carries ``tools``."""
    conversation = list(messages)
    if not tools:
        return conversation
    if conversation and _role(conversation[0], 0) == "system":
        if conversation[0].get("tools"):
            raise EncodingError("tools given both as an argument and on the first system message")
        conversation[0] = {**conversation[0], "tools": list(tools)}
    else:
        conversation.insert(0, {"role": "system", "content": "", "tools": list(tools)})
    return conversation


def render_messages(
    messages: Sequence[dict], thinking: bool, add_generation_prompt: bool = True
) -> list[str]:
    """One rendered string per message (no BOS)."""
    last_user = last_user_index(messages)
    rendered: list[str] = []
    calls_in_group = results_in_group = 0  # tool-call group opened by the latest assistant turn
    for index, message in enumerate(messages):
        role = _role(message, index)
        # Where a turn hands over to the model it ends with a think marker; the
        # final message may leave that hand-over off (add_generation_prompt=False).
        hand_over = add_generation_prompt or index < len(messages) - 1
        if role == "system":
            text = _text(message, index) + _system_blocks(message, index)
        elif role in ("user", "developer"):
            think = THINK_START if thinking and index == last_user else THINK_END
            text = USER + _user_body(message, index, role) + (ASSISTANT + think if hand_over else "")
        elif role == "assistant":
            reasoning = ""
            if thinking and index > last_user:
                reasoning = _text(message, index, "reasoning_content") + THINK_END
            calls = message.get("tool_calls") or []
            text = reasoning + _text(message, index) + _render_tool_calls(calls, index) + EOS
        elif role == "tool":
            if results_in_group >= calls_in_group:
                raise EncodingError(
                    f"message {index}: a tool result must answer a tool call of the preceding assistant turn"
                )
            results_in_group += 1
            text = f"\n<result>{_text(message, index)}</result>"
            if results_in_group == 1:
                text = "\n\n" + FUNCTION_RESULTS_OPEN + text
            if results_in_group == calls_in_group:
                think = THINK_START if thinking and index >= last_user else THINK_END
                text += "\n" + FUNCTION_RESULTS_CLOSE + ("\n\n" + think if hand_over else "")
        else:
            raise EncodingError(f"message {index}: unknown role {role!r}")
        if role == "assistant":
            calls_in_group, results_in_group = len(message.get("tool_calls") or []), 0
        elif role != "tool":
            calls_in_group = results_in_group = 0
        rendered.append(text)
    return rendered


def _user_body(message: dict, index: int, role: str) -> str:
    body = _text(message, index)
    if role == "user":
        return body
    if not body:
        raise EncodingError(f"message {index}: a developer message needs content")
    return _system_blocks(message, index) + "\n\n# The user's message is: " + body


def last_user_index(messages: Sequence[dict]) -> int:
    """Index of the last ``user`` or ``developer`` message, -1 if none."""
    for index in range(len(messages) - 1, -1, -1):
        if isinstance(messages[index], dict) and messages[index].get("role") in ("user", "developer"):
            return index
    return -1


def render_tool_call(name: str, arguments: dict) -> str:
    """One DSML invoke: strings verbatim with ``string="true"``, everything else as JSON."""
    params = []
    for key, value in arguments.items():
        if isinstance(value, str):
            params.append(f'{PARAM_OPEN} name="{key}" string="true">{value}{PARAM_CLOSE}')
        else:
            params.append(f'{PARAM_OPEN} name="{key}" string="false">{to_json(value)}{PARAM_CLOSE}')
    return f'{INVOKE_OPEN} name="{name}">\n' + "\n".join(params) + "\n" + INVOKE_CLOSE


def _render_tool_calls(calls: Iterable[Any], index: int) -> str:
    invokes = []
    for call in calls:
        function = call.get("function") if isinstance(call, dict) else None
        if not isinstance(function, dict) or not isinstance(function.get("name"), str):
            raise EncodingError(f"message {index}: a tool call must be {{'function': {{'name': str, 'arguments': ...}}}}")
        try:
            invokes.append(render_tool_call(function["name"], _arguments(function.get("arguments"), index)))
        except TypeError as exc:  # a value json cannot write
            raise EncodingError(f"message {index}: {exc}") from None
    if not invokes:
        return ""
    return "\n\n" + BLOCK_OPEN + "\n" + "\n".join(invokes) + "\n" + BLOCK_CLOSE


def _arguments(raw: Any, index: int) -> dict:
    """Tool-call arguments as a dict: a JSON object string or a dict (``None``: no arguments)."""
    if raw is None:
        return {}
    if isinstance(raw, str):
        try:
            raw = json.loads(raw)
        except json.JSONDecodeError as exc:
            raise EncodingError(f"message {index}: tool-call arguments are not valid JSON: {exc}") from None
    if not isinstance(raw, dict):
        raise EncodingError(f"message {index}: tool-call arguments must be a JSON object, got {type(raw).__name__}")
    return raw


def _system_blocks(message: dict, index: int) -> str:
    text = ""
    try:
        if message.get("tools"):
            text += "\n\n" + tools_block(message["tools"])
        if message.get("response_format"):
            text += "\n\n" + response_format_block(message["response_format"])
    except (TypeError, ValueError) as exc:
        raise EncodingError(f"message {index}: {exc}") from None
    return text


def _text(message: dict, index: int, key: str = "content") -> str:
    value = message.get(key)
    if value is None:
        return ""
    if not isinstance(value, str):
        raise EncodingError(f"message {index}: {key} must be a string, got {type(value).__name__}")
    return value


def _role(message: Any, index: int) -> str:
    if not isinstance(message, dict):
        raise EncodingError(f"message {index}: expected a dict, got {type(message).__name__}")
    return message.get("role")
