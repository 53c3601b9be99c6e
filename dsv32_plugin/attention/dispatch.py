"""Kernel dispatch for the DSA backend: (backend flag, device, KV-cache dtype) -> kernels.

The model's DSA attention backend asks once, at start-up::

    prefill, decode = configured_backends()          # --dsa-prefill/decode-backend
    kernels = select_kernels(prefill, decode, device=device, kv_cache_dtype=kv_dtype)
    out, lse = kernels.sparse_decode(q, kv_cache, indices, sm_scale, d_v, topk_length)

Backends (flag values; ``--nsa-*`` spellings are aliases of the ``--dsa-*`` flags):

==================  ===================  =========================  ===========================
value               prefill              decode                     runs on
==================  ===================  =========================  ===========================
torch               float32 reference    float32 reference          any device (CPU default)
triton              Triton kernels       Triton kernels             CUDA; CPU under TRITON_INTERPRET=1
flashmla_sparse     FlashMLA sparse fwd  FlashMLA sparse fwd        CUDA sm90/sm100 with flash_mla;
                                         (bf16 cache only)          decode needs a bf16 cache
flashmla_kv         FlashMLA sparse fwd  FlashMLA FP8 decode        same; decode needs the FP8 cache
flashmla_auto       FlashMLA sparse fwd  flashmla_kv on FP8 cache,  same
                                         flashmla_sparse on bf16
fa3                 (refused)            sgl-kernel FA3, top-k      CUDA with sgl_kernel FA3;
                                         slots as the page table    bf16 cache only
==================  ===================  =========================  ===========================

Host spellings we map: ``triton_sparse_mla`` -> ``triton``. Other host values
(trtllm, tilelang, aiter, ...) are refused with the list of working choices.
The indexer kernels follow the phase's backend: ``torch`` uses the reference
indexer, every GPU backend our Triton indexer (FlashMLA and FA3 ship none).

The exact float32 indexer cache (the model runs in float32) has only the
reference indexer. The FP8 indexer's q quantiser (Hadamard rotation, e4m3 per
head, the scales folded into the head weights) follows the device like the
cache writers below: Triton on CUDA, the reference elsewhere.

Cache writers and readers (``CacheOps``, ``select_cache_ops``) follow the
device, not the flags: our Triton kernels on CUDA, the float32 references
elsewhere (same byte layouts), the references for the exact indexer cache;
``gather_index_k`` has only the reference. The top-k position -> slot map
and the paged metadata refresh (request lengths, page ids) follow the device
the same way.

Kernels are named, not imported: a ``KernelRef`` imports its function on the
first call, so the table can be checked before every kernel exists and no
Triton/FlashMLA/sgl-kernel import happens at start-up. No sglang import here
except inside ``configured_backends``.
"""

from __future__ import annotations

import importlib
import importlib.util
from dataclasses import dataclass
from typing import Callable, Optional

import torch

from dsv32_plugin.attention.cache_format import FP8, UNQUANTIZED
from dsv32_plugin.refusal import StartupRefusal

PREFILL = "prefill"
DECODE = "decode"

_KV_CACHE_DTYPES = {
    "fp8_e4m3": FP8,
    "auto": UNQUANTIZED,  # the model dtype
    "bf16": UNQUANTIZED,
    "bfloat16": UNQUANTIZED,
    "float16": UNQUANTIZED,
    "float32": UNQUANTIZED,
}
_CLI_KV_CACHE_DTYPES = ("auto", "bf16", "bfloat16", "fp8_e4m3")  # the --kv-cache-dtype values above

_REFERENCE = "dsv32_plugin.kernels.reference"
_TRITON = "dsv32_plugin.kernels"
_FLASHMLA = "dsv32_plugin.kernels.sparse_mla.flashmla"
_FA3 = "dsv32_plugin.kernels.sparse_mla.fa3"


