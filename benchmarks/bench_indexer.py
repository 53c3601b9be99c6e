"""Lightning-indexer benchmarks on one GPU (issue 5 targets), printed as a table and saved as JSON.

    python benchmarks/bench_indexer.py [--out results.json] [--quick] [--sanitize]
    python benchmarks/bench_indexer.py --plot results.json docs/perf_indexer.png   # no GPU needed

Measured in one process, same inputs for every variant:
- ceilings: device-to-device copy bandwidth (bytes read + written) and torch's
  FP8 GEMM rate (``torch._scaled_mm``, 8192^3);
- prefill T=4096 queries at the end of S=32768 keys, 64 heads x 128, top-2048:
  useful FP8 TFLOP/s = 2 * valid_pairs * H * D / time (causal part only), with
  the score and top-k stages also timed alone, over a sweep of tile configs;
- decode B=64, s_q=1, contexts 32K and 128K: achieved bandwidth over the bytes
  it must read (132 B/token + q + weights), as a fraction of the copy bandwidth;
- top-k 2048 of 16K fp32 scores, B=1, against torch.topk.
``--sanitize`` instead runs every indexer kernel once at small shapes (for
``compute-sanitizer --tool memcheck``).
"""

import argparse
import json
import math
import time

import torch
import triton

from dsv32_plugin.kernels import reference as ref
from dsv32_plugin.kernels.cache.index_k import store_index_k
from dsv32_plugin.kernels.indexer.decode import indexer_topk_decode, topk_positions_to_slots, write_decode_logits
from dsv32_plugin.kernels.indexer.prefill import indexer_topk_prefill, write_prefill_logits
from dsv32_plugin.kernels.indexer.topk import topk_rows, topk_splits

HEADS, DIM, TOPK = 64, 128, 2048
INDEX_K_BYTES_PER_TOKEN = DIM + 4


def bench(fn, rep_ms=200):
    """Median time in seconds (CUDA events via triton.testing.do_bench)."""
    return triton.testing.do_bench(fn, warmup=25, rep=rep_ms, return_mode="median") * 1e-3


def graph_us(fn):
    """Median replay time (µs) of ``fn`` captured in a CUDA graph, as a server replays a decode step."""
    fn()
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        fn()
    return bench(graph.replay) * 1e6


def topk_matches_torch(scores, starts, ends, out, rows):
    """On sampled rows: the chosen scores equal torch.topk's as multisets (ties may pick other columns)."""
    for r in rows:
        s, e = int(starts[r]), int(ends[r])
        want = torch.topk(scores[r, s:e], min(TOPK, e - s)).values.sort().values
        got = out[r][out[r] >= 0].long()
        if not ((got >= s) & (got < e)).all() or got.unique().numel() != got.numel():
            return False
        if not torch.equal(scores[r, got].sort().values, want):
            return False
    return True


def ceilings():
    n = 4 << 30
    src = torch.randint(0, 255, (n,), dtype=torch.uint8, device="cuda")
    dst = torch.empty_like(src)
    copy_s = bench(lambda: dst.copy_(src))
    del src, dst
    m = 8192
    a = torch.randn(m, m, device="cuda").to(torch.float8_e4m3fn)
    b = torch.randn(m, m, device="cuda").to(torch.float8_e4m3fn).t()
    one = torch.ones((), device="cuda")
    mm_s = bench(lambda: torch._scaled_mm(a, b, scale_a=one, scale_b=one, out_dtype=torch.bfloat16))
    return {"copy_GBps": 2 * n / copy_s / 1e9, "fp8_gemm_TFLOPs": 2 * m**3 / mm_s / 1e12}


def fp8_queries(shape, gen):
    q, q_scale = ref.quantize_fp8_blockwise(torch.randn(*shape, HEADS, DIM, generator=gen, device="cuda"))
    weights = torch.randn(*shape, HEADS, generator=gen, device="cuda") * q_scale[..., 0] * (HEADS * DIM) ** -0.5
    return q, weights


PREFILL_CONFIGS = [  # (block_t, block_s, num_warps, num_stages); first = the default
    (4, 64, 4, 3), (4, 64, 4, 4), (8, 64, 4, 3), (4, 128, 8, 3), (2, 64, 4, 3), (8, 64, 8, 3),
]
PREFILL_TOPK_CONFIGS = [(2048, 8), (4096, 8), (1024, 4), (2048, 4)]  # (block, num_warps)


