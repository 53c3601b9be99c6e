"""The router half of prefill-decode disaggregation: the router command ``dsv32-plugin launch-command --pd`` prints
and the cookbook's (§3.6) parse with the host's router (PyPI ``sglang-router``) into the PD pair they name.

The server halves (``--disaggregation-mode prefill|decode``) go through sglang's parser and resolution with the
plugin in ``test_launch_command.py`` and ``test_cookbook_commands.py``.
"""

import shlex

import pytest

from dsv32_plugin.cli import launch_command as lc

pytest.importorskip("sglang_router", reason="needs sglang-router (scripts/install_cpu.sh)")
COOKBOOK_ROUTER = """python -m sglang_router.launch_router --pd-disaggregation \\
  --prefill $PREFILL_ADDR 8998 \\
  --decode $DECODE_ADDR \\
  --host 127.0.0.1 \\
  --port 8000"""
PREFILL, DECODE = "http://10.0.0.1:30000", "http://10.0.0.2:30000"


def parsed(command: str):
    from sglang_router.launch_router import parse_router_args

    words = shlex.split(command.replace("\\\n", " "))
    assert words[:3] == ["python", "-m", "sglang_router.launch_router"], command
    return parse_router_args(words[3:])


@pytest.mark.parametrize("role", lc.PD_ROLES)
def test_the_printed_router_command_joins_the_pd_pair(role):
    command = lc.build(lc.Choice("h200", "v3.2", pd=role))
    note = next(n for n in command.notes if "sglang_router.launch_router" in n)
    router = note[note.index("python -m sglang_router.launch_router"):]
    args = parsed(router.replace("http://<prefill host>:30000", PREFILL).replace("http://<decode host>:30000", DECODE))
    assert args.pd_disaggregation
    assert args.prefill_urls == [(PREFILL, int(lc.BOOTSTRAP_PORT))] and args.decode_urls == [DECODE]
    if role == "prefill":  # the router's bootstrap port is the one the prefill server opens
        argv = list(command.argv)
        assert argv[argv.index("--disaggregation-bootstrap-port") + 1] == lc.BOOTSTRAP_PORT


def test_the_cookbook_router_command_joins_the_pd_pair():
    args = parsed(COOKBOOK_ROUTER.replace("$PREFILL_ADDR", PREFILL).replace("$DECODE_ADDR", DECODE))
    assert args.pd_disaggregation and args.prefill_urls == [(PREFILL, 8998)] and args.decode_urls == [DECODE]
    assert (args.host, args.port) == ("127.0.0.1", 8000)
