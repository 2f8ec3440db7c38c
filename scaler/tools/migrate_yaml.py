"""Round-trip YAML for ``migrate``: a manifest's documents, edited without losing their text.

This module owns the text side of ``migrate``: splitting a (multi-document) file into its
documents, parsing each with ruamel.yaml's round-trip mode, writing back only the documents that
changed, and the few mapping edits ``migrate`` makes (rename, insert, delete a key) so that the
comments around a key stay where they were.

* A document that is not changed is written back byte for byte, separators and comments included.
* A changed document is dumped by ruamel.yaml with the indentation found in its own text (the
  mapping indent, the sequence indent and the dash offset of its first nested mapping and
  sequence), quotes preserved and no line folding, so only the edited lines differ.
* ruamel.yaml keeps a comment that follows a key with that key. Deleting the key would lose the
  comment lines that stand before the next key, and inserting after it would put the new key
  below them; the edits here move those lines so that they stay in front of the next key.

Parse errors name a line and column of the file, never its text (it may hold a password).
"""

from __future__ import annotations

import io
import itertools
import re
from dataclasses import dataclass
from typing import Any, Final

import yaml
from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap
from ruamel.yaml.constructor import DuplicateKeyError
from ruamel.yaml.error import CommentMark, MarkedYAMLError, YAMLError
from ruamel.yaml.scalarstring import DoubleQuotedScalarString
from ruamel.yaml.tokens import CommentToken

from scaler.errors import ManifestError

#: a document start marker: ``---`` at column 0, then a blank or the end of the line
_MARKER: Final = re.compile(r"^---(?=[ \t\r\n]|$)", re.MULTILINE)
#: a marker line that carries nothing but an optional comment
_BARE_MARKER: Final = re.compile(r"^---[ \t]*(#.*)?\r?\n?$")
#: ruamel.yaml's slot, in a key's comment list, of the comment after its value
_AFTER_VALUE: Final = 2


@dataclass
class Document:
    """One document of the file: its text as read, and its parsed form.

    :param text: the document's text, its ``---`` line included, exactly as in the file
    :param first_line: 1-based line of the file where ``text`` starts
    :param data: ruamel.yaml's round-trip form; None for a document with no content
    :param changed: set by whoever edits ``data``: :func:`render` dumps it then
    """

    text: str
    first_line: int
    data: Any
    changed: bool = False


def split(text: str) -> list[Document]:
    """The documents of ``text`` in order; joining their ``text`` gives ``text`` back.

    :raises ManifestError: a document is not valid YAML (line and column of the file)
    """
    starts = [m.start() for m in _MARKER.finditer(text)]
    if not starts or starts[0] != 0:
        starts.insert(0, 0)
    chunks = [text[a:b] for a, b in zip(starts, [*starts[1:], len(text)], strict=True)]
    chunks = _attach_directives(chunks)
    documents: list[Document] = []
    line = 1
    for chunk in chunks:
        documents.append(Document(chunk, line, _parse(chunk, line)))
        line += chunk.count("\n")
    return documents


def _attach_directives(chunks: list[str]) -> list[str]:
    # `%YAML 1.2` before a `---` belongs to the document the marker starts
    merged: list[str] = []
    carry = ""
    for chunk in chunks:
        lines = [s.strip() for s in chunk.splitlines() if s.strip() and not s.startswith("#")]
        if lines and all(s.startswith("%") for s in lines):
            carry += chunk
            continue
        merged.append(carry + chunk)
        carry = ""
    if carry:
        merged.append(carry)
    return merged


def _round_trip(body: str = "") -> YAML:
    loader = YAML(typ="rt")
    loader.preserve_quotes = True
    loader.width = 1 << 16  # never fold a long value onto a second line
    mapping, sequence, offset = indents(body)
    loader.indent(mapping=mapping, sequence=sequence, offset=offset)
    return loader


def _parse(chunk: str, first_line: int) -> Any:
    try:
        return _round_trip().load(chunk)
    except MarkedYAMLError as err:
        mark = err.problem_mark
        problem = err.problem or err.context or "syntax error"
        if isinstance(err, DuplicateKeyError):
            problem = "a key is given twice"  # ruamel.yaml's message quotes both values
        where = f" at line {first_line + mark.line}, column {mark.column + 1}" if mark else ""
        raise ManifestError([f"invalid YAML: {problem}{where}"]) from None
    except YAMLError as err:
        raise ManifestError([f"invalid YAML: {type(err).__name__}"]) from None


def render(document: Document) -> str:
    """The document's text: as read when unchanged, else its data dumped in its own style."""
    if not document.changed:
        return document.text
    marker, body = "", document.text
    first, _, rest = document.text.partition("\n")
    if _BARE_MARKER.match(first + "\n"):
        marker, body = first + "\n", rest
    dumper = _round_trip(body)
    dumper.explicit_start = bool(not marker and _MARKER.match(body))
    out = io.StringIO()
    dumper.dump(document.data, out)
    text = out.getvalue()
    ending = [s for s in body.splitlines() if s.strip()]
    if ending and ending[-1].rstrip() == "..." and not text.rstrip().endswith("..."):
        text += "...\n"
    if "\r\n" in body:  # the file's line endings, not the dumper's
        text = text.replace("\r\n", "\n").replace("\n", "\r\n")
    return marker + text


