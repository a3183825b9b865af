//! What the reconciler keeps between passes: each zone's last applied state
//! and last decision, executions marked before the provider is called (so a
//! crash is recovered, never applied twice), and each source's last good
//! revision. Rows are written when something changes: a pass that finds a
//! zone as it left it writes nothing.

use chrono::{DateTime, Utc};
use sqlx::{PgExecutor, Postgres, Transaction};
use zentralink_model::ZoneContent;

use crate::Store;
use crate::audit::AuditEvent;
use crate::changes::{ChangeOutcome, RequestState};
use crate::error::StoreError;
use crate::ids::{ChangeRequestId, ExecutionId, SnapshotId, TenantId, ZoneId};
use crate::snapshots::SnapshotReason;

/// A zone's last applied state and last decision.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct ZoneStateRecord {
    pub tenant_id: TenantId,
    pub zone_id: ZoneId,
    pub last_applied_snapshot_id: Option<SnapshotId>,
    pub owned: serde_json::Value,
    pub held_for: Option<String>,
    pub revision: Option<String>,
    pub applied_at: Option<DateTime<Utc>>,
    pub outcome: Option<String>,
    pub plan_changes: i32,
    pub drift: serde_json::Value,
    pub message: Option<String>,
    pub updated_at: DateTime<Utc>,
    /// The digest of the last applied snapshot (`sha256:...`), so a pass
    /// that finds the zone as it was left needs not load that snapshot.
    pub last_applied_digest: Option<String>,
}

impl ZoneStateRecord {
    /// The owned record sets, as `name TYPE` strings.
    pub fn owned_keys(&self) -> Vec<String> {
        strings(&self.owned)
    }

    /// The owned record sets, as `name TYPE` strings borrowed from the record.
    pub fn owned_strs(&self) -> impl Iterator<Item = &str> {
        self.owned
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(serde_json::Value::as_str)
    }

    /// The drifted record sets, as `name TYPE` strings.
    pub fn drift_keys(&self) -> Vec<String> {
        strings(&self.drift)
    }
}

fn strings(v: &serde_json::Value) -> Vec<String> {
    v.as_array()
        .map(|a| {
            a.iter()
                .filter_map(|s| s.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

/// A zone state with its last applied snapshot's digest (`FROM STATE_TABLES`).
const STATE_COLUMNS: &str = "z.tenant_id, z.zone_id, z.last_applied_snapshot_id, z.owned, z.held_for, z.revision, z.applied_at, z.outcome, z.plan_changes, z.drift, z.message, z.updated_at, s.digest AS last_applied_digest";
const STATE_TABLES: &str = "zone_states z LEFT JOIN snapshots s ON s.tenant_id = z.tenant_id AND s.id = z.last_applied_snapshot_id";

/// The summary of a zone's last pass.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ZoneSummary {
    pub outcome: String,
    pub plan_changes: i32,
    pub drift: Vec<String>,
    pub message: Option<String>,
}

/// An execution about to call the provider.
#[derive(Debug, Clone)]
pub struct NewExecution<'a> {
    pub zone: ZoneId,
    pub request: Option<ChangeRequestId>,
    /// The plan (`StoredPlan` JSON) and its digest.
    pub plan: serde_json::Value,
    pub plan_digest: &'a str,
    pub rollback: bool,
    pub revision: Option<&'a str>,
    pub requester: Option<&'a str>,
    pub pre_snapshot: SnapshotId,
}

/// An execution, as recorded.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct ExecutionRecord {
    pub id: ExecutionId,
    pub tenant_id: TenantId,
    pub zone_id: ZoneId,
    pub change_request_id: Option<ChangeRequestId>,
    pub plan: serde_json::Value,
    pub plan_digest: String,
    pub rollback: bool,
    pub revision: Option<String>,
    pub requester: Option<String>,
    pub state: String,
    pub error: Option<String>,
    pub pre_snapshot_id: Option<SnapshotId>,
    pub post_snapshot_id: Option<SnapshotId>,
    pub started_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
}

const EXECUTION_COLUMNS: &str = "id, tenant_id, zone_id, change_request_id, plan, plan_digest, rollback, revision, requester, state, error, pre_snapshot_id, post_snapshot_id, started_at, finished_at";

/// How an execution ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExecutionEnd {
    /// The provider answered with every operation's outcome.
    Done,
    /// Interrupted (crash, uncertain write); the outcomes were read back from the provider.
    Recovered,
}

