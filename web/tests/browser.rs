//! The web service in a real headless Chromium (Debian's chromium through
//! chromedriver, driven with fantoccini): the real `serve` on an ephemeral
//! port of 127.0.0.1 over a fresh PostgreSQL database per test. Signs in,
//! enrols TOTP from the secret the page shows, signs in with a code and a
//! backup code, walks the pages and signs out; checks on every page that
//! nothing breaks the Content Security Policy or needs script, and runs the
//! same walk with JavaScript switched off. Screenshots of every page land
//! in target/screenshots/<test>-<page>.png.
//!
//! Needs chromedriver: `scripts/chromedriver.sh start` (scripts/test.sh
//! starts it and exports CHROMEDRIVER_URL); without it these tests fail
//! with that instruction. Needs DATABASE_URL like the other web tests.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;
#[path = "common/browser.rs"]
mod harness;

use harness::{Chrome, Scripts, Site, inline_script_problems, site};
use sqlx::PgPool;
use zentralink_store::MIGRATOR;

use common::PASSWORD;

const OWNER: &str = "ann@acme.example";

/// A site with the tenant "acme", its owner and two zones.
async fn acme(pool: PgPool) -> Site {
    let site = site(pool).await;
    let (tenant, _) = site.owner("acme", OWNER).await;
    site.zones(tenant, &["example.com.", "example.org."]).await;
    site
}

/// The TOTP code an authenticator app would show for `otpauth_url`, `ahead`
/// steps of 30 seconds from now (computed with totp-rs, as an app would).
fn app_code(otpauth_url: &str, ahead: u64) -> String {
    let totp = totp_rs::Totp::from_url(otpauth_url)
        .unwrap_or_else(|e| panic!("the page's otpauth URL {otpauth_url:?} does not load: {e:?}"));
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    totp.generate(now + 30 * ahead).to_string()
}

#[sqlx::test(migrator = "MIGRATOR")]
async fn signing_in_walks_the_dashboard_and_a_zone_then_signing_out_ends_the_session(pool: PgPool) {
    let site = acme(pool).await;
    let mut chrome = Chrome::open(&site, "sign-in").await;

    // Anonymous: the dashboard sends the visitor to the sign-in page.
    chrome.visit("/dashboard", "anonymous-dashboard").await;
    assert_eq!(chrome.path_now().await, "/login");
    assert_eq!(chrome.heading().await, "Sign in");

    // A wrong password: the page says so, keeps the e-mail, nothing else.
    let heading = chrome
        .submit(
            "/login",
            &[("email", OWNER), ("password", "not the password")],
            "wrong-password",
        )
        .await;
    assert_eq!(heading, "Sign in");
    assert_eq!(
        chrome.texts("[role=alert]").await,
        ["Wrong e-mail or password."]
    );
    let email = chrome
        .client
        .find(fantoccini::Locator::Css("input[name=email]"))
        .await
        .unwrap()
        .prop("value")
        .await
        .unwrap();
    assert_eq!(email.as_deref(), Some(OWNER));

    // The right one: the dashboard lists the tenant's zones.
    let heading = chrome
        .submit(
            "/login",
            &[("email", OWNER), ("password", PASSWORD)],
            "dashboard",
        )
        .await;
    assert_eq!(heading, "Zones");
    assert_eq!(chrome.path_now().await, "/dashboard");
    assert_eq!(chrome.visit("/", "home").await, "Zones");
    assert_eq!(chrome.path_now().await, "/dashboard");
    let header = chrome.texts("header nav span").await.join(" ");
    assert!(header.contains(OWNER), "{header}");
    let zones = chrome.texts("main table tbody td:first-child a").await;
    assert_eq!(zones, ["example.com.", "example.org."]);

    // A zone's page, reached by its link.
    let heading = chrome.follow("example.org.", "zone").await;
    assert_eq!(heading, "example.org.");
    assert!(chrome.path_now().await.starts_with("/zones/"));
    assert!(chrome.main_text().await.contains("dns/example-org"));

    // A zone that does not exist: the error page with a request id, nothing more.
    let heading = chrome
        .visit("/zones/00000000-0000-4000-8000-000000000000", "not-found")
        .await;
    assert_eq!(heading, "Not found");
    let ids = chrome.texts("code.request-id").await;
    assert_eq!(ids.len(), 1);
    assert_eq!(ids[0].len(), 32, "a request id: {ids:?}");

    // Sign out: back on the sign-in page, and the dashboard is closed again.
    chrome.visit("/dashboard", "dashboard-again").await;
    chrome.sign_out("signed-out").await;
    assert_eq!(chrome.path_now().await, "/login");
    chrome.visit("/dashboard", "dashboard-after-sign-out").await;
    assert_eq!(chrome.path_now().await, "/login");
    let cookies = chrome.client.get_all_cookies().await.unwrap();
    assert!(
        cookies.iter().all(|c| c.name() != "zl_session"),
        "the session cookie outlived sign-out: {cookies:?}"
    );
    chrome.close().await;
}

