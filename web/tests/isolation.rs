//! Tenant isolation of every route the router has: the test walks
//! `zentralink_web::ROUTES` (the router's own table, so a route added
//! tomorrow is covered without touching this file), fills each path
//! parameter with ids of objects that belong to tenant A, and calls the
//! route as a signed-in OWNER of another tenant and as an anonymous visitor.
//! Against a real PostgreSQL (a fresh database per test).
//!
//! - The outsider gets 404 for every route with an object id in its path,
//!   and tenant A's names and ids never appear in any answer (nor after a
//!   form post, on any page of the outsider's session).
//! - The anonymous visitor is sent to sign in (or gets 404), never a page
//!   with data; only the few routes public by design ([`PUBLIC`]) answer.
//! - Afterwards tenant A's members, invitations, change requests and
//!   approvals are as they were.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use axum::body::Body;
use axum::http::header::{CONTENT_TYPE, ORIGIN};
use axum::http::{Method, Request, StatusCode};
use chrono::Duration;
use common::*;
use sqlx::PgPool;
use zentralink_model::secrets::SecretString;
use zentralink_model::{ZoneContent, ZoneName};
use zentralink_store::audit::{Actor, AuditEvent};
use zentralink_store::changes::{NewChangeRequest, RequestKind};
use zentralink_store::connections::NewConnection;
use zentralink_store::members::NewInvitation;
use zentralink_store::notifications::NewNotification;
use zentralink_store::sessions::NewSession;
use zentralink_store::snapshots::SnapshotReason;
use zentralink_store::tickets::{Decision, NewComment, NewTicket};
use zentralink_store::{MIGRATOR, TenantId};
use zentralink_web::password::PasswordHasher;
use zentralink_web::session::{cookie_name, csrf_token, new_token, token_sha256};
use zentralink_web::{Clock, ROUTES};

/// Routes public by design: anyone may open them, signed in or not.
const PUBLIC: &[(&str, &str)] = &[
    ("get", "/login"),
    ("post", "/login"),
    ("get", "/api/healthz"),
    ("get", "/static/style.css"),
    ("get", "/static/tickets.js"),
    ("get", "/static/tickets.css"),
    ("get", "/status"),
    ("get", "/security"),
    ("get", "/toms"),
    ("get", "/dpa"),
    ("get", "/integrations"),
    ("get", "/subprocessors"),
    ("get", "/.well-known/security.txt"),
    // Not a session's: the cron caller's bearer token decides (401 without it).
    ("post", "/api/cron/{job}"),
];

/// Public routes whose path parameter names no object of a tenant (a cron
/// job's name): an outsider is answered as anyone is, not with 404.
const NOT_TENANT_OBJECTS: &[&str] = &["/api/cron/{job}"];

const A_SLUG: &str = "alpha-iso";
const A_NAME: &str = "Alpha Isolation Tenant";
const A_ZONE: &str = "alpha-iso-zone.example.";

