#!/usr/bin/env bash
# The single-host install test (scripts/test.sh runs it; README "Single-host
# install"). Needs root (the install chowns files and adds a user to the
# throw-away root's /etc/passwd), systemd-analyze, python3, and PostgreSQL
# reachable through DATABASE_URL as a user that may create databases (for
# the backup and restore round trip); nginx and openssl for the proxy check.
# Builds nothing: the install gets a placeholder binary, and the database
# schema comes from migrations/*.sql.
#
#   1. scripts/install.sh into a temporary root: files, modes, owners, the
#      system user, a generated key (32 bytes) and cron token;
#   2. run again: nothing changed (it says so; every file, mode and owner as
#      before); a changed unit and a wrong env mode are put right, the key kept;
#      an env file without a key is refused and left alone;
#   3. `systemd-analyze verify` of every unit and timer (no warnings), and
#      `systemd-analyze security` of every service;
#   4. deploy/cron.sh against a loopback HTTP server: the token arrives as a
#      bearer header; failures are reported;
#   5. backup.sh and restore.sh (the installed copies): backups readable by
#      their owner only, retention, no partial files after a failure, and a
#      restore over changed data and into an empty database gives back every
#      table's rows and the state directory;
#   6. in a private mount namespace (the root's files mounted over /etc,
#      /usr/local, /var/lib, /var/backups): zentralink-admin runs the binary
#      as zentralink with both env files, and its backup as that user;
#      then install.sh on / itself (the real useradd) twice, without
#      PostgreSQL and systemctl;
#   7. deploy/nginx/zentralink.conf, unchanged but for ports and paths, with
#      a self-signed certificate in front of a stand-in web service: HSTS
#      once, Host passed, HTTP redirected, ACME served, event streams unbuffered.
# What this machine cannot do (no systemd as PID 1): start the units, peer
# authentication for the new user, apt-get on Ubuntu 24.04.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/lib.sh
source scripts/lib.sh

if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null 2>&1 || die "the install test needs root"
    exec sudo --preserve-env=DATABASE_URL,PGPASSWORD "$0" "$@"
fi
for tool in systemd-analyze python3 psql pg_dump pg_restore useradd; do
    command -v "$tool" >/dev/null 2>&1 || die "the install test needs $tool (scripts/test.sh installs it)"
done
: "${DATABASE_URL:=postgres://postgres@$ZL_PG_HOST:$ZL_PG_PORT/postgres}"

work=$(mktemp -d)
db=zl_install_test_$$
server_pid=""
cleanup() {
    [ -z "$server_pid" ] || kill "$server_pid" 2>/dev/null || true
    psql "$DATABASE_URL" -X -q -c "DROP DATABASE IF EXISTS $db" >/dev/null 2>&1 || true
    rm -rf "$work"
}
trap cleanup EXIT

fail() { die "install test: $*"; }
# mode and owner of a path under the root
meta() { stat -c '%a %u:%g' "$root$1"; }
expect_meta() {
    local have
    have=$(meta "$1")
    [ "$have" = "$2" ] || fail "$1 has mode and owner $have, expected $2"
}
# Every path under the root with its type, mode, owner and content hash.
manifest() {
    (cd "$root" && find . -printf '%p %y %m %U:%G\n' | LC_ALL=C sort &&
        find . -type f -print0 | LC_ALL=C sort -z | xargs -0 sha256sum)
}
env_value() {
    awk -v k="$1" 'index($0, k "=") == 1 { v = substr($0, length(k) + 2) } END { print v }' "$root/etc/zentralink/env"
}

root=$work/root
# The root starts with this machine's users and groups (not their passwords),
# so the new user's ids are free here too (section 6 runs it on this machine).
mkdir -p "$root/etc"
cp /etc/passwd /etc/group "$root/etc/"
binary=$work/zentralink
# Says who runs it and with what, for the zentralink-admin check.
cat >"$binary" <<'EOF'
#!/bin/sh
if [ "$1" = --version ]; then echo "zentralink 0.0.0 (install test placeholder)"; exit 0; fi
printf 'user=%s\ncwd=%s\nhome=%s\ndatabase_url=%s\nkey_length=%s\noperator_args=%s\nargs=%s\n' \
    "$(id -un)" "$(pwd)" "$HOME" "$DATABASE_URL" "${#PLATFORM_ENCRYPTION_KEY}" "$ZENTRALINK_OPERATOR_ARGS" "$*"
