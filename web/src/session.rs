//! Sessions: opaque random tokens (32 bytes) in a cookie, only their SHA-256
//! kept server-side; 14-day lifetime; a fresh token at every sign-in and
//! privilege change; the per-session CSRF token derived from the session
//! token and compared in constant time. Cookies are built with the `cookie`
//! crate, never by hand. Reads the store; no other I/O.

use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::HeaderMap;
use axum::http::header::{COOKIE, USER_AGENT};
use axum::http::request::Parts;
use axum::response::IntoResponse;
use axum::{Form, extract::ConnectInfo};
use chrono::{DateTime, Duration, Utc};
use cookie::{Cookie, SameSite};
use data_encoding::BASE64URL_NOPAD;
use serde::de::DeserializeOwned;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use zentralink_store::sessions::{NewSession, SessionRecord};
use zentralink_store::{TenantId, UserId};

use crate::AppState;
use crate::error::WebError;

/// How long a signed-in session lives.
pub const SESSION_TTL: Duration = Duration::days(14);
/// How long a half-signed-in session (password given, code not yet) lives.
pub const PENDING_TTL: Duration = Duration::minutes(10);

/// The session cookie's name: `__Host-` prefixed when `Secure`, which
/// browsers only accept from HTTPS, for the whole host, path `/`.
pub fn cookie_name(secure: bool) -> &'static str {
    if secure {
        "__Host-zl_session"
    } else {
        "zl_session"
    }
}

/// The name of the cookie carrying the sign-in form's CSRF token.
pub fn login_cookie_name(secure: bool) -> &'static str {
    if secure {
        "__Host-zl_login"
    } else {
        "zl_login"
    }
}

/// 32 random bytes, base64url.
pub fn new_token() -> Result<String, WebError> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(|e| WebError::Random(e.to_string()))?;
    Ok(BASE64URL_NOPAD.encode(&bytes))
}

/// What the server keeps of a token.
pub fn token_sha256(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

/// The CSRF token of a session: derived from its secret token, so it needs
/// no storage and is useless without the session.
pub fn csrf_token(session_token: &str) -> String {
    let mut h = Sha256::new();
    h.update(b"zentralink csrf v1\0");
    h.update(session_token.as_bytes());
    BASE64URL_NOPAD.encode(&h.finalize())
}

/// Constant-time equality of two tokens.
pub fn tokens_match(expected: &str, given: &str) -> bool {
    expected.as_bytes().ct_eq(given.as_bytes()).into()
}

/// A cookie with the service's attributes: HttpOnly, SameSite=Lax, Path=/,
/// Secure unless switched off.
pub fn build_cookie(name: &'static str, value: String, secure: bool, max_age: Duration) -> String {
    Cookie::build((name, value))
        .http_only(true)
        .secure(secure)
        .same_site(SameSite::Lax)
        .path("/")
        .max_age(cookie::time::Duration::seconds(max_age.num_seconds()))
        .build()
        .to_string()
}

/// A cookie that deletes the named one.
pub fn removal_cookie(name: &'static str, secure: bool) -> String {
    build_cookie(name, String::new(), secure, Duration::zero())
}

/// The value of a named cookie in the request.
pub fn request_cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(Cookie::split_parse)
        .filter_map(Result::ok)
        .find(|c| c.name() == name)
        .map(|c| c.value().to_owned())
}

/// Who is asking: the peer's address and user agent (for audit and
/// fingerprints; never trusted for anything else).
#[derive(Debug, Clone, Default)]
pub struct Client {
    pub ip: Option<String>,
    pub user_agent: Option<String>,
}

impl Client {
    pub fn from_parts(parts: &Parts) -> Self {
        let ip = parts
            .extensions
            .get::<ConnectInfo<std::net::SocketAddr>>()
            .map(|c| c.0.ip().to_string());
        let user_agent = parts
            .headers
            .get(USER_AGENT)
            .and_then(|v| v.to_str().ok())
            .map(|s| s.chars().take(256).collect());
        Self { ip, user_agent }
    }

    /// SHA-256 of IP and user agent: the only form a login fingerprint is kept in.
    pub fn fingerprint(&self) -> [u8; 32] {
        let mut h = Sha256::new();
        h.update(self.ip.as_deref().unwrap_or("").as_bytes());
        h.update(b"\0");
        h.update(self.user_agent.as_deref().unwrap_or("").as_bytes());
        h.finalize().into()
    }
}

impl FromRequestParts<AppState> for Client {
    type Rejection = std::convert::Infallible;
    async fn from_request_parts(parts: &mut Parts, _: &AppState) -> Result<Self, Self::Rejection> {
        Ok(Client::from_parts(parts))
    }
}

/// A session found from the request's cookie, signed in or half.
#[derive(Debug, Clone)]
pub struct AnySession {
    pub record: SessionRecord,
    pub csrf: String,
}

impl AnySession {
    /// Whether the user still owes the second factor.
    pub fn pending(&self) -> bool {
        self.record.totp_enrolled && !self.record.second_factor
    }

    pub fn user(&self) -> UserId {
        self.record.user_id
    }

    pub fn check_csrf(&self, given: &str) -> Result<(), WebError> {
        if tokens_match(&self.csrf, given) {
            Ok(())
        } else {
            Err(WebError::Csrf)
        }
    }
}

