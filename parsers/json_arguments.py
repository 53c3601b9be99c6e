"""Stream one JSON object of tool-call arguments (V3.1 format) into a ``CallStream``.

The object text arrives in pieces.  Members are written as soon as they are
complete; a string value the schema admits as a string is written while it
arrives (escapes decoded, then re-encoded canonically), so long code arguments
stream.  Scalars wait for the character after them (``1`` may become ``12``).
At the first character that cannot continue the object, reading stops: the
members so far are the arguments and the rest is ignored.  A value that is not
an object gives ``{}``.  Decisions depend only on the text, never on how it
was split.
"""

from __future__ import annotations

import json
import re

from .call_stream import CallStream
from .schema import json_type, reject_constant

_START, _KEY, _COLON, _VALUE, _STRING, _AFTER, _DONE = range(7)
_WS = " \t\n\r"
_NUMBER_CHARS = "0123456789.eE+-"
_RUN = re.compile(r'[^"\\]*')
_ESCAPES = {'"': '"', "\\": "\\", "/": "/", "b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t"}
_HEX4 = re.compile(r"[0-9a-fA-F]{4}")
_PARTIAL_U_ESCAPE = re.compile(r"\\(u[0-9a-fA-F]{0,3})?")


_DECODER = json.JSONDecoder(strict=False, parse_constant=reject_constant)


def _string_end(text: str) -> int:
    """Index of the quote closing the string that opens ``text``; -1 if not there yet."""
    i = 1
    while True:
        i = _RUN.match(text, i).end()
        if i >= len(text):
            return -1
        if text[i] == '"':
            return i
        i += 2  # skip the escaped character


def decode_string_prefix(text: str, final: bool) -> tuple[str, int, bool, bool]:
    """Decode JSON string content up to its closing quote.

    Returns (decoded, consumed, closed, bad).  Without ``final``, an escape
    that is not complete yet is left unconsumed; with it, it is dropped.
    Surrogate escapes are paired; a lone one becomes U+FFFD.
    """
    out: list[str] = []
    i, n = 0, len(text)
    while i < n:
        run = _RUN.match(text, i)
        out.append(run.group())
        i = run.end()
        if i >= n:
            break
        if text[i] == '"':
            return "".join(out), i + 1, True, False
        if i + 1 >= n:
            break  # a lone backslash at the end
        escape = text[i + 1]
        if escape in _ESCAPES:
            out.append(_ESCAPES[escape])
            i += 2
            continue
        if escape != "u":
            return "".join(out), i, False, True
        if not _HEX4.fullmatch(text, i + 2, i + 6):
            if i + 6 > n and _PARTIAL_U_ESCAPE.fullmatch(text, i):
                break  # \u escape still arriving
            return "".join(out), i, False, True
        code = int(text[i + 2 : i + 6], 16)
        if 0xD800 <= code < 0xDC00:  # high surrogate: needs a low one next
            rest = text[i + 6 : i + 12]
            if len(rest) == 6 and rest[:2] == "\\u" and _HEX4.fullmatch(rest, 2):
                low = int(rest[2:], 16)
                if 0xDC00 <= low < 0xE000:
                    out.append(chr(0x10000 + ((code - 0xD800) << 10) + (low - 0xDC00)))
                    i += 12
                    continue
            elif len(rest) < 6 and not final and (not rest or _PARTIAL_U_ESCAPE.fullmatch(rest)):
                break  # the low surrogate may still arrive
            out.append("\ufffd")
        elif 0xDC00 <= code < 0xE000:
            out.append("\ufffd")
        else:
            out.append(chr(code))
        i += 6
    return "".join(out), i, False, False


class JsonArgumentsReader:
    def __init__(self, calls: CallStream) -> None:
        self._calls = calls
        self._buf = ""
        self._state = _START
        self._key = ""

    def feed(self, text: str) -> None:
        self._buf += text
        self._run(eof=False)

    def finish(self) -> None:
        self._run(eof=True)

    def _run(self, eof: bool) -> None:
        steps = {
            _START: self._start,
            _KEY: self._read_key,
            _COLON: self._colon,
            _VALUE: self._value,
            _STRING: self._string,
            _AFTER: self._after,
        }
        while self._state != _DONE and steps[self._state](eof):
            pass
        if self._state == _DONE:
            self._buf = ""

    def _next_char(self) -> str:
        self._buf = self._buf.lstrip(_WS)
        return self._buf[:1]

    def _expect(self, char: str, state: int) -> bool:
        found = self._next_char()
        if not found:
            return False
        self._buf = self._buf[1:]
        self._state = state if found == char else _DONE
        return True

    def _start(self, eof: bool) -> bool:
        return self._expect("{", _KEY)

    def _colon(self, eof: bool) -> bool:
        return self._expect(":", _VALUE)

    def _after(self, eof: bool) -> bool:
        found = self._next_char()
        if not found:
            return False
        self._buf = self._buf[1:]
        self._state = _KEY if found == "," else _DONE
        return True

    def _read_key(self, eof: bool) -> bool:
        found = self._next_char()
        if not found:
            return False
        if found != '"':  # "}" closes the object; anything else ends reading too
            self._state = _DONE
            return True
        end = _string_end(self._buf)
        if end == -1:
            if eof:
                self._state = _DONE
            return eof
        try:
            self._key = _DECODER.decode(self._buf[: end + 1])
        except ValueError:
            self._state = _DONE
            return True
        self._buf = self._buf[end + 1 :]
        self._state = _COLON
        return True

    def _value(self, eof: bool) -> bool:
        found = self._next_char()
        if not found:
            if eof:
                self._state = _DONE
            return eof
        if found == '"' and self._calls.streams_string(self._key):
            self._calls.open_string(self._key)
            self._buf = self._buf[1:]
            self._state = _STRING
            return True
        try:
            value, end = _DECODER.raw_decode(self._buf)
        except ValueError:
            if eof:
                self._state = _DONE
            return eof  # may be incomplete
        scalar = json_type(value) in ("integer", "number", "boolean", "null")
        if scalar and not eof and (end == len(self._buf) or self._buf[end] in _NUMBER_CHARS):
            return False  # "1" may become "12", "1." "1.5"
        source = value if isinstance(value, str) else self._buf[:end]
        self._calls.member(self._key, value, source)
        self._buf = self._buf[end:]
        self._state = _AFTER
        return True

    def _string(self, eof: bool) -> bool:
        decoded, consumed, closed, bad = decode_string_prefix(self._buf, final=eof)
        self._calls.string_piece(decoded)
        self._buf = self._buf[consumed:]
        if closed or bad or eof:
            self._calls.close_string()
            self._state = _AFTER if closed else _DONE
            return True
        return False
