"""``migrate``'s round-trip YAML: documents split and joined back, edits that keep comments."""

from __future__ import annotations

import pytest

from scaler.errors import ManifestError
from scaler.tools.migrate_yaml import delete_key, indents, insert_key, render, scalar, split


@pytest.mark.parametrize(
    "text",
    [
        "",
        "a: 1\n",
        "---\na: 1\n---\nb: 2",
        "# only a comment\n--- # first\na: 1\n...\n--- !!map\nb: 2\n",
        "%YAML 1.2\n---\na: 1\n---\n---\nb: [1, 2]\n",
        "text: |\n  --- not a marker, indented\nc: 3\n",
    ],
)
def test_split_documents_join_back(text: str) -> None:
    documents = split(text)
    assert "".join(d.text for d in documents) == text
    assert "".join(render(d) for d in documents) == text


def test_a_parse_error_names_the_file_line_never_the_text() -> None:
    with pytest.raises(ManifestError) as caught:
        split("a: 1\n---\nb: 2\npassword: [hunter2\n")
    (problem,) = caught.value.problems
    assert "line 5" in problem or "line 4" in problem
    assert "hunter2" not in problem


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("spec:\n  triggers:\n    - type: x\n      metadata:\n        a: b\n", (2, 4, 2)),
        ("spec:\n  triggers:\n  - type: x\n    metadata:\n      a: b\n", (2, 2, 0)),
        ("spec:\n    triggers:\n    -   type: x\n        metadata:\n            a: b\n", (4, 4, 0)),
        ("a: 1\n", (2, 2, 0)),
    ],
)
def test_indents_are_the_documents_own(text: str, expected: tuple[int, int, int]) -> None:
    assert indents(text) == expected
    document = split(text)[0]
    document.changed = True
    assert render(document) == text


def test_edits_keep_the_comment_lines_before_the_next_key() -> None:
    text = (
        "m:\n"
        "  first: 1  # first's own\n"
        "  # about second\n"
        "  second: 2\n"
        "  # about third\n"
        "  third: 3\n"
    )
    document = split(text)[0]
    mapping = document.data["m"]
    delete_key(mapping, "first")
    insert_key(mapping, 1, "added", "x")
    document.changed = True
    assert render(document) == (
        "m:\n  # about second\n  second: 2\n  added: x\n  # about third\n  third: 3\n"
    )


def test_scalar_quotes_what_yaml_would_read_otherwise() -> None:
    assert scalar("enable") == "enable"
    assert type(scalar("enable")) is str
    for value in ("true", "on", "5", "1:30", "a: b", "#x", ""):
        assert type(scalar(value)) is not str, value


def test_a_duplicate_key_is_an_error_that_quotes_no_value() -> None:
    with pytest.raises(ManifestError) as caught:
        split("a: 1\npassword: hunter2\npassword: hunter3\n")
    (problem,) = caught.value.problems
    assert problem == "invalid YAML: a key is given twice at line 3, column 1"


def test_a_changed_document_keeps_crlf_line_endings() -> None:
    document = split("a: 1\r\nb: 2\r\n")[0]
    document.data["c"] = 3
    document.changed = True
    assert render(document) == "a: 1\r\nb: 2\r\nc: 3\r\n"
