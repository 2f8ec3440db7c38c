"""The gRPC client of a running scaler, and ``simulate`` runs against a real server."""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import shutil
import subprocess
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import grpc
import pytest
import yaml

from scaler.errors import RemoteError
from scaler.proto import externalscaler_pb2 as pb
from scaler.proto import externalscaler_pb2_grpc as pb_grpc
from scaler.tools import remote
from scaler.tools.simulate import command
from scaler.tools.simulate.driver import CompressedClock
from tests.fakes import BackendError
from tests.scaled_objects import manifest, scaled_object

# -- the remote client -----------------------------------------------------------------------------


async def test_remote_client_values_and_errors(serve, fake_backend) -> None:
    fake_backend.values["jobs"] = 7.5
    running = await serve(cache_ttl=0.0)
    ref = remote.ObjectRef("so", "work", {"backend": "fake", "name": "jobs", "password": "s3cret"})
    assert "s3cret" not in repr(ref)
    async with remote.ScalerClient(running.address) as client:
        assert await client.metric_spec(ref) == (remote.MetricSpec("fake-jobs", 5, 5.0),)
        assert await client.metrics(ref, "fake-jobs") == (remote.MetricValue("fake-jobs", 8, 7.5),)
        assert await client.is_active(ref) is True
        async with contextlib.aclosing(client.stream_is_active(ref)) as stream:
            assert await anext(stream) is True
        with pytest.raises(RemoteError) as err:
            await client.metric_spec(remote.ObjectRef("so", "work", {"backend": "fake"}))
        assert err.value.code_name == "INVALID_ARGUMENT"
        assert "name" in err.value.details
        fake_backend.values["jobs"] = BackendError("broker down")
        with pytest.raises(RemoteError, match=r"^UNAVAILABLE: .*broker down"):
            await client.metrics(ref, "fake-jobs")
    with pytest.raises(RuntimeError, match="outside `async with`"):
        await client.is_active(ref)


async def test_remote_client_to_nothing_is_unavailable(unused_tcp_port) -> None:
    async with remote.ScalerClient(f"127.0.0.1:{unused_tcp_port}", timeout=2) as client:
        with pytest.raises(RemoteError) as err:
            await client.is_active(remote.ObjectRef("so", "work"))
    assert err.value.code_name == "UNAVAILABLE"


class _Active(pb_grpc.ExternalScalerServicer):
    async def IsActive(self, request, context):
        return pb.IsActiveResponse(result=request.scalerMetadata.get("say") == "yes")


