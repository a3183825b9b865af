//! Notifications against a real PostgreSQL (a fresh database per test): the
//! fan-out of audit events into in-app notifications and queued e-mails
//! (who receives what, the documented defaults, opting out, repeated and
//! concurrent runs never duplicating), internal ticket notes reaching no
//! customer, the list with its unread count and read marks, the
//! subscription grid, the daily digest (once per day) and another user's
//! or tenant's notification answering 404.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::sync::Arc;

use axum::http::StatusCode;
use chrono::Duration;
use common::*;
use sqlx::PgPool;
use zentralink_model::secrets::SecretString;
use zentralink_store::approvals::NewConfig;
use zentralink_store::audit::{Actor, AuditEvent};
use zentralink_store::{MIGRATOR, Store, TenantId, UserId};
use zentralink_web::password::PasswordHasher;
use zentralink_web::{AppState, Clock, notifications};

const CAROL_KEY: &str =
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAID41tiQUk9iKzYo9gM9kaVrnJwhrjinEKadd31J0rS76 carol";
const DAVE_KEY: &str =
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIJfU+OVpzC/bTJ2t9nn61dnGDCM+LOLwWYDcHItuH0bc dave";

fn state(h: &Harness) -> AppState {
    let clock: Arc<dyn Clock> = h.clock.clone();
    AppState::with_clock(h.store.clone(), h.config.clone(), clock).unwrap()
}

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

async fn signed_in(h: &Harness, email: &str) -> Browser {
    let mut b = h.browser();
    let r = b.login(email, PASSWORD).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    b
}

/// Acme: Ann (OWNER), Bob (MEMBER), Carol (ADMIN).
struct Acme {
    tenant: TenantId,
    ann: UserId,
    bob: UserId,
    carol: UserId,
}

async fn acme(h: &Harness) -> Acme {
    let (tenant, ann) = h.owner("acme", "ann@acme.example").await;
    let bob = member(h, tenant, "bob@acme.example", "MEMBER").await;
    let carol = member(h, tenant, "carol@acme.example", "ADMIN").await;
    Acme {
        tenant,
        ann,
        bob,
        carol,
    }
}

fn operator_event(tenant: TenantId, action: &str) -> AuditEvent {
    AuditEvent::new(Some(tenant), Actor::Operator("operator".into()), action)
}

fn change_failed(tenant: TenantId, zone: &str) -> AuditEvent {
    operator_event(tenant, "dns.changes.failed")
        .target("DnsZone", format!("acme/{zone}"))
        .meta("zone", zone)
        .meta("operations", 3_i64)
        .meta("applied", 1_i64)
        .meta("requester", "ann@acme.example")
}

async fn notifications_of(store: &Store, user: UserId) -> Vec<(String, String, Option<String>)> {
    sqlx::query_as(
        "SELECT event, title, link FROM notifications WHERE user_id = $1 ORDER BY created_at, id",
    )
    .bind(user)
    .fetch_all(store.pool())
    .await
    .unwrap()
}

async fn mail_to(store: &Store, address: &str) -> Vec<(String, String, String)> {
    sqlx::query_as(
        "SELECT subject, body, status FROM mail_messages WHERE to_address = $1 ORDER BY created_at, id",
    )
    .bind(address)
    .fetch_all(store.pool())
    .await
    .unwrap()
}

async fn count(store: &Store, sql: &str) -> i64 {
    sqlx::query_scalar(sqlx::AssertSqlSafe(sql.to_owned()))
        .fetch_one(store.pool())
        .await
        .unwrap()
}

#[sqlx::test(migrator = "MIGRATOR")]
async fn a_failed_change_notifies_every_member_in_app_and_by_email_once(pool: PgPool) {
    let h = harness(pool);
    let a = acme(&h).await;
    let s = state(&h);
    h.store
        .audit(change_failed(a.tenant, "acme.example."))
        .await
        .unwrap();
    let done = notifications::fan_out(&s).await.unwrap();
    assert_eq!(done["notifications"], 3, "{done}");
    assert_eq!(done["emails"], 3, "{done}");
    for user in [a.ann, a.bob, a.carol] {
        let got = notifications_of(&h.store, user).await;
        assert_eq!(got.len(), 1, "{got:?}");
        assert_eq!(got[0].0, "change_failed");
        assert!(got[0].1.contains("acme.example."), "{got:?}");
        assert_eq!(got[0].2.as_deref(), Some("/dashboard"));
    }
    let mails = mail_to(&h.store, "bob@acme.example").await;
    assert_eq!(mails.len(), 1);
    assert_eq!(mails[0].2, "QUEUED");
    assert!(
        mails[0].0.contains("Changes to acme.example. failed"),
        "{mails:?}"
    );
    assert!(mails[0].1.contains("1 of 3 change(s)"), "{mails:?}");

    // Again: nothing new.
    let again = notifications::fan_out(&s).await.unwrap();
    assert_eq!(again["notifications"], 0, "{again}");
    assert_eq!(again["emails"], 0, "{again}");
    assert_eq!(
        count(&h.store, "SELECT count(*) FROM notifications").await,
        3
    );
    assert_eq!(
        count(&h.store, "SELECT count(*) FROM mail_messages").await,
        3
    );
}

