//! The harness of the browser tests: the real web service
//! (`zentralink_web::serve`) on an ephemeral port of 127.0.0.1 over the
//! test's fresh database, and a headless Chromium session driven through
//! chromedriver (scripts/chromedriver.sh) with fantoccini. Every page the
//! browser lands on is checked (no inline script or inline event handler in
//! the DOM, nothing in the browser's console about the Content Security
//! Policy or a script error) and saved as a PNG under
//! `target/screenshots/<test>-<page>.png`. Does I/O: sockets, the browser,
//! files.
//!
//! A page test is a few lines:
//!
//! ```ignore
//! let mut chrome = Chrome::open(&site, "members").await;
//! chrome.sign_in(OWNER_EMAIL, PASSWORD).await;
//! assert_eq!(chrome.visit("/members", "members").await, "Members");
//! ```
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, dead_code)]

use std::io::{Read, Write};
use std::path::PathBuf;
use std::time::Duration;

use axum::http::Method;
use fantoccini::wd::WebDriverCompatibleCommand;
use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{Value, json};
use sqlx::PgPool;
use tokio::sync::oneshot;
use zentralink_model::secrets::SecretString;
use zentralink_model::zone::StoredRecordSet;
use zentralink_model::{ZoneContent, ZoneName};
use zentralink_store::changes::{ChangeOutcome, ExecutedBatch, NewChangeRequest, RequestKind};
use zentralink_store::snapshots::SnapshotReason;
use zentralink_store::{ChangeRequestId, SnapshotId, Store, TenantId, UserId, ZoneId};
use zentralink_web::{AppState, WebConfig, serve};

use crate::common::{PASSWORD, keyring};

/// The repository's root (web/ is one level down).
fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("web/ has a parent")
        .to_path_buf()
}

/// Where screenshots go: `<target dir>/screenshots`.
pub fn screenshot_dir() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .map(|p| if p.is_absolute() { p } else { root().join(p) })
        .unwrap_or_else(|| root().join("target"));
    target.join("screenshots")
}

/// The value of `name` in .zentralink/servers/chromedriver.env, if the file says it.
fn env_file_value(name: &str) -> Option<String> {
    let text = std::fs::read_to_string(root().join(".zentralink/servers/chromedriver.env")).ok()?;
    text.split_whitespace()
        .find_map(|word| word.strip_prefix(&format!("{name}=")).map(str::to_owned))
}

fn setting(name: &str) -> Option<String> {
    std::env::var(name)
        .ok()
        .filter(|v| !v.is_empty())
        .or_else(|| env_file_value(name))
}

const START_HINT: &str = "start it with `scripts/chromedriver.sh start` (it installs Debian's chromium and chromium-driver when they are missing) and `source .zentralink/servers/chromedriver.env`; scripts/test.sh does both";

/// The WebDriver endpoint: `CHROMEDRIVER_URL`, else the one
/// scripts/chromedriver.sh wrote. Fails the test (never skips it) when there is none.
pub fn chromedriver_url() -> String {
    setting("CHROMEDRIVER_URL").unwrap_or_else(|| {
        panic!("the browser tests need chromedriver and CHROMEDRIVER_URL is not set: {START_HINT}")
    })
}

/// The web service under test, served over plain HTTP on 127.0.0.1.
pub struct Site {
    /// `http://127.0.0.1:PORT`
    pub base: String,
    pub store: Store,
    stop: Option<oneshot::Sender<()>>,
}

