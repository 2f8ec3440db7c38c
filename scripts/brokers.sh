#!/usr/bin/env bash
# Brokers for the integration tests and for development, on loopback, without Docker.
#   scripts/brokers.sh start [BROKER...]  install (if missing) and start each broker; idempotent
#   scripts/brokers.sh stop  [BROKER...]  stop the project-owned brokers (never someone else's)
#   scripts/brokers.sh env   [BROKER...]  print `export SCALER_TEST_*=...` lines for `eval`
# Brokers: redis here; every scripts/brokers/<name>.sh adds one (kafka, rabbitmq, redis-cluster,
# redis-sentinel): it defines `<name>_start`, `<name>_stop` and `<name>_env` and appends <name>
# to BROKERS.
# State (data dir, pidfile, log) lives under .run/<broker>/ in the repository (gitignored).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT="$PWD"
RUN="$ROOT/.run"
BROKERS=(redis)

REDIS_PORT="${SCALER_TEST_REDIS_PORT:-16379}"
REDIS_DIR="$RUN/redis"
REDIS_PIDFILE="$REDIS_DIR/redis-$REDIS_PORT.pid"
REDIS_LOG="$REDIS_DIR/redis-$REDIS_PORT.log"

say() { echo "brokers: $*" >&2; }
die() {
    say "error: $*"
    exit 1
}

# --- shared helpers -------------------------------------------------------------------------

APT_UPDATED=0
# apt_install PACKAGE...: install Debian packages (runs `apt-get update` once per invocation).
apt_install() {
    local sudo=()
    if [[ $(id -u) -ne 0 ]]; then
        command -v sudo >/dev/null || die "not root and no sudo: install $* yourself"
        sudo=(sudo)
    fi
    command -v apt-get >/dev/null || die "no apt-get on this machine: install $* yourself"
    if [[ $APT_UPDATED -eq 0 ]]; then
        say "apt-get update"
        "${sudo[@]}" apt-get update -qq </dev/null
        APT_UPDATED=1
    fi
    say "installing $*"
    "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" </dev/null
}

# running PID: true if PID is a live process (an exited daemon not yet reaped, a zombie, is not).
running() {
    local stat
    kill -0 "$1" 2>/dev/null || return 1
    stat="$(cat "/proc/$1/stat" 2>/dev/null)" || return 0
    stat="${stat##*) }"
    [[ "${stat:0:1}" != Z ]]
}

# pid_alive PIDFILE: true if PIDFILE names a running process.
pid_alive() {
    local pid
    [[ -f "$1" ]] || return 1
    pid="$(cat "$1" 2>/dev/null)" || return 1
    [[ "$pid" =~ ^[0-9]+$ ]] && running "$pid"
}

# wait_gone PID SECONDS: wait for PID to exit; false on timeout.
wait_gone() {
    local pid="$1" i
    for ((i = 0; i < $2 * 10; i++)); do
        running "$pid" || return 0
        sleep 0.1
    done
    return 1
}

# --- redis ------------------------------------------------------------------------------------

# redis_cli ARGS...: redis-cli against the test port, bounded in time (a non-Redis listener on
# the port would otherwise keep it waiting forever).
redis_cli() {
    timeout 5 redis-cli -h 127.0.0.1 -p "$REDIS_PORT" "$@" </dev/null
}

redis_ping() {
    [[ "$(redis_cli ping 2>/dev/null)" == "PONG" ]]
}

# port_open PORT: true if something accepts TCP connections on 127.0.0.1:PORT.
port_open() {
    timeout 2 bash -c "exec 3<>/dev/tcp/127.0.0.1/$1" 2>/dev/null
}

redis_start() {
    redis_install
    if redis_ping; then
        if pid_alive "$REDIS_PIDFILE"; then
            say "redis: already running on 127.0.0.1:$REDIS_PORT (pid $(cat "$REDIS_PIDFILE"))"
        else
            say "redis: something already answers PING on 127.0.0.1:$REDIS_PORT; using it"
        fi
        return 0
    fi
    if port_open "$REDIS_PORT"; then
        die "redis: 127.0.0.1:$REDIS_PORT is taken by something that does not answer PING" \
            "(set SCALER_TEST_REDIS_PORT to another port)"
    fi
    mkdir -p "$REDIS_DIR"
    rm -f "$REDIS_PIDFILE"
    : >"$REDIS_LOG"
    say "redis: starting on 127.0.0.1:$REDIS_PORT (state in ${REDIS_DIR#"$ROOT/"}/)"
    redis-server --bind 127.0.0.1 --port "$REDIS_PORT" --daemonize yes \
        --dir "$REDIS_DIR" --pidfile "$REDIS_PIDFILE" --logfile "$REDIS_LOG" \
        --save "" --appendonly no </dev/null ||
        {
            tail -n 30 "$REDIS_LOG" >&2 2>/dev/null || true
            die "redis: redis-server failed to start"
        }
    local deadline=$((SECONDS + 20))
    while ((SECONDS < deadline)); do
        if redis_ping; then
            say "redis: ready (pid $(cat "$REDIS_PIDFILE" 2>/dev/null || echo '?'))"
            return 0
        fi
        sleep 0.1
    done
    say "redis: no PONG on 127.0.0.1:$REDIS_PORT after 20 s; last lines of $REDIS_LOG:"
    tail -n 30 "$REDIS_LOG" >&2 2>/dev/null || true
    exit 1
}