/// Everything that closes an execution, written in one transaction.
#[derive(Debug, Clone)]
pub struct FinishedExecution<'a> {
    pub execution: ExecutionId,
    pub zone: ZoneId,
    pub end: ExecutionEnd,
    /// The provider's name and the zone as read after the batch.
    pub provider: &'a str,
    pub post_content: &'a ZoneContent,
    pub outcomes: &'a [ChangeOutcome],
    /// The record sets owned after the batch (`name TYPE`).
    pub owned: Vec<String>,
    /// After a rollback: the declared content's digest the zone is held for.
    pub held_for: Option<String>,
    pub revision: Option<&'a str>,
    pub requester: Option<&'a str>,
    /// The request executed and the state it reaches (Applied or Failed).
    pub request: Option<(ChangeRequestId, RequestState)>,
    pub plan_digest: &'a str,
    pub pre_snapshot: Option<SnapshotId>,
    pub audit: AuditEvent,
}

/// A source's revisions.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct SourceStateRecord {
    pub source: String,
    pub good_revision: Option<String>,
    pub good_at: Option<DateTime<Utc>>,
    pub last_revision: Option<String>,
    pub last_error: Option<String>,
    pub last_pass_at: Option<DateTime<Utc>>,
    pub last_pass_ok: Option<bool>,
    pub updated_at: DateTime<Utc>,
}

/// An exclusive hold on one zone for the length of a pass over it: a
/// PostgreSQL advisory lock held by an open transaction, so it is released
/// when the hold is dropped or the process dies, whatever happens.
#[derive(Debug)]
pub struct ZoneLock {
    _tx: Transaction<'static, Postgres>,
}

fn lock_key(zone: ZoneId) -> i64 {
    let bytes = zone.0.as_bytes();
    let mut first = [0u8; 8];
    first.copy_from_slice(&bytes[..8]);
    i64::from_be_bytes(first)
}

impl Store {
    /// Takes the zone's lock, or `None` when another pass (another process)
    /// holds it now.
    pub async fn try_lock_zone(&self, zone: ZoneId) -> Result<Option<ZoneLock>, StoreError> {
        let mut tx = self.pool.begin().await?;
        let locked: bool = sqlx::query_scalar("SELECT pg_try_advisory_xact_lock($1)")
            .bind(lock_key(zone))
            .fetch_one(&mut *tx)
            .await?;
        Ok(locked.then_some(ZoneLock { _tx: tx }))
    }

    // ------------------------------------------------------------ zone states

