//! User management, tenants and the tenant policy page against a real
//! PostgreSQL (a fresh database per test): invitations by link, role
//! changes and removals with the last-owner rule, sessions that lose a
//! tenant at once, switching tenants, the per-tenant second-factor
//! requirement, and a policy edit that becomes a change request judged by
//! the policy in force. Needs DATABASE_URL (scripts/test.sh starts PostgreSQL).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use axum::http::StatusCode;
use chrono::Duration;
use common::*;
use sha2::{Digest, Sha256};
use sqlx::PgPool;
use zentralink_model::config::{ConfigKind, ConfigObject, config_digest, diff};
use zentralink_model::secrets::SecretString;
use zentralink_store::approvals::NewConfig;
use zentralink_store::audit::{Actor, AuditEvent};
use zentralink_store::{MIGRATOR, TenantId, UserId};
use zentralink_web::Clock;

fn assert_redirect(r: &Resp, to: &str) {
    assert_eq!(
        r.status,
        StatusCode::SEE_OTHER,
        "expected a redirect to {to}: {}",
        r.body
    );
    assert_eq!(r.location(), Some(to));
}

/// A user with [`PASSWORD`] and a role in the tenant.
async fn member(h: &Harness, tenant: TenantId, email: &str, role: &str) -> UserId {
    let hash = zentralink_web::password::PasswordHasher::new(1)
        .unwrap()
        .hash(&SecretString::new(PASSWORD))
        .await
        .unwrap();
    let user = match h.store.user_credentials_by_email(email).await.unwrap() {
        Some(c) => c.id,
        None => h.store.create_user(email, email, &hash).await.unwrap(),
    };
    h.store.set_membership(tenant, user, role).await.unwrap();
    user
}

async fn signed_in(h: &Harness, email: &str) -> Browser {
    let mut b = h.browser();
    assert_redirect(&b.login(email, PASSWORD).await, "/dashboard");
    b
}

/// The token of the invitation link on the page.
fn invitation_token(html: &str) -> String {
    // Templates escape `/` as `&#x2f;` (browsers read it back as `/`).
    let html = html.replace("&#x2f;", "/");
    let marker = "https://zl.test/invitations/";
    let start = html.find(marker).expect("no invitation link") + marker.len();
    html[start..]
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_')
        .collect()
}

async fn invite(b: &mut Browser, email: &str, role: &str) -> Resp {
    let csrf = b.get("/members").await.csrf();
    b.post(
        "/members/invite",
        &[("email", email), ("role", role), ("csrf", &csrf)],
    )
    .await
}

async fn role_of(h: &Harness, tenant: TenantId, user: UserId) -> Option<String> {
    h.store.membership(tenant, user).await.ok()
}

#[sqlx::test(migrator = "MIGRATOR")]
async fn every_member_sees_the_members_and_only_user_managers_change_them(pool: PgPool) {
    let h = harness(pool);
    let (acme, _) = h.owner("acme", "ann@acme.example").await;
    let vic = member(&h, acme, "vic@acme.example", "VIEWER").await;
    let mut viewer = signed_in(&h, "vic@acme.example").await;
    let page = viewer.get("/members").await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    assert!(page.body.contains("ann@acme.example") && page.body.contains("OWNER"));
    assert!(
        !page.body.contains("/members/invite"),
        "a viewer gets no forms"
    );
    let csrf = page.csrf();
    for (path, form) in [
        (
            "/members/invite",
            vec![("email", "x@acme.example"), ("role", "VIEWER")],
        ),
        (&*format!("/members/{vic}/role"), vec![("role", "ADMIN")]),
        (&*format!("/members/{vic}/remove"), vec![]),
    ] {
        let mut form = form;
        form.push(("csrf", &csrf));
        let r = viewer.post(path, &form).await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "{path}: {}", r.body);
    }
    assert_eq!(role_of(&h, acme, vic).await.as_deref(), Some("VIEWER"));
    assert_eq!(viewer.get("/tenant").await.status, StatusCode::FORBIDDEN);
}

