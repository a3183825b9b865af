#!/usr/bin/env bash
# PowerDNS Authoritative on loopback for the PowerDNS provider tests: a
# pdns_server with its own configuration directory (.zentralink/servers/pdns),
# an sqlite database, a free DNS port and a free HTTP API port with a random
# API key. Starts and stops a daemon, writes files, installs packages when they
# are missing (I/O on the machine).
#
#   scripts/pdns-server.sh start   start it (does nothing when it already answers
#                                  with the current configuration; restarts it in
#                                  place, same ports, key and zones, when its
#                                  configuration is out of date)
#   scripts/pdns-server.sh stop    stop it
#   scripts/pdns-server.sh env     print the environment the tests read
#
# `start` writes .zentralink/servers/pdns.env; `source` it to get
# ZL_PDNS_URL, ZL_PDNS_API_KEY and ZL_PDNS_DNS_PORT. The configuration
# directory, .zentralink/servers/pdns, is also what `pdnsutil --config-dir=`
# takes to sign a zone of this server (the DNSSEC tests do).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=scripts/lib.sh
source "$ROOT/scripts/lib.sh"

PDNS_DIR="$ROOT/.zentralink/servers/pdns"
PDNS_ENV="$ROOT/.zentralink/servers/pdns.env"
PDNS_PID="$PDNS_DIR/pdns.pid"
PDNS_LOG="$PDNS_DIR/pdns.log"
PDNS_DB="$PDNS_DIR/pdns.sqlite3"
PDNS_SCHEMA=/usr/share/pdns-backend-sqlite3/schema/schema.sqlite3.sql

usage() {
    printf 'usage: %s start|stop|env\n' "$0" >&2
    exit 2
}

