"""``keda-queue-scaler migrate``: KEDA's built-in triggers in, the scaler's external triggers out."""

from __future__ import annotations

import argparse
import io
import json
import textwrap
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from scaler import cli
from scaler.app import build_engine
from scaler.backends import BACKENDS
from scaler.engine import Engine
from scaler.settings import Settings
from scaler.tools import check, migrate
from scaler.tools.manifest import load_manifest
from scaler.tools.migrate_rewrite import DEFAULT_SCALER_ADDRESS, KEDA_TYPES

#: a port nothing listens on: the backends' reads fail at once, their parsing is what counts
CLOSED = "127.0.0.1:1"


def arguments(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="keda-queue-scaler migrate")
    migrate.add_arguments(parser)
    return parser.parse_args(argv)


def run(*argv: str, stdin: str = "") -> tuple[int, str, str]:
    """(status, stdout, stderr) of ``migrate ARGV``."""
    out, err = io.StringIO(), io.StringIO()
    status = migrate.run(arguments(*argv), io.StringIO(stdin), out, err)
    return status, out.getvalue(), err.getvalue()


def run_json(*argv: str, stdin: str = "") -> tuple[int, str, dict[str, Any]]:
    status, out, err = run(*argv, "--report", "json", stdin=stdin)
    return status, out, json.loads(err)


def write(tmp_path: Path, text: str, name: str = "manifest.yaml") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def triggers(output: str) -> list[dict[str, Any]]:
    """Every trigger of every ScaledObject/ScaledJob of ``output``, in order."""
    found = []
    for document in yaml.safe_load_all(output):
        if isinstance(document, dict) and document.get("kind") in ("ScaledObject", "ScaledJob"):
            found.extend(document["spec"]["triggers"])
    return found


def statuses(report: dict[str, Any]) -> list[tuple[str, int, str, str]]:
    return [(t["object"], t["trigger"], t["type"], t["status"]) for t in report["triggers"]]


# -- the eight built-in types, in one multi-document file ------------------------------------------

EIGHT = f"""\
apiVersion: keda.sh/v1alpha1
kind: ScaledObject
metadata:
  name: lists
  namespace: shop
spec:
  scaleTargetRef:
    name: worker
  maxReplicaCount: 20
  triggers:
    - type: redis
      metadata:
        address: {CLOSED}
        listName: jobs
        listLength: "5"
    - type: redis-cluster
      metricType: Value
      metadata:
        addresses: {CLOSED},127.0.0.1:2
        listName: "{{jobs}}"
        listLength: "4"
    - type: redis-sentinel
      name: sentinel-jobs
      metadata:
        addresses: {CLOSED}
        sentinelMaster: kqs-master
        listName: jobs
        listLength: "3"
        activationListLength: "2"
    - type: kafka
      useCachedMetrics: true
      metadata:
        bootstrapServers: {CLOSED}
        consumerGroup: orders
        topic: orders
        lagThreshold: "10"
        offsetResetPolicy: earliest
    - type: cpu
      metricType: Utilization
      metadata:
        value: "60"
---
apiVersion: apps/v1
kind: Deployment
metadata: {{name: worker, namespace: shop}}
spec: {{template: {{spec: {{containers: [{{name: worker, image: worker:1}}]}}}}}}
---
apiVersion: keda.sh/v1alpha1
kind: ScaledJob
metadata:
  name: streams
  namespace: shop
spec:
  jobTargetRef:
    template: {{}}
  triggers:
    - type: redis-streams
      metadata:
        address: {CLOSED}
        stream: orders
        consumerGroup: processors
        pendingEntriesCount: "7"
    - type: redis-cluster-streams
      metadata:
        addresses: {CLOSED}
        stream: orders
        streamLength: "6"
    - type: redis-sentinel-streams
      metadata:
        addresses: {CLOSED}
        sentinelMaster: kqs-master
        stream: orders
        consumerGroup: processors
        lagCount: "8"
    - type: rabbitmq
      metadata:
        host: amqp://guest:guest@{CLOSED}/
        queueName: tasks
        mode: QueueLength
        value: "9"
    - type: external
      metadata:
        scalerAddress: elsewhere:9090
        backend: redis
        address: {CLOSED}
        listName: already
"""