#[sqlx::test(migrator = "MIGRATOR")]
async fn an_invitation_link_makes_an_account_once_and_is_stored_only_hashed(pool: PgPool) {
    let h = harness(pool);
    let (acme, _) = h.owner("acme", "ann@acme.example").await;
    let mut ann = signed_in(&h, "ann@acme.example").await;
    let r = invite(&mut ann, "New@Acme.example", "MANAGER").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert!(
        r.body
            .contains("https:&#x2f;&#x2f;zl.test&#x2f;invitations&#x2f;"),
        "{}",
        r.body
    );
    let token = invitation_token(&r.body);
    assert!(token.len() >= 43, "{token}");
    // Only the SHA-256 is kept; the link is shown that once.
    let stored: Vec<Vec<u8>> = sqlx::query_scalar("SELECT token_sha256 FROM invitations")
        .fetch_all(h.store.pool())
        .await
        .unwrap();
    assert_eq!(stored, vec![Sha256::digest(token.as_bytes()).to_vec()]);
    let members = ann.get("/members").await;
    assert!(members.body.contains("new@acme.example"), "listed as open");
    assert!(
        !members.body.contains(&token),
        "the link is shown only once"
    );

    let mut new = h.browser_from("198.51.100.20");
    let page = new.get(&format!("/invitations/{token}")).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    assert!(page.body.contains("new@acme.example") && page.body.contains("MANAGER"));
    let csrf = page.csrf();
    let path = format!("/invitations/{token}");
    let r = new
        .post(
            &path,
            &[
                ("display_name", "Nia New"),
                ("password", "a long enough password"),
                ("password_confirm", "another long password"),
                ("csrf", &csrf),
            ],
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(r.body.contains("differ"), "{}", r.body);
    let r = new
        .post(
            &path,
            &[
                ("display_name", "Nia New"),
                ("password", "short"),
                ("password_confirm", "short"),
                ("csrf", &csrf),
            ],
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    // Without the form's token nothing happens.
    let forged = new
        .post(
            &path,
            &[
                ("display_name", "Nia New"),
                ("password", "a long enough password"),
                ("password_confirm", "a long enough password"),
                ("csrf", "forged"),
            ],
        )
        .await;
    assert_eq!(forged.status, StatusCode::FORBIDDEN);
    let r = new
        .post(
            &path,
            &[
                ("display_name", "Nia New"),
                ("password", "a long enough password"),
                ("password_confirm", "a long enough password"),
                ("csrf", &csrf),
            ],
        )
        .await;
    assert_redirect(&r, "/dashboard");
    let dash = new.get("/dashboard").await;
    assert_eq!(dash.status, StatusCode::OK);
    assert!(dash.body.contains("new@acme.example") && dash.body.contains("MANAGER"));
    let nia = h
        .store
        .user_credentials_by_email("new@acme.example")
        .await
        .unwrap()
        .unwrap();
    assert!(
        nia.password_hash
            .starts_with("$argon2id$v=19$m=19456,t=2,p=1$")
    );
    assert_eq!(role_of(&h, acme, nia.id).await.as_deref(), Some("MANAGER"));
    // She signs in with the password she chose.
    assert_redirect(
        &h.browser()
            .login("new@acme.example", "a long enough password")
            .await,
        "/dashboard",
    );

    // Used: the link works no more, for anyone.
    let mut again = h.browser_from("203.0.113.5");
    let r = again.get(&path).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert!(r.body.contains("does not work"), "{}", r.body);

    let actions = h.audit_actions().await;
    for a in ["invitation.created", "invitation.accepted"] {
        assert!(actions.contains(&a.to_owned()), "{a}: {actions:?}");
    }
    for row in h.audit_rows().await {
        assert!(!row.contains(&token), "the token in an audit event: {row}");
        assert!(!row.contains("a long enough password"), "{row}");
    }
}

#[sqlx::test(migrator = "MIGRATOR")]
async fn invitations_expire_and_can_be_revoked(pool: PgPool) {
    let h = harness(pool);
    h.owner("acme", "ann@acme.example").await;
    let mut ann = signed_in(&h, "ann@acme.example").await;
    let late = invitation_token(&invite(&mut ann, "late@acme.example", "VIEWER").await.body);
    let revoked = invitation_token(&invite(&mut ann, "gone@acme.example", "VIEWER").await.body);
    let id: uuid::Uuid =
        sqlx::query_scalar("SELECT id FROM invitations WHERE email = 'gone@acme.example'")
            .fetch_one(h.store.pool())
            .await
            .unwrap();
    let csrf = ann.session_csrf().await;
    assert_redirect(
        &ann.post(
            &format!("/members/invitations/{id}/revoke"),
            &[("csrf", &csrf)],
        )
        .await,
        "/members",
    );
    let mut visitor = h.browser_from("198.51.100.30");
    assert_eq!(
        visitor.get(&format!("/invitations/{revoked}")).await.status,
        StatusCode::NOT_FOUND
    );
    // Revoked already: a second revocation finds nothing.
    assert_eq!(
        ann.post(
            &format!("/members/invitations/{id}/revoke"),
            &[("csrf", &csrf)]
        )
        .await
        .status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        visitor.get(&format!("/invitations/{late}")).await.status,
        StatusCode::OK
    );
    h.clock.advance(Duration::days(7) + Duration::seconds(1));
    assert_eq!(
        visitor.get(&format!("/invitations/{late}")).await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        visitor.get("/invitations/not-a-token").await.status,
        StatusCode::NOT_FOUND
    );
    assert!(
        h.audit_actions()
            .await
            .contains(&"invitation.revoked".to_owned())
    );
}

#[sqlx::test(migrator = "MIGRATOR")]
async fn a_signed_in_person_joins_and_switches_tenants_with_new_session_ids(pool: PgPool) {
    let h = harness(pool);
    let (acme, _) = h.owner("acme", "ann@acme.example").await;
    let (globex, gus) = h.owner("globex", "gus@globex.example").await;
    h.owner("initech", "ian@initech.example").await;
    let mut ann = signed_in(&h, "ann@acme.example").await;
    let token = invitation_token(&invite(&mut ann, "gus@globex.example", "ADMIN").await.body);

    let mut gus_b = signed_in(&h, "gus@globex.example").await;
    let path = format!("/invitations/{token}");
    // Someone else signed in cannot take Gus's invitation.
    let mut ann2 = signed_in(&h, "ann@acme.example").await;
    assert_eq!(ann2.get(&path).await.status, StatusCode::FORBIDDEN);
    let page = gus_b.get(&path).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    assert!(page.body.contains("Join"), "{}", page.body);
    let before = gus_b.session_cookie().unwrap();
    let r = gus_b.post(&path, &[("csrf", &page.csrf())]).await;
    assert_redirect(&r, "/dashboard");
    let after = gus_b.session_cookie().unwrap();
    assert_ne!(before, after, "joining starts a new session");
    assert_eq!(role_of(&h, acme, gus).await.as_deref(), Some("ADMIN"));
    let members = gus_b.get("/members").await;
    assert!(members.body.contains("Acme") || members.body.contains("acme"));
    assert!(
        members.body.contains("ann@acme.example"),
        "now in acme: {}",
        members.body
    );
    assert!(
        members.body.contains("Switch to globex"),
        "{}",
        members.body
    );

    let csrf = members.csrf();
    // Not a member of initech: not found, and nothing changes.
    let r = gus_b
        .post("/tenant/switch", &[("tenant", "initech"), ("csrf", &csrf)])
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert_eq!(
        gus_b
            .post("/tenant/switch", &[("tenant", "globex"), ("csrf", "x")])
            .await
            .status,
        StatusCode::FORBIDDEN
    );
    let r = gus_b
        .post("/tenant/switch", &[("tenant", "globex"), ("csrf", &csrf)])
        .await;
    assert_redirect(&r, "/dashboard");
    assert_ne!(gus_b.session_cookie().unwrap(), after, "a new session id");
    let members = gus_b.get("/members").await;
    assert!(
        members.body.contains("gus@globex.example") && !members.body.contains("ann@acme.example"),
        "{}",
        members.body
    );
    let mut stale = h.browser();
    stale.cookies.insert("__Host-zl_session".into(), after);
    assert_redirect(&stale.get("/members").await, "/login");
    let switched: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM audit_events WHERE action = 'tenant.switched' AND tenant_id = $1",
    )
    .bind(globex)
    .fetch_one(h.store.pool())
    .await
    .unwrap();
    assert_eq!(switched, 1);
}

#[sqlx::test(migrator = "MIGRATOR")]
async fn the_last_owner_is_never_removed_or_demoted(pool: PgPool) {
    let h = harness(pool);
    let (acme, ann) = h.owner("acme", "ann@acme.example").await;
    let adam = member(&h, acme, "adam@acme.example", "ADMIN").await;
    let mut ann_b = signed_in(&h, "ann@acme.example").await;
    let csrf = ann_b.session_csrf().await;
    let r = ann_b
        .post(
            &format!("/members/{ann}/role"),
            &[("role", "ADMIN"), ("csrf", &csrf)],
        )
        .await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{}", r.body);
    assert!(r.body.contains("last owner"), "{}", r.body);
    let r = ann_b
        .post(&format!("/members/{ann}/remove"), &[("csrf", &csrf)])
        .await;
    assert_eq!(r.status, StatusCode::CONFLICT);
    assert_eq!(role_of(&h, acme, ann).await.as_deref(), Some("OWNER"));

    // An admin manages users but never makes or unmakes an owner.
    let mut adam_b = signed_in(&h, "adam@acme.example").await;
    let csrf_adam = adam_b.session_csrf().await;
    for (path, form) in [
        (
            format!("/members/{ann}/role"),
            vec![("role", "VIEWER"), ("csrf", csrf_adam.as_str())],
        ),
        (
            format!("/members/{ann}/remove"),
            vec![("csrf", csrf_adam.as_str())],
        ),
        (
            format!("/members/{adam}/role"),
            vec![("role", "OWNER"), ("csrf", csrf_adam.as_str())],
        ),
    ] {
        let r = adam_b.post(&path, &form).await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "{path}: {}", r.body);
    }
    let r = invite(&mut adam_b, "boss@acme.example", "OWNER").await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert_eq!(role_of(&h, acme, ann).await.as_deref(), Some("OWNER"));
    assert_eq!(role_of(&h, acme, adam).await.as_deref(), Some("ADMIN"));

    // Two owners demoting each other at the same moment: one stays owner.
    let bea = member(&h, acme, "bea@acme.example", "OWNER").await;
    for _ in 0..5 {
        let event =
            |who: UserId| AuditEvent::new(Some(acme), Actor::User(who), "member.role_changed");
        let (a, b) = tokio::join!(
            h.store
                .change_member_role(acme, ann, "ADMIN", true, event(bea)),
            h.store
                .change_member_role(acme, bea, "ADMIN", true, event(ann)),
        );
        let (a, b) = (a.unwrap(), b.unwrap());
        let owners: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM memberships WHERE tenant_id = $1 AND role = 'OWNER'",
        )
        .bind(acme)
        .fetch_one(h.store.pool())
        .await
        .unwrap();
        assert_eq!(owners, 1, "{a:?} {b:?}");
        // Back to two owners for the next round.
        h.store.set_membership(acme, ann, "OWNER").await.unwrap();
        h.store.set_membership(acme, bea, "OWNER").await.unwrap();
    }
    // With two owners, an owner may step down: their own session gets a new id.
    let mut ann_b = signed_in(&h, "ann@acme.example").await;
    let before = ann_b.session_cookie().unwrap();
    let csrf = ann_b.session_csrf().await;
    assert_redirect(
        &ann_b
            .post(
                &format!("/members/{ann}/role"),
                &[("role", "ADMIN"), ("csrf", &csrf)],
            )
            .await,
        "/members",
    );
    assert_ne!(ann_b.session_cookie().unwrap(), before);
    let page = ann_b.get("/members").await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.body.contains("(ADMIN)"), "{}", page.body);
    let changed = h
        .audit_rows()
        .await
        .into_iter()
        .filter(|r| r.contains("member.role_changed") && r.contains("192.0.2.10"))
        .count();
    assert_eq!(changed, 1);
}

