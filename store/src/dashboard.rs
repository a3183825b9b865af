//! The reads the web dashboard needs beyond the repositories: each zone
//! with its last pass and open requests, a tenant's change requests across
//! its zones, the newest snapshot of a zone, every submission of a request,
//! the tenant's policy in force, and the facts an approval is judged
//! against. Every query takes the tenant id and filters by it. Does I/O
//! (PostgreSQL through sqlx), except [`request_facts`].

use chrono::{DateTime, Utc};
use zentralink_model::approval::{RequestFacts, timestamp_from_unix};
use zentralink_model::catalog::Policy;
use zentralink_model::config::{ConfigKind, ConfigObject, in_force_policy};
use zentralink_model::digest::PlanDigest;
use zentralink_model::reconcile::RequestState;

use crate::Store;
use crate::approvals::Submission;
use crate::changes::ChangeRequestRecord;
use crate::error::StoreError;
use crate::ids::{ChangeRequestId, ConnectionId, TenantId, ZoneId};
use crate::snapshots::SnapshotRecord;

/// A zone with what the operator last recorded of it.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct ZoneOverview {
    pub id: ZoneId,
    pub namespace: String,
    pub name: String,
    pub zone_name: String,
    pub connection_id: Option<ConnectionId>,
    pub created_at: DateTime<Utc>,
    /// Whether the operator has recorded a pass over the zone.
    pub seen: bool,
    /// The last decision (`Converged`, `AwaitingApproval`, ...).
    pub outcome: Option<String>,
    /// Drifted record sets (`name TYPE`).
    pub drift: Option<serde_json::Value>,
    /// Why nothing executes, or the last error.
    pub message: Option<String>,
    /// When the operator last recorded something of the zone.
    pub observed_at: Option<DateTime<Utc>>,
    pub applied_at: Option<DateTime<Utc>>,
    /// The source revision last applied.
    pub revision: Option<String>,
    /// Held at a rollback until the declared content changes.
    pub held: bool,
    /// Change requests of the zone waiting for approval.
    pub pending_requests: i64,
}

