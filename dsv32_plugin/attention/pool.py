"""KV pool of the plugin's DSA backend: the host's MLA cache plus our indexer K cache.

The MLA part is the host's ``MLATokenToKVPool`` storage, one tensor per layer of
shape ``[size + page_size, 1, W]``:

* bf16 / float32 KV: ``W = kv_lora_rank + rope`` values (576 for V3.2);
* fp8_e4m3 KV: uint8 rows of FlashMLA's packed layout (656 bytes for V3.2).

The indexer K cache is ours, one tensor per layer, in one of two layouts:

* FP8 (production, KV dtype bf16 or fp8): uint8 ``[num_pages, 64 * (D + 4)]``,
  each 64-token page holding 64 x D fp8 keys then 64 fp32 scales (the
  DeepGEMM layout of ``kernels/reference/index_k_cache.py``, any D);
* exact (KV dtype float32, i.e. the model runs in float32): float32 rows
  ``[num_pages * 64, D]``; the indexer then scores without quantisation.

The host's ``DSATokenToKVPool`` asserts ``index_head_dim == 128`` and sizes
``D // 128 * 4`` scale bytes per token (none for D < 128), so this class skips
its constructor and owns the indexer storage; slot ids are shared with the
MLA cache (``page = slot // 64``).
"""

from __future__ import annotations

import torch
from sglang.srt.mem_cache.memory_pool import DSATokenToKVPool, MLATokenToKVPool

from dsv32_plugin.kernels.reference.index_k_cache import INDEX_K_PAGE_SIZE


def cache_ops(device: torch.device):
    """Module with the cache writers for ``device``: Triton kernels on CUDA, float32 references elsewhere."""
    if device.type == "cuda":
        import dsv32_plugin.kernels as ops
    else:
        import dsv32_plugin.kernels.reference as ops
    return ops


def indexer_exact(kv_cache_dtype: torch.dtype) -> bool:
    """Whether the indexer scores in float32 without FP8 (the model runs in float32)."""
    return kv_cache_dtype == torch.float32


def index_k_bytes_per_token(index_head_dim: int, kv_cache_dtype: torch.dtype) -> int:
    """Indexer-cache bytes per token per layer: D fp8 + one fp32 scale, or D fp32 (exact)."""
    return 4 * index_head_dim if indexer_exact(kv_cache_dtype) else index_head_dim + 4


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
        if page_size != INDEX_K_PAGE_SIZE:
            raise ValueError(f"the DSA pool needs --page-size {INDEX_K_PAGE_SIZE}, got {page_size}")
        if index_kpool != 1 or index_kpool_compress or dcp_replicated:
            raise ValueError("the plugin's DSA pool supports neither index kpool nor DCP")
        override_dim = kv_cache_dim if kv_cache_dim != kv_lora_rank + qk_rope_head_dim else None
        MLATokenToKVPool.__init__(
            self, size, page_size, dtype, kv_lora_rank, qk_rope_head_dim, layer_num, device,
            enable_memory_saver, start_layer, end_layer, use_dsa=True, override_kv_cache_dim=override_dim,
        )
        self.index_head_dim = index_head_dim
        self.index_kpool = 1
        self.index_page_size = page_size
        self.kpool_use_compress = False
        self.skip_topk_layers = [False] * layer_num
        self.index_k_exact = indexer_exact(dtype)
        num_pages = (size + page_size) // page_size + 1
        if self.index_k_exact:
            shape, store = (num_pages * page_size, index_head_dim), torch.float32
        else:
            shape, store = (num_pages, page_size * (index_head_dim + 4)), torch.uint8
        self.index_k_cache = [torch.zeros(shape, dtype=store, device=device) for _ in range(layer_num)]
        self._finalize_allocation_log(size)

    # -- indexer K cache -------------------------------------------------
    def get_index_k_with_scale_buffer(self, layer_id: int) -> torch.Tensor:
        """The layer's raw indexer cache (FP8 pages or exact float32 rows)."""
        return self.index_k_cache[layer_id - self.start_layer]

    @property
    def index_k_with_scale_buffer(self):
        return self.index_k_cache

    def store_index_k(self, layer_id: int, slots: torch.Tensor, k: torch.Tensor) -> None:
        """Write keys ``k [N, D]`` (float, post-RoPE and Hadamard) at ``slots [N]``."""
        cache = self.get_index_k_with_scale_buffer(layer_id)
        if self.index_k_exact:
            keep = (slots >= 0) & (slots < cache.shape[0])
            cache[slots[keep].long()] = k[keep].float()
        else:
            cache_ops(cache.device).store_index_k(cache, slots, k)

    def gather_index_k(self, layer_id: int, slots: torch.Tensor):
        """Keys at ``slots [N]``: ``(k [N, D], k_scale [N] fp32)``; fp8 keys, or float32 with scale 1."""
        from dsv32_plugin.kernels.reference import gather_index_k

        cache = self.get_index_k_with_scale_buffer(layer_id)
        if self.index_k_exact:
            return cache[slots.long()], torch.ones(slots.shape[0], dtype=torch.float32, device=cache.device)
        return gather_index_k(cache, slots)

    # -- host pool interface ---------------------------------------------
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
            if self.index_k_exact:
                self.store_index_k(layer_id, tgt_loc.reshape(-1), k)
            else:
                cache = self.get_index_k_with_scale_buffer(layer_id)
                cache_ops(cache.device).store_index_k(cache, tgt_loc.reshape(-1), k, k_scale)
