"""Per-step DSA backends for EAGLE's multi-step draft decode (``--speculative-num-steps`` > 1).

The draft worker builds the metadata once per round (eagerly, or before a
CUDA-graph replay), then runs step i with ``attn_backends[i]`` after advancing
the batch's positions by i in place. Every step's draft slot is already in
``req_to_token``, so step i's metadata is the round's with positions + i: the
steps share one page table (it covers the last step) and differ only in
``req_kv_len``.
"""

from __future__ import annotations

from dsv32_plugin.attention.backend import DSABackend
from dsv32_plugin.attention.metadata import PagedMetadata, build_paged_metadata, paged_kv_len, uniform_rows


class DSAMultiStepDraftBackend:
    needs_cpu_seq_lens = False

    def __init__(self, model_runner, speculative_num_steps: int):
        self.attn_backends = [DSABackend(model_runner) for _ in range(speculative_num_steps - 1)]
        self.req_to_token = model_runner.req_to_token_pool.req_to_token

    def init_forward_metadata(self, forward_batch):
        rows = uniform_rows(forward_batch)
        if forward_batch.forward_mode.is_idle() or rows is None:
            for backend in self.attn_backends:
                backend.forward_metadata = None
            return
        fill = self.attn_backends[0].kernels.fill_paged_metadata
        last = build_paged_metadata(forward_batch, self.req_to_token, rows, fill, step=len(self.attn_backends) - 1)
        for step, backend in enumerate(self.attn_backends):
            kv_len = paged_kv_len(forward_batch, self.req_to_token, rows, fill, step)
            backend.forward_metadata = PagedMetadata(rows, last.page_table, kv_len)

    def init_cuda_graph_state(self, max_bs: int, max_num_tokens: int):
        shared = None
        for backend in self.attn_backends:
            backend.init_cuda_graph_state(max_bs, max_num_tokens, share_pages_with=shared)
            shared = shared or backend.graph

    def init_forward_metadata_out_graph(self, forward_batch, in_capture: bool = False):
        for backend in self.attn_backends:
            backend.init_forward_metadata_out_graph(forward_batch, in_capture)

    def init_forward_metadata_in_graph(self, forward_batch):
        for step, backend in enumerate(self.attn_backends):
            backend.forward_metadata = backend.graph.refresh(
                forward_batch, self.req_to_token, step=step, pages=step == 0
            )

    def get_cuda_graph_seq_len_fill_value(self):
        return 1  # as DSABackend's

    def get_cpu_graph_seq_len_fill_value(self):
        return 1
