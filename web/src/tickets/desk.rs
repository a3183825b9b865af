//! The support desk: every tenant's tickets for the platform's staff
//! (`Staff` extractor: anyone else gets "not found"). Staff reply, write
//! internal notes (staff-only events), assign a ticket to one of the
//! staff, and make every status move `transitions::TRANSITIONS` gives
//! them. Reads and writes the store.

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use minijinja::context;
use serde::{Deserialize, Serialize};
use zentralink_store::UserId;
use zentralink_store::tickets::{Decision, NewComment, TicketFilter, TicketId};

use super::live::{self, EventView, Viewer};
use super::transitions::{self, Mover, Status};
use super::{
    CommentForm, ListQuery, Notice, StatusForm, StreamQuery, TicketView, audit_event, choices,
    comment_body, move_ticket, parse_status, refused, stream_response, ticket_id,
};
use crate::AppState;
use crate::error::WebError;
use crate::members::{page, see_other};
use crate::roles::Staff;
use crate::session::{CsrfForm, Posted, Signed};

/// How many tickets the desk lists.
const DESK_LIMIT: i64 = 300;

/// GET /support: every tenant's tickets, filtered by status and "assigned to me".
pub async fn desk(
    State(state): State<AppState>,
    staff: Staff,
    Query(query): Query<ListQuery>,
) -> Result<Response, WebError> {
    let status = query.status()?;
    let mine = query.mine();
    let filter = TicketFilter {
        status: status.map(|s| s.as_str().to_owned()),
        mine: mine.then(|| staff.user()),
        limit: DESK_LIMIT,
    };
    let tickets: Vec<TicketView> = state
        .store()
        .desk_tickets(&filter)
        .await?
        .into_iter()
        .map(TicketView::from)
        .collect();
    let f = &staff.frame;
    let html = state.templates().render(
        "support.html",
        context! {
            user => f.user, tenant => f.tenant, csrf => f.csrf,
            tickets => tickets, statuses => choices(Status::ALL),
            status => status.map(Status::as_str), mine => mine,
        },
    )?;
    Ok(page(StatusCode::OK, html))
}

#[derive(Debug, Serialize)]
struct StaffChoice {
    id: String,
    email: String,
}

async fn desk_ticket_page_with(
    state: &AppState,
    staff: &Staff,
    id: TicketId,
    status: StatusCode,
    notice: Notice,
) -> Result<Response, WebError> {
    let store = state.store();
    let ticket = store.desk_ticket(id).await?;
    let events: Vec<EventView> = store
        .ticket_events(id, 0, true)
        .await?
        .iter()
        .map(EventView::from)
        .collect();
    let last_event_id = events.last().map_or(0, |e| e.id);
    let moves = match ticket.status.parse::<Status>() {
        Ok(s) => choices(transitions::moves_from(Mover::Staff, s)),
        Err(_) => Vec::new(),
    };
    let staff_users: Vec<StaffChoice> = store
        .staff_users()
        .await?
        .into_iter()
        .map(|(id, email)| StaffChoice {
            id: id.to_string(),
            email,
        })
        .collect();
    let f = &staff.frame;
    let html = state.templates().render(
        "support_ticket.html",
        context! {
            user => f.user, tenant => f.tenant, csrf => f.csrf,
            ticket => TicketView::from(ticket), events => events,
            last_event_id => last_event_id, moves => moves, staff_users => staff_users,
            error => notice.error, stream => format!("/support/tickets/{id}/events"),
            max_body => super::MAX_BODY_CHARS,
        },
    )?;
    Ok(page(status, html))
}

/// GET /support/tickets/{id}: a ticket of any tenant with its whole
/// thread (internal notes marked), reply, note, assignment and status forms.
pub async fn ticket(
    State(state): State<AppState>,
    staff: Staff,
    Path(id): Path<String>,
) -> Result<Response, WebError> {
    let id = ticket_id(&id)?;
    desk_ticket_page_with(&state, &staff, id, StatusCode::OK, Notice::default()).await
}

