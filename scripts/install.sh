#!/usr/bin/env bash
# Installs ZentraLink on one Ubuntu 24.04 or Debian 12 host (README
# "Single-host install"). Run it as root from a checkout:
#
#   cargo build --release -p zentralink          # as yourself, or copy a binary
#   sudo scripts/install.sh [--binary PATH] [--public-url URL]
#                           [--security-contact ADDR] [--privacy-contact ADDR]
#
# What it does, each step only when something is missing or different:
#   - installs the Debian packages it needs (postgresql, curl, ca-certificates);
#   - creates the system user `zentralink` (no login shell, home /var/lib/zentralink);
#   - installs the binary to /usr/local/bin/zentralink (default: this
#     checkout's target/release/zentralink; it never builds), the cron, backup
#     and restore scripts to /usr/local/lib/zentralink/, and
#     /usr/local/sbin/zentralink-admin (runs the CLI as the services do);
#   - creates the PostgreSQL role and database `zentralink`, reached over the
#     Unix socket with peer authentication (no password);
#   - writes /etc/zentralink/env (mode 0600, root) with a generated
#     PLATFORM_ENCRYPTION_KEY and CRON_TOKEN, and /etc/zentralink/operator.env,
#     ONLY when they do not exist: a new key would make every stored secret
#     unreadable, so an existing file is never rewritten (the options above only
#     set their own lines);
#   - installs the systemd units of deploy/systemd/ (web service, operator,
#     cron and backup timers), reloads systemd, enables and starts them, and
#     restarts a running service whose binary, unit or environment changed.
# It prints every change it makes; run again, it says "nothing changed".
#
# Options:
#   --binary PATH            the zentralink binary to install
#   --public-url URL         set ZENTRALINK_PUBLIC_URL (e.g. https://dns.example.com)
#   --security-contact ADDR  set ZENTRALINK_SECURITY_CONTACT
#   --privacy-contact ADDR   set ZENTRALINK_PRIVACY_CONTACT
#   --root DIR               write every file under DIR instead of / (a throw-away
#                            root for tests; the user goes into DIR/etc/passwd).
#                            Implies --no-apt --no-postgres --no-systemctl.
#   --no-apt                 install no packages
#   --no-postgres            leave PostgreSQL alone
#   --no-systemctl           neither reload, enable, start nor restart units
#   --no-user                create no system user (files then belong to root)
set -euo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)

say() { printf '%s\n' "$*"; }
section() { printf '\n==> %s\n' "$*"; }
die() {
    printf 'error: %s\n' "$*" >&2
    exit 1
}
usage() {
    sed -n '2,/^set -euo/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//'
    exit "${1:-0}"
}

ROOT=""
binary=""
public_url=""
security_contact=""
privacy_contact=""
do_apt=1
do_postgres=1
do_systemctl=1
do_user=1
while [ "$#" -gt 0 ]; do
    case $1 in
        --binary) binary=${2:?--binary needs a path}; shift 2 ;;
        --public-url) public_url=${2:?--public-url needs a URL}; shift 2 ;;
        --security-contact) security_contact=${2:?--security-contact needs an address}; shift 2 ;;
        --privacy-contact) privacy_contact=${2:?--privacy-contact needs an address}; shift 2 ;;
        --root) ROOT=${2:?--root needs a directory}; shift 2 ;;
        --no-apt) do_apt=0; shift ;;
        --no-postgres) do_postgres=0; shift ;;
        --no-systemctl) do_systemctl=0; shift ;;
        --no-user) do_user=0; shift ;;
        -h | --help) usage 0 ;;
        *) printf 'error: unknown option %s\n\n' "$1" >&2; usage 2 ;;
    esac
done

if [ -n "$ROOT" ]; then
    [ -d "$ROOT" ] || die "--root $ROOT is not a directory"
    ROOT=$(cd "$ROOT" && pwd)
    [ "$ROOT" != / ] || ROOT=""
fi
if [ -n "$ROOT" ]; then
    # apt, PostgreSQL and systemctl act on this machine, not on the directory.
    do_apt=0
    do_postgres=0
    do_systemctl=0
fi

[ "$(id -u)" -eq 0 ] || die "run it as root: sudo $0 $*"

