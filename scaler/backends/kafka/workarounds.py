"""Workarounds for kafka-python 3.0.12, each to be deleted once kafka-python no longer needs it.

Every one names the behaviour it works around, as seen with kafka-python 3.0.12 against the test
broker, and the upstream change to recheck on an upgrade (no upstream issue reports these
behaviours as such); the check before deleting one is the test that proves it is needed:

* :func:`admin_client`: ``KafkaAdminClient.__init__`` leaks its IO thread when bootstrap fails
  (tests/test_kafka_client.py, ``test_failed_bootstraps_leave_no_thread_behind``);
* :func:`all_refuse`: a refused bootstrap is retried until the timeout
  (``test_a_refused_bootstrap_is_unavailable_at_once``);
* :func:`sasl_rejection`: a rejected SASL login surfaces as a bootstrap timeout
  (tests/integration/test_kafka.py, ``test_sasl_logins_and_a_wrong_password``);
* :func:`send_each`: the admin client has no record fetch, so ``mode: LagSeconds`` sends its Fetch
  requests through the admin client's connection manager
  (tests/integration/test_kafka_ages.py, every test).
"""

from __future__ import annotations

import socket
import ssl
import struct
from collections.abc import Mapping, Sequence
from typing import Any, Final

import kafka.errors as kerr
from kafka.admin import KafkaAdminClient
from kafka.net.sasl.plain import SaslMechanismPlain
from kafka.net.sasl.scram import SaslMechanismScram

from scaler.backends.kafka.trigger import KafkaConnection
from scaler.values import host_port

_SASL_HANDSHAKE: Final = 17
_SASL_AUTHENTICATE: Final = 36
_CLIENT_ID: Final = b"keda-queue-scaler"


def admin_client(config: Mapping[str, Any]) -> KafkaAdminClient:
    """A KafkaAdminClient, or the bootstrap error with nothing left behind.

    kafka-python 3.0.12 starts the client's IO thread (``kafka-io-...``) and opens its sockets
    before it bootstraps, and a failed bootstrap raises out of ``__init__`` without stopping
    either, leaving the caller no object to close: every read during a Kafka outage would leave
    a thread behind (found by the fault tests under load). Upstream: dpkp/kafka-python#2864 made
    the admin client bootstrap in ``__init__``; #2934 (closing and failing a pending bootstrap,
    already in 3.0.12) does not stop the thread a failed ``__init__`` leaves.
    """
    admin = KafkaAdminClient.__new__(KafkaAdminClient)
    try:
        admin.__init__(**config)  # split from __new__ to clean up after a failure
    except BaseException:
        client = getattr(admin, "_client", None)
        if client is not None:
            client.close()
        net = getattr(admin, "_net", None)
        if net is not None:
            net.stop()
        metrics = getattr(admin, "_metrics", None)
        if metrics is not None:
            metrics.close()
        raise
    return admin


def send_each(admin: KafkaAdminClient, requests: Sequence[tuple[int, Any]]) -> list[Any]:
    """The responses to ``(broker node id, request)`` pairs, sent together and in order on the
    admin client's own connections.

    kafka-python 3.0.12's ``KafkaAdminClient`` offers no record fetch, but its connection manager
    (``_manager``, private) sends any protocol request to a node and negotiates its version, on
    the connections the admin client already holds: same SASL login, TLS and timeouts, no
    second client to bootstrap. Every request is sent before any response is awaited, so the
    brokers answer concurrently. Upstream: kafka/net/manager.py (``KafkaConnectionManager.send``
    and ``run``), new in kafka-python 3.0; recheck both on an upgrade, and delete this if the
    admin client ever gains a record fetch.
    """
    manager = admin._manager

    async def together() -> list[Any]:
        pending = [manager.send(request, node_id=node) for node, request in requests]
        return [await response for response in pending]

    responses: list[Any] = manager.run(together)
    return responses


