//! Login throttling: after too many failed sign-ins within a window, for an
//! account or from an address, the next attempt waits until the window has
//! let enough of them go. Subjects are stored as SHA-256 only. The decision
//! is a pure function of the failure times and the time now.

use chrono::{DateTime, Duration, Utc};
use sha2::{Digest, Sha256};

/// How many failures are allowed within the window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ThrottlePolicy {
    pub window: Duration,
    pub per_account: usize,
    pub per_ip: usize,
}

impl Default for ThrottlePolicy {
    fn default() -> Self {
        Self {
            window: Duration::minutes(15),
            per_account: 5,
            per_ip: 20,
        }
    }
}

/// The throttling subject of an account (its e-mail, lower-cased).
pub fn account_subject(email: &str) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(b"account\0");
    h.update(email.trim().to_lowercase().as_bytes());
    h.finalize().into()
}

/// The throttling subject of an address.
pub fn ip_subject(ip: &str) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(b"ip\0");
    h.update(ip.as_bytes());
    h.finalize().into()
}

/// How long to wait before trying again, given the failures within the
/// window (oldest first); `None` when an attempt may be made now.
pub fn retry_after(
    failures: &[DateTime<Utc>],
    limit: usize,
    window: Duration,
    now: DateTime<Utc>,
) -> Option<Duration> {
    if limit == 0 || failures.len() < limit {
        return None;
    }
    // Once this failure leaves the window, fewer than `limit` remain.
    let pivot = failures[failures.len() - limit];
    let until = pivot + window;
    (until > now).then(|| until - now)
}

/// Whole seconds for a `Retry-After` header, at least 1.
pub fn retry_after_seconds(wait: Duration) -> i64 {
    let ms = wait.num_milliseconds().max(0);
    ((ms + 999) / 1000).max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_800_000_000 + s, 0).unwrap()
    }

    #[test]
    fn below_the_limit_nothing_waits() {
        let f = [at(0), at(1), at(2), at(3)];
        assert_eq!(retry_after(&f, 5, Duration::minutes(15), at(4)), None);
    }

    #[test]
    fn at_the_limit_the_wait_ends_when_the_oldest_counted_failure_leaves_the_window() {
        let f = [at(0), at(10), at(20), at(30), at(40), at(50)];
        // Five allowed: the sixth-newest (at 10) must leave the window of 900 s.
        let wait = retry_after(&f, 5, Duration::seconds(900), at(60)).unwrap();
        assert_eq!(wait, Duration::seconds(850));
        assert_eq!(retry_after(&f, 5, Duration::seconds(900), at(910)), None);
        assert_eq!(retry_after_seconds(Duration::milliseconds(1500)), 2);
    }

    #[test]
    fn subjects_do_not_keep_the_email_or_address() {
        assert_eq!(
            account_subject(" Ann@Example.org "),
            account_subject("ann@example.org")
        );
        assert_ne!(account_subject("1.2.3.4"), ip_subject("1.2.3.4"));
    }
}
