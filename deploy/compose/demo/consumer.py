"""Compose demo consumer: BRPOPs jobs from a Redis list and "works" on each for a while.

One consumer drains about ``1 / DEMO_JOB_SECONDS`` jobs per second, slower than a burst arrives,
so a backlog builds up: exactly what the ScaledObject in ``scaledobject.yaml`` scales on (one
replica per 5 waiting jobs). The simulator service prints the replica count KEDA would choose.

Environment (all optional): ``DEMO_REDIS_URL`` (``redis://redis:6379/0``), ``DEMO_LIST``
(``jobs``), ``DEMO_JOB_SECONDS`` (``0.5``).
"""

from __future__ import annotations

import json
import logging
import os
import signal
import threading
import time
from types import FrameType

import redis

log = logging.getLogger("consumer")
stop = threading.Event()
# BRPOP blocks at most this long, so a stop request is noticed within a second
_POP_TIMEOUT = 1


def _stop(signum: int, frame: FrameType | None) -> None:
    stop.set()


def take(client: redis.Redis, queue: str) -> dict[str, object] | None:
    """The oldest job (the producer LPUSHes, so the right end is the oldest), or None."""
    reply = client.brpop([queue], timeout=_POP_TIMEOUT)
    if not reply:
        return None
    job: dict[str, object] = json.loads(reply[1])
    return job


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    signal.signal(signal.SIGTERM, _stop)  # PID 1 in a container: no default SIGTERM action
    signal.signal(signal.SIGINT, _stop)
    url = os.environ.get("DEMO_REDIS_URL", "redis://redis:6379/0")
    queue = os.environ.get("DEMO_LIST", "jobs")
    job_seconds = float(os.environ.get("DEMO_JOB_SECONDS") or 0.5)
    client = redis.Redis.from_url(url, socket_timeout=_POP_TIMEOUT + 5)
    log.info("draining %s, %.2f s per job", queue, job_seconds)
    done = 0
    while not stop.is_set():
        try:
            job = take(client, queue)
        except redis.ConnectionError as err:
            log.warning("redis unavailable (%s); retrying", err)
            stop.wait(2)
            continue
        if job is None:
            continue
        stop.wait(job_seconds)  # the work
        done += 1
        if done % 10 == 0:
            waited = time.time() - float(str(job.get("created", time.time())))
            log.info("%d jobs done; the last one waited %.1f s", done, waited)
    client.close()
    log.info("stopped after %d jobs", done)


if __name__ == "__main__":
    main()