# The pid in the pid file when that process is alive.
_pdns_running_pid() {
    local pid
    [ -f "$PDNS_PID" ] || return 1
    pid=$(cat "$PDNS_PID" 2>/dev/null || true)
    [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null || return 1
    # After a reboot the pid may belong to another program: never touch that.
    [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = pdns_server ] || return 1
    printf '%s\n' "$pid"
}

# _pdns_api_status PORT KEY: the HTTP status of GET /api/v1/servers/localhost
# (empty when nothing answers within 2 seconds). Bash's /dev/tcp, so that a
# fresh machine needs no curl.
_pdns_api_status() {
    local port=$1 key=$2 line=""
    (
        exec 3<>"/dev/tcp/127.0.0.1/$port" || exit 1
        printf 'GET /api/v1/servers/localhost HTTP/1.0\r\nHost: 127.0.0.1\r\nX-API-Key: %s\r\n\r\n' "$key" >&3
        IFS= read -r -t 2 line <&3 || true
        printf '%s\n' "$line" | awk '{print $2}'
    ) 2>/dev/null || true
}

# True when the server of the env file answers its API with its key.
_pdns_answers() {
    [ -f "$PDNS_ENV" ] || return 1
    local url key port
    url=$(sed -n 's/.*ZL_PDNS_URL=\([^ ]*\).*/\1/p' "$PDNS_ENV")
    key=$(sed -n 's/.*ZL_PDNS_API_KEY=\([^ ]*\).*/\1/p' "$PDNS_ENV")
    port=${url##*:}
    [ -n "$port" ] && [ -n "$key" ] || return 1
    [ "$(_pdns_api_status "$port" "$key")" = 200 ]
}

# A port nothing listens on (TCP checked; the server's own bind catches the rest).
_pdns_binary() {
    command -v pdns_server 2>/dev/null && return 0
    [ -x /usr/sbin/pdns_server ] && { printf '/usr/sbin/pdns_server\n'; return 0; }
    die "pdns_server is not installed (package pdns-server)"
}

# _pdns_kill [quiet]: stops the server of the pid file, if it runs, and waits for it.
_pdns_kill() {
    local pid _
    if ! pid=$(_pdns_running_pid); then
        [ "${1:-}" = quiet ] || info "PowerDNS is not running"
        return 0
    fi
    info "stopping pdns_server (pid $pid)"
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 1 50); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.2
    done
    if kill -0 "$pid" 2>/dev/null; then
        kill -9 "$pid" 2>/dev/null || true
    fi
}

# pdns_stop [quiet]: stops the server of the pid file, if it runs.
pdns_stop() {
    _pdns_kill "${1:-}"
    rm -f "$PDNS_PID" "$PDNS_ENV"
}

# Writes the configuration for the given ports and key.
_pdns_write_config() {
    umask 077
    _pdns_config "$@" >"$PDNS_DIR/pdns.conf"
}

# The configuration for the given ports and key.
_pdns_config() {
    local dns_port=$1 api_port=$2 key=$3
    cat <<EOF
# Written by scripts/pdns-server.sh: a PowerDNS for tests, on loopback only.
launch=gsqlite3
gsqlite3-database=$PDNS_DB
local-address=127.0.0.1
local-port=$dns_port
socket-dir=$PDNS_DIR
api=yes
api-key=$key
webserver=yes
webserver-address=127.0.0.1
webserver-port=$api_port
webserver-allow-from=127.0.0.0/8
webserver-max-bodysize=64
webserver-loglevel=normal
# Info level, so the webserver logs one line per request (counted by scripts/bench-providers.sh).
loglevel=6
zone-cache-refresh-interval=0
# DNSSEC: zones can be signed with pdnsutil (keys in the sqlite database), and
# keys pdnsutil adds are served at once.
gsqlite3-dnssec=yes
dnssec-key-cache-ttl=0
disable-syslog=yes
guardian=no
security-poll-suffix=
EOF
}

# A value of the env file: ZL_PDNS_URL, ZL_PDNS_API_KEY or ZL_PDNS_DNS_PORT.
_pdns_env_value() {
    sed -n "s/.*$1=\([^ ]*\).*/\1/p" "$PDNS_ENV"
}

# Starts pdns_server on the configuration directory; true once its API answers with KEY on API_PORT.
_pdns_launch() {
    local api_port=$1 key=$2 binary pid _
    binary=$(_pdns_binary)
    setsid nohup "$binary" --config-dir="$PDNS_DIR" --daemon=no </dev/null >>"$PDNS_LOG" 2>&1 9>&- &
    pid=$!
    printf '%s\n' "$pid" >"$PDNS_PID"
    for _ in $(seq 1 100); do
        kill -0 "$pid" 2>/dev/null || return 1
        [ "$(_pdns_api_status "$api_port" "$key")" = 200 ] && return 0
        sleep 0.1
    done
    return 1
}

# Takes the lock file the tests take around their use of the server (see
# ServerLock in providers/tests/powerdns_provider.rs): created exclusively,
# holding the owner's pid; a lock whose process is gone is stale.
_pdns_take_test_lock() {
    local path=$1 holder
    until (set -o noclobber; printf '%s' "$$" >"$path") 2>/dev/null; do
        holder=$(cat "$path" 2>/dev/null || true)
        if [ -n "$holder" ] && [ ! -e "/proc/$holder" ]; then
            rm -f "$path"
            continue
        fi
        sleep 0.05
    done
}

# Restarts the running server with the current configuration, on the same
# ports, API key and database, so the environment others sourced stays
# valid; it waits for the tests' lock, so no test is cut off mid-way.
_pdns_restart_in_place() {
    local dns_port=$1 api_port=$2 key=$3 lock
    lock="${TMPDIR:-/tmp}/zentralink-pdns-tests-$api_port.lock"
    info "the running PowerDNS's configuration is out of date: restarting it in place (same ports, key and zones)"
    _pdns_take_test_lock "$lock"
    # shellcheck disable=SC2064  # the lock's path is fixed now
    trap "rm -f '$lock'" EXIT
    _pdns_kill quiet
    _pdns_write_config "$dns_port" "$api_port" "$key"
    if ! _pdns_launch "$api_port" "$key"; then
        tail -n 5 "$PDNS_LOG" | sed 's/^/      /' >&2 || true
        pdns_stop quiet
        die "pdns_server did not come back on its ports; start a fresh one with scripts/pdns-server.sh start"
    fi
    rm -f "$lock"
    trap - EXIT
    info "PowerDNS answers again on http://127.0.0.1:$api_port"
}

pdns_start() {
    if _pdns_running_pid >/dev/null && _pdns_answers; then
        local url key dns_port api_port
        url=$(_pdns_env_value ZL_PDNS_URL)
        key=$(_pdns_env_value ZL_PDNS_API_KEY)
        dns_port=$(_pdns_env_value ZL_PDNS_DNS_PORT)
        api_port=${url##*:}
        if [ -n "$dns_port" ] && [ "$(_pdns_config "$dns_port" "$api_port" "$key")" != "$(cat "$PDNS_DIR/pdns.conf" 2>/dev/null)" ]; then
            _pdns_restart_in_place "$dns_port" "$api_port" "$key"
        else
            info "PowerDNS is already running ($url)"
        fi
        return 0
    fi
    ensure_packages pdns-server pdns-backend-sqlite3 sqlite3=sqlite3
    [ -f "$PDNS_SCHEMA" ] || die "$PDNS_SCHEMA is missing: reinstall pdns-backend-sqlite3"
    # A server that runs but does not answer (or a stale pid file) is replaced.
    pdns_stop quiet
    mkdir -p "$PDNS_DIR"
    # A fresh start is a fresh server: no zones left from earlier runs, a new log.
    rm -f "$PDNS_DB" "$PDNS_DB-shm" "$PDNS_DB-wal"
    : >"$PDNS_LOG"
    sqlite3 "$PDNS_DB" <"$PDNS_SCHEMA"
    local key dns_port api_port attempt
    _pdns_binary >/dev/null
    key=$(head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n')
    for attempt in 1 2 3 4 5; do
        dns_port=$(free_port)
        api_port=$(free_port)
        [ "$dns_port" != "$api_port" ] || continue
        _pdns_write_config "$dns_port" "$api_port" "$key"
        info "starting pdns_server (DNS 127.0.0.1:$dns_port, API http://127.0.0.1:$api_port), log $PDNS_LOG"
        if _pdns_launch "$api_port" "$key"; then
            umask 077
            printf 'export ZL_PDNS_URL=http://127.0.0.1:%s ZL_PDNS_API_KEY=%s ZL_PDNS_DNS_PORT=%s\n' \
                "$api_port" "$key" "$dns_port" >"$PDNS_ENV"
            info "PowerDNS answers on http://127.0.0.1:$api_port; environment in $PDNS_ENV"
            return 0
        fi
        # It exited (a port was taken after all) or never answered: try other ports.
        info "pdns_server did not come up (attempt $attempt); last log lines:"
        tail -n 5 "$PDNS_LOG" | sed 's/^/      /' >&2 || true
        pdns_stop quiet
    done
    die "pdns_server did not start; see $PDNS_LOG"
}

pdns_env() {
    if _pdns_running_pid >/dev/null && [ -f "$PDNS_ENV" ]; then
        cat "$PDNS_ENV"
    else
        die "PowerDNS is not running: start it with scripts/pdns-server.sh start"
    fi
}

[ $# -eq 1 ] || usage
mkdir -p "$ROOT/.zentralink/servers"
# One start or stop at a time.
exec 9>"$ROOT/.zentralink/servers/pdns.lock"
flock 9
case "$1" in
start) pdns_start ;;
stop) pdns_stop ;;
env) pdns_env ;;
*) usage ;;
esac