    pub async fn zone_state(
        &self,
        tenant: TenantId,
        zone: ZoneId,
    ) -> Result<Option<ZoneStateRecord>, StoreError> {
        Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {STATE_COLUMNS} FROM {STATE_TABLES} WHERE z.tenant_id = $1 AND z.zone_id = $2"
        )))
        .bind(tenant)
        .bind(zone)
        .fetch_optional(&self.pool)
        .await?)
    }

    /// Every zone's state (for a pass over many zones, and `zentralink status`).
    pub async fn all_zone_states(&self) -> Result<Vec<ZoneStateRecord>, StoreError> {
        Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {STATE_COLUMNS} FROM {STATE_TABLES}"
        )))
        .fetch_all(&self.pool)
        .await?)
    }

    /// The first sight of a zone: its content becomes the state drift is
    /// measured against. Does nothing when the zone already has a state.
    pub async fn record_baseline(
        &self,
        tenant: TenantId,
        zone: ZoneId,
        provider: &str,
        content: &ZoneContent,
        owned: &[String],
        summary: &ZoneSummary,
    ) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await?;
        let exists: Option<i32> = sqlx::query_scalar(
            "SELECT 1 FROM zone_states WHERE tenant_id = $1 AND zone_id = $2 FOR UPDATE",
        )
        .bind(tenant)
        .bind(zone)
        .fetch_optional(&mut *tx)
        .await?;
        if exists.is_some() {
            return Ok(());
        }
        let snapshot = insert_snapshot(
            &mut tx,
            tenant,
            zone,
            provider,
            SnapshotReason::Baseline,
            content,
        )
        .await?;
        sqlx::query(
            "INSERT INTO zone_states (tenant_id, zone_id, last_applied_snapshot_id, owned, outcome, plan_changes, drift, message)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(tenant)
        .bind(zone)
        .bind(snapshot)
        .bind(serde_json::json!(owned))
        .bind(&summary.outcome)
        .bind(summary.plan_changes)
        .bind(serde_json::json!(summary.drift))
        .bind(&summary.message)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Records the summary of a pass, only when it differs from the stored
    /// one. Returns whether anything was written.
    pub async fn update_zone_summary(
        &self,
        tenant: TenantId,
        zone: ZoneId,
        summary: &ZoneSummary,
    ) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "UPDATE zone_states SET outcome = $3, plan_changes = $4, drift = $5, message = $6, updated_at = now()
             WHERE tenant_id = $1 AND zone_id = $2
               AND (outcome IS DISTINCT FROM $3 OR plan_changes <> $4 OR drift <> $5 OR message IS DISTINCT FROM $6)",
        )
        .bind(tenant)
        .bind(zone)
        .bind(&summary.outcome)
        .bind(summary.plan_changes)
        .bind(serde_json::json!(summary.drift))
        .bind(&summary.message)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() > 0)
    }

    /// Releases a zone held after a rollback (its declared content changed).
    pub async fn release_hold(&self, tenant: TenantId, zone: ZoneId) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE zone_states SET held_for = NULL, updated_at = now()
             WHERE tenant_id = $1 AND zone_id = $2 AND held_for IS NOT NULL",
        )
        .bind(tenant)
        .bind(zone)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    // ------------------------------------------------------------ executions

    /// Marks an execution in flight, before the provider is called: the row,
    /// and the request (if any) moved from Approved to Executing, in one transaction.
    pub async fn begin_execution(
        &self,
        tenant: TenantId,
        e: &NewExecution<'_>,
    ) -> Result<ExecutionId, StoreError> {
        let mut tx = self.pool.begin().await?;
        if let Some(request) = e.request {
            let moved = sqlx::query(
                "UPDATE dns_change_requests SET state = 'Executing'
                 WHERE tenant_id = $1 AND id = $2 AND state = 'Approved'",
            )
            .bind(tenant)
            .bind(request)
            .execute(&mut *tx)
            .await?;
            if moved.rows_affected() == 0 {
                return Err(StoreError::Conflict(
                    "the change request is no longer Approved".into(),
                ));
            }
        }
        let id = ExecutionId::new();
        sqlx::query(
            "INSERT INTO executions (id, tenant_id, zone_id, change_request_id, plan, plan_digest, rollback, revision, requester, state, pre_snapshot_id)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, 'Executing', $10)",
        )
        .bind(id)
        .bind(tenant)
        .bind(e.zone)
        .bind(e.request)
        .bind(&e.plan)
        .bind(e.plan_digest)
        .bind(e.rollback)
        .bind(e.revision)
        .bind(e.requester)
        .bind(e.pre_snapshot)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(id)
    }

    /// The zone's execution still in flight (after a crash), if any.
    pub async fn execution_in_flight(
        &self,
        tenant: TenantId,
        zone: ZoneId,
    ) -> Result<Option<ExecutionRecord>, StoreError> {
        Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {EXECUTION_COLUMNS} FROM executions WHERE tenant_id = $1 AND zone_id = $2 AND state = 'Executing'"
        )))
        .bind(tenant)
        .bind(zone)
        .fetch_optional(&self.pool)
        .await?)
    }

    /// A zone's executions, newest first.
    pub async fn executions(
        &self,
        tenant: TenantId,
        zone: ZoneId,
        limit: i64,
    ) -> Result<Vec<ExecutionRecord>, StoreError> {
        Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {EXECUTION_COLUMNS} FROM executions WHERE tenant_id = $1 AND zone_id = $2
             ORDER BY started_at DESC, id LIMIT $3"
        )))
        .bind(tenant)
        .bind(zone)
        .bind(limit.clamp(1, 10_000))
        .fetch_all(&self.pool)
        .await?)
    }

    /// Closes an execution: the post-change snapshot, one `dns_changes` row
    /// per operation, the zone's last applied state, the request's end state
    /// and the audit event, all or nothing. Returns the post snapshot's id.
    pub async fn finish_execution(
        &self,
        tenant: TenantId,
        f: &FinishedExecution<'_>,
    ) -> Result<SnapshotId, StoreError> {
        let mut tx = self.pool.begin().await?;
        let post = insert_snapshot(
            &mut tx,
            tenant,
            f.zone,
            f.provider,
            match f.end {
                ExecutionEnd::Done => SnapshotReason::PostChange,
                ExecutionEnd::Recovered => SnapshotReason::Recovery,
            },
            f.post_content,
        )
        .await?;
        insert_changes(&mut tx, tenant, f, post).await?;
        let closed = sqlx::query(
            "UPDATE executions SET state = $3, post_snapshot_id = $4, finished_at = now()
             WHERE tenant_id = $1 AND id = $2 AND state = 'Executing'",
        )
        .bind(tenant)
        .bind(f.execution)
        .bind(match f.end {
            ExecutionEnd::Done => "Done",
            ExecutionEnd::Recovered => "Recovered",
        })
        .bind(post)
        .execute(&mut *tx)
        .await?;
        if closed.rows_affected() == 0 {
            return Err(StoreError::Conflict(
                "the execution was closed already".into(),
            ));
        }
        sqlx::query(
            "INSERT INTO zone_states (tenant_id, zone_id, last_applied_snapshot_id, owned, held_for, revision, applied_at)
             VALUES ($1, $2, $3, $4, $5, $6, now())
             ON CONFLICT (tenant_id, zone_id) DO UPDATE SET
                last_applied_snapshot_id = EXCLUDED.last_applied_snapshot_id,
                owned = EXCLUDED.owned,
                held_for = EXCLUDED.held_for,
                revision = COALESCE(EXCLUDED.revision, zone_states.revision),
                applied_at = now(),
                updated_at = now()",
        )
        .bind(tenant)
        .bind(f.zone)
        .bind(post)
        .bind(serde_json::json!(f.owned))
        .bind(&f.held_for)
        .bind(f.revision)
        .execute(&mut *tx)
        .await?;
        if let Some((request, state)) = f.request {
            sqlx::query(
                "UPDATE dns_change_requests SET state = $3, applied_at = now()
                 WHERE tenant_id = $1 AND id = $2 AND state = 'Executing'",
            )
            .bind(tenant)
            .bind(request)
            .bind(state.as_str())
            .execute(&mut *tx)
            .await?;
        }
        insert_audit(&mut *tx, &f.audit).await?;
        tx.commit().await?;
        Ok(post)
    }

    /// Closes an execution that applied nothing (the provider was not
    /// reached, or refused the batch as a whole): the request goes back to
    /// Approved, to execute on a later pass if its plan is still current.
    pub async fn abandon_execution(
        &self,
        tenant: TenantId,
        execution: ExecutionId,
        request: Option<ChangeRequestId>,
        error: &str,
    ) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await?;
        sqlx::query(
            "UPDATE executions SET state = 'Failed', error = $3, finished_at = now()
             WHERE tenant_id = $1 AND id = $2 AND state = 'Executing'",
        )
        .bind(tenant)
        .bind(execution)
        .bind(error)
        .execute(&mut *tx)
        .await?;
        if let Some(request) = request {
            sqlx::query(
                "UPDATE dns_change_requests SET state = 'Approved', message = $3
                 WHERE tenant_id = $1 AND id = $2 AND state = 'Executing'",
            )
            .bind(tenant)
            .bind(request)
            .bind(error)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    // ------------------------------------------------------------ sources

    pub async fn source_state(
        &self,
        source: &str,
    ) -> Result<Option<SourceStateRecord>, StoreError> {
        Ok(sqlx::query_as(
            "SELECT source, good_revision, good_at, last_revision, last_error, last_pass_at, last_pass_ok, updated_at
             FROM source_states WHERE source = $1",
        )
        .bind(source)
        .fetch_optional(&self.pool)
        .await?)
    }

    pub async fn source_states(&self) -> Result<Vec<SourceStateRecord>, StoreError> {
        Ok(sqlx::query_as(
            "SELECT source, good_revision, good_at, last_revision, last_error, last_pass_at, last_pass_ok, updated_at
             FROM source_states ORDER BY source",
        )
        .fetch_all(&self.pool)
        .await?)
    }

    /// Records a revision that was read and validated: it is now in force.
    pub async fn record_good_revision(
        &self,
        source: &str,
        revision: &str,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO source_states (source, good_revision, good_at, last_revision, last_error)
             VALUES ($1, $2, now(), $2, NULL)
             ON CONFLICT (source) DO UPDATE SET
                good_at = CASE WHEN source_states.good_revision IS DISTINCT FROM EXCLUDED.good_revision THEN now() ELSE source_states.good_at END,
                good_revision = EXCLUDED.good_revision,
                last_revision = EXCLUDED.last_revision,
                last_error = NULL,
                updated_at = now()
             WHERE source_states.good_revision IS DISTINCT FROM EXCLUDED.good_revision
                OR source_states.last_error IS NOT NULL
                OR source_states.last_revision IS DISTINCT FROM EXCLUDED.last_revision",
        )
        .bind(source)
        .bind(revision)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Records a revision that could not be read or did not validate; the
    /// good revision stays in force. Returns whether the error is new (so it
    /// is audited once, not on every pass).
    pub async fn record_source_error(
        &self,
        source: &str,
        revision: Option<&str>,
        error: &str,
    ) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "INSERT INTO source_states (source, last_revision, last_error)
             VALUES ($1, $2, $3)
             ON CONFLICT (source) DO UPDATE SET
                last_revision = COALESCE(EXCLUDED.last_revision, source_states.last_revision),
                last_error = EXCLUDED.last_error,
                updated_at = now()
             WHERE source_states.last_error IS DISTINCT FROM EXCLUDED.last_error",
        )
        .bind(source)
        .bind(revision)
        .bind(error)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() > 0)
    }

    /// Records the end of a pass (its time and whether every zone reconciled).
    pub async fn record_pass(&self, source: &str, ok: bool) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO source_states (source, last_pass_at, last_pass_ok) VALUES ($1, now(), $2)
             ON CONFLICT (source) DO UPDATE SET last_pass_at = now(), last_pass_ok = $2",
        )
        .bind(source)
        .bind(ok)
        .execute(&self.pool)
        .await?;
        Ok(())
    }
}

