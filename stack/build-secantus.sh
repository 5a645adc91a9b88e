#!/usr/bin/env bash
# Builds SecantusDB's Rust server (crate secantus-mdb, binary secantusd-rs) from crates.io, once
# per machine, into ${SECANTUS_HOME:-~/.cache/aevatar-worker}/secantus-mdb-<version>/bin, and
# prints the binary's path. A build that fails exits non-zero; up.sh then falls back to the
# Python server and says so.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=versions.env
source "$here/versions.env"

home="${SECANTUS_HOME:-${XDG_CACHE_HOME:-$HOME/.cache}/aevatar-worker}"
root="$home/secantus-mdb-$SECANTUS_MDB_VERSION"
binary="$root/bin/secantusd-rs"
log() { echo "[build-secantus] $*" >&2; }

if [[ -x "$binary" ]]; then
    echo "$binary"
    exit 0
fi
cargo=$(command -v cargo || echo "$HOME/.cargo/bin/cargo")
[[ -x "$cargo" ]] || { log "no cargo on this machine"; exit 1; }
log "building secantus-mdb $SECANTUS_MDB_VERSION (minutes, the first time)"
partial="$root.partial"
rm -rf "$partial"
# Low priority: the Dapr build and anything else on the machine go first. The crate's release
# profile (thin LTO, one codegen unit) took ~18 min beside the Dapr build; without LTO and with
# 16 units it builds in ~5 min on an idle 2-core machine, and serves as fast within the noise
# (insert_many 6-11% slower, find_one_and_update and insert_one the same; docs/development.md).
CARGO_PROFILE_RELEASE_LTO=false CARGO_PROFILE_RELEASE_CODEGEN_UNITS=16 \
    nice -n 10 "$cargo" install "secantus-mdb@$SECANTUS_MDB_VERSION" --ignore-rust-version \
    --root "$partial" --quiet >&2
[[ -x "$partial/bin/secantusd-rs" ]] || { log "the crate built no secantusd-rs binary"; exit 1; }
rm -rf "$root" && mv "$partial" "$root"
log "built $binary"
echo "$binary"
