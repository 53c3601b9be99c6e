"""Torch reference of the paged metadata refresh: request lengths and 64-token page ids.

A batch of B requests with ``w`` query rows each at consecutive positions (decode: w = 1; EAGLE
verify and draft extend: w = draft tokens), rows of request b at ``positions[b*w : (b+1)*w]``:

* ``req_kv_len[b] = max(positions[b*w : (b+1)*w]) + 1 + step`` (int32): the request's cached
  tokens, its new rows included (``step``: the multi-step draft decode's step, positions advanced by it);
* ``page_table[b, j] = req_to_token[req_pool_indices[b], 64 j] // 64`` (int32, floor division) for
  every column j of the table: the cache page holding the request's positions ``[64 j, 64 j + 64)``
  (sglang's page-size-64 allocator keeps a page's 64 positions in one cache page). Columns past a
  request's length hold whatever ``req_to_token`` holds there; readers never use them.

``fill_paged_metadata`` writes both in place (``page_table`` None: the lengths only, for steps that
share another step's page table). Padded requests of a CUDA-graph replay (``req_pool_indices`` 0,
positions 0) get length ``1 + step`` and row 0's pages, like any other.
"""

import torch

from ..layout import INDEX_K_PAGE_SIZE


def check_paged_metadata_args(req_kv_len, page_table, positions, req_pool_indices, req_to_token,
                              rows_per_req: int) -> None:
    """Shape contract of ``fill_paged_metadata`` (reference and kernel alike)."""
    batch = req_kv_len.shape[0]
    if req_kv_len.dim() != 1 or req_kv_len.dtype != torch.int32:
        raise ValueError(f"req_kv_len must be int32 [B], got {req_kv_len.dtype} {tuple(req_kv_len.shape)}")
    if rows_per_req < 1 or positions.dim() != 1 or positions.shape[0] < batch * rows_per_req:
        raise ValueError(f"{batch} requests x {rows_per_req} rows need that many positions, got {tuple(positions.shape)}")
    if page_table is None:
        return
    max_pages = -(-req_to_token.shape[1] // INDEX_K_PAGE_SIZE)
    if page_table.dim() != 2 or page_table.shape[0] != batch or page_table.dtype != torch.int32 \
            or page_table.shape[1] > max_pages:
        raise ValueError(f"page_table must be int32 [{batch}, P <= {max_pages}] (req_to_token's pages), "
                         f"got {page_table.dtype} {tuple(page_table.shape)}")
    if req_pool_indices.dim() != 1 or req_pool_indices.shape[0] < batch:
        raise ValueError(f"req_pool_indices must be [>= {batch}], got {tuple(req_pool_indices.shape)}")


def fill_paged_metadata(req_kv_len: torch.Tensor, page_table: torch.Tensor | None, positions: torch.Tensor,
                        req_pool_indices: torch.Tensor, req_to_token: torch.Tensor, rows_per_req: int,
                        step: int = 0) -> None:
    """Write ``req_kv_len [B]`` and, unless None, ``page_table [B, P]`` in place (module docstring)."""
    check_paged_metadata_args(req_kv_len, page_table, positions, req_pool_indices, req_to_token, rows_per_req)
    batch = req_kv_len.shape[0]
    last = positions[: batch * rows_per_req].view(batch, rows_per_req).amax(dim=1)
    req_kv_len.copy_(last + 1 + step)
    if page_table is not None:
        first_slots = req_to_token[:, ::INDEX_K_PAGE_SIZE][req_pool_indices[:batch].long(), : page_table.shape[1]]
        page_table.copy_(first_slots // INDEX_K_PAGE_SIZE)
