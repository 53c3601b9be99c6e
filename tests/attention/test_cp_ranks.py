"""Context-parallel extend on the DSA backend: two simulated CP ranks equal one rank (no server).

One batch of two requests -- request 1 extends 37 tokens over a 64-token prefix
already in the cache, request 2 prefills 23 tokens (odd lengths, not multiples of
2·cp) -- runs (a) on one backend and (b) split over two CP ranks, each a thread
with its own pool and backend whose all-gather is a barrier. Each rank's rows are
laid out as the host's strategies lay them out (interleave: batch token i on rank
i mod 2; zigzag: each request in 4 blocks, rank r holds blocks r and 3 - r; both
padded with -1 rows to an equal share). Each rank must return, for its rows, the
one-rank top-k and output (padding rows: nothing selected, output 0), and end with
caches byte-equal to the one-rank caches, in every cache format. On CPU the reference
kernels and cache writers run; the GPU case runs the ``triton`` kernels and the Triton
cache writers (the ones a GPU server uses for CP's encoding and for one-rank stores).
"""

from __future__ import annotations

import threading
from types import SimpleNamespace

import pytest
import torch
from sglang.srt.model_executor.forward_batch_info import ForwardMode

import dsv32_plugin.attention.backend as backend_module
import dsv32_plugin.attention.dispatch as dispatch
from dsv32_plugin.attention.backend import DSABackend
from dsv32_plugin.attention.context_parallel import CPShard
from dsv32_plugin.attention.pool import DSAIndexedKVPool
from fake_runner import fake_model_runner

HEADS, DL, R, DI, HI, TOPK = 2, 128, 32, 64, 8, 16
SCALE = 0.2
CP = 2
PREFIX, NEW = 64, (37, 23)  # request 1: prefix + 37 new tokens; request 2: 23 new tokens
FIRST_SLOT = (64, 256)  # page-aligned slots of each request's position 0
KV_DTYPES = [pytest.param(torch.float32, id="float32-exact"), pytest.param(torch.bfloat16, id="bf16-fp8-indexer"),
             pytest.param(torch.float8_e4m3fn, id="fp8-kv")]
CASES = [pytest.param("cpu", dtype.values[0], id=f"cpu-{dtype.id}") for dtype in KV_DTYPES] + [
    pytest.param("cuda", dtype.values[0], id=f"cuda-triton-{dtype.id}", marks=pytest.mark.gpu)
    for dtype in KV_DTYPES[1:]]  # CUDA: FP8 indexer cache (the exact one is the reference's, CPU only)


def make_backend(kv_dtype: torch.dtype, device: str) -> DSABackend:
    width = DL + R if kv_dtype != torch.float8_e4m3fn else DL + 4 + 2 * R
    pool = DSAIndexedKVPool(512, 64, DL, kv_dtype, R, 1, device, DI, False, width)
    req_to_token = torch.zeros(3, 512, dtype=torch.int32, device=device)
    for req, first in enumerate(FIRST_SLOT, start=1):
        req_to_token[req, :192] = torch.arange(first, first + 192)
    return DSABackend(fake_model_runner(pool, req_to_token, topk=TOPK, kv_lora_rank=DL, rope=R))


def inputs(tokens: int, seed: int, dtype: torch.dtype, device: str):
    g = torch.Generator().manual_seed(seed)
    shapes = {"q": (tokens, HEADS, DL), "q_rope": (tokens, HEADS, R), "c_kv": (tokens, 1, DL),
              "k_rope": (tokens, 1, R), "iq": (tokens, HI, DI), "ik": (tokens, DI), "w": (tokens, HI)}
    return {name: torch.randn(*shape, generator=g).to(device, dtype if name != "w" else torch.float32)
            for name, shape in shapes.items()}


