//! Tickets: the support desk shared by a tenant's members and the
//! platform's staff, with live updates over Server-Sent Events. Members of
//! the active tenant list, open and read its tickets (`/tickets`); MEMBER
//! and up reply and move them as `transitions::TRANSITIONS` allows; the
//! staff work every tenant's tickets on the desk (`/support`, in `desk`),
//! write internal notes and assign. Internal notes never reach a member:
//! not on a page, not in a stream or its replay, not in audit metadata
//! (which carries no comment body at all). Another tenant's ticket is "not
//! found", like a missing one. Every write is an audit event
//! (`ticket.opened`, `ticket.commented`, `ticket.status_changed`,
//! `ticket.assigned`) with the ticket's number and `internal`. Reads and
//! writes the store.

pub mod desk;
pub mod live;
pub mod transitions;

use axum::extract::{Path, Query, State};
use axum::http::header::{CACHE_CONTROL, CONTENT_TYPE};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use minijinja::context;
use serde::{Deserialize, Serialize};
use zentralink_store::audit::{Actor, AuditEvent};
use zentralink_store::tickets::{
    Decision, NewComment, NewTicket, StatusMove, TicketChange, TicketFilter, TicketId, TicketRecord,
};
use zentralink_store::{ChangeRequestId, StoreError, UserId, ZoneId};

use crate::AppState;
use crate::error::WebError;
use crate::members::{page, see_other};
use crate::roles::Member;
use crate::session::{Client, CsrfForm, Posted, Signed};
use live::{EventView, Viewer};
use transitions::{Mover, Status};

/// The templates of this part of the service.
pub const TEMPLATES: &[(&str, &str)] = &[
    ("tickets.html", include_str!("../../templates/tickets.html")),
    (
        "ticket_new.html",
        include_str!("../../templates/ticket_new.html"),
    ),
    ("ticket.html", include_str!("../../templates/ticket.html")),
    (
        "ticket_thread.html",
        include_str!("../../templates/ticket_thread.html"),
    ),
    ("support.html", include_str!("../../templates/support.html")),
    (
        "support_ticket.html",
        include_str!("../../templates/support_ticket.html"),
    ),
];

/// The longest subject accepted.
pub const MAX_SUBJECT_CHARS: usize = 200;
/// The longest comment accepted (the form post must stay under the body limit).
pub const MAX_BODY_CHARS: usize = 5000;
/// The priorities a ticket can have, lowest first.
pub const PRIORITIES: [&str; 4] = ["LOW", "NORMAL", "HIGH", "URGENT"];
/// How many tickets a list shows.
const LIST_LIMIT: i64 = 200;

/// A ticket as the pages show it.
#[derive(Debug, Serialize)]
pub struct TicketView {
    pub id: String,
    pub number: i64,
    pub subject: String,
    pub status: String,
    pub status_label: String,
    pub priority: String,
    pub domain: Option<String>,
    pub zone_id: Option<String>,
    pub change_request_id: Option<String>,
    pub change_request_name: Option<String>,
    pub customer: Option<String>,
    pub creator: Option<String>,
    pub assignee: Option<String>,
    pub assignee_id: Option<String>,
    pub tenant_slug: String,
    pub tenant_name: String,
    pub created: String,
    pub updated: String,
}

impl From<TicketRecord> for TicketView {
    fn from(t: TicketRecord) -> Self {
        TicketView {
            id: t.id.to_string(),
            number: t.number,
            status_label: t
                .status
                .parse::<Status>()
                .map_or_else(|_| t.status.clone(), |s| s.label().to_owned()),
            subject: t.subject,
            status: t.status,
            priority: t.priority,
            domain: t.domain,
            zone_id: t.zone_id.map(|z| z.to_string()),
            change_request_id: t.change_request_id.map(|c| c.to_string()),
            change_request_name: t.change_request_name,
            customer: t.customer_email,
            creator: t.creator_email,
            assignee: t.assignee_email,
            assignee_id: t.assignee_id.map(|a| a.to_string()),
            tenant_slug: t.tenant_slug,
            tenant_name: t.tenant_name,
            created: t.created_at.format("%Y-%m-%d %H:%M UTC").to_string(),
            updated: t.updated_at.format("%Y-%m-%d %H:%M UTC").to_string(),
        }
    }
}