impl ZoneOverview {
    /// The drifted record sets, as `name TYPE` strings.
    pub fn drift_keys(&self) -> Vec<String> {
        self.drift
            .as_ref()
            .and_then(|v| v.as_array())
            .map(|a| {
                a.iter()
                    .filter_map(|s| s.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default()
    }
}

const OVERVIEW: &str = "SELECT z.id, z.namespace, z.name, z.zone_name, z.connection_id, z.created_at,
        s.zone_id IS NOT NULL AS seen, s.outcome, s.drift, s.message,
        s.updated_at AS observed_at, s.applied_at, s.revision,
        COALESCE(s.held_for IS NOT NULL, false) AS held,
        (SELECT count(*) FROM dns_change_requests r
          WHERE r.tenant_id = z.tenant_id AND r.zone_id = z.id AND r.state = 'Pending') AS pending_requests
   FROM zones z
   LEFT JOIN zone_states s ON s.tenant_id = z.tenant_id AND s.zone_id = z.id
  WHERE z.tenant_id = $1";

/// A change request in a tenant-wide list, with its zone's name.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct ChangeRequestListing {
    pub id: ChangeRequestId,
    pub name: String,
    pub kind: String,
    pub state: String,
    pub requester: String,
    pub reason: Option<String>,
    pub zone_id: Option<ZoneId>,
    pub zone_name: Option<String>,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    /// How many approvals were judged accepted / refused.
    pub accepted: i64,
    pub refused: i64,
}

/// A submitted approval, judged or not yet.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct SubmissionRecord {
    #[sqlx(flatten)]
    pub submission: Submission,
    pub judged_at: Option<DateTime<Utc>>,
}

impl Store {
    /// Every zone of the tenant with its last recorded pass, by zone name.
    pub async fn zone_overviews(&self, tenant: TenantId) -> Result<Vec<ZoneOverview>, StoreError> {
        Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "{OVERVIEW} ORDER BY z.zone_name"
        )))
        .bind(tenant)
        .fetch_all(&self.pool)
        .await?)
    }

    /// One zone of the tenant with its last recorded pass.
    pub async fn zone_overview(
        &self,
        tenant: TenantId,
        zone: ZoneId,
    ) -> Result<ZoneOverview, StoreError> {
        Ok(
            sqlx::query_as(sqlx::AssertSqlSafe(format!("{OVERVIEW} AND z.id = $2")))
                .bind(tenant)
                .bind(zone)
                .fetch_one(&self.pool)
                .await?,
        )
    }

    /// The tenant's change requests (every zone's and configuration ones),
    /// newest first; only open ones when `open_only`.
    pub async fn tenant_change_requests(
        &self,
        tenant: TenantId,
        open_only: bool,
        limit: i64,
    ) -> Result<Vec<ChangeRequestListing>, StoreError> {
        Ok(sqlx::query_as(
            "SELECT r.id, r.name, r.kind, r.state, r.requester, r.reason, r.zone_id, z.zone_name,
                    r.created_at, r.expires_at,
                    (SELECT count(*) FROM approvals a WHERE a.tenant_id = r.tenant_id AND a.change_request_id = r.id AND a.accepted) AS accepted,
                    (SELECT count(*) FROM approvals a WHERE a.tenant_id = r.tenant_id AND a.change_request_id = r.id AND NOT a.accepted) AS refused
               FROM dns_change_requests r
               LEFT JOIN zones z ON z.tenant_id = r.tenant_id AND z.id = r.zone_id
              WHERE r.tenant_id = $1
                AND (NOT $2 OR r.state IN ('Pending','Approved','Executing'))
              ORDER BY r.created_at DESC, r.id LIMIT $3",
        )
        .bind(tenant)
        .bind(open_only)
        .bind(limit.clamp(1, 1000))
        .fetch_all(&self.pool)
        .await?)
    }

    /// The newest snapshot of a zone: the zone as the operator last recorded it.
    pub async fn latest_snapshot(
        &self,
        tenant: TenantId,
        zone: ZoneId,
    ) -> Result<Option<SnapshotRecord>, StoreError> {
        Ok(sqlx::query_as(
            "SELECT id, tenant_id, zone_id, zone_name, provider, reason, digest, record_sets, created_at
               FROM snapshots WHERE tenant_id = $1 AND zone_id = $2
              ORDER BY created_at DESC, id LIMIT 1",
        )
        .bind(tenant)
        .bind(zone)
        .fetch_optional(&self.pool)
        .await?)
    }

    /// Every approval submitted for a request, oldest first, with whether
    /// the operator has judged it yet.
    pub async fn submissions(
        &self,
        tenant: TenantId,
        request: ChangeRequestId,
    ) -> Result<Vec<SubmissionRecord>, StoreError> {
        Ok(sqlx::query_as(
            "SELECT id, change_request_id, document, fingerprint, submitted_at, judged_at
               FROM approval_submissions WHERE tenant_id = $1 AND change_request_id = $2
              ORDER BY submitted_at, id",
        )
        .bind(tenant)
        .bind(request)
        .fetch_all(&self.pool)
        .await?)
    }

    /// The tenant's policy in force, validated as the operator validates it
    /// (`None` before the operator's first pass over the tenant).
    pub async fn policy_in_force(&self, tenant: TenantId) -> Result<Option<Policy>, StoreError> {
        let stored = self.tenant_configs(tenant).await?;
        if stored.is_empty() {
            return Ok(None);
        }
        let objects: Vec<ConfigObject> = stored
            .into_iter()
            .filter_map(|c| {
                Some(ConfigObject {
                    kind: ConfigKind::parse(&c.kind)?,
                    namespace: c.namespace,
                    name: c.name,
                    spec: c.spec,
                })
            })
            .collect();
        in_force_policy(&objects)
            .map(|(policy, _)| Some(policy))
            .map_err(StoreError::Corrupt)
    }
}

/// The facts an approval of `request` is judged against: `tenant` is the
/// tenant's slug (its Tenant's name), `namespace` the request's namespace.
pub fn request_facts(
    tenant: &str,
    namespace: &str,
    request: &ChangeRequestRecord,
) -> Result<RequestFacts, StoreError> {
    let time = |t: DateTime<Utc>| timestamp_from_unix(t.timestamp(), t.timestamp_subsec_nanos());
    Ok(RequestFacts {
        tenant: tenant.to_owned(),
        namespace: namespace.to_owned(),
        name: request.name.clone(),
        digest: request
            .plan_digest
            .parse::<PlanDigest>()
            .map_err(|e| StoreError::Corrupt(format!("change request {}: {e}", request.name)))?,
        state: RequestState::parse(&request.state).ok_or_else(|| {
            StoreError::Corrupt(format!(
                "change request {}: state {}",
                request.name, request.state
            ))
        })?,
        requester: request.requester.clone(),
        created_at: time(request.created_at),
        expires_at: time(request.expires_at),
    })
}
