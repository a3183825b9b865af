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
}
