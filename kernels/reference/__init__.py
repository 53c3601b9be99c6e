"""Float32 torch references: the spec every kernel is tested against.

Each op folder keeps its own (``sparse_mla/reference.py``, ``indexer/reference.py``,
``cache/kv_reference.py``, ``cache/index_k_reference.py``,
``cache/paged_metadata_reference.py``); this module names them in one
place, with the same names as the kernels in ``dsv32_plugin.kernels``. Generic in sizes
(tiny test models use small head dims), exact in semantics. The torch FP8 quantiser and
Hadamard rotation (``kernels/fp8.py``, ``kernels/hadamard.py``) are their own references (the
exact float32 indexer runs the rotation); the Triton kernels fuse them (``hadamard_fp8.py``).
"""

import importlib

_EXPORTS = {
    "sparse_mla_prefill": "sparse_mla.reference",
    "sparse_mla_decode": "sparse_mla.reference",
    "quantize_kv_fp8": "cache.kv_reference",
    "dequantize_kv_fp8": "cache.kv_reference",
    "store_mla_kv": "cache.kv_reference",
    "store_index_k": "cache.index_k_reference",
    "gather_index_k": "cache.index_k_reference",
    "fill_paged_metadata": "cache.paged_metadata_reference",
    "indexer_scores": "indexer.reference",
    "indexer_topk_prefill": "indexer.reference",
    "indexer_topk_decode": "indexer.reference",
    "topk_positions_to_slots": "indexer.reference",
    "quantize_index_q": "indexer.reference",
    "quantize_fp8_blockwise": "fp8",
    "hadamard_rotate": "hadamard",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    module = importlib.import_module(f"dsv32_plugin.kernels.{_EXPORTS[name]}")
    return getattr(module, name)
