"""Prefill-decode disaggregation on CPU: router + prefill server + decode server give one server's numbers.

One set of servers for the module, started at once (``pd_deployment.py``: stock servers, the host's
router, Mooncake over loopback TCP), on the session's checkpoint (64 indexer heads, draftable, float32),
all with the reference's EAGLE flags:

* prefill server: ``--chunked-prefill-size 64`` (A's 151 tokens in chunks of 64 + 64 + 23) and the
  cookbook's context-parallel prefill, ``--tp 2 --enable-prefill-cp --cp-strategy zigzag`` (two CPU
  ranks, each left with the whole caches; the host's CP rank 0 sends them);
* decode server, behind the router: ``--disaggregation-decode-enable-radix-cache``;
* mutant decode server, reached by hand through the same prefill server: it withholds the index-K
  pages (``index_k_mutant/``).
 Through the router, A, B, D (one call) and then C (A's
first 129 tokens + 22, a 128-token prefix from both servers' radix caches: the prefill server
computes only the suffix, and the decode server keeps its own prefix rows, latent and index-K, and
receives the suffix's pages) must give one ordinary server's greedy tokens, output logprobs within
1e-4 and EAGLE counts (``one_rank_reference``). Every prompt is longer than ``index_topk`` (16):
the decode server's indexer picks among transferred keys.

The mutant decode server must not reproduce A, B and D: the comparison sees the indexer cache.
Then faults, each ending in an error for that request, both pools back at their free size and the
deployment still serving; last, the prefill server killed:

* a request whose prefill server is unreachable (a decode server without a prefill server);
* a request aborted on the decode server while its KV is in transfer;
* the prefill server killed while a request's KV is in transfer: the decode server fails it, frees
  its pool and keeps running.
"""

from __future__ import annotations

import os
import signal
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from pathlib import Path

import pytest
from one_rank_reference import BATCH, EAGLE, PREFIX, REUSE, A, C, numbers
from pd_deployment import (Deployment, abort, assert_pools_free, decode_server, load, prefill_server, router,
                           wait_for)
from test_multi_rank import LOGPROB_TOL, TWO_RANKS, random_ids
from dsv32_plugin.testing import server as _launcher

pytestmark = [pytest.mark.server, pytest.mark.slow]

# The cookbook's PD layout puts context parallelism on the prefill side: two CP ranks (gloo), zigzag
# (in-seq-split, the cookbook's default CP mode).
PREFILL_FLAGS = ("--dtype", "float32", "--chunked-prefill-size", "64", "--tp", "2", "--enable-prefill-cp",
                 "--cp-strategy", "zigzag", *EAGLE)
DECODE_FLAGS = ("--dtype", "float32", "--disaggregation-decode-enable-radix-cache", *EAGLE)
MUTANT = Path(__file__).resolve().parent / "index_k_mutant"
# Prompts whose prefill takes six 64-token chunks, each sent as it is computed: a window in which the
# KV is in transfer. One per fault test: a prompt the prefill server has cached transfers at once.
LONG_TOKENS = 384


class PD:
    """The module's servers (``servers``: prefill + decode, ``mutant``: prefill + mutant decode) and router."""

    def __init__(self, ckpt, root, stack):
        pythonpath = os.pathsep.join(p for p in (str(MUTANT), os.environ.get("PYTHONPATH")) if p)
        with ThreadPoolExecutor(3) as pool:  # each thread waits for its own server
            started = [pool.submit(stack.enter_context, server) for server in (
                prefill_server(ckpt, root, *PREFILL_FLAGS, env=TWO_RANKS),
                decode_server(ckpt, root, *DECODE_FLAGS),
                decode_server(ckpt, root, *DECODE_FLAGS, env={"PYTHONPATH": pythonpath}))]
            (prefill, port), decode, mutant = (future.result() for future in started)
        self.servers = Deployment(prefill, port, decode)
        self.mutant = Deployment(prefill, port, mutant)
        self.router = stack.enter_context(router(self.servers, root))


@pytest.fixture(scope="module")
def pd(draftable_checkpoint, one_rank_reference):
    with ExitStack() as stack:
        yield PD(*draftable_checkpoint, stack)


def differences(results: list[dict], reference: list[dict]) -> list[str]:
    """What differs from the reference: tokens, output logprobs beyond 1e-4, EAGLE counts."""
    found = []
    for name, got, want in zip("ABDC", results, reference):
        if got["tokens"] != want["tokens"]:
            found.append(f"{name}: tokens {got['tokens']} != {want['tokens']}")
        gap = (got["output"] - want["output"]).abs().max().item() if len(got["output"]) == len(want["output"]) else 1
        if gap >= LOGPROB_TOL:
            found.append(f"{name}: output logprobs differ by {gap:.2e}")
        if got["drafts"] != want["drafts"]:
            found.append(f"{name}: EAGLE verifies/accepted {got['drafts']} != {want['drafts']}")
    return found


