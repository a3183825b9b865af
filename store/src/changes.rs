//! DNS history: change requests with their plan, digest and state; approvals
//! with their verification result; one `dns_changes` row per executed
//! record-set operation with its outcome.

use chrono::{DateTime, Utc};

use crate::Store;
use crate::error::StoreError;
use crate::ids::{ApprovalId, ChangeRequestId, SnapshotId, TenantId, ZoneId};

pub use zentralink_model::reconcile::RequestState;

/// What a change request asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RequestKind {
    /// The gated part of the declared plan.
    Declared,
    /// A rollback to a snapshot (`rollback_to`).
    Rollback,
    /// A change to a tenant's Tenant, TenantPolicy or ProviderConnections.
    Config,
}

impl RequestKind {
    pub fn as_str(self) -> &'static str {
        match self {
            RequestKind::Declared => "declared",
            RequestKind::Rollback => "rollback",
            RequestKind::Config => "config",
        }
    }
}

/// A change request to record.
#[derive(Debug, Clone)]
pub struct NewChangeRequest<'a> {
    /// The zone (none for a configuration change request).
    pub zone: Option<ZoneId>,
    pub name: &'a str,
    pub plan: serde_json::Value,
    pub plan_digest: &'a str,
    pub requester: &'a str,
    pub reason: Option<&'a str>,
    pub rollback_to: Option<SnapshotId>,
    pub expires_at: DateTime<Utc>,
    pub kind: RequestKind,
    /// The source revision the plan was made from.
    pub revision: Option<&'a str>,
}

#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct ChangeRequestRecord {
    pub id: ChangeRequestId,
    pub tenant_id: TenantId,
    pub zone_id: Option<ZoneId>,
    pub name: String,
    pub plan: serde_json::Value,
    pub plan_digest: String,
    pub state: String,
    pub requester: String,
    pub reason: Option<String>,
    pub rollback_to: Option<SnapshotId>,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    pub decided_at: Option<DateTime<Utc>>,
    pub applied_at: Option<DateTime<Utc>>,
    pub kind: String,
    pub revision: Option<String>,
    pub message: Option<String>,
    /// A rollback asked from the command line: its requester's signature.
    pub requester_signature: Option<String>,
}

impl ChangeRequestRecord {
    pub fn state(&self) -> Result<RequestState, StoreError> {
        RequestState::parse(&self.state)
            .ok_or_else(|| StoreError::Corrupt(format!("change request state {:?}", self.state)))
    }
}

const CR_COLUMNS: &str = "id, tenant_id, zone_id, name, plan, plan_digest, state, requester, reason, rollback_to, created_at, expires_at, decided_at, applied_at, kind, revision, message, requester_signature";

/// An approval to record, after verification.
#[derive(Debug, Clone)]
pub struct NewApproval<'a> {
    pub change_request: ChangeRequestId,
    pub approver: &'a str,
    pub decision: &'a str,
    pub plan_digest: &'a str,
    pub signature: &'a str,
    pub accepted: bool,
    /// Why it was accepted or refused.
    pub verification: &'a str,
}

#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct ApprovalRecord {
    pub id: ApprovalId,
    pub tenant_id: TenantId,
    pub change_request_id: ChangeRequestId,
    pub approver: String,
    pub decision: String,
    pub plan_digest: String,
    pub signature: String,
    pub accepted: bool,
    pub verification: String,
    pub created_at: DateTime<Utc>,
    /// The refusal's code (`UnknownKey`, `DigestMismatch`, ...) when refused.
    pub refusal: Option<String>,
}

/// The outcome of one executed record-set operation.
#[derive(Debug, Clone, PartialEq)]
pub struct ChangeOutcome {
    pub op: String,
    pub name: String,
    pub record_type: String,
    pub before: Option<serde_json::Value>,
    pub after: Option<serde_json::Value>,
    /// `None` when applied; the provider's message when it failed.
    pub error: Option<String>,
}

/// One executed batch.
#[derive(Debug, Clone)]
pub struct ExecutedBatch<'a> {
    pub zone: ZoneId,
    pub change_request: Option<ChangeRequestId>,
    pub plan_digest: &'a str,
    pub pre_snapshot: Option<SnapshotId>,
    pub post_snapshot: Option<SnapshotId>,
    pub outcomes: &'a [ChangeOutcome],
}