EOF
chmod 755 "$binary"
install_args=(--root "$root" --binary "$binary" --public-url https://dns.example.test --security-contact security@example.test)

# ------------------------------------------------------------------ 1
info "install into a throw-away root"
out=$(scripts/install.sh "${install_args[@]}") || { printf '%s\n' "$out"; fail "the first install failed"; }
grep -q "created system user zentralink" <<<"$out" || fail "the first run did not create the user: $out"
grep -q "change(s)" <<<"$out" || fail "the first run did not count its changes"

passwd=$(grep '^zentralink:' "$root/etc/passwd") || fail "no zentralink in the root's /etc/passwd"
IFS=: read -r _ _ uid gid _ home shell <<<"$passwd"
[ "$home" = /var/lib/zentralink ] || fail "the user's home is $home"
[ "$shell" = /usr/sbin/nologin ] || fail "the user's shell is $shell"
[ "$uid" -lt 1000 ] || fail "the user is not a system user (uid $uid)"
zl="$uid:$gid"

expect_meta /usr/local/bin/zentralink "755 0:0"
cmp -s "$binary" "$root/usr/local/bin/zentralink" || fail "the installed binary is not the one given"
expect_meta /usr/local/sbin/zentralink-admin "755 0:0"
for f in cron.sh backup.sh restore.sh; do expect_meta "/usr/local/lib/zentralink/$f" "755 0:0"; done
cmp -s scripts/backup.sh "$root/usr/local/lib/zentralink/backup.sh" || fail "backup.sh differs from scripts/backup.sh"
expect_meta /etc/zentralink "700 0:0"
expect_meta /etc/zentralink/env "600 0:0"
expect_meta /etc/zentralink/operator.env "600 0:0"
expect_meta /var/lib/zentralink "750 $zl"
expect_meta /var/lib/zentralink/zones "750 $zl"
expect_meta /var/backups/zentralink "700 $zl"
units=()
for unit in deploy/systemd/*; do
    name=$(basename "$unit")
    units+=("$name")
    expect_meta "/etc/systemd/system/$name" "644 0:0"
    cmp -s "$unit" "$root/etc/systemd/system/$name" || fail "$name differs from $unit"
done
[ "${#units[@]}" -eq 8 ] || fail "expected 8 units and timers in deploy/systemd, found ${#units[@]}"

key=$(env_value PLATFORM_ENCRYPTION_KEY)
token=$(env_value CRON_TOKEN)
[ "$(printf '%s' "$key" | base64 -d 2>/dev/null | wc -c)" -eq 32 ] || fail "PLATFORM_ENCRYPTION_KEY is not 32 bytes in base64: $key"
[ "${#token}" -ge 32 ] || fail "CRON_TOKEN is shorter than 32 characters"
[ "$(env_value DATABASE_URL)" = '"postgres:///zentralink?host=/run/postgresql&user=zentralink"' ] ||
    fail "DATABASE_URL is $(env_value DATABASE_URL)"
[ "$(env_value ZENTRALINK_PUBLIC_URL)" = https://dns.example.test ] || fail "--public-url was not written"
[ "$(env_value ZENTRALINK_SECURITY_CONTACT)" = security@example.test ] || fail "--security-contact was not written"
grep -q '^ZENTRALINK_OPERATOR_ARGS=--source /var/lib/zentralink/zones ' "$root/etc/zentralink/operator.env" ||
    fail "operator.env does not name the zones directory as the source"
info "files, modes, owners, user, key and token as expected"

# ------------------------------------------------------------------ 2
info "install again: nothing changes"
before=$(manifest)
out=$(scripts/install.sh "${install_args[@]}") || fail "the second install failed"
grep -qx "nothing changed" <<<"$out" || fail "the second run changed something: $out"
if grep -qE '^    (created|installed|updated|set|added|enabled|started|restarted) ' <<<"$out"; then
    fail "the second run reports changes: $out"
fi
[ "$(manifest)" = "$before" ] || fail "the second run changed files: $(diff <(printf '%s\n' "$before") <(manifest) || true)"

info "a changed unit and a loosened env file are put right, the key is kept"
printf '# edited\n' >>"$root/etc/systemd/system/zentralink-web.service"
chmod 644 "$root/etc/zentralink/env"
sed -i '/^CRON_TOKEN=/d' "$root/etc/zentralink/env"
out=$(scripts/install.sh "${install_args[@]}") || fail "the third install failed"
grep -q "updated /etc/systemd/system/zentralink-web.service" <<<"$out" || fail "the edited unit was not restored: $out"
grep -q "/etc/zentralink/env: mode and owner 644 0:0 -> 600 0:0" <<<"$out" || fail "the env file's mode was not restored: $out"
grep -q "added a generated CRON_TOKEN" <<<"$out" || fail "a missing CRON_TOKEN was not added: $out"
cmp -s deploy/systemd/zentralink-web.service "$root/etc/systemd/system/zentralink-web.service" || fail "the unit differs after the repair"
expect_meta /etc/zentralink/env "600 0:0"
[ "$(env_value PLATFORM_ENCRYPTION_KEY)" = "$key" ] || fail "the third run changed PLATFORM_ENCRYPTION_KEY"
new_token=$(env_value CRON_TOKEN)
[ "${#new_token}" -ge 32 ] || fail "the added CRON_TOKEN is shorter than 32 characters"
[ "$new_token" != "$token" ] || fail "the added CRON_TOKEN is the removed one"
token=$new_token
out=$(scripts/install.sh "${install_args[@]}") || fail "the fourth install failed"
grep -qx "nothing changed" <<<"$out" || fail "the run after the repair changed something: $out"

info "an env file without a key is refused and left alone"
cp -p "$root/etc/zentralink/env" "$work/env.saved"
sed -i '/^PLATFORM_ENCRYPTION_KEY=/d' "$root/etc/zentralink/env"
cp -p "$root/etc/zentralink/env" "$work/env.keyless"
if out=$(scripts/install.sh "${install_args[@]}" 2>&1); then
    fail "the install accepted an env file without PLATFORM_ENCRYPTION_KEY"
fi
grep -q "has no PLATFORM_ENCRYPTION_KEY" <<<"$out" || fail "unexpected refusal: $out"
cmp -s "$work/env.keyless" "$root/etc/zentralink/env" || fail "the refused run changed the env file"
cp -p "$work/env.saved" "$root/etc/zentralink/env"

# ------------------------------------------------------------------ 3
info "systemd-analyze verify of every unit and timer"
# verify checks that ExecStart programs exist: check copies whose /usr/local/
# paths point into the throw-away root (everything else as installed).
verify=$work/verify
mkdir "$verify"
for name in "${units[@]}"; do
    sed "s#/usr/local/#$root/usr/local/#g" "$root/etc/systemd/system/$name" >"$verify/$name"
done
if ! out=$(cd "$verify" && systemd-analyze verify --man=no "${units[@]/#/$verify/}" 2>&1) || [ -n "$out" ]; then
    printf '%s\n' "$out"
    fail "systemd-analyze verify found problems in deploy/systemd"
fi
for name in "${units[@]}"; do
    [[ "$name" == *.service ]] || continue
    exposure=$(systemd-analyze security --offline=true "$verify/$name" 2>/dev/null | tail -1)
    info "$name: ${exposure#*: }"
    level=$(grep -oE 'level for [^:]+: [0-9.]+' <<<"$exposure" | awk '{ print $NF }')
    if [ -z "$level" ] || ! awk -v l="$level" 'BEGIN { exit !(l <= 2.5) }'; then
        fail "$name is less sandboxed than expected: $exposure"
    fi
done

# ------------------------------------------------------------------ 4
info "cron.sh sends the token as a bearer header"
cat >"$work/server.py" <<'EOF'
import http.server, sys

class Handler(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        job = self.path.rsplit("/", 1)[-1]
        with open(sys.argv[1], "a") as log:
            log.write("%s %s\n" % (self.path, self.headers.get("Authorization", "-")))
        status = {"busy": 409, "broken": 500}.get(job, 200)
        body = b'{"job":"%s"}' % job.encode()
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass

server = http.server.HTTPServer(("127.0.0.1", 0), Handler)
with open(sys.argv[2], "w") as f:
    f.write(str(server.server_address[1]))
server.serve_forever()
EOF
python3 "$work/server.py" "$work/requests.log" "$work/port" &
server_pid=$!
for _ in $(seq 1 50); do [ -s "$work/port" ] && break; sleep 0.1; done
[ -s "$work/port" ] || fail "the test HTTP server did not start"
cron_url=http://127.0.0.1:$(cat "$work/port")
cron=$root/usr/local/lib/zentralink/cron.sh
CRON_TOKEN=$token ZENTRALINK_CRON_URL=$cron_url "$cron" mail-flush notifications busy >"$work/cron.out" ||
    fail "cron.sh failed: $(cat "$work/cron.out")"
[ "$(cat "$work/requests.log")" = "/api/cron/mail-flush Bearer $token
/api/cron/notifications Bearer $token
/api/cron/busy Bearer $token" ] || fail "the server saw: $(cat "$work/requests.log")"
grep -q "mail-flush: 200" "$work/cron.out" || fail "cron.sh did not report the answer: $(cat "$work/cron.out")"
if CRON_TOKEN=$token ZENTRALINK_CRON_URL=$cron_url "$cron" broken mail-flush >/dev/null 2>&1; then
    fail "cron.sh exited 0 although a job failed"
fi
if grep -rqF "$token" "$work/cron.out"; then fail "cron.sh printed the token"; fi
if grep -qF "$token" "$cron"; then fail "the token is in cron.sh"; fi
# The token is never an argument: curl reads the header from its standard input.
grep -q -- '--header @-' "$cron" || fail "cron.sh does not pass the header on standard input"
kill "$server_pid"
server_pid=""

# ------------------------------------------------------------------ 5
info "backup and restore round trip (PostgreSQL)"
backup=$root/usr/local/lib/zentralink/backup.sh
restore=$root/usr/local/lib/zentralink/restore.sh
export PGOPTIONS="-c client_min_messages=warning"
admin_psql() { psql "$DATABASE_URL" -X -q -At -v ON_ERROR_STOP=1 "$@"; }
admin_psql -c "DROP DATABASE IF EXISTS $db" -c "CREATE DATABASE $db" >/dev/null ||
    fail "cannot create a database through DATABASE_URL"
# The install's URL form (Unix socket) when this machine allows it, else TCP.
socket_url="postgres:///$db?host=/run/postgresql&user=postgres"
if psql "$socket_url" -X -Atqc 'SELECT 1' >/dev/null 2>&1; then
    url=$socket_url
    info "over the Unix socket: postgres:///$db?host=/run/postgresql&user=postgres"
else
    url=$(printf '%s' "$DATABASE_URL" | sed -E "s#^([^?]*/)[^/?]*(\\?.*)?\$#\\1$db\\2#")
    info "over TCP (the Unix socket is not open to us here)"
