"""For ``mode: LagSeconds``: what record bytes hold, and the ages they give a measurement.

:func:`scan` finds, in the record batches of one Fetch answer, the first data record at or after
an offset: a transaction marker (a control batch) is skipped and counted, offsets without a
record (compacted away) are passed over, and a batch cut short by the fetch limit does not count.
:mod:`scaler.backends.kafka.fetch` sends the requests and makes an :class:`Oldest` of it.

:func:`with_ages` then gives every partition of a measurement its ``age_seconds``: the scaler's
clock at the read minus the record's timestamp (the broker's fact: the broker's clock with
``LogAppendTime``, the producer's with ``CreateTime``), 0 without lag, and what was found on the
way (``age_note``). A timestamp in the future counts 0 and is reported (``future_seconds``). The
oldest age is the measurement's :data:`~scaler.backends.base.OLDEST_AGE`. A partition whose
search failed fails its resource, naming what is unknown.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Final

from kafka import TopicPartition
from kafka.record import MemoryRecords

from scaler.backends.base import OLDEST_AGE, Measurement
from scaler.errors import BackendError

#: a partition and the offset its waiting record is searched from
Target = tuple[TopicPartition, int]
_LOG_APPEND_TIME: Final = 1  # a record's timestamp type; CreateTime is 0


@dataclass(frozen=True, slots=True)
class Scan:
    """What the record bytes of one fetch hold from an offset on.

    :param record: (offset, timestamp, whether the broker set it) of the first data record
    :param next_offset: where to search on when there is none
    :param markers: transaction markers skipped
    :param complete: whether a whole batch came back (not: the batch exceeds the limit)
    """

    record: tuple[int, int | None, bool] | None
    next_offset: int
    markers: int
    complete: bool


@dataclass(frozen=True, slots=True)
class Oldest:
    """What a search found: the first data record from its offset on, or that none waits.

    :param offset: the record's offset; without a record, where the log ends
    :param timestamp_ms: the record's timestamp; None when no data record waits
    :param log_append_time: whether the broker set the timestamp (else the producer did)
    :param log_start: where the log starts, when the records from the offset were gone
    :param markers: transaction markers skipped on the way
    """

    offset: int
    timestamp_ms: int | None
    log_append_time: bool = False
    log_start: int | None = None
    markers: int = 0


def scan(data: bytes, offset: int) -> Scan:
    """The first data record at or after ``offset`` in a fetch's record bytes.

    :raises kafka.errors.UnsupportedCodecError: a batch needs a codec kafka-python lacks here
    """
    batches = MemoryRecords(data)
    position, markers, complete = offset, 0, False
    while (batch := batches.next_batch()) is not None:  # a trailing partial batch is not one
        complete = True
        last = position - 1
        # message formats v0 and v1 have no control batches (nor next_offset)
        if getattr(batch, "is_control_batch", False):
            markers += 1
        else:
            for record in batch:
                if record.offset >= position:
                    appended = record.timestamp_type == _LOG_APPEND_TIME
                    found = (record.offset, record.timestamp, appended)
                    return Scan(found, position, markers, True)
                last = record.offset
        # a compacted v2 batch keeps its last offset even when its last record is gone
        position = max(position, last + 1, getattr(batch, "next_offset", 0))
    return Scan(None, position, markers, complete)


def targets(items: tuple[Mapping[str, float | str], ...], with_log_start: bool) -> Iterator[Target]:
    """Where each partition with lag has its oldest unconsumed record searched: the committed
    offset, or the log start for a partition without a commit under ``earliest``."""
    for item in items:
        tp = TopicPartition(str(item["topic"]), int(item["partition"]))
        committed, end = int(item["committed"]), int(item["log_end"])
        if committed >= 0 and end > committed:
            yield tp, committed
        elif committed < 0 and with_log_start and end > int(item["log_start"]):
            yield tp, int(item["log_start"])


def with_ages(
    measurement: Measurement,
    with_log_start: bool,
    found: Mapping[Target, Oldest | BackendError],
    now: float,
    where: str,
) -> Measurement | BackendError:
    """The measurement with each partition's age, and the oldest; or the first partition's error.

    :param found: what each search of :func:`targets` found
    :param now: the scaler's clock at the read, in seconds
    :param where: names the connection and group in an error
    """
    searched = dict(targets(measurement.items, with_log_start))
    items: list[Mapping[str, float | str]] = []
    oldest, oldest_name = 0.0, ""
    for item in measurement.items:
        tp = TopicPartition(str(item["topic"]), int(item["partition"]))
        uncommitted = int(item["committed"]) < 0
        start = searched.get(tp)
        facts: dict[str, float | str] = {"age_seconds": 0.0}
        if start is not None:
            outcome = found[(tp, start)]
            if isinstance(outcome, BackendError):
                return type(outcome)(f"{where}: {outcome}")
            facts = _facts(start, outcome, now, uncommitted)
        elif uncommitted and not with_log_start:
            facts["age_note"] = (
                "no commit: with offsetResetPolicy latest a new consumer starts at the log end, "
                "so no record waits for it"
            )
        items.append({**item, **facts})
        if float(facts["age_seconds"]) > oldest:
            oldest, oldest_name = float(facts["age_seconds"]), f"{tp.topic}/{tp.partition}"
    extra: dict[str, float | str] = {OLDEST_AGE: oldest}
    if oldest_name:
        extra["oldest_partition"] = oldest_name
    return dataclasses.replace(
        measurement, facts={**measurement.facts, **extra}, items=tuple(items)
    )


def _facts(start: int, oldest: Oldest, now: float, uncommitted: bool) -> dict[str, float | str]:
    """A partition's age and what was found on the way from ``start``."""
    notes: list[str] = []
    if uncommitted:
        notes.append(
            f"no commit: with offsetResetPolicy earliest a new consumer starts at the log start "
            f"({start})"
        )
    searched_from = start
    if oldest.log_start is not None:
        notes.append(
            f"offsets {start} to {oldest.log_start - 1} are gone (retention or delete-records "
            f"moved the log start to {oldest.log_start}): the first record that exists is used"
        )
        searched_from = oldest.log_start
    if oldest.markers:
        notes.append(f"{oldest.markers} transaction marker(s) skipped")
    facts: dict[str, float | str] = {"age_seconds": 0.0}
    if oldest.timestamp_ms is None:
        notes.append(
            f"no data record from offset {searched_from} to the log end ({oldest.offset}): "
            "none waits"
        )
    else:
        if (gap := oldest.offset - searched_from - oldest.markers) > 0:
            notes.append(f"{gap} offset(s) before {oldest.offset} hold no record (compacted)")
        kind = "LogAppendTime" if oldest.log_append_time else "CreateTime"
        age = now - oldest.timestamp_ms / 1000
        facts.update(
            record_offset=oldest.offset,
            timestamp_ms=oldest.timestamp_ms,
            timestamp_type=kind,
            age_seconds=max(age, 0.0),
        )
        if age < 0:
            facts["future_seconds"] = -age
            clock = "the broker's" if oldest.log_append_time else "the producer's"
            notes.append(
                f"the timestamp ({kind}, {clock} clock) is {-age:.3f} s ahead of the scaler's "
                "clock: counted 0"
            )
    if notes:
        facts["age_note"] = "; ".join(notes)
    return facts
