//! The audit viewer (`GET /audit`) and the audit trail of the account pages,
//! against a real PostgreSQL (a fresh database per test): who may read the
//! log, each filter, keyset pages without duplicates or gaps while events
//! arrive, only the active tenant's events, clear messages for wrong
//! filters; and every sign-in, sign-out and 2FA action recorded with IP and
//! user agent and without a password, secret, code or session token.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::collections::BTreeSet;

use axum::http::StatusCode;
use chrono::{DateTime, Duration, Utc};
use common::*;
use sqlx::PgPool;
use zentralink_model::secrets::SecretString;
use zentralink_store::audit::{Actor, AuditEvent};
use zentralink_store::{MIGRATOR, TenantId, UserId};
use zentralink_web::Clock;
use zentralink_web::password::PasswordHasher;
use zentralink_web::totp::{code_at, step_of};

/// A user with [`PASSWORD`] and `role` in `tenant`.
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

/// A browser signed in as `email`.
async fn signed_in(h: &Harness, email: &str) -> Browser {
    let mut b = h.browser();
    let r = b.login(email, PASSWORD).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    assert_eq!(r.location(), Some("/dashboard"));
    b
}

/// Records an event and sets its time.
async fn event_at(h: &Harness, event: AuditEvent, at: DateTime<Utc>) -> i64 {
    let id = h.store.audit(event).await.unwrap();
    sqlx::query("UPDATE audit_events SET created_at = $1 WHERE id = $2")
        .bind(at)
        .bind(id)
        .execute(h.store.pool())
        .await
        .unwrap();
    id
}

fn unescape(s: &str) -> String {
    s.replace("&#x2f;", "/")
        .replace("&#x27;", "'")
        .replace("&quot;", "\"")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
}

/// The ids of the events listed on the page, in order.
fn listed(html: &str) -> Vec<i64> {
    html.split("<tr id=\"event-")
        .skip(1)
        .map(|s| s.split('"').next().unwrap().parse().unwrap())
        .collect()
}

/// The link to the next (older) page, if any.
fn next_link(html: &str) -> Option<String> {
    let end = html.find("\" rel=\"next\"")?;
    let start = html[..end].rfind("href=\"")? + "href=\"".len();
    Some(unescape(&html[start..end]))
}

async fn ids(b: &mut Browser, path: &str) -> Vec<i64> {
    let r = b.get(path).await;
    assert_eq!(r.status, StatusCode::OK, "{path}: {}", r.body);
    listed(&r.body)
}

fn t(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
}

#[sqlx::test(migrator = "MIGRATOR")]
async fn the_audit_log_is_for_managers_and_up(pool: PgPool) {
    let h = harness(pool);
    let (acme, _) = h.owner("acme", "ann@acme.example").await;
    for (email, role) in [
        ("adam@acme.example", "ADMIN"),
        ("mia@acme.example", "MANAGER"),
        ("max@acme.example", "MEMBER"),
        ("vic@acme.example", "VIEWER"),
    ] {
        member(&h, acme, email, role).await;
    }
    for email in ["ann@acme.example", "adam@acme.example", "mia@acme.example"] {
        let mut b = signed_in(&h, email).await;
        let dash = b.get("/dashboard").await;
        assert!(
            dash.body.contains("href=\"/audit\""),
            "{email}: no link to the audit log"
        );
        let r = b.get("/audit").await;
        assert_eq!(r.status, StatusCode::OK, "{email}: {}", r.body);
        assert!(r.body.contains("Audit log"), "{}", r.body);
    }
    for email in ["max@acme.example", "vic@acme.example"] {
        let mut b = signed_in(&h, email).await;
        let dash = b.get("/dashboard").await;
        assert_eq!(dash.status, StatusCode::OK);
        assert!(
            !dash.body.contains("href=\"/audit\""),
            "{email} sees the link"
        );
        let r = b.get("/audit").await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "{email}");
        assert!(
            !r.body.contains("event-"),
            "a refusal shows no events: {}",
            r.body
        );
        let r = b.get("/audit?action=login").await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "{email}");
    }
    // Signed out: sign in first.
    let r = h.browser().get("/audit").await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    assert_eq!(r.location(), Some("/login"));
}

