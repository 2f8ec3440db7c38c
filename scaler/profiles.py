"""Connection profiles: broker addresses and credentials kept server-side, named by metadata.

KEDA never forwards a TriggerAuthentication to an external scaler (keda#2571), so without
profiles every credential must travel in ScaledObject metadata. A profiles file (mounted from a
Secret) names connections::

    connections:
      orders-redis:
        backend: redis
        address: redis-master.shop:6379
        password: s3cret
      orders-kafka:
        backend: kafka
        bootstrapServers: kafka-0.kafka:9093
        sasl: scram_sha512
        username: scaler
        password: s3cret
        tls: enable

and a trigger says ``connection: orders-redis`` instead of ``address``/``password``. A profile
holds only the backend's connection keys (``Backend.connection_keys``); the trigger keeps its
query keys (``listName``, ``topic``, thresholds). Metadata that names a profile may not also set
a connection key (KEDA's own ``enableTLS``/``unsafeSsl``, which it reads for its connection to
this scaler, are dropped). With ``--require-profiles`` every trigger must name a profile, so a
ScaledObject cannot make the scaler connect anywhere the operator did not list.

Profile values never appear in errors, logs or ``repr``.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final

import yaml

from scaler.errors import MetadataError, SettingsError
from scaler.metadata import BACKEND_KEY, FROM_ENV_SUFFIX
from scaler.values import quote

log = logging.getLogger(__name__)

CONNECTION_KEY: Final = "connection"
#: keys KEDA reads itself for its connection to this scaler and forwards anyway
KEDA_OWN_KEYS: Final = frozenset({"enableTLS", "unsafeSsl", "scalerAddress"})


@dataclass(frozen=True, slots=True)
class Profile:
    """One named connection: its backend and its connection keys (values hidden from repr)."""

    name: str
    backend: str
    values: Mapping[str, str] = field(repr=False)


def _base_key(key: str) -> str:
    return key.removesuffix(FROM_ENV_SUFFIX) if key.endswith(FROM_ENV_SUFFIX) else key


class Profiles:
    """The loaded profiles and the rule that applies them to trigger metadata.

    :param profiles: by name
    :param connection_keys: each backend's connection keys
    :param required: refuse metadata that does not name a profile
    :param families: each backend's connection family (``Backend.family``): a profile serves
        every backend of its own backend's family; a backend not named is its own family
    """

    def __init__(
        self,
        profiles: Mapping[str, Profile],
        connection_keys: Mapping[str, frozenset[str]],
        required: bool = False,
        families: Mapping[str, str] | None = None,
    ) -> None:
        self._profiles = dict(profiles)
        self._connection_keys = connection_keys
        self._families = dict(families or {})
        self.required = required

    def __len__(self) -> int:
        return len(self._profiles)

    def __repr__(self) -> str:
        return f"Profiles(names={sorted(self._profiles)}, required={self.required})"

    def resolve(self, metadata: Mapping[str, str]) -> Mapping[str, str]:
        """The metadata the backend parses: the trigger's query keys plus the profile's keys.

        :raises MetadataError: unknown profile, backend mismatch, a connection key set beside a
            profile, or no profile while profiles are required
        """
        name = metadata.get(CONNECTION_KEY, "").strip()
        if not name:
            if self.required:
                raise MetadataError(
                    [
                        f"missing required parameter {CONNECTION_KEY}: this scaler only connects "
                        "through its connection profiles (--require-profiles), so metadata cannot "
                        "name its own broker; known profiles: " + ", ".join(sorted(self._profiles))
                    ]
                )
            return metadata
        profile = self._profiles.get(name)
        if profile is None:
            known = ", ".join(sorted(self._profiles)) or "none"
            raise MetadataError(
                [f"{CONNECTION_KEY}: {quote(name)} is not a profile (known: {known})"]
            )
        backend = metadata.get(BACKEND_KEY, "").strip() or profile.backend
        if self._family(backend) != self._family(profile.backend):
            raise MetadataError(
                [f"{BACKEND_KEY}: {quote(backend)} but connection {name!r} is a {profile.backend}"]
            )
        keys = self._connection_keys.get(backend, frozenset())
        conflicts = sorted(
            k for k in metadata if _base_key(k) in keys and _base_key(k) not in KEDA_OWN_KEYS
        )
        if conflicts:
            raise MetadataError(
                f"{k}: cannot be set beside connection {name!r}, which defines the connection"
                for k in conflicts
            )
        merged = {k: v for k, v in metadata.items() if _base_key(k) not in keys}
        merged.update(profile.values)
        merged[BACKEND_KEY] = backend
        return merged

    def _family(self, backend: str) -> str:
        return self._families.get(backend, backend)


def load(
    path: str,
    connection_keys: Mapping[str, frozenset[str]],
    required: bool,
    families: Mapping[str, str] | None = None,
) -> Profiles:
    """Read a profiles file; every problem in one SettingsError that quotes no value.

    :param connection_keys: each backend's connection keys (the backend registry decides)
    :param families: each backend's connection family (see :class:`Profiles`)
    """
    try:
        with open(path, encoding="utf-8") as handle:
            document = yaml.safe_load(handle)
    except OSError as err:
        raise SettingsError(f"profiles {path}: cannot read: {err.strerror}") from None
    except yaml.YAMLError as err:
        # the parser's message quotes the offending line, which may hold a password
        mark = getattr(err, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        raise SettingsError(f"profiles {path}: not valid YAML{where}") from None
    problems: list[str] = []
    profiles: dict[str, Profile] = {}
    connections = document.get("connections") if isinstance(document, dict) else None
    if not isinstance(connections, dict):
        raise SettingsError(f"profiles {path}: expected a mapping under 'connections'")
    for name, body in connections.items():
        profile = _profile(str(name), body, connection_keys, problems)
        if profile is not None:
            profiles[profile.name] = profile
    if problems:
        raise SettingsError(f"profiles {path}: " + "; ".join(problems))
    return Profiles(profiles, connection_keys, required, families)


def _profile(
    name: str, body: Any, connection_keys: Mapping[str, frozenset[str]], problems: list[str]
) -> Profile | None:
    if not isinstance(body, dict):
        problems.append(f"{name}: expected a mapping of metadata keys")
        return None
    backend = str(body.get(BACKEND_KEY, "")).strip()
    if backend not in connection_keys:
        problems.append(f"{name}: backend must be one of [{', '.join(connection_keys)}]")
        return None
    allowed = connection_keys[backend]
    values: dict[str, str] = {}
    for key, value in body.items():
        key = str(key)
        if key == BACKEND_KEY:
            continue
        if key not in allowed:
            names = ", ".join(sorted(allowed))
            problems.append(f"{name}: {key} is not a {backend} connection key (allowed: {names})")
        elif isinstance(value, bool):
            values[key] = "true" if value else "false"
        elif isinstance(value, str | int | float):
            values[key] = str(value)
        else:
            problems.append(f"{name}: {key} must be a string, number or boolean")
    return Profile(name, backend, values)


class ProfileFile:
    """A profiles file and its last loaded state; :meth:`changed` tells when to reload."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._stamp: tuple[float, int, int] | None = self._read_stamp()

    def _read_stamp(self) -> tuple[float, int, int] | None:
        try:
            st = os.stat(self.path)
        except OSError:
            return None
        return (st.st_mtime, st.st_size, st.st_ino)

    def changed(self) -> bool:
        """True once after the file's mtime, size or inode changed (Secret updates swap a link)."""
        stamp = self._read_stamp()
        if stamp == self._stamp:
            return False
        self._stamp = stamp
        return True
