"""``dsv32-plugin launch-command``: the whole option grid, each printed command through sglang's parser and
resolution with the plugin loaded on the GPUs it names, every refusal with a reason, and the console script."""

import itertools
import os
import pathlib
import shlex
import subprocess
import sys

import pytest
from deployment_harness import assert_plugin_serves, resolve_commands

from dsv32_plugin.cli import launch_command as lc
from dsv32_plugin.cli.deployments import HARDWARE, VARIANTS, WEIGHT_SHARE, attention_flags
from dsv32_plugin.refusal import StartupRefusal

GRID = [lc.Choice(*values) for values in itertools.product(
    HARDWARE, VARIANTS, lc.STRATEGIES, (False, True), (False, True), (False, True),
    (None, *lc.CP_MODES), (None, *lc.PD_ROLES), (None, 1, 2, 4))]
SHELL = {"${NODE_RANK}": "1", "${HEAD_NODE_IP}": "10.0.0.1"}  # what each node's shell fills in
PARSER_FLAGS = ("--tool-call-parser", "--reasoning-parser", "--chat-template")


def built(choice: lc.Choice):
    try:
        return lc.build(choice)
    except StartupRefusal as refusal:
        return refusal


def shell_argv(command: lc.LaunchCommand) -> list[str]:
    """The printed text as the shell runs it: comments dropped, lines joined, variables filled, words split."""
    text = "\n".join(line for line in command.render().splitlines() if not line.startswith("#"))
    text = text.replace("\\\n", " ")
    for variable, value in SHELL.items():
        text = text.replace(variable, value)
    words = shlex.split(text)
    assert words[:3] == ["python", "-m", "sglang.launch_server"], text
    return words[3:]


def without_parser_flags(argv: list[str]) -> tuple[str, ...]:
    kept, skip = [], False
    for arg in argv:
        skip = arg in PARSER_FLAGS or (skip and not arg.startswith("--"))
        if not skip:
            kept.append(arg)
    return tuple(kept)


@pytest.fixture(scope="module")
def commands():
    """(choice, argv) of every distinct command the grid prints."""
    printed = {}
    for choice in GRID:
        result = built(choice)
        if isinstance(result, lc.LaunchCommand):
            printed.setdefault(result.argv, (choice, shell_argv(result)))
    return list(printed.values())


@pytest.mark.slow
def test_every_printed_command_serves_with_the_plugin(commands, tmp_path):
    # Every command is parsed by sglang's parser; the host's resolution runs once per command shape: the
    # parser flags (a name each, checked by argparse's choices and by the class lookup) do not enter it,
    # so each shape is resolved in its member with the most parser flags.
    shapes = {}
    for choice, argv in commands:
        shape = (choice.hardware, without_parser_flags(argv))
        if len(argv) > len(shapes.get(shape, (None, []))[1]):
            shapes[shape] = (choice, argv)
    jobs = [{"argv": argv, "hardware": choice.hardware, "resolve": False} for choice, argv in commands]
    jobs += [{"argv": argv, "hardware": choice.hardware} for choice, argv in shapes.values()]
    results = resolve_commands(jobs, tmp_path)
    parsed, resolved = results[: len(commands)], results[len(commands):]
    assert len(commands) > 1000 and len(resolved) > 200
    for (choice, argv), result in zip(commands, parsed):
        assert "error" not in result, (choice, argv, result)
    for (choice, argv), result in zip(shapes.values(), resolved):
        assert_plugin_serves(f"{choice}: {shlex.join(argv)}", result)
        fields = result["resolved"]
        defaults = dict(zip(*[iter(attention_flags(HARDWARE[choice.hardware]))] * 2))
        assert (fields["dsa_prefill_backend"], fields["dsa_decode_backend"]) == (
            defaults["--dsa-prefill-backend"], defaults["--dsa-decode-backend"]), choice


def test_gpu_counts_hold_the_weights(commands):
    for choice, argv in commands:
        hardware, variant = HARDWARE[choice.hardware], VARIANTS[choice.variant]
        flag = dict(zip(argv, argv[1:]))
        gpus = int(flag["--tp"]) * int(flag.get("--pp-size", 1))
        nodes = int(flag.get("--nnodes", 1))
        assert variant.weights_gb <= gpus * hardware.memory_gb * WEIGHT_SHARE, (choice, gpus)
        assert gpus <= nodes * hardware.gpus_per_node and (nodes == 1 or gpus == nodes * hardware.gpus_per_node)
        assert choice.nodes in (None, nodes), choice
        # The fewest GPUs that hold it: half of them would not (or the node count was asked for).
        assert choice.nodes or variant.weights_gb > gpus / 2 * hardware.memory_gb * WEIGHT_SHARE, (choice, gpus)