#[sqlx::test(migrator = "MIGRATOR")]
async fn an_applied_change_goes_in_app_only_by_default(pool: PgPool) {
    let h = harness(pool);
    let a = acme(&h).await;
    h.store
        .audit(
            operator_event(a.tenant, "dns.changes.applied")
                .meta("zone", "acme.example.")
                .meta("operations", 2_i64)
                .meta("applied", 2_i64),
        )
        .await
        .unwrap();
    let done = notifications::fan_out(&state(&h)).await.unwrap();
    assert_eq!(done["notifications"], 3, "{done}");
    assert_eq!(done["emails"], 0, "{done}");
}

#[sqlx::test(migrator = "MIGRATOR")]
async fn concurrent_fan_outs_never_notify_twice(pool: PgPool) {
    let h = harness(pool);
    let a = acme(&h).await;
    for i in 0..40 {
        let event = if i % 2 == 0 {
            change_failed(a.tenant, &format!("z{i}.example."))
        } else {
            operator_event(a.tenant, "zone.drift.detected")
                .meta("zone", format!("z{i}.example."))
                .meta("recordSets", vec!["www A"])
        };
        h.store.audit(event).await.unwrap();
    }
    let s = state(&h);
    let runs: Vec<_> = (0..4)
        .map(|_| {
            let s = s.clone();
            tokio::spawn(async move { notifications::fan_out(&s).await.unwrap() })
        })
        .collect();
    let mut produced = 0;
    let mut mailed = 0;
    for run in runs {
        let done = run.await.unwrap();
        produced += done["notifications"].as_i64().unwrap();
        mailed += done["emails"].as_i64().unwrap();
    }
    // 40 events x 3 members in-app; e-mail for the 20 failures x 3.
    assert_eq!(produced, 120);
    assert_eq!(mailed, 60);
    assert_eq!(
        count(&h.store, "SELECT count(*) FROM notifications").await,
        120
    );
    assert_eq!(
        count(&h.store, "SELECT count(*) FROM mail_messages").await,
        60
    );
    assert_eq!(
        count(
            &h.store,
            "SELECT count(*) FROM (SELECT audit_event_id, user_id FROM notifications GROUP BY 1, 2 HAVING count(*) > 1) d"
        )
        .await,
        0
    );
}

#[sqlx::test(migrator = "MIGRATOR")]
async fn an_internal_ticket_note_reaches_no_customer(pool: PgPool) {
    let h = harness(pool);
    let a = acme(&h).await;
    // Bob wants ticket e-mail too.
    let mut bob = signed_in(&h, "bob@acme.example").await;
    let page = bob.get("/notifications/settings").await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    let r = bob
        .post(
            "/notifications/settings",
            &[
                ("csrf", &page.csrf()),
                ("ticket_activity.in_app", "on"),
                ("ticket_activity.email", "on"),
            ],
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);

    let staff = Actor::User(UserId::new());
    let ticket = uuid::Uuid::new_v4();
    for (internal, marker) in [(true, "SECRET-NOTE-MARKER"), (false, "public reply")] {
        h.store
            .audit(
                AuditEvent::new(Some(a.tenant), staff.clone(), "ticket.commented")
                    .target("ticket", ticket)
                    .meta("number", 7_i64)
                    .meta("internal", internal)
                    .meta("excerpt", marker),
            )
            .await
            .unwrap();
    }
    // An internal event that does not say so explicitly counts as internal.
    h.store
        .audit(
            AuditEvent::new(Some(a.tenant), staff.clone(), "ticket.status_changed")
                .meta("number", 7_i64),
        )
        .await
        .unwrap();
    let done = notifications::fan_out(&state(&h)).await.unwrap();
    assert_eq!(done["notifications"], 3, "only the public reply: {done}");
    let got = notifications_of(&h.store, a.bob).await;
    assert_eq!(got.len(), 1, "{got:?}");
    assert_eq!(got[0].0, "ticket_activity");
    assert!(got[0].1.contains("#7"), "{got:?}");
    assert_eq!(
        got[0].2.as_deref(),
        Some(format!("/tickets/{ticket}").as_str())
    );
    let mails = mail_to(&h.store, "bob@acme.example").await;
    assert_eq!(mails.len(), 1, "{mails:?}");
    assert!(mails[0].0.contains("Ticket #7"));
    let everything: Vec<String> = sqlx::query_scalar(
        "SELECT title || body FROM notifications UNION ALL SELECT subject || body FROM mail_messages",
    )
    .fetch_all(h.store.pool())
    .await
    .unwrap();
    assert!(
        everything.iter().all(|t| !t.contains("SECRET-NOTE-MARKER")),
        "{everything:?}"
    );
}

