# syntax=docker/dockerfile:1
# keda-queue-scaler container image.
#   docker build -t keda-queue-scaler:0.1.0 .
#   docker run --rm -p 9090:9090 -p 8080:8080 keda-queue-scaler:0.1.0 [--log-format json ...]
#
# Stage 1 builds the project's wheel and installs it with its dependencies into a virtual
# environment (/opt/venv, made without pip). Stage 2 is the same slim Python with only that
# environment copied in: no sources, no build tools, no pip in the venv, a numeric non-root user.
# Both stages use the same base image, so the venv's interpreter links stay valid.
ARG PYTHON_IMAGE=python:3.11.13-slim-bookworm

FROM ${PYTHON_IMAGE} AS builder
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_ROOT_USER_ACTION=ignore
WORKDIR /src
# Only what the wheel is built from (.dockerignore keeps everything else out of the context).
COPY pyproject.toml README.md ./
COPY scaler ./scaler
RUN pip wheel --no-deps --wheel-dir /wheels . \
    && python -m venv --without-pip /opt/venv \
    && pip --python /opt/venv/bin/python install /wheels/keda_queue_scaler-*.whl \
    && /opt/venv/bin/keda-queue-scaler version

FROM ${PYTHON_IMAGE} AS runtime
LABEL org.opencontainers.image.title="keda-queue-scaler" \
      org.opencontainers.image.description="KEDA external scaler for Redis lists, Kafka consumer lag and RabbitMQ queues" \
      org.opencontainers.image.licenses="Apache-2.0"
# A passwd entry for the numeric user (tools that look the user up); no home, no login shell.
RUN groupadd --system --gid 10001 scaler \
    && useradd --system --uid 10001 --gid 10001 --no-create-home --home-dir /nonexistent \
       --shell /usr/sbin/nologin scaler
COPY --from=builder /opt/venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1
# Numeric, so Kubernetes' runAsNonRoot can verify it without reading /etc/passwd.
USER 10001:10001
WORKDIR /tmp
# 9090: gRPC (KEDA's external-scaler API, grpc.health.v1, reflection); 8080: Prometheus /metrics.
EXPOSE 9090 8080
# gRPC health of service "" on the gRPC port (SCALER_GRPC_PORT if set): exit 0 when SERVING,
# 1 otherwise (NOT_SERVING during shutdown, refused, timed out). With SCALER_TLS_CERT set the
# port speaks TLS only, and the check falls back to a TCP connect.
HEALTHCHECK --interval=10s --timeout=5s --start-period=10s --retries=3 \
    CMD ["python", "-c", "import os, socket, sys\nport = int(os.environ.get('SCALER_GRPC_PORT') or 9090)\nif os.environ.get('SCALER_TLS_CERT'):\n    port = int(os.environ.get('SCALER_HEALTH_PORT') or 0)\n    if not port:\n        socket.create_connection(('localhost', int(os.environ.get('SCALER_GRPC_PORT') or 9090)), 3).close()\n        sys.exit(0)\nimport grpc\nfrom grpc_health.v1 import health_pb2 as pb, health_pb2_grpc as rpc\nwith grpc.insecure_channel(f'localhost:{port}') as channel:\n    reply = rpc.HealthStub(channel).Check(pb.HealthCheckRequest(service=''), timeout=3)\nsys.exit(0 if reply.status == pb.HealthCheckResponse.SERVING else 1)\n"]
# SIGTERM starts the graceful shutdown (health NOT_SERVING, streams end OK, in-flight RPCs finish).
STOPSIGNAL SIGTERM
ENTRYPOINT ["keda-queue-scaler", "serve"]
CMD []
