//! A test harness for the web service: the real router over a fresh
//! PostgreSQL database (`#[sqlx::test]`), a clock moved by hand, and a
//! small browser that keeps cookies and sends forms through `oneshot`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, dead_code)]

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::header::{CONTENT_TYPE, COOKIE, HOST, LOCATION, ORIGIN, SET_COOKIE, USER_AGENT};
use axum::http::{HeaderMap, Request, StatusCode};
use chrono::{DateTime, Duration, Utc};
use sqlx::PgPool;
use tower::ServiceExt;
use zentralink_model::secrets::{EncryptionKey, Keyring, SecretString};
use zentralink_store::{Store, TenantId, UserId};
use zentralink_web::{AppState, Clock, WebConfig, app};

pub const HOST_NAME: &str = "zl.test";
pub const PASSWORD: &str = "correct horse battery staple";
pub const USER_AGENT_TEXT: &str = "TestBrowser/1.0";

#[derive(Debug)]
pub struct ManualClock(Mutex<DateTime<Utc>>);

impl ManualClock {
    pub fn advance(&self, by: Duration) {
        *self.0.lock().unwrap() += by;
    }
}

impl Clock for ManualClock {
    fn now(&self) -> DateTime<Utc> {
        *self.0.lock().unwrap()
    }
}

pub struct Harness {
    pub app: Router,
    pub store: Store,
    pub clock: Arc<ManualClock>,
    pub config: WebConfig,
}

pub fn keyring() -> Keyring {
    Keyring::new(EncryptionKey::from_bytes([7; 32]), None)
}

pub fn harness(pool: PgPool) -> Harness {
    harness_with(pool, WebConfig::default())
}

pub fn harness_with(pool: PgPool, config: WebConfig) -> Harness {
    let store = Store::from_pool(pool, keyring());
    // Ten seconds into a TOTP step, so the next step is within the skew.
    // 1_800_000_000 is a multiple of 30.
    let start = DateTime::from_timestamp(1_800_000_010, 0).unwrap();
    let clock = Arc::new(ManualClock(Mutex::new(start)));
    let state = AppState::with_clock(store.clone(), config.clone(), clock.clone()).unwrap();
    Harness {
        app: app(state),
        store,
        clock,
        config,
    }
}

impl Harness {
    pub fn browser(&self) -> Browser {
        self.browser_from("192.0.2.10")
    }

    pub fn browser_from(&self, ip: &str) -> Browser {
        Browser {
            app: self.app.clone(),
            cookies: BTreeMap::new(),
            ip: format!("{ip}:40000").parse().unwrap(),
            origin: format!("https://{HOST_NAME}"),
            seen: Vec::new(),
        }
    }

    /// A tenant with an owner whose password is [`PASSWORD`].
    pub async fn owner(&self, tenant: &str, email: &str) -> (TenantId, UserId) {
        let user = zentralink_web::auth::create_owner(
            &self.store,
            email,
            tenant,
            &SecretString::new(PASSWORD),
        )
        .await
        .unwrap();
        (self.store.tenant_by_slug(tenant).await.unwrap().id, user)
    }

    /// Every audit event as JSON text.
    pub async fn audit_rows(&self) -> Vec<String> {
        sqlx::query_scalar("SELECT row_to_json(a)::text FROM audit_events a ORDER BY id")
            .fetch_all(self.store.pool())
            .await
            .unwrap()
    }

    pub async fn audit_actions(&self) -> Vec<String> {
        sqlx::query_scalar("SELECT action FROM audit_events ORDER BY id")
            .fetch_all(self.store.pool())
            .await
            .unwrap()
    }
}

#[derive(Debug, Clone)]
pub struct Resp {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: String,
}

impl Resp {
    pub fn location(&self) -> Option<&str> {
        self.headers.get(LOCATION).and_then(|v| v.to_str().ok())
    }

    pub fn set_cookies(&self) -> Vec<String> {
        self.headers
            .get_all(SET_COOKIE)
            .iter()
            .map(|v| v.to_str().unwrap().to_owned())
            .collect()
    }

    pub fn header(&self, name: &str) -> Option<String> {
        self.headers
            .get(name)
            .map(|v| v.to_str().unwrap().to_owned())
    }

    /// The value of the page's hidden `csrf` field.
    pub fn csrf(&self) -> String {
        field_value(&self.body, "csrf").unwrap_or_else(|| panic!("no csrf field in {}", self.body))
    }
}

pub fn field_value(html: &str, name: &str) -> Option<String> {
    let marker = format!("name=\"{name}\" value=\"");
    let start = html.find(&marker)? + marker.len();
    let end = html[start..].find('"')? + start;
    Some(html[start..end].to_owned())
}

