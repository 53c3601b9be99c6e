"""What dsv32-plugin serves today, where a start-up refusal and the launch-command generator must agree.

No torch or sglang import: the command-line tools read this too.
"""

from __future__ import annotations

from typing import Optional

# Checkpoint quantizations (sglang's ModelConfig.quantization) the plugin's DeepSeek-V3.2 model loads:
# unquantised, and DeepSeek's FP8 with 128x128 block scales. ModelOpt NVFP4 (modelopt_fp4) and the rest
# would reach a model that builds its layers without them.
LOADABLE_QUANTIZATIONS = (None, "fp8")


def quantization_refusal(quantization: Optional[str]) -> Optional[str]:
    """Why a checkpoint in ``quantization`` cannot be served (naming the flag and the way out), or None."""
    if quantization in LOADABLE_QUANTIZATIONS:
        return None
    return (
        f"--quantization {quantization}: dsv32-plugin's DeepSeek-V3.2 loads bf16 and FP8 block-scaled "
        "checkpoints only; serve this checkpoint with sglang's in-tree DeepSeek-V3.2 (prefix the command "
        "with SGLANG_PLUGINS=none), or use the FP8 checkpoint deepseek-ai/DeepSeek-V3.2"
    )