fi
q() { psql "$url" -X -q -At -v ON_ERROR_STOP=1 "$@"; }
for migration in migrations/*.sql; do
    q --single-transaction -f "$migration" >/dev/null || fail "$migration does not apply"
done
q >/dev/null <<'EOF'
INSERT INTO tenants (id, slug, display_name) VALUES
    (gen_random_uuid(), 'acme', 'Acme'), (gen_random_uuid(), 'globex', 'Globex Corp');
INSERT INTO users (id, email, display_name, password_hash)
    VALUES (gen_random_uuid(), 'ann@acme.example', 'Ann', '$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA');
INSERT INTO memberships (tenant_id, user_id, role)
    SELECT t.id, u.id, 'OWNER' FROM tenants t, users u WHERE t.slug = 'acme';
EOF
# Each table: name, row count, digest of its rows.
tables() {
    local t
    for t in $(q -c "SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY 1"); do
        printf '%s %s\n' "$t" "$(q -c "SELECT count(*) || ' ' || md5(coalesce(string_agg(x::text, E'\n' ORDER BY x::text), '')) FROM public.\"$t\" x")"
    done
}
expected=$(tables)
[ "$(grep -c . <<<"$expected")" -ge 10 ] || fail "the migrations made only $(grep -c . <<<"$expected") tables"
grep -q '^tenants 2 ' <<<"$expected" || fail "the test rows are missing: $expected"

state=$work/state
mkdir -p "$state/zones"
printf 'kind: DnsZone\n' >"$state/zones/example.yaml"
backups=$work/backups
export ZENTRALINK_STATE_DIR=$state
prefix=""
for _ in 1 2 3; do
    prefix=$(DATABASE_URL=$url ZENTRALINK_BACKUP_KEEP=2 "$backup" "$backups" 2>/dev/null) || fail "backup.sh failed"
done
{ [ -f "$prefix.dump" ] && [ -f "$prefix.state.tar.gz" ]; } || fail "backup.sh printed $prefix but wrote no backup there"
[ "$(find "$backups" -name '*.dump' | wc -l)" -eq 2 ] || fail "ZENTRALINK_BACKUP_KEEP=2 left $(find "$backups" -name '*.dump' | wc -l) backups"
[ "$(find "$backups" -name '*.state.tar.gz' | wc -l)" -eq 2 ] || fail "retention left state tarballs behind"
[ "$(stat -c %a "$prefix.dump")" = 600 ] || fail "the dump is readable by others (mode $(stat -c %a "$prefix.dump"))"
[ "$(stat -c %a "$prefix.state.tar.gz")" = 600 ] || fail "the state tarball is readable by others"
if DATABASE_URL="${url/$db/${db}_missing}" "$backup" "$backups" >/dev/null 2>&1; then
    fail "backup.sh succeeded on a missing database"
fi
[ -z "$(find "$backups" -name '*.partial')" ] || fail "a failed backup left partial files"
[ "$(find "$backups" -name '*.dump' | wc -l)" -eq 2 ] || fail "a failed backup removed or added backups"

# Restore over changed data: the backup's rows come back, the new ones go.
q -c "DELETE FROM tenants WHERE slug = 'globex'" -c "INSERT INTO tenants (id, slug, display_name) VALUES (gen_random_uuid(), 'initech', 'Initech')" \
    -c "UPDATE users SET display_name = 'Mallory'" >/dev/null
printf 'changed\n' >"$state/zones/example.yaml"
[ "$(tables)" != "$expected" ] || fail "changing the data did not change the digests"
DATABASE_URL=$url "$restore" "$prefix" >/dev/null || fail "restore.sh over existing data failed"
[ "$(tables)" = "$expected" ] || fail "after restore over changed data: $(diff <(printf '%s\n' "$expected") <(tables) || true)"
[ "$(cat "$state/zones/example.yaml")" = "kind: DnsZone" ] || fail "the state directory was not restored"

# Restore into an empty database (the database lost).
admin_psql -c "DROP DATABASE $db" -c "CREATE DATABASE $db" >/dev/null
[ -z "$(q -c "SELECT tablename FROM pg_tables WHERE schemaname = 'public'")" ] || fail "the new database is not empty"
DATABASE_URL=$url "$restore" "$prefix" >/dev/null || fail "restore.sh into an empty database failed"
[ "$(tables)" = "$expected" ] || fail "after restore into an empty database: $(diff <(printf '%s\n' "$expected") <(tables) || true)"
if DATABASE_URL=$url "$restore" "$backups/zentralink-none" >/dev/null 2>&1; then
    fail "restore.sh accepted a backup that does not exist"
fi
info "$(grep -c . <<<"$expected") tables identical after both restores; state directory restored"

# ------------------------------------------------------------------ 6
# zentralink-admin reads the fixed paths of a real install: run it in a
# private mount namespace where the root's files are mounted over /etc (a
# copy of this machine's, with the user and /etc/zentralink added),
# /usr/local, /var/lib and /var/backups.
if unshare -m true 2>/dev/null; then
    info "zentralink-admin as the services run (private mount namespace)"
    etc=$work/etc
    cp -a /etc "$etc"
    grep -q '^zentralink:' "$etc/passwd" || grep '^zentralink:' "$root/etc/passwd" >>"$etc/passwd"
    grep -q '^zentralink:' "$etc/group" || grep '^zentralink:' "$root/etc/group" >>"$etc/group"
    cp -a "$root/etc/zentralink" "$etc/zentralink"
    # The scratch database of the round trip instead of the install's.
    sed -i "s#^DATABASE_URL=.*#DATABASE_URL=\"${url//&/\\&}\"#" "$etc/zentralink/env"
    if ! unshare -m bash -euo pipefail -s -- "$etc" "$root" "$work" <<'EOF'
etc=$1 root=$2 work=$3
mount --bind "$etc" /etc
mount --bind "$root/usr/local" /usr/local
for dir in /var/lib /var/backups; do
    mount -t tmpfs tmpfs "$dir"
    mkdir "$dir/zentralink"
    mount --bind "$root$dir/zentralink" "$dir/zentralink"
done
zentralink-admin web create-owner --email ann@example.test >"$work/admin.out"
zentralink-admin backup >"$work/admin-backup.out"
EOF
    then
        fail "zentralink-admin failed (above)"
    fi
    got=$(cat "$work/admin.out")
    want="user=zentralink
cwd=/var/lib/zentralink
home=/var/lib/zentralink
database_url=$url
key_length=${#key}
operator_args=$(grep '^ZENTRALINK_OPERATOR_ARGS=' "$root/etc/zentralink/operator.env" | cut -d= -f2-)
args=web create-owner --email ann@example.test"
    [ "$got" = "$want" ] || fail "zentralink-admin ran the binary with: $got; expected: $want"
    admin_backup=$(cat "$work/admin-backup.out")
    [[ "$admin_backup" == /var/backups/zentralink/zentralink-* ]] || fail "zentralink-admin backup printed: $admin_backup"
    made="$root$admin_backup"
    [ "$(stat -c '%a %u:%g' "$made.dump")" = "600 $zl" ] ||
        fail "the backup is not the service user's alone: $(stat -c '%a %u:%g' "$made.dump")"
    [ -f "$made.state.tar.gz" ] || fail "zentralink-admin backup archived no state"
    info "runs as zentralink in /var/lib/zentralink with both env files; backup as zentralink (mode 600)"
else
    info "zentralink-admin: skipped (no mount namespaces here)"
fi

# ------------------------------------------------------------------ 6b
# install.sh on / itself (no --root: the real useradd, getent, id) in a
# private mount namespace over a copy of /etc and empty /usr/local, /var/lib,
# /var/backups. PostgreSQL stays out (the server, outside the namespace,
# would not know the user for peer authentication).
if unshare -m true 2>/dev/null; then
    info "install.sh on / twice (private mount namespace, --no-apt --no-postgres --no-systemctl)"
    etc2=$work/etc2
    cp -a /etc "$etc2"
    if grep -q '^zentralink:' "$etc2/passwd"; then
        info "skipped: this machine already has a user zentralink"
    else
        mkdir "$work/usrlocal"
        if ! unshare -m bash -euo pipefail -s -- "$etc2" "$work" "$binary" <<'EOF'
etc=$1 work=$2 binary=$3
mount --bind "$etc" /etc
mount --bind "$work/usrlocal" /usr/local
mount -t tmpfs tmpfs /var/lib
mount -t tmpfs tmpfs /var/backups
args=(--no-apt --no-postgres --no-systemctl --binary "$binary")
scripts/install.sh "${args[@]}" >"$work/slash1.out"
scripts/install.sh "${args[@]}" >"$work/slash2.out"
{
    getent passwd zentralink
    stat -c '%n %a %U:%G' /etc/zentralink/env /var/lib/zentralink /var/backups/zentralink \
        /usr/local/bin/zentralink /etc/systemd/system/zentralink-web.service
} >"$work/slash.state"
EOF
        then
            fail "install.sh on / failed: $(cat "$work/slash1.out" "$work/slash2.out" 2>/dev/null)"
        fi
        grep -q "created system user zentralink" "$work/slash1.out" || fail "no user created on /: $(cat "$work/slash1.out")"
        grep -qx "nothing changed" "$work/slash2.out" || fail "the second run on / changed something: $(cat "$work/slash2.out")"
        grep -q '^zentralink:x:[0-9]*:[0-9]*:ZentraLink:/var/lib/zentralink:/usr/sbin/nologin$' "$work/slash.state" ||
            fail "useradd made: $(head -1 "$work/slash.state")"
        for want in "/etc/zentralink/env 600 root:root" "/var/lib/zentralink 750 zentralink:zentralink" \
            "/var/backups/zentralink 700 zentralink:zentralink" "/usr/local/bin/zentralink 755 root:root" \
            "/etc/systemd/system/zentralink-web.service 644 root:root"; do
            grep -qx "$want" "$work/slash.state" || fail "on /, expected $want: $(cat "$work/slash.state")"
        done
        info "the real useradd made a system user; files, modes and owners as expected; second run: nothing changed"
    fi
fi

# ------------------------------------------------------------------ 7
# deploy/nginx/zentralink.conf as written, on loopback ports with a
# self-signed certificate, in front of a stand-in for the web service.
if command -v nginx >/dev/null 2>&1 && command -v openssl >/dev/null 2>&1; then
    info "the nginx example proxies as documented (nginx $(nginx -v 2>&1 | sed 's#.*/##'))"
    ngx=$work/nginx
    mkdir -p "$ngx/acme/.well-known/acme-challenge" "$ngx/logs"
    printf 'challenge-token\n' >"$ngx/acme/.well-known/acme-challenge/t1"
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 1 \
        -subj /CN=dns.example.com -keyout "$ngx/key.pem" -out "$ngx/cert.pem" >/dev/null 2>&1 ||
        fail "openssl could not make a test certificate"
    cat >"$work/upstream.py" <<'EOF'
