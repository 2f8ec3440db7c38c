"""``migrate`` and TriggerAuthentications: Secrets become profile placeholders, env entries
``xxxFromEnv`` keys, and what cannot travel needs a human. No Secret value is ever copied."""

from __future__ import annotations

import base64
import json
import textwrap
from pathlib import Path
from typing import Any

import yaml

from scaler.backends import BACKENDS
from scaler.profiles import load as load_profiles
from tests.test_migrate import run, run_json, triggers, write

#: a Secret value that must never leave its own Secret document
FAKE_SECRET = "fake-s3cret-VALUE-9d1f"
FAKE_DATA_SECRET = "another-fake-s3cret-4c2a"

SO = """\
apiVersion: keda.sh/v1alpha1
kind: ScaledObject
metadata: {name: app, namespace: shop}
spec:
  scaleTargetRef: {name: app}
  triggers:
"""


def manifest(*triggers_text: str, documents: tuple[str, ...] = ()) -> str:
    body = "".join(textwrap.indent(textwrap.dedent(t), "    ") for t in triggers_text)
    return "---\n".join([SO + body, *(textwrap.dedent(d) for d in documents)])


REDIS_SECRET_AUTH = """\
apiVersion: keda.sh/v1alpha1
kind: TriggerAuthentication
metadata: {name: redis-auth, namespace: shop}
spec:
  secretTargetRef:
    - {parameter: password, name: redis-secret, key: redis-password}
    - {parameter: username, name: redis-users, key: user}
"""

SECRETS = f"""\
apiVersion: v1
kind: Secret
metadata: {{name: redis-secret, namespace: shop}}
stringData:
  redis-password: {FAKE_SECRET}
---
apiVersion: v1
kind: Secret
metadata: {{name: redis-users, namespace: shop}}
data:
  user: {base64.b64encode(FAKE_DATA_SECRET.encode()).decode()}
"""

REDIS_TRIGGER = """\
- type: redis
  metadata:
    address: redis.shop:6379
    listName: jobs
    listLength: "5"
    enableTLS: "true"
  authenticationRef:
    name: redis-auth
"""


def connection_keys() -> dict[str, frozenset[str]]:
    return {cls.name: cls.connection_keys() for cls in BACKENDS}


def families() -> dict[str, str]:
    return {cls.name: cls.family() for cls in BACKENDS}


def test_secret_target_ref_becomes_a_profile_stub_without_values(tmp_path: Path) -> None:
    text = manifest(REDIS_TRIGGER, documents=(REDIS_SECRET_AUTH, SECRETS))
    path = write(tmp_path, text)
    stub_path = tmp_path / "profiles.yaml"

    status, output, report = run_json(str(path), "--profiles-out", str(stub_path))
    text_status, _, text_report = run(str(path), "--profiles-out", str(tmp_path / "again.yaml"))

    assert (status, text_status) == (0, 0)
    (trigger,) = triggers(output)
    assert "authenticationRef" not in trigger
    assert trigger["metadata"] == {
        "scalerAddress": "keda-queue-scaler.keda.svc.cluster.local:9090",
        "backend": "redis",
        "connection": "shop-redis-auth",
        "listName": "jobs",
        "listLength": "5",
    }
    finding = report["triggers"][0]
    assert (finding["status"], finding["connection"]) == ("converted", "shop-redis-auth")
    assert report["profilesFile"] == str(stub_path)
    assert report["profiles"] == [
        {
            "name": "shop-redis-auth",
            "backend": "redis",
            "authentication": "TriggerAuthentication shop/redis-auth",
            "keys": ["address", "tls"],
            "placeholders": [
                {"key": "password", "secret": "shop/redis-secret", "secretKey": "redis-password"},
                {"key": "username", "secret": "shop/redis-users", "secretKey": "user"},
            ],
            "usedBy": ["ScaledObject/shop/app trigger 0"],
        }
    ]
    stub = stub_path.read_text(encoding="utf-8")
    assert '# password: ""  # FILL IN: Secret shop/redis-secret, key redis-password' in stub
    assert '# username: ""  # FILL IN: Secret shop/redis-users, key user' in stub
    assert "    address: redis.shop:6379  # from the trigger's metadata\n" in stub
    assert "    tls: enable  # from the trigger's metadata\n" in stub
    assert stub_path.stat().st_mode & 0o077 == 0  # it will hold the values once filled in

    # the Secret values stay in their own Secret documents, which are written back as they were
    for secret in (
        FAKE_SECRET,
        FAKE_DATA_SECRET,
        base64.b64encode(FAKE_DATA_SECRET.encode()).decode(),
    ):
        assert output.count(secret) == text.count(secret)
        assert secret not in stub
        assert secret not in json.dumps(report)
        assert secret not in text_report
    assert FAKE_DATA_SECRET not in output
    assert output.split("---\n", 1)[1] == text.split("---\n", 1)[1]

    # the stub is a profiles file the scaler loads; once filled in it gives the trigger its
    # connection, and the metadata with it is what the built-in trigger read
    profiles = load_profiles(str(stub_path), connection_keys(), False, families())
    assert dict(profiles.resolve(trigger["metadata"])) == {
        "scalerAddress": "keda-queue-scaler.keda.svc.cluster.local:9090",
        "backend": "redis",
        "connection": "shop-redis-auth",
        "listName": "jobs",
        "listLength": "5",
        "address": "redis.shop:6379",
        "tls": "enable",
    }
    filled = stub.replace('# password: ""', 'password: "from-the-secret"')
    stub_path.write_text(filled, encoding="utf-8")
    profiles = load_profiles(str(stub_path), connection_keys(), False, families())
    assert profiles.resolve(trigger["metadata"])["password"] == "from-the-secret"


