"""What the DSA caches hold, decided once from the KV-cache dtype and the model's dimensions.

Byte layouts are those of ``dsv32_plugin.kernels.layout``. The pool allocates
from this object, the backend reads rows through it, and memory sizing counts
its bytes; nothing else re-derives the format from tensor widths.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from dsv32_plugin.kernels.layout import fp8_row_bytes

# Values of ``DSACacheFormat.kv_format``, the keys of the decode kernels in ``dispatch``.
FP8 = "fp8"  # packed rows: d_nope fp8 + d_nope / 128 fp32 tile scales + d_rope bf16 (656 bytes for V3.2)
UNQUANTIZED = "unquantized"  # d_nope + d_rope values in the cache dtype (bf16; float32 on CPU)


@dataclass(frozen=True)
class DSACacheFormat:
    """MLA latent cache and indexer K cache formats of one model.

    ``kv_lora_rank`` (d_nope, 512 for V3.2) + ``rope_dim`` (64) values per cached
    MLA token; ``index_head_dim`` (128) per indexer key. ``dtype`` is the cache
    dtype the host resolved from ``--kv-cache-dtype`` (float8_e4m3fn, bf16, or
    float32 when the model runs in float32).
    """

    kv_lora_rank: int
    rope_dim: int
    index_head_dim: int
    dtype: torch.dtype

    @property
    def kv_fp8(self) -> bool:
        """MLA rows in the packed FP8 layout (``--kv-cache-dtype fp8_e4m3``)."""
        return self.dtype == torch.float8_e4m3fn

    @property
    def kv_format(self) -> str:
        return FP8 if self.kv_fp8 else UNQUANTIZED

    @property
    def kv_values(self) -> int:
        """Values of one MLA token, ``[c_kv | k_pe]`` (576 for V3.2)."""
        return self.kv_lora_rank + self.rope_dim

    @property
    def kv_row_width(self) -> int:
        """Elements of one cached MLA row: bytes of the FP8 layout, else values."""
        return fp8_row_bytes(self.kv_lora_rank, self.rope_dim) if self.kv_fp8 else self.kv_values

    @property
    def index_exact(self) -> bool:
        """Indexer keys as exact float32 rows (the model runs in float32), else FP8 pages."""
        return self.dtype == torch.float32

    @property
    def index_k_bytes_per_token(self) -> int:
        """Indexer-cache bytes per token per layer: D fp8 + one fp32 scale, or D fp32 (exact)."""
        return 4 * self.index_head_dim if self.index_exact else self.index_head_dim + 4
