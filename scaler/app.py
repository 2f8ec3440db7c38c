"""Composition root and lifecycle: build everything, serve, and shut down in order.

Startup: metrics registry and HTTP endpoint, backends, pool, coalescer, engine, watch hub,
servicer, ``grpc.health.v1`` and reflection on the gRPC port, then health SERVING.

Shutdown (SIGTERM/SIGINT), each step logged:

1. health NOT_SERVING, so probes and new clients move away;
2. open streams end with status OK (KEDA then reconnects after 2 s instead of a grown backoff);
3. ``server.stop(grace)``: new RPCs are refused, in-flight ones get ``grace`` seconds;
4. shared reads in flight are cancelled and every backend client is closed;
5. the metrics endpoint stops.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import threading
from collections.abc import Mapping
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection
from prometheus_client import CollectorRegistry, make_wsgi_app
from prometheus_client.exposition import ThreadingWSGIServer

from scaler.backends import build_backends
from scaler.backends.base import AnyBackend, History, Measurement
from scaler.cache import Coalescer
from scaler.engine import Engine, Observer, Observers
from scaler.errors import SettingsError
from scaler.keys import ReadKey
from scaler.metrics import ScalerMetrics
from scaler.pool import REBUILD_AFTER, RETIRE_AFTER, BackendPool
from scaler.profiles import ProfileFile
from scaler.profiles import load as load_profiles
from scaler.proto import externalscaler_pb2 as pb
from scaler.proto import externalscaler_pb2_grpc as pb_grpc
from scaler.server import ExternalScalerServicer
from scaler.settings import Settings
from scaler.state import FallbackHistory, MemoryHistory, StateObserver
from scaler.state_redis import RedisHistory
from scaler.status import StatusBoard
from scaler.status_page import WSGIApp, status_app
from scaler.watch import WatchHub

log = logging.getLogger(__name__)

SERVICE_NAME = pb.DESCRIPTOR.services_by_name["ExternalScaler"].full_name
# KEDA sends no keepalive pings; ours detect a dead operator behind a half-open stream.
GRPC_SERVER_OPTIONS = (
    ("grpc.keepalive_time_ms", 30_000),
    ("grpc.keepalive_timeout_ms", 10_000),
    ("grpc.keepalive_permit_without_calls", 1),
    ("grpc.http2.max_pings_without_data", 0),
    ("grpc.so_reuseport", 0),
)
_EVICT_EVERY = 60.0
# how often the profiles file is checked for changes (a Secret update swaps its link)
_PROFILES_EVERY = 2.0
# how often the metrics server thread checks for shutdown (prometheus_client's default is 0.5 s)
_METRICS_POLL = 0.05


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        """Scrapes are not worth a log line each."""


def _start_metrics_server(
    host: str, port: int, registry: CollectorRegistry, status: StatusBoard | None
) -> WSGIServer:
    app: WSGIApp = make_wsgi_app(registry)
    if status is not None:
        app = status_app(status, app)
    httpd = make_server(host, port, app, ThreadingWSGIServer, handler_class=_QuietHandler)
    thread = threading.Thread(
        target=httpd.serve_forever, kwargs={"poll_interval": _METRICS_POLL}, daemon=True
    )
    thread.start()
    return httpd


def build_engine(
    settings: Settings,
    observer: Observer | None = None,
    backends: Mapping[str, AnyBackend] | None = None,
    *,
    retire_after: float = RETIRE_AFTER,
    rebuild_after: float = REBUILD_AFTER,
    state_observer: StateObserver | None = None,
) -> Engine:
    """The engine with its backends, pool and coalescer: the one wiring that the service,
    ``check``, the tests and the benchmarks share.

    :param observer: receives reads, values and coalescing outcomes (the app's metrics)
    :param backends: the registry to serve (default: every built-in backend)
    :param retire_after: see :class:`BackendPool` (tests shorten it)
    :param rebuild_after: see :class:`BackendPool` (tests shorten it)
    :param state_observer: told how the shared state store (``--state-url``) answers
    """
    if backends is None:
        backends = build_backends(settings.backend_timeout)
    profiles = None
    if settings.profiles:
        profiles = load_profiles(
            settings.profiles,
            connection_keys_of(backends),
            settings.require_profiles,
            families_of(backends),
        )
    cache: Coalescer[ReadKey, Measurement] = Coalescer(
        settings.cache_ttl,
        on_outcome=observer.coalesced if observer is not None else None,
        share=not settings.naive,
    )
    engine = Engine(
        backends,
        BackendPool(
            backends,
            settings.pool_idle_timeout,
            retire_after=retire_after,
            rebuild_after=rebuild_after,
        ),
        cache,
        settings.backend_timeout,
        observer=observer,
        history=build_history(settings, state_observer),
    )
    engine.set_profiles(profiles)
    return engine


def build_history(settings: Settings, observer: StateObserver | None = None) -> History:
    """This process's memory, behind the shared store of ``--state-url`` when there is one."""
    memory = MemoryHistory()
    if not settings.state_url:
        if settings.replicas > 1:
            log.warning(
                "%d replicas without --state-url: each keeps its own persistent-lag memory, so "
                "replicas may answer differently for the same trigger (docs/operations.md, "
                "Running several replicas)",
                settings.replicas,
            )
        return memory
    store = RedisHistory(settings.state_url)
    log.info("state shared in %s", store.address)
    return FallbackHistory(store, memory, observer, describe=f"state store {store.address}")


def watch_interval(settings: Settings, backend: AnyBackend) -> float:
    """Seconds between a backend's watcher reads: ``--watch-intervals`` names it, else the
    backend's own default, else ``--watch-interval``."""
    configured = dict(settings.watch_intervals).get(backend.name)
    if configured is not None:
        return configured
    if backend.watch_interval is not None:
        return backend.watch_interval
    return settings.watch_interval


def connection_keys_of(backends: Mapping[str, AnyBackend]) -> dict[str, frozenset[str]]:
    """Each backend's connection keys, which a profile of that backend may set."""
    return {name: backend.connection_keys() for name, backend in backends.items()}


def families_of(backends: Mapping[str, AnyBackend]) -> dict[str, str]:
    """Each backend's connection family: a profile serves every backend of its family."""
    return {name: backend.family() for name, backend in backends.items()}


class _TlsFiles:
    """Server TLS material read from files, reloaded when any file changes.

    gRPC asks :meth:`fetch` at every new handshake; it answers None while nothing changed, so
    a renewed certificate (cert-manager, a mounted Secret) takes effect without a restart.
    """

    def __init__(self, cert: str, key: str, client_ca: str) -> None:
        self._paths = tuple(p for p in (cert, key, client_ca) if p)
        self._cert, self._key, self._client_ca = cert, key, client_ca
        self._stamp = self._read_stamp()
        self.initial = self._configuration()

    def _read_stamp(self) -> tuple[tuple[float, int], ...]:
        stamps = []
        for path in self._paths:
            st = os.stat(path)
            stamps.append((st.st_mtime, st.st_ino))
        return tuple(stamps)

    def _configuration(self) -> grpc.ServerCertificateConfiguration:
        def read(path: str) -> bytes:
            with open(path, "rb") as handle:
                return handle.read()

        return grpc.ssl_server_certificate_configuration(
            [(read(self._key), read(self._cert))],
            root_certificates=read(self._client_ca) if self._client_ca else None,
        )

    def fetch(self) -> grpc.ServerCertificateConfiguration | None:
        try:
            stamp = self._read_stamp()
            if stamp == self._stamp:
                return None
            configuration = self._configuration()
        except OSError as err:  # mid-rotation: keep serving the previous certificate
            log.warning("TLS files not reloaded: %s", err.strerror)
            return None
        self._stamp = stamp
        log.info("TLS certificate reloaded")
        return configuration

    def credentials(self) -> grpc.ServerCredentials:
        # grpc documents None as "unchanged"; types-grpcio's stub omits it
        return grpc.dynamic_ssl_server_credentials(
            self.initial,
            self.fetch,  # type: ignore[arg-type]
            require_client_authentication=bool(self._client_ca),
        )


class ScalerApp:
    """The running service; :meth:`start` then :meth:`stop`, or :meth:`run` until a signal.

    :param settings: process settings (ports may be 0 in tests: see :attr:`grpc_port`)
    :param registry: the Prometheus registry to fill (a fresh one by default)
    :param backends: the backend registry (default: every built-in backend; tests add fakes)
    """

    def __init__(
        self,
        settings: Settings,
        registry: CollectorRegistry | None = None,
        backends: Mapping[str, AnyBackend] | None = None,
    ) -> None:
        self.settings = settings
        self.registry = registry if registry is not None else CollectorRegistry()
        self.metrics = ScalerMetrics(self.registry, settings.max_resource_series)
        if backends is None:
            backends = build_backends(settings.backend_timeout)
        self.status = StatusBoard(set(backends)) if settings.status else None
        observer: Observer = (
            self.metrics if self.status is None else Observers(self.metrics, self.status)
        )
        self.engine = build_engine(settings, observer, backends, state_observer=self.metrics)
        if not settings.state_url:
            self.metrics.without_state_store()
        intervals = {
            name: watch_interval(settings, backend)
            for name, backend in self.engine.backends.items()
        }
        self.hub = WatchHub(
            self.engine,
            intervals.__getitem__,
            self.metrics.watcher_count,
            share=not settings.naive,
            max_requests=settings.watch_max_requests,
        )
        self.shutdown = asyncio.Event()
        self.grpc_port = settings.grpc_port
        self.metrics_port = settings.metrics_port
        self._server: grpc.aio.Server | None = None
        self._health_server: grpc.aio.Server | None = None
        self.health_port = 0
        self._health = health.aio.HealthServicer()
        self._httpd: WSGIServer | None = None
        self._background: list[asyncio.Task[None]] = []
        self._profiles_file = ProfileFile(settings.profiles) if settings.profiles else None
        self._tls = (
            _TlsFiles(settings.tls_cert, settings.tls_key, settings.tls_client_ca)
            if settings.tls_cert
            else None
        )

    def servicer(self) -> ExternalScalerServicer:
        """The ``externalscaler`` servicer over this app's engine, watchers and metrics."""
        return ExternalScalerServicer(
            self.engine,
            self.hub,
            self.metrics,
            self.shutdown,
            self.settings.max_streams,
            self.status,
        )

    async def start(self) -> None:
        """Bind both ports and start serving; health becomes SERVING."""
        s = self.settings
        self._httpd = _start_metrics_server(
            s.bind_address, s.metrics_port, self.registry, self.status
        )
        self.metrics_port = self._httpd.server_port
        server = grpc.aio.server(options=GRPC_SERVER_OPTIONS)
        pb_grpc.add_ExternalScalerServicer_to_server(self.servicer(), server)
        health_pb2_grpc.add_HealthServicer_to_server(self._health, server)
        reflection.enable_server_reflection(
            (
                SERVICE_NAME,
                health_pb2.DESCRIPTOR.services_by_name["Health"].full_name,
                reflection.SERVICE_NAME,
            ),
            server,
        )
        host = f"[{s.bind_address}]" if ":" in s.bind_address else s.bind_address
        address = f"{host}:{s.grpc_port}"
        if self._tls is not None:
            self.grpc_port = server.add_secure_port(address, self._tls.credentials())
        else:
            self.grpc_port = server.add_insecure_port(address)
        await server.start()
        self._server = server
        if s.health_port:
            # kubelet gRPC probes speak plaintext only: health, and nothing else, without TLS
            health_server = grpc.aio.server(options=GRPC_SERVER_OPTIONS)
            health_pb2_grpc.add_HealthServicer_to_server(self._health, health_server)
            self.health_port = health_server.add_insecure_port(f"{host}:{s.health_port}")
            await health_server.start()
            self._health_server = health_server
        loop = asyncio.get_running_loop()
        self.metrics.track_runtime(loop)
        self._background.append(loop.create_task(self._evict_idle()))
        if self._profiles_file is not None:
            self._background.append(loop.create_task(self._reload_profiles(self._profiles_file)))
        for name in ("", SERVICE_NAME):
            await self._health.set(name, health_pb2.HealthCheckResponse.SERVING)
        log.info(
            "serving %s on %s:%d (%s), metrics on :%d",
            SERVICE_NAME,
            s.bind_address,
            self.grpc_port,
            "mTLS" if s.tls_client_ca else "TLS" if s.tls_cert else "plaintext",
            self.metrics_port,
        )

    async def stop(self) -> None:
        """Graceful shutdown in the order of the module docstring; safe to call twice."""
        if self._server is None:
            return
        server, self._server = self._server, None
        log.info("shutting down: health NOT_SERVING")
        await self._health.enter_graceful_shutdown()
        log.info("ending open streams with status OK")
        self.shutdown.set()
        await self.hub.aclose()
        log.info("stopping the gRPC server (grace %.3gs)", self.settings.grace_period)
        await server.stop(self.settings.grace_period)
        if self._health_server is not None:
            await self._health_server.stop(0)
            self._health_server = None
        for task in self._background:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        log.info("closing backend clients")
        await self.engine.aclose()
        if self._httpd is not None:
            log.info("stopping the metrics endpoint")
            await asyncio.to_thread(self._httpd.shutdown)
            self._httpd.server_close()
        log.info("stopped")

    async def run(self) -> None:
        """Serve until SIGTERM or SIGINT, then stop gracefully."""
        loop = asyncio.get_running_loop()
        stop = asyncio.Event()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        await self.start()
        try:
            await stop.wait()
            log.info("signal received")
        finally:
            await self.stop()
            for sig in (signal.SIGTERM, signal.SIGINT):
                loop.remove_signal_handler(sig)

    async def _reload_profiles(self, profiles_file: ProfileFile) -> None:
        backends = self.engine.backends
        keys, families = connection_keys_of(backends), families_of(backends)
        while True:
            await asyncio.sleep(_PROFILES_EVERY)
            if not profiles_file.changed():
                continue
            try:
                profiles = load_profiles(
                    profiles_file.path, keys, self.settings.require_profiles, families
                )
            except SettingsError as err:  # keep serving with the profiles that worked
                log.error("connection profiles not reloaded: %s", err)
                continue
            self.engine.set_profiles(profiles)
            log.info("connection profiles reloaded: %d connections", len(profiles))

    async def _evict_idle(self) -> None:
        while True:
            await asyncio.sleep(_EVICT_EVERY)
            closed = await self.engine.pool.evict_idle()
            if closed:
                log.info("closed %d idle backend clients", closed)
