"""Throwaway certificates made with the openssl command line, for TLS tests."""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path


def _openssl(*args: str) -> None:
    subprocess.run(["openssl", *args], check=True, capture_output=True)


def make_ca(folder: Path, name: str) -> tuple[Path, Path]:
    key, cert = folder / f"{name}-ca.key", folder / f"{name}-ca.pem"
    _openssl(
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        str(key),
        "-out",
        str(cert),
        "-days",
        "2",
        "-subj",
        f"/CN={name} test CA",
    )
    return key, cert


def make_leaf(folder: Path, name: str, ca: tuple[Path, Path], server: bool) -> tuple[Path, Path]:
    key, csr, cert = folder / f"{name}.key", folder / f"{name}.csr", folder / f"{name}.pem"
    ext = folder / f"{name}.ext"
    ext.write_text(
        "subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\n"
        if server
        else "extendedKeyUsage=clientAuth\n"
    )
    _openssl(
        "req",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        str(key),
        "-out",
        str(csr),
        "-subj",
        f"/CN={name}",
    )
    _openssl(
        "x509",
        "-req",
        "-in",
        str(csr),
        "-CA",
        str(ca[1]),
        "-CAkey",
        str(ca[0]),
        "-CAcreateserial",
        "-out",
        str(cert),
        "-days",
        "2",
        "-extfile",
        str(ext),
    )
    return key, cert


@dataclass
class Pki:
    folder: Path
    ca: Path
    server_key: Path
    server_cert: Path
    client_key: Path
    client_cert: Path
    rogue_key: Path
    rogue_cert: Path

    def read(self, path: Path) -> bytes:
        return path.read_bytes()


def make_pki(folder: Path) -> Pki:
    ca = make_ca(folder, "trusted")
    rogue_ca = make_ca(folder, "rogue")
    server = make_leaf(folder, "server", ca, server=True)
    client = make_leaf(folder, "client", ca, server=False)
    rogue = make_leaf(folder, "rogue-client", rogue_ca, server=False)
    return Pki(folder, ca[1], server[0], server[1], client[0], client[1], rogue[0], rogue[1])
