"""A DSABackend on a real pool, fed the way sglang's runners feed it, eagerly or through CUDA-graph buffers.

``Scene`` holds requests whose first ``prefix[r]`` positions are already in both
caches (random latent rows and indexer keys), each request on its own shuffled
64-token pages (page 0, slot 0, stays the runners' padding slot). ``batch``
builds the eager forward batch of a decode / target-verify / draft-extend step
(``rows`` new tokens per request at positions ``prefix, prefix + 1, ...``).
``StaticInputs`` are a runner's static buffers: ``load`` copies a batch in and
pads it to a captured size the way ``cuda_graph_buffer_registry`` does
(positions, out_cache_loc and req_pool_indices 0; seq_lens the fill value).
``graph_step`` is what a runner does around one captured forward:
out_graph metadata on a view, then the in-graph metadata and the layer's calls
on the static batch.
"""

from __future__ import annotations

from dataclasses import dataclass
from types import SimpleNamespace

import torch
from sglang.srt.model_executor.forward_batch_info import ForwardMode

import dsv32_plugin.attention.dispatch as dispatch
from dsv32_plugin.attention.backend import DSABackend
from dsv32_plugin.attention.pool import DSAIndexedKVPool
from dsv32_plugin.kernels.layout import fp8_row_bytes
from fake_runner import fake_model_runner

PAGE = 64
MODES = {"decode": ForwardMode.DECODE, "verify": ForwardMode.TARGET_VERIFY, "draft_extend": ForwardMode.DRAFT_EXTEND_V2}


@dataclass(frozen=True)
class Dims:
    heads: int = 2
    kv_lora_rank: int = 128
    rope: int = 32
    index_dim: int = 64
    index_heads: int = 8
    topk: int = 16
    context: int = 256  # req_to_token width (the graphs' page table covers it)
    scale: float = 0.2


class Scene:
    def __init__(self, dims: Dims, prefix: list[int], kv_dtype: torch.dtype, device="cpu", seed: int = 0):
        self.dims, self.prefix, self.kv_dtype, self.device = dims, prefix, kv_dtype, torch.device(device)
        pages_per_req = dims.context // PAGE
        num_pages = 1 + pages_per_req * len(prefix)
        fp8 = kv_dtype == torch.float8_e4m3fn
        width = fp8_row_bytes(dims.kv_lora_rank, dims.rope) if fp8 else dims.kv_lora_rank + dims.rope
        self.pool = DSAIndexedKVPool(num_pages * PAGE - PAGE, PAGE, dims.kv_lora_rank, kv_dtype, dims.rope, 1,
                                     str(self.device), dims.index_dim, False, width)
        self.gen = torch.Generator(device=self.device).manual_seed(seed)
        order = 1 + torch.randperm(num_pages - 1, generator=torch.Generator().manual_seed(seed))
        self.req_to_token = torch.zeros(len(prefix) + 1, dims.context, dtype=torch.int32, device=self.device)
        for r in range(len(prefix)):
            pages = order[r * pages_per_req : (r + 1) * pages_per_req].to(self.device)
            slots = pages[:, None] * PAGE + torch.arange(PAGE, device=self.device)
            self.req_to_token[r + 1] = slots.reshape(-1).to(torch.int32)
        for r, n in enumerate(prefix):
            self.write_cache(r, torch.arange(n, device=self.device))

    def randn(self, *shape, dtype=torch.float32, positive=False):
        x = torch.randn(*shape, generator=self.gen, device=self.device)
        return (x.abs() if positive else x).to(dtype)

    def slots(self, req: int, positions: torch.Tensor) -> torch.Tensor:
        return self.req_to_token[req + 1, positions].long()

    def write_cache(self, req: int, positions: torch.Tensor) -> None:
        """Random latent rows and (positive: no exact score ties) indexer keys at those positions."""
        d, slots = self.dims, self.slots(req, positions)
        self.pool.store_mla_kv(0, slots, self.randn(len(slots), d.kv_lora_rank), self.randn(len(slots), d.rope))
        self.pool.store_index_k(0, slots, self.randn(len(slots), d.index_dim, positive=True))

    def runner(self, monkeypatch, kernels: str | None = None, dtype=torch.float32):
        """The model-runner fields a DSA backend reads; ``kernels`` is the --dsa-*-backend value."""
        monkeypatch.setattr(dispatch, "configured_backends", lambda: (kernels, kernels))
        return fake_model_runner(self.pool, self.req_to_token, topk=self.dims.topk,
                                 kv_lora_rank=self.dims.kv_lora_rank, rope=self.dims.rope, dtype=dtype)

    def backend(self, monkeypatch, kernels: str | None = None, dtype=torch.float32) -> DSABackend:
        return DSABackend(self.runner(monkeypatch, kernels, dtype))

    def batch(self, mode: str, reqs: list[int], rows: int, step: int = 0):
        """Eager forward batch: ``rows`` new tokens of each request in ``reqs`` (+ ``step`` draft steps)."""
        positions = torch.cat([self.prefix[r] + step + torch.arange(rows, device=self.device) for r in reqs])
        out_cache_loc = torch.cat([self.slots(r, self.prefix[r] + step + torch.arange(rows, device=self.device))
                                   for r in reqs])
        committed = torch.tensor([self.prefix[r] + step for r in reqs], device=self.device)
        seq_lens = committed + {"decode": 1, "verify": 0, "draft_extend": rows}[mode]  # the host's values
        return SimpleNamespace(
            forward_mode=MODES[mode], batch_size=len(reqs), positions=positions, out_cache_loc=out_cache_loc,
            req_pool_indices=torch.tensor([r + 1 for r in reqs], device=self.device), seq_lens=seq_lens,
            extend_seq_lens=torch.full((len(reqs),), rows, device=self.device) if mode == "draft_extend" else None,
        )

    def layer_inputs(self, tokens: int, dtype: torch.dtype) -> dict:
        d = self.dims
        return {
            "q": self.randn(tokens, d.heads * d.kv_lora_rank, dtype=dtype),
            "q_rope": self.randn(tokens, d.heads, d.rope, dtype=dtype),
            "c_kv": self.randn(tokens, 1, d.kv_lora_rank, dtype=dtype),
            "k_rope": self.randn(tokens, 1, d.rope, dtype=dtype),
            "iq": self.randn(tokens, d.index_heads, d.index_dim, dtype=dtype, positive=True),
            "ik": self.randn(tokens, d.index_dim, dtype=dtype, positive=True),
            "w": self.randn(tokens, d.index_heads, positive=True),
        }