/// Tenant A with one object of every kind the web service shows.
struct TenantA {
    id: TenantId,
    /// (kind, value) of each object id of tenant A, for path parameters.
    objects: Vec<(&'static str, String)>,
    /// Text that must never reach anyone outside tenant A.
    markers: Vec<String>,
}

impl TenantA {
    fn object(&self, kind: &str) -> Option<&str> {
        self.objects
            .iter()
            .find(|(k, _)| *k == kind)
            .map(|(_, v)| v.as_str())
    }
}

async fn password_hash() -> String {
    PasswordHasher::new(1)
        .unwrap()
        .hash(&SecretString::new(PASSWORD))
        .await
        .unwrap()
}

async fn seed_tenant_a(h: &Harness) -> TenantA {
    let (tenant, owner) = h.owner(A_SLUG, "owner@alpha-iso.example").await;
    sqlx::query("UPDATE tenants SET display_name = $1 WHERE id = $2")
        .bind(A_NAME)
        .bind(tenant)
        .execute(h.store.pool())
        .await
        .unwrap();
    let member = h
        .store
        .create_user(
            "member@alpha-iso.example",
            "Alpha Member",
            &password_hash().await,
        )
        .await
        .unwrap();
    h.store
        .set_membership(tenant, member, "MEMBER")
        .await
        .unwrap();
    let connection = h
        .store
        .upsert_connection(
            tenant,
            &NewConnection {
                namespace: A_SLUG,
                name: "alpha-iso-connection",
                provider_type: "powerdns",
                settings: serde_json::json!({"url": "http://alpha-iso-pdns.example:8081"}),
                credentials: Some(&SecretString::new("alpha-iso-credential")),
                mode: "ReadOnly",
                acknowledge_live_writes: false,
            },
        )
        .await
        .unwrap();
    let zone = h
        .store
        .upsert_zone(tenant, A_SLUG, "alpha-iso-main", A_ZONE, Some(connection))
        .await
        .unwrap();
    let snapshot = h
        .store
        .save_snapshot(
            tenant,
            zone,
            "powerdns",
            SnapshotReason::OnDemand,
            &ZoneContent::new(ZoneName::parse(A_ZONE).unwrap()),
        )
        .await
        .unwrap();
    let change_request = h
        .store
        .create_change_request(
            tenant,
            &NewChangeRequest {
                zone: Some(zone),
                name: "alpha-iso-change",
                plan: serde_json::json!({"changes": []}),
                plan_digest: "sha256:alpha-iso-digest",
                requester: "alpha-iso-requester",
                reason: Some("alpha-iso-reason"),
                rollback_to: None,
                kind: RequestKind::Declared,
                revision: None,
                expires_at: h.clock.now() + Duration::hours(72),
            },
        )
        .await
        .unwrap();
    let submission = h
        .store
        .submit_approval(
            tenant,
            change_request,
            &serde_json::json!({"approver": "alpha-iso-approver"}),
            "alpha-iso-fingerprint",
        )
        .await
        .unwrap();
    let now = h.clock.now();
    let invitation = h
        .store
        .create_invitation(
            tenant,
            &NewInvitation {
                token_sha256: &token_sha256("alpha-iso-invitation-token"),
                email: "invitee@alpha-iso.example",
                role: "ADMIN",
                invited_by: owner,
                now,
                expires_at: now + Duration::days(7),
            },
            AuditEvent::new(Some(tenant), Actor::User(owner), "member.invited"),
        )
        .await
        .unwrap();
    let event = h
        .store
        .audit(
            AuditEvent::new(Some(tenant), Actor::User(owner), "alpha.iso_action")
                .target("DnsZone", "alpha-iso/alpha-iso-main")
                .meta("note", "alpha-iso-audit-note"),
        )
        .await
        .unwrap();
    let ticket = h
        .store
        .open_ticket(
            tenant,
            &NewTicket {
                subject: "alpha-iso-ticket-subject",
                body: "alpha-iso-ticket-body",
                priority: "NORMAL",
                zone: Some(zone),
                change_request: Some(change_request),
                opened_by: owner,
                now,
            },
            AuditEvent::new(Some(tenant), Actor::User(owner), "ticket.opened"),
        )
        .await
        .unwrap()
        .id;
    h.store
        .comment_on_ticket(
            Some(tenant),
            ticket,
            &NewComment {
                author: owner,
                staff: true,
                body: "alpha-iso-internal-note",
                internal: true,
                now,
            },
            |_| Decision::Allow(None),
            AuditEvent::new(Some(tenant), Actor::User(owner), "ticket.commented"),
        )
        .await
        .unwrap();
    h.store
        .create_notification(&NewNotification {
            tenant,
            user: owner,
            event: "ticket_activity",
            title: "alpha-iso-notification-title",
            body: "alpha-iso-notification-body",
            link: None,
            audit_event_id: None,
            now,
        })
        .await
        .unwrap();
    let notification: uuid::Uuid =
        sqlx::query_scalar("SELECT id FROM notifications WHERE tenant_id = $1")
            .bind(tenant)
            .fetch_one(h.store.pool())
            .await
            .unwrap();
    h.store
        .queue_mail(
            Some(tenant),
            "mail@alpha-iso.example",
            "alpha-iso-mail-subject",
            "alpha-iso-mail-body",
        )
        .await
        .unwrap();
    let objects = vec![
        ("ticket", ticket.to_string()),
        ("notification", notification.to_string()),
        ("zone", zone.to_string()),
        ("change_request", change_request.to_string()),
        ("snapshot", snapshot.to_string()),
        ("connection", connection.to_string()),
        ("member", member.to_string()),
        ("owner", owner.to_string()),
        ("invitation", invitation.to_string()),
        ("submission", submission.to_string()),
        ("tenant", tenant.to_string()),
        ("tenant_slug", A_SLUG.to_owned()),
        ("audit_event", event.to_string()),
    ];
    let mut markers: Vec<String> = [
        "alpha-iso", // slug, zone, connection, names, notes all carry it
        A_NAME,
        "alpha-iso-zone",
        "owner@alpha-iso.example",
        "member@alpha-iso.example",
        "invitee@alpha-iso.example",
        "mail@alpha-iso.example",
    ]
    .iter()
    .map(|s| (*s).to_owned())
    .collect();
    markers.extend(
        objects
            .iter()
            .filter(|(k, _)| *k != "audit_event" && *k != "tenant_slug")
            .map(|(_, v)| v.clone()),
    );
    TenantA {
        id: tenant,
        objects,
        markers,
    }
}

/// The names of a path's parameters, `{id}` → `id`.
fn parameters(path: &str) -> Vec<&str> {
    path.split('/')
        .filter_map(|s| s.strip_prefix('{').and_then(|s| s.strip_suffix('}')))
        .map(|s| s.trim_start_matches('*'))
        .collect()
}

/// `path` with each parameter replaced by `value(parameter, segment before it)`.
fn fill(path: &str, value: impl Fn(&str, &str) -> String) -> String {
    let mut previous = "";
    let mut out = Vec::new();
    for segment in path.split('/') {
        match segment.strip_prefix('{').and_then(|s| s.strip_suffix('}')) {
            Some(name) => out.push(value(name.trim_start_matches('*'), previous)),
            None => out.push(segment.to_owned()),
        }
        previous = segment;
    }
    out.join("/")
}

/// The kind of object a parameter names, guessed from its name and the
/// path segment before it (`/zones/{id}` → zone).
fn kind_of(parameter: &str, previous: &str) -> Option<&'static str> {
    let words = format!("{previous} {parameter}").to_lowercase();
    let kinds: [(&str, &'static str); 11] = [
        ("ticket", "ticket"),
        ("notification", "notification"),
        ("snapshot", "snapshot"),
        ("change", "change_request"),
        ("request", "change_request"),
        ("approval", "submission"),
        ("connection", "connection"),
        ("invitation", "invitation"),
        ("member", "member"),
        ("user", "member"),
        ("zone", "zone"),
    ];
    if let Some((_, kind)) = kinds.iter().find(|(word, _)| words.contains(word)) {
        return Some(kind);
    }
    if words.contains("audit") || words.contains("event") {
        return Some("audit_event");
    }
    if words.contains("tenant") {
        return Some(if parameter.contains("slug") {
            "tenant_slug"
        } else {
            "tenant"
        });
    }
    None
}

/// The paths to call for a route: with every parameter set to each of
/// tenant A's object ids in turn, once with each parameter set to the
/// object its name suggests, and once with a fresh random uuid (an object
/// of no tenant: a parameter whose kind we cannot guess, e.g. an
/// invitation link's `{token}`, which is a capability and not an id of
/// tenant A, gets this and A's ids). A path without parameters as it is.
fn paths_for(route: &str, a: &TenantA) -> Vec<String> {
    if parameters(route).is_empty() {
        return vec![route.to_owned()];
    }
    let mut paths: Vec<String> = a
        .objects
        .iter()
        .map(|(_, v)| fill(route, |_, _| v.clone()))
        .collect();
    let guessed = fill(route, |name, previous| {
        kind_of(name, previous)
            .and_then(|k| a.object(k))
            .unwrap_or_else(|| a.object("zone").unwrap())
            .to_owned()
    });
    if !paths.contains(&guessed) {
        paths.push(guessed);
    }
    let fresh = uuid::Uuid::new_v4().to_string();
    paths.push(fill(route, |_, _| fresh.clone()));
    paths
}

/// A new tenant with a new OWNER and a signed-in session for them: a fresh
/// outsider for each call, so a call that changes the outsider's own tenant
/// or session (sign out, 2FA required, a role change) cannot hide what the
/// next call does.
async fn outsider(
    h: &Harness,
    hash: &str,
    n: usize,
    inside: Option<TenantId>,
) -> (Browser, String) {
    let slug = format!("outsider-{n}");
    let own = h
        .store
        .upsert_tenant(&slug, "Outsider Tenant")
        .await
        .unwrap();
    let user = h
        .store
        .create_user(&format!("{slug}@outsider.example"), "Outsider", hash)
        .await
        .unwrap();
    h.store.set_membership(own, user, "OWNER").await.unwrap();
    // The self-check of the probe: the same user as a member of tenant A, signed in there.
    let tenant = match inside {
        Some(a) => {
            h.store.set_membership(a, user, "OWNER").await.unwrap();
            a
        }
        None => own,
    };
    let token = new_token().unwrap();
    let now = h.clock.now();
    h.store
        .create_session(&NewSession {
            token_sha256: &token_sha256(&token),
            user,
            tenant: Some(tenant),
            second_factor: true,
            now,
            expires_at: now + Duration::days(1),
        })
        .await
        .unwrap();
    let mut b = h.browser();
    b.cookies.insert(
        cookie_name(h.config.secure_cookies).to_owned(),
        token.clone(),
    );
    (b, csrf_token(&token))
}

/// A form with the CSRF token and a value for every field our forms have,
/// the ones naming a tenant or an object set to tenant A's.
fn form(csrf: &str, a: &TenantA, tenant_field: &str) -> Vec<(String, String)> {
    let mut f: Vec<(String, String)> = [
        ("csrf", csrf),
        ("email", "probe@outsider.example"),
        ("role", "OWNER"),
        ("display_name", "Probe"),
        ("password", "probe-password-123456"),
        ("password_confirm", "probe-password-123456"),
        ("reason", "isolation probe"),
        ("require_2fa", "on"),
        ("yaml", "kind: TenantPolicy"),
        ("document", "{}"),
        ("signature", "probe"),
        ("approver", "probe"),
        ("decision", "Approve"),
        ("code", "000000"),
        ("tenant", tenant_field),
    ]
    .iter()
    .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
    .collect();
    for (field, kind) in [
        ("id", "zone"),
        ("zone", "zone"),
        ("zone_id", "zone"),
        ("snapshot", "snapshot"),
        ("change_request", "change_request"),
        ("connection", "connection"),
        ("user", "member"),
        ("member", "member"),
        ("invitation", "invitation"),
        ("tenant_id", "tenant"),
    ] {
        f.push((field.to_owned(), a.object(kind).unwrap().to_owned()));
    }
    f
}

fn encode(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

async fn call(b: &mut Browser, method: &str, path: &str, form: &[(String, String)]) -> Resp {
    let method = Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
    if method == Method::GET {
        return b.get(path).await;
    }
    let body: Vec<String> = form
        .iter()
        .map(|(k, v)| format!("{}={}", encode(k), encode(v)))
        .collect();
    let request = Request::builder()
        .method(method)
        .uri(path)
        .header(ORIGIN, b.origin.clone())
        .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(Body::from(body.join("&")))
        .unwrap();
    b.send(request).await
}

/// Follows the service's redirects (GET), at most four; every answer on the
/// way, the last one last.
async fn follow(b: &mut Browser, first: Resp) -> Vec<(String, Resp)> {
    let mut chain = vec![(String::new(), first)];
    for _ in 0..4 {
        let Some(next) = chain
            .last()
            .and_then(|(_, r)| r.location())
            .map(str::to_owned)
        else {
            break;
        };
        if !next.starts_with('/') || !chain.last().unwrap().1.status.is_redirection() {
            break;
        }
        let r = b.get(&next).await;
        chain.push((next, r));
    }
    chain
}

/// " → /next" for an answer reached by following a redirect.
fn via(step: &str) -> String {
    if step.is_empty() {
        String::new()
    } else {
        format!(" → {step}")
    }
}

/// The markers of tenant A a response shows, leaving out what the request
/// itself carried (a form may show what was typed).
fn leaks(r: &Resp, a: &TenantA, sent: &[String]) -> Vec<String> {
    let location = r.location().unwrap_or("");
    a.markers
        .iter()
        .filter(|m| !sent.iter().any(|s| s.contains(m.as_str())))
        .filter(|m| r.body.contains(m.as_str()) || location.contains(m.as_str()))
        .cloned()
        .collect()
}

/// Counts of tenant A's rows that no outsider may change.
async fn tenant_state(h: &Harness, tenant: TenantId) -> Vec<String> {
    let mut state: Vec<String> = sqlx::query_scalar(
        "SELECT u.email || ' ' || m.role FROM memberships m JOIN users u ON u.id = m.user_id
         WHERE m.tenant_id = $1 ORDER BY u.email",
    )
    .bind(tenant)
    .fetch_all(h.store.pool())
    .await
    .unwrap();
    for (what, sql) in [
        (
            "open invitations",
            "SELECT count(*) FROM invitations WHERE tenant_id = $1 AND accepted_at IS NULL AND revoked_at IS NULL",
        ),
        (
            "change requests",
            "SELECT count(*) FROM dns_change_requests WHERE tenant_id = $1",
        ),
        (
            "pending change requests",
            "SELECT count(*) FROM dns_change_requests WHERE tenant_id = $1 AND state = 'Pending'",
        ),
        (
            "approval submissions",
            "SELECT count(*) FROM approval_submissions WHERE tenant_id = $1",
        ),
        (
            "snapshots",
            "SELECT count(*) FROM snapshots WHERE tenant_id = $1",
        ),
        ("zones", "SELECT count(*) FROM zones WHERE tenant_id = $1"),
        (
            "2fa required",
            "SELECT count(*) FROM tenants WHERE id = $1 AND require_2fa",
        ),
    ] {
        let n: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(sql))
            .bind(tenant)
            .fetch_one(h.store.pool())
            .await
            .unwrap();
        state.push(format!("{what}: {n}"));
    }
    state
}

/// Calls every route of [`ROUTES`] as an outsider (as a member of tenant A
/// when `inside`, to show that the probe notices) and as an anonymous
/// visitor; returns what went wrong and how many calls were made (as an
/// outsider, as a visitor).
async fn probe(h: &Harness, a: &TenantA, inside: bool) -> (Vec<String>, usize, usize) {
    let hash = password_hash().await;
    assert!(ROUTES.len() >= 15, "the route table is there: {ROUTES:?}");
    // The pages a signed-in outsider can open without an id: looked at
    // again after every form post.
    let plain_pages: Vec<&str> = ROUTES
        .iter()
        .filter(|(m, p)| *m == "get" && parameters(p).is_empty())
        .map(|(_, p)| *p)
        .collect();

    let mut failures: Vec<String> = Vec::new();
    let mut calls = 0;
    let mut visits = 0;
    for (method, route) in ROUTES {
        let public = PUBLIC.contains(&(*method, *route));
        let has_ids = !parameters(route).is_empty() && !NOT_TENANT_OBJECTS.contains(route);
        // The `tenant` field of a form: A's id, and for forms without a path id also A's slug.
        let tenant_fields: Vec<&str> = if *method == "get" || has_ids {
            vec![a.object("tenant").unwrap()]
        } else {
            vec![a.object("tenant").unwrap(), A_SLUG]
        };
        for path in paths_for(route, a) {
            for tenant_field in &tenant_fields {
                // (a) A signed-in OWNER of another tenant.
                calls += 1;
                let (mut b, csrf) = outsider(h, &hash, calls, inside.then_some(a.id)).await;
                let f = form(&csrf, a, tenant_field);
                let mut sent: Vec<String> = vec![path.clone()];
                if *method != "get" {
                    sent.extend(f.iter().map(|(_, v)| v.clone()));
                }
                let r = call(&mut b, method, &path, &f).await;
                let label = format!(
                    "{} {path} as a member of another tenant",
                    method.to_uppercase()
                );
                if has_ids && r.status != StatusCode::NOT_FOUND {
                    failures.push(format!(
                        "{label}: {} (location {:?}), expected 404",
                        r.status,
                        r.location()
                    ));
                }
                for (step, resp) in follow(&mut b, r).await {
                    let shown = leaks(&resp, a, &sent);
                    if !shown.is_empty() {
                        failures.push(format!(
                            "{label}{}: {} shows tenant A's {shown:?}",
                            via(&step),
                            resp.status
                        ));
                    }
                }
                if *method != "get" {
                    // Whatever the post did, the outsider's pages still show nothing of A.
                    for page in &plain_pages {
                        let r = b.get(page).await;
                        let shown = leaks(&r, a, &[]);
                        if !shown.is_empty() {
                            failures.push(format!(
                                "GET {page} after {label}: {} shows tenant A's {shown:?}",
                                r.status
                            ));
                        }
                    }
                }
            }

            // (b) An anonymous visitor, with no session and so no valid CSRF token.
            visits += 1;
            let mut v = h.browser();
            let f = form("anonymous-has-no-session", a, a.object("tenant").unwrap());
            let r = call(&mut v, method, &path, &f).await;
            let label = format!("{} {path} as an anonymous visitor", method.to_uppercase());
            let mut sent = vec![path.clone()];
            if *method != "get" {
                sent.extend(f.iter().map(|(_, v)| v.clone()));
            }
            let chain = follow(&mut v, r).await;
            for (step, resp) in &chain {
                let shown = leaks(resp, a, &sent);
                if !shown.is_empty() {
                    failures.push(format!(
                        "{label}{}: {} shows tenant A's {shown:?}",
                        via(step),
                        resp.status
                    ));
                }
            }
            if public {
                continue;
            }
            let first = &chain[0].1;
            let (last_path, last) = chain.last().unwrap();
            let to_login = first.status.is_redirection()
                && last_path == "/login"
                && last.status == StatusCode::OK;
            let not_found = first.status == StatusCode::NOT_FOUND;
            if !(to_login || not_found) {
                failures.push(format!(
                    "{label}: {} (location {:?}), expected a redirect to /login or 404",
                    first.status,
                    first.location()
                ));
            }
        }
    }
    (failures, calls, visits)
}

#[sqlx::test(migrator = "MIGRATOR")]
async fn every_route_hides_tenant_a_from_members_of_other_tenants_and_from_visitors(pool: PgPool) {
    let h = harness(pool);
    let a = seed_tenant_a(&h).await;
    let before = tenant_state(&h, a.id).await;
    let (failures, calls, visits) = probe(&h, &a, false).await;
    eprintln!(
        "{} routes: {calls} calls as an outsider, {visits} as a visitor",
        ROUTES.len()
    );
    assert_eq!(
        tenant_state(&h, a.id).await,
        before,
        "tenant A's members, invitations, requests or settings changed"
    );
    assert!(
        failures.is_empty(),
        "{} calls failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

/// The probe is not blind: signed in as a member of tenant A, the same
/// calls open A's zone and show A's names, and it says so.
#[sqlx::test(migrator = "MIGRATOR")]
async fn the_probe_notices_when_the_caller_can_see_tenant_a(pool: PgPool) {
    let h = harness(pool);
    let a = seed_tenant_a(&h).await;
    let (failures, _, _) = probe(&h, &a, true).await;
    let zone = a.object("zone").unwrap();
    assert!(
        failures.iter().any(|f| f.starts_with(&format!(
            "GET /zones/{zone} as a member of another tenant: 200"
        ))),
        "{failures:#?}"
    );
    assert!(
        failures.iter().any(
            |f| f.starts_with("GET /dashboard as a member of another tenant")
                && f.contains("alpha-iso-zone")
        ),
        "{failures:#?}"
    );
}

#[test]
fn parameters_are_found_and_filled_in_any_route() {
    assert_eq!(
        parameters("/zones/{id}/snapshots/{snapshot}"),
        ["id", "snapshot"]
    );
    assert_eq!(parameters("/static/{*path}"), ["path"]);
    assert!(parameters("/dashboard").is_empty());
    let filled = fill("/zones/{id}/snapshots/{snapshot}", |name, previous| {
        format!("{previous}:{name}")
    });
    assert_eq!(filled, "/zones/zones:id/snapshots/snapshots:snapshot");
    assert_eq!(kind_of("id", "zones"), Some("zone"));
    assert_eq!(kind_of("id", "change-requests"), Some("change_request"));
    assert_eq!(kind_of("id", "invitations"), Some("invitation"));
    assert_eq!(kind_of("token", "invitations"), Some("invitation"));
    assert_eq!(kind_of("slug", "tenants"), Some("tenant_slug"));
    assert_eq!(kind_of("token", "reset"), None);
}
