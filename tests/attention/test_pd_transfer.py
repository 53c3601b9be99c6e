"""The plugin's DSA pools through the host's PD transfer, byte for byte, in every cache format.

What a prefill or decode server registers for the transfer is what its pools publish, gathered by
the host's own functions as its schedulers do (``disaggregation/prefill.py``, ``decode.py``):
the MLA latent cache (``get_kv_transfer_buf_infos``, the MTP draft's appended) and, through
``setup_state_kv_args``, the indexer caches of target and draft as the ``DSA`` state. Here both
sides live in one process, each pool registered with its own Mooncake engine over loopback TCP
(the transport CI's PD servers use), and the host's sender (``MooncakeKVManager._send_kvcache_generic``,
run by a stand-in holding only the manager state it reads) writes a 150-token request's pages,
scattered on both sides, from the prefill pools into the decode pools: the latent rows, then the
DSA state with the host's stride check between the two sides' published layouts.

V3.2's widths (kv_lora_rank 512, rope 64, index_head_dim 128), in the three formats a server
picks: float32 (576 values a row; exact float32 indexer rows), bf16 + FP8 indexer (132 bytes a
key), FP8 KV (FlashMLA's 656-byte rows) + FP8 indexer. After the transfer the decode pools read
back the latent rows and index keys the prefill pools stored, every published page of the request
is byte-equal on both sides, and the decode pools' other pages are untouched.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

pytest.importorskip("mooncake.engine", reason="needs mooncake-transfer-engine (scripts/install_cpu.sh)")

from sglang.srt.disaggregation.base.conn import KVArgs, StateType  # noqa: E402
from sglang.srt.disaggregation.mooncake.conn import MooncakeKVManager  # noqa: E402
from sglang.srt.disaggregation.utils import get_kv_transfer_buf_infos, setup_state_kv_args  # noqa: E402

from dsv32_plugin.attention.pool import DSAIndexedKVPool  # noqa: E402
from dsv32_plugin.kernels.layout import fp8_row_bytes  # noqa: E402

PAGE, DL, R, DI, LAYERS = 64, 512, 64, 128, 2
TOKENS = 150  # two whole pages and a partial one
PREFILL_PAGES, DECODE_PAGES = [3, 1, 4], [6, 2, 7]  # the request's pages on each side
FORMATS = {  # name -> (KV dtype, MLA row bytes, index-K bytes per page)
    "float32-exact": (torch.float32, 4 * (DL + R), 4 * DI * PAGE),
    "bf16-fp8-indexer": (torch.bfloat16, 2 * (DL + R), 132 * PAGE),
    "fp8-kv-fp8-indexer": (torch.float8_e4m3fn, 656, 132 * PAGE),
}


def make_pools(kv_dtype: torch.dtype, pages: int) -> tuple[DSAIndexedKVPool, DSAIndexedKVPool]:
    """(target pool with LAYERS layers, one-layer MTP draft pool), as a server builds them."""
    width = fp8_row_bytes(DL, R) if kv_dtype == torch.float8_e4m3fn else DL + R
    size = pages * PAGE - PAGE
    return tuple(DSAIndexedKVPool(size, PAGE, DL, kv_dtype, R, layers, "cpu", DI, False, width)
                 for layers in (LAYERS, 1))


def host_kv_args(target: DSAIndexedKVPool, draft: DSAIndexedKVPool) -> KVArgs:
    """The transfer buffers of a server with these pools, gathered as the host's schedulers gather them."""
    kv_args = KVArgs()
    kv_args.kv_data_ptrs, kv_args.kv_data_lens, kv_args.kv_item_lens = get_kv_transfer_buf_infos(target)
    for mine, drafts in zip((kv_args.kv_data_ptrs, kv_args.kv_data_lens, kv_args.kv_item_lens),
                            draft.get_contiguous_buf_infos()):
        mine += drafts
    kv_args.kv_layer_ids = []  # the host's build_kv_layer_ids gives [] for MLA pools: positional pairing
    kv_args.num_draft_entries = 1
    kv_args.aux_data_ptrs = kv_args.aux_data_lens = []
    setup_state_kv_args(kv_args, target, draft, LAYERS)
    return kv_args


class HostSender:
    """The ``MooncakeKVManager`` state ``_send_kvcache_generic`` reads for one-rank MLA pools, around an engine."""

    is_mla_backend, is_hybrid_mla_backend, pp_size = True, False, 1
    enable_custom_mem_pool, max_transfer_batch_indices = False, 0
    send = MooncakeKVManager._send_kvcache_generic
    _transfer_data = MooncakeKVManager._transfer_data
    _state_stride_mismatch = MooncakeKVManager._state_stride_mismatch
    _registerable_regions = MooncakeKVManager._registerable_regions
    get_mla_kv_ptrs_with_pp = MooncakeKVManager.get_mla_kv_ptrs_with_pp

    def __init__(self, kv_args: KVArgs, monkeypatch):
        from sglang.srt.distributed.device_communicators.mooncake_transfer_engine import MooncakeTransferEngine

        monkeypatch.setenv("MOONCAKE_PROTOCOL", "tcp")
        self.kv_args, self.state_strides_validated = kv_args, set()
        self.engine = MooncakeTransferEngine("127.0.0.1")
        ptrs, lens = zip(*self._registerable_regions())
        assert self.engine.batch_register(list(ptrs), list(lens)) == 0

    def conclude_failure(self, bootstrap_room, failure_reason):
        raise AssertionError(failure_reason)


