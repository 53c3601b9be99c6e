"""MLA KV cache: FP8 656-byte layout and paged stores. The float32 reference
against hand-built bytes, then the Triton kernels against the reference."""

import pytest
import torch

from dsv32_plugin.kernels import reference as ref
from dsv32_plugin.kernels.cache.kv_reference import fp8_dims, fp8_row_bytes, pow2_scale


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


# ---------------------------------------------------------------------------
# Triton kernels (CPU: interpreter; the variable must precede the kernel import).
if not torch.cuda.is_available():
    import os

    os.environ.setdefault("TRITON_INTERPRET", "1")

from dsv32_plugin.kernels.cache import kv as kernels  # noqa: E402

DEVICE = "cuda" if torch.cuda.is_available() else "cpu"


def odd_kv(seed, n, d_nope, d_rope):
    """bf16 rows over 12 decades of magnitude, ties at e4m3 midpoints, zero tiles, signed zeros."""
    gen = torch.Generator().manual_seed(seed)
    kv = torch.randn(n, d_nope + d_rope, generator=gen) * torch.logspace(-6, 6, n)[:, None]
    kv[1, :128] = 0  # all-zero tile
    kv[2, :128] = -0.0
    kv[3, :128] = torch.tensor([448.0, 7.75, 336.0, -13.0] * 32)  # 7.75 / 336 / 13 are e4m3 ties
    return kv.bfloat16()


@pytest.mark.parametrize(
    "n,d_nope,d_rope",
    [pytest.param(37, 512, 64, id="v32-656B"), pytest.param(5, 128, 32, id="tiny-dims"), pytest.param(0, 512, 64, id="empty")],
)
def test_quantize_and_dequantize_kernels_are_bit_exact(n, d_nope, d_rope):
    kv = odd_kv(n, max(n, 4), d_nope, d_rope)[:n]
    packed = kernels.quantize_kv_fp8(kv.to(DEVICE), d_nope=d_nope)
    want = ref.quantize_kv_fp8(kv, d_nope=d_nope)
    assert packed.dtype == torch.uint8 and torch.equal(packed.cpu(), want)
    back = kernels.dequantize_kv_fp8(packed, d_nope=d_nope, d_rope=d_rope)
    assert torch.equal(back.cpu(), ref.dequantize_kv_fp8(want, d_nope, d_rope))


@pytest.mark.parametrize("fp8", [pytest.param(True, id="fp8-656B"), pytest.param(False, id="bf16-576")])
def test_store_kernel_matches_reference_and_leaves_other_slots(fp8):
    kv = odd_kv(9, 6, 512, 64)
    width_bytes = 656 if fp8 else 576 * 2
    dtype = torch.uint8 if fp8 else torch.bfloat16
    cache = torch.full((3, 16, width_bytes), 0xFF, dtype=torch.uint8).view(dtype)  # NaN-poisoned memory
    slots = torch.tensor([17, -1, 47, 48 * 5, 0, 31])  # page edges, a skip, past the end
    want = ref.store_mla_kv(cache.clone(), slots, kv)
    got = kernels.store_mla_kv(cache.to(DEVICE), slots.to(DEVICE), kv.to(DEVICE))
    assert torch.equal(got.cpu().view(torch.uint8), want.view(torch.uint8))
    got4 = kernels.store_mla_kv(cache.unsqueeze(2).to(DEVICE), slots.to(DEVICE), kv.to(DEVICE))  # FlashMLA shape
    assert torch.equal(got4.cpu().squeeze(2).view(torch.uint8), want.view(torch.uint8))


def test_kv_kernels_reject_bad_layouts():
    with pytest.raises(ValueError, match="multiple of 128"):
        kernels.quantize_kv_fp8(torch.zeros(2, 80, dtype=torch.bfloat16, device=DEVICE), d_nope=64)
    with pytest.raises(ValueError):
        kernels.store_mla_kv(
            torch.zeros(2, 4, 650, dtype=torch.uint8, device=DEVICE),
            torch.zeros(1, dtype=torch.int64, device=DEVICE),
            torch.zeros(1, 576, dtype=torch.bfloat16, device=DEVICE),
        )
