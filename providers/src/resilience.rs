//! Calling providers carefully: a timeout on every call, retries with
//! exponential backoff and jitter for transient failures of idempotent calls
//! only, `Retry-After` honoured, a per-connection rate limit and concurrency
//! limit, and bounds on how much of an answer is read. Does I/O (timers).

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{Mutex, Semaphore, SemaphorePermit};
use tokio::time::Instant;
use zentralink_model::resources::ConnectionLimits;

use super::ProviderError;
pub use super::http::MAX_RESPONSE_BYTES;
pub use super::rfc2136::{MAX_TRANSFER_BYTES, MAX_TRANSFER_RECORDS};

/// Limits for one connection: the first four from `spec.limits`, the bounds
/// on answers fixed (tests lower them).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// Timeout of one attempt.
    pub timeout: Duration,
    /// Most requests per second; `None` for no limit.
    pub requests_per_second: Option<u32>,
    /// Most calls in flight.
    pub max_concurrency: usize,
    /// Attempts of an idempotent call (the first one included).
    pub attempts: u32,
    pub first_backoff: Duration,
    pub max_backoff: Duration,
    /// Most bytes of one HTTP answer read into memory ([`MAX_RESPONSE_BYTES`]);
    /// a larger answer is refused.
    pub max_response_bytes: usize,
    /// Most records of one zone transfer ([`MAX_TRANSFER_RECORDS`]).
    pub max_transfer_records: usize,
    /// Most bytes of the messages of one zone transfer ([`MAX_TRANSFER_BYTES`]).
    pub max_transfer_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            timeout: Duration::from_secs(10),
            requests_per_second: None,
            max_concurrency: 4,
            attempts: 4,
            first_backoff: Duration::from_millis(200),
            max_backoff: Duration::from_secs(10),
            max_response_bytes: MAX_RESPONSE_BYTES,
            max_transfer_records: MAX_TRANSFER_RECORDS,
            max_transfer_bytes: MAX_TRANSFER_BYTES,
        }
    }
}

impl Limits {
    pub fn from_spec(spec: Option<&ConnectionLimits>) -> Self {
        let mut l = Limits::default();
        if let Some(s) = spec {
            if let Some(t) = s.timeout_seconds {
                l.timeout = Duration::from_secs(u64::from(t.max(1)));
            }
            l.requests_per_second = s.requests_per_second.filter(|r| *r > 0);
            if let Some(c) = s.max_concurrency {
                l.max_concurrency = usize::try_from(c.max(1)).unwrap_or(1);
            }
        }
        l
    }
}

/// Whether a call may be repeated without changing the outcome.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Idempotency {
    /// Reads: transient failures are retried.
    Idempotent,
    /// Writes: never retried here. A write that may have been applied is
    /// reported as [`ProviderError::Uncertain`]; the caller re-reads first.
    Write,
}

/// What one attempt gave.
#[derive(Debug)]
pub enum AttemptError {
    /// Worth another try (connection refused, 5xx, 429), optionally after a delay the server asked for.
    Transient {
        error: ProviderError,
        retry_after: Option<Duration>,
    },
    /// Final (authentication, not found, bad request, unparseable answer).
    Permanent(ProviderError),
}

impl AttemptError {
    pub fn transient(error: ProviderError) -> Self {
        AttemptError::Transient {
            error,
            retry_after: None,
        }
    }
}

/// Rate limiter: a token bucket refilled at `requests_per_second`.
#[derive(Debug)]
struct Bucket {
    rate: f64,
    tokens: f64,
    capacity: f64,
    last: Instant,
}

impl Bucket {
    /// How long to wait before one token is available; takes it.
    fn take(&mut self, now: Instant) -> Duration {
        let elapsed = now.saturating_duration_since(self.last).as_secs_f64();
        self.last = now;
        self.tokens = (self.tokens + elapsed * self.rate).min(self.capacity);
        self.tokens -= 1.0;
        if self.tokens >= 0.0 {
            Duration::ZERO
        } else {
            Duration::from_secs_f64(-self.tokens / self.rate)
        }
    }
}

