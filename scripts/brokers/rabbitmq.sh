# shellcheck shell=bash
# RabbitMQ for the integration tests and for development; sourced by scripts/brokers.sh.
#
# A project-owned node `kqs@localhost` from Debian's `rabbitmq-server` package (installed when
# missing), run as the invoking user (root on CI) without systemd, with every file under
# .run/rabbitmq/: config, enabled-plugins file, definitions, Erlang cookie (HOME), Mnesia and logs.
# It never touches a system node (`rabbit@<host>`, ports 5672/15672/25672), so both can coexist.
#
#   AMQP        127.0.0.1:${SCALER_TEST_RABBITMQ_PORT:-15673}
#   management  127.0.0.1:${SCALER_TEST_RABBITMQ_MGMT_PORT:-15674}   (rabbitmq_management)
#   prometheus  127.0.0.1:${SCALER_TEST_RABBITMQ_PROM_PORT:-15675}   (rabbitmq_prometheus)
#   Erlang dist 127.0.0.1:${SCALER_TEST_RABBITMQ_DIST_PORT:-15676}   (rabbitmqctl talks to it)
#
# The test user `kqs` / `kqs-secret` (administrator, all permissions on `/` and `kqs-test`) comes
# from a definitions file imported at every boot, so it exists before the node reports ready.
# Stop it with `scripts/brokers.sh stop rabbitmq`, i.e. `rabbitmqctl -n kqs@localhost stop`.

BROKERS+=(rabbitmq)

RABBITMQ_PORT="${SCALER_TEST_RABBITMQ_PORT:-15673}"
RABBITMQ_MGMT_PORT="${SCALER_TEST_RABBITMQ_MGMT_PORT:-15674}"
RABBITMQ_PROM_PORT="${SCALER_TEST_RABBITMQ_PROM_PORT:-15675}"
RABBITMQ_DIST_PORT="${SCALER_TEST_RABBITMQ_DIST_PORT:-15676}"
RABBITMQ_NODE="${SCALER_TEST_RABBITMQ_NODE:-kqs@localhost}"
RABBITMQ_DIR="$RUN/rabbitmq"
RABBITMQ_PIDFILE="$RABBITMQ_DIR/node.pid"   # written by the node itself (the beam.smp pid)
RABBITMQ_LAUNCHER="$RABBITMQ_DIR/launcher.pid"   # the rabbitmq-server script we started
RABBITMQ_STDOUT="$RABBITMQ_DIR/log/stdout.log"
RABBITMQ_USER=kqs
RABBITMQ_PASSWORD=kqs-secret
RABBITMQ_TEST_VHOST=kqs-test
# Debian's /usr/sbin wrappers re-exec as the `rabbitmq` user with its HOME (and cookie): call the
# real scripts so that the node and the CLI share the cookie under our HOME.
RABBITMQ_BIN=/usr/lib/rabbitmq/bin
RABBITMQ_START_TIMEOUT="${SCALER_TEST_RABBITMQ_START_TIMEOUT:-90}"

# rabbitmq_env_vars: the environment of the node and of every CLI call (one array, one truth).
rabbitmq_env_vars() {
    RABBITMQ_ENV=(
        "HOME=$RABBITMQ_DIR"
        "RABBITMQ_NODENAME=$RABBITMQ_NODE"
        "RABBITMQ_NODE_IP_ADDRESS=127.0.0.1"
        "RABBITMQ_NODE_PORT=$RABBITMQ_PORT"
        "RABBITMQ_DIST_PORT=$RABBITMQ_DIST_PORT"
        "RABBITMQ_CONFIG_FILE=$RABBITMQ_DIR/rabbitmq.conf"
        "RABBITMQ_ADVANCED_CONFIG_FILE=$RABBITMQ_DIR/advanced.config"
        "RABBITMQ_CONF_ENV_FILE=$RABBITMQ_DIR/rabbitmq-env.conf"
        "RABBITMQ_ENABLED_PLUGINS_FILE=$RABBITMQ_DIR/enabled_plugins"
        "RABBITMQ_MNESIA_BASE=$RABBITMQ_DIR/mnesia"
        "RABBITMQ_LOG_BASE=$RABBITMQ_DIR/log"
        "RABBITMQ_PID_FILE=$RABBITMQ_PIDFILE"
        # the distribution listener and a freshly started epmd stay on loopback too
        "RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS=-kernel inet_dist_use_interface {127,0,0,1}"
        "ERL_EPMD_ADDRESS=127.0.0.1"
    )
}

