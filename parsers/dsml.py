"""DeepSeek-V3.2 DSML tool-call markup: an incremental scanner and a one-shot parser.

Grammar (official encoder; ``｜`` is U+FF5C)::

    prose "\\n\\n" <｜DSML｜function_calls>
    <｜DSML｜invoke name="NAME">
    <｜DSML｜parameter name="K" string="true">RAW</｜DSML｜parameter>     (str, verbatim)
    <｜DSML｜parameter name="K" string="false">JSON</｜DSML｜parameter>   (anything else)
    </｜DSML｜invoke>
    </｜DSML｜function_calls>

Also accepted: bare invokes without the wrapper (what ``tool_choice=required``
structural tags produce), a JSON object as the whole invoke body, self-closing
``<｜DSML｜invoke name="x"/>``.

The scanner never raises and decides only from text it has seen, so feeding a
text in any chunking yields the same events (modulo how ``Text``/``Chunk``
pieces are split).  Its rules for broken markup:

* prose outside blocks is always kept; the one blank line before a block is
  removed; whitespace-only text after a block is dropped;
* a stray closing tag outside a block is dropped;
* inside a block, anything that is not an invoke is dropped;
* an invoke tag without a parsable ``name`` opens a call named ``None``
  (the caller skips it); a truncated invoke tag opens nothing;
* any DSML tag inside a parameter value ends that value; a new invoke, the
  block close or the end of text ends the current invoke (``closed=False``).

Events (tuples, first item is the kind)::

    ("text", str)                   normal text
    ("invoke", name | None)         a call starts
    ("param", name | None, string)  string: True / False / None (attribute missing)
    ("chunk", str)                  a piece of the current parameter's raw value
    ("param_end",)
    ("json", str)                   a whole JSON-object invoke body
    ("invoke_end", closed: bool)
"""

from __future__ import annotations

import re
from typing import NamedTuple, Optional

from .markup import CallBlockScanner, Prose, find_first, partial_tail

DSML = "｜DSML｜"
BLOCK_OPEN = f"<{DSML}function_calls>"
BLOCK_CLOSE = f"</{DSML}function_calls>"
INVOKE_OPEN = f"<{DSML}invoke"
INVOKE_CLOSE = f"</{DSML}invoke>"
PARAM_OPEN = f"<{DSML}parameter"
PARAM_CLOSE = f"</{DSML}parameter>"
TAG_STARTS = (f"<{DSML}", f"</{DSML}")

_BODY_MARKERS = (PARAM_OPEN, INVOKE_CLOSE, INVOKE_OPEN, BLOCK_CLOSE)
_ATTR = re.compile(r'([A-Za-z_]\w*)\s*=\s*"([^"]*)"')
_STRING_FLAG = {"true": True, "false": False}

_INVOKE_TAG, _INVOKE_BODY, _PARAM_TAG, _PARAM_VALUE, _JSON_BODY = range(2, 7)


def _trailing_newlines(text: str) -> int:
    """How much of the tail could still become the blank line before a block."""
    return 2 if text.endswith("\n\n") else 1 if text.endswith("\n") else 0


def _tag_attrs(inner: str) -> tuple[dict[str, str], bool]:
    """Attributes of a tag's inside (between the tag name and ``>``), self-closing flag."""
    inner = inner.rstrip()
    self_closing = inner.endswith("/")
    return dict(_ATTR.findall(inner.removesuffix("/"))), self_closing