/// The gate every call to one connection goes through.
#[derive(Debug, Clone)]
pub struct Governor {
    limits: Limits,
    slots: Arc<Semaphore>,
    bucket: Option<Arc<Mutex<Bucket>>>,
}

impl Governor {
    pub fn new(limits: Limits) -> Self {
        let bucket = limits.requests_per_second.map(|r| {
            let rate = f64::from(r);
            Arc::new(Mutex::new(Bucket {
                rate,
                tokens: rate.max(1.0),
                capacity: rate.max(1.0),
                last: Instant::now(),
            }))
        });
        Self {
            slots: Arc::new(Semaphore::new(limits.max_concurrency.max(1))),
            bucket,
            limits,
        }
    }

    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    async fn admit(&self) -> Result<SemaphorePermit<'_>, ProviderError> {
        let permit = self
            .slots
            .acquire()
            .await
            .map_err(|_| ProviderError::Unreachable("connection closed".into()))?;
        if let Some(bucket) = &self.bucket {
            let wait = bucket.lock().await.take(Instant::now());
            if !wait.is_zero() {
                tokio::time::sleep(wait).await;
            }
        }
        Ok(permit)
    }

    /// Runs `attempt` under the limits. `what` names the call in errors.
    pub async fn call<T, F, Fut>(
        &self,
        what: &str,
        idempotency: Idempotency,
        mut attempt: F,
    ) -> Result<T, ProviderError>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, AttemptError>>,
    {
        let attempts = match idempotency {
            Idempotency::Idempotent => self.limits.attempts.max(1),
            Idempotency::Write => 1,
        };
        let mut backoff = self.limits.first_backoff;
        let mut last = ProviderError::Unreachable(format!("{what}: no attempt made"));
        for n in 1..=attempts {
            let permit = self.admit().await?;
            let outcome = tokio::time::timeout(self.limits.timeout, attempt()).await;
            drop(permit);
            let (error, retry_after) = match outcome {
                Ok(Ok(v)) => return Ok(v),
                Ok(Err(AttemptError::Permanent(e))) => return Err(e),
                Ok(Err(AttemptError::Transient { error, retry_after })) => (error, retry_after),
                Err(_) => (
                    ProviderError::Unreachable(format!(
                        "{what}: no answer within {:?}",
                        self.limits.timeout
                    )),
                    None,
                ),
            };
            if idempotency == Idempotency::Write {
                return Err(match error {
                    // Not sent, or refused with a 429: the write was not applied.
                    e @ (ProviderError::NotSent(_) | ProviderError::RateLimited(_)) => e,
                    other => ProviderError::Uncertain(format!(
                        "{what}: {other}; the change may or may not have been applied: re-read the zone before trying again"
                    )),
                });
            }
            last = error;
            if n < attempts {
                let wait = retry_after
                    .unwrap_or_else(|| with_jitter(backoff))
                    .min(self.limits.max_backoff);
                tracing::debug!(what, attempt = n, ?wait, error = %last, "retrying");
                tokio::time::sleep(wait).await;
                backoff = (backoff * 2).min(self.limits.max_backoff);
            }
        }
        Err(last)
    }
}

/// Full jitter: a random duration between half of `base` and `base`.
fn with_jitter(base: Duration) -> Duration {
    let mut b = [0u8; 4];
    let r = if getrandom::fill(&mut b).is_ok() {
        f64::from(u32::from_le_bytes(b)) / f64::from(u32::MAX)
    } else {
        0.5
    };
    base.mul_f64(0.5 + r / 2.0)
}

