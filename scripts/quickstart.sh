#!/usr/bin/env bash
# The quickstart (README "Quickstart"): installs what a build needs when it is
# missing, makes sure PostgreSQL runs, builds the `zentralink` binary, then
# tells the story of a zones repository with the built-in zone-file provider:
# a local git repository is made from examples/, planned, reconciled (an
# ungated change applied with its snapshots and history, a gated MX change
# waiting as a named change request), the MX change signed with `zentralink
# approve` and executed, snapshotted on demand, changed by a second commit,
# rolled back through a request Bob signs and Alice approves with plain
# `ssh-keygen -Y sign`.
#
# Everything happens in .zentralink/quickstart/ (git-ignored, made afresh on
# every run) and in its own database, so nothing here ever changes examples/.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/lib.sh
source scripts/lib.sh

section "Build prerequisites"
ensure_packages "${ZL_BUILD_NEEDS[@]}"
ensure_rust

section "PostgreSQL"
ensure_postgres
ensure_database_url
# The quickstart's own database and encryption key, kept between runs.
admin_url=$DATABASE_URL
export DATABASE_URL=${admin_url%/*}/zentralink_quickstart

section "Build (cargo build --release -p zentralink)"
cargo build --release -p zentralink
zentralink="$(cargo_target_dir)/release/zentralink"

mkdir -p .zentralink
if [ ! -s .zentralink/quickstart.key ]; then
    "$zentralink" secrets generate-key > .zentralink/quickstart.key
    chmod 600 .zentralink/quickstart.key
    info "generated PLATFORM_ENCRYPTION_KEY in .zentralink/quickstart.key"
fi
PLATFORM_ENCRYPTION_KEY=$(cat .zentralink/quickstart.key)
export PLATFORM_ENCRYPTION_KEY

section "A zones repository in .zentralink/quickstart/repo (git)"
rm -rf .zentralink/quickstart .zentralink/quickstart-state
mkdir -p .zentralink/quickstart
repo=.zentralink/quickstart/repo
mkdir -p "$repo"
cp -a examples/acme examples/globex examples/tenants "$repo"/
# The approvers' keys: made here, and listed in acme's policy in place of the
# example keys, so the quickstart can sign.
keys=.zentralink/quickstart/keys
mkdir -p "$keys"
for who in alice bob; do
    ssh-keygen -q -t ed25519 -N '' -C "$who@acme.example" -f "$keys/$who"
    example=$(grep -o "ssh-ed25519 [A-Za-z0-9+/=]* $who@acme.example" "$repo"/acme/policy.yaml)
    sed -i "s|$example|$(cat "$keys/$who.pub")|" "$repo"/acme/policy.yaml
done
# The zone files are the provider's storage, not part of the repository: they
# sit next to the manifests (where `../zonefiles/...` points) but git ignores them.
cp -a examples/zonefiles "$repo"/zonefiles
printf 'zonefiles/\n' >"$repo"/.gitignore
commit() {
    git -C "$repo" -c user.name="$1" -c user.email="$2" -c commit.gpgsign=false commit -q -m "$3"
}
git -C "$repo" init -q -b main
git -C "$repo" add -A
commit "Carol Platform" carol@acme.example "Zones of acme and globex"
info "committed $(git -C "$repo" ls-files | wc -l) manifests as main@$(git -C "$repo" rev-parse --short HEAD)"
source_url="file://$(cd "$repo" && pwd)"
zl_reconcile() {
    "$zentralink" reconcile "$source_url" --zonefile-root "$repo" --state-dir .zentralink/quickstart-state "$@"
}
# A fresh database every run, so the story starts from the beginning.
psql "$admin_url" -qc 'DROP DATABASE IF EXISTS zentralink_quickstart WITH (FORCE)'
psql "$admin_url" -qc 'CREATE DATABASE zentralink_quickstart'
"$zentralink" migrate

section "zentralink validate (the working tree)"
"$zentralink" validate "$repo"

section "zentralink plan (what a pull request shows; exit 3: some changes wait for approval)"
set +e
"$zentralink" plan "$repo" --exit-code
plan_exit=$?
set -e
info "plan exit code: $plan_exit"

section "zentralink reconcile $source_url (one pass)"
# acme's connection is Live: its first pass runs the connection test and the
# write probe, then the ungated www change executes; the MX change and the
# ftp deletion wait in one change request. globex's connection is ReadOnly.
zl_reconcile

section "What happened: snapshots, history, status"
"$zentralink" snapshot list acme.example.
"$zentralink" history acme.example.
"$zentralink" status

section "A second pass changes nothing (and writes nothing)"
zl_reconcile

section "Bob signs the waiting MX change with zentralink approve"
# The change request's name is in the plan, the reconcile output and
# `zentralink status`; it is the DnsZone's name and the digest's first digits.
mx_request=$("$zentralink" status | sed -n 's/^    change request \(acme-example-[0-9a-f]*\) (Pending).*/\1/p' | head -n 1)
info "the MX change waits as $mx_request"
"$zentralink" approve "$mx_request" --key "$keys/bob" --submit
zl_reconcile
"$zentralink" history acme.example. --type MX

section "An on-demand snapshot"
taken=$("$zentralink" snapshot take acme.example. --reason "before the web move")
printf '%s\n' "$taken"
snapshot=$(printf '%s\n' "$taken" | awk '{print $2}')

section "A second commit: www moves (ungated, executes at once)"
sed -i 's/values: \[192.0.2.10, 192.0.2.11\]/values: [192.0.2.10, 192.0.2.12]/' "$repo"/acme/acme.example.yaml
git -C "$repo" add -A
commit "Dave Web" dave@acme.example "Move www to .12"
zl_reconcile
"$zentralink" history acme.example. --name www --type A

section "A rollback to the on-demand snapshot, asked and signed by Bob"
# A rollback is a change request like any other, gated by the policy's
# rollbacks rule; signed with Bob's key, Bob is its requester and cannot approve it.
"$zentralink" rollback acme.example. --to "$snapshot" --key "$keys/bob"
zl_reconcile
rollback_request=$("$zentralink" status | sed -n 's/^    change request \(acme-example-rollback-[0-9a-f]*\) (Pending).*/\1/p' | head -n 1)

section "Alice approves the rollback with plain ssh-keygen, committed to the repository"
message=.zentralink/quickstart/rollback-approval.txt
"$zentralink" approve "$rollback_request" --key "$keys/alice.pub" --print-message >"$message"
cat "$message"
ssh-keygen -q -Y sign -n zentralink-approval -f "$keys/alice" "$message"
mkdir -p "$repo"/approvals
{
    printf 'apiVersion: dns.zentralink.net/v1alpha1\nkind: Approval\n'
    printf 'metadata: { name: %s-alice-approve, namespace: acme }\n' "$rollback_request"
    printf 'spec:\n  changeRequest: %s\n' "$rollback_request"
    printf '  planDigest: "%s"\n' "$(sed -n 's/^digest: //p' "$message")"
    printf '  approver: alice\n  decision: Approve\n'
    printf '  createdAt: "%s"\n' "$(sed -n 's/^created: //p' "$message")"
    printf '  signature: |\n'
    sed 's/^/    /' "$message.sig"
} >"$repo/approvals/$rollback_request-alice.yaml"
"$zentralink" verify "$repo/approvals/$rollback_request-alice.yaml" --tenant acme
git -C "$repo" add -A
commit "Alice Admin" alice@acme.example "Approve the rollback"
zl_reconcile
"$zentralink" snapshot diff "$snapshot"
"$zentralink" status

section "Done"
info "The MX change and the rollback were signed and executed; acme.example. stays"
info "at the snapshot until its declared content changes (RolledBack)."
info "Try: $zentralink plan $repo --format markdown"
