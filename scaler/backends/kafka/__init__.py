"""The ``kafka`` backend: consumer-group lag with the parameters and semantics of KEDA's trigger.

``params`` declares the keys; ``trigger`` applies KEDA's rules and lag arithmetic, ``ages`` the
rules and arithmetic of ``mode: LagSeconds``; ``client`` reads offsets, ``fetch`` the records
waiting at them and ``records`` what their bytes and timestamps say (``oauth`` supplies
OAUTHBEARER tokens, ``workarounds`` holds what kafka-python 3.0.12 needs around it). This module
is the registry entry: it owns the thread pool every kafka-python call runs in, and the memory
behind persistent lag (kept by the engine's history).

kafka-python is the only client library here, and this package its only importer.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
from concurrent.futures import ThreadPoolExecutor

from scaler.backends.base import Backend, History, Measurement, state_key
from scaler.backends.kafka.client import KafkaClient
from scaler.backends.kafka.params import KafkaParams
from scaler.backends.kafka.trigger import NAME, ConsumerLag, KafkaConnection, KafkaTrigger, build
from scaler.metadata import Reading

# kafka-python logs its whole configuration, SASL password included, at DEBUG: kept silent from
# import on, whether or not logs.configure runs (tests, embedding), because it is about secrets.
logging.getLogger("kafka").setLevel(logging.CRITICAL)


class KafkaBackend(Backend[KafkaParams, KafkaConnection, ConsumerLag]):
    """The ``kafka`` entry of the backend registry.

    :param timeout: kafka-python's request timeout in seconds
    :param threads: size of the thread pool kafka-python calls run in, started at first use
    """

    name = NAME
    params = KafkaParams
    # a read costs four broker requests or more (Metadata, OffsetFetch, Metadata, ListOffsets)
    watch_interval = 0.2
    # every lost connection is logged at ERROR; each reaches users as one error of ours
    quiet_loggers = ("kafka",)

    def __init__(self, timeout: float, threads: int = 4) -> None:
        super().__init__(timeout)
        self._threads = threads
        self._pool: ThreadPoolExecutor | None = None

    def build(self, params: KafkaParams, reading: Reading) -> KafkaTrigger | None:
        return build(params, reading)

    def connect(self, connection: KafkaConnection) -> KafkaClient:
        if self._pool is None:
            self._pool = _started_pool(self._threads)
        return KafkaClient(connection, self.timeout, self._pool)

    async def remember(
        self,
        connection: KafkaConnection,
        resource: ConsumerLag,
        measurement: Measurement,
        history: History,
    ) -> Measurement:
        """Each partition's ``unchanged_for``: seconds its committed offset has stayed as it is
        (0 at first sighting and after a change), which ``excludePersistentLag`` reads; one
        history round trip for all the partitions of the read."""
        # keyed by the brokers, SASL user and TLS (never a secret: state_key leaves them out),
        # the group and the partition, as every replica reads them;
        # uncommitted partitions (-1) too: a commit that vanishes (expired offsets) and comes
        # back at the same offset is a change, so its clock starts again
        facts = [
            (
                state_key(connection, "kafka", resource.group, item["topic"], item["partition"]),
                item["committed"],
            )
            for item in measurement.items
        ]
        unchanged = await history.unchanged_for(facts)
        items = tuple(
            {**item, "unchanged_for": seconds}
            for item, seconds in zip(measurement.items, unchanged, strict=True)
        )
        return dataclasses.replace(measurement, items=items)

    async def aclose(self) -> None:
        """Stop the thread pool; a read still blocked in it finishes on its own."""
        pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=False, cancel_futures=True)


def _started_pool(threads: int) -> ThreadPoolExecutor:
    """A thread pool with all its threads started now rather than on demand.

    A pool that grows under load (blocked reads during an outage) and never shrinks would make
    the thread count useless for spotting a leak; started in full, it stays constant.
    """
    pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="kafka")
    barrier = threading.Barrier(threads)  # each worker waits for the others: one thread each
    for future in [pool.submit(barrier.wait) for _ in range(threads)]:
        future.result()
    return pool


__all__ = ["ConsumerLag", "KafkaBackend", "KafkaConnection", "KafkaParams", "KafkaTrigger"]
