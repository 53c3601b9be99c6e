"""Compile recorded Triton launches for GPU targets, on a machine without a GPU.

    python compile_launches.py LAUNCHES.json RESULTS.json

LAUNCHES.json (``test_compile_targets.py`` writes it from ``launch_recorder.py`` records)::

    {"targets": {"<name>": {"arch": 90, "launches": [launch, ...]}},
     "can_be_one": {"<module:kernel>": [index of a positional argument, ...]}}

Run without ``TRITON_INTERPRET`` (the kernels must be ``JITFunction``s), with the Triton to
check first on ``PYTHONPATH``. For each target a stand-in Triton driver answers
``get_current_target()`` with that GPU and each launch is compiled by
``JITFunction.warmup`` on CPU tensors of the recorded dtypes and alignment: the whole
pipeline (TTIR, TTGIR, LLVM IR, PTX, ptxas) runs, nothing is launched.

``can_be_one`` lists, per kernel, the integer arguments that were 1 in some recorded call.
Triton turns an integer argument equal to 1 into a compile-time constant, which folds code
the other values keep (the in-server failure of the sparse MLA prefill kernel,
docs/kernels.md): each such argument must be ``do_not_specialize`` in its kernel (a failure
otherwise), and every launch is compiled again with each of them set to 1 on its own
(Triton's cache then finds the kernel already compiled: the value cannot change the code).

RESULTS.json: ``{"triton": version, "targets": {name: {"compiled": n, "seconds": s,
"failures": [...]}}}``, a failure naming the kernel, the variant and the compiler's error lines.
"""

from __future__ import annotations

import importlib
import json
import sys
import time

import torch
import triton
from triton.backends.compiler import GPUTarget
from triton.backends.driver import DriverBase
from triton.runtime import driver


class StandInDriver(DriverBase):
    """A Triton driver for a GPU this machine does not have: it only answers what compiling asks."""

    def __init__(self, arch: int):
        self.arch = arch

    @staticmethod
    def is_active():
        return False

    def get_current_device(self):
        return self.arch  # one JIT cache per target: JITFunction keeps its compiled kernels per device

    def set_current_device(self, device):
        pass

    def get_current_stream(self, device=None):
        return 0

    def get_current_target(self):
        return GPUTarget("cuda", self.arch, 32)

    def get_active_torch_device(self):
        return torch.device("cpu")

    def get_device_interface(self):
        return torch.cuda

    def map_python_to_cpp_type(self, ty):
        return ty

    def get_benchmarker(self):
        raise RuntimeError("the stand-in driver compiles only")

    def get_empty_cache_for_benchmark(self):
        raise RuntimeError("the stand-in driver compiles only")

    def clear_cache(self, cache):
        pass


def _tensor(spec: dict) -> torch.Tensor:
    """A small CPU tensor of the recorded dtype at a 16-byte-aligned address, or one element past one."""
    dtype = getattr(torch, spec["tensor"])
    storage = torch.empty(128, dtype=torch.uint8)
    offset = (-storage.data_ptr()) % 16 + (0 if spec["aligned"] else dtype.itemsize)
    return storage[offset:offset + 64].view(dtype)


def _value(arg):
    return _tensor(arg) if isinstance(arg, dict) else arg


def _variants(launch: dict, can_be_one: list[int]):
    """(name, args): as recorded, then each argument that can be 1 set to 1 on its own."""
    args = [_value(a) for a in launch["args"]]
    yield "as recorded", args
    for i in can_be_one:
        if launch["args"][i] != 1:
            yield f"argument {i} = 1", args[:i] + [1] + args[i + 1:]


def _kernel(name: str):
    module, function = name.split(":")
    return getattr(importlib.import_module(module), function)


def _error_lines(exc: Exception, limit: int = 6) -> list[str]:
    """The exception's type and its last lines (Triton puts the cause last, after the source excerpt)."""
    lines = [line for line in str(exc).splitlines() if line.strip()]
    return [type(exc).__name__] + lines[-limit:]


def specialised_ones(can_be_one: dict[str, list[int]]) -> list[dict]:
    """Failures for arguments that can be 1 but that Triton would specialise."""
    failures = []
    for name, indices in can_be_one.items():
        params = _kernel(name).params
        for i in indices:
            if not params[i].do_not_specialize:
                failures.append({"kernel": name, "variant": f"argument {i} ({params[i].name}) = 1",
                                 "error": [f"{params[i].name} can be 1 in the server's calls but is specialised: "
                                           "add it to the kernel's do_not_specialize"]})
    return failures


def compile_target(arch: int, launches: list[dict], can_be_one: dict[str, list[int]]) -> dict:
    driver.set_active(StandInDriver(arch))
    compiled, failures = 0, []
    for launch in launches:
        kernel = _kernel(launch["kernel"])
        for variant, args in _variants(launch, can_be_one.get(launch["kernel"], [])):
            try:
                kernel.warmup(*args, grid=(1,), **launch["kwargs"])
                compiled += 1
            except Exception as exc:  # noqa: BLE001 -- every compiler failure is a result
                failures.append({"kernel": launch["kernel"], "variant": variant, "kwargs": launch["kwargs"],
                                 "error": _error_lines(exc)})
    return {"compiled": compiled, "failures": failures}


def main(launch_file: str, result_file: str) -> None:
    with open(launch_file) as f:
        recorded = json.load(f)
    can_be_one = recorded["can_be_one"]
    results = {"triton": triton.__version__, "policy_failures": specialised_ones(can_be_one), "targets": {}}
    for name, target in recorded["targets"].items():
        start = time.monotonic()
        result = compile_target(target["arch"], target["launches"], can_be_one)
        result["seconds"] = round(time.monotonic() - start, 1)
        results["targets"][name] = result
        print(f"{name}: {result['compiled']} launches compiled, {len(result['failures'])} failed, "
              f"{result['seconds']} s", flush=True)
    with open(result_file, "w") as f:
        json.dump(results, f, indent=1)


if __name__ == "__main__":
    main(*sys.argv[1:])
