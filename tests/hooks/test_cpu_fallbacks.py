"""The CPU stand-in for sgl_kernel: same results as the host's Triton kernels, installed only when needed."""

import os
import pathlib
import subprocess
import sys

import pytest
import torch
from pyrun import last_json, run_python

from dsv32_plugin.hooks import sgl_kernel_cpu
from dsv32_plugin.hooks.cpu_fallbacks import SHIM_DIR

ORACLE = pathlib.Path(__file__).with_name("host_cpu_ops_oracle.py")


def test_ops_match_the_host_triton_kernels(tmp_path):
    proc = subprocess.run([sys.executable, str(ORACLE)], cwd=tmp_path, capture_output=True, text=True,
                          timeout=300, env=dict(os.environ, TRITON_INTERPRET="1"))
    results = last_json(proc)
    assert len(results) == 20 and all(results.values()), results


@pytest.mark.parametrize("starts, ends, n_out", [
    pytest.param([3], [2], 0, id="start-after-end"),
    pytest.param([0], [9], 9, id="past-row-end"),
    pytest.param([0], [4], 2, id="too-few-slots"),
])
def test_assign_rejects_bad_ranges(starts, ends, n_out):
    table = torch.zeros(2, 8, dtype=torch.int32)
    with pytest.raises(ValueError):
        sgl_kernel_cpu.assign_req_to_token_pool_cpu(
            torch.tensor([1]), table, torch.tensor(starts), torch.tensor(ends), torch.arange(n_out), 8)


def test_copy_rejects_bad_locations():
    buf = torch.zeros(4, 8)
    args = (torch.tensor([buf.data_ptr()]), torch.tensor([32]))
    with pytest.raises(ValueError):
        sgl_kernel_cpu.copy_all_layer_kv_cache_cpu(*args, torch.tensor([0, 1]), torch.tensor([2]))
    with pytest.raises(ValueError):
        sgl_kernel_cpu.copy_all_layer_kv_cache_cpu(*args, torch.tensor([-1]), torch.tensor([2]))
    assert torch.equal(buf, torch.zeros(4, 8))


@pytest.mark.parametrize("name", sgl_kernel_cpu.UNSUPPORTED)
def test_unsupported_ops_say_what_they_are(name):
    with pytest.raises(NotImplementedError, match=name):
        getattr(sgl_kernel_cpu, name)(torch.zeros(1))


def test_installed_without_cuda_and_seen_by_spawned_children(tmp_path):
    result = last_json(run_python("""
        import json, multiprocessing as mp, sys
        import torch
        from dsv32_plugin.hooks import cpu_fallbacks, ledger

        def child(q):  # a spawned process that never calls install(), like the host's scheduler
            import sgl_kernel
            q.put(getattr(sgl_kernel, "DSV32_PLUGIN_STAND_IN", False))

        if __name__ == "__main__":
            cpu_fallbacks.install()
            import sgl_kernel
            try:
                from sgl_kernel import rmsnorm  # a CUDA op: must stay absent so host fallbacks apply
                absent = False
            except ImportError:
                absent = True
            ctx = mp.get_context("spawn")
            q = ctx.Queue()
            p = ctx.Process(target=child, args=(q,))
            p.start()
            in_child = q.get(timeout=120)
            p.join()
            print(json.dumps({"stand_in": sgl_kernel.DSV32_PLUGIN_STAND_IN, "path0": sys.path[0],
                              "rmsnorm_absent": absent, "in_child": in_child,
                              "amx": hasattr(torch.ops.sgl_kernel, "convert_weight_packed"),
                              "touches": [t.target for t in ledger.TOUCHES]}))
    """, tmp_path))
    assert result["stand_in"] and result["in_child"] and result["rmsnorm_absent"] and not result["amx"]
    assert result["path0"] == str(SHIM_DIR)
    assert result["touches"] == ["sys.path[dsv32_plugin/hooks/cpu_shim]", "sys.modules[sgl_kernel]"]


def test_host_cpu_engine_modules_import_with_it(tmp_path):
    proc = run_python("""
        from dsv32_plugin.hooks import cpu_fallbacks
        cpu_fallbacks.install()
        import sglang.srt.mem_cache.memory_pool, sglang.srt.mem_cache.allocation
        import sglang.kernels.ops.speculative.eagle
        print("{}")
    """, tmp_path, SGLANG_USE_CPU_ENGINE="1")
    last_json(proc)


