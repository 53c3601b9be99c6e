"""docs/hooks.md and the touches register() records agree, row for row."""

import pathlib
import re

import pytest
from pyrun import last_json, run_python

HOOKS_MD = pathlib.Path(__file__).resolve().parents[1] / "docs" / "hooks.md"
ROW = re.compile(r"^\|\s*`([^`]+)`\s*\|\s*(\w+)\s*\|\s*`([^`]+)`\s*\|(.+)\|(.+)\|\s*$")
# Touches made only on a machine without CUDA (this check runs on CPU CI).
CPU_ONLY_MODULES = {"hooks/cpu_fallbacks.py"}


def documented_rows() -> dict[tuple[str, str], str]:
    """(target, kind) -> module, from the table in docs/hooks.md."""
    rows = {}
    for line in HOOKS_MD.read_text().splitlines():
        m = ROW.match(line)
        if m:
            key = (m.group(1), m.group(2))
            assert key not in rows, f"duplicate row {key}"
            assert m.group(4).strip() and m.group(5).strip(), f"row {key} lacks why or undo"
            rows[key] = m.group(3)
    return rows


@pytest.fixture(scope="module")
def recorded(tmp_path_factory):
    """(target, kind) -> module for every touch of a full register() in a fresh process."""
    touches = last_json(run_python("""
        import json
        import dsv32_plugin
        from dsv32_plugin.hooks import ledger
        dsv32_plugin.register()
        print(json.dumps([[t.target, t.kind, t.module, bool(t.why), bool(t.undo)] for t in ledger.TOUCHES]))
    """, tmp_path_factory.mktemp("ledger")))
    assert all(why and undo for *_, why, undo in touches)
    return {(t, k): "hooks/" + m.removeprefix("dsv32_plugin.hooks.") + ".py" for t, k, m, _, _ in touches}


def test_table_parses():
    assert len(documented_rows()) >= 2


def test_every_recorded_touch_has_a_row(recorded):
    rows = documented_rows()
    missing = {key: module for key, module in recorded.items() if key not in rows}
    assert not missing, f"touches without a docs/hooks.md row: {missing}"
    wrong_module = {key: (module, rows[key]) for key, module in recorded.items() if rows[key] != module}
    assert not wrong_module, wrong_module


def test_every_row_is_a_recorded_touch(recorded):
    import torch

    rows = documented_rows()
    expected = {k: m for k, m in rows.items() if not (torch.cuda.is_available() and m in CPU_ONLY_MODULES)}
    stale = {key: module for key, module in expected.items() if key not in recorded}
    assert not stale, f"docs/hooks.md rows that register() no longer makes: {stale}"