def all_refuse(servers: Sequence[str], timeout: float) -> bool:
    """True if every bootstrap server refuses a TCP connection outright.

    kafka-python 3.0.12 retries a refused bootstrap until ``bootstrap_timeout_ms``, so a stopped
    broker would cost every read the whole backend timeout (and a pool thread) before
    UNAVAILABLE. Anything but a refusal (an answer, silence, a name that does not resolve) is
    left to the real client. Upstream: dpkp/kafka-python#3098 changes the backoff after a
    failed bootstrap; recheck with it.
    """
    wait = min(timeout, 0.25)  # a refusal is immediate; silence is the client's to time out
    for server in servers:
        address = host_port(server)  # validated when parsed
        if address is None:
            return False
        try:
            socket.create_connection(address, timeout=wait).close()
        except ConnectionRefusedError:
            continue
        except OSError:
            return False
        return False
    return True


def sasl_rejection(
    connection: KafkaConnection, timeout: float, context: ssl.SSLContext | None
) -> str | None:
    """The broker's reason for rejecting our SASL credentials, or None if it accepts them.

    With kafka-python 3.0.12 a wrong password reaches the caller only as a KafkaTimeoutError
    once ``bootstrap_timeout_ms`` has passed: its bootstrap loop retries after any connection
    failure, SaslAuthenticationFailedError included (and the broker's SaslAuthenticate error,
    which arrives together with the close, is at times read as a plain disconnect). That would
    make a wrong password look like an outage. So before building a client, log in once
    ourselves on the first bootstrap server (kafka-python computes the PLAIN/SCRAM messages) and
    read the verdict. Anything but a clear rejection returns None and is left to the real
    client. Upstream: dpkp/kafka-python#2994 raises SaslAuthenticationFailedError on connect;
    with 3.0.12 the admin client's bootstrap still ends in a timeout.

    :param context: TLS for the probe, as the client will use it (None: plaintext)
    """
    mechanism = connection.mechanism
    if mechanism not in ("PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"):
        return None
    config = {
        "sasl_mechanism": mechanism,
        "sasl_plain_username": connection.username or "",
        "sasl_plain_password": connection.password or "",
    }
    client = SaslMechanismPlain(**config) if mechanism == "PLAIN" else SaslMechanismScram(**config)
    address = host_port(connection.bootstrap_servers[0])  # validated when parsed
    if address is None:
        return None
    try:
        with socket.create_connection(address, timeout=timeout) as raw:
            sock = (
                context.wrap_socket(raw, server_hostname=address[0]) if context is not None else raw
            )
            name = mechanism.encode()
            error, _, _ = _sasl_call(sock, 1, _SASL_HANDSHAKE, struct.pack(">h", len(name)) + name)
            if error:
                return f"the broker does not enable SASL mechanism {mechanism}"
            while not client.is_done():
                token = client.auth_bytes()
                error, message, reply = _sasl_call(
                    sock, 2, _SASL_AUTHENTICATE, struct.pack(">i", len(token)) + token
                )
                if error:
                    return message or f"error code {error}"
                client.receive(reply)
    except (OSError, ValueError, KeyError, struct.error, kerr.KafkaError):
        return None  # unreachable or unexpected: the real client will say what it is
    return None


def _sasl_call(
    sock: socket.socket, correlation: int, api: int, body: bytes
) -> tuple[int, str, bytes]:
    """One request with a v1 header (API version 1) and its (error code, message, bytes)."""
    request = struct.pack(">hhih", api, 1, correlation, len(_CLIENT_ID)) + _CLIENT_ID + body
    sock.sendall(struct.pack(">i", len(request)) + request)
    response = _receive(sock, struct.unpack(">i", _receive(sock, 4))[0])
    (error,) = struct.unpack_from(">h", response, 4)
    if api == _SASL_HANDSHAKE:
        return error, "", b""
    (length,) = struct.unpack_from(">h", response, 6)
    at = 8 + max(length, 0)
    message = response[8:at].decode(errors="replace") if length > 0 else ""
    if error:
        return error, message, b""
    (size,) = struct.unpack_from(">i", response, at)
    return 0, "", response[at + 4 : at + 4 + max(size, 0)]


def _receive(sock: socket.socket, size: int) -> bytes:
    data = b""
    while len(data) < size:
        chunk = sock.recv(size - len(data))
        if not chunk:
            raise ConnectionError("connection closed by the broker")
        data += chunk
    return data
