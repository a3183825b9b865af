//! The one writer of audit events: actor, tenant, action, target, IP, user
//! agent, structured metadata, time. Metadata is built from plain values only;
//! a `SecretString` has no conversion into it, so a secret cannot be recorded.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::Store;
use crate::error::StoreError;
use crate::ids::{TenantId, UserId};

/// Who did it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Actor {
    User(UserId),
    /// The operator, with its identity (`operator`, a service account, a commit author).
    Operator(String),
    System,
    Anonymous,
}

impl Actor {
    fn kind(&self) -> &'static str {
        match self {
            Actor::User(_) => "user",
            Actor::Operator(_) => "operator",
            Actor::System => "system",
            Actor::Anonymous => "anonymous",
        }
    }

    fn id(&self) -> String {
        match self {
            Actor::User(id) => id.to_string(),
            Actor::Operator(name) => name.clone(),
            Actor::System => "system".into(),
            Actor::Anonymous => "anonymous".into(),
        }
    }
}

/// A metadata value: text, numbers, booleans, lists and maps of them.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum AuditValue {
    Text(String),
    Int(i64),
    Bool(bool),
    List(Vec<AuditValue>),
    Map(BTreeMap<String, AuditValue>),
}

impl From<&str> for AuditValue {
    fn from(v: &str) -> Self {
        AuditValue::Text(v.to_owned())
    }
}
impl From<String> for AuditValue {
    fn from(v: String) -> Self {
        AuditValue::Text(v)
    }
}
impl From<i64> for AuditValue {
    fn from(v: i64) -> Self {
        AuditValue::Int(v)
    }
}
impl From<usize> for AuditValue {
    fn from(v: usize) -> Self {
        AuditValue::Int(i64::try_from(v).unwrap_or(i64::MAX))
    }
}
impl From<bool> for AuditValue {
    fn from(v: bool) -> Self {
        AuditValue::Bool(v)
    }
}
impl<T: Into<AuditValue>> From<Vec<T>> for AuditValue {
    fn from(v: Vec<T>) -> Self {
        AuditValue::List(v.into_iter().map(Into::into).collect())
    }
}

/// Structured metadata of an event.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct AuditMetadata(BTreeMap<String, AuditValue>);

impl AuditMetadata {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn with(mut self, key: &str, value: impl Into<AuditValue>) -> Self {
        self.0.insert(key.to_owned(), value.into());
        self
    }

    pub fn get(&self, key: &str) -> Option<&AuditValue> {
        self.0.get(key)
    }
}

/// An event to record.
#[derive(Debug, Clone)]
pub struct AuditEvent {
    pub tenant: Option<TenantId>,
    pub actor: Actor,
    pub action: String,
    pub target_kind: Option<String>,
    pub target_id: Option<String>,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
    pub metadata: AuditMetadata,
}

impl AuditEvent {
    pub fn new(tenant: Option<TenantId>, actor: Actor, action: &str) -> Self {
        Self {
            tenant,
            actor,
            action: action.to_owned(),
            target_kind: None,
            target_id: None,
            ip: None,
            user_agent: None,
            metadata: AuditMetadata::default(),
        }
    }

    pub fn target(mut self, kind: &str, id: impl ToString) -> Self {
        self.target_kind = Some(kind.to_owned());
        self.target_id = Some(id.to_string());
        self
    }

    pub fn from_client(mut self, ip: Option<String>, user_agent: Option<String>) -> Self {
        self.ip = ip;
        self.user_agent = user_agent;
        self
    }

    pub fn meta(mut self, key: &str, value: impl Into<AuditValue>) -> Self {
        self.metadata = self.metadata.with(key, value);
        self
    }
}

/// A recorded event.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct AuditRecord {
    pub id: i64,
    pub tenant_id: Option<TenantId>,
    pub actor_kind: String,
    pub actor_id: String,
    pub action: String,
    pub target_kind: Option<String>,
    pub target_id: Option<String>,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
    pub metadata: serde_json::Value,
    pub created_at: DateTime<Utc>,
}

