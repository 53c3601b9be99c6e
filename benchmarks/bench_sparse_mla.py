"""Sparse MLA and MLA-KV kernels on a GPU, side by side with FlashMLA (device script).

    python3 benchmarks/bench_sparse_mla.py --out DIR            # checks + timings -> DIR/sparse_mla.json
    python3 benchmarks/bench_sparse_mla.py --sanitize           # tiny launches of every kernel, for
                                                                # compute-sanitizer --tool memcheck

Needs ``dsv32_plugin`` importable and, for the peer columns, ``flash_mla``
(PyPI ``sgl-flash-mla``; see docs/perf.md for the device command). Times are
medians of ``triton.testing.do_bench`` (L2 flushed before every call), for
ours and FlashMLA on the same inputs in one process; decode calls are timed as
one-call CUDA graphs (as the server runs them), prefill calls eagerly. Prefill FLOPs count
2 * T * H * topk * (576 + 512); decode bytes count every gathered cache row
once plus q, out and indices.
"""

import argparse
import dataclasses
import json
import os
import sys
import traceback

import torch
import triton

from dsv32_plugin.kernels import reference as ref
from dsv32_plugin.kernels.cache.kv import dequantize_kv_fp8, quantize_kv_fp8, store_mla_kv
from dsv32_plugin.kernels.sparse_mla.kernel import LaunchConfig, _sparse_mla_fwd_kernel, default_config
from dsv32_plugin.kernels.sparse_mla.interface import sparse_mla_decode, sparse_mla_prefill

try:
    import flash_mla
except ImportError as exc:  # the table then has no peer column
    print(f"flash_mla not importable: {exc}")
    flash_mla = None

SM_SCALE = 0.13523378  # DeepSeek-V3.2: 192^-0.5 * mscale^2
D_QK, D_V, PAGE = 576, 512, 64
DEVICE = os.environ.get("BENCH_DEVICE", "cuda")  # "cpu" + TRITON_INTERPRET=1: smoke-test this script
RESULTS = []
OUT_DIR = None  # set by main
CHECK_ROWS = 256  # rows of every timed shape compared with the float32 reference before timing


def ms(fn) -> float:
    return triton.testing.do_bench(fn, warmup=25, rep=200, return_mode="median")


def graph_ms(fn) -> float:
    """``ms`` of a CUDA graph holding one call: L2 still flushed before every replay, but no
    Python/Triton launch cost (decode runs from CUDA graphs in the server)."""
    fn()
    torch.cuda.synchronize()
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        fn()
    return ms(graph.replay)


def rel_l2(a, b) -> float:
    return ((a.float() - b.float()).norm() / b.float().norm().clamp_min(1e-30)).item()


def section(fn):
    """Run one part; a failure is printed and the script goes on to the next."""

    def run(*args, **kw):
        try:
            return fn(*args, **kw)
        except Exception:  # noqa: BLE001 - report and continue
            print(f"[{fn.__name__}{args}] FAILED\n{traceback.format_exc()}")
            RESULTS.append({"section": fn.__name__, "args": repr(args), "error": traceback.format_exc()[-2000:]})

    return run


# ---------------------------------------------------------------- inputs
def prefill_inputs(T, S, H=128, topk=2048, seed=0):
    g = torch.Generator(device=DEVICE).manual_seed(seed)
    q = torch.randn(T, H, D_QK, device=DEVICE, generator=g).bfloat16()
    kv = torch.randn(S, D_QK, device=DEVICE, generator=g).bfloat16()
    idx = torch.full((T, topk), -1, dtype=torch.int32, device=DEVICE)  # context < topk: -1 padded
    for t0 in range(0, T, 512):  # distinct random rows per token
        n = min(512, T - t0)
        idx[t0 : t0 + n, : min(topk, S)] = torch.rand(n, S, device=DEVICE, generator=g).topk(min(topk, S), dim=1).indices.int()
    return q, kv, idx