import http.server, sys, time

class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self):
        if self.path.endswith("/events"):
            # An event stream that stays open: the first event must arrive at once.
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.send_header("Cache-Control", "no-store")
            self.end_headers()
            self.wfile.write(b"id: 1\ndata: first\n\n")
            self.wfile.flush()
            try:
                while True:
                    time.sleep(0.2)
                    self.wfile.write(b": keep-alive\n\n")
                    self.wfile.flush()
            except OSError:
                return
        body = ("host=%s proto=%s" % (self.headers.get("Host"), self.headers.get("X-Forwarded-Proto"))).encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Strict-Transport-Security", "max-age=63072000; includeSubDomains")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass

server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
server.daemon_threads = True
with open(sys.argv[1], "w") as f:
    f.write(str(server.server_address[1]))
server.serve_forever()
EOF
    python3 "$work/upstream.py" "$work/upstream.port" &
    server_pid=$!
    for _ in $(seq 1 50); do [ -s "$work/upstream.port" ] && break; sleep 0.1; done
    [ -s "$work/upstream.port" ] || fail "the stand-in web service did not start"
    upstream=$(cat "$work/upstream.port")
    http_port=$(free_port)
    https_port=$(free_port)
    # Only addresses, ports and paths change; every directive is the example's.
    sed -e "/listen \[::\]/d" \
        -e "s#listen 80;#listen 127.0.0.1:$http_port;#" \
        -e "s#listen 443 ssl http2;#listen 127.0.0.1:$https_port ssl http2;#" \
        -e "s#/etc/letsencrypt/live/dns.example.com/fullchain.pem#$ngx/cert.pem#" \
        -e "s#/etc/letsencrypt/live/dns.example.com/privkey.pem#$ngx/key.pem#" \
        -e "s#/var/www/letsencrypt#$ngx/acme#" \
        -e "s#http://127.0.0.1:8080#http://127.0.0.1:$upstream#" \
        deploy/nginx/zentralink.conf >"$ngx/site.conf"
    [ "$(grep -c "127.0.0.1:$upstream" "$ngx/site.conf")" -eq 2 ] || fail "the nginx example no longer proxies to 127.0.0.1:8080 in two places"
    cat >"$ngx/nginx.conf" <<EOF
