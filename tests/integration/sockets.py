"""TCP connections between two local processes, read from the kernel's tables under /proc.

A broker's own count of its clients needs its admin API (Redis CLIENT LIST, RabbitMQ's
management API) or, for Kafka, JMX. The kernel's view works the same for all three and for
either end: :func:`connections` lists the TCP sockets a process holds (through its file
descriptors), and :func:`between` keeps the broker's end of each connection whose other end the
scaler holds. Linux only, like the rest of the integration tests.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

ESTABLISHED = "01"
_LISTEN = "0A"


@dataclass(frozen=True)
class Socket:
    """One TCP socket: local and remote ``(address hex, port)`` and the kernel's state code."""

    local: tuple[str, int]
    remote: tuple[str, int]
    state: str


_V4_MAPPED = "0000000000000000FFFF0000"  # ::ffff:a.b.c.d as /proc/net/tcp6 prints it


def _endpoint(text: str) -> tuple[str, int]:
    address, port = text.split(":")
    # a JVM listens on IPv6 and sees IPv4 peers as ::ffff:a.b.c.d; Python's clients use IPv4
    return address.removeprefix(_V4_MAPPED), int(port, 16)


def _inodes(pid: int) -> set[str]:
    inodes = set()
    fd_dir = Path(f"/proc/{pid}/fd")
    for fd in os.listdir(fd_dir):
        try:
            target = os.readlink(fd_dir / fd)
        except OSError:  # closed since listdir
            continue
        if target.startswith("socket:["):
            inodes.add(target[len("socket:[") : -1])
    return inodes


def connections(pid: int) -> list[Socket]:
    """The TCP sockets (IPv4 and IPv6, listeners left out) process ``pid`` has open."""
    owned = _inodes(pid)
    found = []
    for table in ("tcp", "tcp6"):
        lines = Path(f"/proc/{pid}/net/{table}").read_text().splitlines()[1:]
        for line in lines:
            fields = line.split()
            local, remote, state, inode = fields[1], fields[2], fields[3], fields[9]
            if inode in owned and state != _LISTEN:
                found.append(Socket(_endpoint(local), _endpoint(remote), state))
    return found


def to_port(pid: int, port: int) -> list[Socket]:
    """Sockets of ``pid`` connected (in any state) to remote ``port``: the client's view."""
    return [s for s in connections(pid) if s.remote[1] == port]


def between(broker_pid: int, client_pid: int) -> list[Socket]:
    """Established sockets the broker holds whose other end ``client_pid`` holds."""
    client_ends = {s.local for s in connections(client_pid)}
    return [
        s for s in connections(broker_pid) if s.state == ESTABLISHED and s.remote in client_ends
    ]
