"""Random weights for the tiny DeepSeek-V3.2 checkpoint, named as the real checkpoint names them.

Per decoder layer ``model.layers.{i}`` (shapes ``[out, in]``; H hidden, nH heads, V vocab)::

    input_layernorm.weight, post_attention_layernorm.weight                  [H]
    self_attn.q_a_proj.weight [q_lora, H]        self_attn.q_a_layernorm.weight [q_lora]
    self_attn.q_b_proj.weight [nH*(nope+rope), q_lora]
    self_attn.kv_a_proj_with_mqa.weight [kv_lora+rope, H]
    self_attn.kv_a_layernorm.weight [kv_lora]    self_attn.kv_b_proj.weight [nH*(nope+v), kv_lora]
    self_attn.o_proj.weight [H, nH*v]
    self_attn.indexer.wq_b.weight [iH*iD, q_lora]   self_attn.indexer.wk.weight [iD, H]
    self_attn.indexer.k_norm.{weight,bias} [iD]     self_attn.indexer.weights_proj.weight [iH, H]
    dense layers:  mlp.{gate,up}_proj.weight [I, H], mlp.down_proj.weight [H, I]
    MoE layers:    mlp.gate.weight [E, H] (bf16), mlp.gate.e_score_correction_bias [E] (float32),
                   mlp.experts.{e}.{gate,up}_proj.weight [mI, H], ...down_proj.weight [H, mI],
                   mlp.shared_experts.{gate,up}_proj.weight [mI*n_shared, H], ...down_proj [H, mI*n_shared]

plus ``model.embed_tokens.weight [V, H]``, ``model.norm.weight [H]``, ``lm_head.weight [V, H]``, and
the MTP layer ``model.layers.{num_hidden_layers}``: a full (MoE) decoder layer plus
``embed_tokens.weight [V, H]``, ``enorm.weight``, ``hnorm.weight`` ``[H]``, ``eh_proj.weight [H, 2H]``,
``shared_head.norm.weight [H]``, ``shared_head.head.weight [V, H]``.

Initialisation keeps activations O(1) and logits at a standard deviation near 1: embeddings
N(0, 1), every projection N(0, 0.5/sqrt(fan_in)) (lm_head 1/sqrt(H)), norms 1 + N(0, 0.05),
the correction bias N(0, 0.01). Everything is bfloat16 except the correction bias.

FP8 (``fp8=True``), as the real checkpoint: ``FP8_QUANTISED`` projections are stored as
``float8_e4m3fn`` with a float32 ``weight_scale_inv`` of shape ``[ceil(out/128), ceil(in/128)]``
(one scale per 128x128 block, rounded up to a power of two: ``scale_fmt`` ue8m0), so that
``weight ~= fp8.float() * scale_inv`` per block. Embeddings, norms, ``lm_head``, the router gate,
``indexer.weights_proj``, ``indexer.k_norm`` and the MTP ``eh_proj``/``shared_head`` stay bf16.
"""

from __future__ import annotations

import math

import torch

BLOCK = 128
FP8_MAX = 448.0  # largest finite float8_e4m3fn
# Suffixes of the weights that are stored FP8 when fp8=True.
FP8_QUANTISED = (
    "self_attn.q_a_proj.weight",
    "self_attn.q_b_proj.weight",
    "self_attn.kv_a_proj_with_mqa.weight",
    "self_attn.kv_b_proj.weight",
    "self_attn.o_proj.weight",
    "self_attn.indexer.wq_b.weight",
    "self_attn.indexer.wk.weight",
    "gate_proj.weight",
    "up_proj.weight",
    "down_proj.weight",
)


def make_weights(config: dict, *, seed: int) -> dict[str, torch.Tensor]:
    """Every tensor of the checkpoint (unquantised), keyed by its checkpoint name."""
    gen = torch.Generator().manual_seed(seed)
    h, v = config["hidden_size"], config["vocab_size"]
    out: dict[str, torch.Tensor] = {}

    def proj(name: str, n_out: int, n_in: int, gain: float = 0.5) -> None:
        out[name] = torch.randn(n_out, n_in, generator=gen) * (gain / math.sqrt(n_in))

    def norm(name: str, n: int) -> None:
        out[name] = 1.0 + 0.05 * torch.randn(n, generator=gen)

    out["model.embed_tokens.weight"] = torch.randn(v, h, generator=gen)
    n_layers = config["num_hidden_layers"]
    for i in range(n_layers + config["num_nextn_predict_layers"]):
        p = f"model.layers.{i}."
        _decoder_layer(config, p, dense=i < config["first_k_dense_replace"], proj=proj, norm=norm, gen=gen, out=out)
        if i >= n_layers:  # MTP layer extras
            out[p + "embed_tokens.weight"] = torch.randn(v, h, generator=gen)
            norm(p + "enorm.weight", h)
            norm(p + "hnorm.weight", h)
            proj(p + "eh_proj.weight", h, 2 * h)
            norm(p + "shared_head.norm.weight", h)
            proj(p + "shared_head.head.weight", v, h, gain=1.0)
    norm("model.norm.weight", h)
    proj("lm_head.weight", v, h, gain=1.0)
    return {k: t if k.endswith("e_score_correction_bias") else t.to(torch.bfloat16) for k, t in out.items()}


