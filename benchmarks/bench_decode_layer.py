"""One DeepSeek-V3.2 MoE decoder layer's decode step on one GPU: whole (CUDA graph) and op by op.

    bash .big/run.sh python3 benchmarks/bench_decode_layer.py --out DIR     (device: command in docs/perf.md)
    python benchmarks/plot_decode_layer.py DIR/decode_layer.json IMAGE      (table + plot, here)
    python benchmarks/bench_decode_layer.py --tiny --out DIR                (CPU: plumbing only)

What runs: the plugin's ``DeepseekV32DecoderLayer`` (layer 0 of a one-layer
checkpoint made MoE: real-width dims from ``testing/real_width.py``, FP8
128x128 weights through the host's ``Fp8Config``, ``testing/dummy_init``
values), built by the host's ``ModelRunner`` exactly as
``python -m sglang.benchmark.one_batch`` builds it (``--load-format dummy``):
that gives the real KV pool (``DSAIndexedKVPool``), the plugin's DSA backend
and the host's layer boundaries, with nothing re-assembled here. The host
does not capture graphs (``--disable-cuda-graph``): this script captures the
one layer itself through the backend's graph contract.

No prefill: every request r (req_to_token row r + 1) owns its own shuffled
64-token pages, and positions ``[0, C - 1)`` of its context hold random
latent rows and indexer keys written by the pool's own store ops (so every
cache format's bytes are valid). The decode batch is B requests whose new
token sits at position C - 1 (seq_len C).

(a) step: ``init_cuda_graph_state(max B)``; per (B, C) ``init_forward_metadata_out_graph``
before capture and before every replay; the graph holds
``init_forward_metadata_in_graph``, ``residual_batch.start``, the layer's forward
and ``residual_batch.complete_output`` (the first layer of a stack: its input
norm is a plain RMSNorm, not the add + RMSNorm of a later layer).
(b) parts: one eager step runs with each op's entry wrapped (module ``forward``
on the instance, ``backend.select_topk``, the backend's kernel table); each
recorded call is then captured alone in its own graph on the inputs it got,
restored before every replay. Parts are disjoint; "details" (the indexer and
sparse-MLA kernels alone) lie inside a part and are not summed. An op the host
ran through another entry (a fused norm + quant, say) is listed as missing.
Check: the same step with the backend's eager metadata (``init_forward_metadata``,
the host without graphs) on the same caches; the outputs' relative L2 difference
is reported.
Every timing: median over ``--reps`` replays, L2 flushed (256 MiB written)
before each, CUDA events around the replay alone. ratio = step / sum(parts):
above 1 is what the parts alone miss (glue ops: cat, copies, casts, the
routed-output add; launch gaps inside the graph), below 1 would mean the ops
share data through L2 inside the step.

On the CPU (``--tiny``: the tiny checkpoint's dims, float32, the torch
reference DSA backend) nothing is captured: the same contract calls run
eagerly and wall-clock medians are reported; only the plumbing means anything.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import pathlib
import platform
import statistics
import sys
import tempfile
import time
import traceback

import torch

_T0 = time.time()
FLUSH_BYTES = 256 << 20  # > the H200's 50 MiB L2
MAX_RESTORED_BYTES = 64 << 20  # larger recorded inputs (the caches) are passed as they are, not restored
PAGE = 64


def log(msg: str) -> None:
    print(f"[{time.time() - _T0:7.1f}s] {msg}", flush=True)


# ---------------------------------------------------------------- checkpoint and runner
def write_checkpoint(directory: pathlib.Path, tiny: bool) -> pathlib.Path:
    """A config-only checkpoint with ONE decoder layer, made MoE (``first_k_dense_replace`` 0): the
    real-width dims and FP8 blocks, or (``tiny``) the tiny checkpoint's dims in bf16/float32."""
    from dsv32_plugin.testing.real_width import make_real_width_dir
    from dsv32_plugin.testing.tiny_config import make_config

    path = make_real_width_dir(directory, fp8=not tiny)
    config = json.loads((path / "config.json").read_text())
    if tiny:  # 64 indexer heads as in V3.2: with the tiny 4, ReLU'd scores tie at 0 and top-k sets differ
        config = make_config("v32", config["vocab_size"], fp8=False, overrides={"index_n_heads": 64})
    config.update(num_hidden_layers=1, first_k_dense_replace=0)
    (path / "config.json").write_text(json.dumps(config, indent=2))
    return path


