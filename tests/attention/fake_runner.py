"""The model-runner fields a ``DSABackend`` reads, for tests that drive it without a server."""

from __future__ import annotations

from types import SimpleNamespace

import torch


def fake_model_runner(pool, req_to_token: torch.Tensor, *, topk: int, kv_lora_rank: int, rope: int,
                      dtype: torch.dtype = torch.float32) -> SimpleNamespace:
    """``pool``: a ``DSAIndexedKVPool``; ``req_to_token`` [requests, context_len] int32 slots (its
    width is the context length the backend sizes its buffers by)."""
    kv_dtype = pool.dtype
    return SimpleNamespace(
        token_to_kv_pool=pool, req_to_token_pool=SimpleNamespace(req_to_token=req_to_token),
        device=str(req_to_token.device), dtype=dtype, kv_cache_dtype=kv_dtype,
        kv_cache_dtype_str="fp8_e4m3" if kv_dtype == torch.float8_e4m3fn else "auto",
        model_config=SimpleNamespace(
            hf_config=SimpleNamespace(index_topk=topk, kv_lora_rank=kv_lora_rank, qk_rope_head_dim=rope),
            context_len=req_to_token.shape[1],
        ),
    )