#[sqlx::test(migrator = "MIGRATOR")]
async fn totp_enrolment_shows_the_backup_codes_once_and_sign_in_asks_for_a_code(pool: PgPool) {
    let site = acme(pool).await;
    let mut chrome = Chrome::open(&site, "totp").await;
    chrome.sign_in(OWNER, PASSWORD).await;

    let heading = chrome.visit("/account/2fa", "2fa-off").await;
    assert_eq!(heading, "Two-factor sign-in");
    assert!(chrome.main_text().await.contains("is off"));

    // Enrolment: a QR code the browser can draw (a data: image the CSP allows)
    // and the otpauth URL to type in by hand.
    chrome.submit("/account/2fa/enrol", &[], "2fa-enrol").await;
    let qr_width = chrome
        .client
        .execute(
            "return document.querySelector('img.qr').naturalWidth",
            vec![],
        )
        .await
        .unwrap();
    assert!(
        qr_width.as_u64().is_some_and(|w| w > 0),
        "the QR code did not load: {qr_width}"
    );
    let url = chrome.texts("code.otpauth").await.join("");
    assert!(url.starts_with("otpauth://totp/"), "{url}");

    // A wrong code is refused and the enrolment stays open.
    let wrong = if app_code(&url, 0) == "000000" {
        "111111"
    } else {
        "000000"
    };
    chrome
        .submit("/account/2fa/confirm", &[("code", wrong)], "2fa-wrong-code")
        .await;
    assert_eq!(chrome.texts("[role=alert]").await.len(), 1);

    // The code the app shows: on, and the ten backup codes, once.
    let heading = chrome
        .submit(
            "/account/2fa/confirm",
            &[("code", &app_code(&url, 0))],
            "backup-codes",
        )
        .await;
    assert_eq!(heading, "Two-factor sign-in is on");
    let codes = chrome.texts("ul.codes code").await;
    assert_eq!(codes.len(), 10, "{codes:?}");
    let heading = chrome.visit("/account/2fa", "2fa-on").await;
    assert_eq!(heading, "Two-factor sign-in");
    let text = chrome.main_text().await;
    assert!(text.contains("is on"), "{text}");
    let source = chrome.client.source().await.unwrap();
    for code in &codes {
        assert!(!source.contains(code.as_str()), "backup code shown again");
    }

    // Sign out, sign in: the password is not enough any more.
    chrome.sign_out("signed-out").await;
    chrome.visit("/login", "sign-in").await;
    let heading = chrome
        .submit(
            "/login",
            &[("email", OWNER), ("password", PASSWORD)],
            "second-factor",
        )
        .await;
    assert_eq!(heading, "Second factor");
    assert_eq!(chrome.path_now().await, "/login/2fa");
    chrome.visit("/dashboard", "dashboard-before-code").await;
    assert_ne!(
        chrome.path_now().await,
        "/dashboard",
        "the dashboard opened before the second factor"
    );

    // The next step's code (the current one was spent on the enrolment).
    chrome.visit("/login/2fa", "second-factor-again").await;
    chrome
        .submit(
            "/login/2fa",
            &[("code", &app_code(&url, 1))],
            "dashboard-with-code",
        )
        .await;
    assert_eq!(chrome.path_now().await, "/dashboard");

    // A backup code works once.
    chrome.sign_out("signed-out-again").await;
    chrome.visit("/login", "sign-in-again").await;
    chrome
        .submit(
            "/login",
            &[("email", OWNER), ("password", PASSWORD)],
            "second-factor-backup",
        )
        .await;
    chrome
        .submit(
            "/login/2fa",
            &[("code", &codes[3])],
            "dashboard-with-backup-code",
        )
        .await;
    assert_eq!(chrome.path_now().await, "/dashboard");
    chrome.sign_out("signed-out-third").await;
    chrome.visit("/login", "sign-in-third").await;
    chrome
        .submit(
            "/login",
            &[("email", OWNER), ("password", PASSWORD)],
            "second-factor-reuse",
        )
        .await;
    let heading = chrome
        .submit("/login/2fa", &[("code", &codes[3])], "backup-code-reused")
        .await;
    assert_eq!(heading, "Second factor");
    assert_eq!(
        chrome.texts("[role=alert]").await,
        ["That code is wrong or has been used already."]
    );
    chrome.close().await;
}

