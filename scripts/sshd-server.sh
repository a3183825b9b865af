#!/usr/bin/env bash
# OpenSSH on loopback for the git source's ssh:// tests: an sshd with its own
# configuration under .zentralink/servers/sshd, a generated host key, a
# generated client key that may log in as the current user and run git's
# fetch commands only (git-shell), on a free port of 127.0.0.1. Starts and
# stops a daemon, writes files, installs openssh-server when it is missing
# (I/O on the machine). Never touches a system sshd.
#
#   scripts/sshd-server.sh start   start it (does nothing when it already answers)
#   scripts/sshd-server.sh stop    stop it
#   scripts/sshd-server.sh env     print the environment the tests read
#
# `start` writes .zentralink/servers/sshd.env: ZL_SSHD_PORT, ZL_SSHD_USER,
# ZL_SSHD_CLIENT_KEY (private key file) and ZL_SSHD_KNOWN_HOSTS (a
# known_hosts file holding the server's host key). The tests read that file
# themselves when the variables are not set.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
# sshd lives in /usr/sbin, which some PATHs lack.
PATH="$PATH:/usr/sbin:/sbin"
# shellcheck source=scripts/lib.sh
source "$ROOT/scripts/lib.sh"

SSHD_DIR="$ROOT/.zentralink/servers/sshd"
SSHD_ENV="$ROOT/.zentralink/servers/sshd.env"
SSHD_PID="$SSHD_DIR/sshd.pid"
SSHD_LOG="$SSHD_DIR/sshd.log"
SSHD_CONFIG="$SSHD_DIR/sshd_config"

usage() {
    printf 'usage: %s start|stop|env\n' "$0" >&2
    exit 2
}

# The pid of the sshd started here, when it is still running.
_sshd_running_pid() {
    local pid
    [ -f "$SSHD_PID" ] || return 1
    pid=$(cat "$SSHD_PID" 2>/dev/null) || return 1
    [[ "$pid" =~ ^[0-9]+$ ]] || return 1
    kill -0 "$pid" 2>/dev/null || return 1
    # Only an sshd whose command line names our configuration is ours.
    tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q -- "$SSHD_CONFIG" || return 1
    printf '%s\n' "$pid"
}

# True when something on 127.0.0.1:PORT greets as an SSH server within 2 seconds.
_sshd_greets() {
    local port=$1 line=""
    line=$(
        (
            exec 3<>"/dev/tcp/127.0.0.1/$port" || exit 1
            IFS= read -r -t 2 line <&3 || true
            printf '%s\n' "$line"
        ) 2>/dev/null
    ) || true
    [[ "$line" == SSH-2.0-* ]]
}

# True when the server of the env file runs and greets.
_sshd_answers() {
    [ -f "$SSHD_ENV" ] || return 1
    local port
    port=$(sed -n 's/.*ZL_SSHD_PORT=\([0-9]*\).*/\1/p' "$SSHD_ENV")
    [ -n "$port" ] && _sshd_greets "$port"
}

# A port nothing listens on (TCP checked; sshd's own bind catches the rest).
# sshd_stop [quiet]: stops the sshd of the pid file, if it runs.
sshd_stop() {
    local pid _
    if ! pid=$(_sshd_running_pid); then
        [ "${1:-}" = quiet ] || info "sshd is not running"
    else
        info "stopping sshd (pid $pid)"
        kill "$pid" 2>/dev/null || true
        for _ in $(seq 1 50); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.1
        done
        if kill -0 "$pid" 2>/dev/null; then
            kill -9 "$pid" 2>/dev/null || true
        fi
    fi
    rm -f "$SSHD_PID" "$SSHD_ENV"
}

# The keys: kept across restarts, made when missing.
_sshd_keys() {
    umask 077
    [ -f "$SSHD_DIR/host_ed25519_key" ] ||
        ssh-keygen -q -t ed25519 -N '' -C zentralink-test-host -f "$SSHD_DIR/host_ed25519_key"
    [ -f "$SSHD_DIR/client_ed25519_key" ] ||
        ssh-keygen -q -t ed25519 -N '' -C zentralink-test-client -f "$SSHD_DIR/client_ed25519_key"
    # The client key may run git's fetch and push commands and nothing else.
    printf 'restrict,command="git-shell -c \\"$SSH_ORIGINAL_COMMAND\\"" %s\n' \
        "$(cat "$SSHD_DIR/client_ed25519_key.pub")" >"$SSHD_DIR/authorized_keys"
}

