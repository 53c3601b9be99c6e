"""The numbers one ordinary server gives, which context-parallel and prefill-decode layouts must reproduce.

Checkpoint: the tiny V3.2 with 64 indexer heads (scores never tie), made draftable as in
``test_mtp.py``; float32. The server runs EAGLE MTP (2 steps, top-k 1). Two calls:

1. prompts A (151 tokens), B (37) and D (21) in one call, prompt logprobs from position 0 and
   16 greedy tokens; all are longer than ``index_topk`` (16), so the indexer's choice matters;
2. prompt C = A's first 129 tokens + 22 new ones, after A: a 128-token prefix comes from the
   radix cache (``cached_tokens``; 129 shared tokens because EAGLE's radix keys are token pairs),
   prompt logprobs from position 129 (``logprob_start_len`` caps the reusable prefix), 8 greedy tokens.

``tests/e2e/conftest.py`` runs the one-rank server once per session (``one_rank_reference``).
"""

from __future__ import annotations

import torch

from dsv32_plugin.testing import make_tiny_checkpoint
from test_mtp import make_draftable
from test_multi_rank import random_ids
from dsv32_plugin.testing.server import launch

PREFIX = 128
A, B, D = random_ids(151, seed=21), random_ids(37, seed=22), random_ids(21, seed=24)
PROMPTS = [A, B, D]
C = A[: PREFIX + 1] + random_ids(22, seed=23)
# Reuse is capped at logprob_start_len tokens, and EAGLE's radix keys are token pairs: 129 tokens, 128 pairs.
C_LOGPROB_START = PREFIX + 1
EAGLE = ("--speculative-algorithm", "EAGLE", "--speculative-num-steps", "2", "--speculative-eagle-topk", "1",
         "--speculative-num-draft-tokens", "3")
BATCH = {"input_ids": PROMPTS, "return_logprob": True, "logprob_start_len": 0,
         "sampling_params": {"max_new_tokens": 16, "temperature": 0, "ignore_eos": True}}
REUSE = {"input_ids": C, "return_logprob": True, "logprob_start_len": C_LOGPROB_START,
         "sampling_params": {"max_new_tokens": 8, "temperature": 0, "ignore_eos": True}}


def make_checkpoint(directory):
    ckpt = make_tiny_checkpoint(directory, overrides={"index_n_heads": 64})
    make_draftable(ckpt)
    return ckpt


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
        batch = server.generate(BATCH, timeout=600)
        reuse = server.generate(REUSE, timeout=600)
        log = server.log_text()
    return [numbers(out) for out in batch] + [numbers(reuse)], log
