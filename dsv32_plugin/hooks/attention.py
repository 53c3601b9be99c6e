"""Attention registration: the plugin's DSA backend and KV pool for DeepSeek-V3.2.

* ``ATTENTION_BACKENDS["dsa"]`` and ``["nsa"]`` (the names the host resolves
  DeepSeek-V3.2 to; the host's DSA-name literals keep working) build the
  plugin's ``DSABackend`` for V3.2 models and the host's backend otherwise.
* The KV-cache configurator's DSA pool class becomes ``DSAIndexedKVPool``
  for V3.2 models (any ``index_head_dim``, exact float32 indexer cache).
* Memory sizing counts the plugin's indexer-cache bytes per token.
* EAGLE/MTP: the draft-extend and multi-step draft-decode backends of a V3.2
  draft are the plugin's too (the host's draft factory constructs its own DSA
  classes directly); draft top-k > 1 is refused with a clear message.
* The configurator's CPU guard "CPU FP8 KV cache is only supported for MHA"
  is lifted for V3.2: the plugin's pool stores FP8 MLA rows and its backend
  reads them on any device.
"""

from __future__ import annotations

from dsv32_plugin.hooks import ledger
from dsv32_plugin.host import touches
from dsv32_plugin.policy import draft_problems, is_v32, refuse


def backend_factory(host_factory):
    def create(runner):
        if is_v32(runner.model_config.hf_config):
            from dsv32_plugin.attention.backend import DSABackend

            return DSABackend(runner)
        return host_factory(runner)

    return create


def resolve_pool_class(original, self, *, kind, default):
    if kind == "dsa" and is_v32(self.model_config.hf_config):
        from dsv32_plugin.attention.pool import DSAIndexedKVPool

        return DSAIndexedKVPool
    return original(self, kind=kind, default=default)


def indexer_cell_size(original, self, *, kvc, num_layers, **kwargs):
    hf_config = kvc.model_config.hf_config
    if not is_v32(hf_config):
        return original(self, kvc=kvc, num_layers=num_layers, **kwargs)
    from dsv32_plugin.attention.cache_format import DSACacheFormat

    fmt = DSACacheFormat(hf_config.kv_lora_rank, hf_config.qk_rope_head_dim, hf_config.index_head_dim, kvc.kv_cache_dtype)
    return fmt.index_k_bytes_per_token * num_layers


def draft_extend_backend(original, self):
    runner = self.draft_model_runner
    if not is_v32(runner.model_config.hf_config):
        return original(self)
    from dsv32_plugin.attention.backend import DSABackend

    return "dsa", DSABackend(runner)


def draft_decode_backend(original, self):
    if not is_v32(self.draft_model_runner.model_config.hf_config):
        return original(self)
    refuse(draft_problems(eagle_topk=self.topk))
    from dsv32_plugin.attention.draft_backend import DSAMultiStepDraftBackend

    return "dsa", DSAMultiStepDraftBackend(self.draft_model_runner, self.speculative_num_steps)


def last_loc_on_cpu(original, req_to_token, req_pool_indices_tensor, prefix_lens_tensor):
    """CPU tensors take the host's torch version (it dispatches to Triton for any backend but torch_native)."""
    if req_to_token.device.type != "cpu":
        return original(req_to_token, req_pool_indices_tensor, prefix_lens_tensor)
    from sglang.srt.mem_cache.allocation import get_last_loc_torch

    return get_last_loc_torch(req_to_token, req_pool_indices_tensor, prefix_lens_tensor)


class _NotCpuPlatform:
    """The host platform, except that ``is_cpu()`` answers False (only the FP8 guard reads it there)."""

    def __init__(self, platform):
        self._platform = platform

    def is_cpu(self) -> bool:
        return False

    def __getattr__(self, name):
        return getattr(self._platform, name)


def configure_allowing_cpu_fp8(original, self, **kwargs):
    import torch

    if not (is_v32(self.model_config.hf_config) and self.kv_cache_dtype == torch.float8_e4m3fn):
        return original(self, **kwargs)
    import sglang.srt.mem_cache.kv_cache_configurator as configurator

    platform = configurator.current_platform
    configurator.current_platform = _NotCpuPlatform(platform)
    try:
        return original(self, **kwargs)
    finally:
        configurator.current_platform = platform


def install() -> None:
    for touch in (touches.DSA_BACKEND, touches.NSA_BACKEND):
        host_factory = ledger.host_object(touch.owner)[touch.key]
        ledger.set_entry(touch, backend_factory(host_factory))
    ledger.hook(touches.KV_POOL_CLASS, resolve_pool_class)
    ledger.hook(touches.INDEXER_CELL_SIZE, indexer_cell_size)
    ledger.hook(touches.KV_CONFIGURE, configure_allowing_cpu_fp8)
    ledger.hook(touches.DRAFT_EXTEND_BACKEND, draft_extend_backend)
    ledger.hook(touches.DRAFT_DECODE_BACKEND, draft_decode_backend)
    ledger.hook(touches.LAST_LOC, last_loc_on_cpu)