DUMMY_INIT_RAN = []


def _dummy_weights(original, model, *args, **kwargs):
    """The host's dummy loader with ``dummy_init``'s values (the host's own make FP8 projections zero)."""
    from dsv32_plugin.testing.dummy_init import initialise

    initialise(model)
    DUMMY_INIT_RAN.append(type(model).__name__)


def load_plugins() -> None:
    """The plugin (entry point) and this script's dummy-weight hook, through the host's plugin loader."""
    from sglang.srt.plugins import load_plugins as host_load_plugins
    from sglang.srt.plugins.hook_registry import HookRegistry, HookType

    HookRegistry.register("sglang.srt.model_loader.weight_utils.initialize_dummy_weights", _dummy_weights,
                          HookType.AROUND)
    host_load_plugins()


def build_runner(ckpt: pathlib.Path, args):
    """The host's ModelRunner as ``sglang.benchmark.one_batch`` builds it (one rank, no host graphs)."""
    from sglang.benchmark import one_batch
    from sglang.srt.entrypoints.engine import _set_envs_and_config
    from sglang.srt.runtime_context import SpawnRanks, publish
    from sglang.srt.server_args import PortArgs, ServerArgs

    tokens = max(args.batch) * pages_per_request(max(args.context)) * PAGE
    cli = ["--model-path", str(ckpt), "--load-format", "dummy", "--device", args.device, "--disable-cuda-graph",
           "--skip-server-warmup", "--max-running-requests", str(max(args.batch)),
           "--context-length", str(max(args.context)), "--max-total-tokens", str(tokens),
           "--kv-cache-dtype", args.kv_cache_dtype, "--dtype", args.dtype]
    if args.dsa_backend:
        cli += ["--dsa-prefill-backend", args.dsa_backend, "--dsa-decode-backend", args.dsa_backend]
    parser = argparse.ArgumentParser()
    ServerArgs.add_cli_args(parser)
    server_args = ServerArgs.from_cli_args(parser.parse_args(cli))
    server_args.resolve_once()
    _set_envs_and_config(server_args)
    port_args = PortArgs.init_new(server_args)
    publish(server_args, role="scheduler", ranks=SpawnRanks(world_rank=0, gpu_id=0))
    one_batch._init_process_global_configs()
    bench_runner, _tokenizer = one_batch.load_model(server_args, port_args, 0, 0)
    return bench_runner.torch_runner


