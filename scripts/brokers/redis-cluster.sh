# shellcheck shell=bash
# A Redis Cluster for the integration tests; sourced by scripts/brokers.sh.
#
# Three masters and three replicas (`redis-cli --cluster create --cluster-replicas 1`) from
# Debian's `redis-server`, on 127.0.0.1:${SCALER_TEST_REDIS_CLUSTER_PORT:-17000} and the five
# ports above it (the cluster bus is port + 10000, so the base stays below 55530), one directory
# per node under .run/redis-cluster/<port>/ (node.conf, nodes.conf, node.pid, node.log).
# `cluster-node-timeout` is 2 s, so a replica takes over from a killed master within a few
# seconds. A healthy running cluster is left as it is (whichever nodes are masters now);
# otherwise a fresh cluster is created (no persistence): the tests create what they read.

BROKERS+=(redis-cluster)

REDIS_CLUSTER_PORT="${SCALER_TEST_REDIS_CLUSTER_PORT:-17000}"
REDIS_CLUSTER_DIR="$RUN/redis-cluster"
REDIS_CLUSTER_TIMEOUT="${SCALER_TEST_REDIS_CLUSTER_START_TIMEOUT:-30}"

redis_cluster_ports() {
    local i
    for ((i = 0; i < 6; i++)); do echo $((REDIS_CLUSTER_PORT + i)); done
}

# redis_cluster_running: all six nodes are our live processes (redis_node_owned).
redis_cluster_running() {
    local port
    for port in $(redis_cluster_ports); do
        redis_node_owned "$REDIS_CLUSTER_DIR/$port" || return 1
    done
}

# redis_cluster_node_ok PORT: the node says cluster_state:ok, knows all six nodes and sees every
# one of the 16384 slots served (cluster_state alone stays ok with slots uncovered, since
# cluster-require-full-coverage is no).
redis_cluster_node_ok() {
    local info
    info="$(timeout 2 redis-cli -p "$1" cluster info 2>/dev/null </dev/null | tr -d '\r')" ||
        return 1
    grep -qx 'cluster_state:ok' <<<"$info" &&
        grep -qx 'cluster_slots_ok:16384' <<<"$info" &&
        grep -qx 'cluster_known_nodes:6' <<<"$info"
}

# redis_cluster_healthy: every node runs and is ok, and three of them are masters.
redis_cluster_healthy() {
    local port masters
    redis_cluster_running || return 1
    for port in $(redis_cluster_ports); do
        redis_cluster_node_ok "$port" || return 1
    done
    masters="$(timeout 2 redis-cli -p "$REDIS_CLUSTER_PORT" cluster nodes 2>/dev/null </dev/null |
        awk '$3 ~ /master/ && $3 !~ /fail/ && NF > 8' | wc -l)" || return 1
    [[ "$masters" -eq 3 ]]
}

# redis_cluster_wait_healthy SECONDS: poll until healthy; false on timeout.
redis_cluster_wait_healthy() {
    local deadline=$((SECONDS + $1))
    until redis_cluster_healthy; do
        ((SECONDS < deadline)) || return 1
        sleep 0.2
    done
}

# redis_cluster_report: what each node says, and the log of the first one not ok.
redis_cluster_report() {
    local port shown=0
    for port in $(redis_cluster_ports); do
        if ! redis_node_owned "$REDIS_CLUSTER_DIR/$port"; then
            say "redis-cluster: node $port is not running"
        elif redis_cluster_node_ok "$port"; then
            continue
        else
            local info
            info="$(timeout 2 redis-cli -p "$port" cluster info 2>/dev/null </dev/null |
                tr -d '\r' | grep -E '^cluster_(state|slots_ok|known_nodes):' | paste -sd' ')" ||
                info="no answer to CLUSTER INFO"
            say "redis-cluster: node $port: $info"
        fi
        if [[ $shown -eq 0 && -f "$REDIS_CLUSTER_DIR/$port/node.log" ]]; then
            say "redis-cluster: last lines of ${REDIS_CLUSTER_DIR#"$ROOT/"}/$port/node.log:"
            tail -n 20 "$REDIS_CLUSTER_DIR/$port/node.log" >&2
            shown=1
        fi
    done
}

