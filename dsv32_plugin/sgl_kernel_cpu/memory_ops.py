"""Torch versions of sgl_kernel's memory-pool CPU ops (request -> token table, KV row copies)."""


from __future__ import annotations

import ctypes

import torch


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
