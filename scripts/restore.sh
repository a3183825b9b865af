#!/usr/bin/env bash
# Restores a backup made by scripts/backup.sh.
#
#   scripts/restore.sh PREFIX      (PREFIX as backup.sh printed it: DIR/zentralink-<stamp>)
#
#   DATABASE_URL          the database to restore into; it must exist. Objects of the
#                         dump are dropped and re-created, in one transaction.
#   ZENTRALINK_STATE_DIR  where the state tarball is unpacked (default /opt/zentralink)
#
# Stop the operator and the web service first, and start them again after.
set -euo pipefail

prefix=${1:?usage: scripts/restore.sh DIR/zentralink-<stamp>}
: "${DATABASE_URL:?DATABASE_URL must name the database to restore into}"
state=${ZENTRALINK_STATE_DIR:-/opt/zentralink}
[ -f "$prefix.dump" ] || { echo "error: $prefix.dump does not exist" >&2; exit 1; }
command -v pg_restore >/dev/null 2>&1 || { echo "error: pg_restore is missing (apt-get install -y postgresql-client)" >&2; exit 1; }

pg_restore --clean --if-exists --no-owner --no-privileges --single-transaction --exit-on-error \
    --dbname "$DATABASE_URL" "$prefix.dump"

if [ -f "$prefix.state.tar.gz" ]; then
    mkdir -p "$state"
    tar -C "$state" -xzf "$prefix.state.tar.gz"
fi

echo "restored $prefix"
