"""The tiny DeepSeek-V3.2 checkpoint loads in transformers and sglang and keeps the real layout."""

import json
import pathlib
import subprocess
import sys

import pytest
import torch
from safetensors import safe_open

from dsv32_plugin.testing import make_tiny_checkpoint
from dsv32_plugin.testing.tiny_checkpoint import exp_chat_template
from dsv32_plugin.testing.tiny_tokenizer import ADDED_TOKENS, BOS, DSML, EOS, SPECIAL_TOKENS
from dsv32_plugin.testing.tiny_weights import FP8_QUANTISED, dequantise_fp8_blockwise

# Keys that sglang reads from the real config.json and a transformers-5 config would not write.
HOST_KEYS = ("moe_layer_freq", "topk_method", "scoring_func", "ep_size", "num_nextn_predict_layers",
             "norm_topk_prob", "routed_scaling_factor", "rope_scaling", "rope_theta")


@pytest.fixture(scope="module")
def ckpt(tiny_v32_checkpoint):
    return tiny_v32_checkpoint


@pytest.fixture(scope="module")
def ckpt_fp8(tmp_path_factory):
    return make_tiny_checkpoint(tmp_path_factory.mktemp("v32fp8"), "v32", fp8=True)


def _config(path):
    return json.loads((path / "config.json").read_text())


def _tensors(path):
    with safe_open(str(path / "model.safetensors"), "pt") as f:
        return {k: f.get_tensor(k) for k in f.keys()}


def test_config_has_real_keys_and_consistent_sizes(ckpt):
    c = _config(ckpt)
    assert c["architectures"] == ["DeepseekV32ForCausalLM"] and c["model_type"] == "deepseek_v32"
    assert all(k in c for k in HOST_KEYS), [k for k in HOST_KEYS if k not in c]
    assert c["rope_scaling"]["type"] == "yarn" and c["rope_scaling"]["factor"] == 40
    assert 1 <= c["first_k_dense_replace"] < c["num_hidden_layers"]  # >=1 dense and >=1 MoE layer
    assert c["n_routed_experts"] % c["n_group"] == 0 and c["topk_group"] <= c["n_group"]
    assert c["index_head_dim"] != 128 and c["index_head_dim"] >= c["qk_rope_head_dim"]
    assert c["index_topk"] == 16 and c["kv_lora_rank"] == 128
    n_tok = len(json.loads((ckpt / "tokenizer.json").read_text())["model"]["vocab"]) + len(ADDED_TOKENS)
    assert n_tok <= c["vocab_size"] < n_tok + 128 and c["vocab_size"] % 128 == 0


def test_mtp_layer_stored_like_the_real_checkpoint(ckpt):
    c, names = _config(ckpt), set(_tensors(ckpt))
    mtp = f"model.layers.{c['num_hidden_layers']}."
    for part in ("embed_tokens.weight", "enorm.weight", "hnorm.weight", "eh_proj.weight",
                 "shared_head.norm.weight", "shared_head.head.weight",
                 "self_attn.indexer.wq_b.weight", "mlp.gate.e_score_correction_bias",
                 "mlp.shared_experts.down_proj.weight", "input_layernorm.weight"):
        assert mtp + part in names, part
    assert not any(n.startswith(f"model.layers.{c['num_hidden_layers'] + 1}.") for n in names)


def test_loads_and_runs_in_transformers(ckpt):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model, info = AutoModelForCausalLM.from_pretrained(ckpt, output_loading_info=True)
    assert type(model).__name__ == "DeepseekV32ForCausalLM"
    assert not info["missing_keys"], info["missing_keys"]
    mtp = f"model.layers.{model.config.num_hidden_layers}."
    assert info["unexpected_keys"] and all(k.startswith(mtp) for k in info["unexpected_keys"])
    ids = AutoTokenizer.from_pretrained(ckpt)("The cat walked to the river and looked at the fish " * 2,
                                              return_tensors="pt").input_ids
    assert ids.shape[1] > model.config.index_topk  # the indexer's sparse path is taken
    with torch.no_grad():
        logits = model(ids).logits.float()
    assert logits.shape == (1, ids.shape[1], model.config.vocab_size)
    assert torch.isfinite(logits).all() and 0.3 < logits.std() < 3.0


def test_special_tokens_are_single_ids(ckpt):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(ckpt)
    assert tok.bos_token == BOS and tok.eos_token == EOS
    assert (tok.bos_token_id, tok.eos_token_id) == (_config(ckpt)["bos_token_id"], _config(ckpt)["eos_token_id"])
    for t in SPECIAL_TOKENS:
        ids = tok.encode(f"a{t}b", add_special_tokens=False)
        assert tok.convert_tokens_to_ids(t) in ids and len(ids) == 3, (t, ids)
        assert tok.decode(ids) == f"a{t}b"


