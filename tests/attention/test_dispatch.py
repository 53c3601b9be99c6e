"""The DSA kernel dispatch table: defaults, refusals, the kernels each choice names, adapter index handling."""

import importlib
import importlib.machinery
import importlib.util
import sys

import pytest
import torch

from dsv32_plugin.attention import dispatch
from dsv32_plugin.attention.dispatch import BACKENDS, select_kernels
from dsv32_plugin.cli.deployments import HARDWARE, attention_flags

CPU = torch.device("cpu")
CUDA = torch.device("cuda")
EXPORTS = {
    "dsv32_plugin.kernels": importlib.import_module("dsv32_plugin.kernels")._EXPORTS,
    "dsv32_plugin.kernels.reference": importlib.import_module("dsv32_plugin.kernels.reference")._EXPORTS,
}


def all_refs():
    for name, backend in BACKENDS.items():
        if backend.prefill is not None:
            yield pytest.param(backend.prefill, id=f"{name}-prefill")
        for fmt, ref in backend.decode.items():
            yield pytest.param(ref, id=f"{name}-decode-{fmt}")
        for kernel in ("indexer_topk_prefill", "indexer_topk_decode"):
            yield pytest.param(dispatch.KernelRef(backend.indexer_module, kernel), id=f"{name}-{kernel}")


@pytest.mark.parametrize("ref", list(all_refs()))
def test_every_named_kernel_is_a_public_export_or_an_adapter_function(ref):
    if ref.module in EXPORTS:  # kernels may land later than the table: check the export list
        assert ref.name in EXPORTS[ref.module]
    else:
        assert callable(getattr(importlib.import_module(ref.module), ref.name))


def test_cpu_default_is_the_reference_core():
    from dsv32_plugin.kernels import reference

    kernels = select_kernels(None, None, device=CPU, kv_cache_dtype="auto")
    assert (kernels.prefill_name, kernels.decode_name) == ("torch", "torch")
    assert kernels.sparse_prefill.resolve() is reference.sparse_mla_prefill
    assert kernels.sparse_decode.resolve() is reference.sparse_mla_decode
    assert kernels.indexer_prefill.resolve() is reference.indexer_topk_prefill
    assert kernels.indexer_decode.resolve() is reference.indexer_topk_decode


def test_kernel_ref_calls_through():
    # q . kv with one valid index per row: the output row is that kv row's V part.
    q = torch.zeros(2, 1, 4)
    kv = torch.arange(12.0).reshape(3, 4)
    indices = torch.tensor([[2, -1], [0, -1]], dtype=torch.int32)
    kernels = select_kernels("torch", "torch", device=CPU, kv_cache_dtype="bf16")
    out, lse = kernels.sparse_prefill(q, kv, indices, 1.0, 2, None)
    assert torch.equal(out[:, 0], kv[[2, 0], :2])
    assert torch.equal(lse, torch.zeros(2, 1))


def test_triton_under_the_interpreter_uses_our_triton_modules(monkeypatch):
    monkeypatch.setenv("TRITON_INTERPRET", "1")
    kernels = select_kernels("triton_sparse_mla", "triton", device=CPU, kv_cache_dtype="fp8_e4m3")
    assert (kernels.prefill_name, kernels.decode_name) == ("triton_sparse_mla", "triton")
    for ref in (kernels.sparse_prefill, kernels.sparse_decode, kernels.indexer_prefill, kernels.indexer_decode):
        assert ref.module == "dsv32_plugin.kernels"
    assert dispatch.usable_backends("decode", device=CPU, kv_cache_dtype="bf16") == ["torch", "triton"]


