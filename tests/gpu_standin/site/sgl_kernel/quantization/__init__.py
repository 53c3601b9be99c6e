"""GGUF kernels: imported by the host's GGUF quantization, not used by an FP8 DeepSeek-V3.2."""

from __future__ import annotations

from .._calls import missing, stubs

IMPORT_ONLY = ("ggml_dequantize", "ggml_moe_a8", "ggml_moe_a8_vec", "ggml_mul_mat_a8", "ggml_mul_mat_vec_a8")
globals().update(stubs(__name__, IMPORT_ONLY))


def __getattr__(name):
    raise missing(__name__, name)