def test_one_profile_per_authentication_and_connection(tmp_path: Path) -> None:
    streams = REDIS_TRIGGER.replace("type: redis", "type: redis-streams").replace(
        'listName: jobs\n    listLength: "5"', 'stream: orders\n    streamLength: "5"'
    )
    elsewhere = REDIS_TRIGGER.replace("redis.shop:6379", "other.shop:6379")
    text = manifest(REDIS_TRIGGER, streams, elsewhere, documents=(REDIS_SECRET_AUTH,))
    stub_path = tmp_path / "profiles.yaml"

    status, output, report = run_json(str(write(tmp_path, text)), "--profiles-out", str(stub_path))

    assert status == 0
    # a redis profile serves the redis-streams trigger too (one family); another address is
    # another profile
    assert [t["metadata"]["connection"] for t in triggers(output)] == [
        "shop-redis-auth",
        "shop-redis-auth",
        "shop-redis-auth-2",
    ]
    assert [(p["name"], p["usedBy"]) for p in report["profiles"]] == [
        ("shop-redis-auth", ["ScaledObject/shop/app trigger 0", "ScaledObject/shop/app trigger 1"]),
        ("shop-redis-auth-2", ["ScaledObject/shop/app trigger 2"]),
    ]
    assert len(load_profiles(str(stub_path), connection_keys(), False, families())) == 2


def test_env_entries_become_from_env_keys(tmp_path: Path) -> None:
    auth = """\
    apiVersion: keda.sh/v1alpha1
    kind: TriggerAuthentication
    metadata: {name: kafka-env, namespace: shop}
    spec:
      podIdentity: {provider: none}
      env:
        - {parameter: username, name: KAFKA_USER}
        - {parameter: password, name: KAFKA_PASSWORD, containerName: sidecar}
    """
    trigger = """\
    - type: kafka
      metadata:
        bootstrapServers: kafka:9092
        consumerGroup: orders
        sasl: plaintext
      authenticationRef: {name: kafka-env}
    """
    path = write(tmp_path, manifest(trigger, documents=(auth,)))

    status, output, report = run_json(str(path), "--profiles-out", str(tmp_path / "p.yaml"))

    assert status == 0
    (migrated,) = triggers(output)
    assert "authenticationRef" not in migrated
    assert list(migrated["metadata"].items())[-2:] == [
        ("usernameFromEnv", "KAFKA_USER"),
        ("passwordFromEnv", "KAFKA_PASSWORD"),
    ]
    assert "connection" not in migrated["metadata"]
    assert report["profiles"] == []
    assert not (tmp_path / "p.yaml").exists()
    assert any("no connection profile was needed" in n for n in report["notes"])
    (warning,) = report["triggers"][0]["warnings"]
    assert "container sidecar" in warning
    assert "envSourceContainerName" in warning


