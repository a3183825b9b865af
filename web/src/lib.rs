//! ZentraLink's companion web service: accounts (argon2id on a bounded
//! pool), server-side sessions, CSRF protection, login throttling, TOTP
//! second factor with backup codes, and the DNS dashboard. Server-rendered
//! HTML through templates that escape by default; no script, no third-party
//! assets. `app(state)` builds the router; the binary serves it. Does I/O
//! (PostgreSQL through the store).

pub mod audit_viewer;
pub mod auth;
pub mod clock;
pub mod cron;
pub mod dashboard;
pub mod error;
pub mod hardening;
pub mod mail;
pub mod members;
pub mod notifications;
pub mod pages;
pub mod password;
pub mod public;
pub mod roles;
pub mod session;
pub mod status;
pub mod svg;
pub mod templates;
pub mod tenant;
pub mod throttle;
pub mod tickets;
pub mod totp;

use std::sync::Arc;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use zentralink_store::Store;

pub use clock::{Clock, SystemClock};
pub use error::WebError;
use password::PasswordHasher;
use templates::Templates;
use throttle::ThrottlePolicy;

/// The largest request body accepted (forms are small).
pub const BODY_LIMIT: usize = 16 * 1024;

/// The security contact when the operator names none.
pub const DEFAULT_SECURITY_CONTACT: &str = "security@zentralink.net";
/// The privacy contact when the operator names none.
pub const DEFAULT_PRIVACY_CONTACT: &str = "privacy@zentralink.net";

/// How the service runs.
#[derive(Debug, Clone)]
pub struct WebConfig {
    /// Mark cookies `Secure` (and use the `__Host-` prefix). Off only for
    /// plain-HTTP development on localhost (`--insecure-cookies`).
    pub secure_cookies: bool,
    /// Send `Strict-Transport-Security`: the service is reached over TLS.
    pub hsts: bool,
    /// How many password hashes may be computed at once (each takes 19 MiB).
    pub hash_concurrency: usize,
    /// Failed sign-ins allowed before a wait.
    pub throttle: ThrottlePolicy,
    /// The issuer shown in authenticator apps.
    pub totp_issuer: String,
    /// How long a client has to send a request's headers.
    pub header_read_timeout: std::time::Duration,
    /// The bearer token `POST /api/cron/<job>` requires; with none, every
    /// cron call is refused.
    pub cron_token: Option<zentralink_model::secrets::SecretString>,
    /// Where security reports go (shown on /security and /status).
    pub security_contact: String,
    /// Where privacy and DPA requests go (shown on /dpa and /subprocessors).
    pub privacy_contact: String,
    /// The address people reach the service at, e.g. `https://dns.example.com`,
    /// for links in e-mails; none: e-mails carry paths only.
    pub public_url: Option<String>,
}

impl Default for WebConfig {
    fn default() -> Self {
        Self {
            secure_cookies: true,
            hsts: false,
            hash_concurrency: 4,
            throttle: ThrottlePolicy::default(),
            totp_issuer: "ZentraLink".into(),
            header_read_timeout: HEADER_READ_TIMEOUT,
            cron_token: None,
            security_contact: DEFAULT_SECURITY_CONTACT.into(),
            privacy_contact: DEFAULT_PRIVACY_CONTACT.into(),
            public_url: None,
        }
    }
}

/// Everything a request handler needs, shared (cheap to clone).
#[derive(Debug, Clone)]
pub struct AppState {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    store: Store,
    config: WebConfig,
    hasher: PasswordHasher,
    templates: Templates,
    clock: Arc<dyn Clock>,
    /// Live ticket updates: this process's listener and its channels.
    tickets: Arc<tickets::live::TicketHub>,
    /// The public status page as last rendered.
    status_page: status::PageCache,
}

impl AppState {
    pub fn new(store: Store, config: WebConfig) -> Result<Self, WebError> {
        Self::with_clock(store, config, Arc::new(SystemClock))
    }

    /// A state whose time comes from `clock` (tests move it by hand).
    pub fn with_clock(
        store: Store,
        config: WebConfig,
        clock: Arc<dyn Clock>,
    ) -> Result<Self, WebError> {
        let hasher = PasswordHasher::new(config.hash_concurrency)?;
        let templates = Templates::new()?;
        let tickets = tickets::live::TicketHub::new(store.clone());
        Ok(Self {
            inner: Arc::new(Inner {
                store,
                config,
                hasher,
                templates,
                clock,
                tickets,
                status_page: status::PageCache::default(),
            }),
        })
    }

