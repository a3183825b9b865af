//! Notifications: subscriptions per user, channel and event kind; the
//! in-app list with its unread count; the fan-out of audit events into
//! notifications and queued e-mails (cron job `notifications`) and the
//! daily digest (cron job `notifications-digest`). Reads and writes the
//! store.
//!
//! Defaults (a user who never saved the settings page): in-app on for every
//! event kind; e-mail on for `approval_waiting` and `change_failed`; the
//! daily digest off.

use std::collections::{BTreeMap, HashMap};

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use minijinja::context;
use serde::{Deserialize, Serialize};
use uuid::Uuid;
use zentralink_model::approval::is_requester;
use zentralink_model::catalog::Policy;
use zentralink_store::TenantId;
use zentralink_store::audit::{Actor, AuditEvent, AuditRecord};
use zentralink_store::notifications::{NewMail, NewNotification, Recipient, SubscriptionChoice};

use crate::error::WebError;
use crate::mail::templates::{self as mail_templates, MailTemplate};
use crate::members::{page, see_other};
use crate::roles::Member;
use crate::session::{Client, CsrfForm, Posted, Signed};
use crate::{AppState, mail};

/// The templates of this part of the service (notifications and mail).
pub const TEMPLATES: &[(&str, &str)] = &[
    (
        "notifications.html",
        include_str!("../templates/notifications.html"),
    ),
    (
        "notification_settings.html",
        include_str!("../templates/notification_settings.html"),
    ),
    ("mail.html", include_str!("../templates/mail.html")),
    (
        "mail_templates.html",
        include_str!("../templates/mail_templates.html"),
    ),
];

/// What a notification is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum EventKind {
    /// A change request waits for my approval (I am an approver by the
    /// tenant's policy and did not ask for it).
    ApprovalWaiting,
    ChangeApplied,
    ChangeFailed,
    Drift,
    ApprovalRefused,
    /// A ticket of my tenant was opened, answered, moved or assigned
    /// (never for an internal note).
    TicketActivity,
    /// The daily digest of unread notifications (e-mail only).
    Digest,
}

/// How a notification reaches someone.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Channel {
    InApp,
    Email,
}

impl Channel {
    pub const ALL: [Channel; 2] = [Channel::InApp, Channel::Email];

    pub fn key(self) -> &'static str {
        match self {
            Channel::InApp => "in_app",
            Channel::Email => "email",
        }
    }
}

impl EventKind {
    /// The kinds a person subscribes to per channel.
    pub const ALL: [EventKind; 6] = [
        EventKind::ApprovalWaiting,
        EventKind::ChangeApplied,
        EventKind::ChangeFailed,
        EventKind::Drift,
        EventKind::ApprovalRefused,
        EventKind::TicketActivity,
    ];

    /// Every kind with an e-mail template.
    pub const ALL_WITH_DIGEST: [EventKind; 7] = [
        EventKind::ApprovalWaiting,
        EventKind::ChangeApplied,
        EventKind::ChangeFailed,
        EventKind::Drift,
        EventKind::ApprovalRefused,
        EventKind::TicketActivity,
        EventKind::Digest,
    ];

    pub fn key(self) -> &'static str {
        match self {
            EventKind::ApprovalWaiting => "approval_waiting",
            EventKind::ChangeApplied => "change_applied",
            EventKind::ChangeFailed => "change_failed",
            EventKind::Drift => "drift",
            EventKind::ApprovalRefused => "approval_refused",
            EventKind::TicketActivity => "ticket_activity",
            EventKind::Digest => "digest",
        }
    }

    pub fn parse(key: &str) -> Option<EventKind> {
        EventKind::ALL_WITH_DIGEST
            .into_iter()
            .find(|k| k.key() == key)
    }

    pub fn label(self) -> &'static str {
        match self {
            EventKind::ApprovalWaiting => "A change request waits for my approval",
            EventKind::ChangeApplied => "A change was applied",
            EventKind::ChangeFailed => "A change failed",
            EventKind::Drift => "Drift was detected",
            EventKind::ApprovalRefused => "An approval was refused",
            EventKind::TicketActivity => "Ticket activity in my tenant",
            EventKind::Digest => "Daily digest of unread notifications",
        }
    }

    /// Whether the channel is on for someone who never chose.
    pub fn default_on(self, channel: Channel) -> bool {
        match channel {
            Channel::InApp => self != EventKind::Digest,
            Channel::Email => matches!(self, EventKind::ApprovalWaiting | EventKind::ChangeFailed),
        }
    }

    /// Whether the kind can go out on the channel at all.
    pub fn offers(self, channel: Channel) -> bool {
        self != EventKind::Digest || channel == Channel::Email
    }
}