# The fixed layout (the units in deploy/systemd/ name the same paths).
BIN=/usr/local/bin/zentralink
ADMIN=/usr/local/sbin/zentralink-admin
LIBDIR=/usr/local/lib/zentralink
ETC=/etc/zentralink
ENV_FILE=$ETC/env
OPERATOR_ENV=$ETC/operator.env
STATE=/var/lib/zentralink
BACKUPS=/var/backups/zentralink
UNITDIR=/etc/systemd/system
SOCKET_DIR=/run/postgresql
USER_NAME=zentralink
SERVICES=(zentralink-web.service zentralink-operator.service)
TIMERS=(zentralink-cron.timer zentralink-cron-daily.timer zentralink-backup.timer)

changes=0
changed() {
    printf '    %s\n' "$*"
    changes=$((changes + 1))
}
info() { printf '    %s\n' "$*"; }
skip_reason() {
    if [ -n "$ROOT" ]; then printf -- '--root'; else printf -- '%s' "$1"; fi
}

# What changed, for the restarts at the end.
binary_changed=0
env_changed=0
operator_env_changed=0
declare -A unit_changed=()

# ---------------------------------------------------------------- checks
if [ -z "$binary" ]; then
    binary=$here/target/release/zentralink
    [ -x "$binary" ] || die "no binary at $binary: build it first (cargo build --release -p zentralink, as yourself) or give --binary PATH"
fi
{ [ -f "$binary" ] && [ -x "$binary" ]; } || die "--binary $binary is not an executable file"
version=$("$binary" --version 2>/dev/null) || die "$binary --version failed: is it the zentralink binary for this machine?"
[[ "$version" == zentralink* ]] || die "$binary does not say it is zentralink (--version printed: $version)"
for f in deploy/zentralink.env deploy/operator.env deploy/cron.sh deploy/zentralink-admin \
    scripts/backup.sh scripts/restore.sh; do
    [ -f "$here/$f" ] || die "$here/$f is missing: run this script from a complete checkout"
done

if [ -z "$ROOT" ] && [ -r /etc/os-release ]; then
    # shellcheck source=/dev/null
    os=$(. /etc/os-release && printf '%s %s' "${ID:-?}" "${VERSION_ID:-?}")
    case $os in
        "debian 12" | "ubuntu 24.04") ;;
        *) say "warning: written for Debian 12 and Ubuntu 24.04; this is $os" ;;
    esac
fi

