//! The public status page and the incidents staff manage, and the health
//! check. `/status` needs no session and carries no script: the state of
//! each component (the operator from its recorded reconcile passes, this
//! service and its database, each provider kind from the connection checks
//! the operator recorded, aggregated over every tenant: no tenant, zone or
//! connection names, no check messages, no counts), open incidents with
//! their updates and the ones resolved in the last 90 days. The rendered
//! page is kept in memory for [`PAGE_TTL`] (or until an incident changes)
//! and served with an `ETag`, so most requests read nothing. Reads and
//! writes the store.

use std::sync::{Arc, Mutex};

use axum::Form;
use axum::body::{Body, Bytes};
use axum::extract::{Path, State};
use axum::http::header::{CACHE_CONTROL, CONTENT_TYPE, ETAG, IF_NONE_MATCH};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Duration, Utc};
use minijinja::context;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use uuid::Uuid;
use zentralink_store::audit::{Actor, AuditEvent};
use zentralink_store::status::{
    IMPACTS, INCIDENT_STATUSES, IncidentRecord, IncidentUpdateRecord, NewIncident, OperatorSeen,
    ProviderSeen, SchemaState,
};

use crate::AppState;
use crate::error::WebError;
use crate::members::{page, see_other};
use crate::roles::Staff;
use crate::session::Client;

/// The templates of this part of the service.
pub const TEMPLATES: &[(&str, &str)] = &[
    ("status.html", include_str!("../templates/status.html")),
    (
        "admin_status.html",
        include_str!("../templates/admin_status.html"),
    ),
    (
        "admin_status_incident.html",
        include_str!("../templates/admin_status_incident.html"),
    ),
    // The cron runs page (cron.rs) registers with this part.
    (
        "cron_runs.html",
        include_str!("../templates/cron_runs.html"),
    ),
];

/// How long a rendered status page is served from memory. An incident
/// opened or updated through this process replaces it at once; other
/// changes (a reconcile pass, a connection check, another web process's
/// incident) show within this time.
pub const PAGE_TTL: Duration = Duration::seconds(5);

/// What browsers and proxies may do with the page: keep it for 30 s, then
/// ask again with the `ETag` (a 304 when nothing changed). Short against
/// an incident's timescale, long enough for a proxy in front to absorb a
/// crowd of visitors during an incident, which is when the page is busiest.
pub const PAGE_CACHE_CONTROL: &str = "public, max-age=30";

/// How far back resolved incidents are listed.
pub const RESOLVED_HISTORY: Duration = Duration::days(90);

/// A source whose last reconcile pass is older than this counts as not
/// reporting (the operator passes every 30 s by default, and every zone at
/// least every 5 minutes).
pub const OPERATOR_SILENCE: Duration = Duration::minutes(10);

/// How long the status page and the health check wait for the database
/// before they say it did not answer.
pub const DATABASE_PATIENCE: std::time::Duration = std::time::Duration::from_secs(3);

/// The provider kinds the operator knows, with the names the page shows.
pub const PROVIDER_KINDS: [(&str, &str); 5] = [
    ("powerdns", "PowerDNS"),
    ("rfc2136", "RFC 2136 (BIND and other servers)"),
    ("hetzner", "Hetzner DNS"),
    ("cloudflare", "Cloudflare"),
    ("zonefile", "Zone files"),
];

/// The longest incident title and update text accepted.
const MAX_TITLE_CHARS: usize = 200;
const MAX_BODY_CHARS: usize = 5000;

// ---------------------------------------------------------------------------
// Component states (pure)

/// How a component is doing, as far as what is recorded tells.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ComponentState {
    Operational,
    /// Some of it reports errors.
    Partial,
    /// It reports errors.
    Degraded,
    /// Nothing recent is recorded.
    Unknown,
    /// Not configured on this platform.
    NotInUse,
}

impl ComponentState {
    pub fn label(self) -> &'static str {
        match self {
            ComponentState::Operational => "Operational",
            ComponentState::Partial => "Errors on some connections",
            ComponentState::Degraded => "Degraded",
            ComponentState::Unknown => "Unknown",
            ComponentState::NotInUse => "Not in use",
        }
    }

    /// The stylesheet's class for the badge (the label says the same in words).
    fn class(self) -> &'static str {
        match self {
            ComponentState::Operational => "state-in-sync",
            ComponentState::Partial => "state-awaiting-approval",
            ComponentState::Degraded => "state-drifted",
            ComponentState::Unknown | ComponentState::NotInUse => "state-not-seen",
        }
    }
}

