//! The mail pages: SMTP settings (a tenant's override under /mail with
//! TENANT_MANAGE, the platform's under /admin/mail for staff) with a "send
//! a test e-mail" button, the mail log, and the template editor with a
//! preview. The password is write-only: never shown, never in audit
//! metadata; an empty password field keeps the stored one. Every change is
//! an audit event. Reads and writes the store; the test e-mail talks SMTP.

use std::collections::HashMap;

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use lettre::message::Mailbox;
use minijinja::context;
use serde::{Deserialize, Serialize};
use zentralink_model::secrets::SecretString;
use zentralink_store::TenantId;
use zentralink_store::audit::{Actor, AuditEvent};
use zentralink_store::notifications::NewMail;
use zentralink_store::settings::{MailRecord, SmtpSettings};

use super::NO_SMTP;
use super::send::send_now;
use super::templates::{self, MailTemplate, Origin, TemplateProblem};
use crate::AppState;
use crate::error::WebError;
use crate::members::page;
use crate::notifications::EventKind;
use crate::pages::Frame;
use crate::roles::{Member, Permission, Staff};
use crate::session::{Client, CsrfForm, Posted, Signed};

/// Whose mail settings a page shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Scope {
    Tenant(TenantId),
    Platform,
}

impl Scope {
    fn tenant(self) -> Option<TenantId> {
        match self {
            Scope::Tenant(t) => Some(t),
            Scope::Platform => None,
        }
    }

    fn base(self) -> &'static str {
        match self {
            Scope::Tenant(_) => "/mail",
            Scope::Platform => "/admin/mail",
        }
    }

    fn name(self) -> &'static str {
        match self {
            Scope::Tenant(_) => "tenant",
            Scope::Platform => "platform",
        }
    }
}

/// Who is acting, for the frame and the audit event.
struct Acting {
    scope: Scope,
    frame: Frame,
    user: zentralink_store::UserId,
    email: String,
}

fn as_member(member: Member) -> Result<Acting, WebError> {
    member.require(Permission::TenantManage)?;
    Ok(Acting {
        scope: Scope::Tenant(member.tenant_id),
        user: member.session.user(),
        email: member.frame.user.email.clone(),
        frame: member.frame,
    })
}

fn as_staff(staff: Staff) -> Acting {
    Acting {
        scope: Scope::Platform,
        user: staff.user(),
        email: staff.frame.user.email.clone(),
        frame: staff.frame,
    }
}

fn audit(acting: &Acting, action: &str, client: &Client) -> AuditEvent {
    AuditEvent::new(acting.scope.tenant(), Actor::User(acting.user), action)
        .from_client(client.ip.clone(), client.user_agent.clone())
}

// ---------------------------------------------------------------------------
// Settings and log

/// The SMTP settings form.
#[derive(Debug, Deserialize)]
pub struct SmtpForm {
    #[serde(default)]
    pub host: String,
    #[serde(default)]
    pub port: String,
    #[serde(default)]
    pub username: String,
    /// Empty: keep the stored password.
    #[serde(default)]
    pub password: String,
    /// `on`: remove the stored password.
    #[serde(default)]
    pub clear_password: String,
    #[serde(default)]
    pub from_address: String,
    #[serde(default)]
    pub tls: String,
    #[serde(default)]
    pub csrf: String,
}

impl CsrfForm for SmtpForm {
    fn csrf(&self) -> &str {
        &self.csrf
    }
}

/// The test e-mail form.
#[derive(Debug, Deserialize)]
pub struct TestForm {
    #[serde(default)]
    pub to: String,
    #[serde(default)]
    pub csrf: String,
}

impl CsrfForm for TestForm {
    fn csrf(&self) -> &str {
        &self.csrf
    }
}

/// A form with only the CSRF field.
#[derive(Debug, Deserialize)]
pub struct PlainForm {
    #[serde(default)]
    pub csrf: String,
}

impl CsrfForm for PlainForm {
    fn csrf(&self) -> &str {
        &self.csrf
    }
}

