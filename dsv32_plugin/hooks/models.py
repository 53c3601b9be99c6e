"""Model registration: the host builds the plugin's DeepSeek-V3.2 target and MTP draft classes.

``ModelRegistry.models`` maps ``config.architectures[0]`` to a class. The target
arch ``DeepseekV32ForCausalLM`` maps to ours. For a draft model the host
rewrites both ``DeepseekV3ForCausalLM`` and ``DeepseekV32ForCausalLM`` to the
shared key ``DeepseekV3ForCausalLMNextN`` (``configs/model_config.py``), so
that key gets a dispatching class: V3.2 configs (with ``index_topk``) build
our MTP draft, every other V3-family config the host's in-tree class.
"""

from __future__ import annotations

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


def install() -> None:
    from sglang.srt.models.deepseek_nextn import DeepseekV3ForCausalLMNextN

    from dsv32_plugin.models.deepseek_v32 import DeepseekV32ForCausalLM

    ledger.set_entry(touches.MODEL_CLASS, DeepseekV32ForCausalLM)
    ledger.set_entry(touches.DRAFT_CLASS, draft_dispatch_class(DeepseekV3ForCausalLMNextN))