/// A status a form offers.
#[derive(Debug, Serialize)]
pub struct StatusChoice {
    pub value: &'static str,
    pub label: &'static str,
}

pub(crate) fn choices(statuses: impl IntoIterator<Item = Status>) -> Vec<StatusChoice> {
    statuses
        .into_iter()
        .map(|s| StatusChoice {
            value: s.as_str(),
            label: s.label(),
        })
        .collect()
}

/// The list filters: `?status=OPEN&mine=1`.
#[derive(Debug, Default, Deserialize)]
pub struct ListQuery {
    #[serde(default)]
    pub status: Option<String>,
    #[serde(default)]
    pub mine: Option<String>,
}

impl ListQuery {
    /// The status filter (none for empty), or 400 for an unknown status.
    pub(crate) fn status(&self) -> Result<Option<Status>, WebError> {
        match self.status.as_deref().map(str::trim) {
            None | Some("") => Ok(None),
            Some(s) => s
                .parse::<Status>()
                .map(Some)
                .map_err(|e| WebError::BadRequest(e.to_string())),
        }
    }

    pub(crate) fn mine(&self) -> bool {
        matches!(self.mine.as_deref(), Some("1" | "on" | "true"))
    }
}

/// A ticket id in a path; anything else is "not found".
pub(crate) fn ticket_id(id: &str) -> Result<TicketId, WebError> {
    id.parse().map_err(|_| WebError::NotFound)
}

/// An audit event of a ticket action; the store sets the ticket's tenant,
/// target, number and `internal`.
pub(crate) fn audit_event(user: UserId, action: &str, client: &Client) -> AuditEvent {
    AuditEvent::new(None, Actor::User(user), action)
        .from_client(client.ip.clone(), client.user_agent.clone())
}

/// A comment's text, trimmed, or why it is refused.
pub(crate) fn comment_body(given: &str) -> Result<String, String> {
    let body = given.trim();
    if body.is_empty() {
        return Err("Write something first: the comment is empty.".into());
    }
    if body.chars().count() > MAX_BODY_CHARS {
        return Err(format!(
            "The comment is longer than {MAX_BODY_CHARS} characters; split it in two."
        ));
    }
    Ok(body.replace("\r\n", "\n"))
}

/// GET /tickets: the tenant's tickets, filtered by status and "mine".
pub async fn list(
    State(state): State<AppState>,
    member: Member,
    Query(query): Query<ListQuery>,
) -> Result<Response, WebError> {
    let status = query.status()?;
    let mine = query.mine();
    let filter = TicketFilter {
        status: status.map(|s| s.as_str().to_owned()),
        mine: mine.then(|| member.session.user()),
        limit: LIST_LIMIT,
    };
    let tickets: Vec<TicketView> = state
        .store()
        .tickets(member.tenant_id, &filter)
        .await?
        .into_iter()
        .map(TicketView::from)
        .collect();
    let f = &member.frame;
    let html = state.templates().render(
        "tickets.html",
        context! {
            user => f.user, tenant => f.tenant, csrf => f.csrf,
            tickets => tickets, statuses => choices(Status::ALL),
            status => status.map(Status::as_str), mine => mine,
            writes => transitions::member_writes(member.role),
        },
    )?;
    Ok(page(StatusCode::OK, html))
}