#[sqlx::test(migrator = "MIGRATOR")]
async fn a_member_whose_role_changes_or_who_is_removed_loses_the_tenant_at_once(pool: PgPool) {
    let h = harness(pool);
    let (acme, _) = h.owner("acme", "ann@acme.example").await;
    let (globex, _) = h.owner("globex", "gus@globex.example").await;
    let max = member(&h, acme, "max@acme.example", "MANAGER").await;
    member(&h, globex, "max@acme.example", "VIEWER").await;
    let mut ann = signed_in(&h, "ann@acme.example").await;
    let mut max_b = signed_in(&h, "max@acme.example").await;
    // Max's first tenant by slug is acme.
    assert!(max_b.get("/members").await.body.contains("(MANAGER)"));
    let mut max_globex = signed_in(&h, "max@acme.example").await;
    let csrf = max_globex.session_csrf().await;
    max_globex
        .post("/tenant/switch", &[("tenant", "globex"), ("csrf", &csrf)])
        .await;

    let csrf = ann.session_csrf().await;
    assert_redirect(
        &ann.post(
            &format!("/members/{max}/role"),
            &[("role", "VIEWER"), ("csrf", &csrf)],
        )
        .await,
        "/members",
    );
    // The old session in acme is over: he signs in again, as a viewer.
    assert_redirect(&max_b.get("/dashboard").await, "/login");
    let mut max_b = signed_in(&h, "max@acme.example").await;
    assert!(max_b.get("/members").await.body.contains("(VIEWER)"));

    assert_redirect(
        &ann.post(&format!("/members/{max}/remove"), &[("csrf", &csrf)])
            .await,
        "/members",
    );
    assert_eq!(role_of(&h, acme, max).await, None);
    assert_redirect(&max_b.get("/members").await, "/login");
    // His session in the other tenant goes on.
    let other = max_globex.get("/members").await;
    assert_eq!(other.status, StatusCode::OK);
    assert!(other.body.contains("gus@globex.example"));
    // A session that still names acme (made before the removal, by hand)
    // finds nothing there.
    let token = "a-session-token-made-by-the-test-000000000000";
    h.store
        .create_session(&zentralink_store::sessions::NewSession {
            token_sha256: &Sha256::digest(token.as_bytes()),
            user: max,
            tenant: Some(acme),
            second_factor: false,
            now: h.clock.now(),
            expires_at: h.clock.now() + Duration::days(1),
        })
        .await
        .unwrap();
    let mut forged = h.browser();
    forged
        .cookies
        .insert("__Host-zl_session".into(), token.into());
    assert_eq!(forged.get("/members").await.status, StatusCode::NOT_FOUND);
    assert_eq!(forged.get("/tenant").await.status, StatusCode::NOT_FOUND);
    let rows = h.audit_rows().await;
    assert!(rows.iter().any(|r| r.contains("member.removed")));
    assert!(
        rows.iter().any(
            |r| r.contains("member.role_changed") && r.contains("\"to\": \"VIEWER\"")
                || r.contains("member.role_changed") && r.contains("\"to\":\"VIEWER\"")
        ),
        "{rows:?}"
    );
}

