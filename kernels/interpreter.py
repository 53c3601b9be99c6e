"""Whether Triton kernels run in the CPU interpreter.

Kept apart from the ``@triton.jit`` helpers on purpose: Triton fixes a jitted
function's mode (interpreted or compiled) when its module is imported, so code
that only asks the question (backend dispatch) must not import those helpers.
"""

import os


def interpreting() -> bool:
    """True when Triton kernels run in the CPU interpreter (``TRITON_INTERPRET`` set, not "0")."""
    return os.environ.get("TRITON_INTERPRET", "0").strip().lower() not in ("", "0", "false")
