"""DSA kernels (core layer: torch + triton, never sglang).

One folder per op, each with its Triton kernels, launcher and float32 reference
side by side, vendor kernels under the op they implement:

* ``sparse_mla/`` -- sparse MLA attention (``interface.py``: the contracts; ``kernel.py``:
  the Triton kernel; ``reference.py``; ``flashmla.py`` and ``fa3.py``: vendor kernels);
* ``indexer/`` -- lightning indexer scores, top-k, the q quantiser, the position -> slot map;
* ``cache/`` -- the MLA KV cache (bf16 / FP8 656-byte rows), the indexer K cache and the
  per-batch paged metadata (request lengths, page ids) that addresses them;
* top level: byte layouts (``layout.py``), FP8 quantisation (``fp8.py``), the Hadamard
  rotation (``hadamard.py``; fused with the quantisation inside the kernels: ``hadamard_fp8.py``),
  the in-kernel e4m3 codec (``e4m3.py``) and what a launch is configured for (``target.py``).

Public functions resolve lazily, so ``import dsv32_plugin.kernels`` costs no Triton
compilation. Each Triton one has a float32 twin of the same name in
``dsv32_plugin.kernels.reference``.
"""

import importlib

_EXPORTS = {
    "sparse_mla_prefill": "sparse_mla.interface",
    "sparse_mla_decode": "sparse_mla.interface",
    "quantize_kv_fp8": "cache.kv",
    "dequantize_kv_fp8": "cache.kv",
    "store_mla_kv": "cache.kv",
    "store_index_k": "cache.index_k",
    "fill_paged_metadata": "cache.paged_metadata",
    "indexer_topk_prefill": "indexer.prefill",
    "indexer_topk_decode": "indexer.decode",
    "topk_positions_to_slots": "indexer.decode",
    "quantize_index_q": "indexer.quantize_q",
    "quantize_fp8_blockwise": "fp8",
    "hadamard_rotate": "hadamard",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    module = importlib.import_module(f"{__name__}.{_EXPORTS[name]}")
    return getattr(module, name)
