"""DeepSeek's own sample turns parse back to the assistant messages they were rendered from."""

import json
import random

import pytest
from parser_harness import one_shot, random_cuts, sample_turns, streamed

TURNS = sample_turns()


@pytest.mark.parametrize("turn", range(len(TURNS)))
def test_sample_turn_round_trip(turn):
    thinking, output, message, tools = TURNS[turn]
    reasoning, content, calls = one_shot(output, tools, thinking=thinking)
    assert content == (message.get("content") or "")
    assert reasoning == ((message.get("reasoning_content") or "") if thinking else "")
    expected = [(c["function"]["name"], json.loads(c["function"]["arguments"])) for c in message.get("tool_calls") or []]
    assert [(name, json.loads(args)) for name, args in calls] == expected
    assert streamed(output, tools, random_cuts(random.Random(turn), len(output), 6), thinking=thinking) == \
        (reasoning, content, calls)
