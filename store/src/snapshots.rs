//! Zone snapshots: the full content of a zone as the provider reported it,
//! with its digest, and retention that never removes a snapshot a change
//! request or a recorded change refers to.

use chrono::{DateTime, Utc};
use sqlx::types::Json;
use zentralink_model::digest::zone_digest;
use zentralink_model::zone::StoredRecordSet;
use zentralink_model::{ZoneContent, ZoneName};

use crate::Store;
use crate::error::StoreError;
use crate::ids::{SnapshotId, TenantId, ZoneId};

/// Why a snapshot was taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SnapshotReason {
    PreChange,
    PostChange,
    OnDemand,
    /// The zone as first seen: what drift is measured against until a change executes.
    Baseline,
    /// The zone as found after an interrupted execution.
    Recovery,
}

impl SnapshotReason {
    pub fn as_str(self) -> &'static str {
        match self {
            SnapshotReason::PreChange => "pre-change",
            SnapshotReason::PostChange => "post-change",
            SnapshotReason::OnDemand => "on-demand",
            SnapshotReason::Baseline => "baseline",
            SnapshotReason::Recovery => "recovery",
        }
    }
}

/// A snapshot's summary, without its records.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct SnapshotRecord {
    pub id: SnapshotId,
    pub tenant_id: TenantId,
    pub zone_id: ZoneId,
    pub zone_name: String,
    pub provider: String,
    pub reason: String,
    pub digest: String,
    pub record_sets: i32,
    pub created_at: DateTime<Utc>,
}

const COLUMNS: &str =
    "id, tenant_id, zone_id, zone_name, provider, reason, digest, record_sets, created_at";

/// A snapshot's stored form: records (written as JSON straight from the
/// list, without a JSON tree in between), the digest, the number of record sets.
pub(crate) fn encode(content: &ZoneContent) -> (Json<Vec<StoredRecordSet>>, String, i32) {
    let records = Json(content.to_stored());
    let digest = zone_digest(content).to_string();
    let count = i32::try_from(content.len()).unwrap_or(i32::MAX);
    (records, digest, count)
}

