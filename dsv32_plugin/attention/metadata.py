"""Per-batch metadata of the DSA backend, built once per forward and shared by all layers.

Every query row (one new token) belongs to a request and sees the
request-local positions ``[0, position + 1)``. Two layouts carry that:

* ``PagedMetadata``: every request has the same number of query rows ``w`` at
  consecutive positions, the last one at ``req_kv_len - 1`` (decode: w = 1;
  EAGLE target verify and draft extend: w = draft tokens; multi-step draft
  decode: w = 1 at position + step). Row ``b * w + i`` sees
  ``[0, req_kv_len[b] - w + i + 1)``. The kernels read the paged caches through
  the 64-token page ids ``page_table [B, P]``. Shapes depend on B, w and P only,
  so the same object serves eager batches (P covers the longest request) and
  CUDA graphs (P covers the context length, ``GraphBuffers``).
* ``RaggedMetadata`` (extend, chunked prefill: any rows per request): all
  requests' positions ``[0, req_kv_len[b])`` are concatenated into a ragged
  buffer, request b at offset ``cu_kv[b]``; ``ragged_slots [S]`` holds their
  cache slots and row t attends buffer rows ``[k_start[t], k_end[t])``. Sizes
  depend on the data: eager only. Under context-parallel prefill the buffer
  holds all requests' keys as without CP, and the per-row fields hold only this
  rank's query rows (``cp``: the ``CPShard`` of ``context_parallel.py``).

A 64-token page of a request is one page of the cache (sglang's page-size-64
allocator), so position p of request b lives in slot
``page_table[b, p // 64] * 64 + p % 64``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable

import torch

from dsv32_plugin.kernels.layout import INDEX_K_PAGE_SIZE

if TYPE_CHECKING:
    from dsv32_plugin.attention.context_parallel import CPShard


@dataclass
class PagedMetadata:
    rows_per_req: int  # w: query rows per request
    page_table: torch.Tensor  # [B, P] int32 64-token page ids
    req_kv_len: torch.Tensor  # [B] int32 tokens of each request in the caches, its new rows included

    @property
    def batch_size(self) -> int:
        return self.page_table.shape[0]


@dataclass
class RaggedMetadata:
    row_kv_len: torch.Tensor  # [T] int64 keys each row sees (0 for rows past the batch's tokens)
    page_table_1: torch.Tensor  # [B, max_kv] int32 slot of each position
    ragged_slots: torch.Tensor  # [S] int64 slots of the ragged buffer
    k_start: torch.Tensor  # [T] int64
    k_end: torch.Tensor  # [T] int64
    dense: bool  # every row sees at most index_topk keys: top-k = all causal positions
    cp: CPShard | None = None  # context-parallel extend: the rows are this rank's (row_kv_len..k_end [Tl])


def uniform_rows(forward_batch) -> int | None:
    """Query rows per request when the mode gives every request the same number, else None.

    Decode (including each multi-step draft step), EAGLE target verify and draft
    extend v2 are uniform; DP-attention padding keeps them so (whole padded requests).
    """
    mode = forward_batch.forward_mode
    if not (mode.is_decode() or mode.is_target_verify() or mode.is_draft_extend_v2()):
        return None
    rows, batch = forward_batch.positions.shape[0], forward_batch.batch_size
    if batch == 0 or rows % batch:
        return None
    return rows // batch


def paged_kv_len(forward_batch, req_to_token: torch.Tensor, rows_per_req: int, fill: Callable,
                 step: int = 0) -> torch.Tensor:
    """``[B]`` int32 cached tokens per request: its last query position + 1 (+ ``step`` draft steps).

    ``fill``: the backend's ``fill_paged_metadata`` (``DSAKernels``; contract in
    ``dsv32_plugin.kernels.cache.paged_metadata_reference``).
    """
    kv_len = torch.empty(forward_batch.batch_size, dtype=torch.int32, device=forward_batch.positions.device)
    fill(kv_len, None, forward_batch.positions, forward_batch.req_pool_indices, req_to_token, rows_per_req, step)
    return kv_len


def build_paged_metadata(forward_batch, req_to_token: torch.Tensor, rows_per_req: int, fill: Callable,
                         step: int = 0) -> PagedMetadata:
    """Eager paged metadata: the page table covers the longest request (reads its length on the host).

    The longest request's length, ``max(req_kv_len)``, is read from the positions themselves, so that
    one ``fill`` writes both tensors and nothing waits on its output.
    """
    batch = forward_batch.batch_size
    longest = int(forward_batch.positions[: batch * rows_per_req].max()) + 1 + step
    device = forward_batch.positions.device
    req_kv_len = torch.empty(batch, dtype=torch.int32, device=device)
    page_table = torch.empty(batch, -(-longest // INDEX_K_PAGE_SIZE), dtype=torch.int32, device=device)
    fill(req_kv_len, page_table, forward_batch.positions, forward_batch.req_pool_indices, req_to_token,
         rows_per_req, step)
    return PagedMetadata(rows_per_req, page_table, req_kv_len)


def rows_per_request(forward_batch) -> torch.Tensor:
    """Query rows of each request ``[B]``: the extend lengths (the rest of the rows are DP padding)."""
    return forward_batch.extend_seq_lens.long()


def build_ragged_metadata(forward_batch, req_to_token: torch.Tensor, index_topk: int) -> RaggedMetadata:
    """Eager ragged metadata. Rows past the requests' extend lengths (DP-attention padding) see nothing."""
    positions = forward_batch.positions.long()
    device = positions.device
    batch = forward_batch.batch_size
    counts = rows_per_request(forward_batch)
    row_req = torch.repeat_interleave(torch.arange(batch, device=device), counts)
    padding = positions.shape[0] - row_req.shape[0]
    row_req = torch.cat([row_req, row_req.new_zeros(padding)])
    row_kv_len = positions + 1
    if padding:
        row_kv_len[-padding:] = 0
    req_kv_len = torch.zeros(batch, dtype=torch.long, device=device).scatter_reduce(
        0, row_req, row_kv_len, reduce="amax"
    )
    max_kv = int(req_kv_len.max()) if batch else 0
    page_table_1 = req_to_token[forward_batch.req_pool_indices.long(), :max_kv]
    cu_kv = torch.zeros(batch + 1, dtype=torch.long, device=device)
    cu_kv[1:] = torch.cumsum(req_kv_len, 0)
    cols = torch.arange(max_kv, device=device)
    ragged_slots = page_table_1.long()[cols[None, :] < req_kv_len[:, None]]
    k_start = cu_kv[row_req]
    return RaggedMetadata(
        row_kv_len=row_kv_len,
        page_table_1=page_table_1,
        ragged_slots=ragged_slots,
        k_start=k_start,
        k_end=k_start + row_kv_len,
        dense=max_kv <= index_topk,
    )


def causal_positions(row_kv_len: torch.Tensor, topk: int) -> torch.Tensor:
    """Top-k of the dense path: ``[0, row_kv_len[t])`` then -1, int32 ``[T, topk]``."""
    cols = torch.arange(topk, device=row_kv_len.device)
    return torch.where(cols[None, :] < row_kv_len[:, None], cols[None, :], -1).to(torch.int32)
