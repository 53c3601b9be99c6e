"""The CPU stand-in for sgl_kernel is installed only when needed, and spawned host processes see it."""

import pathlib

from pyrun import last_json, run_python

from dsv32_plugin.hooks.cpu_fallbacks import SHIM_DIR


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
    assert result["touches"] == ["sys.path[dsv32_plugin/sgl_kernel_cpu/shim]", "sys.modules[sgl_kernel]"]


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
