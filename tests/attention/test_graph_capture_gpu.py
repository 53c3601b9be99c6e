"""The DSA backend's per-layer calls captured in a real ``torch.cuda.CUDAGraph`` replay what eager gives.

V3.2 attention shapes at TP 8 (16 local heads, kv_lora_rank 512, rope 64, 64
indexer heads x 128, top-k 2048) over requests of 100 to 6000 cached tokens
(dense and sparse rows). Per case: one graph is captured for a padded batch
size the way sglang's runners do (out_graph metadata, then in_graph metadata
and the layer inside ``torch.cuda.graph``), then replayed for two different
batches loaded into the static inputs; top-k sets and outputs must equal the
eager path (``init_forward_metadata``) on the same pool. The warm-up run of
the captured part runs under ``torch.cuda.set_sync_debug_mode("error")``.
"""

from __future__ import annotations

import pytest
import torch
from graph_harness import Dims, Scene, StaticInputs, pad_rows, replay_view, run_layer

from dsv32_plugin.attention import dispatch
from dsv32_plugin.attention.draft_backend import DSAMultiStepDraftBackend

pytestmark = pytest.mark.gpu

DIMS = Dims(heads=16, kv_lora_rank=512, rope=64, index_dim=128, index_heads=64, topk=2048, context=8192)
PREFIX = [100, 2047, 6000, 3000, 64, 4100, 1500, 2500, 5000, 700, 2049, 3900, 128, 4500, 2200, 900, 5600, 3300,
          1800, 2600, 4800, 333]
CAPTURED = {1: 1, 3: 4, 17: 24}  # raw batch size -> captured (padded) size
ROWS = {"decode": 1, "verify": 4, "draft_extend": 4}  # EAGLE 3 steps, 4 draft tokens
KV = {"bf16": (torch.bfloat16, "bfloat16"), "fp8": (torch.float8_e4m3fn, "fp8_e4m3")}


def usable(kernels: str, kv: str) -> bool:
    return kernels in dispatch.usable_backends("decode", device=torch.device("cuda"), kv_cache_dtype=KV[kv][1])


def as_sets(topk):
    return [set(row.tolist()) - {-1} for row in topk]


@pytest.fixture(scope="module", params=list(KV))
def scene(request):
    return Scene(DIMS, PREFIX, KV[request.param][0], device="cuda", seed=1)


class CapturedLayer:
    """One DSA layer's calls captured for ``bs`` requests x ``rows`` tokens, with static inputs."""

    def __init__(self, backend, scene, mode: str, bs: int, rows: int):
        self.backend, self.scene, self.rows = backend, scene, rows
        self.static = StaticInputs(bs, rows, scene.device, backend.get_cuda_graph_seq_len_fill_value())
        first = scene.batch(mode, [r % len(PREFIX) for r in range(bs)], rows)  # capture-time contents
        self.fb = self.static.load(first, bs)
        self.x = scene.layer_inputs(bs * rows, torch.bfloat16)
        backend.init_forward_metadata_out_graph(self.fb, in_capture=True)
        stream = torch.cuda.Stream()
        stream.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(stream):
            torch.cuda.set_sync_debug_mode("error")
            try:
                self._body()  # warm-up: Triton compiles and autotunes outside the capture
            finally:
                torch.cuda.set_sync_debug_mode("default")
        torch.cuda.current_stream().wait_stream(stream)
        self.graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(self.graph):
            self.topk, self.out = self._body()

    def _body(self):
        self.backend.init_forward_metadata_in_graph(self.fb)
        return run_layer(self.backend, self.fb, self.x)

    def replay(self, batch, x):
        self.static.load(batch, self.fb.batch_size)
        for name, value in pad_rows(x, self.fb.positions.shape[0]).items():
            self.x[name].copy_(value)
        self.backend.init_forward_metadata_out_graph(replay_view(self.fb))
        self.graph.replay()
        torch.cuda.synchronize()
        real = batch.positions.shape[0]
        return self.topk[:real].clone(), self.out[:real].clone()


