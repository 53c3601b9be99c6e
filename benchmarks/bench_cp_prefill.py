"""Context-parallel prefill on two GPUs: parity with no CP, and the prefill time of long prompts.

    python benchmarks/bench_cp_prefill.py parity  OUT.json [--configs NAME ...] [--workdir DIR] [--cpu-smoke]
    python benchmarks/bench_cp_prefill.py prefill OUT.json [--configs NAME ...] [--lengths 8192 32768] [--repeats 3]

One ``python -m sglang.launch_server`` per configuration, one after the other, with this
process's environment (on the device: the stand-in ``sgl_kernel`` and the harness plugin on
``PYTHONPATH``, docs/gpu_testing.md). Configurations:

==============  ==============================================================
tp1             one GPU
tp2             ``--tp 2``: attention heads split over the two GPUs (no CP)
cp2-interleave  ``--tp 2 --enable-prefill-cp --cp-strategy interleave``
cp2-zigzag      ``--tp 2 --enable-prefill-cp --cp-strategy zigzag``
==============  ==============================================================

parity: the GPU serving driver's tiny FP8 checkpoint (widened to whole FP8 blocks, 64 indexer
heads, its real weights), bf16 KV cache, the
host's defaults otherwise (CUDA decode graphs on). Per server: prompts of 3001, 1001 and 77
tokens in one call (prompt logprobs from position 0, 32 greedy tokens with the top-2
logprobs), then a prompt sharing the first 2048 tokens of the 3001-token one plus 333 new
tokens (prompt logprobs from 2048, so the prefix comes from the radix cache). Each CP
configuration is compared with ``tp2`` (same GPUs, same FFN split; only the attention split
differs) and with ``tp1``, and ``tp2`` with ``tp1`` (bf16's spread between two correct layouts,
for scale). bf16 bound, against ``tp2``: every prompt logprob within 0.05 nats,
their mean difference below 0.005, and the greedy tokens equal up to a first difference at a
near tie (top-2 within 0.05 nats in either run); the cached-prefix request reports >= 2048
cached tokens. Exit status 1 when a bound fails.

prefill: the real-width checkpoint (``dsv32_plugin.testing.real_width``, 2 layers, FP8,
``--load-format dummy``), ``--chunked-prefill-size`` = the longest length (one extend per
prompt), no CUDA graphs (prefill runs eagerly either way). Per length: one warm-up prompt, then
``--repeats`` fresh random prompts, each generating one token; the time of a request is its
prefill (plus one decode step). Reported: median and min seconds per configuration and length.

OUT.json is rewritten after every server; an existing OUT.json of the same kind is extended
(its configurations are kept unless named again), so the configurations can be spread over
several calls (device calls end after 10 minutes) and still be compared. ``--cpu-smoke`` runs the
parity plumbing on sglang's CPU engine (float32 tiny checkpoint, short prompts, gloo) instead.
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import statistics
import sys
import tempfile
import time

# The GPU serving driver's checkpoints (the tiny one widened to whole FP8 blocks for the host's FP8
# GEMMs), prompt tokens and near-tie rule, and the tests' server launcher.
from dsv32_plugin.testing import server as launcher
from dsv32_plugin.testing.gpu_serving import TOKEN_RANGE, at_near_tie, first_difference, make_serving_checkpoint

MAX_BOUND, MEAN_BOUND = 0.05, 0.005  # nats, CP against tp2, bf16
CONFIGS = {
    "tp1": (),
    "tp2": ("--tp", "2"),
    "cp2-interleave": ("--tp", "2", "--enable-prefill-cp", "--cp-strategy", "interleave"),
    "cp2-zigzag": ("--tp", "2", "--enable-prefill-cp", "--cp-strategy", "zigzag"),
}
CP_CONFIGS = ("cp2-interleave", "cp2-zigzag")
GPU_FLAGS = ("--sampling-backend", "pytorch", "--mem-fraction-static", "0.8")
CPU_FLAGS = (*launcher.CPU_FLAGS, "--dtype", "float32")
READY_S, REQUEST_S = 900, 900


def random_prompt(length: int, seed: int) -> list[int]:
    import torch

    return torch.randint(*TOKEN_RANGE, (length,), generator=torch.Generator().manual_seed(seed)).tolist()


def post(server, body: dict) -> list | dict:
    status, out = server.post("/generate", body, REQUEST_S)
    if status != 200:
        raise RuntimeError(f"/generate answered {status}: {str(out)[:2000]}")
    return out


# -- parity --------------------------------------------------------------------


def parity_plan(smoke: bool) -> dict:
    lengths, prefix, tail, new = ((151, 37), 128, 23, 8) if smoke else ((3001, 1001, 77), 2048, 333, 32)
    prompts = [random_prompt(n, seed=n) for n in lengths]
    return {"prompts": prompts, "prefix": prefix, "reuse": prompts[0][:prefix] + random_prompt(tail, seed=7),
            "new_tokens": new}


def _sequence(out: dict) -> dict:
    meta = out["meta_info"]
    top = [t[:2] for t in meta["output_top_logprobs"]]
    return {"prompt": [lp for lp, *_ in meta["input_token_logprobs"] if lp is not None],
            "tokens": out["output_ids"], "top2_gap": [t[0][0] - t[1][0] if len(t) > 1 else None for t in top],
            "cached": meta["cached_tokens"]}


def run_parity(server, plan: dict) -> list[dict]:
    sampling = {"max_new_tokens": plan["new_tokens"], "temperature": 0, "ignore_eos": True}
    batch = post(server, {"input_ids": plan["prompts"], "return_logprob": True, "logprob_start_len": 0,
                          "top_logprobs_num": 2, "sampling_params": sampling})
    reuse = post(server, {"input_ids": plan["reuse"], "return_logprob": True, "logprob_start_len": plan["prefix"],
                          "top_logprobs_num": 2, "sampling_params": sampling})
    return [_sequence(o) for o in batch] + [_sequence(reuse)]


def compare(reference: list[dict], other: list[dict], prefix: int) -> dict:
    """Prompt-logprob differences, where the greedy tokens first differ (None: equal) and how close
    the top-2 were there, the cached-prefix request's cached tokens; ``ok`` against the bf16 bound."""
    import torch

    worst, means, divergences = 0.0, [], []
    for ref, got in zip(reference, other):
        a, b = torch.tensor(ref["prompt"]), torch.tensor(got["prompt"])
        if a.shape != b.shape:
            return {"ok": False, "error": f"prompt logprob counts differ: {tuple(a.shape)} vs {tuple(b.shape)}"}
        diff = (a - b).abs()
        worst, means = max(worst, diff.max().item()), means + [diff.mean().item()]
        divergences.append(first_difference(ref["tokens"], got["tokens"], ref["top2_gap"], got["top2_gap"]))
    near_ties = all(d is None or at_near_tie(d) for d in divergences)
    cached = other[-1]["cached"]
    return {"ok": worst <= MAX_BOUND and max(means) <= MEAN_BOUND and near_ties and cached >= prefix,
            "max_abs": worst, "mean_abs": max(means), "first_token_difference": divergences, "cached_tokens": cached}


