"""``simulate``'s model: KEDA's scale loop and executor and the HPA, on a fake clock."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from scaler.tools.manifest import Replicas, ScaledRef
from scaler.tools.replicas import VALUE
from scaler.tools.simulate.driver import drive
from scaler.tools.simulate.hpa import (
    DEFAULT_SCALE_DOWN,
    DEFAULT_SCALE_UP,
    Behavior,
    HpaSettings,
    ScalingPolicy,
    ScalingRules,
)
from scaler.tools.simulate.model import Row, ScaleModel, TriggerSample
from scaler.tools.simulate.spec import Fallback, HpaMetric, ObjectSpec, SimTrigger

REF = ScaledRef("ScaledObject", "work", "consumer")
METRIC = HpaMetric(0, "fake-jobs", 5000)  # target 5 per replica
KEY = METRIC.key


def spec(
    *,
    low: int = 0,
    high: int = 20,
    idle: int | None = None,
    triggers: tuple[SimTrigger, ...] = (SimTrigger(0, "external"),),
    **fields: Any,
) -> ObjectSpec:
    return ObjectSpec(REF, Replicas(low, high, idle), triggers, **fields)


def ok(value: float, *, active: bool | None = None, index: int = 0, name: str = "fake-jobs"):
    milli = int(value * 1000)
    return TriggerSample(index, {name: milli}, active=value > 0 if active is None else active)


def failed(index: int = 0, *, spec_failed: bool = False) -> TriggerSample:
    return TriggerSample(index, error="UNAVAILABLE: broker down", spec_failed=spec_failed)


class FakeClock:
    """Simulated time that jumps to wherever the driver sleeps to."""

    def __init__(self) -> None:
        self.time = 0.0

    def start(self) -> None:
        self.time = 0.0

    def now(self) -> float:
        return self.time

    async def sleep_until(self, when: float) -> None:
        self.time = max(self.time, when)
        await asyncio.sleep(0)


class FakeSource:
    """Readings as a function of simulated time: ``script(time, trigger) -> TriggerSample``."""

    def __init__(self, clock: FakeClock, script: Callable[[float, int], TriggerSample]) -> None:
        self.clock = clock
        self.script = script
        self.reads: list[tuple[float, int, bool]] = []

    async def read(self, triggers, *, hpa):
        self.reads += [(self.clock.now(), index, hpa) for index in triggers]
        return {index: self.script(self.clock.now(), index) for index in triggers}

    def stream(self, trigger):
        raise AssertionError("no push trigger in these tests")


async def timeline(model: ScaleModel, script, duration: float) -> list[Row]:
    clock = FakeClock()
    rows: list[Row] = []
    await drive(model, FakeSource(clock, script), clock, duration, rows.append)
    return rows


def at(rows: list[Row], time: float, event: str) -> Row:
    [row] = [r for r in rows if r.time == time and r.event == event]
    return row


def steps(rows) -> list[tuple[float, str, int, int]]:
    """Every replica change: (time, event, before, after)."""
    return [(r.time, r.event, r.before, r.replicas) for r in rows if r.before != r.replicas]


# -- KEDA: activation, cooldown, idle, errors ------------------------------------------------------


async def test_activation_from_zero_at_the_first_poll_that_sees_activity() -> None:
    model = ScaleModel(spec(), [METRIC])
    rows = await timeline(model, lambda t, i: ok(12 if t >= 40 else 0), 75)
    # polls at 0 and 30 see nothing; the HPA does nothing at all while replicas are 0
    assert [(r.time, r.event, r.replicas) for r in rows][:2] == [(0, "poll", 0), (30, "poll", 0)]
    assert at(rows, 60, "poll").reason == "activate 0->1"
    # the HPA sync due at the same time runs after the poll: ceil(12 / 5) = 3
    assert steps(rows) == [(60, "poll", 0, 1), (60, "hpa", 1, 3)]
    assert at(rows, 60, "hpa").values == {KEY: 12.0}


async def test_cooldown_then_scale_to_zero() -> None:
    model = ScaleModel(spec(cooldown_period=120), [METRIC])
    rows = await timeline(model, lambda t, i: ok(4 if t < 70 else 0), 300)
    assert model.last_active == 60
    assert at(rows, 90, "poll").reason == "cooling down, 90s left"
    # exactly cooldownPeriod after lastActiveTime counts as passed (whole-second status times)
    assert at(rows, 180, "poll").reason == "cooldown 1->0"
    assert steps(rows)[-1] == (180, "poll", 1, 0)
    assert rows[-1].replicas == 0


async def test_initial_cooldown_applies_when_never_active() -> None:
    model = ScaleModel(spec(initial_cooldown_period=60), [METRIC], replicas=3)
    rows = await timeline(model, lambda t, i: ok(0), 90)
    assert at(rows, 30, "poll").reason == "cooling down, 30s left"
    assert steps(rows) == [(60, "poll", 3, 0)]
    # without initialCooldownPeriod the first poll already scales an idle target in
    model = ScaleModel(spec(), [METRIC], replicas=3)
    rows = await timeline(model, lambda t, i: ok(0), 10)
    assert steps(rows) == [(0, "poll", 3, 0)]


async def test_idle_replica_count_below_min_replica_count() -> None:
    model = ScaleModel(spec(low=2, idle=0, cooldown_period=60), [METRIC])
    assert model.replicas == 0  # starts at idleReplicaCount
    rows = await timeline(model, lambda t, i: ok(3 if 20 <= t < 50 else 0), 200)
    assert at(rows, 30, "poll").reason == "activate 0->2"
    assert at(rows, 90, "poll").reason == "cooldown 2->0 (idleReplicaCount)"
    # the HPA never goes below its minReplicas (2) while the target runs
    assert all(r.replicas >= 2 for r in rows if r.event == "hpa")


async def test_with_min_replicas_inactivity_changes_nothing() -> None:
    model = ScaleModel(spec(low=2), [METRIC])
    rows = await timeline(model, lambda t, i: ok(0), 400)
    assert {r.replicas for r in rows} == {2}
    assert at(rows, 300, "poll").reason == "inactive"


async def test_an_error_never_scales_to_zero_and_active_with_error_keeps_last_active() -> None:
    two = (SimTrigger(0, "external"), SimTrigger(1, "external"))
    model = ScaleModel(spec(triggers=two, cooldown_period=60), [METRIC], replicas=1)
    row = model.poll(0, {0: ok(5), 1: failed(1)})
    assert row.active is True
    assert row.reason.startswith("active, but a trigger failed: lastActiveTime not refreshed")
    assert model.last_active is None
    # inactive and failing, no fallback: replicas kept long after any cooldown
    for time in (30, 60, 90, 300):
        row = model.poll(time, {0: ok(0), 1: failed(1)})
        assert (row.replicas, row.reason.split(";")[0]) == (1, "failing: replicas kept")


def test_push_activates_at_once_and_refreshes_last_active() -> None:
    model = ScaleModel(spec(triggers=(SimTrigger(0, "external-push"),)), [METRIC])
    row = model.push(12.5, 0)
    assert (row.time, row.event, row.replicas) == (12.5, "push", 1)
    assert row.reason == "trigger 0 pushed true: activate 0->1"
    assert model.push(20, 0).reason == "trigger 0 pushed true: active"
    assert model.last_active == 20
    # a push is stamped between the last event and the next one due, so rows stay in order
    model = ScaleModel(spec(triggers=(SimTrigger(0, "external-push"),)), [METRIC])
    model.poll(0, {0: ok(0)})
    model.hpa_sync(0, {})
    assert (model.push_time(10), model.push_time(45)) == (10, 15)  # the sync due at 15 goes first


# -- the HPA ---------------------------------------------------------------------------------------


def hpa_at(model: ScaleModel, time: float, value: float) -> Row:
    row = model.hpa_sync(time, {0: ok(value)})
    assert row is not None
    return row


def test_hpa_tolerance_of_ten_percent() -> None:
    model = ScaleModel(spec(low=1), [METRIC], replicas=10)
    row = hpa_at(model, 0, 52)  # ratio 52 / (5 x 10) = 1.04
    assert (row.replicas, row.reason) == (10, f"within tolerance ({KEY} ratio 1.04)")
    assert hpa_at(model, 15, 55).replicas == 10  # exactly 1.1 is still within
    # outside the tolerance, ceil() may land on the current count: that is not "within tolerance"
    assert hpa_at(ScaleModel(spec(), [METRIC], replicas=3), 0, 12).reason == "steady at 3"
    row = hpa_at(model, 30, 56)  # 1.12: ceil(56 / 5)
    assert (row.replicas, row.reason) == (12, "hpa 10->12")
    # --hpa-tolerance
    model = ScaleModel(spec(low=1), [METRIC], replicas=10, settings=HpaSettings(tolerance=0))
    assert hpa_at(model, 0, 52).replicas == 11


def test_hpa_value_metric_type_scales_the_current_count() -> None:
    metric = HpaMetric(0, "fake-jobs", 5000, VALUE)
    model = ScaleModel(spec(low=1), [metric], replicas=4)
    # ratio 10 / 5 = 2: ceil(2 x 4 ready pods)
    assert hpa_at(model, 0, 10).replicas == 8


def test_hpa_does_nothing_at_zero_and_corrects_out_of_bounds_counts() -> None:
    model = ScaleModel(spec(low=2, high=5), [METRIC], replicas=0)
    assert model.hpa_reads() == ()
    assert model.hpa_sync(0, {}) is None
    model.replicas = 9
    row = model.hpa_sync(15, {})
    assert row is not None
    assert (row.replicas, row.reason) == (5, "hpa 9->5 (above maxReplicas 5)")


def test_hpa_metric_failures_one_of_two() -> None:
    second = HpaMetric(1, "other", 1000)
    two = (SimTrigger(0, "external"), SimTrigger(1, "external"))
    model = ScaleModel(spec(low=1, triggers=two), [METRIC, second], replicas=4)
    # the working metric wants fewer replicas: the HPA does nothing
    row = model.hpa_sync(0, {0: ok(5), 1: failed(1)})
    assert row is not None
    assert (row.replicas, row.values) == (4, {KEY: 5.0, "s1-other": None})
    assert row.reason.startswith("hpa cannot read s1-other: replicas kept")
    # it wants more: the HPA scales on what it has
    row = model.hpa_sync(15, {0: ok(40), 1: failed(1)})
    assert row is not None
    assert row.replicas == 8


def test_legacy_scale_up_limit_without_behavior() -> None:
    # KEDA leaves the HPA's behavior unset: at most max(2 x replicas, 4) per sync
    model = ScaleModel(spec(high=50), [METRIC], replicas=1)
    assert hpa_at(model, 0, 200).reason == "hpa 1->4 (scale-up limit max(2x, 4))"
    assert hpa_at(model, 15, 200).replicas == 8
    assert hpa_at(model, 30, 200).replicas == 16
    assert hpa_at(model, 45, 200).replicas == 32
    assert hpa_at(model, 60, 200).reason == "hpa 32->40"


def test_scale_up_policies_limit_per_period() -> None:
    behavior = Behavior(scale_up=ScalingRules(0, "Max", (ScalingPolicy("Pods", 4, 60),)))
    model = ScaleModel(spec(high=50, behavior=behavior), [METRIC], replicas=1)
    assert hpa_at(model, 0, 200).reason == "hpa 1->5 (scale-up policy Pods 4/60s)"
    # the 4 pods added at t=0 still count within the 60 s period
    row = hpa_at(model, 15, 200)
    assert (row.replicas, row.reason) == (5, "held at 5 by scale-up policy Pods 4/60s (wanted 40)")
    assert hpa_at(model, 45, 200).replicas == 5
    assert hpa_at(model, 60, 200).replicas == 9  # the event of t=0 left the period


def test_default_behavior_is_max_of_four_pods_and_one_hundred_percent() -> None:
    model = ScaleModel(spec(high=50, behavior=Behavior()), [METRIC], replicas=1)
    assert hpa_at(model, 0, 200).reason == "hpa 1->5 (scale-up policy Pods 4/15s)"
    assert hpa_at(model, 15, 200).reason == "hpa 5->10 (scale-up policy Percent 100%/15s)"
    assert hpa_at(model, 30, 200).replicas == 20


def test_select_policy_min_and_disabled() -> None:
    # the default scale-up policies (4 pods, 100%) with the smaller change chosen
    rules = replace(DEFAULT_SCALE_UP, select_policy="Min")
    model = ScaleModel(spec(high=50, behavior=Behavior(scale_up=rules)), [METRIC], replicas=2)
    assert hpa_at(model, 0, 200).reason == "hpa 2->4 (scale-up policy Percent 100%/15s)"

    frozen = replace(rules, select_policy="Disabled")
    model = ScaleModel(spec(high=50, behavior=Behavior(scale_up=frozen)), [METRIC], replicas=2)
    row = hpa_at(model, 0, 200)
    assert (row.replicas, row.reason) == (2, "held at 2 by scale-up disabled (wanted 40)")

    no_down = replace(DEFAULT_SCALE_DOWN, stabilization_window=0, select_policy="Disabled")
    model = ScaleModel(spec(low=1, behavior=Behavior(scale_down=no_down)), [METRIC], replicas=6)
    assert hpa_at(model, 0, 0).replicas == 6
    assert hpa_at(model, 600, 0).replicas == 6


def test_scale_down_policy_limits_per_period() -> None:
    down = ScalingRules(0, "Max", (ScalingPolicy("Percent", 50, 60),))
    model = ScaleModel(spec(low=1, behavior=Behavior(scale_down=down)), [METRIC], replicas=10)
    assert hpa_at(model, 0, 0).reason == "hpa 10->5 (scale-down policy Percent 50%/60s)"
    assert hpa_at(model, 15, 0).replicas == 5  # start of period is still 10: 10 x 0.5
    assert hpa_at(model, 60, 0).replicas == 2  # int(5 x 0.5)


async def test_scale_down_stabilization_window_of_300_seconds_holds_replicas() -> None:
    # minReplicaCount 1: KEDA leaves the scale-down to the HPA
    for behavior, first_drop in ((Behavior(), 390), (None, 405)):
        model = ScaleModel(spec(low=1, behavior=behavior), [METRIC], replicas=10)
        rows = await timeline(model, lambda t, i: ok(50 if t < 100 else 0), 420)
        hpa = {r.time: r for r in rows if r.event == "hpa"}
        assert hpa[90].replicas == 10  # the last recommendation of 10
        assert hpa[105].reason.startswith("stabilized at 10 (wanted 0; ")
        assert hpa[first_drop - 15].replicas == 10
        # the behavior's window holds recommendations strictly newer than now - 300; the legacy
        # rule drops only those strictly older (horizontal.go's After / Before)
        assert (hpa[first_drop].before, hpa[first_drop].replicas) == (10, 1)


def test_first_hpa_sync_records_the_current_count() -> None:
    # a scale-up stabilization window sees the initial recommendation (recordInitialRecommendation)
    up = ScalingRules(60, "Max", DEFAULT_SCALE_UP.policies)
    model = ScaleModel(spec(low=1, behavior=Behavior(scale_up=up)), [METRIC], replicas=1)
    row = hpa_at(model, 0, 50)
    assert (row.replicas, row.reason) == (1, "stabilized at 1 (wanted 10; scaleUp window 60s)")
    assert hpa_at(model, 15, 50).replicas == 1  # the initial 1 is still in the window
    assert hpa_at(model, 60, 50).replicas == 5  # 4 pods per 15 s from here


# -- fallback --------------------------------------------------------------------------------------


async def test_fallback_after_failure_threshold() -> None:
    fallback = Fallback(failure_threshold=2, replicas=6)
    model = ScaleModel(spec(low=1, fallback=fallback), [METRIC], replicas=2)
    rows = await timeline(model, lambda t, i: failed(), 60)
    hpa = [r for r in rows if r.event == "hpa"]
    assert [r.replicas for r in hpa] == [2, 2, 4, 6, 6]
    assert "(failure 1 of failureThreshold 2)" in hpa[0].reason
    assert "fallback: s0-fake-jobs failed 3 times, value 5 x 6 replicas" in hpa[2].reason
    assert hpa[2].values == {KEY: 30.0}
    # the poll path neither counts failures nor scales: it waits for the HPA
    poll = at(rows, 30, "poll")
    assert poll.reason.startswith("inactive and failing: replicas kept (fallback acts")


def test_fallback_details_follow_keda() -> None:
    # the target's fraction is dropped (int(2.5) x 6 = 12), as fallback.go does
    metric = HpaMetric(0, "fake-jobs", 2500)
    model = ScaleModel(spec(low=1, fallback=Fallback(0, 6)), [metric], replicas=1)
    row = model.hpa_sync(0, {0: failed()})
    assert row is not None
    assert (row.values, row.replicas) == ({KEY: 12.0}, 4)  # ceil(12 / 2.5) = 5, limit 4
    # a failing GetMetricSpec leaves nothing to count: no fallback ever (keda#8056)
    model = ScaleModel(spec(low=1, fallback=Fallback(0, 6)), [METRIC], replicas=1)
    for time in (0, 15, 30):
        assert model.hpa_sync(time, {0: failed(spec_failed=True)}).replicas == 1  # type: ignore[union-attr]
    # Value metrics get no fallback
    value = HpaMetric(0, "fake-jobs", 5000, VALUE)
    model = ScaleModel(spec(low=1, fallback=Fallback(0, 6)), [value], replicas=1)
    assert model.hpa_sync(0, {0: failed()}).replicas == 1  # type: ignore[union-attr]
    # behaviour currentReplicasIfHigher keeps a larger count
    model = ScaleModel(
        spec(low=1, fallback=Fallback(0, 3, "currentReplicasIfHigher")), [METRIC], replicas=8
    )
    assert model.hpa_sync(0, {0: failed()}).values == {KEY: 40.0}  # type: ignore[union-attr]


def test_fallback_with_zero_replicas_lets_keda_scale_to_zero() -> None:
    model = ScaleModel(spec(fallback=Fallback(1, 0)), [METRIC], replicas=3)
    assert model.poll(0, {0: failed()}).reason.startswith("cooldown 3->0")


def test_cached_metrics_serve_the_hpa_from_the_last_poll() -> None:
    cached = (SimTrigger(0, "external", use_cached_metrics=True),)
    model = ScaleModel(spec(low=1, triggers=cached), [METRIC], replicas=1)
    assert model.hpa_reads() == (0,)  # nothing cached yet
    model.poll(0, {0: ok(20)})
    assert model.hpa_reads() == ()
    row = model.hpa_sync(0, {})
    assert row is not None
    assert (row.values, row.replicas) == ({KEY: 20.0}, 4)
