"""MLA KV cache: FP8 656-byte layout and paged stores. The float32 reference
against hand-built bytes, then the Triton kernels against the reference."""

import pytest
import torch

from dsv32_plugin.kernels import reference as ref
from dsv32_plugin.kernels.reference.kv_cache import fp8_dims, fp8_row_bytes, pow2_scale


def test_pow2_scale_is_exact_ceil_log2():
    amax = torch.tensor([448.0, 448.0 * 2**-5, 449.0, 447.0, 0.0, 1e-30, 3.0e4, 448.0 * 1.0000001])
    got = pow2_scale(amax)
    want = torch.tensor([1.0, 2**-5, 2.0, 1.0, 2.0**-13, 2.0**-13, 2.0**7, 2.0])
    assert torch.equal(got, want)


def test_layout_bytes_and_dims():
    assert fp8_row_bytes(512, 64) == 656 and fp8_dims(656, 576) == (512, 64)
    assert fp8_dims(fp8_row_bytes(128, 32), 160) == (128, 32)
    with pytest.raises(ValueError):
        fp8_row_bytes(64, 16)  # d_nope must be a multiple of 128
    with pytest.raises(ValueError):
        fp8_dims(655, 576)


def test_quantize_bytes_by_hand():
    kv = torch.zeros(2, 576)
    kv[0, :128] = torch.linspace(-896, 896, 128)  # amax 896 -> scale 2
    kv[0, 128:256] = 0.5  # amax 0.5 -> scale 2^-9 (0.5/448 = 2^-9.8): 0.5 / 2^-9 = 256, exact in e4m3
    kv[0, 512:] = torch.arange(64) * 0.25  # rope: bf16 bytes verbatim
    packed = ref.quantize_kv_fp8(kv)
    assert packed.shape == (2, 656) and packed.dtype == torch.uint8
    scales = packed[:, 512:528].contiguous().view(torch.float32)
    assert torch.equal(scales[0], torch.tensor([2.0, 2.0**-9, 2.0**-13, 2.0**-13]))
    assert torch.equal(scales[1], torch.full((4,), 2.0**-13))  # all-zero tiles: finite clamp
    want_tile0 = (kv[0, :128] / 2).to(torch.float8_e4m3fn).view(torch.uint8)
    assert torch.equal(packed[0, :128], want_tile0)
    assert torch.equal(packed[0, 128:256], torch.full((128,), 256.0).to(torch.float8_e4m3fn).view(torch.uint8))
    assert torch.equal(packed[1, :512], torch.zeros(512, dtype=torch.uint8))
    assert torch.equal(packed[0, 528:].view(torch.bfloat16), kv[0, 512:].bfloat16())


@pytest.mark.parametrize("d_nope,d_rope", [pytest.param(512, 64, id="v32"), pytest.param(256, 32, id="small")])
def test_quantize_round_trip_error_bound(d_nope, d_rope):
    gen = torch.Generator().manual_seed(d_nope)
    kv = (torch.randn(33, d_nope + d_rope, generator=gen) * torch.logspace(-3, 3, 33)[:, None]).bfloat16()
    kv[5, :128] = 0  # an all-zero tile
    back = ref.dequantize_kv_fp8(ref.quantize_kv_fp8(kv, d_nope), d_nope, d_rope)
    assert back.dtype == torch.bfloat16 and torch.isfinite(back.float()).all()
    assert torch.equal(back[:, d_nope:], kv[:, d_nope:])  # rope is stored in bf16 verbatim
    tiles = kv[:, :d_nope].float().reshape(33, -1, 128)
    err = (back[:, :d_nope].float().reshape(33, -1, 128) - tiles).abs()
    # e4m3 keeps 4 significant bits: relative error <= 2^-4, tile-relative <= 2^-4 * 2 (pow2 scale slack)
    assert torch.all(err <= tiles.abs() * 2**-4 + tiles.abs().amax(-1, keepdim=True) * 2**-9 + 1e-30)
    assert torch.equal(back[5, :128], torch.zeros(128, dtype=torch.bfloat16))


def test_store_mla_kv_reference_skips_bad_slots():
    gen = torch.Generator().manual_seed(3)
    kv = torch.randn(5, 576, generator=gen).bfloat16()
    slots = torch.tensor([0, 70, -1, 127, 500])  # 500 is past a 2x64 cache
    for cache in (torch.zeros(2, 64, 576, dtype=torch.bfloat16), torch.zeros(2, 64, 656, dtype=torch.uint8)):
        before = cache.clone()
        ref.store_mla_kv(cache, slots, kv)
        flat, old = cache.reshape(128, -1), before.reshape(128, -1)
        want = kv if cache.dtype == torch.bfloat16 else ref.quantize_kv_fp8(kv)
        for row, slot in ((0, 0), (1, 70), (3, 127)):
            assert torch.equal(flat[slot], want[row])
        untouched = torch.ones(128, dtype=torch.bool)
        untouched[[0, 70, 127]] = False
        assert torch.equal(flat[untouched], old[untouched])
