//! Shared by the provider tests: the one provider test suite every provider passes.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, dead_code)]

pub mod fake_cloudflare;
pub mod fake_hetzner;
pub mod provider_suite;
