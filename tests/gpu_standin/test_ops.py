"""Every implemented op of the test-only GPU ``sgl_kernel`` stand-in against a float64 reference twin.

CPU tensors run everywhere; the ``cuda`` cases (marked gpu) run the same checks on the device,
plus a CUDA-graph capture/replay of the ops that run inside the host's decode graphs.
``moe_align_block_size`` is also checked against the host's own Triton kernel of the same
contract (``moe_align_small_numel``; interpreted on CPU).
"""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from gpu_standin_loader import load_standin

sk = load_standin()
DEVICES = ["cpu", pytest.param("cuda", marks=pytest.mark.gpu)]
DTYPES = [torch.float32, torch.bfloat16]
TOL = {torch.float32: dict(atol=1e-5, rtol=1e-5), torch.bfloat16: dict(atol=1e-2, rtol=1e-2)}
# (tokens, hidden): one odd token, a width that is not a multiple of 8, the real V3.2 width
NORM_SHAPES = {"1x7": (1, 7), "3x129": (3, 129), "17x7168": (17, 7168)}


def randn(*shape, dtype=torch.float32, device="cpu", seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(*shape, generator=g).to(device=device, dtype=dtype)


def rms_reference(x: torch.Tensor, scale: torch.Tensor, eps: float) -> torch.Tensor:
    x = x.double()
    return x / torch.sqrt((x * x).mean(-1, keepdim=True) + eps) * scale.double()


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", NORM_SHAPES.values(), ids=NORM_SHAPES.keys())
@pytest.mark.parametrize("gemma", [False, True], ids=["rmsnorm", "gemma"])
def test_rmsnorm(device, dtype, shape, gemma):
    x, w = randn(*shape, dtype=dtype, device=device), randn(shape[-1], dtype=dtype, device=device, seed=1)
    op = sk.gemma_rmsnorm if gemma else sk.rmsnorm
    want = rms_reference(x, w.double() + 1 if gemma else w, 1e-6)
    got = op(x, w, 1e-6)
    out = torch.empty_like(x)
    assert op(x, w, 1e-6, out=out) is out
    for result in (got, out):
        assert result.dtype == dtype and result.shape == x.shape
        torch.testing.assert_close(result.double(), want, **TOL[dtype])


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", NORM_SHAPES.values(), ids=NORM_SHAPES.keys())
@pytest.mark.parametrize("gemma", [False, True], ids=["rmsnorm", "gemma"])
def test_fused_add_rmsnorm_in_place(device, dtype, shape, gemma):
    x, r = randn(*shape, dtype=dtype, device=device), randn(*shape, dtype=dtype, device=device, seed=2)
    w = randn(shape[-1], dtype=dtype, device=device, seed=1)
    total = x.double() + r.double()
    op = sk.gemma_fused_add_rmsnorm if gemma else sk.fused_add_rmsnorm
    assert op(x, r, w, 1e-5) is None
    torch.testing.assert_close(r.double(), total, **TOL[dtype])
    torch.testing.assert_close(x.double(), rms_reference(total, w.double() + 1 if gemma else w, 1e-5), **TOL[dtype])


GATED = {
    "silu_and_mul": F.silu,
    "gelu_and_mul": F.gelu,
    "gelu_tanh_and_mul": lambda v: F.gelu(v, approximate="tanh"),
}


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", [(1, 6), (5, 2, 258), (17, 4096)], ids=["1x6", "5x2x258", "17x4096"])
@pytest.mark.parametrize("name", GATED)
def test_gated_activation(device, dtype, shape, name):
    x = randn(*shape, dtype=dtype, device=device)
    d = shape[-1] // 2
    want = GATED[name](x[..., :d].double()) * x[..., d:].double()
    got = getattr(sk, name)(x)
    out = torch.empty(*shape[:-1], d, dtype=dtype, device=device)
    assert getattr(sk, name)(x, out) is out
    for result in (got, out):
        assert result.dtype == dtype
        torch.testing.assert_close(result.double(), want, **TOL[dtype])
    with pytest.raises(ValueError, match="even last dim"):
        getattr(sk, name)(randn(2, 5, device=device))


# ---- moe_align_block_size ------------------------------------------------------------------------

def align_reference(ids: list[int], buckets: int, block: int):
    """The op's contract on plain lists: (sorted ids up to P, expert id per used block, P, cumsum)."""
    n = len(ids)
    members = [[i for i, e in enumerate(ids) if e + 1 == b] for b in range(buckets)]
    sorted_ids, experts, cumsum = [], [], [0]
    for b, pairs in enumerate(members):
        size = -(-len(pairs) // block) * block
        sorted_ids += pairs + [n] * (size - len(pairs))
        experts += [b - 1] * (size // block)
        cumsum.append(cumsum[-1] + size)
    return sorted_ids, experts, cumsum[-1], cumsum


# (tokens, top_k, experts, block, share of EP-filtered ids)
ALIGN_CASES = {
    "decode-1x8-of-256-blk16": (1, 8, 256, 16, 0.0),
    "3x2-of-4-blk64": (3, 2, 4, 64, 0.0),
    "17x8-of-256-blk64": (17, 8, 256, 64, 0.0),
    "prefill-300x8-of-256-blk128": (300, 8, 256, 128, 0.0),
    "5x3-of-7-blk4-ep-filtered": (5, 3, 7, 4, 0.3),
}


def routed_ids(tokens, top_k, experts, filtered, dtype, device, seed=0):
    g = torch.Generator().manual_seed(seed)
    ids = torch.stack([torch.randperm(experts, generator=g)[:top_k] for _ in range(tokens)])
    ids[torch.rand(tokens, top_k, generator=g) < filtered] = -1
    return ids.to(device=device, dtype=dtype)


def align_buffers(numel, experts, block, device):
    max_padded = numel + (experts + 1) * (block - 1) if numel >= experts + 1 else numel * block
    max_padded = (max_padded + 3) // 4 * 4
    blocks = -(-max_padded // block)
    return (torch.full((max_padded,), -7, dtype=torch.int32, device=device),
            torch.full((blocks,), -9, dtype=torch.int32, device=device),
            torch.zeros(1, dtype=torch.int32, device=device),
            torch.full((experts + 2,), -5, dtype=torch.int32, device=device))


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("case", ALIGN_CASES.values(), ids=ALIGN_CASES.keys())
@pytest.mark.parametrize("id_dtype", [torch.int32, torch.int64])
@pytest.mark.parametrize("pad", [True, False], ids=["pad", "no-pad"])
def test_moe_align_block_size_matches_contract(device, case, id_dtype, pad):
    tokens, top_k, experts, block, filtered = case
    ids = routed_ids(tokens, top_k, experts, filtered, id_dtype, device)
    sorted_ids, expert_ids, total, cumsum = align_buffers(ids.numel(), experts, block, device)
    sk.moe_align_block_size(ids, experts + 1, block, sorted_ids, expert_ids, total, cumsum, pad)
    want_sorted, want_experts, want_total, want_cumsum = align_reference(ids.flatten().tolist(), experts + 1, block)
    assert total.item() == want_total
    assert cumsum.tolist() == want_cumsum
    used = sorted_ids[:want_total].tolist()
    if pad:
        assert used == want_sorted and (sorted_ids[want_total:] == ids.numel()).all()
    else:  # padding slots keep the caller's value
        assert used == [s if s != ids.numel() else -7 for s in want_sorted]
        assert (sorted_ids[want_total:] == -7).all()
    assert expert_ids[: len(want_experts)].tolist() == want_experts
    assert (expert_ids[len(want_experts):] == -1).all()


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("case", ["decode-1x8-of-256-blk16", "3x2-of-4-blk64", "5x3-of-7-blk4-ep-filtered"])
def test_moe_align_block_size_matches_host_triton_kernel(device, case):
    """Same buffers as the host's single-block Triton align (its contract twin, <= 64 pairs)."""
    from sglang.kernels.ops.moe.moe_align_small_numel import moe_align_small_numel

    tokens, top_k, experts, block, filtered = ALIGN_CASES[case]
    ids = routed_ids(tokens, top_k, experts, filtered, torch.int32, device, seed=5)
    ours, host = align_buffers(ids.numel(), experts, block, device), align_buffers(ids.numel(), experts, block, device)
    sk.moe_align_block_size(ids, experts + 1, block, *ours, True)
    moe_align_small_numel(ids, experts + 1, block, *host[:3])
    total = host[2].item()
    assert ours[2].item() == total
    torch.testing.assert_close(ours[0][:total], host[0][:total], atol=0, rtol=0)
    torch.testing.assert_close(ours[1][: total // block], host[1][: total // block], atol=0, rtol=0)


def test_moe_align_block_size_refuses_ignore_invalid_expert():
    ids = routed_ids(2, 2, 4, 0.0, torch.int32, "cpu")
    with pytest.raises(NotImplementedError, match="ignore_invalid_expert"):
        sk.moe_align_block_size(ids, 5, 4, *align_buffers(4, 4, 4, "cpu"), True, True)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", [(1, 8, 7168), (33, 8, 129), (3, 1, 64)], ids=["1x8x7168", "33x8x129", "3x1x64"])
def test_moe_sum_reduce_and_moe_sum(device, dtype, shape):
    x = randn(*shape, dtype=dtype, device=device)
    out, plain = (torch.empty(shape[0], shape[2], dtype=dtype, device=device) for _ in range(2))
    sk.moe_sum_reduce(x, out, 2.5)
    sk.moe_sum(x, plain)
    torch.testing.assert_close(out.double(), x.double().sum(1) * 2.5, **TOL[dtype])
    torch.testing.assert_close(plain.double(), x.double().sum(1), **TOL[dtype])


# ---- sampling renormalisation ---------------------------------------------------------------------

def renorm_reference(row: list[float], keep: int) -> list[float]:
    """Keep every value >= the ``keep``-th largest, rescale to sum 1."""
    threshold = sorted(row, reverse=True)[keep - 1]
    kept = [p if p >= threshold else 0.0 for p in row]
    return [p / sum(kept) for p in kept]


def probs_with_ties(device):
    probs = torch.softmax(randn(4, 11, seed=3) * 2, -1).double()
    probs[1, 3] = probs[1, 5] = probs[1].max()  # a tie at the top
    return (probs / probs.sum(-1, keepdim=True)).to(device)


@pytest.mark.parametrize("device", DEVICES)
def test_top_k_renorm_prob(device):
    probs = probs_with_ties(device)
    top_k = torch.tensor([1, 2, 11, 40], device=device)  # 40 > vocab: keep all
    got = sk.top_k_renorm_prob(probs, top_k)
    want = [renorm_reference(row, min(k, 11)) for row, k in zip(probs.tolist(), top_k.tolist())]
    torch.testing.assert_close(got.cpu(), torch.tensor(want, dtype=got.dtype))
    torch.testing.assert_close(sk.top_k_renorm_prob(probs, 3).cpu(),
                               torch.tensor([renorm_reference(r, 3) for r in probs.tolist()], dtype=got.dtype))


@pytest.mark.parametrize("device", DEVICES)
def test_top_p_renorm_prob(device):
    probs = probs_with_ties(device)
    top_p = torch.tensor([0.0, 0.5, 0.9, 1.0], device=device, dtype=probs.dtype)
    got = sk.top_p_renorm_prob(probs, top_p)
    want = []
    for row, p in zip(probs.tolist(), top_p.tolist()):
        ordered, mass, keep = sorted(row, reverse=True), 0.0, 0
        while keep < len(ordered) and (keep == 0 or mass < p):  # fewest largest reaching p, at least one
            mass += ordered[keep]
            keep += 1
        want.append(renorm_reference(row, keep))
    torch.testing.assert_close(got.cpu(), torch.tensor(want, dtype=got.dtype))


# ---- FP8 GEMM, weak references, import-only names --------------------------------------------------

@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("per_row", [True, False], ids=["per-row-col", "per-tensor"])
def test_fp8_scaled_mm(device, per_row):
    m, k, n = 5, 96, 48
    a = (randn(m, k, device=device) * 4).to(torch.float8_e4m3fn)
    b = (randn(n, k, device=device, seed=1) * 4).to(torch.float8_e4m3fn).t()  # column-major [K, N]
    sa = randn(m, 1, device=device, seed=2).abs() if per_row else torch.tensor([0.5], device=device)
    sb = randn(n, 1, device=device, seed=3).abs() if per_row else torch.tensor([0.25], device=device)
    bias = randn(n, device=device, seed=4)
    got = sk.fp8_scaled_mm(a, b, sa, sb, torch.bfloat16, bias)
    want = (a.double() * sa.double().reshape(-1, 1)) @ (b.double() * sb.double().reshape(1, -1)) + bias.double()
    assert got.dtype == torch.bfloat16 and got.shape == (m, n)
    torch.testing.assert_close(got.double(), want, atol=0.05, rtol=1e-2)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float8_e4m3fn, torch.float32, torch.int64, torch.bool])
def test_weak_ref_tensor_aliases_without_owning(device, dtype):
    base = randn(6, 10, device=device).to(dtype)
    view = base[1:5, 2:9]  # offset and strides, not contiguous
    weak = sk.weak_ref_tensor(view)
    assert (weak.dtype, weak.shape, weak.stride(), weak.data_ptr()) == (view.dtype, view.shape, view.stride(), view.data_ptr())
    assert torch.equal(weak.float(), view.float())
    base[2, 3] = 0 if dtype == torch.bool else 1  # writes through the original are seen by the view
    assert weak[1, 1].item() == base[2, 3].item()
    handle = base.untyped_storage()._weak_ref()
    try:
        strong = view.view_as(view)
        del base, view
        assert not torch.UntypedStorage._expired(handle)  # a plain view keeps the storage alive ...
        del strong
        assert torch.UntypedStorage._expired(handle)  # ... the weak reference does not
    finally:
        torch.UntypedStorage._free_weak_ref(handle)
    assert sk.weak_ref_tensor(torch.empty(0, 3, device=device)).shape == (0, 3)


def test_import_only_names_raise_naming_themselves():
    from importlib import import_module

    for module, name in [("", "int8_scaled_mm"), (".flash_attn", "flash_attn_varlen_func"),
                         (".kvcacheio", "transfer_kv_per_layer_mla"), (".quantization", "ggml_dequantize")]:
        fn = getattr(import_module(sk.__name__ + module), name)
        with pytest.raises(NotImplementedError, match=rf"sgl_kernel\..*{name} is only a name"):
            fn()
    assert import_module(sk.__name__ + ".flash_attn").is_fa3_supported(torch.device("cpu")) is False
    with pytest.raises(AttributeError):
        sk.fused_experts  # absent: the host's fallbacks apply


def test_scalar_types():
    from importlib import import_module

    t = import_module(sk.__name__ + ".scalar_type").scalar_types
    assert (t.float8_e4m3fn.max(), t.float8_e5m2.max(), t.float4_e2m1f.max(), t.float6_e3m2f.max()) == (448.0, 57344.0, 6.0, 28.0)
    assert (t.uint4b8.min(), t.uint4b8.max(), t.int8.min(), t.int8.max(), t.uint8b128.max()) == (-8, 7, -128, 127, 127)
    assert [x.size_bits for x in (t.uint4b8, t.int4, t.float8_e4m3fn, t.bfloat16)] == [4, 4, 8, 16]
    assert (str(t.uint4b8), str(t.float8_e4m3fn), str(t.float16)) == ("uint4b8", "float8_e4m3fn", "float16_e5m10")
    assert len({x.id for x in (t.uint4, t.uint4b8, t.int4, t.float4_e2m1f)}) == 4
    assert t.uint4b8.is_integer() and t.uint4b8.has_bias() and not t.float8_e4m3fn.has_infs()


def test_calls_are_recorded(tmp_path, monkeypatch):
    calls = __import__(sk.__name__ + "._calls", fromlist=["_calls"])
    monkeypatch.setattr(calls, "_seen", set())
    monkeypatch.setenv("DSV32_SGL_KERNEL_LOG", str(tmp_path))
    sk.rmsnorm(torch.ones(1, 4), torch.ones(4))
    sk.rmsnorm(torch.ones(1, 4), torch.ones(4))
    with pytest.raises(NotImplementedError):
        sk.int8_scaled_mm()
    with pytest.raises(AttributeError):
        sk.no_such_op
    (log,) = tmp_path.iterdir()
    assert log.read_text().splitlines() == ["called rmsnorm", "unsupported int8_scaled_mm", "missing no_such_op"]


# ---- CUDA graphs ---------------------------------------------------------------------------------

@pytest.mark.gpu
def test_ops_replay_in_a_cuda_graph():
    """The ops the host runs inside its decode graphs capture without host syncs and replay on new data."""
    hidden, tokens, experts, top_k, block = 7168, 40, 256, 8, 64
    x, r, w = (randn(tokens, hidden, dtype=torch.bfloat16, device="cuda", seed=s) for s in (1, 2, 3))
    ids = routed_ids(tokens, top_k, experts, 0.0, torch.int32, "cuda")
    partial = randn(tokens, top_k, 64, dtype=torch.bfloat16, device="cuda")
    buffers = align_buffers(ids.numel(), experts, block, "cuda")
    summed = torch.empty(tokens, 64, dtype=torch.bfloat16, device="cuda")

    def step():
        normed = sk.rmsnorm(x, w)
        sk.fused_add_rmsnorm(x, r, w)
        sk.moe_align_block_size(ids, experts + 1, block, *buffers, True)
        sk.moe_sum_reduce(partial, summed, 2.5)
        return normed, sk.silu_and_mul(x)

    torch.cuda.synchronize()
    stream = torch.cuda.Stream()
    with torch.cuda.stream(stream):
        step()  # warm-up outside the graph
    torch.cuda.current_stream().wait_stream(stream)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        outputs = step()
    for seed in (7, 8):
        fresh = [randn(tokens, hidden, dtype=torch.bfloat16, device="cuda", seed=seed + s) for s in (10, 20)]
        new_ids = routed_ids(tokens, top_k, experts, 0.0, torch.int32, "cuda", seed=seed)
        for dst, src in zip((x, r, ids), (*fresh, new_ids)):
            dst.copy_(src)
        graph.replay()
        torch.cuda.synchronize()
        total = align_reference(new_ids.flatten().tolist(), experts + 1, block)[2]
        assert buffers[2].item() == total
        torch.testing.assert_close(outputs[0].double(), rms_reference(fresh[0], w, 1e-6), **TOL[torch.bfloat16])
        assert math.isfinite(outputs[1].float().sum().item())
