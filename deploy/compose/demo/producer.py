"""Compose demo producer: pushes jobs into a Redis list in bursts (the work queue's producer).

Every burst LPUSHes a random number of jobs, then the producer sleeps a random pause, so the
backlog rises and drains and the simulator shows KEDA scaling the consumer up, down and to zero.

Environment (all optional):

- ``DEMO_REDIS_URL`` (``redis://redis:6379/0``), ``DEMO_LIST`` (``jobs``)
- ``DEMO_BURST_MIN`` / ``DEMO_BURST_MAX``: jobs per burst (20 / 120)
- ``DEMO_PAUSE_MIN`` / ``DEMO_PAUSE_MAX``: seconds between bursts (20 / 60)
"""

from __future__ import annotations

import json
import logging
import os
import random
import signal
import threading
import time
import uuid
from types import FrameType

import redis

log = logging.getLogger("producer")
stop = threading.Event()


def _stop(signum: int, frame: FrameType | None) -> None:
    stop.set()


def _env_int(name: str, default: int) -> int:
    return int(os.environ.get(name) or default)


def burst(client: redis.Redis, queue: str, size: int) -> int:
    """LPUSH ``size`` jobs in one round trip; returns the list length after the push."""
    now = time.time()
    jobs = [json.dumps({"id": uuid.uuid4().hex, "created": now}) for _ in range(size)]
    return int(client.lpush(queue, *jobs))


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    signal.signal(signal.SIGTERM, _stop)  # PID 1 in a container: no default SIGTERM action
    signal.signal(signal.SIGINT, _stop)
    url = os.environ.get("DEMO_REDIS_URL", "redis://redis:6379/0")
    queue = os.environ.get("DEMO_LIST", "jobs")
    sizes = (_env_int("DEMO_BURST_MIN", 20), _env_int("DEMO_BURST_MAX", 120))
    pauses = (_env_int("DEMO_PAUSE_MIN", 20), _env_int("DEMO_PAUSE_MAX", 60))
    client = redis.Redis.from_url(url, socket_timeout=5)
    log.info("pushing bursts of %d..%d jobs into %s every %d..%d s", *sizes, queue, *pauses)
    while not stop.is_set():
        size = random.randint(*sizes)  # noqa: S311  (not cryptography)
        try:
            length = burst(client, queue, size)
        except redis.ConnectionError as err:
            log.warning("redis unavailable (%s); retrying", err)
            stop.wait(2)
            continue
        log.info("pushed %d jobs, %s now holds %d", size, queue, length)
        stop.wait(random.uniform(*pauses))  # noqa: S311
    client.close()
    log.info("stopped")


if __name__ == "__main__":
    main()
