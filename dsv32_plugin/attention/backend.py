"""The plugin's DSA attention backend: lightning-indexer top-k, then sparse MLA.

Per layer the model calls, in order:

1. ``select_topk(layer_id, forward_batch, q, k, weights)`` -- stores the
   indexer keys of the new tokens, scores (or, on the dense path, takes every
   causal position) and returns request-local positions ``[T, topk]`` int32,
   -1 padded;
2. the attention layer (``RadixAttention``) -> ``forward_extend`` /
   ``forward_decode`` with the absorbed query ``q [T, H*Dl]`` (latent part),
   ``k = v = c_kv [T, 1, Dl]``, ``q_rope [T, H, R]``, ``k_rope [T, 1, R]`` and
   ``topk_indices`` from step 1. It stores ``[c_kv | k_rope]`` in the MLA
   cache and returns ``[T, H * Dl]``.

Extend-like modes (extend, chunked prefill, verify, draft extend) gather the
requests' whole KV into a ragged buffer and use the prefill kernels; decode
reads the paged caches directly. Kernels come only from
``dsv32_plugin.attention.dispatch.select_kernels``.
"""

from __future__ import annotations

import dataclasses
import logging

import torch
from sglang.srt.layers.attention.base_attn_backend import AttentionBackend

from dsv32_plugin.attention.metadata import DSAMetadata, build_metadata, causal_positions
from dsv32_plugin.attention.pool import DSAIndexedKVPool, cache_ops
from dsv32_plugin.kernels.reference.indexer import quantize_fp8_blockwise
from dsv32_plugin.kernels.reference.kv_cache import dequantize_kv_fp8, fp8_dims


logger = logging.getLogger("dsv32_plugin")