/// Whether `kind` on `channel` is on, given a person's choices.
pub fn is_on(choices: &[SubscriptionChoice], kind: EventKind, channel: Channel) -> bool {
    if !kind.offers(channel) {
        return false;
    }
    choices
        .iter()
        .find(|c| c.event == kind.key() && c.channel == channel.key())
        .map_or_else(|| kind.default_on(channel), |c| c.enabled)
}

// ---------------------------------------------------------------------------
// Fan-out: audit events -> notifications and e-mails

/// Audit events read per transaction of the fan-out.
const FAN_OUT_BATCH: i64 = 500;
/// Batches one run handles at most (the next run continues).
const FAN_OUT_BATCHES: usize = 20;

/// Metadata value as text (numbers and lists too).
fn meta_text(metadata: &serde_json::Value, key: &str) -> String {
    match metadata.get(key) {
        Some(serde_json::Value::String(s)) => s.clone(),
        Some(serde_json::Value::Number(n)) => n.to_string(),
        Some(serde_json::Value::Bool(b)) => b.to_string(),
        Some(serde_json::Value::Array(items)) => items
            .iter()
            .map(|i| match i {
                serde_json::Value::String(s) => s.clone(),
                other => other.to_string(),
            })
            .collect::<Vec<_>>()
            .join(", "),
        _ => String::new(),
    }
}

/// The audit actions that may notify someone (see [`classify`]).
pub const NOTIFYING_ACTIONS: [&str; 9] = [
    "change_request.opened",
    "dns.changes.applied",
    "dns.changes.failed",
    "zone.drift.detected",
    "approval.refused",
    "ticket.opened",
    "ticket.commented",
    "ticket.status_changed",
    "ticket.assigned",
];

/// The kind of notification an audit event makes, if any. A ticket event
/// counts only when its metadata says `internal: false` explicitly: an
/// internal note (or an event that does not say) notifies no one.
pub fn classify(event: &AuditRecord) -> Option<EventKind> {
    match event.action.as_str() {
        "change_request.opened" => Some(EventKind::ApprovalWaiting),
        "dns.changes.applied" => Some(EventKind::ChangeApplied),
        "dns.changes.failed" => Some(EventKind::ChangeFailed),
        "zone.drift.detected" => Some(EventKind::Drift),
        "approval.refused" => Some(EventKind::ApprovalRefused),
        "ticket.opened" | "ticket.commented" | "ticket.status_changed" | "ticket.assigned" => {
            let public = event.metadata.get("internal") == Some(&serde_json::Value::Bool(false));
            public.then_some(EventKind::TicketActivity)
        }
        _ => None,
    }
}

/// `ns/name` of a target, or the name.
fn target_name(event: &AuditRecord) -> String {
    event.target_id.clone().unwrap_or_default()
}

/// The ticket number of a ticket event.
fn ticket_number(event: &AuditRecord) -> Option<i64> {
    let m = &event.metadata;
    ["number", "ticket", "ticket_number"]
        .iter()
        .find_map(|k| match m.get(*k) {
            Some(serde_json::Value::Number(n)) => n.as_i64(),
            Some(serde_json::Value::String(s)) => s.trim_start_matches('#').parse().ok(),
            _ => None,
        })
}

/// The address of a path for a link in an e-mail (the configured public
/// URL in front, when there is one).
pub fn absolute(state: &AppState, path: &str) -> String {
    match &state.config().public_url {
        Some(base) => format!("{}{path}", base.trim_end_matches('/')),
        None => path.to_owned(),
    }
}