def needs_human(tmp_path: Path, text: str) -> tuple[str, dict[str, Any]]:
    path = write(tmp_path, text)
    status, output, report = run_json(str(path), "--profiles-out", str(tmp_path / "p.yaml"))
    assert status == 1
    assert output == text  # the trigger is left exactly as it was
    (finding,) = report["triggers"]
    assert finding["status"] == "needs-human"
    assert finding["changes"] == []
    assert report["summary"]["needs-human"] == 1
    return " ".join(finding["problems"]), report


def test_vault_cannot_travel(tmp_path: Path) -> None:
    vault = """\
    apiVersion: keda.sh/v1alpha1
    kind: TriggerAuthentication
    metadata: {name: redis-auth, namespace: shop}
    spec:
      hashiCorpVault:
        address: https://vault:8200
        authentication: kubernetes
        secrets:
          - {parameter: password, key: password, path: secret/data/redis}
    """
    problems, _ = needs_human(tmp_path, manifest(REDIS_TRIGGER, documents=(vault,)))

    assert "TriggerAuthentication shop/redis-auth uses hashiCorpVault" in problems
    assert "never forwards to an external scaler" in problems

    status, _, err = run(str(tmp_path / "manifest.yaml"))
    assert status == 1
    assert "NOT converted, needs a human (left as it was)" in err
    assert "needs a human: TriggerAuthentication shop/redis-auth uses hashiCorpVault" in err


def test_pod_identity_and_missing_authentication(tmp_path: Path) -> None:
    pod = REDIS_SECRET_AUTH.replace("spec:\n", "spec:\n  podIdentity: {provider: azure-workload}\n")
    problems, _ = needs_human(tmp_path, manifest(REDIS_TRIGGER, documents=(pod,)))
    assert "uses podIdentity" in problems

    problems, _ = needs_human(tmp_path, manifest(REDIS_TRIGGER))
    assert "names TriggerAuthentication shop/redis-auth, which is not in the input" in problems

    other_namespace = REDIS_SECRET_AUTH.replace("namespace: shop", "namespace: elsewhere")
    problems, _ = needs_human(tmp_path, manifest(REDIS_TRIGGER, documents=(other_namespace,)))
    assert "not in the input" in problems


def test_a_secret_that_is_no_connection_key_needs_a_human(tmp_path: Path) -> None:
    auth = """\
    apiVersion: keda.sh/v1alpha1
    kind: TriggerAuthentication
    metadata: {name: rabbit, namespace: shop}
    spec:
      secretTargetRef:
        - {parameter: host, name: rabbit, key: url}
        - {parameter: vhostName, name: rabbit, key: vhost}
    """
    trigger = """\
    - type: rabbitmq
      metadata: {queueName: tasks}
      authenticationRef: {name: rabbit}
    """
    problems, _ = needs_human(tmp_path, manifest(trigger, documents=(auth,)))

    assert "vhostName (Secret shop/rabbit, key vhost), which is not a connection key" in problems
    assert "vhostNameFromEnv" in problems


def test_conflicts_need_a_human(tmp_path: Path) -> None:
    # the metadata and the TriggerAuthentication both set the password
    both = REDIS_TRIGGER.replace("listName: jobs", "listName: jobs\n    password: literal")
    problems, _ = needs_human(tmp_path, manifest(both, documents=(REDIS_SECRET_AUTH,)))
    assert (
        "both the trigger's metadata and TriggerAuthentication shop/redis-auth set password"
        in problems
    )

    # a FromEnv connection key cannot stay beside `connection`, nor go into a profile
    from_env = REDIS_TRIGGER.replace("address: redis.shop:6379", "addressFromEnv: REDIS_ADDRESS")
    problems, _ = needs_human(tmp_path, manifest(from_env, documents=(REDIS_SECRET_AUTH,)))
    assert "addressFromEnv: a connection key cannot stay beside connection" in problems