#[sqlx::test(migrator = "MIGRATOR")]
async fn each_filter_narrows_the_log(pool: PgPool) {
    let h = harness(pool);
    let (acme, ann) = h.owner("acme", "ann@acme.example").await;
    let bob = member(&h, acme, "bob@acme.example", "MEMBER").await;
    let base = t("2020-11-30T12:00:00Z");
    let ev = |actor: Actor, action: &str| AuditEvent::new(Some(acme), actor, action);
    let e1 = event_at(
        &h,
        ev(Actor::User(ann), "member.invited").target("invitation", "inv-1"),
        base,
    )
    .await;
    let e2 = event_at(
        &h,
        ev(Actor::User(ann), "member.role_changed")
            .target("user", bob)
            .meta("role", "MANAGER"),
        base + Duration::hours(1),
    )
    .await;
    let e3 = event_at(
        &h,
        ev(Actor::User(bob), "2fa.enrolled").target("user", bob),
        t("2020-12-01T09:30:00Z"),
    )
    .await;
    let e4 = event_at(
        &h,
        ev(Actor::User(bob), "2fa.disabled").target("user", bob),
        t("2020-12-02T23:59:00Z"),
    )
    .await;
    let e5 = event_at(
        &h,
        ev(Actor::Operator("operator".into()), "zone.applied").target("DnsZone", "acme/main"),
        t("2020-12-03T00:00:00Z"),
    )
    .await;
    let mut b = signed_in(&h, "ann@acme.example").await;
    // The sign-in itself is an event too (now, by the clock of the database).
    let all = ids(&mut b, "/audit").await;
    for e in [e1, e2, e3, e4, e5] {
        assert!(all.contains(&e), "{e} missing from {all:?}");
    }

    // Actor: an e-mail address of a member (any case), a user id, an operator.
    assert_eq!(
        ids(&mut b, "/audit?actor=Bob%40acme.example").await,
        [e4, e3]
    );
    assert_eq!(ids(&mut b, &format!("/audit?actor={bob}")).await, [e4, e3]);
    assert_eq!(ids(&mut b, "/audit?actor=operator").await, [e5]);
    // Action: exact, or a prefix with *.
    assert_eq!(ids(&mut b, "/audit?action=2fa.enrolled").await, [e3]);
    assert_eq!(ids(&mut b, "/audit?action=2fa.*").await, [e4, e3]);
    assert_eq!(ids(&mut b, "/audit?action=member.*").await, [e2, e1]);
    assert_eq!(
        ids(&mut b, "/audit?action=2fa").await,
        Vec::<i64>::new(),
        "exact unless *"
    );
    // Target: kind, id, both.
    assert_eq!(ids(&mut b, "/audit?target_kind=DnsZone").await, [e5]);
    assert_eq!(ids(&mut b, "/audit?target_id=inv-1").await, [e1]);
    let by_target = ids(&mut b, &format!("/audit?target_kind=user&target_id={bob}")).await;
    assert_eq!(by_target, [e4, e3, e2]);
    assert_eq!(
        ids(
            &mut b,
            &format!("/audit?target_kind=invitation&target_id={bob}")
        )
        .await,
        Vec::<i64>::new()
    );
    // Time: from inclusive, to exclusive; a date as `to` includes that day.
    assert_eq!(
        ids(&mut b, "/audit?from=2020-12-01&to=2020-12-02").await,
        [e4, e3]
    );
    assert_eq!(
        ids(&mut b, "/audit?from=2020-11-30T13:00&to=2020-12-01T09:30").await,
        [e2]
    );
    assert_eq!(
        ids(
            &mut b,
            "/audit?from=2020-12-03T00:00:00%2B00:00&to=2020-12-04"
        )
        .await,
        [e5]
    );
    assert_eq!(
        ids(&mut b, "/audit?to=2020-11-30T12:00").await,
        Vec::<i64>::new()
    );
    // Filters together.
    assert_eq!(
        ids(
            &mut b,
            "/audit?actor=ann%40acme.example&action=member.*&to=2020-11-30"
        )
        .await,
        [e2, e1]
    );
    assert_eq!(
        ids(
            &mut b,
            "/audit?actor=ann%40acme.example&target_kind=user&to=2020-12-31"
        )
        .await,
        [e2]
    );

    // Members are shown by their address; metadata as stored.
    let page = b.get("/audit?action=member.role_changed").await;
    assert!(page.body.contains("ann@acme.example"), "{}", page.body);
    assert!(page.body.contains("user bob@acme.example"), "{}", page.body);
    assert!(page.body.contains("MANAGER"), "{}", page.body);
}

