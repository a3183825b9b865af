//! Tickets of a tenant and the platform's support desk: numbering per
//! tenant, comments and internal notes, status changes, assignment, and
//! the ticket's events (the thread, and what the live stream sends and
//! replays). Every write of a ticket locks its row, writes its event and
//! audit event and notifies `ticket_events` listeners (PostgreSQL
//! LISTEN/NOTIFY, delivered on commit) in one transaction, so event ids
//! of one ticket grow in commit order. The decisions (who may move a
//! ticket where) are the caller's, made on the status read under the
//! lock. Does I/O (PostgreSQL).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sqlx::postgres::{PgListener, PgNotification};
use uuid::Uuid;

use crate::Store;
use crate::audit::AuditEvent;
use crate::error::StoreError;
use crate::ids::{ChangeRequestId, TenantId, UserId, ZoneId};

/// The PostgreSQL notification channel ticket events are announced on;
/// the payload is `<ticket id> <event id>`.
pub const TICKET_EVENTS_CHANNEL: &str = "zentralink_ticket_events";

/// A ticket.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, sqlx::Type,
)]
#[sqlx(transparent)]
pub struct TicketId(pub Uuid);

impl TicketId {
    pub fn new() -> Self {
        Self(Uuid::new_v4())
    }
}

impl Default for TicketId {
    fn default() -> Self {
        Self::new()
    }
}

impl std::fmt::Display for TicketId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

impl std::str::FromStr for TicketId {
    type Err = uuid::Error;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Uuid::parse_str(s).map(Self)
    }
}

/// A ticket with the names its pages show.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct TicketRecord {
    pub id: TicketId,
    pub tenant_id: TenantId,
    pub tenant_slug: String,
    pub tenant_name: String,
    /// The tenant's number of the ticket (#1, #2, ...).
    pub number: i64,
    pub subject: String,
    pub status: String,
    pub priority: String,
    /// The zone (domain) the ticket concerns, if it is domain-bound.
    pub domain: Option<String>,
    pub zone_id: Option<ZoneId>,
    pub change_request_id: Option<ChangeRequestId>,
    pub change_request_name: Option<String>,
    /// The member the ticket is about (customer-bound tickets).
    pub customer_user_id: Option<UserId>,
    pub customer_email: Option<String>,
    pub created_by: Option<UserId>,
    pub creator_email: Option<String>,
    /// The staff member working on it.
    pub assignee_id: Option<UserId>,
    pub assignee_email: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

const TICKET_SELECT: &str =
    "SELECT t.id, t.tenant_id, tn.slug AS tenant_slug, tn.display_name AS tenant_name,
        t.number, t.subject, t.status, t.priority, t.domain, t.zone_id,
        t.change_request_id, r.name AS change_request_name,
        t.customer_user_id, cu.email AS customer_email,
        t.created_by, cb.email AS creator_email,
        t.assignee_id, au.email AS assignee_email,
        t.created_at, t.updated_at
   FROM tickets t
   JOIN tenants tn ON tn.id = t.tenant_id
   LEFT JOIN dns_change_requests r ON r.tenant_id = t.tenant_id AND r.id = t.change_request_id
   LEFT JOIN users cu ON cu.id = t.customer_user_id
   LEFT JOIN users cb ON cb.id = t.created_by
   LEFT JOIN users au ON au.id = t.assignee_id";

/// One event of a ticket's thread, with the comment it carries.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct TicketEventRecord {
    /// The Server-Sent Events id.
    pub id: i64,
    pub tenant_id: TenantId,
    pub ticket_id: TicketId,
    /// `OPENED`, `COMMENT`, `STATUS` or `ASSIGNED`.
    pub kind: String,
    /// An internal note (or a staff-only event): never for the tenant's members.
    pub internal: bool,
    pub actor_id: Option<UserId>,
    pub actor_name: Option<String>,
    /// Whether the actor acted as the platform's staff.
    pub actor_staff: bool,
    pub body: Option<String>,
    pub from_status: Option<String>,
    pub to_status: Option<String>,
    pub assignee_email: Option<String>,
    pub created_at: DateTime<Utc>,
}

