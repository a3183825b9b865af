#!/usr/bin/env bash
# The quickstart (README "Quickstart"): installs what a build needs when it is
# missing, makes sure PostgreSQL runs, builds the `zentralink` binary, then
# validates and plans the example zones repository in examples/.
#
# The plan runs on a scratch copy in .zentralink/quickstart/ (git-ignored,
# made afresh on every run), so nothing here ever changes examples/. This
# script grows as the reconciler lands: apply, approval and snapshots will
# run on the same scratch copy.
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
if ! psql "$admin_url" -Atqc "SELECT 1 FROM pg_database WHERE datname = 'zentralink_quickstart'" | grep -q 1; then
    psql "$admin_url" -qc 'CREATE DATABASE zentralink_quickstart'
    info "created database zentralink_quickstart"
fi
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

section "zentralink migrate"
"$zentralink" migrate

section "Scratch copy of examples/ in .zentralink/quickstart/"
rm -rf .zentralink/quickstart
mkdir -p .zentralink/quickstart
cp -a examples .zentralink/quickstart/examples
info "copied examples/ to .zentralink/quickstart/examples"

section "zentralink validate .zentralink/quickstart/examples"
"$zentralink" validate .zentralink/quickstart/examples

section "zentralink plan .zentralink/quickstart/examples"
"$zentralink" plan .zentralink/quickstart/examples

section "zentralink provider test .zentralink/quickstart/examples"
# Read-only first: only the connection with mode Live and acknowledgeLiveWrites
# gets the write probe; the results are stored with an audit event.
"$zentralink" provider test .zentralink/quickstart/examples

section "zentralink import (adopting acme.example. as it is)"
"$zentralink" import .zentralink/quickstart/examples --connection acme/files --zone acme.example. | head -n 20
info "..."

section "Done"
info "The plan above is what ZentraLink would do to the example zones. Try:"
info "  $zentralink plan .zentralink/quickstart/examples --format markdown"
info "  $zentralink plan .zentralink/quickstart/examples --format json"