# ---------------------------------------------------------------- caches without prefill
def pages_per_request(context: int) -> int:
    return -(-context // PAGE)


def check_capacity(runner, requests: int, context: int) -> None:
    """The pool and req_to_token the host built must hold every request's own pages (it may size down)."""
    slots_needed = (requests * pages_per_request(context) + 1) * PAGE  # + the padding page 0
    req_to_token = runner.req_to_token_pool.req_to_token
    pool_slots = runner.token_to_kv_pool.size + runner.token_to_kv_pool.page_size
    if pool_slots < slots_needed or req_to_token.shape[0] <= requests or req_to_token.shape[1] < context:
        raise RuntimeError(f"the host built {pool_slots} KV slots and req_to_token {tuple(req_to_token.shape)}; "
                           f"{requests} requests x {context} tokens need {slots_needed} slots and "
                           f"[{requests + 1}, {context}]: lower --batch/--context")


def assign_pages(req_to_token: torch.Tensor, requests: int, context: int, seed: int) -> None:
    """Rows 1..requests of ``req_to_token``: each request its own shuffled pages (page 0 is the padding page)."""
    per_req = pages_per_request(context)
    order = 1 + torch.randperm(requests * per_req, generator=torch.Generator().manual_seed(seed))
    pages = order.view(requests, per_req).to(req_to_token.device)
    slots = (pages[:, :, None] * PAGE + torch.arange(PAGE, device=pages.device)).view(requests, -1)
    width = min(req_to_token.shape[1], slots.shape[1])
    req_to_token[1 : requests + 1, :width] = slots[:, :width].to(req_to_token.dtype)


def fill_caches(pool, layer_id: int, slots: torch.Tensor, dtype: torch.dtype, seed: int, chunk: int = 1 << 18) -> None:
    """Random latent rows ``[c_kv | k_rope]`` and indexer keys at ``slots``, through the pool's store ops."""
    fmt = pool.cache_format
    gen = torch.Generator(device=slots.device).manual_seed(seed)
    for start in range(0, slots.numel(), chunk):
        part = slots[start : start + chunk]

        def randn(width):
            return torch.randn(part.numel(), width, generator=gen, device=slots.device).to(dtype)

        pool.store_mla_kv(layer_id, part, randn(fmt.kv_lora_rank), randn(fmt.rope_dim))
        pool.store_index_k(layer_id, part, randn(fmt.index_head_dim))


def decode_batch(runner, batch: int, context: int):
    """The ForwardBatch of one decode step: requests 1..batch, new token at position ``context - 1``."""
    from sglang.srt.model_executor.forward_batch_info import CaptureHiddenMode, ForwardBatch, ForwardMode
    from sglang.srt.speculative.spec_info import SpeculativeAlgorithm

    device = runner.device
    req = torch.arange(1, batch + 1, device=device)
    seq_lens = torch.full((batch,), context, dtype=torch.int64, device=device)
    return ForwardBatch(
        forward_mode=ForwardMode.DECODE, batch_size=batch,
        input_ids=torch.zeros(batch, dtype=torch.int64, device=device), req_pool_indices=req,
        seq_lens=seq_lens, seq_lens_cpu=seq_lens.cpu(), orig_seq_lens=seq_lens,
        out_cache_loc=runner.req_to_token_pool.req_to_token[req, context - 1].long(), seq_lens_sum=batch * context,
        positions=torch.full((batch,), context - 1, dtype=torch.int64, device=device),
        spec_algorithm=SpeculativeAlgorithm.NONE, capture_hidden_mode=CaptureHiddenMode.NULL,
        global_forward_mode=ForwardMode.DECODE,
    )


# ---------------------------------------------------------------- timing
class Timer:
    """``(median µs, output)`` of ``fn``: captured in a CUDA graph and replayed (L2 flushed before each
    replay; output: the graph's, after the last replay), or, on the CPU, called eagerly. ``setup``
    runs before every call, outside the timed region."""

    def __init__(self, device: str, reps: int, warmup: int):
        self.cuda = device == "cuda"
        self.reps, self.warmup = reps, warmup
        self.flush = torch.empty(FLUSH_BYTES, dtype=torch.uint8, device=device) if self.cuda else None

    def __call__(self, fn, setup=lambda: None):
        return self._cuda(fn, setup) if self.cuda else self._cpu(fn, setup)

    def _cpu(self, fn, setup):
        times = []
        for _ in range(self.reps):
            setup()
            start = time.perf_counter()
            out = fn()
            times.append((time.perf_counter() - start) * 1e6)
        return statistics.median(times), out

    def _cuda(self, fn, setup):
        from sglang.srt.model_executor.runner_utils.capture_mode import model_capture_mode

        side = torch.cuda.Stream()
        side.wait_stream(torch.cuda.current_stream())
        with model_capture_mode():  # the host's capture-time switches, as its graph runners set them
            with torch.cuda.stream(side):  # compile, autotune and allocate before capturing
                for _ in range(2):
                    setup()
                    fn()
            torch.cuda.current_stream().wait_stream(side)
            setup()
            graph = torch.cuda.CUDAGraph()
            with torch.cuda.graph(graph):
                out = fn()
        events = [(torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True))
                  for _ in range(self.warmup + self.reps)]
        for start, end in events:
            setup()
            self.flush.zero_()
            start.record()
            graph.replay()
            end.record()
        torch.cuda.synchronize()
        return statistics.median(s.elapsed_time(e) * 1e3 for s, e in events[self.warmup :]), out


# ---------------------------------------------------------------- one op per entry point
def _map_tensors(value, fn):
    if isinstance(value, torch.Tensor):
        return fn(value)
    if isinstance(value, tuple) and hasattr(value, "_fields"):  # NamedTuple (the host's TopK output)
        return type(value)(*(_map_tensors(v, fn) for v in value))
    if isinstance(value, (tuple, list)):
        return type(value)(_map_tensors(v, fn) for v in value)
    if isinstance(value, dict):
        return {k: _map_tensors(v, fn) for k, v in value.items()}
    return value


