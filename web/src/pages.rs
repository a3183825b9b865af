//! The pages behind sign-in: the dashboard of the active tenant's zones and
//! a zone's page, both scoped by the tenant id the session names (another
//! tenant's zone is "not found"); the stylesheet; the health check. Reads
//! the store.

use axum::extract::{Path, State};
use axum::http::header::{CACHE_CONTROL, CONTENT_TYPE};
use axum::response::{Html, IntoResponse, Redirect, Response};
use minijinja::context;
use serde::Serialize;
use zentralink_store::{TenantId, ZoneId};

use crate::AppState;
use crate::error::WebError;
use crate::session::{AnySession, Signed};

/// What the page frame shows: who is signed in, in which tenant, and the
/// CSRF token of the session for the sign-out forms.
#[derive(Debug, Serialize)]
pub struct Frame {
    pub user: UserView,
    pub tenant: Option<TenantView>,
    pub csrf: String,
}

#[derive(Debug, Serialize)]
pub struct UserView {
    pub email: String,
}

#[derive(Debug, Serialize)]
pub struct TenantView {
    #[serde(skip)]
    pub id: TenantId,
    pub slug: String,
    pub display_name: String,
    pub role: String,
}

/// The frame of a session: its active tenant only while the user is still a member.
pub async fn frame(state: &AppState, session: &AnySession) -> Result<Frame, WebError> {
    let tenant = match session.record.tenant_id {
        Some(id) => state
            .store()
            .memberships_of(session.user())
            .await?
            .into_iter()
            .find(|m| m.tenant_id == id)
            .map(|m| TenantView {
                id: m.tenant_id,
                slug: m.slug,
                display_name: m.display_name,
                role: m.role,
            }),
        None => None,
    };
    Ok(Frame {
        user: UserView {
            email: session.record.email.clone(),
        },
        tenant,
        csrf: session.csrf.clone(),
    })
}

#[derive(Debug, Serialize)]
struct ZoneView {
    id: String,
    namespace: String,
    name: String,
    zone_name: String,
    connection: Option<String>,
    created_at: String,
}

impl From<zentralink_store::zones::ZoneRecord> for ZoneView {
    fn from(z: zentralink_store::zones::ZoneRecord) -> Self {
        Self {
            id: z.id.to_string(),
            namespace: z.namespace,
            name: z.name,
            zone_name: z.zone_name,
            connection: z.connection_id.map(|c| c.to_string()),
            created_at: z.created_at.format("%Y-%m-%d %H:%M UTC").to_string(),
        }
    }
}

pub async fn home() -> Redirect {
    Redirect::to("/dashboard")
}

pub async fn dashboard(
    State(state): State<AppState>,
    session: Signed,
) -> Result<Html<String>, WebError> {
    let frame = frame(&state, &session.0).await?;
    let zones: Vec<ZoneView> = match &frame.tenant {
        Some(t) => state
            .store()
            .zones(t.id)
            .await?
            .into_iter()
            .map(ZoneView::from)
            .collect(),
        None => Vec::new(),
    };
    Ok(Html(state.templates().render(
        "dashboard.html",
        context! { user => frame.user, tenant => frame.tenant, csrf => frame.csrf, zones => zones },
    )?))
}

pub async fn zone(
    State(state): State<AppState>,
    session: Signed,
    Path(id): Path<String>,
) -> Result<Html<String>, WebError> {
    let frame = frame(&state, &session.0).await?;
    let tenant = frame.tenant.as_ref().ok_or(WebError::NotFound)?;
    let id: ZoneId = id.parse().map_err(|_| WebError::NotFound)?;
    let zone = ZoneView::from(state.store().zone(tenant.id, id).await?);
    Ok(Html(state.templates().render(
        "zone.html",
        context! { user => frame.user, tenant => frame.tenant, csrf => frame.csrf, zone => zone },
    )?))
}

pub async fn stylesheet() -> Response {
    (
        [
            (CONTENT_TYPE, "text/css; charset=utf-8"),
            (CACHE_CONTROL, "public, max-age=3600"),
        ],
        include_str!("../static/style.css"),
    )
        .into_response()
}

/// 200 when the database answers.
pub async fn healthz(State(state): State<AppState>) -> Result<&'static str, WebError> {
    state.store().ping().await?;
    Ok("ok")
}

pub async fn not_found() -> WebError {
    WebError::NotFound
}
