#!/usr/bin/env bash
# Web service benchmarks with the release binary (`zentralink web`) against
# PostgreSQL on 127.0.0.1:5432, load from oha on loopback; results and
# method in docs/benchmarks.md, section "Web service".
#
#   pages    the dashboard and one zone's page, signed in, each at a fixed
#            RATE requests/s for DURATION (oha -q, latency corrected for
#            coordinated omission): p50, p99, status codes (target p99 < 50 ms)
#   logins   LOGINS sign-ins at once (LOGINS connections, one POST /login
#            each, LOGINS different members with the right password):
#            throughput, latency, peak RSS of the web process (VmHWM), status
#            codes (only 303 allowed), while the dashboard is read at 20/s
#            beside them (does hashing starve the pages?); then LOGINS wrong
#            passwords at once from one address: only 401 and 429 (throttled,
#            with Retry-After) allowed
#
#   status   the public status page (no session) with open and resolved
#            incidents, at a fixed RATE requests/s for DURATION (oha -q,
#            latency corrected): p50, p99 (target p99 < 20 ms); then the same
#            with If-None-Match (304s); only with `status`, not in `all`
#
#   scripts/bench-web.sh [pages|logins|status|all]
#   RATE (500), DURATION (30s), LOGINS (200), ZONES (200), RECORD_SETS (40),
#   CHANGES (100 per zone), OTHER_TENANTS (9, filled like the measured one),
#   AUDIT (50000 events per tenant)
#
# The database zl_bench_web is made for the run and dropped at the end. oha
# is installed into .zentralink/bench-web (cargo install --root) when it is
# missing. Starts and stops processes, writes files, talks to PostgreSQL
# and the web service on loopback only (I/O).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
# shellcheck source=scripts/lib.sh
source scripts/lib.sh

which=${1:-all}
case $which in pages | logins | status | all) ;; *) die "usage: $0 [pages|logins|status|all]" ;; esac
RATE=${RATE:-500}
DURATION=${DURATION:-30s}
LOGINS=${LOGINS:-200}
ZONES=${ZONES:-200}
RECORD_SETS=${RECORD_SETS:-40}
CHANGES=${CHANGES:-100}
OTHER_TENANTS=${OTHER_TENANTS:-9}
AUDIT=${AUDIT:-50000}