/// One `dns_changes` row per operation of a finished execution, in plan
/// order, in one statement (the rows travel as arrays).
async fn insert_changes(
    tx: &mut Transaction<'_, Postgres>,
    tenant: TenantId,
    f: &FinishedExecution<'_>,
    post: SnapshotId,
) -> Result<(), StoreError> {
    if f.outcomes.is_empty() {
        return Ok(());
    }
    let column =
        |get: fn(&ChangeOutcome) -> &str| -> Vec<&str> { f.outcomes.iter().map(get).collect() };
    let ops = column(|o| &o.op);
    let names = column(|o| &o.name);
    let types = column(|o| &o.record_type);
    let before: Vec<Option<&serde_json::Value>> =
        f.outcomes.iter().map(|o| o.before.as_ref()).collect();
    let after: Vec<Option<&serde_json::Value>> =
        f.outcomes.iter().map(|o| o.after.as_ref()).collect();
    let errors: Vec<Option<&str>> = f.outcomes.iter().map(|o| o.error.as_deref()).collect();
    sqlx::query(
        "INSERT INTO dns_changes (tenant_id, zone_id, change_request_id, plan_digest, op, name, record_type, before, after, outcome, error, pre_snapshot_id, post_snapshot_id, execution_id, revision, requester)
         SELECT $1, $2, $3, $4, o.op, o.name, o.record_type, o.before, o.after,
                CASE WHEN o.error IS NULL THEN 'applied' ELSE 'failed' END, o.error,
                $5, $6, $7, $8, $9
         FROM UNNEST($10::text[], $11::text[], $12::text[], $13::jsonb[], $14::jsonb[], $15::text[])
              WITH ORDINALITY AS o(op, name, record_type, before, after, error, position)
         ORDER BY o.position",
    )
    .bind(tenant)
    .bind(f.zone)
    .bind(f.request.map(|(id, _)| id))
    .bind(f.plan_digest)
    .bind(f.pre_snapshot)
    .bind(post)
    .bind(f.execution)
    .bind(f.revision)
    .bind(f.requester)
    .bind(ops)
    .bind(names)
    .bind(types)
    .bind(before)
    .bind(after)
    .bind(errors)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Stores a snapshot inside a transaction.
pub(crate) async fn insert_snapshot(
    tx: &mut Transaction<'_, Postgres>,
    tenant: TenantId,
    zone: ZoneId,
    provider: &str,
    reason: SnapshotReason,
    content: &ZoneContent,
) -> Result<SnapshotId, StoreError> {
    let (records, digest, count) = crate::snapshots::encode(content);
    Ok(sqlx::query_scalar(
        "INSERT INTO snapshots (id, tenant_id, zone_id, zone_name, provider, reason, digest, record_sets, records)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING id",
    )
    .bind(SnapshotId::new())
    .bind(tenant)
    .bind(zone)
    .bind(content.origin.to_string())
    .bind(provider)
    .bind(reason.as_str())
    .bind(digest)
    .bind(count)
    .bind(records)
    .fetch_one(&mut **tx)
    .await?)
}

/// Records an audit event with any executor (a pool or a transaction).
pub(crate) async fn insert_audit<'e, E: PgExecutor<'e>>(
    executor: E,
    event: &AuditEvent,
) -> Result<i64, StoreError> {
    crate::audit::insert(executor, event).await
}

#[cfg(test)]
mod tests {
    use hickory_proto::rr::RecordType;
    use sqlx::PgPool;
    use zentralink_model::digest::zone_digest;
    use zentralink_model::{RecordSet, RecordValue, RrKey, ZoneContent, ZoneName};

    use super::*;
    use crate::audit::Actor;

    fn content(addresses: &[&str]) -> ZoneContent {
        let origin = ZoneName::parse("acme.example.").unwrap();
        let mut c = ZoneContent::new(origin.clone());
        for (i, a) in addresses.iter().enumerate() {
            let value = RecordValue::parse(RecordType::A, a, &origin).unwrap();
            c.sets.insert(
                RrKey::new(origin.owner(&format!("h{i}")).unwrap(), RecordType::A),
                RecordSet::new(300, vec![value]),
            );
        }
        c
    }

    fn outcome(name: &str, error: Option<&str>) -> ChangeOutcome {
        ChangeOutcome {
            op: "update".into(),
            name: name.into(),
            record_type: "A".into(),
            before: Some(serde_json::json!({"ttl": 300, "values": ["192.0.2.1"]})),
            after: None,
            error: error.map(str::to_owned),
        }
    }

    /// The closing transaction writes one history row per operation, in plan
    /// order, each with its outcome; the zone's state then carries the post
    /// snapshot's digest, so a pass finding that content needs not load it.
    #[sqlx::test(migrator = "crate::MIGRATOR")]
    async fn a_finished_execution_records_each_operation_and_the_applied_digest(pool: PgPool) {
        let store = Store::from_pool(
            pool.clone(),
            zentralink_model::secrets::Keyring::new(
                zentralink_model::secrets::EncryptionKey::from_bytes([1; 32]),
                None,
            ),
        );
        let tenant = store.upsert_tenant("acme", "Acme").await.unwrap();
        let zone = store
            .upsert_zone(tenant, "acme", "main", "acme.example.", None)
            .await
            .unwrap();
        let before = content(&["192.0.2.1", "192.0.2.1", "192.0.2.1"]);
        let pre = store
            .save_snapshot(tenant, zone, "zonefile", SnapshotReason::PreChange, &before)
            .await
            .unwrap();
        let execution = store
            .begin_execution(
                tenant,
                &NewExecution {
                    zone,
                    request: None,
                    plan: serde_json::json!({}),
                    plan_digest: "sha256:00",
                    rollback: false,
                    revision: Some("r1"),
                    requester: Some("alice"),
                    pre_snapshot: pre,
                },
            )
            .await
            .unwrap();
        let after = content(&["192.0.2.2", "192.0.2.1", "192.0.2.2"]);
        let outcomes = [
            outcome("h2.acme.example.", None),
            outcome("h0.acme.example.", Some("refused")),
            outcome("h1.acme.example.", None),
        ];
        let post = store
            .finish_execution(
                tenant,
                &FinishedExecution {
                    execution,
                    zone,
                    end: ExecutionEnd::Done,
                    provider: "zonefile",
                    post_content: &after,
                    outcomes: &outcomes,
                    owned: vec![],
                    held_for: None,
                    revision: Some("r1"),
                    requester: Some("alice"),
                    request: None,
                    plan_digest: "sha256:00",
                    pre_snapshot: Some(pre),
                    audit: AuditEvent::new(
                        Some(tenant),
                        Actor::Operator("test".into()),
                        "dns.changes.applied",
                    ),
                },
            )
            .await
            .unwrap();
        type ChangeRow = (
            String,
            String,
            Option<String>,
            Option<serde_json::Value>,
            Option<SnapshotId>,
            Option<SnapshotId>,
            Option<String>,
        );
        let rows: Vec<ChangeRow> = sqlx::query_as(
            "SELECT name, outcome, error, after, pre_snapshot_id, post_snapshot_id, requester
                 FROM dns_changes WHERE execution_id = $1 ORDER BY id",
        )
        .bind(execution)
        .fetch_all(&pool)
        .await
        .unwrap();
        let summary: Vec<(&str, &str, Option<&str>)> = rows
            .iter()
            .map(|r| (r.0.as_str(), r.1.as_str(), r.2.as_deref()))
            .collect();
        assert_eq!(
            summary,
            [
                ("h2.acme.example.", "applied", None),
                ("h0.acme.example.", "failed", Some("refused")),
                ("h1.acme.example.", "applied", None),
            ]
        );
        assert!(rows.iter().all(|r| r.3.is_none()
            && r.4 == Some(pre)
            && r.5 == Some(post)
            && r.6.as_deref() == Some("alice")));

        let state = store.zone_state(tenant, zone).await.unwrap().unwrap();
        assert_eq!(state.last_applied_snapshot_id, Some(post));
        assert_eq!(
            state.last_applied_digest,
            Some(zone_digest(&after).to_string())
        );
        assert_eq!(store.snapshot_content(tenant, post).await.unwrap(), after);
        let all = store.all_zone_states().await.unwrap();
        assert_eq!(all.len(), 1);
        assert_eq!(all[0].last_applied_digest, state.last_applied_digest);

        // The next execution's pre-change snapshot of that same content is a
        // copy made in the database: its own row, its own reason, same records.
        let copy = store
            .copy_snapshot(tenant, post, SnapshotReason::PreChange)
            .await
            .unwrap();
        assert_ne!(copy, post);
        let record = store.snapshot(tenant, copy).await.unwrap();
        assert_eq!(
            (record.reason.as_str(), record.zone_id, record.record_sets),
            ("pre-change", zone, 3)
        );
        assert_eq!(Some(record.digest), state.last_applied_digest);
        assert_eq!(store.snapshot_content(tenant, copy).await.unwrap(), after);
        // Only a snapshot of the tenant's own is copied.
        let other = store.upsert_tenant("globex", "Globex").await.unwrap();
        assert!(matches!(
            store
                .copy_snapshot(other, post, SnapshotReason::PreChange)
                .await,
            Err(StoreError::NotFound)
        ));
    }
}
