//! The public status page's data: incidents and their updates (managed by
//! the platform's staff), what the operator last recorded (reconcile passes,
//! connection checks aggregated per provider kind, never per tenant), and
//! whether the schema is the one this build expects. Does I/O (PostgreSQL).

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::Store;
use crate::error::StoreError;

/// How an incident affects the service.
pub const IMPACTS: [&str; 4] = ["none", "minor", "major", "critical"];
/// Where an incident stands.
pub const INCIDENT_STATUSES: [&str; 4] = ["investigating", "identified", "monitoring", "resolved"];

/// An incident.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct IncidentRecord {
    pub id: Uuid,
    pub title: String,
    pub impact: String,
    pub status: String,
    pub started_at: DateTime<Utc>,
    pub resolved_at: Option<DateTime<Utc>>,
}

/// One update of an incident.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct IncidentUpdateRecord {
    pub id: Uuid,
    pub incident_id: Uuid,
    pub status: String,
    pub body: String,
    pub created_at: DateTime<Utc>,
}

/// An incident to open.
#[derive(Debug, Clone)]
pub struct NewIncident<'a> {
    pub title: &'a str,
    pub impact: &'a str,
    pub status: &'a str,
    /// The first update's text.
    pub body: &'a str,
    pub at: DateTime<Utc>,
}

/// What the operator last recorded of its reconcile passes, over every source.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct OperatorSeen {
    /// The newest pass of any source.
    pub last_pass_at: Option<DateTime<Utc>>,
    /// Sources whose last pass is at or after the `since` asked for.
    pub recent_sources: i64,
    /// Of those, the ones whose last pass had errors.
    pub recent_failing: i64,
}

/// The connection checks of one provider kind, over every tenant: counts
/// only, never a name or a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ProviderSeen {
    pub connections: i64,
    /// Connections with a recorded test.
    pub checked: i64,
    /// Connections whose last test or last write probe failed.
    pub failing: i64,
    pub last_checked_at: Option<DateTime<Utc>>,
}

/// Whether the database's schema is the one this build's migrations make.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SchemaState {
    Current,
    /// A migration of this build is not applied.
    Pending,
    /// A migration is recorded as failed.
    Failed,
    /// An applied migration differs from this build's (checksum), or the
    /// database has one this build does not know.
    Differs,
}

impl Store {
    /// Opens an incident with its first update, in one transaction.
    pub async fn open_incident(&self, new: &NewIncident<'_>) -> Result<Uuid, StoreError> {
        let id = Uuid::new_v4();
        let resolved_at = (new.status == "resolved").then_some(new.at);
        let mut tx = self.pool.begin().await?;
        sqlx::query(
            "INSERT INTO status_incidents (id, title, impact, status, started_at, resolved_at, created_at)
             VALUES ($1, $2, $3, $4, $5, $6, $5)",
        )
        .bind(id)
        .bind(new.title)
        .bind(new.impact)
        .bind(new.status)
        .bind(new.at)
        .bind(resolved_at)
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "INSERT INTO status_incident_updates (id, incident_id, status, body, created_at) VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(Uuid::new_v4())
        .bind(id)
        .bind(new.status)
        .bind(new.body)
        .bind(new.at)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(id)
    }

    /// Posts an update that also moves the incident to `status` (resolved
    /// sets `resolved_at`; any other status clears it: reopened). Returns
    /// the status it had before.
    pub async fn update_incident(
        &self,
        id: Uuid,
        status: &str,
        body: &str,
        at: DateTime<Utc>,
    ) -> Result<String, StoreError> {
        let mut tx = self.pool.begin().await?;
        let before: Option<String> =
            sqlx::query_scalar("SELECT status FROM status_incidents WHERE id = $1 FOR UPDATE")
                .bind(id)
                .fetch_optional(&mut *tx)
                .await?;
        let before = before.ok_or(StoreError::NotFound)?;
        sqlx::query(
            "UPDATE status_incidents SET status = $2,
                    resolved_at = CASE WHEN $2 = 'resolved' THEN COALESCE(resolved_at, $3) ELSE NULL END
             WHERE id = $1",
        )
        .bind(id)
        .bind(status)
        .bind(at)
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "INSERT INTO status_incident_updates (id, incident_id, status, body, created_at) VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(Uuid::new_v4())
        .bind(id)
        .bind(status)
        .bind(body)
        .bind(at)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(before)
    }

    pub async fn incident(&self, id: Uuid) -> Result<IncidentRecord, StoreError> {
        Ok(sqlx::query_as(
            "SELECT id, title, impact, status, started_at, resolved_at FROM status_incidents WHERE id = $1",
        )
        .bind(id)
        .fetch_one(&self.pool)
        .await?)
    }

    /// Open incidents (newest first), then those resolved at or after
    /// `resolved_since` (most recently resolved first).
    pub async fn incidents(
        &self,
        resolved_since: DateTime<Utc>,
    ) -> Result<Vec<IncidentRecord>, StoreError> {
        Ok(sqlx::query_as(
            "SELECT id, title, impact, status, started_at, resolved_at FROM status_incidents
             WHERE resolved_at IS NULL OR resolved_at >= $1
             ORDER BY resolved_at IS NOT NULL, COALESCE(resolved_at, started_at) DESC, id",
        )
        .bind(resolved_since)
        .fetch_all(&self.pool)
        .await?)
    }

