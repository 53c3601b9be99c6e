"""Every place dsv32-plugin touches sglang 0.5.23: one ``Touch`` per host object, texts included.

When sglang moves or renames a target, this is the file to edit; ``hooks/ledger.py`` makes each
touch from its entry here (it resolves the dotted ``owner`` itself), and docs/hooks.md is written
from this table (``dsv32_plugin.host.hooks_doc``; tests/test_ledger.py checks the file is current
and that a full ``register()`` makes exactly these touches, each from its ``module``).

Modelled on vllm-ascend's ``patch/__init__.py``: per touch, why it exists, what dropping it
does, and the host change after which it can go. No upstream PRs are filed yet.
No import of sglang or torch: the docs generator reads this without a host.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

from dsv32_plugin.policy import DRAFT_ARCH, TARGET_ARCH

# HookRegistry hook types (sglang.srt.plugins.hook_registry.HookType names), and a write into a
# host mapping (a registry dict, sys.modules, sys.path) or a process-wide attribute.
ENTRY = "entry"
HOOK_KINDS = ("BEFORE", "AFTER", "AROUND", "REPLACE")


@dataclass(frozen=True)
class Touch:
    owner: str  # dotted path of the host object: the hooked function, or the mapping / attribute
    kind: str  # ENTRY or one of HOOK_KINDS
    module: str  # the dsv32_plugin.hooks module that makes it
    why: str
    undo: str  # what dropping the touch does
    remove_when: str  # the host change after which it is no longer needed
    key: Optional[str] = None  # the key written, for an ENTRY into a mapping

    @property
    def target(self) -> str:
        return f"{self.owner}[{self.key}]" if self.key is not None else self.owner


_HOOKS = "dsv32_plugin.hooks."

# -- refusals ------------------------------------------------------------------------------------

EXCEPTHOOK = Touch(
    "sys.excepthook", ENTRY, _HOOKS + "refusals",
    why="a start-up refusal of the plugin (`StartupRefusal`: the flag, what is wrong, the way out) reaches the "
    "launcher's top level as an uncaught exception; it is printed as one line `error: dsv32-plugin: ...` "
    "instead of under a traceback. Every other exception goes to the previous hook unchanged; exit status 1 "
    "either way",
    undo="restore the previous hook (refusals then print with their traceback)",
    remove_when="the host prints a plugin's start-up errors without a traceback",
)

# -- the CPU sgl_kernel stand-in -------------------------------------------------------------------

SHIM_ON_PATH = Touch(
    "sys.path", ENTRY, _HOOKS + "cpu_fallbacks", key="dsv32_plugin/sgl_kernel_cpu/shim",
    why="no CUDA and `import sgl_kernel` fails: the host's spawned processes (scheduler, detokenizer) inherit "
    "`sys.path` and import the CPU engine's `sgl_kernel` `*_cpu` ops while unpickling, before their own "
    "`register()`; the directory holds only a top-level `sgl_kernel.py` re-exporting `dsv32_plugin.sgl_kernel_cpu`",
    undo="remove the directory from `sys.path`",
    remove_when="a CPU build of `sgl_kernel` is installable from PyPI",
)
STAND_IN_MODULE = Touch(
    "sys.modules", ENTRY, _HOOKS + "cpu_fallbacks", key="sgl_kernel",
    why="same condition: this process gets the torch stand-in (`dsv32_plugin.sgl_kernel_cpu`: memory-pool ops "
    "and the EAGLE/MTP ops; `rotate_input_ids_cpu` and the AMX metadata op raise NotImplementedError; every "
    "other name stays an ImportError so host fallbacks apply)",
    undo='`del sys.modules["sgl_kernel"]`',
    remove_when="together with the row above",
)

# -- chat encoding ---------------------------------------------------------------------------------

_SERVING_CHAT = "sglang.srt.entrypoints.openai.serving_chat.OpenAIServingChat"
ENCODE_MESSAGES = Touch(
    "sglang.srt.entrypoints.openai.encoding_dsv32.encode_messages", "REPLACE", _HOOKS + "chat_encoding",
    why="the served V3.2 prompt (`--tool-call-parser deepseekv32`, or no chat template) must be DeepSeek's "
    "official one; the in-tree encoder's tools block lacks 7 blank lines. `encode_messages_for_host` keeps the "
    "in-tree signature and renders with `dsv32_plugin.encoding`",
    undo="drop the hook (the in-tree encoder serves again)",
    remove_when="sglang's copy reproduces DeepSeek's `test_output.txt`",
)
APPLY_JINJA_TEMPLATE = Touch(
    f"{_SERVING_CHAT}._apply_jinja_template", "AROUND", _HOOKS + "chat_encoding",
    why="on the `dsv32` path sglang runs `tokenizer.encode(prompt)` on text that already starts with BOS; the "
    "V3.2 tokenizer prepends BOS (`add_bos_token: true`), so served ids start `BOS BOS`. The wrapper drops the "
    "second BOS (only that exact doubled start, only for spec `dsv32`)",
    undo="drop the hook (served ids start with two BOS again)",
    remove_when="sglang encodes the dsv32 prompt with `add_special_tokens=False`",
)
PROCESS_MESSAGES = Touch(
    f"{_SERVING_CHAT}._process_messages", "AROUND", _HOOKS + "chat_encoding",
    why="DeepSeek-V3.2-Speciale has no tool calling and is thinking-only: for a model whose path/served name "
    "names Speciale, a request whose prompt would describe tools gets a 400 (`tool_choice: \"none\"` opts out), "
    "and `chat_template_kwargs.thinking` defaults to true unless the request or `--default-chat-template-kwargs` "
    "sets it",
    undo="drop the hook; Speciale requests with tools then render the tools block unchecked and thinking follows "
    "the host default",
    remove_when="the host knows the Speciale variant",
)

# -- parsers -----------------------------------------------------------------------------------------

_TOOL_PARSERS = "sglang.srt.function_call.function_call_parser.FunctionCallParser.ToolCallParserEnum"
TOOL_PARSER_V32 = Touch(
    _TOOL_PARSERS, ENTRY, _HOOKS + "parsers", key="deepseekv32",
    why="DSML tool calls (`dsv32_plugin.parsers.deepseekv32`): `string=\"true\"` values verbatim, schema "
    "coercion, arguments streamed as they arrive, streaming and non-streaming agree (unknown tools, unclosed "
    "blocks)",
    undo="restore `DeepSeekV32Detector` in the map",
    remove_when="sglang's detector has these fixes",
)
TOOL_PARSER_V31 = Touch(
    _TOOL_PARSERS, ENTRY, _HOOKS + "parsers", key="deepseekv31",
    why="V3.1 / V3.2-Exp tool calls (`dsv32_plugin.parsers.deepseekv31`): partial special tokens held back (no "
    "leaks on character splits), canonical schema-coerced arguments",
    undo="restore `DeepSeekV31Detector` in the map",
    remove_when="sglang's detector has these fixes",
)
REASONING_PARSER = Touch(
    "sglang.srt.parser.reasoning_parser.ReasoningParser.DetectorMap", ENTRY, _HOOKS + "parsers",
    key="deepseek-v3",
    why="`dsv32_plugin.parsers.reasoning`: a tool-call block opened inside unclosed thinking ends the reasoning "
    "(sglang kept it in reasoning and lost the call); streaming == non-streaming; same `reasoning_default` "
    "(`explicit_thinking`)",
    undo="restore `_DeepSeekV3Detector` in the map",
    remove_when="sglang's detector ends reasoning at a tool-call block",
)

# -- server arguments ----------------------------------------------------------------------------------

_OVERRIDES = "sglang.srt.arg_groups.overrides"
CLI_ARGS = Touch(
    "sglang.srt.server_args.ServerArgs.add_cli_args", "AFTER", _HOOKS + "server_args",
    why="`--dsa-prefill-backend`/`--dsa-decode-backend` accept the plugin's backends "
    "(`dsv32_plugin.attention.dispatch.CHOICES`); adds `--nsa-prefill-backend`/`--nsa-decode-backend` (dropped "
    "in 0.5.23) storing into the same fields, and the DeepSeek-V3.2 cookbook's context-parallel spellings "
    "`--enable-nsa-prefill-context-parallel` (= `--enable-prefill-cp`) and `--nsa-prefill-cp-mode` "
    "(`in-seq-split` = `--cp-strategy zigzag`, `round-robin-split` = `interleave`) and `--cuda-graph-max-bs` "
    "(= `--cuda-graph-max-bs-decode`; in 0.5.23 the bare spelling is an ambiguous prefix); "
    "`--collect-tokens-histogram` is accepted and stores nothing (0.5.23 always collects those histograms with "
    "`--enable-metrics`), so values reach every process on the pickled record",
    undo="drop the hook; the flags then take host values only and the nsa spellings fail",
    remove_when="the host lists these backends and spellings itself",
)
MODEL_SPECIFIC_ADJUSTMENTS = Touch(
    "sglang.srt.arg_groups.model_hook.handle_model_specific_adjustments", "AROUND", _HOOKS + "server_args",
    why="CPU + DeepSeek-V3.2 checkpoint only: with no attention-backend flag, declare `dsa` (the host already "
    "declared `intel_amx`/`torch_native` for every CPU model); for the duration of the call "
    "`torch.cuda.get_device_capability` answers `(0, 0)`, because the host's DSA branch calls it "
    "unconditionally (value unused) and fails without a driver",
    undo="drop the hook; V3.2 on CPU then dies with \"Found no NVIDIA driver\"",
    remove_when="the host resolves DSA on CPU",
)
KV_CACHE_DTYPE_DEFAULT = Touch(
    f"{_OVERRIDES}._dsa_kv_cache_dtype_default", "AROUND", _HOOKS + "server_args",
    why="CPU + V3.2 only: the host probes CUDA; the plugin keeps `auto` (= model dtype, float32 for parity runs), "
    "accepts `bf16`/`bfloat16`/`fp8_e4m3`, refuses others with the choices. CUDA keeps the host's default "
    "(bf16 on sm90, fp8_e4m3 on sm100)",
    undo="drop the hook together with the one above",
    remove_when="the host resolves DSA on CPU",
)
SPLIT_BACKEND_RESOLUTION = Touch(
    f"{_OVERRIDES}._dsa_split_backend_resolution", "AROUND", _HOOKS + "server_args",
    why="V3.2 on any device: backend defaults and validation come from `dsv32_plugin.attention.dispatch` (the "
    "host probes CUDA and refuses `triton` off ROCm); refuses `--enable-hisparse`, a `--chunked-prefill-size` "
    "not a multiple of the 64-token page, and a checkpoint quantization the model does not load (anything but "
    "bf16 and FP8 block-scaled, e.g. `--quantization modelopt_fp4`), each with the way out "
    "(`dsv32_plugin.policy`). Other archs (GLM-5, ...) go to the host's pass",
    undo="drop the hook; V3.2 then gets the host's flashmla/fa3/trtllm defaults and `triton` is refused on CUDA",
    remove_when="the plugin's backends are host choices",
)

# -- parallel layouts ----------------------------------------------------------------------------------

MODEL_PARALLEL_GROUP = Touch(
    "sglang.srt.distributed.parallel_state.init_model_parallel_group", "AROUND", _HOOKS + "distributed",
    why="`--tp/--dp/--pp > 1` on CPU: the host builds a PyNccl communicator (CUDA-only) for every group; a gloo "
    "group whose caller left `use_pynccl` unset gets `use_pynccl=False`, so torch.distributed over gloo carries "
    "the collectives (how CI tests sharding). NCCL groups are untouched",
    undo="drop the hook; multi-rank CPU serving then fails at group creation",
    remove_when="the host skips PyNccl for gloo groups",
)
RESOLUTION_PIPELINE = Touch(
    "sglang.srt.arg_groups.pipeline.run_resolution_pipeline", "AFTER", _HOOKS + "parallel_layout",
    why="V3.2 only: after the host resolved the parallel widths, refuse in the launcher (one line, naming the "
    "flags and numbers) a layout whose attention-TP width does not divide the heads, whose `--ep` does not divide "
    "the experts, whose MoE-TP or TP width does not divide the FFN sizes, or EP on CPU (the host's CPU MoE has "
    "none)",
    undo="drop the hook; such layouts then fail on every rank while the model is built",
    remove_when="the host checks a model's shapes against the layout before starting ranks",
)
CONTEXT_PARALLELISM = Touch(
    "sglang.srt.arg_groups.parallel_hook.handle_context_parallelism", "AROUND", _HOOKS + "context_parallel",
    why="V3.2 with `--enable-prefill-cp` only: refuse in the launcher, one line naming the flags, a CP width "
    "(`--attn-cp-size`, or `--tp / --attn-dp-size`) that with `--attn-dp-size` does not divide `--tp`, a prefill "
    "attention backend other than `dsa`/`nsa` (the plugin's backend, which runs CP with every "
    "`--dsa-prefill-backend`), and a missing `--cp-strategy`; and let `--cp-strategy zigzag` through the host's "
    "by-name refusal of V3.2 zigzag (its own DSA backend has no zigzag path): during the host's step the strategy "
    "is declared `interleave`, then `zigzag` again, and the process's CP strategy is rebuilt as zigzag",
    undo="drop the hook; V3.2 zigzag is then refused and bad widths fail on the host's `assert`",
    remove_when="the host accepts zigzag for V3.2",
)
MODEL_OVERRIDE_DECLARATIONS = Touch(
    f"{_OVERRIDES}.collect_model_override_declarations", "AROUND", _HOOKS + "context_parallel",
    why="V3.2 + `--cp-strategy zigzag` only: the host's DeepSeek override (`_deepseek_family_overrides`) forces "
    "`moe_a2a_backend=deepep`, `ep_size=tp`, `moe_dense_tp_size=1`, which its own zigzag path needs; the "
    "plugin's model runs the MoE on the layer boundary's gathered rows as for interleave, and DeepEP cannot run "
    "on a CPU, so these three keys leave that declaration (the flags given, or their defaults, stand). Every "
    "other declaration and model is untouched",
    undo="drop the hook; V3.2 zigzag then needs DeepEP (GPU only) and `--ep` = `--tp`",
    remove_when="the host's zigzag override applies to its own DSA backend only",
)
CP_EXTEND_RUNNER = Touch(
    "sglang.srt.model_executor.runner.eager_runner.EagerRunner._execute_extend_cp", "AROUND",
    _HOOKS + "context_parallel",
    why="no CUDA only: the host's context-parallel extend runner calls `torch.cuda.current_stream()` for the "
    "final hidden-state gather, whose strategies ignore the stream; during the call it answers `None` instead "
    "of failing without a driver (how CI runs CP on CPU ranks)",
    undo="drop the hook; context-parallel prefill then needs a GPU",
    remove_when="the runner skips the stream off CUDA",
)

# -- models ----------------------------------------------------------------------------------------------

_MODELS = "sglang.srt.models.registry.ModelRegistry.models"
MODEL_CLASS = Touch(
    _MODELS, ENTRY, _HOOKS + "models", key=TARGET_ARCH,
    why="the host must build the plugin's V3.2 model (MLA + DSA indexer through the plugin's backend)",
    undo="delete the key; the in-tree deepseek_v2 class serves V3.2 again",
    remove_when="the plugin's model is upstream",
)
DRAFT_CLASS = Touch(
    _MODELS, ENTRY, _HOOKS + "models", key=DRAFT_ARCH,
    why="MTP drafts of V3.2 checkpoints must use the plugin's draft; the key is shared with V3, so a dispatching "
    "subclass builds ours for configs with `index_topk` and the host's class otherwise",
    undo="restore the in-tree `DeepseekV3ForCausalLMNextN` class",
    remove_when="with the row above",
)

# -- attention ------------------------------------------------------------------------------------------

_ATTENTION_BACKENDS = "sglang.srt.layers.attention.attention_registry.ATTENTION_BACKENDS"
_KV_CONFIGURATOR = "sglang.srt.mem_cache.kv_cache_configurator.KVCacheConfigurator"
_DRAFT_FACTORY = "sglang.srt.speculative.draft_utils.DraftBackendFactory"
DSA_BACKEND = Touch(
    _ATTENTION_BACKENDS, ENTRY, _HOOKS + "attention", key="dsa",
    why="DeepSeek-V3.2 layers must run the plugin's DSA backend under the host's DSA name (non-V3.2 DSA models "
    "keep the host's factory)",
    undo="restore the host's factory",
    remove_when="the plugin's backend is upstream",
)
NSA_BACKEND = Touch(
    _ATTENTION_BACKENDS, ENTRY, _HOOKS + "attention", key="nsa",
    why="same, for the deprecated alias `nsa`",
    undo="restore the host's factory",
    remove_when="with the row above, or when the host drops the alias",
)
KV_POOL_CLASS = Touch(
    f"{_KV_CONFIGURATOR}._resolve_kv_pool_class", "AROUND", _HOOKS + "attention",
    why="V3.2's DSA pool becomes `DSAIndexedKVPool`: the host's pool asserts `index_head_dim == 128` and has no "
    "exact float32 indexer cache",
    undo="drop the hook; V3.2 then gets `DSATokenToKVPool` (real-size models only)",
    remove_when="the host's DSA pool takes any indexer width and a float32 indexer cache",
)
INDEXER_CELL_SIZE = Touch(
    "sglang.srt.model_executor.pool_configurator.DefaultPoolConfigurator._compute_dsa_indexer_cell_size", "AROUND",
    _HOOKS + "attention",
    why="memory sizing must budget the plugin pool's indexer bytes per token (D + 4 FP8, or 4·D exact)",
    undo="drop the hook; sizing then counts D + D // 128 · 4 bytes (equal for D = 128 FP8)",
    remove_when="with the pool-class row above",
)
KV_CONFIGURE = Touch(
    f"{_KV_CONFIGURATOR}.configure", "AROUND", _HOOKS + "attention",
    why="`--kv-cache-dtype fp8_e4m3` must work for V3.2 on CPU; the host refuses FP8 MLA caches there (its CPU "
    "FP8 path is MHA + AMX only). For V3.2 + FP8 only, the module's `current_platform` answers `is_cpu()` False "
    "while `configure()` runs (only that guard reads it)",
    undo="drop the hook; V3.2 on CPU then serves bf16/float32 KV caches only",
    remove_when="the host allows FP8 MLA caches on CPU",
)
DRAFT_EXTEND_BACKEND = Touch(
    f"{_DRAFT_FACTORY}._create_dsa_prefill_backend", "AROUND", _HOOKS + "attention",
    why="the V3.2 MTP draft's extend backend must be the plugin's DSA backend (the host's factory builds its own "
    "DSA class directly, not through the registry)",
    undo="drop the hook; EAGLE on V3.2 then uses the host's DSA backend for the draft (GPU only)",
    remove_when="the host's draft factory builds DSA backends through the registry",
)
DRAFT_DECODE_BACKEND = Touch(
    f"{_DRAFT_FACTORY}._create_dsa_decode_backend", "AROUND", _HOOKS + "attention",
    why="multi-step draft decode (`--speculative-num-steps` > 1) of the V3.2 draft must use the plugin's "
    "per-step DSA backends (`DSAMultiStepDraftBackend`; the host's factory builds its own CUDA-only class); "
    "draft top-k > 1 is refused with a message naming `--speculative-eagle-topk`",
    undo="drop the hook; multi-step EAGLE on V3.2 then uses the host's DSA backends (GPU only)",
    remove_when="with the row above",
)
LAST_LOC = Touch(
    "sglang.srt.mem_cache.allocation.get_last_loc", "AROUND", _HOOKS + "attention",
    why="EAGLE's page allocation calls it and it picks its Triton kernel for every backend but "
    "`torch_native`/`ascend`, so with `dsa` on CPU it needs a GPU driver; CPU tensors take the host's own "
    "`get_last_loc_torch`",
    undo="drop the hook; EAGLE with the `dsa` backend then needs a GPU",
    remove_when="the host picks the torch version for CPU tensors",
)

# -- CUDA graphs -------------------------------------------------------------------------------------------

PREFILL_GRAPHS = Touch(
    "sglang.srt.arg_groups.cuda_graph_hook.apply_cuda_graph_compatibility", "AROUND", _HOOKS + "prefill_graphs",
    why="sglang captures prefill by default on CUDA (breakable graphs: the body captured at padded token counts, "
    "only `RadixAttention` eager); breakable/full prefill graphs have never run with V3.2's model, whose DSA work "
    "(ragged metadata, top-k selection) all happens inside the `RadixAttention` call, so after the host's "
    "compatibility pass a V3.2 checkpoint gets the prefill phase disabled (also an explicit "
    "`--cuda-graph-backend-prefill`) with one log line; decode/verify/draft graphs stay on",
    undo="drop the hook; V3.2 prefill is then captured by the host's breakable graphs, which have never run with it",
    remove_when="a GPU serving run with prefill graphs on gives the eager tokens (the attention call is already "
    "the only eager break V3.2 needs)",
)

# -- prefill-decode disaggregation on the CPU ------------------------------------------------------------

_PREFILL_MIXIN = "sglang.srt.disaggregation.prefill.SchedulerDisaggregationPrefillMixin"
PD_SEND_KV_CHUNK = Touch(
    f"{_PREFILL_MIXIN}._send_kv_chunk", "AROUND", _HOOKS + "disaggregation",
    why="no CUDA only (how CI runs prefill-decode disaggregation over Mooncake's TCP transport): for a sender that "
    "takes host-tensor page indices (Mooncake's) the prefill side copies them into pinned memory and records a "
    "`torch.cuda.Event`, which fails without a driver; during the call the sender's class answers that it takes "
    "none, so the host's synchronous `kv_to_page_indices` branch runs",
    undo="drop the hook; a CPU prefill server then dies at its first KV send",
    remove_when="the host skips pinned memory and CUDA events off CUDA",
)
PD_EARLY_SEND = Touch(
    f"{_PREFILL_MIXIN}.maybe_send_cached_prefix_chunk", "AROUND", _HOOKS + "disaggregation",
    why="no CUDA only: with the overlap scheduler, a request whose prefix comes from the radix cache is sent early, "
    "after a `torch.cuda.Event` recorded on the forward stream (the transfer thread waits on it for the previous "
    "forward's cache writes); CPU work is complete once issued, so during the call `torch.cuda.Event` is an event "
    "that has already happened",
    undo="drop the hook; a CPU prefill server with the overlap scheduler then dies at its first cached prefix",
    remove_when="together with the row above",
)

# Every touch, in the order register() makes them (docs/hooks.md lists them in this order).
TOUCHES: tuple[Touch, ...] = (
    EXCEPTHOOK, SHIM_ON_PATH, STAND_IN_MODULE,
    TOOL_PARSER_V32, TOOL_PARSER_V31, REASONING_PARSER,
    ENCODE_MESSAGES, APPLY_JINJA_TEMPLATE, PROCESS_MESSAGES,
    MODEL_PARALLEL_GROUP,
    MODEL_CLASS, DRAFT_CLASS,
    DSA_BACKEND, NSA_BACKEND, KV_POOL_CLASS, INDEXER_CELL_SIZE, KV_CONFIGURE, DRAFT_EXTEND_BACKEND,
    DRAFT_DECODE_BACKEND, LAST_LOC,
    CLI_ARGS, MODEL_SPECIFIC_ADJUSTMENTS, KV_CACHE_DTYPE_DEFAULT, SPLIT_BACKEND_RESOLUTION,
    RESOLUTION_PIPELINE,
    CONTEXT_PARALLELISM, MODEL_OVERRIDE_DECLARATIONS, CP_EXTEND_RUNNER,
    PREFILL_GRAPHS, PD_SEND_KV_CHUNK, PD_EARLY_SEND,
)
# Made only on a machine without CUDA (the CI that checks the table runs on one).
CPU_ONLY: tuple[Touch, ...] = (SHIM_ON_PATH, STAND_IN_MODULE)
