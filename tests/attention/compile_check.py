"""Every Triton kernel of the package, compiled for every GPU the plugin claims, on a CPU machine.

    python compile_check.py OUT_DIR        (from tests/attention; ~4 min on 2 cores)

1. Record (``TRITON_INTERPRET=1``, nothing runs): for each target of ``TARGETS``, under
   ``configured_for(target)``, the DSA backend makes the calls a server makes
   (``server_calls.py``: every shape of ``SHAPES``, both KV formats) and every Triton
   launch is recorded (``launch_recorder.py``) -> ``OUT_DIR/launches.json``, with the
   integer arguments that were 1 in some call (``can_be_one``).
2. Compile (``compile_launches.py``, no interpreter): with the Triton torch brings and,
   at the same time, with the oldest Triton the package claims (installed beside it by
   ``scripts/install_cpu.sh``) -> ``OUT_DIR/results-<triton version>.json``.

The test (``test_compile_targets.py``) reads the results; tests/conftest.py starts this
script in the background when the test is collected, so it overlaps the rest of the suite.
"""

from __future__ import annotations

import collections
import json
import os
import pathlib
import signal
import subprocess
import sys

HERE = pathlib.Path(__file__).resolve().parent
OLDEST_TRITON_DIR = pathlib.Path(sys.prefix) / "triton-oldest"  # scripts/install_cpu.sh puts it there

# name -> (compute capability, SMs of a GPU of that kind, pre-sm89 path forced)
TARGETS = {
    "sm80": (80, 108, False),  # A100
    "sm86": (86, 72, False),  # A10
    "sm89": (89, 142, False),  # L40S, RTX 4090
    "sm90": (90, 132, False),  # H100, H200
    "sm90-pre-sm89": (90, 132, True),  # DSV32_TRITON_PRE_SM89=1: the sm80/sm86 path on Hopper
    "sm100": (100, 148, False),  # B200
    "sm120": (120, 188, False),  # RTX PRO 6000 Blackwell
}


def record(path: pathlib.Path) -> None:
    """Step 1 (run under TRITON_INTERPRET=1)."""
    import pytest

    from dsv32_plugin.kernels.target import Target, configured_for
    from launch_recorder import distinct, recording_launches
    from server_calls import KV_DTYPES, SHAPES, make_backend, run_server_calls

    targets, ones = {}, collections.defaultdict(set)
    for name, (arch, sms, pre_sm89) in TARGETS.items():
        with pytest.MonkeyPatch.context() as monkeypatch, configured_for(Target(arch, sms, pre_sm89)), \
                recording_launches() as launches:
            for shape in SHAPES:
                for kv_dtype in KV_DTYPES.values():
                    backend = make_backend(shape, kv_dtype, "cpu", "triton", monkeypatch, triton_cache_ops=True)
                    run_server_calls(backend, shape, "cpu")
        for launch in launches:
            ones[launch["kernel"]].update(i for i, a in enumerate(launch["args"]) if type(a) is int and a == 1)
        targets[name] = {"arch": arch, "launches": distinct(launches)}
    can_be_one = {kernel: sorted(indices) for kernel, indices in sorted(ones.items()) if indices}
    path.write_text(json.dumps({"targets": targets, "can_be_one": can_be_one}))


def _compile(launches: pathlib.Path, out_dir: pathlib.Path, triton_dir: pathlib.Path | None) -> subprocess.Popen:
    env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}
    env["TRITON_CACHE_DIR"] = str(out_dir / f"triton-cache-{'oldest' if triton_dir else 'torch'}")
    if triton_dir:
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(triton_dir), env.get("PYTHONPATH")]))
    name = "oldest" if triton_dir else "torch"
    return subprocess.Popen(
        [sys.executable, str(HERE / "compile_launches.py"), str(launches), str(out_dir / f"results-{name}.json")],
        cwd=HERE, env=env, stdout=open(out_dir / f"compile-{name}.log", "w"), stderr=subprocess.STDOUT,
    )


def main(out_dir: str) -> None:
    out = pathlib.Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    launches = out / "launches.json"
    record(launches)
    jobs = [_compile(launches, out, None)]
    if OLDEST_TRITON_DIR.is_dir():
        jobs.append(_compile(launches, out, OLDEST_TRITON_DIR))
    for job in jobs:
        job.wait()
    (out / "done").write_text("".join(f"{job.args[-1]} {job.returncode}\n" for job in jobs))


def start(out_dir: pathlib.Path) -> subprocess.Popen:
    """Run ``main`` in the background, at low priority (tests/conftest.py)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ, TRITON_INTERPRET="1")
    return subprocess.Popen(
        [sys.executable, str(HERE / "compile_check.py"), str(out_dir)], cwd=HERE, env=env,
        stdout=open(out_dir / "record.log", "w"), stderr=subprocess.STDOUT, preexec_fn=lambda: os.nice(10),
        start_new_session=True,  # its own process group: stop() ends the compilers too
    )


def stop(job: subprocess.Popen) -> None:
    """End a ``start`` job and its compiler processes."""
    if job.poll() is None:
        os.killpg(job.pid, signal.SIGKILL)
        job.wait()


if __name__ == "__main__":
    main(sys.argv[1])
