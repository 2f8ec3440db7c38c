"""``simulate``'s ScaledJob model: KEDA's ScaledJob loop on the seed's Kafka ScaledJob fixture,
scripted queue lengths in, jobs created per poll out, checked against KEDA's formulas as
:mod:`tests.keda_jobs` writes them out (not the model's own functions)."""

from __future__ import annotations

import asyncio
import copy
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
import yaml

from scaler.errors import ManifestError
from scaler.tools.manifest import load_manifest
from scaler.tools.simulate.job_driver import drive_jobs
from scaler.tools.simulate.job_spec import JobSpec, load_job
from scaler.tools.simulate.jobs import JobModel, JobReading, JobRow, SpecReading
from scaler.tools.simulate.spec import choose
from tests.keda_jobs import Jobs, Strategy, jobs_to_create
from tests.scaled_objects import manifest, scaled_object

FIXTURE = Path(__file__).parent / "fixtures" / "kafka-events-scaledjob.yaml"
POLL = 30
#: the lag of group events-processor on topic events at each poll (0, 30, ... 300 s)
LAGS = [0, 250, 1250, 1250, 600, 600, 0, 0, 5000, 5000, 80]
#: a job is pending 40 s (still pending at the next poll), then runs 45 s
PENDING, DURATION = 40.0, 45.0
DEFAULT = Strategy()


def fixture_document() -> dict[str, Any]:
    document = yaml.safe_load(FIXTURE.read_text(encoding="utf-8"))
    assert isinstance(document, dict)
    return document


def job_spec(document: dict[str, Any]) -> JobSpec:
    """What ``simulate`` loads: the manifest read once, the object chosen, its job spec."""
    return load_job(choose(load_manifest(manifest(document))))


def with_strategy(document: dict[str, Any], **strategy: Any) -> dict[str, Any]:
    changed = copy.deepcopy(document)
    changed["spec"]["scalingStrategy"] = strategy
    return changed


def reading(index: int, lag: float, target: float, name: str = "kafka-events") -> JobReading:
    milli = round(lag * 1000)
    return JobReading(index, (SpecReading(name, round(target * 1000), milli, active=lag > 0),))


def run(
    model: JobModel, script: Sequence[Sequence[float]], targets: Sequence[float]
) -> list[JobRow]:
    """Poll the model at 0, 30, ... with one scripted lag per trigger per poll."""
    rows = []
    for number, lags in enumerate(script):
        readings = {i: reading(i, lag, targets[i], f"kafka-t{i}") for i, lag in enumerate(lags)}
        rows.append(model.poll(number * POLL, readings))
    return rows


def expected(
    script: Sequence[Sequence[float]],
    targets: Sequence[float],
    *,
    strategy: Strategy = DEFAULT,
    calculation: str = "max",
    high: int = 10,
    low: int = 0,
    duration: float = DURATION,
    pending: float = PENDING,
) -> list[int]:
    """The jobs KEDA creates at each poll, by tests.keda_jobs."""
    jobs = Jobs(duration, pending)
    created = []
    for number, lags in enumerate(script):
        now = number * POLL
        running, waiting = jobs.counts(now)
        triggers = [(lag, targets[i], lag > 0) for i, lag in enumerate(lags)]
        count = jobs_to_create(
            triggers, running, waiting, low=low, high=high, calculation=calculation,
            strategy=strategy,
        )  # fmt: skip
        jobs.create(now, count)
        created.append(count)
    return created


# -- the fixture -----------------------------------------------------------------------------------


def test_the_fixture_is_the_seeds_kafka_scaled_job_converted_to_external() -> None:
    spec = job_spec(fixture_document())
    assert str(spec.ref) == "ScaledJob/shop/events-processor"
    assert (spec.replicas.min, spec.replicas.max, spec.replicas.calculation) == (0, 10, "max")
    assert (spec.polling_interval, spec.strategy, spec.active_deadline) == (30, "default", 3600)
    [trigger] = spec.triggers
    assert trigger.type == "external"
    assert {k: trigger.metadata[k] for k in ("backend", "topic", "lagThreshold")} == {
        "backend": "kafka",
        "topic": "events",
        "lagThreshold": "100",
    }
    assert spec.notes == (
        "successfulJobsHistoryLimit and failedJobsHistoryLimit ignored: KEDA uses them only to "
        "delete finished jobs, which it does not count as running",
    )