#[sqlx::test(migrator = "MIGRATOR")]
async fn pages_follow_each_other_without_duplicates_or_gaps_while_events_arrive(pool: PgPool) {
    let h = harness(pool);
    let (acme, ann) = h.owner("acme", "ann@acme.example").await;
    let mut b = signed_in(&h, "ann@acme.example").await;
    let sign_in: Vec<i64> = ids(&mut b, "/audit").await;
    // 23 events, several in the same microsecond: the id breaks the tie.
    let base = t("2020-12-01T10:00:00Z");
    let mut expected = Vec::new();
    for i in 0..23i64 {
        let at = base + Duration::seconds(i / 3);
        let e = AuditEvent::new(Some(acme), Actor::User(ann), "zone.viewed").meta("n", i);
        expected.push(event_at(&h, e, at).await);
    }
    // Newest first: the later second first, within a second the higher id.
    expected.reverse();
    let mut path = "/audit?action=zone.viewed&limit=5".to_owned();
    let mut seen = Vec::new();
    let mut pages = 0;
    loop {
        let r = b.get(&path).await;
        assert_eq!(r.status, StatusCode::OK, "{path}: {}", r.body);
        let page = listed(&r.body);
        assert!(page.len() <= 5, "{page:?}");
        seen.extend(page);
        pages += 1;
        // Events arriving meanwhile (newer, and one dated at the time of an
        // event already shown) never shift the pages still to come.
        let newer = AuditEvent::new(Some(acme), Actor::User(ann), "zone.viewed");
        event_at(&h, newer, base + Duration::days(1)).await;
        let shown_at: DateTime<Utc> =
            sqlx::query_scalar("SELECT created_at FROM audit_events WHERE id = $1")
                .bind(seen.last().copied().unwrap_or(expected[0]))
                .fetch_one(h.store.pool())
                .await
                .unwrap();
        let late = AuditEvent::new(Some(acme), Actor::User(ann), "zone.viewed");
        event_at(&h, late, shown_at).await;
        match next_link(&r.body) {
            Some(next) => {
                assert!(
                    next.contains("action=zone.viewed") && next.contains("limit=5"),
                    "{next}"
                );
                assert!(
                    r.body.contains("Newest events") == (pages > 1),
                    "{}",
                    r.body
                );
                path = next;
            }
            None => break,
        }
    }
    assert_eq!(pages, 5, "23 events in pages of 5");
    assert_eq!(seen, expected, "every event once, in order");
    let unique: BTreeSet<_> = seen.iter().collect();
    assert_eq!(unique.len(), seen.len());

    // Unfiltered, pages of the default size hold everything too.
    let mut path = "/audit?limit=7".to_owned();
    let mut all = Vec::new();
    loop {
        let r = b.get(&path).await;
        all.extend(listed(&r.body));
        match next_link(&r.body) {
            Some(next) => path = next,
            None => break,
        }
    }
    let total: i64 = sqlx::query_scalar("SELECT count(*) FROM audit_events WHERE tenant_id = $1")
        .bind(acme)
        .fetch_one(h.store.pool())
        .await
        .unwrap();
    assert_eq!(all.len() as i64, total);
    assert!(sign_in.iter().all(|e| all.contains(e)));
    // The page size is bounded.
    let r = b.get("/audit?limit=201").await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(
        r.body
            .contains("The page size is a whole number from 1 to 200."),
        "{}",
        r.body
    );
}

#[sqlx::test(migrator = "MIGRATOR")]
async fn another_tenants_and_platform_events_never_appear(pool: PgPool) {
    let h = harness(pool);
    let (acme, ann) = h.owner("acme", "ann@acme.example").await;
    let (globex, gus) = h.owner("globex", "gus@globex.example").await;
    // Ann is also a member of globex: her events there are globex's, not acme's.
    h.store.set_membership(globex, ann, "MEMBER").await.unwrap();
    let theirs = h
        .store
        .audit(
            AuditEvent::new(Some(globex), Actor::User(ann), "globex.secret_action")
                .target("DnsZone", "globex/hidden-zone")
                .meta("note", "globex-only-marker"),
        )
        .await
        .unwrap();
    h.store
        .audit(AuditEvent::new(Some(globex), Actor::User(gus), "zone.viewed").target("user", gus))
        .await
        .unwrap();
    let platform = h
        .store
        .audit(
            AuditEvent::new(None, Actor::System, "platform.maintenance")
                .meta("note", "platform-only-marker"),
        )
        .await
        .unwrap();
    let ours = h
        .store
        .audit(AuditEvent::new(Some(acme), Actor::User(ann), "zone.viewed"))
        .await
        .unwrap();

    let mut b = signed_in(&h, "ann@acme.example").await;
    for path in [
        "/audit".to_owned(),
        "/audit?limit=200".to_owned(),
        "/audit?action=globex.secret_action".to_owned(),
        "/audit?action=platform.*".to_owned(),
        "/audit?target_kind=DnsZone".to_owned(),
        format!("/audit?actor={gus}"),
        format!("/audit?actor={ann}"),
        "/audit?actor=system".to_owned(),
        "/audit?action=zone.viewed".to_owned(),
        // A cursor naming the other tenant's event gives nothing of it either.
        format!("/audit?before=9999999999999999_{theirs}"),
    ] {
        let r = b.get(&path).await;
        assert_eq!(r.status, StatusCode::OK, "{path}: {}", r.body);
        let listed = listed(&r.body);
        assert!(
            !listed.contains(&theirs) && !listed.contains(&platform),
            "{path}: {listed:?}"
        );
        for marker in ["globex-only-marker", "platform-only-marker", "hidden-zone"] {
            assert!(!r.body.contains(marker), "{path} shows {marker}");
        }
        // The filter as typed and the tenant switcher may name globex; the table may not.
        let table = r.body.split("<tbody>").nth(1).unwrap_or("");
        for marker in [
            "globex",
            "gus@",
            "platform-only-marker",
            "platform.maintenance",
            "hidden-zone",
        ] {
            assert!(!table.contains(marker), "{path} shows {marker}: {}", r.body);
        }
    }
    assert!(
        ids(&mut b, "/audit?action=zone.viewed")
            .await
            .contains(&ours)
    );
    // An e-mail address of someone who is not a member here is not looked up elsewhere.
    let r = b.get("/audit?actor=gus%40globex.example").await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(
        r.body
            .contains("No member of this tenant has the e-mail address"),
        "{}",
        r.body
    );
    assert!(listed(&r.body).is_empty());
}

