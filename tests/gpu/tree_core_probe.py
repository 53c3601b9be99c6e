"""Can sglang's bundled Rust radix TreeCore read torch tensors with the torch installed here?

    python tree_core_probe.py [cpu|cuda]      prints {"torch", "device", "ok", "error"} as one JSON line

The Rust TreeCore (``sglang/srt/mem_cache/rust_tree_core/mem_cache*.so``) reads tensors
through libtorch's C++ API, compiled against the torch sglang 0.5.23 pins (2.14.1). Under
another torch (the H200 image's 2.11) it loads, but reads tensor fields at the wrong offsets:
the first prefill with the radix cache on dies in ``checkpoint_into_tree`` with "insert value
must be an int64 tensor, got Uint8" although the host passes ``.to(torch.int64)``. The probe
inserts one int64 value tensor into a bare TreeCore and reads it back, which fails the same way.

``tree_core_env()`` is what the GPU harness exports for the servers it starts: nothing where
the Rust TreeCore works, else the host's own switch to its Python TreeCore
(``SGLANG_UNIFIED_RADIX_TREE_CORE_BACKEND=python``).
"""

from __future__ import annotations

import json
import subprocess
import sys


def probe(device: str) -> dict:
    import array

    import torch
    from sglang.srt.mem_cache.rust_tree_core.extension import bindings
    from sglang.srt.mem_cache.unified_cache.component_type import ComponentType

    if device == "cuda":  # the host hands the TreeCore an indexed device
        device = f"cuda:{torch.cuda.current_device()}"
    result = {"torch": torch.__version__, "device": device, "ok": False, "error": None}
    try:
        core = bindings.RustUnifiedTreeCoreBinding(
            bindings.TreeCoreInitParamsBinding(eviction_policy="lru", page_size=1, device=device),
            [int(ComponentType.FULL)],
        )
        value = torch.arange(100, 108, dtype=torch.int64, device=device)
        step = core.begin_insert(bindings.InsertParamsBinding(key=array.array("q", range(10, 18)), value=value))
        while step.result is None:
            step = core.resume_insert()
        core.end_insert()
        back = core.all_values_flatten()
        result["ok"] = back.dtype == torch.int64 and back.cpu().tolist() == value.cpu().tolist()
        if not result["ok"]:
            result["error"] = f"read back {back.dtype} {back.cpu().tolist()}"
    except Exception as exc:
        result["error"] = f"{type(exc).__name__}: {exc}"
    return result


def probe_in_subprocess(device: str) -> dict:
    """``probe`` in a fresh interpreter: a misreading extension may also crash."""
    proc = subprocess.run([sys.executable, __file__, device], capture_output=True, text=True, timeout=300)
    lines = proc.stdout.strip().splitlines()
    if proc.returncode != 0 or not lines:
        return {"device": device, "ok": False, "error": f"probe exited {proc.returncode}: {proc.stderr[-1000:]}"}
    return json.loads(lines[-1])


def tree_core_env(device: str = "cuda") -> tuple[dict, dict]:
    """(environment for the servers, the probe's result)."""
    result = probe_in_subprocess(device)
    return ({} if result["ok"] else {"SGLANG_UNIFIED_RADIX_TREE_CORE_BACKEND": "python"}), result


if __name__ == "__main__":
    print(json.dumps(probe(sys.argv[1] if len(sys.argv) > 1 else "cpu")))
