"""The README and the pages under docs/: every relative link and anchor resolves.

A link is checked when its target has no scheme (``https:``, ``mailto:``): the file or folder must
exist, relative to the page that links to it, inside the repository; a ``#fragment`` must name a
heading of the target page, slugged as GitHub does (lower case, punctuation dropped, each space a
hyphen, ``-1``, ``-2`` ... for repeats). Fenced code blocks and code spans are not markdown, so
neither their links nor their ``#`` lines count.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from functools import cache
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
DOCS = ROOT / "docs"
#: the issue's bound on the README: what it is, why, the two commands, a first run, links
README_MAX_LINES = 250

_FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})")
_HEADING = re.compile(r"^ {0,3}(#{1,6})[ \t]+(.*?)(?:[ \t]+#+)?[ \t]*$")
_CODE_SPAN = re.compile(r"(`+)(?:.+?)\1")
# [text](target) and ![alt](target), with an optional "title"; <target> for targets with spaces
_INLINE_LINK = re.compile(r"!?\[(?:[^\]\\]|\\.)*\]\(\s*(<[^>]*>|[^)\s]+)(?:\s+\"[^\"]*\")?\s*\)")
_REFERENCE = re.compile(r"^ {0,3}\[[^\]]+\]:\s*(<[^>]*>|\S+)")
_HTML_ANCHOR = re.compile(r"<a\s+(?:name|id)=\"([^\"]+)\"", re.IGNORECASE)
_SCHEME = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*:")


def pages() -> list[Path]:
    return [README, *sorted(DOCS.rglob("*.md"))]


def _prose_lines(path: Path) -> Iterator[tuple[int, str]]:
    """Lines outside fenced code blocks, numbered from 1."""
    fence = ""
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        match = _FENCE.match(line)
        if fence:
            if match and match.group(1)[0] == fence[0] and len(match.group(1)) >= len(fence):
                fence = ""
            continue
        if match:
            fence = match.group(1)
            continue
        yield number, line


def slug(heading: str) -> str:
    """GitHub's anchor for a heading's text."""
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", heading)  # a link counts by its text
    text = re.sub(r"<[^>]+>", "", text).replace("`", "").replace("*", "")
    text = re.sub(r"[^\w\- ]", "", text.strip().lower())
    return text.replace(" ", "-")


@cache
def anchors(path: Path) -> frozenset[str]:
    seen: dict[str, int] = {}
    found = set()
    for _, line in _prose_lines(path):
        found.update(_HTML_ANCHOR.findall(line))
        match = _HEADING.match(line)
        if not match:
            continue
        base = slug(match.group(2))
        count = seen.get(base, 0)
        seen[base] = count + 1
        found.add(base if count == 0 else f"{base}-{count}")
    return frozenset(found)


def links(path: Path) -> Iterator[tuple[int, str]]:
    for number, line in _prose_lines(path):
        prose = _CODE_SPAN.sub("", line)
        for match in (*_INLINE_LINK.finditer(prose), *_REFERENCE.finditer(prose)):
            yield number, match.group(1).strip("<>")


def _problem(page: Path, target: str) -> str | None:
    if _SCHEME.match(target):
        return None  # https:, mailto: ...: not this test's business
    file_part, _, fragment = target.partition("#")
    resolved = (page.parent / file_part).resolve() if file_part else page
    if not resolved.is_relative_to(ROOT):
        return "points outside the repository"
    if not resolved.exists():
        return f"{resolved.relative_to(ROOT)} does not exist"
    if fragment:
        if resolved.is_dir() or resolved.suffix != ".md":
            return "has an anchor, but does not point at a markdown page"
        if fragment not in anchors(resolved):
            return f"no heading of {resolved.relative_to(ROOT)} has the anchor #{fragment}"
    return None


@pytest.mark.parametrize("page", pages(), ids=lambda p: str(p.relative_to(ROOT)))
def test_every_relative_link_and_anchor_resolves(page: Path) -> None:
    problems = [
        f"{page.relative_to(ROOT)}:{number}: ({target}) {problem}"
        for number, target in links(page)
        if (problem := _problem(page, target)) is not None
    ]
    assert not problems, "\n".join(problems)


def test_every_docs_page_is_linked_from_the_readme() -> None:
    linked = {
        (README.parent / target.partition("#")[0]).resolve()
        for _, target in links(README)
        if not _SCHEME.match(target) and target.partition("#")[0]
    }
    unlinked = [str(p.relative_to(ROOT)) for p in sorted(DOCS.rglob("*.md")) if p not in linked]
    assert not unlinked, f"docs pages the README does not link: {unlinked}"


def test_every_docs_page_is_in_the_index() -> None:
    index = DOCS / "README.md"
    linked = {
        (index.parent / target.partition("#")[0]).resolve()
        for _, target in links(index)
        if not _SCHEME.match(target) and target.partition("#")[0]
    }
    missing = [
        str(p.relative_to(ROOT))
        for p in sorted(DOCS.rglob("*.md"))
        if p != index and p not in linked
    ]
    assert not missing, f"docs pages missing from docs/README.md: {missing}"


def test_readme_stays_short() -> None:
    count = len(README.read_text(encoding="utf-8").splitlines())
    assert count <= README_MAX_LINES, (
        f"README.md has {count} lines; keep it to {README_MAX_LINES} and move detail to docs/"
    )


# The checker itself, on small pages, so that a broken checker cannot pass everything.


def test_slug_follows_github() -> None:
    assert slug("Differences from KEDA's built-in `redis` trigger") == (
        "differences-from-kedas-built-in-redis-trigger"
    )
    assert slug("Tuning a ScaledObject: `simulate`") == "tuning-a-scaledobject-simulate"
    assert slug("Ready versus unacknowledged: why HTTP") == "ready-versus-unacknowledged-why-http"
    assert slug("TLS and mTLS") == "tls-and-mtls"
    assert slug("watch_intervals and --watch-interval") == "watch_intervals-and---watch-interval"


def test_checker_finds_broken_links_and_ignores_code(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(f"{__name__}.ROOT", tmp_path)
    (tmp_path / "other.md").write_text("# Other\n\n## Same\n\n## Same\n")
    page = tmp_path / "page.md"
    page.write_text(
        "# Page\n\n"
        "[ok](other.md) [ok](other.md#same-1) [ok](#page) [web](https://example.com/x#y)\n"
        "[missing](nowhere.md) [bad anchor](other.md#nothing) [up](../../etc/passwd)\n"
        "`[in a span](nowhere.md)`\n"
        "```md\n[in a fence](nowhere.md)\n# not a heading\n```\n"
        "[self](#not-a-heading)\n"
    )
    anchors.cache_clear()
    found = [(number, target, _problem(page, target)) for number, target in links(page)]
    anchors.cache_clear()
    bad = [(number, target) for number, target, problem in found if problem]
    assert bad == [
        (4, "nowhere.md"),
        (4, "other.md#nothing"),
        (4, "../../etc/passwd"),
        (10, "#not-a-heading"),
    ]
    assert len(found) == 8