/// The settings as the page shows them: never the password, only whether one is stored.
#[derive(Debug, Default, Serialize)]
struct SettingsView {
    host: String,
    port: String,
    username: String,
    has_password: bool,
    from_address: String,
    tls: String,
}

impl SettingsView {
    fn of(s: &SmtpSettings) -> Self {
        Self {
            host: s.host.clone(),
            port: s.port.to_string(),
            username: s.username.clone().unwrap_or_default(),
            has_password: s.password.is_some(),
            from_address: s.from_address.clone(),
            tls: s.tls.clone(),
        }
    }
}

#[derive(Debug, Serialize)]
struct MailRow {
    created: String,
    tenant: String,
    to: String,
    subject: String,
    kind: String,
    status: String,
    attempts: i32,
    next_attempt: String,
    sent: String,
    note: String,
}

/// What the page says besides the settings.
#[derive(Debug, Default)]
struct Notice {
    message: String,
    error: String,
    /// The submitted form, shown again after an error (never the password).
    form: Option<SettingsView>,
}

fn when(t: Option<chrono::DateTime<chrono::Utc>>) -> String {
    t.map(|t| t.format("%Y-%m-%d %H:%M:%S UTC").to_string())
        .unwrap_or_default()
}

async fn log_rows(state: &AppState, records: Vec<MailRecord>) -> Result<Vec<MailRow>, WebError> {
    let mut configured: HashMap<Option<TenantId>, bool> = HashMap::new();
    let mut rows = Vec::with_capacity(records.len());
    for r in records {
        let has_smtp = match configured.get(&r.tenant_id) {
            Some(v) => *v,
            None => {
                let v = state.store().smtp_settings(r.tenant_id).await?.is_some();
                configured.insert(r.tenant_id, v);
                v
            }
        };
        let note = match (&r.last_error, r.status.as_str(), has_smtp) {
            (_, "QUEUED", false) => NO_SMTP.to_owned(),
            (Some(e), _, _) => e.clone(),
            (None, "QUEUED", true) => "waiting for the next mail flush".to_owned(),
            (None, _, _) => String::new(),
        };
        rows.push(MailRow {
            created: when(Some(r.created_at)),
            tenant: r.tenant_slug.unwrap_or_else(|| "(platform)".into()),
            to: r.to_address,
            subject: r.subject,
            kind: r.kind,
            status: r.status,
            attempts: r.attempts,
            next_attempt: if r.next_attempt_at.is_some() {
                when(r.next_attempt_at)
            } else {
                String::new()
            },
            sent: when(r.sent_at),
            note,
        });
    }
    Ok(rows)
}

async fn mail_page(
    state: &AppState,
    acting: &Acting,
    status: StatusCode,
    notice: Notice,
) -> Result<Response, WebError> {
    let store = state.store();
    let scope = acting.scope;
    let own = store.own_smtp_settings(scope.tenant()).await?;
    let platform = store.smtp_settings(None).await?;
    let in_force = match (scope, &own, &platform) {
        (_, Some(_), _) if scope == Scope::Platform => {
            "E-mail goes out through the platform's SMTP server below (for every tenant without its own)."
                .to_owned()
        }
        (Scope::Tenant(_), Some(_), _) => {
            "E-mail goes out through this tenant's SMTP server below.".to_owned()
        }
        (Scope::Tenant(_), None, Some(_)) => {
            "This tenant has no SMTP server of its own: e-mail goes out through the platform's."
                .to_owned()
        }
        _ => format!("E-mail is {NO_SMTP}. Messages stay queued and are sent once one is set up."),
    };
    let smtp_missing = own.is_none() && (scope == Scope::Platform || platform.is_none());
    let records = match scope {
        Scope::Tenant(t) => store.mail_messages(t).await?,
        Scope::Platform => store.all_mail_messages(500).await?,
    };
    let rows = log_rows(state, records).await?;
    let shown = notice
        .form
        .unwrap_or_else(|| own.as_ref().map(SettingsView::of).unwrap_or_default());
    let f = &acting.frame;
    let html = state.templates().render(
        "mail.html",
        context! {
            user => f.user, tenant => f.tenant, csrf => f.csrf,
            scope => scope.name(), base => scope.base(),
            own => own.is_some(), settings => shown, in_force => in_force,
            smtp_missing => smtp_missing, no_smtp => NO_SMTP,
            rows => rows, message => notice.message, error => notice.error,
            me => acting.email,
        },
    )?;
    Ok(page(status, html))
}