def test_every_refusal_names_an_option_that_was_chosen():
    options = {"hardware": "--hardware", "variant": "--variant", "tools": "--tools", "cp": "--cp", "nodes": "--nodes",
               "strategy": "--strategy"}
    refused = 0
    for choice in GRID:
        result = built(choice)
        if isinstance(result, StartupRefusal):
            refused += 1
            named = result.reason.split(" ", 1)[0].split(":")[0]
            field = next(key for key, option in options.items() if option == named)
            assert getattr(choice, field), (choice, result)  # the option was chosen, not a default
    assert 0 < refused < len(GRID)


@pytest.mark.parametrize("choice, reason", [
    pytest.param(lc.Choice("h200", "v3.2-speciale", tools=True), "does not call tools", id="speciale-tools"),
    pytest.param(lc.Choice("h100", "v3.2-nvfp4"), "needs Blackwell GPUs", id="nvfp4-hopper"),
    pytest.param(lc.Choice("b200", "v3.2-nvfp4"), "SGLANG_PLUGINS=none", id="nvfp4-not-loadable"),
    pytest.param(lc.Choice("h200", "v3.2", "dp-attention", cp="round-robin-split"), "cannot use DP attention",
                 id="round-robin-dp-attention"),
    pytest.param(lc.Choice("h200", "v3.2", "dp-attention", cp="in-seq-split"), "leaving none to split",
                 id="in-seq-split-dp-attention"),
    pytest.param(lc.Choice("h200", "v3.2", "tp", cp="round-robin-split", pd="decode"), "does no prefill",
                 id="cp-on-decode"),
    pytest.param(lc.Choice("h100", "v3.2", nodes=1), "needs 16 NVIDIA H100 GPUs", id="too-few-nodes"),
    pytest.param(lc.Choice("mi355x", "v3.2"), "--dsa-prefill-backend tilelang", id="amd"),
])
def test_impossible_combinations_are_refused_with_the_reason(choice, reason):
    with pytest.raises(StartupRefusal, match=reason):
        lc.build(choice)


def test_nvfp4_on_blackwell_once_the_model_loads_it(monkeypatch):
    monkeypatch.setattr("dsv32_plugin.policy.LOADABLE_QUANTIZATIONS", (None, "fp8", "modelopt_fp4"))
    argv = lc.build(lc.Choice("b200", "v3.2-nvfp4", "tp", tools=True)).argv
    assert argv[:4] == ("--model-path", "nvidia/DeepSeek-V3.2-NVFP4", "--tp", "4")  # cookbook §3.5
    at = argv.index("--quantization")
    assert argv[at : at + 4] == ("--quantization", "modelopt_fp4", "--moe-runner-backend", "flashinfer_trtllm")


def test_v32_exp_tools_use_the_v31_parser_and_the_shipped_template():
    argv = lc.build(lc.Choice("h200", "v3.2-exp", tools=True)).argv
    template = argv[argv.index("--chat-template") + 1]
    assert argv[argv.index("--tool-call-parser") + 1] == "deepseekv31"
    assert pathlib.Path(template).name == "deepseek_v32_exp.jinja" and pathlib.Path(template).is_file()


def console_script(*args: str) -> subprocess.CompletedProcess:
    script = pathlib.Path(sys.executable).parent / "dsv32-plugin"
    env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}
    return subprocess.run([str(script), *args], capture_output=True, text=True, env=env, timeout=60)


def test_console_script_prints_and_refuses():
    done = console_script("launch-command", "--hardware", "h200", "--variant", "v3.2", "--mtp")
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("# 8 x NVIDIA H200 (141 GB), TP + data-parallel attention")
    assert "  --speculative-algorithm EAGLE \\\n" in done.stdout
    refused = console_script("launch-command", "--hardware", "mi300x", "--variant", "v3.2")
    assert refused.returncode == 2 and refused.stdout == ""
    assert refused.stderr.startswith("dsv32-plugin launch-command: refused: --hardware mi300x:")
    upper = console_script("launch-command", "--hardware", "H200", "--variant", "V3.2", "--mtp")
    assert upper.returncode == 0 and upper.stdout == done.stdout, upper.stderr
    unknown = console_script("launch-command", "--hardware", "h300", "--variant", "v3.2")
    assert unknown.returncode == 2 and "invalid choice: 'h300'" in unknown.stderr


def test_help_is_readable():
    done = console_script("launch-command", "--help")
    assert done.returncode == 0
    assert all(len(line) <= 100 for line in done.stdout.splitlines()), done.stdout
    for name in [*HARDWARE, *VARIANTS, *lc.STRATEGIES, *lc.CP_MODES, "examples:"]:
        assert name in done.stdout, name
    top = console_script("--help")
    assert top.returncode == 0 and "launch-command" in top.stdout