#[sqlx::test(migrator = "MIGRATOR")]
async fn wrong_filters_are_answered_with_a_message_per_field(pool: PgPool) {
    let h = harness(pool);
    h.owner("acme", "ann@acme.example").await;
    let mut b = signed_in(&h, "ann@acme.example").await;
    let r = b
        .get("/audit?action=%3Cscript%3Ealert(1)%3C%2Fscript%3E&from=yesterday&to=2026-13-40&target_kind=a%20b&limit=0&before=xyz")
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.body);
    for message in [
        "An action is letters, digits",
        "\"yesterday\" is not a date or time",
        "\"2026-13-40\" is not a date or time",
        "A target kind is letters, digits",
        "The page size is a whole number from 1 to 200.",
        "The page link is not valid",
    ] {
        let escaped = message.replace('"', "&quot;");
        assert!(
            r.body.contains(message) || r.body.contains(&escaped),
            "{message}: {}",
            r.body
        );
    }
    // What was typed is shown again, escaped; no events are listed.
    assert!(!r.body.contains("<script>"), "{}", r.body);
    assert!(r.body.contains("&lt;script&gt;"), "{}", r.body);
    assert!(listed(&r.body).is_empty());
    assert!(r.body.contains("aria-invalid=\"true\""));
    let r = b.get("/audit?from=2026-12-02&to=2026-12-01").await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(r.body.contains("later than"), "{}", r.body);
}

#[sqlx::test(migrator = "MIGRATOR")]
async fn ip_and_user_agent_are_shown_as_stored(pool: PgPool) {
    let h = harness(pool);
    let (acme, _) = h.owner("acme", "ann@acme.example").await;
    h.store
        .audit(
            AuditEvent::new(
                Some(acme),
                Actor::Operator("operator".into()),
                "zone.applied",
            )
            .from_client(
                Some("2001:db8::7".into()),
                Some("kubectl/<v1.31> \"x\"".into()),
            ),
        )
        .await
        .unwrap();
    let mut b = signed_in(&h, "ann@acme.example").await;
    let r = b.get("/audit").await;
    assert!(r.body.contains("2001:db8::7"), "{}", r.body);
    assert!(
        r.body.contains("kubectl&#x2f;&lt;v1.31&gt; &quot;x&quot;"),
        "escaped as it is: {}",
        r.body
    );
    // The sign-in: the browser's address and user agent.
    let r = b.get("/audit?action=login").await;
    assert!(
        r.body.contains("192.0.2.10") && r.body.contains(&USER_AGENT_TEXT.replace('/', "&#x2f;")),
        "{}",
        r.body
    );
}

