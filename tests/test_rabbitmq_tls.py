"""backend: rabbitmq TLS material: the PEM contents of ``ca``, ``cert``, ``key`` and
``keyPassword`` become a client TLS context, leave no file behind and never show a secret."""

from __future__ import annotations

import shutil
import ssl
import subprocess
import tempfile
from pathlib import Path

import pytest

from scaler.backends.rabbitmq import RabbitConnection
from scaler.errors import MetadataError
from tests.rabbitmq_support import HTTP, parse_metadata


@pytest.fixture(scope="module")
def client_pem(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, str]:
    """A self-signed certificate and its key encrypted with ``key-pass-9z``, as PEM text."""
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.skip("openssl is not installed")
    folder = tmp_path_factory.mktemp("pem")
    subprocess.run(
        [
            openssl,
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-days",
            "1",
            "-subj",
            "/CN=kqs-test",
            "-passout",
            "pass:key-pass-9z",
            "-keyout",
            str(folder / "key.pem"),
            "-out",
            str(folder / "cert.pem"),
        ],
        check=True,
        capture_output=True,
    )
    return (folder / "cert.pem").read_text(), (folder / "key.pem").read_text()


def tls_connection(cert: str, key: str, key_password: str) -> RabbitConnection:
    trigger = parse_metadata(
        {
            **HTTP,
            "host": "https://rabbit.svc:15671/",
            "tls": "enable",
            "ca": cert,
            "cert": cert,
            "key": key,
            "keyPassword": key_password,
        }
    )
    return trigger.connection


def test_tls_material_loads_from_pem_and_leaves_no_file(
    client_pem: tuple[str, str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    cert, key = client_pem
    context = tls_connection(cert, key, "key-pass-9z").ssl_context()
    assert context.verify_mode == ssl.CERT_REQUIRED
    assert context.check_hostname is True
    assert any(c.get("subject") for c in context.get_ca_certs())  # system roots + our CA
    assert list(tmp_path.iterdir()) == []  # the key was written only for the load


def test_wrong_key_password_is_invalid_metadata_without_secrets(
    client_pem: tuple[str, str],
) -> None:
    cert, key = client_pem
    with pytest.raises(MetadataError) as err:
        tls_connection(cert, key, "not-the-pass-7y").ssl_context()
    assert "could not be loaded" in str(err.value)
    assert "not-the-pass-7y" not in str(err.value)
    assert "ENCRYPTED" not in str(err.value)


def test_unsafe_ssl_turns_verification_off() -> None:
    trigger = parse_metadata({**HTTP, "host": "https://rabbit.svc/", "unsafeSsl": "true"})
    context = trigger.connection.ssl_context()
    assert context.verify_mode == ssl.CERT_NONE
    assert context.check_hostname is False
