"""``dsv32-plugin``: the console script's argument parsing and its subcommands."""

from __future__ import annotations

import argparse
import sys
from typing import Optional

from dsv32_plugin import __version__
from dsv32_plugin.cli import launch_command as lc
from dsv32_plugin.cli.deployments import HARDWARE, VARIANTS
from dsv32_plugin.refusal import StartupRefusal

DESCRIPTION = """\
Print the `python -m sglang.launch_server` command that serves a DeepSeek-V3.2 variant
on the given GPUs with dsv32-plugin: as many GPUs as the checkpoint needs, the DeepSeek-V3.2
cookbook's per-GPU kernel and KV-cache defaults, its MTP settings and its parsers."""
EXAMPLES = """\
examples:
  dsv32-plugin launch-command --hardware h200 --variant v3.2 --reasoning --tools
  dsv32-plugin launch-command --hardware b200 --variant v3.2-exp --strategy ep-dp --mtp
  dsv32-plugin launch-command --hardware h100 --variant v3.2 --strategy tp   (2 nodes of 8)
  dsv32-plugin launch-command --hardware h200 --variant v3.2 --strategy tp \\
      --cp round-robin-split --pd prefill

A combination that cannot be served is refused (exit status 2), saying why and what works.
"""


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be 1 or more, not {value}")
    return value


def _add_launch_command(subparsers) -> None:
    parser = subparsers.add_parser(
        "launch-command",
        help="print the sglang launch command for a DeepSeek-V3.2 deployment",
        description=DESCRIPTION,
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    hardware = ", ".join(f"{key} ({hw.name}, {hw.memory_gb} GB x {hw.gpus_per_node} per node)"
                         for key, hw in HARDWARE.items())
    # Names as users write them (H200, V3.2) are the same choices.
    parser.add_argument("--hardware", required=True, type=str.lower, choices=list(HARDWARE), metavar="GPU",
                        help=hardware)
    parser.add_argument("--variant", required=True, type=str.lower, choices=list(VARIANTS), metavar="MODEL",
                        help=", ".join(f"{key} ({v.model_path})" for key, v in VARIANTS.items()))
    parser.add_argument("--strategy", choices=list(lc.STRATEGIES), default="dp-attention",
                        help="; ".join(f"{key}: {what}" for key, what in lc.STRATEGIES.items())
                        + " (default: dp-attention)")
    parser.add_argument("--mtp", action="store_true",
                        help="multi-token prediction: EAGLE with the checkpoint's MTP layer, 3 steps, 4 draft tokens")
    parser.add_argument("--reasoning", action="store_true",
                        help="separate the thinking into reasoning_content (--reasoning-parser deepseek-v3)")
    parser.add_argument("--tools", action="store_true",
                        help="parse tool calls (deepseekv32; deepseekv31 and its chat template for v3.2-exp)")
    parser.add_argument("--cp", choices=list(lc.CP_MODES), metavar="MODE",
                        help="context-parallel prefill: " + ", ".join(lc.CP_MODES)
                        + " (sglang's --cp-strategy " + " / ".join(lc.CP_MODES.values()) + ")")
    parser.add_argument("--pd", choices=list(lc.PD_ROLES), help="this server's role in prefill/decode disaggregation")
    parser.add_argument("--nodes", type=_positive, metavar="N",
                        help="nodes to spread over (default: as few as the checkpoint needs)")
    parser.set_defaults(run=_run_launch_command)


def _run_launch_command(args: argparse.Namespace) -> int:
    choice = lc.Choice(hardware=args.hardware, variant=args.variant, strategy=args.strategy, mtp=args.mtp,
                       reasoning=args.reasoning, tools=args.tools, cp=args.cp, pd=args.pd, nodes=args.nodes)
    try:
        print(lc.build(choice).render())
    except StartupRefusal as refusal:
        print(f"dsv32-plugin launch-command: refused: {refusal.reason}", file=sys.stderr)
        return 2
    return 0


def main(argv: Optional[list[str]] = None) -> int:
    parser = argparse.ArgumentParser(
        prog="dsv32-plugin", description="Tools for serving DeepSeek-V3.2 with sglang and dsv32-plugin.")
    parser.add_argument("--version", action="version", version=f"dsv32-plugin {__version__}")
    subparsers = parser.add_subparsers(title="commands", metavar="COMMAND", required=True)
    _add_launch_command(subparsers)
    args = parser.parse_args(argv)
    return args.run(args)