const EVENT_SELECT: &str = "SELECT e.id, e.tenant_id, e.ticket_id, e.kind, e.internal, e.actor_id,
        u.display_name AS actor_name, e.actor_staff, c.body, e.from_status, e.to_status,
        a.email AS assignee_email, e.created_at
   FROM ticket_events e
   LEFT JOIN users u ON u.id = e.actor_id
   LEFT JOIN ticket_comments c ON c.id = e.comment_id
   LEFT JOIN users a ON a.id = e.assignee_id";

/// Which tickets a list shows.
#[derive(Debug, Clone, Default)]
pub struct TicketFilter {
    /// Only tickets in this status.
    pub status: Option<String>,
    /// Only tickets this user opened or is the customer of (tenant lists),
    /// or is assigned to (the desk).
    pub mine: Option<UserId>,
    pub limit: i64,
}

/// A ticket to open.
#[derive(Debug, Clone)]
pub struct NewTicket<'a> {
    pub subject: &'a str,
    pub body: &'a str,
    pub priority: &'a str,
    /// Domain-bound: the tenant's zone it concerns. Without one the ticket
    /// is bound to the customer who opens it.
    pub zone: Option<ZoneId>,
    pub change_request: Option<ChangeRequestId>,
    pub opened_by: UserId,
    pub now: DateTime<Utc>,
}

/// A ticket just opened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OpenedTicket {
    pub id: TicketId,
    pub number: i64,
    pub event_id: i64,
}

/// A comment to add.
#[derive(Debug, Clone)]
pub struct NewComment<'a> {
    pub author: UserId,
    /// Written as the platform's staff.
    pub staff: bool,
    pub body: &'a str,
    /// An internal note (staff only).
    pub internal: bool,
    pub now: DateTime<Utc>,
}

/// A status move to make.
#[derive(Debug, Clone, Copy)]
pub struct StatusMove<'a> {
    pub to: &'a str,
    pub actor: UserId,
    /// Made as the platform's staff.
    pub staff: bool,
    pub now: DateTime<Utc>,
}

/// What the caller decided, looking at the ticket's status under the lock.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Go ahead; for a comment, also move the ticket to this status.
    Allow(Option<String>),
    /// Refused: nothing is written.
    Refuse,
}

/// What a write did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TicketChange {
    /// Written: the ticket's number, the status before and after, the new event ids.
    Done {
        number: i64,
        from: String,
        to: String,
        event_ids: Vec<i64>,
    },
    /// Refused by the decision; the ticket's status is `status`.
    Refused { status: String },
}

/// A ticket event announced by a notification.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TicketNotice {
    pub ticket: TicketId,
    pub event_id: i64,
}

impl TicketNotice {
    /// Reads a notification's payload (`<ticket id> <event id>`).
    pub fn parse(payload: &str) -> Option<TicketNotice> {
        let (ticket, id) = payload.split_once(' ')?;
        Some(TicketNotice {
            ticket: ticket.parse().ok()?,
            event_id: id.parse().ok()?,
        })
    }
}

/// What the listener heard.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Heard {
    /// An event was written.
    Event(TicketNotice),
    /// The connection was lost and is back: notices sent meanwhile are
    /// lost; read what was missed from the table.
    Reconnected,
    /// A notification that is not a ticket event's (ignored).
    Other,
}

/// The one connection of a process that listens for ticket events.
#[derive(Debug)]
pub struct TicketListener {
    listener: PgListener,
}

impl TicketListener {
    /// Waits for the next notification (re-connecting when the connection
    /// was lost, and saying so).
    pub async fn recv(&mut self) -> Result<Heard, StoreError> {
        let notification: Option<PgNotification> = self.listener.try_recv().await?;
        Ok(match notification {
            None => Heard::Reconnected,
            Some(n) => TicketNotice::parse(n.payload()).map_or(Heard::Other, Heard::Event),
        })
    }
}

type Tx<'c> = sqlx::Transaction<'c, sqlx::Postgres>;

