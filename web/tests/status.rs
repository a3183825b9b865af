//! The public status page, the incidents staff manage and the health check,
//! against a real PostgreSQL (a fresh database per test): the state of each
//! component from what the operator recorded, without a tenant's name or a
//! check's message; incidents opened, updated, resolved and aged out; the
//! ETag and Cache-Control; staff only (404 for everyone else); `/api/healthz`
//! with every migration applied, one missing, one failed, one changed.
//! Needs DATABASE_URL (scripts/test.sh starts PostgreSQL).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use chrono::{DateTime, Duration, Utc};
use common::*;
use sqlx::PgPool;
use uuid::Uuid;
use zentralink_model::secrets::SecretString;
use zentralink_store::{MIGRATOR, UserId};
use zentralink_web::{AppState, Clock, app};

const OWNER: &str = "ann@acme.example";
const STAFF: &str = "sam@support.example";

/// A harness whose state the test holds (to drop the cached page).
fn harness_with_state(pool: PgPool) -> (Harness, AppState) {
    let mut h = harness(pool);
    let state = AppState::with_clock(h.store.clone(), h.config.clone(), h.clock.clone()).unwrap();
    h.app = app(state.clone());
    (h, state)
}

/// Templates escape `/` as `&#x2f;`; browsers read it back as `/`.
fn text(html: &str) -> String {
    html.replace("&#x2f;", "/")
}

async fn user(h: &Harness, email: &str) -> UserId {
    let hash = zentralink_web::password::PasswordHasher::new(1)
        .unwrap()
        .hash(&SecretString::new(PASSWORD))
        .await
        .unwrap();
    match h.store.user_credentials_by_email(email).await.unwrap() {
        Some(c) => c.id,
        None => h.store.create_user(email, email, &hash).await.unwrap(),
    }
}

/// One of the platform's staff, signed in with a second factor.
async fn staff(h: &Harness) -> Browser {
    user(h, STAFF).await;
    h.store.set_platform_admin(STAFF, true).await.unwrap();
    let mut b = h.browser();
    let r = b.login(STAFF, PASSWORD).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    enrol(h, &mut b).await;
    b
}

/// Opens an incident through the form; returns its id.
async fn open_incident(b: &mut Browser, title: &str, impact: &str, body: &str) -> Uuid {
    let csrf = b.get("/admin/status").await.csrf();
    let r = b
        .post(
            "/admin/status",
            &[
                ("title", title),
                ("impact", impact),
                ("status", "investigating"),
                ("body", body),
                ("csrf", &csrf),
            ],
        )
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    let at = r.location().unwrap().to_owned();
    at.strip_prefix("/admin/status/").unwrap().parse().unwrap()
}

async fn post_update(b: &mut Browser, id: Uuid, status: &str, body: &str) -> Resp {
    let csrf = b.get(&format!("/admin/status/{id}")).await.csrf();
    b.post(
        &format!("/admin/status/{id}"),
        &[("status", status), ("body", body), ("csrf", &csrf)],
    )
    .await
}

/// The row of a component on the page: its state's label and detail.
fn component_row(html: &str, name: &str) -> String {
    let html = text(html);
    let start = html
        .find(&format!("<th scope=\"row\">{name}</th>"))
        .unwrap_or_else(|| panic!("no component {name} on {html}"));
    let end = html[start..].find("</tr>").unwrap() + start;
    html[start..end].to_owned()
}

fn no_script(html: &str) {
    assert!(
        !html.to_lowercase().contains("<script"),
        "a script tag on the status page: {html}"
    );
}

#[sqlx::test(migrator = "MIGRATOR")]
async fn the_status_page_needs_no_session_and_says_what_is_not_known(pool: PgPool) {
    let h = harness(pool);
    let mut visitor = h.browser();
    let r = visitor.get("/status").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert!(visitor.cookies.is_empty(), "the status page set a cookie");
    no_script(&r.body);
    assert_eq!(
        r.header("cache-control").as_deref(),
        Some("public, max-age=30")
    );
    assert!(r.header("etag").is_some_and(|e| e.starts_with('"')));
    assert!(r.body.contains("<h1>Service status</h1>"), "{}", r.body);
    assert!(r.body.contains("<main>"), "no main landmark");
    let operator = component_row(&r.body, "DNS API (operator)");
    assert!(operator.contains("Unknown"), "{operator}");
    assert!(
        operator.contains("No reconcile pass has been recorded"),
        "{operator}"
    );
    let web = component_row(&r.body, "Web");
    assert!(web.contains("Operational"), "{web}");
    for provider in ["PowerDNS", "Hetzner DNS", "Cloudflare", "Zone files"] {
        let row = component_row(&r.body, provider);
        assert!(row.contains("Not in use"), "{row}");
    }
    assert!(r.body.contains("No open incidents."));
}

