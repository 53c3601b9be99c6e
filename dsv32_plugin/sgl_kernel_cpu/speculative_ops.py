"""Torch versions of sgl_kernel's speculative-decoding (EAGLE / MTP) CPU ops, for the CPU stand-in.

Same signatures as the ``*_cpu`` ops sglang 0.5.23 calls (``kernels/ops/speculative/``); the
results are those of the host's Triton kernels of the same name (tests run both in the Triton
interpreter). Every op works in place on its output tensors. Sizes are tiny on the CPU engine,
so the ops loop in Python over ``.tolist()`` copies and write whole rows back.
"""

from __future__ import annotations

import torch

# Tree-mask layouts of build_tree_kernel_efficient (the host's TreeMaskMode).
FULL_MASK, QLEN_ONLY = 0, 1


def fill_bonus_tokens_cpu(accept_tokens, accept_lens, bonus_tokens, accept_stride: int) -> None:
    """``bonus_tokens[b] = accept_tokens.flat[b * accept_stride + accept_lens[b] - 1]`` (last accepted token)."""
    flat = accept_tokens.reshape(-1)
    idx = torch.arange(accept_lens.numel()) * accept_stride + accept_lens.long() - 1
    if ((accept_lens < 1) | (accept_lens > accept_stride)).any():
        raise ValueError(f"accept_lens must lie in [1, {accept_stride}]: {accept_lens.tolist()}")
    bonus_tokens.copy_(flat[idx].to(bonus_tokens.dtype))


def fill_accept_out_cache_loc_cpu(accept_index, out_cache_loc, accept_out_cache_loc) -> None:
    """Compact: the i-th accepted entry (``accept_index != -1``, in order) gets ``out_cache_loc[accept_index]``."""
    flat = accept_index.reshape(-1)
    kept = flat[flat != -1].long()
    accept_out_cache_loc[: kept.numel()] = out_cache_loc[kept].to(accept_out_cache_loc.dtype)


def assign_draft_cache_locs_contiguous_cpu(
    req_pool_indices, req_to_token, seq_lens, out_cache_loc, pool_len: int, topk: int, num_steps: int
) -> None:
    """Request b's draft slots: ``out[b*n:(b+1)*n] = req_to_token[row_b, seq_lens[b] : seq_lens[b] + n]``, n = topk*steps."""
    n = topk * num_steps
    for b, (row, start) in enumerate(zip(req_pool_indices.tolist(), seq_lens.tolist())):
        if start + n > pool_len:
            raise ValueError(f"draft slots [{start}, {start + n}) outside the pool row of {pool_len}")
        out_cache_loc[b * n : (b + 1) * n] = req_to_token[row, start : start + n].to(out_cache_loc.dtype)


def assign_extend_cache_locs_cpu(req_pool_indices, req_to_token, start_offset, end_offset, out_cache_loc, pool_len: int) -> None:
    """Gather ``req_to_token[row_i, start_i:end_i]`` for each request into ``out_cache_loc``, packed in order."""
    offset = 0
    for row, start, end in zip(req_pool_indices.tolist(), start_offset.tolist(), end_offset.tolist()):
        if not 0 <= start <= end <= pool_len:
            raise ValueError(f"slot range [{start}, {end}) outside the pool row of {pool_len}")
        out_cache_loc[offset : offset + end - start] = req_to_token[row, start:end].to(out_cache_loc.dtype)
        offset += end - start


