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
the call end, the calls end, the next call begin, or the end of text.

Events: ("text", str), ("invoke", name | None), ("args", str),
("invoke_end", closed: bool).
"""

from __future__ import annotations

from .markup import Prose, find_first, partial_tail

CALLS_BEGIN = "<｜tool▁calls▁begin｜>"
CALLS_END = "<｜tool▁calls▁end｜>"
CALL_BEGIN = "<｜tool▁call▁begin｜>"
CALL_END = "<｜tool▁call▁end｜>"
SEP = "<｜tool▁sep｜>"

_OUTSIDE_MARKERS = (CALLS_BEGIN, CALL_BEGIN, CALLS_END, CALL_END)
_BLOCK_MARKERS = (CALL_BEGIN, CALLS_END)
_NAME_MARKERS = (SEP, CALL_END, CALLS_END, CALL_BEGIN, CALLS_BEGIN)
_ARGS_MARKERS = (CALL_END, CALLS_END, CALL_BEGIN, CALLS_BEGIN)

_OUTSIDE, _BLOCK, _NAME, _ARGS = range(4)


def _trailing_space(text: str) -> int:
    return len(text) - len(text.rstrip())


class V31Scanner:
    """Incremental V3.1 scanner: ``feed(chunk)`` / ``finish()`` -> events."""

    def __init__(self) -> None:
        self._buf = ""
        self._state = _OUTSIDE
        self._wrapped = False
        self._prose = Prose(str.rstrip, _trailing_space)
        self._events: list[tuple] = []

    def feed(self, text: str) -> list[tuple]:
        self._buf += text
        return self._run(eof=False)

    def finish(self) -> list[tuple]:
        return self._run(eof=True)

    def _run(self, eof: bool) -> list[tuple]:
        steps = (self._outside, self._block, self._name, self._args)
        while steps[self._state](eof):
            pass
        self._flush_prose()
        events, self._events = self._events, []
        return events

    def _flush_prose(self) -> None:
        text = self._prose.take()
        if text:
            self._events.append(("text", text))

    def _emit(self, *event) -> None:
        self._flush_prose()
        self._events.append(event)

    def _leave_call(self) -> None:
        self._state = _BLOCK if self._wrapped else _OUTSIDE
        self._prose.after_block = not self._wrapped

    def _outside(self, eof: bool) -> bool:
        i, marker = find_first(self._buf, _OUTSIDE_MARKERS)
        if i == -1:
            tail = 0 if eof else partial_tail(self._buf, _OUTSIDE_MARKERS)
            cut = len(self._buf) - tail
            self._buf = self._prose.release(self._buf[:cut], eof) + self._buf[cut:]
            return False
        before, self._buf = self._buf[:i], self._buf[i + len(marker) :]
        if marker == CALLS_BEGIN:
            self._prose.before_call(before)
            self._state = _BLOCK
        elif marker == CALL_BEGIN:
            self._prose.before_call(before)
            self._wrapped = False
            self._state = _NAME
        else:
            self._prose.before_markup(before)
            self._flush_prose()  # one text event per side of dropped markup
        return True

    def _block(self, eof: bool) -> bool:
        i, marker = find_first(self._buf, _BLOCK_MARKERS)
        if i == -1:
            self._buf = "" if eof else self._buf[len(self._buf) - partial_tail(self._buf, _BLOCK_MARKERS) :]
            return False
        self._buf = self._buf[i + len(marker) :]
        if marker == CALL_BEGIN:
            self._wrapped = True
            self._state = _NAME
        else:
            self._state = _OUTSIDE
            self._prose.after_block = True
        return True

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
        elif marker == CALL_BEGIN:
            pass  # a new call starts; this one never had a name
        elif marker == CALLS_END:
            self._state = _OUTSIDE
            self._prose.after_block = True
        elif marker == CALLS_BEGIN:
            self._state = _BLOCK
        else:  # CALL_END
            self._leave_call()
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
            self._state = _OUTSIDE
            self._prose.after_block = True
        elif marker == CALL_BEGIN:
            self._state = _NAME
        else:  # CALLS_BEGIN inside arguments: a new block
            self._state = _BLOCK
        return True
