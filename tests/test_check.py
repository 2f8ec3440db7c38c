"""``keda-queue-scaler check``: manifests in, per-trigger values and replica counts out."""

from __future__ import annotations

import argparse
import io
import json
import re
from collections.abc import AsyncIterator, Mapping
from pathlib import Path
from typing import Any

import pytest
import yaml

from scaler.app import build_engine
from scaler.backends.base import Trigger
from scaler.engine import Engine
from scaler.errors import BackendAuthError, BackendUnavailable
from scaler.metadata import Reading
from scaler.settings import Settings
from scaler.tools import check, manifest
from scaler.tools.replicas import milli_units
from scaler.tools.simulate import command as simulate
from tests.fakes import FakeBackend, FakeConnection, FakeParams, FakeTrigger


class RecordingBackend(FakeBackend):
    """A FakeBackend that remembers the metadata maps it was asked to parse."""

    def __init__(self) -> None:
        super().__init__()
        self.parsed: list[dict[str, str]] = []

    def parse(self, raw: Mapping[str, str]) -> Trigger[FakeConnection, str]:
        self.parsed.append(dict(raw))
        return super().parse(raw)


@pytest.fixture
def backend() -> RecordingBackend:
    return RecordingBackend()


@pytest.fixture
async def engine(backend: RecordingBackend) -> AsyncIterator[Engine]:
    engine = build_engine(Settings(cache_ttl=0.0, backend_timeout=1.0), backends={"fake": backend})
    yield engine
    await engine.aclose()


def fake(name: str, target: str = "5", *, kind: str = "external", **extra: str) -> dict[str, Any]:
    metadata = {"scalerAddress": "scaler.keda:9090", "backend": "fake", "name": name}
    metadata["target"] = target
    metadata.update(extra)
    return {"type": kind, "metadata": metadata}


def scaled(
    *triggers: dict[str, Any], kind: str = "ScaledObject", name: str = "orders", **spec: Any
) -> dict[str, Any]:
    target: dict[str, Any] = (
        {"jobTargetRef": {"template": {}}} if kind == "ScaledJob" else {"scaleTargetRef": {}}
    )
    return {
        "apiVersion": "keda.sh/v1alpha1",
        "kind": kind,
        "metadata": {"name": name, "namespace": "shop"},
        "spec": {**target, **spec, "triggers": list(triggers)},
    }


def write(tmp_path: Path, *documents: dict[str, Any]) -> Path:
    path = tmp_path / "manifest.yaml"
    path.write_text(yaml.safe_dump_all(documents, sort_keys=False), encoding="utf-8")
    return path


def arguments(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="keda-queue-scaler check")
    check.add_arguments(parser)
    return parser.parse_args(argv)


async def run(
    engine: Engine, path: Path, *flags: str, environ: Mapping[str, str] | None = None
) -> tuple[int, str]:
    out = io.StringIO()
    status = await check.run(arguments(str(path), *flags), engine, environ or {}, out)
    return status, out.getvalue()


async def run_json(
    engine: Engine, path: Path, environ: Mapping[str, str] | None = None
) -> tuple[int, list[dict[str, Any]]]:
    status, text = await run(engine, path, "--json", environ=environ)
    rows = json.loads(text)
    assert isinstance(rows, list)
    return status, rows


# -- the required case -------------------------------------------------------------------------


async def test_json_two_triggers(tmp_path: Path, engine: Engine, backend: FakeBackend) -> None:
    backend.values.update(orders=7, invoices=100)
    path = write(
        tmp_path,
        scaled(fake("orders", "5"), fake("invoices", "10"), maxReplicaCount=4),
    )

    status, rows = await run_json(engine, path)

    assert status == 0
    assert rows == [
        {
            "object": "ScaledObject/shop/orders",
            "trigger": 0,
            "backend": "fake",
            "metricName": "fake-orders",
            "metricType": "AverageValue",
            "value": 7,
            "target": 5,
            "active": True,
            "desiredReplicas": 2,  # ceil(7/5)
            "error": None,
            "facts": {},
            "items": [],
            "notes": [],
        },
        {
            "object": "ScaledObject/shop/orders",
            "trigger": 1,
            "backend": "fake",
            "metricName": "fake-invoices",
            "metricType": "AverageValue",
            "value": 100,
            "target": 10,
            "active": True,
            "desiredReplicas": 4,  # ceil(100/10) = 10, clamped to maxReplicaCount
            "error": None,
            "facts": {},
            "items": [],
            "notes": [],
        },
    ]


class AgeTrigger(FakeTrigger):
    @property
    def measures_age(self) -> bool:
        return True