# Values set into the env file: one word, nothing a shell or systemd would read specially.
one_word='^[^][:space:]"'"'"'\\$`;#[]+$'
check_value() {
    [[ "$2" =~ $one_word ]] || die "$1 must be one word without quotes, spaces, \\, \$, \`, ; or #: $2"
}
[ -z "$public_url" ] || { check_value --public-url "$public_url"; [[ "$public_url" == https://* || "$public_url" == http://* ]] || die "--public-url must start with https://"; }
[ -z "$security_contact" ] || check_value --security-contact "$security_contact"
[ -z "$privacy_contact" ] || check_value --privacy-contact "$privacy_contact"

say "ZentraLink single-host install${ROOT:+ into $ROOT} ($version)"

# ---------------------------------------------------------------- packages
section "Packages"
if [ "$do_apt" -eq 1 ]; then
    command -v apt-get >/dev/null 2>&1 || die "apt-get is missing: this script is for Debian 12 and Ubuntu 24.04 (or use --no-apt)"
    missing=()
    for pkg in postgresql curl ca-certificates util-linux passwd; do
        [ "$(dpkg-query -W -f='${db:Status-Status}' "$pkg" 2>/dev/null)" = installed ] || missing+=("$pkg")
    done
    if [ "${#missing[@]}" -gt 0 ]; then
        DEBIAN_FRONTEND=noninteractive apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}"
        changed "installed ${missing[*]}"
    else
        info "postgresql, curl, ca-certificates are installed"
    fi
else
    info "skipped (--no-apt)"
fi

# ---------------------------------------------------------------- user
section "System user $USER_NAME"
user_exists() {
    if [ -n "$ROOT" ]; then
        [ -f "$ROOT/etc/passwd" ] && grep -q "^$USER_NAME:" "$ROOT/etc/passwd"
    else
        getent passwd "$USER_NAME" >/dev/null
    fi
}
if [ "$do_user" -eq 1 ]; then
    if user_exists; then
        info "$USER_NAME exists"
    else
        if [ -n "$ROOT" ]; then
            # useradd --prefix edits DIR/etc/{passwd,group,shadow,gshadow}; they must exist.
            mkdir -p "$ROOT/etc"
            for f in passwd group shadow gshadow; do
                if [ ! -e "$ROOT/etc/$f" ]; then
                    : >"$ROOT/etc/$f"
                    case $f in shadow | gshadow) chmod 600 "$ROOT/etc/$f" ;; esac
                    changed "created $ROOT/etc/$f"
                fi
            done
        fi
        useradd ${ROOT:+--prefix "$ROOT"} --system --user-group --home-dir "$STATE" --no-create-home \
            --shell /usr/sbin/nologin --comment ZentraLink "$USER_NAME"
        changed "created system user $USER_NAME (home $STATE, no login shell)"
    fi
else
    info "skipped (--no-user)"
fi
# uid:gid of the service user (numeric: under --root the host does not know it).
if user_exists; then
    if [ -n "$ROOT" ]; then
        owner=$(awk -F: -v u="$USER_NAME" '$1 == u { print $3 ":" $4 }' "$ROOT/etc/passwd")
    else
        owner="$(id -u "$USER_NAME"):$(id -g "$USER_NAME")"
    fi
else
    owner=0:0
    info "no user $USER_NAME: its directories belong to root (the services cannot run like this)"
fi

# ---------------------------------------------------------------- files
# Makes PATH (under ROOT) have MODE and OWNER; says so when it changes them.
fix_meta() {
    local path=$1 mode=$2 want_owner=$3 shown=$4 have
    have=$(stat -c '%a %u:%g' "$path")
    if [ "$have" != "$mode $want_owner" ]; then
        chown "$want_owner" "$path"
        chmod "$mode" "$path"
        changed "$shown: mode and owner $have -> $mode $want_owner"
        return 0
    fi
    return 1
}

# ensure_dir DIR MODE OWNER: DIR exists with MODE and OWNER.
ensure_dir() {
    local dir=$1 mode=$2 want_owner=$3
    if [ ! -d "$ROOT$dir" ]; then
        mkdir -p "$ROOT$dir"
        chown "$want_owner" "$ROOT$dir"
        chmod "$mode" "$ROOT$dir"
        changed "created $dir"
    else
        fix_meta "$ROOT$dir" "$mode" "$want_owner" "$dir" || true
    fi
}

# A system directory: created when missing (under --root), never re-moded.
ensure_system_dir() {
    if [ ! -d "$ROOT$1" ]; then
        mkdir -p "$ROOT$1"
        changed "created $1"
    fi
}

# put_file SRC DEST MODE: DEST has SRC's content, MODE and owner root;
# written to a temporary name and renamed. Returns 0 when it changed DEST.
put_file() {
    local src=$1 dest=$2 mode=$3 target=$ROOT$2 tmp
    if [ -f "$target" ] && cmp -s "$src" "$target"; then
        fix_meta "$target" "$mode" 0:0 "$dest" && return 0
        return 1
    fi
    tmp=$(dirname "$target")/.$(basename "$target").new.$$
    install -m "$mode" -o 0 -g 0 "$src" "$tmp"
    if [ -e "$target" ]; then
        mv -f "$tmp" "$target"
        changed "updated $dest"
    else
        mv -f "$tmp" "$target"
        changed "installed $dest"
    fi
    return 0
}

section "Directories"
before=$changes
ensure_system_dir /usr/local/bin
ensure_system_dir /usr/local/sbin
ensure_system_dir "$UNITDIR"
ensure_dir "$LIBDIR" 755 0:0
ensure_dir "$ETC" 700 0:0
ensure_dir "$STATE" 750 "$owner"
ensure_dir "$STATE/zones" 750 "$owner"
ensure_dir "$BACKUPS" 700 "$owner"
[ "$changes" -gt "$before" ] || info "up to date"

section "Programs"
before=$changes
put_file "$binary" "$BIN" 755 && binary_changed=1
put_file "$here/deploy/zentralink-admin" "$ADMIN" 755 || true
put_file "$here/deploy/cron.sh" "$LIBDIR/cron.sh" 755 || true
put_file "$here/scripts/backup.sh" "$LIBDIR/backup.sh" 755 || true
put_file "$here/scripts/restore.sh" "$LIBDIR/restore.sh" 755 || true
[ "$changes" -gt "$before" ] || info "up to date"

section "systemd units"
before=$changes
for unit in "$here"/deploy/systemd/*.service "$here"/deploy/systemd/*.timer; do
    name=$(basename "$unit")
    if put_file "$unit" "$UNITDIR/$name" 644; then
        unit_changed[$name]=1
    fi
done
[ "$changes" -gt "$before" ] || info "up to date"

# ---------------------------------------------------------------- PostgreSQL
pg() {
    (cd / && runuser -u postgres -- psql -X -q -At -v ON_ERROR_STOP=1 "$@")
}

section "PostgreSQL"
if [ "$do_postgres" -eq 1 ]; then
    command -v pg_isready >/dev/null 2>&1 || die "PostgreSQL is not installed (run without --no-apt, or apt-get install postgresql)"
    if ! pg_isready -q -h "$SOCKET_DIR"; then
        [ "$do_systemctl" -eq 1 ] || die "PostgreSQL does not answer on $SOCKET_DIR: start it (systemctl start postgresql)"
        systemctl start postgresql
        changed "started postgresql"
        for _ in $(seq 1 30); do
            pg_isready -q -h "$SOCKET_DIR" && break
            sleep 1
        done
        pg_isready -q -h "$SOCKET_DIR" || die "PostgreSQL does not answer on $SOCKET_DIR; see pg_lsclusters and /var/log/postgresql/"
    fi
    if [ "$(pg -d postgres -c "SELECT 1 FROM pg_roles WHERE rolname = '$USER_NAME'")" = 1 ]; then
        info "role $USER_NAME exists"
    else
        pg -d postgres -c "CREATE ROLE $USER_NAME LOGIN"
        changed "created PostgreSQL role $USER_NAME (peer authentication over $SOCKET_DIR, no password)"
    fi
    if [ "$(pg -d postgres -c "SELECT 1 FROM pg_database WHERE datname = '$USER_NAME'")" = 1 ]; then
        info "database $USER_NAME exists"
    else
        pg -d postgres -c "CREATE DATABASE $USER_NAME OWNER $USER_NAME"
        changed "created PostgreSQL database $USER_NAME"
    fi
    if user_exists; then
        (cd / && runuser -u "$USER_NAME" -- psql -X -q -At \
            "postgres:///$USER_NAME?host=$SOCKET_DIR&user=$USER_NAME" -c 'SELECT 1' >/dev/null) ||
            die "$USER_NAME cannot connect to its database over $SOCKET_DIR: pg_hba.conf must allow 'local $USER_NAME $USER_NAME peer'"
        info "$USER_NAME connects to its database over $SOCKET_DIR"
    fi
else
    info "skipped ($(skip_reason --no-postgres))"
fi

# ---------------------------------------------------------------- environment
# A random key (32 bytes, base64) and token (32 bytes, hex: 64 characters).
new_key() { head -c 32 /dev/urandom | base64 -w0; }
new_token() { head -c 32 /dev/urandom | od -An -v -tx1 | tr -d ' \n'; }

# write_private DEST: standard input into DEST (under ROOT), mode 0600, root.
write_private() {
    local target=$ROOT$1 tmp
    tmp=$(dirname "$target")/.$(basename "$target").new.$$
    (umask 077 && cat >"$tmp")
    chown 0:0 "$tmp"
    chmod 600 "$tmp"
    mv -f "$tmp" "$target"
}

# The value of KEY in an env file ("" when absent).
env_value() {
    awk -v k="$1" 'index($0, k "=") == 1 { v = substr($0, length(k) + 2) } END { print v }' "$2"
}

# set_env KEY VALUE: the env file's KEY line says VALUE (replacing KEY= or
# a commented #KEY= line in place, else appended); nothing else changes.
set_env() {
    local key=$1 value=$2 file=$ROOT$ENV_FILE
    [ "$(env_value "$key" "$file")" = "$value" ] && return 0
    KEY=$key VALUE=$value awk '
        BEGIN { k = ENVIRON["KEY"]; line = k "=" ENVIRON["VALUE"] }
        (index($0, k "=") == 1 || index($0, "#" k "=") == 1) { if (!done) { print line; done = 1 }; next }
        { print }
        END { if (!done) print line }
    ' "$file" | write_private "$ENV_FILE"
    changed "set $key in $ENV_FILE"
    env_changed=1
}

section "Environment ($ENV_FILE, $OPERATOR_ENV)"
if [ -e "$ROOT$ENV_FILE" ]; then
    fix_meta "$ROOT$ENV_FILE" 600 0:0 "$ENV_FILE" && env_changed=1
    [ -n "$(env_value PLATFORM_ENCRYPTION_KEY "$ROOT$ENV_FILE")" ] ||
        die "$ENV_FILE has no PLATFORM_ENCRYPTION_KEY: put the installation's key there (this script generates one only when the file does not exist)"
    if [ -z "$(env_value CRON_TOKEN "$ROOT$ENV_FILE")" ]; then
        { cat "$ROOT$ENV_FILE"; printf 'CRON_TOKEN=%s\n' "$(new_token)"; } | write_private "$ENV_FILE"
        changed "added a generated CRON_TOKEN to $ENV_FILE"
        env_changed=1
    fi
    info "$ENV_FILE exists: its key and token are kept"
else
    if [ "$do_postgres" -eq 1 ] &&
        [ "$(pg -d "$USER_NAME" -c "SELECT to_regclass('public._sqlx_migrations') IS NOT NULL")" = t ]; then
        die "the database $USER_NAME holds data but $ENV_FILE is missing: put back the $ENV_FILE you kept (its PLATFORM_ENCRYPTION_KEY decrypts the stored secrets); a new key would make them unreadable"
    fi
    template=$(<"$here/deploy/zentralink.env")
    template=${template//@PLATFORM_ENCRYPTION_KEY@/$(new_key)}
    template=${template//@CRON_TOKEN@/$(new_token)}
    printf '%s\n' "$template" | write_private "$ENV_FILE"
    changed "created $ENV_FILE with a new PLATFORM_ENCRYPTION_KEY and CRON_TOKEN: keep a copy of it somewhere safe, apart from the backups"
    env_changed=1
fi
[ -z "$public_url" ] || set_env ZENTRALINK_PUBLIC_URL "$public_url"
[ -z "$security_contact" ] || set_env ZENTRALINK_SECURITY_CONTACT "$security_contact"
[ -z "$privacy_contact" ] || set_env ZENTRALINK_PRIVACY_CONTACT "$privacy_contact"
if [ -e "$ROOT$OPERATOR_ENV" ]; then
    fix_meta "$ROOT$OPERATOR_ENV" 600 0:0 "$OPERATOR_ENV" && operator_env_changed=1
    info "$OPERATOR_ENV exists: kept as it is"
else
    write_private "$OPERATOR_ENV" <"$here/deploy/operator.env"
    changed "created $OPERATOR_ENV (the operator reads manifests from $STATE/zones; edit it for a git source)"
    operator_env_changed=1
fi

# ---------------------------------------------------------------- systemd
section "Services"
if [ "$do_systemctl" -eq 1 ]; then
    [ -d /run/systemd/system ] || die "systemd is not running here: run with --no-systemctl and start the services yourself"
    if [ "${#unit_changed[@]}" -gt 0 ]; then
        systemctl daemon-reload
        info "systemctl daemon-reload"
    fi
    for unit in "${SERVICES[@]}" "${TIMERS[@]}"; do
        if ! systemctl is-enabled --quiet "$unit"; then
            systemctl enable --quiet "$unit"
            changed "enabled $unit"
        fi
        restart=0
        [ -z "${unit_changed[$unit]:-}" ] || restart=1
        case $unit in
            zentralink-web.service)
                [ "$binary_changed$env_changed" = 00 ] || restart=1 ;;
            zentralink-operator.service)
                [ "$binary_changed$env_changed$operator_env_changed" = 000 ] || restart=1 ;;
        esac
        if ! systemctl is-active --quiet "$unit"; then
            if systemctl start "$unit"; then
                changed "started $unit"
            else
                say "warning: $unit did not start: journalctl -u ${unit%.timer} -n 50"
            fi
        elif [ "$restart" -eq 1 ]; then
            if systemctl restart "$unit"; then
                changed "restarted $unit"
            else
                say "warning: $unit did not restart: journalctl -u ${unit%.timer} -n 50"
            fi
        fi
    done
    # The web service answers once it has migrated and bound its port.
    healthy=0
    for _ in $(seq 1 30); do
        command -v curl >/dev/null 2>&1 || break
        if curl --silent --fail --max-time 2 http://127.0.0.1:8080/api/healthz >/dev/null; then
            healthy=1
            break
        fi
        sleep 1
    done
    if [ "$healthy" -eq 1 ]; then
        info "http://127.0.0.1:8080/api/healthz answers"
    else
        say "warning: http://127.0.0.1:8080/api/healthz does not answer yet: journalctl -u zentralink-web -n 50"
    fi
else
    info "skipped ($(skip_reason --no-systemctl)): start them with systemctl enable --now ${SERVICES[*]} ${TIMERS[*]}"
fi

section "Done"
if [ "$changes" -eq 0 ]; then
    say "nothing changed"
else
    say "$changes change(s)"
fi