/// GET /mail: the tenant's SMTP override, what is in force, and its mail log (TENANT_MANAGE).
pub async fn tenant_page(
    State(state): State<AppState>,
    member: Member,
) -> Result<Response, WebError> {
    let acting = as_member(member)?;
    mail_page(&state, &acting, StatusCode::OK, Notice::default()).await
}

/// GET /admin/mail: the platform's SMTP settings and every mail row (staff).
pub async fn platform_page(
    State(state): State<AppState>,
    staff: Staff,
) -> Result<Response, WebError> {
    mail_page(&state, &as_staff(staff), StatusCode::OK, Notice::default()).await
}

/// Checks a submitted settings form against what is stored.
fn parse_settings(
    form: &SmtpForm,
    stored: Option<&SmtpSettings>,
) -> Result<(SmtpSettings, &'static str), String> {
    let host = form.host.trim();
    if host.is_empty() || host.len() > 253 || host.contains(|c: char| c.is_whitespace() || c == '/')
    {
        return Err(
            "The host is a name or address such as smtp.example.com, without spaces.".into(),
        );
    }
    let port: u16 = form
        .port
        .trim()
        .parse()
        .ok()
        .filter(|p| *p > 0)
        .ok_or("The port is a number from 1 to 65535 (587 for STARTTLS, 465 for TLS).")?;
    let tls = match form.tls.as_str() {
        t @ ("none" | "starttls" | "tls") => t.to_owned(),
        _ => return Err("TLS is one of none, starttls or tls.".into()),
    };
    let from = form.from_address.trim();
    from.parse::<Mailbox>()
        .map_err(|e| format!("The sender address {from:?} is not an e-mail address ({e})."))?;
    let username = Some(form.username.trim().to_owned()).filter(|u| !u.is_empty());
    let (password, change) = if form.clear_password == "on" || username.is_none() {
        let had = stored.is_some_and(|s| s.password.is_some());
        (None, if had { "removed" } else { "none" })
    } else if !form.password.is_empty() {
        (Some(SecretString::new(form.password.clone())), "changed")
    } else {
        match stored.and_then(|s| s.password.clone()) {
            Some(p) => (Some(p), "unchanged"),
            None => (None, "none"),
        }
    };
    Ok((
        SmtpSettings {
            host: host.to_owned(),
            port,
            username,
            password,
            from_address: from.to_owned(),
            tls,
        },
        change,
    ))
}

async fn save(
    state: &AppState,
    acting: Acting,
    form: SmtpForm,
    client: Client,
) -> Result<Response, WebError> {
    let store = state.store();
    let stored = store.own_smtp_settings(acting.scope.tenant()).await?;
    let (settings, password) = match parse_settings(&form, stored.as_ref()) {
        Ok(parsed) => parsed,
        Err(error) => {
            let shown = SettingsView {
                host: form.host,
                port: form.port,
                username: form.username,
                has_password: stored.as_ref().is_some_and(|s| s.password.is_some()),
                from_address: form.from_address,
                tls: form.tls,
            };
            let notice = Notice {
                error,
                form: Some(shown),
                ..Notice::default()
            };
            return mail_page(state, &acting, StatusCode::BAD_REQUEST, notice).await;
        }
    };
    store
        .set_smtp_settings(acting.scope.tenant(), &settings)
        .await?;
    store
        .audit(
            audit(&acting, "mail.settings_changed", &client)
                .target("SmtpSettings", acting.scope.name())
                .meta("host", settings.host.clone())
                .meta("port", i64::from(settings.port))
                .meta("tls", settings.tls.clone())
                .meta("fromAddress", settings.from_address.clone())
                .meta("username", settings.username.clone().unwrap_or_default())
                .meta("password", password),
        )
        .await?;
    let notice = Notice {
        message: "The SMTP settings are saved.".into(),
        ..Notice::default()
    };
    mail_page(state, &acting, StatusCode::OK, notice).await
}

