//! Helpers shared by the HTTP API providers (PowerDNS, Hetzner, Cloudflare):
//! the client, credential headers, transport errors, status classification,
//! base URLs, URL path segments. Does no I/O itself.

use super::ProviderError;
use super::resilience::AttemptError;

/// A request that never got an HTTP answer.
pub(crate) fn transport_error(what: &str, e: &reqwest::Error) -> AttemptError {
    let detail = error_chain(e);
    let message = if e.is_connect() {
        // The request was not sent; the resilience layer keys on "refused".
        format!("{what}: connection refused or failed before the request was sent: {detail}")
    } else if e.is_timeout() {
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
/// and headers sent with every request.
pub(crate) fn client(
    timeout: std::time::Duration,
    headers: reqwest::header::HeaderMap,
) -> Result<reqwest::Client, ProviderError> {
    reqwest::Client::builder()
        .default_headers(headers)
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
