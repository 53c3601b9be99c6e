"""scripts/install_cpu.sh leaves out exactly the sglang requirements it lists, and says why (its comments)."""

import importlib.util
import pathlib
import re
import subprocess
import sys

SCRIPT = pathlib.Path(__file__).resolve().parents[1] / "scripts" / "install_cpu.sh"


def normalized(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()  # PEP 503: flashinfer_python is flashinfer-python


def listed(name: str) -> set[str]:
    return {normalized(n) for n in re.search(rf"^{name}=\((.*?)\)", SCRIPT.read_text(), re.M | re.S).group(1).split()}


def test_pip_check_lists_only_what_the_script_leaves_out_on_purpose():
    done = subprocess.run([sys.executable, "-m", "pip", "check"], capture_output=True, text=True, timeout=120)
    missing = {normalized(n) for n in re.findall(r"^sglang \S+ requires ([\w.-]+)", done.stdout, re.M)}
    other = [line for line in done.stdout.splitlines() if line and "which is not installed" not in line]
    gpu, unused = listed("LEFT_OUT_GPU"), listed("LEFT_OUT_UNUSED")
    assert not gpu & unused and not other, other
    assert missing <= gpu | unused, f"left out but not listed in install_cpu.sh: {missing - gpu - unused}"
    if importlib.util.find_spec("sgl_kernel") is None:  # the lean CPU install itself: every listed one is out
        assert missing == gpu | unused, f"listed but installed: {(gpu | unused) - missing}"
