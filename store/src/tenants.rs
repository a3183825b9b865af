//! Tenants and their lookup by slug.

use chrono::{DateTime, Utc};

use crate::Store;
use crate::error::StoreError;
use crate::ids::TenantId;

#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct TenantRecord {
    pub id: TenantId,
    pub slug: String,
    pub display_name: String,
    pub created_at: DateTime<Utc>,
}

impl Store {
    /// Creates the tenant or updates its display name; returns its id.
    pub async fn upsert_tenant(
        &self,
        slug: &str,
        display_name: &str,
    ) -> Result<TenantId, StoreError> {
        Ok(sqlx::query_scalar(
            "INSERT INTO tenants (id, slug, display_name) VALUES ($1, $2, $3)
             ON CONFLICT (slug) DO UPDATE SET display_name = EXCLUDED.display_name
             RETURNING id",
        )
        .bind(TenantId::new())
        .bind(slug)
        .bind(display_name)
        .fetch_one(&self.pool)
        .await?)
    }

    /// The tenant's id, creating it or updating its display name only when
    /// that is needed (a pass that changes nothing writes nothing).
    pub async fn ensure_tenant(
        &self,
        slug: &str,
        display_name: &str,
    ) -> Result<TenantId, StoreError> {
        let existing: Option<(TenantId, String)> =
            sqlx::query_as("SELECT id, display_name FROM tenants WHERE slug = $1")
                .bind(slug)
                .fetch_optional(&self.pool)
                .await?;
        match existing {
            Some((id, name)) if name == display_name => Ok(id),
            _ => self.upsert_tenant(slug, display_name).await,
        }
    }

    pub async fn tenant(&self, id: TenantId) -> Result<TenantRecord, StoreError> {
        Ok(
            sqlx::query_as("SELECT id, slug, display_name, created_at FROM tenants WHERE id = $1")
                .bind(id)
                .fetch_one(&self.pool)
                .await?,
        )
    }

    pub async fn tenant_by_slug(&self, slug: &str) -> Result<TenantRecord, StoreError> {
        Ok(
            sqlx::query_as(
                "SELECT id, slug, display_name, created_at FROM tenants WHERE slug = $1",
            )
            .bind(slug)
            .fetch_one(&self.pool)
            .await?,
        )
    }

    pub async fn tenants(&self) -> Result<Vec<TenantRecord>, StoreError> {
        Ok(
            sqlx::query_as("SELECT id, slug, display_name, created_at FROM tenants ORDER BY slug")
                .fetch_all(&self.pool)
                .await?,
        )
    }
}