@pytest.mark.parametrize(
    "prefill, decode, kv_dtype, message",
    [
        pytest.param("fa3", None, "bf16", "fa3 has no prefill kernel", id="fa3-prefill"),
        pytest.param(None, "triton", "bf16", "Triton kernels need a CUDA device", id="triton-on-cpu"),
        pytest.param(
            None, "flashmla_kv", "bf16", r"flashmla_kv decode cannot read a unquantized KV cache \(needs fp8\)",
            id="fp8-only-on-bf16",
        ),
        pytest.param(
            None, "fa3", "fp8_e4m3", r"fa3 decode cannot read a fp8 KV cache \(needs unquantized\)",
            id="bf16-only-on-fp8",
        ),
        pytest.param("flashmla_sparse", None, "bf16", "FlashMLA needs a CUDA device", id="flashmla-on-cpu"),
        pytest.param("trtllm", None, "bf16", "'trtllm' is not a DSA backend", id="host-only-name"),
        pytest.param(None, "nonsense", "auto", "'nonsense' is not a DSA backend", id="unknown"),
    ],
)
def test_refusals_name_the_choices_that_work_here(prefill, decode, kv_dtype, message, monkeypatch):
    monkeypatch.delenv("TRITON_INTERPRET", raising=False)
    with pytest.raises(ValueError, match=message) as error:
        select_kernels(prefill, decode, device=CPU, kv_cache_dtype=kv_dtype)
    phase = "prefill" if prefill else "decode"
    assert str(error.value).startswith(f"dsv32-plugin: --dsa-{phase}-backend ")
    assert str(error.value).endswith(f"({'cpu'}, {kv_dtype} KV cache) for {phase}: torch")


def test_unsupported_kv_cache_dtype_is_refused():
    with pytest.raises(ValueError, match="fp8_e5m2.*auto, bf16, bfloat16, fp8_e4m3"):
        select_kernels(None, None, device=CPU, kv_cache_dtype="fp8_e5m2")


@pytest.fixture
def fake_sm90_with_flashmla(monkeypatch):
    """A CUDA sm90 device with flash_mla installed, as far as the dispatch table can tell."""
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda device=None: (9, 0))
    real_find_spec = importlib.util.find_spec

    def find_spec(name, *args):
        if name == "flash_mla":
            return importlib.machinery.ModuleSpec("flash_mla", None)
        return real_find_spec(name, *args)

    monkeypatch.setattr(dispatch.importlib.util, "find_spec", find_spec)


def test_sm90_defaults_to_flashmla_where_installed_else_triton(fake_sm90_with_flashmla, monkeypatch):
    for phase in ("prefill", "decode"):
        for kv in ("bf16", "fp8_e4m3"):
            assert dispatch.default_backend(phase, device=CUDA, kv_cache_dtype=kv) == "flashmla_auto"
    monkeypatch.setattr(dispatch.importlib.util, "find_spec", lambda name, *args: None)
    for phase in ("prefill", "decode"):
        assert dispatch.default_backend(phase, device=CUDA, kv_cache_dtype="bf16") == "triton"


def test_cuda_defaults_follow_the_preference_table(fake_sm90_with_flashmla, monkeypatch):
    prefs = {9: (("flashmla_auto", "triton"), ("flashmla_kv", "triton"))}
    monkeypatch.setattr(dispatch, "CUDA_DEFAULT_PREFERENCES", prefs)
    assert dispatch.default_backend("prefill", device=CUDA, kv_cache_dtype="bf16") == "flashmla_auto"
    # flashmla_kv cannot read a bf16 cache, so the next preference wins.
    assert dispatch.default_backend("decode", device=CUDA, kv_cache_dtype="bf16") == "triton"
    assert dispatch.default_backend("decode", device=CUDA, kv_cache_dtype="fp8_e4m3") == "flashmla_kv"


def test_flashmla_auto_picks_the_decode_kernel_by_cache_format(fake_sm90_with_flashmla):
    fp8 = select_kernels("flashmla_auto", "flashmla_auto", device=CUDA, kv_cache_dtype="fp8_e4m3")
    bf16 = select_kernels("flashmla_auto", "flashmla_auto", device=CUDA, kv_cache_dtype="bfloat16")
    assert fp8.sparse_decode.name == "sparse_mla_decode"
    assert bf16.sparse_decode.name == "sparse_mla_decode_bf16_cache"
    assert fp8.sparse_prefill == bf16.sparse_prefill == dispatch.KernelRef(dispatch._FLASHMLA, "sparse_mla_prefill")
    assert fp8.indexer_decode.module == "dsv32_plugin.kernels"  # FlashMLA ships no indexer


def test_usable_backends_on_a_cuda_device(fake_sm90_with_flashmla):
    usable = dispatch.usable_backends("decode", device=CUDA, kv_cache_dtype="fp8_e4m3")
    assert usable == ["torch", "triton", "flashmla_kv", "flashmla_auto"]  # fa3, flashmla_sparse: bf16 cache only


