"""Top-k overlap of the production FP8 indexer against exact float32 scoring, on real activations.

The indexer inputs of every layer (q, k, head weights; after RoPE) are taken
from transformers' ``deepseek_v32`` running the plugin's tiny checkpoint on a
160-token prompt (index_topk 16). Both modes then go through the functions the
DSA backend calls: exact = float32 q and k rotated by ``hadamard_rotate`` (the
``DSAIndexedKVPool`` exact rows); FP8 = q and k rounded to bf16 (the model's
dtype), then rotated and ue8m0-quantised by ``quantize_index_q`` (per head, the q
scale folded into the weights) and ``store_index_k`` (into the 64-token-page FP8
cache, read back).
Overlap = |top-k(FP8) ∩ top-k(exact)| / topk over rows that see more than
topk keys. Measured: mean 0.968 / 0.969 / 0.974 per layer, worst rows 0.875 / 0.875 / 0.875
(printed with -s).
"""

from __future__ import annotations

import torch

from dsv32_plugin.kernels.reference import (
    gather_index_k,
    hadamard_rotate,
    indexer_topk_prefill,
    quantize_index_q,
    store_index_k,
)

PROMPT = 160
MIN_MEAN_OVERLAP = 0.9


def indexer_inputs(checkpoint):
    """[(q [T, Hi, D], k [T, D], weights [T, Hi])] per layer, float32, post-RoPE, pre-Hadamard."""
    from transformers import AutoModelForCausalLM
    from transformers.models.deepseek_v32 import modeling_deepseek_v32 as hf_mod

    model = AutoModelForCausalLM.from_pretrained(checkpoint, dtype=torch.float32)
    captured = []

    def grab(module, args, kwargs):
        hidden, q_latent, (cos, sin) = args[0], args[1], args[2]
        q = module.wq_b(q_latent)[0].view(PROMPT, module.n_heads, module.head_dim)
        k = module.k_norm(module.wk(hidden))[0]
        r = module.qk_rope_head_dim
        q_rot, k_rot = hf_mod.apply_rotary_pos_emb(q[None, ..., :r], k[None, :, None, :r], cos, sin, unsqueeze_dim=2)
        q = torch.cat([q_rot[0], q[..., r:]], -1)
        k = torch.cat([k_rot[0, :, 0], k[:, r:]], -1)
        weights = module.weights_proj(hidden)[0].float() * module.n_heads**-0.5 * module.head_dim**-0.5
        captured.append((q, k, weights))

    for layer in model.model.layers:
        layer.self_attn.indexer.register_forward_pre_hook(grab, with_kwargs=True)
    ids = torch.randint(5, 600, (1, PROMPT), generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        model(ids)
    return captured, model.config.index_topk


def test_fp8_indexer_topk_overlaps_exact_scoring(tiny_v32_checkpoint):
    layers, topk = indexer_inputs(tiny_v32_checkpoint)
    start = torch.zeros(PROMPT, dtype=torch.long)
    end = torch.arange(1, PROMPT + 1)
    rows = end > topk
    means = []
    for q, k, weights in layers:
        exact = indexer_topk_prefill(hadamard_rotate(q), hadamard_rotate(k), torch.ones(PROMPT), weights, start, end,
                                     topk=topk)
        q_fp8, q_weights = quantize_index_q(q.to(torch.bfloat16), weights)
        cache = torch.zeros(PROMPT // 64 + 1, 64 * (k.shape[1] + 4), dtype=torch.uint8)
        slots = torch.arange(PROMPT)
        store_index_k(cache, slots, k.to(torch.bfloat16))
        k_fp8, k_scale = gather_index_k(cache, slots)
        fp8 = indexer_topk_prefill(q_fp8, k_fp8, k_scale, q_weights, start, end, topk=topk)
        overlap = torch.tensor([len(set(a.tolist()) & set(b.tolist())) / topk
                                for a, b in zip(exact[rows], fp8[rows])])
        means.append(overlap.mean().item())
        print(f"layer overlap mean {overlap.mean():.3f} min {overlap.min():.3f}")
        assert (fp8[rows] >= 0).all() and (fp8[~rows][:, :1] >= 0).all()
    assert min(means) >= MIN_MEAN_OVERLAP, means
