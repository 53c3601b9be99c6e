"""The sharded model on CPU ranks (gloo): every layout gives one rank's and transformers' numbers.

One float32 server per layout, each run against the same checkpoint and the
same two prompts (151 tokens: sparse, chunked into 64-token pieces where
chunking is on; 37 tokens), batched, with prompt logprobs and 16 greedy tokens:

=================  ==================================================  ==============================
layout             flags                                               what is sharded
=================  ==================================================  ==============================
one-rank           (none)                                              nothing: the reference run
tp2-chunked        --tp 2 --chunked-prefill-size 64                    heads, experts' and FFN widths,
                                                                       vocab; chunked prefill
dp-attention       --tp 2 --dp 2 --enable-dp-attention                 attention per DP rank (one
                                                                       prompt each), MoE/FFN over TP
pp2                --pp-size 2 --moe-dense-tp-size 1,                  layers 0 / 1-2, as the cookbook's
                   SGLANG_PP_LAYER_PARTITION=1,2                       two-node PP command spells it
=================  ==================================================  ==============================

The checkpoint has 64 indexer heads (as the real model), so indexer scores do
not tie exactly and top-k is the same whatever the layout; tolerance 1e-4 on
every logprob (against transformers and against one rank), tokens equal.
"""

from __future__ import annotations

import pytest
import torch

from dsv32_plugin.testing import make_tiny_checkpoint
from dsv32_plugin.testing.server import launch

pytestmark = [pytest.mark.server, pytest.mark.slow]

LOGPROB_TOL = 1e-4
NEW_TOKENS = 16
# name -> (flags, environment); two ranks bind each rank's OpenMP threads to its own core
TWO_RANKS = {"SGLANG_CPU_OMP_THREADS_BIND": "0|1"}
LAYOUTS = {
    "one-rank": ((), {}),
    "tp2-chunked": (("--tp", "2", "--chunked-prefill-size", "64"), TWO_RANKS),
    "dp-attention": (("--tp", "2", "--dp", "2", "--enable-dp-attention"), TWO_RANKS),
    "pp2": (("--pp-size", "2", "--moe-dense-tp-size", "1"), {**TWO_RANKS, "SGLANG_PP_LAYER_PARTITION": "1,2"}),
}


def random_ids(n: int, seed: int) -> list[int]:
    return torch.randint(5, 600, (n,), generator=torch.Generator().manual_seed(seed)).tolist()


PROMPTS = [random_ids(151, seed=1), random_ids(37, seed=2)]


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """(checkpoint, workdir, per prompt: HF prompt logprobs, greedy tokens, their logprobs)."""
    from transformers import AutoModelForCausalLM

    root = tmp_path_factory.mktemp("multi_rank")
    ckpt = make_tiny_checkpoint(root / "tiny", overrides={"index_n_heads": 64})
    hf = AutoModelForCausalLM.from_pretrained(ckpt, dtype=torch.float32, attn_implementation="eager").eval()
    expected = []
    with torch.no_grad():
        for ids in PROMPTS:
            tokens = hf.generate(torch.tensor([ids]), max_new_tokens=NEW_TOKENS, do_sample=False,
                                 eos_token_id=None, pad_token_id=0)[0, len(ids):].tolist()
            full = ids + tokens
            lp = torch.log_softmax(hf(torch.tensor([full])).logits[0].float(), -1)
            picked = lp[torch.arange(len(full) - 1), torch.tensor(full[1:])]
            expected.append((picked[: len(ids) - 1], tokens, picked[len(ids) - 1:]))
    return ckpt, root, expected


def served(ckpt, root, flags, env) -> list[tuple[torch.Tensor, list[int], torch.Tensor]]:
    with launch(ckpt, root, "--dtype", "float32", *flags, env=env) as server:
        outs = server.generate({"input_ids": PROMPTS, "return_logprob": True, "logprob_start_len": 0,
                                 "sampling_params": {"max_new_tokens": NEW_TOKENS, "temperature": 0,
                                                     "ignore_eos": True}}, timeout=600)
    results = []
    for out in outs:
        meta = out["meta_info"]
        prompt_lp = torch.tensor([lp for lp, _, _ in meta["input_token_logprobs"][1:]])
        output_lp = torch.tensor([lp for lp, _, _ in meta["output_token_logprobs"]])
        results.append((prompt_lp, out["output_ids"], output_lp))
    return results


RESULTS: dict[str, list] = {}


@pytest.mark.parametrize("layout", list(LAYOUTS))
def test_layout_matches_transformers_and_one_rank(reference, layout):
    ckpt, root, expected = reference
    results = RESULTS[layout] = served(ckpt, root, *LAYOUTS[layout])
    for (prompt_lp, tokens, output_lp), (hf_prompt, hf_tokens, hf_output) in zip(results, expected):
        assert tokens == hf_tokens
        assert (prompt_lp - hf_prompt).abs().max().item() < LOGPROB_TOL
        assert (output_lp - hf_output).abs().max().item() < LOGPROB_TOL
    if layout != "one-rank" and "one-rank" in RESULTS:
        for (prompt_lp, tokens, output_lp), (one_prompt, one_tokens, one_output) in zip(results, RESULTS["one-rank"]):
            assert tokens == one_tokens
            assert (prompt_lp - one_prompt).abs().max().item() < LOGPROB_TOL
            assert (output_lp - one_output).abs().max().item() < LOGPROB_TOL