/// A component as the page shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Component {
    pub name: String,
    pub state: ComponentState,
    pub label: &'static str,
    pub class: &'static str,
    pub detail: String,
}

fn component(name: &str, state: ComponentState, detail: String) -> Component {
    Component {
        name: name.to_owned(),
        state,
        label: state.label(),
        class: state.class(),
        detail,
    }
}

fn when(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%d %H:%M UTC").to_string()
}

/// The operator ("DNS API") from its recorded passes.
pub fn operator_component(seen: &OperatorSeen) -> Component {
    let name = "DNS API (operator)";
    match seen.last_pass_at {
        None => component(
            name,
            ComponentState::Unknown,
            "No reconcile pass has been recorded.".into(),
        ),
        Some(last) if seen.recent_sources == 0 => component(
            name,
            ComponentState::Unknown,
            format!(
                "No reconcile pass recorded in the last {} minutes; the last was at {}.",
                OPERATOR_SILENCE.num_minutes(),
                when(last)
            ),
        ),
        Some(last) if seen.recent_failing > 0 => component(
            name,
            ComponentState::Degraded,
            format!(
                "The last reconcile pass of a source had errors (last pass {}).",
                when(last)
            ),
        ),
        Some(last) => component(
            name,
            ComponentState::Operational,
            format!("Reconciling; last pass {}.", when(last)),
        ),
    }
}

/// This service: it answered; whether its database did too.
pub fn web_component(database_answered: bool) -> Component {
    if database_answered {
        component(
            "Web",
            ComponentState::Operational,
            "This page was served and the database answered.".into(),
        )
    } else {
        component(
            "Web",
            ComponentState::Degraded,
            "This page was served, but the database did not answer.".into(),
        )
    }
}

/// One provider kind from the connection checks the operator recorded.
pub fn provider_component(name: &str, seen: Option<&ProviderSeen>) -> Component {
    let last = |s: &ProviderSeen| {
        s.last_checked_at
            .map(|t| format!(" Last check {}.", when(t)))
            .unwrap_or_default()
    };
    match seen {
        None => component(
            name,
            ComponentState::NotInUse,
            "No connection of this kind is configured.".into(),
        ),
        Some(s) if s.checked == 0 && s.failing == 0 => {
            component(name, ComponentState::Unknown, "Not checked yet.".into())
        }
        Some(s) if s.failing == 0 => component(
            name,
            ComponentState::Operational,
            format!("Connection tests pass.{}", last(s)),
        ),
        Some(s) if s.failing < s.connections => component(
            name,
            ComponentState::Partial,
            format!(
                "The last test or write probe of some connections failed (this can be one connection's settings or credentials).{}",
                last(s)
            ),
        ),
        Some(s) => component(
            name,
            ComponentState::Degraded,
            format!(
                "The last test or write probe of the connections failed.{}",
                last(s)
            ),
        ),
    }
}

// ---------------------------------------------------------------------------
// The page

#[derive(Debug, Serialize)]
struct UpdateView {
    status: String,
    paragraphs: Vec<String>,
    at: String,
    at_iso: String,
}

#[derive(Debug, Serialize)]
struct IncidentView {
    id: String,
    title: String,
    impact: String,
    status: String,
    started: String,
    started_iso: String,
    resolved: Option<String>,
    resolved_iso: Option<String>,
    updates: Vec<UpdateView>,
}

fn paragraphs(text: &str) -> Vec<String> {
    text.replace("\r\n", "\n")
        .split("\n\n")
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .map(str::to_owned)
        .collect()
}

fn incident_view(i: IncidentRecord, updates: Vec<IncidentUpdateRecord>) -> IncidentView {
    IncidentView {
        id: i.id.to_string(),
        title: i.title,
        impact: i.impact,
        status: i.status,
        started: when(i.started_at),
        started_iso: i.started_at.to_rfc3339(),
        resolved: i.resolved_at.map(when),
        resolved_iso: i.resolved_at.map(|t| t.to_rfc3339()),
        updates: updates
            .into_iter()
            .map(|u| UpdateView {
                status: u.status,
                paragraphs: paragraphs(&u.body),
                at: when(u.created_at),
                at_iso: u.created_at.to_rfc3339(),
            })
            .collect(),
    }
}