def extend_batch(reqs: list[int], starts: list[int], lengths: list[int], device: str):
    positions = torch.cat([torch.arange(s, s + n) for s, n in zip(starts, lengths)])
    slots = torch.cat([torch.arange(FIRST_SLOT[r - 1] + s, FIRST_SLOT[r - 1] + s + n)
                       for r, s, n in zip(reqs, starts, lengths)])
    return SimpleNamespace(forward_mode=ForwardMode.EXTEND, batch_size=len(reqs), positions=positions.to(device),
                           extend_seq_lens=torch.tensor(lengths, device=device),
                           req_pool_indices=torch.tensor(reqs, device=device), out_cache_loc=slots.to(device))


def run_layer(backend, batch, x, rows: torch.Tensor | None = None):
    """One DSA layer over ``x``'s rows (``rows``: this rank's batch rows, -1 padding); (top-k, output)."""
    if rows is not None:
        rows = rows.to(x["q"].device)
        x = {name: torch.where((rows >= 0).view(-1, *[1] * (t.dim() - 1)), t[rows.clamp_min(0)], 0)
             for name, t in x.items()}
    n = x["q"].shape[0]
    layer = SimpleNamespace(layer_id=0, tp_q_head_num=HEADS, scaling=SCALE)
    out = backend.forward_extend(x["q"].reshape(n, -1), x["c_kv"], x["c_kv"], layer, batch, q_rope=x["q_rope"],
                                 k_rope=x["k_rope"], index_q=x["iq"], index_k=x["ik"], index_weights=x["w"])
    topk = backend.select_topk(0, batch, x["iq"], x["ik"], x["w"])  # what the call selected
    return topk, out.view(n, HEADS, DL)


