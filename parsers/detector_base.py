"""Shared streaming/one-shot machinery for the plugin's tool-call detectors.

Subclasses provide ``_reader(calls)``: an object with ``feed(text)`` and
``finish()`` that drives a ``CallStream``.  One-shot parsing is the same reader
fed the whole text, so streaming and non-streaming agree by construction.

Host contract (sglang 0.5.23 ``serving_chat``):

* the first streamed item of a call carries ``name`` and ``parameters=""``;
  later items carry argument text; ``tool_index`` is the call's position in
  the output (it becomes the OpenAI ``tool_calls[].index``);
* ``prev_tool_call_arr[i]["arguments"]`` and ``streamed_args_for_tool[i]``
  both hold the argument text sent so far, so the host's
  ``_check_for_unstreamed_tool_args`` never appends anything;
* one-shot ``tool_index`` is the tool's position in the request's tool list
  (-1 for a forwarded unknown tool), as ``parse_base_json`` gives it.
"""

from __future__ import annotations

import logging
from typing import Optional

from sglang.srt.function_call.base_format_detector import BaseFormatDetector
from sglang.srt.function_call.core_types import StreamingParseResult, ToolCallItem

from .call_stream import CallStream

logger = logging.getLogger(__name__)


class StreamingToolDetector(BaseFormatDetector):
    #: Strings whose presence sends a one-shot text through ``detect_and_parse``
    #: (every marker the reader acts on, so both paths treat text alike).
    markers: tuple[str, ...] = ()

    def __init__(self) -> None:
        super().__init__()
        self._calls: Optional[CallStream] = None
        self._stream_reader = None
        self._failed = False

    def _reader(self, calls: CallStream):
        raise NotImplementedError

    def has_tool_call(self, text: str) -> bool:
        return any(marker in text for marker in self.markers)

    # -- one-shot ---------------------------------------------------------------

    def detect_and_parse(self, text: str, tools: list) -> StreamingParseResult:
        calls = CallStream(tools)
        try:
            reader = self._reader(calls)
            reader.feed(text)
            reader.finish()
        except Exception:  # never lose the answer to a parser bug
            logger.exception("tool-call parsing failed; returning the text unparsed")
            return StreamingParseResult(normal_text=text)
        normal, pieces = calls.drain()
        items: list[ToolCallItem] = []
        for piece in pieces:
            if piece.name is not None:
                position = calls.tool_positions.get(piece.name, -1)
                items.append(ToolCallItem(tool_index=position, name=piece.name, parameters=""))
            items[-1].parameters += piece.arguments
        return StreamingParseResult(normal_text=normal, calls=items)

    # -- streaming --------------------------------------------------------------

    def parse_streaming_increment(self, new_text: str, tools: list) -> StreamingParseResult:
        if self._failed:
            return StreamingParseResult(normal_text=new_text)
        if self._calls is None:
            self._calls = CallStream(tools)
            self._stream_reader = self._reader(self._calls)
        try:
            self._stream_reader.feed(new_text)
        except Exception:
            return self._fail(new_text)
        return self._drain()

    def finish(self, tools: list) -> StreamingParseResult:
        if self._calls is None or self._failed:
            return StreamingParseResult()
        try:
            self._stream_reader.finish()
        except Exception:
            return self._fail("")
        return self._drain()

    def _fail(self, text: str) -> StreamingParseResult:
        # A parser bug must not end the stream: pass the rest through as text.
        logger.exception("tool-call stream parsing failed; passing text through")
        self._failed = True
        return StreamingParseResult(normal_text=text)

    def _drain(self) -> StreamingParseResult:
        normal, pieces = self._calls.drain()
        items = []
        for piece in pieces:
            if piece.name is not None:
                self.current_tool_id = piece.ordinal
                self.prev_tool_call_arr.append({"name": piece.name, "arguments": ""})
                self.streamed_args_for_tool.append("")
                self.current_tool_name_sent = True
                items.append(ToolCallItem(tool_index=piece.ordinal, name=piece.name, parameters=""))
            if piece.arguments:
                self.streamed_args_for_tool[piece.ordinal] += piece.arguments
                self.prev_tool_call_arr[piece.ordinal]["arguments"] = self.streamed_args_for_tool[piece.ordinal]
                items.append(ToolCallItem(tool_index=piece.ordinal, parameters=piece.arguments))
        return StreamingParseResult(normal_text=normal, calls=items)