def _openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A CA, a server certificate for keda-queue-scaler.keda.svc, a client certificate."""
    if shutil.which("openssl") is None:
        pytest.skip("openssl is needed to make test certificates")
    where = tmp_path_factory.mktemp("pki")
    curve = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    _openssl("req", "-x509", *curve, "-keyout", "ca.key", "-out", "ca.pem", "-days", "1",
             "-subj", "/CN=test-ca", cwd=where)  # fmt: skip
    (where / "san.ext").write_text("subjectAltName=DNS:keda-queue-scaler.keda.svc\n")
    for name in ("server", "client"):
        _openssl("req", *curve, "-keyout", f"{name}.key", "-out", f"{name}.csr",
                 "-subj", f"/CN={name}", cwd=where)  # fmt: skip
        _openssl("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
                 "-CAcreateserial", "-out", f"{name}.pem", "-days", "1", "-extfile", "san.ext",
                 cwd=where)  # fmt: skip
    return where


async def test_remote_client_over_mutual_tls(pki) -> None:
    server = grpc.aio.server()
    # the generated base class answers UNIMPLEMENTED for the methods _Active leaves out
    pb_grpc.add_ExternalScalerServicer_to_server(_Active(), server)  # type: ignore[abstract]
    credentials = grpc.ssl_server_credentials(
        [((pki / "server.key").read_bytes(), (pki / "server.pem").read_bytes())],
        root_certificates=(pki / "ca.pem").read_bytes(),
        require_client_auth=True,
    )
    port = server.add_secure_port("127.0.0.1:0", credentials)
    await server.start()
    try:
        mtls = remote.TlsConfig(
            ca_file=str(pki / "ca.pem"),
            cert_file=str(pki / "client.pem"),
            key_file=str(pki / "client.key"),
            server_name="keda-queue-scaler.keda.svc",
        )
        ref = remote.ObjectRef("so", "work", {"say": "yes"})
        async with remote.ScalerClient(f"127.0.0.1:{port}", tls=mtls, timeout=5) as client:
            assert await client.is_active(ref) is True
        # no client certificate: the server refuses the handshake
        one_way = replace(mtls, cert_file=None, key_file=None)
        async with remote.ScalerClient(f"127.0.0.1:{port}", tls=one_way, timeout=5) as client:
            with pytest.raises(RemoteError, match=r"^UNAVAILABLE"):
                await client.is_active(ref)
    finally:
        await server.stop(None)
    with pytest.raises(ValueError, match="both cert_file and key_file"):
        remote.TlsConfig(cert_file="client.pem")


# -- the command against a real server -------------------------------------------------------------


def parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    command.add_arguments(parser)
    return parser.parse_args(list(argv))


class SteppedClock(CompressedClock):
    """The compressed real clock, remembering the last scheduled event time: scripted backend
    values follow it, so they do not depend on how fast this machine answers."""

    scheduled = 0.0

    async def sleep_until(self, when: float) -> None:
        await super().sleep_until(when)
        self.scheduled = max(self.scheduled, when)


class Scripted(dict[str, float | BaseException]):
    """``FakeBackend.values`` whose value follows the simulated time: ``[(since, value), ...]``."""

    def __init__(self, now: Callable[[], float], script: list[tuple[float, float]]) -> None:
        super().__init__()
        self.now = now
        self.script = script

    def get(self, key, default=None):
        current = default
        for since, value in self.script:
            if self.now() >= since:
                current = value
        return current


def write_manifest(tmp_path: Path, trigger_type: str, **spec_fields: Any) -> Path:
    trigger = {
        "type": trigger_type,
        "metadata": {
            "scalerAddress": "keda-queue-scaler.keda.svc:9090",
            "backend": "fake",
            "name": "jobs",
            "target": "5",
            "passwordFromEnv": "JOBS_PASSWORD",
        },
    }
    path = tmp_path / "so.yaml"
    path.write_text(manifest(scaled_object("consumer", trigger, **spec_fields)), encoding="utf-8")
    return path


async def test_simulate_against_a_running_scaler_json_and_plot(
    serve, fake_backend, tmp_path, capsys
):
    running = await serve(cache_ttl=0.0)  # every read reaches the scripted backend
    clock = SteppedClock(300)
    fake_backend.values = Scripted(lambda: clock.scheduled, [(0, 0.0), (52, 40.0), (155, 0.0)])
    path = write_manifest(tmp_path, "external", maxReplicaCount=10, cooldownPeriod=60)
    plot = tmp_path / "out.png"
    out = io.StringIO()
    args = parse(str(path), "--address", running.address, "--speed", "300", "--duration", "330",
                 "--json", "--plot", str(plot))  # fmt: skip
    status = await command.run(args, {"JOBS_PASSWORD": "s3cret"}, out, clock=clock)

    assert status == 0
    rows = json.loads(out.getvalue())
    changes = [(r["time"], r["event"], r["replicasBefore"], r["replicas"]) for r in rows
               if r["replicasBefore"] != r["replicas"]]  # fmt: skip
    assert changes == [
        (60, "poll", 0, 1),  # the first poll that sees 40 jobs
        (60, "hpa", 1, 4),  # ceil(40 / 5) = 8, at most max(2 x 1, 4) at once
        (75, "hpa", 4, 8),
        (210, "poll", 8, 0),  # last active at 150, cooldownPeriod 60
    ]
    assert rows[0] == {
        "time": 0,
        "event": "poll",
        "metrics": {"s0-fake-jobs": 0.0},
        "active": False,
        "replicasBefore": 0,
        "replicas": 0,
        "reason": "inactive",
    }
    assert [r["reason"] for r in rows if r["time"] == 60] == [
        "activate 0->1",
        "hpa 1->4 (scale-up limit max(2x, 4))",
    ]
    assert {r["time"] for r in rows if r["event"] == "poll"} == set(range(0, 331, 30))
    assert "s3cret" not in out.getvalue() + capsys.readouterr().err
    assert plot.read_bytes().startswith(b"\x89PNG\r\n\x1a\n")
    assert plot.stat().st_size > 10_000


async def test_simulate_push_activation_beats_the_poll(serve, fake_backend, tmp_path):
    running = await serve(cache_ttl=0.0)
    clock = CompressedClock(100)
    # follows the real compressed clock: the scaler's watcher sees the jobs arrive at about 40 s
    fake_backend.values = Scripted(clock.now, [(0, 0.0), (40, 20.0)])
    path = write_manifest(tmp_path, "external-push")
    out = io.StringIO()
    args = parse(str(path), "--address", running.address, "--speed", "100", "--duration", "75")
    status = await command.run(args, {}, out, clock=clock)

    assert status == 0
    lines = out.getvalue().splitlines()
    assert lines[0].startswith("ScaledObject/work/consumer: replicas 0..100, pollingInterval 30s")
    assert lines[1].split() == ["TIME", "EVENT", "s0-fake-jobs", "ACTIVE", "REPLICAS", "REASON"]
    [push] = [line.split(maxsplit=5) for line in lines if " push " in line]
    assert push[1:] == ["push", "-", "yes", "1", "trigger 0 pushed true: activate 0->1"]
    assert 40 <= float(push[0]) < 60  # before the poll at 60 would have seen it
    # the HPA takes it from there: ceil(20 / 5) = 4
    assert lines[-1].split()[:5] == ["75.0", "hpa", "20", "-", "4"]


async def test_simulate_exit_statuses(tmp_path, unused_tcp_port, monkeypatch, capsys) -> None:
    path = write_manifest(tmp_path, "external")
    address = f"127.0.0.1:{unused_tcp_port}"
    assert (
        await command.run(
            parse(str(path), "--address", address, "--timeout", "2"), {}, io.StringIO()
        )
        == 1
    )
    assert "KEDA could not build the HPA: UNAVAILABLE" in capsys.readouterr().err

    monkeypatch.setattr(command, "plot_available", lambda: False)
    args = parse(str(path), "--address", address, "--plot", str(tmp_path / "x.png"))
    assert await command.run(args, {}, io.StringIO()) == 2
    assert (
        "--plot needs matplotlib, which is not installed: pip install 'keda-queue-scaler[plot]'"
        in capsys.readouterr().err
    )

    assert await command.run(parse(str(tmp_path / "missing.yaml")), {}, io.StringIO()) == 2
    assert "cannot read" in capsys.readouterr().err
    args = parse(str(path), "--tls-ca", str(tmp_path / "nowhere.pem"))
    assert await command.run(args, {}, io.StringIO()) == 2
    assert f"cannot read {tmp_path / 'nowhere.pem'}: No such file" in capsys.readouterr().err
    args = parse(str(path), "--tls-cert", "client.pem")
    assert await command.run(args, {}, io.StringIO()) == 2
    assert "--tls-cert and --tls-key go together" in capsys.readouterr().err
    # serve's Settings reads tls_cert/tls_key from a namespace: simulate's flags keep out of it
    assert not {"tls_cert", "tls_key"} & set(vars(args))


async def test_simulate_parses_the_manifest_once(serve, fake_backend, tmp_path, monkeypatch):
    parses: list[str] = []
    parse_all = yaml.safe_load_all

    def counted(stream):
        parses.append(stream)
        return parse_all(stream)

    monkeypatch.setattr(yaml, "safe_load_all", counted)
    running = await serve()
    fake_backend.values["jobs"] = 3.0
    path = write_manifest(tmp_path, "external", pollingInterval=10, maxReplicaCount=7)
    args = parse(str(path), "--address", running.address, "--speed", "600", "--duration", "1")
    out = io.StringIO()
    assert await command.run(args, {}, out) == 0
    # the spec loader read pollingInterval from the model's raw spec, not from the text again
    assert "replicas 0..7, pollingInterval 10s" in out.getvalue().splitlines()[0]
    assert len(parses) == 1


async def test_simulate_over_mutual_tls_to_the_scaler(serve, fake_backend, pki, tmp_path) -> None:
    running = await serve(
        tls_cert=str(pki / "server.pem"),
        tls_key=str(pki / "server.key"),
        tls_client_ca=str(pki / "ca.pem"),
    )
    fake_backend.values["jobs"] = 12.0
    path = write_manifest(tmp_path, "external")
    out = io.StringIO()
    args = parse(str(path), "--address", running.address, "--speed", "600", "--duration", "15",
                 "--json", "--tls-ca", str(pki / "ca.pem"), "--tls-cert", str(pki / "client.pem"),
                 "--tls-key", str(pki / "client.key"),
                 "--tls-server-name", "keda-queue-scaler.keda.svc")  # fmt: skip
    assert await command.run(args, {}, out) == 0
    rows = json.loads(out.getvalue())
    assert [(r["time"], r["event"], r["replicas"]) for r in rows] == [
        (0, "poll", 1),
        (0, "hpa", 3),
        (15, "hpa", 3),
    ]
