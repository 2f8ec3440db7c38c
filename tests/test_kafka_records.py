"""``mode: LagSeconds`` reads: record bytes, the ages they give, and the Fetch rounds, against
record batches built here and a log that answers Fetch as the broker does (whole batches from
the one holding the offset, nothing when that batch exceeds the partition's limit). The real
broker proves the same reads in tests/integration/test_kafka_ages.py."""

from __future__ import annotations

import asyncio
import struct
from collections.abc import Callable
from types import SimpleNamespace
from typing import Any

import kafka.codec
import kafka.errors as kerr
import pytest
from kafka import TopicPartition
from kafka.record.default_records import DefaultRecordBatchBuilder

from scaler.backends.base import OLDEST_AGE, Measurement
from scaler.backends.kafka import fetch
from scaler.backends.kafka.records import Oldest, scan, targets, with_ages
from scaler.errors import BackendError, UnsupportedResource

NOW = 1_800_000_000.0  # the scaler's clock, seconds
T0 = int(NOW * 1000)  # milliseconds
TP = TopicPartition("orders", 0)
_ATTRIBUTES = 21  # byte offset of a v2 batch's attributes
_CONTROL, _LOG_APPEND_TIME, _LZ4 = 0x20, 0x08, 0x03


def batch(base: int, *records: tuple[int, int], attributes: int = 0, value: bytes = b"v") -> bytes:
    """A v2 record batch at ``base`` holding (offset, timestamp ms) records (gaps allowed, as
    compaction leaves them); ``attributes`` as the broker sets them."""
    builder = DefaultRecordBatchBuilder(
        magic=2,
        compression_type=0,
        is_transactional=False,
        producer_id=-1,
        producer_epoch=-1,
        base_sequence=-1,
        batch_size=1 << 24,
    )
    for offset, timestamp in records:
        builder.append(offset - base, timestamp=timestamp, key=None, value=value, headers=[])
    data = bytearray(builder.build())
    struct.pack_into(">q", data, 0, base)
    (flags,) = struct.unpack_from(">h", data, _ATTRIBUTES)
    struct.pack_into(">h", data, _ATTRIBUTES, flags | attributes)
    return bytes(data)


def after(raw: bytes) -> int:
    """The offset after a batch: its base offset plus its last offset delta, plus one."""
    (base,) = struct.unpack_from(">q", raw, 0)
    (last_delta,) = struct.unpack_from(">i", raw, _ATTRIBUTES + 2)
    return int(base) + int(last_delta) + 1


def marker(offset: int) -> bytes:
    return batch(offset, (offset, T0), attributes=_CONTROL)


# -- record bytes -----------------------------------------------------------------------------


def test_the_record_at_the_offset_not_the_first_of_its_batch() -> None:
    found = scan(batch(10, (10, T0 - 9000), (11, T0 - 8000), (12, T0 - 7000)), 11)
    assert found.record == (11, T0 - 8000, False)


def test_transaction_markers_are_skipped_and_counted() -> None:
    found = scan(marker(4) + marker(5) + batch(6, (6, T0 - 1000)), 4)
    assert (found.record, found.markers) == ((6, T0 - 1000, False), 2)


def test_compacted_offsets_are_passed_over() -> None:
    found = scan(batch(0, (0, T0), (3, T0 - 50)) + batch(7, (9, T0 - 20)), 1)
    assert found.record == (3, T0 - 50, False)
    assert scan(batch(0, (0, T0)) + batch(7, (9, T0 - 20)), 1).record == (9, T0 - 20, False)


def test_bytes_without_a_data_record_say_where_to_go_on() -> None:
    found = scan(marker(4) + marker(5), 4)
    assert (found.record, found.next_offset, found.markers, found.complete) == (None, 6, 2, True)


def test_a_batch_cut_short_by_the_limit_is_not_read() -> None:
    whole = batch(0, (0, T0), (1, T0))
    assert not scan(whole[:-3], 0).complete
    assert not scan(b"", 0).complete


def test_log_append_time_is_the_brokers_timestamp() -> None:
    found = scan(batch(0, (0, T0 - 90_000), attributes=_LOG_APPEND_TIME), 0)
    assert found.record is not None
    assert found.record[2] is True  # kafka-python gives each record the batch's max timestamp


def test_a_codec_kafka_python_lacks_is_an_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(kafka.codec, "has_lz4", lambda: False)
    with pytest.raises(kerr.UnsupportedCodecError):
        scan(batch(0, (0, T0), attributes=_LZ4), 0)


# -- the ages of a measurement ----------------------------------------------------------------


def read(*rows: tuple[int, int, int]) -> Measurement:
    """(committed, log_end, log_start) per partition of topic orders, numbered from 0."""
    items: tuple[dict[str, float | str], ...] = tuple(
        {"topic": "orders", "partition": i, "committed": c, "log_end": e, "log_start": s}
        for i, (c, e, s) in enumerate(rows)
    )
    return Measurement(0.0, {"partitions": len(items)}, items)


