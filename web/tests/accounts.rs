//! The web service against a real PostgreSQL (one fresh database per test,
//! `#[sqlx::test]`): sign-in, throttling, sessions, CSRF, TOTP and backup
//! codes, tenant isolation, hardening headers and error pages, and no
//! secret in any response or audit event. Needs DATABASE_URL pointing at a
//! server where databases can be created (scripts/test.sh starts one).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use axum::body::Body;
use axum::http::header::{CONTENT_TYPE, ORIGIN};
use axum::http::{Request, StatusCode};
use chrono::Duration;
use common::*;
use sha2::{Digest, Sha256};
use sqlx::PgPool;
use zentralink_store::MIGRATOR;
use zentralink_web::totp::{code_at, step_of};
use zentralink_web::{Clock, WebConfig};

fn assert_redirect(r: &Resp, to: &str) {
    assert_eq!(
        r.status,
        StatusCode::SEE_OTHER,
        "expected a redirect to {to}: {}",
        r.body
    );
    assert_eq!(r.location(), Some(to));
}

#[sqlx::test(migrator = "MIGRATOR")]
async fn signing_in_sets_a_hardened_session_cookie_and_opens_the_dashboard(pool: PgPool) {
    let h = harness(pool);
    h.owner("acme", "ann@acme.example").await;
    let mut b = h.browser();
    let r = b.login("Ann@Acme.example", PASSWORD).await;
    assert_redirect(&r, "/dashboard");
    let cookie = r
        .set_cookies()
        .into_iter()
        .find(|c| c.starts_with("__Host-zl_session="))
        .expect("no session cookie");
    for attribute in [
        "HttpOnly",
        "Secure",
        "SameSite=Lax",
        "Path=/",
        "Max-Age=1209600",
    ] {
        assert!(cookie.contains(attribute), "{attribute} missing: {cookie}");
    }
    let dash = b.get("/dashboard").await;
    assert_eq!(dash.status, StatusCode::OK);
    assert!(dash.body.contains("ann@acme.example"), "{}", dash.body);
    // The login event names the client; the fingerprint is only a hash.
    let rows = h.audit_rows().await;
    let login = rows
        .iter()
        .find(|r| r.contains("\"action\":\"login\""))
        .expect("no login event");
    assert!(
        login.contains("192.0.2.10") && login.contains(USER_AGENT_TEXT),
        "{login}"
    );
    let fingerprints: Vec<Vec<u8>> =
        sqlx::query_scalar("SELECT fingerprint FROM login_fingerprints")
            .fetch_all(h.store.pool())
            .await
            .unwrap();
    assert_eq!(fingerprints.len(), 1);
    assert_eq!(fingerprints[0].len(), 32, "a fingerprint is a SHA-256");
}

#[sqlx::test(migrator = "MIGRATOR")]
async fn plain_http_cookies_only_with_the_flag(pool: PgPool) {
    let h = harness_with(
        pool,
        WebConfig {
            secure_cookies: false,
            ..WebConfig::default()
        },
    );
    h.owner("acme", "ann@acme.example").await;
    let mut b = h.browser();
    let r = b.login("ann@acme.example", PASSWORD).await;
    assert_redirect(&r, "/dashboard");
    let cookie = r
        .set_cookies()
        .into_iter()
        .find(|c| c.starts_with("zl_session="))
        .unwrap();
    assert!(!cookie.contains("Secure"), "{cookie}");
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("SameSite=Lax"),
        "{cookie}"
    );
}

#[sqlx::test(migrator = "MIGRATOR")]
async fn a_wrong_password_is_refused_and_audited_without_the_password(pool: PgPool) {
    let h = harness(pool);
    h.owner("acme", "ann@acme.example").await;
    let mut b = h.browser();
    let r = b.login("ann@acme.example", "not-the-password-123").await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert!(r.body.contains("Wrong e-mail or password."), "{}", r.body);
    assert!(b.session_cookie().is_none());
    let r = b.login("nobody@acme.example", "not-the-password-123").await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert!(
        r.body.contains("Wrong e-mail or password."),
        "same answer for an unknown account"
    );
    let rows = h.audit_rows().await;
    assert_eq!(
        rows.iter().filter(|r| r.contains("login.failed")).count(),
        2,
        "{rows:?}"
    );
    for row in &rows {
        assert!(
            !row.contains("not-the-password-123"),
            "password in audit: {row}"
        );
    }
    assert_redirect(&b.get("/dashboard").await, "/login");
}

