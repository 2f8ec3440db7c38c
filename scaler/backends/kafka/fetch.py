"""The record waiting at each searched offset, for ``mode: LagSeconds``: Fetch requests.

kafka-python 3.0.12's admin client has no record fetch. Of the two ways around it, the read
sends raw ``FetchRequest`` s through the admin client's own connection manager
(:func:`~scaler.backends.kafka.workarounds.send_each`): the connections, SASL login and TLS of the
client that just read the offsets, no second bootstrap, and every request counted where the
others are. A ``KafkaConsumer`` per connection (short-lived or pooled) would log in and hold a
second set of connections and an IO thread per connection identity, and its fetcher streams what
it is assigned (assign, seek, poll, up to 1 MiB per partition), with no say on which partitions
go in which request or how many bytes each may return.

A search starts at an offset (the committed one, or the log start) and sends, per round, one
Fetch per partition leader holding every partition still searched (a partition searched from two
offsets, by two groups, goes in two requests). A fetch asks for the least the protocol allows: no
wait, no minimum, ``_FIRST_BYTES`` per partition. The broker answers in whole record batches,
starting with the one that holds the offset, or nothing for a partition whose batch exceeds its
limit (but the first partition of a response), so an empty answer below the log end asks again
with a limit ``_GROWTH`` times larger. :func:`~scaler.backends.kafka.records.scan` reads the
bytes (markers skipped, compacted offsets passed over); a search goes on from where they end when
they hold no data record. ``OFFSET_OUT_OF_RANGE`` below the log start (retention or
delete-records moved it past the offset) looks the log start up (one ListOffsets) and searches
from there, saying so; reaching the log end without a data record means none waits.

Records are read as the lag counts them (``read_uncommitted``, up to the high watermark). A
search that cannot end (a record without a timestamp, a codec kafka-python lacks, a batch beyond
``_LARGEST_BYTES``, no answer within ``_ROUNDS`` rounds) is an error naming the partition, the
offset and what is missing.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Final

import kafka.errors as kerr
from kafka import TopicPartition
from kafka.admin import KafkaAdminClient
from kafka.protocol.consumer import FetchRequest
from kafka.protocol.consumer.offsets import OffsetSpec

from scaler.backends.base import Measurement
from scaler.backends.kafka import records
from scaler.backends.kafka.records import Oldest, Target, scan
from scaler.backends.kafka.trigger import ConsumerLag
from scaler.backends.kafka.workarounds import send_each
from scaler.errors import BackendError, UnsupportedResource

_FIRST_BYTES: Final = 4096  # a batch of small records; 1,000 partitions ask 4 MiB at most
_GROWTH: Final = 8  # 4 KiB, 32 KiB (a default producer batch is 16 KiB), 256 KiB, 2 MiB, 16 MiB
_LARGEST_BYTES: Final = 16 * 1024 * 1024  # beyond any default max.message.bytes (1 MiB)
_ROUNDS: Final = 8  # the growth, a restart at the log start, and a few marker batches
_OFFSET_OUT_OF_RANGE: Final = 1
# Fetch v4 is the oldest a Kafka 4 broker answers; v13 names topics by id, and kafka-python's
# consumer stops at v12 too
_FETCH_VERSIONS: Final = {"min_version": 4, "max_version": 12}
_TOPIC = FetchRequest.FetchTopic
_PARTITION = FetchRequest.FetchTopic.FetchPartition


def with_ages(
    admin: KafkaAdminClient,
    measured: Mapping[ConsumerLag, Measurement],
    leaders: Mapping[TopicPartition, int],
    label: str,
) -> tuple[dict[ConsumerLag, Measurement | BackendError], int]:
    """The measured offsets, with ages for the resources that want them (one search per
    partition and offset, whatever the number of resources); and the broker requests it cost."""
    searched = {
        target
        for r, m in measured.items()
        if r.with_ages
        for target in records.targets(m.items, r.with_log_start)
    }
    found: dict[Target, Oldest | BackendError] = {}
    cost = 0
    if searched:
        found, cost = oldest_records(admin, sorted(searched), leaders)
    now = time.time()  # the scaler's clock at the read; the timestamps are the broker's facts
    results: dict[ConsumerLag, Measurement | BackendError] = {}
    for r, m in measured.items():
        where = f"kafka {label} group {r.group!r}"
        results[r] = records.with_ages(m, r.with_log_start, found, now, where) if r.with_ages else m
    return results, cost


class _Search:
    """One partition's search from one offset, round after round."""

    def __init__(self, target: Target) -> None:
        self.tp, self.start = target
        self.offset = self.start
        self.size = _FIRST_BYTES
        self.markers = 0
        self.log_start: int | None = None
        self.out_of_range = False
        self.outcome: Oldest | BackendError | None = None

    @property
    def name(self) -> str:
        return f"{self.tp.topic}/{self.tp.partition}"

    def unknown(self, why: str) -> str:
        return f"the age of the oldest unconsumed record of {self.name} is unknown: {why}"

    def restart(self, log_start: int) -> None:
        """After OFFSET_OUT_OF_RANGE: from the log start, if it moved past the offset."""
        self.out_of_range = False
        if log_start <= self.offset:
            self.outcome = BackendError(
                self.unknown(
                    f"offset {self.offset} is out of range but not below the log start "
                    f"({log_start}): the log was truncated after its offsets were read"
                )
            )
            return
        self.log_start = self.offset = log_start

    def take(self, answer: Any) -> None:
        """One partition of a Fetch response."""
        code = int(answer.error_code)
        if code == _OFFSET_OUT_OF_RANGE and self.log_start is None:
            self.out_of_range = True
            return
        if code:
            raise kerr.for_code(code)(f"fetching {self.name} at offset {self.offset}")
        try:
            found = scan(bytes(answer.records or b""), self.offset)
        except kerr.UnsupportedCodecError as err:
            self.outcome = UnsupportedResource(
                self.unknown(f"the record batch at offset {self.offset} cannot be read ({err})")
            )
            return
        self.markers += found.markers
        end = int(answer.high_watermark)
        if found.record is not None:
            self._found(*found.record)
        elif found.complete:
            self.offset = found.next_offset
            if self.offset >= end:
                self.outcome = self._nothing(end)
        elif self.offset >= end:
            self.outcome = self._nothing(end)
        elif self.size >= _LARGEST_BYTES:
            self.outcome = BackendError(
                self.unknown(
                    f"the broker returned no record at offset {self.offset} though the log ends "
                    f"at {end}: the record batch there exceeds {_LARGEST_BYTES} bytes"
                )
            )
        else:  # the batch at the offset is larger than the limit
            self.size = min(self.size * _GROWTH, _LARGEST_BYTES)

    def _found(self, offset: int, timestamp: int | None, appended: bool) -> None:
        if timestamp is None or timestamp < 0:
            self.outcome = UnsupportedResource(
                self.unknown(
                    f"record {offset} has no timestamp (message format v0, or a producer that "
                    "sent none)"
                )
            )
            return
        self.outcome = Oldest(offset, timestamp, appended, self.log_start, self.markers)

    def _nothing(self, end: int) -> Oldest:
        return Oldest(end, None, log_start=self.log_start, markers=self.markers)


