"""FP8 block-scaled checkpoint weights are dequantised at load (models/weights.py)."""

from __future__ import annotations

import pytest
import torch
from safetensors.torch import load_file

from dsv32_plugin.models.weights import dequantize_fp8_block, dequantized
from dsv32_plugin.testing import make_tiny_checkpoint


def test_dequantized_fp8_checkpoint_matches_the_unquantised_one(tmp_path):
    plain = load_file(str(make_tiny_checkpoint(tmp_path / "bf16", seed=3) / "model.safetensors"))
    fp8 = load_file(str(make_tiny_checkpoint(tmp_path / "fp8", fp8=True, seed=3) / "model.safetensors"))
    merged = dict(dequantized(fp8.items()))
    assert merged.keys() == plain.keys()
    quantised = [name for name, t in fp8.items() if t.dtype == torch.float8_e4m3fn]
    assert quantised, "the FP8 checkpoint has no FP8 tensors"
    for name in quantised:
        ref = plain[name].float()
        err = (merged[name] - ref).abs().max() / ref.abs().max()
        assert err < 2 ** -3, (name, err)  # e4m3 keeps 3 mantissa bits
    for name in set(plain) - set(quantised):
        assert torch.equal(merged[name].float(), plain[name].float()), name


@pytest.mark.parametrize("shape", [pytest.param((128, 256), id="whole-blocks"), pytest.param((130, 70), id="ragged")])
def test_block_scales_cover_their_128x128_tiles(shape):
    out_dim, in_dim = shape
    weight = torch.ones(out_dim, in_dim).to(torch.float8_e4m3fn)
    scales = torch.arange(1.0, 1.0 + ((out_dim + 127) // 128) * ((in_dim + 127) // 128)).view(
        (out_dim + 127) // 128, (in_dim + 127) // 128)
    out = dequantize_fp8_block(weight, scales)
    rows, cols = torch.meshgrid(torch.arange(out_dim), torch.arange(in_dim), indexing="ij")
    assert torch.equal(out, scales[rows // 128, cols // 128])


def test_fp8_weight_without_scale_is_an_error():
    weight = torch.zeros(4, 4).to(torch.float8_e4m3fn)
    with pytest.raises(ValueError, match="without a matching scale"):
        list(dequantized([("layer.weight", weight)]))
