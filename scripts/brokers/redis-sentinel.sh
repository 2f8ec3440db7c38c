# shellcheck shell=bash
# A Redis Sentinel group for the integration tests; sourced by scripts/brokers.sh.
#
# One master (127.0.0.1:${SCALER_TEST_REDIS_SENTINEL_PORT:-17100}), one replica (the next port)
# and three sentinels (port + 10 to port + 12) monitoring the master name `kqs-master` with a
# quorum of 2, from Debian's `redis-server` (`--sentinel`; the `redis-sentinel` package is not
# needed). Failures are noticed after 1 s and a failover may take 5 s, so a test can fail over
# and back quickly. Sentinels rewrite their configuration, so a fresh one is written at each
# start; state under .run/redis-sentinel/<port>/. A running healthy group is left as it is,
# whichever of the two data nodes is master now: tests ask the sentinels, never assume it.

BROKERS+=(redis-sentinel)

REDIS_SENTINEL_PORT="${SCALER_TEST_REDIS_SENTINEL_PORT:-17100}"
REDIS_SENTINEL_DIR="$RUN/redis-sentinel"
REDIS_SENTINEL_MASTER=kqs-master
REDIS_SENTINEL_TIMEOUT="${SCALER_TEST_REDIS_SENTINEL_START_TIMEOUT:-30}"

redis_sentinel_ports() {
    local i
    for ((i = 10; i < 13; i++)); do echo $((REDIS_SENTINEL_PORT + i)); done
}

redis_sentinel_data_ports() {
    echo "$REDIS_SENTINEL_PORT" $((REDIS_SENTINEL_PORT + 1))
}

# redis_sentinel_running: all five are our live processes (redis_node_owned).
redis_sentinel_running() {
    local port
    for port in $(redis_sentinel_data_ports) $(redis_sentinel_ports); do
        redis_node_owned "$REDIS_SENTINEL_DIR/$port" || return 1
    done
}

# redis_sentinel_state PORT: the sentinel's `SENTINEL MASTER kqs-master` as one line of
# "field value" pairs.
redis_sentinel_state() {
    timeout 2 redis-cli -p "$1" sentinel master "$REDIS_SENTINEL_MASTER" 2>/dev/null </dev/null |
        tr -d '\r' | paste -sd' '
}

# redis_sentinel_healthy: all five run; every sentinel names the same master, which is up and
# says it is one, and sees one replica and the two other sentinels.
redis_sentinel_healthy() {
    local port state address master="" role
    redis_sentinel_running || return 1
    for port in $(redis_sentinel_ports); do
        address="$(timeout 2 redis-cli -p "$port" sentinel get-master-addr-by-name \
            "$REDIS_SENTINEL_MASTER" 2>/dev/null </dev/null | tr -d '\r' | paste -sd:)" || return 1
        [[ "$address" == 127.0.0.1:* ]] || return 1
        [[ -z "$master" || "$address" == "$master" ]] || return 1
        master="$address"
        state="$(redis_sentinel_state "$port")" || return 1
        [[ " $state " == *" flags master "* && " $state " == *" num-slaves 1 "* &&
            " $state " == *" num-other-sentinels 2 "* ]] || return 1
    done
    role="$(timeout 2 redis-cli -p "${master#*:}" role 2>/dev/null </dev/null)" || return 1
    [[ "${role%%$'\n'*}" == master ]]
}

# redis_sentinel_wait_healthy SECONDS: poll until healthy; false on timeout.
redis_sentinel_wait_healthy() {
    local deadline=$((SECONDS + $1))
    until redis_sentinel_healthy; do
        ((SECONDS < deadline)) || return 1
        sleep 0.2
    done
}

# redis_sentinel_report: what each sentinel says, and the first sentinel's log.
redis_sentinel_report() {
    local port state
    for port in $(redis_sentinel_data_ports) $(redis_sentinel_ports); do
        redis_node_owned "$REDIS_SENTINEL_DIR/$port" || say "redis-sentinel: $port is not running"
    done
    for port in $(redis_sentinel_ports); do
        state="$(redis_sentinel_state "$port")" || state=""
        state="$(grep -oE '(ip|port|flags|num-slaves|num-other-sentinels) [^ ]+' <<<"$state" |
            paste -sd' ')" || true
        say "redis-sentinel: sentinel $port: ${state:-no answer about $REDIS_SENTINEL_MASTER}"
    done
    port="$(redis_sentinel_ports | head -n 1)"
    say "redis-sentinel: last lines of ${REDIS_SENTINEL_DIR#"$ROOT/"}/$port/node.log:"
    tail -n 20 "$REDIS_SENTINEL_DIR/$port/node.log" >&2 2>/dev/null || true
}

