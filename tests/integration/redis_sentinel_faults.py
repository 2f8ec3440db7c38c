"""The Redis Sentinel group of ``scripts/brokers.sh``, from a test: the master the sentinels
name, whether the group is healthy, and a failover that waits until it is complete."""

from __future__ import annotations

import os
import time
from typing import Any

import redis

from tests.integration.redis_topology import (
    SENTINEL_MASTER_ENV,
    SENTINEL_NODES_ENV,
    SENTINELS_ENV,
    Address,
    command,
    env_addresses,
    wait_for,
)

# --- Sentinel -------------------------------------------------------------------------------


def sentinel_addresses() -> list[Address]:
    """The three sentinels, from ``SCALER_TEST_REDIS_SENTINELS``."""
    return env_addresses(SENTINELS_ENV)


def _master_name() -> str:
    """The monitored master name, from ``SCALER_TEST_REDIS_SENTINEL_MASTER``."""
    name = os.environ.get(SENTINEL_MASTER_ENV, "")
    if not name:
        raise AssertionError(f'{SENTINEL_MASTER_ENV} is not set: eval "$(scripts/brokers.sh env)"')
    return name


def sentinel_data_nodes() -> list[Address]:
    """The group's master and replica (in either role), from ``SCALER_TEST_REDIS_SENTINEL_NODES``."""
    return env_addresses(SENTINEL_NODES_ENV)


def sentinel_master(
    sentinels: list[Address] | None = None, name: str | None = None
) -> tuple[str, int]:
    """The master every sentinel names; AssertionError while they disagree."""
    sentinels = sentinels or sentinel_addresses()
    name = name or _master_name()
    answers = set()
    for address in sentinels:
        reply = command(address, "SENTINEL", "GET-MASTER-ADDR-BY-NAME", name)
        if not reply:
            raise AssertionError(f"sentinel {address} does not know {name}")
        answers.add((str(reply[0]), int(reply[1])))
    if len(answers) != 1:
        raise AssertionError(f"sentinels disagree about {name}: {answers}")
    return answers.pop()


def sentinel_fields(reply: Any) -> dict[str, str]:
    """A sentinel's description of a node (a map, or a flat list of field, value) as strings."""
    if isinstance(reply, dict):
        return {str(key): str(value) for key, value in reply.items()}
    return {str(reply[i]): str(reply[i + 1]) for i in range(0, len(reply) - 1, 2)}


def _follows(replica: Address, master: Address) -> bool:
    """The node at ``replica`` says it is a replica of ``master`` with the link up."""
    role = command(replica, "ROLE")
    return bool(
        role[0] == "slave" and (str(role[1]), int(role[2])) == master and role[3] == "connected"
    )


def sentinel_healthy(sentinels: list[Address] | None = None, name: str | None = None) -> bool:
    """Every sentinel names the same master, which says it is one, and knows the two other
    sentinels and one replica, up, that reported itself a replica with its link up; that replica
    says so now too (asked directly)."""
    sentinels = sentinels or sentinel_addresses()
    name = name or _master_name()
    try:
        master = sentinel_master(sentinels, name)
        known: set[Address] = set()
        for address in sentinels:
            state = sentinel_fields(command(address, "SENTINEL", "MASTER", name))
            if state.get("flags") != "master" or state.get("num-other-sentinels") != "2":
                return False
            replicas = [sentinel_fields(r) for r in command(address, "SENTINEL", "REPLICAS", name)]
            # what the sentinel last heard from the replica itself (INFO), not only its flags: a
            # sentinel that still remembers a replica as a master undoes its next promotion
            if [
                (r.get("flags"), r.get("role-reported"), r.get("master-link-status"))
                for r in replicas
            ] != [("slave", "slave", "ok")]:
                return False
            known.add((replicas[0]["ip"], int(replicas[0]["port"])))
        if len(known) != 1 or command(master, "ROLE")[0] != "master":
            return False
        return _follows(known.pop(), master)
    except (redis.RedisError, AssertionError, KeyError, ValueError):
        return False


def sentinel_wait_healthy(
    sentinels: list[Address] | None = None, name: str | None = None, timeout: float = 30
) -> Address:
    """Until :func:`sentinel_healthy`; returns the master."""
    return wait_for(
        "the sentinel group healthy",
        lambda: sentinel_master(sentinels, name) if sentinel_healthy(sentinels, name) else None,
        timeout,
    )


def sentinel_failover(
    sentinels: list[Address] | None = None, name: str | None = None, timeout: float = 45
) -> tuple[tuple[str, int], tuple[str, int]]:
    """``SENTINEL FAILOVER`` on one sentinel, and wait until every sentinel names the new master,
    the new master says it is one and the old one follows it with the link up: (old, new), in
    about 4 s with the Sentinel timers scripts/brokers/redis-sentinel.sh sets. Sentinels, name:
    the brokers' (``SCALER_TEST_REDIS_SENTINELS``, ``..._MASTER``) by default.

    It starts from a healthy group (:func:`sentinel_wait_healthy`). A sentinel refuses a
    failover while one is in progress (INPROG) or while it sees no fit replica (NOGOODSLAVE),
    and may accept one and drop it later, so the request is repeated, but only while every
    sentinel still names the old master: asking after the switch would fail back over. The old
    master becomes a replica when a sentinel tells it to (``+convert-to-slave``), about 2 s after
    the switch."""
    sentinels = sentinels or sentinel_addresses()
    name = name or _master_name()
    deadline = time.monotonic() + timeout

    def left() -> float:
        return max(deadline - time.monotonic(), 0.1)

    old = sentinel_wait_healthy(sentinels, name, timeout)
    asked = -1e9  # when a sentinel last accepted the request

    def switched() -> Address | None:
        nonlocal asked
        new = sentinel_master(sentinels, name)  # AssertionError while they disagree: not yet
        if new != old:
            return new if command(new, "ROLE")[0] == "master" else None
        if time.monotonic() - asked > 10:  # not asked yet, or accepted and dropped
            try:
                command(sentinels[0], "SENTINEL", "FAILOVER", name)
            except redis.ResponseError as err:
                if not str(err).startswith(("NOGOODSLAVE", "INPROG")):
                    raise RuntimeError(f"SENTINEL FAILOVER {name}: {err}") from err
            else:
                asked = time.monotonic()
        return None

    try:
        new = wait_for(f"every sentinel naming a new master for {name}", switched, left())
        wait_for(
            f"the old master {old} following {new}",
            lambda: True if _follows(old, new) else None,
            left(),
        )
    except AssertionError as err:
        raise AssertionError(f"no failover of {name} within {timeout} s: {err}") from None
    return old, new
