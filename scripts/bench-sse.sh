#!/usr/bin/env bash
# Live-update benchmark of the support desk: the release binary
# (`zentralink web`) against PostgreSQL on 127.0.0.1:5432, SUBSCRIBERS
# concurrent Server-Sent Events streams on one ticket (each its own TCP
# connection from web/examples/bench_sse.rs on loopback), COMMENTS replies
# posted one after another. Reports the delivery latency from just before
# each reply's POST to its arrival on every stream (p50, p99, max over all
# pairs, and per reply until the last stream had it) and the web process's
# memory (VmRSS, VmHWM) before the streams, with them open, and after.
# Results and method in docs/benchmarks.md, section "Live updates".
#
#   scripts/bench-sse.sh         SUBSCRIBERS (1000), COMMENTS (50)
#
# Both ends need a file descriptor per stream: the script raises the soft
# limit (ulimit -n) to the hard one and says what it is. The database
# zl_bench_sse is made for the run and dropped at the end. Starts and stops
# processes, talks to PostgreSQL and the web service on loopback only (I/O).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
# shellcheck source=scripts/lib.sh
source scripts/lib.sh

SUBSCRIBERS=${SUBSCRIBERS:-1000}
COMMENTS=${COMMENTS:-50}

ensure_packages curl=curl psql=postgresql-client
ensure_postgres
ensure_rust
export PGOPTIONS=--client-min-messages=warning
ADMIN_URL=${ZL_BENCH_ADMIN_URL:-postgres://postgres@127.0.0.1:5432/postgres}
psql "$ADMIN_URL" -Atqc 'select 1' >/dev/null ||
    die "cannot connect to PostgreSQL as $ADMIN_URL; set ZL_BENCH_ADMIN_URL to a superuser URL"

work="$ROOT/.zentralink/bench-sse"
mkdir -p "$work/bin"

section "Build (release)"
if [ -z "${ZL_BENCH_NO_BUILD:-}" ]; then
    cargo build --release -p zentralink --bins
    cargo build --release -p zentralink-web --example bench_sse
fi
target=$(cargo_target_dir)
# Copies, so that a build running meanwhile cannot swap a binary mid-run.
for binary in zentralink examples/bench_sse; do
    [ -x "$target/release/$binary" ] || die "$target/release/$binary is missing: build it (see above)"
    cp "$target/release/$binary" "$work/bin/"
done
zl="$work/bin/zentralink"
client="$work/bin/bench_sse"

ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
needed=$((SUBSCRIBERS + 256))
[ "$(ulimit -n)" = unlimited ] || [ "$(ulimit -n)" -ge "$needed" ] ||
    die "ulimit -n is $(ulimit -n); $SUBSCRIBERS streams need at least $needed descriptors on each end (raise the hard limit)"

section "Machine"
info "date: $(date -u '+%Y-%m-%d %H:%M UTC'), commit $(git rev-parse --short HEAD)$(git diff --quiet HEAD -- . 2>/dev/null || echo ' (with uncommitted changes)')"
info "nproc $(nproc), $(lscpu | sed -n 's/^Model name: *//p' | head -1), $(free -g | awk '/^Mem:/{print $2}') GiB RAM, kernel $(uname -r), $(rustc --version)"
info "PostgreSQL $(psql "$ADMIN_URL" -Atc 'show server_version'), ulimit -n $(ulimit -n)"
info "load average: $(cut -d' ' -f1-3 /proc/loadavg)"

section "Database (zl_bench_sse)"
db=zl_bench_sse
base_url=${ADMIN_URL%/*}
export DATABASE_URL="$base_url/$db"
psql "$ADMIN_URL" -qc "DROP DATABASE IF EXISTS $db" -c "CREATE DATABASE $db"
PLATFORM_ENCRYPTION_KEY=$("$zl" secrets generate-key)
export PLATFORM_ENCRYPTION_KEY
"$zl" migrate | sed 's/^/    /'
PASSWORD="bench-$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')"
OWNER=owner@acme.example
printf '%s\n' "$PASSWORD" | "$zl" web create-owner --email "$OWNER" --tenant acme | sed 's/^/    /'

section "Web service"
cleanup() {
    if [ -n "${web_pid:-}" ] && kill -0 "$web_pid" 2>/dev/null; then
        kill "$web_pid" 2>/dev/null || true
        wait "$web_pid" 2>/dev/null || true
    fi
    psql "$ADMIN_URL" -qc "DROP DATABASE IF EXISTS $db" 2>/dev/null || true
}
trap cleanup EXIT
start_web "$zl" "$work"

section "$SUBSCRIBERS streams on one ticket, $COMMENTS replies"
BENCH_PASSWORD=$PASSWORD "$client" "$site" "$OWNER" "$SUBSCRIBERS" "$COMMENTS" "$web_pid" | sed 's/^/    /'
info "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