ensure_packages curl=curl jq=jq psql=postgresql-client
ensure_postgres
ensure_rust
export PGOPTIONS=--client-min-messages=warning
ADMIN_URL=${ZL_BENCH_ADMIN_URL:-postgres://postgres@127.0.0.1:5432/postgres}
psql "$ADMIN_URL" -Atqc 'select 1' >/dev/null ||
    die "cannot connect to PostgreSQL as $ADMIN_URL; set ZL_BENCH_ADMIN_URL to a superuser URL"

work="$ROOT/.zentralink/bench-web"
mkdir -p "$work/bin"

section "Build (release)"
if [ -z "${ZL_BENCH_NO_BUILD:-}" ]; then
    cargo build --release -p zentralink --bins
    cargo build --release -p zentralink-web --example bench_web_fill
fi
target=$(cargo_target_dir)
# Copies, so that a build running meanwhile in the same target directory
# cannot swap a binary in the middle of the measurements.
for binary in zentralink examples/bench_web_fill; do
    [ -x "$target/release/$binary" ] || die "$target/release/$binary is missing: build it (see above)"
    cp "$target/release/$binary" "$work/bin/"
done
zl="$work/bin/zentralink"
fill="$work/bin/bench_web_fill"
oha="$work/bin/oha"
if [ ! -x "$oha" ]; then
    info "installing oha into $work (cargo install --locked --root)"
    cargo install oha --locked --root "$work"
fi
export NO_COLOR=1

section "Machine"
info "date: $(date -u '+%Y-%m-%d %H:%M UTC'), commit $(git rev-parse --short HEAD)$(git diff --quiet HEAD -- . 2>/dev/null || echo ' (with uncommitted changes)')"
info "nproc $(nproc), $(lscpu | sed -n 's/^Model name: *//p' | head -1), $(free -g | awk '/^Mem:/{print $2}') GiB RAM, kernel $(uname -r), $(rustc --version)"
info "PostgreSQL $(psql "$ADMIN_URL" -Atc 'show server_version'), $("$oha" --version)"
info "load average: $(cut -d' ' -f1-3 /proc/loadavg)"

section "Database (zl_bench_web)"
db=zl_bench_web
base_url=${ADMIN_URL%/*}
export DATABASE_URL="$base_url/$db"
psql "$ADMIN_URL" -qc "DROP DATABASE IF EXISTS $db" -c "CREATE DATABASE $db"
PLATFORM_ENCRYPTION_KEY=$("$zl" secrets generate-key)
export PLATFORM_ENCRYPTION_KEY
"$zl" migrate | sed 's/^/    /'
PASSWORD="bench-$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')"
OWNER=owner@acme.example
printf '%s\n' "$PASSWORD" | "$zl" web create-owner --email "$OWNER" --tenant acme | sed 's/^/    /'
login_users=$LOGINS
[ "$which" = pages ] && login_users=0
[ "$which" = status ] && login_users=0
BENCH_PASSWORD=$PASSWORD "$fill" acme "$ZONES" "$RECORD_SETS" "$CHANGES" "$OTHER_TENANTS" "$AUDIT" "$login_users" >"$work/fill.out"
sed -n '/^zones:$/q;p' "$work/fill.out" | sed 's/^/    /'
# The 30th zone: awaiting approval (a pending request) and drifted, with
# its history, like the busiest zones.
zone_id=$(sed -n '/^zones:$/,$p' "$work/fill.out" | sed -n 31p)
[ -n "$zone_id" ] || die "the fill printed no zone ids; see $work/fill.out"
info "rows: $(psql "$DATABASE_URL" -Atc "select 'zones ' || (select count(*) from zones) || ', snapshots ' || (select count(*) from snapshots) || ', dns_changes ' || (select count(*) from dns_changes) || ', change requests ' || (select count(*) from dns_change_requests) || ', audit events ' || (select count(*) from audit_events) || ', users ' || (select count(*) from users)")"
info "database size: $(psql "$DATABASE_URL" -Atc "select pg_size_pretty(pg_database_size('$db'))")"

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
rss() { awk -v k="$1:" '$1 == k {print $2 / 1024 " MiB"}' "/proc/$web_pid/status"; }
# CPU time so far, in clock ticks: of the web process, and of the PostgreSQL
# backends serving the benchmark database.
ticks=$(getconf CLK_TCK)
web_cpu() { awk '{print $14 + $15}' "/proc/$web_pid/stat"; }
db_cpu() {
    local total=0 pid t
    for pid in $(pgrep -f "postgres: .* $db " || true); do
        t=$(awk '{print $14 + $15}' "/proc/$pid/stat" 2>/dev/null || echo 0)
        total=$((total + t))
    done
    echo "$total"
}

# sign_in EMAIL PASSWORD JAR: the sign-in form, as a browser sends it.
sign_in() {
    local email=$1 password=$2 jar=$3 csrf status
    csrf=$(curl -fs -c "$jar" "$site/login" | sed -n 's/.*name="csrf" value="\([^"]*\)".*/\1/p' | head -1)
    [ -n "$csrf" ] || die "no CSRF token on the sign-in page"
    status=$(curl -s -o /dev/null -w '%{http_code}' -b "$jar" -c "$jar" -H "Origin: $site" \
        --data-urlencode "email=$email" --data-urlencode "password=$password" --data-urlencode "csrf=$csrf" \
        "$site/login")
    [ "$status" = 303 ] || die "signing in as $email answered $status, not 303"
}
jar="$work/cookies.txt"
sign_in "$OWNER" "$PASSWORD" "$jar"
session=$(awk '$6 == "zl_session" {print $7}' "$jar")
[ -n "$session" ] || die "no session cookie after signing in"
cookie="Cookie: zl_session=$session"
for path in /dashboard "/zones/$zone_id"; do
    status=$(curl -s -o "$work/page.html" -w '%{http_code}' -H "$cookie" "$site$path")
    [ "$status" = 200 ] || die "GET $path answered $status"
    info "GET $path: 200, $(wc -c <"$work/page.html") bytes"
done

# report NAME JSON: one line of oha's JSON summary.
report() {
    local name=$1 json=$2
    jq -r --arg name "$name" '
        def ms: if . == null then "-" else (. * 1000 * 100 | round / 100 | tostring) + " ms" end;
        "\($name): \(.summary.requestsPerSec * 10 | round / 10) req/s, p50 \(.latencyPercentiles.p50 | ms), p90 \(.latencyPercentiles.p90 | ms), p99 \(.latencyPercentiles.p99 | ms), max \(.summary.slowest | ms), success \(.summary.successRate * 100 | round)%, status \(.statusCodeDistribution | tojson), errors \(.errorDistribution | tojson)"
    ' "$json" | sed 's/^/    /'
}

# only_statuses JSON CODE...: fails unless every answer had one of the codes and nothing failed.
only_statuses() {
    local json=$1
    shift
    local allowed
    allowed=$(printf '"%s",' "$@")
    jq -e --argjson allowed "[${allowed%,}]" \
        '(.statusCodeDistribution | keys - $allowed | length == 0) and ((.errorDistribution | length) == 0)' \
        "$json" >/dev/null || die "unexpected answers in $json: $(jq -c '{statusCodeDistribution, errorDistribution}' "$json")"
}

if [ "$which" = pages ] || [ "$which" = all ]; then
    section "Pages at $RATE requests/s for $DURATION (50 connections, latency corrected)"
    "$oha" --no-tui -n 500 -c 10 -H "$cookie" "$site/dashboard" >/dev/null
    "$oha" --no-tui -n 500 -c 10 -H "$cookie" "$site/zones/$zone_id" >/dev/null
    for page in dashboard zone; do
        case $page in dashboard) path=/dashboard ;; zone) path="/zones/$zone_id" ;; esac
        info "load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
        # As fast as it goes (closed loop): the ceiling on this machine now,
        # and the CPU one request costs (which the load of others does not change).
        n=3000
        w0=$(web_cpu)
        d0=$(db_cpu)
        "$oha" --no-tui --output-format json -n "$n" -c 50 -H "$cookie" "$site$path" >"$work/$page-max.json"
        w1=$(web_cpu)
        d1=$(db_cpu)
        report "GET $path, closed loop ($n requests, 50 connections)" "$work/$page-max.json"
        only_statuses "$work/$page-max.json" 200
        info "CPU per request: web $(awk -v a="$w0" -v b="$w1" -v n="$n" -v t="$ticks" 'BEGIN {printf "%.2f", (b - a) * 1000 / t / n}') ms, PostgreSQL $(awk -v a="$d0" -v b="$d1" -v n="$n" -v t="$ticks" 'BEGIN {printf "%.2f", (b - a) * 1000 / t / n}') ms"
        "$oha" --no-tui --output-format json -z "$DURATION" -w -q "$RATE" --latency-correction -c 50 \
            -H "$cookie" "$site$path" >"$work/$page.json"
        report "GET $path" "$work/$page.json"
        only_statuses "$work/$page.json" 200
    done
    info "web process: VmRSS $(rss VmRSS), VmHWM $(rss VmHWM)"