class AgeBackend(FakeBackend):
    """A fake whose metric is an age, with per-item facts as an age mode reports them."""

    def build(self, params: FakeParams, reading: Reading) -> AgeTrigger | None:
        trigger = super().build(params, reading)
        return (
            None
            if trigger is None
            else AgeTrigger(
                **{f: getattr(trigger, f) for f in ("connection", "resource", "params")}
            )
        )


@pytest.mark.parametrize(
    ("metric_type", "warned"), [(None, True), ("AverageValue", True), ("Value", False)]
)
async def test_an_age_wants_metric_type_value_and_shows_its_facts(
    tmp_path: Path, metric_type: str | None, warned: bool
) -> None:
    backend = AgeBackend()
    backend.values["orders"] = 90.5
    trigger = fake("orders", "60")
    if metric_type is not None:
        trigger["metricType"] = metric_type
    engine = build_engine(Settings(cache_ttl=0.0), backends={"fake": backend})
    try:
        status, rows = await run_json(engine, write(tmp_path, scaled(trigger)))
    finally:
        await engine.aclose()
    assert status == 0
    assert rows[0]["value"] == 90.5
    assert rows[0]["metricType"] == (metric_type or "AverageValue")
    notes = [n for n in rows[0]["notes"] if "metricType: Value" in n]
    assert bool(notes) is warned


# -- replica arithmetic of a ScaledObject ------------------------------------------------------

REPLICA_CASES = [
    # (spec, value, target, activation, active, replicas, what the row checks)
    ({}, 7, "5", "0", True, 2, "ceil(value/target) with the defaults 0..100"),
    ({"maxReplicaCount": 4}, 100, "5", "0", True, 4, "clamped to maxReplicaCount"),
    ({"minReplicaCount": 3}, 2, "5", "0", True, 3, "active: at least minReplicaCount"),
    ({}, 0, "5", "-1", True, 1, "active with value 0: max(min, 1)"),
    ({"minReplicaCount": 2}, 0, "5", "-1", True, 2, "active with value 0 and min 2: min"),
    ({}, 3, "1", "5", False, 0, "inactive with min 0: 0, whatever the value"),
    ({"minReplicaCount": 2}, 0, "5", "0", False, 2, "inactive with min > 0: min"),
    ({"minReplicaCount": 2}, 4, "1", "5", False, 4, "inactive with min > 0: HPA still runs"),
    ({"minReplicaCount": 2, "idleReplicaCount": 0}, 1, "1", "5", False, 0, "idleReplicaCount"),
    ({"minReplicaCount": 2, "idleReplicaCount": 1}, 9, "1", "0", True, 9, "idle only if idle"),
    ({}, 1.1, "0.1", "0", True, 11, "milli-units as the HPA: 11, not float's 12"),
    ({}, 0.0025, "0.001", "0", True, 3, "KEDA's %.3f milli-units: 0.0025 is 3, not round()'s 2"),
]


@pytest.mark.parametrize(
    ("spec", "value", "target", "activation", "active", "replicas"),
    [case[:6] for case in REPLICA_CASES],
    ids=[case[6] for case in REPLICA_CASES],
)
async def test_scaled_object_replicas(
    tmp_path: Path,
    engine: Engine,
    backend: FakeBackend,
    spec: dict[str, Any],
    value: float,
    target: str,
    activation: str,
    active: bool,
    replicas: int,
) -> None:
    backend.values["q"] = value
    path = write(tmp_path, scaled(fake("q", target, activation=activation), **spec))

    status, rows = await run_json(engine, path)

    assert status == 0
    assert (rows[0]["value"], rows[0]["active"]) == (value, active)
    assert rows[0]["desiredReplicas"] == replicas


# -- check and simulate agree (one milli-unit rule) ---------------------------------------------


@pytest.fixture
def fake_backend(backend: RecordingBackend) -> FakeBackend:
    """The scaler ``serve`` starts reads the backend this module's engine reads."""
    return backend


AGREEMENT_CASES = [
    # (value, target, replicas, what the row checks)
    (7.0, "5", 2, "whole numbers"),
    (3.0006, "1", 4, "3.001 rounded up: simulate's old truncation gave 3"),
    (0.0025, "0.001", 3, "2.5 milli-units round up to 3: check's old round() gave 2"),
]


