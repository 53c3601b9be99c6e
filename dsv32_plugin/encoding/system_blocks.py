"""Text blocks the encoder appends to a system or developer turn.

``tools_block`` is DeepSeek's tool instruction text, byte for byte as the
official V3.2 encoder emits it (HF deepseek-ai/DeepSeek-V3.2,
``encoding/encoding_dsv32.py``, checked against the official
``test_output.txt``). Note its blank lines: sglang 0.5.23's in-tree copy lost
seven of them, so its prompts with tools are off the training distribution.

Layout of the block (``\\n`` = newline)::

    ## Tools\\n\\n<instructions, DSML example>\\n\\n<parameter rules>\\n\\n
    <thinking hint + example>\\n\\nHere are the functions ...:\\n<functions>\\n
    {function json}\\n{function json}...\\n</functions>\\n
"""

from __future__ import annotations

import json
from typing import Any

from dsv32_plugin.encoding.tokens import THINK_END, THINK_START
from dsv32_plugin.parsers.dsml import DSML

_TOOLS_PREAMBLE = (
    "## Tools\n"
    "\n"
    "You have access to a set of tools you can use to answer the user's question.\n"
    f'You can invoke functions by writing a "<{DSML}function_calls>" block like the following'
    " as part of your reply to the user:\n"
    f"<{DSML}function_calls>\n"
    f'<{DSML}invoke name="$FUNCTION_NAME">\n'
    f'<{DSML}parameter name="$PARAMETER_NAME" string="true|false">$PARAMETER_VALUE</{DSML}parameter>\n'
    "...\n"
    f"</{DSML}invoke>\n"
    f'<{DSML}invoke name="$FUNCTION_NAME2">\n'
    "...\n"
    f"</{DSML}invoke>\n"
    f"</{DSML}function_calls>\n"
    "\n"
    "String and scalar parameters should be specified as is without any escaping or quotes,"
    " while lists and objects should use JSON format."
    ' The "string" attribute should be set to "true" for string type parameters and "false"'
    " for other types (numbers, booleans, arrays, objects).\n"
    "\n"
    "If the thinking_mode is enabled, then after function results you should strongly consider"
    " outputting a thinking block. Here is an example:\n"
    "\n"
    f"<{DSML}function_calls>\n"
    "...\n"
    f"</{DSML}function_calls>\n"
    "\n"
    "<function_results>\n"
    "...\n"
    "</function_results>\n"
    "\n"
    f"{THINK_START}...thinking about results{THINK_END}\n"
    "\n"
    "Here are the functions available in JSONSchema format:\n"
    "<functions>\n"
)

_RESPONSE_FORMAT_PREAMBLE = "## Response Format:\n\nYou MUST strictly adhere to the following schema to reply:\n"


def to_json(value: Any) -> str:
    """``json.dumps`` as the official encoder writes JSON: UTF-8 kept, default separators, key order kept."""
    return json.dumps(value, ensure_ascii=False)


def tool_function(tool: Any) -> dict:
    """The function schema of an OpenAI-format tool ``{"type": "function", "function": {...}}``."""
    function = tool.get("function") if isinstance(tool, dict) else None
    if not isinstance(function, dict):
        raise ValueError(f'a tool must be {{"type": "function", "function": {{...}}}}, got {tool!r}')
    return function


def tools_block(tools: list) -> str:
    """The tool instructions plus one JSON line per function schema."""
    schemas = "\n".join(to_json(tool_function(tool)) for tool in tools)
    return f"{_TOOLS_PREAMBLE}{schemas}\n</functions>\n"


def response_format_block(response_format: Any) -> str:
    """The schema the reply must follow, as JSON."""
    return _RESPONSE_FORMAT_PREAMBLE + to_json(response_format)
