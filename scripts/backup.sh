#!/usr/bin/env bash
# Backs up a ZentraLink installation: a pg_dump of DATABASE_URL and a tarball
# of the state directory, both stamped with the UTC time, into a target directory.
#
#   scripts/backup.sh [TARGET_DIR]        (default: $ZENTRALINK_BACKUP_DIR, else ./backups)
#
#   DATABASE_URL          the database to dump (required)
#   ZENTRALINK_STATE_DIR  the state directory to archive (default /opt/zentralink; skipped if absent)
#
# Prints the backup's prefix (TARGET_DIR/zentralink-<stamp>); give it to scripts/restore.sh.
# Run it from cron and copy the target directory off the server; keep as many as your policy says.
set -euo pipefail

target=${1:-${ZENTRALINK_BACKUP_DIR:-./backups}}
: "${DATABASE_URL:?DATABASE_URL must name the database to back up}"
state=${ZENTRALINK_STATE_DIR:-/opt/zentralink}
command -v pg_dump >/dev/null 2>&1 || { echo "error: pg_dump is missing (apt-get install -y postgresql-client)" >&2; exit 1; }

mkdir -p "$target"
stamp=$(date -u +%Y%m%dT%H%M%SZ)
prefix="$target/zentralink-$stamp"
n=1
while [ -e "$prefix.dump" ]; do
    prefix="$target/zentralink-$stamp-$n"
    n=$((n + 1))
done

# Write to a temporary name first: a half-written dump never looks like a backup.
pg_dump --format=custom --no-owner --no-privileges --file "$prefix.dump.partial" "$DATABASE_URL"
mv "$prefix.dump.partial" "$prefix.dump"

if [ -d "$state" ]; then
    tar -C "$state" --exclude='./backups' -czf "$prefix.state.tar.gz.partial" .
    mv "$prefix.state.tar.gz.partial" "$prefix.state.tar.gz"
fi

echo "$prefix"