/// The variables of an event's template, and the page it links to.
async fn event_vars(
    state: &AppState,
    kind: EventKind,
    tenant: TenantId,
    event: &AuditRecord,
) -> Result<(BTreeMap<&'static str, minijinja::Value>, String), WebError> {
    use minijinja::Value;
    let m = &event.metadata;
    let mut vars: BTreeMap<&'static str, Value> = BTreeMap::new();
    let mut put = |k: &'static str, v: String| {
        vars.insert(k, Value::from(v));
    };
    let link = match kind {
        EventKind::ApprovalWaiting => {
            put("request", target_name(event));
            put("zone", meta_text(m, "zone"));
            put("requester", meta_text(m, "requester"));
            let reason = meta_text(m, "reason");
            put(
                "reason",
                if reason.is_empty() {
                    meta_text(m, "reasons")
                } else {
                    reason
                },
            );
            put("operations", meta_text(m, "operations"));
            match m
                .get("requestId")
                .and_then(|v| v.as_str())
                .and_then(|s| s.parse::<Uuid>().ok())
            {
                Some(id) => format!("/change-requests/{id}"),
                None => "/change-requests".to_owned(),
            }
        }
        EventKind::ChangeApplied | EventKind::ChangeFailed => {
            put("zone", meta_text(m, "zone"));
            put("operations", meta_text(m, "operations"));
            put("applied", meta_text(m, "applied"));
            put("requester", meta_text(m, "requester"));
            put("revision", meta_text(m, "revision"));
            "/dashboard".to_owned()
        }
        EventKind::Drift => {
            put("zone", meta_text(m, "zone"));
            put("record_sets", meta_text(m, "recordSets"));
            put("mode", meta_text(m, "mode"));
            "/dashboard".to_owned()
        }
        EventKind::ApprovalRefused => {
            put("request", target_name(event));
            put("approver", meta_text(m, "approver"));
            put("reason", meta_text(m, "reason"));
            "/change-requests".to_owned()
        }
        EventKind::TicketActivity => {
            let number = ticket_number(event);
            let subject = match number {
                Some(n) => state.store().ticket_subject(tenant, n).await?,
                None => None,
            };
            put(
                "ticket_number",
                number.map(|n| n.to_string()).unwrap_or_default(),
            );
            put("ticket_subject", subject.unwrap_or_default());
            put(
                "activity",
                match event.action.as_str() {
                    "ticket.opened" => "was opened".to_owned(),
                    "ticket.commented" => "has a new reply".to_owned(),
                    "ticket.status_changed" => {
                        let to = meta_text(m, "to");
                        let to = if to.is_empty() {
                            meta_text(m, "status")
                        } else {
                            to
                        };
                        if to.is_empty() {
                            "changed its status".to_owned()
                        } else {
                            format!("is now {to}")
                        }
                    }
                    _ => "was assigned".to_owned(),
                },
            );
            // The ticket's page is by its id (the event's target).
            match event
                .target_id
                .as_deref()
                .filter(|_| event.target_kind.as_deref() == Some("ticket"))
                .and_then(|id| id.parse::<Uuid>().ok())
            {
                Some(id) => format!("/tickets/{id}"),
                None => "/tickets".to_owned(),
            }
        }
        EventKind::Digest => "/notifications".to_owned(),
    };
    Ok((vars, link))
}

/// Who an event may notify, before their choices: approvers by the policy
/// (not the requester) for a change request waiting; every member for the
/// rest. Never the person who did it.
fn audience<'r>(
    kind: EventKind,
    event: &AuditRecord,
    recipients: &'r [Recipient],
    policy: Option<&Policy>,
) -> Vec<&'r Recipient> {
    let actor = (event.actor_kind == "user").then_some(event.actor_id.as_str());
    let not_actor = |r: &&Recipient| actor != Some(r.user_id.to_string().as_str());
    match kind {
        EventKind::ApprovalWaiting => {
            let Some(policy) = policy else {
                return Vec::new();
            };
            let requester = meta_text(&event.metadata, "requester");
            let approvers: Vec<_> = policy
                .approvers
                .iter()
                .filter(|a| policy.approver_roles.contains(&a.role))
                .filter(|a| !is_requester(a, &requester))
                .filter_map(|a| a.email.as_deref())
                .map(str::to_lowercase)
                .collect();
            recipients
                .iter()
                .filter(|r| approvers.contains(&r.email.to_lowercase()))
                .filter(not_actor)
                .collect()
        }
        _ => recipients.iter().filter(not_actor).collect(),
    }
}

/// What one fan-out run did.
#[derive(Debug, Default, Serialize)]
struct FanOutCounts {
    events: usize,
    notifications: usize,
    emails: usize,
}

