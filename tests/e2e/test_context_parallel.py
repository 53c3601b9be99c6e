"""Context-parallel prefill on two CPU ranks (gloo): both strategies give the one-rank numbers.

Servers (float32; the checkpoint, prompts and calls of ``one_rank_reference.py``, whose one-rank
server, run once per session, is the reference): ``--tp 2 --enable-prefill-cp --cp-strategy
interleave`` and ``... zigzag``, both with ``--chunked-prefill-size 128``, and interleave on two
pipeline stages (``--pp-size 2``, four ranks: the cookbook's two-node PP + CP layout). The reference
and zigzag run EAGLE MTP (2 steps, top-k 1): the draft's own prefill is context-parallel too. With
128-token chunks, A (151 tokens) is prefilled in chunks of 128 + 23, B and D unchunked; the
scheduler (billing each request whole 64-token pages of the 128) runs A's last chunk, over its
cached 128 tokens, and B in one extend batch (the test checks the server log for a batch of
several sequences); all are odd, longer than ``index_topk`` (16), and not multiples of 2·cp.

CP must reproduce the one-rank prompt and output logprobs within 1e-4 and the
same tokens; decode batches are not split, so the tokens check that every rank's
caches were complete after the CP prefill. Zigzag's EAGLE must verify and accept
exactly the drafts the reference's does (the draft's caches are whole too).
"""

from __future__ import annotations

import re

import pytest
from one_rank_reference import C, C_LOGPROB_START, EAGLE, PREFIX, PROMPTS, served
from test_multi_rank import LOGPROB_TOL, TWO_RANKS

pytestmark = [pytest.mark.server, pytest.mark.slow]

CP = ("--tp", "2", "--enable-prefill-cp", "--chunked-prefill-size", "128", "--cp-strategy")
# The cookbook's two-node PP + CP command, scaled down: 2 stages (layers 0 / 1-2) x CP 2, four ranks.
PP = ("--pp-size", "2", "--moe-dense-tp-size", "1")
FOUR_RANKS = {"SGLANG_CPU_OMP_THREADS_BIND": "0|1|0|1", "SGLANG_PP_LAYER_PARTITION": "1,2"}
LAYOUTS = {  # name -> (flags, environment)
    "cp-interleave": ((*CP, "interleave"), TWO_RANKS),
    "cp-zigzag": ((*CP, "zigzag", *EAGLE), TWO_RANKS),
    "pp2-cp-interleave": ((*CP, "interleave", *PP), FOUR_RANKS),
}


@pytest.mark.parametrize("layout", list(LAYOUTS))
def test_context_parallel_prefill_matches_one_rank(draftable_checkpoint, one_rank_reference, layout):
    flags, env = LAYOUTS[layout]
    results, log = served(*draftable_checkpoint, flags, env)
    assert [len(r["prompt"]) for r in results[:3]] == [len(p) - 1 for p in PROMPTS]
    c = results[3]
    assert len(c["prompt"]) >= len(C) - C_LOGPROB_START - 1 and c["cached"] >= PREFIX
    assert re.search(r"Prefill batch, #new-seq: [2-9]", log)  # a CP extend batch of several sequences
    for got, want in zip(results, one_rank_reference):
        assert got["tokens"] == want["tokens"]
        assert got["prompt"].shape == want["prompt"].shape
        assert (got["prompt"] - want["prompt"]).abs().max().item() < LOGPROB_TOL
        assert (got["output"] - want["output"]).abs().max().item() < LOGPROB_TOL
        if "EAGLE" in flags:
            assert got["drafts"] == want["drafts"] and got["drafts"][0] > 0
