//! Cron runs and the work of the web service's own cron jobs: a lock per
//! job (a PostgreSQL advisory lock held by a dedicated connection for the
//! run), the `cron_runs` rows, expiring change requests, snapshot retention
//! and the clean-up of sessions, login failures and invitations. Does I/O
//! (PostgreSQL).

use chrono::{DateTime, Utc};
use sqlx::pool::PoolConnection;
use sqlx::postgres::Postgres;

use crate::Store;
use crate::error::StoreError;
use crate::ids::{ChangeRequestId, TenantId};

/// The first key of every cron advisory lock (the second is derived from
/// the job's name), so they never meet another part's advisory locks.
const CRON_LOCK_SPACE: i32 = 0x7a6c_0c10;

/// A job's lock, held by its own connection for as long as the run lasts.
/// [`CronLock::release`] unlocks it; dropped without that, the connection
/// is closed (never returned to the pool holding the lock), which also
/// releases it. A crashed process releases it with its connection.
#[derive(Debug)]
pub struct CronLock {
    connection: Option<PoolConnection<Postgres>>,
    job: String,
}

impl CronLock {
    /// The job this lock is for.
    pub fn job(&self) -> &str {
        &self.job
    }

    /// Unlocks and gives the connection back to the pool.
    pub async fn release(mut self) -> Result<(), StoreError> {
        let Some(mut connection) = self.connection.take() else {
            return Ok(());
        };
        let unlocked: Result<bool, sqlx::Error> =
            sqlx::query_scalar("SELECT pg_advisory_unlock($1, hashtext($2))")
                .bind(CRON_LOCK_SPACE)
                .bind(&self.job)
                .fetch_one(&mut *connection)
                .await;
        match unlocked {
            Ok(true) => Ok(()),
            Ok(false) => {
                // Not held after all: the connection is suspect; close it.
                drop(connection.detach());
                Err(StoreError::Corrupt(format!(
                    "the lock of cron job {} was not held at its end",
                    self.job
                )))
            }
            Err(e) => {
                drop(connection.detach());
                Err(e.into())
            }
        }
    }
}

impl Drop for CronLock {
    fn drop(&mut self) {
        if let Some(connection) = self.connection.take() {
            // Closing the connection ends the session and its advisory locks.
            drop(connection.detach());
        }
    }
}

/// A row of `cron_runs`.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct CronRunRecord {
    pub id: i64,
    pub job: String,
    pub started_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
    /// running, ok, failed or skipped.
    pub status: String,
    pub details: serde_json::Value,
}

/// A pending change request whose time to be approved has passed.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct ExpiringRequest {
    pub tenant_id: TenantId,
    pub id: ChangeRequestId,
    pub name: String,
    pub kind: String,
    /// The zone object's `namespace/name` (none for a configuration request).
    pub zone_namespace: Option<String>,
    pub zone_object: Option<String>,
}

/// What snapshot retention keeps: everything younger than `max_age`, the
/// newest `keep_per_zone` of each zone, each zone's baseline, and every
/// snapshot a change request, history row, execution or zone state refers to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SnapshotRetention {
    pub max_age: chrono::Duration,
    pub keep_per_zone: i64,
}

/// What the session clean-up removed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SessionCleanup {
    pub sessions: u64,
    pub login_failures: u64,
    pub invitations: u64,
}

impl Store {
    /// Takes the lock of `job` on a connection of its own; `None` when a
    /// run of the job holds it (in this process or another).
    pub async fn try_lock_cron_job(&self, job: &str) -> Result<Option<CronLock>, StoreError> {
        let mut connection = self.pool.acquire().await?;
        let locked: bool = sqlx::query_scalar("SELECT pg_try_advisory_lock($1, hashtext($2))")
            .bind(CRON_LOCK_SPACE)
            .bind(job)
            .fetch_one(&mut *connection)
            .await?;
        Ok(locked.then(|| CronLock {
            connection: Some(connection),
            job: job.to_owned(),
        }))
    }

