"""Serve DeepSeek-V3.2 prompts from the plugin's encoder.

With ``--tool-call-parser deepseekv32`` (or a DeepseekV3-family model without a
chat template) sglang 0.5.23 bypasses Jinja: ``OpenAIServingChat`` prepares the
messages (``None`` content -> "", parts flattened, an empty system message
hosting the request tools) and calls ``encoding_dsv32.encode_messages(messages,
thinking_mode=...)`` through the module attribute. Its in-tree encoder lost
seven blank lines of the official tools block, so this step REPLACEs that
attribute with ``encode_messages_for_host``, a drop-in with the in-tree
signature that renders with ``dsv32_plugin.encoding`` (the offline
``chat_encoding.encode_simple_chat`` reaches it the same way).

The serving branch then runs ``tokenizer.encode(prompt)``, and the V3.2
tokenizer prepends BOS to every encoded text (``add_bos_token: true``), so
in-tree prompts start with BOS twice. ``_apply_jinja_template`` is wrapped to
drop that second BOS on the ``dsv32`` path.

``_process_messages`` is wrapped to apply the DeepSeek-V3.2-Speciale policy
(``dsv32_plugin.encoding.variants``: no tools, thinking on by default) before
anything reads the request; that covers the encoder path and
``--chat-template`` alike.
"""

from __future__ import annotations

from typing import Any, Sequence

from dsv32_plugin.encoding.encoder import EncodingError, render_messages
from dsv32_plugin.encoding.tokens import BOS
from dsv32_plugin.encoding.variants import check_speciale_tools, is_speciale, speciale_template_kwargs
from dsv32_plugin.hooks import ledger
from dsv32_plugin.host import touches


def encode_messages_for_host(
    messages: Sequence[dict],
    thinking_mode: str,
    context: Sequence[dict] | None = None,
    drop_thinking: bool = True,
    add_default_bos_token: bool = True,
) -> str:
    """The in-tree ``encode_messages`` signature, rendered by the plugin's encoder.

    ``thinking_mode`` is "chat" or "thinking" (sglang passes its str-enum
    ``ThinkingMode``). ``context`` messages are rendered for their effect on
    the conversation but not emitted, and suppress BOS, as in-tree.
    ``drop_thinking`` changes nothing: reasoning before the last user turn is
    never rendered anyway.
    """
    del drop_thinking
    if thinking_mode not in ("chat", "thinking"):
        raise EncodingError(f"thinking_mode must be 'chat' or 'thinking', got {thinking_mode!r}")
    context = list(context or [])
    rendered = render_messages(context + list(messages), thinking_mode == "thinking")
    bos = BOS if add_default_bos_token and not context else ""
    return bos + "".join(rendered[len(context) :])


def drop_duplicate_bos(original, self, *args: Any, **kwargs: Any):
    """AROUND ``_apply_jinja_template``: on the dsv32 path keep the encoder's one BOS.

    The encoder's text already starts with BOS; a tokenizer that prepends BOS
    makes ids ``[BOS, BOS, ...]``. Only that exact doubled start is changed.
    """
    result = original(self, *args, **kwargs)
    bos = getattr(self.tokenizer_manager.tokenizer, "bos_token_id", None)
    ids = result.prompt_ids
    if self.chat_encoding_spec == "dsv32" and bos is not None and isinstance(ids, list) and ids[:2] == [bos, bos]:
        result.prompt_ids = ids[1:]
    return result


def apply_speciale_policy(original, self, request, *args: Any, **kwargs: Any):
    """AROUND ``_process_messages``: Speciale requests get no tools (400) and thinking by default.

    Runs before the host reads the request: the prompt (``_thinking_requested``)
    and the reasoning parser (``_get_reasoning_from_request``) both read
    ``chat_template_kwargs.thinking``, so setting it here keeps them agreeing.
    """
    manager = self.tokenizer_manager
    hf_config = getattr(getattr(manager, "model_config", None), "hf_config", None)
    names = (
        getattr(manager, "model_path", None),
        getattr(manager, "served_model_name", None),
        getattr(hf_config, "name_or_path", None),
    )
    if is_speciale(*names):
        check_speciale_tools(request.tools, request.tool_choice, request.messages)
        request.chat_template_kwargs = speciale_template_kwargs(
            request.chat_template_kwargs, getattr(self, "default_chat_template_kwargs", None)
        )
    return original(self, request, *args, **kwargs)


def install() -> None:
    ledger.hook(touches.ENCODE_MESSAGES, encode_messages_for_host)
    ledger.hook(touches.APPLY_JINJA_TEMPLATE, drop_duplicate_bos)
    ledger.hook(touches.PROCESS_MESSAGES, apply_speciale_policy)
