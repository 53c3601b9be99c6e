"""Float32 torch references: the spec every kernel is tested against.

One module per concept; names match the kernels in ``dsv32_plugin.kernels``.
Generic in sizes (tiny test models use small head dims), exact in semantics.
"""

import importlib

_EXPORTS = {
    # sparse MLA (sparse_mla.py)
    "sparse_mla_prefill": "sparse_mla",
    "sparse_mla_decode": "sparse_mla",
    # MLA KV cache, FP8 656-byte layout (kv_cache.py)
    "quantize_kv_fp8": "kv_cache",
    "dequantize_kv_fp8": "kv_cache",
    "store_mla_kv": "kv_cache",
    # FP8 quantisation with power-of-two scales (fp8.py)
    "quantize_fp8_blockwise": "fp8",
    # lightning indexer (indexer.py)
    "hadamard_rotate": "indexer",
    "indexer_scores": "indexer",
    "indexer_topk_prefill": "indexer",
    "indexer_topk_decode": "indexer",
    "topk_positions_to_slots": "indexer",
    # indexer K cache, FP8 pages or exact rows (index_k_cache.py)
    "store_index_k": "index_k_cache",
    "gather_index_k": "index_k_cache",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    module = importlib.import_module(f"{__name__}.{_EXPORTS[name]}")
    return getattr(module, name)
