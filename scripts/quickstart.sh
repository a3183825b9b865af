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

section "Build (cargo build --release -p zentralink)"
cargo build --release -p zentralink
zentralink="$(cargo_target_dir)/release/zentralink"

section "Scratch copy of examples/ in .zentralink/quickstart/"
rm -rf .zentralink/quickstart
mkdir -p .zentralink/quickstart
cp -a examples .zentralink/quickstart/examples
info "copied examples/ to .zentralink/quickstart/examples"

section "zentralink validate .zentralink/quickstart/examples"
"$zentralink" validate .zentralink/quickstart/examples

section "zentralink plan .zentralink/quickstart/examples"
"$zentralink" plan .zentralink/quickstart/examples

section "Done"
info "The plan above is what ZentraLink would do to the example zones. Try:"
info "  $zentralink plan .zentralink/quickstart/examples --format markdown"
info "  $zentralink plan .zentralink/quickstart/examples --format json"