#[sqlx::test(migrator = "MIGRATOR")]
async fn another_tenants_members_and_invitations_are_not_found(pool: PgPool) {
    let h = harness(pool);
    let (acme, _) = h.owner("acme", "ann@acme.example").await;
    h.owner("globex", "gus@globex.example").await;
    let vic = member(&h, acme, "vic@acme.example", "VIEWER").await;
    let mut ann = signed_in(&h, "ann@acme.example").await;
    invite(&mut ann, "new@acme.example", "VIEWER").await;
    let invitation: uuid::Uuid = sqlx::query_scalar("SELECT id FROM invitations")
        .fetch_one(h.store.pool())
        .await
        .unwrap();
    let mut gus = signed_in(&h, "gus@globex.example").await;
    let csrf = gus.session_csrf().await;
    for (path, form) in [
        (format!("/members/{vic}/role"), vec![("role", "ADMIN")]),
        (format!("/members/{vic}/remove"), vec![]),
        (format!("/members/invitations/{invitation}/revoke"), vec![]),
        (
            "/members/not-a-uuid/role".to_owned(),
            vec![("role", "ADMIN")],
        ),
    ] {
        let mut form = form;
        form.push(("csrf", &csrf));
        let r = gus.post(&path, &form).await;
        assert_eq!(r.status, StatusCode::NOT_FOUND, "{path}: {}", r.body);
        assert!(!r.body.contains("acme"), "{}", r.body);
    }
    assert_eq!(role_of(&h, acme, vic).await.as_deref(), Some("VIEWER"));
    assert!(!gus.get("/members").await.body.contains("vic@acme.example"));
    // Anonymous visitors are sent to sign in.
    let mut anon = h.browser();
    for path in ["/members", "/tenant"] {
        assert_redirect(&anon.get(path).await, "/login");
    }
    for path in [
        "/members/invite".to_owned(),
        format!("/members/{vic}/role"),
        format!("/members/{vic}/remove"),
        format!("/members/invitations/{invitation}/revoke"),
        "/tenant/2fa".to_owned(),
        "/tenant/policy".to_owned(),
        "/tenant/switch".to_owned(),
    ] {
        assert_redirect(&anon.post(&path, &[("csrf", "x")]).await, "/login");
    }
    // An invitation link that does not exist is not found, for anyone.
    assert_eq!(
        anon.get("/invitations/no-such-token").await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        anon.post("/invitations/no-such-token", &[("csrf", "x")])
            .await
            .status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        gus.post("/invitations/no-such-token", &[("csrf", "x")])
            .await
            .status,
        StatusCode::NOT_FOUND
    );
}