/// Every account action leaves an event with the client's address and user
/// agent; no event holds a password, TOTP secret, code or session token.
#[sqlx::test(migrator = "MIGRATOR")]
async fn every_account_action_is_audited_with_the_client_and_no_secret(pool: PgPool) {
    let h = harness(pool);
    h.owner("acme", "ann@acme.example").await;
    let wrong = "wrong-password-typed-here";
    let mut b = h.browser();
    b.login("ann@acme.example", wrong).await;
    b.login("nobody@acme.example", wrong).await;
    b.login("ann@acme.example", PASSWORD).await;
    let first_token = b.session_cookie().unwrap();
    // Enrolment: a wrong confirmation first, then the right one.
    let csrf = b.session_csrf().await;
    let page = b.post("/account/2fa/enrol", &[("csrf", &csrf)]).await;
    let secret = SecretString::new(otpauth_secret(&page.body));
    let refused = b
        .post(
            "/account/2fa/confirm",
            &[("code", "000000"), ("csrf", &page.csrf())],
        )
        .await;
    assert_eq!(refused.status, StatusCode::UNPROCESSABLE_ENTITY);
    let code = code_at(&secret, step_of(h.clock.now())).unwrap();
    let done = b
        .post(
            "/account/2fa/confirm",
            &[("code", &code), ("csrf", &page.csrf())],
        )
        .await;
    assert_eq!(done.status, StatusCode::OK, "{}", done.body);
    let codes = backup_codes(&done.body);
    let enrolled_token = b.session_cookie().unwrap();
    // Sign out; in again with a wrong code, then a backup code.
    let csrf = b.session_csrf().await;
    b.post("/logout", &[("csrf", &csrf)]).await;
    b.login("ann@acme.example", PASSWORD).await;
    let csrf = b.get("/login/2fa").await.csrf();
    b.post("/login/2fa", &[("code", "123456"), ("csrf", &csrf)])
        .await;
    let r = b
        .post("/login/2fa", &[("code", &codes[0]), ("csrf", &csrf)])
        .await;
    assert_eq!(r.location(), Some("/dashboard"), "{}", r.body);
    // Turning 2FA off: refused with a wrong password, then with a backup code.
    let csrf = b.session_csrf().await;
    let r = b
        .post(
            "/account/2fa/disable",
            &[("password", wrong), ("code", &codes[1]), ("csrf", &csrf)],
        )
        .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    let r = b
        .post(
            "/account/2fa/disable",
            &[("password", PASSWORD), ("code", &codes[2]), ("csrf", &csrf)],
        )
        .await;
    assert_eq!(r.location(), Some("/account/2fa"), "{}", r.body);
    let last_token = b.session_cookie().unwrap();
    let csrf = b.session_csrf().await;
    b.post("/logout/everywhere", &[("csrf", &csrf)]).await;

    let actions = h.audit_actions().await;
    for action in [
        "login.failed",
        "login.second_factor_required",
        "login",
        "2fa.enrolment_started",
        "2fa.confirm_refused",
        "2fa.enrolled",
        "logout",
        "2fa.backup_code_used",
        "2fa.disable_refused",
        "2fa.disabled",
        "logout.everywhere",
    ] {
        assert!(
            actions.iter().any(|a| a == action),
            "no {action} event in {actions:?}"
        );
    }
    assert_eq!(
        actions.iter().filter(|a| *a == "login.failed").count(),
        3,
        "{actions:?}"
    );
    assert_eq!(
        actions
            .iter()
            .filter(|a| *a == "2fa.backup_code_used")
            .count(),
        2,
        "at sign-in and when turning 2FA off: {actions:?}"
    );
    // Every event of the browser names its address and user agent.
    let clients: Vec<(String, Option<String>, Option<String>)> =
        sqlx::query_as("SELECT action, ip, user_agent FROM audit_events WHERE actor_id <> 'zentralink-cli' ORDER BY id")
            .fetch_all(h.store.pool())
            .await
            .unwrap();
    for (action, ip, ua) in &clients {
        assert_eq!(ip.as_deref(), Some("192.0.2.10"), "{action}");
        assert_eq!(ua.as_deref(), Some(USER_AGENT_TEXT), "{action}");
    }
    // Six-digit codes could match digits of an id or a time by chance: they
    // are looked for in the metadata only; everything else in whole rows.
    let metadata: Vec<String> =
        sqlx::query_scalar("SELECT metadata::text FROM audit_events ORDER BY id")
            .fetch_all(h.store.pool())
            .await
            .unwrap();
    for m in &metadata {
        for c in [code.as_str(), "000000", "123456"] {
            assert!(!m.contains(c), "a code in metadata: {m}");
        }
    }
    let mut planted = vec![
        PASSWORD.to_owned(),
        wrong.to_owned(),
        secret.expose().to_owned(),
        first_token,
        enrolled_token,
        last_token,
    ];
    planted.extend(codes.iter().cloned());
    planted.extend(codes.iter().map(|c| c.replace('-', "")));
    let rows = h.audit_rows().await;
    for row in &rows {
        for p in &planted {
            assert!(
                !row.contains(p.as_str()),
                "an audit event holds a secret or code: {row}"
            );
        }
    }
}