def indents(body: str) -> tuple[int, int, int]:
    """(mapping indent, sequence indent, dash offset) of the first nested mapping and sequence
    in ``body``, as ruamel.yaml's ``indent()`` takes them; (2, 2, 0) where none is found."""
    lines = []
    for raw in body.splitlines():
        stripped = raw.strip()
        if stripped and not stripped.startswith("#") and not _MARKER.match(raw):
            lines.append((len(raw) - len(raw.lstrip(" ")), stripped))
    mapping: int | None = None
    sequence: tuple[int, int] | None = None
    for (column, line), (next_column, next_line) in itertools.pairwise(lines):
        if not line.endswith(":"):
            continue
        parent = column + _dash_width(line)
        if next_line.startswith("- ") or next_line == "-":
            if sequence is None:
                offset = next_column - parent
                sequence = (offset + _dash_width(next_line), offset)
        elif mapping is None and next_column > parent:
            mapping = next_column - parent
        if mapping is not None and sequence is not None:
            break
    sequence_indent, offset = sequence if sequence is not None else (2, 0)
    if offset < 0 or sequence_indent < offset + 2:
        sequence_indent, offset = 2, 0
    return mapping or 2, sequence_indent, offset


def _dash_width(line: str) -> int:
    # `-   key:` puts the key 4 columns right of the dash
    if not line.startswith("-"):
        return 0
    return 1 + len(line[1:]) - len(line[1:].lstrip(" ")) if line[1:].strip() else 2


# -- edits that keep comments in place -----------------------------------------------------------


def scalar(value: str) -> str:
    """``value`` as a YAML string that every reader takes as that string: plain when PyYAML's
    YAML 1.1 rules read it back unchanged (``tls: enable``), else double-quoted (``"true"``)."""
    try:
        plain = yaml.safe_load(value) == value and "\n" not in value
    except yaml.YAMLError:
        plain = False
    return value if plain else DoubleQuotedScalarString(value)


def insert_key(mapping: CommentedMap, position: int, key: str, value: Any) -> None:
    """Insert ``key`` at ``position``; the comment lines that stood before the next key stay
    in front of it, below the new key."""
    keys = list(mapping)
    lines = _take_following_lines(mapping, keys[position - 1]) if 0 < position <= len(keys) else ""
    mapping.insert(position, key, value)
    if lines:
        _give_following_lines(mapping, key, lines)


def rename_key(mapping: CommentedMap, old: str, new: str, value: Any) -> None:
    """Replace ``old`` by ``new`` at its place, with its comments."""
    position = list(mapping).index(old)
    comments = mapping.ca.items.pop(old, None)
    del mapping[old]
    mapping.insert(position, new, value)
    if comments is not None:
        mapping.ca.items[new] = comments


def delete_key(mapping: CommentedMap, key: str) -> None:
    """Remove ``key``; its end-of-line comment goes with it, the comment lines below it stay
    (in front of the next key)."""
    keys = list(mapping)
    position = keys.index(key)
    lines = _take_following_lines(mapping, key)
    mapping.ca.items.pop(key, None)
    del mapping[key]
    if not lines:
        return
    if position > 0:
        _give_following_lines(mapping, keys[position - 1], lines)
    else:
        before = mapping.ca.comment
        if before is None:
            mapping.ca.comment = before = [None, []]
        if before[1] is None:
            before[1] = []
        before[1].append(CommentToken(lines, CommentMark(0)))


def _last_entry(mapping: CommentedMap, key: str) -> tuple[CommentedMap, str]:
    # the comment after a nested mapping is held by its innermost last key
    value = mapping[key]
    while isinstance(value, CommentedMap) and len(value) and not value.fa.flow_style():
        mapping, key = value, list(value)[-1]
        value = mapping[key]
    return mapping, key


def _take_following_lines(mapping: CommentedMap, key: str) -> str:
    """Detach the full comment lines after ``key``'s entry (its end-of-line comment stays)."""
    owner, last = _last_entry(mapping, key)
    slots = owner.ca.items.get(last)
    token = slots[_AFTER_VALUE] if slots and len(slots) > _AFTER_VALUE else None
    if not isinstance(token, CommentToken):
        return ""
    own, newline, following = token.value.partition("\n")
    if not newline or not following.strip():
        return ""
    token.value = own + newline
    return following


def _give_following_lines(mapping: CommentedMap, key: str, lines: str) -> None:
    owner, last = _last_entry(mapping, key)
    slots = owner.ca.items.setdefault(last, [None, None, None, None])
    while len(slots) <= _AFTER_VALUE:
        slots.append(None)
    token = slots[_AFTER_VALUE]
    if isinstance(token, CommentToken):
        ending = token.value if token.value.endswith("\n") else token.value + "\n"
        token.value = ending + lines
    else:
        slots[_AFTER_VALUE] = CommentToken("\n" + lines, CommentMark(0))