fi

if [ "$which" = logins ] || [ "$which" = all ]; then
    section "$LOGINS sign-ins at once"
    csrf=$(curl -fs -c "$work/login-jar.txt" "$site/login" | sed -n 's/.*name="csrf" value="\([^"]*\)".*/\1/p' | head -1)
    login_cookie=$(awk '$6 == "zl_login" {print $7}' "$work/login-jar.txt")
    if [ -z "$csrf" ] || [ -z "$login_cookie" ]; then die "no sign-in form token"; fi
    : >"$work/logins.txt"
    for i in $(seq 0 $((LOGINS - 1))); do
        printf 'email=login-%03d%%40acme.example&password=%s&csrf=%s\n' "$i" "$PASSWORD" "$csrf" >>"$work/logins.txt"
    done
    info "web process before: VmRSS $(rss VmRSS), VmHWM $(rss VmHWM); load average $(cut -d' ' -f1-3 /proc/loadavg)"
    # The dashboard beside the sign-ins, at 20 requests/s.
    "$oha" --no-tui --output-format json -z 30s -w -q 20 --latency-correction -c 5 \
        -H "$cookie" "$site/dashboard" >"$work/beside.json" &
    beside=$!
    sleep 1
    start=$(date +%s.%N)
    "$oha" --no-tui --output-format json -n "$LOGINS" -c "$LOGINS" -m POST \
        -T application/x-www-form-urlencoded -H "Origin: $site" -H "Cookie: zl_login=$login_cookie" \
        -Z "$work/logins.txt" "$site/login" >"$work/logins.json"
    end=$(date +%s.%N)
    info "wall time: $(awk -v a="$start" -v b="$end" 'BEGIN {printf "%.2f", b - a}') s"
    report "POST /login x $LOGINS (right password)" "$work/logins.json"
    only_statuses "$work/logins.json" 303
    info "web process after: VmRSS $(rss VmRSS), VmHWM $(rss VmHWM)"
    info "sessions made: $(psql "$DATABASE_URL" -Atc "select count(*) from sessions s join users u on u.id = s.user_id where u.email like 'login-%'")"
    wait "$beside"
    report "GET /dashboard at 20/s beside them" "$work/beside.json"
    only_statuses "$work/beside.json" 200

    section "$LOGINS wrong passwords at once from one address"
    : >"$work/wrong.txt"
    for i in $(seq 0 $((LOGINS - 1))); do
        printf 'email=login-%03d%%40acme.example&password=wrong-%s&csrf=%s\n' "$i" "$i" "$csrf" >>"$work/wrong.txt"
    done
    "$oha" --no-tui --output-format json -n "$LOGINS" -c "$LOGINS" -m POST \
        -T application/x-www-form-urlencoded -H "Origin: $site" -H "Cookie: zl_login=$login_cookie" \
        -Z "$work/wrong.txt" "$site/login" >"$work/wrong.json"
    report "POST /login x $LOGINS (wrong password)" "$work/wrong.json"
    only_statuses "$work/wrong.json" 401 429
    info "web process after: VmRSS $(rss VmRSS), VmHWM $(rss VmHWM)"