#[sqlx::test(migrator = "MIGRATOR")]
async fn the_actor_of_a_ticket_event_is_not_notified_of_it(pool: PgPool) {
    let h = harness(pool);
    let a = acme(&h).await;
    h.store
        .audit(
            AuditEvent::new(Some(a.tenant), Actor::User(a.bob), "ticket.opened")
                .meta("number", 1_i64)
                .meta("internal", false),
        )
        .await
        .unwrap();
    notifications::fan_out(&state(&h)).await.unwrap();
    assert!(notifications_of(&h.store, a.bob).await.is_empty());
    assert_eq!(notifications_of(&h.store, a.ann).await.len(), 1);
}

async fn put_policy_in_force(store: &Store, tenant: TenantId) {
    let approvers = vec![
        serde_json::json!({"name": "carol", "email": "carol@acme.example", "role": "ADMIN", "publicKeys": [CAROL_KEY]}),
        serde_json::json!({"name": "dave", "email": "dave@acme.example", "role": "OWNER", "publicKeys": [DAVE_KEY]}),
    ];
    let configs = vec![
        NewConfig {
            kind: "Tenant".into(),
            namespace: String::new(),
            name: "acme".into(),
            spec: serde_json::json!({"displayName": "acme", "namespaces": ["acme"], "allowedDomains": ["acme.example."]}),
            spec_digest: "sha256:00".into(),
        },
        NewConfig {
            kind: "TenantPolicy".into(),
            namespace: "acme".into(),
            name: "policy".into(),
            spec: serde_json::json!({"approvals": {"minApprovals": 1, "approvers": approvers}}),
            spec_digest: "sha256:00".into(),
        },
    ];
    store
        .accept_configs(
            tenant,
            &configs,
            "bootstrap",
            None,
            &AuditEvent::new(
                Some(tenant),
                Actor::Operator("test".into()),
                "config.accepted",
            ),
        )
        .await
        .unwrap();
}

#[sqlx::test(migrator = "MIGRATOR")]
async fn a_waiting_change_request_reaches_the_approvers_but_not_its_requester(pool: PgPool) {
    let h = harness(pool);
    let a = acme(&h).await;
    let dave = member(&h, a.tenant, "dave@acme.example", "OWNER").await;
    put_policy_in_force(&h.store, a.tenant).await;
    let request = uuid::Uuid::new_v4();
    h.store
        .audit(
            operator_event(a.tenant, "change_request.opened")
                .target("DnsChangeRequest", "acme/www-3f2a")
                .meta("zone", "acme.example.")
                .meta("requestId", request.to_string())
                .meta("requester", "dave@acme.example")
                .meta("reasons", "deletes the apex MX"),
        )
        .await
        .unwrap();
    let done = notifications::fan_out(&state(&h)).await.unwrap();
    assert_eq!(done["notifications"], 1, "{done}");
    let carol = notifications_of(&h.store, a.carol).await;
    assert_eq!(carol.len(), 1, "{carol:?}");
    assert_eq!(carol[0].0, "approval_waiting");
    assert_eq!(
        carol[0].2.as_deref(),
        Some(format!("/change-requests/{request}").as_str())
    );
    for not_approver in [a.ann, a.bob, dave] {
        assert!(notifications_of(&h.store, not_approver).await.is_empty());
    }
    let mails = mail_to(&h.store, "carol@acme.example").await;
    assert_eq!(mails.len(), 1, "e-mail is on by default for approvals");
    assert!(
        mails[0].0.contains("acme/www-3f2a waits for your approval"),
        "{mails:?}"
    );
    assert!(mails[0].1.contains("deletes the apex MX"), "{mails:?}");
    assert!(mail_to(&h.store, "dave@acme.example").await.is_empty());
}