/// Per-tenant facts read once per batch.
#[derive(Default)]
struct TenantCache {
    recipients: HashMap<TenantId, Vec<Recipient>>,
    policies: HashMap<TenantId, Option<Policy>>,
    names: HashMap<TenantId, (String, String)>,
    templates: HashMap<(TenantId, EventKind), MailTemplate>,
}

impl TenantCache {
    async fn load(&mut self, state: &AppState, tenant: TenantId) -> Result<(), WebError> {
        use std::collections::hash_map::Entry;
        let store = state.store();
        if let Entry::Vacant(e) = self.recipients.entry(tenant) {
            e.insert(store.notification_recipients(tenant).await?);
        }
        if let Entry::Vacant(e) = self.policies.entry(tenant) {
            // A policy that does not validate names no approvers.
            e.insert(store.policy_in_force(tenant).await.ok().flatten());
        }
        if let Entry::Vacant(e) = self.names.entry(tenant) {
            let t = store.tenant(tenant).await?;
            e.insert((t.slug, t.display_name));
        }
        Ok(())
    }

    async fn template(
        &mut self,
        state: &AppState,
        tenant: TenantId,
        kind: EventKind,
    ) -> Result<MailTemplate, WebError> {
        if let Some(t) = self.templates.get(&(tenant, kind)) {
            return Ok(t.clone());
        }
        let (t, _) = mail_templates::effective(state, Some(tenant), kind).await?;
        self.templates.insert((tenant, kind), t.clone());
        Ok(t)
    }
}

/// Renders an event's message, falling back to the built-in template when
/// an override cannot render (the notification still goes out).
fn render_message(
    template: &MailTemplate,
    kind: EventKind,
    vars: &BTreeMap<&'static str, minijinja::Value>,
) -> mail_templates::Rendered {
    match mail_templates::render(template, vars, false) {
        Ok(r) => r,
        Err(problems) => {
            tracing::warn!(
                kind = kind.key(),
                "an e-mail template override does not render ({}); the built-in one is used",
                problems
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join("; ")
            );
            mail_templates::render(&mail_templates::built_in(kind), vars, false).unwrap_or_else(
                |_| mail_templates::Rendered {
                    subject: kind.label().to_owned(),
                    body: String::new(),
                },
            )
        }
    }
}

/// Cron job `notifications`: turns new audit events into in-app
/// notifications and queued e-mails for their subscribers. The cursor and
/// what it produced commit together; the cursor row is locked meanwhile,
/// so concurrent or repeated runs never notify twice.
pub async fn fan_out(state: &AppState) -> Result<serde_json::Value, WebError> {
    let mut counts = FanOutCounts::default();
    for batch in 0..FAN_OUT_BATCHES {
        let (mut run, events) = state
            .store()
            .begin_fan_out(FAN_OUT_BATCH, batch == 0, &NOTIFYING_ACTIONS)
            .await?;
        let cursor = run.cursor;
        let fresh = events.iter().filter(|e| e.id > cursor).count();
        let last = events.iter().map(|e| e.id).max().unwrap_or(cursor);
        let mut cache = TenantCache::default();
        let now = state.now();
        for event in &events {
            counts.events += 1;
            if NOTIFYING_ACTIONS.contains(&event.action.as_str()) {
                run.handled(event.id);
            }
            let (Some(tenant), Some(kind)) = (event.tenant_id, classify(event)) else {
                continue;
            };
            cache.load(state, tenant).await?;
            let (vars_base, path) = event_vars(state, kind, tenant, event).await?;
            let template = cache.template(state, tenant, kind).await?;
            let (slug, display_name) = cache.names.get(&tenant).cloned().unwrap_or_default();
            let recipients = cache.recipients.get(&tenant).cloned().unwrap_or_default();
            let policy = cache.policies.get(&tenant).cloned().flatten();
            for r in audience(kind, event, &recipients, policy.as_ref()) {
                let in_app = is_on(&r.choices, kind, Channel::InApp);
                let email = is_on(&r.choices, kind, Channel::Email);
                if !in_app && !email {
                    continue;
                }
                let mut vars = vars_base.clone();
                vars.insert("tenant", display_name.clone().into());
                vars.insert("tenant_slug", slug.clone().into());
                vars.insert("recipient", r.email.clone().into());
                vars.insert("link", absolute(state, &path).into());
                vars.insert(
                    "settings_link",
                    absolute(state, "/notifications/settings").into(),
                );
                let message = render_message(&template, kind, &vars);
                if in_app
                    && run
                        .notify(&NewNotification {
                            tenant,
                            user: r.user_id,
                            event: kind.key(),
                            title: &message.subject,
                            body: &message.body,
                            link: Some(&path),
                            audit_event_id: Some(event.id),
                            now,
                        })
                        .await?
                {
                    counts.notifications += 1;
                }
                if email
                    && run
                        .queue_mail(&NewMail {
                            tenant: Some(tenant),
                            to: &r.email,
                            subject: &message.subject,
                            body: &message.body,
                            kind: "notification",
                            audit_event_id: Some(event.id),
                            now,
                        })
                        .await?
                {
                    counts.emails += 1;
                }
            }
        }
        run.finish(last).await?;
        if fresh < usize::try_from(FAN_OUT_BATCH).unwrap_or(usize::MAX) {
            break;
        }
    }
    serde_json::to_value(&counts).map_err(|e| WebError::Internal(e.to_string()))
}

