"""Every ``from dsv32_plugin... import name`` and ``import dsv32_plugin...`` in the tests and benchmarks resolves.

GPU tests and device scripts import inside their functions, so a module that moved (the kernel
folders of the architecture step) would only fail on a GPU machine; this finds it on the CPU.
"""

from __future__ import annotations

import ast
import importlib
import pathlib

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]


def plugin_imports() -> list[tuple[str, str, str]]:
    """(file:line, module, name) of every import of the plugin in tests/ and benchmarks/ (name ``*``: the module)."""
    out = []
    for folder in ("tests", "benchmarks"):
        for path in sorted((ROOT / folder).rglob("*.py")):
            tree = ast.parse(path.read_text(), str(path))
            for node in ast.walk(tree):
                where = f"{path.relative_to(ROOT)}:{getattr(node, 'lineno', 0)}"
                if isinstance(node, ast.ImportFrom) and node.level == 0 and (node.module or "").startswith("dsv32_plugin"):
                    out += [(where, node.module, alias.name) for alias in node.names]
                elif isinstance(node, ast.Import):
                    out += [(where, alias.name, "*") for alias in node.names if alias.name.startswith("dsv32_plugin")]
    return out


def test_every_plugin_import_of_the_tests_and_benchmarks_resolves():
    missing = []
    for where, module, name in plugin_imports():
        try:
            mod = importlib.import_module(module)
        except ImportError as exc:
            missing.append(f"{where}: {module} ({exc})")
            continue
        if name != "*" and not hasattr(mod, name):
            try:
                importlib.import_module(f"{module}.{name}")
            except ImportError:
                missing.append(f"{where}: {module}.{name}")
    assert not missing, "\n".join(missing)


if __name__ == "__main__":
    pytest.main([__file__])
