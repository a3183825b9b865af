//! Helpers shared by the HTTP API providers (PowerDNS, Hetzner, Cloudflare):
//! the client (which never follows redirects), credential headers, transport
//! errors, status and redirect classification, bounded reading of answer
//! bodies, quoting a server's text, base URLs, URL path segments. Does I/O
//! only in reading answer bodies.

use super::ProviderError;
use super::resilience::{AttemptError, Idempotency};

/// The most bytes ZentraLink reads of one HTTP answer: 256 MiB. Larger
/// answers are refused, up front when their `Content-Length` says so and
/// otherwise as soon as the bytes received pass the limit, so a huge or
/// endless answer is never held in memory. A real zone stays well below it:
/// PowerDNS's JSON for a zone of 1,000,000 records is about 120 MB, and
/// Hetzner and Cloudflare answer in pages. The limit of a connection is
/// [`Limits::max_response_bytes`](super::resilience::Limits::max_response_bytes).
pub const MAX_RESPONSE_BYTES: usize = 256 * 1024 * 1024;

/// The most bytes of an error answer read for its message; the rest is left unread.
const MAX_ERROR_BODY_BYTES: usize = 1024 * 1024;

/// The most characters of a server's text quoted in one error message.
pub(crate) const MAX_QUOTED_CHARS: usize = 300;

/// Text from a server (an error body, a header, a parser's complaint about
/// an answer), fit to quote in a message: whitespace runs folded to one
/// space, at most [`MAX_QUOTED_CHARS`] characters, an ellipsis when cut.
/// Redact credentials before shortening, so that no part of one survives.
pub(crate) fn shorten(text: &str) -> String {
    let mut out = String::new();
    for (n, word) in text.split_whitespace().enumerate() {
        if n > 0 {
            out.push(' ');
        }
        out.push_str(word);
        if out.len() > MAX_QUOTED_CHARS * 4 {
            // Enough to decide: no need to fold the rest of a long text.
            break;
        }
    }
    match out.char_indices().nth(MAX_QUOTED_CHARS) {
        Some((cut, _)) => {
            out.truncate(cut);
            out.push('…');
            out
        }
        None => out,
    }
}

/// A byte count as people read it: `256 MiB`, or `1000 bytes`.
fn byte_count(n: usize) -> String {
    const MIB: usize = 1024 * 1024;
    if n >= MIB && n.is_multiple_of(MIB) {
        format!("{} MiB", n / MIB)
    } else {
        format!("{n} bytes")
    }
}

/// Why the body of an answer was not read.
#[derive(Debug)]
pub(crate) enum BodyError {
    /// Larger than the limit; `declared` when its `Content-Length` said so
    /// and nothing of it was read.
    TooLarge { limit: usize, declared: Option<u64> },
    /// The connection failed before the body was complete.
    Cut(reqwest::Error),
}

impl BodyError {
    /// What a body that could not be read means for the attempt that got
    /// it. `status` is the answer's, a success: a write it answers was
    /// applied, so a body too large to read leaves the outcome unknown
    /// rather than failed.
    pub(crate) fn into_attempt(
        self,
        what: &str,
        provider: &str,
        status: reqwest::StatusCode,
        idempotency: Idempotency,
    ) -> AttemptError {
        match self {
            BodyError::Cut(e) => AttemptError::transient(ProviderError::Unreachable(format!(
                "{what}: the answer was cut off: {}",
                error_chain(&e.without_url())
            ))),
            BodyError::TooLarge { limit, declared } => {
                let size = match declared {
                    Some(n) => format!(
                        "announces {n} bytes, more than the {} ZentraLink reads of one answer, so none of it was read",
                        byte_count(limit)
                    ),
                    None => format!(
                        "is larger than the {} ZentraLink reads of one answer; reading stopped there",
                        byte_count(limit)
                    ),
                };
                AttemptError::Permanent(match idempotency {
                    Idempotency::Idempotent => ProviderError::InvalidAnswer(format!(
                        "{what}: {provider}'s answer (HTTP {status}) {size}; check that the URL leads to the {provider} API"
                    )),
                    Idempotency::Write => ProviderError::Uncertain(format!(
                        "{what}: {provider} accepted the request (HTTP {status}), but its answer {size}; the change may or may not have been applied: re-read the zone before trying again"
                    )),
                })
            }
        }
    }
}

