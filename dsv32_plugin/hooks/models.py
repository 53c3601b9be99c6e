"""Model registration: the host builds the plugin's DeepSeek-V3.2 target and MTP draft classes.

``ModelRegistry.models`` maps ``config.architectures[0]`` to a class. The target
arch ``DeepseekV32ForCausalLM`` maps to ours. For a draft model the host
rewrites both ``DeepseekV3ForCausalLM`` and ``DeepseekV32ForCausalLM`` to the
shared key ``DeepseekV3ForCausalLMNextN`` (``configs/model_config.py``), so
that key gets a dispatching class: V3.2 configs (with ``index_topk``) build
our MTP draft, every other V3-family config the host's in-tree class.

Importing the registry imports every host model module. With the CPU ``sgl_kernel`` stand-in,
a dozen of them (Qwen3.5, MiniCPM-V, Grok, ...) read compiled CPU ops from ``torch.ops.sgl_kernel``
at import, which only a CPU build of sgl-kernel registers; the registry skips each with an
"Ignore import error ... 'sgl_kernel' object has no attribute" warning, in every process. During
that one import those warnings are folded into one line of ours (a logging filter on the host
registry's logger, removed right after; nothing else is filtered).
"""

from __future__ import annotations

import contextlib
import logging
import sys
from typing import Iterator

from dsv32_plugin.hooks import ledger
from dsv32_plugin.host import touches
from dsv32_plugin.policy import DRAFT_ARCH, is_v32


def serves_v32(server_args) -> bool:
    """Whether the checkpoint of these server arguments (the record or a resolution view) is V3.2."""
    from sglang.srt.arg_groups.overrides import model_config_of

    return is_v32(model_config_of(server_args).hf_config)


def draft_dispatch_class(host_nextn: type) -> type:
    """Subclass of the host's NextN class whose construction picks ours for V3.2 configs."""

    class DeepseekNextNDispatch(host_nextn):
        def __new__(cls, config, *args, **kwargs):
            if is_v32(config):
                from dsv32_plugin.models.deepseek_v32_mtp import DeepseekV32MTP

                return DeepseekV32MTP(config, *args, **kwargs)
            return super().__new__(cls)

    DeepseekNextNDispatch.__name__ = DeepseekNextNDispatch.__qualname__ = DRAFT_ARCH
    return DeepseekNextNDispatch


MISSING_CPU_OP = "'sgl_kernel' object has no attribute"
logger = logging.getLogger("dsv32_plugin")


class _MissingCpuOps(logging.Filter):
    """Drops the registry's lines about model modules that need compiled sgl_kernel CPU ops; keeps their names."""

    def __init__(self):
        super().__init__()
        self.modules: list[str] = []

    def filter(self, record: logging.LogRecord) -> bool:
        text = record.getMessage()
        if MISSING_CPU_OP not in text:
            return True
        self.modules.append(text.removeprefix("Ignore import error when loading ").split(":", 1)[0])
        return False


@contextlib.contextmanager
def _one_line_for_missing_cpu_ops() -> Iterator[None]:
    if not getattr(sys.modules.get("sgl_kernel"), "DSV32_PLUGIN_STAND_IN", False):
        yield
        return
    host_logger, dropped = logging.getLogger("sglang.srt.models.registry"), _MissingCpuOps()
    host_logger.addFilter(dropped)
    try:
        yield
    finally:
        host_logger.removeFilter(dropped)
    if dropped.modules:
        logger.info("dsv32-plugin: %d sglang model modules need compiled sgl_kernel CPU ops the stand-in lacks "
                    "and are not loaded (%s)", len(dropped.modules),
                    ", ".join(m.rsplit(".", 1)[-1] for m in dropped.modules))


def install() -> None:
    with _one_line_for_missing_cpu_ops():
        import sglang.srt.models.registry  # noqa: F401  (imports every host model module)
    from sglang.srt.models.deepseek_nextn import DeepseekV3ForCausalLMNextN

    from dsv32_plugin.models.deepseek_v32 import DeepseekV32ForCausalLM

    ledger.set_entry(touches.MODEL_CLASS, DeepseekV32ForCausalLM)
    ledger.set_entry(touches.DRAFT_CLASS, draft_dispatch_class(DeepseekV3ForCausalLMNextN))
