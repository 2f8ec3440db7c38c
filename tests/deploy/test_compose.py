"""Dockerfile and docker-compose.yml, checked statically (no Docker engine here) and, for the
health checks, by running them against a real scaler.

Compose: every image pinned to an exact tag, every SCALER_* variable a real setting (read from
the Settings dataclass, so settings added later count at once), ports published on loopback,
health checks where a service has a natural one, `depends_on` on healthy services, mounted files
present, the demo wired together (producer -> list -> ScaledObject -> simulator), Prometheus
scraping the scaler and the Grafana dashboard covering every metric family the scaler exports.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import shlex
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml
from prometheus_client import CollectorRegistry

from scaler.metrics import ScalerMetrics
from tests.deploy.support import ROOT, load_documents, load_settings, unknown_env

COMPOSE_FILE = ROOT / "docker-compose.yml"
DOCKERFILE = ROOT / "Dockerfile"
DEMO = ROOT / "deploy" / "compose" / "demo"
DASHBOARD = ROOT / "deploy" / "compose" / "grafana" / "dashboards" / "keda-queue-scaler.json"

# services with a natural health check, and how it must look
HEALTH_CHECKED = {
    "redis": "redis-cli",
    "kafka": "kafka-topics.sh",
    "rabbitmq": "rabbitmq-diagnostics",
    "scaler": "grpc_health",
    "prometheus": "/-/healthy",
    "grafana": "/api/health",
}
DEMO_SERVICES = ("producer", "consumer", "simulator")
# an exact release: 1.2.3 at least (optionally -alpine, -management-alpine, ...), no "latest"
EXACT_TAG = re.compile(r"^v?\d+\.\d+\.\d+([.-][0-9A-Za-z.-]+)?$")


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(COMPOSE_FILE.read_text())
    return loaded


@pytest.fixture(scope="module")
def services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = compose["services"]
    return found


def _env(service: dict[str, Any]) -> dict[str, str]:
    env = service.get("environment", {})
    if isinstance(env, list):
        env = dict(item.split("=", 1) for item in env)
    return {str(k): str(v) for k, v in env.items()}


def _split_image(image: str) -> tuple[str, str, str]:
    """(name, tag, digest) of ``name[:tag][@digest]``."""
    ref, _, digest = image.partition("@")
    slash = ref.rfind("/")
    colon = ref.rfind(":")
    if colon > slash:
        return ref[:colon], ref[colon + 1 :], digest
    return ref, "", digest


def test_every_image_is_pinned(services: dict[str, dict[str, Any]]):
    for name, service in services.items():
        image = service.get("image")
        assert image, f"{name}: no image"
        repo, tag, digest = _split_image(image)
        assert tag, f"{name}: {image} has no tag"
        assert tag != "latest", f"{name}: {image}"
        if "build" in service:
            assert repo == "keda-queue-scaler", f"{name}: builds {image}"
            assert service["build"]["context"] == "."
            assert service["pull_policy"] == "build", f"{name}: {image} is built, never pulled"
            continue
        assert EXACT_TAG.match(tag), f"{name}: {image} is not pinned to an exact version"
        if digest:
            assert re.fullmatch(r"sha256:[0-9a-f]{64}", digest), f"{name}: {image}"


def test_the_stack_has_every_part(services: dict[str, dict[str, Any]]):
    assert set(HEALTH_CHECKED) | set(DEMO_SERVICES) <= set(services)
    images = {name: _split_image(s["image"])[0] for name, s in services.items()}
    assert images["redis"] == "redis"
    assert images["kafka"] == "apache/kafka"
    assert images["rabbitmq"] == "rabbitmq"
    assert "management" in _split_image(services["rabbitmq"]["image"])[1]
    assert images["prometheus"] == "prom/prometheus"
    assert images["grafana"] == "grafana/grafana"


def test_scaler_settings_exist_and_are_valid(services: dict[str, dict[str, Any]]):
    for name, service in services.items():
        env = _env(service)
        assert not unknown_env(env), f"{name}: unknown settings {unknown_env(env)}"
    scaler = services["scaler"]
    assert "entrypoint" not in scaler, "the image's entrypoint is `keda-queue-scaler serve`"
    command = scaler.get("command", [])
    args = shlex.split(command) if isinstance(command, str) else command
    settings = load_settings(args, _env(scaler))
    published = _published(scaler)
    assert settings.grpc_port in published.values()
    assert settings.metrics_port in published.values()
    # the state store is the stack's own Redis (another database than the demo's list)
    state = urlsplit(settings.state_url)
    assert (state.scheme, state.hostname, state.path) == ("redis", "redis", "/1")
    assert "redis" in scaler["depends_on"]


def _published(service: dict[str, Any]) -> dict[int, int]:
    """host port -> container port, all published on loopback only."""
    ports: dict[int, int] = {}
    for entry in service.get("ports", []):
        host_ip, host, container = str(entry).split(":")
        assert host_ip == "127.0.0.1", f"{entry}: publish on loopback only"
        ports[int(host)] = int(container.split("/")[0])
    return ports


def test_ports_are_published_once_on_loopback(services: dict[str, dict[str, Any]]):
    expected = {
        "scaler": {9090, 8080},
        "redis": {6379},
        "kafka": {9092},
        "rabbitmq": {5672, 15672},
        "prometheus": {9090},
        "grafana": {3000},
    }
    hosts: list[int] = []
    for name, container_ports in expected.items():
        published = _published(services[name])
        assert set(published.values()) == container_ports, name
        hosts.extend(published)
    assert len(hosts) == len(set(hosts)), f"a host port is published twice: {sorted(hosts)}"


def _healthcheck_text(service: dict[str, Any]) -> str:
    test = service["healthcheck"]["test"]
    if isinstance(test, str):
        return test
    assert test[0] in ("CMD", "CMD-SHELL"), test
    return " ".join(test[1:])


def test_health_checks_where_there_is_a_natural_one(services: dict[str, dict[str, Any]]):
    for name, marker in HEALTH_CHECKED.items():
        check = services[name].get("healthcheck")
        assert check, f"{name}: no health check"
        assert not check.get("disable"), f"{name}: health check disabled"
        assert marker in _healthcheck_text(services[name]), f"{name}: {check['test']}"
        assert {"interval", "timeout", "retries"} <= set(check), name
    for name in DEMO_SERVICES:
        # they run the scaler's image, whose HEALTHCHECK probes a gRPC server they do not run
        assert services[name]["healthcheck"] == {"disable": True}, name


def test_depends_on_waits_for_healthy_services(services: dict[str, dict[str, Any]]):
    for name, service in services.items():
        for target, condition in service.get("depends_on", {}).items():
            assert condition == {"condition": "service_healthy"}, f"{name} -> {target}"
            assert "healthcheck" in services[target], f"{name} -> {target}"
            assert not services[target]["healthcheck"].get("disable"), f"{name} -> {target}"
    assert set(services["scaler"]["depends_on"]) == {"redis", "kafka", "rabbitmq"}
    assert "scaler" in services["simulator"]["depends_on"]
    assert "redis" in services["producer"]["depends_on"]
    assert "redis" in services["consumer"]["depends_on"]
    assert "prometheus" in services["grafana"]["depends_on"]


def _mounts(service: dict[str, Any]) -> dict[str, Path]:
    """container path -> host path for bind mounts (all read-only)."""
    mounts: dict[str, Path] = {}
    for volume in service.get("volumes", []):
        source, target, mode = str(volume).split(":")
        assert mode == "ro", volume
        assert source.startswith("./"), volume
        mounts[target] = ROOT / source
    return mounts


def test_mounted_files_exist(services: dict[str, dict[str, Any]]):
    for name, service in services.items():
        for target, source in _mounts(service).items():
            assert source.exists(), f"{name}: {source} (mounted at {target}) is missing"


def test_demo_is_wired_together(services: dict[str, dict[str, Any]]):
    for name in DEMO_SERVICES:
        assert services[name]["image"] == services["scaler"]["image"], "no runtime pip install"
        assert _mounts(services[name])["/demo"] == DEMO
    for name in ("producer", "consumer"):
        entrypoint = services[name]["entrypoint"]
        assert entrypoint[0] == "python"
        script = DEMO / Path(entrypoint[1]).relative_to("/demo")
        assert script.is_file(), entrypoint
    simulator = services["simulator"]
    command = [*simulator["entrypoint"], *simulator["command"]]
    assert command[:3] == ["keda-queue-scaler", "simulate", "/demo/scaledobject.yaml"]
    address = command[command.index("--address") + 1]
    host, port = address.split(":")
    assert host == "scaler"
    assert int(port) == load_settings((), _env(services["scaler"])).grpc_port
    (scaled_object,) = load_documents(DEMO / "scaledobject.yaml")
    assert scaled_object["spec"]["scaleTargetRef"]["name"] == "consumer"
    (trigger,) = scaled_object["spec"]["triggers"]
    metadata = trigger["metadata"]
    assert metadata["scalerAddress"] == address
    assert metadata["address"] == "redis:6379"
    for name in ("producer", "consumer"):
        env = _env(services[name])
        assert env["DEMO_LIST"] == metadata["listName"], name
        assert env["DEMO_REDIS_URL"].startswith("redis://redis:6379/"), name


def test_prometheus_scrapes_the_scaler(services: dict[str, dict[str, Any]]):
    config_path = _mounts(services["prometheus"])["/etc/prometheus/prometheus.yml"]
    config = yaml.safe_load(config_path.read_text())
    metrics_port = load_settings((), _env(services["scaler"])).metrics_port
    targets = [
        target
        for job in config["scrape_configs"]
        for static in job.get("static_configs", [])
        for target in static["targets"]
    ]
    assert f"scaler:{metrics_port}" in targets


def test_grafana_is_provisioned(services: dict[str, dict[str, Any]]):
    mounts = _mounts(services["grafana"])
    datasources = mounts["/etc/grafana/provisioning/datasources"]
    (source,) = yaml.safe_load((datasources / "prometheus.yml").read_text())["datasources"]
    assert source["url"] == "http://prometheus:9090"
    assert source["uid"] == "prometheus"
    providers = mounts["/etc/grafana/provisioning/dashboards"]
    (provider,) = yaml.safe_load((providers / "keda-queue-scaler.yml").read_text())["providers"]
    assert mounts[provider["options"]["path"]] == DASHBOARD.parent
    home = _env(services["grafana"])["GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"]
    assert Path(home).name == DASHBOARD.name


# --- the dashboard ----------------------------------------------------------------------------


#: the scaler's own families; the standard process and Python collectors come beside them
_OURS = "keda_queue_scaler_"


def _exported_families() -> dict[str, tuple[str, set[str]]]:
    """name -> (type, label names) of every family the scaler's registry exports."""
    registry = CollectorRegistry()
    ScalerMetrics(registry, 10)
    families: dict[str, tuple[str, set[str]]] = {}
    for family in registry.collect():
        labels = {label for sample in family.samples for label in sample.labels}
        name = family.name + ("_total" if family.type == "counter" else "")
        families[name] = (family.type, labels)
    # families whose labelled series appear only once observed
    for name, labels in (
        ("keda_queue_scaler_rpc_duration_seconds", {"method", "code"}),
        ("keda_queue_scaler_backend_request_duration_seconds", {"backend", "outcome"}),
        ("keda_queue_scaler_backend_errors_total", {"backend", "reason"}),
        ("keda_queue_scaler_push_events_total", {"backend", "kind"}),
        ("keda_queue_scaler_last_value", {"backend", "resource"}),
        ("keda_queue_scaler_last_success_timestamp_seconds", {"backend", "resource"}),
        ("keda_queue_scaler_oldest_age_seconds", {"backend", "resource"}),
        ("keda_queue_scaler_in_flight", {"backend", "resource"}),
    ):
        assert name in families, name
        families[name][1].update(labels)
    return families