@dataclasses.dataclass
class Call:
    """One recorded call ``fn(*args, **kwargs)`` on private copies of its inputs (same strides) taken
    before it ran; inputs over ``MAX_RESTORED_BYTES`` (cache buffers) are shared, not copied."""

    name: str
    fn: object
    args: tuple
    kwargs: dict
    within: str | None = None  # a detail inside this part: timed, not summed
    output: object = None

    def __post_init__(self):
        owned = []

        def own(t: torch.Tensor) -> torch.Tensor:
            if t.nbytes > MAX_RESTORED_BYTES or 0 in t.stride():  # caches; broadcast views (read only)
                return t
            owned.append(torch.empty_strided(t.size(), t.stride(), dtype=t.dtype, device=t.device).copy_(t))
            return owned[-1]

        self.args, self.kwargs = _map_tensors((self.args, self.kwargs), own)
        self._owned, self._pristine = owned, [t.clone() for t in owned]

    def restore(self) -> None:
        """Undo what a previous run did to the inputs (in-place add + norm, in-place RoPE)."""
        for live, pristine in zip(self._owned, self._pristine):
            live.copy_(pristine)

    def __call__(self):
        return self.fn(*self.args, **self.kwargs)


# Submodules of the decoder layer whose forward is one op of the step, in execution order.
MODULE_PARTS = (
    ("input_layernorm", "input RMSNorm"),
    ("self_attn.q_a_proj", "q_a_proj"),
    ("self_attn.q_a_layernorm", "q_a RMSNorm"),
    ("self_attn.kv_a_proj_with_mqa", "kv_a_proj"),
    ("self_attn.kv_a_layernorm", "kv_a RMSNorm"),
    ("self_attn.q_b_proj", "q_b_proj"),
    ("self_attn.rotary_emb", "MLA RoPE"),
    ("self_attn.indexer.wq_b", "indexer wq_b"),
    ("self_attn.indexer.wk", "indexer wk"),
    ("self_attn.indexer.k_norm", "indexer k LayerNorm"),
    ("self_attn.indexer.rotary_emb", "indexer RoPE"),
    ("self_attn.indexer.weights_proj", "indexer weights_proj"),
    ("self_attn.attn", "sparse MLA (KV store, slot map, decode)"),
    ("self_attn.o_proj", "o_proj"),
    ("post_attention_layernorm", "post-attention add + RMSNorm"),
    ("mlp.gate", "router gate (fp32)"),
    ("mlp.topk", "router TopK (grouped)"),
    ("mlp.experts", "routed experts (fused MoE)"),
    ("mlp.shared_experts", "shared expert"),
)
SELECT_TOPK = "indexer (key store, q quant, decode scores, top-k)"
SPARSE_MLA = "sparse MLA (KV store, slot map, decode)"
# Kernels of the backend's table timed alone as details of the part that calls them.
KERNEL_DETAILS = (("quantize_index_q", SELECT_TOPK), ("indexer_decode", SELECT_TOPK), ("sparse_decode", SPARSE_MLA))


class Recorder:
    """Wraps entry points on instances (never classes) for one eager step; ``calls`` in call order."""

    def __init__(self):
        self.calls: list[Call] = []
        self._undo = []

    def recording(self, original, name: str, within: str | None = None):
        def record(*args, **kwargs):
            call = Call(name, original, args, kwargs, within)  # inputs copied before an in-place op runs
            call.output = original(*args, **kwargs)
            self.calls.append(call)
            return call.output

        return record

    def wrap(self, owner, attr: str, name: str) -> None:
        own = vars(owner).get(attr)  # an instance attribute already there is put back afterwards
        object.__setattr__(owner, attr, self.recording(getattr(owner, attr), name))
        self._undo.append(lambda: object.__setattr__(owner, attr, own) if own is not None
                          else object.__delattr__(owner, attr))

    def undo(self) -> None:
        while self._undo:
            self._undo.pop()()


