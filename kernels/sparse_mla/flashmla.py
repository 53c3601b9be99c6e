"""FlashMLA (PyPI ``sgl-flash-mla``) behind our sparse-MLA signatures.

Only imported when a ``flashmla_*`` backend is selected (see ``dispatch.py``);
``flash_mla`` itself is imported on the first call. FlashMLA's V3.2 kernels
are its "legacy" ones (``use_legacy=True``): D = 576 (512 nope + 64 rope),
d_v = 512, 64 or 128 query heads, the 656-byte FP8 cache (``kv_format="V32"``).
What this module adds to make them behave like ``dsv32_plugin.kernels``:

* heads padded with zeros to 64 (sm90, H <= 64) or 128, and sliced back;
* top-k widths padded with -1 to a multiple of 64;
* every index that is not a readable row (< 0, >= rows, at or past
  ``topk_length``) rewritten to -1 before the call: FlashMLA's decode does no
  bounds check, and its prefill may read a row past ``topk_length``;
* lse of a row with nothing to attend is +inf in FlashMLA, -inf here;
* decode lse comes back ``[B, s_q, H]`` (FlashMLA gives ``[B, H, s_q]``).
"""

from __future__ import annotations

from typing import Optional

import torch
import torch.nn.functional as F

from ..target import launch_target

D_QK = 576
D_V = 512
FP8_ROW_BYTES = 656
_TOPK_MULTIPLE = 64


def _flash_mla():
    import flash_mla

    return flash_mla


def _check_dims(q: torch.Tensor, d_v: int) -> None:
    if q.shape[-1] != D_QK or d_v != D_V:
        raise ValueError(
            f"FlashMLA runs DeepSeek-V3.2 shapes only (D = {D_QK}, d_v = {D_V}); got D = {q.shape[-1]}, "
            f"d_v = {d_v}. Use --dsa-*-backend triton or torch for other head sizes"
        )
    if q.dtype != torch.bfloat16:
        raise ValueError(f"FlashMLA takes bfloat16 queries, got {q.dtype}")


def _padded_heads(num_heads: int, device: torch.device) -> int:
    if num_heads > 128:
        raise ValueError(f"FlashMLA runs at most 128 query heads per call, got {num_heads}")
    sm90 = launch_target(device).arch // 10 == 9
    return 64 if sm90 and num_heads <= 64 else 128


def _pad_heads(q: torch.Tensor, heads: int) -> torch.Tensor:
    """Zero-pad the head axis (dim -2) of q to ``heads``."""
    return F.pad(q, (0, 0, 0, heads - q.shape[-2])) if q.shape[-2] != heads else q


def _readable_indices(indices: torch.Tensor, rows: int, topk_length: Optional[torch.Tensor]) -> torch.Tensor:
    """indices [R, topk] -> int32 [R, topk'] (topk' a multiple of 64), -1 wherever a row must not be read."""
    valid = (indices >= 0) & (indices < rows)
    if topk_length is not None:
        position = torch.arange(indices.shape[-1], device=indices.device)
        valid &= position < topk_length.reshape(-1, 1).to(indices.device)
    clean = torch.where(valid, indices, -1).to(torch.int32)
    extra = -clean.shape[-1] % _TOPK_MULTIPLE
    return F.pad(clean, (0, extra), value=-1) if extra else clean


def _empty_rows_minus_inf(lse: torch.Tensor) -> torch.Tensor:
    return lse.masked_fill(lse == float("inf"), float("-inf"))


def sparse_mla_prefill(q, kv, indices, sm_scale, d_v=D_V, topk_length=None):
    """FlashMLA ``flash_mla_sparse_fwd``: q [T, H, 576] bf16, kv [S, 576] bf16, indices [T, topk] rows of kv.

    Returns out [T, H, 512] bf16, lse [T, H] float32 (natural log, -inf for empty rows).
    """
    _check_dims(q, d_v)
    num_heads = q.shape[1]
    heads = _padded_heads(num_heads, q.device)
    out, _max_logits, lse = _flash_mla().flash_mla_sparse_fwd(
        _pad_heads(q, heads),
        kv.reshape(kv.shape[0], 1, D_QK),
        _readable_indices(indices, kv.shape[0], topk_length).unsqueeze(1),
        sm_scale,
        d_v,
        use_legacy=True,
    )
    return out[:, :num_heads], _empty_rows_minus_inf(lse[:, :num_heads].float())