#: what each converted trigger becomes in the HPA: (backend, metric name, target)
EIGHT_METRICS = [
    ("redis", "redis-jobs", 5.0),
    ("redis-cluster", "redis-{jobs}", 4.0),
    ("redis-sentinel", "redis-jobs", 3.0),
    ("kafka", "kafka-orders", 10.0),
    ("redis-streams", "redis-streams-orders", 7.0),
    ("redis-cluster-streams", "redis-streams-orders", 6.0),
    ("redis-sentinel-streams", "redis-streams-orders", 8.0),
    ("rabbitmq", "rabbitmq-tasks", 9.0),
]


@pytest.fixture
async def engine() -> AsyncIterator[Engine]:
    engine = build_engine(Settings(cache_ttl=0.0, backend_timeout=1.0))
    yield engine
    await engine.aclose()


def test_the_eight_built_in_types_are_the_registry() -> None:
    assert set(KEDA_TYPES) == {cls.name for cls in BACKENDS}
    assert set(KEDA_TYPES) == {m[0] for m in EIGHT_METRICS}


async def test_eight_types_one_file_then_check_evaluates(tmp_path: Path, engine: Engine) -> None:
    path = write(tmp_path, EIGHT)

    status, output, report = run_json(str(path))

    assert status == 0, report
    assert statuses(report) == [
        ("ScaledObject/shop/lists", 0, "redis", "converted"),
        ("ScaledObject/shop/lists", 1, "redis-cluster", "converted"),
        ("ScaledObject/shop/lists", 2, "redis-sentinel", "converted"),
        ("ScaledObject/shop/lists", 3, "kafka", "converted"),
        ("ScaledObject/shop/lists", 4, "cpu", "untouched"),
        ("ScaledJob/shop/streams", 0, "redis-streams", "converted"),
        ("ScaledJob/shop/streams", 1, "redis-cluster-streams", "converted"),
        ("ScaledJob/shop/streams", 2, "redis-sentinel-streams", "converted"),
        ("ScaledJob/shop/streams", 3, "rabbitmq", "converted"),
        ("ScaledJob/shop/streams", 4, "external", "untouched"),
    ]
    assert [t["document"] for t in report["triggers"]] == [1] * 5 + [3] * 5
    assert report["summary"] == {"converted": 8, "untouched": 2, "needs-human": 0}
    before, after = triggers(EIGHT), triggers(output)
    for old, new in zip(before, after, strict=True):
        if old["type"] not in KEDA_TYPES:
            assert new == old
            continue
        assert new["type"] == "external"
        # the two keys first, then every key of the built-in trigger in its order and value
        assert list(new["metadata"].items()) == [
            ("scalerAddress", DEFAULT_SCALER_ADDRESS),
            ("backend", old["type"]),
            *old["metadata"].items(),
        ]
        # the trigger's own fields stay
        assert {k: v for k, v in new.items() if k not in ("type", "metadata")} == {
            k: v for k, v in old.items() if k not in ("type", "metadata")
        }
    assert "kind: Deployment" in output

    # check reads the output with the model it shares with simulate, and evaluates every
    # converted trigger: the backend accepts its metadata; only the closed port fails the read
    out_path = write(tmp_path, output, "migrated.yaml")
    load_manifest(out_path.read_text(encoding="utf-8"))
    checked = io.StringIO()
    parser = argparse.ArgumentParser()
    check.add_arguments(parser)
    await check.run(
        parser.parse_args([str(out_path), "--json", "--timeout", "2"]), engine, {}, checked
    )
    rows = json.loads(checked.getvalue())
    assert [(r["backend"], r["metricName"], r["target"]) for r in rows] == [
        *EIGHT_METRICS[:4],
        *EIGHT_METRICS[4:],
        ("redis", "redis-already", 5.0),
    ]
    for row in rows:
        assert "invalid scalerMetadata" not in (row["error"] or ""), row
        assert row["error"] is not None  # nothing listens on the closed port
    assert [r["metricType"] for r in rows][:2] == ["AverageValue", "Value"]


async def test_push_writes_external_push(tmp_path: Path) -> None:
    path = write(tmp_path, EIGHT)

    status, output, report = run_json(str(path), "--push", "--scaler-address", "scaler.q:9443")

    assert status == 0
    converted = [
        t for t in triggers(output) if t["metadata"].get("scalerAddress") == "scaler.q:9443"
    ]
    assert [t["type"] for t in converted] == ["external-push"] * 8
    assert {t["newType"] for t in report["triggers"] if t["status"] == "converted"} == {
        "external-push"
    }
    # KEDA only logs the pushes of a ScaledJob's triggers: said, not refused
    job = [t for t in report["triggers"] if t["object"] == "ScaledJob/shop/streams"]
    assert all("--push on a ScaledJob" in " ".join(t["warnings"]) for t in job[:4])


