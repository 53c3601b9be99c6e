"""The built wheel holds every subpackage, every module, the templates and the entry points; the source
tree is the same package (dsv32_plugin/kernels etc. link to the top-level folders pyproject maps)."""

import configparser
import pathlib
import shutil
import subprocess
import sys
import tomllib
import zipfile

import pytest

REPO = pathlib.Path(__file__).resolve().parents[1]
PYPROJECT = tomllib.loads((REPO / "pyproject.toml").read_text())
SETUPTOOLS = PYPROJECT["tool"]["setuptools"]
PACKAGE_DIRS = {"dsv32_plugin": "dsv32_plugin", **SETUPTOOLS["package-dir"]}  # dotted root -> source folder
# Folders holding .py files that are package data, not packages (see pyproject package-data).
DATA_ONLY_DIRS = {"dsv32_plugin/sgl_kernel_cpu/shim"}
SKIP = shutil.ignore_patterns(".git", ".venv", "build", "dist", "*.egg-info", "__pycache__", ".pytest_cache", ".benchmarks")


def source_packages() -> dict[str, pathlib.Path]:
    """Dotted name -> source folder, for every folder with an __init__.py under a package root."""
    found = {}
    for dotted_root, folder in PACKAGE_DIRS.items():
        root = REPO / folder
        for init in root.rglob("__init__.py"):
            rel = init.parent.relative_to(root)
            if "__pycache__" in rel.parts:
                continue
            found[".".join((dotted_root, *rel.parts)) if rel.parts else dotted_root] = init.parent
    return found


def wheel_path(dotted: str) -> str:
    return dotted.replace(".", "/")


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> zipfile.ZipFile:
    # Build from a copy: never write build/ or egg-info into the shared working tree.
    src = tmp_path_factory.mktemp("src") / "repo"
    shutil.copytree(REPO, src, ignore=SKIP, symlinks=True)  # as a clone has them
    out = tmp_path_factory.mktemp("dist")
    proc = subprocess.run([sys.executable, "-m", "build", "--wheel", "--no-isolation", "--outdir", str(out)],
                          cwd=src, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    (whl,) = out.glob("dsv32_plugin-*.whl")
    return zipfile.ZipFile(whl)


def test_every_source_package_is_listed_in_pyproject():
    missing = sorted(set(source_packages()) - set(SETUPTOOLS["packages"]))
    assert not missing, f"add to [tool.setuptools] packages in pyproject.toml: {missing}"


def test_the_source_tree_is_the_whole_package():
    # Run from the clone root, Python imports this folder, not the wheel: each mapped subpackage must be
    # reachable inside it, as a relative link (a copy would drift).
    for dotted, folder in SETUPTOOLS["package-dir"].items():
        link = REPO / wheel_path(dotted)
        assert link.is_symlink() and link.readlink() == pathlib.Path("..", folder), (
            f"{link.relative_to(REPO)} must be a link to ../{folder}")


def test_no_module_folder_lacks_an_init():
    for dotted_root, folder in PACKAGE_DIRS.items():
        for py in (REPO / folder).rglob("*.py"):
            parent = py.parent.relative_to(REPO).as_posix()
            assert (py.parent / "__init__.py").exists() or parent in DATA_ONLY_DIRS, (
                f"{parent} holds modules but no __init__.py: it would be left out of the wheel")


def test_wheel_holds_every_package_and_module(wheel):
    names = set(wheel.namelist())
    assert len(names) == len(wheel.namelist()), "a file is in the wheel twice"
    for dotted in sorted(set(SETUPTOOLS["packages"]) | set(source_packages())):
        assert f"{wheel_path(dotted)}/__init__.py" in names, dotted
    for dotted, folder in source_packages().items():
        for py in folder.glob("*.py"):
            assert f"{wheel_path(dotted)}/{py.name}" in names, py


def test_wheel_holds_templates_and_the_cpu_shim(wheel):
    names = set(wheel.namelist())
    jinjas = sorted((REPO / PACKAGE_DIRS["dsv32_plugin.templates"]).glob("*.jinja"))
    assert jinjas, "no templates shipped"
    for jinja in jinjas:
        assert f"dsv32_plugin/templates/{jinja.name}" in names
    assert "dsv32_plugin/sgl_kernel_cpu/shim/sgl_kernel.py" in names


def test_wheel_declares_the_entry_point_and_pin(wheel):
    (ep_file,) = [n for n in wheel.namelist() if n.endswith(".dist-info/entry_points.txt")]
    eps = configparser.ConfigParser()
    eps.read_string(wheel.read(ep_file).decode())
    assert dict(eps["sglang.srt.plugins"]) == {"dsv32": "dsv32_plugin:register"}
    assert dict(eps["console_scripts"]) == {"dsv32-plugin": "dsv32_plugin.cli.main:main"}
    (meta,) = [n for n in wheel.namelist() if n.endswith(".dist-info/METADATA")]
    assert "Requires-Dist: sglang==0.5.23" in wheel.read(meta).decode()


def test_wheel_leaks_no_top_level_names(wheel):
    tops = {n.split("/")[0] for n in wheel.namelist()}
    assert tops == {"dsv32_plugin", next(t for t in tops if t.endswith(".dist-info"))}, tops


def test_wheel_carries_the_license_the_metadata_names(wheel):
    assert PYPROJECT["project"]["license"] == "Apache-2.0"
    text = (REPO / "LICENSE").read_text()
    assert text.split()[:4] == ["Apache", "License", "Version", "2.0,"]
    (meta,) = [n for n in wheel.namelist() if n.endswith(".dist-info/METADATA")]
    assert "License-Expression: Apache-2.0" in wheel.read(meta).decode()
    (shipped,) = [n for n in wheel.namelist() if n.endswith(".dist-info/licenses/LICENSE")]
    assert wheel.read(shipped).decode() == text
