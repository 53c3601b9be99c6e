"""Run sglang's own Triton kernels (TRITON_INTERPRET=1) and the plugin's torch stand-ins on the same
named inputs; print one JSON line {case: true if identical}. Used by test_cpu_fallbacks.py."""

import json
import os

assert os.environ.get("TRITON_INTERPRET") == "1", "the host kernels must run in the Triton interpreter"

import torch  # noqa: E402

from dsv32_plugin.hooks.sgl_kernel_cpu import assign_req_to_token_pool_cpu, copy_all_layer_kv_cache_cpu  # noqa: E402
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

print(json.dumps(results))