/// Writes one event of a locked ticket and announces it on commit.
#[allow(clippy::too_many_arguments)]
async fn insert_event(
    tx: &mut Tx<'_>,
    tenant: TenantId,
    ticket: TicketId,
    kind: &str,
    internal: bool,
    actor: UserId,
    staff: bool,
    comment: Option<Uuid>,
    status: (Option<&str>, Option<&str>),
    assignee: Option<UserId>,
    now: DateTime<Utc>,
) -> Result<i64, StoreError> {
    let id: i64 = sqlx::query_scalar(
        "INSERT INTO ticket_events (tenant_id, ticket_id, kind, internal, actor_id, actor_staff,
                                    comment_id, from_status, to_status, assignee_id, created_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) RETURNING id",
    )
    .bind(tenant)
    .bind(ticket)
    .bind(kind)
    .bind(internal)
    .bind(actor)
    .bind(staff)
    .bind(comment)
    .bind(status.0)
    .bind(status.1)
    .bind(assignee)
    .bind(now)
    .fetch_one(&mut **tx)
    .await?;
    sqlx::query("SELECT pg_notify($1, $2)")
        .bind(TICKET_EVENTS_CHANNEL)
        .bind(format!("{ticket} {id}"))
        .execute(&mut **tx)
        .await?;
    Ok(id)
}

/// Locks a ticket of the tenant (or of any tenant for the desk) and reads
/// its tenant, number and status.
async fn lock_ticket(
    tx: &mut Tx<'_>,
    tenant: Option<TenantId>,
    ticket: TicketId,
) -> Result<(TenantId, i64, String), StoreError> {
    Ok(sqlx::query_as(
        "SELECT tenant_id, number, status FROM tickets
          WHERE id = $1 AND ($2::uuid IS NULL OR tenant_id = $2) FOR UPDATE",
    )
    .bind(ticket)
    .bind(tenant)
    .fetch_one(&mut **tx)
    .await?)
}