def padded(rank_rows: list[list[int]], align: int) -> list[torch.Tensor]:
    share = -(-max(len(r) for r in rank_rows) // align) * align
    return [torch.tensor(r + [-1] * (share - len(r))) for r in rank_rows]


def interleave_rows(lengths) -> list[torch.Tensor]:
    """Batch token i on rank i mod CP (the host's round-robin over the whole batch)."""
    total = sum(lengths)
    return padded([list(range(rank, total, CP)) for rank in range(CP)], CP)


def zigzag_rows(lengths) -> list[torch.Tensor]:
    """Each request in 2·CP blocks (the first ``n mod 2CP`` one longer); rank r: blocks r, then 2CP-1-r."""
    blocks, offset = [], 0
    for n in lengths:
        sizes = [n // (2 * CP) + (b < n % (2 * CP)) for b in range(2 * CP)]
        starts = [offset + sum(sizes[:b]) for b in range(2 * CP)]
        blocks.append([list(range(s, s + size)) for s, size in zip(starts, sizes)])
        offset += n
    return padded([[t for req in blocks for t in req[rank]] + [t for req in blocks for t in req[2 * CP - 1 - rank]]
                   for rank in range(CP)], 2 * CP)


class Exchange:
    """An all-gather among CP threads: each rank's rows go to their batch rows."""

    def __init__(self, rank_rows: list[torch.Tensor]):
        self.rank_rows = rank_rows
        self.posted: list = [None] * len(rank_rows)
        self.barrier = threading.Barrier(len(rank_rows))

    def gather_for(self, rank: int):
        def gather(local: torch.Tensor) -> torch.Tensor:
            self.posted[rank] = local
            self.barrier.wait()
            total = sum(int((rows >= 0).sum()) for rows in self.rank_rows)
            full = local.new_zeros(total, *local.shape[1:])
            for rows, part in zip(self.rank_rows, self.posted):
                rows = rows.to(local.device)
                full[rows[rows >= 0]] = part[: len(rows)][rows >= 0]
            self.barrier.wait()  # everyone has read the posts before the next gather overwrites them
            return full

        return gather


def cached_prefix(kv_dtype, prefix_x, device):
    backend = make_backend(kv_dtype, device)
    batch = extend_batch([1], [0], [PREFIX], device)
    backend.init_forward_metadata(batch)
    run_layer(backend, batch, prefix_x)
    return backend


@pytest.mark.parametrize("layout", [interleave_rows, zigzag_rows], ids=["interleave", "zigzag"])
@pytest.mark.parametrize("device, kv_dtype", CASES)
def test_cp_ranks_equal_one_rank(device, kv_dtype, layout, monkeypatch):
    kernels = "triton" if device == "cuda" else None
    monkeypatch.setattr(dispatch, "configured_backends", lambda: (kernels, kernels))
    data_dtype = torch.float32 if kv_dtype == torch.float32 else torch.bfloat16
    prefix_x, x = inputs(PREFIX, 0, data_dtype, device), inputs(sum(NEW), 1, data_dtype, device)
    batch = lambda: extend_batch([1, 2], [PREFIX, 0], list(NEW), device)  # noqa: E731

    one = cached_prefix(kv_dtype, prefix_x, device)
    one.init_forward_metadata(batch())
    want_topk, want_out = run_layer(one, batch(), x)
    assert (want_topk >= 0).sum(1).max() == TOPK  # the sparse path runs

    rank_rows = layout(list(NEW))
    assert sorted(torch.cat(rank_rows)[torch.cat(rank_rows) >= 0].tolist()) == list(range(sum(NEW)))
    exchange = Exchange(rank_rows)
    ranks = [cached_prefix(kv_dtype, prefix_x, device) for _ in range(CP)]
    results: list = [None] * CP
    errors: list = []

    for rank, backend in enumerate(ranks):  # metadata needs no collective: built here, one rank after the other
        shard = CPShard(rank_rows[rank].to(device), exchange.gather_for(rank))
        monkeypatch.setattr(backend_module, "cp_shard", lambda fb, shard=shard: shard)
        backend.init_forward_metadata(batch())

    def rank_main(rank: int):
        try:
            results[rank] = run_layer(ranks[rank], batch(), x, rank_rows[rank])
        except BaseException as exc:  # reported by the main thread
            errors.append(exc)
            exchange.barrier.abort()

    threads = [threading.Thread(target=rank_main, args=(rank,)) for rank in range(CP)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise errors[0]

    as_sets = lambda t: [set(r.tolist()) for r in t]  # noqa: E731
    for rows, (topk, out), backend in zip(rank_rows, results, ranks):
        rows = rows.to(device)
        real = rows >= 0
        assert as_sets(topk[real]) == as_sets(want_topk[rows[real]])
        torch.testing.assert_close(out[real], want_out[rows[real]], rtol=1e-5, atol=1e-5)
        assert (topk[~real] == -1).all() and (out[~real] == 0).all()
        pool, ref = backend.token_to_kv_pool, one.token_to_kv_pool
        assert torch.equal(pool.kv_buffer[0].view(torch.uint8), ref.kv_buffer[0].view(torch.uint8))
        assert torch.equal(pool.index_k_cache[0].view(torch.uint8), ref.index_k_cache[0].view(torch.uint8))


@pytest.mark.parametrize("strategy_name, layout", [("interleave", interleave_rows), ("zigzag", zigzag_rows)])
def test_the_layouts_above_are_the_hosts(strategy_name, layout, monkeypatch):
    """The host's strategies (``sglang.srt.layers.cp``) put the batch rows 0..T-1 where these tests put them;
    ``cp_shard`` numbers rows the same way (the host's shard of ``1..T``, padding 0 -> -1)."""
    import sglang.srt.layers.cp.padding as padding
    from sglang.srt.layers.cp.interleave import InterleaveCPStrategy
    from sglang.srt.layers.cp.zigzag import ZigzagCPStrategy

    strategy_class = {"interleave": InterleaveCPStrategy, "zigzag": ZigzagCPStrategy}[strategy_name]
    monkeypatch.setattr(padding, "get_cp_padding_align_size", lambda: CP * (2 if strategy_name == "zigzag" else 1))
    lengths = [11, 6, 37]
    for rank, want in enumerate(layout(lengths)):
        monkeypatch.setattr(strategy_class, "cp_rank", rank)
        strategy = strategy_class(CP)
        metadata = strategy.build_metadata(sum(lengths), None, lengths)
        padding.pad_logical_token_to_physical(metadata)
        numbers = torch.arange(1, sum(lengths) + 1)
        got = strategy.shard_hidden_states(numbers, SimpleNamespace(attn_cp_metadata=metadata)) - 1
        assert got.tolist() == want.tolist()