@dataclass(frozen=True)
class KernelRef:
    """A kernel function named by module and attribute, imported on its first call."""

    module: str
    name: str

    def resolve(self) -> Callable:
        """The plain function (import it once at start-up to skip the per-call lookup)."""
        return getattr(importlib.import_module(self.module), self.name)

    def __call__(self, *args, **kwargs):
        return self.resolve()(*args, **kwargs)

    def __str__(self) -> str:
        return f"{self.module}.{self.name}"


@dataclass(frozen=True)
class DSAKernels:
    """The kernels one process runs, with the backend names they came from.

    Signatures (see ``dsv32_plugin.kernels``):
    ``sparse_prefill(q, kv, indices, sm_scale, d_v, topk_length) -> (out, lse)``,
    ``sparse_decode(q, kv_cache, indices, sm_scale, d_v, topk_length) -> (out, lse)``,
    ``indexer_prefill(q, k, k_scale, weights, k_start, k_end, topk)``,
    ``indexer_decode(q, k_cache, weights, seq_lens, page_table, topk)``,
    ``quantize_index_q(q, weights) -> (q_fp8, weights * q_scale)`` (q before the Hadamard),
    ``positions_to_slots(positions, table, page_size) -> slots``,
    ``fill_paged_metadata(req_kv_len, page_table, positions, req_pool_indices, req_to_token, rows_per_req, step)``.
    """

    prefill_name: str
    decode_name: str
    sparse_prefill: Callable
    sparse_decode: Callable
    indexer_prefill: Callable
    indexer_decode: Callable
    quantize_index_q: Callable
    positions_to_slots: Callable
    fill_paged_metadata: Callable

    def resolved(self) -> "DSAKernels":
        """The same table with every ``KernelRef`` imported (off the per-layer hot path)."""
        return DSAKernels(**{
            name: value.resolve() if isinstance(value, KernelRef) else value
            for name, value in vars(self).items()
        })


@dataclass(frozen=True)
class CacheOps:
    """Writers and readers of the DSA caches (byte layouts in ``dsv32_plugin.kernels.layout``).

    ``store_mla_kv(cache, slots, kv)``, ``dequantize_kv_fp8(packed, d_nope, d_rope, dtype)``,
    ``store_index_k(cache, slots, k, k_scale=None)``, ``gather_index_k(cache, slots) -> (k, k_scale)``.
    """

    store_mla_kv: Callable
    dequantize_kv_fp8: Callable
    store_index_k: Callable
    gather_index_k: Callable


def _device_module(device: torch.device) -> str:
    """Where the cache ops and the position -> slot map come from: Triton on CUDA, else the references."""
    return _TRITON if torch.device(device).type == "cuda" else _REFERENCE


def select_cache_ops(device: torch.device, *, index_exact: bool) -> CacheOps:
    """The cache writers/readers for ``device`` (resolved functions)."""
    module = _device_module(device)
    index_module = _REFERENCE if index_exact else module
    return CacheOps(
        store_mla_kv=KernelRef(module, "store_mla_kv").resolve(),
        dequantize_kv_fp8=KernelRef(module, "dequantize_kv_fp8").resolve(),
        store_index_k=KernelRef(index_module, "store_index_k").resolve(),
        gather_index_k=KernelRef(_REFERENCE, "gather_index_k").resolve(),
    )


@dataclass(frozen=True)
class _Backend:
    prefill: Optional[KernelRef]  # None: this backend has no prefill kernel
    decode: dict  # KV format -> KernelRef of the decode kernel reading it
    indexer_module: str
    cannot_run: Callable[[torch.device], Optional[str]]  # why not on this device, or None
    head_dims: Optional[tuple[int, int]] = None  # the only (D, d_v) its kernels take; None: any


def _runs_anywhere(device: torch.device) -> Optional[str]:
    return None


def _triton_cannot_run(device: torch.device) -> Optional[str]:
    if device.type == "cuda":
        return None
    from dsv32_plugin.kernels.interpreter import interpreting

    if device.type == "cpu" and interpreting():
        return None
    return f"Triton kernels need a CUDA device (or TRITON_INTERPRET=1 on the CPU), not {device.type}"


def _sm_major(device: torch.device) -> int:
    return torch.cuda.get_device_capability(device)[0]