def test_scaler_address_must_be_host_and_port() -> None:
    for bad in ("scaler", "scaler:", "scaler:http", "scaler:70000", "::1:9090", ":9090"):
        with pytest.raises(SystemExit) as stop:
            arguments("x.yaml", "--scaler-address", bad)
        assert stop.value.code == 2
    assert arguments("x.yaml", "--scaler-address", "[::1]:9090").scaler_address == "[::1]:9090"


# -- text, comments, order, untouched documents ----------------------------------------------------

COMMENTED = """\
# The shop's consumers (kept as written).
apiVersion: keda.sh/v1alpha1
kind: ScaledObject
metadata:
  name: jobs   # the consumer
  namespace: shop
spec:
  scaleTargetRef: {name: jobs}
  triggers:
    # the work queue
    - type: redis
      metadata:
        # where the list lives
        address: "127.0.0.1:6379"   # standalone
        listName: 'jobs'
        # one replica per five jobs
        listLength: "5"
        enableTLS: "true"   # to Redis
      # the CPU guard
    - type: cpu
      metricType: Utilization
      metadata: {value: "60"}
# end of the ScaledObject
---
# an unrelated document, byte for byte
apiVersion: v1
kind: ConfigMap
metadata:   {name: settings}
data:
  text: |
    two
    lines
...
"""

COMMENTED_AFTER = """\
# The shop's consumers (kept as written).
apiVersion: keda.sh/v1alpha1
kind: ScaledObject
metadata:
  name: jobs   # the consumer
  namespace: shop
spec:
  scaleTargetRef: {name: jobs}
  triggers:
    # the work queue
    - type: external
      metadata:
        # where the list lives
        scalerAddress: keda-queue-scaler.keda.svc.cluster.local:9090
        backend: redis
        address: "127.0.0.1:6379"   # standalone
        listName: 'jobs'
        # one replica per five jobs
        listLength: "5"
        tls: enable         # to Redis
      # the CPU guard
    - type: cpu
      metricType: Utilization
      metadata: {value: "60"}
# end of the ScaledObject
---
# an unrelated document, byte for byte
apiVersion: v1
kind: ConfigMap
metadata:   {name: settings}
data:
  text: |
    two
    lines
...
"""


def test_comments_order_and_quotes_are_kept(tmp_path: Path) -> None:
    path = write(tmp_path, COMMENTED)

    status, output, err = run(str(path))

    assert status == 0, err
    assert output == COMMENTED_AFTER
    assert 'enableTLS: "true" -> tls: enable' in err
    assert "would switch its own connection to the scaler to TLS" in err


def test_kubectl_style_indentation_is_kept(tmp_path: Path) -> None:
    text = """\
    apiVersion: keda.sh/v1alpha1
    kind: ScaledObject
    metadata:
        name: q
    spec:
        scaleTargetRef:
            name: q
        triggers:
        - type: rabbitmq
          metadata:
              host: amqp://guest:guest@127.0.0.1:5672/
              queueName: q
    """
    path = write(tmp_path, text)

    status, output, _ = run(str(path))

    assert status == 0
    assert output == textwrap.dedent(text).replace(
        "    - type: rabbitmq\n      metadata:\n",
        "    - type: external\n      metadata:\n"
        "          scalerAddress: keda-queue-scaler.keda.svc.cluster.local:9090\n"
        "          backend: rabbitmq\n",
    )


def test_untouched_triggers_and_documents(tmp_path: Path) -> None:
    text = """\
    apiVersion: keda.sh/v1alpha1
    kind: ScaledObject
    metadata: {name: other, namespace: shop}
    spec:
      scaleTargetRef: {name: other}
      triggers:
        - type: prometheus
          metadata: {serverAddress: "http://prometheus:9090", query: up, threshold: "1"}
        - type: external-push
          metadata: {scalerAddress: "s:9090", backend: redis, address: "r:6379", listName: x}
    """
    path = write(tmp_path, text)

    status, output, report = run_json(str(path))

    assert status == 0
    assert output == path.read_text(encoding="utf-8")
    assert [(t["type"], t["status"], t["reason"]) for t in report["triggers"]] == [
        (
            "prometheus",
            "untouched",
            "prometheus is not a built-in Redis, Kafka or RabbitMQ trigger",
        ),
        ("external-push", "untouched", "already an external trigger"),
    ]
    status, _, err = run(str(path))
    assert "trigger 0 (prometheus): untouched" in err
    assert "0 converted, 2 untouched, 0 need a human" in err