user root;
worker_processes 1;
pid $ngx/nginx.pid;
error_log $ngx/logs/error.log;
events { worker_connections 64; }
http {
    access_log off;
    client_body_temp_path $ngx/client_body;
    proxy_temp_path $ngx/proxy;
    fastcgi_temp_path $ngx/fastcgi;
    uwsgi_temp_path $ngx/uwsgi;
    scgi_temp_path $ngx/scgi;
    include $ngx/site.conf;
}
EOF
    nginx -t -q -p "$ngx" -c "$ngx/nginx.conf" 2>"$ngx/test.out" || { cat "$ngx/test.out" >&2; fail "nginx -t refuses deploy/nginx/zentralink.conf"; }
    nginx -p "$ngx" -c "$ngx/nginx.conf" || fail "nginx did not start"
    for _ in $(seq 1 50); do [ -s "$ngx/nginx.pid" ] && break; sleep 0.1; done
    https=(curl --silent --show-error --max-time 10 --cacert "$ngx/cert.pem"
        --resolve "dns.example.com:$https_port:127.0.0.1" --resolve "dns.example.com:$http_port:127.0.0.1")
    base=https://dns.example.com:$https_port
    ngx_ok=1
    headers=$("${https[@]}" --dump-header - --output /dev/null "$base/") || ngx_ok=0
    body=$("${https[@]}" "$base/status") || ngx_ok=0
    redirect=$("${https[@]}" --write-out '%{http_code} %{redirect_url}' --output /dev/null "http://dns.example.com:$http_port/login?next=1") || ngx_ok=0
    acme=$("${https[@]}" "http://dns.example.com:$http_port/.well-known/acme-challenge/t1") || ngx_ok=0
    # The first event arrives while the stream is still open (not buffered).
    # (curl stops with "failure writing output" once grep has the line: not an error)
    event=$({ "${https[@]}" --no-buffer "$base/support/tickets/abc/events" 2>/dev/null || true; } | grep -m1 '^data:') || event=""
    event2=$({ "${https[@]}" --no-buffer "$base/tickets/abc/events" 2>/dev/null || true; } | grep -m1 '^data:') || event2=""
    kill "$(cat "$ngx/nginx.pid")" 2>/dev/null || true
    kill "$server_pid" 2>/dev/null || true
    server_pid=""
    [ "$ngx_ok" -eq 1 ] || fail "a request through nginx failed; $(cat "$ngx/logs/error.log")"
    [ "$(grep -ci '^strict-transport-security: max-age=63072000; includeSubDomains' <<<"$headers")" -eq 1 ] ||
        fail "nginx does not send HSTS exactly once: $headers"
    if grep -qi '^server: nginx/' <<<"$headers"; then fail "nginx tells its version"; fi
    [ "$body" = "host=dns.example.com proto=https" ] || fail "the web service saw: $body"
    [ "$redirect" = "301 https://dns.example.com/login?next=1" ] || fail "plain HTTP answered: $redirect"
    [ "$acme" = challenge-token ] || fail "the ACME challenge was not served over HTTP: $acme"
    { [ "$event" = "data: first" ] && [ "$event2" = "data: first" ]; } || fail "nginx held back the first event of an open event stream (buffered): '$event' '$event2'"
    info "TLS, HSTS once, Host and X-Forwarded-Proto passed, HTTP redirected, ACME served, event streams unbuffered"
else
    info "nginx example: skipped (nginx is not installed: apt-get install nginx-light)"
fi
if command -v caddy >/dev/null 2>&1; then
    adapted=$(caddy adapt --config deploy/caddy/Caddyfile 2>/dev/null) || fail "caddy adapt refuses deploy/caddy/Caddyfile"
    python3 - "$adapted" <<'EOF' || fail "deploy/caddy/Caddyfile does not proxy only to 127.0.0.1:8080 with flush_interval -1"
import json, sys
config = json.loads(sys.argv[1])
found = []
def walk(node):
    if isinstance(node, dict):
        if node.get("handler") == "reverse_proxy":
            found.append(([u.get("dial") for u in node.get("upstreams", [])], node.get("flush_interval")))
        for value in node.values():
            walk(value)
    elif isinstance(node, list):
        for value in node:
            walk(value)
walk(config)
sys.exit(0 if found == [(["127.0.0.1:8080"], -1)] else 1)
EOF
    info "the Caddy example adapts, proxies only to 127.0.0.1:8080, flushes at once"
fi

info "the install test passed"