fn encode(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

pub struct Browser {
    pub app: Router,
    pub cookies: BTreeMap<String, String>,
    pub ip: SocketAddr,
    pub origin: String,
    /// Every response this browser received.
    pub seen: Vec<Resp>,
}

impl Browser {
    pub async fn send(&mut self, mut request: Request<Body>) -> Resp {
        let headers = request.headers_mut();
        headers.insert(HOST, HOST_NAME.parse().unwrap());
        headers.insert(USER_AGENT, USER_AGENT_TEXT.parse().unwrap());
        if !self.cookies.is_empty() {
            let jar: Vec<String> = self
                .cookies
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect();
            headers.insert(COOKIE, jar.join("; ").parse().unwrap());
        }
        request.extensions_mut().insert(ConnectInfo(self.ip));
        let response = self.app.clone().oneshot(request).await.unwrap();
        let status = response.status();
        let headers = response.headers().clone();
        let event_stream = headers
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("text/event-stream"));
        let bytes = if event_stream {
            // A live stream never ends: what it sends at once (the replay).
            use futures_util::StreamExt;
            let mut stream = response.into_body().into_data_stream();
            let mut read = Vec::new();
            while let Ok(Some(Ok(chunk))) =
                tokio::time::timeout(std::time::Duration::from_millis(300), stream.next()).await
            {
                read.extend_from_slice(&chunk);
            }
            axum::body::Bytes::from(read)
        } else {
            axum::body::to_bytes(response.into_body(), usize::MAX)
                .await
                .unwrap()
        };
        let resp = Resp {
            status,
            headers,
            body: String::from_utf8_lossy(&bytes).into_owned(),
        };
        for set in resp.set_cookies() {
            let c = cookie::Cookie::parse(set).unwrap();
            let gone =
                c.value().is_empty() || c.max_age().is_some_and(|a| a.is_zero() || a.is_negative());
            if gone {
                self.cookies.remove(c.name());
            } else {
                self.cookies
                    .insert(c.name().to_owned(), c.value().to_owned());
            }
        }
        self.seen.push(resp.clone());
        resp
    }

    pub async fn get(&mut self, path: &str) -> Resp {
        self.send(Request::get(path).body(Body::empty()).unwrap())
            .await
    }

    pub async fn post(&mut self, path: &str, form: &[(&str, &str)]) -> Resp {
        let body: Vec<String> = form
            .iter()
            .map(|(k, v)| format!("{}={}", encode(k), encode(v)))
            .collect();
        let request = Request::post(path)
            .header(ORIGIN, self.origin.clone())
            .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(Body::from(body.join("&")))
            .unwrap();
        self.send(request).await
    }

    /// Opens the sign-in page and submits it.
    pub async fn login(&mut self, email: &str, password: &str) -> Resp {
        let page = self.get("/login").await;
        assert_eq!(page.status, StatusCode::OK);
        let csrf = page.csrf();
        self.post(
            "/login",
            &[("email", email), ("password", password), ("csrf", &csrf)],
        )
        .await
    }

    /// The CSRF token of the signed-in session, read from a page.
    pub async fn session_csrf(&mut self) -> String {
        let page = self.get("/account/2fa").await;
        assert_eq!(page.status, StatusCode::OK, "{}", page.body);
        page.csrf()
    }

    pub fn session_cookie(&self) -> Option<String> {
        self.cookies
            .iter()
            .find(|(k, _)| k.ends_with("zl_session"))
            .map(|(_, v)| v.clone())
    }
}

/// The base32 secret in the page's otpauth URL.
pub fn otpauth_secret(html: &str) -> String {
    let start = html.find("secret=").expect("no otpauth secret on the page") + "secret=".len();
    html[start..]
        .chars()
        .take_while(char::is_ascii_alphanumeric)
        .collect()
}

/// The backup codes listed on the page.
pub fn backup_codes(html: &str) -> Vec<String> {
    html.split("<li><code>")
        .skip(1)
        .map(|s| s.split("</code>").next().unwrap().to_owned())
        .collect()
}

/// Turns 2FA on for the signed-in browser; returns the secret and the backup codes.
pub async fn enrol(h: &Harness, b: &mut Browser) -> (SecretString, Vec<String>) {
    let csrf = b.session_csrf().await;
    let page = b.post("/account/2fa/enrol", &[("csrf", &csrf)]).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    assert!(
        page.body.contains("data:image/png;base64,"),
        "no QR code: {}",
        page.body
    );
    assert!(page.body.contains("otpauth:"), "no otpauth URL");
    let secret = SecretString::new(otpauth_secret(&page.body));
    let step = zentralink_web::totp::step_of(h.clock.now());
    let code = zentralink_web::totp::code_at(&secret, step).unwrap();
    let done = b
        .post(
            "/account/2fa/confirm",
            &[("code", &code), ("csrf", &page.csrf())],
        )
        .await;
    assert_eq!(done.status, StatusCode::OK, "{}", done.body);
    let codes = backup_codes(&done.body);
    assert_eq!(codes.len(), 10, "{}", done.body);
    (secret, codes)
}