/// Records an event with any executor (the pool, or a transaction it belongs to).
pub(crate) async fn insert<'e, E: sqlx::PgExecutor<'e>>(
    executor: E,
    event: &AuditEvent,
) -> Result<i64, StoreError> {
    let metadata =
        serde_json::to_value(&event.metadata).map_err(|e| StoreError::Database(e.to_string()))?;
    let id: i64 = sqlx::query_scalar(
        "INSERT INTO audit_events (tenant_id, actor_kind, actor_id, action, target_kind, target_id, ip, user_agent, metadata)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING id",
    )
    .bind(event.tenant)
    .bind(event.actor.kind())
    .bind(event.actor.id())
    .bind(&event.action)
    .bind(&event.target_kind)
    .bind(&event.target_id)
    .bind(&event.ip)
    .bind(&event.user_agent)
    .bind(metadata)
    .fetch_one(executor)
    .await?;
    tracing::info!(audit_id = id, action = %event.action, "audit event");
    Ok(id)
}

/// Filters for reading a tenant's audit log.
#[derive(Debug, Clone, Default)]
pub struct AuditFilter {
    pub action: Option<String>,
    pub actor_id: Option<String>,
    pub target_id: Option<String>,
    pub limit: i64,
}

/// How an action is matched: the whole name, or names starting with a prefix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ActionMatch {
    Exact(String),
    Prefix(String),
}

/// Where a page of the audit log starts: just after (older than) the event
/// with this time and id. The log is ordered by (time, id), newest first, so
/// events recorded while someone pages never shift the pages already shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AuditCursor {
    pub created_at: DateTime<Utc>,
    pub id: i64,
}

/// What the audit viewer asks for: filters, the cursor, a page size.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuditQuery {
    pub actor_id: Option<String>,
    pub action: Option<ActionMatch>,
    pub target_kind: Option<String>,
    pub target_id: Option<String>,
    /// Events at or after this moment.
    pub from: Option<DateTime<Utc>>,
    /// Events before this moment.
    pub to: Option<DateTime<Utc>>,
    pub before: Option<AuditCursor>,
    /// Page size, clamped to 1..=[`AUDIT_PAGE_MAX`].
    pub limit: i64,
}

/// The largest page of audit events one query returns.
pub const AUDIT_PAGE_MAX: i64 = 200;

/// An event as the viewer shows it: the e-mail addresses of actor and
/// target when they are users who are members of the event's tenant now.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct AuditEntry {
    #[sqlx(flatten)]
    pub record: AuditRecord,
    pub actor_email: Option<String>,
    pub target_email: Option<String>,
}

/// One page of the audit log and the cursor of the next (older) page.
#[derive(Debug, Clone, PartialEq)]
pub struct AuditPage {
    pub entries: Vec<AuditEntry>,
    pub next: Option<AuditCursor>,
}

/// `prefix` as a LIKE pattern matching names that start with it.
fn like_prefix(prefix: &str) -> String {
    let mut pattern = String::with_capacity(prefix.len() + 1);
    for c in prefix.chars() {
        if matches!(c, '%' | '_' | '\\') {
            pattern.push('\\');
        }
        pattern.push(c);
    }
    pattern.push('%');
    pattern
}

impl Store {
    /// Records an event.
    pub async fn audit(&self, event: AuditEvent) -> Result<i64, StoreError> {
        insert(&self.pool, &event).await
    }

    /// A tenant's audit events, newest first.
    pub async fn audit_events(
        &self,
        tenant: TenantId,
        filter: &AuditFilter,
    ) -> Result<Vec<AuditRecord>, StoreError> {
        let limit = if filter.limit <= 0 {
            100
        } else {
            filter.limit.min(1000)
        };
        Ok(sqlx::query_as(
            "SELECT id, tenant_id, actor_kind, actor_id, action, target_kind, target_id, ip, user_agent, metadata, created_at
             FROM audit_events
             WHERE tenant_id = $1
               AND ($2::text IS NULL OR action = $2)
               AND ($3::text IS NULL OR actor_id = $3)
               AND ($4::text IS NULL OR target_id = $4)
             ORDER BY created_at DESC, id DESC LIMIT $5",
        )
        .bind(tenant)
        .bind(&filter.action)
        .bind(&filter.actor_id)
        .bind(&filter.target_id)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?)
    }