/// POST /mail/settings: stores the tenant's SMTP override.
pub async fn tenant_save(
    State(state): State<AppState>,
    posted: Posted<Signed, SmtpForm>,
) -> Result<Response, WebError> {
    let acting = as_member(Member::of(posted.session)?)?;
    save(&state, acting, posted.form, posted.client).await
}

/// POST /admin/mail/settings: stores the platform's SMTP settings.
pub async fn platform_save(
    State(state): State<AppState>,
    posted: Posted<Signed, SmtpForm>,
) -> Result<Response, WebError> {
    let acting = as_staff(Staff::of(posted.session)?);
    save(&state, acting, posted.form, posted.client).await
}

async fn remove(state: &AppState, acting: Acting, client: Client) -> Result<Response, WebError> {
    let removed = state
        .store()
        .delete_smtp_settings(acting.scope.tenant())
        .await?;
    if removed {
        state
            .store()
            .audit(
                audit(&acting, "mail.settings_removed", &client)
                    .target("SmtpSettings", acting.scope.name()),
            )
            .await?;
    }
    let notice = Notice {
        message: if removed {
            "The SMTP settings are removed.".into()
        } else {
            "There were no SMTP settings to remove.".into()
        },
        ..Notice::default()
    };
    mail_page(state, &acting, StatusCode::OK, notice).await
}

/// POST /mail/settings/remove: drops the tenant's override (the platform's applies).
pub async fn tenant_remove(
    State(state): State<AppState>,
    posted: Posted<Signed, PlainForm>,
) -> Result<Response, WebError> {
    let acting = as_member(Member::of(posted.session)?)?;
    remove(&state, acting, posted.client).await
}

/// POST /admin/mail/settings/remove: drops the platform's settings.
pub async fn platform_remove(
    State(state): State<AppState>,
    posted: Posted<Signed, PlainForm>,
) -> Result<Response, WebError> {
    let acting = as_staff(Staff::of(posted.session)?);
    remove(&state, acting, posted.client).await
}

async fn test_mail(
    state: &AppState,
    acting: Acting,
    form: TestForm,
    client: Client,
) -> Result<Response, WebError> {
    let to = if form.to.trim().is_empty() {
        acting.email.clone()
    } else {
        form.to.trim().to_owned()
    };
    if to.parse::<Mailbox>().is_err() {
        let notice = Notice {
            error: format!("{to:?} is not an e-mail address."),
            ..Notice::default()
        };
        return mail_page(state, &acting, StatusCode::BAD_REQUEST, notice).await;
    }
    let body = format!(
        "This is a test message from ZentraLink ({} settings), sent by {}.\n\nIf you read this, e-mail notifications can reach you.\n",
        acting.scope.name(),
        acting.email
    );
    let id = state
        .store()
        .queue_mail_of_kind(&NewMail {
            tenant: acting.scope.tenant(),
            to: &to,
            subject: "ZentraLink test message",
            body: &body,
            kind: "test",
            audit_event_id: None,
            now: state.now(),
        })
        .await?;
    let row = send_now(state, id).await?;
    state
        .store()
        .audit(
            audit(&acting, "mail.test_sent", &client)
                .target("MailMessage", id)
                .meta("to", to.clone())
                .meta("status", row.status.clone()),
        )
        .await?;
    let error = row.last_error.clone().unwrap_or_default();
    let notice = match row.status.as_str() {
        "SENT" => Notice {
            message: format!("The test message to {to} was sent."),
            ..Notice::default()
        },
        "FAILED" => Notice {
            error: format!("The test message to {to} failed: {error}"),
            ..Notice::default()
        },
        _ if error == NO_SMTP => Notice {
            error: format!("The test message to {to} was {NO_SMTP}."),
            ..Notice::default()
        },
        _ => Notice {
            error: format!(
                "The test message to {to} was not accepted yet ({error}); it is tried again at {}.",
                when(row.next_attempt_at)
            ),
            ..Notice::default()
        },
    };
    mail_page(state, &acting, StatusCode::OK, notice).await
}

