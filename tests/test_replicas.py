"""The replica arithmetic and the one milli-unit rule; check and simulate agreeing on a live value
is tested in test_check.py."""

from __future__ import annotations

import math

import pytest

from scaler.tools import remote, replicas
from scaler.tools.manifest import Replicas

# -- the milli-unit rule: KEDA v2.20+'s resource.MustParse(fmt.Sprintf("%.3f", v)) ------------

ROUNDING_CASES = [
    # (quantity, milli-units, what the row checks)
    (7.0, 7000, "a whole number"),
    (2.5, 2500, "three decimals or fewer are exact"),
    (2.9996, 3000, "rounded up, where truncation gives 2999"),
    (3.0004, 3000, "rounded down"),
    (0.0004, 0, "below half a milli-unit: 0"),
    (0.0005, 1, "the double just above 0.0005 rounds up, where round(0.5) gives 0"),
    (1.0005, 1000, "the double just below 1.0005 rounds down: the binary value decides"),
    (0.0025, 3, "not half-to-even on v x 1000: round(2.5) would give 2"),
    (0.1 + 0.2, 300, "0.30000000000000004 is 300"),
    (1e16, 10**19, "no int64 overflow: the %.3f text is read exactly"),
]


@pytest.mark.parametrize(
    ("quantity", "milli"),
    [case[:2] for case in ROUNDING_CASES],
    ids=[case[2] for case in ROUNDING_CASES],
)
def test_milli_units_round_to_three_decimals(quantity: float, milli: int) -> None:
    assert replicas.milli_units(quantity) == milli


@pytest.mark.parametrize("quantity", [math.nan, math.inf, -math.inf])
def test_nan_and_infinities_are_zero(quantity: float) -> None:
    assert replicas.milli_units(quantity) == 0


@pytest.mark.parametrize("quantity", [-1.0, -2.9996, -0.0004, -0.0, -1e-300])
def test_negative_values_are_zero(quantity: float) -> None:
    # KEDA v2.20.2: a negative value would otherwise drive the HPA below its minimum
    assert replicas.milli_units(quantity) == 0


# -- which field KEDA reads ----------------------------------------------------------------------

VALUE_FIELD_CASES = [
    # (metricValue, metricValueFloat, milli-units, what the row checks)
    (3, 2.5, 2500, "the float when > 0"),
    (7, 0.0, 7000, "the int when the float is 0"),
    (4, -1.0, 4000, "the int when the float is negative"),
    (5, math.nan, 5000, "the int when the float is NaN (NaN > 0 is false)"),
    (5, math.inf, 0, "an infinite float is > 0, so it is read, and counts 0"),
    (-4, -1.0, 0, "a negative int counts 0 like a negative float"),
    (9, 0.0006, 1, "a float > 0 is read even when it rounds to almost nothing"),
]


@pytest.mark.parametrize(
    ("value", "value_float", "milli"),
    [case[:3] for case in VALUE_FIELD_CASES],
    ids=[case[3] for case in VALUE_FIELD_CASES],
)
def test_value_float_field_when_positive_else_int_field(
    value: int, value_float: float, milli: int
) -> None:
    assert replicas.keda_value([remote.MetricValue("m", value, value_float)]) == milli


TARGET_FIELD_CASES = [
    # (targetSize, targetSizeFloat, milli-units, what the row checks)
    (3, 2.5, 2500, "the float when > 0"),
    (3, 0.0, 3000, "the int when the float is 0"),
    (3, -1.0, 3000, "the int when the float is negative"),
    (3, 0.0015, 2, "a float target is rounded like a value"),
    (3, 0.0004, 0, "a float > 0 is read even when it rounds to 0"),
    (-2, 0.0, -2000, "an int target is taken exactly (KEDA's NewQuantity; simulate refuses it)"),
]


@pytest.mark.parametrize(
    ("target", "target_float", "milli"),
    [case[:3] for case in TARGET_FIELD_CASES],
    ids=[case[3] for case in TARGET_FIELD_CASES],
)
def test_target_float_field_when_positive_else_int_field(
    target: int, target_float: float, milli: int
) -> None:
    assert replicas.keda_target(remote.MetricSpec("m", target, target_float)) == milli


def test_keda_value_and_target_conversion() -> None:
    values = [remote.MetricValue("m", 3, 2.5), remote.MetricValue("m", 7, 0.0)]
    assert replicas.keda_value(values) == 2500 + 7000  # float when > 0, else the int; summed
    assert replicas.keda_value([remote.MetricValue("m", -4, -1.0)]) == 0
    assert replicas.keda_value([remote.MetricValue("m", 0, 0.0004)]) == 0  # rounded to 3 decimals
    assert replicas.keda_target(remote.MetricSpec("m", 3, 2.5)) == 2500
    assert replicas.keda_target(remote.MetricSpec("m", 3, 0.0)) == 3000


# -- replica counts ------------------------------------------------------------------------------


def test_hpa_ceil_is_taken_on_milli_units() -> None:
    # 0.33 / 0.03 in floating point is 11.000000000000002, whose ceiling is 12
    assert math.ceil(0.33 / 0.03) == 12
    assert replicas.hpa_replicas(replicas.milli_units(0.33), replicas.milli_units(0.03)) == 11


def test_scaled_job_trigger_with_a_zero_target_wants_no_jobs() -> None:
    # KEDA's CalculateQueueLengthAndMaxValue leaves the scale at 0 when the target is 0
    assert replicas.scaled_job_replicas([(5000, 0, True)], Replicas(min=0, max=10)) == 0
    summed = Replicas(min=0, max=10, calculation="sum")
    assert replicas.scaled_job_replicas([(5000, 0, True), (3000, 1000, True)], summed) == 3