def test_router_prefill_decode_give_one_servers_numbers(pd, one_rank_reference):
    batch = pd.router.generate(BATCH, timeout=600)
    reuse = pd.router.generate(REUSE, timeout=600)
    results = [numbers(out) for out in batch] + [numbers(reuse)]
    assert differences(results, one_rank_reference) == []
    assert all(r["drafts"][1] > 0 for r in results)  # drafts accepted: the draft's caches arrived too
    assert results[3]["cached"] >= PREFIX  # the decode server's radix cache
    # C on the prefill side: only the suffix computed
    assert f"#new-token: {len(C) - PREFIX}, #cached-token: {PREFIX}" in pd.servers.prefill.log_text()
    assert "dsv32-plugin DSA backend: prefill=torch decode=torch kv_cache=auto indexer=exact" in \
        pd.servers.decode.log_text()
    assert_pools_free(pd.servers.prefill, pd.servers.decode)


def test_without_the_index_k_transfer_the_numbers_differ(pd, one_rank_reference):
    (_, _), (status, batch) = pd.mutant.route(BATCH)
    assert status == 200, batch
    results = [numbers(out) for out in batch]
    found = differences(results, one_rank_reference[:3])
    print("index-K withheld:", found)
    differing = {f[0] for f in found if "logprobs" in f}
    assert differing == set("ABD"), f"the comparison missed the withheld indexer cache: {found}"


def still_serves(pd, one_rank_reference) -> None:
    """B through the router gives the reference's tokens."""
    out = pd.router.generate({**BATCH, "input_ids": BATCH["input_ids"][1]}, timeout=600)
    assert out["output_ids"] == one_rank_reference[1]["tokens"]


def test_unreachable_prefill_server_fails_that_request(pd, one_rank_reference):
    dead = _launcher.free_port()
    body = {"input_ids": A, "sampling_params": {"max_new_tokens": 4}, "bootstrap_host": "127.0.0.1",
            "bootstrap_port": dead, "bootstrap_room": 1}
    status, out = pd.servers.decode.post("/generate", body, timeout=300)
    assert status == 500 and "Decode handshake failed" in str(out), out
    assert f"Could not fetch prefill parallel info from 127.0.0.1:{dead}" in pd.servers.decode.log_text()
    assert_pools_free(pd.servers.decode)
    still_serves(pd, one_rank_reference)


def in_transfer(pd) -> bool:
    """The decode server waits for the request's KV, and the prefill server has computed some of it."""
    return load(pd.servers.decode)["disaggregation"]["decode_transfer_queue_reqs"] == 1 and \
        load(pd.servers.prefill)["num_used_tokens"] > 0


def start_long_request(pd, rid: str, seed: int):
    """Route a new long prompt by hand with ``rid``; return the pending answers once its KV is in transfer."""
    body = {"input_ids": random_ids(LONG_TOKENS, seed), "rid": rid,
            "sampling_params": {"max_new_tokens": 8, "temperature": 0}}
    pool = ThreadPoolExecutor(1)
    answers = pool.submit(pd.servers.route, body)
    pool.shutdown(wait=False)
    wait_for(lambda: in_transfer(pd) or answers.done(), "the long request reaches its transfer")
    assert not answers.done(), answers.result()
    return answers


def test_abort_during_transfer_fails_that_request(pd, one_rank_reference):
    answers = start_long_request(pd, rid="aborted-in-transfer", seed=31)
    abort(pd.servers.decode, "aborted-in-transfer")
    (prefill_status, prefill_out), (decode_status, decode_out) = answers.result(timeout=300)
    assert decode_status == 500 and "Aborted" in str(decode_out), decode_out
    assert prefill_status != 200, prefill_out
    assert_pools_free(pd.servers.prefill, pd.servers.decode)
    still_serves(pd, one_rank_reference)


def test_prefill_server_killed_in_transfer_fails_that_request(pd):
    answers = start_long_request(pd, rid="prefill-killed", seed=32)
    os.killpg(pd.servers.prefill.process.pid, signal.SIGKILL)
    _, (decode_status, decode_out) = answers.result(timeout=300)
    assert decode_status == 500, decode_out
    print("decode server's answer:", decode_out)
    assert_pools_free(pd.servers.decode)
    # the host's liveness check: a one-token request through the decode scheduler (fake KV)
    with urllib.request.urlopen(pd.servers.decode.url + "/health_generate", timeout=60) as resp:
        assert resp.status == 200
