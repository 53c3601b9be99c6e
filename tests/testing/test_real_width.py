"""The real-width config-only checkpoint and the dummy-load initialisation for GPU tests."""

from __future__ import annotations

import json
import math

import pytest
import torch
from torch import nn

from dsv32_plugin.testing.dummy_init import DRAFT_OUTPUT_SCALE, initialise
from dsv32_plugin.testing.real_width import REAL_WIDTH, make_real_width_dir
from dsv32_plugin.testing.tiny_config import QUANTIZATION_CONFIG, make_config
from dsv32_plugin.testing.tiny_weights import dequantise_fp8_blockwise


def test_config_only_dir_has_the_released_model_widths(tmp_path):
    path = make_real_width_dir(tmp_path / "rw", layers=3)
    config = json.loads((path / "config.json").read_text())
    assert {k: config[k] for k in REAL_WIDTH} == REAL_WIDTH
    assert config["num_hidden_layers"] == 3 and config["num_nextn_predict_layers"] == 1
    assert config["quantization_config"] == QUANTIZATION_CONFIG
    assert config["vocab_size"] % 128 == 0 and (path / "tokenizer.json").exists()
    assert not list(path.glob("*.safetensors"))  # weights come from --load-format dummy
    tiny = make_config("v32", config["vocab_size"], fp8=True)
    assert {k for k in config if config[k] != tiny[k]} <= set(REAL_WIDTH) | {"num_hidden_layers"}
    with pytest.raises(ValueError, match="at least 2"):
        make_real_width_dir(tmp_path / "one", layers=1)


class Named(nn.Module):
    """A module tree with the parameter names (and FP8 layout) of the served V3.2 model."""

    def __init__(self, params: dict[str, torch.Tensor]):
        super().__init__()
        self._names = {}
        for i, (name, value) in enumerate(params.items()):
            self.register_parameter(f"p{i}", nn.Parameter(value, requires_grad=False))
            self._names[f"p{i}"] = name

    def named_parameters(self, *args, **kwargs):
        for key, param in super().named_parameters(*args, **kwargs):
            yield self._names[key], param


H, E, I = 256, 4, 384  # noqa: E741  hidden, experts, MoE intermediate (3 FP8 blocks)


def served_params() -> dict[str, torch.Tensor]:
    fp8 = torch.float8_e4m3fn
    return {
        "model.embed_tokens.weight": torch.empty(64, H, dtype=torch.bfloat16),
        "model.layers.0.input_layernorm.weight": torch.empty(H, dtype=torch.bfloat16),
        "model.layers.0.self_attn.indexer.k_norm.bias": torch.empty(128, dtype=torch.float32),
        "model.layers.0.self_attn.attn.k_scale": torch.empty(1, dtype=torch.float32),
        "model.layers.0.self_attn.q_a_proj.weight": torch.empty(200, H, dtype=fp8),
        "model.layers.0.self_attn.q_a_proj.weight_scale_inv": torch.empty(2, 2),
        "model.layers.0.self_attn.o_proj.weight": torch.empty(H, 2 * H, dtype=fp8),
        "model.layers.0.self_attn.o_proj.weight_scale_inv": torch.empty(2, 4),
        "model.layers.1.self_attn.o_proj.weight": torch.empty(H, 2 * H, dtype=fp8),
        "model.layers.1.self_attn.o_proj.weight_scale_inv": torch.empty(2, 4),
        "model.layers.1.mlp.gate.weight": torch.empty(E, H, dtype=torch.float32),
        "model.layers.1.mlp.gate.e_score_correction_bias": torch.empty(E, dtype=torch.float32),
        "model.layers.1.mlp.experts.w13_weight": torch.empty(E, 2 * I, H, dtype=fp8),
        "model.layers.1.mlp.experts.w13_weight_scale_inv": torch.empty(E, 6, 2),
        "model.layers.1.mlp.shared_experts.down_proj.weight": torch.empty(H, I, dtype=torch.bfloat16),
        "model.enorm.weight": torch.empty(H, dtype=torch.bfloat16),
        "model.eh_proj.weight": torch.empty(H, 2 * H, dtype=torch.bfloat16),
        "lm_head.weight": torch.empty(64, H, dtype=torch.bfloat16),
    }


