"""The Kafka test broker is real and the Kafka fixtures work: topics, records, group offsets,
SASL logins (and refusals), and stopping and starting the shared broker."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from kafka import KafkaAdminClient

from tests.integration.kafka_fixtures import (
    GroupFactory,
    KafkaBrokerControl,
    KafkaSasl,
    SaslAuthenticationFailed,
    TopicFactory,
    commit,
    committed,
    end_offsets,
    produce,
    sasl_authenticate,
)

pytestmark = pytest.mark.integration

SASL_AUTHENTICATION_FAILED = 58  # Kafka's error code for a rejected SASL login


def test_topic_records_and_group_offsets(
    kafka_bootstrap: str,
    kafka_admin: Any,
    kafka_topic: TopicFactory,
    kafka_group: GroupFactory,
) -> None:
    topic = kafka_topic(partitions=3, prefix="kqs-infra")
    assert topic.startswith("kqs-infra-")
    described: list[dict[str, Any]] = kafka_admin.describe_topics([topic])
    assert len(described[0]["partitions"]) == 3
    assert end_offsets(kafka_bootstrap, topic) == {(topic, 0): 0, (topic, 1): 0, (topic, 2): 0}

    produce(kafka_bootstrap, topic, 0, 5)
    produce(kafka_bootstrap, topic, 1, 2)
    assert end_offsets(kafka_bootstrap, [topic]) == {(topic, 0): 5, (topic, 1): 2, (topic, 2): 0}

    group, other = kafka_group(), kafka_group()
    assert group != other
    assert committed(kafka_bootstrap, group) == {}
    commit(kafka_bootstrap, group, {(topic, 0): 3, (topic, 1): 2})
    assert committed(kafka_bootstrap, group) == {(topic, 0): 3, (topic, 1): 2}
    commit(kafka_bootstrap, group, {(topic, 0): 5})
    assert committed(kafka_bootstrap, group) == {(topic, 0): 5, (topic, 1): 2}
    assert committed(kafka_bootstrap, group, [(topic, 1), (topic, 2)]) == {(topic, 1): 2}
    assert committed(kafka_bootstrap, other) == {}
    listed: list[dict[str, Any]] = kafka_admin.list_groups()
    assert group in {entry["group_id"] for entry in listed}


@pytest.mark.parametrize("mechanism", ["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"])
def test_sasl_login_with_kafka_python(kafka_sasl: KafkaSasl, mechanism: str) -> None:
    admin = KafkaAdminClient(
        client_id="kqs-tests", bootstrap_timeout_ms=15_000, **kafka_sasl.client_config(mechanism)
    )
    try:
        topics: list[str] = admin.list_topics()
        assert isinstance(topics, list)
    finally:
        admin.close()


def test_sasl_passwords_are_checked(kafka_sasl: KafkaSasl) -> None:
    sasl_authenticate(
        kafka_sasl.bootstrap, "PLAIN", kafka_sasl.plain_user, kafka_sasl.plain_password
    )
    for mechanism in ("SCRAM-SHA-256", "SCRAM-SHA-512"):
        sasl_authenticate(
            kafka_sasl.bootstrap, mechanism, kafka_sasl.scram_user, kafka_sasl.scram_password
        )
    with pytest.raises(SaslAuthenticationFailed, match="invalid credentials") as wrong_scram:
        sasl_authenticate(kafka_sasl.bootstrap, "SCRAM-SHA-512", kafka_sasl.scram_user, "wrong")
    assert wrong_scram.value.error_code == SASL_AUTHENTICATION_FAILED
    with pytest.raises(SaslAuthenticationFailed) as wrong_plain:
        sasl_authenticate(kafka_sasl.bootstrap, "PLAIN", kafka_sasl.plain_user, "wrong")
    assert wrong_plain.value.error_code == SASL_AUTHENTICATION_FAILED
    with pytest.raises(SaslAuthenticationFailed):  # SCRAM users are not PLAIN users
        sasl_authenticate(
            kafka_sasl.bootstrap, "PLAIN", kafka_sasl.scram_user, kafka_sasl.scram_password
        )


@pytest.mark.timeout(240)
async def test_broker_stops_and_starts_with_its_data(
    kafka_bootstrap: str,
    kafka_topic: TopicFactory,
    kafka_group: GroupFactory,
    kafka_broker_control: KafkaBrokerControl,
) -> None:
    topic, group = kafka_topic(partitions=2), kafka_group()
    await asyncio.to_thread(produce, kafka_bootstrap, topic, 1, 3)
    await asyncio.to_thread(commit, kafka_bootstrap, group, {(topic, 1): 2})

    await kafka_broker_control.stop()
    assert not kafka_broker_control.accepts_connections()
    await kafka_broker_control.start()
    assert kafka_broker_control.accepts_connections()

    ends = await asyncio.to_thread(end_offsets, kafka_bootstrap, topic)
    assert ends == {(topic, 0): 0, (topic, 1): 3}
    assert await asyncio.to_thread(committed, kafka_bootstrap, group) == {(topic, 1): 2}
