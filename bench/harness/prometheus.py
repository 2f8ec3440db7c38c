"""Prometheus text exposition: scrape it, parse it into samples, sum series by label."""

from __future__ import annotations

import re

import httpx

_SAMPLE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)")
_LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')

#: sample values keyed by (metric name, label pairs)
Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def parse_prometheus(text: str) -> Samples:
    """Samples of a Prometheus text exposition, keyed by (name, labels)."""
    samples: Samples = {}
    for line in text.splitlines():
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
    """Sum of the samples of ``name`` whose labels include ``labels``."""
    wanted = set(labels.items())
    return sum(v for (n, pairs), v in samples.items() if n == name and wanted <= pairs)


async def scrape(http: httpx.AsyncClient, url: str) -> Samples:
    """The samples an endpoint serves now (an HTTP error raises)."""
    response = await http.get(url)
    response.raise_for_status()
    return parse_prometheus(response.text)
