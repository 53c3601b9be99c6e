"""``dsv32-plugin launch-command``: the DeepSeek-V3.2 cookbook's configuration selector, for this plugin.

A ``Choice`` (hardware, model variant, parallel strategy, MTP, parsers, context parallelism, PD role,
nodes) becomes the ``python -m sglang.launch_server`` command that serves it with the plugin: the GPU
count the checkpoint needs on that hardware, the cookbook's per-GPU kernel and KV-cache defaults (§3.3),
its MTP settings (§3.4) and parsers (§4), in sglang 0.5.23's own flag spellings. A combination that
cannot work raises ``StartupRefusal`` with the reason and what to choose instead; the model and layout
rules are ``dsv32_plugin.policy``'s, the ones the server's start-up refusals apply.
"""

from __future__ import annotations

import math
import re
import shlex
from dataclasses import dataclass
from typing import Optional

from dsv32_plugin.cli.deployments import HARDWARE, VARIANTS, attention_flags, gpus_needed
from dsv32_plugin.policy import CP_MODES, layout_problems, quantization_problems, release_config
from dsv32_plugin.refusal import StartupRefusal

STRATEGIES = {
    "dp-attention": "TP + data-parallel attention (the cookbook's recommended layout)",
    "ep-dp": "TP + data-parallel attention + expert parallelism",
    "tp": "pure tensor parallelism",
}
PD_ROLES = ("prefill", "decode")
MTP_FLAGS = ("--speculative-algorithm", "EAGLE", "--speculative-num-steps", "3",
             "--speculative-eagle-topk", "1", "--speculative-num-draft-tokens", "4")
REASONING_PARSER = "deepseek-v3"
BOOTSTRAP_PORT = "8998"
DIST_PORT = "20000"
# Shell variables a multi-node command leaves to each node.
NODE_RANK, HEAD_NODE_IP = "${NODE_RANK}", "${HEAD_NODE_IP}"


@dataclass(frozen=True)
class Choice:
    hardware: str
    variant: str
    strategy: str = "dp-attention"
    mtp: bool = False
    reasoning: bool = False
    tools: bool = False
    cp: Optional[str] = None  # a CP_MODES key
    pd: Optional[str] = None  # a PD_ROLES value
    nodes: Optional[int] = None  # None: as few as the checkpoint needs


@dataclass(frozen=True)
class LaunchCommand:
    argv: tuple[str, ...]  # what follows ``python -m sglang.launch_server``
    notes: tuple[str, ...] = ()  # printed as comment lines above the command

    def render(self) -> str:
        groups: list[list[str]] = []
        for arg in self.argv:
            if arg.startswith("--") or not groups:
                groups.append([arg])
            else:
                groups[-1].append(arg)
        lines = [f"# {note}" for note in self.notes]
        lines.append(" \\\n  ".join(["python -m sglang.launch_server", *(" ".join(map(_shell_word, g)) for g in groups)]))
        return "\n".join(lines)


def _shell_word(word: str) -> str:
    # ${VAR} references stay unquoted so that the shell expands them.
    return word if re.fullmatch(r"[\w@%+=:,./${}-]+", word) else shlex.quote(word)


def _check(choice: Choice) -> None:
    hardware, variant = HARDWARE[choice.hardware], VARIANTS[choice.variant]
    if not hardware.nvidia:
        raise StartupRefusal(
            f"--hardware {choice.hardware}: dsv32-plugin's DSA kernels (Triton, FlashMLA, FA3) are built and "
            f"tested on NVIDIA GPUs only; on {hardware.name} serve DeepSeek-V3.2 with sglang's in-tree "
            "implementation and its TileLang kernels (DeepSeek-V3.2 cookbook §3.2): SGLANG_PLUGINS=none python -m "
            f"sglang.launch_server --model-path {variant.model_path} --tp 8 --dsa-prefill-backend tilelang "
            "--dsa-decode-backend tilelang"
        )
    if variant.quantization == "modelopt_fp4" and not hardware.blackwell:
        raise StartupRefusal(
            f"--variant {choice.variant} needs Blackwell GPUs (b200, gb200): NVFP4 runs on FP4 tensor cores, "
            f"which {hardware.name} lacks; use --variant v3.2 (FP8) there"
        )
    problems = quantization_problems(variant.quantization)
    if problems:
        raise StartupRefusal(f"--variant {choice.variant}: " + "; ".join(problems))
    if choice.tools and variant.tool_call_parser is None:
        raise StartupRefusal(
            f"--tools: {variant.model_path} does not call tools (a reasoning-only model); drop --tools, or "
            "use --variant v3.2 for tool calling"
        )
    if choice.cp and choice.strategy != "tp":
        raise StartupRefusal(
            f"--cp {choice.cp} with --strategy {choice.strategy}: the CP width is --tp / --dp, and this "
            "strategy gives every GPU its own attention rank (--dp = --tp), leaving none to split a sequence "
            "over (round-robin CP cannot use DP attention at all: cookbook §3.7.2); use --strategy tp"
        )
    if choice.cp and choice.pd == "decode":
        raise StartupRefusal("--cp splits prefill work; a --pd decode server does no prefill: put --cp on the prefill server")