    /// The public status page as last rendered by this process.
    pub fn status_page(&self) -> &status::PageCache {
        &self.inner.status_page
    }

    /// The live ticket updates of this process.
    pub fn tickets(&self) -> &Arc<tickets::live::TicketHub> {
        &self.inner.tickets
    }

    pub fn store(&self) -> &Store {
        &self.inner.store
    }

    pub fn config(&self) -> &WebConfig {
        &self.inner.config
    }

    pub fn hasher(&self) -> &PasswordHasher {
        &self.inner.hasher
    }

    pub fn templates(&self) -> &Templates {
        &self.inner.templates
    }

    pub fn now(&self) -> chrono::DateTime<chrono::Utc> {
        self.inner.clock.now()
    }
}

/// Declares every route once: `ROUTES` (method, path) and the router are
/// built from the same list, so a test can call every route the service
/// has without keeping a list of its own.
macro_rules! route_table {
    ($($method:ident $path:literal => $handler:path),* $(,)?) => {
        /// Every route of the router as (method, path), in declaration order.
        pub const ROUTES: &[(&str, &str)] = &[$((stringify!($method), $path)),*];

        fn routes() -> Router<AppState> {
            let router = Router::new();
            $(let router = router.route($path, axum::routing::$method($handler));)*
            router
        }
    };
}

route_table! {
    get "/" => pages::home,
    get "/login" => auth::login_page,
    post "/login" => auth::login,
    get "/login/2fa" => auth::second_factor_page,
    post "/login/2fa" => auth::second_factor,
    post "/logout" => auth::logout,
    post "/logout/everywhere" => auth::logout_everywhere,
    get "/account/2fa" => auth::totp_page,
    post "/account/2fa/enrol" => auth::totp_enrol,
    post "/account/2fa/confirm" => auth::totp_confirm,
    post "/account/2fa/disable" => auth::totp_disable,
    get "/dashboard" => dashboard::zones,
    get "/zones/{id}" => dashboard::zone,
    get "/zones/{id}/snapshots" => dashboard::snapshots::list,
    get "/snapshots/{id}" => dashboard::snapshots::page,
    post "/snapshots/{id}/rollback" => dashboard::snapshots::request_rollback,
    get "/change-requests" => dashboard::requests::list,
    get "/change-requests/{id}" => dashboard::requests::page,
    get "/change-requests/{id}/message" => dashboard::requests::message,
    post "/change-requests/{id}/approvals" => dashboard::requests::paste,
    get "/connections" => dashboard::connections,
    get "/static/style.css" => pages::stylesheet,
    get "/api/healthz" => status::healthz,
    get "/audit" => audit_viewer::page,
    get "/members" => members::members_page,
    post "/members/invite" => members::invite,
    post "/members/invitations/{id}/revoke" => members::revoke,
    post "/members/{id}/role" => members::change_role,
    post "/members/{id}/remove" => members::remove,
    get "/invitations/{token}" => members::invitation_page,
    post "/invitations/{token}" => members::accept,
    get "/tenant" => tenant::tenant_page,
    post "/tenant/2fa" => tenant::set_require_2fa,
    post "/tenant/policy" => tenant::request_policy_edit,
    post "/tenant/switch" => tenant::switch,
    // -- tickets and the support desk (tickets.rs) --
    get "/tickets" => tickets::list,
    post "/tickets" => tickets::create,
    get "/tickets/new" => tickets::new_page,
    get "/tickets/{id}" => tickets::show,
    post "/tickets/{id}/comments" => tickets::reply,
    post "/tickets/{id}/status" => tickets::change_status,
    get "/tickets/{id}/events" => tickets::events,
    get "/support" => tickets::desk::desk,
    get "/support/tickets/{id}" => tickets::desk::ticket,
    post "/support/tickets/{id}/comments" => tickets::desk::comment,
    post "/support/tickets/{id}/status" => tickets::desk::change_status,
    post "/support/tickets/{id}/assign" => tickets::desk::assign,
    get "/support/tickets/{id}/events" => tickets::desk::events,
    get "/static/tickets.js" => tickets::script,
    get "/static/tickets.css" => tickets::stylesheet,
    // -- notifications, mail settings and templates (notifications.rs, mail.rs) --
    get "/notifications" => notifications::list,
    post "/notifications/read-all" => notifications::mark_all_read,
    post "/notifications/{id}/read" => notifications::mark_read,
    get "/notifications/settings" => notifications::settings_page,
    post "/notifications/settings" => notifications::save_settings,
    get "/mail" => mail::pages::tenant_page,
    post "/mail/settings" => mail::pages::tenant_save,
    post "/mail/settings/remove" => mail::pages::tenant_remove,
    post "/mail/test" => mail::pages::tenant_test,
    get "/mail/templates" => mail::pages::tenant_templates,
    post "/mail/templates" => mail::pages::tenant_edit_template,
    get "/admin/mail" => mail::pages::platform_page,
    post "/admin/mail/settings" => mail::pages::platform_save,
    post "/admin/mail/settings/remove" => mail::pages::platform_remove,
    post "/admin/mail/test" => mail::pages::platform_test,
    get "/admin/mail/templates" => mail::pages::platform_templates,
    post "/admin/mail/templates" => mail::pages::platform_edit_template,
    // -- status page, incidents, cron, public pages (status.rs, cron.rs, public.rs) --
    get "/status" => status::page_handler,
    get "/admin/status" => status::admin_page,
    post "/admin/status" => status::open_incident,
    get "/admin/status/{id}" => status::incident_page,
    post "/admin/status/{id}" => status::update_incident,
    get "/admin/cron" => cron::runs_page,
    post "/api/cron/{job}" => cron::run,
    get "/security" => public::security,
    get "/toms" => public::toms,
    get "/dpa" => public::dpa,
    get "/integrations" => public::integrations,
    get "/subprocessors" => public::subprocessors,
    get "/.well-known/security.txt" => public::security_txt,
}

