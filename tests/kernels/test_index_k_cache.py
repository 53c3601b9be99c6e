"""Indexer K cache layout (64-token pages: keys, then fp32 scales): reference store/gather."""

import pytest
import torch

from dsv32_plugin.kernels import reference as ref


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


def test_store_of_float_keys_quantises_per_token():
    cache = torch.zeros(1, 64 * 68, dtype=torch.uint8)
    k = torch.randn(4, 64) * 3
    k[2] = 0  # all-zero key: finite scale
    ref.store_index_k(cache, torch.tensor([3, 1, 2, 0]), k)
    got_k, got_scale = ref.gather_index_k(cache, torch.tensor([3, 1, 2, 0]))
    want_k, want_scale = ref.quantize_fp8_blockwise(k, block=64)
    assert torch.equal(got_k.view(torch.uint8), want_k.view(torch.uint8))
    torch.testing.assert_close(got_scale, want_scale[:, 0])


def test_bad_shapes_are_refused():
    cache = torch.zeros(2, 64 * 132, dtype=torch.uint8)
    with pytest.raises(ValueError):
        ref.store_index_k(cache, torch.tensor([0]), torch.zeros(1, 64, dtype=torch.float8_e4m3fn), torch.ones(1))
    with pytest.raises(ValueError):
        ref.gather_index_k(torch.zeros(2, 100, dtype=torch.uint8), torch.tensor([0]))