def record_parts(layer, backend, forward_batch, run_step) -> list[Call]:
    """Run ``run_step`` once with every op's entry recorded; add the ops that have no entry of their own."""
    rec = Recorder()
    kernels = backend.kernels
    for path, name in MODULE_PARTS:
        rec.wrap(layer.get_submodule(path), "forward", name)
    rec.wrap(backend, "select_topk", SELECT_TOPK)
    backend.kernels = dataclasses.replace(kernels, **{
        attr: rec.recording(getattr(kernels, attr), f"{attr} kernel", within) for attr, within in KERNEL_DETAILS})
    try:
        run_step()
    finally:
        rec.undo()
        backend.kernels = kernels
    out = {c.name: c.output for c in rec.calls}
    attn = layer.self_attn
    tokens, heads = forward_batch.batch_size, attn.num_local_heads
    q = out["q_b_proj"][0].view(tokens, heads, -1)
    o_lat = out[SPARSE_MLA].view(tokens, heads, attn.kv_lora_rank)
    after = {  # op without an entry point -> the recorded op it follows in the layer's forward
        "MLA RoPE": Call("absorbed bmm q_nope x W_UK", torch.bmm, (q[..., : attn.nope_dim].transpose(0, 1), attn.w_kc),
                         {}),
        SPARSE_MLA: Call("absorbed bmm o x W_UV", torch.bmm, (o_lat.transpose(0, 1), attn.w_vc), {}),
    }
    calls = [Call("DSA metadata (in-graph refresh)", backend.init_forward_metadata_in_graph, (forward_batch,), {})]
    for call in rec.calls:
        calls += [call] + ([after[call.name]] if call.name in after else [])
    return calls


# ---------------------------------------------------------------- one (batch, context) case
def run_case(runner, layer, timer: Timer, batch: int, context: int, seed: int) -> dict:
    from sglang.srt.layers.layer_boundary.residual import batch as residual_batch
    from sglang.srt.model_executor.forward_context import ForwardContext, forward_context

    backend = runner.attn_backend
    fb = decode_batch(runner, batch, context)
    gen = torch.Generator(device=runner.device).manual_seed(seed)
    hidden0 = torch.randn(batch, layer.input_layernorm.weight.shape[0], generator=gen, device=runner.device)
    hidden0 = hidden0.to(runner.dtype)
    hidden = hidden0.clone()

    def layer_forward():
        residual_batch.start(fb)
        return residual_batch.complete_output(layer(fb.positions, hidden, fb), fb)

    def step():
        backend.init_forward_metadata_in_graph(fb)
        return layer_forward()

    def before_replay():
        hidden.copy_(hidden0)  # the post-attention add writes the residual (this input) in place
        backend.init_forward_metadata_out_graph(fb)

    result = {"batch": batch, "context": context}
    with torch.no_grad(), forward_context(ForwardContext(attn_backend=backend), forward_batch=fb):
        backend.init_forward_metadata_out_graph(fb, in_capture=True)
        result["step_us"], graph_out = timer(step, before_replay)
        graph_out = graph_out.float().clone()  # (float32 on the CPU: .float() alone would alias)
        # The same step with the backend's eager metadata (the host without graphs) must agree.
        hidden.copy_(hidden0)
        backend.init_forward_metadata(fb)
        eager_out = layer_forward().float()
        result["finite"] = bool(torch.isfinite(graph_out).all())
        result["graph_vs_eager_rel_err"] = ((graph_out - eager_out).norm() / eager_out.norm()).item()
        log(f"B={batch} C={context}: step {result['step_us']:.1f} us "
            f"(graph vs eager rel. err {result['graph_vs_eager_rel_err']:.2e})")
        before_replay()
        parts, details = [], []
        for call in record_parts(layer, backend, fb, step):
            entry = {"name": call.name}
            try:
                entry["us"] = timer(call, call.restore)[0]
            except Exception as exc:  # noqa: BLE001 - one op that cannot be captured alone is reported
                entry["error"] = f"{type(exc).__name__}: {exc}"[:500]
                log(f"  {call.name}: FAILED {entry['error']}")
            if call.within:
                entry["within"] = call.within
            (details if call.within else parts).append(entry)
    result["parts"], result["details"] = parts, details
    recorded = {p["name"] for p in parts}
    # An op the host ran through another entry (a fused norm + quant, say) is not recorded: say so.
    result["missing_parts"] = [name for _, name in MODULE_PARTS if name not in recorded]
    result["parts_sum_us"] = sum(p.get("us", 0.0) for p in parts)
    result["complete"] = all("us" in p for p in parts) and not result["missing_parts"]
    result["ratio"] = result["step_us"] / result["parts_sum_us"] if result["parts_sum_us"] else None
    log(f"B={batch} C={context}: parts {result['parts_sum_us']:.1f} us, ratio {result['ratio'] or 0:.3f}")
    return result