def _dashboard_exprs() -> list[str]:
    dashboard = json.loads(DASHBOARD.read_text())
    return [
        target["expr"]
        for panel in dashboard["panels"]
        for target in panel.get("targets", [])
        if "expr" in target
    ]


def _documented_series() -> dict[str, str]:
    """Every `keda_queue_scaler_*` name in the README and docs/, with the first page naming it."""
    found: dict[str, str] = {}
    for page in [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]:
        for name in re.findall(r"`(keda_queue_scaler_\w+)`", page.read_text()):
            found.setdefault(name, str(page.relative_to(ROOT)))
    return found


def test_dashboard_has_a_panel_for_every_metric_family():
    families = _exported_families()
    used = {m for expr in _dashboard_exprs() for m in re.findall(r"keda_queue_scaler_\w+", expr)}
    documented = _documented_series()
    assert documented, "the README and docs/ name no metric"
    for family, (kind, _) in families.items():
        if not family.startswith(_OURS):
            continue  # the standard process and Python collectors: a few panels, not one each
        names = {family, f"{family}_bucket", f"{family}_count"} if kind == "histogram" else {family}
        assert names & used, f"no panel shows {family}"
    for name, page in documented.items():
        # a histogram's samples (_bucket, _count, _sum) belong to its family
        family = re.sub(r"_(bucket|count|sum)$", "", name) if name not in families else name
        assert family in families, f"{page} documents {name}, which the scaler does not export"


