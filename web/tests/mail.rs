//! E-mail against a real PostgreSQL (a fresh database per test) and the
//! real SMTP sink on loopback (scripts/smtp-sink.sh; the tests read the
//! messages it wrote back): queue, flush, SENT with the stored password
//! really used for AUTH; a refusing server and a wrong password FAILED with
//! the server's answer; a deferral retried later with backoff; concurrent
//! flushes sending each message once; no SMTP server and nothing pretends;
//! the password write-only (never in a page or an audit row); the template
//! editor with its preview, its line-numbered errors and its audit events;
//! who may open which mail page.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::path::PathBuf;
use std::sync::Arc;

use axum::http::StatusCode;
use chrono::Duration;
use common::*;
use sqlx::PgPool;
use zentralink_model::secrets::SecretString;
use zentralink_store::settings::SmtpSettings;
use zentralink_store::{MIGRATOR, Store, TenantId, UserId};
use zentralink_web::mail::{self, NO_SMTP};
use zentralink_web::password::PasswordHasher;
use zentralink_web::totp::{code_at, step_of};
use zentralink_web::{AppState, Clock};

/// The SMTP sink the test command starts.
struct Sink {
    host: String,
    port: u16,
    maildir: PathBuf,
    user: String,
    password: String,
}

fn sink() -> Sink {
    let mut vars: std::collections::BTreeMap<String, String> = std::env::vars()
        .filter(|(k, _)| k.starts_with("ZL_SMTP_"))
        .collect();
    if !vars.contains_key("ZL_SMTP_PORT") {
        let file =
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../.zentralink/servers/smtp.env");
        let text = std::fs::read_to_string(&file).unwrap_or_else(|_| {
            panic!(
                "the SMTP sink is not running: start it with scripts/smtp-sink.sh start (no {})",
                file.display()
            )
        });
        for word in text.split_whitespace().filter(|w| *w != "export") {
            if let Some((k, v)) = word.split_once('=') {
                vars.insert(k.to_owned(), v.to_owned());
            }
        }
    }
    let get = |k: &str| {
        vars.get(k).cloned().unwrap_or_else(|| {
            panic!("{k} is not set: start the sink with scripts/smtp-sink.sh start")
        })
    };
    let s = Sink {
        host: get("ZL_SMTP_HOST"),
        port: get("ZL_SMTP_PORT").parse().unwrap(),
        maildir: PathBuf::from(get("ZL_SMTP_MAILDIR")),
        user: get("ZL_SMTP_USER"),
        password: get("ZL_SMTP_PASSWORD"),
    };
    assert!(
        std::net::TcpStream::connect((s.host.as_str(), s.port)).is_ok(),
        "the SMTP sink does not answer on {}:{}: start it with scripts/smtp-sink.sh start",
        s.host,
        s.port
    );
    s
}

/// A message the sink received: its envelope and its text.
#[derive(Debug)]
struct Received {
    envelope: serde_json::Value,
    text: String,
}

impl Sink {
    /// Every message the sink accepted for `address`.
    fn messages_to(&self, address: &str) -> Vec<Received> {
        let mut found = Vec::new();
        for entry in std::fs::read_dir(&self.maildir).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().and_then(|e| e.to_str()) != Some("json") {
                continue;
            }
            let envelope: serde_json::Value =
                serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
            let to_us = envelope["rcpt_tos"]
                .as_array()
                .unwrap()
                .iter()
                .any(|r| r.as_str() == Some(address));
            if to_us {
                let text = std::fs::read_to_string(path.with_extension("eml")).unwrap();
                found.push(Received { envelope, text });
            }
        }
        found
    }

    fn settings(&self, password: &str) -> SmtpSettings {
        SmtpSettings {
            host: self.host.clone(),
            port: self.port,
            username: Some(self.user.clone()),
            password: Some(SecretString::new(password)),
            from_address: "ZentraLink <dns@zentralink.test>".into(),
            tls: "none".into(),
        }
    }
}

/// A recipient address no other test (or run) uses.
fn unique(local: &str) -> String {
    format!("{local}@{}.example", uuid::Uuid::new_v4().simple())
}

fn state(h: &Harness) -> AppState {
    let clock: Arc<dyn Clock> = h.clock.clone();
    AppState::with_clock(h.store.clone(), h.config.clone(), clock).unwrap()
}

