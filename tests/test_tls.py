"""TLS and mTLS on the gRPC port, with generated certificates; reload without restart."""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path

import grpc
import pytest

from scaler.errors import SettingsError
from scaler.proto import externalscaler_pb2_grpc as pb_grpc
from scaler.settings import Settings
from tests.conftest import ref
from tests.pki import Pki, make_ca, make_leaf, make_pki

META = {"backend": "fake", "name": "jobs"}


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return make_pki(tmp_path_factory.mktemp("pki"))


async def call(address: str, credentials: grpc.ChannelCredentials | None) -> grpc.StatusCode:
    channel = (
        grpc.aio.secure_channel(address, credentials)
        if credentials is not None
        else grpc.aio.insecure_channel(address)
    )
    async with channel:
        try:
            await pb_grpc.ExternalScalerStub(channel).GetMetricSpec(ref(META), timeout=3)
        except grpc.aio.AioRpcError as err:
            return err.code()
    return grpc.StatusCode.OK


async def test_tls_serves_trusted_clients_and_refuses_plaintext(serve, pki: Pki) -> None:
    running = await serve(tls_cert=str(pki.server_cert), tls_key=str(pki.server_key))
    trusted = grpc.ssl_channel_credentials(root_certificates=pki.read(pki.ca))
    assert await call(running.address, trusted) == grpc.StatusCode.OK
    assert await call(running.address, None) == grpc.StatusCode.UNAVAILABLE


async def test_mtls_requires_a_client_certificate_from_the_client_ca(serve, pki: Pki) -> None:
    running = await serve(
        tls_cert=str(pki.server_cert), tls_key=str(pki.server_key), tls_client_ca=str(pki.ca)
    )
    root = pki.read(pki.ca)
    with_cert = grpc.ssl_channel_credentials(
        root, pki.read(pki.client_key), pki.read(pki.client_cert)
    )
    without_cert = grpc.ssl_channel_credentials(root)
    rogue_cert = grpc.ssl_channel_credentials(
        root, pki.read(pki.rogue_key), pki.read(pki.rogue_cert)
    )
    assert await call(running.address, with_cert) == grpc.StatusCode.OK
    assert await call(running.address, without_cert) == grpc.StatusCode.UNAVAILABLE
    assert await call(running.address, rogue_cert) == grpc.StatusCode.UNAVAILABLE


async def test_certificate_files_are_reloaded_without_restart(
    serve, pki: Pki, tmp_path: Path
) -> None:
    cert, key = tmp_path / "tls.crt", tmp_path / "tls.key"
    shutil.copy(pki.server_cert, cert)
    shutil.copy(pki.server_key, key)
    running = await serve(tls_cert=str(cert), tls_key=str(key))
    old_root = grpc.ssl_channel_credentials(pki.read(pki.ca))
    assert await call(running.address, old_root) == grpc.StatusCode.OK
    # rotate to a certificate from another CA, as cert-manager would
    new_ca = make_ca(tmp_path, "renewed")
    new_key, new_cert = make_leaf(tmp_path, "renewed-server", new_ca, server=True)
    shutil.copy(new_key, key)
    shutil.copy(new_cert, cert)
    new_root = grpc.ssl_channel_credentials(new_ca[1].read_bytes())
    for _ in range(20):  # the next handshake picks the new files up
        if await call(running.address, new_root) == grpc.StatusCode.OK:
            break
        await asyncio.sleep(0.1)
    assert await call(running.address, new_root) == grpc.StatusCode.OK
    assert await call(running.address, old_root) == grpc.StatusCode.UNAVAILABLE


def test_tls_settings_are_checked_together() -> None:
    with pytest.raises(SettingsError) as err:
        Settings.load({"tls_cert": "/c.pem", "tls_client_ca": "/ca.pem"}, {})
    assert "--tls-cert and --tls-key must be given together" in str(err.value)


async def test_plaintext_health_port_beside_mtls_serves_health_only(serve, pki: Pki) -> None:
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    running = await serve(
        tls_cert=str(pki.server_cert),
        tls_key=str(pki.server_key),
        tls_client_ca=str(pki.ca),
        health_port=0,
    )
    assert running.app.health_port == 0  # 0 keeps it off
    free = (
        running.app.grpc_port + 1000
        if running.app.grpc_port < 60000
        else running.app.grpc_port - 1000
    )
    running = await serve(
        tls_cert=str(pki.server_cert),
        tls_key=str(pki.server_key),
        tls_client_ca=str(pki.ca),
        health_port=free,
    )
    async with grpc.aio.insecure_channel(f"127.0.0.1:{running.app.health_port}") as channel:
        reply = await health_pb2_grpc.HealthStub(channel).Check(
            health_pb2.HealthCheckRequest(service=""), timeout=3
        )
        assert reply.status == health_pb2.HealthCheckResponse.SERVING
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await pb_grpc.ExternalScalerStub(channel).GetMetricSpec(ref(META), timeout=3)
        assert err.value.code() == grpc.StatusCode.UNIMPLEMENTED  # no scaler API without mTLS