#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct DnsChangeRecord {
    pub id: i64,
    pub tenant_id: TenantId,
    pub zone_id: ZoneId,
    pub change_request_id: Option<ChangeRequestId>,
    pub plan_digest: String,
    pub op: String,
    pub name: String,
    pub record_type: String,
    pub before: Option<serde_json::Value>,
    pub after: Option<serde_json::Value>,
    pub outcome: String,
    pub error: Option<String>,
    pub pre_snapshot_id: Option<SnapshotId>,
    pub post_snapshot_id: Option<SnapshotId>,
    pub created_at: DateTime<Utc>,
}

/// One line of a zone's history: an operation with its outcome, where it came from and who asked.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct HistoryRecord {
    pub id: i64,
    pub op: String,
    pub name: String,
    pub record_type: String,
    pub before: Option<serde_json::Value>,
    pub after: Option<serde_json::Value>,
    pub outcome: String,
    pub error: Option<String>,
    pub revision: Option<String>,
    pub requester: Option<String>,
    pub request: Option<String>,
    pub plan_digest: String,
    pub created_at: DateTime<Utc>,
}

impl Store {
    /// Records a change request, or returns the existing one of the same
    /// (deterministic) name: a gated plan keeps one request while it waits.
    pub async fn create_change_request(
        &self,
        tenant: TenantId,
        r: &NewChangeRequest<'_>,
    ) -> Result<ChangeRequestId, StoreError> {
        let inserted: Option<ChangeRequestId> = sqlx::query_scalar(
            "INSERT INTO dns_change_requests (id, tenant_id, zone_id, name, plan, plan_digest, state, requester, reason, rollback_to, expires_at, kind, revision)
             VALUES ($1, $2, $3, $4, $5, $6, 'Pending', $7, $8, $9, $10, $11, $12)
             ON CONFLICT (tenant_id, name) DO NOTHING RETURNING id",
        )
        .bind(ChangeRequestId::new())
        .bind(tenant)
        .bind(r.zone)
        .bind(r.name)
        .bind(&r.plan)
        .bind(r.plan_digest)
        .bind(r.requester)
        .bind(r.reason)
        .bind(r.rollback_to)
        .bind(r.expires_at)
        .bind(r.kind.as_str())
        .bind(r.revision)
        .fetch_optional(&self.pool)
        .await?;
        match inserted {
            Some(id) => Ok(id),
            None => {
                // The name is taken: the same open request (asked twice) is fine,
                // anything else is a conflict, never a silent reuse of an old request.
                let existing = self.change_request_by_name(tenant, r.name).await?;
                if existing.plan_digest == r.plan_digest && existing.state()?.is_open() {
                    Ok(existing.id)
                } else {
                    Err(StoreError::Conflict(format!(
                        "change request {} exists already ({}, digest {})",
                        existing.name, existing.state, existing.plan_digest
                    )))
                }
            }
        }
    }