def _decoder_layer(config, p, *, dense, proj, norm, gen, out) -> None:
    h, n_heads = config["hidden_size"], config["num_attention_heads"]
    q_lora, kv_lora = config["q_lora_rank"], config["kv_lora_rank"]
    nope, rope, v_dim = config["qk_nope_head_dim"], config["qk_rope_head_dim"], config["v_head_dim"]
    i_heads, i_dim = config["index_n_heads"], config["index_head_dim"]
    norm(p + "input_layernorm.weight", h)
    norm(p + "post_attention_layernorm.weight", h)
    a = p + "self_attn."
    proj(a + "q_a_proj.weight", q_lora, h)
    norm(a + "q_a_layernorm.weight", q_lora)
    proj(a + "q_b_proj.weight", n_heads * (nope + rope), q_lora)
    proj(a + "kv_a_proj_with_mqa.weight", kv_lora + rope, h)
    norm(a + "kv_a_layernorm.weight", kv_lora)
    proj(a + "kv_b_proj.weight", n_heads * (nope + v_dim), kv_lora)
    proj(a + "o_proj.weight", h, n_heads * v_dim)
    proj(a + "indexer.wq_b.weight", i_heads * i_dim, q_lora)
    proj(a + "indexer.wk.weight", i_dim, h)
    norm(a + "indexer.k_norm.weight", i_dim)
    out[a + "indexer.k_norm.bias"] = 0.05 * torch.randn(i_dim, generator=gen)
    proj(a + "indexer.weights_proj.weight", i_heads, h)
    m = p + "mlp."
    if dense:
        _mlp(m, config["intermediate_size"], h, proj)
        return
    n_experts, inter = config["n_routed_experts"], config["moe_intermediate_size"]
    proj(m + "gate.weight", n_experts, h, gain=1.0)
    out[m + "gate.e_score_correction_bias"] = 0.01 * torch.randn(n_experts, generator=gen)
    for e in range(n_experts):
        _mlp(f"{m}experts.{e}.", inter, h, proj)
    _mlp(m + "shared_experts.", inter * config["n_shared_experts"], h, proj)


def _mlp(prefix: str, inter: int, h: int, proj) -> None:
    proj(prefix + "gate_proj.weight", inter, h)
    proj(prefix + "up_proj.weight", inter, h)
    proj(prefix + "down_proj.weight", h, inter)


def quantise_fp8_blockwise(weight: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``[N, K]`` weight -> (``[N, K]`` float8_e4m3fn, ``[ceil(N/128), ceil(K/128)]`` float32 scale_inv).

    Scales are powers of two (ue8m0), chosen so that each block's max magnitude fits in FP8.
    """
    w = weight.float()
    n, k = w.shape
    nb, kb = math.ceil(n / BLOCK), math.ceil(k / BLOCK)
    padded = torch.zeros(nb * BLOCK, kb * BLOCK, device=w.device)
    padded[:n, :k] = w
    blocks = padded.view(nb, BLOCK, kb, BLOCK)
    amax = blocks.abs().amax(dim=(1, 3)).clamp(min=1e-12)
    scale = torch.exp2(torch.ceil(torch.log2(amax / FP8_MAX)))
    q = (blocks / scale[:, None, :, None]).clamp(-FP8_MAX, FP8_MAX)
    q = q.view(nb * BLOCK, kb * BLOCK)[:n, :k].to(torch.float8_e4m3fn)
    return q.contiguous(), scale.float()


def dequantise_fp8_blockwise(q: torch.Tensor, scale_inv: torch.Tensor) -> torch.Tensor:
    """Inverse of ``quantise_fp8_blockwise`` (float32 ``[N, K]``)."""
    n, k = q.shape
    full = scale_inv.repeat_interleave(BLOCK, 0).repeat_interleave(BLOCK, 1)[:n, :k]
    return q.float() * full


def quantise_checkpoint(weights: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Replace every ``FP8_QUANTISED`` weight by its FP8 tensor + ``weight_scale_inv``."""
    out: dict[str, torch.Tensor] = {}
    for name, tensor in weights.items():
        if name.endswith(FP8_QUANTISED):
            q, scale_inv = quantise_fp8_blockwise(tensor)
            out[name] = q
            out[name.removesuffix("weight") + "weight_scale_inv"] = scale_inv
        else:
            out[name] = tensor
    return out