/// POST /mail/test: queues and sends a test e-mail with the settings in force.
pub async fn tenant_test(
    State(state): State<AppState>,
    posted: Posted<Signed, TestForm>,
) -> Result<Response, WebError> {
    let acting = as_member(Member::of(posted.session)?)?;
    test_mail(&state, acting, posted.form, posted.client).await
}

/// POST /admin/mail/test: queues and sends a test e-mail with the platform's settings.
pub async fn platform_test(
    State(state): State<AppState>,
    posted: Posted<Signed, TestForm>,
) -> Result<Response, WebError> {
    let acting = as_staff(Staff::of(posted.session)?);
    test_mail(&state, acting, posted.form, posted.client).await
}

// ---------------------------------------------------------------------------
// Templates

/// Which template the editor shows.
#[derive(Debug, Deserialize)]
pub struct EditorQuery {
    #[serde(default)]
    pub event: Option<String>,
}

/// An edited template: `action` is `preview`, `save` or `reset`.
#[derive(Debug, Deserialize)]
pub struct TemplateForm {
    #[serde(default)]
    pub event: String,
    #[serde(default)]
    pub subject: String,
    #[serde(default)]
    pub body: String,
    #[serde(default)]
    pub action: String,
    #[serde(default)]
    pub csrf: String,
}

impl CsrfForm for TemplateForm {
    fn csrf(&self) -> &str {
        &self.csrf
    }
}

#[derive(Debug, Serialize)]
struct KindView {
    key: &'static str,
    label: &'static str,
    origin: Origin,
    selected: bool,
}

#[derive(Debug, Default)]
struct Editing {
    /// The text in the editor (what was submitted, or what is in force).
    template: Option<MailTemplate>,
    preview: Option<templates::Rendered>,
    problems: Vec<TemplateProblem>,
    message: String,
}

async fn templates_page(
    state: &AppState,
    acting: &Acting,
    kind: EventKind,
    status: StatusCode,
    editing: Editing,
) -> Result<Response, WebError> {
    let tenant = acting.scope.tenant();
    let mut kinds = Vec::new();
    for k in EventKind::ALL_WITH_DIGEST {
        let (_, origin) = templates::effective(state, tenant, k).await?;
        kinds.push(KindView {
            key: k.key(),
            label: k.label(),
            origin,
            selected: k == kind,
        });
    }
    let (in_force, origin) = templates::effective(state, tenant, kind).await?;
    let own_override = match acting.scope {
        Scope::Tenant(_) => origin == Origin::Tenant,
        Scope::Platform => origin == Origin::Platform,
    };
    let shown = editing.template.unwrap_or(in_force);
    let variables: Vec<&str> = templates::sample(kind).keys().copied().collect();
    let f = &acting.frame;
    let html = state.templates().render(
        "mail_templates.html",
        context! {
            user => f.user, tenant => f.tenant, csrf => f.csrf,
            scope => acting.scope.name(), base => acting.scope.base(),
            kinds => kinds, kind => kind.key(), kind_label => kind.label(),
            origin => origin, own_override => own_override,
            template => shown, variables => variables,
            preview => editing.preview, problems => editing.problems,
            message => editing.message,
        },
    )?;
    Ok(page(status, html))
}

fn kind_of(key: Option<&str>) -> Result<EventKind, WebError> {
    match key.filter(|k| !k.is_empty()) {
        None => Ok(EventKind::ApprovalWaiting),
        Some(k) => EventKind::parse(k).ok_or(WebError::NotFound),
    }
}

