"""Prometheus text exposition: scrape it, parse it into samples, sum series by label."""

from __future__ import annotations

import re

import httpx

_SAMPLE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)")
_LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')
_TYPE = re.compile(r"^# TYPE ([a-zA-Z_:][a-zA-Z0-9_:]*) ")
# what a counter, histogram or summary family adds to its samples' names
_SUFFIXES = ("_total", "_created", "_bucket", "_count", "_sum")


class Samples(dict[tuple[str, frozenset[tuple[str, str]]], float]):
    """Sample values keyed by (metric name, label pairs), and the families the exposition
    declared (``# TYPE``), including those with no sample yet (a counter never incremented)."""

    def __init__(self) -> None:
        super().__init__()
        self.families: set[str] = set()

    def declares(self, name: str) -> bool:
        """Whether ``name`` is a sample name of a declared family (or has samples)."""
        if name in self.families or any(n == name for n, _ in self):
            return True
        return any(name == f + s for f in self.families for s in _SUFFIXES)


def parse_prometheus(text: str) -> Samples:
    """Samples of a Prometheus text exposition, keyed by (name, labels)."""
    samples = Samples()
    for line in text.splitlines():
        declared = _TYPE.match(line)
        if declared is not None:
            samples.families.add(declared.group(1))
        if not line or line.startswith("#"):
            continue
        match = _SAMPLE.match(line)
        if match is None:
            continue
        name, labels, value = match.groups()
        pairs = frozenset(_LABEL.findall(labels or ""))
        try:
            samples[(name, pairs)] = float(value)
        except ValueError:
            continue
    return samples


def series_sum(samples: Samples, name: str, **labels: str) -> float:
    """Sum of the samples of ``name`` whose labels include ``labels``: 0 when none matches.

    :raises KeyError: ``name`` belongs to no family of the exposition, so a renamed metric
        cannot pass for a 0
    """
    if not samples.declares(name):
        raise KeyError(f"no metric {name!r} in the exposition")
    wanted = set(labels.items())
    return sum(v for (n, pairs), v in samples.items() if n == name and wanted <= pairs)


async def scrape(http: httpx.AsyncClient, url: str) -> Samples:
    """The samples an endpoint serves now (an HTTP error raises)."""
    response = await http.get(url)
    response.raise_for_status()
    return parse_prometheus(response.text)