/// The body of an answer, of at most `limit` bytes. A larger one is refused
/// up front when its `Content-Length` says so, and otherwise as soon as the
/// chunks received pass `limit`: it is never held in memory whole.
pub(crate) async fn read_body(
    mut response: reqwest::Response,
    limit: usize,
) -> Result<Vec<u8>, BodyError> {
    let declared = response.content_length();
    if let Some(n) = declared
        && n > u64::try_from(limit).unwrap_or(u64::MAX)
    {
        return Err(BodyError::TooLarge {
            limit,
            declared: Some(n),
        });
    }
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(BodyError::Cut)? {
        if body.capacity() == 0 {
            // The first bytes are here: one allocation of the length the
            // server announced (within the limit), not a series of doubling
            // copies (a zone of 50,000 sets touched 24 MB for its 8.5).
            let announced = declared.and_then(|n| usize::try_from(n).ok());
            body.reserve_exact(announced.unwrap_or(0).max(chunk.len()));
        }
        if chunk.len() > limit - body.len() {
            return Err(BodyError::TooLarge {
                limit,
                declared: None,
            });
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// The start of an error answer's body, enough for its message: at most
/// 1 MiB (or `limit`, when smaller). The rest is left unread, and a failure
/// while reading ends the body there: the status already says what happened.
pub(crate) async fn read_error_body(mut response: reqwest::Response, limit: usize) -> Vec<u8> {
    let limit = limit.min(MAX_ERROR_BODY_BYTES);
    let mut body = Vec::new();
    while let Ok(Some(chunk)) = response.chunk().await {
        let room = limit - body.len();
        if chunk.len() >= room {
            body.extend_from_slice(&chunk[..room]);
            break;
        }
        body.extend_from_slice(&chunk);
    }
    body
}

/// A redirect (any 3xx answer), which is never followed: the request
/// carries a credential, and following would hand it to whatever address
/// the server names. The error names that address (passed through
/// `redact`, which scrubs the provider's credential) and the setting to
/// change; `url_field` is that setting (`spec.powerdns.url`).
pub(crate) fn redirect_error(
    what: &str,
    provider: &str,
    response: &reqwest::Response,
    url_field: &str,
    redact: impl Fn(&str) -> String,
) -> AttemptError {
    let status = response.status();
    let location = response
        .headers()
        .get(reqwest::header::LOCATION)
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned());
    let message = match location {
        Some(location) => {
            // A relative Location is shown as the address it leads to.
            let target = response
                .url()
                .join(location.trim())
                .map(|u| u.to_string())
                .unwrap_or(location);
            format!(
                "{what}: {provider} answered {status} redirecting to {}; credentialed requests never follow redirects: set {url_field} to the final address",
                shorten(&redact(&target))
            )
        }
        None => format!(
            "{what}: {provider} answered {status} (a redirect, without a Location); credentialed requests never follow redirects: set {url_field} to the API's own address"
        ),
    };
    AttemptError::Permanent(ProviderError::Unsupported(message))
}

/// A request that never got an HTTP answer.
pub(crate) fn transport_error(what: &str, e: &reqwest::Error) -> AttemptError {
    let detail = error_chain(e);
    if e.is_connect() {
        // The connection failed, so the request was never written.
        return AttemptError::transient(ProviderError::NotSent(format!(
            "{what}: connection refused or failed before the request was sent: {detail}"
        )));
    }
    let message = if e.is_timeout() {
        format!("{what}: no answer in time: {detail}")
    } else {
        format!("{what}: the request failed: {detail}")
    };
    AttemptError::transient(ProviderError::Unreachable(message))
}

/// An error with its causes, on one line.
pub(crate) fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        out.push_str(": ");
        out.push_str(&s.to_string());
        source = s.source();
    }
    out
}

/// How a call with this method is retried: reads are, writes are not (the
/// REST APIs' writes are not idempotent as the governor understands it).
pub(crate) fn idempotency_of(method: &reqwest::Method) -> Idempotency {
    if method == reqwest::Method::GET {
        Idempotency::Idempotent
    } else {
        Idempotency::Write
    }
}

/// A page number or count from a JSON answer (`last_page`, `total_pages`):
/// a whole number, possibly written `3.0`; `None` for anything else.
pub(crate) fn page_number(n: &serde_json::Number) -> Option<u32> {
    let value = n.as_u64().or_else(|| {
        n.as_f64()
            .filter(|f| f.is_finite() && *f >= 0.0 && f.fract() == 0.0)
            .map(|f| f as u64)
    })?;
    Some(u32::try_from(value).unwrap_or(u32::MAX))
}

/// The base URL without a trailing slash, checked to be http(s).
pub(crate) fn base_url(
    configured: Option<&str>,
    default: &str,
    field: &str,
) -> Result<String, ProviderError> {
    let raw = configured
        .map(str::trim)
        .filter(|u| !u.is_empty())
        .unwrap_or(default);
    let parsed = reqwest::Url::parse(raw)
        .map_err(|e| ProviderError::Unsupported(format!("{field} {raw:?} is not a URL: {e}")))?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err(ProviderError::Unsupported(format!(
            "{field} {raw:?} must be an http:// or https:// URL"
        )));
    }
    Ok(raw.trim_end_matches('/').to_owned())
}

/// An id as one URL path segment (ids are opaque; keep them from adding path parts).
pub(crate) fn path_segment(id: &str) -> String {
    id.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '~') {
                c.to_string()
            } else {
                let mut buf = [0u8; 4];
                c.encode_utf8(&mut buf)
                    .bytes()
                    .map(|b| format!("%{b:02X}"))
                    .collect()
            }
        })
        .collect()
}

