"""Stock ``launch_server`` under load with each DSA backend: nothing lost, nothing leaked. JSON out.

    python load_driver.py OUT.json [--backends flashmla triton] [--cpu-smoke] [--workdir DIR]

Per backend one server of the real-width checkpoint (``make_serving_checkpoint("real")``:
every per-layer size of the released model, 2 layers + MTP layer, dummy FP8 weights), FP8 KV
cache, CUDA graphs and the radix cache on (host defaults), ``--enable-metrics``, and the host's
strict idle memory check (``SGLANG_ENABLE_STRICT_MEM_CHECK_DURING_IDLE=1``: an idle scheduler
whose KV allocator does not add up -- free + radix-cached = capacity -- raises instead of
warning). The indexer cache shares the KV pool's slots (``attention/pool.py``), so that one
check covers both caches. Then, in order:

1. ``load``: the host's ``bench_serving`` (``python -m sglang.benchmark.serving``), after its
   own untimed warm-up of ``concurrency`` requests (``--warmup-requests``: the first batches of a
   shape JIT-compile kernels, which would otherwise land in the first server's numbers), 128 prompts
   of random token ids, ``--random-input-len 3072 --random-range-ratio 0.334`` (1024-3072 tokens;
   the host draws output lengths with the same ratio: 85-256), ``--random-output-len 256``,
   concurrency 32. Every request must complete; output tok/s, TPOT and TTFT are kept.
2. ``cancel``: 64 streamed requests (same lengths, concurrency 32) whose client closes the stream
   after 16 chunks; the server must stay healthy.
3. ``pool``: idle for a few scheduler cycles (the strict check runs there), ``/flush_cache``
   (empties the radix cache), then ``sglang:num_used_tokens`` from ``/metrics`` must be 0 and the
   log must hold no "memory leak detected".
4. ``too_long``: a prompt one token longer than the context gets HTTP 400, and a normal request
   after it is answered.

``--cpu-smoke`` runs the same steps with a few small prompts on sglang's CPU engine (the tiny
checkpoint): the plumbing, by hand (bench_serving needs ``datasets``, which the lean CPU install
leaves out; run 2026-12-07: every step ok).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import pathlib
import random
import re
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass, replace

HERE = pathlib.Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from serving_driver import GPU as GPU_PLAN  # noqa: E402
from serving_driver import SERVER_READY_S, Config, server_env  # noqa: E402
from tree_core_probe import tree_core_env  # noqa: E402

from dsv32_plugin.testing.gpu_serving import make_serving_checkpoint  # noqa: E402
from dsv32_plugin.testing.server import CPU_FLAGS, launch  # noqa: E402

BACKENDS = {"flashmla": "flashmla_auto", "triton": "triton"}


@dataclass(frozen=True)
class Load:
    kind: str = "real"
    prompts: int = 128
    input_len: int = 3072
    range_ratio: float = 0.334
    output_len: int = 256
    concurrency: int = 32
    cancel_after_chunks: int = 16
    context_len: int = 16384
    flags: tuple[str, ...] = ("--kv-cache-dtype", "fp8_e4m3", "--load-format", "dummy", "--enable-metrics",
                              "--sampling-backend", "pytorch", "--mem-fraction-static", "0.5")
    cpu_engine: bool = False


GPU = Load()
CPU_SMOKE = Load(kind="tiny", prompts=4, input_len=48, range_ratio=0.5, output_len=8, concurrency=2,
                 cancel_after_chunks=2, context_len=512, cpu_engine=True,
                 flags=("--enable-metrics", *(f for f in CPU_FLAGS if f != "--skip-server-warmup")))


def bench_serving(url: str, tokenizer: str, load: Load, out: pathlib.Path, env: dict) -> dict:
    cmd = [sys.executable, "-m", "sglang.benchmark.serving", "--backend", "sglang", "--base-url", url,
           "--dataset-name", "random-ids", "--tokenizer", tokenizer, "--num-prompts", str(load.prompts),
           "--warmup-requests", str(load.concurrency),
           "--random-input-len", str(load.input_len), "--random-range-ratio", str(load.range_ratio),
           "--random-output-len", str(load.output_len), "--max-concurrency", str(load.concurrency),
           "--output-file", str(out), "--disable-tqdm", "--seed", "7"]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=1200)
    if done.returncode != 0 or not out.exists():
        raise RuntimeError(f"bench_serving failed ({done.returncode}): {(done.stdout + done.stderr)[-3000:]}")
    result = json.loads(out.read_text().splitlines()[-1])
    keep = ("completed", "total_input_tokens", "total_output_tokens", "duration", "request_throughput",
            "output_throughput", "mean_ttft_ms", "median_ttft_ms", "mean_tpot_ms", "median_tpot_ms", "p99_tpot_ms",
            "mean_itl_ms", "median_itl_ms")
    return {k: result.get(k) for k in keep} | {"ok": result.get("completed") == load.prompts}


async def _cancelled_stream(url: str, ids: list[int], load: Load) -> int:
    """Stream one request and drop the connection after ``cancel_after_chunks`` chunks; chunks read."""
    import aiohttp

    body = {"input_ids": ids, "stream": True,
            "sampling_params": {"temperature": 0, "max_new_tokens": load.output_len, "ignore_eos": True}}
    chunks = 0
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=600)) as session:
        async with session.post(url + "/generate", json=body) as resp:
            resp.raise_for_status()
            async for line in resp.content:
                if line.startswith(b"data:") and b"[DONE]" not in line:
                    chunks += 1
                    if chunks >= load.cancel_after_chunks:
                        break  # leaving the block closes the connection: the server aborts the request
    return chunks


async def _cancel_all(url: str, prompts: list[list[int]], load: Load) -> list[int]:
    gate = asyncio.Semaphore(load.concurrency)

    async def one(ids):
        async with gate:
            return await _cancelled_stream(url, ids, load)

    return await asyncio.gather(*(one(ids) for ids in prompts))


def random_prompts(load: Load, count: int, seed: int) -> list[list[int]]:
    rng = random.Random(seed)
    low = max(1, int(load.input_len * load.range_ratio))
    return [[rng.randrange(3, 600) for _ in range(rng.randint(low, load.input_len))] for _ in range(count)]


def _get(url: str, timeout: float = 60) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            return resp.status, resp.read().decode()
    except urllib.error.HTTPError as err:
        return err.code, err.read().decode(errors="replace")


def _used_tokens(url: str) -> float | None:
    status, text = _get(url + "/metrics")
    values = [float(m.group(1)) for m in re.finditer(r"^sglang:num_used_tokens\{[^}]*\} (\S+)$", text, re.M)]
    return sum(values) if status == 200 and values else None


def pool_after_load(server, settle_s: float) -> dict:
    time.sleep(settle_s)  # idle scheduler cycles: the strict leak check runs there
    flush, _ = _get(server.url + "/flush_cache")
    time.sleep(settle_s)
    health, _ = _get(server.url + "/health_generate", timeout=300)
    time.sleep(settle_s)
    used = _used_tokens(server.url)
    leaks = [line for line in server.log_text().splitlines() if "memory leak detected" in line]
    return {"flush_status": flush, "health_status": health, "used_tokens_after_flush": used,
            "leak_lines": leaks[:5], "ok": flush == 200 and health == 200 and used == 0 and not leaks}


def too_long(server, context_len: int) -> dict:
    status, body = server.post("/generate", {"input_ids": [5] * (context_len + 1),
                                             "sampling_params": {"max_new_tokens": 4}}, timeout=120)
    after, out = server.post("/generate", {"input_ids": [5, 6, 7], "sampling_params": {"max_new_tokens": 4}})
    return {"status": status, "message": str(body)[:300], "next_status": after,
            "ok": status == 400 and after == 200 and bool(out.get("output_ids"))}


def run_backend(name: str, load: Load, checkpoint: pathlib.Path, workdir: pathlib.Path, base_env: dict) -> dict:
    backend = BACKENDS[name]
    flags = (*load.flags, "--context-length", str(load.context_len))
    if not load.cpu_engine:  # the CPU engine has one DSA backend (the float32 reference)
        flags += ("--dsa-prefill-backend", backend, "--dsa-decode-backend", backend)
    root = workdir / name
    logs = root / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    plan = replace(GPU_PLAN, cpu_engine=load.cpu_engine)
    env = server_env(base_env, Config(flags), logs, plan) | {"SGLANG_ENABLE_STRICT_MEM_CHECK_DURING_IDLE": "1"}
    result: dict = {"flags": list(flags)}
    start = time.monotonic()
    try:
        with launch(checkpoint, root, *flags, flags=(), env=env, ready_timeout_s=SERVER_READY_S) as server:
            result["startup_s"] = round(time.monotonic() - start, 1)
            client_env = {k: v for k, v in env.items() if k != "SGLANG_ENABLE_STRICT_MEM_CHECK_DURING_IDLE"}
            result["load"] = bench_serving(server.url, str(checkpoint), load, root / "bench.jsonl", client_env)
            chunks = asyncio.run(_cancel_all(server.url, random_prompts(load, load.prompts // 2, seed=3), load))
            health, _ = _get(server.url + "/health_generate", timeout=300)
            result["cancel"] = {"requests": len(chunks), "chunks_read": sorted(set(chunks)), "health_status": health,
                                "ok": health == 200 and all(c == load.cancel_after_chunks for c in chunks)}
            result["pool"] = pool_after_load(server, settle_s=2 if load.cpu_engine else 5)
            result["too_long"] = too_long(server, load.context_len)
            result["log_tail"] = server.log_text()[-3000:]
        result["ok"] = all(result[step]["ok"] for step in ("load", "cancel", "pool", "too_long"))
    except Exception as exc:  # noqa: BLE001 -- the JSON keeps what broke
        result["ok"] = False
        result["error"] = f"{type(exc).__name__}: {exc}"[-4000:]
    result["total_s"] = round(time.monotonic() - start, 1)
    return result


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=pathlib.Path)
    parser.add_argument("--backends", nargs="*", default=list(BACKENDS), choices=list(BACKENDS))
    parser.add_argument("--workdir", type=pathlib.Path, default=None)
    parser.add_argument("--cpu-smoke", action="store_true")
    args = parser.parse_args(argv)
    load = CPU_SMOKE if args.cpu_smoke else GPU
    workdir = args.workdir or pathlib.Path(tempfile.mkdtemp(prefix="dsv32-load-"))
    checkpoint = make_serving_checkpoint(load.kind, workdir)
    tree_env, _ = tree_core_env("cpu" if load.cpu_engine else "cuda")
    env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"} | tree_env
    summary = {"load": vars(load) | {"flags": list(load.flags)}, "backends": {}}
    for name in args.backends[:1] if load.cpu_engine else args.backends:
        summary["backends"][name] = run_backend(name, load, checkpoint, workdir, env)
        args.out.write_text(json.dumps(summary, indent=1))
        r = summary["backends"][name]
        print(f"[load_driver] {name}: ok={r['ok']} {json.dumps(r.get('load', r.get('error')))[:400]}", flush=True)


if __name__ == "__main__":
    main()
