#!/usr/bin/env bash
# The project's test command (README "Tests"; .ci/run calls it). Installs
# what the tests need when it is missing (Debian packages, a running
# PostgreSQL on 127.0.0.1:5432), then runs formatting, lints, every test and
# the doc tests. Safe to run again and again.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/lib.sh
source scripts/lib.sh

section "Packages"
ensure_packages "${ZL_TEST_NEEDS[@]}"

section "PostgreSQL"
ensure_postgres
ensure_database_url

section "DNS servers"
# BIND 9 for the RFC 2136 provider tests: test zones reset, keys in the environment.
scripts/bind-server.sh start
# shellcheck source=/dev/null
source .zentralink/servers/bind.env
# PowerDNS Authoritative for the PowerDNS provider tests: API address and key in the environment.
scripts/pdns-server.sh start
# shellcheck source=/dev/null
source .zentralink/servers/pdns.env
# OpenSSH on loopback for the git source's ssh:// tests (they read .zentralink/servers/sshd.env).
scripts/sshd-server.sh start

section "Browser"
# ChromeDriver on loopback for the web service's browser tests: its address in the environment.
scripts/chromedriver.sh start
# shellcheck source=/dev/null
source .zentralink/servers/chromedriver.env

section "SMTP sink"
# An aiosmtpd sink on loopback for the mail tests: its address, test account and maildir in the environment.
scripts/smtp-sink.sh start
# shellcheck source=/dev/null
source .zentralink/servers/smtp.env

section "Rust toolchain"
ensure_rust

section "Example zone files (named-checkzone)"
# Every zone file in examples/ must load in BIND as it is.
for zonefile in examples/zonefiles/*/*.zone; do
    zone=$(basename "$zonefile" .zone)
    named-checkzone -q -i local "$zone" "$zonefile" ||
        die "$zonefile does not load in BIND: run 'named-checkzone $zone $zonefile' to see why"
    info "$zonefile"
done

section "Single-host install (throw-away root)"
# scripts/install.sh twice into a temporary root (and on / in a private mount
# namespace), systemd-analyze verify of the units, cron.sh, zentralink-admin,
# a backup and restore round trip on the local PostgreSQL, and the nginx
# example in front of a stand-in web service (when nginx is installed).
if command -v shellcheck >/dev/null 2>&1; then
    shellcheck -x scripts/install.sh scripts/test-install.sh scripts/backup.sh scripts/restore.sh \
        deploy/cron.sh deploy/zentralink-admin
    info "shellcheck: the install scripts are clean"
fi
scripts/test-install.sh

section "Formatting (cargo fmt --check)"
cargo fmt --all -- --check

section "Lints (cargo clippy -D warnings)"
cargo clippy --workspace --all-targets -- -D warnings

# Doc tests first (nextest does not run them), so the test summary is the
# last thing printed.
section "Doc tests"
cargo test --workspace --doc

section "Tests"
if cargo nextest --version >/dev/null 2>&1; then
    cargo nextest run --workspace --no-fail-fast
else
    info "cargo-nextest is not installed; running cargo test"
    cargo test --workspace --no-fail-fast
fi

section "All checks passed"
