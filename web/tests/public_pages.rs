//! The public pages (security, TOMs, data processing, integrations,
//! subprocessors) and `security.txt`: each answers without a session, with
//! the contacts the operator configured, no script, and claims that match
//! this code (its paths and its stores). Needs DATABASE_URL (scripts/test.sh
//! starts PostgreSQL).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use axum::http::StatusCode;
use common::*;
use sqlx::PgPool;
use zentralink_store::MIGRATOR;
use zentralink_web::{DEFAULT_PRIVACY_CONTACT, DEFAULT_SECURITY_CONTACT, WebConfig};

const PAGES: [(&str, &str); 5] = [
    ("/security", "Security posture"),
    ("/toms", "Technical and organisational measures"),
    ("/dpa", "Data processing"),
    ("/integrations", "Integrations"),
    ("/subprocessors", "Subprocessors"),
];

/// Templates escape `/` as `&#x2f;`; browsers read it back as `/`.
fn text(html: &str) -> String {
    html.replace("&#x2f;", "/")
}

#[sqlx::test(migrator = "MIGRATOR")]
async fn every_public_page_answers_a_visitor_without_script(pool: PgPool) {
    let h = harness(pool);
    let mut visitor = h.browser();
    for (path, heading) in PAGES {
        let r = visitor.get(path).await;
        assert_eq!(r.status, StatusCode::OK, "{path}: {}", r.body);
        assert!(
            r.body.contains(&format!("<h1>{heading}</h1>")),
            "{path}: {}",
            r.body
        );
        assert!(
            !r.body.to_lowercase().contains("<script"),
            "{path} has a script"
        );
        assert!(
            !r.body.contains("http://"),
            "{path} loads or links something over plain HTTP"
        );
        assert_eq!(
            r.header("cache-control").as_deref(),
            Some("public, max-age=300"),
            "{path}"
        );
        // Every page links the others (the footer).
        for (other, _) in PAGES {
            assert!(
                text(&r.body).contains(&format!("href=\"{other}\"")),
                "{path} lacks {other}"
            );
        }
    }
    assert!(visitor.cookies.is_empty(), "a public page set a cookie");
}

#[sqlx::test(migrator = "MIGRATOR")]
async fn the_contacts_are_the_operators(pool: PgPool) {
    let h = harness(pool.clone());
    let security = text(&h.browser().get("/security").await.body);
    assert!(security.contains(&format!("mailto:{DEFAULT_SECURITY_CONTACT}")));
    let dpa = text(&h.browser().get("/dpa").await.body);
    assert!(dpa.contains(&format!("mailto:{DEFAULT_PRIVACY_CONTACT}")));

    let h = harness_with(
        pool,
        WebConfig {
            security_contact: "psirt@dns.example.org".into(),
            privacy_contact: "https://dns.example.org/privacy-request".into(),
            public_url: Some("https://dns.example.org".into()),
            ..WebConfig::default()
        },
    );
    let mut visitor = h.browser();
    for (path, _) in PAGES {
        let body = text(&visitor.get(path).await.body);
        assert!(
            !body.contains(DEFAULT_SECURITY_CONTACT),
            "{path} shows the default contact"
        );
        assert!(
            !body.contains(DEFAULT_PRIVACY_CONTACT),
            "{path} shows the default contact"
        );
    }
    let security = text(&visitor.get("/security").await.body);
    assert!(
        security.contains("href=\"mailto:psirt@dns.example.org\""),
        "{security}"
    );
    let toms = text(&visitor.get("/toms").await.body);
    assert!(toms.contains("psirt@dns.example.org"));
    for path in ["/dpa", "/subprocessors"] {
        let body = text(&visitor.get(path).await.body);
        assert!(
            body.contains("href=\"https://dns.example.org/privacy-request\""),
            "{path}: {body}"
        );
    }

    let txt = visitor.get("/.well-known/security.txt").await;
    assert_eq!(txt.status, StatusCode::OK);
    assert_eq!(
        txt.header("content-type").as_deref(),
        Some("text/plain; charset=utf-8")
    );
    assert!(
        txt.body.contains("Contact: mailto:psirt@dns.example.org\n"),
        "{}",
        txt.body
    );
    assert!(txt.body.contains("Expires: "), "{}", txt.body);
    assert!(
        txt.body
            .contains("Canonical: https://dns.example.org/.well-known/security.txt\n"),
        "{}",
        txt.body
    );
}

#[sqlx::test(migrator = "MIGRATOR")]
async fn the_pages_name_this_codes_paths_and_claim_no_certification(pool: PgPool) {
    let h = harness(pool);
    let mut visitor = h.browser();
    let toms = text(&visitor.get("/toms").await.body);
    assert!(
        toms.contains("href=\"/audit\""),
        "the audit viewer is at /audit"
    );
    assert!(!toms.contains("/dashboard/audit"));
    assert!(
        !toms.contains("requireTenantContext"),
        "a name from another code base"
    );
    assert!(toms.contains("/api/healthz"));
    // The paths the pages name answer.
    for path in ["/status", "/api/healthz", "/.well-known/security.txt"] {
        assert_eq!(visitor.get(path).await.status, StatusCode::OK, "{path}");
    }
    let security = text(&visitor.get("/security").await.body);
    assert!(security.contains("not certified"));
    let integrations = text(&visitor.get("/integrations").await.body);
    for provider in [
        "PowerDNS",
        "RFC 2136",
        "Hetzner",
        "Cloudflare",
        "Zone files",
    ] {
        assert!(
            integrations.contains(provider),
            "{provider} is not on /integrations"
        );
    }
    let subprocessors = text(&visitor.get("/subprocessors").await.body);
    assert!(subprocessors.contains("SMTP relay"));
    assert!(subprocessors.contains("adds no subprocessor of its own"));
}
