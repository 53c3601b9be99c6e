"""The hardware and model variants the launch-command generator knows (DeepSeek-V3.2 cookbook §3).

Memory figures are what one GPU offers; weight sizes are the checkpoints' (the FP8 ones: 671B
parameters + the MTP layer, ~690 GB as published; NVFP4: estimated, routed experts at 4.5 bits per
weight and the rest as in the FP8 checkpoint).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

from dsv32_plugin.attention.dispatch import recommended_backends


@dataclass(frozen=True)
class Hardware:
    name: str
    capability: tuple[int, int]  # CUDA compute capability; (0, 0) for AMD
    memory_gb: int
    gpus_per_node: int
    nvidia: bool = True

    @property
    def blackwell(self) -> bool:
        return self.nvidia and self.capability[0] == 10


HARDWARE: dict[str, Hardware] = {
    "h100": Hardware("NVIDIA H100", (9, 0), 80, 8),
    "h200": Hardware("NVIDIA H200", (9, 0), 141, 8),
    "b200": Hardware("NVIDIA B200", (10, 0), 180, 8),
    "gb200": Hardware("NVIDIA GB200", (10, 0), 186, 4),
    "mi300x": Hardware("AMD Instinct MI300X", (0, 0), 192, 8, nvidia=False),
    "mi355x": Hardware("AMD Instinct MI355X", (0, 0), 288, 8, nvidia=False),
}

# The KV cache per GPU generation: FP8 (FlashMLA's FP8 sparse decode, half the bytes of bf16 rows) on
# Hopper and Blackwell. The cookbook (§3.3) gives Hopper bf16 with the fa3 decode kernel, which has
# never run with the plugin; the FP8 configuration has (docs/perf.md).
KV_CACHE_DTYPES: dict[int, str] = {9: "fp8_e4m3", 10: "fp8_e4m3"}


def attention_flags(hardware: Hardware) -> tuple[str, ...]:
    """The DSA kernel and KV-cache flags for ``hardware``: the kernels are the server's own defaults
    there (``dispatch.recommended_backends``), so the command and the server agree."""
    major = hardware.capability[0]
    prefill, decode = recommended_backends(major)
    return ("--dsa-prefill-backend", prefill, "--dsa-decode-backend", decode, "--kv-cache-dtype", KV_CACHE_DTYPES[major])


@dataclass(frozen=True)
class Variant:
    model_path: str
    weights_gb: int
    quantization: Optional[str]  # sglang's name for the checkpoint's quantization
    tool_call_parser: Optional[str]  # None: the model does not call tools
    chat_template: Optional[str] = None  # a dsv32_plugin.templates file the tool parser needs


VARIANTS: dict[str, Variant] = {
    "v3.2": Variant("deepseek-ai/DeepSeek-V3.2", 690, "fp8", "deepseekv32"),
    "v3.2-exp": Variant("deepseek-ai/DeepSeek-V3.2-Exp", 690, "fp8", "deepseekv31", "deepseek_v32_exp.jinja"),
    "v3.2-speciale": Variant("deepseek-ai/DeepSeek-V3.2-Speciale", 690, "fp8", None),
    "v3.2-nvfp4": Variant("nvidia/DeepSeek-V3.2-NVFP4", 410, "modelopt_fp4", "deepseekv32"),
}

# Share of a GPU's memory the weights may take; the rest holds the KV cache and activations.
WEIGHT_SHARE = 0.85


def gpus_needed(variant: Variant, hardware: Hardware) -> int:
    """The fewest GPUs, a power of two, whose memory holds the weights with room for the KV cache."""
    gpus = 1
    while variant.weights_gb > gpus * hardware.memory_gb * WEIGHT_SHARE:
        gpus *= 2
    return gpus
