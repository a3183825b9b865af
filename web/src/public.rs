//! The public pages: security, technical and organisational measures, data
//! processing, integrations, subprocessors, and `/.well-known/security.txt`
//! (RFC 9116). No session needed; the same for every visitor. Their text
//! says only what this code does; the security and privacy contacts come
//! from the operator's configuration. No I/O.

use axum::extract::State;
use axum::http::HeaderValue;
use axum::http::header::{CACHE_CONTROL, CONTENT_TYPE};
use axum::response::{Html, IntoResponse, Response};
use chrono::Duration;
use minijinja::context;

use crate::AppState;
use crate::error::WebError;

/// The templates of this part of the service.
pub const TEMPLATES: &[(&str, &str)] = &[
    ("security.html", include_str!("../templates/security.html")),
    ("toms.html", include_str!("../templates/toms.html")),
    ("dpa.html", include_str!("../templates/dpa.html")),
    (
        "integrations.html",
        include_str!("../templates/integrations.html"),
    ),
    (
        "subprocessors.html",
        include_str!("../templates/subprocessors.html"),
    ),
];

/// The pages change with a new build or configuration only.
const PUBLIC_CACHE_CONTROL: &str = "public, max-age=300";

/// How far ahead `security.txt` says it stays valid (RFC 9116 asks for less than a year).
pub const SECURITY_TXT_VALIDITY: Duration = Duration::days(180);

/// A contact as a URI: an e-mail address becomes `mailto:`, a URL stays.
pub fn contact_uri(contact: &str) -> String {
    let contact = contact.trim();
    if contact.starts_with("https://") || contact.starts_with("mailto:") {
        contact.to_owned()
    } else {
        format!("mailto:{contact}")
    }
}

/// A contact as a link target and the text shown for it.
fn contact_link(contact: &str) -> (String, String) {
    let uri = contact_uri(contact);
    let shown = uri.strip_prefix("mailto:").unwrap_or(&uri).to_owned();
    (uri, shown)
}

fn render(state: &AppState, name: &str) -> Result<Response, WebError> {
    let config = state.config();
    let (security_href, security_contact) = contact_link(&config.security_contact);
    let (privacy_href, privacy_contact) = contact_link(&config.privacy_contact);
    let html = state.templates().render(
        name,
        context! {
            security_href => security_href, security_contact => security_contact,
            privacy_href => privacy_href, privacy_contact => privacy_contact,
            session_days => crate::session::SESSION_TTL.num_days(),
            backup_codes => crate::totp::BACKUP_CODES,
            password_memory_mib => crate::password::MEMORY_KIB / 1024,
            snapshot_days => crate::cron::SNAPSHOT_RETENTION.max_age.num_days(),
            snapshot_keep => crate::cron::SNAPSHOT_RETENTION.keep_per_zone,
            history_days => crate::status::RESOLVED_HISTORY.num_days(),
        },
    )?;
    let mut r = Html(html).into_response();
    r.headers_mut().insert(
        CACHE_CONTROL,
        HeaderValue::from_static(PUBLIC_CACHE_CONTROL),
    );
    Ok(r)
}

/// `GET /security`: what we implement and what we do not claim.
pub async fn security(State(state): State<AppState>) -> Result<Response, WebError> {
    render(&state, "security.html")
}

/// `GET /toms`: the technical and organisational measures of this code.
pub async fn toms(State(state): State<AppState>) -> Result<Response, WebError> {
    render(&state, "toms.html")
}

/// `GET /dpa`: data processing.
pub async fn dpa(State(state): State<AppState>) -> Result<Response, WebError> {
    render(&state, "dpa.html")
}

/// `GET /integrations`: the providers and their role in the data flow.
pub async fn integrations(State(state): State<AppState>) -> Result<Response, WebError> {
    render(&state, "integrations.html")
}

/// `GET /subprocessors`: who else processes data (by default: nobody).
pub async fn subprocessors(State(state): State<AppState>) -> Result<Response, WebError> {
    render(&state, "subprocessors.html")
}

/// The text of `security.txt` as of `now`.
pub fn security_txt_text(
    contact: &str,
    public_url: Option<&str>,
    now: chrono::DateTime<chrono::Utc>,
) -> String {
    let expires = (now + SECURITY_TXT_VALIDITY).format("%Y-%m-%dT%H:%M:%SZ");
    let mut text = format!(
        "Contact: {}\nExpires: {expires}\nPreferred-Languages: en\n",
        contact_uri(contact)
    );
    if let Some(base) = public_url.map(|u| u.trim_end_matches('/')) {
        text.push_str(&format!(
            "Canonical: {base}/.well-known/security.txt\nPolicy: {base}/security\n"
        ));
    }
    text
}

/// `GET /.well-known/security.txt` (RFC 9116).
pub async fn security_txt(State(state): State<AppState>) -> Response {
    let config = state.config();
    let text = security_txt_text(
        &config.security_contact,
        config.public_url.as_deref(),
        state.now(),
    );
    let mut r = text.into_response();
    r.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    r.headers_mut().insert(
        CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=3600"),
    );
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn contacts_become_uris() {
        assert_eq!(contact_uri("sec@example.org"), "mailto:sec@example.org");
        assert_eq!(
            contact_uri("https://example.org/report"),
            "https://example.org/report"
        );
        assert_eq!(contact_uri("mailto:a@b.example"), "mailto:a@b.example");
    }

    #[test]
    fn security_txt_has_the_fields_rfc_9116_requires() {
        let now = chrono::DateTime::from_timestamp(1_800_000_000, 0).unwrap_or_default();
        let t = security_txt_text("sec@example.org", Some("https://dns.example.org/"), now);
        assert!(t.contains("Contact: mailto:sec@example.org\n"), "{t}");
        assert!(t.contains("Expires: 2027-07-14T"), "{t}");
        assert!(
            t.contains("Canonical: https://dns.example.org/.well-known/security.txt\n"),
            "{t}"
        );
        let bare = security_txt_text("sec@example.org", None, now);
        assert!(!bare.contains("Canonical"), "{bare}");
    }
}
