"""The tools wing: what a user runs beside the service, never the service itself.

It owns the ScaledObject/ScaledJob manifest model (:mod:`.manifest`), KEDA's and the HPA's
replica arithmetic (:mod:`.replicas`), the gRPC client of a running scaler (:mod:`.remote`), and
the ``check``, ``simulate`` and ``migrate`` commands built on them.

Nothing here imports :mod:`scaler.server` or :mod:`scaler.app` (``scaler.cli`` composes the
commands with them), and within the wing only :mod:`.remote` imports ``grpc`` or the generated
code in :mod:`scaler.proto`, and only ``migrate``'s round-trip modules import ruamel.yaml.
"""