    pub async fn change_request(
        &self,
        tenant: TenantId,
        id: ChangeRequestId,
    ) -> Result<ChangeRequestRecord, StoreError> {
        Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {CR_COLUMNS} FROM dns_change_requests WHERE tenant_id = $1 AND id = $2"
        )))
        .bind(tenant)
        .bind(id)
        .fetch_one(&self.pool)
        .await?)
    }

    pub async fn change_request_by_name(
        &self,
        tenant: TenantId,
        name: &str,
    ) -> Result<ChangeRequestRecord, StoreError> {
        Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {CR_COLUMNS} FROM dns_change_requests WHERE tenant_id = $1 AND name = $2"
        )))
        .bind(tenant)
        .bind(name)
        .fetch_one(&self.pool)
        .await?)
    }

    /// Change requests of this name in any tenant (the CLI's way in, when
    /// only the name is known; callers then work within the row's tenant).
    pub async fn change_requests_named(
        &self,
        name: &str,
    ) -> Result<Vec<ChangeRequestRecord>, StoreError> {
        Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {CR_COLUMNS} FROM dns_change_requests WHERE name = $1 ORDER BY created_at"
        )))
        .bind(name)
        .fetch_all(&self.pool)
        .await?)
    }

    /// A zone's change requests, newest first.
    pub async fn change_requests(
        &self,
        tenant: TenantId,
        zone: ZoneId,
    ) -> Result<Vec<ChangeRequestRecord>, StoreError> {
        Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {CR_COLUMNS} FROM dns_change_requests WHERE tenant_id = $1 AND zone_id = $2 ORDER BY created_at DESC, id"
        )))
        .bind(tenant)
        .bind(zone)
        .fetch_all(&self.pool)
        .await?)
    }

    /// Moves a request from `from` to `to`. Fails with a conflict when the
    /// request is no longer in `from` (someone else moved it) or the move is not allowed.
    pub async fn transition_change_request(
        &self,
        tenant: TenantId,
        id: ChangeRequestId,
        from: RequestState,
        to: RequestState,
    ) -> Result<(), StoreError> {
        self.transition_change_request_with(tenant, id, from, to, None)
            .await
    }

    /// [`Store::transition_change_request`], recording why (`message`).
    pub async fn transition_change_request_with(
        &self,
        tenant: TenantId,
        id: ChangeRequestId,
        from: RequestState,
        to: RequestState,
        message: Option<&str>,
    ) -> Result<(), StoreError> {
        if !from.may_become(to) {
            return Err(StoreError::Conflict(format!(
                "a change request cannot go from {} to {}",
                from.as_str(),
                to.as_str()
            )));
        }
        let done = sqlx::query(
            "UPDATE dns_change_requests SET state = $4,
                decided_at = CASE WHEN $4 IN ('Approved','Rejected','Superseded','Expired') THEN now() ELSE decided_at END,
                applied_at = CASE WHEN $4 IN ('Applied','Failed') THEN now() ELSE applied_at END,
                message = COALESCE($5, message)
             WHERE tenant_id = $1 AND id = $2 AND state = $3",
        )
        .bind(tenant)
        .bind(id)
        .bind(from.as_str())
        .bind(to.as_str())
        .bind(message)
        .execute(&self.pool)
        .await?;
        if done.rows_affected() == 0 {
            // Either another tenant's request (not found) or no longer in `from`.
            let current = self.change_request(tenant, id).await?;
            return Err(StoreError::Conflict(format!(
                "change request {} is {}, not {}",
                current.name,
                current.state,
                from.as_str()
            )));
        }
        Ok(())
    }

    /// A zone's open requests (Pending, Approved, Executing), oldest first.
    pub async fn open_change_requests(
        &self,
        tenant: TenantId,
        zone: ZoneId,
    ) -> Result<Vec<ChangeRequestRecord>, StoreError> {
        Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {CR_COLUMNS} FROM dns_change_requests WHERE tenant_id = $1 AND zone_id = $2
               AND state IN ('Pending','Approved','Executing') ORDER BY created_at, id"
        )))
        .bind(tenant)
        .bind(zone)
        .fetch_all(&self.pool)
        .await?)
    }

    /// A tenant's open configuration change requests.
    pub async fn open_config_requests(
        &self,
        tenant: TenantId,
    ) -> Result<Vec<ChangeRequestRecord>, StoreError> {
        Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {CR_COLUMNS} FROM dns_change_requests WHERE tenant_id = $1 AND kind = 'config'
               AND state IN ('Pending','Approved','Executing') ORDER BY created_at, id"
        )))
        .bind(tenant)
        .fetch_all(&self.pool)
        .await?)
    }

    /// A tenant's configuration change requests, newest first.
    pub async fn config_requests(
        &self,
        tenant: TenantId,
    ) -> Result<Vec<ChangeRequestRecord>, StoreError> {
        Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {CR_COLUMNS} FROM dns_change_requests WHERE tenant_id = $1 AND kind = 'config'
             ORDER BY created_at DESC, id LIMIT 64"
        )))
        .bind(tenant)
        .fetch_all(&self.pool)
        .await?)
    }

    /// Records the requester's signature of a request (a rollback asked from the CLI).
    pub async fn set_requester_signature(
        &self,
        tenant: TenantId,
        request: ChangeRequestId,
        signature: &str,
    ) -> Result<(), StoreError> {
        sqlx::query("UPDATE dns_change_requests SET requester_signature = $3 WHERE tenant_id = $1 AND id = $2")
            .bind(tenant)
            .bind(request)
            .bind(signature)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Every open request of every tenant, by zone (for a pass over many zones).
    pub async fn all_open_change_requests(&self) -> Result<Vec<ChangeRequestRecord>, StoreError> {
        Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {CR_COLUMNS} FROM dns_change_requests
              WHERE state IN ('Pending','Approved','Executing') ORDER BY created_at, id"
        )))
        .fetch_all(&self.pool)
        .await?)
    }

    /// Marks a zone's pending requests superseded, except the one with `keep_digest`.
    pub async fn supersede_pending(
        &self,
        tenant: TenantId,
        zone: ZoneId,
        keep_digest: Option<&str>,
    ) -> Result<u64, StoreError> {
        let done = sqlx::query(
            "UPDATE dns_change_requests SET state = 'Superseded', decided_at = now()
             WHERE tenant_id = $1 AND zone_id = $2 AND state IN ('Pending','Approved') AND ($3::text IS NULL OR plan_digest <> $3)",
        )
        .bind(tenant)
        .bind(zone)
        .bind(keep_digest)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected())
    }

    /// Records an approval with its verification result. An approver counts once per request.
    pub async fn record_approval(
        &self,
        tenant: TenantId,
        a: &NewApproval<'_>,
    ) -> Result<ApprovalId, StoreError> {
        Ok(sqlx::query_scalar(
            "INSERT INTO approvals (id, tenant_id, change_request_id, approver, decision, plan_digest, signature, accepted, verification)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING id",
        )
        .bind(ApprovalId::new())
        .bind(tenant)
        .bind(a.change_request)
        .bind(a.approver)
        .bind(a.decision)
        .bind(a.plan_digest)
        .bind(a.signature)
        .bind(a.accepted)
        .bind(a.verification)
        .fetch_one(&self.pool)
        .await?)
    }

    pub async fn approvals(
        &self,
        tenant: TenantId,
        request: ChangeRequestId,
    ) -> Result<Vec<ApprovalRecord>, StoreError> {
        Ok(sqlx::query_as(
            "SELECT id, tenant_id, change_request_id, approver, decision, plan_digest, signature, accepted, verification, created_at, refusal
             FROM approvals WHERE tenant_id = $1 AND change_request_id = $2 ORDER BY created_at, id",
        )
        .bind(tenant)
        .bind(request)
        .fetch_all(&self.pool)
        .await?)
    }

    /// Records every operation of an executed batch, in one transaction.
    pub async fn record_dns_changes(
        &self,
        tenant: TenantId,
        batch: &ExecutedBatch<'_>,
    ) -> Result<Vec<i64>, StoreError> {
        let mut tx = self.pool.begin().await?;
        let mut ids = Vec::with_capacity(batch.outcomes.len());
        for o in batch.outcomes {
            let id: i64 = sqlx::query_scalar(
                "INSERT INTO dns_changes (tenant_id, zone_id, change_request_id, plan_digest, op, name, record_type, before, after, outcome, error, pre_snapshot_id, post_snapshot_id)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13) RETURNING id",
            )
            .bind(tenant)
            .bind(batch.zone)
            .bind(batch.change_request)
            .bind(batch.plan_digest)
            .bind(&o.op)
            .bind(&o.name)
            .bind(&o.record_type)
            .bind(&o.before)
            .bind(&o.after)
            .bind(if o.error.is_none() { "applied" } else { "failed" })
            .bind(&o.error)
            .bind(batch.pre_snapshot)
            .bind(batch.post_snapshot)
            .fetch_one(&mut *tx)
            .await?;
            ids.push(id);
        }
        tx.commit().await?;
        Ok(ids)
    }

    /// A zone's per-record history, newest first, optionally for one owner
    /// name (absolute, lower case) and one type.
    pub async fn history(
        &self,
        tenant: TenantId,
        zone: ZoneId,
        name: Option<&str>,
        record_type: Option<&str>,
        limit: i64,
    ) -> Result<Vec<HistoryRecord>, StoreError> {
        Ok(sqlx::query_as(
            "SELECT c.id, c.op, c.name, c.record_type, c.before, c.after, c.outcome, c.error,
                    c.revision, c.requester, r.name AS request, c.plan_digest, c.created_at
             FROM dns_changes c
             LEFT JOIN dns_change_requests r ON r.tenant_id = c.tenant_id AND r.id = c.change_request_id
             WHERE c.tenant_id = $1 AND c.zone_id = $2
               AND ($3::text IS NULL OR c.name = $3)
               AND ($4::text IS NULL OR c.record_type = $4)
             ORDER BY c.id DESC LIMIT $5",
        )
        .bind(tenant)
        .bind(zone)
        .bind(name)
        .bind(record_type)
        .bind(limit.clamp(1, 100_000))
        .fetch_all(&self.pool)
        .await?)
    }

    /// A zone's recorded changes, newest first.
    pub async fn dns_changes(
        &self,
        tenant: TenantId,
        zone: ZoneId,
        limit: i64,
    ) -> Result<Vec<DnsChangeRecord>, StoreError> {
        Ok(sqlx::query_as(
            "SELECT id, tenant_id, zone_id, change_request_id, plan_digest, op, name, record_type, before, after, outcome, error, pre_snapshot_id, post_snapshot_id, created_at
             FROM dns_changes WHERE tenant_id = $1 AND zone_id = $2 ORDER BY id DESC LIMIT $3",
        )
        .bind(tenant)
        .bind(zone)
        .bind(limit.clamp(1, 10_000))
        .fetch_all(&self.pool)
        .await?)
    }
}