async fn member(h: &Harness, tenant: TenantId, email: &str, role: &str) -> UserId {
    let hash = PasswordHasher::new(1)
        .unwrap()
        .hash(&SecretString::new(PASSWORD))
        .await
        .unwrap();
    let user = h.store.create_user(email, email, &hash).await.unwrap();
    h.store.set_membership(tenant, user, role).await.unwrap();
    user
}

async fn signed_in(h: &Harness, email: &str) -> Browser {
    let mut b = h.browser();
    let r = b.login(email, PASSWORD).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    b
}

/// One of the platform's staff, signed in with a second factor.
async fn staff(h: &Harness) -> Browser {
    h.owner("platform", "sam@zentralink.test").await;
    h.store
        .set_platform_admin("sam@zentralink.test", true)
        .await
        .unwrap();
    let mut b = signed_in(h, "sam@zentralink.test").await;
    let (secret, _) = enrol(h, &mut b).await;
    h.clock.advance(Duration::seconds(30));
    let mut b = h.browser();
    let r = b.login("sam@zentralink.test", PASSWORD).await;
    assert_eq!(r.location(), Some("/login/2fa"), "{}", r.body);
    let csrf = b.get("/login/2fa").await.csrf();
    let code = code_at(&secret, step_of(h.clock.now())).unwrap();
    let r = b
        .post("/login/2fa", &[("code", &code), ("csrf", &csrf)])
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    b
}

#[derive(Debug, sqlx::FromRow)]
struct Row {
    status: String,
    attempts: i32,
    last_error: Option<String>,
    sent_at: Option<chrono::DateTime<chrono::Utc>>,
    next_attempt_at: Option<chrono::DateTime<chrono::Utc>>,
}

async fn row(store: &Store, id: uuid::Uuid) -> Row {
    sqlx::query_as(
        "SELECT status, attempts, last_error, sent_at, next_attempt_at FROM mail_messages WHERE id = $1",
    )
    .bind(id)
    .fetch_one(store.pool())
    .await
    .unwrap()
}

#[sqlx::test(migrator = "MIGRATOR")]
async fn a_queued_message_is_sent_with_the_stored_password(pool: PgPool) {
    let sink = sink();
    let h = harness(pool);
    let (acme, _) = h.owner("acme", "ann@acme.example").await;
    h.store
        .set_smtp_settings(None, &sink.settings(&sink.password))
        .await
        .unwrap();
    let to = unique("bob");
    let id = h
        .store
        .queue_mail(
            Some(acme),
            &to,
            "Zone acme.example. failed",
            "Line one\nLine two\n",
        )
        .await
        .unwrap();
    let done = mail::flush_queue(&state(&h)).await.unwrap();
    assert_eq!(done["sent"], 1, "{done}");
    let r = row(&h.store, id).await;
    assert_eq!(r.status, "SENT");
    assert_eq!(r.attempts, 1);
    assert_eq!(r.sent_at, Some(h.clock.now()));
    assert!(r.last_error.is_none());
    let got = sink.messages_to(&to);
    assert_eq!(got.len(), 1);
    assert_eq!(
        got[0].envelope["auth_login"],
        sink.user.as_str(),
        "AUTH used the stored account"
    );
    assert_eq!(got[0].envelope["mail_from"], "dns@zentralink.test");
    assert!(
        got[0].text.contains("Subject: Zone acme.example. failed"),
        "{}",
        got[0].text
    );
    assert!(
        got[0].text.contains(&format!("To: {to}")),
        "{}",
        got[0].text
    );
    assert!(got[0].text.contains("Line one"), "{}", got[0].text);
    // Sent once: the next flush has nothing to do.
    let again = mail::flush_queue(&state(&h)).await.unwrap();
    assert_eq!(again["sent"], 0);
    assert_eq!(sink.messages_to(&to).len(), 1);
}

