#!/usr/bin/env bash
# Builds the Dapr runtime (daprd, placement, scheduler) and the Dapr CLI from their Go modules,
# once per machine, into the folder the CLI looks in: ${DAPR_RUNTIME_PATH:-$HOME}/.dapr/bin.
# Binaries that are there and not ours (a laptop where `dapr init` ran) are used as they are;
# ours (marked by a stamp file) are rebuilt only when stack/versions.env or the patches change.
# daprd is built with the patches of stack/patches/dapr-<version> (each says what it fixes).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=versions.env
source "$here/versions.env"

dapr_home="${DAPR_RUNTIME_PATH:-$HOME}/.dapr"
bin="$dapr_home/bin"
runtime_stamp="$bin/.aevatar-worker-runtime"
real_daprd="$dapr_home/runtime/daprd"  # behind the launcher $bin/daprd (see install_launcher)
cli_stamp="$bin/.aevatar-worker-cli"
patches="$here/patches/dapr-$DAPR_RUNTIME_VERSION"
# The runtime's stamp: its version and a digest of the patches it was built with.
runtime_id="$DAPR_RUNTIME_VERSION+$(cat "$patches"/*.patch 2>/dev/null | sha256sum | cut -c1-12)"
mkdir -p "$bin"

log() { echo "[build-dapr] $*" >&2; }

# stale STAMP VERSION: we built these binaries, at another version.
stale() { [[ -f "$1" && "$(cat "$1")" != "$2" ]]; }

need_runtime() {
    [[ ! -x "$bin/daprd" || ! -x "$bin/placement" || ! -x "$bin/scheduler" ]] ||
        { [[ -f "$runtime_stamp" ]] && grep -qs "aevatar-worker launcher" "$bin/daprd" &&
            [[ ! -x "$real_daprd" ]]; } ||
        stale "$runtime_stamp" "$runtime_id"
}
need_cli() {
    { [[ ! -x "$bin/dapr" ]] && ! command -v dapr >/dev/null; } || stale "$cli_stamp" "$DAPR_CLI_VERSION"
}

export CGO_ENABLED=0 GOFLAGS=-mod=mod

# fetch MODULE@VERSION NAME: a writable copy of the module's source, printed as a path.
fetch() {
    local dir src="$dapr_home/src/$2"
    dir=$(go mod download -json "$1" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
    [[ -n "$dir" ]] || { log "cannot download $1 from the Go module proxy"; exit 1; }
    rm -rf "$src" && mkdir -p "$(dirname "$src")" && cp -r "$dir" "$src" && chmod -R u+w "$src"
    echo "$src"
}

build_runtime() {
    # github.com/dapr/dapr has replace directives, so `go install` refuses it: build inside it.
    local src ldflags="-s -w -X github.com/dapr/dapr/pkg/buildinfo.version=$DAPR_RUNTIME_VERSION"
    src=$(fetch "github.com/dapr/dapr@v$DAPR_RUNTIME_VERSION" "dapr-$DAPR_RUNTIME_VERSION")
    local patch
    for patch in "$patches"/*.patch; do
        [[ -f "$patch" ]] || continue
        log "patching daprd: $(basename "$patch")"
        if command -v patch >/dev/null; then
            patch --quiet --forward -p1 -d "$src" <"$patch"
        else
            (cd "$src" && git apply "$patch")
        fi
    done
    log "building daprd $DAPR_RUNTIME_VERSION with all components (minutes, the first time)"
    (cd "$src" && go build -tags allcomponents -ldflags "$ldflags" -o "$real_daprd" ./cmd/daprd)
    rm -f "$bin/daprd"  # the launcher is written anew
    log "building placement and scheduler $DAPR_RUNTIME_VERSION"
    (cd "$src" && go build -ldflags "$ldflags" -o "$bin/placement" ./cmd/placement)
    (cd "$src" && go build -ldflags "$ldflags" -o "$bin/scheduler" ./cmd/scheduler)
    echo "$runtime_id" >"$runtime_stamp"
}

build_cli() {
    # `go install github.com/dapr/cli@v...` first reads the module's version list (for
    # deprecations), which the proxy here refuses (403); building inside the module works.
    local src
    src=$(fetch "github.com/dapr/cli@v$DAPR_CLI_VERSION" "cli-$DAPR_CLI_VERSION")
    # The CLI 1.16.5 requires components-contrib v1.16.3 (indirectly, through dapr 1.16.2), which
    # the proxy here refuses (403); v1.16.1, the nearest patch it serves, builds the same CLI.
    (cd "$src" && go mod edit -replace \
        github.com/dapr/components-contrib=github.com/dapr/components-contrib@v1.16.1)
    log "building the dapr CLI $DAPR_CLI_VERSION"
    (cd "$src" && go build -ldflags "-s -w -X main.version=$DAPR_CLI_VERSION" -o "$bin/dapr" .)
    echo "$DAPR_CLI_VERSION" >"$cli_stamp"
}

# The CLI starts daprd without --dapr-internal-grpc-listen-address and --metrics-listen-address,
# and has no option for them: daprd would then listen on every interface for both. Ours is
# started through a launcher that adds them (a laptop's own daprd is left as it is). The binary
# keeps its name, in a folder of its own: the CLI finds running sidecars (`dapr publish`,
# `dapr list`) by the executable name `daprd`.
install_launcher() {
    [[ -f "$runtime_stamp" ]] || return 0
    grep -qs "aevatar-worker launcher" "$bin/daprd" && [[ -x "$real_daprd" ]] && return 0
    mkdir -p "$(dirname "$real_daprd")"
    if [[ -f "$bin/daprd.bin" ]]; then mv "$bin/daprd.bin" "$real_daprd"; fi
    if [[ -f "$bin/daprd" ]] && ! grep -qs "aevatar-worker launcher" "$bin/daprd"; then
        mv "$bin/daprd" "$real_daprd"
    fi
    cat >"$bin/daprd" <<'LAUNCHER'
#!/bin/sh
# aevatar-worker launcher: daprd with its internal gRPC and metrics ports on loopback.
exec "$(dirname "$0")/../runtime/daprd" --dapr-internal-grpc-listen-address 127.0.0.1 \
    --metrics-listen-address 127.0.0.1 "$@"
LAUNCHER
    chmod +x "$bin/daprd"
}

if need_runtime; then build_runtime; fi
install_launcher
if need_cli; then build_cli; fi
