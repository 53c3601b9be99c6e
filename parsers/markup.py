"""What the incremental markup scanners (``dsml.py``, ``v31_markup.py``) share.

A scanner keeps an unconsumed buffer and, after every chunk, releases what can
no longer change: text is held back only while its tail could still grow into
a marker.  ``Prose`` is the normal-text side of that (the text between
tool-call blocks); ``CallBlockScanner`` is the driver and the two states every
format has: outside call blocks, and inside a block between calls.
"""

from __future__ import annotations

from typing import Callable, Optional, Sequence


def find_first(text: str, markers: Sequence[str], start: int = 0) -> tuple[int, str]:
    """(index, marker) of the earliest marker in ``text[start:]``; (-1, "") if none."""
    best, found = -1, ""
    for marker in markers:
        i = text.find(marker, start, best + len(marker) if best >= 0 else len(text))
        if i != -1 and (best == -1 or i < best):
            best, found = i, marker
    return best, found


def partial_tail(text: str, markers: Sequence[str]) -> int:
    """Length of the longest suffix of ``text`` that is a proper prefix of a marker."""
    window = len(text) - (max(map(len, markers)) - 1)
    longest = 0
    for first in {marker[0] for marker in markers}:
        at = text.find(first, max(window, 0))
        while at != -1 and len(text) - at > longest:
            tail = text[at:]
            if any(len(m) > len(tail) and m.startswith(tail) for m in markers):
                longest = len(tail)
                break
            at = text.find(first, at + 1)
    return longest


class Prose:
    """Normal text around tool-call blocks, released as early as streaming allows.

    ``trim`` removes the separator a call block eats from the text before it
    (DSML: one trailing blank line); ``holdable`` says how many trailing
    characters could still become that separator.  Text between a block and
    the next block (or the end) that is only whitespace is dropped: it is the
    model's formatting, not an answer.
    """

    def __init__(self, trim: Callable[[str], str], holdable: Callable[[str], int]):
        self._trim = trim
        self._holdable = holdable
        self.after_block = False
        self.out: list[str] = []

    def _emit(self, text: str) -> None:
        if text:
            self.out.append(text)

    def release(self, pending: str, eof: bool) -> str:
        """Emit what of ``pending`` (marker-free text) is final; return the rest."""
        if self.after_block and not pending.strip():
            return "" if eof else pending
        self.after_block = False
        if eof:
            self._emit(pending)
            return ""
        keep = self._holdable(pending)
        self._emit(pending[: len(pending) - keep])
        return pending[len(pending) - keep :]

    def before_call(self, text: str) -> str:
        """``text`` precedes a call block: emit it minus the separator; return what was not emitted."""
        dropped = self.after_block and not text.strip()
        self.after_block = False
        if dropped:
            return text
        kept = self._trim(text)
        self._emit(kept)
        return text[len(kept) :]

    def give_back(self, raw: str) -> None:
        """``raw`` was markup that never became a call: it is text after all."""
        self._emit(raw)

    def before_markup(self, text: str) -> None:
        """``text`` precedes markup that is dropped (a stray closing tag)."""
        if not (self.after_block and not text.strip()):
            self._emit(text)
            self.after_block = False

    def take(self) -> str:
        text = "".join(self.out)
        self.out.clear()
        return text


OUTSIDE, BLOCK = 0, 1  # states every CallBlockScanner has; formats number theirs from 2