def pad_rows(x: dict, rows: int) -> dict:
    """Layer inputs grown to ``rows`` (zeros for the padded rows, as a runner's static buffers hold)."""
    return {k: torch.cat([v, v.new_zeros(rows - v.shape[0], *v.shape[1:])]) for k, v in x.items()}


def run_layer(backend, forward_batch, x: dict):
    """The model's attention call for one DSA layer: (the top-k positions it selected, output ``[T, H * Dl]``)."""
    d_layer = SimpleNamespace(layer_id=0, tp_q_head_num=x["q_rope"].shape[1], scaling=0.2)
    forward = backend.forward_decode if forward_batch.forward_mode.is_decode() else backend.forward_extend
    out = forward(x["q"], x["c_kv"], x["c_kv"], d_layer, forward_batch, q_rope=x["q_rope"], k_rope=x["k_rope"],
                  index_q=x["iq"], index_k=x["ik"], index_weights=x["w"])
    return selection(backend, forward_batch, x), out


def selection(backend, forward_batch, x: dict) -> torch.Tensor:
    """The top-k positions the attention call selected for ``x`` (the same keys stored again, selected again)."""
    return backend.select_topk(0, forward_batch, x["iq"], x["ik"], x["w"])


class StaticInputs:
    """A graph runner's static input buffers for ``max_bs`` requests x ``rows`` tokens."""

    def __init__(self, max_bs: int, rows: int, device, fill: int):
        self.rows, self.fill = rows, fill
        self.positions = torch.zeros(max_bs * rows, dtype=torch.int64, device=device)
        self.out_cache_loc = torch.zeros(max_bs * rows, dtype=torch.int64, device=device)
        self.req_pool_indices = torch.zeros(max_bs, dtype=torch.int64, device=device)
        self.seq_lens = torch.full((max_bs,), fill, dtype=torch.int64, device=device)

    def load(self, batch, bs: int):
        """Copy ``batch`` in, pad to ``bs`` requests; returns the static forward batch a graph was captured with."""
        raw, tokens = batch.batch_size, batch.positions.shape[0]
        for buf, src, pad in ((self.positions, batch.positions, 0), (self.out_cache_loc, batch.out_cache_loc, 0),
                              (self.req_pool_indices, batch.req_pool_indices, 0),
                              (self.seq_lens, batch.seq_lens, self.fill)):
            buf.fill_(pad)
            buf[: src.shape[0]].copy_(src)
        assert tokens == raw * self.rows
        n = bs * self.rows
        return SimpleNamespace(
            forward_mode=batch.forward_mode, batch_size=bs, positions=self.positions[:n], out_cache_loc=self.out_cache_loc[:n],
            req_pool_indices=self.req_pool_indices[:bs], seq_lens=self.seq_lens[:bs],
        )


def replay_view(static_batch):
    """What a runner passes to ``init_forward_metadata_out_graph`` before a replay (the draft-extend
    runner's view has no positions and full-length buffers, so the backend may use only the size)."""
    return SimpleNamespace(forward_mode=static_batch.forward_mode, batch_size=static_batch.batch_size)
