"""What ``/metrics`` serves beside the scaler's own series: the standard process and Python
collectors, and no ``_created`` samples."""

from __future__ import annotations

import asyncio
import urllib.request


async def test_metrics_have_the_process_collectors_and_no_created_series(serve) -> None:
    running = await serve()
    running.app.metrics.metadata_refused("redis", "missing")  # a counter with a sample

    def scrape() -> str:
        url = f"http://127.0.0.1:{running.app.metrics_port}/metrics"
        with urllib.request.urlopen(url, timeout=5) as response:
            body: bytes = response.read()
        return body.decode()

    text = await asyncio.to_thread(scrape)
    names = {line.split("{")[0].split(" ")[0] for line in text.splitlines() if line[:1].isalpha()}
    for wanted in (
        "process_resident_memory_bytes",
        "process_cpu_seconds_total",
        "process_open_fds",
        "python_gc_collections_total",
        "python_info",
        "keda_queue_scaler_metadata_errors_total",
    ):
        assert wanted in names, wanted
    assert not [name for name in names if name.endswith("_created")]