def test_operations_page_lists_every_metric_family():
    # docs/operations.md "Metrics" is the reference: one row per exported family
    text = (ROOT / "docs" / "operations.md").read_text()
    section = text.split("\n## Metrics\n", 1)[1].split("\n## ", 1)[0]
    listed = set(re.findall(r"^\| `(keda_queue_scaler_\w+)`", section, re.MULTILINE))
    ours = {name for name in _exported_families() if name.startswith(_OURS)}
    assert listed == ours, "docs/operations.md Metrics table"


def test_dashboard_queries_use_real_series_and_labels():
    families = _exported_families()
    series = {}
    for family, (kind, labels) in families.items():
        if kind == "histogram":
            series[f"{family}_bucket"] = labels | {"le"}
            series[f"{family}_count"] = labels
            series[f"{family}_sum"] = labels
        else:
            series[family] = labels
    for expr in _dashboard_exprs():
        metrics = re.findall(r"\b(?:keda_queue_scaler|process|python)_\w+", expr)
        assert metrics, expr
        labels = set().union(*(series[m] for m in metrics if m in series)) | {"instance", "job"}
        for metric in metrics:
            assert metric in series, f"{metric} in {expr!r} is not exported"
        for group in re.findall(r"by \(([^)]*)\)", expr):
            for label in (g.strip() for g in group.split(",")):
                assert label in labels, f"{label} in {expr!r}"
        for label in re.findall(r"(\w+)\s*(?:=~|!~|!=|=)\s*\"", expr):
            assert label in labels, f"{label} in {expr!r}"


