"""``--reasoning-parser deepseek-v3`` for DeepSeek-V3.2 / V3.2-Exp / V3.1 / Speciale.

Same serving attributes as the host's ``_DeepSeekV3Detector``: ``<think>`` /
``</think>``, ``reasoning_default = "explicit_thinking"`` (reasoning is forced
only for ``chat_template_kwargs: {"thinking": true}``, whose prompt ends in
``<think>``), ``thinks_internally = True``.

Behaviour (one scanner serves streaming and one-shot parsing, so they agree):

* forced (prompt ended in ``<think>``): output is reasoning until ``</think>``;
  not forced: output is content, unless it *starts* with ``<think>``;
* a ``<think>`` the model repeats at the start is dropped;
* a tool-call block opening inside reasoning (``<｜DSML｜function_calls>`` or
  ``<｜tool▁calls▁begin｜>``) ends the reasoning, and the block goes on as
  content to the tool-call parser (sglang 0.5.23 kept it in reasoning, so the
  call was lost);
* without ``</think>`` everything after the start is reasoning;
* a partial marker at a chunk end is held back, never leaked.
"""

from __future__ import annotations

from sglang.srt.parser.reasoning_parser import BaseReasoningFormatDetector, StreamingParseResult

from .dsml import BLOCK_OPEN
from .markup import find_first, partial_tail
from .v31_markup import CALLS_BEGIN

THINK_START = "<think>"
THINK_END = "</think>"
_REASONING_ENDS = (THINK_END, BLOCK_OPEN, CALLS_BEGIN)
_LONGEST_END = max(map(len, _REASONING_ENDS))


class DeepSeekV32ReasoningDetector(BaseReasoningFormatDetector):
    def __init__(
        self,
        stream_reasoning: bool = True,
        force_reasoning: bool = False,
        continue_final_message: bool = False,
        previous_content: str = "",
        force_nonempty_content: bool = False,
    ):
        super().__init__(
            THINK_START,
            THINK_END,
            # None: the host's Qwen3 list names tokens DeepSeek's vocabulary
            # lacks; strict thinking would ban their pieces ("<", "tool", ...).
            think_excluded_tokens=None,
            force_reasoning=force_reasoning,
            stream_reasoning=stream_reasoning,
            continue_final_message=continue_final_message,
            previous_content=previous_content,
            thinks_internally=True,
            reasoning_default="explicit_thinking",
            force_nonempty_content=force_nonempty_content,
        )
        # Whether a leading <think> may still arrive (not when continuing a message).
        self._at_start = not continue_final_message

    def _scan(self, text: str, final: bool) -> StreamingParseResult:
        """Advance over ``text``; ``final`` releases everything held back."""
        buf = self._buffer + text
        reasoning = normal = ""
        if self._at_start:
            if not final and THINK_START.startswith(buf) and buf != THINK_START:
                self._buffer = buf
                return StreamingParseResult()
            self._at_start = False
            if buf.startswith(THINK_START):
                buf = buf[len(THINK_START) :]
                self._in_reasoning = True
        if self._in_reasoning:
            # Held-back reasoning (stream_reasoning=False) was searched already,
            # all but a tail that may start a marker completed by ``text``.
            i, marker = find_first(buf, _REASONING_ENDS, max(0, len(buf) - len(text) - _LONGEST_END + 1))
            if i != -1:
                self._in_reasoning = False
                reasoning = buf[:i]
                # </think> is dropped; a tool-call opener stays for the tool parser.
                buf = buf[i + len(THINK_END) :] if marker == THINK_END else buf[i:]
            elif final:
                reasoning, buf = buf, ""
            elif self.stream_reasoning:
                cut = len(buf) - partial_tail(buf, _REASONING_ENDS)
                reasoning, buf = buf[:cut], buf[cut:]
        if not self._in_reasoning:
            normal, buf = buf, ""
        self._buffer = buf
        return StreamingParseResult(normal_text=normal, reasoning_text=reasoning)

    def _detect_and_parse_impl(self, text: str) -> StreamingParseResult:
        return self._scan(text, final=True)

    def _parse_streaming_increment_impl(self, new_text: str) -> StreamingParseResult:
        return self._scan(new_text, final=False)

    def finish(self) -> StreamingParseResult:
        still_reasoning = self._in_reasoning
        result = self._scan("", final=True)
        if self._force_nonempty_content and still_reasoning:
            # The host's rule: a turn that never left reasoning repeats it as content.
            text = self._accumulated_reasoning + result.reasoning_text
            self._accumulated_reasoning = ""
            return StreamingParseResult(normal_text=text)
        return result
