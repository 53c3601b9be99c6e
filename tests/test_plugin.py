"""Registration: entry point, cheap import, idempotence, SGLANG_PLUGINS filtering, broken steps."""

import importlib.metadata
import json
import re

import pytest
from pyrun import last_json, run_python

from dsv32_plugin import __version__

REGISTER_LINE = f"dsv32-plugin {__version__} registering in MainProcess"


def test_entry_point_is_declared():
    eps = importlib.metadata.entry_points(group="sglang.srt.plugins")
    assert [(ep.name, ep.value) for ep in eps if ep.dist.name == "dsv32-plugin"] == [("dsv32", "dsv32_plugin:register")]


def test_import_is_cheap(tmp_path):
    heavy = last_json(run_python("""
        import json, sys
        import dsv32_plugin
        roots = {"torch", "triton", "sglang", "transformers", "numpy", "kernels"}
        print(json.dumps(sorted(m for m in sys.modules if m.split(".")[0] in roots or m.startswith("dsv32_plugin."))))
    """, tmp_path))
    assert heavy == []


def test_register_is_idempotent_and_logs_one_line(tmp_path):
    proc = run_python("""
        import json
        import dsv32_plugin
        from dsv32_plugin.hooks import ledger
        dsv32_plugin.register()
        first = list(ledger.TOUCHES)
        dsv32_plugin.register()
        print(json.dumps({"same": ledger.TOUCHES == first, "n": len(first)}))
    """, tmp_path)
    result = last_json(proc)
    assert result["same"] and result["n"] > 0
    assert proc.stderr.count(REGISTER_LINE) == 1
    assert "dsv32-plugin: step" not in proc.stderr, proc.stderr  # every shipped step installs cleanly


FILTER_PROBE = """
    import json, sys
    from sglang.srt.plugins import load_plugins
    from sglang.srt.plugins.hook_registry import HookRegistry
    load_plugins()
    ours = [t for t, hooks in HookRegistry._hooks.items() for _, _, src in hooks if src and src.plugin_name == "dsv32"]
    print(json.dumps({"plugin_imported": "dsv32_plugin.plugin" in sys.modules, "hooks": len(ours),
                      "sgl_kernel": "sgl_kernel" in sys.modules}))
"""


def test_sglang_plugins_filter_leaves_the_host_untouched(tmp_path):
    result = last_json(run_python(FILTER_PROBE, tmp_path, SGLANG_PLUGINS="some_other_plugin"))
    assert result == {"plugin_imported": False, "hooks": 0, "sgl_kernel": False}


def test_sglang_plugins_naming_dsv32_loads_it(tmp_path):
    proc = run_python(FILTER_PROBE, tmp_path, SGLANG_PLUGINS="dsv32")
    result = last_json(proc)
    assert result["plugin_imported"] and result["hooks"] > 0
    assert REGISTER_LINE in proc.stderr


@pytest.mark.parametrize("step_body, expected", [
    pytest.param("import dsv32_missing_gpu_lib\ndef install(): pass\n",
                 "ModuleNotFoundError: No module named 'dsv32_missing_gpu_lib'", id="missing-dependency"),
    pytest.param("raise OSError('libcuda.so.1: cannot open shared object file')\n",
                 "OSError: libcuda.so.1: cannot open shared object file", id="broken-native-library"),
    pytest.param("def install():\n    raise RuntimeError('host attribute renamed')\n",
                 "RuntimeError: host attribute renamed", id="install-raises"),
])
def test_a_broken_step_costs_one_log_line_and_nothing_else(tmp_path, step_body, expected):
    (tmp_path / "broken_step.py").write_text(step_body)
    proc = run_python("""
        import json
        from dsv32_plugin import plugin
        plugin.STEPS = ("broken_step:install", "dsv32_plugin.hooks.cpu_fallbacks:install")
        plugin.register()
        from dsv32_plugin.hooks import ledger
        print(json.dumps(len(ledger.TOUCHES)))
    """, tmp_path)
    assert last_json(proc) == 2  # the healthy step after it still ran (CPU stand-in: 2 touches)
    lines = [ln for ln in proc.stderr.splitlines() if "broken_step:install" in ln]
    assert len(lines) == 1 and expected in lines[0], proc.stderr
    assert re.search(r"step broken_step:install (skipped|failed)", lines[0])