#[sqlx::test(migrator = "MIGRATOR")]
async fn a_tenant_requiring_2fa_keeps_members_without_it_on_the_enrolment_page(pool: PgPool) {
    let h = harness(pool);
    let (acme, _) = h.owner("acme", "ann@acme.example").await;
    member(&h, acme, "max@acme.example", "MANAGER").await;
    let mut ann = signed_in(&h, "ann@acme.example").await;
    let mut max = signed_in(&h, "max@acme.example").await;
    // Who requires it must have it.
    let csrf = ann.session_csrf().await;
    let r = ann
        .post("/tenant/2fa", &[("require_2fa", "on"), ("csrf", &csrf)])
        .await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{}", r.body);
    enrol(&h, &mut ann).await;
    let csrf = ann.session_csrf().await;
    assert_redirect(
        &ann.post("/tenant/2fa", &[("require_2fa", "on"), ("csrf", &csrf)])
            .await,
        "/tenant",
    );
    assert!(
        ann.get("/tenant")
            .await
            .body
            .contains("name=\"require_2fa\" value=\"on\" checked")
    );
    // Max, signed in already, reaches nothing of the tenant but enrolment.
    for path in ["/dashboard", "/members", "/tenant", "/zones/x", "/"] {
        assert_redirect(&max.get(path).await, "/account/2fa");
    }
    let csrf = max.session_csrf().await;
    assert_redirect(
        &max.post(
            "/members/invite",
            &[
                ("email", "x@acme.example"),
                ("role", "VIEWER"),
                ("csrf", &csrf),
            ],
        )
        .await,
        "/account/2fa",
    );
    // Signing in again lands there too.
    let mut fresh = h.browser();
    assert_redirect(
        &fresh.login("max@acme.example", PASSWORD).await,
        "/dashboard",
    );
    assert_redirect(&fresh.get("/dashboard").await, "/account/2fa");
    // Once enrolled, the tenant opens.
    enrol(&h, &mut max).await;
    assert_eq!(max.get("/dashboard").await.status, StatusCode::OK);
    assert_eq!(max.get("/members").await.status, StatusCode::OK);

    let csrf = ann.session_csrf().await;
    assert_redirect(
        &ann.post("/tenant/2fa", &[("csrf", &csrf)]).await,
        "/tenant",
    );
    assert_eq!(max.get("/tenant").await.status, StatusCode::FORBIDDEN);
    let rows: Vec<String> = h
        .audit_rows()
        .await
        .into_iter()
        .filter(|r| r.contains("tenant.require_2fa_changed"))
        .collect();
    assert_eq!(rows.len(), 2, "{rows:?}");
    assert!(rows[0].contains("\"require_2fa\": true") || rows[0].contains("\"require_2fa\":true"));
}

