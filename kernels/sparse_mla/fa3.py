"""sgl-kernel's FA3 ``flash_attn_with_kvcache`` as a sparse-MLA decode kernel (``fa3``).

Only imported when ``--dsa-decode-backend fa3`` is selected; ``sgl_kernel`` is
imported on the first call. The trick (the host's own DSA fa3 path does the
same): every query row becomes a one-token FA3 sequence over a "paged" cache
with 1-token pages, and its page table is its list of top-k cache slots. The
absorbed query splits into ``qv`` (512 latent dims, scored against V = the
cached latent) and ``q`` (64 rope dims, scored against the cached rope part),
so ``softmax_scale * (q . k + qv . v)`` is exactly the sparse-MLA score.

FA3 reads the first ``cache_seqlens[r]`` entries of row r's page table, so
the readable slots of each row are moved to the front first (-1 entries,
out-of-range slots and entries past ``topk_length`` never reach the kernel).
A row with nothing to read gives out = 0, lse = -inf. bf16 cache only.
"""

from __future__ import annotations

import torch


def _compact_slots(indices: torch.Tensor, num_slots: int, topk_length):
    """indices [R, topk] -> (page_table int32 [R, topk] readable slots first, 0-padded; counts int32 [R])."""
    position = torch.arange(indices.shape[-1], device=indices.device)
    valid = (indices >= 0) & (indices < num_slots)
    if topk_length is not None:
        valid &= position < topk_length.reshape(-1, 1).to(indices.device)
    order = torch.sort((~valid).to(torch.int8), dim=-1, stable=True).indices  # valid entries first, in order
    counts = valid.sum(-1, dtype=torch.int32)
    slots = torch.gather(indices, -1, order)
    page_table = torch.where(position < counts[:, None], slots, 0).to(torch.int32)
    return page_table, counts


def sparse_mla_decode(q, kv_cache, indices, sm_scale, d_v=512, topk_length=None):
    """q [B, s_q, H, D] bf16; kv_cache bf16 [num_pages, page_size, D]; indices [B, s_q, topk] global slots.

    Returns out [B, s_q, H, d_v] bf16 and lse [B, s_q, H] float32 (natural log).
    """
    from sgl_kernel.flash_attn import flash_attn_with_kvcache

    if kv_cache.dtype != torch.bfloat16 or kv_cache.shape[-1] != q.shape[-1]:
        raise ValueError(
            f"fa3 decode reads a bf16 [pages, page_size, {q.shape[-1]}] cache, got {kv_cache.dtype} "
            f"{tuple(kv_cache.shape)}; use flashmla_kv or triton for the FP8 cache"
        )
    batch, s_q, num_heads, d_qk = q.shape
    rows = batch * s_q
    slots = kv_cache.reshape(-1, 1, 1, d_qk)  # 1-token pages
    page_table, counts = _compact_slots(indices.reshape(rows, -1), slots.shape[0], topk_length)
    q_rows = q.reshape(rows, 1, num_heads, d_qk)
    out, lse, *_ = flash_attn_with_kvcache(
        q=q_rows[..., d_v:],
        k_cache=slots[..., d_v:],
        v_cache=slots[..., :d_v],
        qv=q_rows[..., :d_v],
        page_table=page_table,
        cache_seqlens=counts,
        softmax_scale=sm_scale,
        causal=False,
        return_softmax_lse=True,
    )
    empty = (counts == 0).reshape(batch, s_q, 1)
    out = out.reshape(batch, s_q, num_heads, d_v).masked_fill(empty[..., None], 0)
    lse = lse.reshape(rows, num_heads).float().reshape(batch, s_q, num_heads)
    return out, lse.masked_fill(empty, float("-inf"))
