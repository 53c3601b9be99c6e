"""The FP8 indexer's encoders with the Hadamard rotation fused in: the q quantiser
(``quantize_index_q``) and the index-K store (``store_index_k``), Triton against the reference
(``hadamard_rotate`` then ``quantize_fp8_blockwise`` in torch).

Byte-exact where the rotated values cannot depend on the summation order (``grid_rows``,
crafted edge rows); elsewhere within one e4m3 step of the reference (``assert_fp8_rows_close``).
"""

import math
import os

import pytest
import torch

if not torch.cuda.is_available():  # CPU CI: Triton kernels run in the interpreter
    os.environ.setdefault("TRITON_INTERPRET", "1")

from fp8_checks import assert_fp8_rows_close, crafted_rows_d64, fp8_nan_free, grid_rows  # noqa: E402

from dsv32_plugin.kernels import quantize_index_q, store_index_k  # noqa: E402
from dsv32_plugin.kernels import reference as ref  # noqa: E402

DEVICE = "cuda" if torch.cuda.is_available() else "cpu"

Q_SHAPES = [(1, 64, 128), (3, 1, 128), (65, 1, 128), (3, 64, 64), (65, 3, 32)]  # tokens, index heads, head dim
Q_CASES = [pytest.param(t, h, d, dtype, id=f"T{t}-H{h}-D{d}-{name}") for t, h, d in Q_SHAPES
           for name, dtype in (("bf16", torch.bfloat16), ("fp32", torch.float32))]
# 65 tokens x 64 heads is 65 interpreted programs (seconds): once, at the production dtype.
PREFILL_CASE = pytest.param(65, 64, 128, torch.bfloat16, id="T65-H64-D128-bf16")


def _q_on_device(q, weights):
    q_fp8, w = quantize_index_q(q.to(DEVICE), weights.to(DEVICE))
    return q_fp8.cpu(), w.cpu()


@pytest.mark.parametrize("tokens, heads, dim, dtype", Q_CASES + [PREFILL_CASE])
def test_q_quantiser_is_byte_exact_on_order_free_inputs(tokens, heads, dim, dtype):
    gen = torch.Generator().manual_seed(tokens * heads + dim)
    q = grid_rows(gen, (tokens, heads, dim), dtype)
    if dim == 64:
        q.view(-1, dim)[:3] = crafted_rows_d64(dtype)
    weights = torch.randn(tokens, heads, generator=gen)
    got_q, got_w = _q_on_device(q, weights)
    want_q, want_w = ref.quantize_index_q(q, weights)
    assert got_q.dtype == torch.float8_e4m3fn and got_q.shape == q.shape and got_w.shape == weights.shape
    assert torch.equal(got_q.view(torch.uint8), want_q.view(torch.uint8))
    assert torch.equal(got_w, want_w)
    if dim == 64:  # the crafted rows: zero codes, scale 1 (w unchanged), the tie rounded to even
        assert (got_q.view(-1, dim)[0].float() == 0).all() and torch.isfinite(got_w).all()
        assert got_w.view(-1)[1] == weights.view(-1)[1] and got_q.view(-1, dim)[1].float().abs().max() == 448
        assert set(got_q.view(-1, dim)[2].float().abs().tolist()) == {448.0, 256.0}


@pytest.mark.parametrize("tokens, heads, dim, dtype", Q_CASES)
def test_q_quantiser_matches_reference_and_the_rotation(tokens, heads, dim, dtype):
    gen = torch.Generator().manual_seed(7 * tokens + heads)
    q = (torch.randn(tokens, heads, dim, generator=gen) * torch.logspace(-3, 4, tokens)[:, None, None]).to(dtype)
    weights = torch.randn(tokens, heads, generator=gen)
    got_q, got_w = _q_on_device(q, weights)
    want_q, want_w = ref.quantize_index_q(q, weights)
    assert fp8_nan_free(got_q) and torch.isfinite(got_w).all()
    got_scale, want_scale = got_w / weights, want_w / weights  # the folded scales (powers of two: exact)
    assert_fp8_rows_close(got_q, got_scale, want_q, want_scale)
    # The rotation itself, against a matrix built here: (H / sqrt(D)) as a Kronecker power.
    h2 = torch.tensor([[1.0, 1.0], [1.0, -1.0]])
    hadamard = torch.ones(1, 1)
    for _ in range(int(math.log2(dim))):
        hadamard = torch.kron(hadamard, h2)
    rotated = q.double() @ hadamard.double() / math.sqrt(dim)
    back = got_q.double() * got_scale.double()[..., None]
    assert ((back - rotated).abs() <= rotated.abs() / 16 + got_scale.double()[..., None] * 2**-10).all()