def test_cluster_trigger_authentication(tmp_path: Path) -> None:
    auth = """\
    apiVersion: keda.sh/v1alpha1
    kind: ClusterTriggerAuthentication
    metadata: {name: rabbit}
    spec:
      secretTargetRef:
        - {parameter: password, name: rabbit, key: password}
    """
    trigger = """\
    - type: rabbitmq
      metadata: {host: "http://rabbit:15672/", username: scaler, queueName: tasks}
      authenticationRef: {name: rabbit, kind: ClusterTriggerAuthentication}
    """
    stub_path = tmp_path / "profiles.yaml"
    status, output, report = run_json(
        str(write(tmp_path, manifest(trigger, documents=(auth,)))), "--profiles-out", str(stub_path)
    )

    assert status == 0
    (migrated,) = triggers(output)
    assert migrated["metadata"] == {
        "scalerAddress": "keda-queue-scaler.keda.svc.cluster.local:9090",
        "backend": "rabbitmq",
        "connection": "rabbit",
        "queueName": "tasks",
    }
    (profile,) = report["profiles"]
    assert profile["placeholders"] == [
        {"key": "password", "secret": "keda/rabbit", "secretKey": "password"}
    ]
    loaded = yaml.safe_load(stub_path.read_text(encoding="utf-8"))
    assert loaded == {
        "connections": {
            "rabbit": {"backend": "rabbitmq", "host": "http://rabbit:15672/", "username": "scaler"}
        }
    }


def test_profiles_needed_without_profiles_out(tmp_path: Path) -> None:
    path = write(tmp_path, manifest(REDIS_TRIGGER, documents=(REDIS_SECRET_AUTH,)))

    status, output, report = run_json(str(path))

    assert status == 1
    (trigger,) = triggers(output)
    assert trigger["metadata"]["connection"] == "shop-redis-auth"
    (problem,) = report["problems"]
    assert "rerun with --profiles-out FILE" in problem
    assert report["triggers"][0]["status"] == "converted"


def test_what_the_scaler_would_refuse_beside_a_profile_needs_a_human(tmp_path: Path) -> None:
    # the backend parses the metadata with the profile's literal keys; what only the Secret
    # holds is not known, so nothing about username or password is held against it
    auth = """\
    apiVersion: keda.sh/v1alpha1
    kind: TriggerAuthentication
    metadata: {name: rabbit, namespace: shop}
    spec:
      secretTargetRef:
        - {parameter: username, name: rabbit, key: user}
        - {parameter: password, name: rabbit, key: password}
    """
    trigger = """\
    - type: rabbitmq
      metadata: {host: "http://rabbit:15672/", queueName: tasks, value: "5"}
      authenticationRef: {name: rabbit}
    """
    problems, _ = needs_human(tmp_path, manifest(trigger, documents=(auth,)))
    assert problems == (
        "the scaler would refuse the metadata: rabbitmq: missing required parameter mode "
        "(value is set)"
    )

    fine = trigger.replace('value: "5"', 'mode: QueueLength, value: "5"')
    path = write(tmp_path, manifest(fine, documents=(auth,)))
    assert run(str(path), "--profiles-out", str(tmp_path / "p.yaml"))[0] == 0


def test_an_existing_profiles_file_is_never_overwritten(tmp_path: Path) -> None:
    stub_path = tmp_path / "profiles.yaml"
    stub_path.write_text("connections: {filled: {backend: redis, password: real}}\n")
    path = write(tmp_path, manifest(REDIS_TRIGGER, documents=(REDIS_SECRET_AUTH,)))

    status, output, err = run(str(path), "--profiles-out", str(stub_path))

    assert (status, output) == (2, "")
    assert "never overwrites a profiles file" in err
    assert "real" in stub_path.read_text(encoding="utf-8")
