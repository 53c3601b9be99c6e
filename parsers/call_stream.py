"""Turns scanner output into normal text and OpenAI-shaped tool-call pieces.

A format adapter (DSML, V3.1) calls ``text`` / ``begin_call`` / ``member`` /
``open_string``... as its scanner reports markup; ``drain`` hands back what
accumulated since the last drain.  The same object serves streaming (drained
after every chunk) and one-shot parsing (drained once), so both see one
sequence of decisions.

Unknown tool names are dropped, with a warning, unless the host's
``SGLANG_FORWARD_UNKNOWN_TOOLS`` is set (the host's rule in
``BaseFormatDetector.parse_base_json``).  Values are coerced to the tool's
parameter schema (``schema.coerce``); a string value is streamed piece by piece
only when the schema admits a string, otherwise it is held until complete.
"""

from __future__ import annotations

import logging
from typing import Any, Optional

from sglang.srt.environ import envs

from . import schema as schemas
from .arguments import ArgumentsWriter

logger = logging.getLogger(__name__)


class CallPiece:
    """One drained piece of a call: ``name`` on the first piece only."""

    __slots__ = ("ordinal", "name", "arguments")

    def __init__(self, ordinal: int, name: Optional[str], arguments: str):
        self.ordinal = ordinal  # position of the call in this output
        self.name = name
        self.arguments = arguments


class CallStream:
    def __init__(self, tools: Optional[list]) -> None:
        self.tool_positions: dict[str, int] = {}
        self._parameters: dict[str, Any] = {}
        for i, tool in enumerate(tools or []):
            name = tool.function.name
            if name and name not in self.tool_positions:
                self.tool_positions[name] = i
                self._parameters[name] = tool.function.parameters
        self._forward_unknown = envs.SGLANG_FORWARD_UNKNOWN_TOOLS.get()
        self._text: list[str] = []
        self._pieces: list[CallPiece] = []
        self._calls = 0
        self._writer: Optional[ArgumentsWriter] = None
        self._schema: Any = None

    # -- normal text ----------------------------------------------------------

    def text(self, text: str) -> None:
        self._text.append(text)

    # -- calls ----------------------------------------------------------------

    @property
    def in_call(self) -> bool:
        return self._writer is not None

    def begin_call(self, name: Optional[str]) -> None:
        self._writer = None
        if not name:
            logger.warning("Dropping a tool call without a name")
            return
        if name not in self.tool_positions and not self._forward_unknown:
            logger.warning("Model attempted to call undefined function: %s", name)
            return
        self._schema = self._parameters.get(name)
        self._writer = ArgumentsWriter()
        self._pieces.append(CallPiece(self._calls, name, ""))
        self._calls += 1

    def _write(self, text: str) -> None:
        self._pieces.append(CallPiece(self._calls - 1, None, text))

    def accepts(self, key: Optional[str]) -> bool:
        """Whether a value for ``key`` would be written (call kept, key new)."""
        return self._writer is not None and bool(key) and not self._writer.has(key)

    def streams_string(self, key: Optional[str]) -> bool:
        """Whether a string value for ``key`` can be written as it arrives."""
        return self.accepts(key) and schemas.allows_string(schemas.property_schema(self._schema, key))

    def member(self, key: Optional[str], value: Any, source: str) -> None:
        """Write ``key: value`` after schema coercion (``source``: raw text of the value)."""
        if self.accepts(key):
            value = schemas.coerce(value, source, schemas.property_schema(self._schema, key))
            self._write(self._writer.member(key, value))

    def open_string(self, key: str) -> None:
        self._write(self._writer.open_string(key))

    def string_piece(self, text: str) -> None:
        if text:
            self._write(self._writer.string_piece(text))

    def close_string(self) -> None:
        self._write(self._writer.close_string())

    def end_call(self) -> None:
        if self._writer is not None:
            self._write(self._writer.close())
        self._writer = None

    # -- output ---------------------------------------------------------------

    def drain(self) -> tuple[str, list[CallPiece]]:
        """Normal text and call pieces since the last drain (pieces of one call merged)."""
        text = "".join(self._text)
        merged: list[CallPiece] = []
        for piece in self._pieces:
            if merged and merged[-1].ordinal == piece.ordinal and piece.name is None:
                merged[-1].arguments += piece.arguments
            else:
                merged.append(piece)
        self._text.clear()
        self._pieces.clear()
        return text, merged