def test_flashmla_refused_on_ampere(fake_sm90_with_flashmla, monkeypatch):
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda device=None: (8, 6))
    with pytest.raises(ValueError, match="need sm90 or sm100, not sm8x.*for prefill: torch, triton"):
        select_kernels("flashmla_sparse", None, device=CUDA, kv_cache_dtype="bf16")


# -- adapter index handling (pure torch: runs on the CPU) --------------------


@pytest.mark.parametrize(
    "topk_length",
    [
        pytest.param(None, id="no-topk_length"),
        pytest.param(torch.tensor([5, 2, 0], dtype=torch.int32), id="topk_length"),
    ],
)
def test_flashmla_indices_keep_only_readable_rows(topk_length):
    from dsv32_plugin.kernels.sparse_mla.flashmla import _readable_indices

    indices = torch.tensor([[3, -1, 9, 0, -7], [10, 2, 2, 4, 1], [1, 2, 3, 4, 5]], dtype=torch.int32)
    got = _readable_indices(indices, rows=10, topk_length=topk_length)
    assert got.dtype == torch.int32 and got.shape == (3, 64)
    assert (got[:, 5:] == -1).all()
    for r in range(3):
        for j in range(5):
            keep = 0 <= indices[r, j] < 10 and (topk_length is None or j < topk_length[r])
            assert got[r, j] == (indices[r, j] if keep else -1)


def test_flashmla_empty_rows_get_minus_inf_lse():
    from dsv32_plugin.kernels.sparse_mla.flashmla import _empty_rows_minus_inf

    lse = torch.tensor([[1.5, float("inf")], [float("-inf"), -2.0]])
    assert torch.equal(_empty_rows_minus_inf(lse), torch.tensor([[1.5, float("-inf")], [float("-inf"), -2.0]]))


def test_fa3_page_table_lists_readable_slots_first():
    from dsv32_plugin.kernels.sparse_mla.fa3 import _compact_slots

    indices = torch.tensor([[-1, 7, -1, 3, 12], [-1, -1, -1, -1, -1], [4, 5, 6, 1, 2]], dtype=torch.int32)
    topk_length = torch.tensor([5, 5, 3], dtype=torch.int32)
    page_table, counts = _compact_slots(indices, num_slots=10, topk_length=topk_length)
    assert counts.tolist() == [2, 0, 3]
    assert page_table.tolist() == [[7, 3, 0, 0, 0], [0, 0, 0, 0, 0], [4, 5, 6, 0, 0]]
    assert page_table.dtype == counts.dtype == torch.int32


def _fake_sgl_kernel(monkeypatch, flash_attn):
    """``sgl_kernel`` with ``flash_attn`` = the given module (None: import fails)."""
    import types

    monkeypatch.setitem(sys.modules, "sgl_kernel", types.ModuleType("sgl_kernel"))
    monkeypatch.setitem(sys.modules, "sgl_kernel.flash_attn", flash_attn)


def _raising_flash_attn():
    import types

    module = types.ModuleType("sgl_kernel.flash_attn")

    def is_fa3_supported(device=None):
        raise RuntimeError("stand-in: not implemented on this device")

    module.is_fa3_supported = is_fa3_supported
    return module


@pytest.mark.parametrize(
    "flash_attn, reason",
    [
        pytest.param(None, "FA3 is not importable", id="missing"),
        pytest.param(_raising_flash_attn(), r"FA3 check failed \(RuntimeError\('stand-in", id="check-raises"),
    ],
)
def test_a_missing_or_broken_sgl_kernel_means_no_fa3(flash_attn, reason, monkeypatch):
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda device=None: (9, 0))
    monkeypatch.setattr(dispatch.importlib.util, "find_spec", lambda name, *args: None)  # no FlashMLA either
    _fake_sgl_kernel(monkeypatch, flash_attn)
    assert dispatch.usable_backends("decode", device=CUDA, kv_cache_dtype="bf16") == ["torch", "triton"]
    assert dispatch.default_backend("decode", device=CUDA, kv_cache_dtype="bf16") == "triton"
    with pytest.raises(ValueError, match=reason):
        select_kernels(None, "fa3", device=CUDA, kv_cache_dtype="bf16")


