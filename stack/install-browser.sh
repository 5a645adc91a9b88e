#!/usr/bin/env bash
# Debian's chromium, for the dashboard's browser tests (Playwright drives it through
# executable_path; a downloaded browser build cannot be had here). Idempotent.
set -euo pipefail
if command -v chromium >/dev/null; then
    exit 0
fi
echo "[stack] installing chromium from Debian" >&2
if [[ $(id -u) -ne 0 ]]; then
    echo "[stack] chromium is missing: run 'sudo apt-get install chromium'" >&2
    exit 1
fi
apt-get update -qq
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
