"""Greedy outputs of stock ``python -m sglang.launch_server`` serving DeepSeek-V3.2 on a GPU, as JSON.

    python serving_driver.py {tiny,real} OUT.json [--configs NAME ...] [--parallel N] [--start-deadline-s S]
                             [--workdir DIR] [--cpu-smoke]

Checkpoints, made on the machine:

``tiny`` and ``real`` (``dsv32_plugin.testing.gpu_serving.make_serving_checkpoint``): the tiny FP8
checkpoint widened to whole FP8 blocks, loaded from its safetensors (FP8 block weights through the host's
Fp8Config); the real-width one with ``--load-format dummy`` and the harness plugin's ``dummy_init`` weights.

Configurations (``configs``): ``{fp8_e4m3,bf16}-{flashmla,triton}-{graphs,eager}`` with
``--kv-cache-dtype`` and ``--dsa-{prefill,decode}-backend`` (``flashmla_auto`` / ``triton``),
graphs off by ``--disable-cuda-graph``; ``mtp-graphs`` (EAGLE, 3 steps, top-k 1, 4 draft
tokens) against ``plain-graphs``, both on draftable dummy weights; for ``tiny``, ``--tp 2``
against one GPU (where two GPUs are). Every server has the host's
defaults (radix cache on, CUDA graphs on) plus ``--sampling-backend pytorch`` and a short decode
graph batch list. Each server starts once and runs, in this order, every prompt set: 100- and
3000-token prompts at batch 1, 3 and 17 (batch b = the first b of 17 fixed prompts, one request),
64 greedy tokens each, with the top-2 logprobs per token.

OUT.json (rewritten after each server): per configuration the outputs, top-2 gaps and EAGLE
accept lengths per prompt set, the start-up and generation seconds, the ``sgl_kernel`` stand-in
names each server used, and the harness plugin's reports (float8 parameters per model, forward
passes per mode with or without graphs); then the comparisons of ``pairs()`` (``compare``).
The first server runs alone (it compiles the kernels), then ``--parallel`` at a time.
The servers get the stand-in (when ``sgl_kernel`` does not import here) and the harness plugin
on ``PYTHONPATH``, and the Python radix TreeCore where the Rust one cannot read this torch's
tensors (``tree_core_probe``).
"""

from __future__ import annotations

import argparse
import concurrent.futures
import contextlib
import importlib.util
import json
import math
import os
import pathlib
import re
import sys
import tempfile
import threading
import time
from dataclasses import dataclass

HERE = pathlib.Path(__file__).resolve().parent
STANDIN_SITE = HERE.parent / "gpu_standin" / "site"
HARNESS_SITE = HERE / "site"
sys.path.insert(0, str(HERE))

from tree_core_probe import tree_core_env  # noqa: E402

from dsv32_plugin.testing.gpu_serving import (  # noqa: E402
    NEAR_TIE,
    TOKEN_RANGE,
    at_near_tie,
    first_difference,
    make_serving_checkpoint,
)
from dsv32_plugin.testing.server import CPU_FLAGS, launch  # noqa: E402

PROMPT_SEED = 11
EAGLE_FLAGS = ("--speculative-algorithm", "EAGLE", "--speculative-num-steps", "3",
               "--speculative-eagle-topk", "1", "--speculative-num-draft-tokens", "4")
DUMMY_FLAGS = ("--load-format", "dummy")
KV_DTYPES = ("fp8_e4m3", "bf16")
BACKENDS = {"flashmla": "flashmla_auto", "triton": "triton"}
# Two-GPU layouts of the tiny checkpoint (bf16 KV, Triton, graphs) against one GPU: run where two GPUs
# are (nvidia-h200-x2), skipped elsewhere.
TWO_GPU_LAYOUTS = {
    "tp2-bf16-triton-graphs": ("--tp", "2"),
    "ep2-bf16-triton-graphs": ("--tp", "2", "--ep", "2"),
    "dp2-attention-bf16-triton-graphs": ("--tp", "2", "--dp", "2", "--enable-dp-attention"),
}
SERVER_READY_S = 900  # the first server of a machine compiles the JIT and Triton kernels
REQUEST_TIMEOUT_S = 600


