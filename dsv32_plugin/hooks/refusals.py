"""The launcher prints a ``StartupRefusal`` as one line, not under a traceback.

``python -m sglang.launch_server`` resolves its arguments in its main thread
and lets exceptions escape to the interpreter, which prints the traceback.
For the plugin's refusals (``dsv32_plugin.refusal.StartupRefusal``: a flag,
what is wrong, the way out) the traceback only hides the line that matters,
so ``sys.excepthook`` prints ``error: <message>`` for them; every other
exception goes to the previous hook unchanged. The exit status stays 1.
"""

from __future__ import annotations

import sys

from dsv32_plugin.hooks import ledger
from dsv32_plugin.host import touches


def one_line_refusals(previous):
    def excepthook(exc_type, exc, tb):
        from dsv32_plugin.refusal import StartupRefusal

        if isinstance(exc, StartupRefusal):
            print(f"error: {exc}", file=sys.stderr)
            return
        previous(exc_type, exc, tb)

    excepthook.dsv32_refusals = True
    return excepthook


def install() -> None:
    if getattr(sys.excepthook, "dsv32_refusals", False):
        return
    ledger.set_attribute(touches.EXCEPTHOOK, one_line_refusals(sys.excepthook))
