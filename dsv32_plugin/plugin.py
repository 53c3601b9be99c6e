"""The one place that touches the host.

``register()`` runs once per process (launch_server's main process, engine,
scheduler, detokenizer, DP controller). Each step below is one concern; every
host touch a step makes goes through ``dsv32_plugin.hooks.ledger`` and is
listed in docs/hooks.md (a test checks both agree).
"""

from __future__ import annotations

import importlib
import logging
import multiprocessing
import os

from dsv32_plugin import __version__

logger = logging.getLogger("dsv32_plugin")

# "module:function" strings, imported lazily so that a broken optional
# dependency costs one warning line and one step, never the whole plugin.
STEPS: tuple[str, ...] = (
    "dsv32_plugin.hooks.refusals:install",
    "dsv32_plugin.hooks.cpu_fallbacks:install",
    "dsv32_plugin.hooks.parsers:install",
    "dsv32_plugin.hooks.chat_encoding:install",
    "dsv32_plugin.hooks.distributed:install",
    "dsv32_plugin.hooks.models:install",
    "dsv32_plugin.hooks.attention:install",
    "dsv32_plugin.hooks.server_args:install",
    "dsv32_plugin.hooks.parallel_layout:install",
    "dsv32_plugin.hooks.context_parallel:install",
    "dsv32_plugin.hooks.prefill_graphs:install",
    "dsv32_plugin.hooks.disaggregation:install",
)

_registered = False


def _ensure_log_handler() -> None:
    # The host calls register() before it configures logging (launch_server's
    # main, the scheduler's first line), so INFO lines would be dropped; the
    # plugin's logger prints its own lines, once, in every process.
    if not logger.handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("[%(asctime)s] %(message)s", "%Y-%m-%d %H:%M:%S"))
        logger.addHandler(handler)
        logger.setLevel(logging.INFO)
        logger.propagate = False


def register() -> None:
    """Install every step once; never raises."""
    global _registered
    if _registered:
        return
    _registered = True
    _ensure_log_handler()
    logger.info(
        "dsv32-plugin %s registering in %s (pid %d) from %s",
        __version__,
        multiprocessing.current_process().name,
        os.getpid(),
        os.path.dirname(os.path.abspath(__file__)),  # which copy: installed, or a clone's source tree
    )
    for step in STEPS:
        module_name, func_name = step.split(":")
        try:
            install = getattr(importlib.import_module(module_name), func_name)
        except Exception as exc:  # e.g. a host module whose optional GPU dependency is broken
            logger.warning("dsv32-plugin: step %s skipped: %s: %s", step, type(exc).__name__, exc)
            continue
        try:
            install()
        except Exception as exc:
            logger.warning("dsv32-plugin: step %s failed: %s: %s", step, type(exc).__name__, exc)