#[sqlx::test(migrator = "MIGRATOR")]
async fn a_wrong_password_fails_with_the_servers_answer(pool: PgPool) {
    let sink = sink();
    let h = harness(pool);
    h.store
        .set_smtp_settings(None, &sink.settings("not-the-password"))
        .await
        .unwrap();
    let to = unique("bob");
    let id = h.store.queue_mail(None, &to, "s", "b").await.unwrap();
    let done = mail::flush_queue(&state(&h)).await.unwrap();
    assert_eq!(done["failed"], 1, "{done}");
    let r = row(&h.store, id).await;
    assert_eq!(r.status, "FAILED");
    let error = r.last_error.unwrap();
    assert!(error.contains("535"), "{error}");
    assert!(!error.contains("not-the-password"), "{error}");
    assert!(sink.messages_to(&to).is_empty());
}

#[sqlx::test(migrator = "MIGRATOR")]
async fn a_refusing_server_fails_the_message_with_its_answer(pool: PgPool) {
    let sink = sink();
    let h = harness(pool);
    h.store
        .set_smtp_settings(None, &sink.settings(&sink.password))
        .await
        .unwrap();
    let to = unique("fail");
    let id = h.store.queue_mail(None, &to, "s", "b").await.unwrap();
    let done = mail::flush_queue(&state(&h)).await.unwrap();
    assert_eq!(done["failed"], 1, "{done}");
    let r = row(&h.store, id).await;
    assert_eq!(r.status, "FAILED", "a 5xx answer is final");
    assert_eq!(r.attempts, 1);
    let error = r.last_error.unwrap();
    assert!(
        error.contains("550") && error.contains("mailbox unavailable"),
        "{error}"
    );
}

#[sqlx::test(migrator = "MIGRATOR")]
async fn a_deferred_message_is_retried_later_with_backoff(pool: PgPool) {
    let sink = sink();
    let h = harness(pool);
    let s = state(&h);
    h.store
        .set_smtp_settings(None, &sink.settings(&sink.password))
        .await
        .unwrap();
    // The sink defers the first two attempts at this address.
    let to = unique("flaky-2");
    let id = h.store.queue_mail(None, &to, "s", "b").await.unwrap();
    let start = h.clock.now();
    assert_eq!(mail::flush_queue(&s).await.unwrap()["retrying"], 1);
    let r = row(&h.store, id).await;
    assert_eq!((r.status.as_str(), r.attempts), ("QUEUED", 1));
    assert!(r.last_error.as_deref().unwrap().contains("451"), "{r:?}");
    assert_eq!(r.next_attempt_at, Some(start + Duration::minutes(1)));
    // Not due yet: nothing is tried.
    h.clock.advance(Duration::seconds(59));
    assert_eq!(mail::flush_queue(&s).await.unwrap()["retrying"], 0);
    assert_eq!(row(&h.store, id).await.attempts, 1);
    h.clock.advance(Duration::seconds(1));
    assert_eq!(mail::flush_queue(&s).await.unwrap()["retrying"], 1);
    let r = row(&h.store, id).await;
    assert_eq!(r.attempts, 2);
    assert_eq!(
        r.next_attempt_at,
        Some(h.clock.now() + Duration::minutes(2)),
        "the wait doubles"
    );
    h.clock.advance(Duration::minutes(2));
    assert_eq!(mail::flush_queue(&s).await.unwrap()["sent"], 1);
    let r = row(&h.store, id).await;
    assert_eq!((r.status.as_str(), r.attempts), ("SENT", 3));
    assert_eq!(sink.messages_to(&to).len(), 1);
}

#[sqlx::test(migrator = "MIGRATOR")]
async fn a_message_deferred_every_time_fails_after_the_last_attempt(pool: PgPool) {
    let sink = sink();
    let h = harness(pool);
    let s = state(&h);
    h.store
        .set_smtp_settings(None, &sink.settings(&sink.password))
        .await
        .unwrap();
    let id = h
        .store
        .queue_mail(None, &unique("tempfail"), "s", "b")
        .await
        .unwrap();
    for _ in 0..mail::send::MAX_ATTEMPTS {
        mail::flush_queue(&s).await.unwrap();
        h.clock.advance(Duration::hours(2));
    }
    let r = row(&h.store, id).await;
    assert_eq!(r.status, "FAILED");
    assert_eq!(r.attempts, mail::send::MAX_ATTEMPTS);
    let error = r.last_error.unwrap();
    assert!(
        error.contains("451") && error.contains("gave up"),
        "{error}"
    );
    assert!(r.next_attempt_at.is_none());
}

