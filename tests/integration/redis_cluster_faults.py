"""The Redis Cluster of ``scripts/brokers.sh``, seen and hurt from a test: what each node says
about the cluster, kill a node and start it again with the same configuration, wait for a
replica to take over or for the cluster to be healthy again.

A process is signalled only when the pidfile under ``SCALER_TEST_REDIS_CLUSTER_DIR`` names a
``redis-server`` working in that node's directory.
"""

from __future__ import annotations

import os
import signal
import subprocess
from dataclasses import dataclass
from pathlib import Path

import redis

from tests.integration.redis_topology import (
    CLUSTER_DIR_ENV,
    CLUSTER_NODES_ENV,
    RUN_DIR,
    SLOTS,
    Address,
    command,
    env_addresses,
    wait_for,
)

# --- Cluster --------------------------------------------------------------------------------


def cluster_addresses() -> list[Address]:
    """The six nodes, from ``SCALER_TEST_REDIS_CLUSTER_NODES``."""
    return env_addresses(CLUSTER_NODES_ENV)


def cluster_dir() -> Path:
    """Where the nodes keep ``node.conf``, ``nodes.conf``, ``node.pid`` and ``node.log``."""
    return Path(os.environ.get(CLUSTER_DIR_ENV) or RUN_DIR / "redis-cluster")


@dataclass(frozen=True)
class ClusterNodeInfo:
    """One line of ``CLUSTER NODES``."""

    id: str
    address: Address
    flags: frozenset[str]
    master_id: str | None
    slots: tuple[tuple[int, int], ...]

    @property
    def is_master(self) -> bool:
        return "master" in self.flags

    @property
    def failed(self) -> bool:
        """Marked ``fail`` (agreed) or ``fail?`` (suspected by the node asked)."""
        return bool(self.flags & {"fail", "fail?"})

    @property
    def slot_count(self) -> int:
        return sum(end - start + 1 for start, end in self.slots)

    def owns(self, slot: int) -> bool:
        return any(start <= slot <= end for start, end in self.slots)


def parse_cluster_nodes(text: str) -> list[ClusterNodeInfo]:
    """``CLUSTER NODES`` (or a ``nodes.conf``) as :class:`ClusterNodeInfo` rows; slots being
    imported or migrated (``[slot->-id]``) are left out."""
    nodes = []
    for line in text.splitlines():
        fields = line.split()
        if len(fields) < 8 or fields[0] == "vars":
            continue
        host, _, port = fields[1].split("@")[0].split(",")[0].rpartition(":")
        slots = []
        for item in fields[8:]:
            if item.startswith("["):
                continue
            start, _, end = item.partition("-")
            slots.append((int(start), int(end or start)))
        nodes.append(
            ClusterNodeInfo(
                id=fields[0],
                address=(host, int(port)),
                flags=frozenset(fields[2].split(",")) - {"myself"},
                master_id=None if fields[3] == "-" else fields[3],
                slots=tuple(slots),
            )
        )
    return nodes


def cluster_nodes(address: Address) -> list[ClusterNodeInfo]:
    """The cluster as the node at ``address`` sees it."""
    return parse_cluster_nodes(str(command(address, "CLUSTER", "NODES")))


def cluster_info(address: Address) -> dict[str, str]:
    """``CLUSTER INFO`` of one node as a dict."""
    text = str(command(address, "CLUSTER", "INFO"))
    return dict(line.split(":", 1) for line in text.splitlines() if ":" in line)


def cluster_masters(address: Address | None = None) -> list[ClusterNodeInfo]:
    """The masters that serve slots and are not failed, as one node (default: the first live
    one) sees them, in slot order."""
    view = cluster_nodes(address or _live_cluster_nodes()[0])
    masters = [n for n in view if n.is_master and n.slots and not n.failed]
    return sorted(masters, key=lambda n: n.slots[0])


def cluster_replicas_of(port: int) -> list[Address]:
    """The replicas of the node on ``port``, as the node itself says (``ROLE``)."""
    role = command(("127.0.0.1", port), "ROLE")
    if role[0] != "master":
        raise AssertionError(f"cluster node {port} is not a master: {role[0]}")
    return [(str(host), int(replica_port)) for host, replica_port, _ in role[2]]


def cluster_node_pid(port: int) -> int:
    """The pid of our node on ``port``, from its pidfile; AssertionError unless that process is
    a ``redis-server`` working in the node's directory (never someone else's process)."""
    node_dir = cluster_dir() / str(port)
    pidfile = node_dir / "node.pid"
    if not pidfile.exists():
        raise AssertionError(f"{pidfile} missing: scripts/brokers.sh start redis-cluster")
    pid = int(pidfile.read_text().split()[0])
    proc = Path(f"/proc/{pid}")
    try:
        comm = (proc / "comm").read_text().strip()
        cwd = (proc / "cwd").resolve(strict=True)
    except OSError as err:
        raise AssertionError(f"cluster node {port}: pid {pid} of {pidfile} is not running") from err
    if comm != "redis-server" or cwd != node_dir.resolve():
        raise AssertionError(f"pid {pid} of {pidfile} is not our redis-server ({comm} in {cwd})")
    return pid