def test_dashboard_panels_have_unique_ids_and_the_provisioned_datasource():
    dashboard = json.loads(DASHBOARD.read_text())
    ids = [panel["id"] for panel in dashboard["panels"]]
    assert len(ids) == len(set(ids))
    (datasource,) = [v for v in dashboard["templating"]["list"] if v["type"] == "datasource"]
    assert datasource["query"] == "prometheus"
    for panel in dashboard["panels"]:
        if panel["type"] != "row":
            assert panel["datasource"]["uid"] == "${datasource}", panel["title"]


# --- Dockerfile -------------------------------------------------------------------------------


def _dockerfile() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    instructions: list[tuple[str, str]] = []
    pending = ""
    for line in DOCKERFILE.read_text().splitlines():
        if line.lstrip().startswith("#") or not line.strip():
            continue
        pending += line.rstrip()
        if pending.endswith("\\"):
            pending = pending[:-1] + " "
            continue
        word, _, rest = pending.strip().partition(" ")
        instructions.append((word.upper(), rest.strip()))
        pending = ""
    return instructions


def _last(instructions: list[tuple[str, str]], word: str) -> str:
    values = [rest for w, rest in instructions if w == word]
    assert values, f"no {word}"
    return values[-1]


def test_dockerfile_is_multi_stage_pinned_and_non_root():
    instructions = _dockerfile()
    args = dict(rest.split("=", 1) for word, rest in instructions if word == "ARG" and "=" in rest)
    stages = [rest for word, rest in instructions if word == "FROM"]
    assert len(stages) >= 2, "multi-stage: a builder and a runtime stage"
    for stage in stages:
        image = stage.split()[0]
        image = re.sub(r"\$\{(\w+)\}", lambda m: args[m.group(1)], image)
        if image in ("builder",):
            continue
        repo, tag, _ = _split_image(image)
        assert repo == "python", image
        assert EXACT_TAG.match(tag), image
        assert tag.startswith("3.11."), image
    # the runtime stage takes only the built environment from the builder
    runtime = instructions[max(i for i, (w, _) in enumerate(instructions) if w == "FROM") :]
    copies = [rest for word, rest in runtime if word == "COPY"]
    assert copies
    assert all(c.startswith("--from=builder") for c in copies), copies
    user = _last(instructions, "USER")
    uid = user.split(":")[0]
    assert uid.isdigit(), f"USER {user}: numeric, so runAsNonRoot can verify it"
    assert int(uid) >= 1000, f"USER {user}: non-root"
    assert json.loads(_last(instructions, "ENTRYPOINT")) == ["keda-queue-scaler", "serve"]
    assert set(_last(instructions, "EXPOSE").split()) == {"9090", "8080"}