# rabbitmqctl_ ARGS...: rabbitmqctl against our node, bounded in time.
rabbitmqctl_() {
    local seconds="$1"
    shift
    rabbitmq_env_vars
    timeout "$seconds" env "${RABBITMQ_ENV[@]}" "$RABBITMQ_BIN/rabbitmqctl" -n "$RABBITMQ_NODE" "$@" \
        </dev/null
}

# rabbitmq_http PATH: GET the management API as the test user; prints the body.
rabbitmq_http() {
    curl -fsS --max-time 5 -u "$RABBITMQ_USER:$RABBITMQ_PASSWORD" \
        "http://127.0.0.1:$RABBITMQ_MGMT_PORT$1" 2>/dev/null
}

rabbitmq_install() {
    if [[ -x "$RABBITMQ_BIN/rabbitmq-server" && -x "$RABBITMQ_BIN/rabbitmqctl" ]] &&
        command -v curl >/dev/null; then
        return 0
    fi
    # Without systemd, the package's postinst would start a system node through its init script
    # (on 5672, as user rabbitmq). policy-rc.d exit 101 = "do not start services"; most
    # container images ship one; if this machine has none, put one in place for the install only.
    local policy=/usr/sbin/policy-rc.d own_policy=0
    if [[ ! -e $policy && $(id -u) -eq 0 ]]; then
        printf '#!/bin/sh\nexit 101\n' >"$policy"
        chmod 755 "$policy"
        own_policy=1
    fi
    local status=0
    (apt_install rabbitmq-server curl) || status=$?
    [[ $own_policy -eq 0 ]] || rm -f "$policy"
    [[ $status -eq 0 ]] || die "rabbitmq: installing rabbitmq-server failed"
    [[ -x "$RABBITMQ_BIN/rabbitmq-server" ]] ||
        die "rabbitmq: $RABBITMQ_BIN/rabbitmq-server missing after installing rabbitmq-server"
}

# rabbitmq_owned PIDFILE: PIDFILE names a live process started by this script for this state
# dir (its environment names our pidfile), never a recycled pid of something else.
rabbitmq_owned() {
    pid_alive "$1" || return 1
    tr '\0' '\n' <"/proc/$(cat "$1")/environ" 2>/dev/null |
        grep -qxF "RABBITMQ_PID_FILE=$RABBITMQ_PIDFILE"
}

# rabbitmq_node_pid: the pid of our running node, from the pidfile it wrote (or our launcher's).
rabbitmq_node_pid() {
    if rabbitmq_owned "$RABBITMQ_PIDFILE"; then
        cat "$RABBITMQ_PIDFILE"
    elif rabbitmq_owned "$RABBITMQ_LAUNCHER"; then
        cat "$RABBITMQ_LAUNCHER"
    else
        return 1
    fi
}