#[sqlx::test(migrator = "MIGRATOR")]
async fn an_account_is_throttled_after_five_failures_with_retry_after(pool: PgPool) {
    let h = harness(pool);
    h.owner("acme", "ann@acme.example").await;
    let mut b = h.browser();
    for _ in 0..5 {
        assert_eq!(
            b.login("ann@acme.example", "wrong-password-1").await.status,
            StatusCode::UNAUTHORIZED
        );
    }
    // Even the right password waits now, from another address too.
    let mut other = h.browser_from("198.51.100.7");
    let r = other.login("ann@acme.example", PASSWORD).await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS, "{}", r.body);
    let retry: i64 = r
        .header("retry-after")
        .expect("no Retry-After")
        .parse()
        .unwrap();
    assert!((1..=15 * 60).contains(&retry), "{retry}");
    assert!(r.body.contains("Too many failed sign-ins"), "{}", r.body);
    assert!(other.session_cookie().is_none());
    h.clock.advance(Duration::seconds(retry));
    assert_redirect(
        &other.login("ann@acme.example", PASSWORD).await,
        "/dashboard",
    );
}

#[sqlx::test(migrator = "MIGRATOR")]
async fn an_address_is_throttled_after_twenty_failures(pool: PgPool) {
    let h = harness(pool);
    h.owner("acme", "ann@acme.example").await;
    let mut attacker = h.browser_from("203.0.113.9");
    for i in 0..20 {
        let r = attacker
            .login(&format!("guess{i}@acme.example"), "wrong-password-1")
            .await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    }
    let r = attacker.login("ann@acme.example", PASSWORD).await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS);
    assert!(r.header("retry-after").is_some());
    // Ann, from her own address, is not locked out by it.
    assert_redirect(
        &h.browser().login("ann@acme.example", PASSWORD).await,
        "/dashboard",
    );
}

#[sqlx::test(migrator = "MIGRATOR")]
async fn signing_in_again_replaces_the_session(pool: PgPool) {
    let h = harness(pool);
    h.owner("acme", "ann@acme.example").await;
    let mut b = h.browser();
    b.login("ann@acme.example", PASSWORD).await;
    let first = b.session_cookie().unwrap();
    b.login("ann@acme.example", PASSWORD).await;
    let second = b.session_cookie().unwrap();
    assert_ne!(first, second, "a sign-in must start a new session");
    let mut stale = h.browser();
    stale
        .cookies
        .insert("__Host-zl_session".into(), first.clone());
    assert_redirect(&stale.get("/dashboard").await, "/login");
    assert_eq!(b.get("/dashboard").await.status, StatusCode::OK);
    // Only the hash of a token is stored.
    let hashes: Vec<Vec<u8>> = sqlx::query_scalar("SELECT token_sha256 FROM sessions")
        .fetch_all(h.store.pool())
        .await
        .unwrap();
    assert_eq!(hashes, vec![Sha256::digest(second.as_bytes()).to_vec()]);
}

#[sqlx::test(migrator = "MIGRATOR")]
async fn sign_out_ends_one_session_and_everywhere_ends_all(pool: PgPool) {
    let h = harness(pool);
    h.owner("acme", "ann@acme.example").await;
    let (mut b1, mut b2, mut b3) = (h.browser(), h.browser(), h.browser());
    for b in [&mut b1, &mut b2, &mut b3] {
        assert_redirect(&b.login("ann@acme.example", PASSWORD).await, "/dashboard");
    }
    let csrf = b3.session_csrf().await;
    assert_redirect(&b3.post("/logout", &[("csrf", &csrf)]).await, "/login");
    assert_redirect(&b3.get("/dashboard").await, "/login");
    assert_eq!(b1.get("/dashboard").await.status, StatusCode::OK);
    assert_eq!(b2.get("/dashboard").await.status, StatusCode::OK);

    let csrf = b1.session_csrf().await;
    assert_redirect(
        &b1.post("/logout/everywhere", &[("csrf", &csrf)]).await,
        "/login",
    );
    assert_redirect(&b2.get("/dashboard").await, "/login");
    assert_redirect(&b1.get("/dashboard").await, "/login");
    let actions = h.audit_actions().await;
    assert!(
        actions.contains(&"logout".to_owned()) && actions.contains(&"logout.everywhere".to_owned()),
        "{actions:?}"
    );
}