/// Incidents from the store: open first, then resolved since `since`.
async fn incident_views(
    state: &AppState,
    since: DateTime<Utc>,
) -> Result<Vec<IncidentView>, WebError> {
    let incidents = state.store().incidents(since).await?;
    let ids: Vec<Uuid> = incidents.iter().map(|i| i.id).collect();
    let mut updates = state.store().incident_updates(&ids).await?;
    Ok(incidents
        .into_iter()
        .map(|i| {
            let u = updates.remove(&i.id).unwrap_or_default();
            incident_view(i, u)
        })
        .collect())
}

/// The headline: open incidents first, then what the components say.
fn summary(open: &[&IncidentView], components: &[Component]) -> (String, &'static str) {
    if let Some(worst) = open
        .iter()
        .max_by_key(|i| IMPACTS.iter().position(|x| *x == i.impact))
    {
        let n = open.len();
        let what = if n == 1 {
            "1 open incident".to_owned()
        } else {
            format!("{n} open incidents")
        };
        let class = match worst.impact.as_str() {
            "major" | "critical" => "state-drifted",
            _ => "state-awaiting-approval",
        };
        return (format!("{what} (impact: {})", worst.impact), class);
    }
    let states: Vec<ComponentState> = components.iter().map(|c| c.state).collect();
    if states
        .iter()
        .any(|s| matches!(s, ComponentState::Degraded | ComponentState::Partial))
    {
        (
            "No open incident; some components report errors".into(),
            "state-awaiting-approval",
        )
    } else if states.contains(&ComponentState::Unknown) {
        (
            "No open incident; some components have reported nothing recently".into(),
            "state-not-seen",
        )
    } else {
        ("All systems operational".into(), "state-in-sync")
    }
}

/// Renders the page from the store, as of `now`. A database that does not
/// answer still gives a page that says so.
async fn render_page(state: &AppState, now: DateTime<Utc>) -> Result<String, WebError> {
    let store = state.store();
    let gathered = tokio::time::timeout(DATABASE_PATIENCE, async {
        let operator = store.operator_seen(now - OPERATOR_SILENCE).await?;
        let providers = store.providers_seen().await?;
        let incidents = incident_views(state, now - RESOLVED_HISTORY).await?;
        Ok::<_, WebError>((operator, providers, incidents))
    })
    .await
    .unwrap_or_else(|_| Err(WebError::Internal("no answer in time".into())));
    let (components, incidents, available) = match gathered {
        Ok((operator, providers, incidents)) => {
            let mut components = vec![operator_component(&operator), web_component(true)];
            for (kind, name) in PROVIDER_KINDS {
                components.push(provider_component(name, providers.get(kind)));
            }
            (components, incidents, true)
        }
        Err(e) => {
            tracing::warn!("status page: the store did not answer: {e}");
            let unknown = |name: &str| {
                component(
                    name,
                    ComponentState::Unknown,
                    "Not known: the database did not answer.".into(),
                )
            };
            let mut components = vec![unknown("DNS API (operator)"), web_component(false)];
            for (_, name) in PROVIDER_KINDS {
                components.push(unknown(name));
            }
            (components, Vec::new(), false)
        }
    };
    let (open, resolved): (Vec<&IncidentView>, Vec<&IncidentView>) =
        incidents.iter().partition(|i| i.resolved.is_none());
    let (headline, headline_class) = summary(&open, &components);
    state.templates().render(
        "status.html",
        context! {
            components => components, open => open, resolved => resolved,
            headline => headline, headline_class => headline_class, available => available,
            history_days => RESOLVED_HISTORY.num_days(), ttl_seconds => PAGE_TTL.num_seconds(),
        },
    )
}

/// A rendered page with its `ETag`.
#[derive(Debug)]
struct CachedPage {
    rendered_at: DateTime<Utc>,
    body: Bytes,
    etag: HeaderValue,
}

/// The status page as last rendered (one per [`AppState`]).
#[derive(Debug, Default)]
pub struct PageCache(Mutex<Option<Arc<CachedPage>>>);

/// Drops the cached page, so the next request renders it afresh (after an
/// incident changes, or when a test changes what the page shows).
pub fn forget_page(state: &AppState) {
    if let Ok(mut page) = state.status_page().0.lock() {
        *page = None;
    }
}