/// A tenant with connections whose last checks are as given, straight into the store.
async fn connection(
    h: &Harness,
    tenant: zentralink_store::TenantId,
    name: &str,
    kind: &str,
    test_ok: Option<bool>,
    probe_ok: Option<bool>,
    at: DateTime<Utc>,
) {
    sqlx::query(
        "INSERT INTO provider_connections (id, tenant_id, namespace, name, provider_type, credentials_enc,
             last_test_at, last_test_ok, last_test_message, last_probe_at, last_probe_ok, last_probe_message)
         VALUES ($1, $2, 'dns', $3, $4, 'enc:v1:not-a-real-envelope',
             $5, $6, 'HTTP 401 from https://pdns.internal.acme.example: token hunter2 refused', $5, $7, 'probe of secret-zone.acme.example failed')",
    )
    .bind(Uuid::new_v4())
    .bind(tenant)
    .bind(name)
    .bind(kind)
    .bind(test_ok.map(|_| at))
    .bind(test_ok)
    .bind(probe_ok)
    .execute(h.store.pool())
    .await
    .unwrap();
}

#[sqlx::test(migrator = "MIGRATOR")]
async fn components_follow_what_the_operator_recorded_without_naming_a_tenant(pool: PgPool) {
    let (h, state) = harness_with_state(pool);
    let (acme, _) = h.owner("acme", OWNER).await;
    let (globex, _) = h.owner("globex-corp", "gus@globex.example").await;
    let now = h.clock.now();
    for (source, ok) in [
        ("git@git.acme.example:dns/zones.git", true),
        ("/srv/globex", true),
    ] {
        sqlx::query(
            "INSERT INTO source_states (source, last_pass_at, last_pass_ok) VALUES ($1, $2, $3)",
        )
        .bind(source)
        .bind(now - Duration::seconds(40))
        .bind(ok)
        .execute(h.store.pool())
        .await
        .unwrap();
    }
    let checked = now - Duration::minutes(3);
    connection(
        &h,
        acme,
        "acme-pdns",
        "powerdns",
        Some(true),
        Some(true),
        checked,
    )
    .await;
    connection(
        &h,
        globex,
        "globex-pdns",
        "powerdns",
        Some(true),
        None,
        checked,
    )
    .await;
    connection(
        &h,
        acme,
        "acme-hetzner",
        "hetzner",
        Some(true),
        Some(true),
        checked,
    )
    .await;
    connection(
        &h,
        globex,
        "globex-hetzner",
        "hetzner",
        Some(false),
        None,
        checked,
    )
    .await;
    connection(
        &h,
        acme,
        "acme-cf",
        "cloudflare",
        Some(true),
        Some(false),
        checked,
    )
    .await;
    connection(&h, acme, "acme-files", "zonefile", None, None, checked).await;

    let mut visitor = h.browser();
    let page = visitor.get("/status").await;
    assert_eq!(page.status, StatusCode::OK);
    let row = |name: &str| component_row(&page.body, name);
    assert!(
        row("DNS API (operator)").contains("Operational"),
        "{}",
        row("DNS API (operator)")
    );
    assert!(
        row("PowerDNS").contains("Operational"),
        "{}",
        row("PowerDNS")
    );
    assert!(
        row("Hetzner DNS").contains("Errors on some connections"),
        "{}",
        row("Hetzner DNS")
    );
    assert!(
        row("Cloudflare").contains("Degraded"),
        "{}",
        row("Cloudflare")
    );
    assert!(
        row("Zone files").contains("Unknown"),
        "{}",
        row("Zone files")
    );
    assert!(row("RFC 2136 (BIND and other servers)").contains("Not in use"));
    assert!(
        page.body.contains("some components report errors"),
        "{}",
        page.body
    );

    // Public across tenants: no tenant, connection, source, message or secret.
    let body = text(&page.body).to_lowercase();
    for secret in [
        "acme",
        "globex",
        "pdns.internal",
        "hunter2",
        "secret-zone",
        "enc:v1",
        "git@",
        "/srv/",
        "http 401",
        "dns/zones",
    ] {
        assert!(
            !body.contains(secret),
            "the status page shows {secret:?}: {body}"
        );
    }

    // A failing pass makes the operator degraded; silence makes it unknown.
    sqlx::query("UPDATE source_states SET last_pass_ok = false WHERE source = '/srv/globex'")
        .execute(h.store.pool())
        .await
        .unwrap();
    let cached = visitor.get("/status").await;
    assert_eq!(
        cached.body, page.body,
        "the page is served from memory for a few seconds"
    );
    zentralink_web::status::forget_page(&state);
    let failing = visitor.get("/status").await;
    let row = component_row(&failing.body, "DNS API (operator)");
    assert!(row.contains("Degraded"), "{row}");
    h.clock.advance(Duration::minutes(11));
    let silent = visitor.get("/status").await;
    let row = component_row(&silent.body, "DNS API (operator)");
    assert!(row.contains("Unknown"), "{row}");
    assert!(
        row.contains("No reconcile pass recorded in the last 10 minutes"),
        "{row}"
    );
}