def test_q_quantiser_keeps_huge_and_empty_inputs_finite():
    q = torch.full((2, 3, 128), 3e4, dtype=torch.bfloat16)  # amax 3e4 * sqrt(128) after the rotation
    q[1] = 0
    got_q, got_w = _q_on_device(q, torch.ones(2, 3))
    assert fp8_nan_free(got_q) and torch.isfinite(got_w).all() and (got_q[1].float() == 0).all()
    empty_q, empty_w = _q_on_device(torch.zeros(0, 64, 128), torch.zeros(0, 64))
    assert empty_q.shape == (0, 64, 128) and empty_w.shape == (0, 64)


STORE_CASES = [  # tokens, head dim, key dtype
    pytest.param(1, 128, torch.bfloat16, id="T1-D128-bf16"),
    pytest.param(3, 128, torch.float32, id="T3-D128-fp32"),
    pytest.param(65, 128, torch.bfloat16, id="T65-D128-bf16"),
    pytest.param(65, 64, torch.float32, id="T65-D64-fp32"),
    pytest.param(3, 32, torch.bfloat16, id="T3-D32-bf16"),
]


def _poisoned_cache(num_pages, dim):
    return torch.full((num_pages, 64 * (dim + 4) // 4), math.nan).view(torch.uint8)


def _slots(gen, tokens, num_pages):
    slots = torch.randperm(num_pages * 64, generator=gen)[:tokens]
    if tokens > 3:
        slots[1], slots[2] = -1, num_pages * 64  # skipped: nothing may be written
    return slots


@pytest.mark.parametrize("tokens, dim, dtype", STORE_CASES)
def test_store_is_byte_exact_on_order_free_keys(tokens, dim, dtype):
    gen = torch.Generator().manual_seed(tokens + dim)
    keys = grid_rows(gen, (tokens, dim), dtype)
    if dim == 64:
        keys[-3:] = crafted_rows_d64(dtype)
    slots = _slots(gen, tokens, num_pages=3)
    want = _poisoned_cache(3, dim)
    got = want.to(DEVICE)
    ref.store_index_k(want, slots, keys)
    store_index_k(got, slots.to(DEVICE), keys.to(DEVICE))
    assert torch.equal(got.cpu(), want)  # NaN poison left exactly where nothing was written


@pytest.mark.parametrize("tokens, dim, dtype", STORE_CASES)
def test_store_matches_reference_on_random_keys(tokens, dim, dtype):
    gen = torch.Generator().manual_seed(3 * tokens + dim)
    keys = (torch.randn(tokens, dim, generator=gen) * torch.logspace(-3, 3, tokens)[:, None]).to(dtype)
    slots = torch.randperm(3 * 64, generator=gen)[:tokens]
    want = torch.zeros(3, 64 * (dim + 4), dtype=torch.uint8)
    got = want.to(DEVICE)
    ref.store_index_k(want, slots, keys)
    store_index_k(got, slots.to(DEVICE), keys.to(DEVICE))
    got_k, got_scale = ref.gather_index_k(got.cpu(), slots)
    want_k, want_scale = ref.gather_index_k(want, slots)
    assert fp8_nan_free(got_k)
    assert_fp8_rows_close(got_k, got_scale, want_k, want_scale)


def test_prequantised_keys_are_stored_as_they_are():
    """Cache contents (a gather, a CP exchange) are not rotated a second time."""
    gen = torch.Generator().manual_seed(0)
    first = torch.zeros(2, 64 * 132, dtype=torch.uint8, device=DEVICE)
    store_index_k(first, torch.arange(70, device=DEVICE), torch.randn(70, 128, generator=gen).to(DEVICE))
    keys, scale = ref.gather_index_k(first.cpu(), torch.arange(70))
    second = torch.zeros_like(first)
    store_index_k(second, torch.arange(70, device=DEVICE), keys.to(DEVICE), scale.to(DEVICE))
    assert torch.equal(second, first)