def test_skip_special_tokens_drops_only_bos_eos_pad_and_dsml(ckpt):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(ckpt)
    text = "<｜User｜>hi<｜Assistant｜><think>x</think><｜DSML｜invoke name=\"f\"><｜tool▁sep｜>"
    ids = tok.encode(text)
    assert ids[0] == tok.bos_token_id
    assert tok.decode(ids, skip_special_tokens=True) == text.replace(DSML, "")
    assert tok.encode("<" + DSML + "invoke", add_special_tokens=False)[:2] == [
        tok.convert_tokens_to_ids("<"), tok.convert_tokens_to_ids(DSML)]


@pytest.mark.parametrize("text", ["Hello, world!", "  leading and trailing  \n\n", "中文 ünïcödé 🙂 tab\tend", ""],
                         ids=["ascii", "whitespace", "unicode", "empty"])
def test_text_round_trips(ckpt, text):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(ckpt)
    assert tok.decode(tok.encode(text, add_special_tokens=False)) == text


def test_fp8_weights_dequantise_to_the_bf16_weights(ckpt, ckpt_fp8):
    ref, q = _tensors(ckpt), _tensors(ckpt_fp8)
    assert _config(ckpt_fp8)["quantization_config"]["weight_block_size"] == [128, 128]
    quantised = [n for n in ref if n.endswith(FP8_QUANTISED)]
    assert len(quantised) > 20
    for name, w in ref.items():
        if name not in quantised:
            assert torch.equal(q[name], w), name
            continue
        fp8, scale = q[name], q[name.removesuffix("weight") + "weight_scale_inv"]
        assert fp8.dtype == torch.float8_e4m3fn and scale.dtype == torch.float32
        assert scale.shape == (-(-w.shape[0] // 128), -(-w.shape[1] // 128)), name
        assert torch.equal(torch.exp2(torch.log2(scale).round()), scale)  # ue8m0: powers of two
        w = w.float()
        err = (dequantise_fp8_blockwise(fp8, scale) - w).abs()
        step = scale.max() * 2.0**-9  # FP8 subnormal spacing
        assert (err <= w.abs() * 2.0**-4 + step).all(), name


def test_sglang_model_config_accepts_it(ckpt, ckpt_fp8):
    from sglang.srt.configs.model_config import ModelConfig, is_deepseek_dsa

    mc = ModelConfig(str(ckpt))
    assert is_deepseek_dsa(mc.hf_config) and mc.hf_config.architectures == ["DeepseekV32ForCausalLM"]
    assert mc.hf_config.moe_layer_freq == 1 and mc.hf_config.index_topk == 16
    assert mc.vocab_size == _config(ckpt)["vocab_size"] and mc.quantization is None
    assert ModelConfig(str(ckpt_fp8)).quantization == "fp8"


@pytest.mark.parametrize("variant", ["v32", "speciale"])
def test_v32_and_speciale_have_no_chat_template(tmp_path, variant):
    path = make_tiny_checkpoint(tmp_path, variant)
    assert "chat_template" not in json.loads((path / "tokenizer_config.json").read_text())
    assert _config(path)["dsv32_tiny_variant"] == variant


def test_v32_exp_carries_the_shipped_template(tmp_path):
    from transformers import AutoTokenizer

    shipped = pathlib.Path(__file__).resolve().parents[2] / "templates" / "deepseek_v32_exp.jinja"
    path = make_tiny_checkpoint(tmp_path, "v32-exp")
    tok_config = json.loads((path / "tokenizer_config.json").read_text())
    assert tok_config["chat_template"] == shipped.read_text() == exp_chat_template()
    prompt = AutoTokenizer.from_pretrained(path).apply_chat_template(
        [{"role": "user", "content": "hi"}], tokenize=False, add_generation_prompt=True)
    assert "<｜User｜>hi<｜Assistant｜>" in prompt


def test_seed_decides_the_weights(tmp_path):
    a = _tensors(make_tiny_checkpoint(tmp_path / "a", seed=1))
    b = _tensors(make_tiny_checkpoint(tmp_path / "b", seed=1))
    c = _tensors(make_tiny_checkpoint(tmp_path / "c", seed=2))
    name = "model.layers.1.self_attn.indexer.wk.weight"
    assert torch.equal(a[name], b[name]) and not torch.equal(a[name], c[name])


def test_unknown_variant_is_a_clear_error(tmp_path):
    with pytest.raises(ValueError, match="v32-exp"):
        make_tiny_checkpoint(tmp_path, "v4")
    assert not (tmp_path / "config.json").exists()


def test_cli_writes_a_checkpoint(tmp_path):
    out = subprocess.run([sys.executable, "-m", "dsv32_plugin.testing.tiny_checkpoint", str(tmp_path / "s"),
                          "--variant", "speciale", "--fp8"], capture_output=True, text=True, cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert "RuntimeWarning" not in out.stderr
    c = _config(tmp_path / "s")
    assert c["dsv32_tiny_variant"] == "speciale" and c["quantization_config"]["quant_method"] == "fp8"
