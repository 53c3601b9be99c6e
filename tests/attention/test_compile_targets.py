"""Every Triton kernel of the package compiles for every GPU it claims, with the server's launches.

``compile_check.py`` records the launches the DSA backend makes for a server's calls on each
target (sm80, sm86, sm89, sm90 natively and on the pre-sm89 path, sm100, sm120) and compiles them,
plus each integer argument that can be 1 set to 1, with the Triton torch brings and with the
oldest Triton ``pyproject.toml`` allows. tests/conftest.py starts it in the background when
this test is collected; the test waits for it. Needs no GPU.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import json
import pathlib
import pkgutil

import pytest
import triton
from packaging.requirements import Requirement

import dsv32_plugin.kernels
from compile_check import OLDEST_TRITON_DIR, TARGETS, start

pytestmark = pytest.mark.slow
WAIT_S = 1800


def _package_kernels() -> set[str]:
    """``module:function`` of every launchable ``@triton.jit`` kernel (``*_kernel``) in the package."""
    found = set()
    for info in pkgutil.walk_packages(dsv32_plugin.kernels.__path__, "dsv32_plugin.kernels."):
        module = importlib.import_module(info.name)
        for name, value in vars(module).items():
            if name.endswith("_kernel") and hasattr(value, "fn") and value.fn.__module__ == info.name:
                found.add(f"{info.name}:{name}")
    return found


def _minimum_triton() -> str:
    for line in importlib.metadata.requires("dsv32-plugin") or []:
        requirement = Requirement(line)
        if requirement.name == "triton":
            return next(spec.version for spec in requirement.specifier if spec.operator == ">=")
    raise AssertionError("pyproject.toml declares no triton>= range")


@pytest.fixture(scope="module")
def compile_results(request, tmp_path_factory):
    job = getattr(request.config, "compile_check_job", None)
    out = getattr(request.config, "compile_check_dir", None)
    if job is None:
        out = tmp_path_factory.mktemp("compile_check")
        job = start(out)
    job.wait(timeout=WAIT_S)
    assert job.returncode == 0, (out / "record.log").read_text()[-4000:]
    launches = json.loads((out / "launches.json").read_text())
    results = {name: json.loads((out / f"results-{name}.json").read_text())
               for name in ("torch", "oldest") if (out / f"results-{name}.json").exists()}
    return out, launches, results


def test_the_oldest_claimed_triton_is_installed_beside_torchs():
    minimum = _minimum_triton()
    version = (OLDEST_TRITON_DIR / "triton" / "__init__.py").read_text() if OLDEST_TRITON_DIR.is_dir() else ""
    assert f'__version__ = "{minimum}' in version or f"__version__ = '{minimum}" in version, (
        f"triton {minimum} (pyproject's minimum) is not in {OLDEST_TRITON_DIR}: run scripts/install_cpu.sh")
    assert triton.__version__ != minimum, "torch's Triton is the minimum: the two runs would be one"


def test_every_package_kernel_is_launched_by_the_servers_calls(compile_results):
    _, launches, _ = compile_results
    for name, target in launches["targets"].items():
        assert {launch["kernel"] for launch in target["launches"]} == _package_kernels(), name


@pytest.mark.parametrize("triton_build", ["torch", "oldest"])
def test_every_launch_compiles_for_every_target(compile_results, triton_build):
    out, _, results = compile_results
    assert triton_build in results, (out / f"compile-{triton_build}.log").read_text()[-4000:]
    result = results[triton_build]
    assert not result["policy_failures"], json.dumps(result["policy_failures"], indent=1)
    assert set(result["targets"]) == set(TARGETS)
    failures = {name: target["failures"] for name, target in result["targets"].items() if target["failures"]}
    assert not failures, f"triton {result['triton']}: " + json.dumps(failures, indent=1)[:6000]
    assert all(target["compiled"] > 0 for target in result["targets"].values())
