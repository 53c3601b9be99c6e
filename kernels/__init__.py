"""DSA kernels (core layer: torch + triton, never sglang).

Public functions resolve lazily, so ``import dsv32_plugin.kernels`` costs no
Triton compilation. Each has a float32 twin of the same name in
``dsv32_plugin.kernels.reference``.
"""

import importlib

_EXPORTS = {
    "sparse_mla_prefill": "sparse_mla",
    "sparse_mla_decode": "sparse_mla",
    "quantize_kv_fp8": "kv_cache",
    "dequantize_kv_fp8": "kv_cache",
    "store_mla_kv": "kv_cache",
    "store_index_k": "index_k_cache",
    "indexer_topk_prefill": "indexer_prefill",
    "indexer_topk_decode": "indexer_decode",
    "topk_positions_to_slots": "indexer_decode",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    module = importlib.import_module(f"{__name__}.{_EXPORTS[name]}")
    return getattr(module, name)