def sparse_mla_decode_bf16_cache(q, kv_cache, indices, sm_scale, d_v=D_V, topk_length=None):
    """Decode over a bf16 paged cache through the sparse prefill kernel (``flashmla_sparse``).

    q [B, s_q, H, 576]; kv_cache [num_pages, page_size, 576] bf16; indices [B, s_q, topk]
    global slots. Every (request, position) row is one prefill query over all cache slots.
    """
    if kv_cache.dtype != torch.bfloat16 or kv_cache.shape[-1] != D_QK:
        raise ValueError(
            f"flashmla_sparse decode reads a bf16 [pages, page_size, {D_QK}] cache, got "
            f"{kv_cache.dtype} {tuple(kv_cache.shape)}; use flashmla_kv for the FP8 cache"
        )
    batch, s_q, num_heads, _ = q.shape
    lengths = None if topk_length is None else topk_length.reshape(-1)
    out, lse = sparse_mla_prefill(
        q.reshape(batch * s_q, num_heads, D_QK),
        kv_cache.reshape(-1, D_QK),
        indices.reshape(batch * s_q, -1),
        sm_scale,
        d_v,
        lengths,
    )
    return out.reshape(batch, s_q, num_heads, d_v), lse.reshape(batch, s_q, num_heads)


def sparse_mla_decode(q, kv_cache, indices, sm_scale, d_v=D_V, topk_length=None):
    """FlashMLA sparse decode (``flash_mla_with_kvcache``) over the 656-byte FP8 cache (``flashmla_kv``).

    q [B, s_q, H, 576] bf16; kv_cache uint8 [num_pages, page_size, 656]; indices [B, s_q, topk]
    global slots; topk_length [B, s_q] or None. Returns out [B, s_q, H, 512], lse [B, s_q, H].
    Scheduling metadata is built per call (FlashMLA fills it on first use).
    """
    _check_dims(q, d_v)
    if kv_cache.dtype != torch.uint8 or kv_cache.dim() != 3 or kv_cache.shape[-1] != FP8_ROW_BYTES:
        raise ValueError(
            f"flashmla_kv decode reads the FP8 cache uint8 [pages, page_size, {FP8_ROW_BYTES}], got "
            f"{kv_cache.dtype} {tuple(kv_cache.shape)}; use flashmla_sparse or fa3 for a bf16 cache"
        )
    flash_mla = _flash_mla()
    batch, s_q, num_heads, _ = q.shape
    rows = batch * s_q  # one FlashMLA batch row per query, so topk_length can differ per position
    heads = _padded_heads(num_heads, q.device)
    num_slots = kv_cache.shape[0] * kv_cache.shape[1]
    indices = _readable_indices(indices.reshape(rows, -1), num_slots, topk_length)
    out, lse = flash_mla.flash_mla_with_kvcache(
        q=_pad_heads(q.reshape(rows, 1, num_heads, D_QK), heads),
        k_cache=kv_cache.unsqueeze(2),
        block_table=None,
        cache_seqlens=None,
        head_dim_v=d_v,
        tile_scheduler_metadata=flash_mla.get_mla_metadata()[0],
        softmax_scale=sm_scale,
        is_fp8_kvcache=True,
        indices=indices.unsqueeze(1),
        use_legacy=True,
        kv_format="V32",
    )
    out = out[:, 0, :num_heads].reshape(batch, s_q, num_heads, d_v)
    lse = lse[:, :num_heads, 0].float().reshape(batch, s_q, num_heads)
    return out, _empty_rows_minus_inf(lse)
