"""Sparse MLA attention in absorbed MQA form (float32 reference).

Every query head attends over an explicit list of cached tokens (one KV head)::

    score[h, j] = sm_scale * q[h, :] . kv[idx[j], :]         (all D_qk dims)
    out[h, :]   = sum_j softmax_j(score[h, :]) * kv[idx[j], :d_v]
    lse[h]      = log(sum_j exp(score[h, j]))                 (natural log, float32)

Index entries that are -1, below -1, outside the KV rows/cache slots, or at
positions >= topk_length of their row are skipped and never read: the gather
takes a safe row and its value is replaced by zero before any arithmetic, so
NaN in unused memory cannot leak. A listed row counts once per listing
(duplicates count twice, as in FlashMLA). A row with no valid entry gives
out = 0 and lse = -inf.

Sizes are generic (DeepSeek-V3.2: D_qk = 576 = 512 nope + 64 rope, d_v = 512,
H = 128 per GPU, topk = 2048; test models use smaller ones).
"""

import torch

from ..layout import as_pages, fp8_dims
from ..cache.kv_reference import dequantize_kv_fp8
from .args import check_decode_args, check_prefill_args

_CHUNK_ELEMS = 1 << 25  # gathered float32 elements per chunk of query rows (128 MiB)


def _valid_mask(indices: torch.Tensor, limit: int, topk_length: torch.Tensor | None) -> torch.Tensor:
    valid = (indices >= 0) & (indices < limit)
    if topk_length is not None:
        pos = torch.arange(indices.shape[-1], device=indices.device)
        valid &= pos < topk_length.to(indices.device)[..., None]
    return valid


def _attend(q, gather_rows, indices, valid, sm_scale, d_v):
    """q [T, H, D]; indices/valid [T, topk]; gather_rows(idx [t, k]) -> float32 [t, k, D]."""
    T, H, _ = q.shape
    topk = indices.shape[1]
    out = torch.zeros(T, H, d_v, dtype=torch.float32, device=q.device)
    lse = torch.full((T, H), float("-inf"), dtype=torch.float32, device=q.device)
    step = max(1, _CHUNK_ELEMS // max(1, topk * max(q.shape[2], H)))
    for t0 in range(0, T, step):
        sl = slice(t0, t0 + step)
        ok = valid[sl]
        rows = gather_rows(torch.where(ok, indices[sl], 0).long())
        rows = torch.where(ok[..., None], rows, 0.0)  # unused rows may hold NaN: zero them
        score = torch.einsum("thd,tkd->thk", q[sl].float(), rows) * sm_scale
        score = score.masked_fill(~ok[:, None, :], float("-inf"))
        row_lse = torch.logsumexp(score, dim=-1)  # -inf when nothing is valid
        shift = torch.where(torch.isfinite(row_lse), row_lse, 0.0)
        p = torch.exp(score - shift[..., None])  # exp(-inf) = 0 for skipped entries
        out[sl] = torch.einsum("thk,tkd->thd", p, rows[..., :d_v])
        lse[sl] = row_lse
    return out.to(q.dtype), lse


def sparse_mla_prefill(
    q: torch.Tensor,
    kv: torch.Tensor,
    indices: torch.Tensor,
    sm_scale: float,
    d_v: int = 512,
    topk_length: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Sparse attention of query tokens over rows of a contiguous KV buffer.

    q [T, H, D] (bf16 on the kernel path; any float here); kv [S, D] (V = kv[:, :d_v]);
    indices [T, topk] int32 rows of kv, -1 = skip; topk_length [T] int32 or None
    (only the first topk_length[t] entries of row t count).
    Returns out [T, H, d_v] in q.dtype and lse [T, H] float32 (natural log).
    """
    check_prefill_args(q, kv, indices, topk_length)
    valid = _valid_mask(indices, kv.shape[0], topk_length)
    kv32 = kv.float()
    return _attend(q, lambda idx: kv32[idx], indices, valid, sm_scale, d_v)


def sparse_mla_decode(
    q: torch.Tensor,
    kv_cache: torch.Tensor,
    indices: torch.Tensor,
    sm_scale: float,
    d_v: int = 512,
    topk_length: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Sparse attention of decode/verify queries over a paged MLA cache.

    q [B, s_q, H, D]; kv_cache [num_pages, page_size, D] bf16/float, or uint8
    [num_pages, page_size, row_bytes] in the FP8 layout of ``cache/kv_reference.py``
    (656 bytes for D = 576); indices [B, s_q, topk] int32 global slots
    (page * page_size + offset), -1 = skip; topk_length [B, s_q] or None.
    Returns out [B, s_q, H, d_v] in q.dtype and lse [B, s_q, H] float32.
    """
    pages = as_pages(kv_cache)
    kv_fp8 = check_decode_args(q, pages, indices, topk_length, d_v)
    B, s_q, H, D = q.shape
    flat = pages.reshape(-1, pages.shape[-1])  # [num_slots, W]
    if kv_fp8:
        d_nope, d_rope = fp8_dims(pages.shape[-1], D)

        def gather_rows(idx):
            return dequantize_kv_fp8(flat[idx], d_nope, d_rope, dtype=torch.float32)
    else:

        def gather_rows(idx):
            return flat[idx].float()
    flat_idx = indices.reshape(B * s_q, -1)
    lengths = None if topk_length is None else topk_length.reshape(B * s_q)
    valid = _valid_mask(flat_idx, flat.shape[0], lengths)
    out, lse = _attend(q.reshape(B * s_q, H, D), gather_rows, flat_idx, valid, sm_scale, d_v)
    return out.reshape(B, s_q, H, d_v), lse.reshape(B, s_q, H)
