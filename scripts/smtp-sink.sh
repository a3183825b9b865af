#!/usr/bin/env bash
# The SMTP sink on loopback for the mail tests (web/tests/mail.rs and
# friends): Debian's python3-aiosmtpd running scripts/smtp-sink.py on a free
# port of 127.0.0.1. Every message it accepts becomes files in a directory
# the tests read back; it offers AUTH PLAIN/LOGIN for one fixed test account
# and refuses some recipients on purpose (see scripts/smtp-sink.py). Starts
# and stops a daemon, writes files, installs python3-aiosmtpd when it is
# missing (I/O on the machine).
#
#   scripts/smtp-sink.sh start    start it (does nothing when it already answers)
#   scripts/smtp-sink.sh stop     stop it
#   scripts/smtp-sink.sh status   say whether it runs, and where
#   scripts/smtp-sink.sh env      print the environment the tests read
#
# `start` writes .zentralink/servers/smtp.env; `source` it to get
# ZL_SMTP_HOST, ZL_SMTP_PORT, ZL_SMTP_MAILDIR (where messages land),
# ZL_SMTP_USER and ZL_SMTP_PASSWORD (the test account; not a secret of
# anyone's). The tests read that file themselves when the variables are not set.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=scripts/lib.sh
source "$ROOT/scripts/lib.sh"

SMTP_DIR="$ROOT/.zentralink/servers/smtp"
SMTP_ENV="$ROOT/.zentralink/servers/smtp.env"
SMTP_PID="$SMTP_DIR/smtp-sink.pid"
SMTP_LOG="$SMTP_DIR/smtp-sink.log"
SMTP_MAILDIR="$SMTP_DIR/maildir"
SMTP_USER="zentralink-test"
SMTP_PASSWORD="sink-password-7Qe2"
# Debian's interpreter, where python3-aiosmtpd is installed (not a pyenv shim).
PYTHON=/usr/bin/python3

usage() {
    printf 'usage: %s start|stop|status|env\n' "$0" >&2
    exit 2
}

# The pid in the pid file when that process is alive and is our sink.
_smtp_running_pid() {
    local pid
    [ -f "$SMTP_PID" ] || return 1
    pid=$(cat "$SMTP_PID" 2>/dev/null || true)
    [[ "$pid" =~ ^[0-9]+$ ]] || return 1
    kill -0 "$pid" 2>/dev/null || return 1
    # After a reboot the pid may belong to another program: never touch that.
    tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q 'smtp-sink.py' || return 1
    printf '%s\n' "$pid"
}

# _smtp_ready PORT: true when the server on 127.0.0.1:PORT greets with 220.
_smtp_ready() {
    local port=$1 answer=""
    answer=$(
        (
            exec 3<>"/dev/tcp/127.0.0.1/$port" || exit 1
            timeout 2 head -n 1 <&3 || true
            printf 'QUIT\r\n' >&3 2>/dev/null || true
        ) 2>/dev/null
    ) || true
    [[ "$answer" == 220* ]]
}

# The port of the env file.
_smtp_env_port() {
    [ -f "$SMTP_ENV" ] || return 1
    local port
    port=$(sed -n 's/.*ZL_SMTP_PORT=\([0-9]*\).*/\1/p' "$SMTP_ENV")
    [ -n "$port" ] || return 1
    printf '%s\n' "$port"
}

# A port nothing listens on (TCP checked; the server's own bind catches the rest).
# smtp_stop [quiet]: stops the sink of the pid file, if it runs.
smtp_stop() {
    local pid _
    if pid=$(_smtp_running_pid); then
        info "stopping the SMTP sink (pid $pid)"
        kill "$pid" 2>/dev/null || true
        for _ in $(seq 1 50); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.1
        done
        if kill -0 "$pid" 2>/dev/null; then
            kill -9 "$pid" 2>/dev/null || true
        fi
    elif [ "${1:-}" != quiet ]; then
        info "the SMTP sink is not running"
    fi
    rm -f "$SMTP_PID" "$SMTP_ENV"
}

smtp_start() {
    local port
    if _smtp_running_pid >/dev/null && port=$(_smtp_env_port) && _smtp_ready "$port"; then
        info "the SMTP sink is already running (127.0.0.1:$port, messages in $SMTP_MAILDIR)"
        return 0
    fi
    ensure_packages python3-aiosmtpd
    "$PYTHON" -c 'import aiosmtpd' 2>/dev/null ||
        die "$PYTHON cannot import aiosmtpd: install the Debian package python3-aiosmtpd"
    # A sink that runs but does not answer (or a stale pid file) is replaced.
    smtp_stop quiet
    mkdir -p "$SMTP_DIR" "$SMTP_MAILDIR"
    : >"$SMTP_LOG"
    local attempt pid _
    for attempt in 1 2 3 4 5; do
        port=$(free_port)
        info "starting the SMTP sink on 127.0.0.1:$port, log $SMTP_LOG"
        setsid nohup "$PYTHON" "$ROOT/scripts/smtp-sink.py" --port "$port" \
            --maildir "$SMTP_MAILDIR" --user "$SMTP_USER" --password "$SMTP_PASSWORD" \
            </dev/null >>"$SMTP_LOG" 2>&1 9>&- &
        pid=$!
        printf '%s\n' "$pid" >"$SMTP_PID"
        for _ in $(seq 1 100); do
            kill -0 "$pid" 2>/dev/null || break
            if _smtp_ready "$port"; then
                umask 077
                printf 'export ZL_SMTP_HOST=127.0.0.1 ZL_SMTP_PORT=%s ZL_SMTP_MAILDIR=%s ZL_SMTP_USER=%s ZL_SMTP_PASSWORD=%s\n' \
                    "$port" "$SMTP_MAILDIR" "$SMTP_USER" "$SMTP_PASSWORD" >"$SMTP_ENV"
                info "the SMTP sink answers on 127.0.0.1:$port; environment in $SMTP_ENV"
                return 0
            fi
            sleep 0.1
        done
        info "the SMTP sink did not come up (attempt $attempt); last log lines:"
        tail -n 5 "$SMTP_LOG" | sed 's/^/      /' >&2 || true
        smtp_stop quiet
    done
    die "the SMTP sink did not start; see $SMTP_LOG"
}

smtp_status() {
    local port pid
    if pid=$(_smtp_running_pid) && port=$(_smtp_env_port) && _smtp_ready "$port"; then
        info "the SMTP sink runs (pid $pid) on 127.0.0.1:$port, messages in $SMTP_MAILDIR"
    else
        info "the SMTP sink is not running: start it with scripts/smtp-sink.sh start"
        return 1
    fi
}

smtp_env() {
    local port
    if _smtp_running_pid >/dev/null && port=$(_smtp_env_port) && _smtp_ready "$port"; then
        cat "$SMTP_ENV"
    else
        die "the SMTP sink is not running: start it with scripts/smtp-sink.sh start"
    fi
}

[ $# -eq 1 ] || usage
mkdir -p "$ROOT/.zentralink/servers"
# One start or stop at a time.
exec 9>"$ROOT/.zentralink/servers/smtp.lock"
flock 9
case "$1" in
start) smtp_start ;;
stop) smtp_stop ;;
status) smtp_status ;;
env) smtp_env ;;
*) usage ;;
esac