@pytest.mark.parametrize("kernels", ["triton", "flashmla_auto"])
@pytest.mark.parametrize("mode", list(ROWS))
@pytest.mark.parametrize("raw_bs", list(CAPTURED))
def test_captured_layer_replays_the_eager_results(scene, kernels, mode, raw_bs, monkeypatch):
    kv = "fp8" if scene.kv_dtype == torch.float8_e4m3fn else "bf16"
    if not usable(kernels, kv):
        pytest.skip(f"{kernels} cannot run here with a {kv} cache")
    rows, bs = ROWS[mode], CAPTURED[raw_bs]
    eager = scene.backend(monkeypatch, kernels, torch.bfloat16)
    graphed = scene.backend(monkeypatch, kernels, torch.bfloat16)
    graphed.init_cuda_graph_state(max(CAPTURED.values()), max(CAPTURED.values()) * rows)
    layer = CapturedLayer(graphed, scene, mode, bs, rows)
    sizes = set()
    for start in (0, 5):  # two different batches through the same graph
        reqs = list(range(start, start + raw_bs))
        batch = scene.batch(mode, reqs, rows)
        x = scene.layer_inputs(raw_bs * rows, torch.bfloat16)
        eager.init_forward_metadata(batch)
        want_topk, want = run_layer(eager, batch, x)
        topk, out = layer.replay(batch, x)
        assert as_sets(topk) == as_sets(want_topk)
        torch.testing.assert_close(out.float(), want.float(), rtol=2e-2, atol=2e-2)
        sizes |= {len(s) == DIMS.topk for s in as_sets(want_topk)}
    assert sizes == {True, False}  # dense and sparse rows


def test_multi_step_draft_captured_replays_the_eager_results(monkeypatch):
    scene = Scene(DIMS, PREFIX, torch.float8_e4m3fn, device="cuda", seed=2)
    runner = scene.runner(monkeypatch, "triton", torch.bfloat16)
    eager, graphed = DSAMultiStepDraftBackend(runner, 3), DSAMultiStepDraftBackend(runner, 3)
    graphed.init_cuda_graph_state(4, 4)
    static = StaticInputs(4, 1, scene.device, 1)
    reqs = [2, 0, 6]
    fb = static.load(scene.batch("decode", reqs, 1), 4)
    xs = [pad_rows(scene.layer_inputs(3, torch.bfloat16), 4) for _ in range(2)]
    slots = [torch.nn.functional.pad(scene.batch("decode", reqs, 1, step=s).out_cache_loc, (0, 1)) for s in range(2)]

    def draft_forward():
        graphed.init_forward_metadata_in_graph(fb)
        results = []
        for step in range(2):
            fb.out_cache_loc.copy_(slots[step])
            results.append(run_layer(graphed.attn_backends[step], fb, xs[step]))
            fb.positions.add_(1)
        fb.positions.sub_(2)
        return results

    graphed.init_forward_metadata_out_graph(fb, in_capture=True)
    stream = torch.cuda.Stream()
    stream.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(stream):
        draft_forward()
    torch.cuda.current_stream().wait_stream(stream)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        captured = draft_forward()
    graphed.init_forward_metadata_out_graph(replay_view(fb))
    graph.replay()
    torch.cuda.synchronize()
    eager.init_forward_metadata(scene.batch("decode", reqs, 1))
    for step in range(2):
        batch = scene.batch("decode", reqs, 1, step=step)
        want_topk, want = run_layer(eager.attn_backends[step], batch, {k: v[:3] for k, v in xs[step].items()})
        topk, out = captured[step]
        assert as_sets(topk[:3]) == as_sets(want_topk)
        torch.testing.assert_close(out[:3].float(), want.float(), rtol=2e-2, atol=2e-2)
