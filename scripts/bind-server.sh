#!/usr/bin/env bash
# A BIND 9 server on loopback for the RFC 2136 provider tests: its own
# configuration, two TSIG keys (hmac-sha256, hmac-sha512) and 40 dynamic test
# zones t01.rfc2136.test. ... t40.rfc2136.test. that hold only SOA and NS.
# Starts, stops and restarts a named process and writes files under
# .zentralink/servers/ (I/O on the machine); installs bind9, bind9-utils and
# dnsutils with apt-get when they are missing. Never touches a system named.
#
#   scripts/bind-server.sh start   (re)start with every test zone reset, then
#                                  write .zentralink/servers/bind.env
#   scripts/bind-server.sh stop    stop the server started here
#   scripts/bind-server.sh env     print the export line of bind.env
#
# Tests read ZL_BIND_SERVER, ZL_BIND_TSIG256_NAME, ZL_BIND_TSIG256_SECRET,
# ZL_BIND_TSIG512_NAME and ZL_BIND_TSIG512_SECRET: `source .zentralink/servers/bind.env`
# or `eval "$(scripts/bind-server.sh env)"`.
set -euo pipefail
cd "$(dirname "$0")/.."
# named and tsig-keygen live in /usr/sbin, which some PATHs lack.
PATH="$PATH:/usr/sbin:/sbin"
# shellcheck source=scripts/lib.sh
source scripts/lib.sh

ROOT=$(pwd)
DIR="$ROOT/.zentralink/servers/bind"
ENV_FILE="$ROOT/.zentralink/servers/bind.env"
PID_FILE="$DIR/named.pid"
LOG_FILE="$DIR/named.log"
ZONE_COUNT=40
KEY256=zl-sha256
KEY512=zl-sha512

usage() {
    printf 'usage: %s start|stop|env\n' "$0" >&2
    exit 2
}

# The pid of the named started here, when it is still running.
running_pid() {
    local pid
    [ -f "$PID_FILE" ] || return 1
    pid=$(cat "$PID_FILE" 2>/dev/null) || return 1
    [[ "$pid" =~ ^[0-9]+$ ]] || return 1
    kill -0 "$pid" 2>/dev/null || return 1
    # Only a named whose command line names our configuration is ours.
    tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q -- "$DIR/named.conf" || return 1
    printf '%s\n' "$pid"
}

stop_server() {
    local pid _
    if ! pid=$(running_pid); then
        rm -f "$PID_FILE"
        info "BIND is not running"
        return 0
    fi
    info "stopping BIND (pid $pid)"
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 1 50); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    if kill -0 "$pid" 2>/dev/null; then
        info "BIND did not stop within 5 s; killing pid $pid"
        kill -KILL "$pid" 2>/dev/null || true
    fi
    rm -f "$PID_FILE"
}