def oldest_records(
    admin: KafkaAdminClient, targets: Iterable[Target], leaders: Mapping[TopicPartition, int]
) -> tuple[dict[Target, Oldest | BackendError], int]:
    """Per target, what waits at its offset (or the error naming what is unknown); and the
    broker requests it cost.

    :param leaders: the leader's node id of each partition (from the read's Metadata)
    :raises kafka.errors.KafkaError: a request failed, or a partition's answer is an error
    """
    searches = {target: _Search(target) for target in targets}
    requests = 0
    for _ in range(_ROUNDS):
        pending = [s for s in searches.values() if s.outcome is None]
        restart = [s for s in pending if s.out_of_range]
        if restart:
            starts = admin.list_partition_offsets({s.tp: OffsetSpec.EARLIEST for s in restart})
            requests += 2  # kafka-python looks the leaders up (Metadata) before ListOffsets
            for s in restart:
                s.restart(int(starts[s.tp].offset))
            pending = [s for s in pending if s.outcome is None]
        if not pending:
            break
        fetches = _fetches(pending, leaders)
        responses = send_each(admin, [(node, request) for node, request, _ in fetches])
        requests += len(fetches)
        for (_, _, searched), response in zip(fetches, responses, strict=True):
            _answer(response, searched)
    outcomes: dict[Target, Oldest | BackendError] = {}
    for target, s in searches.items():
        outcomes[target] = s.outcome or BackendError(
            s.unknown(f"no data record found from offset {s.start} in {_ROUNDS} fetches")
        )
    return outcomes, requests


def _fetches(
    searches: Sequence[_Search], leaders: Mapping[TopicPartition, int]
) -> list[tuple[int, Any, dict[TopicPartition, _Search]]]:
    """(leader, FetchRequest, the searches it answers): one per leader, and one more for each
    further offset a partition is searched from."""
    layers: dict[int, list[dict[TopicPartition, _Search]]] = {}
    for s in searches:
        node = leaders.get(s.tp, -1)
        if node < 0:
            raise kerr.LeaderNotAvailableError(f"no leader for {s.name}")
        of_node = layers.setdefault(node, [])
        layer = next((layer for layer in of_node if s.tp not in layer), None)
        if layer is None:
            layer = {}
            of_node.append(layer)
        layer[s.tp] = s
    return [
        (node, _request(layer.values()), layer)
        for node, of_node in layers.items()
        for layer in of_node
    ]


def _request(searches: Iterable[_Search]) -> Any:
    topics: dict[str, list[Any]] = {}
    for s in searches:
        topics.setdefault(s.tp.topic, []).append(
            _PARTITION(
                partition=s.tp.partition,
                current_leader_epoch=-1,
                fetch_offset=s.offset,
                last_fetched_epoch=-1,
                log_start_offset=-1,
                partition_max_bytes=s.size,
            )
        )
    return FetchRequest(
        replica_id=-1,  # a consumer, not a follower
        max_wait_ms=0,
        min_bytes=0,
        # the partition limits bound the answer; the broker bounds it by its fetch.max.bytes
        max_bytes=2**31 - 1,
        isolation_level=0,  # read_uncommitted: up to the high watermark, as the lag counts
        session_id=0,  # no fetch session: one full request
        session_epoch=-1,
        topics=[_TOPIC(topic=topic, partitions=parts) for topic, parts in topics.items()],
        forgotten_topics_data=[],
        rack_id="",
        **_FETCH_VERSIONS,
    )


def _answer(response: Any, searched: Mapping[TopicPartition, _Search]) -> None:
    """Hand each partition of a Fetch response to its search; one left out stays pending."""
    if code := int(getattr(response, "error_code", 0)):  # v7+: the whole request failed
        raise kerr.for_code(code)("fetching records")
    for topic in response.responses:
        for answer in topic.partitions:
            s = searched.get(TopicPartition(topic.topic, answer.partition_index))
            if s is not None:
                s.take(answer)
