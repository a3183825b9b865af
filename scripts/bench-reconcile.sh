#!/usr/bin/env bash
# Reconciler benchmarks with the release binary against the real servers
# (PowerDNS 4.7 from scripts/pdns-server.sh, PostgreSQL on 127.0.0.1:5432);
# results and method in docs/benchmarks.md, section "The reconciler".
#
#   webhook  commit -> applied through the git webhook, zone files and PowerDNS:
#            `zentralink operator` on a file:// repository with a 10-minute
#            interval; RUNS commits (default 20) each change one A record, a
#            signed POST /hooks/git follows, and the time from the commit until
#            the provider holds the new value is taken (and until its
#            dns_changes row exists); SIGTERM at the end must give exit 0.
#   noop     a no-op `zentralink reconcile` over 1,000 zones x 100 record sets
#            on PowerDNS, after one pass that creates them: wall, peak RSS,
#            requests PowerDNS logged for these zones, database rows before/after.
#   big      1 zone x 50,000 mixed record sets on PowerDNS: `zentralink plan`
#            and a no-op pass against PowerDNS's own time to answer the zone's
#            GET (curl, in the same run), then passes with 1% changed; where
#            the time goes (target/release/examples/plan_phases: each step of
#            `plan` timed, the read path's CPU per read, and a prototype that
#            reads the zone while the manifests are validated).
#   memory   10,000 zones x 100 record sets in zone files: the load alone
#            (plan_phases --load-only: time and RSS of reading and checking
#            the manifests file by file, then of the checks across objects),
#            a no-op `zentralink reconcile` (peak RSS, wall) and `zentralink
#            operator` for two passes (RSS from /proc).
#
#   scripts/bench-reconcile.sh [webhook|noop|big|memory|all]
#   RUNS=N  repetitions (webhook: commits, default 20; noop: 5; big: 10; memory: 3)
#   ZL_BENCH_ZENTRALINK=PATH  measure this zentralink binary instead of the
#           fresh release build (a before/after comparison)
#
# Each case gets its own database (zl_bench_<case>), dropped at the end. Writes
# under .zentralink/bench-reconcile. Starts and stops processes, writes files,
# talks to PowerDNS and PostgreSQL on loopback (I/O).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
# shellcheck source=scripts/lib.sh
source scripts/lib.sh