def request_slots(pages: list[int]) -> torch.Tensor:
    return (torch.tensor(pages)[:, None] * PAGE + torch.arange(PAGE)).reshape(-1)[:TOKENS]


def fill(pools, slots: torch.Tensor, seed: int) -> None:
    g = torch.Generator().manual_seed(seed)
    for pool in pools:
        for layer in range(pool.layer_num):
            pool.store_mla_kv(layer, slots, torch.randn(TOKENS, DL, generator=g), torch.randn(TOKENS, R, generator=g))
            pool.store_index_k(layer, slots, torch.randn(TOKENS, DI, generator=g))


def caches(pools) -> list[torch.Tensor]:
    """The pools' cache tensors in the order the host publishes them: latent rows (target, draft), index K."""
    return [*(t for pool in pools for t in pool.kv_buffer), *(t for pool in pools for t in pool.index_k_cache)]


def pages(cache: torch.Tensor, ids, page_bytes: int) -> torch.Tensor:
    """The raw bytes of pages ``ids`` of a published buffer, ``[len(ids), page_bytes]``."""
    return cache.reshape(-1).view(torch.uint8).view(-1, page_bytes)[list(ids)]


@pytest.mark.parametrize("fmt", list(FORMATS))
def test_pool_publishes_every_cache_page_by_page(fmt):
    kv_dtype, row_bytes, index_page_bytes = FORMATS[fmt]
    target, draft = make_pools(kv_dtype, pages=8)
    kv_args = host_kv_args(target, draft)
    assert kv_args.state_types == [StateType.DSA]
    tensors = [*target.kv_buffer, *draft.kv_buffer]
    assert [(t.data_ptr(), t.nbytes) for t in tensors] == list(zip(kv_args.kv_data_ptrs, kv_args.kv_data_lens))
    assert kv_args.kv_item_lens == [PAGE * row_bytes] * (LAYERS + 1)
    index_k = [*target.index_k_cache, *draft.index_k_cache]
    assert [(t.data_ptr(), t.nbytes) for t in index_k] == list(zip(kv_args.state_data_ptrs[0],
                                                                    kv_args.state_data_lens[0]))
    assert kv_args.state_item_lens[0] == [index_page_bytes] * (LAYERS + 1)
    for length, item in zip(kv_args.state_data_lens[0], kv_args.state_item_lens[0]):
        assert length == target.index_num_pages * item  # whole pages, page id = slot // 64 as for the latent rows


@pytest.mark.parametrize("fmt", list(FORMATS))
def test_host_transfer_moves_the_request_byte_for_byte(fmt, monkeypatch):
    kv_dtype, _, _ = FORMATS[fmt]
    prefill_pools, decode_pools = make_pools(kv_dtype, pages=6), make_pools(kv_dtype, pages=9)
    src_slots, dst_slots = request_slots(PREFILL_PAGES), request_slots(DECODE_PAGES)
    fill(prefill_pools, src_slots, seed=1)
    prefill, decode = (HostSender(host_kv_args(*pools), monkeypatch) for pools in (prefill_pools, decode_pools))
    before = [cache.clone() for cache in caches(decode_pools)]
    src_pages, dst_pages = np.array(PREFILL_PAGES, np.int32), np.array(DECODE_PAGES, np.int32)
    session = decode.engine.get_session_id()
    assert prefill.send(session, prefill.kv_args.kv_data_ptrs, decode.kv_args.kv_data_ptrs,
                        prefill.kv_args.kv_item_lens, src_pages, dst_pages, executor=None) == 0
    assert prefill.send(session, prefill.kv_args.state_data_ptrs[0], decode.kv_args.state_data_ptrs[0],
                        prefill.kv_args.state_item_lens[0], src_pages, dst_pages, executor=None,
                        state_type=StateType.DSA, dst_item_lens=decode.kv_args.state_item_lens[0],
                        bootstrap_room=1) == 0

    page_bytes = [*prefill.kv_args.kv_item_lens, *prefill.kv_args.state_item_lens[0]]
    for src, dst, old, size in zip(caches(prefill_pools), caches(decode_pools), before, page_bytes, strict=True):
        assert torch.equal(pages(dst, DECODE_PAGES, size), pages(src, PREFILL_PAGES, size))
        others = [p for p in range(dst.nbytes // size) if p not in DECODE_PAGES]
        assert torch.equal(pages(dst, others, size), pages(old, others, size))
    for src, dst in zip(prefill_pools, decode_pools):
        for layer in range(src.layer_num):
            assert torch.equal(dst.mla_rows(layer, dst_slots, torch.float32),
                               src.mla_rows(layer, src_slots, torch.float32))
            for got, want in zip(dst.gather_index_k(layer, dst_slots), src.gather_index_k(layer, src_slots)):
                assert torch.equal(got.float(), want.float())