def decode_inputs(B, H, fp8, s_q=1, topk=2048, ctx=16384, seed=0):
    """Per request ctx tokens on shuffled 64-token pages; indices: topk distinct slots of its context."""
    g = torch.Generator(device=DEVICE).manual_seed(seed)
    pages_per_req = ctx // PAGE
    num_pages = B * pages_per_req
    kv = torch.randn(num_pages * PAGE, D_QK, device=DEVICE, generator=g).bfloat16()
    cache = quantize_kv_fp8(kv).view(num_pages, PAGE, -1) if fp8 else kv.view(num_pages, PAGE, D_QK)
    page_table = torch.randperm(num_pages, device=DEVICE, generator=g).view(B, pages_per_req)
    pos = torch.rand(B * s_q, ctx, device=DEVICE, generator=g).topk(topk, dim=1).indices.view(B, s_q, topk)
    slots = page_table.gather(1, (pos // PAGE).view(B, -1)).view(B, s_q, topk) * PAGE + pos % PAGE
    q = torch.randn(B, s_q, H, D_QK, device=DEVICE, generator=g).bfloat16()
    return q, cache, slots.int()


# ---------------------------------------------------------------- checks
@section
def check_prefill(S):
    q, kv, idx = prefill_inputs(256, S, seed=1)
    idx[torch.rand(idx.shape, device=DEVICE) < 0.1] = -1
    length = torch.randint(0, 2049, (256,), device=DEVICE, dtype=torch.int32)
    out, lse = sparse_mla_prefill(q, kv, idx, SM_SCALE, topk_length=length)
    want, want_lse = ref.sparse_mla_prefill(q, kv, idx, SM_SCALE, topk_length=length)
    row = {"section": "check_prefill", "S": S, "ours_rel_l2": rel_l2(out, want),
           "ours_lse_max_abs": (lse - want_lse).abs().nan_to_num(posinf=1e9).max().item()}
    RESULTS.append(row)
    print(row)
    if flash_mla is not None:
        f_out, _, f_lse = flash_mla.flash_mla_sparse_fwd(q, kv.unsqueeze(1), idx.unsqueeze(1), SM_SCALE, D_V,
                                                         topk_length=length, use_legacy=True)
        row["flashmla_rel_l2"] = rel_l2(f_out, want)
        row["flashmla_lse_max_abs"] = (f_lse.float() - want_lse).abs().nan_to_num(posinf=1e9).max().item()
        print(row)


@section
def check_decode(B, H, fp8, s_q):
    q, cache, idx = decode_inputs(B, H, fp8, s_q=s_q, ctx=4096, seed=2)
    idx[torch.rand(idx.shape, device=DEVICE) < 0.1] = -1
    out, lse = sparse_mla_decode(q, cache, idx, SM_SCALE)
    want, want_lse = ref.sparse_mla_decode(q, cache, idx, SM_SCALE)
    row = {"section": "check_decode", "B": B, "H": H, "fp8": fp8, "s_q": s_q, "ours_rel_l2": rel_l2(out, want),
           "ours_lse_max_abs": (lse - want_lse).abs().max().item()}
    RESULTS.append(row)
    print(row)
    if flash_mla is not None and fp8 and H in (64, 128):
        meta = flash_mla.get_mla_metadata()[0]
        f_out, f_lse = flash_mla.flash_mla_with_kvcache(q, cache.unsqueeze(2), None, None, D_V, meta,
                                                        softmax_scale=SM_SCALE, is_fp8_kvcache=True,
                                                        indices=idx, use_legacy=True, kv_format="V32")
        row["flashmla_rel_l2"] = rel_l2(f_out, want)
        row["flashmla_lse_max_abs"] = (f_lse.transpose(1, 2).float() - want_lse).abs().max().item()
        print(row)


@section
def check_kv_kernels():
    kv = (torch.randn(4096, D_QK, device=DEVICE) * torch.logspace(-4, 4, 4096, device=DEVICE)[:, None]).bfloat16()
    kv[7, :128] = 0
    packed = quantize_kv_fp8(kv)
    same = torch.equal(packed, ref.quantize_kv_fp8(kv))
    back = torch.equal(dequantize_kv_fp8(packed), ref.dequantize_kv_fp8(packed))
    cache = torch.full((70, PAGE, 656), 0xFF, dtype=torch.uint8, device=DEVICE)
    slots = torch.randperm(70 * PAGE, device=DEVICE)[:4096]
    slots[::9] = -1
    stored = torch.equal(store_mla_kv(cache.clone(), slots, kv), ref.store_mla_kv(cache.clone(), slots, kv))
    row = {"section": "check_kv_kernels", "quantize_bit_exact": same, "dequantize_bit_exact": back,
           "store_bit_exact": stored}
    print(row)
    RESULTS.append(row)


@section
def check_cuda_graph():
    q, cache, idx = decode_inputs(8, 128, True, ctx=4096, seed=3)
    static_q, static_idx = q.clone(), idx.clone()
    sparse_mla_decode(static_q, cache, static_idx, SM_SCALE)
    torch.cuda.synchronize()
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        g_out, g_lse = sparse_mla_decode(static_q, cache, static_idx, SM_SCALE)
    worst = 0.0
    for seed in (4, 5):
        q2, _, idx2 = decode_inputs(8, 128, True, ctx=4096, seed=seed)
        static_q.copy_(q2)
        static_idx.copy_(idx2)
        graph.replay()
        want, _ = sparse_mla_decode(q2, cache, idx2, SM_SCALE)
        worst = max(worst, (g_out.float() - want.float()).abs().max().item())
    row = {"section": "check_cuda_graph", "replay_max_abs_diff_vs_eager": worst}
    print(row)
    RESULTS.append(row)


# ---------------------------------------------------------------- timings
def record(kind, shape, ours, peer, flop=None, nbytes=None, config=None, note="", max_diff_vs_default=None, rel_l2_ref=None):
    row = {"section": kind, "shape": shape, "ours_ms": ours, "flashmla_ms": peer, "max_diff_vs_default": max_diff_vs_default,
           "rel_l2_vs_reference": rel_l2_ref,
           "ratio_ours_over_flashmla_time": None if peer is None else ours / peer, "config": config, "note": note}
    if flop:
        row["ours_tflops"] = flop / ours / 1e9
        row["flashmla_tflops"] = None if peer is None else flop / peer / 1e9
    if nbytes:
        row["ours_gbs"] = nbytes / ours / 1e6
        row["flashmla_gbs"] = None if peer is None else nbytes / peer / 1e6
    print(json.dumps(row))
    RESULTS.append(row)
    save()


def save():
    """Rewrite the result file after every timing, so a run cut short keeps what it measured."""
    if OUT_DIR:
        os.makedirs(OUT_DIR, exist_ok=True)
        with open(os.path.join(OUT_DIR, "sparse_mla.json"), "w") as f:
            json.dump(RESULTS, f, indent=1)


@section
def time_prefill(T, S, configs):
    q, kv, idx = prefill_inputs(T, S)
    flop = 2 * T * 128 * idx.shape[1] * (D_QK + D_V)
    peer = None
    if flash_mla is not None:
        peer = ms(lambda: flash_mla.flash_mla_sparse_fwd(q, kv.unsqueeze(1), idx.unsqueeze(1), SM_SCALE, D_V,
                                                         use_legacy=True))
    base = sparse_mla_prefill(q, kv, idx, SM_SCALE)[0]
    want = ref.sparse_mla_prefill(q[:CHECK_ROWS], kv, idx[:CHECK_ROWS], SM_SCALE)[0]  # float32 twin, first rows
    for c in [None, *configs]:
        try:
            got = sparse_mla_prefill(q, kv, idx, SM_SCALE, config=c)[0]
            diff = (got.float() - base.float()).abs().max().item()
            err = rel_l2(got[:CHECK_ROWS], want)
            if not err < 1e-2:  # NaN fails too
                raise AssertionError(f"rel_l2 {err} vs reference")
            t = ms(lambda: sparse_mla_prefill(q, kv, idx, SM_SCALE, config=c))
        except Exception as exc:  # noqa: BLE001 - e.g. out of shared memory for a sweep point
            print(f"prefill config {c}: {type(exc).__name__}: {str(exc)[:200]}")
            continue
        used = c or default_config(T, 128, idx.shape[1], q.device, split=False)
        record("prefill", f"T={T} S={S} H=128 topk=2048", t, peer, flop=flop, config=str(used),
               note="default" if c is None else "sweep", max_diff_vs_default=diff, rel_l2_ref=err)


@section
def time_decode(B, H, fp8, configs, s_q=1):
    q, cache, idx = decode_inputs(B, H, fp8, s_q=s_q)
    rows, topk = B * s_q, idx.shape[-1]
    row_bytes = 656 if fp8 else 2 * D_QK
    nbytes = rows * topk * row_bytes + q.numel() * 2 + rows * H * D_V * 2 + idx.numel() * 4
    flop = 2 * rows * H * topk * (D_QK + D_V)
    peer, note = None, ""
    if flash_mla is not None:
        if fp8:
            qp = q if H in (64, 128) else torch.nn.functional.pad(q, (0, 0, 0, 64 - H))  # SGL pads heads to 64
            meta = flash_mla.get_mla_metadata()[0]
            call = lambda: flash_mla.flash_mla_with_kvcache(  # noqa: E731
                qp, cache.unsqueeze(2), None, None, D_V, meta, softmax_scale=SM_SCALE, is_fp8_kvcache=True,
                indices=idx, use_legacy=True, kv_format="V32")
            note = "FlashMLA flash_mla_with_kvcache" + ("" if H in (64, 128) else " (q padded to 64 heads)")
        elif H in (64, 128):
            flat_kv = cache.view(-1, 1, D_QK)
            flat_q, flat_idx = q.view(rows, H, D_QK), idx.view(rows, 1, topk)
            call = lambda: flash_mla.flash_mla_sparse_fwd(flat_q, flat_kv, flat_idx, SM_SCALE, D_V,  # noqa: E731
                                                          use_legacy=True)
            note = "FlashMLA flash_mla_sparse_fwd on the flat bf16 cache"
        else:
            call = None
        if call is not None:
            try:
                peer = graph_ms(call)
            except Exception as exc:  # noqa: BLE001 - a peer that cannot be captured is timed eagerly
                torch.cuda.synchronize()
                peer = ms(call)
                note += f" (eager: graph capture failed: {type(exc).__name__})"
    base = sparse_mla_decode(q, cache, idx, SM_SCALE)[0]
    want = ref.sparse_mla_decode(q[:CHECK_ROWS], cache, idx[:CHECK_ROWS], SM_SCALE)[0]
    for c in [None, *configs]:
        try:
            got = sparse_mla_decode(q, cache, idx, SM_SCALE, config=c)[0]
            diff = (got.float() - base.float()).abs().max().item()
            err = rel_l2(got[:CHECK_ROWS], want)
            if not err < 1e-2:
                raise AssertionError(f"rel_l2 {err} vs reference")
            t = graph_ms(lambda: sparse_mla_decode(q, cache, idx, SM_SCALE, config=c))
        except Exception as exc:  # noqa: BLE001
            print(f"decode config {c}: {type(exc).__name__}: {str(exc)[:200]}")
            continue
        used = c or default_config(rows, H, topk, q.device, split=True, kv_fp8=fp8)
        if c is None:
            note += f"; eager (launch cost included) {ms(lambda: sparse_mla_decode(q, cache, idx, SM_SCALE)) * 1e3:.1f} us"
        record("decode_fp8" if fp8 else "decode_bf16", f"B={B} s_q={s_q} H={H} topk={topk}", t, peer,
               flop=flop, nbytes=nbytes, config=str(used), note=("default" if c is None else "sweep") + "; " + note,
               max_diff_vs_default=diff, rel_l2_ref=err)


@section
def kernel_report():
    """Registers, spills, shared memory and whether wgmma is used, per compiled attention variant."""
    for device_cache in getattr(_sparse_mla_fwd_kernel, "device_caches", {}).values():
        for key, kernel in device_cache[0].items():
            getattr(kernel, "_init_handles", lambda: None)()  # fills n_regs / n_spills
            ptx = kernel.asm.get("ptx", "")
            row = {"section": "kernel", "key": str(key)[-400:], "n_regs": kernel.n_regs, "n_spills": kernel.n_spills,
                   "shared": kernel.metadata.shared, "num_warps": kernel.metadata.num_warps,
                   "wgmma": ptx.count("wgmma.mma_async"), "mma_sync": ptx.count("mma.sync")}
            print(row)
            RESULTS.append(row)


def sanitize():
    """Tiny launches of every kernel with skips and out-of-range indices (run under compute-sanitizer)."""
    q, kv, idx = prefill_inputs(4, 300, topk=256)
    idx[:, ::5] = -1
    idx[:, 1::7] = 300 + 5
    sparse_mla_prefill(q, kv, idx, SM_SCALE, topk_length=torch.tensor([0, 7, 256, 100], device=DEVICE, dtype=torch.int32))
    for fp8, H in ((True, 128), (False, 16)):
        q, cache, idx = decode_inputs(2, H, fp8, s_q=2, topk=256, ctx=1024)
        idx[..., ::3] = -1
        idx[..., 1::11] = cache.shape[0] * PAGE + 1
        sparse_mla_decode(q, cache, idx, SM_SCALE)
        sparse_mla_decode(q, cache, idx, SM_SCALE, config=LaunchConfig(min(H, 64), 32, 4, 2, 3))
        sparse_mla_decode(q, cache, idx, SM_SCALE, config=LaunchConfig(min(H, 64), 64, 8, 3, 2, prefetch_indices=True))
    kv = torch.randn(100, D_QK, device=DEVICE).bfloat16()
    dequantize_kv_fp8(quantize_kv_fp8(kv))
    slots = torch.arange(100, device=DEVICE) * 3 - 20
    store_mla_kv(torch.zeros(3, PAGE, 656, dtype=torch.uint8, device=DEVICE), slots, kv)
    store_mla_kv(torch.zeros(3, PAGE, D_QK, dtype=torch.bfloat16, device=DEVICE), slots, kv)
    if DEVICE == "cuda":
        torch.cuda.synchronize()
    print("sanitize: all kernels launched")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", default=".")
    parser.add_argument("--sanitize", action="store_true")
    parser.add_argument("--skip-checks", action="store_true")
    args = parser.parse_args()
    global OUT_DIR
    OUT_DIR = args.out
    if args.sanitize:
        sanitize()
        return
    props = torch.cuda.get_device_properties(0)
    RESULTS.append({"section": "env", "gpu": props.name, "sms": props.multi_processor_count, "torch": torch.__version__,
                    "triton": triton.__version__, "flash_mla": getattr(flash_mla, "__version__", None)})
    print(RESULTS[-1])
    if not args.skip_checks:
        check_kv_kernels()
        for S in (300, 8192):
            check_prefill(S)
        for B, H, fp8, s_q in ((4, 128, True, 2), (3, 16, True, 1), (64, 128, True, 1), (96, 16, True, 1),
                               (2, 128, False, 3), (5, 64, False, 1)):
            check_decode(B, H, fp8, s_q)
        check_cuda_graph()
    # every default beside its measured neighbours (sparse_mla_h200_run*.json hold the earlier sweeps)
    L, swap = LaunchConfig, dataclasses.replace
    prefill_sweep = [L(64, 64, 8, 2, prefetch_indices=True), L(64, 64, 8, 2, defer_sum=True), L(64, 32, 8, 3)]
    for S in (8192, 65536):
        time_prefill(4096, S, prefill_sweep if S == 8192 else [])
    dev = torch.device("cuda")
    for fp8, H, B in [(True, 128, B) for B in (32, 128, 1)] + [(True, 16, B) for B in (1, 32, 128)] + [
            (False, H, B) for H in (128, 16) for B in (32, 128)]:
        d = default_config(B, H, 2048, dev, split=True, kv_fp8=fp8)
        sweep = []
        if H == 128 and B > 1:
            sweep.append(swap(d, defer_sum=not d.defer_sum))
        if d.prefetch_indices:
            sweep.append(swap(d, num_stages=2, prefetch_indices=False))
        time_decode(B, H, fp8, sweep)
    time_decode(32, 128, True, [], s_q=2)
    kernel_report()
    save()
    print("\nsection     shape                          ours_us  flash_us ratio TFLOP/s   GB/s  rel_l2   config")
    for r in RESULTS:
        if "ours_ms" in r:
            ratio = r.get("ratio_ours_over_flashmla_time")
            cfg = r["config"].replace("LaunchConfig(", "").replace("block_", "").replace("num_", "").rstrip(")")
            print(f"{r['section'][:11]:<11} {r['shape'].replace(' topk=2048', ''):<30} {r['ours_ms'] * 1e3:8.1f} "
                  f"{(r['flashmla_ms'] or float('nan')) * 1e3:8.1f} {ratio or float('nan'):5.2f} "
                  f"{r.get('ours_tflops', float('nan')):7.1f} {r.get('ours_gbs', float('nan')):6.0f} "
                  f"{r.get('rel_l2_vs_reference') or float('nan'):.1e} {r['note'][:7]} {cfg}")

if __name__ == "__main__":
    sys.exit(main())
