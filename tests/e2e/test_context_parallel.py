"""Context-parallel prefill on two CPU ranks (gloo): both strategies give the one-rank numbers.

Servers (float32; the tiny checkpoint with 64 indexer heads, so scores never tie, made
draftable as in ``test_mtp.py``): one rank without CP (the reference), then
``--tp 2 --enable-prefill-cp --cp-strategy interleave`` and ``... zigzag``, both with
``--chunked-prefill-size 128``, and interleave on two pipeline stages (``--pp-size 2``, four ranks:
the cookbook's two-node PP + CP layout). The reference and zigzag run EAGLE MTP (2 steps, top-k 1):
the draft's own prefill is context-parallel too. Each server gets the same two calls:

1. prompts A (151 tokens), B (37) and D (21) in one call, prompt logprobs from
   position 0 and 16 greedy tokens: A is prefilled in chunks of 128 + 23, B and D
   unchunked; the scheduler (billing each request whole 64-token pages of the 128)
   runs A's last chunk, over its cached 128 tokens, and B in one extend batch (the
   test checks the server log for a batch of several sequences); all are odd,
   longer than ``index_topk`` (16), and not multiples of 2·cp;
2. prompt C = A's first 129 tokens + 22 new ones, after A: a 128-token prefix
   comes from the radix cache (``cached_tokens``; 129 shared tokens because EAGLE's
   radix keys are token pairs), prompt logprobs from position 129 (``logprob_start_len``
   caps the reusable prefix), 8 greedy tokens.

CP must reproduce the one-rank prompt and output logprobs within 1e-4 and the
same tokens; decode batches are not split, so the tokens check that every rank's
caches were complete after the CP prefill. Zigzag's EAGLE must verify and accept
exactly the drafts the reference's does (the draft's caches are whole too).
"""

from __future__ import annotations

import re

import pytest
import torch

from dsv32_plugin.testing import make_tiny_checkpoint
from test_mtp import make_draftable
from test_multi_rank import LOGPROB_TOL, TWO_RANKS, random_ids
from dsv32_plugin.testing.server import launch

pytestmark = [pytest.mark.server, pytest.mark.slow]

PREFIX = 128
A, B, D = random_ids(151, seed=21), random_ids(37, seed=22), random_ids(21, seed=24)
PROMPTS = [A, B, D]
C = A[: PREFIX + 1] + random_ids(22, seed=23)
# Reuse is capped at logprob_start_len tokens, and EAGLE's radix keys are token pairs: 129 tokens, 128 pairs.
C_LOGPROB_START = PREFIX + 1
EAGLE = ("--speculative-algorithm", "EAGLE", "--speculative-num-steps", "2", "--speculative-eagle-topk", "1",
         "--speculative-num-draft-tokens", "3")
CP = ("--tp", "2", "--enable-prefill-cp", "--chunked-prefill-size", "128", "--cp-strategy")
# The cookbook's two-node PP + CP command, scaled down: 2 stages (layers 0 / 1-2) x CP 2, four ranks.
PP = ("--pp-size", "2", "--moe-dense-tp-size", "1")
FOUR_RANKS = {"SGLANG_CPU_OMP_THREADS_BIND": "0|1|0|1", "SGLANG_PP_LAYER_PARTITION": "1,2"}
LAYOUTS = {  # name -> (flags, environment)
    "one-rank": (EAGLE, {}),
    "cp-interleave": ((*CP, "interleave"), TWO_RANKS),
    "cp-zigzag": ((*CP, "zigzag", *EAGLE), TWO_RANKS),
    "pp2-cp-interleave": ((*CP, "interleave", *PP), FOUR_RANKS),
}


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    root = tmp_path_factory.mktemp("context_parallel")
    ckpt = make_tiny_checkpoint(root / "tiny", overrides={"index_n_heads": 64})
    make_draftable(ckpt)
    return ckpt, root


def numbers(out: dict) -> dict:
    meta = out["meta_info"]
    return {
        "prompt": torch.tensor([lp for lp, _, _ in meta["input_token_logprobs"] if lp is not None]),
        "tokens": out["output_ids"],
        "output": torch.tensor([lp for lp, _, _ in meta["output_token_logprobs"]]),
        "cached": meta["cached_tokens"],
        "drafts": (meta.get("spec_verify_ct"), meta.get("spec_num_correct_drafts")),
    }


def served(ckpt, root, flags, env) -> tuple[list[dict], str]:
    """Per prompt (A, B, D, C) its numbers, and the server log."""
    with launch(ckpt, root, "--dtype", "float32", *flags, env=env) as server:
        batch = server.generate({"input_ids": PROMPTS, "return_logprob": True, "logprob_start_len": 0,
                                  "sampling_params": {"max_new_tokens": 16, "temperature": 0, "ignore_eos": True}},
                         timeout=600)
        reuse = server.generate({"input_ids": C, "return_logprob": True, "logprob_start_len": C_LOGPROB_START,
                                  "sampling_params": {"max_new_tokens": 8, "temperature": 0, "ignore_eos": True}},
                         timeout=600)
        log = server.log_text()
    return [numbers(out) for out in batch] + [numbers(reuse)], log


RESULTS: dict[str, list] = {}


@pytest.mark.parametrize("layout", list(LAYOUTS))
def test_context_parallel_prefill_matches_one_rank(checkpoint, layout):
    flags, env = LAYOUTS[layout]
    results, log = served(*checkpoint, flags, env)
    RESULTS[layout] = results
    assert [len(r["prompt"]) for r in results[:3]] == [len(p) - 1 for p in PROMPTS]
    c = results[3]
    assert len(c["prompt"]) >= len(C) - C_LOGPROB_START - 1 and c["cached"] >= PREFIX
    if layout == "one-rank":
        return
    assert re.search(r"Prefill batch, #new-seq: [2-9]", log)  # a CP extend batch of several sequences
    if "one-rank" not in RESULTS:
        pytest.skip("the one-rank reference did not run")
    for got, want in zip(results, RESULTS["one-rank"]):
        assert got["tokens"] == want["tokens"]
        assert got["prompt"].shape == want["prompt"].shape
        assert (got["prompt"] - want["prompt"]).abs().max().item() < LOGPROB_TOL
        assert (got["output"] - want["output"]).abs().max().item() < LOGPROB_TOL
        if "EAGLE" in flags:
            assert got["drafts"] == want["drafts"] and got["drafts"][0] > 0
