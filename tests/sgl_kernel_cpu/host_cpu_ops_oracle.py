"""Run sglang's own Triton kernels (TRITON_INTERPRET=1) and the plugin's torch stand-ins on the same
named inputs; print one JSON line {case: true if identical}. Used by test_stand_in_ops.py."""

import json
import os

assert os.environ.get("TRITON_INTERPRET") == "1", "the host kernels must run in the Triton interpreter"

import torch  # noqa: E402

from dsv32_plugin.sgl_kernel_cpu import assign_req_to_token_pool_cpu, copy_all_layer_kv_cache_cpu  # noqa: E402
from sglang.kernels.ops.kvcache.cache_move import copy_all_layer_kv_cache_tiled  # noqa: E402
from sglang.srt.mem_cache.allocation import assign_req_to_token_pool  # noqa: E402
from sglang.srt.utils import next_power_of_2  # noqa: E402

gen = torch.Generator().manual_seed(0)
results = {}

# (rows, width, req rows, starts, ends)
ASSIGN_CASES = {
    "one-request": (2, 40, [1], [0], [33]),
    "ragged-three-requests": (5, 70, [3, 0, 4], [0, 5, 33], [7, 5, 70]),
    "decode-one-token-each": (6, 9, [5, 2, 0, 1], [8, 3, 0, 4], [9, 4, 1, 5]),
}
for name, (rows, width, idx, starts, ends) in ASSIGN_CASES.items():
    idx, starts, ends = torch.tensor(idx), torch.tensor(starts), torch.tensor(ends)
    out = torch.randint(0, 10_000, (int((ends - starts).sum()),), generator=gen)
    table = torch.randint(-5, 0, (rows, width), generator=gen, dtype=torch.int32)
    host, ours = table.clone(), table.clone()
    assign_req_to_token_pool[(len(idx),)](idx, host, starts, ends, out, width, next_power_of_2(len(idx)))
    assign_req_to_token_pool_cpu(idx, ours, starts, ends, out, width)
    results[f"assign/{name}"] = torch.equal(host, ours)

