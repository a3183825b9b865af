//! The status page, the public pages and the incident admin in a real
//! headless Chromium (chromedriver, fantoccini) against the real `serve`
//! over a fresh PostgreSQL database: the status page and the public pages
//! with JavaScript on and off (nothing breaks the CSP, nothing needs
//! script), and a staff member who opens, updates and resolves an incident
//! through the forms while a visitor's status page follows. Screenshots in
//! target/screenshots/<test>-<page>.png.
//!
//! Needs chromedriver: `scripts/chromedriver.sh start` (scripts/test.sh
//! starts it and exports CHROMEDRIVER_URL); without it these tests fail
//! with that instruction. Needs DATABASE_URL like the other web tests.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;
#[path = "common/browser.rs"]
mod harness;

use harness::{Chrome, Scripts, site};
use sqlx::PgPool;
use zentralink_store::MIGRATOR;

use common::PASSWORD;

const STAFF: &str = "sam@ops.example";

/// The TOTP code an authenticator app would show for `otpauth_url` now.
fn app_code(otpauth_url: &str) -> String {
    let totp = totp_rs::Totp::from_url(otpauth_url)
        .unwrap_or_else(|e| panic!("the page's otpauth URL {otpauth_url:?} does not load: {e:?}"));
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    totp.generate(now).to_string()
}

const PUBLIC: [(&str, &str); 5] = [
    ("/security", "Security posture"),
    ("/toms", "Technical and organisational measures"),
    ("/dpa", "Data processing"),
    ("/integrations", "Integrations"),
    ("/subprocessors", "Subprocessors"),
];

#[sqlx::test(migrator = "MIGRATOR")]
async fn the_status_and_public_pages_work_with_and_without_javascript(pool: PgPool) {
    let site = site(pool).await;
    for (scripts, name) in [(Scripts::Disabled, "no-js"), (Scripts::Enabled, "js")] {
        let mut chrome = Chrome::open_with(&site, &format!("status-{name}"), scripts).await;
        assert_eq!(chrome.visit("/status", "status").await, "Service status");
        let components = chrome
            .texts("table.status-components tbody th[scope=row]")
            .await;
        assert_eq!(
            components,
            [
                "DNS API (operator)",
                "Web",
                "PowerDNS",
                "RFC 2136 (BIND and other servers)",
                "Hetzner DNS",
                "Cloudflare",
                "Zone files"
            ]
        );
        // The state is said in words, not only in colour.
        let states = chrome
            .texts("table.status-components tbody td .state")
            .await;
        assert_eq!(states[0], "Unknown");
        assert_eq!(states[1], "Operational");
        assert!(chrome.main_text().await.contains("No open incidents."));
        for (path, heading) in PUBLIC {
            let page = path.trim_start_matches('/');
            assert_eq!(chrome.visit(path, page).await, heading, "{path}");
        }
        // The footer leads back to the status page.
        assert_eq!(
            chrome.follow("Status", "status-again").await,
            "Service status"
        );
        chrome.close().await;
    }
}

#[sqlx::test(migrator = "MIGRATOR")]
async fn staff_open_update_and_resolve_an_incident_through_the_forms(pool: PgPool) {
    let site = site(pool).await;
    site.owner("ops", STAFF).await;
    site.store.set_platform_admin(STAFF, true).await.unwrap();

    let mut visitor = Chrome::open_with(&site, "incident-visitor", Scripts::Disabled).await;
    visitor.visit("/status", "before").await;
    assert!(visitor.main_text().await.contains("No open incidents."));

    let mut sam = Chrome::open(&site, "incident-staff").await;
    sam.sign_in(STAFF, PASSWORD).await;
    // Staff pages need a second factor.
    sam.visit("/account/2fa", "2fa").await;
    sam.submit("/account/2fa/enrol", &[], "2fa-enrol").await;
    let url = sam.texts("code.otpauth").await.join("");
    let heading = sam
        .submit(
            "/account/2fa/confirm",
            &[("code", &app_code(&url))],
            "backup-codes",
        )
        .await;
    assert_eq!(heading, "Two-factor sign-in is on");

    assert_eq!(
        sam.visit("/admin/status", "admin").await,
        "Status incidents"
    );
    let heading = sam
        .submit(
            "/admin/status",
            &[
                ("title", "Zone updates delayed"),
                ("impact", "major"),
                ("status", "investigating"),
                (
                    "body",
                    "Changes to Hetzner zones wait in the queue. We are looking into it.",
                ),
            ],
            "opened",
        )
        .await;
    assert_eq!(heading, "Zone updates delayed");
    let at = sam.path_now().await;
    assert!(at.starts_with("/admin/status/"), "{at}");

    // The browser may keep a page for 30 s (Cache-Control): another URL
    // of the same page shows what the server serves now.
    visitor.visit("/status?after=open", "open").await;
    let text = visitor.main_text().await;
    assert!(text.contains("1 open incident (impact: major)"), "{text}");
    assert!(
        text.contains("Changes to Hetzner zones wait in the queue."),
        "{text}"
    );

    sam.submit(
        &at,
        &[
            ("status", "identified"),
            ("body", "A rate limit at the provider; we back off."),
        ],
        "identified",
    )
    .await;
    sam.submit(
        &at,
        &[
            ("status", "resolved"),
            ("body", "Every queued change is applied."),
        ],
        "resolved",
    )
    .await;
    assert!(
        sam.main_text()
            .await
            .contains("Every queued change is applied.")
    );

    visitor.visit("/status?after=resolved", "resolved").await;
    let text = visitor.main_text().await;
    assert!(text.contains("No open incidents."), "{text}");
    let history = text.split("Resolved in the last 90 days").nth(1).unwrap();
    assert!(history.contains("Zone updates delayed"), "{text}");
    let newest = history.find("Every queued change is applied.").unwrap();
    let oldest = history.find("We are looking into it.").unwrap();
    assert!(newest < oldest, "updates newest first: {history}");

    assert_eq!(sam.visit("/admin/cron", "cron").await, "Cron runs");
    sam.close().await;
    visitor.close().await;
}