#[sqlx::test(migrator = "MIGRATOR")]
async fn posts_without_the_sessions_csrf_token_or_from_another_origin_are_refused(pool: PgPool) {
    let h = harness(pool);
    h.owner("acme", "ann@acme.example").await;
    let mut b = h.browser();
    b.login("ann@acme.example", PASSWORD).await;
    let csrf = b.session_csrf().await;

    assert_eq!(b.post("/logout", &[]).await.status, StatusCode::FORBIDDEN);
    assert_eq!(
        b.post("/logout", &[("csrf", "forged")]).await.status,
        StatusCode::FORBIDDEN
    );
    // Another session's token does not work either.
    let mut other = h.browser();
    other.login("ann@acme.example", PASSWORD).await;
    let other_csrf = other.session_csrf().await;
    assert_eq!(
        b.post("/logout", &[("csrf", &other_csrf)]).await.status,
        StatusCode::FORBIDDEN
    );
    // The right token from a page of another origin.
    b.origin = "https://evil.example".into();
    assert_eq!(
        b.post("/logout", &[("csrf", &csrf)]).await.status,
        StatusCode::FORBIDDEN
    );
    b.origin = format!("https://{HOST_NAME}");
    assert_eq!(
        b.get("/dashboard").await.status,
        StatusCode::OK,
        "still signed in"
    );
    assert_redirect(&b.post("/logout", &[("csrf", &csrf)]).await, "/login");

    // The sign-in form needs the token of its cookie.
    let mut fresh = h.browser();
    let r = fresh
        .post(
            "/login",
            &[
                ("email", "ann@acme.example"),
                ("password", PASSWORD),
                ("csrf", "x"),
            ],
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert!(fresh.session_cookie().is_none());
}

#[sqlx::test(migrator = "MIGRATOR")]
async fn totp_enrolment_then_sign_in_with_a_code_never_accepted_twice(pool: PgPool) {
    let h = harness(pool);
    h.owner("acme", "ann@acme.example").await;
    let mut b = h.browser();
    b.login("ann@acme.example", PASSWORD).await;
    let before = b.session_cookie().unwrap();
    let (secret, _codes) = enrol(&h, &mut b).await;
    assert_ne!(
        b.session_cookie().unwrap(),
        before,
        "turning 2FA on starts a new session"
    );
    assert_eq!(b.get("/dashboard").await.status, StatusCode::OK);
    let stored: String = sqlx::query_scalar("SELECT secret_enc FROM totp_secrets")
        .fetch_one(h.store.pool())
        .await
        .unwrap();
    assert!(stored.starts_with("enc:v1:") && !stored.contains(secret.expose()));

    let step = step_of(h.clock.now());
    let mut phone = h.browser();
    assert_redirect(
        &phone.login("ann@acme.example", PASSWORD).await,
        "/login/2fa",
    );
    // Half signed in: nothing else opens.
    assert_redirect(&phone.get("/dashboard").await, "/login/2fa");
    let page = phone.get("/login/2fa").await;
    let csrf = page.csrf();
    // The code used to confirm the enrolment is spent.
    let used = code_at(&secret, step).unwrap();
    let r = phone
        .post("/login/2fa", &[("code", &used), ("csrf", &csrf)])
        .await;
    assert_eq!(
        r.status,
        StatusCode::UNAUTHORIZED,
        "a replayed code was accepted"
    );
    assert!(r.body.contains("used already"), "{}", r.body);
    // The next step's code (within the skew) works once.
    let next = code_at(&secret, step + 1).unwrap();
    assert_redirect(
        &phone
            .post("/login/2fa", &[("code", &next), ("csrf", &csrf)])
            .await,
        "/dashboard",
    );
    assert_eq!(phone.get("/dashboard").await.status, StatusCode::OK);

    let mut thief = h.browser_from("203.0.113.50");
    assert_redirect(
        &thief.login("ann@acme.example", PASSWORD).await,
        "/login/2fa",
    );
    let csrf = thief.get("/login/2fa").await.csrf();
    let r = thief
        .post("/login/2fa", &[("code", &next), ("csrf", &csrf)])
        .await;
    assert_eq!(
        r.status,
        StatusCode::UNAUTHORIZED,
        "the same code was accepted twice"
    );
    assert_redirect(&thief.get("/dashboard").await, "/login/2fa");
    // Two steps ahead is outside the skew.
    let far = code_at(&secret, step + 3).unwrap();
    let r = thief
        .post("/login/2fa", &[("code", &far), ("csrf", &csrf)])
        .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
}

#[sqlx::test(migrator = "MIGRATOR")]
async fn a_backup_code_works_once(pool: PgPool) {
    let h = harness(pool);
    h.owner("acme", "ann@acme.example").await;
    let mut b = h.browser();
    b.login("ann@acme.example", PASSWORD).await;
    let (_secret, codes) = enrol(&h, &mut b).await;
    let hashes: Vec<String> = sqlx::query_scalar("SELECT code_hash FROM backup_codes")
        .fetch_all(h.store.pool())
        .await
        .unwrap();
    assert_eq!(hashes.len(), 10);
    assert!(
        hashes
            .iter()
            .all(|h| h.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"))
    );

    let mut b2 = h.browser();
    b2.login("ann@acme.example", PASSWORD).await;
    let csrf = b2.get("/login/2fa").await.csrf();
    let code = codes[3].to_uppercase();
    assert_redirect(
        &b2.post("/login/2fa", &[("code", &code), ("csrf", &csrf)])
            .await,
        "/dashboard",
    );

    let mut b3 = h.browser();
    b3.login("ann@acme.example", PASSWORD).await;
    let csrf = b3.get("/login/2fa").await.csrf();
    let r = b3
        .post("/login/2fa", &[("code", &codes[3]), ("csrf", &csrf)])
        .await;
    assert_eq!(
        r.status,
        StatusCode::UNAUTHORIZED,
        "a backup code was accepted twice"
    );
    assert!(
        h.audit_actions()
            .await
            .contains(&"2fa.backup_code_used".to_owned())
    );
}

#[sqlx::test(migrator = "MIGRATOR")]
async fn turning_2fa_off_needs_the_password_and_a_code_and_wipes_both(pool: PgPool) {
    let h = harness(pool);
    h.owner("acme", "ann@acme.example").await;
    let mut b = h.browser();
    b.login("ann@acme.example", PASSWORD).await;
    let (secret, codes) = enrol(&h, &mut b).await;
    let csrf = b.session_csrf().await;
    let r = b
        .post(
            "/account/2fa/disable",
            &[
                ("password", "wrong-password-1"),
                ("code", &codes[0]),
                ("csrf", &csrf),
            ],
        )
        .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    let r = b
        .post(
            "/account/2fa/disable",
            &[("password", PASSWORD), ("code", "000000"), ("csrf", &csrf)],
        )
        .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    h.clock.advance(Duration::seconds(30));
    let code = code_at(&secret, step_of(h.clock.now())).unwrap();
    let r = b
        .post(
            "/account/2fa/disable",
            &[("password", PASSWORD), ("code", &code), ("csrf", &csrf)],
        )
        .await;
    assert_redirect(&r, "/account/2fa");
    let left: i64 = sqlx::query_scalar(
        "SELECT (SELECT count(*) FROM totp_secrets) + (SELECT count(*) FROM backup_codes)",
    )
    .fetch_one(h.store.pool())
    .await
    .unwrap();
    assert_eq!(left, 0);
    assert_redirect(
        &h.browser().login("ann@acme.example", PASSWORD).await,
        "/dashboard",
    );
    assert!(h.audit_actions().await.contains(&"2fa.disabled".to_owned()));
}

#[sqlx::test(migrator = "MIGRATOR")]
async fn another_tenants_zone_is_not_found(pool: PgPool) {
    let h = harness(pool);
    let (acme, _) = h.owner("acme", "ann@acme.example").await;
    let (globex, _) = h.owner("globex", "gus@globex.example").await;
    let ours = h
        .store
        .upsert_zone(acme, "acme", "main", "acme.example.", None)
        .await
        .unwrap();
    let theirs = h
        .store
        .upsert_zone(globex, "globex", "main", "globex.example.", None)
        .await
        .unwrap();
    let mut b = h.browser();
    b.login("ann@acme.example", PASSWORD).await;
    let dash = b.get("/dashboard").await;
    assert!(dash.body.contains("acme.example."), "{}", dash.body);
    assert!(
        !dash.body.contains("globex.example."),
        "another tenant's zone listed"
    );
    assert_eq!(
        b.get(&format!("/zones/{ours}")).await.status,
        StatusCode::OK
    );
    let r = b.get(&format!("/zones/{theirs}")).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert!(!r.body.contains("globex"), "{}", r.body);
    assert_eq!(
        b.get("/zones/not-a-uuid").await.status,
        StatusCode::NOT_FOUND
    );
}

#[sqlx::test(migrator = "MIGRATOR")]
async fn anonymous_visitors_are_sent_to_sign_in(pool: PgPool) {
    let h = harness(pool);
    let (acme, _) = h.owner("acme", "ann@acme.example").await;
    let zone = h
        .store
        .upsert_zone(acme, "acme", "main", "acme.example.", None)
        .await
        .unwrap();
    let mut b = h.browser();
    for path in ["/", "/dashboard", "/account/2fa", &format!("/zones/{zone}")] {
        let r = b.get(path).await;
        assert_eq!(r.status, StatusCode::SEE_OTHER, "{path}");
        assert!(
            matches!(r.location(), Some("/login" | "/dashboard")),
            "{path}: {:?}",
            r.location()
        );
        assert!(!r.body.contains("acme.example."));
    }
    assert_redirect(&b.get("/dashboard").await, "/login");
    assert_redirect(&b.post("/logout", &[("csrf", "x")]).await, "/login");
    assert_redirect(&b.get("/login/2fa").await, "/login");
}

#[sqlx::test(migrator = "MIGRATOR")]
async fn security_headers_and_error_pages_without_internals(pool: PgPool) {
    let h = harness(pool);
    let mut b = h.browser();
    let r = b.get("/login").await;
    let csp = r.header("content-security-policy").expect("no CSP");
    assert!(
        csp.contains("default-src 'self'") && csp.contains("frame-ancestors 'none'"),
        "{csp}"
    );
    assert!(
        !csp.contains("unsafe-inline") && !csp.contains("unsafe-eval"),
        "{csp}"
    );
    assert_eq!(
        r.header("x-content-type-options").as_deref(),
        Some("nosniff")
    );
    assert!(r.header("referrer-policy").is_some());
    assert!(
        r.header("strict-transport-security").is_none(),
        "HSTS without TLS"
    );
    assert!(!r.body.contains("<script"), "no script in pages");

    let missing = b.get("/no/such/page").await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    let id = missing.header("x-request-id").expect("no request id");
    assert!(missing.body.contains(&id), "the page shows the request id");
    assert!(missing.header("content-security-policy").is_some());

    // A malformed form: the framework's message stays in the log.
    let r = b
        .send(
            Request::post("/login")
                .header(ORIGIN, format!("https://{HOST_NAME}"))
                .header(CONTENT_TYPE, "application/json")
                .body(Body::from("{}"))
                .unwrap(),
        )
        .await;
    assert!(r.status.is_client_error(), "{}", r.status);
    assert!(
        !r.body.to_lowercase().contains("content-type") && !r.body.contains("deserialize"),
        "{}",
        r.body
    );
    // A body over the limit.
    let big = "a".repeat(zentralink_web::BODY_LIMIT + 10);
    let r = b.post("/login", &[("email", &big)]).await;
    assert_eq!(r.status, StatusCode::PAYLOAD_TOO_LARGE);
    assert!(r.body.contains("request-id"), "{}", r.body);

    let h = harness_with(
        h.store.pool().clone(),
        WebConfig {
            hsts: true,
            ..WebConfig::default()
        },
    );
    let r = h.browser().get("/login").await;
    assert!(
        r.header("strict-transport-security")
            .unwrap()
            .contains("max-age=")
    );
}

#[sqlx::test(migrator = "MIGRATOR")]
async fn no_password_or_secret_in_any_response_or_audit_event(pool: PgPool) {
    let h = harness(pool);
    let (acme, _) = h.owner("acme", "ann@acme.example").await;
    h.store
        .upsert_zone(acme, "acme", "main", "acme.example.", None)
        .await
        .unwrap();
    let mut b = h.browser();
    b.login("ann@acme.example", "a-wrong-password-xyz").await;
    b.login("ann@acme.example", PASSWORD).await;
    let token = b.session_cookie().unwrap();
    let (secret, codes) = enrol(&h, &mut b).await;
    let enrolment_pages = b.seen.len();
    b.get("/dashboard").await;
    b.get("/account/2fa").await;
    let mut b2 = h.browser();
    b2.login("ann@acme.example", PASSWORD).await;
    let csrf = b2.get("/login/2fa").await.csrf();
    b2.post("/login/2fa", &[("code", "999999"), ("csrf", &csrf)])
        .await;
    b2.post("/login/2fa", &[("code", &codes[1]), ("csrf", &csrf)])
        .await;
    b2.get("/dashboard").await;

    let mut planted = vec![
        PASSWORD.to_owned(),
        "a-wrong-password-xyz".to_owned(),
        secret.expose().to_owned(),
        token,
    ];
    planted.extend(codes.iter().cloned());
    // The enrolment page shows the secret and the next one the codes, once; nothing else may.
    let shown_once = enrolment_pages - 2..enrolment_pages;
    for (i, r) in b
        .seen
        .iter()
        .enumerate()
        .chain(b2.seen.iter().enumerate().map(|(i, r)| (i + 1000, r)))
    {
        if shown_once.contains(&i) {
            continue;
        }
        let headers: Vec<String> = r
            .headers
            .iter()
            .filter(|(k, _)| *k != axum::http::header::SET_COOKIE)
            .map(|(k, v)| format!("{k}: {v:?}"))
            .collect();
        let text = format!("{}\n{}", headers.join("\n"), r.body);
        for p in &planted {
            assert!(
                !text.contains(p.as_str()),
                "response {i} holds a secret or code"
            );
        }
    }
    let rows = h.audit_rows().await;
    assert!(rows.len() >= 5, "{rows:?}");
    for row in rows {
        for p in &planted {
            assert!(
                !row.contains(p.as_str()),
                "audit event holds a secret: {row}"
            );
        }
    }
}

#[sqlx::test(migrator = "MIGRATOR")]
async fn a_session_ends_after_fourteen_days(pool: PgPool) {
    let h = harness(pool);
    h.owner("acme", "ann@acme.example").await;
    let mut b = h.browser();
    b.login("ann@acme.example", PASSWORD).await;
    h.clock.advance(Duration::days(14) - Duration::seconds(1));
    assert_eq!(b.get("/dashboard").await.status, StatusCode::OK);
    h.clock.advance(Duration::seconds(2));
    assert_redirect(&b.get("/dashboard").await, "/login");
}

#[sqlx::test(migrator = "MIGRATOR")]
async fn many_sign_ins_at_once_all_complete_on_the_bounded_pool(pool: PgPool) {
    let h = harness(pool);
    // 24 people, each signing in once, all at the same moment.
    for i in 0..24 {
        h.owner(&format!("t{i}"), &format!("p{i}@acme.example"))
            .await;
    }
    let mut tasks = Vec::new();
    for i in 0..24 {
        let mut b = h.browser_from(&format!("198.51.100.{}", i + 1));
        tasks.push(tokio::spawn(async move {
            let password = if i % 6 == 0 {
                "wrong-password-1"
            } else {
                PASSWORD
            };
            b.login(&format!("p{i}@acme.example"), password)
                .await
                .status
        }));
    }
    let mut statuses = Vec::new();
    for t in tasks {
        statuses.push(t.await.unwrap());
    }
    // Each answer is a sign-in, a refusal or throttling, never an error.
    for s in &statuses {
        assert!(
            [
                StatusCode::SEE_OTHER,
                StatusCode::UNAUTHORIZED,
                StatusCode::TOO_MANY_REQUESTS
            ]
            .contains(s),
            "{statuses:?}"
        );
    }
    assert!(
        statuses
            .iter()
            .filter(|s| **s == StatusCode::SEE_OTHER)
            .count()
            >= 15,
        "{statuses:?}"
    );
}

#[sqlx::test(migrator = "MIGRATOR")]
async fn simultaneous_guesses_cannot_overtake_the_limit(pool: PgPool) {
    let h = harness(pool);
    h.owner("acme", "ann@acme.example").await;
    // 60 wrong passwords for one account at once, from 60 addresses: the
    // account's attempts still being checked count, so no more than its
    // limit (5) are checked at all; the rest wait.
    let mut tasks = Vec::new();
    for i in 0..60 {
        let mut b = h.browser_from(&format!("198.51.100.{}", i + 1));
        tasks.push(tokio::spawn(async move {
            b.login("ann@acme.example", "wrong-password-1").await.status
        }));
    }
    let mut statuses = Vec::new();
    for t in tasks {
        statuses.push(t.await.unwrap());
    }
    let checked = statuses
        .iter()
        .filter(|s| **s == StatusCode::UNAUTHORIZED)
        .count();
    let waited = statuses
        .iter()
        .filter(|s| **s == StatusCode::TOO_MANY_REQUESTS)
        .count();
    assert!(checked <= 5, "{checked} guesses were checked: {statuses:?}");
    assert_eq!(checked + waited, 60, "{statuses:?}");
    // A refused attempt leaves nothing behind: the failures recorded are
    // the checked ones.
    let failures = h
        .store
        .login_failures_since(
            &zentralink_web::throttle::account_subject("ann@acme.example"),
            h.clock.now() - Duration::hours(1),
        )
        .await
        .unwrap();
    assert_eq!(failures.len(), checked);
}