@pytest.mark.parametrize(
    ("value", "target", "wanted"),
    [case[:3] for case in AGREEMENT_CASES],
    ids=[case[3] for case in AGREEMENT_CASES],
)
async def test_check_and_simulate_agree_on_the_replica_count(
    serve, engine: Engine, backend: FakeBackend, tmp_path: Path, value, target, wanted
) -> None:
    backend.values["q"] = value
    path = write(tmp_path, scaled(fake("q", target)))

    # check reads the backend through the engine ...
    status, rows = await run_json(engine, path)
    assert status == 0

    # ... simulate reads what a running scaler sends on the wire (float and int fields)
    running = await serve(cache_ttl=0.0)
    parser = argparse.ArgumentParser(prog="keda-queue-scaler simulate")
    simulate.add_arguments(parser)
    args = parser.parse_args([str(path), "--address", running.address, "--json",
                              "--replicas", "1", "--duration", "1", "--speed", "600"])  # fmt: skip
    out = io.StringIO()
    assert await simulate.run(args, {}, out) == 0
    [poll, hpa] = json.loads(out.getvalue())

    assert (poll["event"], hpa["event"]) == ("poll", "hpa")
    assert hpa["metrics"] == {"s0-fake-q": milli_units(value) / 1000}
    assert rows[0]["desiredReplicas"] == hpa["replicas"] == wanted


async def test_object_level_result_in_table(
    tmp_path: Path, engine: Engine, backend: FakeBackend
) -> None:
    backend.values.update(a=3, b=12)
    path = write(
        tmp_path,
        scaled(fake("a", "5", activation="5"), fake("b", "2"), maxReplicaCount=5),
    )

    status, text = await run(engine, path)

    assert status == 0
    assert "ScaledObject/shop/orders (replicas 0..5)" in text
    # trigger 0 alone: inactive with min 0 -> 0; trigger 1: ceil(12/2) = 6 -> 5
    assert re.search(r"^\s+0\s+external\s+fake\s+fake-a\s+3\s+5\s+no\s+0\s*$", text, re.M)
    assert re.search(r"^\s+1\s+external\s+fake\s+fake-b\s+12\s+2\s+yes\s+5\s*$", text, re.M)
    assert "=> ScaledObject: active, 5 replicas" in text


async def test_object_level_not_computed_when_a_trigger_failed(
    tmp_path: Path, engine: Engine, backend: FakeBackend
) -> None:
    backend.values.update(a=BackendUnavailable("redis down"), b=0)
    path = write(tmp_path, scaled(fake("a"), fake("b")))

    status, text = await run(engine, path)

    assert status == 1
    assert "error: redis down" in text
    assert "=> ScaledObject: activity unknown, replicas unknown (not computed" in text


# -- ScaledJob ---------------------------------------------------------------------------------


async def test_scaled_job_json(tmp_path: Path, engine: Engine, backend: FakeBackend) -> None:
    backend.values.update(big=120, small=12, idle=0)
    path = write(
        tmp_path,
        scaled(
            fake("big", "5"),
            fake("small", "5"),
            fake("idle", "5"),
            kind="ScaledJob",
            name="resize",
            maxReplicaCount=10,
        ),
    )

    status, rows = await run_json(engine, path)

    assert status == 0
    assert [r["object"] for r in rows] == ["ScaledJob/shop/resize"] * 3
    # min(ceil(120/5), 10) = 10; min(ceil(12/5), 10) = 3; inactive -> 0
    assert [(r["value"], r["active"], r["desiredReplicas"]) for r in rows] == [
        (120, True, 10),
        (12, True, 3),
        (0, False, 0),
    ]


@pytest.mark.parametrize(
    ("calculation", "jobs"),
    [
        (None, 3),  # default max: the trigger with the longest queue (30/10), as KEDA
        ("min", 6),  # the shortest active queue: 12/2
        ("avg", 5),  # ceil((6 + 3) / 2)
        ("sum", 8),  # 6 + 3, capped at maxReplicaCount
    ],
)
async def test_scaled_job_object_level(
    tmp_path: Path,
    engine: Engine,
    backend: FakeBackend,
    calculation: str | None,
    jobs: int,
) -> None:
    backend.values.update(a=12, b=30, c=0)
    strategy = {} if calculation is None else {"multipleScalersCalculation": calculation}
    path = write(
        tmp_path,
        scaled(
            fake("a", "2"),
            fake("b", "10"),
            fake("c", "1"),
            kind="ScaledJob",
            maxReplicaCount=8,
            scalingStrategy=strategy,
        ),
    )

    status, text = await run(engine, path)

    assert status == 0
    assert f"=> ScaledJob: active, {jobs} jobs" in text


# -- manifests ---------------------------------------------------------------------------------


