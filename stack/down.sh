#!/usr/bin/env bash
# Stops what up.sh started, by the pids it recorded, and nothing else.
set -uo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
source "$here/stack.env"

for pidfile in "$STATE_DIR"/pids/*.pid; do
    [[ -f "$pidfile" ]] || continue
    name=$(basename "$pidfile" .pid)
    pid=$(cat "$pidfile")
    if kill -0 "$pid" 2>/dev/null; then
        kill -TERM "$pid"
        for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        if kill -0 "$pid" 2>/dev/null; then
            echo "[stack] $name: still running after 10 s, killing" >&2
            kill -KILL "$pid"
        fi
        echo "[stack] $name: stopped (pid $pid)" >&2
    fi
    rm -f "$pidfile"
done
