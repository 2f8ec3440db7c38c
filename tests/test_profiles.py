"""Connection profiles: merge rules, --require-profiles, reload, and secrets kept out of errors."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import grpc
import pytest

from scaler.errors import MetadataError, SettingsError
from scaler.profiles import Profiles, load
from tests.conftest import ref

KEYS = {"fake": frozenset({"address", "password", "enableTLS"}), "other": frozenset({"host"})}
SECRET = "profile-secret-5e1b"


def write(path: Path, body: str) -> str:
    path.write_text(body)
    return str(path)


@pytest.fixture
def profiles_file(tmp_path: Path) -> str:
    return write(
        tmp_path / "profiles.yaml",
        f"""
connections:
  orders:
    backend: fake
    address: orders:1
    password: {SECRET}
  other:
    backend: other
    host: elsewhere
""",
    )


def test_profile_supplies_the_connection_and_metadata_the_query(profiles_file: str) -> None:
    profiles = load(profiles_file, KEYS, required=False)
    merged = profiles.resolve({"connection": "orders", "name": "jobs", "enableTLS": "true"})
    assert merged == {
        "connection": "orders",
        "name": "jobs",
        "backend": "fake",
        "address": "orders:1",
        "password": SECRET,
    }
    assert SECRET not in repr(profiles)


def test_metadata_may_not_override_a_profile(profiles_file: str) -> None:
    profiles = load(profiles_file, KEYS, required=False)
    with pytest.raises(MetadataError) as err:
        profiles.resolve(
            {"connection": "orders", "name": "q", "address": "evil:1", "passwordFromEnv": "x"}
        )
    assert err.value.problems == (
        "address: cannot be set beside connection 'orders', which defines the connection",
        "passwordFromEnv: cannot be set beside connection 'orders', which defines the connection",
    )


def test_unknown_profile_and_backend_mismatch(profiles_file: str) -> None:
    profiles = load(profiles_file, KEYS, required=False)
    with pytest.raises(MetadataError, match=r"'nope' is not a profile \(known: orders, other\)"):
        profiles.resolve({"connection": "nope"})
    with pytest.raises(MetadataError, match="connection 'other' is a other"):
        profiles.resolve({"connection": "other", "backend": "fake"})


def test_required_profiles_refuse_metadata_naming_its_own_broker(profiles_file: str) -> None:
    profiles = load(profiles_file, KEYS, required=True)
    with pytest.raises(MetadataError, match="cannot name its own broker"):
        profiles.resolve({"backend": "fake", "name": "q", "address": "attacker:6379"})
    assert profiles.resolve({"connection": "orders", "name": "q"})["address"] == "orders:1"


def test_without_profiles_required_plain_metadata_passes() -> None:
    profiles = Profiles({}, KEYS, required=False)
    metadata = {"backend": "fake", "name": "q"}
    assert profiles.resolve(metadata) is metadata


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ("connections: [1]", "expected a mapping under 'connections'"),
        ("connections:\n  a:\n    backend: nats\n", "a: backend must be one of [fake, other]"),
        (
            f"connections:\n  a:\n    backend: fake\n    listName: q\n    password: {SECRET}\n",
            "a: listName is not a fake connection key",
        ),
        (f"connections:\n  a: {{backend: fake, password: '{SECRET}'\n", "not valid YAML at line"),
    ],
)
def test_bad_profiles_files_name_the_problem_never_a_value(
    tmp_path: Path, body: str, expected: str
) -> None:
    with pytest.raises(SettingsError) as err:
        load(write(tmp_path / "p.yaml", body), KEYS, required=False)
    assert expected in str(err.value)
    assert SECRET not in str(err.value)


async def test_served_with_profiles_and_reloaded_on_change(
    serve, fake_backend, tmp_path: Path, caplog
) -> None:
    caplog.set_level(logging.DEBUG)
    path = tmp_path / "profiles.yaml"
    write(
        path,
        f"connections:\n  orders:\n    backend: fake\n    address: a:1\n    password: {SECRET}\n",
    )
    running = await serve(profiles=str(path), require_profiles=True)
    fake_backend.values["jobs"] = 3
    assert (
        await running.stub.IsActive(ref({"connection": "orders", "name": "jobs"}))
    ).result is True
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await running.stub.IsActive(ref({"backend": "fake", "name": "jobs", "address": "x:1"}))
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "--require-profiles" in (err.value.details() or "")
    # the operator renames the connection: picked up without a restart
    write(path, "connections:\n  billing:\n    backend: fake\n    address: b:2\n")
    for _ in range(60):
        try:
            await running.stub.IsActive(ref({"connection": "billing", "name": "jobs"}))
            break
        except grpc.aio.AioRpcError:
            await asyncio.sleep(0.1)
    assert (
        await running.stub.IsActive(ref({"connection": "billing", "name": "jobs"}))
    ).result is True
    # a broken file keeps the last good profiles
    write(path, "connections: {billing: [")
    await asyncio.sleep(2.5)
    assert (
        await running.stub.IsActive(ref({"connection": "billing", "name": "jobs"}))
    ).result is True
    assert "connection profiles not reloaded" in caplog.text
    assert SECRET not in caplog.text


def test_a_profile_serves_every_backend_of_its_connection_family(tmp_path) -> None:
    """One profile for a Redis Cluster serves its list and its stream triggers; a standalone
    profile serves neither a Cluster nor a Sentinel trigger (same keys, another topology)."""
    from scaler.app import connection_keys_of, families_of
    from scaler.backends import build_backends

    backends = build_backends(1.0)
    path = tmp_path / "profiles.yaml"
    path.write_text(
        "connections:\n"
        "  cluster:\n    backend: redis-cluster\n    addresses: a:1,b:2\n"
        "  single:\n    backend: redis\n    address: r:6379\n"
    )
    profiles = load(str(path), connection_keys_of(backends), False, families_of(backends))
    streams = profiles.resolve({"connection": "cluster", "backend": "redis-cluster-streams"})
    assert (streams["backend"], streams["addresses"]) == ("redis-cluster-streams", "a:1,b:2")
    assert profiles.resolve({"connection": "single", "backend": "redis-streams"})["address"]
    for backend in ("redis-cluster", "redis-sentinel-streams"):
        with pytest.raises(MetadataError, match="connection 'single' is a redis"):
            profiles.resolve({"connection": "single", "backend": backend})
