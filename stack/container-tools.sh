#!/usr/bin/env bash
# buildah, podman, runc and debootstrap from Debian, when missing (no Docker engine is needed).
set -euo pipefail
missing=()
for tool in buildah podman runc debootstrap; do
    command -v "$tool" >/dev/null || missing+=("$tool")
done
((${#missing[@]} == 0)) && exit 0
echo "[image] installing ${missing[*]} from Debian" >&2
if [[ $(id -u) -ne 0 ]]; then
    echo "[image] run 'sudo apt-get install ${missing[*]}'" >&2
    exit 1
fi
apt-get update -qq
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