/// Parses a `Retry-After` header value given in seconds.
pub fn retry_after_seconds(value: Option<&str>) -> Option<Duration> {
    value
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map(Duration::from_secs)
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU32, Ordering};

    use super::*;

    fn fast() -> Limits {
        Limits {
            timeout: Duration::from_millis(200),
            first_backoff: Duration::from_millis(1),
            max_backoff: Duration::from_millis(5),
            ..Limits::default()
        }
    }

    #[tokio::test]
    async fn transient_reads_are_retried_then_succeed() {
        let g = Governor::new(fast());
        let n = AtomicU32::new(0);
        let v = g
            .call("read", Idempotency::Idempotent, || async {
                if n.fetch_add(1, Ordering::SeqCst) < 2 {
                    Err(AttemptError::transient(ProviderError::Unreachable(
                        "500".into(),
                    )))
                } else {
                    Ok(7)
                }
            })
            .await;
        assert_eq!(v, Ok(7));
        assert_eq!(n.load(Ordering::SeqCst), 3);
    }

    #[tokio::test]
    async fn permanent_errors_are_not_retried() {
        let g = Governor::new(fast());
        let n = AtomicU32::new(0);
        let v: Result<(), _> = g
            .call("read", Idempotency::Idempotent, || async {
                n.fetch_add(1, Ordering::SeqCst);
                Err(AttemptError::Permanent(ProviderError::Authentication(
                    "401".into(),
                )))
            })
            .await;
        assert!(matches!(v, Err(ProviderError::Authentication(_))));
        assert_eq!(n.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn writes_are_never_retried_and_uncertain_ones_say_so() {
        let g = Governor::new(fast());
        let n = AtomicU32::new(0);
        let v: Result<(), _> = g
            .call("patch", Idempotency::Write, || async {
                n.fetch_add(1, Ordering::SeqCst);
                Err(AttemptError::transient(ProviderError::Unreachable(
                    "502 bad gateway".into(),
                )))
            })
            .await;
        assert_eq!(n.load(Ordering::SeqCst), 1);
        assert!(
            matches!(v, Err(ProviderError::Uncertain(ref m)) if m.contains("re-read")),
            "{v:?}"
        );
    }

    #[tokio::test]
    async fn slow_answers_time_out() {
        let g = Governor::new(Limits {
            attempts: 2,
            ..fast()
        });
        let v: Result<(), _> = g
            .call("read", Idempotency::Idempotent, || async {
                tokio::time::sleep(Duration::from_secs(5)).await;
                Ok(())
            })
            .await;
        assert!(
            matches!(v, Err(ProviderError::Unreachable(ref m)) if m.contains("no answer within")),
            "{v:?}"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn the_rate_limit_spaces_calls() {
        let g = Governor::new(Limits {
            requests_per_second: Some(10),
            ..fast()
        });
        let start = Instant::now();
        for _ in 0..30 {
            g.call("read", Idempotency::Idempotent, || async {
                Ok::<_, AttemptError>(())
            })
            .await
            .unwrap_or(());
        }
        // 10 tokens at start, then 20 more at 10 per second
        let elapsed = start.elapsed();
        assert!(elapsed >= Duration::from_millis(1900), "{elapsed:?}");
        assert!(elapsed < Duration::from_millis(2500), "{elapsed:?}");
    }

    #[test]
    fn limits_from_spec() {
        let l = Limits::from_spec(Some(&ConnectionLimits {
            timeout_seconds: Some(3),
            requests_per_second: Some(5),
            max_concurrency: Some(2),
        }));
        assert_eq!(l.timeout, Duration::from_secs(3));
        assert_eq!(l.requests_per_second, Some(5));
        assert_eq!(l.max_concurrency, 2);
        assert_eq!(Limits::from_spec(None), Limits::default());
        assert_eq!(
            retry_after_seconds(Some(" 7 ")),
            Some(Duration::from_secs(7))
        );
        assert_eq!(
            retry_after_seconds(Some("Wed, 21 Oct 2015 07:28:00 GMT")),
            None
        );
    }
}
