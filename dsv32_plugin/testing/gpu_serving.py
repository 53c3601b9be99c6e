"""What the GPU serving runs share (tests/gpu/serving_driver.py, benchmarks/bench_cp_prefill.py).

* ``make_serving_checkpoint``: ``tiny`` is ``make_tiny_checkpoint(fp8=True)`` widened to whole FP8
  blocks (``TINY_GPU``), loaded from its safetensors; ``real`` is ``make_real_width_dir`` (every
  per-layer size of the released model, 2 layers + MTP, for ``--load-format dummy``);
* ``TOKEN_RANGE``: prompt token ids without special tokens;
* ``first_difference`` / ``at_near_tie``: where two greedy runs first differ, and whether the
  top-2 logprobs were so close there that rounding may legitimately pick the other token.
"""

from __future__ import annotations

import pathlib
from typing import Optional

TOKEN_RANGE = (3, 600)  # byte and merge tokens of the tiny tokenizer: no special tokens
NEAR_TIE = 0.05  # nats between the top-2 logprobs: a divergence there is rounding, not a bug

# The tiny checkpoint, widened where the host's FP8 path needs whole 128-blocks: every GEMM's K
# (hidden 128; the per-token-group activation quant takes 128-groups) and, under --tp 2, every shard
# (8 heads: o_proj's 2 x 128 input rows; FFN widths 256 = 2 x 128). 64 indexer heads: no score ties.
TINY_GPU = {"index_n_heads": 64, "hidden_size": 128, "num_attention_heads": 8, "num_key_value_heads": 8,
            "intermediate_size": 256, "moe_intermediate_size": 256}


def make_serving_checkpoint(kind: str, directory: pathlib.Path) -> pathlib.Path:
    """``tiny`` or ``real`` (see the module docstring), written under ``directory``."""
    if kind == "tiny":
        from dsv32_plugin.testing import make_tiny_checkpoint

        return make_tiny_checkpoint(directory / "tiny-fp8", fp8=True, overrides=TINY_GPU)
    if kind != "real":
        raise ValueError(f"checkpoint kind must be tiny or real, not {kind!r}")
    from dsv32_plugin.testing.real_width import make_real_width_dir

    return make_real_width_dir(directory / "real-width-fp8", layers=2, fp8=True)


def first_difference(tokens: list, other_tokens: list, gaps: list, other_gaps: list) -> Optional[dict]:
    """None when the two greedy sequences are equal; else the first position where they differ and
    the smaller top-2 logprob gap of the two runs there (None when neither run has one)."""
    if tokens == other_tokens:
        return None
    pos = next((j for j, (x, y) in enumerate(zip(tokens, other_tokens)) if x != y), min(len(tokens), len(other_tokens)))
    there = [g for g in gaps[pos:pos + 1] + other_gaps[pos:pos + 1] if g is not None]
    return {"position": pos, "top2_gap": min(there) if there else None}


def at_near_tie(difference: dict) -> bool:
    """A first difference where rounding may legitimately pick the other token."""
    return difference["top2_gap"] is not None and difference["top2_gap"] < NEAR_TIE
