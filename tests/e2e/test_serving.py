"""The stock server serving a tiny V3.2 checkpoint on CPU with the seed's flags.

One server for the module: default dtype (bf16, production FP8 indexer),
``--kv-cache-dtype fp8_e4m3`` (656-byte-style MLA rows), 64-token prefill
chunks, ``--context-length 1024``, ``--tool-call-parser deepseekv32
--reasoning-parser deepseek-v3``, no attention flag.
"""

from __future__ import annotations

import pytest
import torch

from dsv32_plugin.testing.server import launch

pytestmark = [pytest.mark.server, pytest.mark.slow]

CHUNK = 64


@pytest.fixture(scope="module")
def server(tmp_path_factory, tiny_v32_checkpoint):
    root = tmp_path_factory.mktemp("serving")
    with launch(tiny_v32_checkpoint, root, "--kv-cache-dtype", "fp8_e4m3", "--chunked-prefill-size", str(CHUNK),
                "--context-length", "1024", "--tool-call-parser", "deepseekv32",
                "--reasoning-parser", "deepseek-v3") as srv:
        yield srv


def chat_body(**extra) -> dict:
    return {"model": "tiny", "messages": [{"role": "user", "content": "What is a sparse attention?"}],
            "max_tokens": 12, "temperature": 0, **extra}


def test_server_runs_the_plugin_dsa_backend(server):
    log = server.log_text()
    assert "dsv32-plugin DSA backend: prefill=torch decode=torch kv_cache=fp8_e4m3 indexer=fp8" in log


def test_chat_completions_stream_equals_non_stream(server):
    status, full = server.post("/v1/chat/completions", chat_body())
    assert status == 200, full
    message = full["choices"][0]["message"]
    assert full["usage"]["completion_tokens"] == 12
    events = server.stream("/v1/chat/completions", chat_body(stream=True))
    deltas = [e["choices"][0]["delta"] for e in events if e.get("choices")]
    content = "".join(d.get("content") or "" for d in deltas)
    reasoning = "".join(d.get("reasoning_content") or "" for d in deltas)
    assert content == (message["content"] or "")
    assert reasoning == (message.get("reasoning_content") or "")
    assert any(e["choices"][0].get("finish_reason") == "length" for e in events if e.get("choices"))


def test_generate_prompt_longer_than_chunk(server):
    ids = torch.randint(5, 600, (3 * CHUNK + 9,), generator=torch.Generator().manual_seed(3)).tolist()
    out = server.generate({"input_ids": ids, "sampling_params": {"max_new_tokens": 6, "temperature": 0}})
    assert out["meta_info"]["prompt_tokens"] == len(ids)
    assert len(out["output_ids"]) == 6


def test_shared_long_prefix_reuses_cache_with_identical_output(server):
    prefix = torch.randint(5, 600, (2 * CHUNK + 20,), generator=torch.Generator().manual_seed(4)).tolist()
    body = {"input_ids": prefix + [21, 22, 23], "return_logprob": True,
            "sampling_params": {"max_new_tokens": 10, "temperature": 0, "ignore_eos": True}}
    first = server.generate(body)
    server.generate({"input_ids": prefix + [31], "sampling_params": {"max_new_tokens": 1}})  # other suffix
    second = server.generate(body)
    assert first["meta_info"]["cached_tokens"] == 0
    assert second["meta_info"]["cached_tokens"] >= 2 * CHUNK
    assert second["output_ids"] == first["output_ids"]
    first_lp = [x[0] for x in first["meta_info"]["output_token_logprobs"]]
    second_lp = [x[0] for x in second["meta_info"]["output_token_logprobs"]]
    assert max(abs(a - b) for a, b in zip(first_lp, second_lp)) < 1e-3


@pytest.mark.parametrize(
    "path,body",
    [
        pytest.param("/generate", {"input_ids": list(range(5, 1105)), "sampling_params": {"max_new_tokens": 2}},
                     id="prompt-longer-than-context"),
        pytest.param("/generate", {"input_ids": [], "sampling_params": {"max_new_tokens": 2}}, id="empty-input-ids"),
        pytest.param("/v1/completions", {"model": "tiny", "prompt": "", "max_tokens": 2}, id="empty-prompt"),
        pytest.param("/v1/chat/completions", {"model": "tiny", "messages": [], "max_tokens": 2}, id="no-messages"),
        pytest.param("/v1/chat/completions", chat_body(tools="not-a-list"), id="tools-not-a-list"),
        pytest.param("/v1/chat/completions", chat_body(tools=[{"type": "function", "function": {"nope": 1}}]),
                     id="tool-without-name"),
    ],
)
def test_bad_input_gets_4xx_and_server_keeps_serving(server, path, body):
    status, out = server.post(path, body)
    assert 400 <= status < 500, out
    assert "message" in str(out)
    ok = server.generate({"text": "still there?", "sampling_params": {"max_new_tokens": 2}})
    assert len(ok["output_ids"]) == 2
