"""Shared test set-up: shadowing guard, Triton interpreter on CPU, hardware markers."""

import importlib.util
import os
import pathlib
import tempfile

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


_COMPILE_CHECK = "test_compile_targets.py"


def pytest_collection_modifyitems(config, items):
    # The compile check runs in the background from the end of collection (its test waits for it at the end).
    items.sort(key=lambda item: _COMPILE_CHECK in item.nodeid)
    if _has_cuda():
        return
    skip_gpu = pytest.mark.skip(reason="needs a CUDA GPU")
    for item in items:
        if item.get_closest_marker("gpu"):  # not `"gpu" in item.keywords`: that also matches tests/gpu/
            item.add_marker(skip_gpu)


def pytest_collection_finish(session):
    """Start tests/attention/compile_check.py (minutes of compiling) so it overlaps the other tests."""
    if not any(_COMPILE_CHECK in item.nodeid for item in session.items):
        return
    from compile_check import start  # importable: collecting test_compile_targets.py put its folder on sys.path

    session.config.compile_check_dir = pathlib.Path(tempfile.mkdtemp(prefix="dsv32-compile-check-"))
    session.config.compile_check_job = start(session.config.compile_check_dir)


def pytest_sessionfinish(session):
    job = getattr(session.config, "compile_check_job", None)
    if job is not None:
        from compile_check import stop

        stop(job)

