"""Test-only GPU stand-in for ``sgl_kernel`` (sglang-kernel 0.4.10), for stock sglang 0.5.23 on a
device whose torch cannot load the real package (the H200 image: torch 2.11, the wheel is built for
2.14.1). Not part of dsv32-plugin's runtime package; ``tests/gpu/run_device.sh`` puts
``tests/gpu_standin/site`` first on ``PYTHONPATH`` (its ``sglang_kernel-0.4.10.dist-info`` satisfies
the host's version check).

What the host takes from ``sgl_kernel`` on CUDA when it serves DeepSeek-V3.2 (our model with the
host's layers: RMSNorm, SiluAndMul, FusedMoE with the Triton runner, FP8 block linear through Triton,
the sampler, the CUDA-graph runners): everything else on that path (RoPE, per-token-group FP8 quant,
grouped top-k, EAGLE tree build/verify, activations of aligned widths) is the host's JIT or Triton
code. ``tests/gpu_standin/test_host_imports.py`` checks the import side of this list against the host.

* implemented (torch, CUDA-graph safe, each tested against a float32 reference):
  ``rmsnorm``, ``fused_add_rmsnorm``, ``gemma_rmsnorm``, ``gemma_fused_add_rmsnorm``,
  ``silu_and_mul``, ``gelu_and_mul``, ``gelu_tanh_and_mul`` (the host's fallback for widths its JIT
  kernel cannot vectorise), ``moe_align_block_size`` (always this op on CUDA), ``moe_sum_reduce``
  (MoE output sum above 32 tokens), ``moe_sum``, ``top_k_renorm_prob``, ``top_p_renorm_prob``
  (FlashInfer sampling backend only), ``fp8_scaled_mm`` (per-tensor/channel FP8 GEMM),
  ``weak_ref_tensor`` (breakable/piecewise graphs), ``scalar_type``, ``utils.is_arch_support_pdl``,
  ``flash_attn.is_fa3_supported`` (False: no FA3 here);
* import-only (raise NotImplementedError naming themselves): ``int8_scaled_mm``, ``merge_state_v2``,
  ``flash_attn.flash_attn_*``, ``kvcacheio.*`` (HiCache), ``quantization.ggml_*`` (GGUF);
* absent, so the host's own fallbacks apply: everything else (e.g. ``sgl_kernel.allreduce``: the
  host then uses NCCL instead of its custom all-reduce).

``DSV32_SGL_KERNEL_LOG=DIR`` records which of these names each process used (``_calls``).
"""

from __future__ import annotations

import importlib

from . import _calls
from .elementwise import (
    fused_add_rmsnorm,
    gelu_and_mul,
    gelu_tanh_and_mul,
    gemma_fused_add_rmsnorm,
    gemma_rmsnorm,
    rmsnorm,
    silu_and_mul,
)
from .gemm import fp8_scaled_mm
from .moe import moe_align_block_size, moe_sum, moe_sum_reduce
from .sampling import top_k_renorm_prob, top_p_renorm_prob
from .weak_ref import weak_ref_tensor

__version__ = "0.4.10"

IMPLEMENTED = (
    "rmsnorm", "fused_add_rmsnorm", "gemma_rmsnorm", "gemma_fused_add_rmsnorm",
    "silu_and_mul", "gelu_and_mul", "gelu_tanh_and_mul",
    "moe_align_block_size", "moe_sum_reduce", "moe_sum",
    "top_k_renorm_prob", "top_p_renorm_prob", "fp8_scaled_mm", "weak_ref_tensor",
)
# merge_state_v2: imported at load by the host's attention/merge_state.py (MHA chunked-prefix merges), unused by V3.2.
IMPORT_ONLY = ("int8_scaled_mm", "merge_state_v2")

for _name in IMPLEMENTED:
    globals()[_name] = _calls.recorded(_name)(globals()[_name])
globals().update(_calls.stubs(__name__, IMPORT_ONLY))
del _name


SUBMODULES = ("flash_attn", "kvcacheio", "quantization", "scalar_type", "utils")


def __getattr__(name):
    if name in SUBMODULES:  # ``from sgl_kernel import flash_attn`` asks the package first
        return importlib.import_module(f"{__name__}.{name}")
    raise _calls.missing(__name__, name)
