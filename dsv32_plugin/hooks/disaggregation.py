"""Prefill-decode disaggregation on machines without CUDA (how CI runs PD over Mooncake's TCP transport).

The KV transfer itself needs nothing from the plugin but its pool's buffer list
(``DSAIndexedKVPool.get_state_buf_infos``: the indexer cache rides as the host's
``DSA`` state, page by page). One host path asks CUDA, and fails without it:

* ``SchedulerDisaggregationPrefillMixin._send_kv_chunk`` (AROUND), CPU only: for a
  sender that takes host-tensor page indices (Mooncake's) it copies the indices
  into pinned memory and records a ``torch.cuda.Event`` for the transfer thread to
  wait on. Without CUDA there is nothing to wait for and no pinned memory: during
  the call the sender's class answers that it takes no host tensors, so the host
  computes the page indices synchronously on its other branch (``kv_to_page_indices``).
"""

from __future__ import annotations

from dsv32_plugin.hooks import ledger
from dsv32_plugin.hooks.replaced import replaced

SEND_KV_CHUNK = "sglang.srt.disaggregation.prefill.SchedulerDisaggregationPrefillMixin._send_kv_chunk"
HOST_TENSOR_INDICES = "supports_host_tensor_indices"


def _around_send_kv_chunk(original, scheduler, req, *args, **kwargs):
    import torch

    sender = type(req.disagg_kv_sender)
    if torch.cuda.is_available() or not getattr(sender, HOST_TENSOR_INDICES, False):
        return original(scheduler, req, *args, **kwargs)
    with replaced(sender, HOST_TENSOR_INDICES, False):
        return original(scheduler, req, *args, **kwargs)


def install() -> None:
    ledger.hook(
        SEND_KV_CHUNK, _around_send_kv_chunk, "AROUND",
        why="no CUDA: the prefill side pins the page indices and records a torch.cuda.Event for senders that "
        "take host tensors (Mooncake); during the call the sender answers it takes none, so the host's "
        "synchronous kv_to_page_indices branch runs",
        undo="drop the hook; a CPU prefill server then dies at its first KV send. Remove when the host skips "
        "pinned memory and CUDA events off CUDA",
    )