def test_stdin_and_kind_list(tmp_path: Path) -> None:
    text = """\
    apiVersion: v1
    kind: List
    items:
    - apiVersion: keda.sh/v1alpha1
      kind: ScaledJob
      metadata: {name: j, namespace: q}
      spec:
        jobTargetRef: {template: {}}
        triggers:
        - type: redis-streams
          metadata: {address: "r:6379", stream: s, consumerGroup: g, lagCount: "4"}
    """

    status, output, report = run_json("-", stdin=textwrap.dedent(text))

    assert status == 0
    assert statuses(report) == [("ScaledJob/q/j", 0, "redis-streams", "converted")]
    (trigger,) = yaml.safe_load(output)["items"][0]["spec"]["triggers"]
    assert trigger["type"] == "external"
    assert trigger["metadata"]["backend"] == "redis-streams"


def test_in_place_and_output(tmp_path: Path) -> None:
    path = write(tmp_path, EIGHT)
    target = tmp_path / "out" / "migrated.yaml"
    target.parent.mkdir()

    status, output, _ = run(str(path), "--output", str(target))
    assert (status, output) == (0, "")
    migrated = target.read_text(encoding="utf-8")
    assert migrated.count("type: external\n") == 9

    path.chmod(0o640)
    status, output, _ = run(str(path), "--in-place")
    assert (status, output) == (0, "")
    assert path.read_text(encoding="utf-8") == migrated
    assert path.stat().st_mode & 0o777 == 0o640
    assert sorted(p.name for p in tmp_path.iterdir()) == ["manifest.yaml", "out"]  # no leftovers


def test_bad_input_is_exit_2(tmp_path: Path) -> None:
    assert run("-", "--in-place", stdin=EIGHT)[0] == 2
    status, _, err = run(str(tmp_path / "missing.yaml"))
    assert status == 2
    assert "cannot read" in err
    status, _, err = run(str(write(tmp_path, "a: [1\n")))
    assert status == 2
    assert "invalid YAML" in err
    status, _, err = run(str(write(tmp_path, "apiVersion: v1\nkind: ConfigMap\n")))
    assert (status, "no ScaledObject or ScaledJob" in err) == (2, True)
    unquoted = EIGHT.replace('listLength: "5"', "listLength: 5")
    status, _, err = run(str(write(tmp_path, unquoted)))
    assert status == 2
    assert "quote the value" in err


