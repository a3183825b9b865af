# shellcheck shell=bash
# Functions shared by scripts/test.sh and scripts/quickstart.sh: section
# headers, installing missing Debian packages, starting PostgreSQL, checking
# the Rust toolchain. Sourced, not run. Installs packages and starts services
# (I/O on the machine), and only when something is missing.

# What the scripts need, as `command=package` (install the package when the
# command is absent) or `package` (install it when it is not installed).
# Extend these lists when a test needs another tool.
# shellcheck disable=SC2034  # used by the scripts that source this file
ZL_BUILD_NEEDS=(
    cc=build-essential
    git=git
    pkg-config=pkg-config          # git2 (libgit2) finds the system OpenSSL through it
    libssl-dev                     # git2's https transport links the system OpenSSL
)
# shellcheck disable=SC2034
ZL_TEST_NEEDS=(
    "${ZL_BUILD_NEEDS[@]}"
    ssh-keygen=openssh-client      # approval signatures (ssh-keygen -Y sign/verify)
    named-checkzone=bind9-utils    # zone-file checks
    pdns-server                    # PowerDNS provider tests
    pdns-backend-sqlite3
    bind9                          # RFC 2136 provider tests
    dnsutils
    postgresql                     # the store
    openssh-server                 # git source over ssh:// (scripts/sshd-server.sh)
    openssl=openssl                # git source: a TLS server with an untrusted certificate
    chromium=chromium              # web service browser tests (headless, through chromedriver)
    chromedriver=chromium-driver   # scripts/chromedriver.sh
    python3-aiosmtpd               # scripts/smtp-sink.sh: the SMTP server the mail tests read back
    systemd-analyze=systemd        # the install test: systemd-analyze verify of the units
    nginx=nginx-light              # the install test: the reverse-proxy example on loopback
    shellcheck=shellcheck          # the install test: the install scripts are checked
)

# The PostgreSQL the tests use.
ZL_PG_HOST=127.0.0.1
ZL_PG_PORT=5432

section() {
    printf '\n==> %s\n' "$*"
}

info() {
    printf '    %s\n' "$*"
}

die() {
    printf 'error: %s\n' "$*" >&2
    exit 1
}

# Runs a command as root: directly when we are root, else through sudo.
as_root() {
    if [ "$(id -u)" -eq 0 ]; then
        "$@"
    elif command -v sudo >/dev/null 2>&1; then
        sudo "$@"
    else
        die "'$*' needs root; run this script as root or install sudo"
    fi
}

_zl_package_installed() {
    command -v dpkg-query >/dev/null 2>&1 &&
        [ "$(dpkg-query -W -f='${db:Status-Status}' "$1" 2>/dev/null)" = installed ]
}

# Package installs must not start the daemons they ship (named, pdns_server
# would take port 53): tests start their own servers on loopback. Where the
# machine has no policy-rc.d, one that refuses service starts is put in place
# for the install and removed afterwards.
_ZL_POLICY_RC=/usr/sbin/policy-rc.d
_zl_policy_rc_ours=0

_zl_block_service_starts() {
    if [ ! -e "$_ZL_POLICY_RC" ]; then
        printf '#!/bin/sh\n# Written by ZentraLink scripts/lib.sh for the length of an apt-get install.\nexit 101\n' |
            as_root tee "$_ZL_POLICY_RC" >/dev/null
        as_root chmod 755 "$_ZL_POLICY_RC"
        _zl_policy_rc_ours=1
        trap _zl_unblock_service_starts EXIT
    fi
}

_zl_unblock_service_starts() {
    if [ "$_zl_policy_rc_ours" -eq 1 ]; then
        as_root rm -f "$_ZL_POLICY_RC"
        _zl_policy_rc_ours=0
    fi
}