def comparisons(configs: dict, prefix: int) -> dict:
    """Each CP configuration against tp2 (gating) and tp1; tp2 against tp1 shows bf16's own spread."""
    runs = {name: r["sequences"] for name, r in configs.items() if r.get("ok")}
    pairs = [(cp, ref) for cp in CP_CONFIGS for ref in ("tp2", "tp1")] + [("tp2", "tp1")]
    return {f"{other} vs {ref}": compare(runs[ref], runs[other], prefix)
            for other, ref in pairs if other in runs and ref in runs}


# -- prefill time ------------------------------------------------------------------


def run_prefill(server, lengths: list[int], repeats: int) -> dict:
    out = {}
    for length in lengths:
        one_token = {"max_new_tokens": 1, "temperature": 0, "ignore_eos": True}
        post(server, {"input_ids": random_prompt(length, seed=length), "sampling_params": one_token})  # warm-up
        seconds = []
        for r in range(repeats):
            prompt = random_prompt(length, seed=length * 100 + r + 1)  # fresh tokens: nothing from the radix cache
            start = time.monotonic()
            post(server, {"input_ids": prompt, "sampling_params": one_token})
            seconds.append(round(time.monotonic() - start, 4))
        out[str(length)] = {"seconds": seconds, "median_s": statistics.median(seconds), "min_s": min(seconds)}
    return out