def test_only_partitions_with_lag_are_searched() -> None:
    m = read((3, 9, -1), (9, 9, -1), (-1, 5, 2), (-1, 5, 5))
    assert list(targets(m.items, with_log_start=False)) == [(TP, 3)]
    assert list(targets(m.items, with_log_start=True)) == [
        (TP, 3),
        (TopicPartition("orders", 2), 2),
    ]


def test_ages_per_partition_and_the_oldest() -> None:
    m = read((3, 9, -1), (9, 9, -1), (0, 4, -1))
    found: dict[Any, Oldest | BackendError] = {
        (TP, 3): Oldest(3, T0 - 90_000),
        (TopicPartition("orders", 2), 0): Oldest(0, T0 - 30_000, log_append_time=True),
    }
    aged = with_ages(m, False, found, NOW, "kafka k1 group 'g'")
    assert isinstance(aged, Measurement)
    assert [i["age_seconds"] for i in aged.items] == [90.0, 0.0, 30.0]
    assert [i.get("timestamp_type") for i in aged.items] == ["CreateTime", None, "LogAppendTime"]
    assert aged.items[0]["record_offset"] == 3
    assert aged.facts[OLDEST_AGE] == 90.0
    assert aged.facts["oldest_partition"] == "orders/0"
    assert aged.facts["partitions"] == 3


def test_what_was_found_on_the_way_is_said() -> None:
    m = read((3, 20, -1))
    cases = {
        Oldest(12, T0 - 5000, log_start=10): "offsets 3 to 9 are gone",
        Oldest(6, T0 - 5000, markers=2): "2 transaction marker(s) skipped",
        Oldest(8, T0 - 5000, markers=2): "3 offset(s) before 8 hold no record (compacted)",
        Oldest(20, None, markers=17): "no data record from offset 3 to the log end (20)",
    }
    for oldest, note in cases.items():
        aged = with_ages(m, False, {(TP, 3): oldest}, NOW, "w")
        assert isinstance(aged, Measurement)
        assert note in str(aged.items[0]["age_note"]), aged.items[0]
        assert aged.items[0]["age_seconds"] == (0.0 if oldest.timestamp_ms is None else 5.0)


def test_a_timestamp_in_the_future_counts_zero_and_is_reported() -> None:
    aged = with_ages(read((0, 1, -1)), False, {(TP, 0): Oldest(0, T0 + 60_000)}, NOW, "w")
    assert isinstance(aged, Measurement)
    item = aged.items[0]
    assert (item["age_seconds"], item["future_seconds"]) == (0.0, 60.0)
    assert "(CreateTime, the producer's clock) is 60.000 s ahead" in str(item["age_note"])
    assert aged.facts[OLDEST_AGE] == 0.0


def test_uncommitted_partitions_say_how_the_reset_policy_reads_them() -> None:
    latest = with_ages(read((-1, 5, -1)), False, {}, NOW, "w")
    assert isinstance(latest, Measurement)
    assert latest.items[0]["age_seconds"] == 0.0
    assert "latest a new consumer starts at the log end" in str(latest.items[0]["age_note"])
    found: dict[Any, Oldest | BackendError] = {(TP, 2): Oldest(2, T0 - 7000)}
    earliest = with_ages(read((-1, 5, 2)), True, found, NOW, "w")
    assert isinstance(earliest, Measurement)
    assert earliest.items[0]["age_seconds"] == 7.0
    assert "earliest a new consumer starts at the log start (2)" in str(
        earliest.items[0]["age_note"]
    )


def test_a_partition_whose_age_is_unknown_fails_its_resource_naming_it() -> None:
    unknown = UnsupportedResource("the age of the oldest unconsumed record of orders/0 is unknown")
    failed = with_ages(read((3, 9, -1)), False, {(TP, 3): unknown}, NOW, "kafka k1 group 'g'")
    assert isinstance(failed, UnsupportedResource)
    assert str(failed) == (
        "kafka k1 group 'g': the age of the oldest unconsumed record of orders/0 is unknown"
    )


# -- the Fetch rounds -------------------------------------------------------------------------


class Log:
    """Partitions' record batches, answering Fetch and ListOffsets as the broker does."""

    def __init__(self, batches: dict[TopicPartition, list[bytes]], starts: dict[Any, int]) -> None:
        self.batches = batches
        self.starts = starts
        self.sent: list[tuple[int, Any]] = []

    def answer(self, request: Any) -> Any:
        topics = []
        for topic in request.topics:
            parts = []
            for p in topic.partitions:
                tp = TopicPartition(topic.topic, p.partition)
                parts.append(self._partition(tp, p.fetch_offset, p.partition_max_bytes))
            topics.append(SimpleNamespace(topic=topic.topic, partitions=parts))
        return SimpleNamespace(error_code=0, responses=topics)

    def _partition(self, tp: TopicPartition, offset: int, limit: int) -> Any:
        log = self.batches[tp]
        end = after(log[-1]) if log else 0
        if offset < self.starts.get(tp, 0):
            return SimpleNamespace(
                partition_index=tp.partition, error_code=1, high_watermark=-1, records=b""
            )
        data = b""
        for raw in log:
            if after(raw) <= offset:
                continue  # wholly before the offset
            if len(data) + len(raw) > limit:
                break
            data += raw
        return SimpleNamespace(
            partition_index=tp.partition, error_code=0, high_watermark=end, records=data
        )

    def admin(self) -> Any:
        async def send(request: Any, node_id: int) -> Any:
            self.sent.append((node_id, request))
            return self.answer(request)

        def run(together: Callable[[], Any]) -> Any:
            return asyncio.run(together())

        def list_partition_offsets(specs: dict[TopicPartition, Any]) -> dict[TopicPartition, Any]:
            return {tp: SimpleNamespace(offset=self.starts[tp]) for tp in specs}

        return SimpleNamespace(
            _manager=SimpleNamespace(send=send, run=run),
            list_partition_offsets=list_partition_offsets,
        )


