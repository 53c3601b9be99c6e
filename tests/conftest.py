"""Shared test set-up: shadowing guard, Triton interpreter on CPU, hardware markers."""

import importlib.util
import os
import pathlib

import pytest

REPO_ROOT = pathlib.Path(__file__).resolve().parents[1]


def _guard_repo_root_shadowing() -> None:
    # `python -m pytest` from the repo root puts the root on sys.path: the repo's kernels/ would shadow
    # Hugging Face's `kernels` (sglang imports it for FA3), and the tests would check the source tree
    # (complete through its dsv32_plugin/kernels etc. links) instead of the installed package.
    spec = importlib.util.find_spec("kernels")
    if spec and spec.origin and pathlib.Path(spec.origin).resolve().is_relative_to(REPO_ROOT):
        raise pytest.UsageError(
            "the repo root is on sys.path and shadows installed packages; run `pytest`, "
            "not `python -m pytest`"
        )


_guard_repo_root_shadowing()


def _has_cuda() -> bool:
    try:
        import torch
    except ImportError:
        return False
    return torch.cuda.is_available()


# Without CUDA, Triton kernels run in the interpreter. @triton.jit reads TRITON_INTERPRET when a kernel
# module is imported, so it is set here, before collection imports any test module: setting it in one
# test module is too late for helpers another test module imported first (they stay compiled-mode
# and fail when an interpreted kernel calls them). Subprocesses of tests clear it (tests/pyrun.py,
# dsv32_plugin.testing.server) unless a test asks for it.
if not _has_cuda():
    os.environ.setdefault("TRITON_INTERPRET", "1")


@pytest.fixture(scope="session")
def tiny_v32_checkpoint(tmp_path_factory) -> pathlib.Path:
    """The default tiny DeepSeek-V3.2 checkpoint (bf16 random weights, seed 0), built once per session.

    Shared: read it, never write into it (a test that changes weights builds its own).
    """
    from dsv32_plugin.testing import make_tiny_checkpoint

    return make_tiny_checkpoint(tmp_path_factory.mktemp("session-tiny-v32") / "tiny-v32")


def pytest_collection_modifyitems(config, items):
    if _has_cuda():
        return
    skip_gpu = pytest.mark.skip(reason="needs a CUDA GPU")
    for item in items:
        if item.get_closest_marker("gpu"):  # not `"gpu" in item.keywords`: that also matches tests/gpu/
            item.add_marker(skip_gpu)

