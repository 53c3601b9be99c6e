"""docs/hooks.md, written from ``touches`` and ``imports``: run after changing either.

    python -m dsv32_plugin.host.hooks_doc docs/hooks.md

(with the plugin installed from this tree; tests/test_ledger.py fails while the file is stale).
"""

from __future__ import annotations

import sys

from dsv32_plugin.host.imports import host_imports
from dsv32_plugin.host.touches import TOUCHES, Touch

HEADER = """\
# Host-touch ledger

<!-- Written by `python -m dsv32_plugin.host.hooks_doc docs/hooks.md` from
dsv32_plugin/host/touches.py and the plugin's imports; edit those, not this file. -->

Every place where dsv32-plugin touches sglang 0.5.23 and every host module its code imports: the
list to re-check when sglang is upgraded. The touches are made by `dsv32_plugin.plugin.register()`
through `dsv32_plugin.hooks.ledger`, each from its entry in `dsv32_plugin/host/touches.py`, the one
file that names host targets (tests/test_ledger.py checks that a full `register()` makes exactly
these, in this order, each from the module named). Kinds: `entry` = a key written into a host
mapping (a registry, `sys.modules`, `sys.path`) or a process-wide attribute;
`BEFORE`/`AFTER`/`AROUND`/`REPLACE` = a `HookRegistry` hook. No upstream PR is filed yet; "remove
when" names the host change that would make the touch unnecessary.

## Touches

| target | kind | module | why | undo | remove when |
|---|---|---|---|---|---|
"""

IMPORTS_HEADER = """
## Host modules the plugin imports

Read from the plugin's sources (`dsv32_plugin.host.imports`, imports inside functions included).
A renamed or changed module here breaks the plugin files next to it.

| host module | imported by |
|---|---|
"""


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def module_path(touch: Touch) -> str:
    """``hooks/<name>.py`` for the touch's module."""
    return touch.module.removeprefix("dsv32_plugin.").replace(".", "/") + ".py"


def render() -> str:
    rows = [
        f"| `{t.target}` | {t.kind} | `{module_path(t)}` | {_cell(t.why)} | {_cell(t.undo)} | {_cell(t.remove_when)} |"
        for t in TOUCHES
    ]
    imports = [f"| `{module}` | {', '.join(f'`{user}`' for user in users)} |" for module, users in host_imports().items()]
    return HEADER + "\n".join(rows) + "\n" + IMPORTS_HEADER + "\n".join(imports) + "\n"


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: python -m dsv32_plugin.host.hooks_doc docs/hooks.md", file=sys.stderr)
        return 2
    with open(argv[0], "w") as out:
        out.write(render())
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
