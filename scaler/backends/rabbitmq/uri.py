"""The ``host`` URI of ``backend: rabbitmq``: its scheme, address and credentials, and its vhost.

:func:`endpoint` is the converter of the ``host`` key: ``amqp[s]://`` or ``http[s]://``, with a
host name (stricter than KEDA, which accepts ``http://`` and fails only when it connects). The
path is kept percent-encoded, because the vhost rules differ by protocol and ``%2F`` must stay
distinguishable from ``/``: :func:`amqp_vhost` (the AMQP URI spec) and
:func:`http_vhost_and_prefix` (KEDA's reading of a management API URL).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Final
from urllib.parse import unquote, urlsplit

from scaler.values import InvalidValue

#: the protocol each scheme speaks
SCHEMES: Final = {"amqp": "amqp", "amqps": "amqp", "http": "http", "https": "http"}
TLS_SCHEMES: Final = frozenset({"amqps", "https"})
_DEFAULT_PORTS: Final = {"amqp": 5672, "amqps": 5671, "http": 80, "https": 443}


@dataclass(frozen=True, slots=True)
class Endpoint:
    """What ``host`` says; its password is hidden from ``repr``.

    :param path: the URI's path, still percent-encoded
    """

    scheme: str
    host: str
    port: int
    path: str
    username: str | None = None
    password: str | None = field(default=None, repr=False)

    @property
    def protocol(self) -> str:
        """``amqp`` or ``http``."""
        return SCHEMES[self.scheme]


def endpoint(text: str) -> Endpoint:
    """The converter of ``host``: an ``amqp[s]://`` or ``http[s]://`` URI naming a host."""
    try:
        parts = urlsplit(text)
        port = parts.port
    except ValueError:
        raise InvalidValue("is not a valid URI") from None
    scheme = parts.scheme.lower()
    if scheme not in SCHEMES:
        raise InvalidValue(
            f"must start with amqp://, amqps://, http:// or https:// (scheme {scheme!r})"
        )
    if not parts.hostname:
        raise InvalidValue("has no host name")
    return Endpoint(
        scheme=scheme,
        host=parts.hostname,
        port=port or _DEFAULT_PORTS[scheme],
        path=parts.path,
        username=unquote(parts.username) if parts.username else None,
        password=unquote(parts.password) if parts.password is not None else None,
    )


def amqp_vhost(raw_path: str) -> str:
    """The vhost of an AMQP URI's path (the AMQP URI spec): the path without its leading slash,
    percent-decoded; an empty path, or a bare ``/``, is the default vhost ``/``."""
    encoded = raw_path[1:] if raw_path.startswith("/") else raw_path
    return unquote(encoded) if encoded else "/"


def http_vhost_and_prefix(raw_path: str, vhost_name: str | None) -> tuple[str, str]:
    """(vhost, path prefix) of a management API URL's path, as KEDA's getVhostAndPathFromURL:
    the last segment is the vhost (empty = ``/``), earlier segments a prefix kept in front of
    ``/api``; ``vhostName`` overrides the segment."""
    segments = raw_path.split("/")
    prefix = "/".join(s for s in segments[:-1] if s)
    vhost = vhost_name if vhost_name is not None else unquote(segments[-1])
    return (vhost or "/"), (f"/{prefix}" if prefix else "")