_sshd_write_config() {
    local port=$1 user=$2
    umask 077
    cat >"$SSHD_CONFIG" <<EOF
# Written by scripts/sshd-server.sh: an sshd for tests, on loopback only.
ListenAddress 127.0.0.1
Port $port
HostKey $SSHD_DIR/host_ed25519_key
PidFile $SSHD_PID
AuthorizedKeysFile $SSHD_DIR/authorized_keys
AllowUsers $user
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
PermitRootLogin prohibit-password
UsePAM no
StrictModes no
AllowTcpForwarding no
AllowAgentForwarding no
X11Forwarding no
PermitTTY no
PrintMotd no
LogLevel INFO
EOF
}

sshd_start() {
    if _sshd_running_pid >/dev/null && _sshd_answers; then
        info "sshd is already running ($(cat "$SSHD_ENV"))"
        return 0
    fi
    ensure_packages openssh-server ssh-keygen=openssh-client git-shell=git
    sshd_stop quiet
    mkdir -p "$SSHD_DIR"
    # sshd started by root needs its privilege separation directory.
    if [ "$(id -u)" -eq 0 ] && [ ! -d /run/sshd ]; then
        mkdir -p /run/sshd
        chmod 755 /run/sshd
    fi
    _sshd_keys
    : >"$SSHD_LOG"
    local binary user port pid attempt _
    binary=$(command -v sshd) || die "sshd is not installed (package openssh-server)"
    user=$(id -un)
    for attempt in 1 2 3 4 5; do
        port=$(free_port)
        _sshd_write_config "$port" "$user"
        "$binary" -t -f "$SSHD_CONFIG" || die "sshd refuses its configuration $SSHD_CONFIG"
        info "starting sshd on 127.0.0.1:$port as $user, log $SSHD_LOG"
        # sshd re-executes itself, so it must be started by its absolute path.
        setsid nohup "$binary" -D -e -f "$SSHD_CONFIG" </dev/null >>"$SSHD_LOG" 2>&1 9>&- &
        pid=$!
        printf '%s\n' "$pid" >"$SSHD_PID"
        for _ in $(seq 1 50); do
            kill -0 "$pid" 2>/dev/null || break
            if _sshd_greets "$port"; then
                umask 077
                printf '[127.0.0.1]:%s %s\n' "$port" \
                    "$(cut -d' ' -f1,2 "$SSHD_DIR/host_ed25519_key.pub")" >"$SSHD_DIR/known_hosts"
                printf 'export ZL_SSHD_PORT=%s ZL_SSHD_USER=%s ZL_SSHD_CLIENT_KEY=%s ZL_SSHD_KNOWN_HOSTS=%s\n' \
                    "$port" "$user" "$SSHD_DIR/client_ed25519_key" "$SSHD_DIR/known_hosts" >"$SSHD_ENV"
                info "sshd answers on 127.0.0.1:$port; environment in $SSHD_ENV"
                return 0
            fi
            sleep 0.1
        done
        info "sshd did not come up (attempt $attempt); last log lines:"
        tail -n 5 "$SSHD_LOG" | sed 's/^/      /' >&2 || true
        sshd_stop quiet
    done
    die "sshd did not start; see $SSHD_LOG"
}

sshd_env() {
    if _sshd_running_pid >/dev/null && [ -f "$SSHD_ENV" ]; then
        cat "$SSHD_ENV"
    else
        die "sshd is not running: start it with scripts/sshd-server.sh start"
    fi
}

[ $# -eq 1 ] || usage
mkdir -p "$ROOT/.zentralink/servers"
# One start or stop at a time.
exec 9>"$ROOT/.zentralink/servers/sshd.lock"
flock 9
case "$1" in
start) sshd_start ;;
stop) sshd_stop ;;
env) sshd_env ;;
*) usage ;;
esac
