"""Faults for the Redis Cluster and Sentinel groups of ``scripts/brokers.sh``: kill a Cluster
node and start it again with the same configuration, fail a Sentinel master over.

The nodes are the project's own (pidfiles under ``SCALER_TEST_REDIS_CLUSTER_DIR``); nothing
here touches a process it did not find there.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import redis


def _cluster_dir() -> Path:
    return Path(os.environ["SCALER_TEST_REDIS_CLUSTER_DIR"])


def cluster_kill_master(port: int) -> int:
    """SIGKILL the Cluster node on ``port`` (a master: its replica takes over after
    ``cluster-node-timeout``); the port, for :func:`cluster_restart_node`."""
    pid = int((_cluster_dir() / str(port) / "node.pid").read_text())
    os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while Path(f"/proc/{pid}").exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    return port


def cluster_restart_node(port: int, timeout: float = 30) -> None:
    """Start a killed node again from its configuration (``node.conf``, written by
    ``scripts/brokers/redis-cluster.sh``); it rejoins, as a replica when its replica took over,
    and the cluster is ``ok`` on every node before this returns."""
    subprocess.run(["redis-server", str(_cluster_dir() / str(port) / "node.conf")], check=True)
    deadline = time.monotonic() + timeout
    while not _all_ok():
        if time.monotonic() > deadline:
            raise AssertionError(f"cluster node {port} did not rejoin within {timeout} s")
        time.sleep(0.2)


def _all_ok() -> bool:
    for port_dir in _cluster_dir().iterdir():
        if not port_dir.name.isdigit():
            continue
        try:
            info = redis.Redis(port=int(port_dir.name), socket_timeout=2).cluster("info")
        except redis.RedisError:
            return False
        if info["cluster_state"] != "ok":
            return False
    return True


def sentinel_master(sentinels: list[tuple[str, int]], name: str) -> tuple[str, int]:
    """The master every sentinel names; AssertionError while they disagree."""
    answers = set()
    for host, port in sentinels:
        sentinel = redis.Redis(host=host, port=port, socket_timeout=2)
        address: Any = sentinel.sentinel_get_master_addr_by_name(name)
        answers.add(
            (address[0].decode() if isinstance(address[0], bytes) else address[0], int(address[1]))
        )
    if len(answers) != 1:
        raise AssertionError(f"sentinels disagree about {name}: {answers}")
    return answers.pop()


def sentinel_failover(
    sentinels: list[tuple[str, int]], name: str, timeout: float = 45
) -> tuple[tuple[str, int], tuple[str, int]]:
    """``SENTINEL FAILOVER`` and wait until every sentinel names the new master, the new master
    says it is one and the old one follows it: (old, new).

    A sentinel refuses or drops a failover asked for too soon after the last one (twice
    ``failover-timeout``) or while the replica is still syncing, so the request is repeated.
    """
    old = sentinel_master(sentinels, name)
    host, port = sentinels[0]
    sentinel = redis.Redis(host=host, port=port, socket_timeout=2)
    deadline = time.monotonic() + timeout
    asked, new = 0.0, old
    while True:
        # ask again only while the sentinels still name the old master: asking after the switch
        # would fail back over
        if new == old and time.monotonic() - asked > 10:
            with contextlib.suppress(redis.ResponseError):  # INPROG, NOGOODSLAVE: ask later
                sentinel.execute_command("SENTINEL", "FAILOVER", name)  # type: ignore[no-untyped-call]
            asked = time.monotonic()
        with contextlib.suppress(redis.RedisError, AssertionError):
            new = sentinel_master(sentinels, name)
            if new != old and _role(new) == b"master" and _role(old) == b"slave":
                return old, new
        if time.monotonic() > deadline:
            raise AssertionError(f"no failover of {name} within {timeout} s")
        time.sleep(0.1)


def _role(address: tuple[str, int]) -> bytes:
    reply = redis.Redis(host=address[0], port=address[1], socket_timeout=2).execute_command(  # type: ignore[no-untyped-call]
        "ROLE"
    )
    return bytes(reply[0])