def _flashmla_cannot_run(device: torch.device) -> Optional[str]:
    if device.type != "cuda":
        return f"FlashMLA needs a CUDA device, not {device.type}"
    if importlib.util.find_spec("flash_mla") is None:
        return "FlashMLA is not installed (pip install sgl-flash-mla)"
    if _sm_major(device) not in (9, 10):
        return f"FlashMLA's sparse kernels need sm90 or sm100, not sm{_sm_major(device)}x"
    return None


def _fa3_cannot_run(device: torch.device) -> Optional[str]:
    """A missing or broken sgl-kernel (import fails, or its own check raises) means "no FA3 here"."""
    if device.type != "cuda":
        return f"FA3 needs a CUDA device, not {device.type}"
    try:
        from sgl_kernel.flash_attn import is_fa3_supported
    except Exception as exc:  # absent, or a build that does not load here
        return f"sgl-kernel's FA3 is not importable ({exc!r})"
    try:
        supported = is_fa3_supported(device)
    except Exception as exc:  # e.g. a stand-in sgl_kernel whose names raise when called
        return f"sgl-kernel's FA3 check failed ({exc!r})"
    if not supported:
        return f"sgl-kernel reports FA3 unsupported on sm{_sm_major(device)}x"
    return None


def _same_module(module: str, cannot_run: Callable[[torch.device], Optional[str]]) -> _Backend:
    """A backend whose four kernels live in one module and read either cache format."""
    decode = KernelRef(module, "sparse_mla_decode")
    return _Backend(KernelRef(module, "sparse_mla_prefill"), {FP8: decode, UNQUANTIZED: decode}, module, cannot_run)


# FlashMLA's sparse kernels are compiled for DeepSeek-V3.2's MLA: D = 512 latent + 64 rope, d_v = 512.
FLASHMLA_HEAD_DIMS = (576, 512)
_FLASHMLA_PREFILL = KernelRef(_FLASHMLA, "sparse_mla_prefill")
_FLASHMLA_DECODE_FP8 = KernelRef(_FLASHMLA, "sparse_mla_decode")
_FLASHMLA_DECODE_BF16 = KernelRef(_FLASHMLA, "sparse_mla_decode_bf16_cache")

BACKENDS: dict[str, _Backend] = {
    "torch": _same_module(_REFERENCE, _runs_anywhere),
    "triton": _same_module(_TRITON, _triton_cannot_run),
    "flashmla_sparse": _Backend(
        _FLASHMLA_PREFILL, {UNQUANTIZED: _FLASHMLA_DECODE_BF16}, _TRITON, _flashmla_cannot_run, FLASHMLA_HEAD_DIMS
    ),
    "flashmla_kv": _Backend(
        _FLASHMLA_PREFILL, {FP8: _FLASHMLA_DECODE_FP8}, _TRITON, _flashmla_cannot_run, FLASHMLA_HEAD_DIMS
    ),
    "flashmla_auto": _Backend(
        _FLASHMLA_PREFILL,
        {FP8: _FLASHMLA_DECODE_FP8, UNQUANTIZED: _FLASHMLA_DECODE_BF16},
        _TRITON,
        _flashmla_cannot_run,
        FLASHMLA_HEAD_DIMS,
    ),
    "fa3": _Backend(None, {UNQUANTIZED: KernelRef(_FA3, "sparse_mla_decode")}, _TRITON, _fa3_cannot_run),
}

# Host flag values that name one of ours.
HOST_ALIASES: dict[str, str] = {"triton_sparse_mla": "triton"}

# Backends that have served DeepSeek-V3.2 on a GPU (docs/perf.md, "Serving"). Only these are
# defaults and only these does ``dsv32-plugin launch-command`` print (tests/attention/test_dispatch.py);
# fa3 can be asked for but has never run on a GPU.
SERVED_ON_GPU = frozenset({"triton", "flashmla_sparse", "flashmla_kv", "flashmla_auto"})