// ---------------------------------------------------------------- the policy page

const POLICY_BEFORE: &str =
    r#"{"approvals": {"minApprovals": 2, "requiredFor": {"recordTypes": ["MX", "NS"]}}}"#;

async fn put_config_in_force(h: &Harness, tenant: TenantId) -> Vec<ConfigObject> {
    let objects = vec![
        ConfigObject {
            kind: ConfigKind::Tenant,
            namespace: String::new(),
            name: "acme".into(),
            spec: serde_json::json!({
                "displayName": "Acme", "namespaces": ["acme", "acme-extra"],
                "allowedDomains": ["acme.example."]
            }),
        },
        ConfigObject {
            kind: ConfigKind::TenantPolicy,
            namespace: "acme".into(),
            name: "policy".into(),
            spec: serde_json::from_str(POLICY_BEFORE).unwrap(),
        },
    ];
    let configs: Vec<NewConfig> = objects
        .iter()
        .map(|o| NewConfig {
            kind: o.kind.as_str().into(),
            namespace: o.namespace.clone(),
            name: o.name.clone(),
            spec: o.spec.clone(),
            spec_digest: o.spec_digest(),
        })
        .collect();
    h.store
        .accept_configs(
            tenant,
            &configs,
            "bootstrap",
            Some("rev1"),
            &AuditEvent::new(Some(tenant), Actor::System, "config.bootstrapped"),
        )
        .await
        .unwrap();
    objects
}

