"""The touch table, the touches a full register() makes, and docs/hooks.md agree."""

import pathlib

import pytest
from pyrun import last_json, run_python

from dsv32_plugin.hooks import ledger
from dsv32_plugin.host import hooks_doc, touches
from dsv32_plugin.host.imports import host_imports

HOOKS_MD = pathlib.Path(__file__).resolve().parents[1] / "docs" / "hooks.md"


@pytest.fixture(scope="module")
def made(tmp_path_factory):
    """(target, module) of every touch of a full register() in a fresh process, in order."""
    return [tuple(t) for t in last_json(run_python("""
        import json
        import dsv32_plugin
        from dsv32_plugin.hooks import ledger
        dsv32_plugin.register()
        print(json.dumps([[t.target, t.module] for t in ledger.TOUCHES]))
    """, tmp_path_factory.mktemp("ledger")))]


def test_register_makes_exactly_the_table_in_order_each_from_its_module(made):
    import torch

    expected = [(t.target, t.module) for t in touches.TOUCHES
                if not (torch.cuda.is_available() and t in touches.CPU_ONLY)]
    assert made == expected


def test_every_touch_says_why_what_undoing_does_and_when_it_can_go():
    assert len({t.target for t in touches.TOUCHES}) == len(touches.TOUCHES)
    for t in touches.TOUCHES:
        assert t.kind in (touches.ENTRY, *touches.HOOK_KINDS), t
        assert t.why.strip() and t.undo.strip() and t.remove_when.strip(), t


def test_every_target_exists_in_the_installed_host():
    """What an sglang upgrade breaks first: a hooked function or a registry that moved."""
    for t in touches.TOUCHES:
        target = ledger.host_object(t.owner)
        if t.kind == touches.ENTRY and t.key is not None:
            assert hasattr(target, "__setitem__") or isinstance(target, list), t.target
        else:
            assert callable(target), t.target


def test_hooks_md_is_written_from_the_table():
    assert HOOKS_MD.read_text() == hooks_doc.render(), (
        "docs/hooks.md is stale: reinstall the plugin, then run "
        "`.venv/bin/python -m dsv32_plugin.host.hooks_doc docs/hooks.md`")


def test_hooks_md_lists_every_touch_and_host_import():
    text = HOOKS_MD.read_text()
    assert all(f"| `{t.target}` | {t.kind} | `{hooks_doc.module_path(t)}` |" in text for t in touches.TOUCHES)
    imports = host_imports()
    assert "sglang.srt.layers.linear" in imports and "models/mla.py" in imports["sglang.srt.layers.linear"]
    assert all(f"| `{module}` |" in text for module in imports)


def test_host_imports_are_read_from_function_bodies_too(tmp_path):
    (tmp_path / "a.py").write_text("def f():\n    from sglang.srt.layers import linear\n    import os\n")
    (tmp_path / "b.py").write_text("import sglang.srt.utils as u\nfrom .sibling import x\n")
    assert host_imports(tmp_path) == {"sglang.srt.layers": ["a.py"], "sglang.srt.utils": ["b.py"]}


def test_a_touch_of_the_wrong_kind_is_refused_and_not_recorded():
    before = list(ledger.TOUCHES)
    with pytest.raises(ValueError, match="has kind AROUND, not entry"):
        ledger.set_entry(touches.LAST_LOC, object())
    assert ledger.TOUCHES == before


def test_host_object_finds_attributes_below_the_longest_module():
    assert ledger.host_object("sys.modules") is __import__("sys").modules
    assert ledger.host_object("pathlib.Path.read_text") is pathlib.Path.read_text