async def test_multi_document_with_a_deployment(
    tmp_path: Path, engine: Engine, backend: FakeBackend
) -> None:
    backend.values["orders"] = 11
    path = tmp_path / "app.yaml"
    path.write_text(
        """\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: worker
spec:
  template:
    spec:
      containers:
        - name: worker
          image: example/worker
---
apiVersion: keda.sh/v1alpha1
kind: ScaledObject
metadata:
  name: worker
spec:
  scaleTargetRef:
    name: worker
  triggers:
    - type: external
      metadata:
        scalerAddress: keda-queue-scaler.keda:9090
        backend: fake
        name: orders
        target: "5"
---
""",
        encoding="utf-8",
    )

    status, rows = await run_json(engine, path)

    assert status == 0
    assert len(rows) == 1
    assert rows[0]["object"] == "ScaledObject/default/worker"
    assert (rows[0]["value"], rows[0]["desiredReplicas"]) == (11, 3)


async def test_bad_metadata_fails_but_the_good_trigger_is_evaluated(
    tmp_path: Path, engine: Engine, backend: FakeBackend
) -> None:
    backend.values["good"] = 6
    bad = {"type": "external", "metadata": {"backend": "fake", "target": "many"}}
    path = write(tmp_path, scaled(bad, fake("good")))

    status, rows = await run_json(engine, path)

    assert status == 1
    assert rows[0]["trigger"] == 0
    assert rows[0]["backend"] == "fake"
    assert "missing required parameter name" in rows[0]["error"]
    assert "target: 'many' is not a valid number" in rows[0]["error"]
    assert rows[0]["value"] is None
    assert rows[0]["desiredReplicas"] is None
    assert rows[1]["error"] is None
    assert (rows[1]["value"], rows[1]["desiredReplicas"]) == (6, 2)


async def test_unknown_backend_is_a_trigger_error(tmp_path: Path, engine: Engine) -> None:
    path = write(tmp_path, scaled(fake("q", backend="kafak")))

    status, rows = await run_json(engine, path)

    assert status == 1
    assert rows[0]["backend"] == "kafak"
    assert "backend: 'kafak' must be one of [fake]" in rows[0]["error"]


async def test_backend_error_is_never_a_value_of_zero(
    tmp_path: Path, engine: Engine, backend: FakeBackend
) -> None:
    backend.values.update(orders=BackendUnavailable("down"), other=4)
    path = write(tmp_path, scaled(fake("orders"), fake("other")))

    status, rows = await run_json(engine, path)

    assert status == 1
    failed = rows[0]
    assert failed["error"] == "down"
    assert failed["metricName"] == "fake-orders"
    assert failed["target"] == 5
    assert (failed["value"], failed["active"], failed["desiredReplicas"]) == (None, None, None)
    assert (rows[1]["value"], rows[1]["error"]) == (4, None)


async def test_backend_error_in_table(tmp_path: Path, engine: Engine, backend: FakeBackend) -> None:
    backend.values["orders"] = BackendUnavailable("down")
    path = write(tmp_path, scaled(fake("orders")))

    status, text = await run(engine, path)

    assert status == 1
    row = next(line for line in text.splitlines() if "fake-orders" in line)
    assert row.split()[:8] == ["0", "external", "fake", "fake-orders", "-", "5", "-", "-"]
    assert row.endswith("error: down")


async def test_a_bug_is_reported_without_its_message(
    tmp_path: Path, engine: Engine, backend: FakeBackend
) -> None:
    backend.values.update(broken=RuntimeError("internal detail"), fine=1)
    path = write(tmp_path, scaled(fake("broken"), fake("fine")))

    status, rows = await run_json(engine, path)

    assert status == 1
    assert rows[0]["error"] == "internal error (RuntimeError); see the log"
    assert rows[1]["value"] == 1


async def test_non_external_triggers_are_skipped(
    tmp_path: Path, engine: Engine, backend: FakeBackend
) -> None:
    backend.values["orders"] = 1
    cpu = {"type": "cpu", "metricType": "Utilization", "metadata": {"value": "60"}}
    redis = {"type": "redis", "metadata": {"address": "redis:6379", "listName": "orders"}}
    path = write(tmp_path, scaled(cpu, fake("orders", kind="external-push"), redis))

    status, rows = await run_json(engine, path)
    assert status == 0
    assert [(r["trigger"], r["metricName"]) for r in rows] == [(1, "fake-orders")]

    status, text = await run(engine, path)
    assert status == 0
    assert re.search(r"^\s+0\s+cpu\s.*skipped: not an external trigger$", text, re.M)
    assert re.search(r"^\s+2\s+redis\s.*skipped: not an external trigger$", text, re.M)
    assert "=> " not in text  # a single external trigger: no object-level line


