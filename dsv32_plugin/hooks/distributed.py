"""Multi-rank serving on the CPU: process groups over gloo without PyNccl.

sglang 0.5.23's ``init_model_parallel_group`` builds a PyNccl communicator for
every group unless the platform is NPU/XPU (or the backend mooncake); PyNccl
needs a CUDA device, so ``--tp 2 --device cpu`` dies while creating groups.
For a gloo group whose caller left ``use_pynccl`` unset, the hook passes
``use_pynccl=False``: torch.distributed over gloo then carries the
all-reduce, all-gather and reduce-scatter (which is how CI tests sharding).
NCCL groups (CUDA) are untouched.
"""

from __future__ import annotations

from dsv32_plugin.hooks import ledger
from dsv32_plugin.host import touches


def gloo_without_pynccl(original, group_ranks, local_rank, backend, use_pynccl=None, **kwargs):
    if use_pynccl is None and backend == "gloo":
        use_pynccl = False
    return original(group_ranks, local_rank, backend, use_pynccl=use_pynccl, **kwargs)


def install() -> None:
    ledger.hook(touches.MODEL_PARALLEL_GROUP, gloo_without_pynccl)
