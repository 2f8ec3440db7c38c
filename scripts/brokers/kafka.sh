# shellcheck shell=bash
# Apache Kafka for scripts/brokers.sh (sourced by it; uses its helpers and $ROOT, $RUN).
# A single-node KRaft broker (broker + controller in one JVM) on loopback, from Maven Central jars
# (scripts/kafka/pom.xml) run with the machine's Java 17; no Docker, no Kafka tarball.
#   jars   ${SCALER_KAFKA_HOME:-~/.cache/keda-queue-scaler/kafka-<version>}/lib, outside git,
#          resolved once with mvn (a stamp holding the pom's checksum marks the folder complete;
#          while it matches, starting needs no network and no mvn)
#   state  .run/kafka/: server.properties, log4j2.xml, data/ (kept across restarts;
#          SCALER_KAFKA_RESET=1 wipes it on stop, and before a start), server.log (INFO),
#          kafka.out (console: WARN, storage tool output, JVM errors), kafka.pid, mvn.log
# Listeners, all on 127.0.0.1: PLAINTEXT ${SCALER_TEST_KAFKA_PORT:-19092}; SASL_PLAINTEXT
# ${SCALER_TEST_KAFKA_SASL_PORT:-19093} (PLAIN, SCRAM-SHA-256, SCRAM-SHA-512); CONTROLLER
# ${SCALER_TEST_KAFKA_CONTROLLER_PORT:-19094} (recorded when data/ is formatted: changing it
# needs SCALER_KAFKA_RESET=1). Test users: PLAIN kqs-plain, SCRAM (both hashes) kqs-scram.

BROKERS+=(kafka)

KAFKA_POM="$ROOT/scripts/kafka/pom.xml"
KAFKA_VERSION="$(sed -n 's:.*<kafka\.version>\(.*\)</kafka\.version>.*:\1:p' "$KAFKA_POM")"
KAFKA_HOME="${SCALER_KAFKA_HOME:-$HOME/.cache/keda-queue-scaler/kafka-$KAFKA_VERSION}"
KAFKA_LIB="$KAFKA_HOME/lib"
KAFKA_STAMP="$KAFKA_LIB/.complete"

KAFKA_PORT="${SCALER_TEST_KAFKA_PORT:-19092}"
KAFKA_SASL_PORT="${SCALER_TEST_KAFKA_SASL_PORT:-19093}"
KAFKA_CONTROLLER_PORT="${SCALER_TEST_KAFKA_CONTROLLER_PORT:-19094}"
KAFKA_PLAIN_USER=kqs-plain
KAFKA_PLAIN_PASSWORD=kqs-plain-secret
KAFKA_SCRAM_USER=kqs-scram
KAFKA_SCRAM_PASSWORD=kqs-scram-secret

KAFKA_DIR="$RUN/kafka"
KAFKA_DATA="$KAFKA_DIR/data"
KAFKA_CONF="$KAFKA_DIR/server.properties"
KAFKA_LOG4J="$KAFKA_DIR/log4j2.xml"
KAFKA_TOOLS_LOG4J="$KAFKA_DIR/log4j2-tools.xml"
KAFKA_LOG="$KAFKA_DIR/server.log"
KAFKA_OUT="$KAFKA_DIR/kafka.out"
KAFKA_PIDFILE="$KAFKA_DIR/kafka.pid"
KAFKA_READY_TIMEOUT=90
KAFKA_STOP_TIMEOUT=30
# Small heap, one GC thread: the machine has 2 cores and the tests run beside the broker.
KAFKA_JVM_OPTS=(-Xms256m -Xmx768m -XX:+UseSerialGC -XX:+ExitOnOutOfMemoryError
    -Djava.awt.headless=true -Dfile.encoding=UTF-8)

