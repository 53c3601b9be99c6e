"""FlashMLA wrappers (kernels/sparse_mla/flashmla.py) against the float32 reference at DeepSeek-V3.2 head sizes (GPU with ``flash_mla`` only)."""

import pytest
import torch

from dsv32_plugin.kernels import reference

pytestmark = pytest.mark.gpu

SM_SCALE = 576**-0.5
PAGE = 64


def flashmla():
    pytest.importorskip("flash_mla")
    from dsv32_plugin.kernels.sparse_mla import flashmla

    return flashmla


def messy_indices(rows: int, topk: int, pool: torch.Tensor, limit: int, gen: torch.Generator) -> torch.Tensor:
    """Random picks from ``pool`` with -1, below -1 and >= ``limit`` entries sprinkled in, on the GPU."""
    idx = pool[torch.randint(0, pool.numel(), (rows, topk), generator=gen)]
    noise = torch.rand(rows, topk, generator=gen)
    idx[noise < 0.1] = -1
    idx[(noise >= 0.1) & (noise < 0.12)] = limit + 7
    idx[(noise >= 0.12) & (noise < 0.13)] = -5
    idx[0] = -1  # a row with nothing to attend
    return idx.to(torch.int32).cuda()


def assert_matches(out, lse, ref_out, ref_lse):
    torch.testing.assert_close(out.float(), ref_out.float(), atol=2e-2, rtol=2e-2)
    finite = torch.isfinite(ref_lse)
    assert torch.equal(finite, torch.isfinite(lse)) and (ref_lse[~finite] == float("-inf")).all()
    assert (lse[~finite] == float("-inf")).all()
    torch.testing.assert_close(lse[finite], ref_lse[finite], atol=1e-3, rtol=1e-3)


@pytest.mark.parametrize("heads", [pytest.param(128, id="H128"), pytest.param(16, id="H16-padded")])
@pytest.mark.parametrize("topk", [pytest.param(2048, id="topk2048"), pytest.param(100, id="topk100-padded")])
def test_sparse_prefill(heads, topk):
    adapter = flashmla()
    gen = torch.Generator().manual_seed(heads + topk)
    T, S = 37, 3000
    q = torch.randn(T, heads, 576, generator=gen).bfloat16().cuda()
    kv = torch.randn(S, 576, generator=gen).bfloat16().cuda()
    indices = messy_indices(T, topk, torch.arange(S), S, gen)
    topk_length = torch.randint(0, topk + 1, (T,), generator=gen).to(torch.int32).cuda()
    out, lse = adapter.sparse_mla_prefill(q, kv, indices, SM_SCALE, 512, topk_length)
    assert out.shape == (T, heads, 512) and lse.shape == (T, heads)
    assert_matches(out, lse, *reference.sparse_mla_prefill(q, kv, indices, SM_SCALE, 512, topk_length))


@pytest.mark.parametrize("heads", [pytest.param(128, id="H128"), pytest.param(16, id="H16-padded")])
@pytest.mark.parametrize("fp8", [pytest.param(True, id="fp8-cache"), pytest.param(False, id="bf16-cache")])
def test_sparse_decode(heads, fp8):
    adapter = flashmla()
    gen = torch.Generator().manual_seed(heads + fp8)
    B, s_q, pages, topk = 5, 2, 40, 2048
    kv = torch.randn(pages * PAGE, 576, generator=gen).bfloat16().cuda()
    if fp8:
        cache = torch.empty(pages, PAGE, 656, dtype=torch.uint8, device="cuda")
    else:
        cache = torch.full((pages, PAGE, 576), float("nan"), dtype=torch.bfloat16, device="cuda")
    slots = torch.randperm(pages * PAGE, generator=gen)[: pages * PAGE - 100]  # 100 slots stay unwritten (NaN)
    reference.store_mla_kv(cache, slots.cuda(), kv[: slots.numel()])
    indices = messy_indices(B * s_q, topk, slots, pages * PAGE, gen).reshape(B, s_q, topk)
    topk_length = torch.randint(0, topk + 1, (B, s_q), generator=gen).to(torch.int32).cuda()
    q = torch.randn(B, s_q, heads, 576, generator=gen).bfloat16().cuda()
    decode = adapter.sparse_mla_decode if fp8 else adapter.sparse_mla_decode_bf16_cache
    out, lse = decode(q, cache, indices, SM_SCALE, 512, topk_length)
    assert out.shape == (B, s_q, heads, 512) and lse.shape == (B, s_q, heads)
    assert_matches(out, lse, *reference.sparse_mla_decode(q, cache, indices, SM_SCALE, 512, topk_length))


def test_other_head_sizes_are_refused():
    adapter = flashmla()
    q = torch.zeros(2, 16, 192, dtype=torch.bfloat16, device="cuda")
    with pytest.raises(ValueError, match="D = 576, d_v = 512"):
        kv = torch.zeros(4, 192, dtype=torch.bfloat16, device="cuda")
        adapter.sparse_mla_prefill(q, kv, torch.zeros(2, 4, dtype=torch.int32, device="cuda"), 1.0, 128)
