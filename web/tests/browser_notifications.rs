//! The notification and mail pages in a real headless Chromium (through
//! chromedriver) against the real service, PostgreSQL and the SMTP sink:
//! the unread badge and the list, marking read, the subscription grid, the
//! mail settings page without and with an SMTP server (the test e-mail
//! really sent), and the template editor's preview. Every page is checked
//! for inline scripts and CSP errors and saved as a screenshot.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;
#[path = "common/browser.rs"]
mod harness;

use std::path::PathBuf;

use harness::{Chrome, site};
use sqlx::PgPool;
use zentralink_store::MIGRATOR;
use zentralink_store::audit::{Actor, AuditEvent};
use zentralink_web::{AppState, WebConfig, notifications};

use common::PASSWORD;

const OWNER: &str = "ann@acme.example";

/// The SMTP sink's address and test account (scripts/smtp-sink.sh).
fn sink_env() -> std::collections::BTreeMap<String, String> {
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
    vars
}

#[sqlx::test(migrator = "MIGRATOR")]
async fn notifications_and_mail_pages_work_in_the_browser(pool: PgPool) {
    let sink = sink_env();
    let site = site(pool).await;
    let (tenant, _) = site.owner("acme", OWNER).await;
    for (action, zone) in [
        ("dns.changes.failed", "one.acme.example."),
        ("zone.drift.detected", "two.acme.example."),
    ] {
        site.store
            .audit(
                AuditEvent::new(Some(tenant), Actor::Operator("operator".into()), action)
                    .meta("zone", zone)
                    .meta("operations", 2_i64)
                    .meta("applied", 1_i64),
            )
            .await
            .unwrap();
    }
    let state = AppState::new(site.store.clone(), WebConfig::default()).unwrap();
    notifications::fan_out(&state).await.unwrap();

    let mut chrome = Chrome::open(&site, "notifications").await;
    chrome.sign_in(OWNER, PASSWORD).await;
    assert_eq!(chrome.texts("header .badge").await, vec!["2"]);
    let heading = chrome.visit("/notifications", "list").await;
    assert_eq!(heading, "Notifications");
    let text = chrome.main_text().await;
    assert!(text.contains("2 unread notifications"), "{text}");
    assert!(
        text.contains("Changes to one.acme.example. failed"),
        "{text}"
    );
    assert!(
        text.contains("Drift detected in two.acme.example."),
        "{text}"
    );
    assert!(
        text.contains("not sent: no SMTP server is configured"),
        "{text}"
    );
    chrome.press("Mark as read", "one-read").await;
    assert_eq!(chrome.path_now().await, "/notifications");
    assert!(chrome.main_text().await.contains("1 unread notification "));
    assert_eq!(chrome.texts("header .badge").await, vec!["1"]);

    let heading = chrome.visit("/notifications/settings", "settings").await;
    assert_eq!(heading, "Notification settings");
    assert!(chrome.main_text().await.contains("(on by default)"));
    chrome.press("Save", "settings-saved").await;
    assert!(chrome.main_text().await.contains("saved"));

    let heading = chrome.visit("/mail", "mail-without-smtp").await;
    assert!(heading.starts_with("Mail for"), "{heading}");
    assert!(
        chrome
            .main_text()
            .await
            .contains("not sent: no SMTP server is configured")
    );
    let password = sink["ZL_SMTP_PASSWORD"].clone();
    chrome
        .submit(
            "/mail/settings",
            &[
                ("host", &sink["ZL_SMTP_HOST"]),
                ("port", &sink["ZL_SMTP_PORT"]),
                ("tls", "none"),
                ("username", &sink["ZL_SMTP_USER"]),
                ("password", &password),
                ("from_address", "dns@acme.example"),
            ],
            "mail-saved",
        )
        .await;
    let text = chrome.main_text().await;
    assert!(text.contains("The SMTP settings are saved"), "{text}");
    assert!(text.contains("A password is stored"), "{text}");
    assert_eq!(chrome.value_of("input[name='password']").await, "");
    let to = format!("ann@{}.example", uuid::Uuid::new_v4().simple());
    chrome
        .submit("/mail/test", &[("to", &to)], "mail-test-sent")
        .await;
    let text = chrome.main_text().await;
    assert!(
        text.contains(&format!("The test message to {to} was sent")),
        "{text}"
    );
    assert!(!text.contains(&password));

    let heading = chrome
        .visit("/mail/templates?event=drift", "templates")
        .await;
    assert!(heading.starts_with("E-mail templates"), "{heading}");
    chrome.press("Preview", "template-preview").await;
    let text = chrome.main_text().await;
    assert!(text.contains("Preview with sample data"), "{text}");
    assert!(text.contains("Drift detected in acme.example."), "{text}");
    chrome.close().await;
}