/// The new-ticket form's fields.
#[derive(Debug, Default, Deserialize, Serialize)]
pub struct NewTicketForm {
    #[serde(default)]
    pub subject: String,
    #[serde(default)]
    pub body: String,
    #[serde(default)]
    pub priority: String,
    /// A zone id of the tenant, or empty: about the customer's account.
    #[serde(default)]
    pub zone: String,
    /// A change request id of the tenant, or empty.
    #[serde(default)]
    pub change_request: String,
    #[serde(default, skip_serializing)]
    pub csrf: String,
}

impl CsrfForm for NewTicketForm {
    fn csrf(&self) -> &str {
        &self.csrf
    }
}

#[derive(Debug, Serialize)]
struct Choice {
    id: String,
    label: String,
}

async fn new_ticket_page_with(
    state: &AppState,
    member: &Member,
    status: StatusCode,
    form: &NewTicketForm,
    error: Option<String>,
) -> Result<Response, WebError> {
    let store = state.store();
    let zones: Vec<Choice> = store
        .zones(member.tenant_id)
        .await?
        .into_iter()
        .map(|z| Choice {
            id: z.id.to_string(),
            label: z.zone_name,
        })
        .collect();
    let requests: Vec<Choice> = store
        .tenant_change_requests(member.tenant_id, false, 100)
        .await?
        .into_iter()
        .map(|r| Choice {
            id: r.id.to_string(),
            label: format!(
                "{} ({}, {})",
                r.name,
                r.zone_name.as_deref().unwrap_or("tenant configuration"),
                r.state
            ),
        })
        .collect();
    let f = &member.frame;
    let html = state.templates().render(
        "ticket_new.html",
        context! {
            user => f.user, tenant => f.tenant, csrf => f.csrf,
            zones => zones, requests => requests, priorities => PRIORITIES,
            form => form, error => error,
            writes => transitions::member_writes(member.role),
            max_subject => MAX_SUBJECT_CHARS, max_body => MAX_BODY_CHARS,
        },
    )?;
    Ok(page(status, html))
}

/// GET /tickets/new: the form to open a ticket (MEMBER and up; a VIEWER
/// reads that their role only reads).
pub async fn new_page(State(state): State<AppState>, member: Member) -> Result<Response, WebError> {
    let form = NewTicketForm {
        priority: "NORMAL".into(),
        ..NewTicketForm::default()
    };
    new_ticket_page_with(&state, &member, StatusCode::OK, &form, None).await
}

/// What the new-ticket form asks for, checked.
struct CheckedTicket {
    subject: String,
    body: String,
    priority: &'static str,
    zone: Option<ZoneId>,
    change_request: Option<ChangeRequestId>,
}

async fn check_new_ticket(
    state: &AppState,
    member: &Member,
    form: &NewTicketForm,
) -> Result<Result<CheckedTicket, String>, WebError> {
    let subject = form.subject.trim();
    if subject.is_empty() {
        return Ok(Err("Give the ticket a subject.".into()));
    }
    if subject.chars().count() > MAX_SUBJECT_CHARS || subject.chars().any(char::is_control) {
        return Ok(Err(format!(
            "The subject must be one line of at most {MAX_SUBJECT_CHARS} characters."
        )));
    }
    let body = match comment_body(&form.body) {
        Ok(b) => b,
        Err(e) => return Ok(Err(e)),
    };
    let Some(priority) = PRIORITIES.into_iter().find(|p| *p == form.priority) else {
        return Ok(Err(format!(
            "Choose a priority: one of {}.",
            PRIORITIES.join(", ")
        )));
    };
    let store = state.store();
    let zone = match form.zone.trim() {
        "" => None,
        id => {
            let zone: Option<ZoneId> = id.parse().ok();
            let known = match zone {
                Some(z) => store
                    .zones(member.tenant_id)
                    .await?
                    .iter()
                    .any(|r| r.id == z),
                None => false,
            };
            if !known {
                return Ok(Err("Choose one of the tenant's zones, or none.".into()));
            }
            zone
        }
    };
    let change_request = match form.change_request.trim() {
        "" => None,
        id => {
            let request: Option<ChangeRequestId> = id.parse().ok();
            let known = match request {
                Some(r) => match store.change_request(member.tenant_id, r).await {
                    Ok(_) => true,
                    Err(StoreError::NotFound) => false,
                    Err(e) => return Err(e.into()),
                },
                None => false,
            };
            if !known {
                return Ok(Err(
                    "Choose one of the tenant's change requests, or none.".into()
                ));
            }
            request
        }
    };
    Ok(Ok(CheckedTicket {
        subject: subject.to_owned(),
        body,
        priority,
        zone,
        change_request,
    }))
}

