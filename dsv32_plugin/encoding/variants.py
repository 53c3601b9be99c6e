"""Which DeepSeek-V3.2 release is served, where that changes what a request may ask.

V3.2 and V3.2-Speciale share one prompt format and one config (architecture
``DeepseekV32ForCausalLM``); Speciale is thinking-only and was not trained to
call tools. Its config carries no marker, so the release is told apart by name:
the model path, the served model name or the config's ``name_or_path``.

Policy for Speciale (docs/chat_format.md):

* a request whose prompt would describe tools is refused with a clear 400
  error; ``tool_choice: "none"`` is the explicit way to send a tools list
  anyway (then the tools are not rendered). Silently ignoring tools was
  rejected: an agent would take the tool-less answer as the model's decision
  not to call a tool;
* thinking defaults to on (``chat_template_kwargs.thinking``), since a
  ``</think>`` prompt is off its distribution. An explicit value, from the
  request or the server's ``--default-chat-template-kwargs``, is respected.
"""

from __future__ import annotations

SPECIALE_TOOLS_ERROR = (
    "DeepSeek-V3.2-Speciale does not support tool calling: remove `tools` from the request "
    "(and from system/developer messages) or set tool_choice to \"none\""
)


def is_speciale(*names: object) -> bool:
    """True if any of the given model names/paths names the Speciale release."""
    return any(isinstance(name, str) and "speciale" in name.lower() for name in names)


def check_speciale_tools(request_tools: list | None, tool_choice, messages: list) -> None:
    """Raise ``ValueError`` if a Speciale prompt would describe tools.

    ``messages`` are the request messages (dicts or pydantic models); a system
    or developer message may carry its own ``tools``, rendered whatever
    ``tool_choice`` says.
    """
    wants_tools = bool(request_tools) and tool_choice != "none"
    carried = any(_field(m, "tools") for m in messages or [])
    if wants_tools or carried:
        raise ValueError(SPECIALE_TOOLS_ERROR)


def speciale_template_kwargs(request_kwargs: dict | None, server_defaults: dict | None) -> dict:
    """The request's ``chat_template_kwargs`` with ``thinking`` on unless someone set it."""
    kwargs = dict(request_kwargs or {})
    if "thinking" not in kwargs and "thinking" not in (server_defaults or {}):
        kwargs["thinking"] = True
    return kwargs


def _field(message, name):
    return message.get(name) if isinstance(message, dict) else getattr(message, name, None)