/// Cron job `notifications-digest`: one e-mail per user, tenant and day
/// listing the unread notifications, for those who turned the digest on.
/// Running it again the same day sends nothing more.
pub async fn digest(state: &AppState) -> Result<serde_json::Value, WebError> {
    let store = state.store();
    let now = state.now();
    let day = now.date_naive();
    let mut queued = 0usize;
    let mut names: HashMap<TenantId, String> = HashMap::new();
    for (tenant, user, email) in store.digest_candidates(day).await? {
        let unread: Vec<_> = store
            .notifications(tenant, user, 200)
            .await?
            .into_iter()
            .filter(|n| n.read_at.is_none())
            .collect();
        if unread.is_empty() {
            continue;
        }
        if let std::collections::hash_map::Entry::Vacant(e) = names.entry(tenant) {
            e.insert(store.tenant(tenant).await?.display_name);
        }
        let items: Vec<BTreeMap<&str, String>> = unread
            .iter()
            .take(50)
            .map(|n| {
                BTreeMap::from([
                    ("title", n.title.clone()),
                    (
                        "created",
                        n.created_at.format("%Y-%m-%d %H:%M UTC").to_string(),
                    ),
                ])
            })
            .collect();
        let mut vars: BTreeMap<&'static str, minijinja::Value> = BTreeMap::new();
        vars.insert(
            "tenant",
            names.get(&tenant).cloned().unwrap_or_default().into(),
        );
        vars.insert("recipient", email.clone().into());
        vars.insert("count", unread.len().into());
        vars.insert("items", minijinja::Value::from_serialize(&items));
        vars.insert("link", absolute(state, "/notifications").into());
        vars.insert(
            "settings_link",
            absolute(state, "/notifications/settings").into(),
        );
        let (template, _) =
            mail_templates::effective(state, Some(tenant), EventKind::Digest).await?;
        let message = render_message(&template, EventKind::Digest, &vars);
        if store
            .queue_digest(
                tenant,
                user,
                day,
                &NewMail {
                    tenant: Some(tenant),
                    to: &email,
                    subject: &message.subject,
                    body: &message.body,
                    kind: "digest",
                    audit_event_id: None,
                    now,
                },
            )
            .await?
        {
            queued += 1;
        }
    }
    Ok(serde_json::json!({ "digests": queued, "day": day.to_string() }))
}

// ---------------------------------------------------------------------------
// Pages

#[derive(Debug, Serialize)]
struct NotificationView {
    id: String,
    event: String,
    title: String,
    body: String,
    link: Option<String>,
    unread: bool,
    created: String,
}

/// A form with only the CSRF field.
#[derive(Debug, Deserialize)]
pub struct CsrfOnly {
    #[serde(default)]
    pub csrf: String,
}

impl CsrfForm for CsrfOnly {
    fn csrf(&self) -> &str {
        &self.csrf
    }
}

fn audit_event(member: &Member, action: &str, client: &Client) -> AuditEvent {
    AuditEvent::new(
        Some(member.tenant_id),
        Actor::User(member.session.user()),
        action,
    )
    .from_client(client.ip.clone(), client.user_agent.clone())
}