impl Drop for Site {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// Starts the real service (`serve`) on an ephemeral port over `pool`.
/// Cookies are not `Secure` (plain HTTP, like `--insecure-cookies`).
pub async fn site(pool: PgPool) -> Site {
    site_with(
        pool,
        WebConfig {
            secure_cookies: false,
            ..WebConfig::default()
        },
    )
    .await
}

pub async fn site_with(pool: PgPool, config: WebConfig) -> Site {
    let store = Store::from_pool(pool, keyring());
    let state = AppState::new(store.clone(), config).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let (stop, stopped) = oneshot::channel::<()>();
    tokio::spawn(async move {
        serve(listener, state, async move {
            let _ = stopped.await;
        })
        .await
        .expect("the web service stopped with an error");
    });
    Site {
        base: format!("http://{address}"),
        store,
        stop: Some(stop),
    }
}

impl Site {
    /// A tenant with an owner whose password is [`PASSWORD`], made through the store.
    pub async fn owner(&self, tenant: &str, email: &str) -> (TenantId, UserId) {
        let user = zentralink_web::auth::create_owner(
            &self.store,
            email,
            tenant,
            &SecretString::new(PASSWORD),
        )
        .await
        .unwrap();
        (self.store.tenant_by_slug(tenant).await.unwrap().id, user)
    }

    /// Registers zones for a tenant (as the operator does when it reconciles them).
    pub async fn zones(&self, tenant: TenantId, zone_names: &[&str]) -> Vec<ZoneId> {
        let mut ids = Vec::new();
        for zone in zone_names {
            let object = zone.trim_end_matches('.').replace('.', "-");
            ids.push(
                self.store
                    .upsert_zone(tenant, "dns", &object, zone, None)
                    .await
                    .unwrap(),
            );
        }
        ids
    }
}

/// A zone with what the dashboard shows of one: an observed snapshot, a
/// recorded batch of changes (one applied, one failed) and a pending change
/// request.
#[derive(Debug, Clone)]
pub struct BusyZone {
    pub zone: ZoneId,
    pub snapshot: SnapshotId,
    pub request: ChangeRequestId,
    pub request_name: String,
}

fn record_sets(zone: &str, sets: &[(&str, &str, &str)]) -> ZoneContent {
    let stored: Vec<StoredRecordSet> = sets
        .iter()
        .map(|(name, record_type, value)| StoredRecordSet {
            name: format!("{name}.{zone}"),
            record_type: (*record_type).into(),
            ttl: 300,
            values: vec![(*value).into()],
        })
        .collect();
    ZoneContent::from_stored(ZoneName::parse(zone).unwrap(), &stored).unwrap()
}

impl Site {
    /// Registers `zone_name` for the tenant with a snapshot, history and a
    /// pending change request (MX mx1 -> mx2), as the operator records them.
    pub async fn busy_zone(&self, tenant: TenantId, zone_name: &str) -> BusyZone {
        let zone = self.zones(tenant, &[zone_name]).await[0];
        let content = record_sets(
            zone_name,
            &[
                ("www", "A", "192.0.2.2"),
                ("api", "A", "192.0.2.7"),
                ("mail", "MX", "10 mx1.example.net."),
                ("www", "AAAA", "2001:db8::2"),
            ],
        );
        let snapshot = self
            .store
            .save_snapshot(
                tenant,
                zone,
                "powerdns",
                SnapshotReason::PostChange,
                &content,
            )
            .await
            .unwrap();
        let digest = format!("sha256:{}", "a".repeat(64));
        self.store
            .record_dns_changes(
                tenant,
                &ExecutedBatch {
                    zone,
                    change_request: None,
                    plan_digest: &digest,
                    pre_snapshot: None,
                    post_snapshot: Some(snapshot),
                    outcomes: &[
                        ChangeOutcome {
                            op: "update".into(),
                            name: format!("www.{zone_name}"),
                            record_type: "A".into(),
                            before: Some(json!({"ttl": 300, "values": ["192.0.2.1"]})),
                            after: Some(json!({"ttl": 300, "values": ["192.0.2.2"]})),
                            error: None,
                        },
                        ChangeOutcome {
                            op: "create".into(),
                            name: format!("old.{zone_name}"),
                            record_type: "A".into(),
                            before: None,
                            after: Some(json!({"ttl": 300, "values": ["192.0.2.9"]})),
                            error: Some("provider refused: rate limited".into()),
                        },
                    ],
                },
            )
            .await
            .unwrap();
        let request_name = format!(
            "{}-bbbbbbbb",
            zone_name.trim_end_matches('.').replace('.', "-")
        );
        let request = self
            .store
            .create_change_request(
                tenant,
                &NewChangeRequest {
                    zone: Some(zone),
                    name: &request_name,
                    plan: json!({
                        "zone": zone_name,
                        "changes": [{
                            "op": "update", "name": format!("mail.{zone_name}"), "type": "MX",
                            "before": {"ttl": 300, "values": ["10 mx1.example.net."]},
                            "after": {"ttl": 300, "values": ["10 mx2.example.net."]},
                            "reasons": ["MX record sets need approval (requiredFor.recordTypes)"]
                        }]
                    }),
                    plan_digest: &format!("sha256:{}", "b".repeat(64)),
                    requester: "Dave Example <dave@acme.example>",
                    reason: Some("MX record sets need approval (requiredFor.recordTypes)"),
                    rollback_to: None,
                    expires_at: chrono::Utc::now() + chrono::Duration::days(7),
                    kind: RequestKind::Declared,
                    revision: Some("0a1b2c3"),
                },
            )
            .await
            .unwrap();
        BusyZone {
            zone,
            snapshot,
            request,
            request_name,
        }
    }

