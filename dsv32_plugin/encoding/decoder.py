"""DeepSeek-V3.2 completion decoder (model text -> content, reasoning, tool calls).

The inverse of ``encoder``: decoding the text an assistant turn renders to
(everything after the prompt, i.e. after ``<think>``/``</think>``) gives that
turn back. The DSML grammar itself lives in ``dsv32_plugin.parsers.dsml``,
shared with the ``deepseekv32`` tool-call detector.

Layout of a completion::

    thinking:  REASONING </think> CONTENT [\\n\\n<｜DSML｜function_calls>...</｜DSML｜function_calls>] [<｜end▁of▁sentence｜>]
    chat:                         CONTENT [\\n\\n<｜DSML｜function_calls>...</｜DSML｜function_calls>] [<｜end▁of▁sentence｜>]

Unlike DeepSeek's reference parser (which asserts on any deviation) this never
raises: a missing ``</think>`` ends the reasoning at the first tool-call block
(or makes all text reasoning), broken markup follows ``parsers.dsml``'s rules,
a ``string="false"`` value that is not JSON is kept as text, and the first of
duplicate parameter names wins. No schema coercion here (that is the
detector's job, with the request's tools).
"""

from __future__ import annotations

import json

from dsv32_plugin.encoding.tokens import EOS, THINK_END
from dsv32_plugin.parsers.dsml import BLOCK_OPEN, INVOKE_OPEN, DsmlCall, parse_dsml_calls
from dsv32_plugin.parsers.schema import loads_strict

_BLOCK_STARTS = (BLOCK_OPEN, INVOKE_OPEN)  # a wrapped block or a bare invoke


def decode_output(text: str, thinking: bool) -> tuple[str, str, list[dict]]:
    """(content, reasoning, tool_calls) of the model's text after the prompt.

    ``tool_calls`` are OpenAI-format: ``{"type": "function", "function": {"name",
    "arguments": JSON text}}`` with the parameters in the order written.
    """
    text = text.removesuffix(EOS)
    reasoning = ""
    if thinking:
        reasoning, text = _split_reasoning(text)
    content, calls = parse_dsml_calls(text)
    return content, reasoning, [_openai_call(call) for call in calls]


def _split_reasoning(text: str) -> tuple[str, str]:
    end = text.find(THINK_END)
    if end != -1:
        return text[:end], text[end + len(THINK_END) :]
    starts = [i for i in (text.find(marker) for marker in _BLOCK_STARTS) if i != -1]
    if not starts:
        return text, ""  # cut off while thinking
    cut = min(starts)
    blank = 2 if text[:cut].endswith("\n\n") else 0  # the block's own blank line
    return text[: cut - blank], text[cut - blank :]


def _openai_call(call: DsmlCall) -> dict:
    arguments: dict = {}
    if call.json_body is not None:
        try:
            body = loads_strict(call.json_body)
        except ValueError:
            body = None
        arguments = body if isinstance(body, dict) else {}
    for param in call.params:
        arguments.setdefault(param.name, _param_value(param.value, param.string))
    return {"type": "function", "function": {"name": call.name, "arguments": json.dumps(arguments, ensure_ascii=False)}}


def _param_value(raw: str, string) -> object:
    """``string="true"``: the raw text verbatim; otherwise JSON, or the text if it is not JSON."""
    if string:
        return raw
    try:
        return loads_strict(raw)
    except ValueError:
        return raw
