#!/usr/bin/env bash
# Fetches Apache Kafka's broker jars (stack/kafka/pom.xml) from Maven Central, once per machine,
# into ${KAFKA_HOME:-~/.cache/aevatar-worker}/kafka-<version>/libs, and prints that folder.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=versions.env
source "$here/versions.env"

home="${KAFKA_HOME:-${XDG_CACHE_HOME:-$HOME/.cache}/aevatar-worker}"
root="$home/kafka-$KAFKA_VERSION"
log() { echo "[fetch-kafka] $*" >&2; }

if compgen -G "$root/libs/kafka_2.13-$KAFKA_VERSION.jar" >/dev/null; then
    echo "$root/libs"
    exit 0
fi
command -v java >/dev/null || { log "no java on this machine (Kafka $KAFKA_VERSION needs 17+)"; exit 1; }
command -v mvn >/dev/null || { log "no mvn on this machine"; exit 1; }
log "fetching Kafka $KAFKA_VERSION's jars from Maven Central (a minute, the first time)"
partial="$root.partial"
rm -rf "$partial"
mvn -q -B -f "$here/kafka/pom.xml" -Dkafka.version="$KAFKA_VERSION" \
    dependency:copy-dependencies -DoutputDirectory="$partial/libs" >&2
rm -rf "$root" && mv "$partial" "$root"
log "fetched into $root/libs"
echo "$root/libs"
