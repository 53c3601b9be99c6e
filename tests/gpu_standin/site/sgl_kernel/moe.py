"""MoE bookkeeping ops of the host's Triton fused-MoE runner: align/sort routed tokens, sum expert outputs.

Plain torch, no host synchronisation and no data-dependent shapes, so the ops
are captured in CUDA graphs (decode of a batch larger than the host's
single-block align path).
"""

from __future__ import annotations

import torch


def moe_align_block_size(topk_ids: torch.Tensor, num_experts: int, block_size: int,
                         sorted_token_ids: torch.Tensor, experts_ids: torch.Tensor,
                         num_tokens_post_pad: torch.Tensor, cumsum_buffer: torch.Tensor,
                         pad_sorted_token_ids: bool = False, ignore_invalid_expert: bool = False) -> None:
    """Group the routed (token, slot) pairs by expert, each group padded to a multiple of ``block_size``.

    The host's "+1 offset" convention: ``num_experts`` counts buckets, ``E + 1``;
    an expert id ``e`` in ``[-1, E)`` (``-1``: filtered out by expert
    parallelism) goes to bucket ``e + 1``. With ``n = topk_ids.numel()`` pairs,
    flat index ``i`` = token * top_k + slot:

    * ``num_tokens_post_pad[0]`` = ``P`` = sum over buckets of ``ceil(count / block_size) * block_size``;
    * ``sorted_token_ids [>= P]`` int32: bucket after bucket, the pair indices of that bucket in
      increasing order, each bucket then padded up to its padded size; with ``pad_sorted_token_ids``
      every slot not holding a pair is ``n`` (else it keeps what the caller put there);
    * ``experts_ids [blocks]`` int32: per ``block_size`` block of that layout, its expert id
      (bucket - 1, so ``-1`` for filtered pairs); ``-1`` for blocks at or past ``P``;
    * ``cumsum_buffer [num_experts + 1]`` int32: padded start offset of every bucket, then ``P``.

    The real kernel's order inside a bucket depends on thread scheduling; fused MoE reads
    pairs, not positions, so the stable order here is equivalent.
    """
    if ignore_invalid_expert:
        raise NotImplementedError(
            "moe_align_block_size(ignore_invalid_expert=True) is not in dsv32-plugin's GPU stand-in"
        )
    device = topk_ids.device
    buckets = topk_ids.reshape(-1).long() + 1
    n = buckets.numel()
    counts = torch.zeros(num_experts, dtype=torch.long, device=device)
    counts.scatter_add_(0, buckets, torch.ones_like(buckets))
    padded = (counts + block_size - 1) // block_size * block_size
    ends = padded.cumsum(0)
    starts = ends - padded
    total = ends[-1:]
    order = torch.argsort(buckets, stable=True)  # pair indices, bucket by bucket
    sorted_buckets = buckets[order]
    rank_in_bucket = torch.arange(n, device=device) - (counts.cumsum(0) - counts)[sorted_buckets]
    destination = starts[sorted_buckets] + rank_in_bucket
    if pad_sorted_token_ids:
        sorted_token_ids.fill_(n)
    sorted_token_ids.scatter_(0, destination, order.to(sorted_token_ids.dtype))
    block_starts = torch.arange(experts_ids.numel(), device=device) * block_size
    block_bucket = torch.searchsorted(ends, block_starts, right=True)
    experts_ids.copy_(torch.where(block_starts < total, block_bucket - 1, -1))
    num_tokens_post_pad[:1].copy_(total)
    cumsum_buffer[:1].zero_()
    cumsum_buffer[1 : num_experts + 1].copy_(ends)


def moe_sum_reduce(input: torch.Tensor, output: torch.Tensor, routed_scaling_factor: float) -> None:
    """``output [T, H] = routed_scaling_factor * sum_k input [T, k, H]`` (float32 sum, one rounding)."""
    output.copy_(input.float().sum(1) * routed_scaling_factor)


def moe_sum(input: torch.Tensor, output: torch.Tensor) -> None:
    """``output [T, H] = sum_k input [T, k, H]``."""
    output.copy_(input.float().sum(1))