class DsmlScanner(CallBlockScanner):
    """Incremental DSML scanner: ``feed(chunk)`` / ``finish()`` -> events."""

    BLOCK_OPEN, BLOCK_CLOSE, CALL_OPEN = BLOCK_OPEN, BLOCK_CLOSE, INVOKE_OPEN
    STRAY_CLOSERS = (BLOCK_CLOSE, INVOKE_CLOSE, PARAM_CLOSE)
    STEPS = (*CallBlockScanner.STEPS, "_invoke_tag", "_invoke_body", "_param_tag", "_param_value", "_json_body")
    CALL_STATE = _INVOKE_TAG

    def __init__(self) -> None:
        super().__init__(Prose(lambda t: t.removesuffix("\n\n"), _trailing_newlines))
        self._body_seen = False  # current invoke body has a non-space character
        self._json = ""  # JSON body collected so far

    def _tag_inside(self, eof: bool) -> Optional[tuple[str, str]]:
        """Inside of the tag at the buffer head and how it ended, or None to wait.

        "closed": at ``>``.  "broken": a ``<`` came first (it starts the next
        tag and stays in the buffer).  "cut": the text ended inside the tag.
        """
        gt, lt = self._buf.find(">"), self._buf.find("<")
        if gt != -1 and (lt == -1 or gt < lt):
            inside, self._buf = self._buf[:gt], self._buf[gt + 1 :]
            return inside, "closed"
        if lt != -1:
            inside, self._buf = self._buf[:lt], self._buf[lt:]
            return inside, "broken"
        if eof:
            self._buf = ""
            return "", "cut"
        return None

    def _invoke_tag(self, eof: bool) -> bool:
        tag = self._tag_inside(eof)
        if tag is None:
            return False
        inside, end = tag
        if end == "cut":  # the name never completed: nothing was opened
            self._leave_call()
            return True
        attrs, self_closing = _tag_attrs(inside) if end == "closed" else ({}, False)
        self._emit("invoke", attrs.get("name", "").strip() or None)
        self._body_seen = False
        if self_closing:
            self._emit("invoke_end", True)
            self._leave_call()
        else:
            self._state = _INVOKE_BODY
        return True

    def _invoke_body(self, eof: bool) -> bool:
        if not self._body_seen:
            stripped = self._buf.lstrip()
            if stripped:
                self._body_seen = True
                if stripped.startswith("{"):
                    self._buf, self._json = stripped, ""
                    self._state = _JSON_BODY
                    return True
        i, marker = find_first(self._buf, _BODY_MARKERS)
        if i == -1:
            if eof:
                self._buf = ""
                self._emit("invoke_end", False)
                self._leave_block()
                return True
            self._buf = self._buf[len(self._buf) - partial_tail(self._buf, _BODY_MARKERS) :]
            return False
        self._body_seen = True
        self._buf = self._buf[i + len(marker) :]
        if marker == PARAM_OPEN:
            self._state = _PARAM_TAG
            return True
        self._emit("invoke_end", marker == INVOKE_CLOSE)
        if marker == INVOKE_CLOSE:
            self._leave_call()
        elif marker == INVOKE_OPEN:  # the next invoke ends this one
            self._state = _INVOKE_TAG
        else:  # BLOCK_CLOSE without the invoke close
            self._leave_block()
        return True

    def _param_tag(self, eof: bool) -> bool:
        tag = self._tag_inside(eof)
        if tag is None:
            return False
        self._state = _INVOKE_BODY
        if tag[1] == "closed":
            attrs, self_closing = _tag_attrs(tag[0])
            self._emit("param", attrs.get("name") or None, _STRING_FLAG.get(attrs.get("string", "")))
            if self_closing:
                self._emit("param_end")
            else:
                self._state = _PARAM_VALUE
        return True

    def _param_value(self, eof: bool) -> bool:
        i, _ = find_first(self._buf, TAG_STARTS)
        if i == -1:
            keep = 0 if eof else partial_tail(self._buf, TAG_STARTS)
            value, self._buf = self._buf[: len(self._buf) - keep], self._buf[len(self._buf) - keep :]
            if value:
                self._emit("chunk", value)
            if eof:
                self._emit("param_end")
                self._state = _INVOKE_BODY
                return True
            return False
        if i:
            self._emit("chunk", self._buf[:i])
            self._buf = self._buf[i:]
        if self._buf.startswith(PARAM_CLOSE):
            self._buf = self._buf[len(PARAM_CLOSE) :]
        elif PARAM_CLOSE.startswith(self._buf) and not eof:
            return i > 0  # the close tag may still be arriving
        self._emit("param_end")  # explicit close, or another tag ends the value
        self._state = _INVOKE_BODY
        return True

    def _json_body(self, eof: bool) -> bool:
        i, _ = find_first(self._buf, TAG_STARTS)
        if i == -1 and not eof:
            keep = partial_tail(self._buf, TAG_STARTS)
            self._json += self._buf[: len(self._buf) - keep]
            self._buf = self._buf[len(self._buf) - keep :]
            return False
        end = len(self._buf) if i == -1 else i
        self._emit("json", self._json + self._buf[:end])
        self._buf, self._json = self._buf[end:], ""
        self._state = _INVOKE_BODY
        return True


class DsmlParam(NamedTuple):
    name: str
    value: str  # raw text between the tags, verbatim
    string: Optional[bool]  # the string="..." attribute; None when missing


class DsmlCall(NamedTuple):
    name: str
    params: list[DsmlParam]
    json_body: Optional[str]  # the invoke body when it was a JSON object
    closed: bool  # False when the invoke was cut off or never closed


def parse_dsml_calls(text: str) -> tuple[str, list[DsmlCall]]:
    """One-shot parse: (normal text, calls with raw parameter values).

    Calls whose name is missing and parameters without a name are left out;
    see the module docstring for how broken markup is treated.
    """
    scanner = DsmlScanner()
    normal: list[str] = []
    calls: list[DsmlCall] = []
    call: Optional[DsmlCall] = None
    param: Optional[list] = None
    for event in scanner.feed(text) + scanner.finish():
        kind = event[0]
        if kind == "text":
            normal.append(event[1])
        elif kind == "invoke":
            call = DsmlCall(event[1], [], None, False) if event[1] else None
        elif kind == "param":
            param = [event[1], "", event[2]] if event[1] else None
        elif kind == "chunk" and param is not None:
            param[1] += event[1]
        elif kind == "param_end":
            if call is not None and param is not None:
                call.params.append(DsmlParam(*param))
            param = None
        elif kind == "json" and call is not None:
            call = call._replace(json_body=event[1])
        elif kind == "invoke_end":
            if call is not None:
                calls.append(call._replace(closed=event[1]))
            call = None
    return "".join(normal), calls