impl Store {
    /// Stores a snapshot of `content` and returns its id.
    pub async fn save_snapshot(
        &self,
        tenant: TenantId,
        zone: ZoneId,
        provider: &str,
        reason: SnapshotReason,
        content: &ZoneContent,
    ) -> Result<SnapshotId, StoreError> {
        let (records, digest, count) = encode(content);
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
        .fetch_one(&self.pool)
        .await?)
    }

    /// Stores a snapshot of the same content as snapshot `from` (of the same
    /// tenant) under another reason, copied inside the database: the zone's
    /// records neither travel nor get encoded again. Returns its id.
    pub async fn copy_snapshot(
        &self,
        tenant: TenantId,
        from: SnapshotId,
        reason: SnapshotReason,
    ) -> Result<SnapshotId, StoreError> {
        Ok(sqlx::query_scalar(
            "INSERT INTO snapshots (id, tenant_id, zone_id, zone_name, provider, reason, digest, record_sets, records)
             SELECT $3, tenant_id, zone_id, zone_name, provider, $4, digest, record_sets, records
             FROM snapshots WHERE tenant_id = $1 AND id = $2
             RETURNING id",
        )
        .bind(tenant)
        .bind(from)
        .bind(SnapshotId::new())
        .bind(reason.as_str())
        .fetch_one(&self.pool)
        .await?)
    }

    /// Takes an on-demand snapshot, once per asking object (`namespace/name`
    /// of a DnsSnapshot) when one is given: the same object asking again gets
    /// the snapshot it got the first time.
    pub async fn save_requested_snapshot(
        &self,
        tenant: TenantId,
        zone: ZoneId,
        provider: &str,
        content: &ZoneContent,
        requested_by: Option<&str>,
        note: Option<&str>,
    ) -> Result<SnapshotRecord, StoreError> {
        if let Some(by) = requested_by
            && let Some(existing) = self.snapshot_requested_by(tenant, by).await?
        {
            return Ok(existing);
        }
        let (records, digest, count) = encode(content);
        let id: SnapshotId = sqlx::query_scalar(
            "INSERT INTO snapshots (id, tenant_id, zone_id, zone_name, provider, reason, digest, record_sets, records, requested_by, note)
             VALUES ($1, $2, $3, $4, $5, 'on-demand', $6, $7, $8, $9, $10) RETURNING id",
        )
        .bind(SnapshotId::new())
        .bind(tenant)
        .bind(zone)
        .bind(content.origin.to_string())
        .bind(provider)
        .bind(digest)
        .bind(count)
        .bind(records)
        .bind(requested_by)
        .bind(note)
        .fetch_one(&self.pool)
        .await?;
        self.snapshot(tenant, id).await
    }

    /// The snapshot a DnsSnapshot object (`namespace/name`) asked for, if taken.
    pub async fn snapshot_requested_by(
        &self,
        tenant: TenantId,
        requested_by: &str,
    ) -> Result<Option<SnapshotRecord>, StoreError> {
        Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM snapshots WHERE tenant_id = $1 AND requested_by = $2"
        )))
        .bind(tenant)
        .bind(requested_by)
        .fetch_optional(&self.pool)
        .await?)
    }

    /// A snapshot by its id, whatever its tenant (the CLI's way in; callers
    /// then work with the tenant the row names).
    pub async fn snapshot_any_tenant(&self, id: SnapshotId) -> Result<SnapshotRecord, StoreError> {
        Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM snapshots WHERE id = $1"
        )))
        .bind(id)
        .fetch_one(&self.pool)
        .await?)
    }

    pub async fn snapshot(
        &self,
        tenant: TenantId,
        id: SnapshotId,
    ) -> Result<SnapshotRecord, StoreError> {
        Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM snapshots WHERE tenant_id = $1 AND id = $2"
        )))
        .bind(tenant)
        .bind(id)
        .fetch_one(&self.pool)
        .await?)
    }

    /// The snapshot's zone content. The digest is checked: altered records are an error.
    pub async fn snapshot_content(
        &self,
        tenant: TenantId,
        id: SnapshotId,
    ) -> Result<ZoneContent, StoreError> {
        // The records are read as text and parsed straight into the list,
        // without a JSON tree in between.
        let (zone_name, digest, records): (String, String, String) = sqlx::query_as(
            "SELECT zone_name, digest, records::text FROM snapshots WHERE tenant_id = $1 AND id = $2",
        )
        .bind(tenant)
        .bind(id)
        .fetch_one(&self.pool)
        .await?;
        let origin = ZoneName::parse(&zone_name).map_err(StoreError::Corrupt)?;
        let stored: Vec<StoredRecordSet> =
            serde_json::from_str(&records).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        drop(records);
        let content = ZoneContent::from_stored(origin, &stored).map_err(StoreError::Corrupt)?;
        if zone_digest(&content).to_string() != digest {
            return Err(StoreError::Corrupt(format!(
                "snapshot {id} does not match its digest {digest}"
            )));
        }
        Ok(content)
    }

    /// A zone's snapshots, newest first.
    pub async fn snapshots(
        &self,
        tenant: TenantId,
        zone: ZoneId,
    ) -> Result<Vec<SnapshotRecord>, StoreError> {
        Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM snapshots WHERE tenant_id = $1 AND zone_id = $2 ORDER BY created_at DESC, id"
        )))
        .bind(tenant)
        .bind(zone)
        .fetch_all(&self.pool)
        .await?)
    }

    /// Keeps the newest `keep` snapshots of a zone and every snapshot a change
    /// request (`rollback_to`), a recorded change or execution (pre/post) or
    /// the zone's last applied state refers to; deletes the rest.
    pub async fn prune_snapshots(
        &self,
        tenant: TenantId,
        zone: ZoneId,
        keep: i64,
    ) -> Result<u64, StoreError> {
        let done = sqlx::query(
            "DELETE FROM snapshots s
             WHERE s.tenant_id = $1 AND s.zone_id = $2
               AND s.id NOT IN (
                   SELECT id FROM snapshots WHERE tenant_id = $1 AND zone_id = $2
                   ORDER BY created_at DESC, id LIMIT $3)
               AND NOT EXISTS (SELECT 1 FROM dns_change_requests r WHERE r.tenant_id = $1 AND r.rollback_to = s.id)
               AND NOT EXISTS (SELECT 1 FROM dns_changes c WHERE c.tenant_id = $1 AND (c.pre_snapshot_id = s.id OR c.post_snapshot_id = s.id))
               AND NOT EXISTS (SELECT 1 FROM executions e WHERE e.tenant_id = $1 AND (e.pre_snapshot_id = s.id OR e.post_snapshot_id = s.id))
               AND NOT EXISTS (SELECT 1 FROM zone_states z WHERE z.tenant_id = $1 AND z.last_applied_snapshot_id = s.id)",
        )
        .bind(tenant)
        .bind(zone)
        .bind(keep.max(0))
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected())
    }
}