def _gpus(choice: Choice) -> tuple[int, int]:
    """(GPUs in all, nodes)."""
    hardware, variant = HARDWARE[choice.hardware], VARIANTS[choice.variant]
    needed = gpus_needed(variant, hardware)
    fewest_nodes = math.ceil(needed / hardware.gpus_per_node)
    nodes = choice.nodes or fewest_nodes
    if nodes < fewest_nodes:
        raise StartupRefusal(
            f"--nodes {nodes}: {variant.model_path} (~{variant.weights_gb} GB of weights) needs {needed} "
            f"{hardware.name} GPUs ({hardware.memory_gb} GB each), {fewest_nodes} nodes of "
            f"{hardware.gpus_per_node}; use --nodes {fewest_nodes} or more"
        )
    return (needed if nodes == fewest_nodes else nodes * hardware.gpus_per_node), nodes


def _check_layout(choice: Choice, tp: int) -> None:
    """The widths this command gives must divide the model's heads, experts and FP8 blocks (as the launcher checks)."""
    ep = tp if choice.strategy == "ep-dp" else 1
    attn_dp = tp if choice.strategy in ("dp-attention", "ep-dp") else 1
    problems = layout_problems(release_config(), {"attn_tp_size": tp // attn_dp, "moe_tp_size": tp // ep}, tp, ep,
                               "cuda")
    if problems:
        way_out = " (--strategy ep-dp shards experts instead)" if choice.strategy != "ep-dp" else ""
        raise StartupRefusal(f"--strategy {choice.strategy} on {tp} GPUs: " + "; ".join(problems) + way_out)


def build(choice: Choice) -> LaunchCommand:
    """The command for ``choice``; ``StartupRefusal`` if it cannot work."""
    _check(choice)
    hardware, variant = HARDWARE[choice.hardware], VARIANTS[choice.variant]
    gpus, nodes = _gpus(choice)
    argv: list[str] = ["--model-path", variant.model_path]
    notes: list[str] = [f"{gpus} x {hardware.name} ({hardware.memory_gb} GB)"
                        + (f" on {nodes} nodes" if nodes > 1 else "")
                        + f", {STRATEGIES[choice.strategy]}"]
    # The sglang CP path needs all of a CP group on one node: across nodes, pipeline-parallel stages.
    stages = nodes if choice.cp and nodes > 1 else 1
    tp = gpus // stages
    argv += ["--tp", str(tp)]
    if choice.strategy in ("dp-attention", "ep-dp"):
        argv += ["--dp", str(tp), "--enable-dp-attention"]
    if choice.strategy == "ep-dp":
        argv += ["--ep", str(tp)]
    if stages > 1:
        argv += ["--pp-size", str(stages)]
    _check_layout(choice, tp)
    if nodes > 1:
        argv += ["--nnodes", str(nodes), "--node-rank", NODE_RANK, "--dist-init-addr", f"{HEAD_NODE_IP}:{DIST_PORT}"]
        others = "1 on the other" if nodes == 2 else f"1 to {nodes - 1} on the others"
        notes.append(f"run on each of the {nodes} nodes: NODE_RANK=0 on the head node, {others}; "
                     "HEAD_NODE_IP=<the head node's address>")
    argv += attention_flags(hardware)
    if variant.quantization == "modelopt_fp4":  # cookbook §3.5
        argv += ["--quantization", "modelopt_fp4", "--moe-runner-backend", "flashinfer_trtllm"]
    if choice.cp:
        argv += ["--enable-prefill-cp", "--cp-strategy", CP_MODES[choice.cp]]
    if choice.mtp:
        argv += MTP_FLAGS
    if choice.tools:
        argv += ["--tool-call-parser", variant.tool_call_parser]
        if variant.chat_template:
            from dsv32_plugin.templates import path

            argv += ["--chat-template", path(variant.chat_template)]
    if choice.reasoning:
        argv += ["--reasoning-parser", REASONING_PARSER]
    if choice.pd:
        argv += ["--disaggregation-mode", choice.pd]
        if choice.pd == "prefill":
            argv += ["--disaggregation-bootstrap-port", BOOTSTRAP_PORT]
        notes.append("PD disaggregation: start a prefill and a decode server, then the router: python -m "
                     f"sglang_router.launch_router --pd-disaggregation --prefill http://<prefill host>:30000 "
                     f"{BOOTSTRAP_PORT} --decode http://<decode host>:30000")
    return LaunchCommand(tuple(argv), tuple(notes))
