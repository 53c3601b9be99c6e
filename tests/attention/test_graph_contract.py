"""sglang's CUDA-graph contract on the CPU: static buffers give the eager results, and the captured part never
reads a tensor on the host.

A runner calls ``init_cuda_graph_state(max_bs, max_bs * rows)`` once, then for
each replay ``init_forward_metadata_out_graph`` on a view (size only), and
inside the graph ``init_forward_metadata_in_graph`` and the layers. Here the
same calls run eagerly (``graph_harness``): batches of 3 requests padded to a
captured size of 4 with the fill value, dense (at most top-k keys) and sparse
requests mixed, two different batches through one set of buffers, compared
with ``init_forward_metadata`` (the eager path) on the same pool.
"""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch
from graph_harness import Dims, Scene, StaticInputs, pad_rows, replay_view, run_layer
from sglang.srt.model_executor.forward_batch_info import ForwardMode
from torch.utils._python_dispatch import TorchDispatchMode

from dsv32_plugin.attention.dispatch import select_cache_ops, select_kernels
from dsv32_plugin.attention.draft_backend import DSAMultiStepDraftBackend
from dsv32_plugin.kernels.interpreter import interpreting

DIMS = Dims()
PREFIX = [10, 40, 150, 7, 90]  # with TOPK 16: requests 0 and 3 dense, the rest sparse
CAPTURED_BS = 4
ROWS = {"decode": 1, "verify": 3, "draft_extend": 3}
KV = {"float32": torch.float32, "bf16": torch.bfloat16, "fp8": torch.float8_e4m3fn}


def as_sets(topk: torch.Tensor) -> list[set]:
    return [set(row.tolist()) - {-1} for row in topk]


def graph_backend(scene, monkeypatch, rows: int, kernels="torch"):
    backend = scene.backend(monkeypatch, kernels)
    backend.init_cuda_graph_state(CAPTURED_BS * 2, CAPTURED_BS * 2 * rows)
    return backend


def graph_step(backend, static, batch, x):
    """One replay: out_graph on the runner's view, then (captured) in_graph metadata and the layer."""
    fb = static.load(batch, CAPTURED_BS)
    backend.init_forward_metadata_out_graph(replay_view(fb))
    backend.init_forward_metadata_in_graph(fb)
    return run_layer(backend, fb, pad_rows(x, fb.positions.shape[0]))


@pytest.mark.parametrize("mode", list(ROWS))
@pytest.mark.parametrize("kv", ["bf16", "fp8"])
def test_replay_from_static_buffers_equals_eager(mode, kv, monkeypatch):
    scene = Scene(DIMS, PREFIX, KV[kv])
    rows = ROWS[mode]
    eager, graphed = scene.backend(monkeypatch, "torch"), graph_backend(scene, monkeypatch, rows)
    static = StaticInputs(CAPTURED_BS * 2, rows, "cpu", graphed.get_cuda_graph_seq_len_fill_value())
    pointers = None
    for reqs in ([0, 2, 4], [3, 1, 2]):
        batch = scene.batch(mode, reqs, rows)
        x = scene.layer_inputs(batch.positions.shape[0], torch.float32)
        eager.init_forward_metadata(batch)
        want_topk, want = run_layer(eager, batch, x)
        topk, out = graph_step(graphed, static, batch, x)
        md = graphed.forward_metadata
        now = (md.page_table.data_ptr(), md.req_kv_len.data_ptr())
        assert pointers in (None, now), "a replay must reuse the buffers the graph captured"
        pointers = now
        real = batch.positions.shape[0]
        assert as_sets(topk[:real]) == as_sets(want_topk)
        assert {len(s) == DIMS.topk for s in as_sets(want_topk)} == {True, False}  # sparse and dense rows
        torch.testing.assert_close(out[:real], want, rtol=1e-5, atol=1e-5)
        assert torch.isfinite(out).all()  # padded requests read slot 0 and give finite rows


def test_multi_step_draft_replay_equals_eager(monkeypatch):
    """Three draft steps (two per-step backends): one page table shared, lengths + step, positions advanced."""
    scene = Scene(DIMS, PREFIX, torch.bfloat16)
    runner = scene.runner(monkeypatch, "torch")
    eager, graphed = DSAMultiStepDraftBackend(runner, 3), DSAMultiStepDraftBackend(runner, 3)
    graphed.init_cuda_graph_state(CAPTURED_BS * 2, CAPTURED_BS * 2)
    assert graphed.attn_backends[1].graph.page_table is graphed.attn_backends[0].graph.page_table
    static = StaticInputs(CAPTURED_BS * 2, 1, "cpu", graphed.get_cuda_graph_seq_len_fill_value())
    reqs = [2, 0, 4]
    round_batch = scene.batch("decode", reqs, 1)
    eager.init_forward_metadata(round_batch)
    fb = static.load(round_batch, CAPTURED_BS)
    graphed.init_forward_metadata_out_graph(replay_view(fb))
    graphed.init_forward_metadata_in_graph(fb)
    for step in range(2):
        batch = scene.batch("decode", reqs, 1, step=step)
        x = scene.layer_inputs(len(reqs), torch.float32)
        want_topk, want = run_layer(eager.attn_backends[step], batch, x)
        fb.out_cache_loc[: len(reqs)].copy_(batch.out_cache_loc)
        topk, out = run_layer(graphed.attn_backends[step], fb, pad_rows(x, CAPTURED_BS))
        assert as_sets(topk[: len(reqs)]) == as_sets(want_topk)
        assert [len(s) for s in as_sets(want_topk)] == [min(scene.prefix[r] + step + 1, DIMS.topk) for r in reqs]
        torch.testing.assert_close(out[: len(reqs)], want, rtol=1e-5, atol=1e-5)
        fb.positions.add_(1)  # what draft_forward does between steps; the metadata was made before