/// The web service's router: every page of [`ROUTES`], behind the
/// hardening layer (security headers, request ids, error pages,
/// cross-origin refusal, body limit, timeout).
pub fn app(state: AppState) -> Router {
    routes()
        .fallback(pages::not_found)
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            tenant::require_enrolment,
        ))
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            hardening::harden,
        ))
        .with_state(state)
}

/// How long a client has to send a request's headers before the
/// connection is closed (a client trickling headers cannot hold a
/// connection open forever).
pub const HEADER_READ_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// How long the requests in flight have to finish once shutdown begins.
const SHUTDOWN_GRACE: std::time::Duration = std::time::Duration::from_secs(10);

/// Serves the web service on `listener` until `shutdown` resolves, then
/// answers the requests in flight (for up to 10 s) and returns. HTTP/1.1;
/// headers must arrive within `header_read_timeout` ([`HEADER_READ_TIMEOUT`]
/// by default). The peer's address reaches handlers (audit events,
/// throttling by address).
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: AppState,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    use axum::extract::ConnectInfo;
    use hyper_util::rt::{TokioIo, TokioTimer};
    use hyper_util::server::graceful::GracefulShutdown;
    use tower::ServiceExt;

    let header_read_timeout = state.config().header_read_timeout;
    let router = app(state);
    let graceful = GracefulShutdown::new();
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    // Out of file descriptors and the like: wait, not spin.
                    tracing::warn!("web: accepting a connection failed: {e}");
                    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                    continue;
                }
            },
        };
        let router = router.clone();
        let service = hyper::service::service_fn(
            move |mut request: axum::http::Request<hyper::body::Incoming>| {
                request.extensions_mut().insert(ConnectInfo(peer));
                router.clone().oneshot(request)
            },
        );
        let connection = hyper::server::conn::http1::Builder::new()
            .timer(TokioTimer::new())
            .header_read_timeout(header_read_timeout)
            .serve_connection(TokioIo::new(stream), service);
        let watched = graceful.watch(connection);
        tokio::spawn(async move {
            if let Err(e) = watched.await {
                tracing::debug!(%peer, "web: connection ended: {e}");
            }
        });
    }
    drop(listener);
    if tokio::time::timeout(SHUTDOWN_GRACE, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!(
            "web: requests still open after {}s were dropped at shutdown",
            SHUTDOWN_GRACE.as_secs()
        );
    }
    Ok(())
}
