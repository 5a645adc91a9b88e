#!/usr/bin/env bash
# Starts the local stack: Redis, SecantusDB (MongoDB wire), Dapr placement and scheduler.
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

install_redis
"$here/build-dapr.sh"
render_dapr_config

# Append-only file: the streams (pub/sub messages and their pending lists) survive a restart.
start redis redis_ok redis-server --bind 127.0.0.1 --port "$REDIS_PORT" --save "" --appendonly yes \
    --appendfsync everysec --dir "$STATE_DIR/redis"
start secantusdb mongo_ok "$root/.venv/bin/secantusd-py" --host 127.0.0.1 --port "$MONGO_PORT" \
    --storage-path "$STATE_DIR/secantus" --log-level WARNING
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
log "up: redis :$REDIS_PORT, mongodb :$MONGO_PORT, placement :$PLACEMENT_PORT, scheduler :$SCHEDULER_PORT"
