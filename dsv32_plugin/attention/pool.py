"""KV pool of the plugin's DSA backend: the host's MLA cache plus our indexer K cache.

Formats come from one ``DSACacheFormat`` (``pool.cache_format``); byte layouts
are those of ``dsv32_plugin.kernels.layout``:

* MLA part: the host's ``MLATokenToKVPool`` storage, one tensor per layer
  ``[size + page_size, 1, W]``: W = kv_lora_rank + rope values (576 for V3.2,
  bf16 or float32), or uint8 rows of FlashMLA's packed FP8 layout (656 bytes);
* indexer K cache, ours, one tensor per layer: FP8 pages uint8
  ``[num_pages, 64 * (D + 4)]`` (any D), or exact float32 rows
  ``[num_pages * 64, D]`` when the model runs in float32.

The host's ``DSATokenToKVPool`` asserts ``index_head_dim == 128`` and sizes
``D // 128 * 4`` scale bytes per token (none for D < 128), so this class skips
its constructor and owns the indexer storage; slot ids are shared with the
MLA cache (``page = slot // 64``). Every cache write and read goes through the
``CacheOps`` that ``dispatch.select_cache_ops`` picks for the pool's device.
Prefill-decode disaggregation moves both caches page by page at the same page ids
(``get_state_buf_infos`` publishes the indexer cache as the host's ``DSA`` state).
Context-parallel prefill exchanges new rows in these formats
(``encode_mla_rows`` / ``encode_index_k``, then ``store_mla_rows`` /
``store_encoded_index_k``; ``context_parallel.py``).
"""

from __future__ import annotations

import torch
from sglang.srt.mem_cache.memory_pool import DSATokenToKVPool, MLATokenToKVPool

from dsv32_plugin.attention.cache_format import DSACacheFormat
from dsv32_plugin.attention.dispatch import select_cache_ops
from dsv32_plugin.kernels.layout import INDEX_K_PAGE_SIZE
from dsv32_plugin.policy import kv_pool_problems, refuse


def _latent_rows(c_kv: torch.Tensor, k_rope: torch.Tensor) -> torch.Tensor:
    """``[N, Dl + R]`` cached MLA values ``[c_kv | k_rope]`` of ``c_kv [N, (1,) Dl]`` and ``k_rope [N, (1,) R]``."""
    return torch.cat([c_kv.reshape(c_kv.shape[0], -1), k_rope.reshape(k_rope.shape[0], -1)], dim=-1)


