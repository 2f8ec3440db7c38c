"""The two keys of shared work: which connection, and what is read on it.

* :class:`ConnectionKey` (backend name, connection identity): one pooled client per key, one
  watcher batch per key;
* :class:`ReadKey` (its ConnectionKey, resource): one coalesced measurement per key, one
  watcher per key.

Both are built once, when a trigger is parsed, and hash once: the dataclasses inside hash field
by field, and the hot path (a cache hit per KEDA call) must not pay that again. Cache, watchers
and pool use these types and build no keys of their own. Standard library only.
"""

from __future__ import annotations

from collections.abc import Hashable


class ConnectionKey:
    """A backend and a connection identity (address, credentials, TLS) of that backend."""

    __slots__ = ("_hash", "backend", "connection")

    def __init__(self, backend: str, connection: Hashable) -> None:
        self.backend = backend
        self.connection = connection
        self._hash = hash((backend, connection))

    def __hash__(self) -> int:
        return self._hash

    def __eq__(self, other: object) -> bool:
        return (
            isinstance(other, ConnectionKey)
            and other.backend == self.backend
            and other.connection == self.connection
        )

    def __repr__(self) -> str:
        # the identity may hold a password: its dataclass repr hides it, but keep logs short
        return f"ConnectionKey({self.backend})"


class ReadKey:
    """What one broker read answers: a resource (list, group and topic, queue) on a connection."""

    __slots__ = ("_hash", "connection", "resource")

    def __init__(self, connection: ConnectionKey, resource: Hashable) -> None:
        self.connection = connection
        self.resource = resource
        self._hash = hash((connection, resource))

    @property
    def backend(self) -> str:
        return self.connection.backend

    def __hash__(self) -> int:
        return self._hash

    def __eq__(self, other: object) -> bool:
        return (
            isinstance(other, ReadKey)
            and other.resource == self.resource
            and other.connection == self.connection
        )

    def __repr__(self) -> str:
        return f"ReadKey({self.backend}, {type(self.resource).__name__})"