/// POST /tickets: opens a ticket (MEMBER and up) and shows it.
pub async fn create(
    State(state): State<AppState>,
    posted: Posted<Signed, NewTicketForm>,
) -> Result<Response, WebError> {
    let Posted {
        session,
        form,
        client,
    } = posted;
    let member = Member::of(session)?;
    if !transitions::member_writes(member.role) {
        let error = format!("Your role ({}) may read tickets only.", member.role);
        return new_ticket_page_with(&state, &member, StatusCode::FORBIDDEN, &form, Some(error))
            .await;
    }
    let checked = match check_new_ticket(&state, &member, &form).await? {
        Ok(c) => c,
        Err(error) => {
            return new_ticket_page_with(
                &state,
                &member,
                StatusCode::UNPROCESSABLE_ENTITY,
                &form,
                Some(error),
            )
            .await;
        }
    };
    let user = member.session.user();
    let opened = state
        .store()
        .open_ticket(
            member.tenant_id,
            &NewTicket {
                subject: &checked.subject,
                body: &checked.body,
                priority: checked.priority,
                zone: checked.zone,
                change_request: checked.change_request,
                opened_by: user,
                now: state.now(),
            },
            audit_event(user, "ticket.opened", &client),
        )
        .await?;
    see_other(&format!("/tickets/{}", opened.id), &[])
}

/// What a ticket page says above the thread.
#[derive(Debug, Default)]
pub(crate) struct Notice {
    pub error: Option<String>,
}

async fn ticket_page_with(
    state: &AppState,
    member: &Member,
    id: TicketId,
    status: StatusCode,
    notice: Notice,
) -> Result<Response, WebError> {
    let store = state.store();
    let ticket = store.ticket(member.tenant_id, id).await?;
    let events: Vec<EventView> = store
        .ticket_events(id, 0, false)
        .await?
        .iter()
        .map(EventView::from)
        .collect();
    let last_event_id = events.last().map_or(0, |e| e.id);
    let current = ticket.status.parse::<Status>().ok();
    let writes = transitions::member_writes(member.role);
    let moves = match current {
        Some(s) if writes => choices(transitions::moves_from(Mover::Member, s)),
        _ => Vec::new(),
    };
    let may_reply = writes && current.is_some_and(transitions::member_may_reply);
    let f = &member.frame;
    let html = state.templates().render(
        "ticket.html",
        context! {
            user => f.user, tenant => f.tenant, csrf => f.csrf,
            ticket => TicketView::from(ticket), events => events,
            last_event_id => last_event_id, moves => moves, may_reply => may_reply,
            writes => writes, role => member.role.as_str(), error => notice.error,
            stream => format!("/tickets/{id}/events"), max_body => MAX_BODY_CHARS,
        },
    )?;
    Ok(page(status, html))
}

/// GET /tickets/{id}: the ticket's thread (without internal notes), its
/// status form and the reply form.
pub async fn show(
    State(state): State<AppState>,
    member: Member,
    Path(id): Path<String>,
) -> Result<Response, WebError> {
    let id = ticket_id(&id)?;
    ticket_page_with(&state, &member, id, StatusCode::OK, Notice::default()).await
}