/// GET /mail/templates: the tenant's templates (TENANT_MANAGE).
pub async fn tenant_templates(
    State(state): State<AppState>,
    Query(q): Query<EditorQuery>,
    member: Member,
) -> Result<Response, WebError> {
    let acting = as_member(member)?;
    let kind = kind_of(q.event.as_deref())?;
    templates_page(&state, &acting, kind, StatusCode::OK, Editing::default()).await
}

/// GET /admin/mail/templates: the platform's templates (staff).
pub async fn platform_templates(
    State(state): State<AppState>,
    Query(q): Query<EditorQuery>,
    staff: Staff,
) -> Result<Response, WebError> {
    let kind = kind_of(q.event.as_deref())?;
    templates_page(
        &state,
        &as_staff(staff),
        kind,
        StatusCode::OK,
        Editing::default(),
    )
    .await
}

async fn edit_template(
    state: &AppState,
    acting: Acting,
    form: TemplateForm,
    client: Client,
) -> Result<Response, WebError> {
    let kind = EventKind::parse(&form.event)
        .ok_or_else(|| WebError::BadRequest(format!("unknown event kind {:?}", form.event)))?;
    let tenant = acting.scope.tenant();
    if form.action == "reset" {
        let removed = state
            .store()
            .delete_mail_template(tenant, kind.key())
            .await?;
        if removed {
            state
                .store()
                .audit(
                    audit(&acting, "mail.template_reset", &client)
                        .target("MailTemplate", kind.key())
                        .meta("event", kind.key())
                        .meta("scope", acting.scope.name()),
                )
                .await?;
        }
        let editing = Editing {
            message: if removed {
                "The override is removed; the next level's template applies again.".into()
            } else {
                "There was no override to remove.".into()
            },
            ..Editing::default()
        };
        return templates_page(state, &acting, kind, StatusCode::OK, editing).await;
    }
    // Line endings as typed in a browser (CRLF) are kept as LF.
    let template = MailTemplate {
        subject: form.subject.replace("\r\n", "\n"),
        body: form.body.replace("\r\n", "\n"),
    };
    let checked = templates::preview(kind, &template);
    let (status, mut editing) = match checked {
        Err(problems) => (
            StatusCode::BAD_REQUEST,
            Editing {
                template: Some(template.clone()),
                problems,
                ..Editing::default()
            },
        ),
        Ok(preview) => (
            StatusCode::OK,
            Editing {
                template: Some(template.clone()),
                preview: Some(preview),
                ..Editing::default()
            },
        ),
    };
    if form.action == "save" && editing.problems.is_empty() {
        state
            .store()
            .set_mail_template(
                tenant,
                kind.key(),
                &template.subject,
                &template.body,
                acting.user,
            )
            .await?;
        state
            .store()
            .audit(
                audit(&acting, "mail.template_changed", &client)
                    .target("MailTemplate", kind.key())
                    .meta("event", kind.key())
                    .meta("scope", acting.scope.name())
                    .meta("subjectLength", template.subject.len())
                    .meta("bodyLength", template.body.len()),
            )
            .await?;
        editing.message = "The template is saved; the preview shows it with sample data.".into();
    } else if form.action == "save" {
        editing.message = "Nothing was saved: the template has errors.".into();
    }
    templates_page(state, &acting, kind, status, editing).await
}

/// POST /mail/templates: previews, saves or resets a tenant's template.
pub async fn tenant_edit_template(
    State(state): State<AppState>,
    posted: Posted<Signed, TemplateForm>,
) -> Result<Response, WebError> {
    let acting = as_member(Member::of(posted.session)?)?;
    edit_template(&state, acting, posted.form, posted.client).await
}

/// POST /admin/mail/templates: previews, saves or resets a platform template.
pub async fn platform_edit_template(
    State(state): State<AppState>,
    posted: Posted<Signed, TemplateForm>,
) -> Result<Response, WebError> {
    let acting = as_staff(Staff::of(posted.session)?);
    edit_template(&state, acting, posted.form, posted.client).await
}
