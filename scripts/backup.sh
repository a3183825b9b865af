#!/usr/bin/env bash
# Backs up a ZentraLink installation: a pg_dump of DATABASE_URL and a tarball
# of the state directory, both stamped with the UTC time, into a target directory.
#
#   scripts/backup.sh [TARGET_DIR]        (default: $ZENTRALINK_BACKUP_DIR, else ./backups)
#
#   DATABASE_URL            the database to dump (required)
#   ZENTRALINK_STATE_DIR    the state directory to archive (default /opt/zentralink; skipped if absent)
#   ZENTRALINK_BACKUP_KEEP  keep only this many backups in TARGET_DIR, the newest
#                           (default: keep all); older ones are removed after a good backup
#
# Prints the backup's prefix (TARGET_DIR/zentralink-<stamp>); give it to scripts/restore.sh.
# The files are readable by their owner only (the dump holds password hashes and
# encrypted secrets). The encryption key is not in the backup: keep it apart.
# Run it from cron (the single-host install runs it daily from zentralink-backup.timer)
# and copy the target directory off the server.
set -euo pipefail
umask 077

target=${1:-${ZENTRALINK_BACKUP_DIR:-./backups}}
: "${DATABASE_URL:?DATABASE_URL must name the database to back up}"
state=${ZENTRALINK_STATE_DIR:-/opt/zentralink}
keep=${ZENTRALINK_BACKUP_KEEP:-}
if [ -n "$keep" ] && [[ ! "$keep" =~ ^[1-9][0-9]*$ ]]; then
    echo "error: ZENTRALINK_BACKUP_KEEP must be a positive number, not '$keep'" >&2
    exit 1
fi
command -v pg_dump >/dev/null 2>&1 || { echo "error: pg_dump is missing (apt-get install -y postgresql-client)" >&2; exit 1; }

mkdir -p "$target"
stamp=$(date -u +%Y%m%dT%H%M%SZ)
prefix="$target/zentralink-$stamp"
n=1
while [ -e "$prefix.dump" ]; do
    prefix="$target/zentralink-$stamp-$n"
    n=$((n + 1))
done

# A failed run leaves no partial files behind.
trap 'rm -f "$prefix.dump.partial" "$prefix.state.tar.gz.partial"' EXIT

# Write to a temporary name first: a half-written dump never looks like a backup.
pg_dump --format=custom --no-owner --no-privileges --file "$prefix.dump.partial" "$DATABASE_URL"
mv "$prefix.dump.partial" "$prefix.dump"

if [ -d "$state" ]; then
    tar -C "$state" --exclude='./backups' -czf "$prefix.state.tar.gz.partial" .
    mv "$prefix.state.tar.gz.partial" "$prefix.state.tar.gz"
fi

# Retention: the newest $keep backups stay (the names sort by time).
if [ -n "$keep" ]; then
    mapfile -t backups < <(find "$target" -maxdepth 1 -type f -name 'zentralink-*.dump' -printf '%f\n' |
        sed 's/\.dump$//' | LC_ALL=C sort)
    for ((i = 0; i < ${#backups[@]} - keep; i++)); do
        old="$target/${backups[i]}"
        rm -f "$old.dump" "$old.state.tar.gz"
        echo "removed $old (ZENTRALINK_BACKUP_KEEP=$keep)" >&2
    done
fi

echo "$prefix"
