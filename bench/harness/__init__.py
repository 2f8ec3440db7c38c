"""The benchmark harness: processes, brokers and load statistics shared by bench/ and tests/.

Each module has one job (see ``bench/README.md`` for the list). Tests import these helpers; their
pytest fixtures stay in ``tests/``. Of scaler, the harness uses only the public surface (the
generated ``scaler.proto``, ``scaler.app.GRPC_SERVER_OPTIONS``, the ``serve`` command line),
except :mod:`bench.harness.scaler_facts`, the one module that reaches further.
"""