async fn current_page(state: &AppState) -> Result<Arc<CachedPage>, WebError> {
    let now = state.now();
    let fresh = |p: &CachedPage| now >= p.rendered_at && now - p.rendered_at < PAGE_TTL;
    if let Some(page) = state
        .status_page()
        .0
        .lock()
        .ok()
        .and_then(|page| page.clone())
        .filter(|p| fresh(p))
    {
        return Ok(page);
    }
    let html = render_page(state, now).await?;
    let digest = Sha256::digest(html.as_bytes());
    let etag = format!("\"{}\"", data_encoding::HEXLOWER.encode(&digest[..16]));
    let page = Arc::new(CachedPage {
        rendered_at: now,
        body: Bytes::from(html),
        etag: HeaderValue::from_str(&etag).map_err(|e| WebError::Internal(format!("ETag: {e}")))?,
    });
    if let Ok(mut cached) = state.status_page().0.lock() {
        *cached = Some(page.clone());
    }
    Ok(page)
}

/// Whether an `If-None-Match` header names `etag` (weak comparison, `*`).
pub fn matches_etag(headers: &HeaderMap, etag: &str) -> bool {
    let strip = |t: &str| t.trim().trim_start_matches("W/").to_owned();
    let want = strip(etag);
    headers
        .get_all(IF_NONE_MATCH)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|t| t.trim() == "*" || strip(t) == want)
}