const EDITED: &str = "apiVersion: dns.zentralink.net/v1alpha1
kind: TenantPolicy
metadata:
  name: policy
  namespace: acme
spec:
  approvals:
    minApprovals: 1
    requiredFor:
      recordTypes: [MX, NS]
";

#[sqlx::test(migrator = "MIGRATOR")]
async fn a_policy_edit_becomes_a_change_request_judged_by_the_policy_in_force(pool: PgPool) {
    let h = harness(pool);
    let (acme, _) = h.owner("acme", "ann@acme.example").await;
    member(&h, acme, "max@acme.example", "MANAGER").await;
    let mut ann = signed_in(&h, "ann@acme.example").await;
    // Nothing in force yet: nothing to edit.
    let csrf = ann.session_csrf().await;
    let r = ann
        .post("/tenant/policy", &[("yaml", EDITED), ("csrf", &csrf)])
        .await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{}", r.body);

    let in_force = put_config_in_force(&h, acme).await;
    let page = ann.get("/tenant").await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    assert!(page.body.contains("minApprovals: 2"), "{}", page.body);
    assert!(
        page.body.contains("2 approval(s) by OWNER or ADMIN"),
        "{}",
        page.body
    );

    // Errors name the line and the field.
    let bad = EDITED.replace("minApprovals: 1", "minApprovals: 0");
    let r = ann
        .post("/tenant/policy", &[("yaml", &bad), ("csrf", &csrf)])
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.body);
    assert!(
        r.body
            .contains("line 8: <code>spec.approvals.minApprovals</code>"),
        "{}",
        r.body
    );
    assert!(
        r.body.contains("minApprovals: 0"),
        "the edit is shown again"
    );
    let unknown = EDITED.replace(
        "    minApprovals: 1\n",
        "    minApprovals: 1\n    quorum: 3\n",
    );
    let r = ann
        .post("/tenant/policy", &[("yaml", &unknown), ("csrf", &csrf)])
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(r.body.contains("line 9"), "{}", r.body);
    assert!(r.body.contains("quorum"), "{}", r.body);
    let foreign = EDITED.replace("namespace: acme", "namespace: globex");
    let r = ann
        .post("/tenant/policy", &[("yaml", &foreign), ("csrf", &csrf)])
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(r.body.contains("metadata.namespace"), "{}", r.body);

    // A valid edit: a configuration change request, nothing in force changes.
    let r = ann
        .post("/tenant/policy", &[("yaml", EDITED), ("csrf", &csrf)])
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let requests: Vec<(String, String, String, String, String, Option<String>)> = sqlx::query_as(
        "SELECT name, kind, state, plan_digest, requester, revision FROM dns_change_requests WHERE tenant_id = $1",
    )
    .bind(acme)
    .fetch_all(h.store.pool())
    .await
    .unwrap();
    assert_eq!(requests.len(), 1, "{requests:?}");
    let (name, kind, state, digest, requester, revision) = requests[0].clone();
    assert_eq!((kind.as_str(), state.as_str()), ("config", "Pending"));
    assert_eq!(requester, "ann@acme.example <ann@acme.example>");
    assert_eq!(revision.as_deref(), Some("web"));
    let mut declared = in_force.clone();
    let edited: zentralink_model::resources::TenantPolicy = serde_yaml::from_str(EDITED).unwrap();
    declared[1].spec = serde_json::to_value(&edited.spec).unwrap();
    let expected = config_digest("acme", &diff(&in_force, &declared));
    assert_eq!(digest, expected.to_string(), "the digest approvers sign");
    assert_eq!(name, format!("config-acme-{}", expected.short(12)));
    assert!(
        r.body.contains(&name) && r.body.contains("needs 2 approvals"),
        "{}",
        r.body
    );
    assert!(r.body.contains(&format!("zentralink approve {name}")));
    let stored = h.store.tenant_configs(acme).await.unwrap();
    let policy = stored.iter().find(|c| c.kind == "TenantPolicy").unwrap();
    assert_eq!(
        policy.spec,
        serde_json::from_str::<serde_json::Value>(POLICY_BEFORE).unwrap(),
        "the policy in force stays until the request is approved"
    );
    // The same edit again opens no second request; no change opens none.
    ann.post("/tenant/policy", &[("yaml", EDITED), ("csrf", &csrf)])
        .await;
    let page = ann.get("/tenant").await;
    let same: String = serde_yaml::to_string(&serde_json::json!({
        "apiVersion": "dns.zentralink.net/v1alpha1", "kind": "TenantPolicy",
        "metadata": {"name": "policy", "namespace": "acme"},
        "spec": serde_json::from_str::<serde_json::Value>(POLICY_BEFORE).unwrap(),
    }))
    .unwrap();
    assert!(page.body.contains("minApprovals: 2"));
    let r = ann
        .post("/tenant/policy", &[("yaml", &same), ("csrf", &csrf)])
        .await;
    assert!(r.body.contains("nothing to request"), "{}", r.body);
    let count: i64 = sqlx::query_scalar("SELECT count(*) FROM dns_change_requests")
        .fetch_one(h.store.pool())
        .await
        .unwrap();
    assert_eq!(count, 1);
    let rows = h.audit_rows().await;
    let requested: Vec<&String> = rows
        .iter()
        .filter(|r| r.contains("tenant.policy_edit_requested"))
        .collect();
    assert_eq!(requested.len(), 1, "{rows:?}");
    assert!(requested[0].contains(&digest));

    // A manager may not see or edit the tenant's policy.
    let mut max = signed_in(&h, "max@acme.example").await;
    assert_eq!(max.get("/tenant").await.status, StatusCode::FORBIDDEN);
    let csrf = max.session_csrf().await;
    assert_eq!(
        max.post("/tenant/policy", &[("yaml", EDITED), ("csrf", &csrf)])
            .await
            .status,
        StatusCode::FORBIDDEN
    );
}
