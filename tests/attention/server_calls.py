"""The DSA backend driven as a server drives it, one layer, without a server.

``run_server_calls(backend, shape)`` feeds one layer's worth of every call a serving
sglang makes to the backend, in a server's order, on hand-built forward batches:

1. ``health``: a one-token prefill (``/health_generate`` prefills ``input_ids=[0]``, so
   its context is a single row -- the call that broke the Triton prefill kernel);
2. ``prefill``: a fresh batch of two requests (ragged; rows see at most top-k keys,
   so the indexer takes every causal position);
3. ``chunk``: a later chunk of a request whose first ``shape.prefix`` tokens are cached
   (radix hit or an earlier chunk): ragged rows over more keys than top-k, so the
   indexer prefill scores and selects;
4. ``last_token``: that request's next token alone as an extend (a prompt that is a
   cached prefix plus one token);
5. ``decode``: one new row for each of the three requests (paged);
6. ``lone_decode``: the one-token request decodes alone (batch 1, one page);
7. ``verify``: EAGLE target verify, ``DRAFT`` rows for two requests (paged);
8. ``cp_encode``: a context-parallel rank encodes its new rows in the cache formats before
   the all-gather (``context_parallel.py``);
9. ``graph_refresh``: the metadata refresh a CUDA-graph replay records for the decode batch
   (``init_forward_metadata_in_graph``), and the one of a later multi-step draft step, which
   advances the lengths and keeps the first step's page table (``step=1, pages=False``).

The cached prefix is written through the pool's own stores (what the earlier forward
did); every step then is the model's attention call (``forward_extend`` /
``forward_decode`` with the indexer's inputs): the pool's rows, the backend's top-k
selection and index transform and its kernels' launch choices. Returns per step the
top-k positions the call selected and its output, so two backends (Triton, float32
reference) can be compared on the same inputs (tests/attention/test_server_calls_gpu.py),
and the Triton launches a GPU would get can be recorded from it
(tests/attention/test_compile_targets.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from types import SimpleNamespace

import torch
from sglang.srt.model_executor.forward_batch_info import ForwardMode

import dsv32_plugin.attention.dispatch as dispatch
from dsv32_plugin.attention.backend import DSABackend
from dsv32_plugin.attention.pool import DSAIndexedKVPool
from fake_runner import fake_model_runner

PAGE = 64
DRAFT = 4  # EAGLE draft tokens verified per request


@dataclass(frozen=True)
class Shape:
    """One layer's attention dims as a rank sees them (heads are the rank's share under TP)."""

    name: str
    heads: int
    kv_lora_rank: int
    rope: int
    index_heads: int
    index_dim: int
    topk: int
    prefix: int  # cached tokens before the ``chunk`` step (> topk: the indexer selects)

    @property
    def scaling(self) -> float:
        return (self.kv_lora_rank // 4 + self.rope) ** -0.5  # any fixed value: both backends get it


# DeepSeek-V3.2 at --tp 1, 2, 8 and 128 (its 128 heads over the ranks; one head a rank is the
# smallest a layout can give), and the tiny GPU test checkpoint.
REAL_TP1 = Shape("real-tp1", 128, 512, 64, 64, 128, 2048, 2200)
REAL_TP2 = Shape("real-tp2", 64, 512, 64, 64, 128, 2048, 2200)
REAL_TP8 = Shape("real-tp8", 16, 512, 64, 64, 128, 2048, 2200)
REAL_TP128 = Shape("real-tp128", 1, 512, 64, 64, 128, 2048, 2200)
TINY = Shape("tiny", 8, 128, 32, 64, 64, 16, 40)
REAL_SHAPES = (REAL_TP1, REAL_TP2, REAL_TP8, REAL_TP128)
KV_DTYPES = {"bf16": torch.bfloat16, "fp8": torch.float8_e4m3fn}

# request -> (req_to_token row, first slot); every request starts on a page boundary
_REQUESTS = {"health": (0, 0), "a": (1, 4096), "b": (2, 8192), "p": (3, 12288)}
_PREFILL_LENS = {"a": 100, "b": 61}
_CHUNK = 37


def make_backend(shape: Shape, kv_dtype: torch.dtype, device: str, kernels: str, monkeypatch,
                 triton_cache_ops: bool = False) -> DSABackend:
    """A backend on a fresh pool; ``kernels`` names both DSA backends (``triton`` / ``torch``).

    ``triton_cache_ops``: the pool writes and reads its caches with the Triton kernels even on
    the CPU, as on a GPU (recording launches: nothing runs).
    """
    monkeypatch.setattr(dispatch, "configured_backends", lambda: (kernels, kernels))
    if triton_cache_ops:
        monkeypatch.setattr(dispatch, "_device_module", lambda device: dispatch._TRITON)
    fp8 = kv_dtype == torch.float8_e4m3fn
    values = shape.kv_lora_rank + shape.rope
    width = shape.kv_lora_rank + shape.kv_lora_rank // 128 * 4 + 2 * shape.rope if fp8 else values
    pool = DSAIndexedKVPool(16384, PAGE, shape.kv_lora_rank, kv_dtype, shape.rope, 1, device, shape.index_dim,
                            False, width)
    req_to_token = torch.zeros(len(_REQUESTS), 4096, dtype=torch.int32, device=device)
    for row, first in _REQUESTS.values():
        req_to_token[row] = torch.arange(first, first + 4096, dtype=torch.int32, device=device)
    runner = fake_model_runner(pool, req_to_token, topk=shape.topk, kv_lora_rank=shape.kv_lora_rank,
                               rope=shape.rope, dtype=torch.bfloat16)
    return DSABackend(runner)


def layer_inputs(shape: Shape, rows: int, seed: int, device: str) -> dict[str, torch.Tensor]:
    """What the model hands the backend for ``rows`` new tokens (bf16 activations, fp32 weights)."""
    g = torch.Generator(device="cpu").manual_seed(seed)

    def randn(*size, scale=1.0, dtype=torch.bfloat16):
        return (torch.randn(*size, generator=g) * scale).to(device=device, dtype=dtype)

    h, dl, r = shape.heads, shape.kv_lora_rank, shape.rope
    return {
        "q": randn(rows, h * dl), "q_rope": randn(rows, h, r), "c_kv": randn(rows, 1, dl), "k_rope": randn(rows, 1, r),
        "index_q": randn(rows, shape.index_heads, shape.index_dim), "index_k": randn(rows, shape.index_dim),
        "weights": randn(rows, shape.index_heads, scale=(shape.index_heads * shape.index_dim) ** -0.5,
                         dtype=torch.float32),
    }


def _batch(mode, reqs: list[str], rows_per_req: list[int], positions: list[int], device: str):
    """A forward batch: ``positions`` are the new rows' request-local positions, request after request."""
    pos = torch.tensor(positions, device=device)
    owner = [req for req, n in zip(reqs, rows_per_req) for _ in range(n)]
    slots = torch.tensor([_REQUESTS[req][1] for req in owner], device=device) + pos
    return SimpleNamespace(
        forward_mode=mode, batch_size=len(reqs), positions=pos,
        extend_seq_lens=torch.tensor(rows_per_req, device=device), out_cache_loc=slots,
        req_pool_indices=torch.tensor([_REQUESTS[req][0] for req in reqs], device=device),
        seq_lens=torch.tensor([p + 1 for p in _last_positions(rows_per_req, positions)], device=device),
    )


