"""Client TLS contexts from the PEM contents (``ca``, ``cert``, ``key``) that metadata carries.

Shared by the backends that speak TLS to their broker; standard library only.
"""

from __future__ import annotations

import os
import ssl
import tempfile
from typing import Protocol

from scaler.errors import MetadataError


def client_context(
    backend: str,
    *,
    ca: str | None = None,
    cert: str | None = None,
    key: str | None = None,
    key_password: str | None = None,
    unsafe: bool = False,
) -> ssl.SSLContext:
    """System roots plus ``ca``; a client certificate from PEM; ``unsafe`` skips verification.

    :raises MetadataError: when the PEM material cannot be loaded (the message names no secret)
    """
    context = ssl.create_default_context()
    try:
        if ca:
            context.load_verify_locations(cadata=ca)
        if cert and key:
            # the ssl module loads a certificate chain from files only: write both into a
            # private directory (mkdtemp is 0700, the files 0600) and remove it at once
            with tempfile.TemporaryDirectory(prefix="kqs-tls-") as folder:
                cert_file = os.path.join(folder, "cert.pem")
                key_file = os.path.join(folder, "key.pem")
                for path, content in ((cert_file, cert), (key_file, key)):
                    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
                    with os.fdopen(descriptor, "w") as handle:
                        handle.write(content)
                context.load_cert_chain(cert_file, key_file, password=key_password)
    except (ssl.SSLError, ValueError, OSError) as err:
        # the ssl module's messages name no key material
        raise MetadataError([f"{backend}: ca, cert or key could not be loaded: {err}"]) from None
    if unsafe:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context


class TlsMaterial(Protocol):
    """A connection identity carrying KEDA's TLS keys (Kafka's and RabbitMQ's)."""

    @property
    def ca(self) -> str | None: ...
    @property
    def cert(self) -> str | None: ...
    @property
    def key(self) -> str | None: ...
    @property
    def key_password(self) -> str | None: ...
    @property
    def unsafe_ssl(self) -> bool: ...


def context_for(backend: str, connection: TlsMaterial) -> ssl.SSLContext:
    """:func:`client_context` from a connection identity's ``ca``/``cert``/``key`` fields."""
    return client_context(
        backend,
        ca=connection.ca,
        cert=connection.cert,
        key=connection.key,
        key_password=connection.key_password,
        unsafe=connection.unsafe_ssl,
    )
