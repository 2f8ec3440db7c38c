"""Process settings: command-line flags over ``SCALER_*`` environment variables over defaults.

The only module that reads ``os.environ``. Every setting has a flag (``--cache-ttl``) and an
environment variable (``SCALER_CACHE_TTL``); a flag wins. All problems are reported at once as a
:class:`~scaler.errors.SettingsError`, and the service refuses to start.
"""

from __future__ import annotations

import argparse
import math
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from typing import Any

from scaler.errors import SettingsError


def _port(text: str) -> int:
    value = int(text)
    if not 0 <= value < 65536:
        raise ValueError("not a TCP port")
    return value


def _seconds(text: str) -> float:
    value = float(text)
    if not math.isfinite(value) or value < 0:
        raise ValueError("not a duration in seconds")
    return value


def _positive_seconds(text: str) -> float:
    value = _seconds(text)
    if value <= 0:
        raise ValueError("must be greater than 0")
    return value


def _log_format(text: str) -> str:
    if text not in ("text", "json"):
        raise ValueError("must be text or json")
    return text


def _log_level(text: str) -> str:
    level = text.upper()
    if level not in ("DEBUG", "INFO", "WARNING", "ERROR"):
        raise ValueError("must be DEBUG, INFO, WARNING or ERROR")
    return level


def _boolean(text: str) -> bool:
    if text.lower() in ("1", "true", "yes", "on"):
        return True
    if text.lower() in ("0", "false", "no", "off"):
        return False
    raise ValueError("must be true or false")


def _intervals(text: str) -> tuple[tuple[str, float], ...]:
    pairs = []
    for entry in filter(None, (e.strip() for e in text.split(","))):
        name, sep, seconds = entry.partition("=")
        if not sep or not name.strip():
            raise ValueError(f"{entry!r} is not backend=seconds")
        pairs.append((name.strip(), _positive_seconds(seconds.strip())))
    return tuple(pairs)


def _positive(text: str) -> float:
    value = float(text)
    if not math.isfinite(value) or value <= 0:
        raise ValueError("must be greater than 0")
    return value


def _count(text: str) -> int:
    value = int(text)
    if value < 1:
        raise ValueError("must be at least 1")
    return value


def _state_url(text: str) -> str:
    if text.partition("://")[0] not in ("redis", "rediss"):
        raise ValueError("must be a redis:// or rediss:// URL")
    return text


def _setting(default: Any, parse: Callable[[str], Any], help: str, *, secret: bool = False) -> Any:
    # a secret setting is left out of repr and never quoted in an error
    return field(
        default=default, repr=not secret, metadata={"parse": parse, "help": help, "secret": secret}
    )