# Defaults per CUDA compute-capability major: (prefill preferences, decode
# preferences); the first backend that can run wins. On the H200 FlashMLA is
# faster than our Triton kernels (docs/perf.md: prefill 1.9x, FP8 decode
# 1.5-1.8x, bf16 decode 1.3-2.2x at H=128), so it is preferred where installed
# (sm90, and sm100 where FlashMLA also builds); Triton everywhere else.
# ``launch-command`` prints the first of each (``recommended_backends``).
CUDA_DEFAULT_PREFERENCES: dict[int, tuple[tuple[str, ...], tuple[str, ...]]] = {
    8: (("triton",), ("triton",)),  # sm80 / sm86 / sm89: FlashMLA has no kernels
    9: (("flashmla_auto", "triton"), ("flashmla_auto", "triton")),  # sm90 (H100 / H200)
    10: (("flashmla_auto", "triton"), ("flashmla_auto", "triton")),  # sm100 (B200), not measured
}
_CUDA_FALLBACK_PREFERENCES = (("triton",), ("triton",))
CPU_DEFAULT = "torch"


def recommended_backends(capability_major: int) -> tuple[str, str]:
    """(prefill, decode) the server picks with no flag on a GPU of this generation that has FlashMLA
    (a full sglang install does), for DeepSeek-V3.2's dims: what ``launch-command`` prints."""
    prefill, decode = CUDA_DEFAULT_PREFERENCES.get(capability_major, _CUDA_FALLBACK_PREFERENCES)
    return prefill[0], decode[0]

CHOICES: tuple[str, ...] = tuple(BACKENDS) + tuple(HOST_ALIASES)


def kv_cache_format(kv_cache_dtype: str) -> str:
    """``FP8`` or ``UNQUANTIZED`` for a ``--kv-cache-dtype`` value; ValueError otherwise."""
    fmt = _KV_CACHE_DTYPES.get(str(kv_cache_dtype))
    if fmt is None:
        raise StartupRefusal(
            f"DeepSeek-V3.2 does not support --kv-cache-dtype {kv_cache_dtype!r}; "
            f"choose one of {', '.join(_CLI_KV_CACHE_DTYPES)}"
        )
    return fmt


def _why_not(name: str, phase: str, device: torch.device, fmt: str,
             head_dims: Optional[tuple[int, int]] = None) -> Optional[str]:
    """Why backend ``name`` cannot run ``phase`` here, or None if it can.

    ``head_dims``: the model's ``(D, d_v)`` = ``(kv_lora_rank + rope, kv_lora_rank)``, when known.
    """
    backend = BACKENDS[HOST_ALIASES.get(name, name)]
    if phase == PREFILL and backend.prefill is None:
        return f"{name} has no prefill kernel (decode only)"
    if phase == DECODE and fmt not in backend.decode:
        wanted = " or ".join(sorted(backend.decode))
        return f"{name} decode cannot read a {fmt} KV cache (needs {wanted})"
    device_problem = backend.cannot_run(device)
    if device_problem is None and head_dims is not None and backend.head_dims not in (None, tuple(head_dims)):
        return f"{name} runs (D, d_v) = {backend.head_dims} only (DeepSeek-V3.2's MLA), not {tuple(head_dims)}"
    return device_problem


def usable_backends(phase: str, *, device: torch.device, kv_cache_dtype: str,
                    head_dims: Optional[tuple[int, int]] = None) -> list[str]:
    """The flag values that can run ``phase`` ("prefill"/"decode") on ``device`` (for a model of ``head_dims``)."""
    fmt = kv_cache_format(kv_cache_dtype)
    return [name for name in BACKENDS if _why_not(name, phase, torch.device(device), fmt, head_dims) is None]


def default_backend(phase: str, *, device: torch.device, kv_cache_dtype: str,
                    head_dims: Optional[tuple[int, int]] = None) -> str:
    """The backend used when the flag is not given: see ``CUDA_DEFAULT_PREFERENCES``."""
    device = torch.device(device)
    if device.type != "cuda":
        return CPU_DEFAULT
    prefill_prefs, decode_prefs = CUDA_DEFAULT_PREFERENCES.get(_sm_major(device), _CUDA_FALLBACK_PREFERENCES)
    fmt = kv_cache_format(kv_cache_dtype)
    for name in prefill_prefs if phase == PREFILL else decode_prefs:
        if _why_not(name, phase, device, fmt, head_dims) is None:
            return name
    return CPU_DEFAULT