/// A reply (members) or a reply / internal note (staff).
#[derive(Debug, Deserialize)]
pub struct CommentForm {
    #[serde(default)]
    pub body: String,
    /// Staff only: `internal` writes an internal note.
    #[serde(default)]
    pub kind: String,
    #[serde(default)]
    pub csrf: String,
}

impl CsrfForm for CommentForm {
    fn csrf(&self) -> &str {
        &self.csrf
    }
}

/// A status change.
#[derive(Debug, Deserialize)]
pub struct StatusForm {
    #[serde(default)]
    pub to: String,
    #[serde(default)]
    pub csrf: String,
}

impl CsrfForm for StatusForm {
    fn csrf(&self) -> &str {
        &self.csrf
    }
}

/// A page's notice saying why a form was refused (here and on the desk).
pub(crate) fn refused(error: impl Into<String>) -> Notice {
    Notice {
        error: Some(error.into()),
    }
}

/// POST /tickets/{id}/comments: a member's reply (MEMBER and up, not on a
/// closed ticket); on a ticket waiting on the customer or resolved, it
/// moves the ticket back to OPEN.
pub async fn reply(
    State(state): State<AppState>,
    Path(id): Path<String>,
    posted: Posted<Signed, CommentForm>,
) -> Result<Response, WebError> {
    let Posted {
        session,
        form,
        client,
    } = posted;
    let member = Member::of(session)?;
    let id = ticket_id(&id)?;
    // Another tenant's ticket: not found, before anything else is said.
    state.store().ticket(member.tenant_id, id).await?;
    if !transitions::member_writes(member.role) {
        let error = format!("Your role ({}) may read tickets only.", member.role);
        return ticket_page_with(&state, &member, id, StatusCode::FORBIDDEN, refused(error)).await;
    }
    let body = match comment_body(&form.body) {
        Ok(b) => b,
        Err(e) => {
            return ticket_page_with(
                &state,
                &member,
                id,
                StatusCode::UNPROCESSABLE_ENTITY,
                refused(e),
            )
            .await;
        }
    };
    let user = member.session.user();
    let decide = |status: &str| match status.parse::<Status>() {
        Ok(s) if transitions::member_may_reply(s) => {
            Decision::Allow(transitions::after_member_reply(s).map(|to| to.as_str().to_owned()))
        }
        _ => Decision::Refuse,
    };
    let change = state
        .store()
        .comment_on_ticket(
            Some(member.tenant_id),
            id,
            &NewComment {
                author: user,
                staff: false,
                body: &body,
                internal: false,
                now: state.now(),
            },
            decide,
            audit_event(user, "ticket.commented", &client),
        )
        .await?;
    match change {
        TicketChange::Done { .. } => see_other(&format!("/tickets/{id}#reply"), &[]),
        TicketChange::Refused { .. } => {
            ticket_page_with(
                &state,
                &member,
                id,
                StatusCode::FORBIDDEN,
                refused("This ticket is closed; open a new ticket to write again."),
            )
            .await
        }
    }
}

/// POST /tickets/{id}/status: a member moves the ticket (MEMBER and up,
/// as `TRANSITIONS` allows); a move the table does not allow is 403 and
/// changes nothing.
pub async fn change_status(
    State(state): State<AppState>,
    Path(id): Path<String>,
    posted: Posted<Signed, StatusForm>,
) -> Result<Response, WebError> {
    let Posted {
        session,
        form,
        client,
    } = posted;
    let member = Member::of(session)?;
    let id = ticket_id(&id)?;
    state.store().ticket(member.tenant_id, id).await?;
    let to = parse_status(&form.to)?;
    if !transitions::member_writes(member.role) {
        let error = format!("Your role ({}) may read tickets only.", member.role);
        return ticket_page_with(&state, &member, id, StatusCode::FORBIDDEN, refused(error)).await;
    }
    let user = member.session.user();
    match move_ticket(
        &state,
        Some(member.tenant_id),
        id,
        to,
        Mover::Member,
        user,
        &client,
    )
    .await?
    {
        Ok(()) => see_other(&format!("/tickets/{id}"), &[]),
        Err(from) => {
            let error = format!(
                "A member cannot move a ticket from {from} to {}; the support desk does that.",
                to.label()
            );
            ticket_page_with(&state, &member, id, StatusCode::FORBIDDEN, refused(error)).await
        }
    }
}

