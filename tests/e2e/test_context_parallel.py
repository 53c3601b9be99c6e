"""Context-parallel prefill on two CPU ranks (gloo): both strategies give the one-rank numbers.

Servers (float32, the 64-indexer-head checkpoint of ``test_multi_rank.py``, so
scores never tie): one rank without CP (the reference, no chunking), then
``--tp 2 --enable-prefill-cp --cp-strategy interleave`` and ``... zigzag``, both
with ``--chunked-prefill-size 64``. Each gets the same two calls:

1. prompts A (151 tokens) and B (37) in one call, prompt logprobs from position
   0 and 16 greedy tokens: A is prefilled in chunks 64 + 64 + 23, and its last
   chunk (over its cached 128-token prefix) shares an extend batch with the whole
   of B, which is not chunked; both are odd and longer than ``index_topk`` (16),
   and neither is a multiple of 2·cp;
2. prompt C = A's first 128 tokens + 23 new ones, after A: a 128-token prefix
   comes from the radix cache (``cached_tokens``), prompt logprobs of the 23 new
   rows (``logprob_start_len`` 128 lets the prefix be reused), 8 greedy tokens.

CP must reproduce the one-rank prompt and output logprobs within 1e-4 and the
same tokens; decode batches are not split, so the tokens check that every rank's
caches were complete after the CP prefill.
"""

from __future__ import annotations

import pytest
import torch

from dsv32_plugin.testing import make_tiny_checkpoint
from test_multi_rank import LOGPROB_TOL, TWO_RANKS, random_ids
from v32_server import generate, launch

pytestmark = [pytest.mark.server, pytest.mark.slow]

PREFIX = 128
A, B = random_ids(151, seed=21), random_ids(37, seed=22)
C = A[:PREFIX] + random_ids(23, seed=23)
LAYOUTS = {
    "one-rank": (),
    "cp-interleave": ("--tp", "2", "--enable-prefill-cp", "--cp-strategy", "interleave", "--chunked-prefill-size", "64"),
    "cp-zigzag": ("--tp", "2", "--enable-prefill-cp", "--cp-strategy", "zigzag", "--chunked-prefill-size", "64"),
}


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    root = tmp_path_factory.mktemp("context_parallel")
    return make_tiny_checkpoint(root / "tiny", overrides={"index_n_heads": 64}), root


def numbers(out: dict) -> dict:
    meta = out["meta_info"]
    return {
        "prompt": torch.tensor([lp for lp, _, _ in meta["input_token_logprobs"] if lp is not None]),
        "tokens": out["output_ids"],
        "output": torch.tensor([lp for lp, _, _ in meta["output_token_logprobs"]]),
        "cached": meta["cached_tokens"],
    }


def served(ckpt, root, flags) -> list[dict]:
    env = TWO_RANKS if flags else {}
    with launch(ckpt, root, "--dtype", "float32", *flags, env=env) as server:
        batch = generate(server, {"input_ids": [A, B], "return_logprob": True, "logprob_start_len": 0,
                                  "sampling_params": {"max_new_tokens": 16, "temperature": 0, "ignore_eos": True}},
                         timeout=600)
        reuse = generate(server, {"input_ids": C, "return_logprob": True, "logprob_start_len": PREFIX,
                                  "sampling_params": {"max_new_tokens": 8, "temperature": 0, "ignore_eos": True}},
                         timeout=600)
    return [numbers(out) for out in batch] + [numbers(reuse)]


RESULTS: dict[str, list] = {}


@pytest.mark.parametrize("layout", list(LAYOUTS))
def test_context_parallel_prefill_matches_one_rank(checkpoint, layout):
    results = RESULTS[layout] = served(*checkpoint, LAYOUTS[layout])
    a, b, c = results
    assert (len(a["prompt"]), len(b["prompt"])) == (len(A) - 1, len(B) - 1)
    assert len(c["prompt"]) >= len(C) - PREFIX - 1 and c["cached"] >= PREFIX
    if layout == "one-rank":
        return
    if "one-rank" not in RESULTS:
        pytest.skip("the one-rank reference did not run")
    for got, want in zip(results, RESULTS["one-rank"]):
        assert got["tokens"] == want["tokens"]
        assert got["prompt"].shape == want["prompt"].shape
        assert (got["prompt"] - want["prompt"]).abs().max().item() < LOGPROB_TOL
        assert (got["output"] - want["output"]).abs().max().item() < LOGPROB_TOL