def verify_tree_greedy_cpu(
    predicts, accept_index, accept_token_num, candidates,
    retrive_index, retrive_next_token, retrive_next_sibling, target_predict,
) -> None:
    """Greedy walk of each request's draft tree, accepting children that equal the target's prediction.

    Shapes: ``candidates``, ``retrive_*`` ``[bs, num_draft]``; ``accept_index [bs, num_spec]``;
    ``predicts`` and ``target_predict`` flat over ``bs * num_draft`` tree positions. From the root,
    each level scans the current node's children (``next_token`` then ``next_sibling`` links) for the
    token the target predicted at the last accepted position; the walk stops at the first level
    without a match. Writes the accepted positions (root first), their count (excluding the root)
    and ``predicts`` at every accepted position, including the bonus token at the last one.
    """
    bs, num_draft = candidates.shape
    num_spec = accept_index.shape[1]
    target = target_predict.reshape(-1).tolist()
    cands, index = candidates.tolist(), retrive_index.tolist()
    next_token, next_sibling = retrive_next_token.tolist(), retrive_next_sibling.tolist()
    flat_predicts = predicts.reshape(-1)
    for b in range(bs):
        last = index[b][0]
        accepted = [last]
        node = 0
        while len(accepted) < num_spec:
            want = target[last]
            child, hops = next_token[b][node], 0
            while child != -1 and cands[b][child] != want and hops < num_draft:  # bound: no cycle hangs
                child, hops = next_sibling[b][child], hops + 1
            if hops == num_draft:
                child = -1
            if child == -1:
                break
            flat_predicts[last] = want
            node, last = child, index[b][child]
            accepted.append(last)
        accept_index[b, : len(accepted)] = torch.tensor(accepted, dtype=accept_index.dtype)
        accept_token_num[b] = len(accepted) - 1
        flat_predicts[last] = target[last]


def build_tree_kernel_efficient_cpu(
    parent_list, selected_index, verified_seq_len, tree_mask, positions,
    retrieve_index, retrieve_next_token, retrieve_next_sibling,
    topk: int, depth: int, draft_token_num: int, tree_mask_mode: int,
) -> None:
    """Build each request's EAGLE draft tree from the draft steps' selections.

    Node 0 is the verified last token; node i >= 1 is ``selected_index[b, i-1]`` (a flat index
    into the draft steps' top-k outputs; ``// topk`` names its parent's entry in ``parent_list[b]``,
    0 meaning the root). Writes, per request: ``retrieve_index`` (flat position of each node),
    child/sibling links (``retrieve_next_token`` / ``retrieve_next_sibling``, expected pre-filled
    with -1; children listed in increasing node order), each node's ``positions`` (seq_len + its
    depth), and its row of the attention ``tree_mask`` (itself and its ancestors). ``FULL_MASK``
    rows span ``seq_len + draft_token_num`` columns after the request's earlier rows, and only the
    draft columns are written (the prefix part stays as the caller set it); ``QLEN_ONLY`` rows span
    ``draft_token_num`` columns.
    """
    if tree_mask_mode not in (FULL_MASK, QLEN_ONLY):
        raise NotImplementedError(f"tree_mask_mode {tree_mask_mode}: only FULL_MASK (0) and QLEN_ONLY (1)")
    d = draft_token_num
    parents, selected = parent_list.tolist(), selected_index.tolist()
    seq_lens = verified_seq_len.tolist()
    mask = tree_mask.reshape(-1)
    prefix = 0
    for b, seq_len in enumerate(seq_lens):
        sel, par = selected[b], parents[b]

        def parent_node(node: int):
            """Node index of ``node``'s parent (0 = root), or None if the parent was not selected."""
            parent_entry = sel[node - 1] // topk
            if parent_entry == 0:
                return 0
            token = par[parent_entry]
            return next((j + 1 for j in range(d - 1) if sel[j] == token), None)

        retrieve_index[b] = torch.arange(b * d, (b + 1) * d, dtype=retrieve_index.dtype)
        for node in range(d - 1, 0, -1):  # prepend: children end up in increasing order
            p = parent_node(node)
            if p is not None:
                first = int(retrieve_next_token[b, p])
                retrieve_next_token[b, p] = node
                if first != -1:
                    retrieve_next_sibling[b, node] = first
        for node in range(d):
            if tree_mask_mode == FULL_MASK:
                row = d * d * b + prefix * d + (seq_len + d) * node + seq_len
            else:
                row = d * d * b + d * node
            row_mask = [False] * d
            row_mask[0] = True  # the root (the verified token)
            hops, cur = 0, node
            while cur != 0 and hops < depth:
                row_mask[cur] = True
                hops += 1
                cur = parent_node(cur)
                if cur is None:
                    break
            mask[row : row + d] = torch.tensor(row_mask, dtype=mask.dtype)
            positions[b * d + node] = seq_len + hops
        prefix += seq_len
