"""What the Redis Cluster and Sentinel faults share: the variables ``scripts/brokers.sh env``
prints, addresses, one bounded call to a node, and a bounded wait.

The faults themselves are ``redis_cluster_faults`` (see a node, kill it, restart it, wait for a
replica to take over) and ``redis_sentinel_faults`` (the master the sentinels name, a failover).
Every wait is bounded and ends in an ``AssertionError`` saying what was still missing. The helpers
are synchronous; an async test calls a slow one through ``asyncio.to_thread``.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

Address = tuple[str, int]
T = TypeVar("T")

CLUSTER_NODES_ENV = "SCALER_TEST_REDIS_CLUSTER_NODES"
CLUSTER_DIR_ENV = "SCALER_TEST_REDIS_CLUSTER_DIR"
SENTINELS_ENV = "SCALER_TEST_REDIS_SENTINELS"
SENTINEL_MASTER_ENV = "SCALER_TEST_REDIS_SENTINEL_MASTER"
SENTINEL_NODES_ENV = "SCALER_TEST_REDIS_SENTINEL_NODES"

SLOTS = 16384
#: what ``scripts/brokers.sh`` keeps under ``.run/`` when the variable is not set
RUN_DIR = Path(__file__).resolve().parents[2] / ".run"
NODE_TIMEOUT = 2.0  # seconds, for every single call to a node


def parse_addresses(value: str) -> list[Address]:
    """``"127.0.0.1:17000,127.0.0.1:17001"`` as ``[("127.0.0.1", 17000), ...]``."""
    addresses = []
    for item in value.split(","):
        host, sep, port = item.strip().rpartition(":")
        if not sep or not host or not port.isdigit():
            raise ValueError(f"not host:port: {item!r} in {value!r}")
        addresses.append((host.strip("[]"), int(port)))
    return addresses


def env_addresses(name: str) -> list[Address]:
    value = os.environ.get(name, "")
    if not value:
        raise AssertionError(f'{name} is not set: eval "$(scripts/brokers.sh env)"')
    return parse_addresses(value)


def node_client(address: Address) -> redis.Redis:
    """A client of one node, no retries (a dead node must show at once), strings decoded."""
    return redis.Redis(
        host=address[0],
        port=address[1],
        socket_timeout=NODE_TIMEOUT,
        socket_connect_timeout=NODE_TIMEOUT,
        retry=Retry(NoBackoff(), 0),
        decode_responses=True,
    )


def command(address: Address, *args: str | int) -> Any:
    """One command on one node (no parsing by redis-py beyond RESP), on a connection closed after."""
    with node_client(address) as client:
        return client.execute_command(*args)


def wait_for(what: str, check: Callable[[], T | None], timeout: float, every: float = 0.1) -> T:
    """Poll ``check`` until it returns something other than None (a Redis error, or an
    AssertionError such as sentinels disagreeing, counts as not yet); AssertionError naming
    ``what``, and the last such error, after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    last: object = None
    while True:
        try:
            result = check()
        except (redis.RedisError, OSError, AssertionError) as err:
            result, last = None, err
        if result is not None:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {timeout} s" + (f" ({last})" if last else ""))
        time.sleep(every)