/// The status a status form names.
pub(crate) fn parse_status(to: &str) -> Result<Status, WebError> {
    to.parse()
        .map_err(|e: transitions::UnknownStatus| WebError::BadRequest(e.to_string()))
}

/// Moves a ticket of `tenant` (any tenant's for the desk: `None`) to `to`
/// as `mover`, when `TRANSITIONS` allow it from the ticket's status read
/// under its lock; `Err` with that status's label when they do not
/// (nothing is written then). An audit event either way it is made.
pub(crate) async fn move_ticket(
    state: &AppState,
    tenant: Option<zentralink_store::TenantId>,
    id: TicketId,
    to: Status,
    mover: Mover,
    user: UserId,
    client: &Client,
) -> Result<Result<(), String>, WebError> {
    let allowed = |from: &str| {
        from.parse::<Status>()
            .is_ok_and(|from| transitions::may_move(mover, from, to))
    };
    let change = state
        .store()
        .transition_ticket(
            tenant,
            id,
            &StatusMove {
                to: to.as_str(),
                actor: user,
                staff: mover == Mover::Staff,
                now: state.now(),
            },
            allowed,
            audit_event(user, "ticket.status_changed", client),
        )
        .await?;
    Ok(match change {
        TicketChange::Done { .. } => Ok(()),
        TicketChange::Refused { status } => Err(status
            .parse::<Status>()
            .map_or(status.clone(), |s| s.label().to_owned())),
    })
}

/// `?after=N`: the last event id the page already shows.
#[derive(Debug, Default, Deserialize)]
pub struct StreamQuery {
    #[serde(default)]
    pub after: Option<String>,
}

/// GET /tickets/{id}/events: the ticket's live events for a member
/// (`text/event-stream`; internal events never).
pub async fn events(
    State(state): State<AppState>,
    member: Member,
    Path(id): Path<String>,
    Query(query): Query<StreamQuery>,
    headers: HeaderMap,
) -> Result<Response, WebError> {
    let id = ticket_id(&id)?;
    state.store().ticket(member.tenant_id, id).await?;
    let subscription = state.tickets().subscribe(id).await?;
    let viewer = Viewer {
        session: member.session.0.record.id,
        tenant: Some(member.tenant_id),
    };
    let after = live::start_after(&headers, query.after.as_deref());
    Ok(stream_response(live::stream(
        state.clone(),
        subscription,
        viewer,
        after,
    )))
}

/// An event stream's response: no buffering by a reverse proxy.
pub(crate) fn stream_response(sse: impl IntoResponse) -> Response {
    let mut response = sse.into_response();
    response.headers_mut().insert(
        axum::http::HeaderName::from_static("x-accel-buffering"),
        axum::http::HeaderValue::from_static("no"),
    );
    response
}

/// GET /static/tickets.js: appends live events to a ticket's thread.
pub async fn script() -> Response {
    (
        [
            (CONTENT_TYPE, "text/javascript; charset=utf-8"),
            (CACHE_CONTROL, "public, max-age=3600"),
        ],
        include_str!("../../static/tickets.js"),
    )
        .into_response()
}

/// GET /static/tickets.css: the thread's look.
pub async fn stylesheet() -> Response {
    (
        [
            (CONTENT_TYPE, "text/css; charset=utf-8"),
            (CACHE_CONTROL, "public, max-age=3600"),
        ],
        include_str!("../../static/tickets.css"),
    )
        .into_response()
}
