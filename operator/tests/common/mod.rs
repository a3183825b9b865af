//! Shared by the provider tests: the one provider test suite every provider
//! passes, fakes of the Hetzner and Cloudflare APIs, and misbehaving servers.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, dead_code)]

pub mod fake_cloudflare;
pub mod fake_hetzner;
pub mod hostile_http;
pub mod provider_suite;