class CallBlockScanner:
    """Driver for a format scanner: ``feed(chunk)`` / ``finish()`` -> events.

    Subclasses set the markers below, ``STEPS`` (state methods by state
    number; each returns True when it made progress) and ``CALL_STATE`` (where
    a call opener leads).  Events are tuples, first item the kind; prose comes
    as ("text", str).
    """

    BLOCK_OPEN = BLOCK_CLOSE = CALL_OPEN = ""
    STRAY_CLOSERS: tuple[str, ...] = ()  # dropped when found outside a block
    # A block (or bare call) that ends without opening a call is returned as text, markers and all,
    # so malformed markup never swallows what the model wrote.
    KEEP_UNPARSED_BLOCKS = False
    STEPS: tuple[str, ...] = ("_outside", "_block")
    CALL_STATE = BLOCK

    def __init__(self, prose: Prose) -> None:
        self._buf = ""
        self._state = OUTSIDE
        self._wrapped = False  # the current call sits inside a block
        self._prose = prose
        self._events: list[tuple] = []
        # Raw text from the opener of the current block while no call has been opened in it
        # (KEEP_UNPARSED_BLOCKS); its consumed part is what is given back if none is.
        self._unparsed: Optional[str] = None
        self._steps = tuple(getattr(self, name) for name in self.STEPS)
        self._outside_markers = (self.BLOCK_OPEN, self.CALL_OPEN, *self.STRAY_CLOSERS)
        self._block_markers = (self.CALL_OPEN, self.BLOCK_CLOSE)

    def feed(self, text: str) -> list[tuple]:
        self._buf += text
        if self._unparsed is not None:
            self._unparsed += text
        return self._run(eof=False)

    def finish(self) -> list[tuple]:
        return self._run(eof=True)

    def _run(self, eof: bool) -> list[tuple]:
        while self._steps[self._state](eof):
            pass
        if eof:
            self._give_back_unparsed()
        self._flush_prose()
        events, self._events = self._events, []
        return events

    def _flush_prose(self) -> None:
        text = self._prose.take()
        if text:
            self._events.append(("text", text))

    def _emit(self, *event) -> None:
        self._flush_prose()  # keep text and call events in order
        self._events.append(event)
        if event[0] == "invoke":
            self._unparsed = None

    def _open(self, before: str, marker: str) -> None:
        """A block or bare call opens after the prose ``before``."""
        separator = self._prose.before_call(before)
        if self.KEEP_UNPARSED_BLOCKS:
            self._unparsed = separator + marker + self._buf

    def _give_back_unparsed(self) -> bool:
        if self._unparsed is None:
            return False
        self._prose.give_back(self._unparsed[: len(self._unparsed) - len(self._buf)])
        self._unparsed = None
        return True

    def _leave_block(self) -> None:
        self._state = OUTSIDE
        if not self._give_back_unparsed():
            self._prose.after_block = True

    def _leave_call(self) -> None:
        """After a call: back inside its block, or outside for a bare call."""
        if self._wrapped:
            self._state = BLOCK
        else:
            self._leave_block()

    def _outside(self, eof: bool) -> bool:
        i, marker = find_first(self._buf, self._outside_markers)
        if i == -1:
            tail = 0 if eof else partial_tail(self._buf, self._outside_markers)
            cut = len(self._buf) - tail
            self._buf = self._prose.release(self._buf[:cut], eof) + self._buf[cut:]
            return False
        before, self._buf = self._buf[:i], self._buf[i + len(marker) :]
        if marker == self.BLOCK_OPEN:
            self._open(before, marker)
            self._state = BLOCK
        elif marker == self.CALL_OPEN:  # a bare call, without the block
            self._open(before, marker)
            self._wrapped = False
            self._state = self.CALL_STATE
        else:
            self._prose.before_markup(before)
            self._flush_prose()  # one text event per side of dropped markup
        return True

    def _block(self, eof: bool) -> bool:
        """Between calls inside a block: anything but a call or the close is dropped."""
        i, marker = find_first(self._buf, self._block_markers)
        if i == -1:
            keep = 0 if eof else partial_tail(self._buf, self._block_markers)
            self._buf = self._buf[len(self._buf) - keep :]
            return False
        self._buf = self._buf[i + len(marker) :]
        if marker == self.CALL_OPEN:
            self._wrapped = True
            self._state = self.CALL_STATE
        else:
            self._leave_block()
        return True