/// What the pages say about e-mail delivery in a tenant.
pub async fn email_delivery(state: &AppState, tenant: TenantId) -> Result<String, WebError> {
    let own = state.store().own_smtp_settings(Some(tenant)).await?;
    if own.is_some() {
        return Ok("E-mail goes out through this tenant's SMTP server.".into());
    }
    if state.store().smtp_settings(None).await?.is_some() {
        return Ok("E-mail goes out through the platform's SMTP server.".into());
    }
    Ok(format!(
        "E-mail notifications are {}: ask an administrator to set up SMTP under Mail.",
        mail::NO_SMTP
    ))
}

/// GET /notifications: my notifications in the active tenant, newest first.
pub async fn list(State(state): State<AppState>, member: Member) -> Result<Response, WebError> {
    let store = state.store();
    let user = member.session.user();
    let items: Vec<NotificationView> = store
        .notifications(member.tenant_id, user, 200)
        .await?
        .into_iter()
        .map(|n| NotificationView {
            id: n.id.to_string(),
            event: EventKind::parse(&n.event)
                .map_or_else(|| n.event.clone(), |k| k.label().to_owned()),
            title: n.title,
            body: n.body,
            link: n.link,
            unread: n.read_at.is_none(),
            created: n.created_at.format("%Y-%m-%d %H:%M UTC").to_string(),
        })
        .collect();
    let unread = store.unread_notifications(member.tenant_id, user).await?;
    let delivery = email_delivery(&state, member.tenant_id).await?;
    let smtp_missing = delivery.contains(mail::NO_SMTP);
    let f = &member.frame;
    let html = state.templates().render(
        "notifications.html",
        context! {
            user => f.user, tenant => f.tenant, csrf => f.csrf,
            items => items, unread => unread, delivery => delivery, smtp_missing => smtp_missing,
        },
    )?;
    Ok(page(StatusCode::OK, html))
}

/// POST /notifications/{id}/read: marks one of my notifications read.
pub async fn mark_read(
    State(state): State<AppState>,
    Path(id): Path<String>,
    posted: Posted<Signed, CsrfOnly>,
) -> Result<Response, WebError> {
    let Posted {
        session, client, ..
    } = posted;
    let member = Member::of(session)?;
    let id: Uuid = id.parse().map_err(|_| WebError::NotFound)?;
    state
        .store()
        .mark_notification_read(member.tenant_id, member.session.user(), id, state.now())
        .await?;
    state
        .store()
        .audit(audit_event(&member, "notification.read", &client).target("Notification", id))
        .await?;
    see_other("/notifications", &[])
}

/// POST /notifications/read-all: marks all my notifications read.
pub async fn mark_all_read(
    State(state): State<AppState>,
    posted: Posted<Signed, CsrfOnly>,
) -> Result<Response, WebError> {
    let Posted {
        session, client, ..
    } = posted;
    let member = Member::of(session)?;
    let count = state
        .store()
        .mark_all_notifications_read(member.tenant_id, member.session.user(), state.now())
        .await?;
    state
        .store()
        .audit(audit_event(&member, "notifications.read_all", &client).meta("count", count as i64))
        .await?;
    see_other("/notifications", &[])
}

#[derive(Debug, Serialize)]
struct GridRow {
    key: &'static str,
    label: &'static str,
    cells: Vec<GridCell>,
}

#[derive(Debug, Serialize)]
struct GridCell {
    channel: &'static str,
    name: String,
    offered: bool,
    on: bool,
    default_on: bool,
}

fn grid(choices: &[SubscriptionChoice]) -> Vec<GridRow> {
    EventKind::ALL_WITH_DIGEST
        .into_iter()
        .map(|kind| GridRow {
            key: kind.key(),
            label: kind.label(),
            cells: Channel::ALL
                .into_iter()
                .map(|channel| GridCell {
                    channel: channel.key(),
                    name: format!("{}.{}", kind.key(), channel.key()),
                    offered: kind.offers(channel),
                    on: is_on(choices, kind, channel),
                    default_on: kind.default_on(channel),
                })
                .collect(),
        })
        .collect()
}