# ---------------------------------------------------------------- main
def meta(runner, layer, args) -> dict:
    import triton

    config = runner.model_config.hf_config
    backend = runner.attn_backend
    return {
        "device": torch.cuda.get_device_name() if args.device == "cuda" else platform.processor() or "cpu",
        "torch": torch.__version__, "triton": triton.__version__,
        "kv_cache_dtype": args.kv_cache_dtype, "model_dtype": str(runner.dtype),
        "dsa_prefill": backend.kernels.prefill_name, "dsa_decode": backend.kernels.decode_name,
        "q_a_proj_weight_dtype": str(layer.self_attn.q_a_proj.weight.dtype),
        "weights": "dummy_init" if DUMMY_INIT_RAN else "host dummy values",
        "config": {k: getattr(config, k) for k in (
            "hidden_size", "num_attention_heads", "q_lora_rank", "kv_lora_rank", "qk_rope_head_dim",
            "index_n_heads", "index_head_dim", "index_topk", "n_routed_experts", "num_experts_per_tok",
            "moe_intermediate_size")},
        "reps": args.reps, "warmup": args.warmup, "graphs": args.device == "cuda",
    }


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=".", help="directory for decode_layer.json")
    parser.add_argument("--tiny", action="store_true", help="the tiny checkpoint's dims (CPU plumbing check)")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--batch", type=int, nargs="+")
    parser.add_argument("--context", type=int, nargs="+")
    parser.add_argument("--kv-cache-dtype", default="fp8_e4m3", choices=("fp8_e4m3", "bf16"))
    parser.add_argument("--dsa-backend", help="--dsa-{prefill,decode}-backend (default: the plugin's for the device)")
    parser.add_argument("--dtype", help="model dtype (default bfloat16 on CUDA, float32 on the CPU)")
    parser.add_argument("--reps", type=int)
    parser.add_argument("--warmup", type=int)
    parser.add_argument("--deadline-s", type=float, default=210.0,
                        help="start no case after this many seconds (a device call has 10 minutes)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    cuda = args.device == "cuda"
    defaults = {"batch": [1, 3] if args.tiny else [1, 32, 128], "context": [40, 130] if args.tiny else [4096, 32768],
                "dtype": "bfloat16" if cuda else "float32", "reps": 30 if cuda else 3, "warmup": 5 if cuda else 0}
    for key, value in defaults.items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    return args


def main(argv=None) -> dict:
    args = parse_args(argv)
    out_dir = pathlib.Path(args.out)
    out_dir.mkdir(parents=True, exist_ok=True)
    load_plugins()
    ckpt = write_checkpoint(pathlib.Path(tempfile.mkdtemp(prefix="dsv32-layer-")), args.tiny)
    log(f"building the layer ({'tiny' if args.tiny else 'real width'}) on {args.device}")
    runner = build_runner(ckpt, args)
    layer = runner.model.model.layers[0]
    pool, req_to_token = runner.token_to_kv_pool, runner.req_to_token_pool.req_to_token
    requests, longest = max(args.batch), max(args.context)
    check_capacity(runner, requests, longest)
    assign_pages(req_to_token, requests, longest, args.seed)
    fill_caches(pool, 0, req_to_token[1 : requests + 1, :longest].reshape(-1).long(), runner.dtype, args.seed)
    runner.attn_backend.init_cuda_graph_state(requests, requests)
    log(f"caches filled: {requests} requests x {longest} tokens ({pool.cache_format.kv_format} KV)")
    report = {"meta": meta(runner, layer, args), "cases": []}
    timer = Timer(args.device, args.reps, args.warmup)
    path = out_dir / "decode_layer.json"
    for batch in args.batch:
        for context in args.context:
            if time.time() - _T0 > args.deadline_s:
                report["cases"].append({"batch": batch, "context": context, "error": "skipped: past --deadline-s"})
                continue
            try:
                report["cases"].append(run_case(runner, layer, timer, batch, context, args.seed))
            except Exception:  # noqa: BLE001 - report and go on to the next case
                log(f"B={batch} C={context}: FAILED\n{traceback.format_exc()}")
                report["cases"].append({"batch": batch, "context": context, "error": traceback.format_exc()[-3000:]})
            path.write_text(json.dumps(report, indent=1))  # after every case: a cut-off run keeps what it measured
    log(f"wrote {path}")
    return report


if __name__ == "__main__":
    main()
    sys.stdout.flush()
    os._exit(0)  # the host's runtime keeps non-daemon threads alive