def _fake_sgl_kernel(root: pathlib.Path, init: str) -> pathlib.Path:
    pkg = root / "sgl_kernel"
    pkg.mkdir(parents=True)
    (pkg / "__init__.py").write_text(init)
    (pkg / "version.py").write_text("__version__ = '0.0.0'\n")
    return root


def test_a_loading_sgl_kernel_is_left_alone(tmp_path):
    site = _fake_sgl_kernel(tmp_path / "site", "from sgl_kernel.version import __version__\nCPU_BUILD = True\n")
    result = last_json(run_python("""
        import json, sgl_kernel
        from dsv32_plugin.hooks import cpu_fallbacks, ledger
        cpu_fallbacks.install()
        import sgl_kernel as after
        print(json.dumps({"same": after is sgl_kernel, "touches": len(ledger.TOUCHES)}))
    """, tmp_path, PYTHONPATH=str(site)))
    assert result == {"same": True, "touches": 0}


def test_a_cuda_only_sgl_kernel_is_replaced_with_one_log_line(tmp_path):
    site = _fake_sgl_kernel(tmp_path / "site", "import sgl_kernel.version\n"
                            "raise OSError('libcuda.so.1: cannot open shared object file')\n")
    proc = run_python("""
        import json, logging, sys
        logging.basicConfig(level=logging.INFO)
        from dsv32_plugin.hooks import cpu_fallbacks
        cpu_fallbacks.install()
        import sgl_kernel
        print(json.dumps({"stand_in": getattr(sgl_kernel, "DSV32_PLUGIN_STAND_IN", False),
                          "stale": [m for m in sys.modules if m.startswith("sgl_kernel.")]}))
    """, tmp_path, PYTHONPATH=str(site))
    assert last_json(proc) == {"stand_in": True, "stale": []}
    lines = [ln for ln in proc.stderr.splitlines() if "sgl_kernel unavailable" in ln]
    assert len(lines) == 1 and "OSError: libcuda.so.1" in lines[0]


def test_nothing_is_touched_when_cuda_is_available(tmp_path):
    result = last_json(run_python("""
        import json, sys, torch
        torch.cuda.is_available = lambda: True
        from dsv32_plugin.hooks import cpu_fallbacks, ledger
        cpu_fallbacks.install()
        print(json.dumps({"touches": len(ledger.TOUCHES), "loaded": "sgl_kernel" in sys.modules}))
    """, tmp_path))
    assert result == {"touches": 0, "loaded": False}


def test_speculative_ops_refuse_bad_input():
    from dsv32_plugin.hooks import sgl_kernel_cpu_spec as spec

    with pytest.raises(ValueError):  # an accept length of 0 has no last accepted token
        spec.fill_bonus_tokens_cpu(torch.zeros(2, 3), torch.tensor([1, 0]), torch.zeros(2), 3)
    with pytest.raises(NotImplementedError, match="tree_mask_mode 2"):
        spec.build_tree_kernel_efficient_cpu(*[torch.zeros(1, 2, dtype=torch.int64)] * 8, 1, 1, 2, 2)
    with pytest.raises(ValueError):
        spec.assign_draft_cache_locs_contiguous_cpu(torch.tensor([0]), torch.zeros(1, 8), torch.tensor([6]),
                                                    torch.zeros(4), 8, 2, 2)


def test_greedy_verify_survives_a_cyclic_sibling_list():
    from dsv32_plugin.hooks import sgl_kernel_cpu_spec as spec

    nxt = torch.tensor([[1, -1, -1]])
    sib = torch.tensor([[-1, 2, 1]])  # 1 -> 2 -> 1 -> ...
    acc_idx, acc_num, predicts = torch.full((1, 3), -1), torch.zeros(1, dtype=torch.int64), torch.zeros(3, dtype=torch.int64)
    spec.verify_tree_greedy_cpu(predicts, acc_idx, acc_num, torch.tensor([[0, 5, 6]]), torch.tensor([[0, 1, 2]]),
                                nxt, sib, torch.tensor([7, 7, 7]))
    assert acc_num.tolist() == [0] and acc_idx.tolist() == [[0, -1, -1]] and predicts.tolist() == [7, 0, 0]
