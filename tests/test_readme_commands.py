"""The README's GPU launch commands parse with sglang's own CLI parser once the plugin is loaded."""

import json
import pathlib
import re
import shlex

import pytest
from pyrun import last_json, run_python

README = pathlib.Path(__file__).resolve().parents[1] / "README.md"

PARSE_ALL = """
    import argparse, json, sys
    from sglang.srt.plugins import load_plugins
    from sglang.srt.server_args import ServerArgs
    load_plugins()
    results = []
    for argv in json.load(open("argv.json")):
        parser = argparse.ArgumentParser(exit_on_error=False)
        ServerArgs.add_cli_args(parser)
        try:
            ns = parser.parse_args(argv)
        except (SystemExit, argparse.ArgumentError) as exc:
            results.append({"error": str(exc)})
            continue
        results.append({k: getattr(ns, k) for k in ("tp_size", "dsa_prefill_backend", "dsa_decode_backend",
                                                    "speculative_algorithm", "tool_call_parser")})
    print(json.dumps(results))
"""


def gpu_commands() -> list[list[str]]:
    """argv (after ``sglang.launch_server``) of each command in the README's GPU section."""
    section = README.read_text().split("## Serving DeepSeek-V3.2 on GPUs", 1)[1]
    block = re.search(r"```bash\n(.*?)```", section, re.S).group(1)
    commands = []
    for line in block.replace("\\\n", " ").splitlines():
        if line.strip().startswith("python -m sglang.launch_server"):
            commands.append(shlex.split(line)[3:])
    return commands


def _parse(tmp_path, **env):
    (tmp_path / "argv.json").write_text(json.dumps(gpu_commands()))
    return last_json(run_python(PARSE_ALL, tmp_path, **env))


def _flag(argv: list[str], name: str):
    return argv[argv.index(name) + 1] if name in argv else None


def test_readme_lists_the_gpu_commands():
    flags = {a for argv in gpu_commands() for a in argv if a.startswith("--")}
    assert {"--tp", "--dp", "--ep", "--speculative-algorithm", "--dsa-prefill-backend",
            "--nsa-prefill-backend"} <= flags


def test_every_gpu_command_parses_with_the_plugin(tmp_path):
    for argv, parsed in zip(gpu_commands(), _parse(tmp_path), strict=True):
        assert "error" not in parsed, (argv, parsed)
        assert parsed["tp_size"] == int(_flag(argv, "--tp"))
        for spelling in ("dsa", "nsa"):
            for phase in ("prefill", "decode"):
                given = _flag(argv, f"--{spelling}-{phase}-backend")
                if given:
                    assert parsed[f"dsa_{phase}_backend"] == given, argv
        assert parsed["speculative_algorithm"] == _flag(argv, "--speculative-algorithm")


@pytest.mark.slow
def test_the_nsa_spelling_needs_the_plugin(tmp_path):
    results = _parse(tmp_path, SGLANG_PLUGINS="no_such_plugin")
    for argv, parsed in zip(gpu_commands(), results, strict=True):
        assert ("error" in parsed) == ("--nsa-prefill-backend" in argv), (argv, parsed)
