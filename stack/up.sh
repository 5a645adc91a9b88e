#!/usr/bin/env bash
# Starts the local stack: Redis, SecantusDB (MongoDB wire), Dapr placement and scheduler.
# The database is SecantusDB's Rust server (secantusd-rs, built once per machine by
# build-secantus.sh while Dapr builds); MONGO_SERVER=py picks the Python server (secantusd-py)
# instead, and so does a Rust build that fails, loudly.
# Idempotent: a service that already answers is left alone (and not recorded as ours); each one
# started here is waited for until healthy, its pid in $STATE_DIR/pids and its log in
# $STATE_DIR/logs. `down.sh` stops exactly those pids.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(dirname "$here")
source "$here/stack.env"
mkdir -p "$STATE_DIR"/{pids,logs,secantus,scheduler-etcd,dapr,redis}

log() { echo "[stack] $*" >&2; }
python="$root/.venv/bin/python"

redis_ok() { redis-cli -h 127.0.0.1 -p "$REDIS_PORT" ping 2>/dev/null | grep -q PONG; }
mongo_ok() {
    "$python" -c "import pymongo,sys; pymongo.MongoClient('mongodb://127.0.0.1:$MONGO_PORT/?retryWrites=false', serverSelectionTimeoutMS=500).admin.command('ping')" 2>/dev/null
}
http_ok() { curl -fs -o /dev/null --max-time 1 "http://127.0.0.1:$1/healthz"; }
placement_ok() { http_ok "$PLACEMENT_HEALTH_PORT"; }
scheduler_ok() { http_ok "$SCHEDULER_HEALTH_PORT"; }

# start NAME CHECK_FUNCTION COMMAND...
start() {
    local name=$1 check=$2
    shift 2
    local pidfile="$STATE_DIR/pids/$name.pid"
    if $check; then
        log "$name: already up"
        return
    fi
    if [[ -f "$pidfile" ]] && kill -0 "$(cat "$pidfile")" 2>/dev/null; then
        log "$name: started before (pid $(cat "$pidfile")), waiting for it"
    else
        log "$name: starting"
        nohup setsid "$@" >"$STATE_DIR/logs/$name.log" 2>&1 </dev/null &
        echo $! >"$pidfile"
    fi
    local deadline=$((SECONDS + 90))
    until $check; do
        if ! kill -0 "$(cat "$pidfile")" 2>/dev/null; then
            log "$name: exited; last lines of $STATE_DIR/logs/$name.log:"
            tail -20 "$STATE_DIR/logs/$name.log" >&2
            exit 1
        fi
        if ((SECONDS > deadline)); then
            log "$name: not healthy after 90 s; see $STATE_DIR/logs/$name.log"
            exit 1
        fi
        sleep 0.2
    done
    log "$name: healthy"
}

install_redis() {
    command -v redis-server >/dev/null && return
    log "installing redis-server from Debian"
    if [[ $(id -u) -eq 0 ]]; then
        apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server >/dev/null
    else
        sudo apt-get update -qq && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server >/dev/null
    fi
}

render_dapr_config() {
    # The sqlite name resolver needs an absolute path shared by every daprd of this machine.
    sed "s|@NAME_RESOLUTION_DB@|$STATE_DIR/dapr/name-resolution.db|" \
        "$here/dapr-config.yaml" >"$STATE_DIR/dapr/config.yaml"
    # The CLI insists on $DAPR_HOME/config.yaml; a laptop's own (from `dapr init`) is kept.
    [[ -f "$DAPR_HOME/config.yaml" ]] || cp "$STATE_DIR/dapr/config.yaml" "$DAPR_HOME/config.yaml"
}

# pick_mongo_server: sets mongo_bin to the MongoDB-wire server to start, once its build is over.
pick_mongo_server() {
    mongo_bin="$root/.venv/bin/secantusd-py"
    if [[ "${MONGO_SERVER:-rs}" == py ]]; then
        log "secantusdb: the Python server, as MONGO_SERVER=py asks"
        return
    fi
    [[ -n "$secantus_build" ]] || return 0  # a database answers already: nothing is started
    local binary=""
    if wait "$secantus_build"; then binary=$(cat "$STATE_DIR/logs/secantus-build.path"); fi
    if [[ -n "$binary" && -x "$binary" ]]; then
        mongo_bin=$binary
        return
    fi
    log "!!! secantusdb: the Rust server (secantus-mdb) did not build; see $STATE_DIR/logs/secantus-build.log"
    log "!!! FALLING BACK to the Python server secantusd-py: several times slower, and it scans"
    log "!!! whole collections for some query shapes (docs/development.md, 'The local stack')"
}