redis_stop() {
    if ! pid_alive "$REDIS_PIDFILE"; then
        rm -f "$REDIS_PIDFILE"
        say "redis: no project-owned server running"
        return 0
    fi
    local pid served
    pid="$(cat "$REDIS_PIDFILE")"
    served="$(redis_cli info server 2>/dev/null |
        tr -d '\r' | sed -n 's/^process_id://p')" || true
    if [[ "$served" == "$pid" ]]; then
        redis_cli shutdown nosave >/dev/null 2>&1 || true
    else
        kill -TERM "$pid" 2>/dev/null || true
    fi
    if ! wait_gone "$pid" 10; then
        say "redis: pid $pid ignored shutdown; killing it"
        kill -KILL "$pid" 2>/dev/null || true
        wait_gone "$pid" 5 || die "redis: pid $pid does not exit"
    fi
    rm -f "$REDIS_PIDFILE"
    say "redis: stopped (pid $pid)"
}

redis_env() {
    echo "export SCALER_TEST_REDIS_URL=redis://127.0.0.1:$REDIS_PORT/0"
}

# redis_install: redis-server and redis-cli from Debian's packages, when missing.
redis_install() {
    if ! command -v redis-server >/dev/null || ! command -v redis-cli >/dev/null; then
        apt_install redis-server
        command -v redis-server >/dev/null || die "redis-server still not on PATH after install"
    fi
}

# redis_node_owned DIR: DIR/node.pid names a live redis-server of ours: its command is
# redis-server and its working directory is DIR (redis-server changes into its `dir`), so a pid
# recycled by another process, or someone else's redis-server, is never taken for ours.
redis_node_owned() {
    local pid
    pid_alive "$1/node.pid" || return 1
    pid="$(cat "$1/node.pid")"
    [[ "$(cat "/proc/$pid/comm" 2>/dev/null)" == redis-server ]] || return 1
    [[ "$(readlink "/proc/$pid/cwd" 2>/dev/null)" == "$(cd "$1" && pwd -P)" ]]
}

# redis_ports_free NAME HINT PORT...: die, before anything is started, if any PORT on 127.0.0.1
# is taken (by another checkout's brokers, say); HINT names the variable that moves the ports.
redis_ports_free() {
    local name="$1" hint="$2" port taken=()
    shift 2
    for port in "$@"; do
        ! port_open "$port" || taken+=("$port")
    done
    [[ ${#taken[@]} -eq 0 ]] ||
        die "$name: port(s) ${taken[*]} on 127.0.0.1 taken by processes this checkout did not start" \
            "(another checkout's brokers?); stop them or move the ports with $hint"
}

# redis_node_start NAME DIR PORT [redis-server ARGS...]: one more project-owned redis-server
# (of a Cluster or a Sentinel group) on 127.0.0.1:PORT, state under DIR (pidfile node.pid, log
# node.log); waits for PING (a sentinel answers it too).
redis_node_start() {
    local name="$1" dir="$2" port="$3"
    shift 3
    if port_open "$port"; then
        die "$name: 127.0.0.1:$port is taken (stop whatever listens there)"
    fi
    mkdir -p "$dir"
    rm -f "$dir/node.pid"
    : >"$dir/node.log"
    redis-server "$@" --bind 127.0.0.1 --port "$port" --daemonize yes --dir "$dir" \
        --pidfile "$dir/node.pid" --logfile "$dir/node.log" </dev/null ||
        {
            tail -n 30 "$dir/node.log" >&2 2>/dev/null || true
            die "$name: redis-server on port $port failed to start"
        }
    local deadline=$((SECONDS + 20))
    until [[ "$(timeout 2 redis-cli -p "$port" ping 2>/dev/null)" == "PONG" ]]; do
        if ((SECONDS >= deadline)); then
            tail -n 30 "$dir/node.log" >&2 2>/dev/null || true
            die "$name: no PONG on 127.0.0.1:$port after 20 s"
        fi
        sleep 0.1
    done
}

# redis_node_stop DIR: stop the project-owned redis-server whose pidfile is DIR/node.pid; a
# pidfile naming a process that is not ours (redis_node_owned) is removed, the process left alone.
redis_node_stop() {
    local pid
    if ! redis_node_owned "$1"; then
        if pid_alive "$1/node.pid"; then
            say "redis: $1/node.pid names pid $(cat "$1/node.pid"), not our redis-server; leaving it"
        fi
        rm -f "$1/node.pid"
        return 0
    fi
    pid="$(cat "$1/node.pid")"
    kill -TERM "$pid" 2>/dev/null || true
    if ! wait_gone "$pid" 10; then
        kill -KILL "$pid" 2>/dev/null || true
        wait_gone "$pid" 5 || die "redis: pid $pid does not exit"
    fi
    rm -f "$1/node.pid"
}

# --- the other brokers, one file each -----------------------------------------------------------

for broker_file in "$ROOT"/scripts/brokers/*.sh; do
    [[ -e "$broker_file" ]] || continue
    # shellcheck source=/dev/null
    source "$broker_file"
done

# --- dispatch ---------------------------------------------------------------------------------

usage() {
    echo "usage: $0 start|stop|env [${BROKERS[*]}]" >&2
    exit 2
}

[[ $# -ge 1 ]] || usage
action="$1"
shift
case "$action" in
start | stop | env) ;;
*) usage ;;
esac
selected=("$@")
[[ ${#selected[@]} -gt 0 ]] || selected=("${BROKERS[@]}")
for broker in "${selected[@]}"; do
    [[ " ${BROKERS[*]} " == *" $broker "* ]] || die "unknown broker '$broker' (known: ${BROKERS[*]})"
done
for broker in "${selected[@]}"; do
    "${broker}_${action}"
done
