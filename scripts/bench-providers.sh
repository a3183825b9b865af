#!/usr/bin/env bash
# Provider benchmarks against the real servers (docs/benchmarks.md):
#   through the provider layer (target/release/examples/provider_bench): the
#   initial write of 100 zones x 100 record sets and of 1 zone x 50,000, then a
#   1% change written;
#   through the binary: `zentralink plan` on the same sets unchanged (no-op)
#   and after the 1% change.
# Reports wall time, peak memory and the requests the server saw (PowerDNS:
# HTTP requests in its log; BIND: UPDATE messages and AXFRs in its log).
#
#   scripts/bench-providers.sh [powerdns|rfc2136|all]
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/lib.sh
source scripts/lib.sh

which=${1:-all}
ensure_packages time=time
section "Build (release)"
cargo build --release -p zentralink --bins
cargo build --release -p zentralink-operator --example provider_bench
target=$(cargo_target_dir)
bench="$target/release/examples/provider_bench"
zl="$target/release/zentralink"
work=.zentralink/bench
rm -rf "$work"
mkdir -p "$work"

pdns_log=.zentralink/servers/pdns/pdns.log
bind_log=.zentralink/servers/bind/named.log

count() {
    grep -cE "$1" "$2" 2>/dev/null || true
}

bind_serials() {
    local total=0 zone serial
    for zone in big.bench.test $(seq -f 'b%03g.bench.test' 1 100); do
        serial=$(dig +short -p "${ZL_BIND_SERVER##*:}" @127.0.0.1 "$zone" SOA | awk '{print $3}')
        total=$((total + ${serial:-0}))
    done
    echo "$total"
}

# requests PROVIDER: what the server has logged so far, as "A B C" counters.
requests() {
    case $1 in
        powerdns) echo "$(count '"GET /api' "$pdns_log") $(count '"(PATCH|POST|PUT|DELETE) /api' "$pdns_log") 0" ;;
        # Every UPDATE message bumps its zone's SOA serial by one: the sum of
        # the serials counts the UPDATEs.
        rfc2136) echo "0 $(bind_serials) $(count "AXFR started" "$bind_log")" ;;
    esac
}

# measure PROVIDER LABEL COMMAND...: prints a table row.
measure() {
    local provider=$1 label=$2
    shift 2
    local before after stats
    before=$(requests "$provider")
    /usr/bin/time -f '%e %M' -o "$work/time" "$@" > "$work/out" 2> "$work/err" || {
        cat "$work/err" >&2
        die "$label failed"
    }
    after=$(requests "$provider")
    stats=$(cat "$work/time")
    local -a b a
    read -r -a b <<< "$before"
    read -r -a a <<< "$after"
    local reads=$(( a[0] - b[0] )) writes=$(( a[1] - b[1] )) axfrs=$(( a[2] - b[2] ))
    local seen
    if [ "$provider" = powerdns ]; then
        seen="$reads GET, $writes PATCH/POST"
    else
        seen="$axfrs AXFR, $writes UPDATE"
    fi
    printf '| %s | %s | %s s | %s MiB | %s |\n' "$provider" "$label" "${stats% *}" "$(( ${stats#* } / 1024 ))" "$seen"
}

run_case() {
    local provider=$1 zones=$2 sets=$3
    local dir="$work/$provider-$zones-x-$sets"
    "$bench" generate --provider "$provider" --zones "$zones" --sets "$sets" --change-percent 0 --out "$dir/v1" >/dev/null
    "$bench" generate --provider "$provider" --zones "$zones" --sets "$sets" --change-percent 1 --out "$dir/v2" >/dev/null
    local batch=()
    [ "$provider" = rfc2136 ] && batch=(--batch 500)
    measure "$provider" "$zones x $sets: initial write (provider layer)" "$bench" apply "$dir/v1" "${batch[@]}"
    measure "$provider" "$zones x $sets: zentralink plan, no-op" "$zl" plan "$dir/v1" --format json
    measure "$provider" "$zones x $sets: zentralink plan, 1% changed" "$zl" plan "$dir/v2" --format json
    measure "$provider" "$zones x $sets: 1% change written (provider layer)" "$bench" apply "$dir/v2" "${batch[@]}"
    measure "$provider" "$zones x $sets: zentralink plan, no-op again" "$zl" plan "$dir/v2" --format json
}

printf '| provider | case | wall | peak RSS | requests the server logged |\n|---|---|---:|---:|---|\n'
if [ "$which" = all ] || [ "$which" = powerdns ]; then
    scripts/pdns-server.sh start >/dev/null
    # shellcheck disable=SC1091
    source .zentralink/servers/pdns.env
    run_case powerdns 100 100
    run_case powerdns 1 50000
fi
if [ "$which" = all ] || [ "$which" = rfc2136 ]; then
    ZL_BIND_BENCH=1 scripts/bind-server.sh start >/dev/null
    # shellcheck disable=SC1091
    source .zentralink/servers/bind.env
    run_case rfc2136 100 100
    run_case rfc2136 1 50000
fi