def prefill_inputs(gen, num_q=4096, num_k=32768):
    """(q, weights, k, k_scale, start, end): the last ``num_q`` of ``num_k`` tokens, causal."""
    q, weights = fp8_queries((num_q,), gen)
    k, k_scale = ref.quantize_fp8_blockwise(torch.randn(num_k, DIM, generator=gen, device="cuda"))
    start = torch.zeros(num_q, dtype=torch.int32, device="cuda")
    end = (num_k - num_q + 1 + torch.arange(num_q, device="cuda")).int()
    return q, weights, k, k_scale[:, 0].contiguous(), start, end


def bench_prefill(gen, quick):
    num_q, num_k = 4096, 32768
    q, weights, k, k_scale, start, end = prefill_inputs(gen, num_q, num_k)
    flops = 2 * float((end - start).sum()) * HEADS * DIM
    logits = torch.empty(num_q, num_k, dtype=torch.float32, device="cuda")
    rows = []
    for bt, bs, warps, stages in PREFILL_CONFIGS[:2] if quick else PREFILL_CONFIGS:
        cfg = dict(block_t=bt, block_s=bs, num_warps=warps, num_stages=stages)
        try:
            logit_s = bench(lambda: write_prefill_logits(q, k, k_scale, weights, start, end, logits, 0, num_q, **cfg))
        except Exception as exc:  # a config that does not compile (e.g. out of shared memory)
            rows.append({"config": cfg, "error": repr(exc)[:200]})
            continue
        rows.append({"config": cfg, "logits_ms": logit_s * 1e3, "logits_TFLOPs": flops / logit_s / 1e12})
    best = min((r for r in rows if "error" not in r), key=lambda r: r["logits_ms"])
    cfg = best["config"]
    write_prefill_logits(q, k, k_scale, weights, start, end, logits, 0, num_q, **cfg)
    topk_sweep = [{"block": b, "num_warps": w, "ms": bench(lambda: topk_rows(logits, start, end, TOPK, block=b, num_warps=w)) * 1e3}
                  for b, w in PREFILL_TOPK_CONFIGS]
    topk_s = bench(lambda: topk_rows(logits, start, end, TOPK))
    exact = topk_matches_torch(logits, start, end, topk_rows(logits, start, end, TOPK), range(0, num_q, 97))
    total_s = bench(lambda: indexer_topk_prefill(q, k, k_scale, weights, start, end, TOPK, **cfg), rep_ms=500)
    torch_topk_s = bench(lambda: torch.topk(logits[:, : num_k - num_q], TOPK, dim=1, sorted=False))
    return {
        "shape": f"T={num_q} S={num_k} H={HEADS} D={DIM} topk={TOPK} causal tail",
        "valid_pairs": float((end - start).sum()), "flops": flops, "sweep": rows, "best_config": cfg,
        "topk_sweep": topk_sweep, "topk_exact_vs_torch": exact,
        "logits_ms": best["logits_ms"], "topk_ms": topk_s * 1e3, "total_ms": total_s * 1e3,
        "useful_TFLOPs": flops / total_s / 1e12, "torch_topk_ms_same_rows": torch_topk_s * 1e3,
    }


DECODE_CONFIGS = [  # (block_s, num_warps, num_stages, programs_per_sm); first = default
    (128, 4, 3, 4), (128, 4, 3, 8), (128, 4, 4, 4), (128, 4, 3, 2), (64, 4, 3, 8), (256, 8, 3, 4)]


def decode_inputs(gen, context, batch=64):
    """(q, cache, weights, seq_lens, page_table): random FP8 index-K pages, shuffled, ``context`` tokens each."""
    max_pages = context // 64
    num_pages = batch * max_pages
    cache = torch.randint(0, 255, (num_pages, 64 * INDEX_K_BYTES_PER_TOKEN), dtype=torch.uint8, device="cuda")
    cache.view(torch.float32)[:, 16 * DIM :] = torch.rand(num_pages, 64, device="cuda") + 0.5  # sane scales
    keys = cache[:, : 64 * DIM]
    keys[(keys & 0x7F) == 0x7F] = 0  # random bytes: drop the two e4m3 NaN codes
    page_table = torch.randperm(num_pages, device="cuda", generator=gen).view(batch, max_pages).int()
    seq_lens = torch.full((batch,), context, dtype=torch.int32, device="cuda")
    q, weights = fp8_queries((batch, 1), gen)
    return q, cache, weights, seq_lens, page_table