class HostReads(TorchDispatchMode):
    """Records ops that read tensor values on the host or size outputs by data (illegal in a CUDA graph)."""

    NAMES = ("_local_scalar_dense", "nonzero", "masked_select", "unique", "is_nonzero", "item")

    def __init__(self):
        super().__init__()
        self.found: list[str] = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        name = func.__name__
        tensors = [a for a in (*args, *kwargs.values()) if isinstance(a, (list, tuple))]
        bool_index = any(isinstance(t, torch.Tensor) and t.dtype == torch.bool for seq in tensors for t in seq)
        if any(n in name for n in self.NAMES) or (name.startswith(("index.", "index_put")) and bool_index) or (
            name.startswith("repeat_interleave") and kwargs.get("output_size") is None
        ):
            self.found.append(name)
        return func(*args, **kwargs)


@pytest.mark.skipif(not interpreting(), reason="runs the Triton kernels in the CPU interpreter; on a GPU "
                    "test_graph_capture_gpu.py captures them")
@pytest.mark.parametrize("mode", ["decode", "verify"])
def test_captured_calls_never_read_tensors_on_the_host(mode, monkeypatch):
    """in_graph metadata + one layer with the kernels CUDA runs (Triton, interpreted; Triton cache writers)."""
    scene = Scene(DIMS, PREFIX, torch.float8_e4m3fn)
    rows = ROWS[mode]
    backend = graph_backend(scene, monkeypatch, rows, kernels="triton")
    cuda = torch.device("cuda")  # what dispatch picks there: Triton kernels and cache writers (interpreted here)
    backend.kernels = select_kernels("triton", "triton", device=cuda, kv_cache_dtype="fp8_e4m3").resolved()
    scene.pool.cache_ops = select_cache_ops(cuda, index_exact=False)
    static = StaticInputs(CAPTURED_BS, rows, "cpu", 1)
    batch = scene.batch(mode, [1, 2, 3], rows)
    x = scene.layer_inputs(batch.positions.shape[0], torch.bfloat16)
    fb = static.load(batch, CAPTURED_BS)
    backend.init_forward_metadata_out_graph(replay_view(fb))
    monkeypatch.setattr(torch.Tensor, "tolist", lambda self: pytest.fail("tolist() in the captured part"))
    with HostReads() as reads:
        backend.init_forward_metadata_in_graph(fb)
        topk, out = run_layer(backend, fb, pad_rows(x, fb.positions.shape[0]))
    assert reads.found == []
    assert topk.shape == (CAPTURED_BS * rows, DIMS.topk) and torch.isfinite(out.float()).all()


def test_detector_sees_host_reads(monkeypatch):
    """The check above can fail: it catches the eager metadata (sized by the longest request) and the usual ops."""
    scene = Scene(DIMS, PREFIX, torch.bfloat16)
    backend = scene.backend(monkeypatch, "torch")
    with HostReads() as reads:
        backend.init_forward_metadata(scene.batch("decode", [0, 1], 1))
    assert reads.found == ["_local_scalar_dense.default"]
    with HostReads() as reads:
        t = torch.arange(5)
        int(t[1]), t[t > 2], torch.repeat_interleave(t, t)
    assert reads.found == ["_local_scalar_dense.default", "index.Tensor", "repeat_interleave.Tensor"]


def test_exact_float32_indexer_refuses_graphs_with_the_way_out(monkeypatch):
    backend = Scene(DIMS, PREFIX[:1], torch.float32).backend(monkeypatch, "torch")
    with pytest.raises(RuntimeError, match="--disable-decode-cuda-graph"):
        backend.init_cuda_graph_state(4, 4)


def test_dp_padded_extend_rows_attend_nothing(monkeypatch):
    """An extend batch padded past its tokens (DP attention): real rows as unpadded, padded rows empty."""
    scene = Scene(DIMS, PREFIX, torch.bfloat16)
    backend = scene.backend(monkeypatch, "torch")
    batch = scene.batch("draft_extend", [1, 2], 3)
    batch.forward_mode = ForwardMode.EXTEND
    x = scene.layer_inputs(6, torch.float32)
    backend.init_forward_metadata(batch)
    want_topk, want = run_layer(backend, batch, x)
    zeros = torch.zeros(2, dtype=torch.int64)
    padded = SimpleNamespace(**{**vars(batch), "positions": torch.cat([batch.positions, zeros]),
                                "out_cache_loc": torch.cat([batch.out_cache_loc, zeros])})
    backend.init_forward_metadata(padded)
    topk, out = run_layer(backend, padded, pad_rows(x, 8))
    assert as_sets(topk[:6]) == as_sets(want_topk) and (topk[6:] == -1).all()
    torch.testing.assert_close(out[:6], want, rtol=1e-5, atol=1e-5)
    assert (out[6:] == 0).all()


def test_idle_rank_padding_rows_select_nothing(monkeypatch):
    """DP attention: an idle rank runs padding tokens with no requests; the indexer returns -1 rows."""
    scene = Scene(DIMS, PREFIX, torch.bfloat16)
    backend = scene.backend(monkeypatch, "torch")
    idle = SimpleNamespace(forward_mode=ForwardMode.IDLE, batch_size=0, positions=torch.zeros(4, dtype=torch.int64),
                           out_cache_loc=torch.zeros(4, dtype=torch.int64))
    backend.init_forward_metadata(idle)
    x = scene.layer_inputs(4, torch.float32)
    topk = backend.select_topk(0, idle, x["iq"], x["ik"], x["w"])
    assert topk.shape == (4, DIMS.topk) and (topk == -1).all()

