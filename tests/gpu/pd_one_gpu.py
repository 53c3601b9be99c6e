"""Prefill-decode disaggregation on one GPU against one ordinary server (tiny FP8 checkpoint), as JSON.

    python pd_one_gpu.py OUT.json [--kv-cache-dtype fp8_e4m3|bf16] [--workdir DIR] [--cpu-smoke]

Checkpoint: ``gpu_serving.make_serving_checkpoint``'s ``tiny`` (FP8 block weights, 64 indexer heads).
Servers, one after the other on GPU 0, each with a fifth of its memory: an ordinary server, then a prefill
server and a decode server (``tests/e2e/pd_deployment.py``: Mooncake over loopback TCP, whose CUDA build
copies GPU memory through the host) and the router (sglang_router's Python mini load balancer where its
Rust extension is not installed, as on the device: ``tests/gpu/pd_wheels.sh``); all with EAGLE (2 steps,
top-k 1) and the asked KV-cache dtype, the prefill server with 64-token chunks, the decode server with its
radix cache. Each gets the calls of ``tests/e2e/one_rank_reference.py`` (A, B, D in one call, then C,
sharing 128 tokens with A), with the top-2 logprobs of every output token.

OUT.json: which router ran (``router``: ``rust`` or ``mini_lb``), per prompt both runs' tokens, output
logprobs and EAGLE counts, and the comparison: ``ok`` when every prompt's tokens are equal or first differ
at a near tie (``gpu_serving.NEAR_TIE``), with the largest output-logprob difference over the tokens both
runs share. Exit status 1 when not ok.
``--cpu-smoke`` runs the same on sglang's CPU engine (plumbing only).
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import sys
import tempfile
from contextlib import ExitStack

HERE = pathlib.Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE.parent / "e2e")]

import serving_driver  # noqa: E402
from one_rank_reference import BATCH, EAGLE, REUSE  # noqa: E402
from pd_deployment import Deployment, decode_server, prefill_server, router, rust_router_installed  # noqa: E402
from dsv32_plugin.testing import gpu_serving  # noqa: E402
from dsv32_plugin.testing import server as _launcher  # noqa: E402
from dsv32_plugin.testing.server import CPU_FLAGS, launch  # noqa: E402

GPU_FLAGS = ("--sampling-backend", "pytorch", "--cuda-graph-bs-decode", "1", "2", "4", "--mem-fraction-static", "0.2",
             "--max-total-tokens", "65536")
TOP2 = {"top_logprobs_num": 2}


def outputs(server) -> list[dict]:
    """Per prompt (A, B, D, C): tokens, output logprobs, top-2 gaps, EAGLE (verifies, accepted)."""
    answers = [*server.generate(BATCH | TOP2, timeout=600), server.generate(REUSE | TOP2, timeout=600)]
    return [{"tokens": a["output_ids"],
             "logprobs": [lp for lp, *_ in a["meta_info"]["output_token_logprobs"]],
             "top2_gap": [serving_driver._top2_gap(top) for top in a["meta_info"]["output_top_logprobs"]],
             "drafts": [a["meta_info"].get("spec_verify_ct"), a["meta_info"].get("spec_num_correct_drafts")]}
            for a in answers]


def compare(reference: list[dict], pd: list[dict]) -> dict:
    differences, worst = [], 0.0
    for name, ref, got in zip("ABDC", reference, pd):
        difference = gpu_serving.first_difference(ref["tokens"], got["tokens"], ref["top2_gap"], got["top2_gap"])
        shared = len(ref["tokens"]) if difference is None else difference["position"] + 1
        worst = max([worst, *(abs(a - b) for a, b in zip(ref["logprobs"][:shared], got["logprobs"][:shared]))])
        if difference is not None:
            differences.append({"prompt": name, **difference, "near_tie": gpu_serving.at_near_tie(difference)})
    same_drafts = [r["drafts"] for r in reference] == [p["drafts"] for p in pd]
    return {"ok": all(d["near_tie"] for d in differences), "differences": differences,
            "max_logprob_difference": worst, "same_drafts": same_drafts}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=pathlib.Path)
    parser.add_argument("--kv-cache-dtype", default="fp8_e4m3", choices=("fp8_e4m3", "bf16"))
    parser.add_argument("--workdir", type=pathlib.Path, default=None)
    parser.add_argument("--cpu-smoke", action="store_true", help="sglang's CPU engine (plumbing only)")
    args = parser.parse_args(argv)
    workdir = args.workdir or pathlib.Path(tempfile.mkdtemp(prefix="dsv32-pd-"))
    checkpoint = gpu_serving.make_serving_checkpoint("tiny", workdir)
    plan = serving_driver.CPU_SMOKE if args.cpu_smoke else serving_driver.GPU
    tree_env, _ = serving_driver.tree_core_env("cpu" if args.cpu_smoke else "cuda")
    base = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"} | tree_env
    env = serving_driver.server_env(base, serving_driver.Config(flags=()), workdir, plan)
    device = CPU_FLAGS if args.cpu_smoke else GPU_FLAGS
    flags = ("--kv-cache-dtype", args.kv_cache_dtype, *EAGLE)
    _launcher.READY_TIMEOUT_S = serving_driver.SERVER_READY_S  # the first server compiles the kernels
    mini_lb = not rust_router_installed()

    with launch(checkpoint, workdir, *flags, flags=device, env=env) as server:
        reference = outputs(server)
    with ExitStack() as stack:
        prefill, port = stack.enter_context(prefill_server(checkpoint, workdir, *flags, "--chunked-prefill-size", "64",
                                                           device_flags=device, env=env))
        decode = stack.enter_context(decode_server(checkpoint, workdir, *flags,
                                                   "--disaggregation-decode-enable-radix-cache",
                                                   device_flags=device, env=env))
        pd = outputs(stack.enter_context(router(Deployment(prefill, port, decode), workdir, mini_lb=mini_lb)))
    summary = {"kv_cache_dtype": args.kv_cache_dtype, "router": "mini_lb" if mini_lb else "rust",
               "reference": reference, "pd": pd,
               "comparison": compare(reference, pd)}
    args.out.write_text(json.dumps(summary, indent=1))
    print(f"[pd_one_gpu] {args.kv_cache_dtype}, router {summary['router']}: {json.dumps(summary['comparison'])}",
          flush=True)
    return 0 if summary["comparison"]["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
