"""DeepSeek-V3.1 / V3.2-Exp tool-call markup: an incremental scanner.

Grammar (``｜`` is U+FF5C, ``▁`` U+2581)::

    prose <｜tool▁calls▁begin｜>
      <｜tool▁call▁begin｜>NAME<｜tool▁sep｜>{json}<｜tool▁call▁end｜>  (repeated)
    <｜tool▁calls▁end｜>

A bare ``<｜tool▁call▁begin｜>`` without the outer token is accepted too.
Whitespace before the calls is removed (as sglang's in-tree parser does);
whitespace-only text after them is dropped; a stray closing token outside is
dropped; a partial special token at the end of a chunk is held back, never
released as text.  A name cut by another token opens no call; arguments end at
the call end, the calls end, the next call begin, or the end of text.  A block
(or bare call) that ends without opening any call, e.g. cut off before
``<｜tool▁sep｜>`` or missing its call markers, is text after all: it is
returned verbatim, markers and the whitespace before it included (vLLM's
DeepSeek-V3.1 parser tests expect the same).

Events: ("text", str), ("invoke", name | None), ("args", str),
("invoke_end", closed: bool).
"""

from __future__ import annotations

from .markup import BLOCK, CallBlockScanner, Prose, find_first, partial_tail

CALLS_BEGIN = "<｜tool▁calls▁begin｜>"
CALLS_END = "<｜tool▁calls▁end｜>"
CALL_BEGIN = "<｜tool▁call▁begin｜>"
CALL_END = "<｜tool▁call▁end｜>"
SEP = "<｜tool▁sep｜>"

_NAME_MARKERS = (SEP, CALL_END, CALLS_END, CALL_BEGIN, CALLS_BEGIN)
_ARGS_MARKERS = (CALL_END, CALLS_END, CALL_BEGIN, CALLS_BEGIN)

_NAME, _ARGS = range(2, 4)


def _trailing_space(text: str) -> int:
    return len(text) - len(text.rstrip())


class V31Scanner(CallBlockScanner):
    """Incremental V3.1 scanner: ``feed(chunk)`` / ``finish()`` -> events."""

    BLOCK_OPEN, BLOCK_CLOSE, CALL_OPEN = CALLS_BEGIN, CALLS_END, CALL_BEGIN
    STRAY_CLOSERS = (CALLS_END, CALL_END)
    KEEP_UNPARSED_BLOCKS = True
    STEPS = (*CallBlockScanner.STEPS, "_name", "_args")
    CALL_STATE = _NAME

    def __init__(self) -> None:
        super().__init__(Prose(str.rstrip, _trailing_space))

    def _name(self, eof: bool) -> bool:
        i, marker = find_first(self._buf, _NAME_MARKERS)
        if i == -1:
            if eof:  # cut off before the separator: no call was opened
                self._buf = ""
                self._leave_call()
            return eof
        name, self._buf = self._buf[:i].strip(), self._buf[i + len(marker) :]
        if marker == SEP:
            self._emit("invoke", name or None)
            self._state = _ARGS
        elif marker == CALLS_END:
            self._leave_block()
        elif marker == CALLS_BEGIN:
            self._state = BLOCK
        elif marker == CALL_END:
            self._leave_call()
        # CALL_BEGIN: a new call starts; this one never had a name
        return True

    def _args(self, eof: bool) -> bool:
        i, marker = find_first(self._buf, _ARGS_MARKERS)
        if i == -1:
            keep = 0 if eof else partial_tail(self._buf, _ARGS_MARKERS)
            args, self._buf = self._buf[: len(self._buf) - keep], self._buf[len(self._buf) - keep :]
            if args:
                self._emit("args", args)
            if eof:
                self._emit("invoke_end", False)
                self._leave_call()
            return eof
        if i:
            self._emit("args", self._buf[:i])
        self._buf = self._buf[i + len(marker) :]
        self._emit("invoke_end", marker == CALL_END)
        if marker == CALL_END:
            self._leave_call()
        elif marker == CALLS_END:
            self._leave_block()
        elif marker == CALL_BEGIN:
            self._state = _NAME
        else:  # CALLS_BEGIN inside arguments: a new block
            self._state = BLOCK
        return True
