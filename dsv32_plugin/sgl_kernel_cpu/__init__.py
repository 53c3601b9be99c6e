"""A CPU stand-in for ``sgl_kernel``: torch versions of the ops stock sglang 0.5.23 imports on ``SGLANG_USE_CPU_ENGINE=1``.

sglang's CPU engine does ``from sgl_kernel import <name>_cpu`` at module import
(memory pools, allocation, speculative decoding), but PyPI's ``sglang-kernel``
is CUDA-only and cannot load without a GPU. ``hooks.cpu_fallbacks`` exposes this
package as ``sgl_kernel`` in that case only. It defines exactly the names the CPU
path imports, so every other ``from sgl_kernel import X`` still raises ImportError
and the host's own fallbacks stay in charge (``torch.ops.sgl_kernel`` stays empty,
so the Intel AMX paths stay off).

* ``memory_ops``: ``assign_req_to_token_pool_cpu``, ``copy_all_layer_kv_cache_cpu`` (memory
  pools); ``speculative_ops``: the EAGLE/MTP ops (draft/extend cache locations, bonus
  tokens, accepted-slot compaction, tree build, greedy tree verify).
* ``UNSUPPORTED``: importable, and raise NotImplementedError naming themselves when called
  (multi-layer EAGLE's ``rotate_input_ids_cpu``; the Intel AMX backend's metadata op).
* ``shim/sgl_kernel.py``: the top-level ``sgl_kernel`` module that re-exports this package, in a
  directory that is not a package (what ``hooks.cpu_fallbacks`` puts on ``sys.path``).
"""

from __future__ import annotations

from dsv32_plugin.sgl_kernel_cpu.memory_ops import assign_req_to_token_pool_cpu, copy_all_layer_kv_cache_cpu
from dsv32_plugin.sgl_kernel_cpu.speculative_ops import (
    assign_draft_cache_locs_contiguous_cpu,
    assign_extend_cache_locs_cpu,
    build_tree_kernel_efficient_cpu,
    fill_accept_out_cache_loc_cpu,
    fill_bonus_tokens_cpu,
    verify_tree_greedy_cpu,
)

__all__ = [
    "assign_req_to_token_pool_cpu",
    "copy_all_layer_kv_cache_cpu",
    "assign_draft_cache_locs_contiguous_cpu",
    "assign_extend_cache_locs_cpu",
    "build_tree_kernel_efficient_cpu",
    "fill_accept_out_cache_loc_cpu",
    "fill_bonus_tokens_cpu",
    "verify_tree_greedy_cpu",
]

UNSUPPORTED = ("build_draft_decode_metadata_cpu", "rotate_input_ids_cpu")


def _unsupported(name: str):
    def op(*args, **kwargs):
        raise NotImplementedError(
            f"sgl_kernel.{name}: dsv32-plugin's CPU stand-in for sgl_kernel has no {name} "
            "(multi-layer EAGLE and the Intel AMX backend are not supported on it)"
        )

    op.__name__ = op.__qualname__ = name
    return op


for _name in UNSUPPORTED:
    globals()[_name] = _unsupported(_name)
__all__ += list(UNSUPPORTED)