@dataclass(frozen=True)
class Plan:
    """What every server runs, and on which device."""

    lengths: tuple[int, ...] = (100, 3000)
    batches: tuple[int, ...] = (1, 3, 17)
    new_tokens: int = 64
    # --max-total-tokens keeps each KV pool small (<1 GB at real width) so that --parallel servers share
    # the GPU; the host sizes its budget from the memory free at start-up, half of which stays slack.
    flags: tuple[str, ...] = ("--sampling-backend", "pytorch", "--cuda-graph-bs-decode", "1", "2", "4", "8", "16",
                              "24", "--mem-fraction-static", "0.5", "--max-total-tokens", "262144")
    cpu_engine: bool = False


GPU = Plan()
# The plumbing (server start, harness plugin, reports, comparisons) on a GPU-less machine:
# tests/gpu/test_serving_driver_cpu.py.
CPU_SMOKE = Plan(lengths=(24,), batches=(1, 2), new_tokens=4, cpu_engine=True,
                 flags=CPU_FLAGS)


@dataclass(frozen=True)
class Config:
    flags: tuple[str, ...]
    draftable: bool = False  # dummy weights in the draftable shape (MTP drafts mostly accepted)
    gpus: int = 1


def configs(kind: str) -> dict[str, Config]:
    """Name -> configuration, in the order they run: the pairs to compare next to each other, the
    likeliest-used ones first (a run cut short by ``--start-deadline-s`` still has whole pairs)."""
    load = DUMMY_FLAGS if kind == "real" else ()

    def dsa(kv: str, backend: str) -> dict[str, Config]:
        value = BACKENDS[backend]
        flags = ("--kv-cache-dtype", kv, "--dsa-prefill-backend", value, "--dsa-decode-backend", value, *load)
        return {f"{kv}-{backend}-eager": Config((*flags, "--disable-cuda-graph")), f"{kv}-{backend}-graphs": Config(flags)}

    # FlashMLA is compiled for DeepSeek-V3.2's MLA dims only (the plugin refuses it for the tiny model).
    flashmla = kind == "real"
    out = {
        **(dsa("fp8_e4m3", "flashmla") if flashmla else {}),
        **dsa("bf16", "triton"),
        "plain-graphs": Config(DUMMY_FLAGS, True),
        "mtp-graphs": Config((*DUMMY_FLAGS, "--speculative-draft-load-format", "dummy", *EAGLE_FLAGS), True),
        "mtp-eager": Config((*DUMMY_FLAGS, "--speculative-draft-load-format", "dummy", *EAGLE_FLAGS,
                             "--disable-cuda-graph"), True),
        **dsa("fp8_e4m3", "triton"),
        **(dsa("bf16", "flashmla") if flashmla else {}),
    }
    if kind == "tiny":  # dummy weights are drawn per shard: only real weights compare across layouts
        out.update({name: Config((*out["bf16-triton-graphs"].flags, *layout), gpus=2)
                    for name, layout in TWO_GPU_LAYOUTS.items()})
    return out


def pairs() -> dict[str, tuple[str, str]]:
    """Comparison name -> (reference configuration, configuration that must give its tokens)."""
    out = {f"{kv}-{b}: graphs = eager": (f"{kv}-{b}-eager", f"{kv}-{b}-graphs") for kv in KV_DTYPES for b in BACKENDS}
    out["mtp = plain (graphs)"] = ("plain-graphs", "mtp-graphs")
    out["mtp: graphs = eager"] = ("mtp-eager", "mtp-graphs")
    out.update({f"{name} = one GPU": ("bf16-triton-graphs", name) for name in TWO_GPU_LAYOUTS})
    return out


def prompts(length: int, count: int) -> list[list[int]]:
    """``count`` fixed prompts of ``length`` tokens (the same for every server)."""
    import torch

    gen = torch.Generator().manual_seed(PROMPT_SEED + length)
    return torch.randint(*TOKEN_RANGE, (count, length), generator=gen).tolist()


