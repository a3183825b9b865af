#!/usr/bin/env bash
# Kubernetes benchmarks of `zentralink operator --source kubernetes` with the
# release binary, against a real API server (KUBECONFIG), PowerDNS
# (scripts/pdns-server.sh) and PostgreSQL on 127.0.0.1:5432. Results and
# method in docs/benchmarks.md, section "Kubernetes".
#
#   apply   `kubectl apply` of a zone change -> applied on PowerDNS: RUNS
#           changes (default 20) of one A record of a zone the operator
#           reconciles; the time from `kubectl apply` until PowerDNS serves
#           the new value; median and p95.
#   watch   the operator watching 10,000 DnsZone objects of 100 record sets
#           (zone-file provider): its peak RSS once the caches are filled and
#           a pass over every zone finished, and the LIST and WATCH requests
#           the API server counted for the zentralink resources during the
#           start and after a restart (paginated lists, no list storms).
#
#   KUBECONFIG=... scripts/bench-cluster.sh [apply|watch|all]
#
# Makes the namespaces zl-bench-apply and zl-bench-watch and a Tenant for
# each, deleted at the end; the CRDs stay installed. Each case gets its own
# database (zl_bench_cluster_<case>), dropped at the end. Writes under
# .zentralink/bench-cluster. Talks to the API server, PowerDNS and PostgreSQL (I/O).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
# shellcheck source=scripts/lib.sh
source scripts/lib.sh