def values(model, draftable=False, seed=0) -> dict[str, torch.Tensor]:
    """Every parameter as float32, FP8 ones dequantised with their block scales."""
    initialise(model, seed=seed, draftable=draftable)
    p = dict(model.named_parameters())
    out = {}
    for name, t in p.items():
        if name.endswith("_scale_inv"):
            continue
        if t.dtype == torch.float8_e4m3fn:
            scale = p[name + "_scale_inv"]
            out[name] = torch.stack([dequantise_fp8_blockwise(w, s) for w, s in zip(t, scale)]) if t.dim() == 3 \
                else dequantise_fp8_blockwise(t, scale)
        else:
            out[name] = t.float()
    return out


def test_dummy_init_gives_tiny_checkpoint_scales():
    v = values(Named(served_params()))
    std = {k: t.std().item() for k, t in v.items()}
    assert std["model.embed_tokens.weight"] == pytest.approx(1.0, rel=0.05)
    assert v["model.layers.0.input_layernorm.weight"].mean().item() == pytest.approx(1.0, abs=0.02)
    assert std["model.layers.0.input_layernorm.weight"] == pytest.approx(0.05, rel=0.2)
    assert std["model.layers.0.self_attn.indexer.k_norm.bias"] == pytest.approx(0.05, rel=0.25)
    for name, fan_in in [("self_attn.q_a_proj.weight", H), ("self_attn.o_proj.weight", 2 * H),
                         ("mlp.experts.w13_weight", H), ("mlp.shared_experts.down_proj.weight", I)]:
        layer = 1 if "mlp" in name else 0
        assert std[f"model.layers.{layer}.{name}"] == pytest.approx(0.5 / math.sqrt(fan_in), rel=0.08), name
    for name in ("model.layers.1.mlp.gate.weight", "lm_head.weight"):
        assert std[name] == pytest.approx(1 / math.sqrt(H), rel=0.08)
    assert std["model.layers.1.mlp.gate.e_score_correction_bias"] < 0.05
    assert v["model.layers.0.self_attn.attn.k_scale"].tolist() == [1.0]
    experts = v["model.layers.1.mlp.experts.w13_weight"]
    assert not torch.equal(experts[0], experts[1])  # each expert its own draw
    assert not torch.equal(v["model.layers.0.self_attn.o_proj.weight"], v["model.layers.1.self_attn.o_proj.weight"])


def test_dummy_init_is_seeded_by_name():
    first, again = values(Named(served_params())), values(Named(served_params()))
    assert all(torch.equal(first[k], again[k]) for k in first)
    other = values(Named(served_params()), seed=1)
    assert not torch.equal(first["lm_head.weight"], other["lm_head.weight"])


def test_draftable_dummy_init():
    plain, draft = values(Named(served_params())), values(Named(served_params()), draftable=True)
    for name in ("model.layers.0.self_attn.o_proj.weight", "model.layers.1.mlp.shared_experts.down_proj.weight"):
        assert draft[name].std().item() == pytest.approx(DRAFT_OUTPUT_SCALE * plain[name].std().item(), rel=0.1)
    torch.testing.assert_close(draft["model.eh_proj.weight"][:, :H], torch.eye(H))
    assert draft["model.eh_proj.weight"][:, H:].std().item() == pytest.approx(0.1 / math.sqrt(H), rel=0.1)
    assert torch.equal(draft["model.enorm.weight"], torch.ones(H))
    assert torch.equal(draft["model.layers.0.self_attn.q_a_proj.weight"], plain["model.layers.0.self_attn.q_a_proj.weight"])


def test_fp8_weight_without_scale_is_refused():
    params = served_params()
    del params["model.layers.0.self_attn.q_a_proj.weight_scale_inv"]
    with pytest.raises(ValueError, match="q_a_proj.weight has no .*_scale_inv"):
        initialise(Named(params))