# The server that answers on MONGO_PORT when this stack started it earlier, by the name of its
# program; a database started elsewhere (a real mongod) is only said to be someone else's.
running_mongo_server() {
    local pid
    pid=$(cat "$STATE_DIR/pids/secantusdb.pid" 2>/dev/null) || { echo "not started here"; return; }
    tr '\0' '\n' <"/proc/$pid/cmdline" 2>/dev/null | grep -m1 -o 'secantusd-[a-z]*' ||
        echo "not started here"
}

# Kafka (PUBSUB=kafka): a one-node KRaft broker whose data lives in $STATE_DIR/kafka, formatted
# the first time. Ready once it says so in its log and takes connections.
kafka_ok() {
    grep -q "Kafka Server started" "$STATE_DIR/logs/kafka.log" 2>/dev/null &&
        (exec 3<>"/dev/tcp/127.0.0.1/$KAFKA_PORT") 2>/dev/null
}
start_kafka() {
    local libs config="$STATE_DIR/kafka.properties"
    libs=$("$here/fetch-kafka.sh")
    sed -e "s|@STATE_DIR@|$STATE_DIR|" -e "s|@KAFKA_PORT@|$KAFKA_PORT|g" \
        -e "s|@KAFKA_CONTROLLER_PORT@|$KAFKA_CONTROLLER_PORT|g" \
        "$here/kafka/server.properties" >"$config"
    local java=(java -Xms256m -Xmx1g -Dlog4j2.configurationFile="$here/kafka/log4j2.properties"
        -cp "$libs/*")
    if [[ ! -f "$STATE_DIR/kafka/meta.properties" ]]; then
        log "kafka: formatting $STATE_DIR/kafka"
        local cluster
        cluster=$("${java[@]}" kafka.tools.StorageTool random-uuid)
        "${java[@]}" kafka.tools.StorageTool format -t "$cluster" -c "$config" >/dev/null
    fi
    start kafka kafka_ok "${java[@]}" kafka.Kafka "$config"
}

install_redis
secantus_build=
if [[ "${MONGO_SERVER:-rs}" != py ]] && ! mongo_ok; then
    # Built alongside Dapr: cargo at low priority, Go in the foreground.
    "$here/build-secantus.sh" >"$STATE_DIR/logs/secantus-build.path" \
        2>"$STATE_DIR/logs/secantus-build.log" &
    secantus_build=$!
fi
"$here/build-dapr.sh"
render_dapr_config
pick_mongo_server
# One store per server: the two do not read each other's files.
mongo_store="$STATE_DIR/secantus"
[[ "$(basename "$mongo_bin")" == secantusd-py ]] && mongo_store="$STATE_DIR/secantus-py"
mkdir -p "$mongo_store"

# Append-only file: the streams (pub/sub messages and their pending lists) survive a restart.
start redis redis_ok redis-server --bind 127.0.0.1 --port "$REDIS_PORT" --save "" --appendonly yes \
    --appendfsync everysec --dir "$STATE_DIR/redis"
mongo_was_up=false
mongo_ok && mongo_was_up=true
start secantusdb mongo_ok "$mongo_bin" --host 127.0.0.1 --port "$MONGO_PORT" \
    --storage-path "$mongo_store" --log-level WARNING
start placement placement_ok "$DAPR_HOME/bin/placement" --listen-address 127.0.0.1 \
    --port "$PLACEMENT_PORT" --healthz-listen-address 127.0.0.1 \
    --healthz-port "$PLACEMENT_HEALTH_PORT" --metrics-listen-address 127.0.0.1 \
    --metrics-port "$PLACEMENT_METRICS_PORT" --initial-cluster dapr-placement-0=127.0.0.1:8201
start scheduler scheduler_ok "$DAPR_HOME/bin/scheduler" --listen-address 127.0.0.1 \
    --port "$SCHEDULER_PORT" --healthz-listen-address 127.0.0.1 \
    --healthz-port "$SCHEDULER_HEALTH_PORT" --metrics-listen-address 127.0.0.1 \
    --metrics-port "$SCHEDULER_METRICS_PORT" --etcd-data-dir "$STATE_DIR/scheduler-etcd" \
    --etcd-client-port "$SCHEDULER_ETCD_PORT" --etcd-client-listen-address 127.0.0.1 \
    --etcd-initial-cluster dapr-scheduler-server-0=http://127.0.0.1:2380 \
    --override-broadcast-host-port "127.0.0.1:$SCHEDULER_PORT"
if [[ "${PUBSUB:-redis}" == kafka ]]; then
    start_kafka
fi
mongo_name=$(basename "$mongo_bin")
$mongo_was_up && mongo_name=$(running_mongo_server)
kafka_said=""
[[ "${PUBSUB:-redis}" == kafka ]] && kafka_said=", kafka :$KAFKA_PORT"
log "up: redis :$REDIS_PORT, mongodb :$MONGO_PORT ($mongo_name), placement :$PLACEMENT_PORT, scheduler :$SCHEDULER_PORT$kafka_said"