# -- driver --------------------------------------------------------------------------


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("what", choices=("parity", "prefill"))
    parser.add_argument("out", type=pathlib.Path)
    parser.add_argument("--configs", nargs="*", choices=list(CONFIGS), default=None)
    parser.add_argument("--lengths", nargs="*", type=int, default=[8192, 32768])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--workdir", type=pathlib.Path, default=None)
    parser.add_argument("--cpu-smoke", action="store_true", help="parity plumbing on sglang's CPU engine")
    args = parser.parse_args(argv)
    names = args.configs or list(CONFIGS)
    workdir = args.workdir or pathlib.Path(tempfile.mkdtemp(prefix=f"dsv32-cp-{args.what}-"))
    workdir.mkdir(parents=True, exist_ok=True)
    if args.what == "parity" and args.cpu_smoke:
        from dsv32_plugin.testing import make_tiny_checkpoint

        checkpoint = make_tiny_checkpoint(workdir / "tiny", overrides={"index_n_heads": 64})
    else:
        checkpoint = make_serving_checkpoint("tiny" if args.what == "parity" else "real", workdir)
    if args.what == "parity":
        base = CPU_FLAGS if args.cpu_smoke else (*GPU_FLAGS, "--kv-cache-dtype", "bf16")
        plan = parity_plan(args.cpu_smoke)
    else:
        chunk = str(max(args.lengths))
        base = (*GPU_FLAGS, "--load-format", "dummy", "--disable-cuda-graph", "--chunked-prefill-size", chunk,
                "--max-prefill-tokens", chunk, "--max-total-tokens", str(4 * max(args.lengths)))
    env = {"SGLANG_USE_CPU_ENGINE": "1" if args.cpu_smoke else "0"}
    summary: dict = {"what": args.what, "configs": {}, "comparisons": {}}
    if args.out.exists() and json.loads(args.out.read_text()).get("what") == args.what:
        summary = json.loads(args.out.read_text())
    summary["checkpoint"] = str(checkpoint)
    for name in names:
        flags = (*base, *CONFIGS[name])
        two_ranks = {"SGLANG_CPU_OMP_THREADS_BIND": "0|1"} if args.cpu_smoke and "--tp" in flags else {}
        result: dict = {"flags": list(flags)}
        start = time.monotonic()
        try:
            with launcher.launch(checkpoint, workdir, *flags, flags=(), env={**env, **two_ranks},
                                 ready_timeout_s=READY_S) as server:
                result["startup_s"] = round(time.monotonic() - start, 1)
                if args.what == "parity":
                    result["sequences"] = run_parity(server, plan)
                else:
                    result["prefill"] = run_prefill(server, args.lengths, args.repeats)
            result["ok"] = True
        except Exception as exc:  # ServerFailed, or a request that failed
            result.update(ok=False, error=f"{type(exc).__name__}: {exc}"[-4000:])
        summary["configs"][name] = result
        print(f"[bench_cp_prefill] {name}: ok={result['ok']} {result.get('prefill', result.get('error', ''))}",
              flush=True)
        if args.what == "parity":
            summary["comparisons"] = comparisons(summary["configs"], plan["prefix"])
        args.out.write_text(json.dumps(summary, indent=1))
    for label, c in summary["comparisons"].items():
        print(f"[bench_cp_prefill] {label}: {json.dumps(c)}", flush=True)
    failed = [n for n, r in summary["configs"].items() if not r["ok"]]
    failed += [label for label, c in summary["comparisons"].items() if label.endswith("tp2") and not c["ok"]]
    return 1 if failed else 0


if __name__ == "__main__":
    os.environ.pop("TRITON_INTERPRET", None)
    sys.exit(main())