/// `GET /status`: the public status page.
pub async fn page_handler(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<Response, WebError> {
    let page = current_page(&state).await?;
    let cache = HeaderValue::from_static(PAGE_CACHE_CONTROL);
    let matched = page.etag.to_str().is_ok_and(|e| matches_etag(&headers, e));
    let mut response = if matched {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        let mut r = Response::new(Body::from(page.body.clone()));
        r.headers_mut().insert(
            CONTENT_TYPE,
            HeaderValue::from_static("text/html; charset=utf-8"),
        );
        r
    };
    let h = response.headers_mut();
    h.insert(ETAG, page.etag.clone());
    h.insert(CACHE_CONTROL, cache);
    Ok(response)
}

// ---------------------------------------------------------------------------
// The health check

/// `GET /api/healthz`: `ok` when the database answers and every migration
/// of this build is applied as built; 503 with a short reason otherwise.
/// Never a version, a migration's name or an error's text.
pub async fn healthz(State(state): State<AppState>) -> Response {
    let schema = tokio::time::timeout(DATABASE_PATIENCE, state.store().schema_state()).await;
    let (status, text) = match schema.unwrap_or_else(|_| {
        Err(zentralink_store::StoreError::Unavailable(
            "no answer in time".into(),
        ))
    }) {
        Ok(SchemaState::Current) => (StatusCode::OK, "ok"),
        Ok(SchemaState::Pending) => (StatusCode::SERVICE_UNAVAILABLE, "migrations pending"),
        Ok(SchemaState::Failed) => (StatusCode::SERVICE_UNAVAILABLE, "a migration failed"),
        Ok(SchemaState::Differs) => (
            StatusCode::SERVICE_UNAVAILABLE,
            "schema differs from this build",
        ),
        Err(e) => {
            tracing::warn!("healthz: the database did not answer: {e}");
            (StatusCode::SERVICE_UNAVAILABLE, "database unreachable")
        }
    };
    let mut r = (status, text).into_response();
    r.headers_mut()
        .insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    if !status.is_success() {
        // The reason is the page: the error-page layer leaves it as it is.
        r.extensions_mut().insert(crate::error::Rendered);
    }
    r
}

// ---------------------------------------------------------------------------
// Incidents, for staff

/// Opening an incident.
#[derive(Debug, Default, Deserialize, Serialize)]
pub struct IncidentForm {
    #[serde(default)]
    pub title: String,
    #[serde(default)]
    pub impact: String,
    #[serde(default)]
    pub status: String,
    #[serde(default)]
    pub body: String,
    #[serde(default, skip_serializing)]
    pub csrf: String,
}

/// Posting an update (which also moves the status).
#[derive(Debug, Default, Deserialize, Serialize)]
pub struct UpdateForm {
    #[serde(default)]
    pub status: String,
    #[serde(default)]
    pub body: String,
    #[serde(default, skip_serializing)]
    pub csrf: String,
}

fn check_choice(value: &str, choices: &[&str], what: &str) -> Result<(), String> {
    if choices.contains(&value) {
        Ok(())
    } else {
        Err(format!("choose the {what}: one of {}", choices.join(", ")))
    }
}

fn check_text(value: &str, max: usize, what: &str) -> Result<(), String> {
    let n = value.trim().chars().count();
    if n == 0 {
        Err(format!("the {what} is empty"))
    } else if n > max {
        Err(format!("the {what} is longer than {max} characters"))
    } else {
        Ok(())
    }
}

fn check_incident(f: &IncidentForm) -> Result<(), String> {
    check_text(&f.title, MAX_TITLE_CHARS, "title")?;
    check_choice(&f.impact, &IMPACTS, "impact")?;
    check_choice(&f.status, &INCIDENT_STATUSES, "status")?;
    check_text(&f.body, MAX_BODY_CHARS, "update text")
}

fn check_update(f: &UpdateForm) -> Result<(), String> {
    check_choice(&f.status, &INCIDENT_STATUSES, "status")?;
    check_text(&f.body, MAX_BODY_CHARS, "update text")
}

fn staff_event(staff: &Staff, action: &str, client: &Client, id: Uuid) -> AuditEvent {
    AuditEvent::new(None, Actor::User(staff.user()), action)
        .from_client(client.ip.clone(), client.user_agent.clone())
        .target("StatusIncident", id)
}

async fn admin_list(
    state: &AppState,
    staff: Staff,
    status: StatusCode,
    error: &str,
    form: &IncidentForm,
) -> Result<Response, WebError> {
    // Staff see every incident, however old.
    let incidents = incident_views(state, DateTime::<Utc>::UNIX_EPOCH).await?;
    let (open, resolved): (Vec<&IncidentView>, Vec<&IncidentView>) =
        incidents.iter().partition(|i| i.resolved.is_none());
    let frame = staff.frame;
    let html = state.templates().render(
        "admin_status.html",
        context! {
            user => frame.user, tenant => frame.tenant, csrf => frame.csrf,
            open => open, resolved => resolved, error => error, form => form,
            impacts => IMPACTS, statuses => INCIDENT_STATUSES,
        },
    )?;
    Ok(page(status, html))
}

/// `GET /admin/status`: every incident and the form to open one.
pub async fn admin_page(State(state): State<AppState>, staff: Staff) -> Result<Response, WebError> {
    let form = IncidentForm {
        impact: "minor".into(),
        status: "investigating".into(),
        ..IncidentForm::default()
    };
    admin_list(&state, staff, StatusCode::OK, "", &form).await
}

/// `POST /admin/status`: opens an incident with its first update.
pub async fn open_incident(
    State(state): State<AppState>,
    staff: Staff,
    client: Client,
    Form(form): Form<IncidentForm>,
) -> Result<Response, WebError> {
    staff.session.0.check_csrf(&form.csrf)?;
    if let Err(problem) = check_incident(&form) {
        return admin_list(&state, staff, StatusCode::BAD_REQUEST, &problem, &form).await;
    }
    let title = form.title.trim();
    let id = state
        .store()
        .open_incident(&NewIncident {
            title,
            impact: &form.impact,
            status: &form.status,
            body: form.body.trim(),
            at: state.now(),
        })
        .await?;
    forget_page(&state);
    state
        .store()
        .audit(
            staff_event(&staff, "status.incident_opened", &client, id)
                .meta("title", title)
                .meta("impact", form.impact.as_str())
                .meta("status", form.status.as_str()),
        )
        .await?;
    see_other(&format!("/admin/status/{id}"), &[])
}

fn incident_id(raw: &str) -> Result<Uuid, WebError> {
    Uuid::parse_str(raw).map_err(|_| WebError::NotFound)
}

async fn admin_incident(
    state: &AppState,
    staff: Staff,
    id: Uuid,
    status: StatusCode,
    error: &str,
    form: &UpdateForm,
) -> Result<Response, WebError> {
    let incident = state.store().incident(id).await?;
    let updates = state
        .store()
        .incident_updates(&[id])
        .await?
        .remove(&id)
        .unwrap_or_default();
    let incident = incident_view(incident, updates);
    let frame = staff.frame;
    let html = state.templates().render(
        "admin_status_incident.html",
        context! {
            user => frame.user, tenant => frame.tenant, csrf => frame.csrf,
            incident => incident, error => error, form => form, statuses => INCIDENT_STATUSES,
        },
    )?;
    Ok(page(status, html))
}

/// `GET /admin/status/{id}`: an incident, its updates and the update form.
pub async fn incident_page(
    State(state): State<AppState>,
    staff: Staff,
    Path(id): Path<String>,
) -> Result<Response, WebError> {
    let id = incident_id(&id)?;
    let current = state.store().incident(id).await?;
    let form = UpdateForm {
        status: current.status,
        ..UpdateForm::default()
    };
    admin_incident(&state, staff, id, StatusCode::OK, "", &form).await
}

/// `POST /admin/status/{id}`: posts an update and moves the status
/// (resolved sets the time it was resolved; another status reopens it).
pub async fn update_incident(
    State(state): State<AppState>,
    staff: Staff,
    client: Client,
    Path(id): Path<String>,
    Form(form): Form<UpdateForm>,
) -> Result<Response, WebError> {
    staff.session.0.check_csrf(&form.csrf)?;
    let id = incident_id(&id)?;
    if let Err(problem) = check_update(&form) {
        // Not found stays not found, whatever the form says.
        state.store().incident(id).await?;
        return admin_incident(&state, staff, id, StatusCode::BAD_REQUEST, &problem, &form).await;
    }
    let before = state
        .store()
        .update_incident(id, &form.status, form.body.trim(), state.now())
        .await?;
    forget_page(&state);
    state
        .store()
        .audit(
            staff_event(&staff, "status.incident_updated", &client, id)
                .meta("from", before.as_str())
                .meta("to", form.status.as_str())
                .meta("resolved", form.status == "resolved"),
        )
        .await?;
    see_other(&format!("/admin/status/{id}"), &[])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_operator_is_unknown_until_it_records_a_pass() {
        let c = operator_component(&OperatorSeen::default());
        assert_eq!(c.state, ComponentState::Unknown);
        let t = DateTime::from_timestamp(1_800_000_000, 0).unwrap_or_default();
        let stale = OperatorSeen {
            last_pass_at: Some(t),
            recent_sources: 0,
            recent_failing: 0,
        };
        assert_eq!(operator_component(&stale).state, ComponentState::Unknown);
        let failing = OperatorSeen {
            last_pass_at: Some(t),
            recent_sources: 2,
            recent_failing: 1,
        };
        assert_eq!(operator_component(&failing).state, ComponentState::Degraded);
        let fine = OperatorSeen {
            last_pass_at: Some(t),
            recent_sources: 2,
            recent_failing: 0,
        };
        assert_eq!(operator_component(&fine).state, ComponentState::Operational);
    }

    #[test]
    fn a_provider_kind_is_judged_by_its_connections_checks() {
        let seen = |connections, checked, failing| ProviderSeen {
            connections,
            checked,
            failing,
            last_checked_at: None,
        };
        let state = |s: Option<&ProviderSeen>| provider_component("X", s).state;
        assert_eq!(state(None), ComponentState::NotInUse);
        assert_eq!(state(Some(&seen(2, 0, 0))), ComponentState::Unknown);
        assert_eq!(state(Some(&seen(2, 2, 0))), ComponentState::Operational);
        assert_eq!(state(Some(&seen(2, 2, 1))), ComponentState::Partial);
        assert_eq!(state(Some(&seen(2, 2, 2))), ComponentState::Degraded);
    }

    #[test]
    fn if_none_match_is_compared_weakly_and_as_a_list() {
        let mut h = HeaderMap::new();
        h.insert(IF_NONE_MATCH, HeaderValue::from_static("\"a\", W/\"b\""));
        assert!(matches_etag(&h, "\"b\""));
        assert!(matches_etag(&h, "\"a\""));
        assert!(!matches_etag(&h, "\"c\""));
        h.insert(IF_NONE_MATCH, HeaderValue::from_static("*"));
        assert!(matches_etag(&h, "\"c\""));
        assert!(!matches_etag(&HeaderMap::new(), "\"c\""));
    }

    #[test]
    fn update_text_becomes_paragraphs() {
        assert_eq!(paragraphs("a\r\n\r\nb\n\n\n c "), vec!["a", "b", "c"]);
    }
}