rabbitmq_write_config() {
    mkdir -p "$RABBITMQ_DIR/log" "$RABBITMQ_DIR/mnesia"
    chmod 700 "$RABBITMQ_DIR"
    # The cookie is created here, before the node or any CLI call could each make their own.
    if [[ ! -s "$RABBITMQ_DIR/.erlang.cookie" ]]; then
        (umask 077 && head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$RABBITMQ_DIR/.erlang.cookie")
    fi
    chmod 400 "$RABBITMQ_DIR/.erlang.cookie"
    : >"$RABBITMQ_DIR/rabbitmq-env.conf" # never read /etc/rabbitmq/rabbitmq-env.conf
    echo '[rabbitmq_management,rabbitmq_prometheus].' >"$RABBITMQ_DIR/enabled_plugins"
    cat >"$RABBITMQ_DIR/definitions.json" <<EOF
{
  "users": [{"name": "$RABBITMQ_USER", "password": "$RABBITMQ_PASSWORD", "tags": "administrator"}],
  "vhosts": [{"name": "/"}, {"name": "$RABBITMQ_TEST_VHOST"}],
  "permissions": [
    {"user": "$RABBITMQ_USER", "vhost": "/", "configure": ".*", "write": ".*", "read": ".*"},
    {"user": "$RABBITMQ_USER", "vhost": "$RABBITMQ_TEST_VHOST", "configure": ".*", "write": ".*", "read": ".*"}
  ]
}
EOF
    cat >"$RABBITMQ_DIR/rabbitmq.conf" <<EOF
# written by scripts/brokers/rabbitmq.sh; overwritten on every start
management.tcp.ip = 127.0.0.1
management.tcp.port = $RABBITMQ_MGMT_PORT
prometheus.tcp.ip = 127.0.0.1
prometheus.tcp.port = $RABBITMQ_PROM_PORT
# statistics (queue counts, message rates in the management API) every second, not every 5 s:
# emitted every second, and kept as 1-second samples (the default keeps 5-second samples, so
# rates would only move every 5 s)
collect_statistics_interval = 1000
management.sample_retention_policies.global.minute = 1
management.sample_retention_policies.global.hour = 60
management.sample_retention_policies.basic.minute = 1
management.sample_retention_policies.basic.hour = 60
management.sample_retention_policies.detailed.10 = 1
# the test user and vhosts, on every boot (idempotent); no default guest user is seeded then
load_definitions = $RABBITMQ_DIR/definitions.json
log.console = false
log.file.level = info
EOF
}

# rabbitmq_wait_ready PID: until await_startup succeeds and the API answers the test user.
rabbitmq_wait_ready() {
    local pid="$1" deadline=$((SECONDS + RABBITMQ_START_TIMEOUT))
    while ((SECONDS < deadline)); do
        running "$pid" || rabbitmq_owned "$RABBITMQ_PIDFILE" || {
            say "rabbitmq: the node exited during startup; last lines of its logs:"
            tail -n 30 "$RABBITMQ_STDOUT" "$RABBITMQ_DIR/log/$RABBITMQ_NODE.log" >&2 2>/dev/null || true
            return 1
        }
        # fails fast while the node is not reachable yet; waits while it boots
        if rabbitmqctl_ 30 await_startup --timeout 25 >/dev/null 2>&1; then
            break
        fi
        sleep 0.5
    done
    while ((SECONDS < deadline)); do
        if rabbitmq_http /api/overview >/dev/null &&
            rabbitmq_http "/api/vhosts/$RABBITMQ_TEST_VHOST" >/dev/null; then
            return 0
        fi
        sleep 0.2
    done
    say "rabbitmq: not ready after ${RABBITMQ_START_TIMEOUT} s; last lines of its logs:"
    tail -n 30 "$RABBITMQ_STDOUT" "$RABBITMQ_DIR/log/$RABBITMQ_NODE.log" >&2 2>/dev/null || true
    return 1
}

rabbitmq_start() {
    rabbitmq_install
    local pid
    if pid="$(rabbitmq_node_pid)"; then
        if rabbitmq_http /api/overview >/dev/null; then
            say "rabbitmq: already running on 127.0.0.1:$RABBITMQ_PORT (pid $pid)"
            return 0
        fi
        say "rabbitmq: node pid $pid exists but does not answer yet; waiting"
        rabbitmq_wait_ready "$pid" || die "rabbitmq: node pid $pid is not healthy; try: $0 stop rabbitmq"
        return 0
    fi
    local port
    for port in "$RABBITMQ_PORT" "$RABBITMQ_MGMT_PORT" "$RABBITMQ_PROM_PORT" "$RABBITMQ_DIST_PORT"; do
        if port_open "$port"; then
            die "rabbitmq: 127.0.0.1:$port is taken by something that is not our node" \
                "(set SCALER_TEST_RABBITMQ_PORT/_MGMT_PORT/_PROM_PORT/_DIST_PORT)"
        fi
    done
    rabbitmq_write_config
    rm -f "$RABBITMQ_PIDFILE" "$RABBITMQ_LAUNCHER"
    : >"$RABBITMQ_STDOUT"
    say "rabbitmq: starting node $RABBITMQ_NODE on 127.0.0.1:$RABBITMQ_PORT" \
        "(management :$RABBITMQ_MGMT_PORT; state in ${RABBITMQ_DIR#"$ROOT/"}/)"
    local started=$SECONDS
    rabbitmq_env_vars
    # setsid: own session, so that neither Ctrl-C in this shell nor the end of a CI step's
    # process group takes the node down; stdin closed, output kept for post-mortems.
    setsid env "${RABBITMQ_ENV[@]}" "$RABBITMQ_BIN/rabbitmq-server" \
        </dev/null >>"$RABBITMQ_STDOUT" 2>&1 &
    echo $! >"$RABBITMQ_LAUNCHER"
    if ! rabbitmq_wait_ready "$!"; then
        rabbitmq_stop >/dev/null 2>&1 || true
        die "rabbitmq: failed to start"
    fi
    say "rabbitmq: ready in $((SECONDS - started)) s (pid $(rabbitmq_node_pid || echo '?'))"
}

rabbitmq_stop() {
    local pid launcher=""
    if ! pid="$(rabbitmq_node_pid)"; then
        rm -f "$RABBITMQ_PIDFILE" "$RABBITMQ_LAUNCHER"
        say "rabbitmq: no project-owned node running"
        return 0
    fi
    rabbitmq_owned "$RABBITMQ_LAUNCHER" && launcher="$(cat "$RABBITMQ_LAUNCHER")"
    # `stop PIDFILE` returns once the node's OS process has exited
    if [[ -f "$RABBITMQ_PIDFILE" ]]; then
        rabbitmqctl_ 60 stop "$RABBITMQ_PIDFILE" >/dev/null 2>&1 || true
    else
        rabbitmqctl_ 60 stop >/dev/null 2>&1 || true
    fi
    local p
    for p in "$pid" $launcher; do
        if ! wait_gone "$p" 20; then
            say "rabbitmq: pid $p ignored the stop command; killing it"
            kill -TERM "$p" 2>/dev/null || true
            wait_gone "$p" 10 || kill -KILL "$p" 2>/dev/null || true
            wait_gone "$p" 5 || die "rabbitmq: pid $p does not exit"
        fi
    done
    rm -f "$RABBITMQ_PIDFILE" "$RABBITMQ_LAUNCHER"
    say "rabbitmq: stopped (pid $pid)"
}

rabbitmq_env() {
    echo "export SCALER_TEST_AMQP_URL=amqp://$RABBITMQ_USER:$RABBITMQ_PASSWORD@127.0.0.1:$RABBITMQ_PORT/%2F"
    echo "export SCALER_TEST_RABBITMQ_HTTP=http://$RABBITMQ_USER:$RABBITMQ_PASSWORD@127.0.0.1:$RABBITMQ_MGMT_PORT"
    echo "export SCALER_TEST_RABBITMQ_PROMETHEUS=http://127.0.0.1:$RABBITMQ_PROM_PORT/metrics"
    echo "export SCALER_TEST_RABBITMQ_NODE=$RABBITMQ_NODE"
    echo "export SCALER_TEST_RABBITMQ_VHOST=$RABBITMQ_TEST_VHOST"
}