#[sqlx::test(migrator = "MIGRATOR")]
async fn concurrent_flushes_send_each_message_once(pool: PgPool) {
    let sink = sink();
    let h = harness(pool);
    h.store
        .set_smtp_settings(None, &sink.settings(&sink.password))
        .await
        .unwrap();
    let domain = uuid::Uuid::new_v4().simple().to_string();
    let addresses: Vec<String> = (0..12).map(|i| format!("r{i}@{domain}.example")).collect();
    for a in &addresses {
        h.store.queue_mail(None, a, "s", "b").await.unwrap();
    }
    let s = state(&h);
    let runs: Vec<_> = (0..4)
        .map(|_| {
            let s = s.clone();
            tokio::spawn(async move { mail::flush_queue(&s).await.unwrap() })
        })
        .collect();
    let mut sent = 0;
    for run in runs {
        sent += run.await.unwrap()["sent"].as_i64().unwrap();
    }
    assert_eq!(sent, 12);
    for a in &addresses {
        assert_eq!(sink.messages_to(a).len(), 1, "{a}");
    }
    let attempts: Vec<i32> = sqlx::query_scalar("SELECT attempts FROM mail_messages")
        .fetch_all(h.store.pool())
        .await
        .unwrap();
    assert!(attempts.iter().all(|a| *a == 1), "{attempts:?}");
}

#[sqlx::test(migrator = "MIGRATOR")]
async fn without_smtp_nothing_pretends_to_be_sent(pool: PgPool) {
    let sink = sink();
    let h = harness(pool);
    let (acme, _) = h.owner("acme", "ann@acme.example").await;
    let to = unique("bob");
    let id = h.store.queue_mail(Some(acme), &to, "s", "b").await.unwrap();
    let done = mail::flush_queue(&state(&h)).await.unwrap();
    assert_eq!(done["not_configured"], 1, "{done}");
    assert_eq!(done["sent"], 0);
    let r = row(&h.store, id).await;
    assert_eq!(r.status, "QUEUED");
    assert_eq!(r.attempts, 0, "no attempt was made");
    assert_eq!(r.last_error.as_deref(), Some(NO_SMTP));
    let mut ann = signed_in(&h, "ann@acme.example").await;
    let page = ann.get("/mail").await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    assert!(page.body.contains(NO_SMTP), "{}", page.body);
    assert!(page.body.contains(&to) && page.body.contains("QUEUED"));
    assert!(ann.get("/notifications").await.body.contains(NO_SMTP));
    assert!(
        ann.get("/notifications/settings")
            .await
            .body
            .contains(NO_SMTP)
    );
    // The test button says it plainly too.
    let test_to = unique("ann");
    let r = ann
        .post("/mail/test", &[("csrf", &page.csrf()), ("to", &test_to)])
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert!(
        r.body
            .contains(&format!("The test message to {test_to} was {NO_SMTP}")),
        "{}",
        r.body
    );
    assert!(!r.body.contains("was sent"));
    assert!(sink.messages_to(&to).is_empty() && sink.messages_to(&test_to).is_empty());
    let statuses: Vec<String> = sqlx::query_scalar("SELECT status FROM mail_messages")
        .fetch_all(h.store.pool())
        .await
        .unwrap();
    assert!(statuses.iter().all(|s| s == "QUEUED"), "{statuses:?}");
}