def test_one_fetch_per_leader_and_one_more_per_extra_offset_of_a_partition() -> None:
    other = TopicPartition("orders", 1)
    log = Log({TP: [batch(0, (0, T0 - 9000), (1, T0 - 8000))], other: [batch(0, (0, T0))]}, {})
    found, requests = fetch.oldest_records(
        log.admin(), [(TP, 0), (TP, 1), (other, 0)], {TP: 1, other: 2}
    )
    assert requests == 3  # node 1 twice (orders/0 from two offsets), node 2 once
    assert sorted(node for node, _ in log.sent) == [1, 1, 2]
    assert found[(TP, 0)] == Oldest(0, T0 - 9000)
    assert found[(TP, 1)] == Oldest(1, T0 - 8000)
    request = log.sent[0][1]
    assert (request.max_wait_ms, request.min_bytes, request.isolation_level) == (0, 0, 0)


def test_a_batch_beyond_the_limit_is_asked_again_with_a_larger_one() -> None:
    big = batch(0, (0, T0 - 4000), value=b"x" * 10_000)  # over the first 4 KiB
    log = Log({TP: [big]}, {})
    found, requests = fetch.oldest_records(log.admin(), [(TP, 0)], {TP: 1})
    assert found[(TP, 0)] == Oldest(0, T0 - 4000)
    assert requests == 2
    assert [r.topics[0].partitions[0].partition_max_bytes for _, r in log.sent] == [4096, 32768]


def test_gone_records_restart_at_the_log_start() -> None:
    log = Log({TP: [batch(10, (10, T0 - 3000))]}, {TP: 10})
    found, requests = fetch.oldest_records(log.admin(), [(TP, 4)], {TP: 1})
    assert found[(TP, 4)] == Oldest(10, T0 - 3000, log_start=10)
    assert requests == 1 + 2 + 1  # Fetch, Metadata + ListOffsets, Fetch


def test_markers_up_to_the_log_end_mean_nothing_waits() -> None:
    log = Log({TP: [marker(5), marker(6)]}, {})
    found, _ = fetch.oldest_records(log.admin(), [(TP, 5)], {TP: 1})
    assert found[(TP, 5)] == Oldest(7, None, markers=2)


def test_a_record_without_a_timestamp_is_an_error_naming_it() -> None:
    log = Log({TP: [batch(0, (0, -1))]}, {})
    found, _ = fetch.oldest_records(log.admin(), [(TP, 0)], {TP: 1})
    outcome = found[(TP, 0)]
    assert isinstance(outcome, UnsupportedResource)
    assert "orders/0 is unknown: record 0 has no timestamp" in str(outcome)


def test_a_search_that_cannot_end_is_an_error_never_zero() -> None:
    # every round finds only markers: the search stops after its rounds and says so
    log = Log({TP: [marker(i) for i in range(1000)] + [batch(1000, (1000, T0))]}, {})
    found, requests = fetch.oldest_records(log.admin(), [(TP, 0)], {TP: 1})
    outcome = found[(TP, 0)]
    assert isinstance(outcome, BackendError)
    assert "orders/0 is unknown: no data record found from offset 0 in 8 fetches" in str(outcome)
    assert requests == 8


def test_a_partition_error_fails_the_read() -> None:
    log = Log({TP: [batch(0, (0, T0))]}, {})
    admin = log.admin()
    admin._manager.send = _failing(6)  # NOT_LEADER_OR_FOLLOWER
    with pytest.raises(kerr.NotLeaderForPartitionError):
        fetch.oldest_records(admin, [(TP, 0)], {TP: 1})
    with pytest.raises(kerr.LeaderNotAvailableError):
        fetch.oldest_records(log.admin(), [(TP, 0)], {TP: -1})


def _failing(code: int) -> Callable[..., Any]:
    async def send(request: Any, node_id: int) -> Any:
        answer = SimpleNamespace(partition_index=0, error_code=code, high_watermark=-1, records=b"")
        return SimpleNamespace(
            error_code=0, responses=[SimpleNamespace(topic="orders", partitions=[answer])]
        )

    return send