# Whether something listens on 127.0.0.1:PORT (TCP or UDP).
port_in_use() {
    if command -v ss >/dev/null 2>&1; then
        [ -n "$(ss -Htuln "sport = :$1" 2>/dev/null)" ]
    else
        (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
    fi
}

# A free port: the one used last time when it is free again, else a random one.
choose_port() {
    local port _
    if [ -f "$DIR/port" ]; then
        port=$(cat "$DIR/port")
        if [[ "$port" =~ ^[0-9]+$ ]] && ! port_in_use "$port"; then
            printf '%s\n' "$port"
            return 0
        fi
    fi
    for _ in $(seq 1 100); do
        port=$((20000 + RANDOM % 40000))
        if ! port_in_use "$port"; then
            printf '%s\n' "$port"
            return 0
        fi
    done
    die "no free port found for BIND on 127.0.0.1"
}

# The base64 secret of key NAME in a tsig-keygen output file.
key_secret() {
    sed -n 's/^[[:space:]]*secret "\([^"]*\)";.*/\1/p' "$DIR/$1.key"
}

write_keys() {
    local name alg
    for spec in "$KEY256:hmac-sha256" "$KEY512:hmac-sha512"; do
        name=${spec%%:*}
        alg=${spec#*:}
        if [ ! -s "$DIR/$name.key" ] || [ -z "$(key_secret "$name")" ]; then
            tsig-keygen -a "$alg" "$name" >"$DIR/$name.key.tmp"
            mv "$DIR/$name.key.tmp" "$DIR/$name.key"
            chmod 600 "$DIR/$name.key"
        fi
    done
}

zone_name() {
    printf 't%02d.rfc2136.test' "$1"
}

# Every zone the server serves: the test zones and, with ZL_BIND_BENCH=1, the
# benchmark zones b001..b100.bench.test and big.bench.test (scripts/bench-providers.sh).
all_zones() {
    local i
    for i in $(seq 1 "$ZONE_COUNT"); do
        zone_name "$i"
        echo
    done
    if [ "${ZL_BIND_BENCH:-0}" = 1 ]; then
        for i in $(seq 1 100); do
            printf 'b%03d.bench.test\n' "$i"
        done
        echo big.bench.test
    fi
}

# Rewrites every test zone file and drops the journals: each start is clean.
write_zones() {
    local zone
    mkdir -p "$DIR/zones"
    rm -f "$DIR"/zones/*.jnl "$DIR"/zones/*.jbk
    for zone in $(all_zones); do
        cat >"$DIR/zones/$zone.zone" <<EOF
; Test zone $zone, rewritten by scripts/bind-server.sh on every start.
\$ORIGIN $zone.
\$TTL 3600
@   IN SOA ns1.rfc2136.test. hostmaster.rfc2136.test. 1 3600 600 1209600 300
@   IN NS  ns1.rfc2136.test.
EOF
    done
}

write_config() {
    local port=$1 zone
    {
        cat <<EOF
// Written by scripts/bind-server.sh; rewritten on every start.
options {
    directory "$DIR";
    pid-file "$PID_FILE";
    session-keyfile "$DIR/session.key";
    managed-keys-directory "$DIR";
    listen-on port $port { 127.0.0.1; };
    listen-on-v6 { none; };
    recursion no;
    dnssec-validation no;
    notify no;
    allow-query { 127.0.0.1; };
    // Test zones hold MX and SRV records whose in-zone targets have no
    // address records; with integrity checks BIND refuses such updates.
    check-integrity no;
};
// No rndc control channel: the system named may hold 127.0.0.1:953.
controls { };
include "$DIR/$KEY256.key";
include "$DIR/$KEY512.key";
EOF
        for zone in $(all_zones); do
            cat <<EOF
zone "$zone" {
    type primary;
    file "zones/$zone.zone";
    update-policy { grant $KEY256 zonesub ANY; grant $KEY512 zonesub ANY; };
    allow-transfer { key $KEY256; key $KEY512; };
};
EOF
        done
    } >"$DIR/named.conf"
}

# The named binary to run. Where AppArmor confines /usr/sbin/named to the
# system's directories (Debian's profile), a copy in DIR runs unconfined so it
# can read this configuration.
named_binary() {
    local named
    named=$(command -v named)
    if [ -r /sys/kernel/security/apparmor/profiles ] &&
        grep -q '^named (enforce)' /sys/kernel/security/apparmor/profiles 2>/dev/null; then
        cp -f "$named" "$DIR/named"
        named="$DIR/named"
    fi
    printf '%s\n' "$named"
}

write_env() {
    local port=$1 s256 s512
    s256=$(key_secret "$KEY256")
    s512=$(key_secret "$KEY512")
    if [ -z "$s256" ] || [ -z "$s512" ]; then
        die "cannot read the TSIG secrets from $DIR/*.key"
    fi
    umask 077
    printf 'export ZL_BIND_SERVER=127.0.0.1:%s ZL_BIND_TSIG256_NAME=%s ZL_BIND_TSIG256_SECRET=%s ZL_BIND_TSIG512_NAME=%s ZL_BIND_TSIG512_SECRET=%s\n' \
        "$port" "$KEY256" "$s256" "$KEY512" "$s512" >"$ENV_FILE.tmp"
    mv "$ENV_FILE.tmp" "$ENV_FILE"
}

start_server() {
    ensure_packages named=bind9 tsig-keygen=bind9 named-checkconf=bind9-utils dig=dnsutils
    stop_server
    mkdir -p "$DIR"
    chmod 700 "$DIR"
    local port named pid _
    port=$(choose_port)
    printf '%s\n' "$port" >"$DIR/port"
    write_keys
    write_zones
    write_config "$port"
    named-checkconf -z "$DIR/named.conf" >"$DIR/checkconf.log" 2>&1 ||
        die "the generated configuration does not load: see $DIR/checkconf.log"
    named=$(named_binary)
    info "starting BIND on 127.0.0.1:$port ($DIR)"
    # -g: foreground, logs to stderr. setsid detaches it from this shell.
    # The lock's descriptor is closed for named, which outlives this script.
    setsid nohup "$named" -c "$DIR/named.conf" -g >"$LOG_FILE" 2>&1 </dev/null 9>&- &
    pid=$!
    printf '%s\n' "$pid" >"$PID_FILE"
    for _ in $(seq 1 100); do
        if ! kill -0 "$pid" 2>/dev/null; then
            tail -n 20 "$LOG_FILE" >&2 || true
            die "BIND exited at start; its log is $LOG_FILE"
        fi
        if [ -n "$(dig +short +time=1 +tries=1 -p "$port" @127.0.0.1 "$(zone_name 1)" SOA 2>/dev/null)" ]; then
            write_env "$port"
            info "BIND answers on 127.0.0.1:$port; environment in $ENV_FILE"
            return 0
        fi
        sleep 0.2
    done
    tail -n 20 "$LOG_FILE" >&2 || true
    die "BIND did not answer on 127.0.0.1:$port within 20 s; its log is $LOG_FILE"
}

# One start or stop at a time (two test runs starting together).
lock() {
    mkdir -p "$(dirname "$ENV_FILE")"
    exec 9>"$ROOT/.zentralink/servers/bind.lock"
    flock 9
}

case "${1:-}" in
start)
    lock
    start_server
    ;;
stop)
    lock
    stop_server
    ;;
env)
    [ -f "$ENV_FILE" ] || die "BIND is not running: start it with scripts/bind-server.sh start"
    cat "$ENV_FILE"
    ;;
*) usage ;;
esac
