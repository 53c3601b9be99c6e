"""Indexer K cache layout (64-token pages: keys, then fp32 scales): the reference
store/gather against hand-checked bytes, then the Triton store of pre-quantised keys against it
(float keys, rotated and quantised by the store: test_index_fp8_encode.py)."""

import math
import os

import pytest
import torch

if not torch.cuda.is_available():  # CPU CI: Triton kernels run in the interpreter
    os.environ.setdefault("TRITON_INTERPRET", "1")

from dsv32_plugin.kernels.cache import index_k as index_k_cache  # noqa: E402
from dsv32_plugin.kernels import reference as ref  # noqa: E402

DEVICE = "cuda" if torch.cuda.is_available() else "cpu"


@pytest.mark.parametrize("dim", [pytest.param(128, id="d128"), pytest.param(32, id="d32")])
def test_store_writes_the_documented_bytes_and_gather_reads_them_back(dim):
    num_pages = 3
    cache = torch.zeros(num_pages, 64 * (dim + 4), dtype=torch.uint8)
    k_fp8, k_scale = ref.quantize_fp8_blockwise(torch.randn(5, dim), block=dim)
    k_scale = k_scale[:, 0]
    slots = torch.tensor([0, 63, 64, -1, 191])
    ref.store_index_k(cache, slots, k_fp8, k_scale)
    for n, slot in enumerate(slots.tolist()):
        if slot < 0:
            continue
        page, off = divmod(slot, 64)
        assert torch.equal(cache[page, off * dim : (off + 1) * dim], k_fp8[n].view(torch.uint8))
        scale_bytes = cache[page, 64 * dim + 4 * off : 64 * dim + 4 * off + 4].clone()
        assert scale_bytes.view(torch.float32).item() == k_scale[n].item()
    written = torch.zeros_like(cache, dtype=torch.bool)
    for slot in (0, 63, 64, 191):
        page, off = divmod(slot, 64)
        written[page, off * dim : (off + 1) * dim] = True
        written[page, 64 * dim + 4 * off : 64 * dim + 4 * off + 4] = True
    assert (cache[~written] == 0).all(), "the skipped slot -1 wrote somewhere"
    got_k, got_scale = ref.gather_index_k(cache, torch.tensor([191, -1, 0, 9999]))
    assert torch.equal(got_k[0].view(torch.uint8), k_fp8[4].view(torch.uint8))
    assert torch.equal(got_k[2].view(torch.uint8), k_fp8[0].view(torch.uint8))
    assert got_scale.tolist() == [k_scale[4].item(), 0.0, k_scale[0].item(), 0.0]
    assert (got_k[[1, 3]].float() == 0).all()


def test_store_of_float_keys_rotates_then_quantises_per_token():
    cache = torch.zeros(1, 64 * 68, dtype=torch.uint8)
    k = torch.randn(4, 64) * 3
    k[2] = 0  # all-zero key: finite scale
    ref.store_index_k(cache, torch.tensor([3, 1, 2, 0]), k)
    got_k, got_scale = ref.gather_index_k(cache, torch.tensor([3, 1, 2, 0]))
    want_k, want_scale = ref.quantize_fp8_blockwise(ref.hadamard_rotate(k), block=64)
    assert torch.equal(got_k.view(torch.uint8), want_k.view(torch.uint8))
    torch.testing.assert_close(got_scale, want_scale[:, 0])


def test_bad_shapes_are_refused():
    cache = torch.zeros(2, 64 * 132, dtype=torch.uint8)
    with pytest.raises(ValueError):
        ref.store_index_k(cache, torch.tensor([0]), torch.zeros(1, 64, dtype=torch.float8_e4m3fn), torch.ones(1))
    with pytest.raises(ValueError):
        ref.gather_index_k(torch.zeros(2, 100, dtype=torch.uint8), torch.tensor([0]))


@pytest.mark.parametrize("dim", [pytest.param(128, id="d128"), pytest.param(64, id="d64")])
def test_kernel_store_of_prequantised_keys_is_byte_exact_with_reference(dim):
    gen = torch.Generator().manual_seed(dim)
    num_pages, n = 3, 40
    keys = torch.randn(n, dim, generator=gen) * torch.logspace(-3, 3, n)[:, None]  # scales span many octaves
    keys[5] = 0.0  # all-zero key
    slots = torch.randperm(num_pages * 64, generator=gen)[:n]
    slots[3], slots[9], slots[11] = -1, num_pages * 64, -5  # skipped: nothing may be written
    cache = torch.full((num_pages, 64 * (dim + 4) // 4), math.nan).view(torch.uint8)
    want = cache.clone()
    k_fp8, k_scale = ref.quantize_fp8_blockwise(keys, block=dim)
    ref.store_index_k(want, slots, k_fp8, k_scale[:, 0])
    index_k_cache.store_index_k(cache_dev := cache.to(DEVICE), slots.to(DEVICE), k_fp8.to(DEVICE), k_scale[:, 0].to(DEVICE))
    assert torch.equal(cache_dev.cpu(), want)  # uint8 compare: NaN poison left exactly where nothing was written


def test_kernel_store_refuses_mismatched_keys():
    cache = torch.zeros(1, 64 * 36, dtype=torch.uint8, device=DEVICE)
    with pytest.raises(ValueError):
        index_k_cache.store_index_k(cache, torch.zeros(2, dtype=torch.int64, device=DEVICE), torch.zeros(2, 64, device=DEVICE))
    with pytest.raises(ValueError):
        index_k_cache.store_index_k(cache, torch.zeros(2, dtype=torch.int64, device=DEVICE),
                                    torch.zeros(2, 32, device=DEVICE), torch.ones(2, device=DEVICE))