def _checked(name: Optional[str], phase: str, device: torch.device, kv_cache_dtype: str,
             head_dims: Optional[tuple[int, int]]) -> str:
    if name is None:
        return default_backend(phase, device=device, kv_cache_dtype=kv_cache_dtype, head_dims=head_dims)
    fmt = kv_cache_format(kv_cache_dtype)
    usable = usable_backends(phase, device=device, kv_cache_dtype=kv_cache_dtype, head_dims=head_dims)
    if name not in BACKENDS and name not in HOST_ALIASES:
        reason = f"{name!r} is not a DSA backend of dsv32-plugin"
    else:
        reason = _why_not(name, phase, device, fmt, head_dims)
        if reason is None:
            return name
    raise StartupRefusal(
        f"--dsa-{phase}-backend {name}: {reason}. Choices that work on this machine "
        f"({device.type}, {kv_cache_dtype} KV cache) for {phase}: {', '.join(usable)}"
    )


def select_kernels(
    prefill: Optional[str], decode: Optional[str], *, device: torch.device, kv_cache_dtype: str,
    index_exact: bool = False, head_dims: Optional[tuple[int, int]] = None,
) -> DSAKernels:
    """Kernels for the configured backends; None picks this device's default.

    ``index_exact``: the indexer cache holds exact float32 rows (the model runs in
    float32), which only the reference indexer reads. ``head_dims``: the model's
    ``(D, d_v)``; a backend compiled for other dims is not chosen by default and is
    refused when asked for. Raises ``StartupRefusal`` (a ValueError) naming the
    choices that work here when a backend is unknown, cannot run on this device or
    model, or cannot read this KV-cache dtype.
    """
    device = torch.device(device)
    prefill = _checked(prefill, PREFILL, device, kv_cache_dtype, head_dims)
    decode = _checked(decode, DECODE, device, kv_cache_dtype, head_dims)
    prefill_backend = BACKENDS[HOST_ALIASES.get(prefill, prefill)]
    decode_backend = BACKENDS[HOST_ALIASES.get(decode, decode)]
    return DSAKernels(
        prefill_name=prefill,
        decode_name=decode,
        sparse_prefill=prefill_backend.prefill,
        sparse_decode=decode_backend.decode[kv_cache_format(kv_cache_dtype)],
        indexer_prefill=KernelRef(_REFERENCE if index_exact else prefill_backend.indexer_module,
                                  "indexer_topk_prefill"),
        indexer_decode=KernelRef(_REFERENCE if index_exact else decode_backend.indexer_module, "indexer_topk_decode"),
        quantize_index_q=KernelRef(_device_module(device), "quantize_index_q"),
        positions_to_slots=KernelRef(_device_module(device), "topk_positions_to_slots"),
        fill_paged_metadata=KernelRef(_device_module(device), "fill_paged_metadata"),
    )


def mla_head_dims(hf_config) -> tuple[int, int]:
    """``(D, d_v)`` of the model's absorbed MLA: ``(kv_lora_rank + qk_rope_head_dim, kv_lora_rank)``."""
    return hf_config.kv_lora_rank + hf_config.qk_rope_head_dim, hf_config.kv_lora_rank


def configured_backends() -> tuple[Optional[str], Optional[str]]:
    """(prefill, decode) flag values in effect in this process, after resolution.

    Reads the host's published config (``get_exec().kernel``), which every
    process of a server has: the launcher resolves the ServerArgs record once
    (the plugin's resolution hook fills in defaults) and children unpickle it.
    """
    from sglang.srt.runtime_context import get_exec

    kernel = get_exec().kernel
    return kernel.dsa_prefill_backend, kernel.dsa_decode_backend