class DSAIndexedKVPool(DSATokenToKVPool):
    """MLA latent cache + indexer K cache; page size 64; any ``index_head_dim``.

    Built by the host's KV-cache configurator with the keyword arguments of
    ``DSATokenToKVPool`` (see ``dsv32_plugin.hooks.attention``).
    """

    def __init__(
        self,
        size: int,
        page_size: int,
        kv_lora_rank: int,
        dtype: torch.dtype,
        qk_rope_head_dim: int,
        layer_num: int,
        device: str,
        index_head_dim: int,
        enable_memory_saver: bool,
        kv_cache_dim: int,
        start_layer=None,
        end_layer=None,
        index_kpool: int = 1,
        index_kpool_compress: bool = False,
        dcp_replicated: bool = False,
        **_unused,  # kpool tails, HiSparse, top-k sharing: features this pool does not offer
    ):
        refuse(kv_pool_problems(page_size=page_size, dsa_page_size=INDEX_K_PAGE_SIZE, index_kpool=index_kpool,
                                index_kpool_compress=index_kpool_compress, dcp_replicated=dcp_replicated))
        fmt = DSACacheFormat(kv_lora_rank, qk_rope_head_dim, index_head_dim, dtype)
        if kv_cache_dim != fmt.kv_row_width:
            raise ValueError(f"the host sized {kv_cache_dim}-wide MLA cache rows; dsv32-plugin's {dtype} layout "
                             f"needs {fmt.kv_row_width}")
        MLATokenToKVPool.__init__(
            self, size, page_size, dtype, kv_lora_rank, qk_rope_head_dim, layer_num, device,
            enable_memory_saver, start_layer, end_layer, use_dsa=True,
            override_kv_cache_dim=fmt.kv_row_width if fmt.kv_row_width != fmt.kv_values else None,
        )
        self.cache_format = fmt
        self.cache_ops = select_cache_ops(torch.device(device), index_exact=fmt.index_exact)
        self.index_head_dim = index_head_dim
        self.index_kpool = 1
        self.index_page_size = page_size
        self.kpool_use_compress = False
        self.skip_topk_layers = [False] * layer_num
        num_pages = (size + page_size) // page_size + 1
        self.index_k_cache = [self._new_index_k_cache(num_pages, torch.device(device)) for _ in range(layer_num)]
        self.index_num_pages = num_pages
        self._finalize_allocation_log(size)

    # -- MLA latent cache --------------------------------------------------
    def mla_pages(self, layer_id: int) -> torch.Tensor:
        """The layer's MLA cache as pages ``[num_pages, 64, W]``; slot = page * 64 + offset."""
        cache = self.kv_buffer[layer_id - self.start_layer]
        return cache.view(-1, self.page_size, cache.shape[-1])

    def store_mla_kv(self, layer_id: int, slots: torch.Tensor, c_kv: torch.Tensor, k_rope: torch.Tensor) -> None:
        """Write ``[c_kv | k_rope]`` (``[N, Dl]``, ``[N, R]``, any float dtype) at ``slots [N]``."""
        self.cache_ops.store_mla_kv(self.mla_pages(layer_id), slots, _latent_rows(c_kv, k_rope))

    def mla_rows(self, layer_id: int, slots: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
        """Latent rows at ``slots [S]`` as ``[S, Dl + R]`` of ``dtype`` (FP8 rows dequantised)."""
        rows = self.mla_pages(layer_id).view(-1, self.cache_format.kv_row_width)[slots]
        if not self.cache_format.kv_fp8:
            return rows.to(dtype)
        fmt = self.cache_format
        return self.cache_ops.dequantize_kv_fp8(rows, fmt.kv_lora_rank, fmt.rope_dim, dtype=dtype)

    # -- indexer K cache -------------------------------------------------
    def _new_index_k_cache(self, num_pages: int, device: torch.device) -> torch.Tensor:
        """A zeroed indexer cache of ``num_pages`` 64-token pages in this pool's format."""
        if self.cache_format.index_exact:
            return torch.zeros(num_pages * INDEX_K_PAGE_SIZE, self.index_head_dim, dtype=torch.float32, device=device)
        return torch.zeros(num_pages, INDEX_K_PAGE_SIZE * (self.index_head_dim + 4), dtype=torch.uint8, device=device)

    def get_index_k_with_scale_buffer(self, layer_id: int) -> torch.Tensor:
        """The layer's raw indexer cache (FP8 pages or exact float32 rows)."""
        return self.index_k_cache[layer_id - self.start_layer]

    @property
    def index_k_with_scale_buffer(self):
        return self.index_k_cache

    def store_index_k(self, layer_id: int, slots: torch.Tensor, k: torch.Tensor, k_scale=None) -> None:
        """Write keys at ``slots [N]``: ``k [N, D]`` float after RoPE, before the Hadamard (the store
        rotates and encodes them), or cache contents with ``k_scale [N]`` (``gather_index_k``'s output)."""
        self.cache_ops.store_index_k(self.get_index_k_with_scale_buffer(layer_id), slots, k, k_scale)

    def gather_index_k(self, layer_id: int, slots: torch.Tensor):
        """Keys at ``slots [N]``: ``(k [N, D], k_scale [N] fp32)``; fp8 keys, or float32 with scale 1."""
        return self.cache_ops.gather_index_k(self.get_index_k_with_scale_buffer(layer_id), slots)

    # -- context-parallel prefill: rows encoded as stored, all-gathered, then written
    def encode_mla_rows(self, c_kv: torch.Tensor, k_rope: torch.Tensor) -> torch.Tensor:
        """``[N, W]`` cache rows of ``[c_kv | k_rope]``, byte for byte what ``store_mla_kv`` writes.

        uint8 FP8-packed rows (656 bytes for V3.2) or the cache dtype's values: the
        writer itself encodes them, into N one-slot pages.
        """
        kv = _latent_rows(c_kv, k_rope)
        width = self.cache_format.kv_row_width
        rows = torch.empty(kv.shape[0], 1, width, dtype=self.kv_buffer[0].dtype, device=kv.device)
        self.cache_ops.store_mla_kv(rows, torch.arange(kv.shape[0], device=kv.device), kv)
        return rows.view(kv.shape[0], width)

    def store_mla_rows(self, layer_id: int, slots: torch.Tensor, rows: torch.Tensor) -> None:
        """Write ``encode_mla_rows`` output ``[N, W]`` at ``slots [N]``."""
        self.mla_pages(layer_id).view(-1, self.cache_format.kv_row_width)[slots.long()] = rows

    def encode_index_k(self, k: torch.Tensor) -> torch.Tensor:
        """Keys ``k [N, D]`` (as ``store_index_k`` takes them) as the indexer cache stores them, one row per key.

        Exact cache: float32 ``[N, D]``. FP8 pages: uint8 ``[N, D + 4]``, the e4m3 key bytes then
        its fp32 scale. The store itself encodes them (rotation and quantisation: the bytes a
        one-rank server writes), into scratch pages read back by ``gather_index_k``.
        """
        n = k.shape[0]
        slots = torch.arange(n, device=k.device)
        scratch = self._new_index_k_cache(-(-n // INDEX_K_PAGE_SIZE), k.device)
        self.cache_ops.store_index_k(scratch, slots, k)
        keys, scale = self.cache_ops.gather_index_k(scratch, slots)
        if self.cache_format.index_exact:
            return keys
        return torch.cat([keys.view(torch.uint8), scale.view(torch.uint8).view(n, 4)], dim=-1)

    def store_encoded_index_k(self, layer_id: int, slots: torch.Tensor, rows: torch.Tensor) -> None:
        """Write ``encode_index_k`` output at ``slots [N]`` as it is (no second rotation)."""
        if self.cache_format.index_exact:
            keys, scale = rows, torch.ones(rows.shape[0], device=rows.device)
        else:
            dim = self.index_head_dim
            keys = rows[:, :dim].contiguous().view(torch.float8_e4m3fn)
            scale = rows[:, dim:].contiguous().view(torch.float32).reshape(-1)
        self.store_index_k(layer_id, slots, keys, scale)

    # -- host pool interface ---------------------------------------------
    def get_state_buf_infos(self):
        """PD disaggregation: per layer, the indexer cache's address, byte size and bytes per 64-token page.

        The host registers these as the ``DSA`` state of the transfer and moves them
        page by page at the MLA cache's page ids (``_dsa_pages_payload``), so an item
        is one whole page in both formats: 64·(D + 4) FP8 bytes, or 64 exact rows.
        """
        ptrs = [cache.data_ptr() for cache in self.index_k_cache]
        lens = [cache.nbytes for cache in self.index_k_cache]
        return ptrs, lens, [size // self.index_num_pages for size in lens]

    def get_kv_size_bytes(self):
        return MLATokenToKVPool.get_kv_size_bytes(self) + sum(c.nbytes for c in self.index_k_cache)

    def host_pool_decls(self):
        return MLATokenToKVPool.host_pool_decls(self)  # no HiCache mirror of the indexer cache

    def _clear_buffers(self):
        MLATokenToKVPool._clear_buffers(self)
        del self.index_k_cache

    def move_kv_cache(self, tgt_loc: torch.Tensor, src_loc: torch.Tensor):
        """Move latent KV and indexer keys of the same slots together."""
        MLATokenToKVPool.move_kv_cache(self, tgt_loc, src_loc)
        if tgt_loc.numel() == 0:
            return
        for layer_id in range(self.start_layer, self.start_layer + self.layer_num):
            k, k_scale = self.gather_index_k(layer_id, src_loc.reshape(-1))
            self.store_index_k(layer_id, tgt_loc.reshape(-1), k, k_scale)
