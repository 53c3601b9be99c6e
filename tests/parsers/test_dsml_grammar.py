"""The DSML grammar core: one-shot parse and chunking-independent scanning."""

import pytest

from dsv32_plugin.parsers.dsml import DsmlCall, DsmlParam, DsmlScanner, parse_dsml_calls

B, E = "<｜DSML｜function_calls>", "</｜DSML｜function_calls>"


def invoke(name, *params, close=True):
    body = "\n".join(f'<｜DSML｜parameter name="{k}" string="{s}">{v}</｜DSML｜parameter>' for k, v, s in params)
    return f'<｜DSML｜invoke name="{name}">\n{body}\n' + ("</｜DSML｜invoke>" if close else "")


CASES = [
    pytest.param(
        "Checking.\n\n" + B + "\n" + invoke("f", ("a", "  x\n", "true"), ("b", "[1, 2]", "false")) + "\n" + E,
        "Checking.",
        [DsmlCall("f", [DsmlParam("a", "  x\n", True), DsmlParam("b", "[1, 2]", False)], None, True)],
        id="official-shape-verbatim-values",
    ),
    pytest.param("a\n\n\n" + B + invoke("f") + E, "a\n", [DsmlCall("f", [], None, True)], id="one-blank-line-removed"),
    pytest.param(B + invoke("f") + E + "\n\n  \n", "", [DsmlCall("f", [], None, True)], id="whitespace-after-block-dropped"),
    pytest.param(B + invoke("f") + E + "\nDone.", "\nDone.", [DsmlCall("f", [], None, True)], id="prose-after-block-kept"),
    pytest.param("x" + invoke("f", ("a", "1", "false")), "x", [DsmlCall("f", [DsmlParam("a", "1", False)], None, True)],
                 id="bare-invoke"),
    pytest.param(B + '<｜DSML｜invoke name="f">\n{"a": 1}\n</｜DSML｜invoke>' + E, "",
                 [DsmlCall("f", [], '{"a": 1}\n', True)], id="json-body"),
    pytest.param(B + '<｜DSML｜invoke name="f"/>' + E, "", [DsmlCall("f", [], None, True)], id="self-closing-invoke"),
    pytest.param(B + '<｜DSML｜invoke  name = " f " >\n</｜DSML｜invoke>' + E, "", [DsmlCall("f", [], None, True)],
                 id="invoke-name-spacing"),
    pytest.param(B + '<｜DSML｜invoke name="f">\n<｜DSML｜parameter name="a">v</｜DSML｜parameter>\n</｜DSML｜invoke>',
                 "", [DsmlCall("f", [DsmlParam("a", "v", None)], None, True)], id="missing-string-attribute-unclosed-block"),
    pytest.param(B + invoke("f", ("a", "v", "true")).replace("</｜DSML｜invoke>", "") + "<｜DSML｜invoke nam", "",
                 [DsmlCall("f", [DsmlParam("a", "v", True)], None, False)], id="truncated-second-invoke-tag"),
    pytest.param(B + '<｜DSML｜invoke name="f">\n<｜DSML｜parameter name="a" string="true">partial val', "",
                 [DsmlCall("f", [DsmlParam("a", "partial val", True)], None, False)], id="truncated-value"),
    pytest.param(B + '<｜DSML｜invoke name="f">\n<｜DSML｜parameter name="a" string="true">v</｜DSML｜par', "",
                 [DsmlCall("f", [DsmlParam("a", "v", True)], None, False)], id="truncated-close-tag"),
    pytest.param(B + '<｜DSML｜invoke nme="f">\n' + invoke("g") + E, "", [DsmlCall("g", [], None, True)],
                 id="invoke-without-name-left-out"),
    pytest.param("keep</｜DSML｜invoke> this", "keep this", [], id="stray-closer-dropped"),
    pytest.param("a <｜DSML｜other> b <｜DSML｜functi", "a <｜DSML｜other> b <｜DSML｜functi", [], id="unknown-tag-and-partial-kept"),
    pytest.param(B + invoke("f", ("a", "1", "true")).replace("</｜DSML｜parameter>", "") + E, "",
                 [DsmlCall("f", [DsmlParam("a", "1\n", True)], None, True)], id="unclosed-param-ended-by-invoke-close"),
]


@pytest.mark.parametrize(("text", "normal", "calls"), CASES)
def test_parse_dsml_calls(text, normal, calls):
    assert parse_dsml_calls(text) == (normal, calls)


def _merged(events):
    out = []
    for event in events:
        if out and event[0] in ("text", "chunk") and out[-1][0] == event[0]:
            out[-1] = (event[0], out[-1][1] + event[1])
        else:
            out.append(event)
    return out


@pytest.mark.parametrize(("text", "normal", "calls"), CASES)
def test_scanner_events_do_not_depend_on_chunking(text, normal, calls):
    whole = DsmlScanner()
    reference = _merged(whole.feed(text) + whole.finish())
    for cut in range(1, len(text)):
        scanner = DsmlScanner()
        events = scanner.feed(text[:cut]) + scanner.feed(text[cut:]) + scanner.finish()
        assert _merged(events) == reference, cut
    scanner = DsmlScanner()
    events = [e for ch in text for e in scanner.feed(ch)] + scanner.finish()
    assert _merged(events) == reference
