"""The reference docs say what the code does: the generated tables are current, and every
declared parameter of every built-in backend appears in its page with its default."""

from __future__ import annotations

import re

import pytest

from scaler.backends import BACKENDS
from scaler.backends.base import AnyBackend
from scaler.metadata import declared
from scaler.tools.reference import ROOT, begin_mark, end_mark, shown_default, stale

_ROW = re.compile(r"^\| `(?P<key>[^`]+)`[^|]*\| (?P<default>[^|]*) \|", re.MULTILINE)


def test_generated_tables_match_the_code() -> None:
    assert stale() == [], "run 'make docs' and commit the result"


@pytest.mark.parametrize("backend", BACKENDS, ids=lambda b: b.name)
def test_every_declared_parameter_is_in_its_page_with_its_default(
    backend: type[AnyBackend],
) -> None:
    page = (ROOT / "docs" / "backends" / f"{backend.name}.md").read_text(encoding="utf-8")
    block = f"parameters:{backend.name}"
    table = page.split(begin_mark(block), 1)[1].split(end_mark(block), 1)[0]
    rows = {m["key"]: m["default"].strip() for m in _ROW.finditer(table)}
    for _, p in declared(backend.params):
        assert p.key in rows, f"{p.key} is not in docs/backends/{backend.name}.md"
        assert rows[p.key] == shown_default(p), p.key