def server_env(base: dict, config: Config, logs: pathlib.Path, plan: Plan) -> dict:
    need_standin = not plan.cpu_engine and importlib.util.find_spec("sgl_kernel") is None
    path = [str(STANDIN_SITE)] * need_standin + [str(HARNESS_SITE)] + [p for p in [os.environ.get("PYTHONPATH")] if p]
    return {**base, "SGLANG_USE_CPU_ENGINE": "1" if plan.cpu_engine else "0", "PYTHONPATH": os.pathsep.join(path),
            "DSV32_SGL_KERNEL_LOG": str(logs), "DSV32_HARNESS_REPORT": str(logs),
            "DSV32_HARNESS_DRAFTABLE": "1" if config.draftable else "0"}


def _top2_gap(top: list | None) -> float | None:
    if not top or len(top) < 2 or top[0][0] is None or top[1][0] is None:
        return None
    return top[0][0] - top[1][0]


def run_prompt_set(server, plan: Plan, length: int, batch: int) -> dict:
    body = {"input_ids": prompts(length, max(plan.batches))[:batch],
            "sampling_params": {"temperature": 0, "max_new_tokens": plan.new_tokens, "ignore_eos": True},
            "return_logprob": True, "top_logprobs_num": 2}
    start = time.monotonic()
    status, out = server.post("/generate", body, REQUEST_TIMEOUT_S)
    if status != 200:
        raise RuntimeError(f"/generate answered {status}: {str(out)[:2000]}")
    metas = [o["meta_info"] for o in out]
    logprobs = [[lp for lp, *_ in m["output_token_logprobs"]] for m in metas]
    return {
        "seconds": round(time.monotonic() - start, 2),
        "output_ids": [o["output_ids"] for o in out],
        "top2_gap": [[_top2_gap(t) for t in m["output_top_logprobs"]] for m in metas],
        "finite": all(lp is not None and math.isfinite(lp) for row in logprobs for lp in row),
        "accept_length": [m.get("spec_accept_length") for m in metas],
    }


def _read_logs(logs: pathlib.Path) -> dict:
    standin: dict[str, set] = {"called": set(), "unsupported": set(), "missing": set()}
    reports = []
    for f in logs.iterdir():
        if f.name.startswith("sgl_kernel-"):
            for line in f.read_text().splitlines():
                event, name = line.split(maxsplit=1)
                standin[event].add(name)
        elif f.name.startswith("report-") and f.suffix == ".json":
            reports.append(json.loads(f.read_text()))
    return {"standin": {k: sorted(v) for k, v in standin.items()}, "reports": reports}


def _diagnostics(root: pathlib.Path, limit: int = 40) -> list[str]:
    """What the server logs say long before the traceback that ``error`` keeps the end of: compiler
    diagnostics (MLIR's ``error:``/``note:`` lines of a Triton ``PassManager::run failed``) and CUDA's
    device-side ``Assertion ... failed`` lines (which kernel tripped, and where)."""
    pattern = r"\b(error|note): |loc\(|Assertion .* failed"
    lines = [line for log in sorted(root.glob("server-*.log"))
             for line in log.read_text(errors="replace").splitlines() if re.search(pattern, line)]
    return lines[:limit]


def run_config(name: str, config: Config, checkpoint: pathlib.Path, workdir: pathlib.Path, env: dict,
               plan: Plan = GPU) -> dict:
    root = workdir / name
    logs = root / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    result: dict = {"flags": [*plan.flags, *config.flags], "draftable": config.draftable, "runs": {}}
    start = time.monotonic()
    try:
        with launch(checkpoint, root, *result["flags"], flags=(), env=server_env(env, config, logs, plan),
                    ready_timeout_s=SERVER_READY_S) as server:
            result["startup_s"] = round(time.monotonic() - start, 1)
            try:
                for length in plan.lengths:
                    for batch in plan.batches:
                        result["runs"][f"len{length}-bs{batch}"] = run_prompt_set(server, plan, length, batch)
            finally:
                result["log_tail"] = server.log_text()[-4000:]
        result["ok"] = True
    except KeyboardInterrupt:
        raise
    except Exception as exc:  # ServerFailed, or a request that failed
        result["ok"] = False
        result["error"] = f"{type(exc).__name__}: {exc}"[-6000:]
        result["diagnostics"] = _diagnostics(root)
    result["total_s"] = round(time.monotonic() - start, 1)
    result.update(_read_logs(logs))
    return result


