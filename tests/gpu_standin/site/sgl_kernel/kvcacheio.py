"""Host-memory KV transfer ops (HiCache): imported by the host's memory pools, not used without HiCache."""

from __future__ import annotations

from ._calls import missing, stubs

IMPORT_ONLY = (
    "transfer_kv_all_layer", "transfer_kv_all_layer_direct_lf_pf", "transfer_kv_all_layer_lf_pf",
    "transfer_kv_all_layer_lf_ph", "transfer_kv_all_layer_mla", "transfer_kv_all_layer_mla_lf_pf",
    "transfer_kv_direct", "transfer_kv_per_layer", "transfer_kv_per_layer_direct_pf_lf",
    "transfer_kv_per_layer_mla", "transfer_kv_per_layer_mla_pf_lf", "transfer_kv_per_layer_pf_lf",
    "transfer_kv_per_layer_ph_lf",
)
globals().update(stubs(__name__, IMPORT_ONLY))


def __getattr__(name):
    raise missing(__name__, name)
