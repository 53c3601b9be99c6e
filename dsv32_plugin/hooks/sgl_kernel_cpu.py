"""Torch versions of the sgl_kernel CPU ops that stock sglang 0.5.23 imports on ``SGLANG_USE_CPU_ENGINE=1``.

sglang's CPU engine does ``from sgl_kernel import <name>_cpu`` at module import
(memory pools, allocation, speculative decoding), but PyPI's ``sglang-kernel``
is CUDA-only and cannot load without a GPU. ``hooks.cpu_fallbacks`` exposes this
module as ``sgl_kernel`` in that case only. It defines exactly the names the CPU
path imports, so every other ``from sgl_kernel import X`` still raises ImportError
and the host's own fallbacks stay in charge (``torch.ops.sgl_kernel`` stays empty,
so the Intel AMX paths stay off).

* Implemented here: ``assign_req_to_token_pool_cpu``, ``copy_all_layer_kv_cache_cpu`` (memory
  pools); in ``sgl_kernel_cpu_spec``: the EAGLE/MTP ops (draft/extend cache locations, bonus
  tokens, accepted-slot compaction, tree build, greedy tree verify).
* ``UNSUPPORTED``: importable, and raise NotImplementedError naming themselves when called
  (multi-layer EAGLE's ``rotate_input_ids_cpu``; the Intel AMX backend's metadata op).
"""

from __future__ import annotations

import ctypes

import torch

from dsv32_plugin.hooks.sgl_kernel_cpu_spec import (
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


def assign_req_to_token_pool_cpu(
    req_pool_indices: torch.Tensor,
    req_to_token: torch.Tensor,
    start_offset: torch.Tensor,
    end_offset: torch.Tensor,
    out_cache_loc: torch.Tensor,
    pool_len: int,
) -> None:
    """Write new KV slots into the request -> token table, in place.

    For request i (row ``req_pool_indices[i]`` of ``req_to_token [num_reqs, pool_len]``)
    ``req_to_token[row, start_offset[i]:end_offset[i]] = out_cache_loc[o_i : o_i + len_i]``
    where ``o_i`` is the sum of the lengths of requests 0..i-1 (``out_cache_loc`` is packed).
    """
    if req_to_token.shape[1] != pool_len:
        raise ValueError(f"pool_len {pool_len} != req_to_token width {req_to_token.shape[1]}")
    rows, starts, ends = req_pool_indices.tolist(), start_offset.tolist(), end_offset.tolist()
    for start, end in zip(starts, ends):  # validate everything before writing anything
        if not 0 <= start <= end <= pool_len:
            raise ValueError(f"slot range [{start}, {end}) outside the pool row of {pool_len}")
    needed = sum(e - s for s, e in zip(starts, ends))
    if needed > out_cache_loc.numel():
        raise ValueError(f"{needed} slots to assign but out_cache_loc holds {out_cache_loc.numel()}")
    offset = 0
    for row, start, end in zip(rows, starts, ends):
        req_to_token[row, start:end] = out_cache_loc[offset : offset + end - start].to(req_to_token.dtype)
        offset += end - start


def copy_all_layer_kv_cache_cpu(
    data_ptrs: torch.Tensor, strides: torch.Tensor, tgt_loc: torch.Tensor, src_loc: torch.Tensor
) -> None:
    """Copy KV rows ``src_loc -> tgt_loc`` in every layer buffer, in place.

    ``data_ptrs [n_buffers]`` int64 holds the base address of each (CPU) buffer and
    ``strides [n_buffers]`` its row size in bytes. All source rows are read before any
    target is written, so overlapping src/tgt sets behave like the GPU kernel's gather.
    """
    if tgt_loc.numel() != src_loc.numel():
        raise ValueError(f"{tgt_loc.numel()} targets for {src_loc.numel()} sources")
    tgt, src = tgt_loc.tolist(), src_loc.tolist()
    if min(tgt + src, default=0) < 0:
        raise ValueError("negative KV slot index")  # buffer sizes are the host's contract; sign is ours
    for base, stride in zip(data_ptrs.tolist(), strides.tolist()):
        rows = [ctypes.string_at(base + s * stride, stride) for s in src]
        for t, row in zip(tgt, rows):
            ctypes.memmove(base + t * stride, row, stride)


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