# redis_sentinel_tune: Sentinel's own timers shortened for the tests (SENTINEL DEBUG, Redis 7.0+,
# not kept in the config file, so set at every start): INFO from master and replica every 1 s
# instead of 10 s, hellos every 0.5 s instead of 2 s. A sentinel then turns the old master into
# a replica about 2 s after a failover instead of 8-10 s, and never acts on a view of the
# replica that is 10 s old: with the default, a failover soon after another one can be undone
# by a sentinel that still remembers the promoted replica as the master it was
# (+convert-to-slave, then -failover-abort-slave-timeout).
redis_sentinel_tune() {
    local port
    for port in $(redis_sentinel_ports); do
        [[ "$(timeout 2 redis-cli -p "$port" sentinel debug info-period 1000 publish-period 500 \
            2>/dev/null </dev/null)" == OK ]] ||
            say "redis-sentinel: warning: SENTINEL DEBUG refused on $port (Redis < 7.0?);" \
                "failovers take 10 s longer"
    done
}

redis-sentinel_start() {
    redis_install
    local sentinels
    sentinels="127.0.0.1:$((REDIS_SENTINEL_PORT + 10))-$((REDIS_SENTINEL_PORT + 12))"
    if redis_sentinel_healthy; then
        redis_sentinel_tune
        say "redis-sentinel: already running (sentinels on $sentinels)"
        return 0
    fi
    # all five up but not settled (a failover in progress after a test): give it the time of
    # a failover (failover-timeout 5 s) before starting afresh
    if redis_sentinel_running && redis_sentinel_wait_healthy 15; then
        redis_sentinel_tune
        say "redis-sentinel: already running (sentinels on $sentinels; settled)"
        return 0
    fi
    redis_sentinel_stop_nodes
    local port ports=()
    for port in $(redis_sentinel_data_ports) $(redis_sentinel_ports); do ports+=("$port"); done
    redis_ports_free redis-sentinel SCALER_TEST_REDIS_SENTINEL_PORT "${ports[@]}"
    # only our ports' directories: another port base may share .run/redis-sentinel/
    for port in "${ports[@]}"; do rm -rf "${REDIS_SENTINEL_DIR:?}/$port"; done
    say "redis-sentinel: starting a master (127.0.0.1:$REDIS_SENTINEL_PORT), a replica" \
        "(:$((REDIS_SENTINEL_PORT + 1))) and 3 sentinels ($sentinels; state in ${REDIS_SENTINEL_DIR#"$ROOT/"}/)"
    local started=$SECONDS
    # no persistence; a full sync (the old master rejoining after a failover) starts at once,
    # not after the default 5 s wait for more replicas
    local data=(--save "" --appendonly no --repl-diskless-sync-delay 0)
    redis_node_start redis-sentinel "$REDIS_SENTINEL_DIR/$REDIS_SENTINEL_PORT" \
        "$REDIS_SENTINEL_PORT" "${data[@]}"
    port=$((REDIS_SENTINEL_PORT + 1))
    redis_node_start redis-sentinel "$REDIS_SENTINEL_DIR/$port" "$port" "${data[@]}" \
        --replicaof 127.0.0.1 "$REDIS_SENTINEL_PORT"
    for port in $(redis_sentinel_ports); do
        mkdir -p "$REDIS_SENTINEL_DIR/$port"
        # bind, port, dir, pidfile and log come from redis_node_start's command line (the
        # sentinel writes them into this file when it rewrites it)
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
    redis_sentinel_tune
    if ! redis_sentinel_wait_healthy "$REDIS_SENTINEL_TIMEOUT"; then
        redis_sentinel_report
        die "redis-sentinel: the sentinels do not agree on $REDIS_SENTINEL_MASTER, its replica" \
            "and each other after $REDIS_SENTINEL_TIMEOUT s (left running for a look; stop:" \
            "$0 stop redis-sentinel)"
    fi
    say "redis-sentinel: ready in $((SECONDS - started)) s (master $REDIS_SENTINEL_MASTER)"
}

# redis_sentinel_stop_nodes: stop each of our five processes (by its pidfile) that runs,
# sentinels first, so that they do not fail the master over while it goes.
redis_sentinel_stop_nodes() {
    local port
    for port in $(redis_sentinel_ports) $(redis_sentinel_data_ports); do
        redis_node_stop "$REDIS_SENTINEL_DIR/$port"
    done
}

redis-sentinel_stop() {
    local port stopped=0
    for port in $(redis_sentinel_ports) $(redis_sentinel_data_ports); do
        ! redis_node_owned "$REDIS_SENTINEL_DIR/$port" || stopped=$((stopped + 1))
        redis_node_stop "$REDIS_SENTINEL_DIR/$port"
    done
    if [[ $stopped -eq 0 ]]; then
        say "redis-sentinel: no project-owned node running"
    else
        say "redis-sentinel: stopped ($stopped processes)"
    fi
}

redis-sentinel_env() {
    local port sentinels=() nodes=()
    for port in $(redis_sentinel_ports); do sentinels+=("127.0.0.1:$port"); done
    for port in $(redis_sentinel_data_ports); do nodes+=("127.0.0.1:$port"); done
    echo "export SCALER_TEST_REDIS_SENTINELS=$(IFS=,; echo "${sentinels[*]}")"
    echo "export SCALER_TEST_REDIS_SENTINEL_MASTER=$REDIS_SENTINEL_MASTER"
    echo "export SCALER_TEST_REDIS_SENTINEL_NODES=$(IFS=,; echo "${nodes[*]}")"
}
