//! Tickets in a real headless Chromium (through chromedriver) against the
//! real `serve` over a fresh PostgreSQL database: a customer opens a
//! ticket, one of the staff answers it on the support desk in another
//! browser session, and the customer's open page shows the answer live
//! (Server-Sent Events and web/static/tickets.js) without a reload, while
//! the internal note written before it never appears there. Every page is
//! checked for inline script and CSP errors; screenshots land in
//! target/screenshots/tickets-*.png.
//!
//! Needs chromedriver (`scripts/chromedriver.sh start`, CHROMEDRIVER_URL)
//! and DATABASE_URL, like the other browser tests.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;
#[path = "common/browser.rs"]
mod harness;

use std::time::Duration;

use fantoccini::Locator;
use harness::{Chrome, site};
use sqlx::PgPool;
use zentralink_model::secrets::SecretString;
use zentralink_store::MIGRATOR;

use common::PASSWORD;

const OWNER: &str = "ann@acme.example";
const STAFF: &str = "sam@support.example";
const NOTE: &str = "Internal: their registrar lock is on, check with the registrar first";
const ANSWER: &str = "We removed the stale DS record; the zone validates again.";

/// How long to wait for something the page should show (a failure, not a measurement).
const PATIENCE: Duration = Duration::from_secs(20);

/// Waits until `probe` is true, checking every 200 ms.
async fn eventually<F, Fut>(what: &str, mut probe: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let started = std::time::Instant::now();
    while !probe().await {
        assert!(
            started.elapsed() < PATIENCE,
            "{what}: not within {PATIENCE:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

async fn type_into(chrome: &Chrome, css: &str, text: &str) {
    let field = chrome.client.find(Locator::Css(css)).await.unwrap();
    field.clear().await.unwrap();
    field.send_keys(text).await.unwrap();
}

#[sqlx::test(migrator = "MIGRATOR")]
async fn staff_answers_appear_live_on_the_customer_s_page_and_internal_notes_never_do(
    pool: PgPool,
) {
    let site = site(pool).await;
    let (tenant, _) = site.owner("acme", OWNER).await;
    site.zones(tenant, &["example.com."]).await;

    // One of the staff, with a confirmed second factor (staff pages need it).
    let hash = zentralink_web::password::PasswordHasher::new(1)
        .unwrap()
        .hash(&SecretString::new(PASSWORD))
        .await
        .unwrap();
    let staff = site
        .store
        .create_user(STAFF, "Sam Support", &hash)
        .await
        .unwrap();
    site.store.set_platform_admin(STAFF, true).await.unwrap();
    let secret = zentralink_web::totp::new_secret().unwrap();
    let now = chrono::Utc::now();
    let step = zentralink_web::totp::step_of(now);
    assert!(
        site.store
            .start_totp_enrolment(staff, &secret)
            .await
            .unwrap()
    );
    assert!(site.store.confirm_totp(staff, step - 2, now).await.unwrap());

    // The customer opens a ticket about a domain.
    let mut customer = Chrome::open(&site, "tickets").await;
    customer.sign_in(OWNER, PASSWORD).await;
    assert_eq!(
        customer.visit("/tickets", "customer-list-empty").await,
        "Tickets of acme"
    );
    assert_eq!(
        customer.follow("Open a ticket", "customer-new").await,
        "Open a ticket"
    );
    let heading = customer
        .submit(
            "/tickets",
            &[
                ("subject", "DNSSEC validation fails"),
                (
                    "body",
                    "Resolvers return SERVFAIL for example.com since this morning.",
                ),
                ("priority", "URGENT"),
            ],
            "customer-opened",
        )
        .await;
    assert_eq!(heading, "#1 DNSSEC validation fails");
    let ticket_path = customer.path_now().await;
    // The page's script connects to the stream.
    eventually("the customer's page goes live", || async {
        customer
            .texts("#live-state")
            .await
            .concat()
            .starts_with("Live")
    })
    .await;
    // A marker only this loaded document has: a reload would lose it.
    customer
        .client
        .execute(
            "window.zentralinkNoReload = 'still here'; return null;",
            vec![],
        )
        .await
        .unwrap();

    // Staff sign in with the second factor and find the ticket on the desk.
    let mut desk = Chrome::open(&site, "tickets-desk").await;
    desk.visit("/login", "staff-sign-in").await;
    desk.submit(
        "/login",
        &[("email", STAFF), ("password", PASSWORD)],
        "staff-second-factor",
    )
    .await;
    let code =
        zentralink_web::totp::code_at(&secret, zentralink_web::totp::step_of(chrono::Utc::now()))
            .unwrap();
    desk.submit("/login/2fa", &[("code", &code)], "staff-signed-in")
        .await;
    assert_eq!(desk.visit("/support", "desk").await, "Support desk");
    let heading = desk.follow("DNSSEC validation fails", "desk-ticket").await;
    assert_eq!(heading, "acme #1: DNSSEC validation fails");

    // An internal note, then the answer.
    type_into(&desk, "textarea[name=body]", NOTE).await;
    desk.press("Add internal note", "desk-internal-note").await;
    assert!(desk.main_text().await.contains(NOTE));
    type_into(&desk, "textarea[name=body]", ANSWER).await;
    desk.press("Send reply to customer", "desk-answered").await;

    // The customer's open page shows the answer without a reload...
    eventually("the answer appears on the customer's page", || async {
        customer
            .texts("#thread .ticket-body")
            .await
            .iter()
            .any(|t| t == ANSWER)
    })
    .await;
    let marker = customer
        .client
        .execute("return window.zentralinkNoReload || null;", vec![])
        .await
        .unwrap();
    assert_eq!(
        marker,
        serde_json::json!("still here"),
        "the page was reloaded"
    );
    assert_eq!(customer.path_now().await, ticket_path);
    customer.check_page("customer-live-answer").await;
    customer.screenshot("customer-live-answer").await;
    // ...and never the internal note, live or after a reload.
    let thread = customer.texts("#thread").await.concat();
    assert!(!thread.contains("registrar lock"), "{thread}");
    assert!(
        !customer
            .client
            .source()
            .await
            .unwrap()
            .contains("registrar lock")
    );
    customer.visit(&ticket_path, "customer-reloaded").await;
    let source = customer.client.source().await.unwrap();
    assert!(source.contains("stale DS record"));
    assert!(!source.contains("registrar lock") && !source.contains("Internal note"));

    // Staff move the ticket; the customer's page shows the new status live.
    desk.submit_form(
        "form[action$='/status']",
        &[("to", "WAITING_ON_CUSTOMER")],
        "desk-waiting",
    )
    .await;
    eventually("the status changes on the customer's page", || async {
        customer.texts("#ticket-status").await.concat() == "Waiting on customer"
    })
    .await;
    customer.screenshot("customer-live-status").await;

    // The customer's reply reaches the desk's open page live.
    type_into(&customer, "textarea[name=body]", "Thanks, it works again.").await;
    customer.press("Send reply", "customer-replied").await;
    eventually("the customer's reply appears on the desk", || async {
        desk.texts("#thread .ticket-body")
            .await
            .iter()
            .any(|t| t == "Thanks, it works again.")
    })
    .await;
    desk.screenshot("desk-live-reply").await;

    customer.close().await;
    desk.close().await;
}
