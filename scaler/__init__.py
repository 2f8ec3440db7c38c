"""keda-queue-scaler: a KEDA external scaler for queue backlogs."""

__version__ = "0.1.0"
