//! Provider connections. Credentials are stored only encrypted and are read
//! back only through `connection_credentials`; the record type does not carry them.

use chrono::{DateTime, Utc};
use zentralink_model::secrets::{SecretBinding, SecretString};

use crate::Store;
use crate::error::StoreError;
use crate::ids::{ConnectionId, TenantId};

/// A connection to create or update.
#[derive(Debug, Clone)]
pub struct NewConnection<'a> {
    pub namespace: &'a str,
    pub name: &'a str,
    pub provider_type: &'a str,
    /// Non-secret settings (URL, server id, key name, ...).
    pub settings: serde_json::Value,
    pub credentials: Option<&'a SecretString>,
    pub mode: &'a str,
    pub acknowledge_live_writes: bool,
}

/// A stored connection, without its credentials.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct ConnectionRecord {
    pub id: ConnectionId,
    pub tenant_id: TenantId,
    pub namespace: String,
    pub name: String,
    pub provider_type: String,
    pub settings: serde_json::Value,
    pub has_credentials: bool,
    pub mode: String,
    pub acknowledge_live_writes: bool,
    pub last_test_at: Option<DateTime<Utc>>,
    pub last_test_ok: Option<bool>,
    pub last_test_message: Option<String>,
    pub last_probe_at: Option<DateTime<Utc>>,
    pub last_probe_ok: Option<bool>,
    pub last_probe_message: Option<String>,
    pub updated_at: DateTime<Utc>,
}

/// Which check a result belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConnectionCheck {
    /// The connection test (reachable, credentials accepted).
    Test,
    /// The write-permission probe.
    Probe,
}

const COLUMNS: &str = "id, tenant_id, namespace, name, provider_type, settings, credentials_enc IS NOT NULL AS has_credentials, mode, acknowledge_live_writes, last_test_at, last_test_ok, last_test_message, last_probe_at, last_probe_ok, last_probe_message, updated_at";

/// Stored connection credentials are bound to their tenant and connection:
/// a value copied into another row does not decrypt.
pub(crate) fn credentials_binding(tenant: TenantId, namespace: &str, name: &str) -> SecretBinding {
    SecretBinding::stored(
        "provider_connections",
        &[&tenant.to_string(), namespace, name],
    )
}

impl Store {
    /// Creates or updates a connection (by namespace and name). A change of
    /// settings, credentials or mode clears the test and probe results: a
    /// connection is live only after they pass again.
    pub async fn upsert_connection(
        &self,
        tenant: TenantId,
        c: &NewConnection<'_>,
    ) -> Result<ConnectionId, StoreError> {
        let binding = credentials_binding(tenant, c.namespace, c.name);
        let credentials = c.credentials.map(|s| self.seal(s, &binding)).transpose()?;
        Ok(sqlx::query_scalar(
            "INSERT INTO provider_connections (id, tenant_id, namespace, name, provider_type, settings, credentials_enc, mode, acknowledge_live_writes)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
             ON CONFLICT (tenant_id, namespace, name) DO UPDATE SET
                provider_type = EXCLUDED.provider_type,
                settings = EXCLUDED.settings,
                credentials_enc = EXCLUDED.credentials_enc,
                mode = EXCLUDED.mode,
                acknowledge_live_writes = EXCLUDED.acknowledge_live_writes,
                last_test_at = NULL, last_test_ok = NULL, last_test_message = NULL,
                last_probe_at = NULL, last_probe_ok = NULL, last_probe_message = NULL,
                updated_at = now()
             RETURNING id",
        )
        .bind(ConnectionId::new())
        .bind(tenant)
        .bind(c.namespace)
        .bind(c.name)
        .bind(c.provider_type)
        .bind(&c.settings)
        .bind(credentials)
        .bind(c.mode)
        .bind(c.acknowledge_live_writes)
        .fetch_one(&self.pool)
        .await?)
    }

    /// The connection's row, creating or updating it only when its type,
    /// settings, mode or acknowledgement changed (which clears its checks).
    /// Credentials are not stored here: they stay where the manifest says.
    pub async fn ensure_connection(
        &self,
        tenant: TenantId,
        c: &NewConnection<'_>,
    ) -> Result<ConnectionRecord, StoreError> {
        if let Ok(existing) = self.connection_by_name(tenant, c.namespace, c.name).await
            && existing.provider_type == c.provider_type
            && existing.settings == c.settings
            && existing.mode == c.mode
            && existing.acknowledge_live_writes == c.acknowledge_live_writes
            && !existing.has_credentials
            && c.credentials.is_none()
        {
            return Ok(existing);
        }
        let id = self.upsert_connection(tenant, c).await?;
        self.connection(tenant, id).await
    }

    pub async fn connection(
        &self,
        tenant: TenantId,
        id: ConnectionId,
    ) -> Result<ConnectionRecord, StoreError> {
        Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM provider_connections WHERE tenant_id = $1 AND id = $2"
        )))
        .bind(tenant)
        .bind(id)
        .fetch_one(&self.pool)
        .await?)
    }

    pub async fn connection_by_name(
        &self,
        tenant: TenantId,
        namespace: &str,
        name: &str,
    ) -> Result<ConnectionRecord, StoreError> {
        Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM provider_connections WHERE tenant_id = $1 AND namespace = $2 AND name = $3"
        )))
        .bind(tenant)
        .bind(namespace)
        .bind(name)
        .fetch_one(&self.pool)
        .await?)
    }

    pub async fn connections(&self, tenant: TenantId) -> Result<Vec<ConnectionRecord>, StoreError> {
        Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM provider_connections WHERE tenant_id = $1 ORDER BY namespace, name"
        )))
        .bind(tenant)
        .fetch_all(&self.pool)
        .await?)
    }

    /// The decrypted credentials, for the provider client only.
    pub async fn connection_credentials(
        &self,
        tenant: TenantId,
        id: ConnectionId,
    ) -> Result<Option<SecretString>, StoreError> {
        let (namespace, name, enc): (String, String, Option<String>) = sqlx::query_as(
            "SELECT namespace, name, credentials_enc FROM provider_connections WHERE tenant_id = $1 AND id = $2",
        )
        .bind(tenant)
        .bind(id)
        .fetch_one(&self.pool)
        .await?;
        let binding = credentials_binding(tenant, &namespace, &name);
        enc.map(|e| self.open(&e, &binding)).transpose()
    }

    /// Records the result of a connection test or write probe.
    pub async fn record_connection_check(
        &self,
        tenant: TenantId,
        id: ConnectionId,
        check: ConnectionCheck,
        ok: bool,
        message: &str,
    ) -> Result<(), StoreError> {
        let sql = match check {
            ConnectionCheck::Test => {
                "UPDATE provider_connections SET last_test_at = now(), last_test_ok = $3, last_test_message = $4 WHERE tenant_id = $1 AND id = $2"
            }
            ConnectionCheck::Probe => {
                "UPDATE provider_connections SET last_probe_at = now(), last_probe_ok = $3, last_probe_message = $4 WHERE tenant_id = $1 AND id = $2"
            }
        };
        let done = sqlx::query(sql)
            .bind(tenant)
            .bind(id)
            .bind(ok)
            .bind(message)
            .execute(&self.pool)
            .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound);
        }
        Ok(())
    }
}
