"""DeepSeek's own encoder samples, reproduced byte for byte (data/README.md)."""

import copy
import json
import pathlib

import pytest

from dsv32_plugin.encoding import encode_messages

DATA = pathlib.Path(__file__).parent / "data"

SAMPLES = [
    pytest.param("test_input.json", "test_output.txt", id="weather-system-tools"),
    pytest.param("test_input_search_wo_date.json", "test_output_search_wo_date.txt", id="search-developer-tools"),
]


def load_sample(input_name: str, output_name: str) -> tuple[dict, str]:
    sample = json.loads((DATA / input_name).read_text(encoding="utf-8"))
    expected = (DATA / output_name).read_text(encoding="utf-8")
    # A file-ending newline is not part of the prompt: every official prompt ends in EOS.
    return sample, expected.removesuffix("\n")


@pytest.mark.parametrize(("input_name", "output_name"), SAMPLES)
def test_official_sample_byte_exact(input_name, output_name):
    sample, expected = load_sample(input_name, output_name)
    before = copy.deepcopy(sample)
    prompt = encode_messages(sample["messages"], tools=sample.get("tools"), thinking=True)
    assert prompt.encode("utf-8") == expected.encode("utf-8")
    assert sample == before  # nothing mutated


@pytest.mark.parametrize(("input_name", "output_name"), SAMPLES)
def test_official_sample_with_dict_arguments(input_name, output_name):
    # sglang hands the encoder history arguments already parsed to dicts.
    sample, expected = load_sample(input_name, output_name)
    for message in sample["messages"]:
        for call in message.get("tool_calls") or []:
            call["function"]["arguments"] = json.loads(call["function"]["arguments"])
    assert encode_messages(sample["messages"], tools=sample.get("tools"), thinking=True) == expected


def test_tools_on_message_equals_tools_argument():
    sample, expected = load_sample("test_input.json", "test_output.txt")
    messages = copy.deepcopy(sample["messages"])
    messages[0]["tools"] = sample["tools"]
    assert encode_messages(messages, thinking=True) == expected