#[sqlx::test(migrator = "MIGRATOR")]
async fn the_browser_enforces_the_content_security_policy_and_the_pages_need_none_of_it(
    pool: PgPool,
) {
    let site = acme(pool).await;
    let mut chrome = Chrome::open(&site, "csp").await;
    // Script runs in this browser (where the site does not forbid it).
    assert!(chrome.page_scripts_run().await);
    chrome.sign_in(OWNER, PASSWORD).await;
    chrome.visit("/account/2fa", "2fa").await;

    // The policy arrives and is enforced: an inline script put into the page
    // does not run, and the console says why (so the console checks of
    // every other page read a log that would show a violation).
    let ran = chrome
        .client
        .execute(
            "const s = document.createElement('script');
             s.textContent = 'document.body.dataset.inlineRan = \"yes\"';
             document.body.appendChild(s);
             return document.body.dataset.inlineRan || 'blocked';",
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(ran, "blocked", "an inline script ran despite the CSP");
    let mut console = Vec::new();
    for _ in 0..20 {
        console.extend(chrome.read_console().await);
        if !console.is_empty() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(
        console
            .iter()
            .any(|e| e.message.contains("Content Security Policy")),
        "no CSP violation in the console: {console:?}"
    );

    // An inline style is refused as well: the style sheet is the only one.
    let color = chrome
        .client
        .execute(
            "const s = document.createElement('style');
             s.textContent = 'main h1 { color: rgb(1, 2, 3) !important }';
             document.head.appendChild(s);
             return getComputedStyle(document.querySelector('main h1')).color;",
            vec![],
        )
        .await
        .unwrap();
    assert_ne!(
        color, "rgb(1, 2, 3)",
        "an inline style applied despite the CSP"
    );
    chrome.read_console().await;

    // The scan that every page passes finds what it must.
    assert_eq!(
        inline_script_problems(
            "<p onclick=\"x()\">a</p><script>alert(1)</script><a href='javascript:x()'>b</a><div style=\"color:red\"></div><script src=\"/s.js\"></script>"
        )
        .len(),
        4
    );
    assert!(
        inline_script_problems("<p>Turn it on=off</p><script src=\"/s.js\"></script>").is_empty()
    );
    chrome.close().await;
}

#[sqlx::test(migrator = "MIGRATOR")]
async fn the_pages_work_without_javascript(pool: PgPool) {
    let site = acme(pool).await;
    let mut chrome = Chrome::open_with(&site, "no-javascript", Scripts::Disabled).await;
    // Script is really off in this browser: a page's own script does not run.
    assert!(!chrome.page_scripts_run().await);

    chrome.sign_in(OWNER, PASSWORD).await;
    assert_eq!(
        chrome.texts("main table tbody td:first-child a").await,
        ["example.com.", "example.org."]
    );
    assert_eq!(chrome.follow("example.com.", "zone").await, "example.com.");
    assert_eq!(
        chrome.visit("/account/2fa", "2fa").await,
        "Two-factor sign-in"
    );
    chrome.submit("/account/2fa/enrol", &[], "2fa-enrol").await;
    let url = chrome.texts("code.otpauth").await.join("");
    let heading = chrome
        .submit(
            "/account/2fa/confirm",
            &[("code", &app_code(&url, 0))],
            "backup-codes",
        )
        .await;
    assert_eq!(heading, "Two-factor sign-in is on");
    chrome.sign_out("signed-out").await;
    assert_eq!(chrome.path_now().await, "/login");
    chrome.close().await;
}

#[sqlx::test(migrator = "MIGRATOR")]
async fn the_dashboard_pages_show_a_busy_zone_its_snapshots_and_change_requests(pool: PgPool) {
    let site = site(pool).await;
    let (tenant, _) = site.owner("acme", OWNER).await;
    let busy = site.busy_zone(tenant, "acme.example.").await;
    let mut chrome = Chrome::open(&site, "dashboard").await;
    chrome.sign_in(OWNER, PASSWORD).await;
    assert_eq!(
        chrome.texts("main table tbody td:first-child a").await,
        ["acme.example."]
    );

    // The zone: its records as last observed, the history, the timeline chart, the request.
    assert_eq!(
        chrome.follow("acme.example.", "zone").await,
        "acme.example."
    );
    let records = chrome.texts("table.records tbody td:first-child").await;
    assert!(
        records.iter().any(|r| r.starts_with("www.acme.example.")),
        "{records:?}"
    );
    let text = chrome.main_text().await;
    assert!(text.contains("provider refused: rate limited"), "{text}");
    assert!(text.contains(&busy.request_name), "{text}");
    let chart = chrome
        .client
        .find_all(fantoccini::Locator::Css("figure.timeline svg"))
        .await
        .unwrap();
    assert_eq!(chart.len(), 1, "no timeline chart");

    // Its snapshots, and one of them.
    let heading = chrome.follow("Snapshots", "snapshots").await;
    assert!(heading.starts_with("Snapshots of"), "{heading}");
    let heading = chrome
        .visit(&format!("/snapshots/{}", busy.snapshot), "snapshot")
        .await;
    assert!(heading.starts_with("Snapshot of"), "{heading}");
    assert!(chrome.main_text().await.contains("2001:db8::2"));

    // Change requests: the list, then the request with its diff.
    assert_eq!(
        chrome.visit("/change-requests", "change-requests").await,
        "Change requests"
    );
    let heading = chrome.follow(&busy.request_name, "change-request").await;
    assert_eq!(heading, format!("Change request {}", busy.request_name));
    let text = chrome.main_text().await;
    assert!(text.contains("mx2.example.net."), "{text}");
    assert!(text.contains("zentralink approve"), "{text}");

    // The message an approver signs with ssh-keygen, asked for with the page's form.
    let approver = "Ann Example <ann@acme.example>";
    chrome
        .submit_form(
            "form[action$='#approve']",
            &[("approver", approver), ("decision", "Approve")],
            "change-request-message",
        )
        .await;
    let message = chrome.texts("pre.message").await.join("");
    assert!(
        message.contains(&busy.request_name) && message.contains(approver),
        "{message}"
    );
    let download = chrome
        .client
        .find(fantoccini::Locator::Css("a[download]"))
        .await
        .unwrap()
        .attr("href")
        .await
        .unwrap()
        .unwrap_or_default();
    assert!(
        download.starts_with(&format!("/change-requests/{}/message?", busy.request)),
        "{download}"
    );

    assert_eq!(
        chrome.visit("/connections", "connections").await,
        "Provider connections"
    );
    chrome.close().await;
}

#[sqlx::test(migrator = "MIGRATOR")]
async fn an_owner_invites_a_member_who_joins_with_the_link(pool: PgPool) {
    let site = acme(pool).await;
    let mut chrome = Chrome::open(&site, "members").await;
    chrome.sign_in(OWNER, PASSWORD).await;
    assert_eq!(chrome.visit("/members", "members").await, "Members of acme");
    let members = chrome.texts("table.members tbody td:first-child").await;
    assert_eq!(members, [format!("{OWNER} (you)")]);

    // The invitation: a link shown once, the invitation listed as open.
    chrome
        .submit(
            "/members/invite",
            &[("email", "bob@acme.example"), ("role", "VIEWER")],
            "members-invited",
        )
        .await;
    let link = chrome.value_of("input.link").await;
    let path = link
        .split_once("/invitations/")
        .map(|(_, token)| format!("/invitations/{token}"))
        .unwrap_or_else(|| panic!("no invitation link: {link:?}"));
    let open = chrome.texts("table.invitations tbody td:first-child").await;
    assert_eq!(open, ["bob@acme.example"]);

    // Bob opens it (signed out), makes his account and lands in acme as VIEWER.
    chrome.sign_out("signed-out").await;
    assert_eq!(chrome.visit(&path, "invitation").await, "Join acme");
    chrome
        .submit_form(
            "main form",
            &[
                ("display_name", "Bob Example"),
                ("password", "bob's long enough password"),
                ("password_confirm", "bob's long enough password"),
            ],
            "joined",
        )
        .await;
    assert_eq!(chrome.path_now().await, "/dashboard");
    let header = chrome.texts("header nav span").await.join(" ");
    assert!(
        header.contains("bob@acme.example") && header.contains("VIEWER"),
        "{header}"
    );
    // The link worked once.
    chrome.sign_out("bob-signed-out").await;
    assert_eq!(
        chrome.visit(&path, "invitation-used").await,
        "This invitation link does not work"
    );
    chrome.close().await;
}

#[sqlx::test(migrator = "MIGRATOR")]
async fn the_audit_log_filters_and_an_owner_of_two_tenants_switches_between_them(pool: PgPool) {
    let site = acme(pool).await;
    let (beta, _) = site.owner("beta", "carol@beta.example").await;
    site.store
        .set_membership(
            beta,
            site.store
                .user_credentials_by_email(OWNER)
                .await
                .unwrap()
                .unwrap()
                .id,
            "ADMIN",
        )
        .await
        .unwrap();
    let mut chrome = Chrome::open(&site, "tenants").await;
    chrome.sign_in(OWNER, PASSWORD).await;

    assert_eq!(chrome.visit("/audit", "audit").await, "Audit log");
    chrome
        .submit("/audit", &[("action", "login")], "audit-filtered")
        .await;
    assert!(chrome.path_now().await.contains("action=login"));
    let actions = chrome.texts(".audit-table tbody td:nth-child(3)").await;
    assert!(!actions.is_empty(), "no login event listed");
    assert!(actions.iter().all(|a| a == "login"), "{actions:?}");

    assert_eq!(chrome.visit("/tenant", "tenant").await, "acme");

    // The switch: from acme (OWNER) to beta (ADMIN).
    chrome.visit("/members", "members").await;
    chrome.press("Switch to beta", "switched").await;
    let header = chrome.texts("header nav span").await.join(" ");
    assert!(header.contains("beta (ADMIN)"), "{header}");
    assert_eq!(
        chrome.visit("/members", "members-of-beta").await,
        "Members of beta"
    );
    chrome.close().await;
}