    /// A member of the tenant with [`PASSWORD`] and `role`.
    pub async fn member(&self, tenant: TenantId, email: &str, role: &str) -> UserId {
        let hash = zentralink_web::password::PasswordHasher::new(1)
            .unwrap()
            .hash(&SecretString::new(PASSWORD))
            .await
            .unwrap();
        let user = self.store.create_user(email, email, &hash).await.unwrap();
        self.store.set_membership(tenant, user, role).await.unwrap();
        user
    }
}

/// How a browser session starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scripts {
    Enabled,
    /// JavaScript switched off in the browser's content settings: the pages
    /// must work with forms and links alone.
    Disabled,
}

/// One entry of the browser's console log.
#[derive(Debug, Clone)]
pub struct LogEntry {
    pub level: String,
    pub source: String,
    pub message: String,
}

/// Chromedriver's log endpoint (`POST /session/{id}/se/log`), which
/// fantoccini has no method for. Each read drains what was read.
#[derive(Debug)]
struct ReadBrowserLog;

impl WebDriverCompatibleCommand for ReadBrowserLog {
    fn endpoint(
        &self,
        base_url: &url::Url,
        session_id: Option<&str>,
    ) -> Result<url::Url, url::ParseError> {
        base_url.join(&format!(
            "session/{}/se/log",
            session_id.unwrap_or_default()
        ))
    }

    fn method_and_body(&self, _request_url: &url::Url) -> (Method, Option<String>) {
        (Method::POST, Some(json!({ "type": "browser" }).to_string()))
    }
}

/// A Chrome DevTools Protocol command through chromedriver
/// (`POST /session/{id}/goog/cdp/execute`), for what WebDriver lacks: the
/// page's full size and a screenshot of all of it.
#[derive(Debug)]
struct Cdp {
    command: &'static str,
    params: Value,
}

impl WebDriverCompatibleCommand for Cdp {
    fn endpoint(
        &self,
        base_url: &url::Url,
        session_id: Option<&str>,
    ) -> Result<url::Url, url::ParseError> {
        base_url.join(&format!(
            "session/{}/goog/cdp/execute",
            session_id.unwrap_or_default()
        ))
    }

    fn method_and_body(&self, _request_url: &url::Url) -> (Method, Option<String>) {
        (
            Method::POST,
            Some(json!({ "cmd": self.command, "params": self.params }).to_string()),
        )
    }
}

/// The tallest screenshot taken, in CSS pixels (a longer page is cut there).
pub const SCREENSHOT_MAX_HEIGHT: f64 = 4000.0;