def _gone(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True
    return stat.rpartition(")")[2].split()[0] == "Z"


def cluster_kill_master(port: int, timeout: float = 10) -> int:
    """SIGKILL the Cluster master on ``port`` and wait for the process to be gone; returns the
    port, for :func:`cluster_restart_node`. Its replica takes over after
    ``cluster-node-timeout`` (2 s) plus an election: :func:`cluster_wait_failed` and
    :func:`cluster_wait_promoted` wait for either. ``cluster_state`` stays ``ok`` on the other
    nodes (``cluster-require-full-coverage no``) while the killed master's slots are down."""
    role = command(("127.0.0.1", port), "ROLE")
    if role[0] != "master":
        raise AssertionError(f"cluster node {port} is a {role[0]}, not a master")
    return cluster_kill_node(port, timeout)


def cluster_kill_node(port: int, timeout: float = 10) -> int:
    """SIGKILL the Cluster node on ``port`` (master or replica); returns the port."""
    pid = cluster_node_pid(port)
    os.kill(pid, signal.SIGKILL)
    wait_for(
        f"pid {pid} (cluster node {port}) to exit", lambda: True if _gone(pid) else None, timeout
    )
    return port


def _live_cluster_nodes(but: int | None = None) -> list[Address]:
    live = []
    for address in cluster_addresses():
        if address[1] == but:
            continue
        try:
            command(address, "PING")
        except redis.RedisError:
            continue
        live.append(address)
    if not live:
        raise AssertionError("no cluster node answers")
    return live


def cluster_wait_failed(port: int, timeout: float = 15) -> None:
    """Until every other live node flags the node on ``port`` ``fail`` (agreed, not ``fail?``)."""

    def check() -> bool | None:
        for address in _live_cluster_nodes(but=port):
            view = {n.address[1]: n for n in cluster_nodes(address)}
            if port not in view or "fail" not in view[port].flags:
                return None
        return True

    wait_for(f"cluster node {port} flagged fail by every other node", check, timeout)


def cluster_wait_promoted(port: int, timeout: float = 20) -> Address:
    """Until a replica of the (killed) master on ``port`` is a master owning slots on every other
    live node's view; returns its address. The replicas are read from the killed node's last
    saved view (its ``nodes.conf``), so this works after the kill too."""
    saved = parse_cluster_nodes((cluster_dir() / str(port) / "nodes.conf").read_text())
    me = next((n for n in saved if n.address[1] == port), None)
    if me is None:
        raise AssertionError(f"cluster node {port}: not in its own nodes.conf")
    replicas = {n.id for n in saved if n.master_id == me.id}
    if not replicas:
        raise AssertionError(f"cluster node {port} had no replica when it went (nodes.conf)")

    def check() -> Address | None:
        promoted: set[Address] = set()
        for address in _live_cluster_nodes(but=port):
            heirs = [
                n
                for n in cluster_nodes(address)
                if n.id in replicas and n.is_master and n.slots and not n.failed
            ]
            if len(heirs) != 1:
                return None
            promoted.add(heirs[0].address)
        return promoted.pop() if len(promoted) == 1 else None

    return wait_for(f"a replica of cluster node {port} promoted", check, timeout)


def cluster_healthy() -> bool:
    """Every node answers, says ``cluster_state:ok``, knows six nodes and sees all 16384 slots
    served by three masters that are not failed, and every replica says its replication link is
    up (``ROLE``: a restarted node is in the cluster's view before it has synced)."""
    try:
        for address in cluster_addresses():
            info = cluster_info(address)
            if (info.get("cluster_state"), info.get("cluster_slots_ok")) != ("ok", str(SLOTS)):
                return False
            if info.get("cluster_known_nodes") != str(len(cluster_addresses())):
                return False
            view = cluster_nodes(address)
            if any(n.failed for n in view):
                return False
            if len([n for n in view if n.is_master and n.slots]) != 3:
                return False
        for address in cluster_addresses():
            role = command(address, "ROLE")
            if role[0] == "slave" and role[3] != "connected":
                return False
    except redis.RedisError:
        return False
    return True


def cluster_wait_healthy(timeout: float = 30) -> None:
    """Until :func:`cluster_healthy`."""
    wait_for(
        "every cluster node ok, no node failed",
        lambda: True if cluster_healthy() else None,
        timeout,
    )


def cluster_restart_node(port: int, timeout: float = 30) -> None:
    """Start a killed node again from its configuration (``node.conf``, written by
    ``scripts/brokers/redis-cluster.sh``); it rejoins, as a replica when its replica took over,
    and the whole cluster is healthy again (:func:`cluster_healthy`) before this returns."""
    conf = cluster_dir() / str(port) / "node.conf"
    if not conf.exists():
        raise AssertionError(f"{conf} missing: scripts/brokers.sh start redis-cluster")
    try:
        cluster_node_pid(port)
    except AssertionError:
        pass
    else:
        raise AssertionError(f"cluster node {port} is running: kill it first")
    # daemonize yes: returns once the server is forked off
    subprocess.run(["redis-server", str(conf)], check=True, stdin=subprocess.DEVNULL, timeout=10)
    cluster_wait_healthy(timeout)
