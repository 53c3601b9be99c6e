"""``--tool-call-parser deepseekv32``: DSML tool calls of DeepSeek-V3.2 / Speciale.

Differences from sglang 0.5.23's in-tree ``DeepSeekV32Detector`` (see
docs/chat_format.md, "Parsers"): ``string="true"`` values are verbatim (not
stripped); values are coerced to the tool schema; arguments stream as they
arrive instead of one item per finished invoke; streaming and one-shot parsing
agree on every input (unknown tools, unclosed blocks, prose after a block).
"""

from __future__ import annotations

import json
from typing import Optional

from sglang.srt.function_call.core_types import StructureInfo, _GetInfoFunc

from . import dsml
from .call_stream import CallStream
from .detector_base import StreamingToolDetector
from .schema import loads_strict

_SKIP, _STREAM, _HOLD = range(3)


def _decode_raw(raw: str, string: Optional[bool]) -> tuple[object, str]:
    """(value, conversion source) of a DSML parameter's raw text.

    ``string="true"``: the text itself.  Otherwise JSON; text that is not JSON
    (or a missing attribute with non-JSON text) stays a string, stripped.
    """
    if string:
        return raw, raw
    text = raw.strip()
    try:
        value = loads_strict(text)
    except ValueError:
        return text, text
    return value, value if isinstance(value, str) else text


class _DsmlReader:
    """Applies ``DsmlScanner`` events to a ``CallStream``."""

    def __init__(self, calls: CallStream) -> None:
        self._calls = calls
        self._scanner = dsml.DsmlScanner()
        self._mode = _SKIP
        self._key: Optional[str] = None
        self._string: Optional[bool] = None
        self._raw: list[str] = []

    def feed(self, text: str) -> None:
        self._apply(self._scanner.feed(text))

    def finish(self) -> None:
        self._apply(self._scanner.finish())  # the scanner ends an open call itself

    def _apply(self, events: list[tuple]) -> None:
        calls = self._calls
        for event in events:
            kind = event[0]
            if kind == "text":
                calls.text(event[1])
            elif kind == "invoke":
                calls.begin_call(event[1])
            elif kind == "param":
                self._open_param(event[1], event[2])
            elif kind == "chunk":
                if self._mode == _STREAM:
                    calls.string_piece(event[1])
                elif self._mode == _HOLD:
                    self._raw.append(event[1])
            elif kind == "param_end":
                self._close_param()
            elif kind == "json":
                self._json_body(event[1])
            elif kind == "invoke_end":
                calls.end_call()

    def _open_param(self, key: Optional[str], string: Optional[bool]) -> None:
        self._key, self._string, self._raw = key, string, []
        if not self._calls.accepts(key):
            self._mode = _SKIP
        elif string and self._calls.streams_string(key):
            self._calls.open_string(key)
            self._mode = _STREAM
        else:
            self._mode = _HOLD

    def _close_param(self) -> None:
        if self._mode == _STREAM:
            self._calls.close_string()
        elif self._mode == _HOLD:
            value, source = _decode_raw("".join(self._raw), self._string)
            self._calls.member(self._key, value, source)
        self._mode = _SKIP

    def _json_body(self, text: str) -> None:
        try:
            body = loads_strict(text.strip())
        except ValueError:
            body = None
        if not isinstance(body, dict):
            return  # the call keeps the arguments it has ({} if none)
        for key, value in body.items():
            source = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
            self._calls.member(key, value, source)


class DeepSeekV32Detector(StreamingToolDetector):
    markers = (dsml.BLOCK_OPEN, dsml.INVOKE_OPEN, dsml.BLOCK_CLOSE, dsml.INVOKE_CLOSE, dsml.PARAM_CLOSE)

    def __init__(self) -> None:
        super().__init__()
        self.bot_token = dsml.BLOCK_OPEN
        self.eot_token = dsml.BLOCK_CLOSE

    def _reader(self, calls: CallStream) -> _DsmlReader:
        return _DsmlReader(calls)

    def structure_info(self) -> _GetInfoFunc:
        # The legacy structural tag constrains a JSON object between begin and
        # end: the reader takes a JSON invoke body as the arguments.
        return lambda name: StructureInfo(
            begin=f'{dsml.INVOKE_OPEN} name="{name}">',
            end=dsml.INVOKE_CLOSE,
            trigger=dsml.INVOKE_OPEN,
        )

    def get_structural_tag_name(self) -> str:
        return "deepseek_v3_2"  # xgrammar's built-in V3.2 structural tag
