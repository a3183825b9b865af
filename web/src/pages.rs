//! The page frame (who is signed in, in which tenant), the home redirect
//! to the dashboard (`dashboard`) and the stylesheet (the health check is
//! in `status`).
//! Reads the store.

use axum::http::header::{CACHE_CONTROL, CONTENT_TYPE};
use axum::response::{IntoResponse, Redirect, Response};
use serde::Serialize;
use zentralink_store::TenantId;

use crate::error::WebError;
use crate::session::AnySession;

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
    /// One of the platform's staff (support desk, incidents, platform mail).
    pub staff: bool,
    /// Unread in-app notifications in the active tenant.
    pub unread: i64,
}

#[derive(Debug, Serialize)]
pub struct TenantView {
    #[serde(skip)]
    pub id: TenantId,
    pub slug: String,
    pub display_name: String,
    pub role: String,
}

/// The frame of a session: its active tenant only while the user is still
/// a member (read with the session, in the same query).
pub fn frame(session: &AnySession) -> Frame {
    let r = &session.record;
    let tenant = match (
        r.tenant_id,
        &r.tenant_slug,
        &r.tenant_display_name,
        &r.tenant_role,
    ) {
        (Some(id), Some(slug), Some(display_name), Some(role)) => Some(TenantView {
            id,
            slug: slug.clone(),
            display_name: display_name.clone(),
            role: role.clone(),
        }),
        _ => None,
    };
    Frame {
        user: UserView {
            email: session.record.email.clone(),
            staff: r.platform_admin,
            unread: r.unread_notifications,
        },
        tenant,
        csrf: session.csrf.clone(),
    }
}

pub async fn home() -> Redirect {
    Redirect::to("/dashboard")
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

pub async fn not_found() -> WebError {
    WebError::NotFound
}
