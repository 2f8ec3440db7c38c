# shellcheck shell=bash
# A Redis Sentinel group for the integration tests; sourced by scripts/brokers.sh.
#
# One master (127.0.0.1:${SCALER_TEST_REDIS_SENTINEL_PORT:-17100}), one replica (the next port)
# and three sentinels (port + 10 to port + 12) monitoring the master name `kqs-master` with a
# quorum of 2, from Debian's `redis-server` (`--sentinel`). Failures are noticed after 1 s and a
# failover may take 5 s, so a test can fail over and back quickly. Sentinels rewrite their
# configuration, so a fresh one is written at each start; state under .run/redis-sentinel/. A
# running group is left as it is, whichever node is master now: tests ask the sentinels.

BROKERS+=(redis-sentinel)

REDIS_SENTINEL_PORT="${SCALER_TEST_REDIS_SENTINEL_PORT:-17100}"
REDIS_SENTINEL_DIR="$RUN/redis-sentinel"
REDIS_SENTINEL_MASTER=kqs-master

redis_sentinel_ports() {
    local i
    for ((i = 10; i < 13; i++)); do echo $((REDIS_SENTINEL_PORT + i)); done
}

redis_sentinel_data_ports() {
    echo "$REDIS_SENTINEL_PORT" $((REDIS_SENTINEL_PORT + 1))
}

# redis_sentinel_healthy: all five run, and every sentinel names a master, one replica and the
# two other sentinels.
redis_sentinel_healthy() {
    local port state
    for port in $(redis_sentinel_data_ports) $(redis_sentinel_ports); do
        pid_alive "$REDIS_SENTINEL_DIR/$port/node.pid" || return 1
    done
    for port in $(redis_sentinel_ports); do
        state="$(timeout 2 redis-cli -p "$port" sentinel master "$REDIS_SENTINEL_MASTER" 2>/dev/null |
            tr -d '\r' | paste -sd' ')" || return 1
        [[ " $state " == *" num-slaves 1 "* && " $state " == *" num-other-sentinels 2 "* ]] ||
            return 1
        [[ " $state " == *" flags master "* ]] || return 1
    done
}

redis-sentinel_start() {
    redis_install
    if redis_sentinel_healthy; then
        say "redis-sentinel: already running (sentinels on 127.0.0.1:$((REDIS_SENTINEL_PORT + 10))-$((REDIS_SENTINEL_PORT + 12)))"
        return 0
    fi
    redis-sentinel_stop >/dev/null 2>&1
    rm -rf "$REDIS_SENTINEL_DIR"
    say "redis-sentinel: starting a master, a replica and 3 sentinels on 127.0.0.1:$REDIS_SENTINEL_PORT+ (state in ${REDIS_SENTINEL_DIR#"$ROOT/"}/)"
    local port
    # repl-diskless-sync-delay 0: after a failover the demoted master resyncs at once, not after
    # Redis's default 5 s wait for more replicas
    redis_node_start redis-sentinel "$REDIS_SENTINEL_DIR/$REDIS_SENTINEL_PORT" \
        "$REDIS_SENTINEL_PORT" --save "" --appendonly no --repl-diskless-sync-delay 0
    port=$((REDIS_SENTINEL_PORT + 1))
    redis_node_start redis-sentinel "$REDIS_SENTINEL_DIR/$port" "$port" --save "" \
        --appendonly no --repl-diskless-sync-delay 0 --replicaof 127.0.0.1 "$REDIS_SENTINEL_PORT"
    for port in $(redis_sentinel_ports); do
        mkdir -p "$REDIS_SENTINEL_DIR/$port"
        cat >"$REDIS_SENTINEL_DIR/$port/sentinel.conf" <<CONF
sentinel resolve-hostnames no
sentinel monitor $REDIS_SENTINEL_MASTER 127.0.0.1 $REDIS_SENTINEL_PORT 2
sentinel down-after-milliseconds $REDIS_SENTINEL_MASTER 1000
sentinel failover-timeout $REDIS_SENTINEL_MASTER 5000
sentinel parallel-syncs $REDIS_SENTINEL_MASTER 1
CONF
        redis_node_start redis-sentinel "$REDIS_SENTINEL_DIR/$port" "$port" \
            "$REDIS_SENTINEL_DIR/$port/sentinel.conf" --sentinel
    done
    local deadline=$((SECONDS + 30))
    until redis_sentinel_healthy; do
        if ((SECONDS >= deadline)); then
            tail -n 20 "$REDIS_SENTINEL_DIR/$((REDIS_SENTINEL_PORT + 10))/node.log" >&2
            die "redis-sentinel: the sentinels do not agree on the group after 30 s"
        fi
        sleep 0.2
    done
    say "redis-sentinel: ready (master $REDIS_SENTINEL_MASTER)"
}

redis-sentinel_stop() {
    local port
    for port in $(redis_sentinel_ports) $(redis_sentinel_data_ports); do
        redis_node_stop "$REDIS_SENTINEL_DIR/$port"
    done
    say "redis-sentinel: stopped"
}

redis-sentinel_env() {
    local port sentinels=() nodes=()
    for port in $(redis_sentinel_ports); do sentinels+=("127.0.0.1:$port"); done
    for port in $(redis_sentinel_data_ports); do nodes+=("127.0.0.1:$port"); done
    echo "export SCALER_TEST_REDIS_SENTINELS=$(IFS=,; echo "${sentinels[*]}")"
    echo "export SCALER_TEST_REDIS_SENTINEL_MASTER=$REDIS_SENTINEL_MASTER"
    echo "export SCALER_TEST_REDIS_SENTINEL_NODES=$(IFS=,; echo "${nodes[*]}")"
}