def test_the_cli_runs_migrate(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write(tmp_path, EIGHT)

    assert cli.main(["migrate", str(path)]) == 0
    captured = capsys.readouterr()
    assert captured.out.count("type: external\n") == 9
    assert "migrate: 8 converted, 2 untouched, 0 need a human" in captured.err

    monkeypatch.setattr("sys.stdin", io.StringIO(EIGHT))
    assert cli.main(["migrate", "-", "--report", "json"]) == 0
    assert json.loads(capsys.readouterr().err)["summary"]["converted"] == 8


# -- KEDA's differences -----------------------------------------------------------------------------


def one(trigger: str, *more: str) -> str:
    """A ScaledObject with the given triggers (YAML text, indented as list items), and
    ``more`` documents after it."""
    head = """\
apiVersion: keda.sh/v1alpha1
kind: ScaledObject
metadata: {name: app, namespace: shop}
spec:
  scaleTargetRef: {name: app}
  triggers:
"""
    return "---\n".join([head + textwrap.indent(textwrap.dedent(trigger), "    "), *more])


def test_a_comma_in_a_redis_key_adds_use_glob(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        one('- type: redis\n  metadata: {address: "r:6379", listName: "a,b", listLength: "5"}\n'),
    )

    status, output, report = run_json(str(path))

    assert status == 0
    (trigger,) = triggers(output)
    assert list(trigger["metadata"])[-3:] == ["listName", "useGlob", "listLength"]
    assert trigger["metadata"]["useGlob"] == "true"
    assert any(
        "KEDA reads a listName with a comma as one key" in c
        for c in report["triggers"][0]["changes"]
    )

    path = write(
        tmp_path, one('- type: redis\n  metadata: {address: "r:6379", listName: "a*,b"}\n')
    )
    status, output, report = run_json(str(path))
    assert status == 1
    assert "glob characters" in report["triggers"][0]["problems"][0]


def test_unknown_keys_are_kept_and_reported(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        one(
            """\
            - type: kafka
              metadata:
                bootstrapServers: k:9092
                consumerGroup: g
                awsRegion: eu-west-1
                enableTLS: "true"
            """
        ),
    )

    status, output, report = run_json(str(path))

    assert status == 0
    (trigger,) = triggers(output)
    assert "awsRegion" in trigger["metadata"]
    assert "enableTLS" not in trigger["metadata"]  # KEDA would use TLS to the scaler
    assert "tls" not in trigger["metadata"]  # KEDA's kafka trigger ignored it: no TLS to Kafka
    finding = report["triggers"][0]
    assert finding["warnings"] == [
        "awsRegion is unknown to backend kafka: kept, the scaler ignores it"
    ]
    assert any(c.startswith("removed enableTLS") for c in finding["changes"])


def test_what_the_scaler_would_refuse_needs_a_human(tmp_path: Path) -> None:
    text = one(
        """\
        - type: kafka
          metadata: {bootstrapServers: "k:9092", consumerGroup: g, sasl: gssapi}
        - type: redis-cluster
          metadata: {addresses: "r:6379", listName: jobs, databaseIndex: "2"}
        """
    )
    path = write(tmp_path, text)

    status, output, report = run_json(str(path))

    assert status == 1
    kafka, cluster = report["triggers"]
    assert kafka["status"] == "needs-human"
    assert kafka["changes"] == []
    assert "sasl" in kafka["problems"][0]
    # KEDA ignores a Cluster's databaseIndex, the scaler would refuse it: removed
    assert cluster["status"] == "converted"
    assert "databaseIndex" not in triggers(output)[1]["metadata"]
    assert triggers(output)[0] == triggers(text)[0]  # left exactly as it was


# -- the docs' example ------------------------------------------------------------------------------

DOCS_HEAD = """\
apiVersion: keda.sh/v1alpha1
kind: ScaledObject
metadata:
  name: jobs-consumer
  namespace: work
"""

DOCS_AUTHENTICATIONS = """\
---
apiVersion: keda.sh/v1alpha1
kind: TriggerAuthentication
metadata: {name: redis-auth, namespace: work}
spec:
  secretTargetRef:
    - {parameter: password, name: redis, key: redis-password}
---
apiVersion: keda.sh/v1alpha1
kind: TriggerAuthentication
metadata: {name: kafka-auth, namespace: work}
spec:
  env:
    - {parameter: username, name: KAFKA_USER}
    - {parameter: password, name: KAFKA_PASSWORD}
"""


def test_the_docs_example_is_what_migrate_writes(tmp_path: Path) -> None:
    page = (Path(__file__).resolve().parent.parent / "docs" / "tools.md").read_text("utf-8")
    section = page.split("## migrate: ", 1)[1]
    blocks = [b.split("```", 1)[0] for b in section.split("```yaml\n")[1:4]]
    before, after, stub = blocks
    source = write(tmp_path, DOCS_HEAD + before + DOCS_AUTHENTICATIONS)
    stub_path = tmp_path / "profiles.yaml"

    status, output, err = run(str(source), "--profiles-out", str(stub_path))

    assert status == 0, err
    assert output == DOCS_HEAD + after + DOCS_AUTHENTICATIONS
    assert stub_path.read_text(encoding="utf-8").endswith(stub)
    report = section.split("```text\n", 1)[1].split("```", 1)[0]
    shown = [line for line in report.splitlines() if line.strip() != "..."]
    err = err.replace(str(stub_path), "profiles.yaml")
    assert all(line in err.splitlines() for line in shown)


def test_a_trigger_shared_through_a_yaml_alias_needs_a_human(tmp_path: Path) -> None:
    text = one(
        """\
        - type: redis
          metadata: &shared {address: "r:6379", listName: jobs}
        - type: redis
          metadata: *shared
        """
    )

    status, output, report = run_json(str(write(tmp_path, text)))

    assert status == 1
    assert [t["status"] for t in report["triggers"]] == ["needs-human", "needs-human"]
    assert "YAML alias" in report["triggers"][0]["problems"][0]
    assert output == text
