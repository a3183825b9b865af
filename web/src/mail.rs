//! E-mail: SMTP settings (the platform's, and per tenant an override),
//! templates per event kind (built in, platform and tenant overrides), the
//! mail log, and sending the queue through `lettre` with retries (cron job
//! `mail-flush`). Reads and writes the store; sending talks SMTP.

pub mod pages;
pub mod send;
pub mod templates;

pub use send::flush_queue;

/// What a message, a page or a log row says when no SMTP server is
/// configured: nothing is sent and nothing pretends to be.
pub const NO_SMTP: &str = "not sent: no SMTP server is configured";
