"""KEDA-shaped load on the scaler, normal mode against naive mode, with the broker's own counts.

    make brokers && .venv/bin/python -m bench.keda_load            # full run, about 5 minutes
    .venv/bin/python -m bench.keda_load --quick                    # smoke run, under a minute
    .venv/bin/python -m bench.keda_load --profile                  # + where the handler's time goes
    .venv/bin/python -m bench.keda_load --scenarios poll,activation --modes normal

The benchmark starts everything it measures itself: the scaler (``python -m scaler serve``, a
fresh process per scenario and mode, pinned to core 0 with ``taskset -c 0``; naive mode adds
``--naive true``: no coalescing, one watcher per stream, so every RPC reads the broker as KEDA's
built-in scalers do), a no-op grpc.aio server (``bench.harness.noop_server``, Python's own
ceiling, pinned the same way), the load generators on core 1 (ghz, ``scripts/ghz.sh`` builds it
once; a separate Python process, ``bench.keda_load.lanes.stream_holder``, holding the
StreamIsActive streams) and a private ``redis-server`` on a free port (pinned to core 1, so that
its command statistics count only the scaler and the benchmark; ``--redis-url`` uses another).
Kafka and RabbitMQ are the test brokers of ``make brokers`` (``SCALER_TEST_*`` variables,
defaults 127.0.0.1:19092 and 15673/15674).
Queues, topics and groups are named ``kqs-bench-<uuid>-...`` and deleted afterwards.

Scenarios (``--scenarios``, default all):

``poll``
    N ScaledObjects (default 1,000) on M Redis lists (10). One KEDA poll round: GetMetricSpec,
    then GetMetrics, then IsActive for every ScaledObject (three ghz phases, so each object's
    calls come in KEDA's order), then one HPA round (same, metric name lower-cased, 3 s
    deadline). Broker requests per round from Redis' command statistics. Then a sustained run:
    S streams open (default 100) and the whole pattern (poll + HPA, six ghz processes side by
    side) at a compressed interval (every object polled every 4 s instead of 30 s).
``throughput``
    N = 10,000 ScaledObjects on M = 100 lists: GetMetrics as fast as the server answers at a fixed
    concurrency (16) for 15 s, against the no-op server under the same ghz load in the same run.
``streams``
    10,000 known ScaledObjects (GetMetricSpec and GetMetrics once each) and 1,000 open streams
    on 100 lists: the broker requests per second that watching costs (per connection identity
    and per TCP connection) over 10 s, the server's CPU, and its RSS.
``activation``
    Per backend (redis, rabbitmq-amqp, rabbitmq-http, kafka): with a stream open on an empty
    queue, enqueue one message and time until the stream's ``true`` arrives; drain, poll
    IsActive until ``false``, wait a random fraction of the watch interval, repeat; at least
    200 activations per backend over a few queues in parallel. Normal mode only unless
    ``--activation-modes normal,naive``.

Broker requests are counted by the broker where it can: Redis ``INFO commandstats`` of the
private instance (the scaler's top-level commands, not the ``TYPE``/``LLEN`` its scripts run),
RabbitMQ's ``rabbitmq_channels_opened_total`` for AMQP (Prometheus plugin, whole node); the
management API and Kafka (JMX only) count nothing, so those use the scaler's own read counter
(times 4 requests per batched Kafka read). ``--profile`` adds ``bench.handler_profile`` (the
GetMetrics handler alone, timed and under cProfile) and a py-spy profile when py-spy is found.

Every figure is checked against the issue's targets. Output: tables on stdout and
``bench/results/keda_load.json`` (``--output``). A scenario that fails prints why and the run
carries on; the exit status is then 1 (``--strict`` also fails on a missed target).

The package: ``cli`` (the command line; ``python -m bench.keda_load``), ``runner`` (one run:
set-up, scenarios, report), ``workbench`` (what every scenario shares), ``scenarios/`` (one
module per scenario), ``lanes/`` (the load generators: ghz phases, the stream holder, the
activation queues), ``report/`` (tables, targets, the JSON file), and the measured parts:
``servers`` (the scaler or no-op process), ``redis_broker`` (the Redis whose counts are read),
``windows`` (counters at two instants), ``objects`` (the ScaledObjects), ``sizes``.
"""
