"""Canonical JSON text of one call's arguments, written piece by piece.

The pieces concatenate to exactly ``json.dumps(arguments, ensure_ascii=False)``
(separators ", " and ": "), and every prefix of that concatenation is a prefix
of valid JSON, so they can be streamed as OpenAI ``arguments`` deltas.  A
string value may be written in pieces while it is still arriving: JSON escapes
one character at a time, so escaping the pieces equals escaping the whole.
The first occurrence of a key wins; later duplicates are the caller's to skip
(``has``), because what was streamed cannot be taken back.
"""

from __future__ import annotations

import json
import re
from typing import Any

_SURROGATE = re.compile("[\ud800-\udfff]")


def _dumps(value: Any) -> str:
    text = json.dumps(value, ensure_ascii=False)
    if _SURROGATE.search(text):
        # Pair up surrogates JSON escapes produced; a lone one becomes U+FFFD
        # (it could not be sent as UTF-8).
        text = text.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "replace")
    return text


def _quote(text: str) -> str:
    return _dumps(text)


class ArgumentsWriter:
    def __init__(self) -> None:
        self._keys: set[str] = set()

    def has(self, key: str) -> bool:
        return key in self._keys

    def _key(self, key: str) -> str:
        lead = ", " if self._keys else "{"
        self._keys.add(key)
        return f"{lead}{_quote(key)}: "

    def member(self, key: str, value: Any) -> str:
        return self._key(key) + _dumps(value)

    def open_string(self, key: str) -> str:
        return self._key(key) + '"'

    @staticmethod
    def string_piece(text: str) -> str:
        return _quote(text)[1:-1]

    @staticmethod
    def close_string() -> str:
        return '"'

    def close(self) -> str:
        return "}" if self._keys else "{}"
