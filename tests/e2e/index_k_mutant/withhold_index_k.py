"""The mutant's step (see ``sitecustomize.py``): the pool publishes its indexer cache with 0-byte pages.

The host's transfer treats a 0-byte DSA entry on either side as elided (``is_elided_entry``, meant
for layers that share another layer's top-k): no index-K byte moves to this decode server, while the
MLA latent rows still do. Its indexer then scores the prompt against the zeros it allocated.
"""

POOL_STATE = "dsv32_plugin.attention.pool.DSAIndexedKVPool.get_state_buf_infos"


def _zero_byte_pages(published, *_args, **_kwargs):
    ptrs, lens, item_lens = published
    return ptrs, lens, [0] * len(item_lens)


def install() -> None:
    from sglang.srt.plugins.hook_registry import HookRegistry, HookType

    HookRegistry.register(POOL_STATE, _zero_byte_pages, HookType.AFTER)
