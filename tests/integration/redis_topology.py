"""Faults for the Redis Cluster and Sentinel groups of ``scripts/brokers.sh``: kill a Cluster
node and start it again with the same configuration, fail a Sentinel master over.

The nodes are the project's own (pidfiles under ``SCALER_TEST_REDIS_CLUSTER_DIR``); nothing
here touches a process it did not find there.
"""

from __future__ import annotations

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
    sentinels: list[tuple[str, int]], name: str, timeout: float = 30
) -> tuple[tuple[str, int], tuple[str, int]]:
    """``SENTINEL FAILOVER`` and wait until every sentinel names the new master, the new master
    says it is one and the old one follows it: (old, new)."""
    old = sentinel_master(sentinels, name)
    host, port = sentinels[0]
    redis.Redis(host=host, port=port, socket_timeout=2).execute_command(  # type: ignore[no-untyped-call]
        "SENTINEL", "FAILOVER", name
    )
    deadline = time.monotonic() + timeout
    while True:
        try:
            new = sentinel_master(sentinels, name)
            if new != old:
                role = redis.Redis(host=new[0], port=new[1], socket_timeout=2).execute_command(  # type: ignore[no-untyped-call]
                    "ROLE"
                )
                demoted = redis.Redis(host=old[0], port=old[1], socket_timeout=2).execute_command(  # type: ignore[no-untyped-call]
                    "ROLE"
                )
                if role[0] == b"master" and demoted[0] == b"slave":
                    return old, new
        except (redis.RedisError, AssertionError):
            pass
        if time.monotonic() > deadline:
            raise AssertionError(f"no failover of {name} within {timeout} s")
        time.sleep(0.1)