def _last_positions(rows_per_req, positions):
    ends = torch.tensor(rows_per_req).cumsum(0) - 1
    return [positions[int(e)] for e in ends]


def _step(backend, shape: Shape, batch, seed: int, device: str):
    """One layer's attention call. Returns (the top-k positions it selected, out [T, H, Dl])."""
    x = layer_inputs(shape, batch.positions.shape[0], seed, device)
    backend.init_forward_metadata(batch)
    index = (x["index_q"], x["index_k"], x["weights"])  # bf16 q and k before the Hadamard, as the model passes
    layer = SimpleNamespace(layer_id=0, tp_q_head_num=shape.heads, scaling=shape.scaling)
    forward = backend.forward_decode if batch.forward_mode.is_decode() else backend.forward_extend
    out = forward(x["q"], x["c_kv"], x["c_kv"], layer, batch, q_rope=x["q_rope"], k_rope=x["k_rope"],
                  index_q=index[0], index_k=index[1], index_weights=index[2])
    chosen = backend.select_topk(0, batch, *index)  # the keys stored again, the same selection
    return chosen, out.view(-1, shape.heads, shape.kv_lora_rank)


def fill_prefix(backend, shape: Shape, device: str) -> None:
    """Request ``p``'s first ``shape.prefix`` tokens in both caches, through the pool's stores."""
    g = torch.Generator(device="cpu").manual_seed(99)
    n = shape.prefix
    c_kv, k_rope, index_k = (torch.randn(n, d, generator=g).to(device=device, dtype=torch.bfloat16)
                             for d in (shape.kv_lora_rank, shape.rope, shape.index_dim))
    first = _REQUESTS["p"][1]
    slots = torch.arange(first, first + n, device=device)
    pool = backend.token_to_kv_pool
    pool.store_index_k(0, slots, index_k)
    pool.store_mla_kv(0, slots, c_kv, k_rope)


