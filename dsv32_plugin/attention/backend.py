"""The plugin's DSA attention backend: lightning-indexer top-k, then sparse MLA.

The attention call is the only way in: per layer the model calls its
``RadixAttention`` (the host passes extra keyword arguments through) with the
absorbed query ``q [T, H*Dl]`` (latent part), ``k = v = c_kv [T, 1, Dl]``,
``q_rope [T, H, R]``, ``k_rope [T, 1, R]`` and the indexer's inputs
``index_q [T, Hi, D]``, ``index_k [T, D]`` (after RoPE, before the indexer's
Hadamard rotation) and ``index_weights [T, Hi]``. ``forward_extend`` /
``forward_decode`` then, in one place: store the indexer keys (the store
rotates and encodes them) and select each row's top-k request-local
positions (``select_topk``; on the dense prefill path every causal position),
store ``[c_kv | k_rope]`` in the MLA cache, map the positions to cache rows or
slots, run sparse MLA and return ``[T, H * Dl]``. Where the host runs
attention on fewer rows than the model computed (``_attention_on_real_rows``:
an extend padded for DP attention), it narrows ``q`` and the backend narrows
the indexer inputs with it.

Batches whose requests all have the same number of rows (decode, EAGLE target
verify, draft extend) run the paged kernels over the caches (``PagedMetadata``),
eagerly or replayed from CUDA graphs (``graph_buffers.py``); extend and chunked
prefill gather the requests' KV into a ragged buffer for the prefill kernels
(``RaggedMetadata``, eager only). A context-parallel extend (``--enable-prefill-cp``)
runs this rank's rows against the whole context: the new keys of all CP ranks
are gathered into the caches first (``context_parallel.py``). Kernels come only from
``dsv32_plugin.attention.dispatch`` (the exact float32 indexer rotates q with the torch
``hadamard_rotate``, the reference of the FP8 kernels' rotation); H is the local head count
(``layer.tp_q_head_num``) and the batch the local one under DP attention.
"""

from __future__ import annotations

import logging

import torch
from sglang.srt.layers.attention.base_attn_backend import AttentionBackend

from dsv32_plugin.attention.context_parallel import cp_shard
from dsv32_plugin.attention.graph_buffers import GraphBuffers
from dsv32_plugin.attention.metadata import (
    PagedMetadata,
    RaggedMetadata,
    build_paged_metadata,
    build_ragged_metadata,
    causal_positions,
    uniform_rows,
)
from dsv32_plugin.attention.pool import DSAIndexedKVPool
from dsv32_plugin.kernels.hadamard import hadamard_rotate
from dsv32_plugin.kernels.layout import INDEX_K_PAGE_SIZE

logger = logging.getLogger("dsv32_plugin")