async fn settings_page_with(
    state: &AppState,
    member: &Member,
    message: &str,
) -> Result<Response, WebError> {
    let choices = state
        .store()
        .subscription_choices(member.tenant_id, member.session.user())
        .await?;
    let delivery = email_delivery(state, member.tenant_id).await?;
    let f = &member.frame;
    let html = state.templates().render(
        "notification_settings.html",
        context! {
            user => f.user, tenant => f.tenant, csrf => f.csrf,
            rows => grid(&choices), delivery => delivery,
            smtp_missing => delivery.contains(mail::NO_SMTP), message => message,
        },
    )?;
    Ok(page(StatusCode::OK, html))
}

/// GET /notifications/settings: the subscription grid.
pub async fn settings_page(
    State(state): State<AppState>,
    member: Member,
) -> Result<Response, WebError> {
    settings_page_with(&state, &member, "").await
}

/// POST /notifications/settings: every box of the grid (a box not sent is off).
pub async fn save_settings(
    State(state): State<AppState>,
    posted: Posted<Signed, GridForm>,
) -> Result<Response, WebError> {
    let Posted {
        session,
        form,
        client,
    } = posted;
    let member = Member::of(session)?;
    let mut choices = Vec::new();
    let mut on = Vec::new();
    for kind in EventKind::ALL_WITH_DIGEST {
        for channel in Channel::ALL {
            if !kind.offers(channel) {
                continue;
            }
            let enabled = form
                .boxes
                .get(&format!("{}.{}", kind.key(), channel.key()))
                .is_some_and(|v| v == "on");
            if enabled {
                on.push(format!("{}.{}", kind.key(), channel.key()));
            }
            choices.push(SubscriptionChoice {
                event: kind.key().to_owned(),
                channel: channel.key().to_owned(),
                enabled,
            });
        }
    }
    state
        .store()
        .set_subscription_choices(member.tenant_id, member.session.user(), &choices)
        .await?;
    state
        .store()
        .audit(audit_event(&member, "notifications.settings_changed", &client).meta("on", on))
        .await?;
    settings_page_with(&state, &member, "Your notification settings are saved.").await
}

/// The subscription grid: one `event.channel` box per cell, `on` when ticked.
#[derive(Debug, Deserialize)]
pub struct GridForm {
    #[serde(default)]
    pub csrf: String,
    #[serde(flatten)]
    pub boxes: BTreeMap<String, String>,
}

impl CsrfForm for GridForm {
    fn csrf(&self) -> &str {
        &self.csrf
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(action: &str, metadata: serde_json::Value) -> AuditRecord {
        AuditRecord {
            id: 1,
            tenant_id: None,
            actor_kind: "user".into(),
            actor_id: "x".into(),
            action: action.into(),
            target_kind: None,
            target_id: None,
            ip: None,
            user_agent: None,
            metadata,
            created_at: chrono::DateTime::from_timestamp(0, 0).unwrap(),
        }
    }

    #[test]
    fn an_internal_ticket_note_notifies_no_one() {
        let internal = record(
            "ticket.commented",
            serde_json::json!({"internal": true, "number": 3}),
        );
        assert_eq!(classify(&internal), None);
        let unsaid = record("ticket.commented", serde_json::json!({"number": 3}));
        assert_eq!(classify(&unsaid), None);
        let public = record(
            "ticket.commented",
            serde_json::json!({"internal": false, "number": 3}),
        );
        assert_eq!(classify(&public), Some(EventKind::TicketActivity));
    }

    #[test]
    fn the_defaults_are_the_documented_ones() {
        for kind in EventKind::ALL {
            assert!(is_on(&[], kind, Channel::InApp));
        }
        let email: Vec<_> = EventKind::ALL
            .into_iter()
            .filter(|k| is_on(&[], *k, Channel::Email))
            .collect();
        assert_eq!(
            email,
            vec![EventKind::ApprovalWaiting, EventKind::ChangeFailed]
        );
        assert!(!is_on(&[], EventKind::Digest, Channel::Email));
        assert!(!is_on(&[], EventKind::Digest, Channel::InApp));
    }

    #[test]
    fn a_choice_overrides_the_default() {
        let off = SubscriptionChoice {
            event: "approval_waiting".into(),
            channel: "email".into(),
            enabled: false,
        };
        assert!(!is_on(&[off], EventKind::ApprovalWaiting, Channel::Email));
    }
}
