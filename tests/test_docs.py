"""The README leads to every doc, and every doc stands on its own: links resolve inside the repository,
no paths outside it, no references to the project's issue tracker."""

import pathlib
import re

import pytest

REPO = pathlib.Path(__file__).resolve().parents[1]
DOCS = sorted((REPO / "docs").glob("*.md"))
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: p.name)
def test_the_readme_links_every_doc(doc):
    assert f"](docs/{doc.name})" in (REPO / "README.md").read_text()


@pytest.mark.parametrize("doc", [REPO / "README.md", *DOCS], ids=lambda p: p.name)
def test_every_doc_stands_on_its_own(doc):
    text = doc.read_text()
    for target in LINK.findall(text):
        if target.startswith(("http://", "https://", "#")):
            continue
        path = (doc.parent / target.split("#")[0]).resolve()
        assert path.is_relative_to(REPO) and path.exists(), f"{doc.name}: broken link {target}"
    assert not re.search(r"\.\./shared|/work/", text), f"{doc.name} points outside the repository"
    assert not re.search(r"\bissues? #?\d", text, re.I), f"{doc.name} cites the project's issue tracker"