    /// One page of a tenant's audit log, newest first, by keyset: only
    /// events of `tenant` (never platform-wide ones, never another
    /// tenant's), filtered, older than the cursor.
    pub async fn audit_page(
        &self,
        tenant: TenantId,
        query: &AuditQuery,
    ) -> Result<AuditPage, StoreError> {
        let limit = query.limit.clamp(1, AUDIT_PAGE_MAX);
        // Only the conditions asked for go into the statement, so each is an
        // index condition (the keyset one above all), whatever plan is cached.
        let mut sql = sqlx::QueryBuilder::<sqlx::Postgres>::new(
            "SELECT a.id, a.tenant_id, a.actor_kind, a.actor_id, a.action, a.target_kind, a.target_id,
                    a.ip, a.user_agent, a.metadata, a.created_at,
                    actor_user.email AS actor_email, target_user.email AS target_email
             FROM audit_events a
             LEFT JOIN memberships actor_member
               ON a.actor_kind = 'user' AND actor_member.tenant_id = a.tenant_id
              AND actor_member.user_id::text = a.actor_id
             LEFT JOIN users actor_user ON actor_user.id = actor_member.user_id
             LEFT JOIN memberships target_member
               ON a.target_kind = 'user' AND target_member.tenant_id = a.tenant_id
              AND target_member.user_id::text = a.target_id
             LEFT JOIN users target_user ON target_user.id = target_member.user_id
             WHERE a.tenant_id = ",
        );
        sql.push_bind(tenant);
        if let Some(actor) = &query.actor_id {
            sql.push(" AND a.actor_id = ").push_bind(actor.clone());
        }
        match &query.action {
            Some(ActionMatch::Exact(a)) => {
                sql.push(" AND a.action = ").push_bind(a.clone());
            }
            Some(ActionMatch::Prefix(p)) => {
                sql.push(" AND a.action LIKE ").push_bind(like_prefix(p));
            }
            None => {}
        }
        if let Some(kind) = &query.target_kind {
            sql.push(" AND a.target_kind = ").push_bind(kind.clone());
        }
        if let Some(id) = &query.target_id {
            sql.push(" AND a.target_id = ").push_bind(id.clone());
        }
        if let Some(from) = query.from {
            sql.push(" AND a.created_at >= ").push_bind(from);
        }
        if let Some(to) = query.to {
            sql.push(" AND a.created_at < ").push_bind(to);
        }
        if let Some(before) = query.before {
            sql.push(" AND (a.created_at, a.id) < (")
                .push_bind(before.created_at)
                .push(", ")
                .push_bind(before.id)
                .push(")");
        }
        sql.push(" ORDER BY a.created_at DESC, a.id DESC LIMIT ")
            .push_bind(limit + 1);
        let mut entries: Vec<AuditEntry> = sql.build_query_as().fetch_all(&self.pool).await?;
        let more = entries.len() > usize::try_from(limit).unwrap_or(usize::MAX);
        entries.truncate(usize::try_from(limit).unwrap_or(usize::MAX));
        let next = more.then(|| entries.last()).flatten().map(|e| AuditCursor {
            created_at: e.record.created_at,
            id: e.record.id,
        });
        Ok(AuditPage { entries, next })
    }

    /// The actions recorded in a tenant's audit log, sorted (for the
    /// viewer's suggestions).
    pub async fn audit_actions(&self, tenant: TenantId) -> Result<Vec<String>, StoreError> {
        Ok(sqlx::query_scalar(
            "SELECT DISTINCT action FROM audit_events WHERE tenant_id = $1 ORDER BY action",
        )
        .bind(tenant)
        .fetch_all(&self.pool)
        .await?)
    }

    /// The id of the tenant's member with this e-mail address (compared
    /// without case), if there is one. Only members of `tenant` are found.
    pub async fn member_id_by_email(
        &self,
        tenant: TenantId,
        email: &str,
    ) -> Result<Option<UserId>, StoreError> {
        Ok(sqlx::query_scalar(
            "SELECT u.id FROM users u JOIN memberships m ON m.user_id = u.id
             WHERE m.tenant_id = $1 AND lower(u.email) = lower($2)",
        )
        .bind(tenant)
        .bind(email)
        .fetch_optional(&self.pool)
        .await?)
    }
}
