#!/usr/bin/env bash
# `make image`: builds the Dockerfile with buildah into the local image store as
# localhost/aevatar-worker:<version> (and :latest). The base is PYTHON_IMAGE when given (it is
# pulled if it must be), else python:3.11-slim if the store has it, else a Debian 12 base made
# here (stack/base-image.sh): Docker Hub is not reached from this machine, so nothing is pulled
# unless asked for. Layers are cached: an unchanged tree builds again in seconds.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(dirname "$here")
cd "$root"
export CONTAINERS_CONF=${CONTAINERS_CONF:-$here/containers.conf}
log() { echo "[image] $*" >&2; }

"$here/container-tools.sh"
image=${IMAGE:-localhost/aevatar-worker}
version=$(python3 -c 'import tomllib; print(tomllib.load(open("pyproject.toml", "rb"))["project"]["version"])')
revision=$(git rev-parse HEAD 2>/dev/null || echo unknown)
# Where the image's source lives: the repository's remote, else this checkout.
source_url=$(git remote get-url origin 2>/dev/null || echo "file://$root")

if [[ -n ${PYTHON_IMAGE:-} ]]; then
    base=$PYTHON_IMAGE
    pull=missing
elif podman image exists docker.io/library/python:3.11-slim; then
    base=docker.io/library/python:3.11-slim
    pull=never
else
    base=$("$here/base-image.sh")
    pull=never
fi

build_args=(--build-arg "PYTHON_IMAGE=$base" --build-arg "VERSION=$version"
    --build-arg "REVISION=$revision" --build-arg "SOURCE=$source_url")
# The build stage reaches the package index; trust what this machine trusts for it.
if [[ -f /etc/ssl/certs/ca-certificates.crt ]]; then
    build_args+=(--volume /etc/ssl/certs/ca-certificates.crt:/run/host-ca.crt:ro
        --build-arg SSL_CERT_FILE=/run/host-ca.crt)
fi

log "building $image:$version on $base"
started=$SECONDS
# docker format: OCI images have no HEALTHCHECK.
buildah bud --quiet --layers --format docker --pull="$pull" --network host "${build_args[@]}" \
    --tag "$image:$version" --tag "$image:latest" . >/dev/null
size=$(podman image inspect --format '{{.Size}}' "$image:$version")
log "built $image:$version in $((SECONDS - started)) s, $(numfmt --to=si "$size")B"