fi

# bench_status: the public status page, as every visitor gets it.
bench_status() {
    section "Status page at $RATE requests/s for $DURATION (50 connections, latency corrected)"
    # What the page shows: the operator's passes, two open incidents and
    # twenty resolved in the last 90 days, each with three updates.
    psql "$DATABASE_URL" -q <<'SQL'
INSERT INTO source_states (source, last_pass_at, last_pass_ok)
SELECT 'bench-source-' || i, now(), true FROM generate_series(1, 3) i
ON CONFLICT (source) DO UPDATE SET last_pass_at = now(), last_pass_ok = true;
INSERT INTO status_incidents (id, title, impact, status, started_at, resolved_at)
SELECT gen_random_uuid(), 'Bench incident ' || i,
       (ARRAY['minor','major','critical','none'])[1 + i % 4],
       CASE WHEN i <= 2 THEN 'identified' ELSE 'resolved' END,
       now() - (i * interval '3 days'),
       CASE WHEN i <= 2 THEN NULL ELSE now() - (i * interval '3 days') + interval '2 hours' END
FROM generate_series(1, 22) i;
INSERT INTO status_incident_updates (id, incident_id, status, body, created_at)
SELECT gen_random_uuid(), s.id, s.status,
       'Update ' || u || ': what we know, what we do next, and when we will say more.',
       s.started_at + u * interval '30 minutes'
FROM status_incidents s, generate_series(1, 3) u;
SQL
    local status
    status=$(curl -s -o "$work/status.html" -D "$work/status.headers" -w '%{http_code}' "$site/status")
    [ "$status" = 200 ] || die "GET /status answered $status"
    etag=$(sed -n 's/^[Ee][Tt][Aa][Gg]: *\(.*\)\r$/\1/p' "$work/status.headers")
    [ -n "$etag" ] || die "GET /status sent no ETag"
    info "GET /status: 200, $(wc -c <"$work/status.html") bytes, ETag $etag, $(grep -i '^cache-control' "$work/status.headers" | tr -d '\r')"
    "$oha" --no-tui -n 500 -c 10 "$site/status" >/dev/null
    info "load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
    local n=5000 w0 w1 d0 d1
    w0=$(web_cpu)
    d0=$(db_cpu)
    "$oha" --no-tui --output-format json -n "$n" -c 50 "$site/status" >"$work/status-max.json"
    w1=$(web_cpu)
    d1=$(db_cpu)
    report "GET /status, closed loop ($n requests, 50 connections)" "$work/status-max.json"
    only_statuses "$work/status-max.json" 200
    info "CPU per request: web $(awk -v a="$w0" -v b="$w1" -v n="$n" -v t="$ticks" 'BEGIN {printf "%.3f", (b - a) * 1000 / t / n}') ms, PostgreSQL $(awk -v a="$d0" -v b="$d1" -v n="$n" -v t="$ticks" 'BEGIN {printf "%.3f", (b - a) * 1000 / t / n}') ms"
    "$oha" --no-tui --output-format json -z "$DURATION" -w -q "$RATE" --latency-correction -c 50 \
        "$site/status" >"$work/status.json"
    report "GET /status" "$work/status.json"
    only_statuses "$work/status.json" 200
    "$oha" --no-tui --output-format json -z "$DURATION" -w -q "$RATE" --latency-correction -c 50 \
        -H "If-None-Match: $etag" "$site/status" >"$work/status-304.json"
    report "GET /status with If-None-Match" "$work/status-304.json"
    # A re-render with other content (a pass recorded meanwhile) answers 200 once.
    only_statuses "$work/status-304.json" 304 200
    info "web process: VmRSS $(rss VmRSS), VmHWM $(rss VmHWM)"
}
if [ "$which" = status ]; then
    bench_status
fi

section "Stop"
kill -TERM "$web_pid"
code=0
wait "$web_pid" || code=$?
[ "$code" = 0 ] || die "zentralink web exited with $code after SIGTERM; see $work/web.log"
info "zentralink web stopped cleanly (exit 0)"
if grep -qi 'error' "$work/web.log"; then
    info "errors in the web log:"
    grep -i 'error' "$work/web.log" | head -5 | sed 's/^/      /'
fi
