//! The layer around every route: a request id, refusal of cross-origin
//! requests that change state, a timeout, error pages that show only the
//! request id (the cause goes to the log), and the security headers (CSP
//! without inline script, frame-ancestors 'none', nosniff, Referrer-Policy,
//! HSTS when served over TLS). No I/O besides logging.

use std::time::Duration;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::header::{
    CACHE_CONTROL, CONTENT_SECURITY_POLICY, CONTENT_TYPE, HOST, ORIGIN, REFERRER_POLICY,
    STRICT_TRANSPORT_SECURITY, X_CONTENT_TYPE_OPTIONS, X_FRAME_OPTIONS,
};
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{Html, IntoResponse, Response};
use minijinja::context;

use crate::AppState;
use crate::error::{ErrorCause, Rendered, WebError};

/// The Content-Security-Policy of every response: only this origin's
/// resources, images also as `data:` (the TOTP QR code), no inline script,
/// no framing, forms only to this origin.
pub const CSP: &str = "default-src 'self'; img-src 'self' data:; script-src 'self'; style-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

/// How long a request may take before it is answered with 503: the time
/// until the response's head. A body that streams on after it, such as a
/// ticket's `text/event-stream`, is not cut (the tickets tests hold a
/// stream open past this timeout).
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// How long a cron job (`POST /api/cron/<job>`) may run before its caller
/// is answered 503: a mail flush through a slow SMTP server or a large
/// snapshot retention takes longer than a page may.
pub const CRON_TIMEOUT: Duration = Duration::from_secs(600);

/// The request id, for handlers that log.
#[derive(Debug, Clone)]
pub struct RequestId(pub String);

pub static X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// Whether a state-changing request comes from this service's own pages:
/// its `Origin` names the host it was sent to, or (without `Origin`) the
/// browser says it is same-origin. Clients that send neither (not browsers)
/// still need the form's CSRF token.
pub fn same_origin(headers: &HeaderMap) -> bool {
    let host = headers.get(HOST).and_then(|h| h.to_str().ok());
    if let Some(origin) = headers.get(ORIGIN) {
        let Ok(origin) = origin.to_str() else {
            return false;
        };
        let authority = origin
            .strip_prefix("https://")
            .or_else(|| origin.strip_prefix("http://"));
        return match (authority, host) {
            (Some(a), Some(h)) => a.eq_ignore_ascii_case(h),
            _ => false,
        };
    }
    match headers.get("sec-fetch-site").and_then(|v| v.to_str().ok()) {
        Some(site) => matches!(site, "same-origin" | "none"),
        None => true,
    }
}

pub async fn harden(State(state): State<AppState>, mut request: Request, next: Next) -> Response {
    let request_id = uuid::Uuid::new_v4().simple().to_string();
    request
        .extensions_mut()
        .insert(RequestId(request_id.clone()));
    let method = request.method().clone();
    let path = request.uri().path().to_owned();
    let safe = matches!(method, Method::GET | Method::HEAD | Method::OPTIONS);

    let mut response = if !safe && !same_origin(request.headers()) {
        WebError::CrossOrigin.into_response()
    } else {
        let limit = if request.uri().path().starts_with("/api/cron/") {
            CRON_TIMEOUT
        } else {
            REQUEST_TIMEOUT
        };
        match tokio::time::timeout(limit, next.run(request)).await {
            Ok(r) => r,
            Err(_) => {
                let mut r = StatusCode::SERVICE_UNAVAILABLE.into_response();
                r.extensions_mut()
                    .insert(ErrorCause("the request took too long".into()));
                r
            }
        }
    };

    let status = response.status();
    if (status.is_client_error() || status.is_server_error())
        && response.extensions().get::<Rendered>().is_none()
    {
        let cause = response
            .extensions()
            .get::<ErrorCause>()
            .map(|c| c.0.clone())
            .unwrap_or_else(|| format!("{status} from the framework (a malformed request)"));
        if status.is_server_error() {
            tracing::error!(request_id = %request_id, %method, %path, %status, cause = %cause, "request failed");
        } else {
            tracing::info!(request_id = %request_id, %method, %path, %status, cause = %cause, "request refused");
        }
        let retry_after = response
            .headers()
            .get(axum::http::header::RETRY_AFTER)
            .cloned();
        response = error_page(&state, status, &request_id);
        if let Some(v) = retry_after {
            response
                .headers_mut()
                .insert(axum::http::header::RETRY_AFTER, v);
        }
    }
    add_security_headers(response.headers_mut(), state.config().hsts);
    if let Ok(v) = HeaderValue::from_str(&request_id) {
        response.headers_mut().insert(X_REQUEST_ID.clone(), v);
    }
    response
}

/// A page that says what kind of error it was and the request id, nothing else.
fn error_page(state: &AppState, status: StatusCode, request_id: &str) -> Response {
    let title = match status {
        StatusCode::NOT_FOUND => "Not found",
        StatusCode::FORBIDDEN => "Refused",
        StatusCode::PAYLOAD_TOO_LARGE => "Request too large",
        StatusCode::TOO_MANY_REQUESTS => "Too many requests",
        StatusCode::SERVICE_UNAVAILABLE => "Temporarily unavailable",
        s if s.is_client_error() => "Bad request",
        _ => "Something went wrong",
    };
    let body = state.templates().render(
        "error.html",
        context! { status => status.as_u16(), title => title, request_id => request_id },
    );
    let mut response = match body {
        Ok(html) => (status, Html(html)).into_response(),
        Err(e) => {
            tracing::error!(request_id = %request_id, error = %e, "the error page could not be rendered");
            let mut r = Response::new(Body::from(format!("{title}. Request id: {request_id}")));
            *r.status_mut() = status;
            r.headers_mut().insert(
                CONTENT_TYPE,
                HeaderValue::from_static("text/plain; charset=utf-8"),
            );
            r
        }
    };
    response.extensions_mut().insert(Rendered);
    response
}

/// The headers every response carries.
pub fn add_security_headers(headers: &mut HeaderMap, hsts: bool) {
    headers.insert(CONTENT_SECURITY_POLICY, HeaderValue::from_static(CSP));
    headers.insert(X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    headers.insert(X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(REFERRER_POLICY, HeaderValue::from_static("same-origin"));
    headers.insert(
        HeaderName::from_static("cross-origin-opener-policy"),
        HeaderValue::from_static("same-origin"),
    );
    if !headers.contains_key(CACHE_CONTROL) {
        headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    if hsts {
        headers.insert(
            STRICT_TRANSPORT_SECURITY,
            HeaderValue::from_static("max-age=63072000; includeSubDomains"),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, HeaderValue::from_static(v));
        }
        h
    }

    #[test]
    fn origins_are_compared_with_the_host() {
        assert!(same_origin(&headers(&[
            ("host", "127.0.0.1:8080"),
            ("origin", "http://127.0.0.1:8080")
        ])));
        assert!(!same_origin(&headers(&[
            ("host", "127.0.0.1:8080"),
            ("origin", "http://evil.example")
        ])));
        assert!(!same_origin(&headers(&[
            ("host", "a.example"),
            ("origin", "null")
        ])));
        assert!(!same_origin(&headers(&[
            ("host", "a.example"),
            ("sec-fetch-site", "cross-site")
        ])));
        assert!(same_origin(&headers(&[
            ("host", "a.example"),
            ("sec-fetch-site", "same-origin")
        ])));
    }
}