class DSABackend(AttentionBackend):
    """AttentionBackend for DeepSeek-V3.2 DSA layers over a ``DSAIndexedKVPool``."""

    needs_cpu_seq_lens = False

    def __init__(self, model_runner):
        from dsv32_plugin.attention.dispatch import configured_backends, mla_head_dims, select_kernels

        super().__init__()
        pool = model_runner.token_to_kv_pool
        if not isinstance(pool, DSAIndexedKVPool):
            raise TypeError(f"the DSA backend needs the plugin's DSAIndexedKVPool, got {type(pool).__name__}")
        self.token_to_kv_pool = pool
        self.cache_format = pool.cache_format
        self.req_to_token = model_runner.req_to_token_pool.req_to_token
        # EAGLE's verify-input builder sizes its tree mask by bs * max_context_len when it has no seq-len sum.
        self.max_context_len = model_runner.model_config.context_len
        self.device = torch.device(model_runner.device)
        self.index_topk = int(model_runner.model_config.hf_config.index_topk)
        self.data_type = model_runner.dtype
        self.kv_cache_dtype = model_runner.kv_cache_dtype
        prefill, decode = configured_backends()
        kv_dtype_flag = getattr(model_runner, "kv_cache_dtype_str", None) or "auto"
        self.kernels = select_kernels(
            prefill, decode, device=self.device, kv_cache_dtype=kv_dtype_flag, index_exact=self.cache_format.index_exact,
            head_dims=mla_head_dims(model_runner.model_config.hf_config),
        ).resolved()
        self.graph: GraphBuffers | None = None
        self.forward_metadata: PagedMetadata | RaggedMetadata | None = None
        logger.info(
            "dsv32-plugin DSA backend: prefill=%s decode=%s kv_cache=%s indexer=%s",
            self.kernels.prefill_name, self.kernels.decode_name, kv_dtype_flag,
            "exact" if self.cache_format.index_exact else "fp8",
        )

    # -- metadata: eager ---------------------------------------------------
    def init_forward_metadata(self, forward_batch):
        """Eager metadata: paged for uniform batches, ragged for extend; None for an empty batch.

        A context-parallel extend builds the ragged metadata of the whole batch (the
        host calls this before it shards the rows) and keeps this rank's rows of it.
        """
        if forward_batch.forward_mode.is_idle() or forward_batch.batch_size == 0:
            self.forward_metadata = None
        elif (rows := uniform_rows(forward_batch)) is not None:
            self.forward_metadata = build_paged_metadata(forward_batch, self.req_to_token, rows,
                                                         self.kernels.fill_paged_metadata)
        else:
            md = build_ragged_metadata(forward_batch, self.req_to_token, self.index_topk)
            shard = cp_shard(forward_batch)
            self.forward_metadata = md if shard is None else shard.restrict(md)

    # -- metadata: CUDA graphs (graph_buffers.py) --------------------------
    def init_cuda_graph_state(self, max_bs: int, max_num_tokens: int, share_pages_with: GraphBuffers | None = None):
        if self.cache_format.index_exact:
            raise RuntimeError(
                "dsv32-plugin: CUDA graphs need the FP8 indexer cache (a bf16 or fp8_e4m3 KV cache), but this "
                "model runs in float32 with the exact indexer; start with --disable-decode-cuda-graph"
            )
        pages = None if share_pages_with is None else share_pages_with.page_table
        self.graph = GraphBuffers(max_bs, max_num_tokens, self.req_to_token.shape[1], self.device,
                                  self.kernels.fill_paged_metadata, pages)

    def init_forward_metadata_out_graph(self, forward_batch, in_capture: bool = False):
        self.forward_metadata = self.graph.metadata(forward_batch.batch_size)

    def init_forward_metadata_in_graph(self, forward_batch):
        self.forward_metadata = self.graph.refresh(forward_batch, self.req_to_token)

    def get_cuda_graph_seq_len_fill_value(self):
        return 1  # unread: lengths come from positions; 1 keeps host-side sums positive

    def get_cpu_graph_seq_len_fill_value(self):
        return 1  # DP-attention padding on the CPU (forward_batch_info._pad_inputs_to_size)

    def update_verify_buffers_to_fill_after_draft(self, spec_info, cuda_graph_bs):
        """Nothing to redo: verify metadata reads the drafted positions inside the graph (in_graph)."""
        return None

    # -- indexer -----------------------------------------------------------
    def select_topk(self, layer_id: int, forward_batch, q: torch.Tensor, k: torch.Tensor, weights: torch.Tensor):
        """Store keys, then pick each row's top-k request-local positions.

        q ``[T, Hi, D]`` and k ``[T, D]`` float (after RoPE, before the Hadamard);
        weights ``[T, Hi]`` fp32 with ``Hi^-0.5 * D^-0.5`` folded in. The rotation
        happens here, once: with the FP8 indexer inside the kernels that quantise
        (``store_index_k`` for k, ``quantize_index_q`` for q: ue8m0 per D values,
        the q scale folded into the weights); the exact indexer rotates in torch
        and scores in float32.
        """
        md = self.forward_metadata
        if md is None:  # an idle DP-attention rank runs padding rows: nothing to select (attention skips them)
            return torch.full((q.shape[0], self.index_topk), -1, dtype=torch.int32, device=q.device)
        pool = self.token_to_kv_pool
        if isinstance(md, RaggedMetadata) and md.cp is not None:
            md.cp.store_index_k(pool, layer_id, forward_batch.out_cache_loc, k)
        else:
            pool.store_index_k(layer_id, forward_batch.out_cache_loc, k)
        if isinstance(md, RaggedMetadata) and md.dense:
            return causal_positions(md.row_kv_len, self.index_topk)
        if self.cache_format.index_exact:
            q_in, w = hadamard_rotate(q.float()), weights.float()
        else:
            q_in, w = self.kernels.quantize_index_q(q, weights)
        if isinstance(md, PagedMetadata):
            batch, rows = md.batch_size, md.rows_per_req
            positions = self.kernels.indexer_decode(
                q_in.view(batch, rows, *q_in.shape[1:]), pool.get_index_k_with_scale_buffer(layer_id),
                w.view(batch, rows, -1), md.req_kv_len, md.page_table, topk=self.index_topk,
            )
            return positions.view(batch * rows, -1)
        keys, k_scale = pool.gather_index_k(layer_id, md.ragged_slots)
        absolute = self.kernels.indexer_prefill(q_in, keys, k_scale, w, md.k_start, md.k_end, topk=self.index_topk)
        return torch.where(absolute >= 0, absolute - md.k_start[:, None].to(absolute.dtype), -1).to(torch.int32)

    # -- attention ---------------------------------------------------------
    def _selected(self, layer, forward_batch, q, index_q, index_k, index_weights) -> torch.Tensor:
        """Top-k positions of the ``q.shape[0]`` query rows the host passed (see the module docstring)."""
        rows = q.shape[0]
        return self.select_topk(layer.layer_id, forward_batch, index_q[:rows], index_k[:rows], index_weights[:rows])

    def _query(self, q, q_rope, layer):
        """``[T, H, Dl + R]`` absorbed query, H the local heads."""
        heads, fmt = layer.tp_q_head_num, self.cache_format
        return torch.cat([q.reshape(-1, heads, fmt.kv_lora_rank), q_rope.reshape(-1, heads, fmt.rope_dim)], dim=-1)

    def _paged_attention(self, query, layer, md: PagedMetadata, topk_indices):
        """Sparse MLA of ``B x w`` query rows over the paged cache; returns ``[B * w, H * Dl]``."""
        batch, rows = md.batch_size, md.rows_per_req
        slots = self.kernels.positions_to_slots(topk_indices.view(batch, rows, -1), md.page_table, INDEX_K_PAGE_SIZE)
        out, _ = self.kernels.sparse_decode(
            query.view(batch, rows, *query.shape[1:]), self.token_to_kv_pool.mla_pages(layer.layer_id), slots,
            layer.scaling, d_v=self.cache_format.kv_lora_rank,
        )
        return out.reshape(batch * rows, -1)

    def forward_extend(self, q, k, v, layer, forward_batch, save_kv_cache=True, q_rope=None, k_rope=None,
                       index_q=None, index_k=None, index_weights=None, **_):
        topk_indices = self._selected(layer, forward_batch, q, index_q, index_k, index_weights)
        md = self.forward_metadata
        pool = self.token_to_kv_pool
        if save_kv_cache and isinstance(md, RaggedMetadata) and md.cp is not None:
            md.cp.store_mla_kv(pool, layer.layer_id, forward_batch.out_cache_loc, k, k_rope)
        elif save_kv_cache:
            pool.store_mla_kv(layer.layer_id, forward_batch.out_cache_loc, k, k_rope)
        query = self._query(q, q_rope, layer)
        if isinstance(md, PagedMetadata):  # target verify, draft extend
            return self._paged_attention(query, layer, md, topk_indices)
        rows = torch.where(topk_indices >= 0, topk_indices.long() + md.k_start[:, None], -1).to(torch.int32)
        out, _ = self.kernels.sparse_prefill(
            query, pool.mla_rows(layer.layer_id, md.ragged_slots, query.dtype), rows, layer.scaling,
            d_v=self.cache_format.kv_lora_rank,
        )
        return out.reshape(out.shape[0], -1)

    def forward_decode(self, q, k, v, layer, forward_batch, save_kv_cache=True, q_rope=None, k_rope=None,
                       index_q=None, index_k=None, index_weights=None, **_):
        topk_indices = self._selected(layer, forward_batch, q, index_q, index_k, index_weights)
        if save_kv_cache:
            self.token_to_kv_pool.store_mla_kv(layer.layer_id, forward_batch.out_cache_loc, k, k_rope)
        return self._paged_attention(self._query(q, q_rope, layer), layer, self.forward_metadata, topk_indices)
