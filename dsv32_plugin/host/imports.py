"""The sglang modules dsv32-plugin's code imports, read from its own sources.

Together with ``touches`` this is what an sglang upgrade must re-check: every hooked target,
and every host module the models, attention backend, parsers and hooks build on. Read with
``ast`` (nothing is imported), so imports inside functions count too.
"""

from __future__ import annotations

import ast
import os
import pathlib
from collections import defaultdict

PACKAGE_DIR = pathlib.Path(__file__).resolve().parents[1]
HOST_PACKAGE = "sglang"


def _imported_modules(tree: ast.AST) -> set[str]:
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module)
    return {n for n in names if n == HOST_PACKAGE or n.startswith(HOST_PACKAGE + ".")}


def _sources(package_dir: pathlib.Path):
    # followlinks: in a clone, dsv32_plugin/kernels, parsers and templates link to the top-level folders
    for root, dirs, files in os.walk(package_dir, followlinks=True):
        dirs[:] = sorted(d for d in dirs if d != "__pycache__")
        for name in sorted(files):
            if name.endswith(".py"):
                yield pathlib.Path(root) / name


def host_imports(package_dir: pathlib.Path = PACKAGE_DIR) -> dict[str, list[str]]:
    """Host module -> the plugin files (relative to the package, e.g. ``models/moe.py``) importing it."""
    users = defaultdict(list)
    for path in _sources(package_dir):
        for module in _imported_modules(ast.parse(path.read_text(), str(path))):
            users[module].append(path.relative_to(package_dir).as_posix())
    return {module: sorted(users[module]) for module in sorted(users)}
