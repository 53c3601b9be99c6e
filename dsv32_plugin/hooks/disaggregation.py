"""Prefill-decode disaggregation on machines without CUDA (how CI runs PD over Mooncake's TCP transport).

The KV transfer itself needs nothing from the plugin but its pool's buffer list
(``DSAIndexedKVPool.get_state_buf_infos``: the indexer cache rides as the host's
``DSA`` state, page by page). Two host paths of the prefill side ask CUDA, and fail
without it; both hooks act only without CUDA:

* ``SchedulerDisaggregationPrefillMixin._send_kv_chunk`` (AROUND): for a sender that
  takes host-tensor page indices (Mooncake's) it copies the indices into pinned
  memory and records a ``torch.cuda.Event`` for the transfer thread to wait on.
  During the call the sender's class answers that it takes no host tensors, so the
  host computes the page indices synchronously on its other branch (``kv_to_page_indices``).
* ``SchedulerDisaggregationPrefillMixin.maybe_send_cached_prefix_chunk`` (AROUND): with
  the overlap scheduler, a request whose prefix comes from the radix cache is sent
  early, after a ``torch.cuda.Event`` recorded on the forward stream, on which the
  transfer thread waits for the previous forward's cache writes. CPU work is done
  when it is issued, so during the call the event is one that has already happened.
"""

from __future__ import annotations

from dsv32_plugin.hooks import ledger
from dsv32_plugin.hooks.replaced import cuda_answered_without_gpu, replaced
from dsv32_plugin.host import touches

HOST_TENSOR_INDICES = "supports_host_tensor_indices"


class _HappenedEvent:
    """A ``torch.cuda.Event`` stand-in for CPU work, which is complete once issued."""

    def record(self, stream=None) -> None:
        pass

    def synchronize(self) -> None:
        pass

    def query(self) -> bool:
        return True


def _around_send_kv_chunk(original, scheduler, req, *args, **kwargs):
    import torch

    sender = type(req.disagg_kv_sender)
    if torch.cuda.is_available() or not getattr(sender, HOST_TENSOR_INDICES, False):
        return original(scheduler, req, *args, **kwargs)
    with replaced(sender, HOST_TENSOR_INDICES, False):
        return original(scheduler, req, *args, **kwargs)


def install() -> None:
    ledger.hook(touches.PD_SEND_KV_CHUNK, _around_send_kv_chunk)
    ledger.hook(touches.PD_EARLY_SEND, cuda_answered_without_gpu("Event", _HappenedEvent))