#[sqlx::test(migrator = "MIGRATOR")]
async fn the_etag_answers_304_until_an_incident_changes_the_page(pool: PgPool) {
    let h = harness(pool);
    let mut visitor = h.browser();
    let first = visitor.get("/status").await;
    let etag = first.header("etag").unwrap();
    let again = visitor
        .send(
            Request::get("/status")
                .header("if-none-match", etag.as_str())
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(again.status, StatusCode::NOT_MODIFIED);
    assert!(again.body.is_empty());
    assert_eq!(again.header("etag").as_deref(), Some(etag.as_str()));
    assert_eq!(
        again.header("cache-control").as_deref(),
        Some("public, max-age=30")
    );
    let weak = visitor
        .send(
            Request::get("/status")
                .header("if-none-match", format!("\"other\", W/{etag}"))
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(weak.status, StatusCode::NOT_MODIFIED);

    let mut sam = staff(&h).await;
    open_incident(
        &mut sam,
        "Slow zone updates",
        "minor",
        "We are looking into it.",
    )
    .await;
    let changed = visitor
        .send(
            Request::get("/status")
                .header("if-none-match", etag.as_str())
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(
        changed.status,
        StatusCode::OK,
        "an incident changes the page at once"
    );
    assert_ne!(changed.header("etag").unwrap(), etag);
    assert!(changed.body.contains("Slow zone updates"));
}

/// The position of `needle` in `hay`, or a failure naming it.
fn at(hay: &str, needle: &str) -> usize {
    hay.find(needle)
        .unwrap_or_else(|| panic!("{needle:?} is not on the page: {hay}"))
}

#[sqlx::test(migrator = "MIGRATOR")]
async fn staff_open_update_and_resolve_an_incident_that_the_page_shows(pool: PgPool) {
    let h = harness(pool);
    let mut sam = staff(&h).await;
    let list = sam.get("/admin/status").await;
    assert_eq!(list.status, StatusCode::OK, "{}", list.body);
    assert!(list.body.contains("Open an incident"));

    let id = open_incident(
        &mut sam,
        "DNS updates delayed",
        "major",
        "Changes to Hetzner zones are queued.\n\nWe are investigating.",
    )
    .await;
    let mut visitor = h.browser();
    let page = visitor.get("/status").await;
    let open_at = at(&page.body, "Open incidents");
    let resolved_at = at(&page.body, "Resolved in the last 90 days");
    let title_at = at(&page.body, "DNS updates delayed");
    assert!(
        open_at < title_at && title_at < resolved_at,
        "{}",
        page.body
    );
    assert!(
        page.body.contains("1 open incident (impact: major)"),
        "{}",
        page.body
    );
    assert!(
        page.body
            .contains("<p>Changes to Hetzner zones are queued.</p>")
    );

    h.clock.advance(Duration::minutes(20));
    let r = post_update(
        &mut sam,
        id,
        "identified",
        "A provider rate limit; backing off.",
    )
    .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    h.clock.advance(Duration::minutes(20));
    let r = post_update(&mut sam, id, "resolved", "All queued changes are applied.").await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);

    let incident = h.store.incident(id).await.unwrap();
    assert_eq!(incident.status, "resolved");
    assert_eq!(incident.resolved_at, Some(h.clock.now()));

    let page = visitor.get("/status").await;
    let resolved_at = at(&page.body, "Resolved in the last 90 days");
    let title_at = at(&page.body, "DNS updates delayed");
    assert!(
        title_at > resolved_at,
        "a resolved incident is history: {}",
        page.body
    );
    assert!(page.body.contains("No open incidents."));
    assert!(
        page.body.contains("All systems operational") || page.body.contains("No open incident")
    );
    // Updates newest first.
    let newest = at(&page.body, "All queued changes are applied.");
    let middle = at(&page.body, "A provider rate limit; backing off.");
    let oldest = at(&page.body, "We are investigating.");
    assert!(newest < middle && middle < oldest, "{}", page.body);

    // Reopening clears the resolution.
    let r = post_update(&mut sam, id, "monitoring", "Watching it again.").await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    assert_eq!(h.store.incident(id).await.unwrap().resolved_at, None);

    let actions = h.audit_actions().await;
    let count = |a: &str| actions.iter().filter(|x| *x == a).count();
    assert_eq!(count("status.incident_opened"), 1, "{actions:?}");
    assert_eq!(count("status.incident_updated"), 3, "{actions:?}");
    let rows = h.audit_rows().await;
    let opened = rows
        .iter()
        .find(|r| r.contains("status.incident_opened"))
        .unwrap();
    assert!(opened.contains(&id.to_string()), "{opened}");
    assert!(opened.contains("192.0.2.10"), "{opened}");
    assert!(opened.contains(USER_AGENT_TEXT), "{opened}");
    let json = |row: &str| serde_json::from_str::<serde_json::Value>(row).unwrap();
    assert_eq!(json(opened)["metadata"]["impact"], "major", "{opened}");
    let resolved = rows
        .iter()
        .map(|r| json(r))
        .find(|r| r["metadata"]["to"] == "resolved")
        .unwrap();
    assert_eq!(resolved["metadata"]["from"], "identified", "{resolved}");
    assert_eq!(resolved["metadata"]["resolved"], true, "{resolved}");
}

#[sqlx::test(migrator = "MIGRATOR")]
async fn incident_text_is_escaped_and_forms_say_what_is_wrong(pool: PgPool) {
    let h = harness(pool);
    let mut sam = staff(&h).await;
    open_incident(
        &mut sam,
        "<script>alert(1)</script>",
        "none",
        "<img src=x onerror=alert(1)>",
    )
    .await;
    let page = h.browser().get("/status").await;
    no_script(&page.body);
    assert!(!page.body.contains("<img"), "{}", page.body);
    assert!(page.body.contains("&lt;script&gt;"));

    let csrf = sam.get("/admin/status").await.csrf();
    let before: i64 = sqlx::query_scalar("SELECT count(*) FROM status_incidents")
        .fetch_one(h.store.pool())
        .await
        .unwrap();
    for (title, impact, status, body, problem) in [
        ("", "minor", "investigating", "x", "the title is empty"),
        ("T", "huge", "investigating", "x", "choose the impact"),
        ("T", "minor", "sleeping", "x", "choose the status"),
        (
            "T",
            "minor",
            "investigating",
            "  ",
            "the update text is empty",
        ),
    ] {
        let r = sam
            .post(
                "/admin/status",
                &[
                    ("title", title),
                    ("impact", impact),
                    ("status", status),
                    ("body", body),
                    ("csrf", &csrf),
                ],
            )
            .await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.body);
        assert!(r.body.contains(problem), "{problem}: {}", r.body);
    }
    // Without the form's token: refused.
    let r = sam
        .post(
            "/admin/status",
            &[
                ("title", "T"),
                ("impact", "minor"),
                ("status", "investigating"),
                ("body", "x"),
            ],
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let after: i64 = sqlx::query_scalar("SELECT count(*) FROM status_incidents")
        .fetch_one(h.store.pool())
        .await
        .unwrap();
    assert_eq!(before, after);
}

#[sqlx::test(migrator = "MIGRATOR")]
async fn incident_pages_are_not_found_for_anyone_but_staff(pool: PgPool) {
    let h = harness(pool);
    let mut sam = staff(&h).await;
    let id = open_incident(&mut sam, "Outage", "critical", "Down.").await;
    h.owner("acme", OWNER).await;
    let mut ann = h.browser();
    ann.login(OWNER, PASSWORD).await;
    let csrf = ann.session_csrf().await;
    for path in [
        "/admin/status",
        &format!("/admin/status/{id}"),
        "/admin/cron",
    ] {
        let r = ann.get(path).await;
        assert_eq!(r.status, StatusCode::NOT_FOUND, "{path}: {}", r.body);
    }
    for path in ["/admin/status", &format!("/admin/status/{id}")] {
        let r = ann
            .post(
                path,
                &[
                    ("title", "Fake"),
                    ("impact", "minor"),
                    ("status", "resolved"),
                    ("body", "x"),
                    ("csrf", &csrf),
                ],
            )
            .await;
        assert_eq!(r.status, StatusCode::NOT_FOUND, "{path}");
    }
    assert_eq!(h.store.incident(id).await.unwrap().status, "investigating");
    // A visitor is sent to sign in.
    let r = h.browser().get("/admin/status").await;
    assert_eq!(r.location(), Some("/login"));
    // Staff: a missing incident and a malformed id are not found.
    let r = sam.get(&format!("/admin/status/{}", Uuid::new_v4())).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    let r = sam.get("/admin/status/not-a-uuid").await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    let r = post_update(&mut sam, id, "nonsense", "x").await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
}

#[sqlx::test(migrator = "MIGRATOR")]
async fn resolved_incidents_leave_the_page_after_90_days(pool: PgPool) {
    let (h, state) = harness_with_state(pool);
    let mut sam = staff(&h).await;
    let id = open_incident(&mut sam, "Old trouble", "minor", "Trouble.").await;
    post_update(&mut sam, id, "resolved", "Fixed.").await;
    assert!(
        h.browser()
            .get("/status")
            .await
            .body
            .contains("Old trouble")
    );
    h.clock.advance(Duration::days(89));
    zentralink_web::status::forget_page(&state);
    assert!(
        h.browser()
            .get("/status")
            .await
            .body
            .contains("Old trouble")
    );
    h.clock.advance(Duration::days(2));
    zentralink_web::status::forget_page(&state);
    let page = h.browser().get("/status").await;
    assert!(!page.body.contains("Old trouble"), "{}", page.body);
    // It is still stored (staff list every incident).
    let all = h.store.incidents(DateTime::UNIX_EPOCH).await.unwrap();
    assert!(all.iter().any(|i| i.title == "Old trouble"));
}

async fn healthz(h: &Harness) -> Resp {
    h.browser().get("/api/healthz").await
}

#[sqlx::test(migrator = "MIGRATOR")]
async fn healthz_is_ok_only_while_every_migration_is_applied_as_built(pool: PgPool) {
    let h = harness(pool);
    let ok = healthz(&h).await;
    assert_eq!(ok.status, StatusCode::OK);
    assert_eq!(ok.body, "ok");
    assert_eq!(ok.header("cache-control").as_deref(), Some("no-store"));

    let versions: Vec<i64> = MIGRATOR.iter().map(|m| m.version).collect();
    let last = *versions.last().unwrap();
    let pool = h.store.pool();

    // A failed migration.
    sqlx::query("UPDATE _sqlx_migrations SET success = false WHERE version = $1")
        .bind(last)
        .execute(pool)
        .await
        .unwrap();
    let r = healthz(&h).await;
    assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(r.body, "a migration failed");
    assert_eq!(r.header("cache-control").as_deref(), Some("no-store"));

    // One changed after it was applied.
    sqlx::query(
        "UPDATE _sqlx_migrations SET success = true, checksum = '\\x00' WHERE version = $1",
    )
    .bind(last)
    .execute(pool)
    .await
    .unwrap();
    let r = healthz(&h).await;
    assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(r.body, "schema differs from this build");

    // One missing.
    sqlx::query("DELETE FROM _sqlx_migrations WHERE version = $1")
        .bind(last)
        .execute(pool)
        .await
        .unwrap();
    let r = healthz(&h).await;
    assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(r.body, "migrations pending");
    // Never a version or a migration's name.
    for m in MIGRATOR.iter() {
        assert!(!r.body.contains(&m.version.to_string()));
        assert!(!r.body.contains(m.description.as_ref()));
    }
    assert!(
        !r.body.contains("<html"),
        "a plain answer, not the error page"
    );
}