# ensure_packages SPEC...: installs, with apt-get, the packages of the specs
# (see ZL_TEST_NEEDS) that are missing. Does nothing when nothing is missing.
ensure_packages() {
    local spec cmd pkg
    local -a missing=()
    for spec in "$@"; do
        if [[ "$spec" == *=* ]]; then
            cmd=${spec%%=*}
            pkg=${spec#*=}
            command -v "$cmd" >/dev/null 2>&1 || missing+=("$pkg")
        else
            pkg=$spec
            if command -v dpkg-query >/dev/null 2>&1; then
                _zl_package_installed "$pkg" || missing+=("$pkg")
            fi
        fi
    done
    if [ "${#missing[@]}" -eq 0 ]; then
        info "all needed packages are present"
        return 0
    fi
    # Remove duplicates, keep the order.
    local -a unique=()
    local seen=" "
    for pkg in "${missing[@]}"; do
        if [[ "$seen" != *" $pkg "* ]]; then
            unique+=("$pkg")
            seen+="$pkg "
        fi
    done
    if ! command -v apt-get >/dev/null 2>&1; then
        die "missing packages: ${unique[*]}; this script installs them with apt-get (Debian/Ubuntu); install them by hand on this system"
    fi
    info "installing: ${unique[*]}"
    _zl_block_service_starts
    local ok=1
    as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq || ok=0
    if [ "$ok" -eq 1 ]; then
        as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${unique[@]}" || ok=0
    fi
    _zl_unblock_service_starts
    [ "$ok" -eq 1 ] || die "apt-get could not install: ${unique[*]}"
}

# free_port: a port of 127.0.0.1 nothing listens on (for the test servers).
free_port() {
    local port _
    for _ in $(seq 1 50); do
        port=$((20000 + RANDOM % 40000))
        if ! (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
            printf '%s\n' "$port"
            return 0
        fi
    done
    die "no free port found on 127.0.0.1"
}

# start_web ZENTRALINK LOGDIR: `zentralink web` over plain HTTP on a free
# port of 127.0.0.1 (for the benchmarks), waited for until /api/healthz
# answers; its log in LOGDIR/web.log. Sets `site` and `web_pid`; the caller
# stops it (set its trap first).
start_web() {
    local zl=$1 dir=$2 port
    port=$(free_port)
    site="http://127.0.0.1:$port"
    RUST_LOG=warn "$zl" web --listen "127.0.0.1:$port" --insecure-cookies >"$dir/web.log" 2>&1 &
    web_pid=$!
    for _ in $(seq 1 100); do
        curl -fs "$site/api/healthz" >/dev/null 2>&1 && break
        kill -0 "$web_pid" 2>/dev/null || die "zentralink web exited; see $dir/web.log"
        sleep 0.1
    done
    curl -fs "$site/api/healthz" >/dev/null || die "zentralink web does not answer on $site; see $dir/web.log"
    info "zentralink web (pid $web_pid) on $site, log $dir/web.log"
}

_zl_pg_ready() {
    command -v pg_isready >/dev/null 2>&1 &&
        pg_isready -q -h "$ZL_PG_HOST" -p "$ZL_PG_PORT"
}

# ensure_postgres: PostgreSQL answers on 127.0.0.1:5432, installing and
# starting the Debian cluster when it does not.
ensure_postgres() {
    if _zl_pg_ready; then
        info "PostgreSQL is accepting connections on $ZL_PG_HOST:$ZL_PG_PORT"
        return 0
    fi
    if [ ! -d /etc/postgresql ] || [ -z "$(ls -A /etc/postgresql 2>/dev/null)" ]; then
        ensure_packages postgresql pg_ctlcluster=postgresql-common
    fi
    local version
    # shellcheck disable=SC2012  # cluster versions are plain numbers
    version=$(ls /etc/postgresql | head -1)
    [ -n "$version" ] || die "PostgreSQL is installed but has no cluster under /etc/postgresql"
    if [ ! -d "/etc/postgresql/$version/main" ]; then
        info "creating cluster $version/main"
        as_root pg_createcluster "$version" main
    fi
    info "starting cluster $version/main"
    as_root pg_ctlcluster --skip-systemctl-redirect "$version" main start || true
    local _
    for _ in $(seq 1 30); do
        if _zl_pg_ready; then
            info "PostgreSQL is accepting connections on $ZL_PG_HOST:$ZL_PG_PORT"
            return 0
        fi
        sleep 1
    done
    die "PostgreSQL did not come up on $ZL_PG_HOST:$ZL_PG_PORT; see /var/log/postgresql/ and 'pg_lsclusters'"
}

# ensure_rust: cargo with rustfmt and clippy is on PATH.
ensure_rust() {
    if ! command -v cargo >/dev/null 2>&1 && [ -x "$HOME/.cargo/bin/cargo" ]; then
        export PATH="$HOME/.cargo/bin:$PATH"
    fi
    command -v cargo >/dev/null 2>&1 ||
        die "cargo is not installed: install Rust 1.88 or newer with rustup (https://rustup.rs)"
    if ! cargo fmt --version >/dev/null 2>&1 || ! cargo clippy --version >/dev/null 2>&1; then
        command -v rustup >/dev/null 2>&1 ||
            die "rustfmt and clippy are needed: install them with your Rust toolchain"
        rustup component add rustfmt clippy
    fi
    info "$(cargo --version)"
}

# The directory cargo builds into.
cargo_target_dir() {
    printf '%s\n' "${CARGO_TARGET_DIR:-target}"
}

# ensure_database_url: exports DATABASE_URL for the tests when it is not set:
# the local server as the postgres superuser (tests create and drop their own
# databases). Where TCP connections need a password (a stock Debian cluster),
# a password is set for the local postgres role and used.
ensure_database_url() {
    if [ -n "${DATABASE_URL:-}" ]; then
        info "DATABASE_URL is set"
        return 0
    fi
    local url="postgres://postgres@$ZL_PG_HOST:$ZL_PG_PORT/postgres"
    if ! psql "$url" -Atqc 'select 1' >/dev/null 2>&1; then
        info "setting a password for the local postgres role (TCP connections need one here)"
        as_root su postgres -c "psql -qc \"ALTER ROLE postgres PASSWORD 'zentralink-test'\"" >/dev/null
        url="postgres://postgres:zentralink-test@$ZL_PG_HOST:$ZL_PG_PORT/postgres"
        export PGPASSWORD=zentralink-test
        psql "$url" -Atqc 'select 1' >/dev/null 2>&1 || die "cannot connect to PostgreSQL at $ZL_PG_HOST:$ZL_PG_PORT as postgres; set DATABASE_URL"
    fi
    export DATABASE_URL="$url"
    info "DATABASE_URL=postgres://postgres@$ZL_PG_HOST:$ZL_PG_PORT/postgres"
}
