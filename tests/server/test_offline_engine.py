"""The README's offline-engine example, run as written in a child process (a dying engine kills its
parent's process group): with the plugin's one line it generates; without it, a GPU-less install fails
at `import sglang`, as the README says."""

import importlib.util
import os
import pathlib
import re
import subprocess
import sys

import pytest

pytestmark = pytest.mark.server

README = pathlib.Path(__file__).resolve().parents[2] / "README.md"
ONE_LINE = "import dsv32_plugin; dsv32_plugin.register()"


def readme_example() -> str:
    section = README.read_text().split("### From Python: sglang's offline engine", 1)[1]
    return re.search(r"```python\n(.*?)```", section, re.S).group(1)


def run(script: str, cwd: pathlib.Path) -> subprocess.CompletedProcess:
    (cwd / "engine.py").write_text(script)
    env = {k: v for k, v in os.environ.items() if k not in ("TRITON_INTERPRET", "SGLANG_PLUGINS")}
    return subprocess.run([sys.executable, "engine.py"], cwd=cwd, env=env | {"SGLANG_USE_CPU_ENGINE": "1"},
                          capture_output=True, text=True, timeout=600, start_new_session=True)


def test_the_readme_example_generates(tmp_path, tiny_v32_checkpoint):
    (tmp_path / "tiny-v32").symlink_to(tiny_v32_checkpoint)  # where the README's example looks
    example = readme_example()
    assert example.startswith(ONE_LINE)
    done = run(example, tmp_path)
    assert done.returncode == 0, done.stderr[-4000:]
    assert done.stdout.strip(), done.stderr[-4000:]  # the generated text (random weights: any text)
    assert "dsv32-plugin DSA backend: prefill=torch decode=torch" in done.stderr


def test_without_the_line_a_gpu_less_install_fails_at_import(tmp_path):
    if importlib.util.find_spec("sgl_kernel") is not None:
        pytest.skip("sgl_kernel is installed here")
    done = run(readme_example().replace(ONE_LINE, ""), tmp_path)
    assert done.returncode != 0
    assert "No module named 'sgl_kernel'" in done.stderr