# -- each strategy on the fixture ------------------------------------------------------------------

STRATEGIES = [
    # the jobs created at each poll, worked out by hand from KEDA's formulas (docs/tools.md)
    pytest.param({}, Strategy(), [0, 3, 7, 0, 0, 6, 0, 0, 10, 0, 0], id="default"),
    pytest.param(
        {
            "strategy": "custom",
            "customScalingQueueLengthDeduction": 1,
            "customScalingRunningJobPercentage": "0.5",
        },
        Strategy("custom", 1, 0.5),
        # 90 s: min(10 - 1 - int(10 x 0.5), 10) = 4 more, past maxReplicaCount in all
        [0, 2, 8, 4, 0, 3, 0, 0, 9, 5, 0],
        id="custom",
    ),
    pytest.param(
        {"strategy": "accurate"},
        Strategy("accurate"),
        # 150 s: maxScale 6 + 3 running <= 10: 6 - 3 pending = 3
        [0, 3, 7, 0, 3, 3, 0, 0, 10, 0, 0],
        id="accurate",
    ),
    pytest.param(
        {"strategy": "eager"},
        Strategy("eager"),
        # 60 s: min(10 - 3 - 3 pending, 10) = 4; 120 s: min(10 - 4, 6) = 6
        [0, 3, 4, 0, 6, 0, 0, 0, 10, 0, 0],
        id="eager",
    ),
]


@pytest.mark.parametrize(("strategy", "formulas", "by_hand"), STRATEGIES)
def test_each_strategy_creates_kedas_jobs_per_poll(strategy, formulas, by_hand) -> None:
    document = with_strategy(fixture_document(), **strategy) if strategy else fixture_document()
    spec = job_spec(document)
    assert spec.strategy == formulas.name
    model = JobModel(spec, duration=DURATION, pending=PENDING)
    rows = run(model, [[lag] for lag in LAGS], [100])

    created = [row.created for row in rows]
    assert created == expected([[lag] for lag in LAGS], [100], strategy=formulas)
    assert created == by_hand
    assert [row.queue_length for row in rows] == LAGS
    # maxScale: ceil(lag / lagThreshold), capped at maxReplicaCount 10
    assert [row.max_scale for row in rows] == [0, 3, 10, 10, 6, 6, 0, 0, 10, 10, 1]
    assert [row.active for row in rows] == [lag > 0 for lag in LAGS]


def test_running_and_pending_jobs_are_counted_before_the_poll_creates_more() -> None:
    model = JobModel(job_spec(fixture_document()), duration=DURATION, pending=PENDING)
    rows = run(model, [[lag] for lag in LAGS], [100])
    # default: 3 jobs at 30 s (pending until 70 s, done at 115 s), 7 at 60 s (done at 145 s)
    assert [(r.time, r.running, r.pending) for r in rows[:6]] == [
        (0, 0, 0), (30, 0, 0), (60, 3, 3), (90, 10, 7), (120, 7, 0), (150, 0, 0),
    ]  # fmt: skip
    assert rows[4].reason == (
        "default: maxScale 6 - running 7 = -1: no jobs created; since the last poll 3 succeeded"
    )
    assert (
        rows[5].reason
        == "default: maxScale 6 - running 0 = 6; created 6; since the last poll 7 succeeded"
    )
    assert rows[0].reason == "inactive: no jobs created"
    assert model.occupancy(200)[:4] == [(0.0, 0), (30.0, 3), (60.0, 10), (115.0, 7)]


# -- multipleScalersCalculation --------------------------------------------------------------------

#: trigger 0: the fixture's (lagThreshold 100); trigger 1: a retry topic, lagThreshold 50
TWO = [[0, 0], [250, 0], [1250, 120], [600, 300], [0, 40]]