def test_cache_ops_slot_map_q_quantiser_and_metadata_follow_the_device_the_exact_cache_the_reference():
    from dsv32_plugin import kernels as triton_kernels
    from dsv32_plugin.kernels import reference

    cpu = dispatch.select_cache_ops(CPU, index_exact=False)
    cuda = dispatch.select_cache_ops(CUDA, index_exact=False)
    cuda_exact = dispatch.select_cache_ops(CUDA, index_exact=True)
    assert cpu.store_mla_kv is reference.store_mla_kv and cpu.store_index_k is reference.store_index_k
    assert cuda.store_mla_kv is triton_kernels.store_mla_kv
    assert cuda.dequantize_kv_fp8 is triton_kernels.dequantize_kv_fp8
    assert cuda.store_index_k is triton_kernels.store_index_k and cuda_exact.store_index_k is reference.store_index_k
    assert cpu.gather_index_k is cuda.gather_index_k is reference.gather_index_k  # no Triton twin
    on_cuda = select_kernels("triton", "triton", device=CUDA, kv_cache_dtype="bf16")
    for name in ("positions_to_slots", "quantize_index_q", "fill_paged_metadata"):
        assert getattr(on_cuda, name).module == "dsv32_plugin.kernels", name
    on_cpu = select_kernels(None, None, device=CPU, kv_cache_dtype="auto").resolved()
    assert on_cpu.quantize_index_q is reference.quantize_index_q
    assert on_cpu.fill_paged_metadata is reference.fill_paged_metadata
    exact = select_kernels("triton", "triton", device=CUDA, kv_cache_dtype="auto", index_exact=True)
    assert exact.indexer_prefill.module == exact.indexer_decode.module == "dsv32_plugin.kernels.reference"
    assert exact.sparse_decode.module == "dsv32_plugin.kernels"
    assert select_kernels(None, None, device=CPU, kv_cache_dtype="auto").resolved().positions_to_slots is (
        reference.topk_positions_to_slots
    )


def test_flashmla_is_never_the_default_for_other_head_dims_and_is_refused_by_name(monkeypatch):
    """FlashMLA's kernels take DeepSeek-V3.2's (576, 512) only: a smaller MLA gets Triton by default."""
    import dataclasses

    runnable = {name: dataclasses.replace(backend, cannot_run=lambda device: None)
                for name, backend in dispatch.BACKENDS.items()}
    monkeypatch.setattr(dispatch, "BACKENDS", runnable)
    monkeypatch.setattr(dispatch, "_sm_major", lambda device: 9)
    cuda = torch.device("cuda")
    assert dispatch.default_backend("decode", device=cuda, kv_cache_dtype="bf16", head_dims=(576, 512)) == "flashmla_auto"
    assert dispatch.default_backend("decode", device=cuda, kv_cache_dtype="bf16", head_dims=(160, 128)) == "triton"
    with pytest.raises(ValueError, match=r"flashmla_kv runs \(D, d_v\) = \(576, 512\) only"):
        dispatch.select_kernels(None, "flashmla_kv", device=cuda, kv_cache_dtype="fp8_e4m3", head_dims=(160, 128))


def test_defaults_are_backends_that_served_on_a_gpu():
    """No unrun default: every default preference has served DeepSeek-V3.2 on a GPU (fa3 has not)."""
    for prefill, decode in [*dispatch.CUDA_DEFAULT_PREFERENCES.values(), dispatch._CUDA_FALLBACK_PREFERENCES]:
        assert set(prefill) | set(decode) <= dispatch.SERVED_ON_GPU
    assert "fa3" not in dispatch.SERVED_ON_GPU


@pytest.mark.parametrize("hardware", [name for name, h in HARDWARE.items() if h.nvidia])
def test_launch_command_prints_the_servers_own_defaults(hardware, monkeypatch):
    """launch-command's kernels are what the server picks with no flag on that GPU (FlashMLA installed)."""
    gpu = HARDWARE[hardware]
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda device=None: gpu.capability)
    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(dispatch.importlib.util, "find_spec",
                        lambda name, *a: importlib.machinery.ModuleSpec(name, None) if name == "flash_mla"
                        else real_find_spec(name, *a))
    flags = dict(zip(*[iter(attention_flags(gpu))] * 2))
    for phase in ("prefill", "decode"):
        chosen = dispatch.default_backend(phase, device=CUDA, kv_cache_dtype=flags["--kv-cache-dtype"],
                                          head_dims=dispatch.FLASHMLA_HEAD_DIMS)
        assert flags[f"--dsa-{phase}-backend"] == chosen, (hardware, phase)
        assert chosen in dispatch.SERVED_ON_GPU