/// POST /support/tickets/{id}/comments: a reply to the customer, or with
/// `kind=internal` an internal note only staff see.
pub async fn comment(
    State(state): State<AppState>,
    Path(id): Path<String>,
    posted: Posted<Signed, CommentForm>,
) -> Result<Response, WebError> {
    let Posted {
        session,
        form,
        client,
    } = posted;
    let staff = Staff::of(session)?;
    let id = ticket_id(&id)?;
    state.store().desk_ticket(id).await?;
    let internal = match form.kind.as_str() {
        "internal" => true,
        "" | "reply" => false,
        other => {
            return Err(WebError::BadRequest(format!(
                "kind {:?}: use reply or internal",
                zentralink_model::secrets::shorten(other, 20)
            )));
        }
    };
    let body = match comment_body(&form.body) {
        Ok(b) => b,
        Err(e) => {
            return desk_ticket_page_with(
                &state,
                &staff,
                id,
                StatusCode::UNPROCESSABLE_ENTITY,
                refused(e),
            )
            .await;
        }
    };
    let user = staff.user();
    state
        .store()
        .comment_on_ticket(
            None,
            id,
            &NewComment {
                author: user,
                staff: true,
                body: &body,
                internal,
                now: state.now(),
            },
            |_| Decision::Allow(None),
            audit_event(user, "ticket.commented", &client),
        )
        .await?;
    see_other(&format!("/support/tickets/{id}#reply"), &[])
}

/// POST /support/tickets/{id}/status: a staff move, as `TRANSITIONS` allows.
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
    let staff = Staff::of(session)?;
    let id = ticket_id(&id)?;
    state.store().desk_ticket(id).await?;
    let to = parse_status(&form.to)?;
    match move_ticket(&state, None, id, to, Mover::Staff, staff.user(), &client).await? {
        Ok(()) => see_other(&format!("/support/tickets/{id}"), &[]),
        Err(from) => {
            let error = format!("A ticket does not move from {from} to {}.", to.label());
            desk_ticket_page_with(&state, &staff, id, StatusCode::FORBIDDEN, refused(error)).await
        }
    }
}

/// Assigning a ticket: a staff user's id, or empty for nobody.
#[derive(Debug, Deserialize)]
pub struct AssignForm {
    #[serde(default)]
    pub assignee: String,
    #[serde(default)]
    pub csrf: String,
}

impl CsrfForm for AssignForm {
    fn csrf(&self) -> &str {
        &self.csrf
    }
}

/// POST /support/tickets/{id}/assign: gives the ticket to one of the staff
/// (or to nobody); the event is staff-only.
pub async fn assign(
    State(state): State<AppState>,
    Path(id): Path<String>,
    posted: Posted<Signed, AssignForm>,
) -> Result<Response, WebError> {
    let Posted {
        session,
        form,
        client,
    } = posted;
    let staff = Staff::of(session)?;
    let id = ticket_id(&id)?;
    state.store().desk_ticket(id).await?;
    let assignee: Option<UserId> = match form.assignee.trim() {
        "" => None,
        given => match given.parse() {
            Ok(user) => Some(user),
            Err(_) => {
                return desk_ticket_page_with(
                    &state,
                    &staff,
                    id,
                    StatusCode::UNPROCESSABLE_ENTITY,
                    refused("Choose one of the staff, or nobody."),
                )
                .await;
            }
        },
    };
    let user = staff.user();
    let assigned = state
        .store()
        .assign_ticket(
            id,
            assignee,
            user,
            state.now(),
            audit_event(user, "ticket.assigned", &client),
        )
        .await;
    match assigned {
        Ok(_) => see_other(&format!("/support/tickets/{id}"), &[]),
        // The ticket exists (checked above): the assignee is not staff.
        Err(zentralink_store::StoreError::NotFound) => {
            desk_ticket_page_with(
                &state,
                &staff,
                id,
                StatusCode::UNPROCESSABLE_ENTITY,
                refused("Only the platform's staff can be assigned a ticket."),
            )
            .await
        }
        Err(e) => Err(e.into()),
    }
}

/// GET /support/tickets/{id}/events: every live event of the ticket,
/// internal ones included, for staff.
pub async fn events(
    State(state): State<AppState>,
    staff: Staff,
    Path(id): Path<String>,
    Query(query): Query<StreamQuery>,
    headers: HeaderMap,
) -> Result<Response, WebError> {
    let id = ticket_id(&id)?;
    state.store().desk_ticket(id).await?;
    let subscription = state.tickets().subscribe(id).await?;
    let viewer = Viewer {
        session: staff.session.0.record.id,
        tenant: None,
    };
    let after = live::start_after(&headers, query.after.as_deref());
    Ok(stream_response(live::stream(
        state.clone(),
        subscription,
        viewer,
        after,
    )))
}