def server_batches(shape: Shape, device: str) -> dict[str, SimpleNamespace]:
    """The five steps' forward batches, in order (see the module docstring)."""
    a, b, p = _PREFILL_LENS["a"], _PREFILL_LENS["b"], shape.prefix + _CHUNK + 1
    return {
        "health": _batch(ForwardMode.EXTEND, ["health"], [1], [0], device),
        "prefill": _batch(ForwardMode.EXTEND, ["a", "b"], [a, b], list(range(a)) + list(range(b)), device),
        "chunk": _batch(ForwardMode.EXTEND, ["p"], [_CHUNK], list(range(shape.prefix, p - 1)), device),
        "last_token": _batch(ForwardMode.EXTEND, ["p"], [1], [p - 1], device),
        "decode": _batch(ForwardMode.DECODE, ["p", "a", "health"], [1, 1, 1], [p, a, 1], device),
        "lone_decode": _batch(ForwardMode.DECODE, ["health"], [1], [2], device),
        "verify": _batch(ForwardMode.TARGET_VERIFY, ["p", "a"], [DRAFT, DRAFT],
                         list(range(p + 1, p + 1 + DRAFT)) + list(range(a + 1, a + 1 + DRAFT)), device),
    }


def run_server_calls(backend, shape: Shape, device: str) -> dict:
    """Run the steps on ``backend``; returns ``{step: (top-k positions, out)}``."""
    fill_prefix(backend, shape, device)
    results = {}
    for seed, (step, batch) in enumerate(server_batches(shape, device).items()):
        results[step] = _step(backend, shape, batch, seed, device)
    x = layer_inputs(shape, _CHUNK, seed=len(results), device=device)
    pool = backend.token_to_kv_pool
    results["cp_encode"] = (pool.encode_index_k(x["index_k"]), pool.encode_mla_rows(x["c_kv"], x["k_rope"]))
    results["graph_refresh"] = graph_refresh(backend, server_batches(shape, device)["decode"])
    return results


def graph_refresh(backend, batch):
    """Step 9: ``(req_kv_len, page_table)`` of a decode graph's refresh, then a draft step's lengths."""
    backend.init_cuda_graph_state(batch.batch_size, batch.batch_size)
    backend.init_forward_metadata_out_graph(batch)
    backend.init_forward_metadata_in_graph(batch)
    md = backend.forward_metadata
    draft_step = backend.graph.refresh(batch, backend.req_to_token, step=1, pages=False)
    return md.page_table.clone(), draft_step.req_kv_len.clone()
