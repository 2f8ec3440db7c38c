"""Every error the scaler raises on purpose, in one hierarchy.

::

    ScalerError                      base; str(err) is safe to show a user (never a secret)
    ├── SettingsError                the process configuration is wrong; startup fails fast
    ├── MetadataError                a ScaledObject's scalerMetadata is wrong; lists every problem
    ├── Overloaded                   a limit of this scaler is reached (open streams)
    ├── InternalError                a bug of ours, reported without its details (see the log)
    ├── ManifestError                a ScaledObject/ScaledJob manifest cannot be read (tools)
    ├── RemoteError                  a call to a running scaler failed (tools' gRPC client)
    └── BackendError                 the broker could not answer the question
        ├── BackendUnavailable       cannot connect, connection lost, broker down
        ├── BackendTimeout           the broker did not answer within the time allowed
        ├── BackendAuthError         the broker rejected our credentials
        ├── BackendPermissionDenied  authenticated, but not allowed to read the resource
        ├── TargetNotFound           the queue, topic or group does not exist
        └── UnsupportedResource      the resource exists but cannot be measured (e.g. a string key)

Only ``scaler.server`` turns these into gRPC status codes (``scaler.rpc.status_of``); everything
below it raises them.
An exception that is not a ``ScalerError`` is a bug and becomes INTERNAL with a traceback;
:class:`InternalError` is that bug once caught and logged where it happened (a watcher's batch),
so that the subscribers who receive it see a plain message.
"""

from __future__ import annotations

from collections.abc import Iterable


class ScalerError(Exception):
    """Base of every deliberate error; its message is safe to return to KEDA and to log."""


class SettingsError(ScalerError):
    """The process settings (flags, environment) are invalid."""


class MetadataError(ScalerError):
    """The trigger metadata is invalid; carries every problem found, not just the first."""

    def __init__(self, problems: Iterable[str]) -> None:
        self.problems: tuple[str, ...] = tuple(problems)
        super().__init__("invalid scalerMetadata: " + "; ".join(self.problems))


class Overloaded(ScalerError):
    """A configured limit of this process is reached; the caller should retry later."""


class InternalError(ScalerError):
    """A bug of ours, already logged with its traceback; the message says only where."""


class ManifestError(ScalerError):
    """A manifest cannot be read or holds no valid ScaledObject/ScaledJob; every problem found."""

    def __init__(self, problems: Iterable[str]) -> None:
        self.problems: tuple[str, ...] = tuple(problems)
        super().__init__("; ".join(self.problems))


class RemoteError(ScalerError):
    """A call to a running scaler failed; ``code_name`` is the gRPC status (``UNAVAILABLE``...)."""

    def __init__(self, code_name: str, details: str) -> None:
        self.code_name = code_name
        self.details = details
        super().__init__(f"{code_name}: {details}" if details else code_name)


class BackendError(ScalerError):
    """The broker could not give an answer; never to be turned into a value of 0."""

    #: a short, bounded label for metrics (``keda_queue_scaler_backend_errors_total{reason}``)
    reason = "error"


class BackendUnavailable(BackendError):
    """The broker cannot be reached or dropped the connection."""

    reason = "unavailable"


class BackendTimeout(BackendError):
    """The broker did not answer within the backend timeout or the caller's deadline."""

    reason = "timeout"


class BackendAuthError(BackendError):
    """The broker rejected the credentials."""

    reason = "auth"


class BackendPermissionDenied(BackendError):
    """The credentials are valid but may not read the resource."""

    reason = "permission"


class TargetNotFound(BackendError):
    """The measured resource (queue, topic, group) does not exist."""

    reason = "not_found"


class UnsupportedResource(BackendError):
    """The resource exists but is of a kind that cannot be measured."""

    reason = "unsupported"