class DSABackend(AttentionBackend):
    """AttentionBackend for DeepSeek-V3.2 DSA layers over a ``DSAIndexedKVPool``."""

    needs_cpu_seq_lens = False

    def __init__(self, model_runner):
        from dsv32_plugin.attention.dispatch import configured_backends, select_kernels

        super().__init__()
        pool = model_runner.token_to_kv_pool
        if not isinstance(pool, DSAIndexedKVPool):
            raise TypeError(f"the DSA backend needs the plugin's DSAIndexedKVPool, got {type(pool).__name__}")
        config = model_runner.model_config.hf_config
        self.token_to_kv_pool = pool
        self.req_to_token_pool = model_runner.req_to_token_pool
        self.device = torch.device(model_runner.device)
        self.index_topk = int(config.index_topk)
        self.kv_lora_rank = int(config.kv_lora_rank)
        self.rope_dim = int(config.qk_rope_head_dim)
        self.data_type = model_runner.dtype
        self.kv_cache_dtype = model_runner.kv_cache_dtype
        prefill, decode = configured_backends()
        kv_dtype_flag = getattr(model_runner, "kv_cache_dtype_str", None) or "auto"
        kernels = select_kernels(prefill, decode, device=self.device, kv_cache_dtype=kv_dtype_flag)
        # Resolve the lazily named kernels once, off the per-layer hot path.
        self.kernels = dataclasses.replace(kernels, **{
            field: getattr(kernels, field).resolve()
            for field in ("sparse_prefill", "sparse_decode", "indexer_prefill", "indexer_decode")
            if hasattr(getattr(kernels, field), "resolve")
        })
        self.forward_metadata: DSAMetadata | None = None
        logger.info(
            "dsv32-plugin DSA backend: prefill=%s decode=%s kv_cache=%s indexer=%s",
            self.kernels.prefill_name, self.kernels.decode_name, kv_dtype_flag,
            "exact" if pool.index_k_exact else "fp8",
        )

    # -- metadata ----------------------------------------------------------
    def init_forward_metadata(self, forward_batch):
        self.forward_metadata = build_metadata(forward_batch, self.req_to_token_pool.req_to_token, self.index_topk)

    def get_cuda_graph_seq_len_fill_value(self):
        return 1

    def get_cpu_graph_seq_len_fill_value(self):
        # The host pads DP-attention batches on CPU with this seq len too.
        return 1

    def init_cuda_graph_state(self, max_bs: int, max_num_tokens: int):
        # Metadata is built with host-side shapes each batch (no static buffers yet).
        raise RuntimeError(
            "dsv32-plugin's DSA backend has no CUDA-graph support yet; start the server with "
            "--disable-cuda-graph (or --cuda-graph-backend-decode=disabled)"
        )

    # -- indexer -----------------------------------------------------------
    def select_topk(self, layer_id: int, forward_batch, q: torch.Tensor, k: torch.Tensor, weights: torch.Tensor):
        """Store keys, then pick each row's top-k request-local positions.

        q ``[T, Hi, D]`` and k ``[T, D]`` float (after RoPE and Hadamard);
        weights ``[T, Hi]`` fp32 with ``Hi^-0.5 * D^-0.5`` folded in. In FP8
        mode q and k are quantised here (ue8m0 per 128 values, the q scale
        folded into the weights); in exact mode they are scored in float32.
        """
        md = self.forward_metadata
        pool = self.token_to_kv_pool
        pool.store_index_k(layer_id, forward_batch.out_cache_loc, k)
        if md.dense:
            return causal_positions(md.row_kv_len, self.index_topk)
        if pool.index_k_exact:
            q_in, w = q.float(), weights.float()
        else:
            q_in, q_scale = quantize_fp8_blockwise(q.float(), block=q.shape[-1])
            w = weights.float() * q_scale[..., 0]
        if md.is_decode and not pool.index_k_exact:
            cache = pool.get_index_k_with_scale_buffer(layer_id)
            pos = self.kernels.indexer_decode(
                q_in[:, None], cache, w[:, None], md.req_kv_len, md.page_table, topk=self.index_topk
            )
            return pos[:, 0]
        keys, k_scale = pool.gather_index_k(layer_id, md.ragged_slots)
        absolute = self.kernels.indexer_prefill(q_in, keys, k_scale, w, md.k_start, md.k_end, topk=self.index_topk)
        return torch.where(absolute >= 0, absolute - md.k_start[:, None].to(absolute.dtype), -1).to(torch.int32)

    # -- attention ---------------------------------------------------------
    def _layer_cache(self, layer):
        """The layer's MLA cache, ``[size + page, 1, W]``; slot = page * page_size + offset."""
        pool = self.token_to_kv_pool
        return pool.kv_buffer[layer.layer_id - pool.start_layer]

    def _store_kv(self, layer, forward_batch, c_kv, k_rope):
        kv = torch.cat([c_kv.reshape(c_kv.shape[0], -1), k_rope.reshape(k_rope.shape[0], -1)], dim=-1)
        cache = self._layer_cache(layer)
        cache_ops(cache.device).store_mla_kv(cache, forward_batch.out_cache_loc, kv)

    def _ragged_kv(self, layer, dtype):
        """Rows of every request's positions, ``[S, Dl + R]`` in ``dtype`` (FP8 rows dequantised)."""
        rows = self._layer_cache(layer)[self.forward_metadata.ragged_slots, 0]
        if rows.dtype == torch.uint8:
            d_nope, d_rope = fp8_dims(rows.shape[-1], self.kv_lora_rank + self.rope_dim)
            return dequantize_kv_fp8(rows, d_nope, d_rope, dtype=dtype)
        return rows.to(dtype)

    def _query(self, q, q_rope, layer):
        heads = layer.tp_q_head_num
        return torch.cat([q.reshape(-1, heads, self.kv_lora_rank), q_rope.reshape(-1, heads, self.rope_dim)], dim=-1)

    def forward_extend(self, q, k, v, layer, forward_batch, save_kv_cache=True, q_rope=None, k_rope=None,
                       topk_indices=None, **_):
        md = self.forward_metadata
        if save_kv_cache:
            self._store_kv(layer, forward_batch, k, k_rope)
        query = self._query(q, q_rope, layer)
        rows = torch.where(topk_indices >= 0, topk_indices.long() + md.k_start[:, None], -1).to(torch.int32)
        out, _ = self.kernels.sparse_prefill(
            query, self._ragged_kv(layer, query.dtype), rows, layer.scaling, d_v=self.kv_lora_rank
        )
        return out.reshape(out.shape[0], -1)

    def forward_decode(self, q, k, v, layer, forward_batch, save_kv_cache=True, q_rope=None, k_rope=None,
                       topk_indices=None, **_):
        md = self.forward_metadata
        if save_kv_cache:
            self._store_kv(layer, forward_batch, k, k_rope)
        query = self._query(q, q_rope, layer)
        slots = cache_ops(query.device).topk_positions_to_slots(topk_indices, md.page_table_1)
        cache = self._layer_cache(layer)
        pages = cache.view(-1, self.token_to_kv_pool.page_size, cache.shape[-1])
        out, _ = self.kernels.sparse_decode(
            query[:, None], pages, slots[:, None], layer.scaling, d_v=self.kv_lora_rank
        )
        return out.reshape(out.shape[0], -1)


class _StepView:
    """A forward batch seen ``step`` draft steps later: positions advanced, everything else shared."""

    def __init__(self, forward_batch, step: int):
        self._batch = forward_batch
        self.positions = forward_batch.positions + step

    def __getattr__(self, name):
        return getattr(self._batch, name)


class DSAMultiStepDraftBackend:
    """Per-step DSA backends for EAGLE's multi-step draft decode (``--speculative-num-steps`` > 1).

    The worker builds metadata once per round, then runs step i with
    ``attn_backends[i]`` after advancing the batch's positions by i; the draft
    slots of every step are already in ``req_to_token``, so step i's metadata is
    the batch's with positions + i.
    """

    needs_cpu_seq_lens = False

    def __init__(self, model_runner, speculative_num_steps: int):
        self.attn_backends = [DSABackend(model_runner) for _ in range(speculative_num_steps - 1)]

    def init_forward_metadata(self, forward_batch):
        for step, backend in enumerate(self.attn_backends):
            backend.init_forward_metadata(_StepView(forward_batch, step))

    def init_cuda_graph_state(self, max_bs: int, max_num_tokens: int):
        self.attn_backends[0].init_cuda_graph_state(max_bs, max_num_tokens)
