#!/usr/bin/env bash
# A local base image for the Dockerfile where Docker Hub's python:3.11-slim cannot be pulled:
# Debian 12 (minbase) with its own Python 3.11, made once with debootstrap from the mirror this
# machine's apt already uses (read from its sources, never written into the repository), then
# kept in the local image store. Prints the image's name.
set -euo pipefail
image=${BASE_IMAGE:-localhost/aevatar-python:3.11-bookworm}
log() { echo "[image] $*" >&2; }
export CONTAINERS_CONF=${CONTAINERS_CONF:-$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/containers.conf}

"$(dirname "${BASH_SOURCE[0]}")/container-tools.sh"
if podman image exists "$image"; then
    echo "$image"
    exit 0
fi

mirror() {
    local found=""
    if compgen -G "/etc/apt/sources.list.d/*.sources" >/dev/null; then
        # deb822: the URIs of the stanza whose Suites name bookworm (not -security).
        found=$(awk '/^URIs:/ {uri=$2} /^Suites:/ && / bookworm( |$)/ {print uri; exit}' \
            /etc/apt/sources.list.d/*.sources)
    fi
    if [[ -z $found && -f /etc/apt/sources.list ]]; then
        found=$(awk '$1 == "deb" && $3 == "bookworm" {print $2; exit}' /etc/apt/sources.list)
    fi
    [[ -n $found ]] || { log "no bookworm mirror in this machine's apt sources"; exit 1; }
    echo "$found"
}


root=$(mktemp -d /var/tmp/aevatar-base.XXXXXX)
trap 'rm -rf "$root"' EXIT
source_mirror=$(mirror)
log "debootstrap bookworm (minbase, python3, python3-venv) from $source_mirror"
debootstrap --variant=minbase --include=python3,python3-venv,ca-certificates \
    bookworm "$root" "$source_mirror" >"$root.log" 2>&1 || { tail -20 "$root.log" >&2; exit 1; }
rm -f "$root.log"
# What an image does not need: package lists and caches, docs, man pages, translations.
rm -rf "$root"/var/lib/apt/lists/* "$root"/var/cache/apt/* "$root"/var/cache/debconf/*-old \
    "$root"/usr/share/doc/* "$root"/usr/share/man/* "$root"/usr/share/info/* \
    "$root"/usr/share/locale/* "$root"/var/log/* \
    "$root"/usr/lib/*-linux-gnu/gconv
tar -C "$root" --numeric-owner -c . | podman import --quiet \
    --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change 'ENV LANG=C.UTF-8' --change 'CMD ["python3"]' - "$image" >/dev/null
log "base image $image: $(podman image inspect --format '{{.Size}}' "$image" | numfmt --to=si)B"
echo "$image"