def bench_decode(gen, context, copy_gbps, quick, batch=64):
    q, cache, weights, seq_lens, page_table = decode_inputs(gen, context, batch)
    must_read = batch * context * INDEX_K_BYTES_PER_TOKEN + q.numel() + weights.numel() * 4
    logits = torch.empty(batch, context, dtype=torch.float32, device="cuda")
    rows = []
    for bs, warps, stages, per_sm in DECODE_CONFIGS[:2] if quick else DECODE_CONFIGS:
        cfg = dict(block_s=bs, num_warps=warps, num_stages=stages, programs_per_sm=per_sm)
        try:
            t = bench(lambda: write_decode_logits(q, cache, weights, seq_lens, page_table, logits, **cfg))
        except Exception as exc:
            rows.append({"config": cfg, "error": repr(exc)[:200]})
            continue
        rows.append({"config": cfg, "logits_us": t * 1e6, "logits_GBps": must_read / t / 1e9})
    best = min((r for r in rows if "error" not in r), key=lambda r: r["logits_us"])
    cfg = best["config"]
    write_decode_logits(q, cache, weights, seq_lens, page_table, logits, **cfg)
    zeros = torch.zeros(batch, dtype=torch.int32, device="cuda")
    topk_s = bench(lambda: topk_rows(logits, zeros, seq_lens, TOPK))
    exact = topk_matches_torch(logits, zeros, seq_lens, topk_rows(logits, zeros, seq_lens, TOPK), range(0, batch, 7))
    total_s = bench(lambda: indexer_topk_decode(q, cache, weights, seq_lens, page_table, TOPK, **cfg))
    graph_s = graph_us(lambda: indexer_topk_decode(q, cache, weights, seq_lens, page_table, TOPK, **cfg)) * 1e-6
    torch_topk_s = bench(lambda: torch.topk(logits, TOPK, dim=1, sorted=False))
    gbps = must_read / graph_s / 1e9
    return {
        "shape": f"B={batch} s_q=1 context={context} H={HEADS} D={DIM} topk={TOPK}",
        "must_read_bytes": must_read, "sweep": rows, "best_config": cfg, "topk_exact_vs_torch": exact,
        "logits_us": best["logits_us"], "topk_us": topk_s * 1e6, "total_us": total_s * 1e6,
        "graph_total_us": graph_s * 1e6, "achieved_GBps": gbps, "fraction_of_copy_bw": gbps / copy_gbps,
        "torch_topk_us_same_rows": torch_topk_s * 1e6,
    }


TOPK_SPLITS = [1, 4, 8, 16, 32]


def flashinfer_topk():
    """FlashInfer's top-k as a peer, or why it cannot run here."""
    try:
        import flashinfer
        return flashinfer.top_k, None
    except Exception as exc:  # not installed, or its JIT cannot build on this machine
        return None, f"{type(exc).__name__}: {exc}"[:200]


def bench_topk_single_row(gen, cols):
    """Top-2048 of one row of ``cols`` fp32 scores (B=1 decode), per launch split, against torch.topk."""
    scores = torch.randn(1, cols, generator=gen, device="cuda")
    zero = torch.zeros(1, dtype=torch.int32, device="cuda")
    end = torch.full((1,), cols, dtype=torch.int32, device="cuda")
    rows = [{"splits": s, "graph_us": graph_us(lambda: topk_rows(scores, zero, end, TOPK, splits=s))} for s in TOPK_SPLITS]
    default_us = graph_us(lambda: topk_rows(scores, zero, end, TOPK))
    peer, why = flashinfer_topk()
    out = topk_rows(scores, zero, end, TOPK)
    return {"shape": f"B=1 n={cols} topk={TOPK}", "sweep": rows, "default_us": default_us,
            "default_splits": topk_splits(1, cols, torch.cuda.get_device_properties(0).multi_processor_count),
            "exact_vs_torch": topk_matches_torch(scores, zero, end, out, [0]),
            "torch_topk_graph_us": graph_us(lambda: torch.topk(scores, TOPK, dim=1, sorted=False)),
            "flashinfer_graph_us": graph_us(lambda: peer(scores, TOPK)) if peer else None, "flashinfer_error": why}


SERVER_PAGE_TABLE_TOKENS = 163840  # a graph's page table spans the model's whole context (req_to_token's width)


