"""The radix-cache crash seen on the H200 (``insert value must be an int64 tensor, got Uint8``) is
the Rust TreeCore binary meeting a torch it was not built for (``tree_core_probe.py``).

With the torch sglang pins (this CPU venv) the probe round-trips an int64 tensor; under any
other torch (the device image) it must fail the way the server did -- if it does not, the
diagnosis is wrong and the harness's switch to the Python TreeCore hides a different bug.
"""

from __future__ import annotations

import re
from importlib.metadata import requires

import pytest
import torch

from tree_core_probe import probe_in_subprocess


def sglang_pinned_torch() -> str:
    (pin,) = [r for r in requires("sglang") if re.match(r"torch\s*==", r)]
    return pin.split("==")[1].strip()


@pytest.mark.parametrize("device", ["cpu", pytest.param("cuda", marks=pytest.mark.gpu)])
def test_rust_tree_core_reads_tensors_only_under_the_pinned_torch(device):
    result = probe_in_subprocess(device)
    if torch.__version__.split("+")[0] == sglang_pinned_torch():
        assert result["ok"], result
    else:
        assert not result["ok"] and "must be an int64 tensor" in result["error"], result
