"""sglang_router's Python PD load balancer (``--mini-lb``), also where its Rust extension is not installed.

    python mini_lb.py --mini-lb --pd-disaggregation --prefill URL BOOTSTRAP_PORT --decode URL --host H --port P

The same as ``python -m sglang_router.launch_router --mini-lb ...``, which the host's own PD test fixture
starts (``sglang/test/server_fixtures/disaggregation_fixture.py``). The one-GPU comparison carries only the
package's Python files (``tests/gpu/pd_wheels.sh``: the extension is 90 MB), but ``sglang_router.router_args``
imports ``get_available_tool_call_parsers`` (the choices of ``--tool-call-parser``) from the extension. Without
it, a stand-in module offers that one function, with no choices; ``launch_router`` then finds no Rust
``Router`` (its import fails) and, with ``--mini-lb``, starts ``sglang_router.mini_lb.MiniLoadBalancer``.
"""

from __future__ import annotations

import importlib.util
import sys
import types

if importlib.util.find_spec("sglang_router.sglang_router_rs") is None:
    _rs = types.ModuleType("sglang_router.sglang_router_rs", "stand-in: the Rust extension is not installed")
    _rs.get_available_tool_call_parsers = lambda: None
    sys.modules[_rs.__name__] = _rs

from sglang_router.launch_router import main  # noqa: E402

if __name__ == "__main__":
    main()