@pytest.mark.parametrize(
    ("calculation", "by_hand"),
    [
        ("max", [0, 3, 7, 0, 1]),  # the longest queue's maxScale: 10, then 6 (600 > 300)
        ("min", [0, 3, 0, 6, 0]),  # the shortest: 120 / 50 -> 3, then 300 / 50 -> 6
        ("avg", [0, 3, 4, 2, 0]),  # (10 + 2.4) / 2 -> 7, then (6 + 6) / 2 = 6
        ("sum", [0, 3, 7, 3, 0]),  # 10 + 2.4 capped at 10, then 6 + 6 capped at 10
    ],
)
def test_multiple_scalers_calculation_combines_the_triggers(calculation, by_hand) -> None:
    document = with_strategy(fixture_document(), multipleScalersCalculation=calculation)
    retry = copy.deepcopy(document["spec"]["triggers"][0])
    retry["metadata"].update(topic="events-retry", lagThreshold="50")
    document["spec"]["triggers"].append(retry)
    spec = job_spec(document)
    assert spec.replicas.calculation == calculation
    rows = run(JobModel(spec, duration=DURATION), TWO, [100, 50])

    created = [row.created for row in rows]
    assert created == expected(TWO, [100, 50], calculation=calculation, pending=0)
    assert created == by_hand
    assert rows[2].values == {"s0-kafka-t0": 1250.0, "s1-kafka-t1": 120.0}


def test_min_and_max_take_kedas_order_of_the_triggers() -> None:
    def combined(calculation: str, lags: list[float]) -> JobRow:
        document = with_strategy(fixture_document(), multipleScalersCalculation=calculation)
        document["spec"]["triggers"].append(copy.deepcopy(document["spec"]["triggers"][0]))
        model = JobModel(job_spec(document), duration=DURATION)
        readings = {i: JobReading(i, (SpecReading("kafka-events", 100_000, round(lag * 1000), True),))
                    for i, lag in enumerate(lags)}  # fmt: skip
        return model.poll(0, readings)

    # IsScaledJobActive's min replaces a queue of 0 taken first, and takes a 0 that comes later
    assert combined("min", [0, 500]).queue_length == 500
    assert combined("min", [500, 0]).created == 0
    # max takes only a queue longer than 0, so two active empty queues create nothing
    assert combined("max", [0, 0]).active is False


def test_min_replica_count_keeps_jobs_running_with_an_empty_queue() -> None:
    document = fixture_document()
    document["spec"]["minReplicaCount"] = 2
    spec = job_spec(document)
    rows = run(JobModel(spec, duration=DURATION, pending=0), [[0], [0], [0], [300]], [100])
    # running < minReplicaCount: min - running; then default on running - min
    assert [(r.active, r.running, r.created) for r in rows] == [
        (True, 0, 2), (True, 2, 0), (True, 0, 2), (True, 2, 3),
    ]  # fmt: skip
    assert rows[0].reason == "below minReplicaCount 2: 2 - 0 = 2; created 2"
    assert [r.created for r in rows] == expected([[0], [0], [0], [300]], [100], low=2, pending=0)


# -- the jobs' life --------------------------------------------------------------------------------


def test_drained_jobs_succeed_at_the_poll_that_reads_the_queue_empty() -> None:
    model = JobModel(job_spec(fixture_document()), duration=None)
    rows = run(model, [[450], [450], [120], [0], [700]], [100])
    assert [(r.running, r.created, r.succeeded) for r in rows] == [
        (0, 5, 0), (5, 0, 0), (5, 0, 0), (0, 0, 5), (0, 7, 0),
    ]  # fmt: skip
    assert rows[3].reason == "inactive: no jobs created; since the last poll 5 succeeded"


def test_active_deadline_seconds_fails_a_job_that_runs_longer() -> None:
    document = fixture_document()
    document["spec"]["jobTargetRef"]["activeDeadlineSeconds"] = 50
    model = JobModel(job_spec(document), duration=600)
    rows = run(model, [[300], [300], [300]], [100])
    assert [(r.running, r.created, r.failed) for r in rows] == [(0, 3, 0), (3, 0, 0), (0, 3, 3)]
    assert rows[2].reason.endswith("; since the last poll 3 failed")


def test_jobs_already_running_at_the_start() -> None:
    model = JobModel(job_spec(fixture_document()), duration=45, running=4)
    rows = run(model, [[600], [600]], [100])
    assert [(r.running, r.created) for r in rows] == [(4, 2), (6, 0)]


# -- reads that fail -------------------------------------------------------------------------------


def test_a_trigger_without_specs_is_left_out_and_a_failed_read_is_noted() -> None:
    document = fixture_document()
    document["spec"]["triggers"].append(copy.deepcopy(document["spec"]["triggers"][0]))
    model = JobModel(job_spec(document), duration=45)
    row = model.poll(0, {
        0: JobReading(0, error="GetMetricSpec: UNAVAILABLE: down"),
        1: reading(1, 420, 100),
    })  # fmt: skip
    assert (row.created, row.values) == (5, {"s1-kafka-events": 420.0})
    assert "trigger 0 left out: GetMetricSpec: UNAVAILABLE: down" in row.reason
    failed = JobReading(1, (SpecReading("kafka-events", 100_000, error="UNAVAILABLE: down"),))
    row = model.poll(30, {0: reading(0, 0, 100), 1: failed})
    assert (row.active, row.values["s1-kafka-events"]) == (False, None)
    assert "s1-kafka-events: UNAVAILABLE: down" in row.reason


