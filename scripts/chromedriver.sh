#!/usr/bin/env bash
# ChromeDriver on loopback for the web service's browser tests
# (web/tests/browser.rs): Debian's chromedriver on a free port of 127.0.0.1,
# accepting connections from loopback only; each test opens its own headless
# Chromium session through it. Starts and stops a daemon, writes files,
# installs chromium and chromium-driver when they are missing (I/O on the
# machine).
#
#   scripts/chromedriver.sh start   start it (does nothing when it already answers)
#   scripts/chromedriver.sh stop    stop it
#   scripts/chromedriver.sh env     print the environment the tests read
#
# `start` writes .zentralink/servers/chromedriver.env; `source` it to get
# CHROMEDRIVER_URL (the WebDriver endpoint) and ZL_CHROMIUM_BINARY (the
# browser the sessions start). The tests read that file themselves when the
# variables are not set.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=scripts/lib.sh
source "$ROOT/scripts/lib.sh"

CD_DIR="$ROOT/.zentralink/servers/chromedriver"
CD_ENV="$ROOT/.zentralink/servers/chromedriver.env"
CD_PID="$CD_DIR/chromedriver.pid"
CD_LOG="$CD_DIR/chromedriver.log"

usage() {
    printf 'usage: %s start|stop|env\n' "$0" >&2
    exit 2
}

# The pid in the pid file when that process is alive and is a chromedriver.
_cd_running_pid() {
    local pid
    [ -f "$CD_PID" ] || return 1
    pid=$(cat "$CD_PID" 2>/dev/null || true)
    [[ "$pid" =~ ^[0-9]+$ ]] || return 1
    kill -0 "$pid" 2>/dev/null || return 1
    # After a reboot the pid may belong to another program: never touch that.
    [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = chromedriver ] || return 1
    printf '%s\n' "$pid"
}

# _cd_ready PORT: true when GET /status on 127.0.0.1:PORT says the driver is
# ready (bash's /dev/tcp, so that a fresh machine needs no curl).
_cd_ready() {
    local port=$1 answer=""
    answer=$(
        (
            exec 3<>"/dev/tcp/127.0.0.1/$port" || exit 1
            printf 'GET /status HTTP/1.1\r\nHost: 127.0.0.1:%s\r\nConnection: close\r\n\r\n' "$port" >&3
            timeout 2 cat <&3 || true
        ) 2>/dev/null
    ) || true
    [[ "$answer" == *'"ready":true'* || "$answer" == *'"ready": true'* ]]
}

# The port of the env file.
_cd_env_port() {
    [ -f "$CD_ENV" ] || return 1
    local url
    url=$(sed -n 's/.*CHROMEDRIVER_URL=\([^ ]*\).*/\1/p' "$CD_ENV")
    [ -n "$url" ] || return 1
    printf '%s\n' "${url##*:}"
}

# A port nothing listens on (TCP checked; the driver's own bind catches the rest).
_cd_binary() {
    command -v chromedriver 2>/dev/null && return 0
    [ -x /usr/bin/chromedriver ] && { printf '/usr/bin/chromedriver\n'; return 0; }
    die "chromedriver is not installed (package chromium-driver)"
}

# The browser itself: Debian's binary behind its /usr/bin/chromium launcher
# script when it is there (the launcher only adds flags the tests set anyway).
_chromium_binary() {
    local candidate
    [ -x /usr/lib/chromium/chromium ] && { printf '/usr/lib/chromium/chromium\n'; return 0; }
    for candidate in chromium /usr/bin/chromium chromium-browser; do
        command -v "$candidate" 2>/dev/null && return 0
    done
    die "chromium is not installed (package chromium)"
}

# cd_stop [quiet]: stops the driver of the pid file, if it runs (the browsers
# it started go with it).
cd_stop() {
    local pid _
    if pid=$(_cd_running_pid); then
        info "stopping chromedriver (pid $pid)"
        kill "$pid" 2>/dev/null || true
        for _ in $(seq 1 50); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.1
        done
        if kill -0 "$pid" 2>/dev/null; then
            kill -9 "$pid" 2>/dev/null || true
        fi
    elif [ "${1:-}" != quiet ]; then
        info "chromedriver is not running"
    fi
    rm -f "$CD_PID" "$CD_ENV"
}

cd_start() {
    local port
    if _cd_running_pid >/dev/null && port=$(_cd_env_port) && _cd_ready "$port"; then
        info "chromedriver is already running (http://127.0.0.1:$port)"
        return 0
    fi
    ensure_packages chromium=chromium chromedriver=chromium-driver
    # A driver that runs but does not answer (or a stale pid file) is replaced.
    cd_stop quiet
    mkdir -p "$CD_DIR"
    : >"$CD_LOG"
    local binary browser attempt pid _
    binary=$(_cd_binary)
    browser=$(_chromium_binary)
    for attempt in 1 2 3 4 5; do
        port=$(free_port)
        info "starting chromedriver on http://127.0.0.1:$port, log $CD_LOG"
        # Without --allowed-ips chromedriver listens on loopback only (with
        # it, on every interface); the log is the driver's own, at INFO.
        setsid nohup "$binary" --port="$port" \
            --log-path="$CD_LOG" --append-log </dev/null >>"$CD_LOG" 2>&1 9>&- &
        pid=$!
        printf '%s\n' "$pid" >"$CD_PID"
        for _ in $(seq 1 100); do
            kill -0 "$pid" 2>/dev/null || break
            if _cd_ready "$port"; then
                umask 077
                printf 'export CHROMEDRIVER_URL=http://127.0.0.1:%s ZL_CHROMIUM_BINARY=%s\n' \
                    "$port" "$browser" >"$CD_ENV"
                info "chromedriver answers on http://127.0.0.1:$port ($("$binary" --version | awk '{print $2}')); environment in $CD_ENV"
                return 0
            fi
            sleep 0.1
        done
        info "chromedriver did not come up (attempt $attempt); last log lines:"
        tail -n 5 "$CD_LOG" | sed 's/^/      /' >&2 || true
        cd_stop quiet
    done
    die "chromedriver did not start; see $CD_LOG"
}

cd_env() {
    local port
    if _cd_running_pid >/dev/null && port=$(_cd_env_port) && _cd_ready "$port"; then
        cat "$CD_ENV"
    else
        die "chromedriver is not running: start it with scripts/chromedriver.sh start"
    fi
}

[ $# -eq 1 ] || usage
mkdir -p "$ROOT/.zentralink/servers"
# One start or stop at a time.
exec 9>"$ROOT/.zentralink/servers/chromedriver.lock"
flock 9
case "$1" in
start) cd_start ;;
stop) cd_stop ;;
env) cd_env ;;
*) usage ;;
esac