/// Maps an HTTP error answer to an attempt outcome: authentication failures
/// and refusals are final, 429 waits as the server asks, 408 and 5xx are
/// worth another try (for reads).
pub(crate) fn classify_status(
    what: &str,
    status: reqwest::StatusCode,
    message: &str,
    retry_after: Option<std::time::Duration>,
    auth_hint: &str,
    provider: &str,
) -> AttemptError {
    let detail = if message.is_empty() {
        format!("{what}: HTTP {status}")
    } else {
        format!("{what}: HTTP {status}: {message}")
    };
    match status.as_u16() {
        401 | 403 => AttemptError::Permanent(ProviderError::Authentication(format!(
            "{detail}; {auth_hint}"
        ))),
        429 => AttemptError::Transient {
            error: ProviderError::RateLimited(detail),
            retry_after,
        },
        408 | 500..=599 => AttemptError::transient(ProviderError::Unreachable(detail)),
        404 => AttemptError::Permanent(ProviderError::Conflict(format!(
            "{detail} (it may have been removed by someone else meanwhile)"
        ))),
        409 => AttemptError::Permanent(ProviderError::Conflict(detail)),
        _ => AttemptError::Permanent(ProviderError::Unsupported(format!(
            "{detail}; {provider} refused the request"
        ))),
    }
}

/// The HTTP client of one connection: its connect timeout, our user agent,
/// and headers sent with every request. It never follows a redirect, so a
/// credential goes nowhere but to the configured address; callers report a
/// 3xx answer with [`redirect_error`].
pub(crate) fn client(
    timeout: std::time::Duration,
    headers: reqwest::header::HeaderMap,
) -> Result<reqwest::Client, ProviderError> {
    reqwest::Client::builder()
        .default_headers(headers)
        .redirect(reqwest::redirect::Policy::none())
        .connect_timeout(timeout)
        .user_agent(concat!("zentralink/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| ProviderError::Io(format!("cannot build the HTTP client: {e}")))
}

/// A header carrying a credential, marked sensitive so it is never printed.
/// `what` names the credential in the error (never its value).
pub(crate) fn secret_header(
    value: &str,
    what: &str,
) -> Result<reqwest::header::HeaderValue, ProviderError> {
    let mut header = reqwest::header::HeaderValue::from_str(value).map_err(|_| {
        ProviderError::Authentication(format!(
            "{what} holds characters an HTTP header cannot carry (control characters or non-ASCII); copy it again"
        ))
    })?;
    header.set_sensitive(true);
    Ok(header)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::panic)]

    use super::*;

    #[test]
    fn a_servers_text_is_folded_and_shortened() {
        assert_eq!(shorten("  zone\n\tnot   found "), "zone not found");
        let long = "é".repeat(MAX_QUOTED_CHARS + 50);
        let short = shorten(&long);
        assert_eq!(short.chars().count(), MAX_QUOTED_CHARS + 1);
        assert!(short.ends_with('…'), "{short}");
        let exact = "x".repeat(MAX_QUOTED_CHARS);
        assert_eq!(shorten(&exact), exact);
        // A huge text is not folded whole before it is cut.
        let huge = "word ".repeat(1_000_000);
        assert_eq!(shorten(&huge).chars().count(), MAX_QUOTED_CHARS + 1);
    }

    #[test]
    fn sizes_read_as_people_say_them() {
        assert_eq!(byte_count(MAX_RESPONSE_BYTES), "256 MiB");
        assert_eq!(byte_count(65_536), "65536 bytes");
        assert_eq!(byte_count(3 * 1024 * 1024 + 1), "3145729 bytes");
    }

    #[test]
    fn a_write_whose_answer_is_too_large_may_have_been_applied() {
        let too_large = || BodyError::TooLarge {
            limit: MAX_RESPONSE_BYTES,
            declared: None,
        };
        let ok = reqwest::StatusCode::OK;
        match too_large().into_attempt("change zone z.", "PowerDNS", ok, Idempotency::Write) {
            AttemptError::Permanent(ProviderError::Uncertain(m)) => {
                assert!(m.contains("re-read the zone"), "{m}");
                assert!(m.contains("256 MiB"), "{m}");
            }
            other => panic!("{other:?}"),
        }
        match too_large().into_attempt("read zone z.", "PowerDNS", ok, Idempotency::Idempotent) {
            AttemptError::Permanent(ProviderError::InvalidAnswer(m)) => {
                assert!(m.contains("larger than the 256 MiB"), "{m}");
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn page_numbers_are_whole_numbers() {
        let n = |text: &str| serde_json::from_str::<serde_json::Number>(text).ok();
        assert_eq!(n("3").as_ref().and_then(page_number), Some(3));
        assert_eq!(n("3.0").as_ref().and_then(page_number), Some(3));
        assert_eq!(n("2.5").as_ref().and_then(page_number), None);
        assert_eq!(n("-1").as_ref().and_then(page_number), None);
        assert_eq!(n("1e30").as_ref().and_then(page_number), Some(u32::MAX));
    }
}