#[sqlx::test(migrator = "MIGRATOR")]
async fn the_subscription_grid_turns_kinds_off_and_on(pool: PgPool) {
    let h = harness(pool);
    let a = acme(&h).await;
    let mut bob = signed_in(&h, "bob@acme.example").await;
    let page = bob.get("/notifications/settings").await;
    assert_eq!(page.status, StatusCode::OK);
    // The defaults are ticked.
    assert!(
        page.body
            .contains(r#"name="change_failed.email" value="on""#)
    );
    assert!(
        page.body
            .split("name=\"change_failed.email\"")
            .nth(1)
            .unwrap()
            .split('>')
            .next()
            .unwrap()
            .contains("checked"),
        "{}",
        page.body
    );
    // Bob keeps only drift, in-app.
    let r = bob
        .post(
            "/notifications/settings",
            &[("csrf", &page.csrf()), ("drift.in_app", "on")],
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(r.body.contains("saved"));
    h.store
        .audit(change_failed(a.tenant, "acme.example."))
        .await
        .unwrap();
    h.store
        .audit(operator_event(a.tenant, "zone.drift.detected").meta("zone", "acme.example."))
        .await
        .unwrap();
    notifications::fan_out(&state(&h)).await.unwrap();
    let got = notifications_of(&h.store, a.bob).await;
    assert_eq!(got.len(), 1, "{got:?}");
    assert_eq!(got[0].0, "drift");
    assert!(mail_to(&h.store, "bob@acme.example").await.is_empty());
    // Others keep the defaults.
    assert_eq!(notifications_of(&h.store, a.ann).await.len(), 2);
    assert!(
        h.audit_actions()
            .await
            .contains(&"notifications.settings_changed".to_owned())
    );
}

#[sqlx::test(migrator = "MIGRATOR")]
async fn the_list_shows_unread_notifications_and_marks_them_read(pool: PgPool) {
    let h = harness(pool);
    let a = acme(&h).await;
    for zone in ["one.example.", "two.example."] {
        h.store.audit(change_failed(a.tenant, zone)).await.unwrap();
    }
    notifications::fan_out(&state(&h)).await.unwrap();
    let mut bob = signed_in(&h, "bob@acme.example").await;
    let page = bob.get("/notifications").await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    assert!(
        page.body.contains("2 unread notifications"),
        "{}",
        page.body
    );
    assert!(
        page.body.contains(r#"aria-label="2 unread""#),
        "the nav badge"
    );
    assert!(page.body.contains("Changes to one.example. failed"));
    // No SMTP: the page says so plainly.
    assert!(
        page.body.contains("not sent: no SMTP server is configured"),
        "{}",
        page.body
    );
    let id: uuid::Uuid = sqlx::query_scalar(
        "SELECT id FROM notifications WHERE user_id = $1 ORDER BY created_at, id LIMIT 1",
    )
    .bind(a.bob)
    .fetch_one(h.store.pool())
    .await
    .unwrap();
    let r = bob
        .post(
            &format!("/notifications/{id}/read"),
            &[("csrf", &page.csrf())],
        )
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    let page = bob.get("/notifications").await;
    assert!(
        page.body.contains("1 unread notification "),
        "{}",
        page.body
    );
    let r = bob
        .post("/notifications/read-all", &[("csrf", &page.csrf())])
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    let page = bob.get("/notifications").await;
    assert!(
        page.body.contains("0 unread notifications"),
        "{}",
        page.body
    );
    assert!(!page.body.contains("class=\"badge\" aria-label"));
    // Without the CSRF field nothing happens.
    let r = bob.post("/notifications/read-all", &[]).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
}

#[sqlx::test(migrator = "MIGRATOR")]
async fn another_users_or_tenants_notification_is_not_found(pool: PgPool) {
    let h = harness(pool);
    let a = acme(&h).await;
    h.store
        .audit(change_failed(a.tenant, "acme.example."))
        .await
        .unwrap();
    notifications::fan_out(&state(&h)).await.unwrap();
    let bobs: uuid::Uuid = sqlx::query_scalar("SELECT id FROM notifications WHERE user_id = $1")
        .bind(a.bob)
        .fetch_one(h.store.pool())
        .await
        .unwrap();
    // Carol, same tenant, another user.
    let mut carol = signed_in(&h, "carol@acme.example").await;
    let csrf = carol.get("/notifications").await.csrf();
    let r = carol
        .post(&format!("/notifications/{bobs}/read"), &[("csrf", &csrf)])
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    // Someone of another tenant.
    h.owner("globex", "gus@globex.example").await;
    let mut gus = signed_in(&h, "gus@globex.example").await;
    let page = gus.get("/notifications").await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(!page.body.contains("acme.example."), "{}", page.body);
    let r = gus
        .post(
            &format!("/notifications/{bobs}/read"),
            &[("csrf", &page.csrf())],
        )
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    let r = gus
        .post("/notifications/not-a-uuid/read", &[("csrf", &page.csrf())])
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    let unread: Option<chrono::DateTime<chrono::Utc>> =
        sqlx::query_scalar("SELECT read_at FROM notifications WHERE id = $1")
            .bind(bobs)
            .fetch_one(h.store.pool())
            .await
            .unwrap();
    assert!(unread.is_none());
    // A visitor is sent to sign in.
    let mut visitor = h.browser();
    for path in ["/notifications", "/notifications/settings"] {
        let r = visitor.get(path).await;
        assert_eq!(r.status, StatusCode::SEE_OTHER, "{path}");
        assert_eq!(r.location(), Some("/login"));
    }
}

#[sqlx::test(migrator = "MIGRATOR")]
async fn the_digest_goes_out_once_a_day_to_those_who_asked(pool: PgPool) {
    let h = harness(pool);
    let a = acme(&h).await;
    let mut bob = signed_in(&h, "bob@acme.example").await;
    let csrf = bob.get("/notifications/settings").await.csrf();
    let r = bob
        .post(
            "/notifications/settings",
            &[
                ("csrf", &csrf),
                ("change_failed.in_app", "on"),
                ("digest.email", "on"),
            ],
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    h.store
        .audit(change_failed(a.tenant, "acme.example."))
        .await
        .unwrap();
    let s = state(&h);
    notifications::fan_out(&s).await.unwrap();
    let first = notifications::digest(&s).await.unwrap();
    assert_eq!(first["digests"], 1, "{first}");
    let again = notifications::digest(&s).await.unwrap();
    assert_eq!(again["digests"], 0, "{again}");
    let digests: Vec<(String, String, String)> =
        sqlx::query_as("SELECT to_address, subject, body FROM mail_messages WHERE kind = 'digest'")
            .fetch_all(h.store.pool())
            .await
            .unwrap();
    assert_eq!(digests.len(), 1);
    assert_eq!(digests[0].0, "bob@acme.example");
    assert!(digests[0].1.contains("1 unread"), "{digests:?}");
    assert!(digests[0].2.contains("Changes to acme.example. failed"));
    // The next day, with the notification still unread: one more.
    h.clock.advance(Duration::days(1));
    assert_eq!(notifications::digest(&s).await.unwrap()["digests"], 1);
    // Ann did not ask for one.
    assert_eq!(
        count(
            &h.store,
            "SELECT count(*) FROM mail_messages WHERE kind = 'digest' AND to_address <> 'bob@acme.example'"
        )
        .await,
        0
    );
}

#[sqlx::test(migrator = "MIGRATOR")]
async fn a_tenant_template_shapes_its_notifications(pool: PgPool) {
    let h = harness(pool);
    let a = acme(&h).await;
    let mut ann = signed_in(&h, "ann@acme.example").await;
    let page = ann.get("/mail/templates?event=change_failed").await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    let r = ann
        .post(
            "/mail/templates",
            &[
                ("csrf", &page.csrf()),
                ("event", "change_failed"),
                ("subject", "ALERT {{ zone }} broke"),
                (
                    "body",
                    "Zone {{ zone }}: {{ applied }}/{{ operations }}.\n{{ link }}",
                ),
                ("action", "save"),
            ],
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    h.store
        .audit(change_failed(a.tenant, "acme.example."))
        .await
        .unwrap();
    notifications::fan_out(&state(&h)).await.unwrap();
    let mails = mail_to(&h.store, "carol@acme.example").await;
    assert_eq!(mails[0].0, "ALERT acme.example. broke");
    assert_eq!(mails[0].1, "Zone acme.example.: 1/3.\n/dashboard");
    let got = notifications_of(&h.store, a.carol).await;
    assert_eq!(got[0].1, "ALERT acme.example. broke");
}

#[sqlx::test(migrator = "MIGRATOR")]
async fn the_support_desks_internal_note_reaches_no_customer_through_the_ticket_store(
    pool: PgPool,
) {
    use zentralink_store::tickets::{Decision, NewComment, NewTicket};
    let h = harness(pool);
    let a = acme(&h).await;
    let sam = member(&h, a.tenant, "sam@zentralink.test", "VIEWER").await;
    sqlx::query("DELETE FROM memberships WHERE user_id = $1")
        .bind(sam)
        .execute(h.store.pool())
        .await
        .unwrap();
    let now = h.clock.now();
    let opened = h
        .store
        .open_ticket(
            a.tenant,
            &NewTicket {
                subject: "www does not resolve",
                body: "since this morning",
                priority: "NORMAL",
                zone: None,
                change_request: None,
                opened_by: a.bob,
                now,
            },
            AuditEvent::new(Some(a.tenant), Actor::User(a.bob), "ticket.opened"),
        )
        .await
        .unwrap();
    for (internal, body) in [
        (true, "customer is wrong, SECRET-NOTE"),
        (false, "looking into it"),
    ] {
        h.store
            .comment_on_ticket(
                None,
                opened.id,
                &NewComment {
                    author: sam,
                    staff: true,
                    body,
                    internal,
                    now,
                },
                |_| Decision::Allow(None),
                AuditEvent::new(Some(a.tenant), Actor::User(sam), "ticket.commented"),
            )
            .await
            .unwrap();
    }
    let done = notifications::fan_out(&state(&h)).await.unwrap();
    // Opened (Ann, Carol; not Bob, who opened it) + the public reply (all three).
    assert_eq!(done["notifications"], 5, "{done}");
    let bobs = notifications_of(&h.store, a.bob).await;
    assert_eq!(bobs.len(), 1, "{bobs:?}");
    assert!(bobs[0].1.contains("www does not resolve"), "{bobs:?}");
    assert_eq!(
        bobs[0].2.as_deref(),
        Some(format!("/tickets/{}", opened.id.0).as_str())
    );
    for user in [a.ann, a.carol] {
        let got = notifications_of(&h.store, user).await;
        assert_eq!(got.len(), 2, "{got:?}");
    }
    let everything: Vec<String> = sqlx::query_scalar(
        "SELECT title || body FROM notifications UNION ALL SELECT subject || body FROM mail_messages",
    )
    .fetch_all(h.store.pool())
    .await
    .unwrap();
    assert!(everything.iter().all(|t| !t.contains("SECRET-NOTE")));
}

#[sqlx::test(migrator = "MIGRATOR")]
async fn an_event_committed_after_a_later_one_is_still_notified_once(pool: PgPool) {
    let h = harness(pool);
    let a = acme(&h).await;
    let s = state(&h);
    // A transaction writes an event (and gets its id) but commits late.
    let mut slow = h.store.pool().begin().await.unwrap();
    sqlx::query(
        "INSERT INTO audit_events (tenant_id, actor_kind, actor_id, action, metadata)
         VALUES ($1, 'operator', 'operator', 'dns.changes.failed', '{\"zone\": \"late.example.\"}')",
    )
    .bind(a.tenant)
    .execute(&mut *slow)
    .await
    .unwrap();
    h.store
        .audit(change_failed(a.tenant, "early.example."))
        .await
        .unwrap();
    let first = notifications::fan_out(&s).await.unwrap();
    assert_eq!(first["notifications"], 3, "{first}");
    slow.commit().await.unwrap();
    let second = notifications::fan_out(&s).await.unwrap();
    assert_eq!(second["notifications"], 3, "the late event: {second}");
    let third = notifications::fan_out(&s).await.unwrap();
    assert_eq!(third["notifications"], 0, "{third}");
    assert_eq!(
        third["events"], 0,
        "handled events are not read again: {third}"
    );
    let titles: Vec<String> = notifications_of(&h.store, a.bob)
        .await
        .into_iter()
        .map(|n| n.1)
        .collect();
    assert_eq!(titles.len(), 2, "{titles:?}");
    assert!(
        titles.iter().any(|t| t.contains("late.example.")),
        "{titles:?}"
    );
}
