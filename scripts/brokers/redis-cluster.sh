# shellcheck shell=bash
# A Redis Cluster for the integration tests; sourced by scripts/brokers.sh.
#
# Three masters and three replicas (`redis-cli --cluster create --cluster-replicas 1`) from
# Debian's `redis-server`, on 127.0.0.1:${SCALER_TEST_REDIS_CLUSTER_PORT:-17000} and the five
# ports above it (the cluster bus is port + 10000), one directory per node under
# .run/redis-cluster/<port>/. `cluster-node-timeout` is 2 s, so a replica takes over from a
# killed master within a few seconds. A fresh cluster is created at each start (no
# persistence): the tests create what they read.

BROKERS+=(redis-cluster)

REDIS_CLUSTER_PORT="${SCALER_TEST_REDIS_CLUSTER_PORT:-17000}"
REDIS_CLUSTER_DIR="$RUN/redis-cluster"

redis_cluster_ports() {
    local i
    for ((i = 0; i < 6; i++)); do echo $((REDIS_CLUSTER_PORT + i)); done
}

# redis_cluster_healthy: every node runs (our pidfiles) and reports cluster_state:ok.
redis_cluster_healthy() {
    local port
    for port in $(redis_cluster_ports); do
        pid_alive "$REDIS_CLUSTER_DIR/$port/node.pid" || return 1
        timeout 2 redis-cli -p "$port" cluster info 2>/dev/null | tr -d '\r' |
            grep -qx 'cluster_state:ok' || return 1
    done
}

redis-cluster_start() {
    redis_install
    if redis_cluster_healthy; then
        say "redis-cluster: already running on 127.0.0.1:$REDIS_CLUSTER_PORT-$((REDIS_CLUSTER_PORT + 5))"
        return 0
    fi
    redis-cluster_stop >/dev/null 2>&1
    rm -rf "$REDIS_CLUSTER_DIR"
    say "redis-cluster: starting 6 nodes on 127.0.0.1:$REDIS_CLUSTER_PORT-$((REDIS_CLUSTER_PORT + 5)) (state in ${REDIS_CLUSTER_DIR#"$ROOT/"}/)"
    local port nodes=()
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
CONF
        redis_node_start redis-cluster "$REDIS_CLUSTER_DIR/$port" "$port" \
            "$REDIS_CLUSTER_DIR/$port/node.conf"
        nodes+=("127.0.0.1:$port")
    done
    timeout 30 redis-cli --cluster create "${nodes[@]}" --cluster-replicas 1 --cluster-yes \
        >"$REDIS_CLUSTER_DIR/create.log" 2>&1 </dev/null ||
        {
            tail -n 30 "$REDIS_CLUSTER_DIR/create.log" >&2
            die "redis-cluster: redis-cli --cluster create failed"
        }
    local deadline=$((SECONDS + 30))
    until redis_cluster_healthy; do
        if ((SECONDS >= deadline)); then
            tail -n 20 "$REDIS_CLUSTER_DIR/$REDIS_CLUSTER_PORT/node.log" >&2
            die "redis-cluster: cluster_state is not ok on every node after 30 s"
        fi
        sleep 0.2
    done
    say "redis-cluster: ready (3 masters, 3 replicas)"
}

redis-cluster_stop() {
    local port
    for port in $(redis_cluster_ports); do
        redis_node_stop "$REDIS_CLUSTER_DIR/$port"
    done
    say "redis-cluster: stopped"
}

redis-cluster_env() {
    local port nodes=()
    for port in $(redis_cluster_ports); do nodes+=("127.0.0.1:$port"); done
    echo "export SCALER_TEST_REDIS_CLUSTER_NODES=$(IFS=,; echo "${nodes[*]}")"
    echo "export SCALER_TEST_REDIS_CLUSTER_DIR=$REDIS_CLUSTER_DIR"
}