which=${1:-all}
case $which in apply | watch | all) ;; *) die "usage: $0 [apply|watch|all]" ;; esac
[ -n "${KUBECONFIG:-}" ] || die "set KUBECONFIG to a kubeconfig of the API server to measure against"
ensure_packages time=time curl=curl bc=bc psql=postgresql-client
command -v kubectl >/dev/null || die "kubectl is missing: install it (the Kubernetes apt repository, or a release binary)"
kubectl version >/dev/null || die "the API server in KUBECONFIG does not answer"
ensure_postgres
export PGOPTIONS=--client-min-messages=warning
ADMIN_URL=${ZL_BENCH_ADMIN_URL:-postgres://postgres@127.0.0.1:5432/postgres}

section "Build (release)"
cargo build --release -p zentralink --bins
target=$(cargo_target_dir)
work="$ROOT/.zentralink/bench-cluster"
mkdir -p "$work/bin"
cp "$target/release/zentralink" "$work/bin/"
zl="$work/bin/zentralink"
kubectl apply -f crds/ >/dev/null
kubectl wait --for condition=established --timeout=60s -f crds/ >/dev/null

KEY=$("$zl" secrets generate-key)
export PLATFORM_ENCRYPTION_KEY=$KEY

stats() { # prints "median p95" of the numbers on stdin
    sort -n | awk '{ v[NR] = $1 } END { m = v[int((NR + 1) / 2)]; p = v[int(NR * 0.95 + 0.999)]; if (p == "") p = v[NR]; printf "%.3f %.3f\n", m, p }'
}

fresh_db() { # $1: name; prints the URL
    psql "$ADMIN_URL" -qc "DROP DATABASE IF EXISTS $1 WITH (FORCE)" >/dev/null
    psql "$ADMIN_URL" -qc "CREATE DATABASE $1" >/dev/null
    echo "${ADMIN_URL%/*}/$1"
}

start_operator() { # $1: namespace, $2: log file; sets OPERATOR_PID
    "$zl" operator --source kubernetes --listen 127.0.0.1:0 --namespace "$1" \
        --identity bench --full-pass 10m --zonefile-root "$work" >"$2" 2>&1 &
    OPERATOR_PID=$!
}

stop_operator() {
    kill -TERM "$OPERATOR_PID" 2>/dev/null || true
    wait "$OPERATOR_PID" 2>/dev/null || true
}

tenant() { # $1: name (also its namespace), $2: allowed domain
    kubectl create namespace "$1" --dry-run=client -o yaml | kubectl apply -f - >/dev/null
    kubectl apply -f - >/dev/null <<EOF
apiVersion: dns.zentralink.net/v1alpha1
kind: Tenant
metadata: { name: $1 }
spec: { displayName: $1, namespaces: [$1], allowedDomains: [$2] }
---
apiVersion: dns.zentralink.net/v1alpha1
kind: TenantPolicy
metadata: { name: policy, namespace: $1 }
spec:
  approvals:
    requiredFor: { recordTypes: [], deletions: false, rollbacks: false, bulkChangeThreshold: 1000000 }
EOF
}

cleanup_tenant() { # $1: name
    for z in $(kubectl -n "$1" get dnszones -o name 2>/dev/null); do
        kubectl -n "$1" patch "$z" --type merge -p '{"metadata":{"finalizers":null}}' >/dev/null 2>&1 || true
    done
    kubectl delete tenant "$1" --ignore-not-found >/dev/null
    kubectl delete namespace "$1" --ignore-not-found --wait=false >/dev/null
}

if [ "$which" = apply ] || [ "$which" = all ]; then
    section "apply: kubectl apply -> applied on PowerDNS"
    scripts/pdns-server.sh >/dev/null
    # shellcheck disable=SC1091
    source .zentralink/servers/pdns.env
    export ZENTRALINK_CREDENTIAL_PDNS=$ZL_PDNS_API_KEY
    export DATABASE_URL
    DATABASE_URL=$(fresh_db zl_bench_cluster_apply)
    ns="zl-bench-apply"
    zone=apply.bench.test.
    curl -s -X DELETE -H "X-API-Key: $ZL_PDNS_API_KEY" "$ZL_PDNS_URL/api/v1/servers/localhost/zones/$zone" >/dev/null || true
    curl -s -H "X-API-Key: $ZL_PDNS_API_KEY" -H 'content-type: application/json' \
        -d "{\"name\":\"$zone\",\"kind\":\"Native\",\"nameservers\":[\"ns1.example.net.\"]}" \
        "$ZL_PDNS_URL/api/v1/servers/localhost/zones" >/dev/null
    tenant "$ns" bench.test.
    kubectl apply -f - >/dev/null <<EOF
apiVersion: dns.zentralink.net/v1alpha1
kind: ProviderConnection
metadata: { name: pdns, namespace: $ns }
spec:
  type: powerdns
  powerdns: { url: "$ZL_PDNS_URL" }
  credentials: { env: ZENTRALINK_CREDENTIAL_PDNS }
  mode: Live
  acknowledgeLiveWrites: true
EOF
    zone_doc() { # $1: the www address
        cat <<EOF
apiVersion: dns.zentralink.net/v1alpha1
kind: DnsZone
metadata: { name: apply, namespace: $ns }
spec:
  zone: $zone
  providerRef: { name: pdns }
  defaultTtl: 300
  recordSets:
    - { name: '@', type: NS, ttl: 3600, values: [ns1.example.net.] }
    - { name: www, type: A, values: [$1] }
EOF
    }
    served() { # $1: address; true when PowerDNS serves it
        curl -s -H "X-API-Key: $ZL_PDNS_API_KEY" "$ZL_PDNS_URL/api/v1/servers/localhost/zones/$zone" | grep -q "\"$1\""
    }
    zone_doc 198.51.100.100 | kubectl apply -f - >/dev/null
    start_operator "$ns" "$work/apply.log"
    for _ in $(seq 600); do served 198.51.100.100 && break; sleep 0.1; done
    served 198.51.100.100 || die "the first version was never applied (see $work/apply.log)"
    : >"$work/apply.times"
    for i in $(seq "${RUNS:-20}"); do
        address="198.51.100.$((100 + i))"
        start=$(date +%s.%N)
        zone_doc "$address" | kubectl apply -f - >/dev/null
        until served "$address"; do sleep 0.005; done
        end=$(date +%s.%N)
        echo "$end - $start" | bc >>"$work/apply.times"
        sleep 0.3
    done
    stop_operator
    read -r median p95 < <(stats <"$work/apply.times")
    info "kubectl apply -> served by PowerDNS: median ${median} s, p95 ${p95} s (${RUNS:-20} changes)"
    cleanup_tenant "$ns"
    psql "$ADMIN_URL" -qc "DROP DATABASE IF EXISTS zl_bench_cluster_apply WITH (FORCE)" >/dev/null
fi

if [ "$which" = watch ] || [ "$which" = all ]; then
    section "watch: 10,000 DnsZone objects"
    export DATABASE_URL
    DATABASE_URL=$(fresh_db zl_bench_cluster_watch)
    ns="zl-bench-watch"
    files="$work/watch-zones"
    rm -rf "$files" && mkdir -p "$files"
    tenant "$ns" watch.test.
    kubectl apply -f - >/dev/null <<EOF
apiVersion: dns.zentralink.net/v1alpha1
kind: ProviderConnection
metadata: { name: files, namespace: $ns }
spec: { type: zonefile, zonefile: { directory: $files }, mode: Live, acknowledgeLiveWrites: true }
EOF
    info "creating 10,000 DnsZones of 100 record sets (server-side apply, 100 per request)"
    for batch in $(seq 0 99); do
        {
            for n in $(seq 0 99); do
                i=$((batch * 100 + n))
                printf -- '---\napiVersion: dns.zentralink.net/v1alpha1\nkind: DnsZone\nmetadata: { name: z%05d, namespace: %s }\nspec:\n  zone: z%05d.watch.test.\n  providerRef: { name: files }\n  recordSets:\n' "$i" "$ns" "$i"
                for r in $(seq 0 99); do
                    printf '    - { name: h%02d, type: A, values: [192.0.2.%d] }\n' "$r" $((r + 1))
                done
            done
        } | kubectl apply --server-side --field-manager bench -f - >/dev/null
    done
    requests() { # LIST and WATCH requests the API server counted for our group
        kubectl get --raw /metrics | awk '/^apiserver_request_total/ && /group="dns.zentralink.net"/ && /verb="(LIST|WATCH)"/ { s += $NF } END { print s + 0 }'
    }
    before=$(requests)
    start_operator "$ns" "$work/watch.log"
    # every zone reconciled once: the zone files exist
    for _ in $(seq 3600); do
        [ "$(find "$files" -name '*.zone' | wc -l)" -ge 10000 ] && break
        sleep 1
    done
    hwm=$(awk '/VmHWM/ { print $2 }' "/proc/$OPERATOR_PID/status")
    rss=$(awk '/VmRSS/ { print $2 }' "/proc/$OPERATOR_PID/status")
    after_start=$(requests)
    stop_operator
    info "first start: peak RSS $((hwm / 1024)) MiB, RSS after the pass $((rss / 1024)) MiB, $((after_start - before)) LIST/WATCH requests"
    start_operator "$ns" "$work/watch-restart.log"
    sleep 60
    restart_hwm=$(awk '/VmHWM/ { print $2 }' "/proc/$OPERATOR_PID/status")
    after_restart=$(requests)
    stop_operator
    info "restart: peak RSS $((restart_hwm / 1024)) MiB, $((after_restart - after_start)) LIST/WATCH requests in its first minute"
    cleanup_tenant "$ns"
    psql "$ADMIN_URL" -qc "DROP DATABASE IF EXISTS zl_bench_cluster_watch WITH (FORCE)" >/dev/null
fi