/// A headless Chromium session (fresh profile) looking at one [`Site`].
pub struct Chrome {
    pub client: Client,
    pub base: String,
    test: String,
    driver: String,
    session: String,
    scripts: Scripts,
    closed: bool,
    /// Every screenshot saved, in order.
    pub screenshots: Vec<PathBuf>,
    /// Console entries accepted so far (the checks drain the log).
    pub console: Vec<LogEntry>,
    _profile: tempfile::TempDir,
}

impl Drop for Chrome {
    /// A test that fails mid-way still ends its browser: the session is
    /// deleted with a plain blocking request (no runtime needed).
    fn drop(&mut self) {
        if !self.closed {
            delete_session_blocking(&self.driver, &self.session);
        }
    }
}

fn delete_session_blocking(driver: &str, session: &str) {
    let Some(authority) = driver
        .strip_prefix("http://")
        .map(|rest| rest.split('/').next().unwrap_or(rest).to_owned())
    else {
        return;
    };
    let Ok(mut stream) = std::net::TcpStream::connect(&authority) else {
        return;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
    let request = format!(
        "DELETE /session/{session} HTTP/1.1\r\nHost: {authority}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n"
    );
    if stream.write_all(request.as_bytes()).is_ok() {
        let mut answer = Vec::new();
        let _ = stream.read_to_end(&mut answer);
    }
}

impl Chrome {
    /// A JavaScript-enabled session; `test` names its screenshots.
    pub async fn open(site: &Site, test: &str) -> Chrome {
        Self::open_with(site, test, Scripts::Enabled).await
    }

    pub async fn open_with(site: &Site, test: &str, scripts: Scripts) -> Chrome {
        let driver = chromedriver_url();
        let profile = tempfile::Builder::new()
            .prefix("zl-chromium-")
            .tempdir()
            .unwrap();
        let mut args = vec![
            "--headless=new".to_owned(),
            "--no-sandbox".to_owned(),
            "--disable-gpu".to_owned(),
            "--disable-dev-shm-usage".to_owned(),
            format!("--user-data-dir={}", profile.path().display()),
            "--window-size=1280,900".to_owned(),
            // Nothing but the site under test: no calls home, no updates.
            "--no-first-run".to_owned(),
            "--no-default-browser-check".to_owned(),
            "--disable-background-networking".to_owned(),
            "--disable-component-update".to_owned(),
            "--disable-default-apps".to_owned(),
            "--disable-extensions".to_owned(),
            "--disable-sync".to_owned(),
            "--disable-domain-reliability".to_owned(),
            "--disable-breakpad".to_owned(),
            "--disable-crash-reporter".to_owned(),
            "--disable-features=Translate,OptimizationHints,MediaRouter".to_owned(),
        ];
        args.push("--lang=en-US".to_owned());
        let mut options = json!({ "args": args });
        if let Some(binary) = setting("ZL_CHROMIUM_BINARY") {
            options["binary"] = Value::String(binary);
        }
        if scripts == Scripts::Disabled {
            options["prefs"] = json!({ "profile.managed_default_content_settings.javascript": 2 });
        }
        let mut capabilities = serde_json::Map::new();
        capabilities.insert("browserName".into(), json!("chrome"));
        capabilities.insert("goog:chromeOptions".into(), options);
        capabilities.insert("goog:loggingPrefs".into(), json!({ "browser": "ALL" }));
        let connector = hyper_util::client::legacy::connect::HttpConnector::new();
        let client = ClientBuilder::new(connector)
            .capabilities(capabilities)
            .connect(&driver)
            .await
            .unwrap_or_else(|e| {
                panic!("no browser session from chromedriver at {driver} ({e}): {START_HINT}")
            });
        let session = client
            .session_id()
            .await
            .unwrap()
            .expect("chromedriver gave no session id");
        Chrome {
            client,
            base: site.base.clone(),
            test: test.to_owned(),
            driver,
            session,
            scripts,
            closed: false,
            screenshots: Vec::new(),
            console: Vec::new(),
            _profile: profile,
        }
    }

    /// Ends the session and the browser.
    pub async fn close(mut self) {
        self.closed = true;
        let client = self.client.clone();
        if client.close().await.is_err() {
            delete_session_blocking(&self.driver, &self.session);
        }
    }

    /// Opens `path` of the site, checks the page and saves its screenshot as
    /// `<test>-<page>.png`; returns the page's main heading.
    pub async fn visit(&mut self, path: &str, page: &str) -> String {
        self.client
            .goto(&format!("{}{path}", self.base))
            .await
            .unwrap_or_else(|e| panic!("opening {path}: {e}"));
        self.landed(page).await
    }

    /// After a navigation (a link followed, a form sent): checks the page,
    /// saves its screenshot and returns its main heading.
    pub async fn landed(&mut self, page: &str) -> String {
        self.check_page(page).await;
        self.screenshot(page).await;
        self.heading().await
    }

    /// The text of the page's `<h1>`.
    pub async fn heading(&self) -> String {
        match self.client.find(Locator::Css("main h1")).await {
            Ok(h1) => h1.text().await.unwrap(),
            Err(e) => panic!("no <h1> on {}: {e}", self.path_now().await),
        }
    }

    /// The path (and query) the browser shows now.
    pub async fn path_now(&self) -> String {
        let url = self.client.current_url().await.unwrap();
        match url.query() {
            Some(q) => format!("{}?{q}", url.path()),
            None => url.path().to_owned(),
        }
    }

    /// The visible text of the page's `<main>`.
    pub async fn main_text(&self) -> String {
        self.client
            .find(Locator::Css("main"))
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    }

    /// The texts of every element matching `css`.
    pub async fn texts(&self, css: &str) -> Vec<String> {
        let mut out = Vec::new();
        for element in self.client.find_all(Locator::Css(css)).await.unwrap() {
            out.push(element.text().await.unwrap());
        }
        out
    }

    /// Types `fields` into the form whose `action` is `action` and clicks
    /// its submit button (a real click, as a person would), then checks the
    /// page it leads to and saves it as `page`; returns its heading.
    pub async fn submit(&mut self, action: &str, fields: &[(&str, &str)], page: &str) -> String {
        self.submit_form(&format!("form[action='{action}']"), fields, page)
            .await
    }

    /// [`Chrome::submit`] for the form matching the CSS selector `form_css`
    /// (a form without `action` posts to its own page).
    pub async fn submit_form(
        &mut self,
        form_css: &str,
        fields: &[(&str, &str)],
        page: &str,
    ) -> String {
        let action = form_css;
        let form = self
            .client
            .find(Locator::Css(form_css))
            .await
            .unwrap_or_else(|e| panic!("no form {form_css} on this page: {e}"));
        for (name, value) in fields {
            let input = form
                .find(Locator::Css(&format!("[name='{name}']")))
                .await
                .unwrap_or_else(|e| panic!("no field {name} in the form to {action}: {e}"));
            if input.tag_name().await.unwrap() == "select" {
                input
                    .select_by_value(value)
                    .await
                    .unwrap_or_else(|e| panic!("no option {value:?} in {name}: {e}"));
            } else {
                input.clear().await.unwrap();
                input.send_keys(value).await.unwrap();
            }
        }
        form.find(Locator::Css("button[type=submit], input[type=submit]"))
            .await
            .unwrap_or_else(|e| panic!("no submit button in the form to {action}: {e}"))
            .click()
            .await
            .unwrap();
        self.landed(page).await
    }

    /// Like [`Chrome::submit`] for the form whose submit button says `button`
    /// (for pages with several forms to the same address).
    pub async fn press(&mut self, button: &str, page: &str) -> String {
        let buttons = self
            .client
            .find_all(Locator::Css("form button[type=submit]"))
            .await
            .unwrap();
        let mut found = None;
        for b in buttons {
            if b.text().await.unwrap().trim() == button {
                found = Some(b);
                break;
            }
        }
        found
            .unwrap_or_else(|| panic!("no button {button:?} on this page"))
            .click()
            .await
            .unwrap();
        self.landed(page).await
    }

    /// The value of the input matching `css`.
    pub async fn value_of(&self, css: &str) -> String {
        self.client
            .find(Locator::Css(css))
            .await
            .unwrap_or_else(|e| panic!("no {css} on this page: {e}"))
            .prop("value")
            .await
            .unwrap()
            .unwrap_or_default()
    }

    /// Follows the link whose text is `text`.
    pub async fn follow(&mut self, text: &str, page: &str) -> String {
        self.client
            .find(Locator::LinkText(text))
            .await
            .unwrap_or_else(|e| panic!("no link {text:?}: {e}"))
            .click()
            .await
            .unwrap();
        self.landed(page).await
    }

    /// Signs in through the sign-in page (no second factor); lands on the dashboard.
    pub async fn sign_in(&mut self, email: &str, password: &str) {
        self.visit("/login", "sign-in").await;
        self.submit(
            "/login",
            &[("email", email), ("password", password)],
            "dashboard",
        )
        .await;
        assert_eq!(
            self.path_now().await,
            "/dashboard",
            "{}",
            self.main_text().await
        );
    }

    /// Signs out with the header's button; lands on the sign-in page.
    pub async fn sign_out(&mut self, page: &str) {
        self.submit("/logout", &[], page).await;
    }

    /// Saves a screenshot of the whole page (up to
    /// [`SCREENSHOT_MAX_HEIGHT`]) as `<test>-<page>.png`.
    pub async fn screenshot(&mut self, page: &str) -> PathBuf {
        let metrics = self
            .client
            .issue_cmd(Cdp {
                command: "Page.getLayoutMetrics",
                params: json!({}),
            })
            .await
            .unwrap();
        let width = metrics["cssContentSize"]["width"]
            .as_f64()
            .unwrap_or(1280.0);
        let height = metrics["cssContentSize"]["height"]
            .as_f64()
            .unwrap_or(900.0)
            .min(SCREENSHOT_MAX_HEIGHT);
        let shot = self
            .client
            .issue_cmd(Cdp {
                command: "Page.captureScreenshot",
                params: json!({
                    "format": "png",
                    "captureBeyondViewport": true,
                    "clip": { "x": 0, "y": 0, "width": width, "height": height, "scale": 1 },
                }),
            })
            .await
            .unwrap();
        let png = data_encoding::BASE64
            .decode(shot["data"].as_str().unwrap_or_default().as_bytes())
            .unwrap();
        assert!(
            png.starts_with(b"\x89PNG"),
            "the screenshot of {page} is not a PNG"
        );
        let dir = screenshot_dir();
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join(format!("{}-{page}.png", self.test));
        std::fs::write(&path, png).unwrap();
        self.screenshots.push(path.clone());
        path
    }

    /// Drains the browser's console log.
    pub async fn read_console(&self) -> Vec<LogEntry> {
        let value = self
            .client
            .issue_cmd(ReadBrowserLog)
            .await
            .unwrap_or_else(|e| panic!("reading the browser's console log: {e}"));
        value
            .as_array()
            .map(|entries| {
                entries
                    .iter()
                    .map(|e| LogEntry {
                        level: e["level"].as_str().unwrap_or_default().to_owned(),
                        source: e["source"].as_str().unwrap_or_default().to_owned(),
                        message: e["message"].as_str().unwrap_or_default().to_owned(),
                    })
                    .collect()
            })
            .unwrap_or_default()
    }

    /// The page obeys the Content Security Policy and needs no script: no
    /// `<script>` with inline code, no inline event handler or
    /// `javascript:` URL in the DOM, and nothing in the console about the
    /// policy or a script error. (A missing favicon or an error status
    /// the test asked for is not a problem of the page.)
    pub async fn check_page(&mut self, page: &str) {
        let source = self.client.source().await.unwrap();
        let problems = inline_script_problems(&source);
        if !problems.is_empty() {
            panic!(
                "{page} ({}): {}",
                self.path_now().await,
                problems.join("; ")
            );
        }
        for entry in self.read_console().await {
            let csp = entry.message.contains("Content Security Policy")
                || entry.message.contains("Refused to");
            let script_error = entry.source == "javascript";
            if csp || script_error {
                panic!(
                    "{page} ({}): the browser's console says: {} {}",
                    self.path_now().await,
                    entry.level,
                    entry.message
                );
            }
            self.console.push(entry);
        }
    }

    /// Whether JavaScript runs in this session, as the browser says it:
    /// a document whose script would retitle it, opened and asked for its
    /// title. (Leaves the browser on that document.)
    pub async fn page_scripts_run(&self) -> bool {
        self.client
            .goto("data:text/html,<title>off</title><script>document.title='on'</script>")
            .await
            .unwrap();
        match self.client.title().await.unwrap().as_str() {
            "on" => true,
            "off" => false,
            other => panic!("the probe page has the title {other:?}"),
        }
    }

    /// How this session was opened.
    pub fn scripts(&self) -> Scripts {
        self.scripts
    }
}

/// What in an HTML document a CSP without `'unsafe-inline'` would block, or
/// that would need script: inline `<script>` code, `on…=` handler
/// attributes, `javascript:` URLs, inline `<style>` and `style=`
/// attributes. Scans the serialised DOM tag by tag.
pub fn inline_script_problems(html: &str) -> Vec<String> {
    let mut problems = Vec::new();
    let lower = html.to_ascii_lowercase();
    let mut rest = lower.as_str();
    while let Some(open) = rest.find('<') {
        rest = &rest[open + 1..];
        let Some(close) = rest.find('>') else { break };
        let tag = &rest[..close];
        let name: String = tag
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric())
            .collect();
        if name.is_empty() {
            continue;
        }
        if name == "script" {
            let body_end = rest.find("</script").unwrap_or(rest.len());
            let body = rest[close + 1..body_end].trim();
            if !body.is_empty() {
                problems.push(format!("an inline <script>: {:.80}", body));
            } else if !tag.contains("src=") {
                problems.push("a <script> without src".into());
            }
        }
        if name == "style" {
            let body_end = rest.find("</style").unwrap_or(rest.len());
            if !rest[close + 1..body_end].trim().is_empty() {
                problems.push(
                    "an inline <style> (the CSP allows only style sheets of this origin)".into(),
                );
            }
        }
        for attribute in attributes(tag) {
            if attribute.0 == "style" {
                problems.push(format!(
                    "a style= attribute on <{name}> (blocked by the CSP)"
                ));
            }
            if attribute.0.starts_with("on") && attribute.0.len() > 2 {
                problems.push(format!(
                    "an inline event handler {}= on <{name}>",
                    attribute.0
                ));
            }
            if attribute.1.trim_start().starts_with("javascript:") {
                problems.push(format!("a javascript: URL in {} of <{name}>", attribute.0));
            }
        }
    }
    problems
}

/// The (name, value) attributes of a tag's text (after its name).
fn attributes(tag: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut chars = tag.chars().skip_while(|c| !c.is_whitespace()).peekable();
    loop {
        while chars.peek().is_some_and(|c| c.is_whitespace() || *c == '/') {
            chars.next();
        }
        let name: String =
            std::iter::from_fn(|| chars.next_if(|c| !c.is_whitespace() && *c != '=' && *c != '/'))
                .collect();
        if name.is_empty() {
            break;
        }
        let mut value = String::new();
        if chars.peek() == Some(&'=') {
            chars.next();
            match chars.peek().copied() {
                Some(quote @ ('"' | '\'')) => {
                    chars.next();
                    value = std::iter::from_fn(|| chars.next_if(|c| *c != quote)).collect();
                    chars.next();
                }
                _ => value = std::iter::from_fn(|| chars.next_if(|c| !c.is_whitespace())).collect(),
            }
        }
        out.push((name, value));
    }
    out
}