async fn insert_comment(
    tx: &mut Tx<'_>,
    tenant: TenantId,
    ticket: TicketId,
    author: UserId,
    body: &str,
    internal: bool,
    now: DateTime<Utc>,
) -> Result<Uuid, StoreError> {
    let id = Uuid::new_v4();
    sqlx::query(
        "INSERT INTO ticket_comments (id, tenant_id, ticket_id, author_id, body, internal, created_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(id)
    .bind(tenant)
    .bind(ticket)
    .bind(author)
    .bind(body)
    .bind(internal)
    .bind(now)
    .execute(&mut **tx)
    .await?;
    Ok(id)
}

async fn set_status(
    tx: &mut Tx<'_>,
    ticket: TicketId,
    status: &str,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    sqlx::query("UPDATE tickets SET status = $2, updated_at = $3 WHERE id = $1")
        .bind(ticket)
        .bind(status)
        .bind(now)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

impl Store {
    /// Opens a ticket with the next number of the tenant (a counter row
    /// updated in the same transaction: concurrent openings wait for each
    /// other and never share a number). The zone and the change request
    /// must be the tenant's (not found otherwise). Records `audit` with the
    /// ticket as target and its number.
    pub async fn open_ticket(
        &self,
        tenant: TenantId,
        new: &NewTicket<'_>,
        audit: AuditEvent,
    ) -> Result<OpenedTicket, StoreError> {
        let mut tx = self.pool.begin().await?;
        let number: i64 = sqlx::query_scalar(
            "INSERT INTO ticket_counters (tenant_id, last_number) VALUES ($1, 1)
             ON CONFLICT (tenant_id) DO UPDATE SET last_number = ticket_counters.last_number + 1
             RETURNING last_number",
        )
        .bind(tenant)
        .fetch_one(&mut *tx)
        .await?;
        let domain: Option<String> = match new.zone {
            Some(zone) => Some(
                sqlx::query_scalar("SELECT zone_name FROM zones WHERE tenant_id = $1 AND id = $2")
                    .bind(tenant)
                    .bind(zone)
                    .fetch_one(&mut *tx)
                    .await?,
            ),
            None => None,
        };
        let customer = if new.zone.is_none() {
            Some(new.opened_by)
        } else {
            None
        };
        let id = TicketId::new();
        sqlx::query(
            "INSERT INTO tickets (id, tenant_id, number, subject, status, priority, domain, zone_id,
                                  change_request_id, customer_user_id, created_by, created_at, updated_at)
             VALUES ($1, $2, $3, $4, 'OPEN', $5, $6, $7, $8, $9, $10, $11, $11)",
        )
        .bind(id)
        .bind(tenant)
        .bind(number)
        .bind(new.subject)
        .bind(new.priority)
        .bind(&domain)
        .bind(new.zone)
        .bind(new.change_request)
        .bind(customer)
        .bind(new.opened_by)
        .bind(new.now)
        .execute(&mut *tx)
        .await?;
        let comment =
            insert_comment(&mut tx, tenant, id, new.opened_by, new.body, false, new.now).await?;
        let event_id = insert_event(
            &mut tx,
            tenant,
            id,
            "OPENED",
            false,
            new.opened_by,
            false,
            Some(comment),
            (None, Some("OPEN")),
            None,
            new.now,
        )
        .await?;
        let mut audit = audit
            .target("ticket", id)
            .meta("number", number)
            .meta("internal", false)
            .meta("priority", new.priority)
            .meta("domain_bound", domain.is_some());
        audit.tenant = Some(tenant);
        crate::audit::insert(&mut *tx, &audit).await?;
        tx.commit().await?;
        Ok(OpenedTicket {
            id,
            number,
            event_id,
        })
    }

    /// A ticket of the tenant; not found when it is another tenant's.
    pub async fn ticket(&self, tenant: TenantId, id: TicketId) -> Result<TicketRecord, StoreError> {
        Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "{TICKET_SELECT} WHERE t.id = $1 AND t.tenant_id = $2"
        )))
        .bind(id)
        .bind(tenant)
        .fetch_one(&self.pool)
        .await?)
    }

    /// A ticket of any tenant: for the platform's staff only.
    pub async fn desk_ticket(&self, id: TicketId) -> Result<TicketRecord, StoreError> {
        Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "{TICKET_SELECT} WHERE t.id = $1"
        )))
        .bind(id)
        .fetch_one(&self.pool)
        .await?)
    }

    /// The tenant's tickets, most recently updated first.
    pub async fn tickets(
        &self,
        tenant: TenantId,
        filter: &TicketFilter,
    ) -> Result<Vec<TicketRecord>, StoreError> {
        Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "{TICKET_SELECT}
              WHERE t.tenant_id = $1
                AND ($2::text IS NULL OR t.status = $2)
                AND ($3::uuid IS NULL OR t.created_by = $3 OR t.customer_user_id = $3)
              ORDER BY t.updated_at DESC, t.number DESC LIMIT $4"
        )))
        .bind(tenant)
        .bind(&filter.status)
        .bind(filter.mine)
        .bind(filter.limit.clamp(1, 1000))
        .fetch_all(&self.pool)
        .await?)
    }

    /// Every tenant's tickets (the support desk), most recently updated
    /// first; `mine` filters by assignee.
    pub async fn desk_tickets(
        &self,
        filter: &TicketFilter,
    ) -> Result<Vec<TicketRecord>, StoreError> {
        Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "{TICKET_SELECT}
              WHERE ($1::text IS NULL OR t.status = $1)
                AND ($2::uuid IS NULL OR t.assignee_id = $2)
              ORDER BY t.updated_at DESC, t.number DESC LIMIT $3"
        )))
        .bind(&filter.status)
        .bind(filter.mine)
        .bind(filter.limit.clamp(1, 1000))
        .fetch_all(&self.pool)
        .await?)
    }

    /// A ticket's events after `after` (0: all), oldest first; internal
    /// ones only when `with_internal`.
    pub async fn ticket_events(
        &self,
        ticket: TicketId,
        after: i64,
        with_internal: bool,
    ) -> Result<Vec<TicketEventRecord>, StoreError> {
        Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "{EVENT_SELECT} WHERE e.ticket_id = $1 AND e.id > $2 AND ($3 OR NOT e.internal)
              ORDER BY e.id"
        )))
        .bind(ticket)
        .bind(after)
        .bind(with_internal)
        .fetch_all(&self.pool)
        .await?)
    }

    /// One event of a ticket (the live hub reads each announced event once).
    pub async fn ticket_event(
        &self,
        ticket: TicketId,
        id: i64,
    ) -> Result<TicketEventRecord, StoreError> {
        Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "{EVENT_SELECT} WHERE e.ticket_id = $1 AND e.id = $2"
        )))
        .bind(ticket)
        .bind(id)
        .fetch_one(&self.pool)
        .await?)
    }

    /// Adds a comment (or, for staff, an internal note) to a ticket of
    /// `tenant` (any tenant's when `None`: the desk). `decide` sees the
    /// ticket's status under the lock and may refuse, or move the ticket
    /// (a customer's reply to a ticket waiting on them). Records `audit`
    /// with the ticket, its number and whether the comment is internal
    /// (never its body).
    pub async fn comment_on_ticket(
        &self,
        tenant: Option<TenantId>,
        ticket: TicketId,
        comment: &NewComment<'_>,
        decide: impl FnOnce(&str) -> Decision + Send,
        audit: AuditEvent,
    ) -> Result<TicketChange, StoreError> {
        let mut tx = self.pool.begin().await?;
        let (tenant, number, status) = lock_ticket(&mut tx, tenant, ticket).await?;
        let moved = match decide(&status) {
            Decision::Refuse => return Ok(TicketChange::Refused { status }),
            Decision::Allow(moved) => moved.filter(|to| *to != status),
        };
        let comment_id = insert_comment(
            &mut tx,
            tenant,
            ticket,
            comment.author,
            comment.body,
            comment.internal,
            comment.now,
        )
        .await?;
        let mut event_ids = vec![
            insert_event(
                &mut tx,
                tenant,
                ticket,
                "COMMENT",
                comment.internal,
                comment.author,
                comment.staff,
                Some(comment_id),
                (None, None),
                None,
                comment.now,
            )
            .await?,
        ];
        let to = moved.clone().unwrap_or_else(|| status.clone());
        if let Some(to) = &moved {
            set_status(&mut tx, ticket, to, comment.now).await?;
            event_ids.push(
                insert_event(
                    &mut tx,
                    tenant,
                    ticket,
                    "STATUS",
                    false,
                    comment.author,
                    comment.staff,
                    None,
                    (Some(&status), Some(to)),
                    None,
                    comment.now,
                )
                .await?,
            );
        } else {
            sqlx::query("UPDATE tickets SET updated_at = $2 WHERE id = $1")
                .bind(ticket)
                .bind(comment.now)
                .execute(&mut *tx)
                .await?;
        }
        let mut audit = audit
            .target("ticket", ticket)
            .meta("number", number)
            .meta("internal", comment.internal)
            .meta("staff", comment.staff);
        if moved.is_some() {
            audit = audit.meta("from", status.clone()).meta("to", to.clone());
        }
        audit.tenant = Some(tenant);
        crate::audit::insert(&mut *tx, &audit).await?;
        tx.commit().await?;
        Ok(TicketChange::Done {
            number,
            from: status,
            to,
            event_ids,
        })
    }

    /// Moves a ticket of `tenant` (any tenant's when `None`) to `to` when
    /// `allowed(current status)`; records `audit` (`from`, `to`, number).
    pub async fn transition_ticket(
        &self,
        tenant: Option<TenantId>,
        ticket: TicketId,
        change: &StatusMove<'_>,
        allowed: impl FnOnce(&str) -> bool + Send,
        audit: AuditEvent,
    ) -> Result<TicketChange, StoreError> {
        let StatusMove {
            to,
            actor,
            staff,
            now,
        } = *change;
        let mut tx = self.pool.begin().await?;
        let (tenant, number, status) = lock_ticket(&mut tx, tenant, ticket).await?;
        if !allowed(&status) {
            return Ok(TicketChange::Refused { status });
        }
        set_status(&mut tx, ticket, to, now).await?;
        let id = insert_event(
            &mut tx,
            tenant,
            ticket,
            "STATUS",
            false,
            actor,
            staff,
            None,
            (Some(&status), Some(to)),
            None,
            now,
        )
        .await?;
        let mut audit = audit
            .target("ticket", ticket)
            .meta("number", number)
            .meta("internal", false)
            .meta("staff", staff)
            .meta("from", status.clone())
            .meta("to", to);
        audit.tenant = Some(tenant);
        crate::audit::insert(&mut *tx, &audit).await?;
        tx.commit().await?;
        Ok(TicketChange::Done {
            number,
            from: status,
            to: to.to_owned(),
            event_ids: vec![id],
        })
    }

    /// Assigns a ticket (any tenant's) to one of the platform's staff, or
    /// to nobody; not found when `assignee` is not staff. The event is
    /// staff-only (internal): the tenant sees who answers, not the desk's
    /// routing.
    pub async fn assign_ticket(
        &self,
        ticket: TicketId,
        assignee: Option<UserId>,
        actor: UserId,
        now: DateTime<Utc>,
        audit: AuditEvent,
    ) -> Result<TicketChange, StoreError> {
        let mut tx = self.pool.begin().await?;
        let (tenant, number, status) = lock_ticket(&mut tx, None, ticket).await?;
        if let Some(user) = assignee {
            let staff: bool = sqlx::query_scalar(
                "SELECT platform_admin FROM users WHERE id = $1 AND disabled_at IS NULL",
            )
            .bind(user)
            .fetch_one(&mut *tx)
            .await?;
            if !staff {
                return Err(StoreError::NotFound);
            }
        }
        sqlx::query("UPDATE tickets SET assignee_id = $2, updated_at = $3 WHERE id = $1")
            .bind(ticket)
            .bind(assignee)
            .bind(now)
            .execute(&mut *tx)
            .await?;
        let id = insert_event(
            &mut tx,
            tenant,
            ticket,
            "ASSIGNED",
            true,
            actor,
            true,
            None,
            (None, None),
            assignee,
            now,
        )
        .await?;
        let mut audit = audit
            .target("ticket", ticket)
            .meta("number", number)
            .meta("internal", true)
            .meta("staff", true)
            .meta("assigned", assignee.is_some());
        if let Some(user) = assignee {
            audit = audit.meta("assignee", user.to_string());
        }
        audit.tenant = Some(tenant);
        crate::audit::insert(&mut *tx, &audit).await?;
        tx.commit().await?;
        Ok(TicketChange::Done {
            number,
            from: status.clone(),
            to: status,
            event_ids: vec![id],
        })
    }

    /// The platform's staff (who a ticket can be assigned to): id and e-mail.
    pub async fn staff_users(&self) -> Result<Vec<(UserId, String)>, StoreError> {
        Ok(sqlx::query_as(
            "SELECT id, email FROM users WHERE platform_admin AND disabled_at IS NULL ORDER BY email",
        )
        .fetch_all(&self.pool)
        .await?)
    }

    /// Whether the session may still watch a ticket's stream at `now`: it
    /// exists and has not expired, its user is not disabled, and either
    /// (`tenant` given) the session is still in that tenant and the user
    /// still a member of it, or (`None`) the user is still staff.
    pub async fn ticket_viewer_allowed(
        &self,
        session: Uuid,
        tenant: Option<TenantId>,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        Ok(sqlx::query_scalar(
            "SELECT EXISTS (
               SELECT 1 FROM sessions s JOIN users u ON u.id = s.user_id
                WHERE s.id = $1 AND s.expires_at > $2 AND u.disabled_at IS NULL
                  AND CASE WHEN $3::uuid IS NULL THEN u.platform_admin
                           ELSE s.tenant_id = $3 AND EXISTS (
                                  SELECT 1 FROM memberships m
                                   WHERE m.tenant_id = $3 AND m.user_id = s.user_id)
                      END)",
        )
        .bind(session)
        .bind(now)
        .bind(tenant)
        .fetch_one(&self.pool)
        .await?)
    }

    /// The connection that listens for ticket events (one per process).
    pub async fn ticket_listener(&self) -> Result<TicketListener, StoreError> {
        let mut listener = PgListener::connect_with(&self.pool).await?;
        listener.listen(TICKET_EVENTS_CHANNEL).await?;
        Ok(TicketListener { listener })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn notices_read_their_payload_and_nothing_else() {
        let ticket = TicketId::new();
        assert_eq!(
            TicketNotice::parse(&format!("{ticket} 42")),
            Some(TicketNotice {
                ticket,
                event_id: 42
            })
        );
        assert_eq!(TicketNotice::parse("42"), None);
        assert_eq!(TicketNotice::parse(&format!("{ticket} x")), None);
        assert_eq!(TicketNotice::parse("nope 1"), None);
    }
}
