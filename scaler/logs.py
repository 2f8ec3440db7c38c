"""Logging setup: plain text or one JSON object per line, with fixed context keys.

Context travels in ``extra=`` under fixed names (``scaled_object``, ``backend``, ``rpc``,
``duration_ms``, ``code``), matching KEDA's own ``type/namespace/name`` log values. Nothing here
knows about secrets: callers log error messages (secret-free by construction), never metadata.
"""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Iterable
from typing import Final

CONTEXT_KEYS: Final = ("scaled_object", "backend", "rpc", "code", "duration_ms", "resource")


class JsonFormatter(logging.Formatter):
    """One JSON object per record: time, level, logger, message, context keys, exception."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {
            "time": self.formatTime(record, "%Y-%m-%dT%H:%M:%S"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key in CONTEXT_KEYS:
            value = getattr(record, key, None)
            if value is not None:
                entry[key] = value
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


class TextFormatter(logging.Formatter):
    """``time level logger: message key=value ...``."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        context = " ".join(
            f"{key}={getattr(record, key)}"
            for key in CONTEXT_KEYS
            if getattr(record, key, None) is not None
        )
        if not context:
            return line
        head, sep, tail = line.partition("\n")  # keep a traceback below the context
        return f"{head} {context}{sep}{tail}"


def configure(log_format: str = "text", level: str = "INFO", quiet: Iterable[str] = ()) -> None:
    """Send every log record to stderr in the chosen format.

    :param quiet: loggers of broker client libraries (each backend names its own)
    """
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if log_format == "json" else TextFormatter())
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
    # Broker libraries log every failed connect at ERROR; each failure reaches KEDA and our own
    # log as one error of ours, so theirs would only repeat it.
    logging.getLogger("asyncio").setLevel(logging.WARNING)
    for noisy in quiet:
        logging.getLogger(noisy).setLevel(logging.CRITICAL)