async def test_password_from_env_is_resolved_and_never_printed(
    tmp_path: Path,
    engine: Engine,
    backend: RecordingBackend,
    capsys: pytest.CaptureFixture[str],
) -> None:
    secret = "s3cret-Value"
    backend.values["orders"] = BackendAuthError(f"password {secret} rejected")
    backend.values["plain"] = 2
    path = write(
        tmp_path,
        scaled(
            fake("orders", passwordFromEnv="ORDERS_PASSWORD"),
            fake("plain", passwordFromEnv="UNSET_PASSWORD"),
        ),
    )
    environ = {"ORDERS_PASSWORD": secret, "UNSET_PASSWORD": ""}

    status, rows = await run_json(engine, path, environ)
    _, text = await run(engine, path, environ=environ)

    assert status == 1
    # KEDA forwards the value under the FromEnv key, and drops the key when the variable is empty
    assert backend.parsed[0]["passwordFromEnv"] == secret
    assert "passwordFromEnv" not in backend.parsed[1]
    assert rows[0]["error"] == "password *** rejected"
    assert rows[1]["value"] == 2
    captured = capsys.readouterr()
    for shown in (json.dumps(rows), text, captured.out, captured.err):
        assert secret not in shown
    assert "resolved from the environment of this check process" in text
    assert "passwordFromEnv: variable 'UNSET_PASSWORD' is unset or empty here" in text
    assert "passwordFromEnv: variable 'UNSET_PASSWORD'" in captured.err  # --json: notes on stderr


def test_resolve_from_env() -> None:
    metadata = {"listName": "jobs", "passwordFromEnv": "PW", "hostFromEnv": "MISSING"}

    resolved, dropped = manifest.resolve_from_env(metadata, {"PW": "hunter2"})

    assert resolved == {"listName": "jobs", "passwordFromEnv": "hunter2"}
    assert dropped == ["hostFromEnv"]


# -- unusable input: exit status 2, message on stderr ------------------------------------------


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("a: [unclosed\n", "invalid YAML"),
        ("apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: x}\n", "no ScaledObject"),
        ("", "no ScaledObject"),
        (
            "apiVersion: keda.sh/v1alpha1\nkind: ScaledObject\nmetadata: {name: x}\n"
            "spec: {triggers: [{type: external, metadata: {backend: fake, target: 5}}]}\n",
            "spec.triggers[0].metadata.target is an integer, not a string",
        ),
        (
            "apiVersion: keda.sh/v1alpha1\nkind: ScaledObject\nmetadata: {name: x}\nspec: {}\n",
            "ScaledObject/default/x: spec.triggers is missing or empty",
        ),
        (
            "apiVersion: keda.sh/v1alpha1\nkind: ScaledObject\nmetadata: {name: x}\n"
            "spec: {minReplicaCount: 5, maxReplicaCount: 2, triggers: [{type: cpu}]}\n",
            "minReplicaCount (5) must not exceed maxReplicaCount (2)",
        ),
    ],
    ids=["yaml", "deployment-only", "empty", "unquoted-number", "no-triggers", "min-over-max"],
)
async def test_unusable_manifest(
    tmp_path: Path,
    engine: Engine,
    capsys: pytest.CaptureFixture[str],
    content: str,
    message: str,
) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(content, encoding="utf-8")

    status, text = await run(engine, path, "--json")

    assert status == 2
    assert text == ""
    assert message in capsys.readouterr().err


async def test_yaml_error_does_not_quote_the_line(
    tmp_path: Path, engine: Engine, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("metadata:\n  password: hunter2: oops\n", encoding="utf-8")

    status, _ = await run(engine, path)

    assert status == 2
    err = capsys.readouterr().err
    assert "line 2" in err
    assert "hunter2" not in err


async def test_missing_file(
    tmp_path: Path, engine: Engine, capsys: pytest.CaptureFixture[str]
) -> None:
    status, text = await run(engine, tmp_path / "absent.yaml")

    assert status == 2
    assert text == ""
    assert "cannot read" in capsys.readouterr().err


def test_timeout_must_be_positive(capsys: pytest.CaptureFixture[str]) -> None:
    assert arguments("f.yaml").timeout == 5.0
    assert arguments("f.yaml", "--timeout", "0.5").timeout == 0.5
    with pytest.raises(SystemExit):
        arguments("f.yaml", "--timeout", "0")
    assert "greater than 0" in capsys.readouterr().err