# kafka_java_ok: true if `java` is Java 17 or newer.
kafka_java_ok() {
    local version
    command -v java >/dev/null || return 1
    version="$(java -version 2>&1 | sed -n 's/.*version "\([0-9]*\).*/\1/p' | head -n 1)"
    [[ "$version" =~ ^[0-9]+$ ]] && ((version >= 17))
}

# kafka_use_java17: put an installed Debian Java 17 first on PATH (when the default is older).
kafka_use_java17() {
    local java17
    for java17 in /usr/lib/jvm/java-17-openjdk-*/bin/java; do
        if [[ -x "$java17" ]]; then
            PATH="$(dirname "$java17"):$PATH"
            return 0
        fi
    done
    return 1
}

# kafka_tools NEED_MVN: make sure Java 17+ (and mvn, when NEED_MVN is 1) are installed.
kafka_tools() {
    local need_mvn="$1" missing=()
    kafka_java_ok || { kafka_use_java17 && kafka_java_ok; } || missing+=(openjdk-17-jre-headless)
    if [[ "$need_mvn" == 1 ]] && ! command -v mvn >/dev/null; then
        missing+=(maven)
    fi
    [[ ${#missing[@]} -eq 0 ]] && return 0
    apt_install "${missing[@]}"
    kafka_java_ok || { kafka_use_java17 && kafka_java_ok; } ||
        die "kafka: Java 17 or newer is still not on PATH after install"
    if [[ "$need_mvn" == 1 ]]; then
        command -v mvn >/dev/null || die "kafka: mvn still not on PATH after install"
    fi
}

kafka_pom_sum() {
    sha256sum "$KAFKA_POM" | cut -d' ' -f1
}

kafka_lib_complete() {
    [[ -f "$KAFKA_STAMP" && "$(cat "$KAFKA_STAMP" 2>/dev/null)" == "$(kafka_pom_sum)" ]]
}

# kafka_jars: copy the broker's jars into $KAFKA_LIB with mvn, unless a complete copy is there.
kafka_jars() {
    if kafka_lib_complete; then
        kafka_tools 0
        return 0
    fi
    [[ -n "$KAFKA_VERSION" ]] || die "kafka: no <kafka.version> in ${KAFKA_POM#"$ROOT/"}"
    kafka_tools 1
    mkdir -p "$KAFKA_HOME" "$KAFKA_DIR"
    # The cache may be shared by several checkouts: one copy at a time.
    local lock tmp="$KAFKA_HOME/lib.tmp.$$"
    exec {lock}>"$KAFKA_HOME/.lock"
    flock -w 600 "$lock" || die "kafka: another copy into $KAFKA_HOME takes too long"
    if kafka_lib_complete; then
        exec {lock}>&-
        return 0
    fi
    rm -rf "$KAFKA_HOME"/lib.tmp.* # left by an interrupted copy
    say "kafka: resolving Apache Kafka $KAFKA_VERSION jars with mvn into $KAFKA_LIB (once)"
    if ! mvn -B -q -Dstyle.color=never -f "$KAFKA_POM" dependency:copy-dependencies \
        -DincludeScope=runtime -DoutputDirectory="$tmp" </dev/null >"$KAFKA_DIR/mvn.log" 2>&1; then
        tail -n 40 "$KAFKA_DIR/mvn.log" >&2 || true
        rm -rf "$tmp"
        die "kafka: mvn could not resolve the jars of ${KAFKA_POM#"$ROOT/"}"
    fi
    [[ -f "$tmp/kafka_2.13-$KAFKA_VERSION.jar" ]] || {
        rm -rf "$tmp"
        die "kafka: mvn copied no kafka_2.13-$KAFKA_VERSION.jar"
    }
    kafka_pom_sum >"$tmp/.complete"
    rm -rf "$KAFKA_LIB"
    mv "$tmp" "$KAFKA_LIB"
    exec {lock}>&-
    say "kafka: $(find "$KAFKA_LIB" -name '*.jar' | wc -l) jars in $KAFKA_LIB"
}

# kafka_java ARGS...: run a Kafka tool's main class with the cached jars (logs WARN to stderr).
kafka_java() {
    java -Xmx256m -XX:+UseSerialGC -XX:TieredStopAtLevel=1 \
        -Dlog4j2.configurationFile="$KAFKA_TOOLS_LOG4J" -cp "$KAFKA_LIB/*" "$@" </dev/null
}

kafka_write_config() {
    mkdir -p "$KAFKA_DIR"
    local plain_jaas="org.apache.kafka.common.security.plain.PlainLoginModule required"
    plain_jaas+=" user_$KAFKA_PLAIN_USER=\"$KAFKA_PLAIN_PASSWORD\";"
    local scram_jaas="org.apache.kafka.common.security.scram.ScramLoginModule required;"
    cat >"$KAFKA_CONF" <<EOF
# Written by scripts/brokers/kafka.sh on every start; edits here are lost.
process.roles=broker,controller
node.id=1
controller.quorum.bootstrap.servers=127.0.0.1:$KAFKA_CONTROLLER_PORT
controller.listener.names=CONTROLLER
listeners=PLAINTEXT://127.0.0.1:$KAFKA_PORT,SASL_PLAINTEXT://127.0.0.1:$KAFKA_SASL_PORT,CONTROLLER://127.0.0.1:$KAFKA_CONTROLLER_PORT
advertised.listeners=PLAINTEXT://127.0.0.1:$KAFKA_PORT,SASL_PLAINTEXT://127.0.0.1:$KAFKA_SASL_PORT
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,SASL_PLAINTEXT:SASL_PLAINTEXT,CONTROLLER:PLAINTEXT
inter.broker.listener.name=PLAINTEXT

# SASL on the SASL_PLAINTEXT listener only; users: PLAIN here, SCRAM in the metadata log
# (added by the storage tool when data/ is formatted). No authorizer: every user may do all.
sasl.enabled.mechanisms=PLAIN,SCRAM-SHA-256,SCRAM-SHA-512
listener.name.sasl_plaintext.plain.sasl.jaas.config=$plain_jaas
listener.name.sasl_plaintext.scram-sha-256.sasl.jaas.config=$scram_jaas
listener.name.sasl_plaintext.scram-sha-512.sasl.jaas.config=$scram_jaas

log.dirs=$KAFKA_DATA

# One node: every internal topic has one replica; tests create their topics themselves.
num.partitions=1
default.replication.factor=1
auto.create.topics.enable=false
offsets.topic.replication.factor=1
offsets.topic.num.partitions=5
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
transaction.state.log.num.partitions=5
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
group.initial.rebalance.delay.ms=0
log.retention.check.interval.ms=30000
# Deleted topics' files go 1 s after deletion, and the log manager's tasks start 1 s after
# startup, not 30 s (tests delete many topics, and some restart the broker often).
log.segment.delete.delay.ms=1000
log.initial.task.delay.ms=1000

# Few threads: two cores shared with the tests.
num.network.threads=2
num.io.threads=2
background.threads=2
num.recovery.threads.per.data.dir=1
EOF
    cat >"$KAFKA_LOG4J" <<EOF
<?xml version="1.0" encoding="UTF-8"?>
<!-- Written by scripts/brokers/kafka.sh: INFO and up to server.log, WARN and up to the console
     (kafka.out). No shutdown hook of log4j's own: it would close the files while Kafka still logs
     its shutdown. -->
<Configuration status="WARN" shutdownHook="disable">
  <Appenders>
    <Console name="console" target="SYSTEM_OUT">
      <ThresholdFilter level="WARN"/>
      <PatternLayout pattern="[%d] %p %m (%c)%n"/>
    </Console>
    <RollingFile name="file" fileName="$KAFKA_LOG" filePattern="$KAFKA_LOG.%i">
      <PatternLayout pattern="[%d] %p %m (%c)%n"/>
      <SizeBasedTriggeringPolicy size="20 MB"/>
      <DefaultRolloverStrategy max="3"/>
    </RollingFile>
  </Appenders>
  <Loggers>
    <Logger name="kafka.request.logger" level="WARN"/>
    <Root level="INFO">
      <AppenderRef ref="console"/>
      <AppenderRef ref="file"/>
    </Root>
  </Loggers>
</Configuration>
EOF
    cat >"$KAFKA_TOOLS_LOG4J" <<'EOF'
<?xml version="1.0" encoding="UTF-8"?>
<!-- Written by scripts/brokers/kafka.sh: Kafka's command-line tools log WARN and up to stderr. -->
<Configuration status="WARN">
  <Appenders>
    <Console name="stderr" target="SYSTEM_ERR">
      <PatternLayout pattern="[%d] %p %m (%c)%n"/>
    </Console>
  </Appenders>
  <Loggers>
    <Root level="WARN">
      <AppenderRef ref="stderr"/>
    </Root>
  </Loggers>
</Configuration>
EOF
}

# kafka_format: format data/ with Kafka's storage tool (single-node dynamic quorum, SCRAM users),
# unless it is formatted already.
kafka_format() {
    if [[ -f "$KAFKA_DATA/meta.properties" ]]; then
        return 0
    fi
    rm -rf "$KAFKA_DATA"
    local cluster_id
    cluster_id="$(kafka_java kafka.tools.StorageTool random-uuid 2>>"$KAFKA_OUT" | tail -n 1)" ||
        die "kafka: the storage tool gave no cluster id (see ${KAFKA_OUT#"$ROOT/"})"
    say "kafka: formatting ${KAFKA_DATA#"$ROOT/"}/ (cluster id $cluster_id)"
    local scram="name=$KAFKA_SCRAM_USER,password=$KAFKA_SCRAM_PASSWORD"
    if ! kafka_java kafka.tools.StorageTool format --config "$KAFKA_CONF" \
        --cluster-id "$cluster_id" --standalone \
        --add-scram "SCRAM-SHA-256=[$scram]" --add-scram "SCRAM-SHA-512=[$scram]" \
        >>"$KAFKA_OUT" 2>&1; then
        tail -n 30 "$KAFKA_OUT" >&2 2>/dev/null || true
        rm -rf "$KAFKA_DATA"
        die "kafka: formatting the data dir failed"
    fi
}

# kafka_owned PID: true if PID is this checkout's broker (not a recycled pid, not another Kafka).
kafka_owned() {
    running "$1" || return 1
    tr '\0' '\n' <"/proc/$1/cmdline" 2>/dev/null | grep -qxF "$KAFKA_CONF"
}

kafka_pid() {
    local pid
    [[ -f "$KAFKA_PIDFILE" ]] || return 1
    pid="$(cat "$KAFKA_PIDFILE" 2>/dev/null)" || return 1
    [[ "$pid" =~ ^[0-9]+$ ]] && kafka_owned "$pid" && echo "$pid"
}

# kafka_answers: true if a Kafka broker serves real requests on the listeners: list the topics on
# PLAINTEXT and, with the venv's kafka-python, also log in with SCRAM-SHA-512 on SASL_PLAINTEXT.
kafka_answers() {
    local python="$ROOT/.venv/bin/python"
    if [[ -x "$python" ]] && "$python" -c 'import kafka' 2>/dev/null; then
        timeout 30 "$python" - "$KAFKA_PORT" "$KAFKA_SASL_PORT" "$KAFKA_SCRAM_USER" \
            "$KAFKA_SCRAM_PASSWORD" >/dev/null 2>&1 <<'EOF'
import sys

from kafka import KafkaAdminClient

port, sasl_port, user, password = sys.argv[1:5]
clients = [
    {"bootstrap_servers": f"127.0.0.1:{port}"},
    {
        "bootstrap_servers": f"127.0.0.1:{sasl_port}",
        "security_protocol": "SASL_PLAINTEXT",
        "sasl_mechanism": "SCRAM-SHA-512",
        "sasl_plain_username": user,
        "sasl_plain_password": password,
    },
]
for config in clients:
    admin = KafkaAdminClient(bootstrap_timeout_ms=5000, request_timeout_ms=5000, **config)
    try:
        admin.list_topics()
    finally:
        admin.close()
EOF
    else
        timeout 30 java -Xmx128m -XX:+UseSerialGC -XX:TieredStopAtLevel=1 \
            -Dlog4j2.configurationFile="$KAFKA_TOOLS_LOG4J" -cp "$KAFKA_LIB/*" \
            org.apache.kafka.tools.TopicCommand --bootstrap-server "127.0.0.1:$KAFKA_PORT" \
            --list </dev/null >/dev/null 2>&1
    fi
}

kafka_log_tail() {
    say "kafka: last lines of ${KAFKA_OUT#"$ROOT/"} and ${KAFKA_LOG#"$ROOT/"}:"
    tail -n 20 "$KAFKA_OUT" >&2 2>/dev/null || true
    tail -n 40 "$KAFKA_LOG" >&2 2>/dev/null || true
}

# kafka_wait_ready PID: wait until the broker answers; false (after printing the logs) if PID
# exits first or the broker does not answer within KAFKA_READY_TIMEOUT seconds.
kafka_wait_ready() {
    local pid="$1" deadline=$((SECONDS + KAFKA_READY_TIMEOUT))
    while ((SECONDS < deadline)); do
        if ! running "$pid"; then
            say "kafka: the broker (pid $pid) exited during startup"
            kafka_log_tail
            return 1
        fi
        if port_open "$KAFKA_PORT" && kafka_answers; then
            return 0
        fi
        sleep 0.5
    done
    say "kafka: no answer on 127.0.0.1:$KAFKA_PORT after $KAFKA_READY_TIMEOUT s"
    kafka_log_tail
    return 1
}

kafka_start() {
    mkdir -p "$KAFKA_DIR"
    local lock pid
    exec {lock}>"$KAFKA_DIR/.lock"
    flock -w 180 "$lock" || die "kafka: another start/stop holds ${KAFKA_DIR#"$ROOT/"}/.lock"
    if pid="$(kafka_pid)"; then
        grep -qF "PLAINTEXT://127.0.0.1:$KAFKA_PORT,SASL_PLAINTEXT://127.0.0.1:$KAFKA_SASL_PORT," \
            "$KAFKA_CONF" ||
            die "kafka: the running broker (pid $pid) listens on other ports than asked" \
                "(see ${KAFKA_CONF#"$ROOT/"}); stop it first"
        kafka_wait_ready "$pid" || die "kafka: the running broker (pid $pid) does not answer"
        say "kafka: already running on 127.0.0.1:$KAFKA_PORT (pid $pid)"
        exec {lock}>&-
        return 0
    fi
    rm -f "$KAFKA_PIDFILE"
    kafka_jars
    if port_open "$KAFKA_PORT"; then
        if kafka_answers; then
            say "kafka: something already serves Kafka on 127.0.0.1:$KAFKA_PORT; using it"
            exec {lock}>&-
            return 0
        fi
        die "kafka: 127.0.0.1:$KAFKA_PORT is taken by something that is not a Kafka broker" \
            "(set SCALER_TEST_KAFKA_PORT to another port)"
    fi
    local port
    for port in "$KAFKA_SASL_PORT" "$KAFKA_CONTROLLER_PORT"; do
        ! port_open "$port" || die "kafka: 127.0.0.1:$port is taken (SASL or controller port)"
    done
    if [[ "${SCALER_KAFKA_RESET:-0}" == 1 ]]; then
        say "kafka: SCALER_KAFKA_RESET=1: wiping ${KAFKA_DATA#"$ROOT/"}/"
        rm -rf "$KAFKA_DATA"
    fi
    : >"$KAFKA_OUT"
    kafka_write_config
    kafka_format
    say "kafka: starting Apache Kafka $KAFKA_VERSION on 127.0.0.1:$KAFKA_PORT" \
        "(SASL $KAFKA_SASL_PORT, controller $KAFKA_CONTROLLER_PORT; state in ${KAFKA_DIR#"$ROOT/"}/)"
    # Own session (setsid) and no inherited descriptors: the broker outlives this script and
    # its caller's pipes, and does not hold the lock.
    # shellcheck disable=SC2086  # SCALER_KAFKA_JAVA_OPTS: extra JVM options, split on spaces
    setsid nohup java "${KAFKA_JVM_OPTS[@]}" ${SCALER_KAFKA_JAVA_OPTS:-} \
        -Dlog4j2.configurationFile="$KAFKA_LOG4J" -Dkafka.logs.dir="$KAFKA_DIR" \
        -cp "$KAFKA_LIB/*" kafka.Kafka "$KAFKA_CONF" \
        </dev/null >>"$KAFKA_OUT" 2>&1 {lock}>&- &
    pid=$!
    echo "$pid" >"$KAFKA_PIDFILE"
    local started=$SECONDS
    if ! kafka_wait_ready "$pid"; then
        kill -KILL "$pid" 2>/dev/null || true
        rm -f "$KAFKA_PIDFILE"
        exit 1
    fi
    exec {lock}>&-
    say "kafka: ready in $((SECONDS - started)) s (pid $pid)"
}

kafka_stop() {
    mkdir -p "$KAFKA_DIR"
    local lock pid
    exec {lock}>"$KAFKA_DIR/.lock"
    flock -w 180 "$lock" || die "kafka: another start/stop holds ${KAFKA_DIR#"$ROOT/"}/.lock"
    if pid="$(kafka_pid)"; then
        kill -TERM "$pid" 2>/dev/null || true
        if ! wait_gone "$pid" "$KAFKA_STOP_TIMEOUT"; then
            say "kafka: pid $pid still running $KAFKA_STOP_TIMEOUT s after SIGTERM; killing it"
            kill -KILL "$pid" 2>/dev/null || true
            wait_gone "$pid" 10 || die "kafka: pid $pid does not exit"
        fi
        rm -f "$KAFKA_PIDFILE"
        say "kafka: stopped (pid $pid)"
    else
        rm -f "$KAFKA_PIDFILE"
        say "kafka: no project-owned broker running"
    fi
    if [[ "${SCALER_KAFKA_RESET:-0}" == 1 && -d "$KAFKA_DATA" ]]; then
        say "kafka: SCALER_KAFKA_RESET=1: wiping ${KAFKA_DATA#"$ROOT/"}/"
        rm -rf "$KAFKA_DATA"
    fi
    exec {lock}>&-
}

kafka_env() {
    printf 'export SCALER_TEST_KAFKA_BOOTSTRAP=%q\n' "127.0.0.1:$KAFKA_PORT"
    printf 'export SCALER_TEST_KAFKA_SASL_BOOTSTRAP=%q\n' "127.0.0.1:$KAFKA_SASL_PORT"
    printf 'export SCALER_TEST_KAFKA_PLAIN_USER=%q\n' "$KAFKA_PLAIN_USER"
    printf 'export SCALER_TEST_KAFKA_PLAIN_PASSWORD=%q\n' "$KAFKA_PLAIN_PASSWORD"
    printf 'export SCALER_TEST_KAFKA_SCRAM_USER=%q\n' "$KAFKA_SCRAM_USER"
    printf 'export SCALER_TEST_KAFKA_SCRAM_PASSWORD=%q\n' "$KAFKA_SCRAM_PASSWORD"
    printf 'export SCALER_TEST_KAFKA_HOME=%q\n' "$KAFKA_HOME"
}