def bench_decode_server_shapes(gen):
    """The indexer's decode step as the server's graph runs it: B requests at context C, page tables
    of the whole 160K context (most of it beyond C), scores + top-k, CUDA graph."""
    rows = []
    for batch in (1, 32, 128):
        for context in (4096, 32768):
            q, cache, weights, seq_lens, page_table = decode_inputs(gen, context, batch)
            wide = torch.zeros(batch, SERVER_PAGE_TABLE_TOKENS // 64, dtype=torch.int32, device="cuda")
            wide[:, : page_table.shape[1]] = page_table
            logits = torch.empty(batch, SERVER_PAGE_TABLE_TOKENS, dtype=torch.float32, device="cuda")
            zeros = torch.zeros(batch, dtype=torch.int32, device="cuda")
            out = indexer_topk_decode(q, cache, weights, seq_lens, wide, TOPK)
            write_decode_logits(q, cache, weights, seq_lens, wide, logits)
            rows.append({
                "batch": batch, "context": context,
                "scores_plus_topk_us": graph_us(lambda: indexer_topk_decode(q, cache, weights, seq_lens, wide, TOPK)),
                "scores_us": graph_us(lambda: write_decode_logits(q, cache, weights, seq_lens, wide, logits)),
                "topk_us": graph_us(lambda: topk_rows(logits, zeros, seq_lens, TOPK)),
                "torch_topk_us": graph_us(lambda: torch.topk(logits[:, :context], TOPK, dim=1, sorted=False)),
                "must_read_MB": batch * context * INDEX_K_BYTES_PER_TOKEN / 1e6,
                "exact_vs_torch": topk_matches_torch(logits, zeros, seq_lens, out.view(batch, TOPK), range(0, batch, 7)),
            })
            print("decode (server shapes)", rows[-1], flush=True)
            del q, cache, weights, page_table, wide, logits
    return rows


def sanitize_run():
    """Every indexer kernel once at small shapes (for compute-sanitizer memcheck)."""
    gen = torch.Generator(device="cuda").manual_seed(0)
    seq_lens = [130, 5, 64]
    cache = torch.full((12, 64 * INDEX_K_BYTES_PER_TOKEN // 4), math.nan, device="cuda").view(torch.uint8)
    page_table = torch.randperm(12, generator=gen, device="cuda")[:9].view(3, 3).int()
    for b, length in enumerate(seq_lens):
        pos = torch.arange(length, device="cuda")
        store_index_k(cache, page_table[b, pos // 64].long() * 64 + pos % 64,
                      torch.randn(length, DIM, generator=gen, device="cuda").bfloat16())
    q, weights = fp8_queries((3, 2), gen)
    out = indexer_topk_decode(q, cache, weights, torch.tensor(seq_lens, device="cuda"), page_table, topk=32)
    topk_positions_to_slots(out, page_table, page_size=64)
    qp, wp = fp8_queries((5,), gen)
    k, k_scale = ref.quantize_fp8_blockwise(torch.randn(300, DIM, generator=gen, device="cuda"))
    start = torch.tensor([0, 10, 299, 5, 0], dtype=torch.int32, device="cuda")
    end = torch.tensor([300, 200, 300, 5, 40], dtype=torch.int32, device="cuda")
    indexer_topk_prefill(qp, k, k_scale[:, 0].contiguous(), wp, start, end, topk=32)
    torch.cuda.synchronize()
    print("sanitize run: store_index_k, decode logits, prefill logits, topk_rows, positions_to_slots done")


def plot(result_path, image_path):
    """Bar charts of the measurements against the issue-5 targets (matplotlib, CPU)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    with open(result_path) as f:
        r = json.load(f)
    fig, axes = plt.subplots(1, 3, figsize=(14, 4.2))
    p = r["prefill"]
    ax = axes[0]
    vals = [p["flops"] / p["logits_ms"] / 1e9, p["useful_TFLOPs"], r["ceilings"]["fp8_gemm_TFLOPs"]]
    ax.bar(["scores only", "scores + top-k", "torch FP8 GEMM\n8192^3"], vals, color=["#8ab", "#27a", "#bbb"])
    ax.axhline(600, color="r", ls="--", label="target 600")
    ax.set_ylabel("FP8 TFLOP/s (useful, causal)")
    ax.set_title("indexer prefill T=4096 S=32768\n64 heads x 128, top-2048")
    ax.legend()
    ax = axes[1]
    labels, total, scores_only = [], [], []
    for d in r["decode"]:
        ctx = d["shape"].split("context=")[1].split()[0]
        labels.append(f"B=64, {int(ctx) // 1024}K")
        total.append(d["fraction_of_copy_bw"])
        scores_only.append(d["must_read_bytes"] / (d["logits_us"] * 1e-6) / 1e9 / r["ceilings"]["copy_GBps"])
    x = range(len(labels))
    ax.bar([i - 0.2 for i in x], scores_only, 0.4, label="scores only", color="#8ab")
    ax.bar([i + 0.2 for i in x], total, 0.4, label="scores + top-k (graph)", color="#27a")
    ax.axhline(0.5, color="r", ls="--", label="target 0.5")
    ax.set_xticks(list(x), labels)
    ax.set_ylabel(f"fraction of copy bandwidth ({r['ceilings']['copy_GBps']:.0f} GB/s)")
    ax.set_title("indexer decode (132 B/token + q + weights)")
    ax.set_ylim(0, 1.2)
    ax.legend(fontsize=8, loc="upper left")
    ax = axes[2]
    labels, ours, peer = [], [], []
    for tk in r["topk_single_row"]:
        labels.append(tk["shape"].split("n=")[1].split()[0])
        ours.append(tk["default_us"])
        peer.append(tk["torch_topk_graph_us"])
    x = range(len(labels))
    ax.bar([i - 0.2 for i in x], ours, 0.4, label="ours", color="#27a")
    ax.bar([i + 0.2 for i in x], peer, 0.4, label="torch.topk", color="#bbb")
    ax.set_xticks(list(x), labels)
    ax.set_ylabel("us (CUDA-graph replay)")
    ax.set_title("top-2048 of n fp32, B=1 (targets: 15 us at 16K, 20 us at 32K)")
    ax.legend()
    fig.suptitle(f"{r['device']}, torch {r['torch']}, triton {r['triton']}")
    fig.tight_layout()
    fig.savefig(image_path, dpi=110)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", default="bench_indexer.json")
    parser.add_argument("--quick", action="store_true", help="fewer configs")
    parser.add_argument("--sanitize", action="store_true")
    parser.add_argument("--plot", nargs=2, metavar=("RESULTS_JSON", "IMAGE"), help="draw results, no GPU")
    args = parser.parse_args()
    if args.plot:
        plot(*args.plot)
        return
    if args.sanitize:
        sanitize_run()
        return
    gen = torch.Generator(device="cuda").manual_seed(0)
    t0 = time.time()
    result = {"device": torch.cuda.get_device_name(), "torch": torch.__version__, "triton": triton.__version__}
    result["ceilings"] = ceilings()
    print("ceilings", result["ceilings"], flush=True)
    result["topk_single_row"] = [bench_topk_single_row(gen, cols) for cols in (16384, 32768)]
    print("topk", result["topk_single_row"], flush=True)
    result["decode_server_shapes"] = bench_decode_server_shapes(gen)
    result["decode"] = [bench_decode(gen, ctx, result["ceilings"]["copy_GBps"], args.quick) for ctx in (32768, 131072)]
    print("decode", [(d["shape"], d["graph_total_us"], d["fraction_of_copy_bw"]) for d in result["decode"]], flush=True)
    result["prefill"] = bench_prefill(gen, args.quick)
    result["seconds"] = time.time() - t0
    with open(args.out, "w") as f:
        json.dump(result, f, indent=1)
    p = result["prefill"]
    print(f"\n{'measurement':58s} {'value':>12s}  target")
    print(f"{'copy bandwidth (GB/s)':58s} {result['ceilings']['copy_GBps']:12.0f}")
    print(f"{'torch FP8 GEMM 8192^3 (TFLOP/s)':58s} {result['ceilings']['fp8_gemm_TFLOPs']:12.0f}")
    print(f"{'prefill ' + p['shape'] + ' useful TFLOP/s':58s} {p['useful_TFLOPs']:12.0f}  >= 600")
    print(f"{'  total / logits / top-k ms (top-k exact vs torch)':58s} {p['total_ms']:.3f} / {p['logits_ms']:.3f} / "
          f"{p['topk_ms']:.3f} ({p['topk_exact_vs_torch']})")
    for d in result["decode"]:
        print(f"{'decode ' + d['shape'] + ' us':58s} {d['graph_total_us']:12.1f}  bw {d['fraction_of_copy_bw']:.2f} of copy (>= 0.5)")
        print(f"{'  logits / top-k us; torch.topk us (exact)':58s} {d['logits_us']:.1f} / {d['topk_us']:.1f}; "
              f"{d['torch_topk_us_same_rows']:.1f} ({d['topk_exact_vs_torch']})")
    for tk in result["topk_single_row"]:
        print(f"{'top-k ' + tk['shape'] + ' (graph) us':58s} {tk['default_us']:12.1f}  (torch.topk "
              f"{tk['torch_topk_graph_us']:.1f}; FlashInfer {tk['flashinfer_graph_us'] or tk['flashinfer_error']}; "
              f"exact {tk['exact_vs_torch']})")
    for d in result["decode_server_shapes"]:
        print(f"{'decode B=%d C=%d: scores+top-k / scores / top-k us' % (d['batch'], d['context']):58s} "
              f"{d['scores_plus_topk_us']:.1f} / {d['scores_us']:.1f} / {d['topk_us']:.1f} (torch.topk {d['torch_topk_us']:.1f})")
    print(f"total bench seconds {result['seconds']:.0f}")


if __name__ == "__main__":
    main()
