"""Secrets never leave: every error path with passwords, SASL credentials and URIs carrying
credentials, checked in text and JSON logs, /metrics, gRPC error messages and repr."""

from __future__ import annotations

import io
import logging

import grpc
import pytest

from scaler import logs
from scaler.proto import externalscaler_pb2 as pb
from tests.conftest import ref
from tests.integration.test_redis_rpc import scrape

pytestmark = pytest.mark.integration

SECRETS = [
    "s3cret-redis-71a",
    "s3cret-kafka-82b",
    "s3cret-amqp-93c",
    "s3cret-http-04d",
    "s3cret-key-15e",
]


@pytest.fixture
def captured_logs():
    """Every record at DEBUG through both of our formatters."""
    text, json = io.StringIO(), io.StringIO()
    handlers = []
    for stream, formatter in ((text, logs.TextFormatter()), (json, logs.JsonFormatter())):
        handler = logging.StreamHandler(stream)
        handler.setFormatter(formatter)
        handler.setLevel(logging.DEBUG)
        handlers.append(handler)
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.DEBUG)
    for handler in handlers:
        root.addHandler(handler)
    yield lambda: text.getvalue() + json.getvalue()
    for handler in handlers:
        root.removeHandler(handler)
    root.setLevel(level)


async def test_no_secret_in_any_output(
    serve,
    captured_logs,
    redis_url,
    kafka_bootstrap,
    kafka_sasl,
    amqp_url,
    rabbitmq_http,
    unique_key,
) -> None:
    redis_password, kafka_password, amqp_password, http_password, key_password = SECRETS
    redis_address = redis_url.split("//", 1)[1].split("/", 1)[0]
    amqp_hostport = amqp_url.split("@", 1)[1].split("/", 1)[0]
    http_hostport = rabbitmq_http.split("@", 1)[1].split("/", 1)[0]
    cases = [
        # wrong credentials against real brokers
        {
            "backend": "redis",
            "address": redis_address,
            "listName": "q",
            "username": "nobody",
            "password": redis_password,
        },
        {
            "backend": "kafka",
            "bootstrapServers": kafka_sasl.bootstrap,
            "consumerGroup": "g",
            "topic": "t",
            "sasl": "scram_sha512",
            "username": kafka_sasl.scram_user,
            "passwordFromEnv": kafka_password,
        },
        {
            "backend": "kafka",
            "bootstrapServers": kafka_sasl.bootstrap,
            "consumerGroup": "g",
            "topic": "t",
            "sasl": "plaintext",
            "username": kafka_sasl.plain_user,
            "password": kafka_password,
        },
        {
            "backend": "rabbitmq",
            "host": f"amqp://kqs:{amqp_password}@{amqp_hostport}/%2F",
            "queueName": "q",
        },
        {
            "backend": "rabbitmq",
            "host": f"http://kqs:{http_password}@{http_hostport}/%2F",
            "queueName": "q",
        },
        # unreachable brokers
        {"backend": "redis", "address": "127.0.0.1:1", "listName": "q", "password": redis_password},
        {
            "backend": "kafka",
            "bootstrapServers": "127.0.0.1:1",
            "consumerGroup": "g",
            "sasl": "plaintext",
            "username": "u",
            "password": kafka_password,
            "topic": "t",
        },
        {
            "backend": "rabbitmq",
            "host": f"amqp://u:{amqp_password}@127.0.0.1:1/%2F",
            "queueName": "q",
        },
        {
            "backend": "rabbitmq",
            "host": f"https://u:{http_password}@127.0.0.1:1/vh",
            "queueName": "q",
        },
        # invalid metadata carrying secrets
        {
            "backend": "redis",
            "address": f"redis://:{redis_password}@h:1",
            "listName": "q",
            "listLength": "x",
            "password": redis_password,
        },
        {
            "backend": "kafka",
            "bootstrapServers": f"u:{kafka_password}@h:1",
            "consumerGroup": "g",
            "sasl": "scram_sha512",
            "password": kafka_password,
            "keyPassword": key_password,
            "cert": "PEM",
        },
        {
            "backend": "rabbitmq",
            "host": f"amqp://u:{amqp_password}@h:1/v",
            "queueName": "q",
            "mode": "MessageRate",
            "value": "1",
            "keyPassword": key_password,
        },
        {"backend": "rabbitmq", "host": f"ftp://u:{amqp_password}@h:1/v", "queueName": "q"},
    ]
    running = await serve(backend_timeout=2.0, cache_ttl=0.0)
    details = []
    for metadata in cases:
        for call in (
            running.stub.GetMetricSpec(ref(metadata)),
            running.stub.GetMetrics(
                pb.GetMetricsRequest(scaledObjectRef=ref(metadata), metricName="")
            ),
            running.stub.IsActive(ref(metadata)),
        ):
            try:
                await call
            except grpc.aio.AioRpcError as err:
                details.append(f"{err.code().name}: {err.details()}")
    codes = {d.split(":", 1)[0] for d in details}
    assert {"UNAUTHENTICATED", "UNAVAILABLE", "INVALID_ARGUMENT"} <= codes, codes
    objects = [
        running.app.engine,
        running.app.engine.pool,
        running.app.settings,
        running.app.metrics,
    ]
    for metadata in cases:
        try:
            objects.append(running.app.engine.parse(metadata).trigger)
        except Exception as err:  # noqa: BLE001 - the error itself is checked too
            objects.append(err)
    objects += [client for client, _ in running.app.engine.pool._clients.values()]
    outputs = {
        "gRPC error messages": "\n".join(details),
        "logs (text and JSON)": captured_logs(),
        "metrics": await scrape(running.app.metrics_port),
        "repr": "\n".join(repr(o) for o in objects) + "\n".join(str(o) for o in objects),
    }
    for where, output in outputs.items():
        for secret in SECRETS:
            assert secret not in output, f"{secret} leaked into {where}"
    assert outputs["logs (text and JSON)"], "nothing was logged: the check would prove nothing"
