"""Static metadata of the DSA backend for sglang's CUDA graphs (decode, target verify, draft extend).

sglang 0.5.23's graph contract (``base_attn_backend.py``), as this backend meets it:

* ``init_cuda_graph_state(max_bs, max_num_tokens)`` -> ``GraphBuffers``: a page
  table ``[max_bs, P]`` int32 with P covering the whole context
  (``req_to_token``'s width), and ``req_kv_len [max_bs]`` int32. The runners
  size ``max_num_tokens`` as ``max_bs`` times the rows per request, so that
  quotient is the graphs' ``rows_per_req`` (1 for decode and draft decode, the
  draft-token count for target verify and draft extend).
* ``init_forward_metadata_out_graph`` (eager, before capture and before every
  replay): ``metadata(bs)``, the ``PagedMetadata`` whose tensors are the
  ``[:bs]`` views of those buffers; the same objects every time, so the
  addresses a graph captured stay valid. No host work is needed.
* ``init_forward_metadata_in_graph`` (recorded): ``refresh`` fills the views in
  place from the runner's static inputs (``positions``, ``req_pool_indices``)
  and ``req_to_token``: every read of scheduler-shared memory ends here. On CUDA
  that is one Triton launch (``kernels/cache/paged_metadata.py``).

Padded requests of a replay (``req_pool_indices`` 0, ``positions`` 0) get one
key (slot ``req_to_token[0, 0]``) and their outputs are discarded by the runner.
"""

from __future__ import annotations

from typing import Callable

import torch

from dsv32_plugin.attention.metadata import PagedMetadata
from dsv32_plugin.kernels.layout import INDEX_K_PAGE_SIZE


class GraphBuffers:
    def __init__(self, max_bs: int, max_num_tokens: int, context_len: int, device: torch.device, fill: Callable,
                 page_table: torch.Tensor | None = None):
        """``fill``: the backend's ``fill_paged_metadata`` (one launch per refresh on CUDA);
        ``page_table``: share another backend's page table (the steps of a multi-step draft)."""
        if max_bs <= 0 or max_num_tokens % max_bs:
            raise ValueError(f"CUDA-graph sizes must give every request the same rows: max_num_tokens "
                             f"{max_num_tokens} is not a multiple of max_bs {max_bs}")
        self.rows_per_req = max_num_tokens // max_bs
        num_pages = -(-context_len // INDEX_K_PAGE_SIZE)
        if page_table is None:
            page_table = torch.zeros(max_bs, num_pages, dtype=torch.int32, device=device)
        self.page_table = page_table
        self.fill = fill
        self.req_kv_len = torch.ones(max_bs, dtype=torch.int32, device=device)
        self._views: dict[int, PagedMetadata] = {}

    def metadata(self, batch_size: int) -> PagedMetadata:
        """The metadata of a ``batch_size`` graph: views of the static buffers, one object per size."""
        if batch_size not in self._views:
            if batch_size > self.req_kv_len.shape[0]:
                raise ValueError(f"batch of {batch_size} exceeds the {self.req_kv_len.shape[0]} requests "
                                 "init_cuda_graph_state sized")
            self._views[batch_size] = PagedMetadata(
                self.rows_per_req, self.page_table[:batch_size], self.req_kv_len[:batch_size]
            )
        return self._views[batch_size]

    def refresh(self, forward_batch, req_to_token: torch.Tensor, step: int = 0, pages: bool = True) -> PagedMetadata:
        """Fill the batch's metadata in place (graph-recordable: static shapes, no host reads).

        ``step``: the multi-step draft decode's step (positions advanced by it);
        ``pages=False`` leaves a shared page table to the backend that fills it.
        """
        md = self.metadata(forward_batch.batch_size)
        batch, rows = md.batch_size, forward_batch.positions.shape[0]
        if rows != batch * md.rows_per_req:
            raise ValueError(f"a CUDA graph of {batch} requests x {md.rows_per_req} rows got {rows} query rows")
        self.fill(md.req_kv_len, md.page_table if pages else None, forward_batch.positions,
                  forward_batch.req_pool_indices, req_to_token, md.rows_per_req, step)
        return md