    /// The updates of the incidents, newest first within each.
    pub async fn incident_updates(
        &self,
        incidents: &[Uuid],
    ) -> Result<BTreeMap<Uuid, Vec<IncidentUpdateRecord>>, StoreError> {
        let rows: Vec<IncidentUpdateRecord> = sqlx::query_as(
            "SELECT id, incident_id, status, body, created_at FROM status_incident_updates
             WHERE incident_id = ANY($1) ORDER BY created_at DESC, id DESC",
        )
        .bind(incidents)
        .fetch_all(&self.pool)
        .await?;
        let mut by_incident: BTreeMap<Uuid, Vec<IncidentUpdateRecord>> = BTreeMap::new();
        for row in rows {
            by_incident.entry(row.incident_id).or_default().push(row);
        }
        Ok(by_incident)
    }

    /// The operator's reconcile passes: the newest, and how many sources
    /// passed at or after `since` and with errors.
    pub async fn operator_seen(&self, since: DateTime<Utc>) -> Result<OperatorSeen, StoreError> {
        let (last_pass_at, recent_sources, recent_failing): (Option<DateTime<Utc>>, i64, i64) =
            sqlx::query_as(
                "SELECT max(last_pass_at),
                        count(*) FILTER (WHERE last_pass_at >= $1),
                        count(*) FILTER (WHERE last_pass_at >= $1 AND last_pass_ok IS NOT TRUE)
                 FROM source_states",
            )
            .bind(since)
            .fetch_one(&self.pool)
            .await?;
        Ok(OperatorSeen {
            last_pass_at,
            recent_sources,
            recent_failing,
        })
    }

    /// The connection checks per provider kind (`powerdns`, `hetzner`, ...),
    /// over every tenant.
    pub async fn providers_seen(&self) -> Result<BTreeMap<String, ProviderSeen>, StoreError> {
        type Row = (String, i64, i64, i64, Option<DateTime<Utc>>);
        let rows: Vec<Row> = sqlx::query_as(
            "SELECT provider_type,
                    count(*),
                    count(*) FILTER (WHERE last_test_ok IS NOT NULL),
                    count(*) FILTER (WHERE last_test_ok = false OR last_probe_ok = false),
                    max(GREATEST(last_test_at, last_probe_at))
             FROM provider_connections GROUP BY provider_type",
        )
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .into_iter()
            .map(|(kind, connections, checked, failing, last_checked_at)| {
                (
                    kind,
                    ProviderSeen {
                        connections,
                        checked,
                        failing,
                        last_checked_at,
                    },
                )
            })
            .collect())
    }

    /// Compares the database's applied migrations with this build's
    /// ([`crate::MIGRATOR`]): versions, success and checksums.
    pub async fn schema_state(&self) -> Result<SchemaState, StoreError> {
        let applied: Result<Vec<(i64, bool, Vec<u8>)>, sqlx::Error> =
            sqlx::query_as("SELECT version, success, checksum FROM _sqlx_migrations")
                .fetch_all(&self.pool)
                .await;
        let applied = match applied {
            Ok(rows) => rows,
            // No migration table: nothing was ever applied.
            Err(sqlx::Error::Database(db)) if db.code().as_deref() == Some("42P01") => {
                return Ok(SchemaState::Pending);
            }
            Err(e) => return Err(e.into()),
        };
        let applied: BTreeMap<i64, (bool, Vec<u8>)> = applied
            .into_iter()
            .map(|(version, success, checksum)| (version, (success, checksum)))
            .collect();
        Ok(compare_schema(
            crate::MIGRATOR
                .iter()
                .filter(|m| !m.migration_type.is_down_migration())
                .map(|m| (m.version, m.checksum.as_ref())),
            &applied,
        ))
    }
}

/// The schema's state from this build's migrations (version, checksum) and
/// the applied ones (version → success, checksum).
fn compare_schema<'a>(
    expected: impl Iterator<Item = (i64, &'a [u8])>,
    applied: &BTreeMap<i64, (bool, Vec<u8>)>,
) -> SchemaState {
    if applied.values().any(|(success, _)| !success) {
        return SchemaState::Failed;
    }
    let mut known = 0;
    for (version, checksum) in expected {
        match applied.get(&version) {
            None => return SchemaState::Pending,
            Some((_, applied_checksum)) if applied_checksum.as_slice() != checksum => {
                return SchemaState::Differs;
            }
            Some(_) => known += 1,
        }
    }
    if known == applied.len() {
        SchemaState::Current
    } else {
        SchemaState::Differs
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn applied(rows: &[(i64, bool, &[u8])]) -> BTreeMap<i64, (bool, Vec<u8>)> {
        rows.iter()
            .map(|(v, ok, c)| (*v, (*ok, c.to_vec())))
            .collect()
    }

    #[test]
    fn the_schema_is_current_only_when_every_migration_is_applied_as_built() {
        let built = [(1, &b"a"[..]), (2, &b"b"[..])];
        let state = |rows: &[(i64, bool, &[u8])]| compare_schema(built.into_iter(), &applied(rows));
        assert_eq!(
            state(&[(1, true, b"a"), (2, true, b"b")]),
            SchemaState::Current
        );
        assert_eq!(state(&[(1, true, b"a")]), SchemaState::Pending);
        assert_eq!(
            state(&[(1, true, b"a"), (2, false, b"b")]),
            SchemaState::Failed
        );
        assert_eq!(
            state(&[(1, true, b"a"), (2, true, b"x")]),
            SchemaState::Differs
        );
        assert_eq!(
            state(&[(1, true, b"a"), (2, true, b"b"), (3, true, b"c")]),
            SchemaState::Differs
        );
    }
}
