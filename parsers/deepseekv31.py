"""``--tool-call-parser deepseekv31``: V3.1-style tool calls (DeepSeek-V3.1, V3.2-Exp).

Differences from sglang 0.5.23's in-tree ``DeepSeekV31Detector``: partial
special tokens are held back in streaming (character-level splits do not leak
``<｜tool▁...`` fragments into content); arguments are re-encoded canonically
and coerced to the tool schema, identically streaming and one-shot; unknown
tools are dropped in both modes; broken markup never raises.
"""

from __future__ import annotations

from typing import Optional

from sglang.srt.function_call.core_types import StructureInfo, _GetInfoFunc

from . import v31_markup as v31
from .call_stream import CallStream
from .detector_base import StreamingToolDetector
from .json_arguments import JsonArgumentsReader


class _V31Reader:
    """Applies ``V31Scanner`` events to a ``CallStream``."""

    def __init__(self, calls: CallStream) -> None:
        self._calls = calls
        self._scanner = v31.V31Scanner()
        self._arguments: Optional[JsonArgumentsReader] = None

    def feed(self, text: str) -> None:
        self._apply(self._scanner.feed(text))

    def finish(self) -> None:
        self._apply(self._scanner.finish())  # the scanner ends an open call itself

    def _apply(self, events: list[tuple]) -> None:
        for event in events:
            kind = event[0]
            if kind == "text":
                self._calls.text(event[1])
            elif kind == "invoke":
                self._calls.begin_call(event[1])
                self._arguments = JsonArgumentsReader(self._calls) if self._calls.in_call else None
            elif kind == "args" and self._arguments is not None:
                self._arguments.feed(event[1])
            elif kind == "invoke_end":
                if self._arguments is not None:
                    self._arguments.finish()
                self._arguments = None
                self._calls.end_call()


class DeepSeekV31Detector(StreamingToolDetector):
    markers = (v31.CALLS_BEGIN, v31.CALL_BEGIN, v31.CALLS_END, v31.CALL_END)

    def __init__(self) -> None:
        super().__init__()
        self.bot_token = v31.CALLS_BEGIN
        self.eot_token = v31.CALLS_END

    def _reader(self, calls: CallStream) -> _V31Reader:
        return _V31Reader(calls)

    def structure_info(self) -> _GetInfoFunc:
        return lambda name: StructureInfo(
            begin=f"{v31.CALL_BEGIN}{name}{v31.SEP}",
            end=v31.CALL_END,
            trigger=v31.CALL_BEGIN,
        )