# (per-buffer (rows, row shape, dtype), src, tgt)
COPY_CASES = {
    "disjoint": ([(12, (4, 6), torch.bfloat16)] * 2, [1, 2], [7, 8]),
    "overlapping-chain": ([(10, (24,), torch.bfloat16)] * 3, [1, 2, 3, 9], [2, 3, 0, 1]),
    "mixed-dtypes-odd-rows": ([(9, (5,), torch.float32), (9, (3, 7), torch.float8_e4m3fn)], [0, 8, 4], [5, 6, 0]),
}
for name, (specs, src, tgt) in COPY_CASES.items():
    bufs = [torch.randn(rows, *shape, generator=gen).to(dtype) for rows, shape, dtype in specs]
    twins = [b.clone() for b in bufs]
    originals = [b.clone() for b in bufs]
    strides = torch.tensor([b.stride(0) * b.element_size() for b in bufs])
    src_t, tgt_t = torch.tensor(src), torch.tensor(tgt)
    n = len(src)
    copy_all_layer_kv_cache_tiled[(len(bufs), -(-int(strides.max()) // 64))](
        torch.tensor([b.data_ptr() for b in bufs]), strides, tgt_t, src_t, n, next_power_of_2(n), BYTES_PER_TILE=64)
    copy_all_layer_kv_cache_cpu(torch.tensor([b.data_ptr() for b in twins]), strides, tgt_t, src_t)
    same = all(torch.equal(a.view(torch.uint8), b.view(torch.uint8)) for a, b in zip(bufs, twins))
    # and both did the copy: each target row now holds its source row as it was before
    gathered = all(torch.equal(b.view(torch.uint8)[tgt_t], o.view(torch.uint8)[src_t]) for b, o in zip(twins, originals))
    results[f"copy/{name}"] = same and gathered

# ---- speculative decoding (EAGLE / MTP) ----
from dsv32_plugin.sgl_kernel_cpu import speculative_ops as spec  # noqa: E402
from sglang.kernels.ops.speculative.cache_locs import (  # noqa: E402
    assign_draft_cache_locs_contiguous,
    assign_extend_cache_locs,
)
from sglang.kernels.ops.speculative.eagle import fill_accept_out_cache_loc, fill_bonus_tokens  # noqa: E402
from sglang.kernels.ops.speculative.spec_tree import (  # noqa: E402
    sgl_build_tree_kernel_triton,
    verify_tree_greedy_triton,
)


def same(*pairs):
    return all(torch.equal(a, b) for a, b in pairs)


for name, (bs, stride) in {"one-request": (1, 4), "ragged-accepts": (4, 3)}.items():
    tokens = torch.randint(0, 500, (bs, stride), generator=gen)
    lens = torch.randint(1, stride + 1, (bs,), generator=gen)
    host, ours = torch.zeros(bs, dtype=torch.int64), torch.zeros(bs, dtype=torch.int64)
    fill_bonus_tokens[(bs,)](tokens, lens, host, stride)
    spec.fill_bonus_tokens_cpu(tokens, lens, ours, stride)
    results[f"bonus/{name}"] = same((host, ours))

for name, index in {"none-rejected": [0, 1, 2, 3], "holes": [0, -1, 2, -1, -1, 5, 6, -1]}.items():
    index = torch.tensor(index)
    locs = torch.randint(0, 1000, (index.numel(),), generator=gen)
    host, ours = torch.full((index.numel(),), -7), torch.full((index.numel(),), -7)
    fill_accept_out_cache_loc[(index.numel(),)](index, locs, host, next_power_of_2(index.numel()))
    spec.fill_accept_out_cache_loc_cpu(index, locs, ours)
    results[f"accept-locs/{name}"] = same((host, ours))

for name, (topk, steps) in {"chain": (1, 3), "tree": (2, 2)}.items():
    table = torch.randint(0, 1000, (6, 40), generator=gen, dtype=torch.int32)
    rows, seq = torch.tensor([4, 1, 5]), torch.tensor([0, 17, 33])
    host, ours = torch.zeros(3 * topk * steps, dtype=torch.int64), torch.zeros(3 * topk * steps, dtype=torch.int64)
    assign_draft_cache_locs_contiguous[(3,)](rows, table, seq, host, 40, topk, steps, BS=3)
    spec.assign_draft_cache_locs_contiguous_cpu(rows, table, seq, ours, 40, topk, steps)
    results[f"draft-locs/{name}"] = same((host, ours))

table = torch.randint(0, 1000, (6, 40), generator=gen, dtype=torch.int32)
rows, starts, ends = torch.tensor([2, 0, 5]), torch.tensor([3, 0, 36]), torch.tensor([7, 0, 40])
host, ours = torch.zeros(8, dtype=torch.int64), torch.zeros(8, dtype=torch.int64)
assign_extend_cache_locs[(3,)](rows, table, starts, ends, host, 40, 4)
spec.assign_extend_cache_locs_cpu(rows, table, starts, ends, ours, 40)
results["extend-locs/ragged-with-empty"] = same((host, ours))


def draft_selection(bs, topk, depth, d):
    """EAGLE-shaped parent_list [bs, 1 + topk*(depth-1)] and sorted selected_index [bs, d-1]."""
    n_cand = topk + (depth - 1) * topk * topk
    parents = torch.full((bs, 1 + topk * (depth - 1)), -1, dtype=torch.int64)
    selected = torch.empty(bs, d - 1, dtype=torch.int64)
    for b in range(bs):
        for s in range(1, depth):  # the top-k expanded candidates of step s-1
            lo = 0 if s == 1 else topk + (s - 2) * topk * topk
            hi = topk if s == 1 else lo + topk * topk
            parents[b, 1 + (s - 1) * topk: 1 + s * topk] = lo + torch.randperm(hi - lo, generator=gen)[:topk]
        selected[b] = torch.randperm(n_cand, generator=gen)[: d - 1].sort().values
    return parents, selected


accepted_total, sibling_links = 0, 0  # the cases must exercise acceptance and sibling scans
TREES = {  # bs, topk, depth, draft tokens, mask mode
    "chain-full-mask": (2, 1, 3, 4, 0),
    "topk2-full-mask": (3, 2, 3, 6, 0),
    "topk4-qlen-only": (2, 4, 2, 8, 1),
}
for name, (bs, topk, depth, d, mode) in TREES.items():
    parents, selected = draft_selection(bs, topk, depth, d)
    seq_lens = torch.randint(1, 9, (bs,), generator=gen)
    n_mask = (int(seq_lens.sum()) * d + d * d * bs) if mode == 0 else d * d * bs
    outs = []
    for build in (sgl_build_tree_kernel_triton, spec.build_tree_kernel_efficient_cpu):
        mask = torch.ones(n_mask, dtype=torch.bool)  # FULL_MASK prefix columns stay as given
        pos, ridx = torch.full((bs * d,), -3, dtype=torch.int64), torch.full((bs, d), -3, dtype=torch.int64)
        nxt, sib = torch.full((bs, d), -1, dtype=torch.int64), torch.full((bs, d), -1, dtype=torch.int64)
        build(parents, selected, seq_lens, mask, pos, ridx, nxt, sib, topk, depth, d, mode)
        outs.append((mask, pos, ridx, nxt, sib))
    results[f"build-tree/{name}"] = same(*zip(*outs))

    # greedy verify over that tree; a 3-token vocabulary makes partial acceptance common
    _, _, ridx, nxt, sib = outs[1]
    candidates = torch.randint(0, 3, (bs, d), generator=gen)
    target = torch.randint(0, 3, (bs * d,), generator=gen)
    got = []
    for verify in (verify_tree_greedy_triton, spec.verify_tree_greedy_cpu):
        predicts, acc_idx = torch.zeros(bs * d, dtype=torch.int64), torch.full((bs, depth + 1), -1, dtype=torch.int64)
        acc_num = torch.zeros(bs, dtype=torch.int64)
        verify(predicts, acc_idx, acc_num, candidates, ridx, nxt, sib, target)
        got.append((predicts, acc_idx, acc_num))
    results[f"verify-greedy/{name}"] = same(*zip(*got))
    accepted_total += int(got[1][2].sum())
    sibling_links += int((sib != -1).sum())

results["nontrivial/accepted-and-siblings"] = accepted_total > 0 and sibling_links > 0

print(json.dumps(results))
