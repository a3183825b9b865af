//! Managed zones: which tenant manages which zone through which connection.

use chrono::{DateTime, Utc};

use crate::Store;
use crate::error::StoreError;
use crate::ids::{ConnectionId, TenantId, ZoneId};

#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct ZoneRecord {
    pub id: ZoneId,
    pub tenant_id: TenantId,
    pub namespace: String,
    pub name: String,
    pub zone_name: String,
    pub connection_id: Option<ConnectionId>,
    pub created_at: DateTime<Utc>,
}

const COLUMNS: &str = "id, tenant_id, namespace, name, zone_name, connection_id, created_at";

impl Store {
    /// Registers a zone for a tenant (by namespace and object name). A zone
    /// name another tenant manages is a conflict: two tenants never manage the same zone.
    pub async fn upsert_zone(
        &self,
        tenant: TenantId,
        namespace: &str,
        name: &str,
        zone_name: &str,
        connection: Option<ConnectionId>,
    ) -> Result<ZoneId, StoreError> {
        let existing: Option<(TenantId, ZoneId)> =
            sqlx::query_as("SELECT tenant_id, id FROM zones WHERE zone_name = $1")
                .bind(zone_name)
                .fetch_optional(&self.pool)
                .await?;
        if let Some((owner, _)) = existing
            && owner != tenant
        {
            return Err(StoreError::Conflict(format!(
                "zone {zone_name} is managed by another tenant"
            )));
        }
        Ok(sqlx::query_scalar(
            "INSERT INTO zones (id, tenant_id, namespace, name, zone_name, connection_id) VALUES ($1, $2, $3, $4, $5, $6)
             ON CONFLICT (tenant_id, namespace, name) DO UPDATE SET zone_name = EXCLUDED.zone_name, connection_id = EXCLUDED.connection_id
             RETURNING id",
        )
        .bind(ZoneId::new())
        .bind(tenant)
        .bind(namespace)
        .bind(name)
        .bind(zone_name)
        .bind(connection)
        .fetch_one(&self.pool)
        .await?)
    }

    /// The zone's id, registering it (or its new zone name or connection)
    /// only when that is needed.
    pub async fn ensure_zone(
        &self,
        tenant: TenantId,
        namespace: &str,
        name: &str,
        zone_name: &str,
        connection: Option<ConnectionId>,
    ) -> Result<ZoneId, StoreError> {
        let existing: Option<ZoneRecord> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM zones WHERE tenant_id = $1 AND namespace = $2 AND name = $3"
        )))
        .bind(tenant)
        .bind(namespace)
        .bind(name)
        .fetch_optional(&self.pool)
        .await?;
        match existing {
            Some(z) if z.zone_name == zone_name && z.connection_id == connection => Ok(z.id),
            _ => {
                self.upsert_zone(tenant, namespace, name, zone_name, connection)
                    .await
            }
        }
    }

    /// Every tenant's zones (for a pass and `zentralink status`).
    pub async fn all_zones(&self) -> Result<Vec<ZoneRecord>, StoreError> {
        Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM zones ORDER BY zone_name"
        )))
        .fetch_all(&self.pool)
        .await?)
    }

    /// A zone by its name, whatever its tenant (the CLI's way in; callers
    /// then work with the tenant the row names).
    pub async fn zone_by_zone_name(&self, zone_name: &str) -> Result<ZoneRecord, StoreError> {
        Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM zones WHERE zone_name = $1"
        )))
        .bind(zone_name)
        .fetch_one(&self.pool)
        .await?)
    }

    pub async fn zone(&self, tenant: TenantId, id: ZoneId) -> Result<ZoneRecord, StoreError> {
        Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM zones WHERE tenant_id = $1 AND id = $2"
        )))
        .bind(tenant)
        .bind(id)
        .fetch_one(&self.pool)
        .await?)
    }

    pub async fn zone_by_name(
        &self,
        tenant: TenantId,
        zone_name: &str,
    ) -> Result<ZoneRecord, StoreError> {
        Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM zones WHERE tenant_id = $1 AND zone_name = $2"
        )))
        .bind(tenant)
        .bind(zone_name)
        .fetch_one(&self.pool)
        .await?)
    }

    /// A zone by its object (`namespace/name`), when the store knows it.
    pub async fn zone_by_object(
        &self,
        tenant: TenantId,
        namespace: &str,
        name: &str,
    ) -> Result<Option<ZoneRecord>, StoreError> {
        Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM zones WHERE tenant_id = $1 AND namespace = $2 AND name = $3"
        )))
        .bind(tenant)
        .bind(namespace)
        .bind(name)
        .fetch_optional(&self.pool)
        .await?)
    }

    pub async fn zones(&self, tenant: TenantId) -> Result<Vec<ZoneRecord>, StoreError> {
        Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM zones WHERE tenant_id = $1 ORDER BY zone_name"
        )))
        .bind(tenant)
        .fetch_all(&self.pool)
        .await?)
    }
}
