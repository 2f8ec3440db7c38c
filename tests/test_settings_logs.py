"""Settings precedence and errors; log formats; secrets stay out of logs."""

from __future__ import annotations

import json
import logging

import pytest

from scaler import logs
from scaler.errors import SettingsError
from scaler.settings import Settings


def test_defaults() -> None:
    settings = Settings.load({}, {})
    assert (
        settings.grpc_port,
        settings.metrics_port,
        settings.cache_ttl,
        settings.backend_timeout,
    ) == (
        9090,
        8080,
        1.0,
        2.0,
    )
    assert settings.log_format == "text"


def test_flag_wins_over_environment() -> None:
    env = {"SCALER_GRPC_PORT": "7000", "SCALER_CACHE_TTL": "2.5", "SCALER_LOG_FORMAT": "json"}
    settings = Settings.load({"grpc_port": "7001", "cache_ttl": None}, env)
    assert settings.grpc_port == 7001
    assert settings.cache_ttl == 2.5
    assert settings.log_format == "json"


def test_every_bad_setting_is_reported_at_once() -> None:
    env = {"SCALER_METRICS_PORT": "70000", "SCALER_LOG_FORMAT": "xml"}
    with pytest.raises(SettingsError) as err:
        Settings.load({"backend_timeout": "0"}, env)
    message = str(err.value)
    for part in (
        "--backend-timeout: '0'",
        "SCALER_METRICS_PORT: '70000'",
        "SCALER_LOG_FORMAT: 'xml'",
    ):
        assert part in message


def _record(**extra: object) -> logging.LogRecord:
    record = logging.LogRecord(
        "scaler.server", logging.WARNING, __file__, 1, "GetMetrics %s", ("UNAVAILABLE",), None
    )
    for key, value in extra.items():
        setattr(record, key, value)
    return record


def test_json_log_lines_carry_the_context_keys() -> None:
    line = logs.JsonFormatter().format(
        _record(scaled_object="work/jobs", rpc="GetMetrics", duration_ms=1.5)
    )
    entry = json.loads(line)
    assert entry["message"] == "GetMetrics UNAVAILABLE"
    assert entry["scaled_object"] == "work/jobs"
    assert entry["rpc"] == "GetMetrics"
    assert entry["duration_ms"] == 1.5
    assert entry["level"] == "warning"


def test_text_log_lines_carry_the_context_keys() -> None:
    line = logs.TextFormatter().format(_record(scaled_object="work/jobs", backend="redis"))
    assert line.endswith("GetMetrics UNAVAILABLE scaled_object=work/jobs backend=redis")