@dataclass(frozen=True, slots=True)
class Settings:
    """Everything the service is configured with; defaults suit a pod next to KEDA."""

    grpc_port: int = _setting(
        9090,
        _port,
        "gRPC port KEDA calls (`scalerAddress`: the scaler API, health and reflection); 0 picks "
        "a free port",
    )
    metrics_port: int = _setting(8080, _port, "Prometheus `/metrics` port; 0 picks a free port")
    health_port: int = _setting(
        0,
        _port,
        "plaintext port serving only `grpc.health.v1`, for kubelet probes when the gRPC port "
        "uses TLS (0: none)",
    )
    bind_address: str = _setting("0.0.0.0", str, "address the ports bind to")
    log_format: str = _setting(
        "text",
        _log_format,
        "log line format: `text` or `json` (context keys `scaled_object`, `backend`, `rpc`, "
        "`code`, `duration_ms`, `resource`)",
    )
    log_level: str = _setting(
        "INFO", _log_level, "`DEBUG` (every RPC), `INFO`, `WARNING` or `ERROR`"
    )
    cache_ttl: float = _setting(
        1.0,
        _seconds,
        "seconds a measurement is shared by identical queries (0: share only reads in flight)",
    )
    backend_timeout: float = _setting(
        2.0,
        _positive_seconds,
        "upper bound of one broker read in seconds, retry included (KEDA's HPA path allows about "
        "3 s in all)",
    )
    grace_period: float = _setting(
        10.0, _seconds, "seconds in-flight RPCs get to finish on SIGTERM"
    )
    watch_interval: float = _setting(
        0.1,
        _positive_seconds,
        "seconds between reads of watched resources (StreamIsActive) for a backend without a "
        "default of its own",
    )
    watch_intervals: tuple[tuple[str, float], ...] = _setting(
        (),
        _intervals,
        "per-backend watch intervals, backend=seconds,... (override each backend's default)",
    )
    watch_max_requests: float = _setting(
        40.0, _positive, "broker requests per second one connection's watchers may cost"
    )
    pool_idle_timeout: float = _setting(
        600.0, _positive_seconds, "seconds after which an unused broker connection is closed"
    )
    state_url: str = _setting(
        "",
        _state_url,
        "`redis://` or `rediss://` URL (password allowed, never logged) of the state store "
        "several replicas share (persistent lag); empty: this process's memory",
        secret=True,
    )
    replicas: int = _setting(
        1,
        _count,
        "replicas of this service that KEDA balances over (the chart sets it): more than 1 "
        "without --state-url logs a warning at start-up",
    )
    max_resource_series: int = _setting(
        1000, _count, "resources with their own `last_value` series in `/metrics`"
    )
    tls_cert: str = _setting(
        "", str, "PEM certificate file: serve gRPC over TLS (reloaded on change)"
    )
    tls_key: str = _setting("", str, "PEM private key file of --tls-cert")
    tls_client_ca: str = _setting(
        "", str, "PEM CA file: require client certificates signed by it (mTLS)"
    )
    profiles: str = _setting(
        "",
        str,
        "YAML file of connection profiles that metadata names with `connection:` (reloaded when it "
        "changes)",
    )
    require_profiles: bool = _setting(
        False, _boolean, "refuse metadata that does not name a connection profile"
    )
    max_streams: int = _setting(
        10_000, _count, "open streams beyond which a new one is refused with `RESOURCE_EXHAUSTED`"
    )
    status: bool = _setting(
        True,
        _boolean,
        "serve the status page (`/status`, `/status.json`) on the metrics port: the triggers that "
        "called in the last hour, their values and errors, and the shared resources",
    )
    naive: bool = _setting(
        False,
        _boolean,
        "benchmarks only: no coalescing, one watcher per stream (what built-in scalers do)",
    )

    @classmethod
    def add_arguments(cls, parser: argparse.ArgumentParser) -> None:
        """Add one ``--flag`` per setting (default None, so the environment can fill it in)."""
        for f in fields(cls):
            flag = "--" + f.name.replace("_", "-")
            default = f.default
            if isinstance(default, tuple):
                default = ",".join(f"{k}={v:g}" for k, v in default) or "none"
            parser.add_argument(
                flag,
                dest=f.name,
                default=None,
                help=f"{f.metadata['help']} (env {env_name(f.name)}, default {default})",
            )

    @classmethod
    def load(
        cls, flags: Mapping[str, Any] | None = None, environ: Mapping[str, str] | None = None
    ) -> Settings:
        """Build settings from flags, then the environment, then defaults.

        :raises SettingsError: listing every invalid value
        """
        flags = flags or {}
        environ = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        problems: list[str] = []
        for f in fields(cls):
            raw = flags.get(f.name)
            source = "--" + f.name.replace("_", "-")
            if raw is None:
                raw = environ.get(env_name(f.name))
                source = env_name(f.name)
            if raw is None or str(raw).strip() == "":
                continue
            try:
                values[f.name] = f.metadata["parse"](str(raw).strip())
            except ValueError as err:
                shown = "the value" if f.metadata["secret"] else repr(str(raw))
                problems.append(f"{source}: {shown} is invalid ({err})")
        if bool(values.get("tls_cert")) != bool(values.get("tls_key")):
            problems.append("--tls-cert and --tls-key must be given together")
        if values.get("tls_client_ca") and not values.get("tls_cert"):
            problems.append("--tls-client-ca needs --tls-cert and --tls-key")
        if values.get("require_profiles") and not values.get("profiles"):
            problems.append("--require-profiles needs --profiles")
        if problems:
            raise SettingsError("invalid settings: " + "; ".join(problems))
        return cls(**values)


def env_name(field_name: str) -> str:
    """The environment variable of a setting: ``cache_ttl`` -> ``SCALER_CACHE_TTL``."""
    return "SCALER_" + field_name.upper()


def environment() -> Mapping[str, str]:
    """The process environment, for ``check`` resolving ``xxxFromEnv`` keys of a manifest."""
    return os.environ
