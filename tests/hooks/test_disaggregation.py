"""The prefill side's early send of a radix-cached prefix under the overlap scheduler, without CUDA.

The host records a ``torch.cuda.Event`` on the forward stream before it sends a cached prefix early
(``maybe_send_cached_prefix_chunk``); without a GPU that dies, so the plugin's hook
(``hooks/disaggregation.py``) gives it an event that has already happened (CPU work is done once
issued). The end-to-end PD tests run EAGLE, whose prefill scheduler has no overlap; this drives the
host's function itself, on a scheduler and a request holding what it reads. (The other hook of the
module, for ``_send_kv_chunk``, runs in every PD transfer of ``tests/e2e/test_pd_disaggregation.py``.)
"""

from types import SimpleNamespace

import pytest
import torch

pytestmark = pytest.mark.skipif(torch.cuda.is_available(), reason="the hook acts only without CUDA")
PAGE = 64


def scheduler_and_request(sent: list):
    scheduler = SimpleNamespace(enable_staging=False, enable_overlap=True, forward_stream=torch.cpu.Stream(),
                                token_to_kv_pool_allocator=SimpleNamespace(page_size=PAGE),
                                send_kv_chunk=lambda req, last_chunk, end_idx: sent.append((last_chunk, end_idx)))
    request = SimpleNamespace(pending_bootstrap=False, prefix_len=2 * PAGE, host_hit_length=0, start_send_idx=0,
                              early_send_prefix_end=None,
                              disagg_kv_sender=SimpleNamespace(_early_send_wait_event=None))
    return scheduler, request


def test_a_cached_prefix_is_sent_early_after_an_event_that_has_happened(host):
    from sglang.srt.disaggregation.prefill import SchedulerDisaggregationPrefillMixin as Prefill

    sent = []
    scheduler, request = scheduler_and_request(sent)
    Prefill.maybe_send_cached_prefix_chunk(scheduler, request)
    assert sent == [(False, 2 * PAGE)]
    event = request.disagg_kv_sender._early_send_wait_event
    event.synchronize()  # what the transfer thread does before it reads the pages
    assert event.query()


def test_the_host_path_needs_the_hook_without_cuda(host):
    from sglang.srt.disaggregation.prefill import SchedulerDisaggregationPrefillMixin as Prefill

    sent = []
    scheduler, request = scheduler_and_request(sent)
    with pytest.raises(RuntimeError):
        Prefill.maybe_send_cached_prefix_chunk.__wrapped__(scheduler, request)
    assert sent == []