def test_dockerignore_keeps_only_the_wheel_sources():
    lines = [
        line.strip()
        for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    assert lines[0] == "*"
    assert {"!pyproject.toml", "!README.md", "!scaler/"} <= set(lines)
    copied = [rest for word, rest in _dockerfile() if word == "COPY" and "--from" not in rest]
    for copy in copied:
        for source in copy.split()[:-1]:
            assert (ROOT / source).exists(), source
            assert f"!{source.rstrip('/')}" in {line.rstrip("/") for line in lines}, source


def _dockerfile_healthcheck() -> str:
    healthcheck = _last(_dockerfile(), "HEALTHCHECK")
    command = json.loads(healthcheck[healthcheck.index("CMD") + 3 :].strip())
    assert command[:2] == ["python", "-c"]
    code: str = command[2]
    return code


def _compose_healthcheck() -> str:
    test = yaml.safe_load(COMPOSE_FILE.read_text())["services"]["scaler"]["healthcheck"]["test"]
    assert test[:3] == ["CMD", "python", "-c"]
    code: str = test[3]
    return code


async def _run(code: str, env: dict[str, str]) -> int:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        code,
        env={**os.environ, **env},
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )
    return await asyncio.wait_for(process.wait(), timeout=20)


@pytest.mark.parametrize("source", [_dockerfile_healthcheck, _compose_healthcheck])
async def test_healthcheck_asks_grpc_health(serve, source: Callable[[], str]):
    code = source()
    assert "grpc_health" in code
    assert "SERVING" in code
    running = await serve()
    port = str(running.app.grpc_port)
    if "SCALER_GRPC_PORT" not in code:  # compose: the scaler's fixed port, 9090
        code = code.replace("localhost:9090", f"localhost:{port}")
    assert await _run(code, {"SCALER_GRPC_PORT": port}) == 0
    await running.app.stop()
    assert await _run(code, {"SCALER_GRPC_PORT": port}) == 1


async def test_dockerfile_healthcheck_with_tls_uses_the_health_port(serve, tmp_path):
    from tests.pki import make_pki

    pki = make_pki(tmp_path)
    code = _dockerfile_healthcheck()
    running = await serve(tls_cert=str(pki.server_cert), tls_key=str(pki.server_key))
    grpc_port = str(running.app.grpc_port)
    # without SCALER_HEALTH_PORT: a TCP connect to the TLS port
    tcp_env = {"SCALER_GRPC_PORT": grpc_port, "SCALER_TLS_CERT": str(pki.server_cert)}
    assert await _run(code, tcp_env) == 0
    free = (
        running.app.grpc_port + 1000
        if running.app.grpc_port < 60000
        else running.app.grpc_port - 1000
    )
    with_health = await serve(
        tls_cert=str(pki.server_cert), tls_key=str(pki.server_key), health_port=free
    )
    env = {
        "SCALER_GRPC_PORT": str(with_health.app.grpc_port),
        "SCALER_TLS_CERT": "x",
        "SCALER_HEALTH_PORT": str(free),
    }
    assert await _run(code, env) == 0  # gRPC health over the plaintext health port
    await with_health.app.stop()
    assert await _run(code, env) == 1
    await running.app.stop()
    assert await _run(code, tcp_env) == 1


def test_simulator_arguments_are_simulate_options(services: dict[str, dict[str, Any]]):
    simulate = pytest.importorskip("scaler.tools.simulate.command")
    parser = argparse.ArgumentParser()
    simulate.add_arguments(parser)
    args = parser.parse_args(services["simulator"]["command"])
    assert args.file == "/demo/scaledobject.yaml"
    assert args.address == "scaler:9090"
    # it follows the live producer for the whole demo, not the default 600 s
    assert args.duration >= 3600