def compare(reference: dict, other: dict) -> dict:
    """Per prompt set and sequence: equal, or where they first differ and how close the top-2 were.

    ``ok`` holds when every sequence is equal or first differs at a near tie (top-2 logprob gap
    below ``NEAR_TIE`` in either run), where rounding may legitimately pick the other token.
    """
    exact, near_ties, diverged = 0, [], []
    for run, ref in reference["runs"].items():
        got = other["runs"].get(run)
        if got is None:
            diverged.append({"run": run, "error": "not run"})
            continue
        for i, (a, b) in enumerate(zip(ref["output_ids"], got["output_ids"])):
            difference = first_difference(a, b, ref["top2_gap"][i], got["top2_gap"][i])
            if difference is None:
                exact += 1
                continue
            entry = {"run": run, "seq": i, **difference}
            (near_ties if at_near_tie(difference) else diverged).append(entry)
    return {"ok": not diverged, "exact": exact, "near_ties": near_ties, "diverged": diverged}


def comparisons(results: dict) -> dict:
    out = {}
    for label, (ref, other) in pairs().items():
        if results.get(ref, {}).get("ok") and results.get(other, {}).get("ok"):
            out[label] = compare(results[ref], results[other])
    return out


def main(argv=None) -> None:
    import torch

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("kind", choices=("tiny", "real"))
    parser.add_argument("out", type=pathlib.Path)
    parser.add_argument("--configs", nargs="*", help="configuration names (default: all)")
    parser.add_argument("--parallel", type=int, default=3, help="servers at once after the first one")
    parser.add_argument("--workdir", type=pathlib.Path, default=None)
    parser.add_argument("--cpu-smoke", action="store_true", help="tiny prompts on sglang's CPU engine (plumbing only)")
    parser.add_argument("--start-deadline-s", type=float, default=None,
                        help="start no server later than this many seconds after the first (device call limits)")
    args = parser.parse_args(argv)
    plan = CPU_SMOKE if args.cpu_smoke else GPU

    all_configs = configs(args.kind)
    names = args.configs or list(all_configs)
    unknown = set(names) - set(all_configs)
    if unknown:
        parser.error(f"unknown configurations {sorted(unknown)}; choose from {list(all_configs)}")
    workdir = args.workdir or pathlib.Path(tempfile.mkdtemp(prefix=f"dsv32-gpu-{args.kind}-"))
    checkpoint = make_serving_checkpoint(args.kind, workdir)
    tree_env, probe = tree_core_env("cpu" if plan.cpu_engine else "cuda")
    env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"} | tree_env
    summary = {"kind": args.kind, "checkpoint": str(checkpoint), "tree_core_probe": probe,
               "server_env": tree_env, "configs": {}, "comparisons": {}}
    lock = threading.Lock()
    started = time.monotonic()
    gpus = 1 if plan.cpu_engine else torch.cuda.device_count()

    def run(name: str) -> None:
        if args.start_deadline_s is not None and time.monotonic() - started > args.start_deadline_s:
            result = {"ok": False, "skipped": f"not started: --start-deadline-s {args.start_deadline_s}", "total_s": 0}
        elif all_configs[name].gpus > gpus:
            result = {"ok": False, "skipped": f"needs {all_configs[name].gpus} GPUs, {gpus} here", "total_s": 0}
        else:
            result = run_config(name, all_configs[name], checkpoint, workdir, env, plan)
        with lock:
            summary["configs"][name] = result
            summary["comparisons"] = comparisons(summary["configs"])
            args.out.write_text(json.dumps(summary, indent=1))
            print(f"[serving_driver] {name}: ok={result['ok']} startup={result.get('startup_s')}s "
                  f"total={result['total_s']}s {result.get('error', result.get('skipped', ''))[:300]}", flush=True)

    run(names[0])  # alone: it compiles the kernels the others then find cached
    with concurrent.futures.ThreadPoolExecutor(max(1, args.parallel)) as pool:
        for future in [pool.submit(run, name) for name in names[1:]]:
            future.result()
    for label, c in summary["comparisons"].items():
        print(f"[serving_driver] {label}: ok={c['ok']} exact={c['exact']} near_ties={len(c['near_ties'])} "
              f"diverged={len(c['diverged'])}", flush=True)


if __name__ == "__main__":
    with contextlib.suppress(BrokenPipeError):
        main()
