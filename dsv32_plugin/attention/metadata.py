"""Per-batch metadata of the DSA backend, built once per forward and shared by all layers.

Every query row t (one new token) belongs to request ``row_req[t]`` and sees the
request-local positions ``[0, row_kv_len[t])`` (its own position included:
``row_kv_len = position + 1``). That one rule covers extend, chunked prefill
with a cached prefix, decode, target verify and draft extend.

Two views of the requests' tokens:

* per-token page table ``page_table_1 [B, max_kv]`` int32 (sglang's
  ``req_to_token`` rows): slot of position p of request b; and the 64-token
  page ids ``page_table [B, ceil(max_kv / 64)]`` for paged decode kernels;
* the ragged buffer: all requests' positions ``[0, req_kv_len[b])``
  concatenated, request b at offset ``cu_kv[b]``; ``ragged_slots [S]`` holds
  their cache slots, and query row t attends buffer rows
  ``[k_start[t], k_end[t]) = cu_kv[b] + [0, row_kv_len[t])``.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from dsv32_plugin.kernels.reference.index_k_cache import INDEX_K_PAGE_SIZE


@dataclass
class DSAMetadata:
    is_decode: bool  # one query row per request, paged kernels
    row_req: torch.Tensor  # [T] int64
    row_kv_len: torch.Tensor  # [T] int64
    req_kv_len: torch.Tensor  # [B] int64
    page_table_1: torch.Tensor  # [B, max_kv] int32 slots
    page_table: torch.Tensor  # [B, max_pages] int32 page ids
    cu_kv: torch.Tensor  # [B + 1] int64
    ragged_slots: torch.Tensor  # [S] int64
    k_start: torch.Tensor  # [T] int64
    k_end: torch.Tensor  # [T] int64
    dense: bool  # every row sees at most index_topk keys: top-k = all causal positions


def rows_per_request(forward_batch) -> torch.Tensor:
    """Query rows of each request ``[B]``: extend lengths, else an even split (decode, verify)."""
    batch = forward_batch.batch_size
    lens = getattr(forward_batch, "extend_seq_lens", None)
    if lens is not None and not forward_batch.forward_mode.is_decode():
        return lens.long()
    rows = forward_batch.positions.shape[0]
    return torch.full((batch,), rows // max(batch, 1), dtype=torch.long, device=forward_batch.positions.device)


def build_metadata(forward_batch, req_to_token: torch.Tensor, index_topk: int) -> DSAMetadata:
    positions = forward_batch.positions.long()
    device = positions.device
    batch = forward_batch.batch_size
    counts = rows_per_request(forward_batch)
    row_req = torch.repeat_interleave(torch.arange(batch, device=device), counts)
    row_kv_len = positions + 1
    req_kv_len = torch.zeros(batch, dtype=torch.long, device=device).scatter_reduce(
        0, row_req, row_kv_len, reduce="amax"
    )
    max_kv = int(req_kv_len.max()) if batch else 0
    page_table_1 = req_to_token[forward_batch.req_pool_indices.long(), :max_kv]
    page_table = page_table_1[:, ::INDEX_K_PAGE_SIZE] // INDEX_K_PAGE_SIZE
    cu_kv = torch.zeros(batch + 1, dtype=torch.long, device=device)
    cu_kv[1:] = torch.cumsum(req_kv_len, 0)
    cols = torch.arange(max_kv, device=device)
    ragged_slots = page_table_1.long()[cols[None, :] < req_kv_len[:, None]]
    k_start = cu_kv[row_req]
    return DSAMetadata(
        is_decode=forward_batch.forward_mode.is_decode(),
        row_req=row_req,
        row_kv_len=row_kv_len,
        req_kv_len=req_kv_len,
        page_table_1=page_table_1,
        page_table=page_table.to(torch.int32),
        cu_kv=cu_kv,
        ragged_slots=ragged_slots,
        k_start=k_start,
        k_end=k_start + row_kv_len,
        dense=max_kv <= index_topk,
    )


def causal_positions(row_kv_len: torch.Tensor, topk: int) -> torch.Tensor:
    """Top-k of the dense path: ``[0, row_kv_len[t])`` then -1, int32 ``[T, topk]``."""
    cols = torch.arange(topk, device=row_kv_len.device)
    return torch.where(cols[None, :] < row_kv_len[:, None], cols[None, :], -1).to(torch.int32)