redis-cluster_start() {
    redis_install
    local range="127.0.0.1:$REDIS_CLUSTER_PORT-$((REDIS_CLUSTER_PORT + 5))"
    ((REDIS_CLUSTER_PORT >= 1024 && REDIS_CLUSTER_PORT + 5 + 10000 <= 65535)) ||
        die "redis-cluster: SCALER_TEST_REDIS_CLUSTER_PORT=$REDIS_CLUSTER_PORT: the nodes and" \
            "their bus (port + 10000) must fit in 1024-65535"
    if redis_cluster_healthy; then
        say "redis-cluster: already running on $range"
        return 0
    fi
    # all six up but not settled (a failover in progress after a test killed a master): give it
    # the time of a failover before starting afresh
    if redis_cluster_running && redis_cluster_wait_healthy 10; then
        say "redis-cluster: already running on $range (settled)"
        return 0
    fi
    redis_cluster_stop_nodes
    local port ports=()
    for port in $(redis_cluster_ports); do ports+=("$port" $((port + 10000))); done
    redis_ports_free redis-cluster SCALER_TEST_REDIS_CLUSTER_PORT "${ports[@]}"
    # only our ports' directories: another port base may share .run/redis-cluster/
    for port in $(redis_cluster_ports); do rm -rf "${REDIS_CLUSTER_DIR:?}/$port"; done
    say "redis-cluster: starting 6 nodes on $range (state in ${REDIS_CLUSTER_DIR#"$ROOT/"}/)"
    local started=$SECONDS nodes=()
    for port in $(redis_cluster_ports); do
        # a config file, so that a test can restart a node it killed as it was (node.conf)
        mkdir -p "$REDIS_CLUSTER_DIR/$port"
        cat >"$REDIS_CLUSTER_DIR/$port/node.conf" <<CONF
bind 127.0.0.1
port $port
daemonize yes
dir $REDIS_CLUSTER_DIR/$port
pidfile $REDIS_CLUSTER_DIR/$port/node.pid
logfile $REDIS_CLUSTER_DIR/$port/node.log
cluster-enabled yes
cluster-config-file $REDIS_CLUSTER_DIR/$port/nodes.conf
cluster-node-timeout 2000
# the other masters keep serving while one is down (Redis's default refuses every key then)
cluster-require-full-coverage no
# a replica may always take over, however long ago it last heard its master (a node restarted
# by a test would otherwise wait out the validity window)
cluster-replica-validity-factor 0
save ""
appendonly no
# a restarted node's full sync starts at once, not after the default 5 s wait for more replicas
repl-diskless-sync-delay 0
CONF
        redis_node_start redis-cluster "$REDIS_CLUSTER_DIR/$port" "$port" \
            "$REDIS_CLUSTER_DIR/$port/node.conf"
        nodes+=("127.0.0.1:$port")
    done
    if ! timeout 30 redis-cli --cluster create "${nodes[@]}" --cluster-replicas 1 --cluster-yes \
        >"$REDIS_CLUSTER_DIR/create.log" 2>&1 </dev/null; then
        tail -n 30 "$REDIS_CLUSTER_DIR/create.log" >&2
        redis_cluster_stop_nodes
        die "redis-cluster: redis-cli --cluster create failed (log: ${REDIS_CLUSTER_DIR#"$ROOT/"}/create.log)"
    fi
    if ! redis_cluster_wait_healthy "$REDIS_CLUSTER_TIMEOUT"; then
        redis_cluster_report
        die "redis-cluster: not every node reports cluster_state:ok with all 16384 slots served" \
            "after $REDIS_CLUSTER_TIMEOUT s (nodes left running for a look; stop: $0 stop redis-cluster)"
    fi
    say "redis-cluster: ready in $((SECONDS - started)) s (3 masters, 3 replicas, 16384 slots)"
}

# redis_cluster_stop_nodes: stop each of our nodes (by its pidfile) that runs.
redis_cluster_stop_nodes() {
    local port
    for port in $(redis_cluster_ports); do
        redis_node_stop "$REDIS_CLUSTER_DIR/$port"
    done
}

redis-cluster_stop() {
    local port stopped=0
    for port in $(redis_cluster_ports); do
        ! redis_node_owned "$REDIS_CLUSTER_DIR/$port" || stopped=$((stopped + 1))
        redis_node_stop "$REDIS_CLUSTER_DIR/$port"
    done
    if [[ $stopped -eq 0 ]]; then
        say "redis-cluster: no project-owned node running"
    else
        say "redis-cluster: stopped ($stopped nodes)"
    fi
}

redis-cluster_env() {
    local port nodes=()
    for port in $(redis_cluster_ports); do nodes+=("127.0.0.1:$port"); done
    echo "export SCALER_TEST_REDIS_CLUSTER_NODES=$(IFS=,; echo "${nodes[*]}")"
    echo "export SCALER_TEST_REDIS_CLUSTER_DIR=$REDIS_CLUSTER_DIR"
}