which=${1:-all}
case $which in webhook | noop | big | memory | all) ;; *) die "usage: $0 [webhook|noop|big|memory|all]" ;; esac
ensure_packages time=time curl=curl openssl=openssl git=git psql=postgresql-client
ensure_postgres
export PGOPTIONS=--client-min-messages=warning
ADMIN_URL=${ZL_BENCH_ADMIN_URL:-postgres://postgres@127.0.0.1:5432/postgres}
psql "$ADMIN_URL" -Atqc 'select 1' >/dev/null ||
    die "cannot connect to PostgreSQL as $ADMIN_URL; set ZL_BENCH_ADMIN_URL to a superuser URL"

section "Build (release)"
if [ -z "${ZL_BENCH_NO_BUILD:-}" ]; then
    cargo build --release -p zentralink --bins
    cargo build --release -p zentralink-operator --example bench_repo --example plan_phases
fi
target=$(cargo_target_dir)
work="$ROOT/.zentralink/bench-reconcile"
mkdir -p "$work/bin"
# Copies, so that a build running meanwhile in the same target directory
# cannot swap a binary in the middle of the measurements.
for binary in zentralink examples/bench_repo examples/plan_phases; do
    [ -x "$target/release/$binary" ] || die "$target/release/$binary is missing: build it (see above)"
    cp "$target/release/$binary" "$work/bin/"
done
if [ -n "${ZL_BENCH_ZENTRALINK:-}" ]; then
    cp "$ZL_BENCH_ZENTRALINK" "$work/bin/zentralink"
    info "measuring $ZL_BENCH_ZENTRALINK instead of $target/release/zentralink"
fi
zl="$work/bin/zentralink"
gen="$work/bin/bench_repo"
phases="$work/bin/plan_phases"
pdns_log="$ROOT/.zentralink/servers/pdns/pdns.log"
PLATFORM_ENCRYPTION_KEY=$("$zl" secrets generate-key)
export PLATFORM_ENCRYPTION_KEY NO_COLOR=1

machine() {
    section "Machine"
    info "date: $(date -u '+%Y-%m-%d %H:%M UTC'), commit $(git rev-parse --short HEAD)$(git diff --quiet HEAD -- . 2>/dev/null || echo ' (with uncommitted changes)')"
    info "nproc $(nproc), $(lscpu | sed -n 's/^Model name: *//p' | head -1), $(free -g | awk '/^Mem:/{print $2}') GiB RAM, kernel $(uname -r), $(rustc --version)"
    info "load average: $(cut -d' ' -f1-3 /proc/loadavg)"
    info "$(pdns_server --version 2>&1 | grep -o 'PowerDNS Authoritative Server [0-9.]*' | head -1), PostgreSQL $(psql "$ADMIN_URL" -Atc 'show server_version'), $(git --version)"
}

# ---------------------------------------------------------------- helpers

# stats: numbers on standard input -> "median M, p95 P, min A, max B (n N)";
# p95 is the nearest-rank 95th percentile.
stats() {
    sort -g | awk '{ v[NR] = $1 } END {
        if (NR == 0) { print "no samples"; exit }
        m = (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2
        r = int(0.95 * NR); if (r < 0.95 * NR) r++
        printf "median %.3f, p95 %.3f, min %.3f, max %.3f (n %d)\n", m, v[r], v[1], v[NR], NR }'
}

# A database of our own for one case, dropped on exit.
databases=()
new_database() {
    local db="zl_bench_$1"
    psql "$ADMIN_URL" -qc "DROP DATABASE IF EXISTS $db WITH (FORCE)" >/dev/null
    psql "$ADMIN_URL" -qc "CREATE DATABASE $db" >/dev/null
    databases+=("$db")
    DATABASE_URL="${ADMIN_URL%/*}/$db"
    export DATABASE_URL
}

# Processes we started, stopped on exit.
pids=()
cleanup() {
    local pid db
    for pid in "${pids[@]}"; do
        kill -TERM "$pid" 2>/dev/null || true
    done
    for db in "${databases[@]}"; do
        psql "$ADMIN_URL" -qc "DROP DATABASE IF EXISTS $db WITH (FORCE)" >/dev/null 2>&1 || true
    done
}
trap cleanup EXIT

# Rows per table of the case's database, as "table count" lines.
table_rows() {
    psql "$DATABASE_URL" -Atqc "
        select table_name || ' ' || (xpath('/row/c/text()',
            query_to_xml(format('select count(*) as c from %I.%I', table_schema, table_name), false, true, '')))[1]::text
        from information_schema.tables
        where table_schema = 'public' and table_type = 'BASE TABLE' order by 1"
}

# rows_changed BEFORE AFTER: the tables whose row count changed, or "none".
rows_changed() {
    local out
    out=$(join <(printf '%s\n' "$1") <(printf '%s\n' "$2") | awk '$2 != $3 { printf "%s %d->%d; ", $1, $2, $3 }')
    echo "${out:-none}"
}

# PowerDNS requests logged so far for names under DOMAIN: "GETs writes".
pdns_requests() {
    local domain=$1 gets writes
    gets=$(grep -cE "\"GET /api/v1/servers/[^/]+/zones/[^ ?]*$domain" "$pdns_log" || true)
    writes=$(grep -cE "\"(PATCH|POST|PUT|DELETE) /api/v1/servers/[^/]+/zones(/[^ ?]*$domain)?" "$pdns_log" || true)
    echo "$gets $writes"
}

# timed LABEL DOMAIN COMMAND...: runs COMMAND once under /usr/bin/time and
# prints "LABEL: wall W s, CPU C s, peak RSS R MiB, exit E, PowerDNS G GET / W writes"
# (CPU: user + system of the process). Sets TIMED_WALL, TIMED_CPU and TIMED_RSS
# (MiB). DOMAIN may be "-" (no PowerDNS).
timed() {
    local label=$1 domain=$2
    shift 2
    local before after code=0 requests=""
    [ "$domain" != - ] && before=$(pdns_requests "$domain")
    /usr/bin/time -f '%e %M %U %S' -o "$work/time" "$@" >"$work/out" 2>"$work/err" || code=$?
    if [ "$domain" != - ]; then
        after=$(pdns_requests "$domain")
        local -a b a
        read -r -a b <<<"$before"
        read -r -a a <<<"$after"
        requests=", PowerDNS $((a[0] - b[0])) GET / $((a[1] - b[1])) writes"
    fi
    # On a non-zero exit, time(1) writes a line about it first.
    local user system
    read -r TIMED_WALL TIMED_RSS user system < <(tail -n 1 "$work/time")
    TIMED_RSS=$((TIMED_RSS / 1024))
    TIMED_CPU=$(awk -v u="$user" -v s="$system" 'BEGIN { printf "%.2f", u + s }')
    info "$label: wall $TIMED_WALL s, CPU $TIMED_CPU s, peak RSS $TIMED_RSS MiB, exit $code$requests"
    if [ "$code" -ne 0 ] && [ "$code" -ne 2 ]; then
        tail -n 20 "$work/err" >&2
        die "$label failed (exit $code)"
    fi
}

start_pdns() {
    scripts/pdns-server.sh start >/dev/null
    # shellcheck disable=SC1091
    source .zentralink/servers/pdns.env
    export ZENTRALINK_CREDENTIAL_PDNS=$ZL_PDNS_API_KEY
}

pdns_zone_url() {
    printf '%s/api/v1/servers/localhost/zones/%s' "$ZL_PDNS_URL" "$1"
}

# pdns_fresh_zone ZONE: deletes what an earlier run left and creates the zone
# empty (SOA only). The write probe of a connection's first pass needs one of
# its zones to exist; createZones makes the others on their first write.
pdns_fresh_zone() {
    pdns_delete_zone "$1"
    local status
    status=$(curl -s -o /dev/null -w '%{http_code}' -X POST -H "X-API-Key: $ZL_PDNS_API_KEY" \
        -H 'Content-Type: application/json' \
        --data "{\"name\": \"$1\", \"kind\": \"Native\", \"nameservers\": []}" \
        "$ZL_PDNS_URL/api/v1/servers/localhost/zones")
    [ "$status" = 201 ] || die "PowerDNS did not create $1 (HTTP $status)"
}

pdns_delete_zone() {
    curl -s -o /dev/null -X DELETE -H "X-API-Key: $ZL_PDNS_API_KEY" "$(pdns_zone_url "$1")" || true
}

# ---------------------------------------------------------------- 1. webhook

git_in() {
    git -C "$1" -c user.name=Bench -c user.email=bench@example.net "${@:2}"
}

# The repository's one manifest file: a zone of ten A sets whose www set is WWW.
webhook_manifest() {
    local provider=$1 zone=$2 www=$3 connection
    if [ "$provider" = zonefile ]; then
        connection="  type: zonefile
  zonefile: { directory: \"$work/webhook-zonefile/zones\" }"
    else
        connection="  type: powerdns
  powerdns: { url: \"$ZL_PDNS_URL\", createZones: true }
  credentials: { env: ZENTRALINK_CREDENTIAL_PDNS }"
    fi
    cat <<EOF
apiVersion: dns.zentralink.net/v1alpha1
kind: Tenant
metadata: { name: bench }
spec: { displayName: Bench, namespaces: [bench], allowedDomains: [test.] }
---
apiVersion: dns.zentralink.net/v1alpha1
kind: TenantPolicy
metadata: { name: policy, namespace: bench }
spec:
  approvals:
    requiredFor: { recordTypes: [], deletions: false, rollbacks: false, bulkChangeThreshold: 1000000 }
---
apiVersion: dns.zentralink.net/v1alpha1
kind: ProviderConnection
metadata: { name: target, namespace: bench }
spec:
$connection
  mode: Live
  acknowledgeLiveWrites: true
---
apiVersion: dns.zentralink.net/v1alpha1
kind: DnsZone
metadata: { name: webhook, namespace: bench }
spec:
  zone: $zone
  providerRef: { name: target }
  ownership: Owned
  recordSets:
    - { name: www, type: A, ttl: 300, values: [$www] }
EOF
    local i
    for i in $(seq 1 9); do
        printf '    - { name: host-%d, type: A, ttl: 300, values: [10.0.0.%d] }\n' "$i" "$i"
    done
}

# holds PROVIDER ZONE VALUE: the provider serves VALUE (an address) in the zone now.
holds() {
    if [ "$1" = zonefile ]; then
        grep -qE "[[:space:]]${3//./\\.}\$" "$work/webhook-zonefile/zones/${2%.}.zone" 2>/dev/null
    else
        curl -sf -H "X-API-Key: $ZL_PDNS_API_KEY" "$(pdns_zone_url "$2")" | grep -qF "\"$3\""
    fi
}

# recorded VALUE: a dns_changes row has VALUE in its after-state.
recorded() {
    [ "$(psql "$DATABASE_URL" -Atqc "select count(*) from dns_changes where after::text like '%\"$1\"%'")" -gt 0 ]
}

# wait_for SECONDS COMMAND...: polls COMMAND every 5 ms until it succeeds.
wait_for() {
    local limit=$1
    shift
    local end
    end=$(awk -v t="$EPOCHREALTIME" -v l="$limit" 'BEGIN { printf "%.6f", t + l }')
    until "$@"; do
        if awk -v t="$EPOCHREALTIME" -v e="$end" 'BEGIN { exit !(t > e) }'; then
            return 1
        fi
        sleep 0.005
    done
}

elapsed_since() {
    awk -v a="$1" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.3f\n", b - a }'
}

bench_webhook() {
    local provider=$1 runs=${RUNS:-20}
    local dir="$work/webhook-$provider" zone="wh-$provider.test."
    section "Commit -> applied through the webhook ($provider, $runs commits)"
    rm -rf "$dir"
    mkdir -p "$dir/repo" "$dir/zones"
    new_database "webhook_$provider"
    if [ "$provider" = zonefile ]; then
        # shellcheck disable=SC2016  # $ORIGIN is the zone file's, not the shell's
        printf '$ORIGIN %s\n@ 300 IN SOA ns1.example.net. hostmaster.example.net. 1 3600 600 1209600 300\n@ 300 IN NS ns1.example.net.\n' \
            "$zone" >"$dir/zones/${zone%.}.zone"
    else
        start_pdns
        pdns_fresh_zone "$zone"
    fi
    git_in "$dir/repo" init -q -b main
    webhook_manifest "$provider" "$zone" 198.51.100.100 >"$dir/repo/bench.yaml"
    git_in "$dir/repo" add -A
    git_in "$dir/repo" commit -q -m "first"

    local secret port
    secret=$(head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n')
    port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
    ZL_BENCH_WEBHOOK_SECRET=$secret RUST_LOG=info "$zl" operator \
        --source "file://$dir/repo" --state-dir "$dir/state" \
        --interval 10m --full-pass 10m \
        --listen "127.0.0.1:$port" --webhook-secret-env ZL_BENCH_WEBHOOK_SECRET \
        >"$dir/operator.out" 2>"$dir/operator.log" &
    local operator=$!
    pids+=("$operator")
    wait_for 60 holds "$provider" "$zone" 198.51.100.100 ||
        { tail -n 20 "$dir/operator.log" >&2; die "the first revision was not applied within 60 s"; }
    wait_for 30 recorded 198.51.100.100 || die "the first revision was not recorded"
    info "operator (pid $operator) applied the first revision"

    local body='{"ref":"refs/heads/main"}' signature k value t0 status
    signature=$(printf '%s' "$body" | openssl dgst -sha256 -hmac "$secret" | awk '{print $NF}')
    : >"$dir/applied" 
    : >"$dir/recorded"
    : >"$dir/accepted"
    for k in $(seq 1 "$runs"); do
        value="198.51.100.$((100 + k))"
        webhook_manifest "$provider" "$zone" "$value" >"$dir/repo/bench.yaml"
        git_in "$dir/repo" add -A
        t0=$EPOCHREALTIME
        git_in "$dir/repo" commit -q -m "www $value"
        status=$(curl -s -o /dev/null -w '%{http_code}' -X POST \
            -H 'Content-Type: application/json' -H 'X-GitHub-Event: push' \
            -H "X-Hub-Signature-256: sha256=$signature" \
            --data "$body" "http://127.0.0.1:$port/hooks/git")
        [ "$status" = 202 ] || die "the webhook was answered HTTP $status"
        elapsed_since "$t0" >>"$dir/accepted"
        wait_for 30 holds "$provider" "$zone" "$value" || die "commit $k ($value) was not applied within 30 s"
        elapsed_since "$t0" >>"$dir/applied"
        wait_for 30 recorded "$value" || die "commit $k ($value) was not recorded within 30 s"
        elapsed_since "$t0" >>"$dir/recorded"
        # Commits a little apart, as people make them: no pass is still running.
        sleep 0.3
    done
    info "webhook accepted (commit + POST), s:    $(stats <"$dir/accepted")"
    info "commit -> provider holds the value, s:  $(stats <"$dir/applied")"
    info "commit -> dns_changes row written, s:   $(stats <"$dir/recorded")"
    info "per commit, s: $(tr '\n' ' ' <"$dir/applied")"
    info "passes: $(grep -c 'pass finished' "$dir/operator.log" || true); dns_changes rows: $(psql "$DATABASE_URL" -Atqc 'select count(*) from dns_changes')"
    local rss
    rss=$(awk '/^VmHWM/{print int($2/1024)}' "/proc/$operator/status" 2>/dev/null || echo '?')
    kill -TERM "$operator"
    local code=0
    wait "$operator" || code=$?
    pids=("${pids[@]/$operator/}")
    info "SIGTERM: the operator exited with status $code (peak RSS ${rss} MiB)"
    [ "$code" -eq 0 ] || { tail -n 20 "$dir/operator.log" >&2; die "the operator did not exit 0 on SIGTERM"; }
}

# ---------------------------------------------------------------- 2. no-op over 1,000 zones

bench_noop() {
    local runs=${RUNS:-5} domain=rc1k.test. dir="$work/noop"
    section "No-op pass: 1,000 zones x 100 record sets on PowerDNS ($runs runs)"
    start_pdns
    rm -rf "$dir"
    "$gen" --provider powerdns --zones 1000 --sets 100 --domain "$domain" --out "$dir/v1" >/dev/null
    local zone
    for zone in $(seq -f "z%05g.$domain" 1 999); do
        pdns_delete_zone "$zone"
    done
    pdns_fresh_zone "z00000.$domain"
    new_database noop
    # One zone at a time: PowerDNS's sqlite backend answers concurrent writes
    # with "database is locked" (HTTP 500).
    timed "first pass (creates 1,000 zones, --concurrency 1)" "$domain" "$zl" reconcile "$dir/v1" --format json --state-dir "$dir/state" --concurrency 1
    timed "second pass (warm-up, not counted)" "$domain" "$zl" reconcile "$dir/v1" --format json --state-dir "$dir/state"
    local rows_before rows_after walls=() rss=() i
    for i in $(seq 1 "$runs"); do
        rows_before=$(table_rows)
        timed "no-op pass $i" "$domain" "$zl" reconcile "$dir/v1" --format json --state-dir "$dir/state"
        rows_after=$(table_rows)
        walls+=("$TIMED_WALL")
        rss+=("$TIMED_RSS")
        info "    database rows changed: $(rows_changed "$rows_before" "$rows_after"); zones Converged: $(grep -c '"outcome": "Converged"' "$work/out" || true) of 1000"
    done
    info "no-op pass wall, s:   $(printf '%s\n' "${walls[@]}" | stats)"
    info "no-op pass peak RSS, MiB: $(printf '%s\n' "${rss[@]}" | stats)"
}

# ---------------------------------------------------------------- 3. one zone of 50,000 sets

bench_big() {
    local runs=${RUNS:-10} domain=rc50k.test. dir="$work/big"
    local zone="z00000.$domain"
    section "1 zone x 50,000 mixed record sets on PowerDNS ($runs runs)"
    start_pdns
    rm -rf "$dir"
    "$gen" --provider powerdns --zones 1 --sets 50000 --mixed --domain "$domain" --out "$dir/v1" >/dev/null
    "$gen" --provider powerdns --zones 1 --sets 50000 --mixed --change-percent 1 --domain "$domain" --out "$dir/v2" >/dev/null
    pdns_fresh_zone "$zone"
    new_database big
    timed "first pass (creates the zone)" "$domain" "$zl" reconcile "$dir/v1" --format json --state-dir "$dir/state"
    timed "warm-up plan (not counted)" "$domain" "$zl" plan "$dir/v1" --format json

    local gets=() plans=() plan_cpu=() plan_rss=() ratios=() overlaps=() overlap_ratios=() noops=() noop_cpu=() noop_rss=() i curl_s
    for i in $(seq 1 "$runs"); do
        curl_s=$(curl -s -o /dev/null -w '%{time_total}' -H "X-API-Key: $ZL_PDNS_API_KEY" "$(pdns_zone_url "$zone")")
        gets+=("$curl_s")
        timed "plan $i (PowerDNS GET by curl just before: $curl_s s)" "$domain" "$zl" plan "$dir/v1" --format json
        plans+=("$TIMED_WALL")
        plan_cpu+=("$TIMED_CPU")
        plan_rss+=("$TIMED_RSS")
        ratios+=("$(awk -v a="$TIMED_WALL" -v b="$curl_s" 'BEGIN { printf "%.3f", a / b }')")
        timed "    plan_phases --overlap $i (prototype)" "$domain" "$phases" "$dir/v1" --overlap
        overlaps+=("$TIMED_WALL")
        overlap_ratios+=("$(awk -v a="$TIMED_WALL" -v b="$curl_s" 'BEGIN { printf "%.3f", a / b }')")
    done
    local noop_gets=() noop_ratios=()
    for i in $(seq 1 "$runs"); do
        curl_s=$(curl -s -o /dev/null -w '%{time_total}' -H "X-API-Key: $ZL_PDNS_API_KEY" "$(pdns_zone_url "$zone")")
        noop_gets+=("$curl_s")
        timed "no-op pass $i (PowerDNS GET by curl just before: $curl_s s)" "$domain" "$zl" reconcile "$dir/v1" --format json --state-dir "$dir/state"
        noop_ratios+=("$(awk -v a="$TIMED_WALL" -v b="$curl_s" 'BEGIN { printf "%.3f", a / b }')")
        noops+=("$TIMED_WALL")
        noop_cpu+=("$TIMED_CPU")
        noop_rss+=("$TIMED_RSS")
    done
    info "PowerDNS GET of the zone (curl), s:   $(printf '%s\n' "${gets[@]}" | stats)"
    info "zentralink plan, s:                 $(printf '%s\n' "${plans[@]}" | stats)"
    info "zentralink plan / curl GET, ratio:  $(printf '%s\n' "${ratios[@]}" | stats)"
    info "zentralink plan CPU, s:             $(printf '%s\n' "${plan_cpu[@]}" | stats)"
    info "zentralink plan peak RSS, MiB:      $(printf '%s\n' "${plan_rss[@]}" | stats)"
    info "overlap prototype, s:               $(printf '%s\n' "${overlaps[@]}" | stats)"
    info "overlap prototype / curl, ratio:    $(printf '%s\n' "${overlap_ratios[@]}" | stats)"
    info "PowerDNS GET before each no-op, s:  $(printf '%s\n' "${noop_gets[@]}" | stats)"
    info "no-op pass, s:                      $(printf '%s\n' "${noops[@]}" | stats)"
    info "no-op pass / curl GET, ratio:       $(printf '%s\n' "${noop_ratios[@]}" | stats)"
    info "no-op pass CPU, s:                  $(printf '%s\n' "${noop_cpu[@]}" | stats)"
    info "no-op pass peak RSS, MiB:           $(printf '%s\n' "${noop_rss[@]}" | stats)"
    info "where the time of plan goes (one run of each):"
    "$phases" "$dir/v1" | sed 's/^/        /'
    "$phases" "$dir/v1" --overlap | sed 's/^/        /'
    info "the read path alone (the zone read 5 times after loading an empty DnsZone of it):"
    "$gen" --provider powerdns --zones 1 --sets 0 --domain "$domain" --out "$dir/empty" >/dev/null
    "$phases" "$dir/empty" --reads 5 | tail -n 1 | sed 's/^/        /'

    # 1% changed: v2, then back to v1, ... each pass updates 500 record sets.
    local changes=() change_cpu=() change_rss=() version rows_before rows_after
    for i in $(seq 1 "$runs"); do
        version=$([ $((i % 2)) -eq 1 ] && echo v2 || echo v1)
        rows_before=$(psql "$DATABASE_URL" -Atqc 'select count(*) from dns_changes')
        timed "1% pass $i (to $version)" "$domain" "$zl" reconcile "$dir/$version" --format json --state-dir "$dir/state"
        rows_after=$(psql "$DATABASE_URL" -Atqc 'select count(*) from dns_changes')
        info "    $(grep -o '"executed": [0-9]*' "$work/out" | head -1), $(grep -o '"applied": [0-9]*' "$work/out" | head -1), dns_changes rows +$((rows_after - rows_before))"
        changes+=("$TIMED_WALL")
        change_cpu+=("$TIMED_CPU")
        change_rss+=("$TIMED_RSS")
    done
    info "1% pass, s:               $(printf '%s\n' "${changes[@]}" | stats)"
    info "1% pass CPU, s:           $(printf '%s\n' "${change_cpu[@]}" | stats)"
    info "1% pass peak RSS, MiB:    $(printf '%s\n' "${change_rss[@]}" | stats)"
}

# ---------------------------------------------------------------- 4. memory over 10,000 zones

bench_memory() {
    local runs=${RUNS:-3} dir="$work/memory"
    section "10,000 zones x 100 record sets in zone files ($runs runs)"
    rm -rf "$dir"
    "$gen" --provider zonefile --zones 10000 --sets 100 --domain zf10k.test. \
        --zone-files "$dir/zones" --out "$dir/manifests" >/dev/null
    info "manifests $(du -sh "$dir/manifests" | cut -f1), zone files $(du -sh "$dir/zones" | cut -f1)"
    "$phases" "$dir/manifests" --load-only >"$dir/load-phases" 2>&1 ||
        { cat "$dir/load-phases" >&2; die "plan_phases --load-only failed"; }
    info "the load alone (plan_phases --load-only):"
    sed 's/^/        /' "$dir/load-phases"
    new_database memory
    timed "first pass (baselines, connection check)" - "$zl" reconcile "$dir/manifests" --format json --state-dir "$dir/state"
    local walls=() rss=() i
    for i in $(seq 1 "$runs"); do
        timed "no-op pass $i" - "$zl" reconcile "$dir/manifests" --format json --state-dir "$dir/state"
        walls+=("$TIMED_WALL")
        rss+=("$TIMED_RSS")
        info "    zones Converged: $(grep -c '"outcome": "Converged"' "$work/out" || true) of 10000"
    done
    info "no-op pass wall, s:       $(printf '%s\n' "${walls[@]}" | stats)"
    info "no-op pass peak RSS, MiB: $(printf '%s\n' "${rss[@]}" | stats)"

    section "zentralink operator over the same 10,000 zones, two passes"
    local port
    port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
    RUST_LOG=info "$zl" operator --source "$dir/manifests" --state-dir "$dir/state" \
        --interval 1s --full-pass 1s --listen "127.0.0.1:$port" \
        >"$dir/operator.out" 2>"$dir/operator.log" &
    local operator=$! started=$EPOCHREALTIME passes=0 sample peak_sample=0
    pids+=("$operator")
    : >"$dir/rss"
    while [ "$passes" -lt 2 ]; do
        kill -0 "$operator" 2>/dev/null || { tail -n 20 "$dir/operator.log" >&2; die "the operator stopped"; }
        sample=$(awk '/^VmRSS/{print int($2/1024)}' "/proc/$operator/status")
        echo "$(elapsed_since "$started") $sample" >>"$dir/rss"
        [ "$sample" -gt "$peak_sample" ] && peak_sample=$sample
        passes=$(grep -c 'pass finished' "$dir/operator.log" || true)
        [ "$(elapsed_since "$started" | cut -d. -f1)" -lt 600 ] || die "two passes took more than 10 minutes"
        sleep 0.5
    done
    local hwm rss_now
    hwm=$(awk '/^VmHWM/{print int($2/1024)}' "/proc/$operator/status")
    rss_now=$(awk '/^VmRSS/{print int($2/1024)}' "/proc/$operator/status")
    info "two passes in $(elapsed_since "$started") s; $(grep 'pass finished' "$dir/operator.log" | sed 's/.*elapsed=\([^ ]*\).*/pass took \1/' | tr '\n' ' ')"
    info "operator RSS after two passes: $rss_now MiB; peak (VmHWM) $hwm MiB; largest 0.5 s sample $peak_sample MiB (samples in $dir/rss)"
    kill -TERM "$operator"
    local code=0
    wait "$operator" || code=$?
    pids=("${pids[@]/$operator/}")
    info "SIGTERM: the operator exited with status $code"
}

machine
if [ "$which" = all ] || [ "$which" = webhook ]; then
    bench_webhook zonefile
    bench_webhook powerdns
fi
for case_name in noop big memory; do
    if [ "$which" = all ] || [ "$which" = "$case_name" ]; then
        "bench_$case_name"
    fi
done
machine
