"""String helpers shared by the incremental markup scanners.

The scanners (``dsml.py``, ``v31_markup.py``) keep an unconsumed buffer and,
after every chunk, release what can no longer change: text is held back only
while its tail could still grow into a marker.  ``Prose`` is the normal-text
side of that: the text between tool-call blocks.
"""

from __future__ import annotations

from typing import Callable, Sequence


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

    def before_call(self, text: str) -> None:
        """``text`` precedes a call block: emit it minus the separator."""
        if not (self.after_block and not text.strip()):
            self._emit(self._trim(text))
        self.after_block = False

    def before_markup(self, text: str) -> None:
        """``text`` precedes markup that is dropped (a stray closing tag)."""
        if not (self.after_block and not text.strip()):
            self._emit(text)
            self.after_block = False

    def take(self) -> str:
        text = "".join(self.out)
        self.out.clear()
        return text