    /// Marks the `running` rows of the lock's job as failed: with the lock
    /// held, so any such row belongs to a run that died (the process
    /// ended before it finished). Returns how many there were.
    pub async fn fail_interrupted_cron_runs(&self, lock: &CronLock) -> Result<u64, StoreError> {
        let done = sqlx::query(
            "UPDATE cron_runs SET status = 'failed', finished_at = now(),
                    details = details || '{\"error\": \"interrupted: the run ended before it finished\"}'::jsonb
             WHERE job = $1 AND status = 'running'",
        )
        .bind(lock.job())
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected())
    }

    /// Starts a cron run row; finish it with `finish_cron_run`.
    pub async fn start_cron_run(&self, job: &str) -> Result<i64, StoreError> {
        Ok(sqlx::query_scalar(
            "INSERT INTO cron_runs (job, status) VALUES ($1, 'running') RETURNING id",
        )
        .bind(job)
        .fetch_one(&self.pool)
        .await?)
    }

    /// Ends a run: `ok`, `failed` or `skipped`, with its details.
    pub async fn finish_cron_run(
        &self,
        id: i64,
        status: &str,
        details: serde_json::Value,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE cron_runs SET finished_at = now(), status = $2, details = $3 WHERE id = $1",
        )
        .bind(id)
        .bind(status)
        .bind(details)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Records a call that did nothing because a run of the job was in progress.
    pub async fn record_skipped_cron_run(
        &self,
        job: &str,
        details: serde_json::Value,
    ) -> Result<i64, StoreError> {
        Ok(sqlx::query_scalar(
            "INSERT INTO cron_runs (job, status, finished_at, details) VALUES ($1, 'skipped', now(), $2) RETURNING id",
        )
        .bind(job)
        .bind(details)
        .fetch_one(&self.pool)
        .await?)
    }

    /// The latest runs, newest first.
    pub async fn cron_runs(&self, limit: i64) -> Result<Vec<CronRunRecord>, StoreError> {
        Ok(sqlx::query_as(
            "SELECT id, job, started_at, finished_at, status, details FROM cron_runs
             ORDER BY started_at DESC, id DESC LIMIT $1",
        )
        .bind(limit.clamp(1, 1000))
        .fetch_all(&self.pool)
        .await?)
    }

    /// Pending change requests (of every tenant) whose expiry is at or
    /// before `now`, oldest expiry first. Approved and executing requests
    /// are never among them.
    pub async fn expiring_change_requests(
        &self,
        now: DateTime<Utc>,
        limit: i64,
    ) -> Result<Vec<ExpiringRequest>, StoreError> {
        Ok(sqlx::query_as(
            "SELECT r.tenant_id, r.id, r.name, r.kind, z.namespace AS zone_namespace, z.name AS zone_object
             FROM dns_change_requests r
             LEFT JOIN zones z ON z.tenant_id = r.tenant_id AND z.id = r.zone_id
             WHERE r.state = 'Pending' AND r.expires_at <= $1
             ORDER BY r.expires_at, r.id LIMIT $2",
        )
        .bind(now)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?)
    }

    /// Deletes the snapshots `policy` does not keep, as of `now`. Returns,
    /// per tenant, how many were deleted.
    pub async fn apply_snapshot_retention(
        &self,
        policy: SnapshotRetention,
        now: DateTime<Utc>,
    ) -> Result<Vec<(TenantId, i64)>, StoreError> {
        let cutoff = now - policy.max_age;
        Ok(sqlx::query_as(
            "WITH ranked AS (
                 SELECT id, tenant_id,
                        row_number() OVER (PARTITION BY tenant_id, zone_id ORDER BY created_at DESC, id DESC) AS newest
                 FROM snapshots
             ),
             doomed AS (
                 SELECT s.id, s.tenant_id FROM snapshots s JOIN ranked k ON k.id = s.id
                 WHERE s.created_at < $1
                   AND k.newest > $2
                   AND s.reason <> 'baseline'
                   AND NOT EXISTS (SELECT 1 FROM dns_change_requests r WHERE r.tenant_id = s.tenant_id AND r.rollback_to = s.id)
                   AND NOT EXISTS (SELECT 1 FROM dns_changes c WHERE c.tenant_id = s.tenant_id AND (c.pre_snapshot_id = s.id OR c.post_snapshot_id = s.id))
                   AND NOT EXISTS (SELECT 1 FROM executions e WHERE e.tenant_id = s.tenant_id AND (e.pre_snapshot_id = s.id OR e.post_snapshot_id = s.id))
                   AND NOT EXISTS (SELECT 1 FROM zone_states z WHERE z.tenant_id = s.tenant_id AND z.last_applied_snapshot_id = s.id)
                 FOR UPDATE OF s SKIP LOCKED
             ),
             gone AS (
                 DELETE FROM snapshots s USING doomed d WHERE s.id = d.id RETURNING s.tenant_id
             )
             SELECT tenant_id, count(*) FROM gone GROUP BY tenant_id ORDER BY tenant_id",
        )
        .bind(cutoff)
        .bind(policy.keep_per_zone)
        .fetch_all(&self.pool)
        .await?)
    }

    /// Deletes sessions expired at `now`, login failures older than
    /// `failures_before`, and invitations no longer usable (accepted,
    /// revoked or expired) whose last event is older than `invitations_before`.
    pub async fn clean_up_sessions(
        &self,
        now: DateTime<Utc>,
        failures_before: DateTime<Utc>,
        invitations_before: DateTime<Utc>,
    ) -> Result<SessionCleanup, StoreError> {
        let mut tx = self.pool.begin().await?;
        let sessions = sqlx::query("DELETE FROM sessions WHERE expires_at <= $1")
            .bind(now)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        let login_failures = sqlx::query("DELETE FROM login_failures WHERE failed_at < $1")
            .bind(failures_before)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        let invitations = sqlx::query(
            "DELETE FROM invitations
             WHERE (accepted_at IS NOT NULL OR revoked_at IS NOT NULL OR expires_at <= $1)
               AND GREATEST(expires_at, accepted_at, revoked_at) < LEAST($1, $2)",
        )
        .bind(now)
        .bind(invitations_before)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        tx.commit().await?;
        Ok(SessionCleanup {
            sessions,
            login_failures,
            invitations,
        })
    }
}