/// Every log line written while the guard lives, at every level.
#[derive(Clone, Default)]
struct LogLines(Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for LogLines {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl LogLines {
    fn capture(&self) -> tracing::subscriber::DefaultGuard {
        let lines = self.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_max_level(tracing::Level::TRACE)
            .with_ansi(false)
            .with_writer(move || lines.clone())
            .finish();
        tracing::subscriber::set_default(subscriber)
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

#[sqlx::test(migrator = "MIGRATOR")]
async fn the_smtp_password_is_write_only(pool: PgPool) {
    let log = LogLines::default();
    let _guard = log.capture();
    let sink = sink();
    let h = harness(pool);
    h.owner("acme", "ann@acme.example").await;
    let mut ann = signed_in(&h, "ann@acme.example").await;
    let page = ann.get("/mail").await;
    let port = sink.port.to_string();
    let form = |csrf: &str, password: &str| {
        vec![
            ("csrf".to_owned(), csrf.to_owned()),
            ("host".to_owned(), sink.host.clone()),
            ("port".to_owned(), port.clone()),
            ("tls".to_owned(), "none".to_owned()),
            ("username".to_owned(), sink.user.clone()),
            ("password".to_owned(), password.to_owned()),
            ("from_address".to_owned(), "dns@acme.example".to_owned()),
        ]
    };
    let as_refs = |f: &Vec<(String, String)>| -> Vec<(String, String)> { f.clone() };
    let saved_form = as_refs(&form(&page.csrf(), &sink.password));
    let pairs: Vec<(&str, &str)> = saved_form
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let r = ann.post("/mail/settings", &pairs).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert!(r.body.contains("The SMTP settings are saved"));
    assert!(r.body.contains("A password is stored"));
    // Saved again with an empty password field: the password is kept.
    let keep_form = form(&r.csrf(), "");
    let pairs: Vec<(&str, &str)> = keep_form
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let r = ann.post("/mail/settings", &pairs).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let tenant = h.store.tenant_by_slug("acme").await.unwrap().id;
    let stored = h.store.smtp_settings(Some(tenant)).await.unwrap().unwrap();
    assert_eq!(stored.password.unwrap().expose(), sink.password);
    let sealed: String = sqlx::query_scalar("SELECT password_enc FROM smtp_settings")
        .fetch_one(h.store.pool())
        .await
        .unwrap();
    assert!(sealed.starts_with("enc:v1:") && !sealed.contains(&sink.password));
    // The test button really uses it.
    let to = unique("ann");
    let r = ann
        .post("/mail/test", &[("csrf", &r.csrf()), ("to", &to)])
        .await;
    assert!(
        r.body
            .contains(&format!("The test message to {to} was sent")),
        "{}",
        r.body
    );
    let got = sink.messages_to(&to);
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].envelope["auth_login"], sink.user.as_str());
    // A wrong form shows the error, never the password.
    let mut bad = form(&r.csrf(), "typed-but-refused-secret");
    bad[2].1 = "0".into();
    let pairs: Vec<(&str, &str)> = bad.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let r = ann.post("/mail/settings", &pairs).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(r.body.contains("The port is a number"));
    for path in [
        "/mail",
        "/mail/templates",
        "/notifications",
        "/notifications/settings",
    ] {
        ann.get(path).await;
    }
    let staff = staff(&h).await;
    let mut staff = staff;
    staff.get("/admin/mail").await;
    staff.get("/admin/mail/templates").await;
    for seen in ann.seen.iter().chain(staff.seen.iter()) {
        assert!(
            !seen.body.contains(&sink.password),
            "a page shows the password"
        );
        assert!(!seen.body.contains("typed-but-refused-secret"));
    }
    let audit = h.audit_rows().await;
    assert!(audit.iter().any(|a| a.contains("mail.settings_changed")));
    assert!(audit.iter().any(|a| a.contains("mail.test_sent")));
    for a in &audit {
        assert!(!a.contains(&sink.password), "{a}");
        assert!(!a.contains("typed-but-refused-secret"), "{a}");
    }
    let logged: Vec<String> =
        sqlx::query_scalar("SELECT coalesce(last_error, '') || body FROM mail_messages")
            .fetch_all(h.store.pool())
            .await
            .unwrap();
    assert!(logged.iter().all(|l| !l.contains(&sink.password)));
    // A failed attempt (the server's answer is logged nowhere with it) and the log.
    h.store
        .set_smtp_settings(Some(tenant), &sink.settings("typed-but-refused-secret"))
        .await
        .unwrap();
    h.store
        .queue_mail(Some(tenant), &unique("x"), "s", "b")
        .await
        .unwrap();
    mail::flush_queue(&state(&h)).await.unwrap();
    let lines = log.text();
    assert!(
        lines.contains("audit event"),
        "the log was captured: {lines}"
    );
    assert!(!lines.contains(&sink.password), "{lines}");
    assert!(!lines.contains("typed-but-refused-secret"), "{lines}");
}

#[sqlx::test(migrator = "MIGRATOR")]
async fn a_tenant_server_wins_over_the_platforms(pool: PgPool) {
    let sink = sink();
    let h = harness(pool);
    let (acme, _) = h.owner("acme", "ann@acme.example").await;
    h.store
        .set_smtp_settings(None, &sink.settings("wrong"))
        .await
        .unwrap();
    h.store
        .set_smtp_settings(Some(acme), &sink.settings(&sink.password))
        .await
        .unwrap();
    let tenants = unique("t");
    let platforms = unique("p");
    let t = h
        .store
        .queue_mail(Some(acme), &tenants, "s", "b")
        .await
        .unwrap();
    let p = h
        .store
        .queue_mail(None, &platforms, "s", "b")
        .await
        .unwrap();
    mail::flush_queue(&state(&h)).await.unwrap();
    assert_eq!(row(&h.store, t).await.status, "SENT");
    assert_eq!(row(&h.store, p).await.status, "FAILED");
    assert_eq!(sink.messages_to(&tenants).len(), 1);
}

#[sqlx::test(migrator = "MIGRATOR")]
async fn a_template_is_previewed_checked_and_each_edit_audited(pool: PgPool) {
    let h = harness(pool);
    h.owner("acme", "ann@acme.example").await;
    let mut ann = signed_in(&h, "ann@acme.example").await;
    let page = ann.get("/mail/templates?event=drift").await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    assert!(page.body.contains("the built-in template"));
    let stored = |h: &Harness| {
        let pool = h.store.pool().clone();
        async move {
            sqlx::query_scalar::<_, i64>("SELECT count(*) FROM mail_templates")
                .fetch_one(&pool)
                .await
                .unwrap()
        }
    };
    // A preview renders with sample data and saves nothing.
    let r = ann
        .post(
            "/mail/templates",
            &[
                ("csrf", &page.csrf()),
                ("event", "drift"),
                ("subject", "Drift in {{ zone }} at {{ tenant }}"),
                ("body", "Sets: {{ record_sets }}"),
                ("action", "preview"),
            ],
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert!(
        r.body.contains("Drift in acme.example. at Acme Corp"),
        "{}",
        r.body
    );
    assert!(r.body.contains("Sets: www.acme.example. A"), "{}", r.body);
    assert_eq!(stored(&h).await, 0);
    // A syntax error names its line; nothing is saved.
    let r = ann
        .post(
            "/mail/templates",
            &[
                ("csrf", &page.csrf()),
                ("event", "drift"),
                ("subject", "ok"),
                ("body", "first line\n{% if zone %}\nno end"),
                ("action", "save"),
            ],
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.body);
    assert!(r.body.contains("body, line "), "{}", r.body);
    assert!(r.body.contains("nothing was saved") || r.body.contains("Nothing was saved"));
    assert_eq!(stored(&h).await, 0);
    // An unknown variable is refused too.
    let r = ann
        .post(
            "/mail/templates",
            &[
                ("csrf", &page.csrf()),
                ("event", "drift"),
                ("subject", "{{ password }}"),
                ("body", "b"),
                ("action", "save"),
            ],
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(stored(&h).await, 0);
    assert!(
        !h.audit_actions()
            .await
            .contains(&"mail.template_changed".to_owned())
    );
    // Saved: stored, audited without the text.
    let r = ann
        .post(
            "/mail/templates",
            &[
                ("csrf", &page.csrf()),
                ("event", "drift"),
                ("subject", "Drift in {{ zone }}"),
                ("body", "UNIQUE-BODY-TEXT {{ link }}"),
                ("action", "save"),
            ],
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert!(
        r.body.contains("this tenant&#x27;s own template")
            || r.body.contains("this tenant's own template"),
        "{}",
        r.body
    );
    assert_eq!(stored(&h).await, 1);
    let audit = h.audit_rows().await;
    let changed: Vec<_> = audit
        .iter()
        .filter(|a| a.contains("mail.template_changed"))
        .collect();
    assert_eq!(changed.len(), 1);
    assert!(changed[0].contains(r#""event": "drift""#), "{}", changed[0]);
    assert!(!changed[0].contains("UNIQUE-BODY-TEXT"), "{}", changed[0]);
    assert!(changed[0].contains("192.0.2.10") && changed[0].contains(USER_AGENT_TEXT));
    // Reset: the built-in one again.
    let r = ann
        .post(
            "/mail/templates",
            &[
                ("csrf", &page.csrf()),
                ("event", "drift"),
                ("action", "reset"),
            ],
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(stored(&h).await, 0);
    assert!(
        h.audit_actions()
            .await
            .contains(&"mail.template_reset".to_owned())
    );
}

#[sqlx::test(migrator = "MIGRATOR")]
async fn a_platform_template_applies_to_tenants_without_their_own(pool: PgPool) {
    let h = harness(pool);
    h.owner("acme", "ann@acme.example").await;
    let mut sam = staff(&h).await;
    let page = sam.get("/admin/mail/templates?event=change_failed").await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    let r = sam
        .post(
            "/admin/mail/templates",
            &[
                ("csrf", &page.csrf()),
                ("event", "change_failed"),
                ("subject", "PLATFORM {{ zone }}"),
                ("body", "b"),
                ("action", "save"),
            ],
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let mut ann = signed_in(&h, "ann@acme.example").await;
    let page = ann.get("/mail/templates?event=change_failed").await;
    assert!(
        page.body.contains("the platform&#x27;s template")
            || page.body.contains("the platform's template"),
        "{}",
        page.body
    );
    assert!(page.body.contains("PLATFORM {{ zone }}"), "{}", page.body);
    let platform_event: Option<Option<String>> = sqlx::query_scalar(
        "SELECT tenant_id::text FROM audit_events WHERE action = 'mail.template_changed'",
    )
    .fetch_optional(h.store.pool())
    .await
    .unwrap();
    assert_eq!(
        platform_event,
        Some(None),
        "a platform edit is a platform event"
    );
}

#[sqlx::test(migrator = "MIGRATOR")]
async fn mail_pages_are_for_managers_of_the_tenant_and_for_staff(pool: PgPool) {
    let h = harness(pool);
    let (acme, _) = h.owner("acme", "ann@acme.example").await;
    member(&h, acme, "bob@acme.example", "MEMBER").await;
    let (globex, _) = h.owner("globex", "gus@globex.example").await;
    let secret_subject = "ACME-ONLY-SUBJECT";
    h.store
        .queue_mail(Some(acme), "x@acme.example", secret_subject, "b")
        .await
        .unwrap();
    h.store
        .queue_mail(Some(globex), "x@globex.example", "globex mail", "b")
        .await
        .unwrap();
    // A member without TENANT_MANAGE.
    let mut bob = signed_in(&h, "bob@acme.example").await;
    for path in ["/mail", "/mail/templates"] {
        assert_eq!(bob.get(path).await.status, StatusCode::FORBIDDEN, "{path}");
    }
    let csrf = bob.get("/notifications").await.csrf();
    for path in [
        "/mail/settings",
        "/mail/test",
        "/mail/templates",
        "/mail/settings/remove",
    ] {
        let r = bob.post(path, &[("csrf", &csrf)]).await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "{path}");
    }
    // Not staff: the platform pages do not exist.
    let mut ann = signed_in(&h, "ann@acme.example").await;
    for path in ["/admin/mail", "/admin/mail/templates"] {
        assert_eq!(ann.get(path).await.status, StatusCode::NOT_FOUND, "{path}");
    }
    let csrf = ann.get("/mail").await.csrf();
    let r = ann.post("/admin/mail/settings", &[("csrf", &csrf)]).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    // Each tenant sees its own log only.
    assert!(ann.get("/mail").await.body.contains(secret_subject));
    let mut gus = signed_in(&h, "gus@globex.example").await;
    let page = gus.get("/mail").await;
    assert!(page.body.contains("globex mail"));
    assert!(!page.body.contains(secret_subject));
    // Staff see every row.
    let mut sam = staff(&h).await;
    let page = sam.get("/admin/mail").await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    assert!(page.body.contains(secret_subject) && page.body.contains("globex mail"));
    // A visitor signs in first.
    let mut visitor = h.browser();
    for path in [
        "/mail",
        "/mail/templates",
        "/admin/mail",
        "/admin/mail/templates",
    ] {
        let r = visitor.get(path).await;
        assert_eq!(r.location(), Some("/login"), "{path}");
    }
}