def test_a_value_metric_type_has_no_average_value_target() -> None:
    document = fixture_document()
    document["spec"]["triggers"][0]["metricType"] = "Value"
    spec = job_spec(document)
    assert any("maxScale is always 0" in note for note in spec.notes)
    row = JobModel(spec).poll(0, {0: reading(0, 900, 100)})
    assert (row.active, row.max_scale, row.created) == (True, 0, 0)


# -- what the spec reads and refuses ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("strategy", "problem"),
    [
        ({"strategy": "custom", "customScalingRunningJobPercentage": "0.5"},
         "customScalingQueueLengthDeduction is required with strategy custom"),
        ({"strategy": "custom", "customScalingQueueLengthDeduction": 1,
          "customScalingRunningJobPercentage": 0.5}, "quote the value"),
    ],
)  # fmt: skip
def test_load_job_refuses_a_custom_strategy_keda_cannot_run(strategy, problem) -> None:
    with pytest.raises(ManifestError) as err:
        job_spec(with_strategy(fixture_document(), **strategy))
    assert any(problem in p for p in err.value.problems), err.value.problems


@pytest.mark.parametrize(
    ("strategy", "note"),
    [
        ({"strategy": "acurate"}, "'acurate' is not one of default, custom, accurate, eager"),
        ({"strategy": "custom", "customScalingQueueLengthDeduction": 1,
          "customScalingRunningJobPercentage": "half"}, "KEDA uses default"),
        ({"pendingPodConditions": ["Ready"]}, "pendingPodConditions taken as met"),
    ],
)  # fmt: skip
def test_load_job_notes_what_keda_reads_otherwise(strategy, note) -> None:
    spec = job_spec(with_strategy(fixture_document(), **strategy))
    assert spec.strategy == "default"
    assert any(note in n for n in spec.notes), spec.notes


def test_load_job_refuses_other_triggers_and_notes_push_ones() -> None:
    document = fixture_document()
    document["spec"]["triggers"][0]["type"] = "external-push"
    assert any("ignores its StreamIsActive pushes" in n for n in job_spec(document).notes)
    document["spec"]["triggers"].append({"type": "cpu", "metadata": {"value": "50"}})
    with pytest.raises(ManifestError, match="only external and external-push triggers"):
        job_spec(document)


def test_choose_picks_one_object_of_either_kind() -> None:
    job = fixture_document()
    text = manifest(scaled_object("events-processor"), job)
    with pytest.raises(ManifestError, match="several objects"):
        choose(load_manifest(text), "events-processor")
    resources = load_manifest(manifest(scaled_object("consumer"), job))
    with pytest.raises(ManifestError, match=r"several objects .*ScaledJob/events-processor"):
        choose(resources)
    assert choose(resources, "consumer").ref.kind == "ScaledObject"
    with pytest.raises(ManifestError, match=r"no ScaledObject or ScaledJob named 'x'"):
        choose(resources, "x")


# -- the loop --------------------------------------------------------------------------------------


class FakeClock:
    def __init__(self) -> None:
        self.time = 0.0

    def start(self) -> None:
        self.time = 0.0

    def now(self) -> float:
        return self.time

    async def sleep_until(self, when: float) -> None:
        self.time = max(self.time, when)
        await asyncio.sleep(0)


async def test_drive_jobs_polls_every_polling_interval_from_zero() -> None:
    clock = FakeClock()
    reads: list[float] = []

    class Source:
        async def read(self, triggers):
            reads.append(clock.now())
            return {0: reading(0, 250 if clock.now() >= 40 else 0, 100)}

    model = JobModel(job_spec(fixture_document()), duration=DURATION)
    rows: list[JobRow] = []
    late = await drive_jobs(model, Source(), clock, 100, rows.append)
    assert (reads, late) == ([0, 30, 60, 90], 0)
    assert [(r.time, r.created) for r in rows] == [(0, 0), (30, 0), (60, 3), (90, 0)]