/// The session of the request, if any.
pub async fn find_session(
    headers: &HeaderMap,
    state: &AppState,
) -> Result<Option<AnySession>, WebError> {
    let Some(token) = request_cookie(headers, cookie_name(state.config().secure_cookies)) else {
        return Ok(None);
    };
    let record = state
        .store()
        .session_by_token(&token_sha256(&token), state.now())
        .await?;
    Ok(record.map(|record| AnySession {
        record,
        csrf: csrf_token(&token),
    }))
}

/// The session a layer already looked up for this request (the 2FA
/// requirement's), so the handler's extractor does not read it again.
#[derive(Debug, Clone)]
pub struct FoundSession(pub Option<AnySession>);

/// The request's session: the one a layer found for it, or read now.
async fn request_session(parts: &Parts, state: &AppState) -> Result<Option<AnySession>, WebError> {
    match parts.extensions.get::<FoundSession>() {
        Some(FoundSession(found)) => Ok(found.clone()),
        None => find_session(&parts.headers, state).await,
    }
}

/// A signed-in session (second factor given when the user has one).
#[derive(Debug, Clone)]
pub struct Signed(pub AnySession);

impl Signed {
    pub fn user(&self) -> UserId {
        self.0.record.user_id
    }
    pub fn tenant(&self) -> Option<TenantId> {
        self.0.record.tenant_id
    }
}

impl FromRequestParts<AppState> for Signed {
    type Rejection = WebError;
    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, WebError> {
        match request_session(parts, state).await? {
            None => Err(WebError::LoginRequired),
            Some(s) if s.pending() => Err(WebError::SecondFactorRequired),
            Some(s) => Ok(Signed(s)),
        }
    }
}

/// A half-signed-in session: the password was right, the code is owed.
#[derive(Debug, Clone)]
pub struct Pending(pub AnySession);

impl FromRequestParts<AppState> for Pending {
    type Rejection = WebError;
    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, WebError> {
        match request_session(parts, state).await? {
            Some(s) if s.pending() => Ok(Pending(s)),
            // Signed in already, or not at all: start from the sign-in page.
            _ => Err(WebError::LoginRequired),
        }
    }
}

/// The session a form post belongs to.
pub trait HasSession {
    fn session(&self) -> &AnySession;
}
impl HasSession for Signed {
    fn session(&self) -> &AnySession {
        &self.0
    }
}
impl HasSession for Pending {
    fn session(&self) -> &AnySession {
        &self.0
    }
}

/// A form carrying the session's CSRF token.
pub trait CsrfForm {
    fn csrf(&self) -> &str;
}

/// A form post whose CSRF token has been checked against the session
/// (and whose session is of kind `S`), with the client who sent it.
#[derive(Debug)]
pub struct Posted<S, T> {
    pub session: S,
    pub form: T,
    pub client: Client,
}

impl<S, T> FromRequest<AppState> for Posted<S, T>
where
    S: FromRequestParts<AppState, Rejection = WebError> + HasSession + Send,
    T: DeserializeOwned + CsrfForm + Send,
{
    type Rejection = axum::response::Response;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, Self::Rejection> {
        let (mut parts, body) = req.into_parts();
        let session = S::from_request_parts(&mut parts, state)
            .await
            .map_err(IntoResponse::into_response)?;
        let client = Client::from_parts(&parts);
        let Form(form) = Form::<T>::from_request(Request::from_parts(parts, body), state)
            .await
            .map_err(IntoResponse::into_response)?;
        session
            .session()
            .check_csrf(form.csrf())
            .map_err(IntoResponse::into_response)?;
        Ok(Posted {
            session,
            form,
            client,
        })
    }
}

/// A session just started: its `Set-Cookie` value and its CSRF token.
#[derive(Debug)]
pub struct Started {
    pub set_cookie: String,
    pub csrf: String,
}

/// A new session for a user, with a fresh token.
pub async fn start_session(
    state: &AppState,
    user: UserId,
    tenant: Option<TenantId>,
    second_factor: bool,
    ttl: Duration,
) -> Result<Started, WebError> {
    let token = new_token()?;
    let now: DateTime<Utc> = state.now();
    state
        .store()
        .create_session(&NewSession {
            token_sha256: &token_sha256(&token),
            user,
            tenant,
            second_factor,
            now,
            expires_at: now + ttl,
        })
        .await?;
    let secure = state.config().secure_cookies;
    Ok(Started {
        csrf: csrf_token(&token),
        set_cookie: build_cookie(cookie_name(secure), token, secure, ttl),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_session_cookie_has_every_attribute() {
        let c = build_cookie(cookie_name(true), "abc".into(), true, SESSION_TTL);
        for part in [
            "__Host-zl_session=abc",
            "HttpOnly",
            "SameSite=Lax",
            "Secure",
            "Path=/",
            "Max-Age=1209600",
        ] {
            assert!(c.contains(part), "{part} missing from {c}");
        }
        let c = build_cookie(cookie_name(false), "abc".into(), false, SESSION_TTL);
        assert!(!c.contains("Secure") && !c.contains("__Host-"), "{c}");
    }

    #[test]
    fn csrf_tokens_differ_per_session_and_compare_exactly() {
        let a = csrf_token("one");
        assert_ne!(a, csrf_token("two"));
        assert!(tokens_match(&a, &a.clone()));
        assert!(!tokens_match(&a, &a[1..]));
        assert!(!tokens_match(&a, ""));
    }

    #[test]
    fn tokens_are_32_random_bytes() {
        let t = new_token().unwrap();
        assert_eq!(BASE64URL_NOPAD.decode(t.as_bytes()).unwrap().len(), 32);
        assert_ne!(t, new_token().unwrap());
    }
}
