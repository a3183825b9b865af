//! ZentraLink's PostgreSQL store: migrations, tenant-scoped repositories,
//! encrypted secrets, the audit writer, snapshots and DNS change history.
//! Does I/O (PostgreSQL through sqlx).
//!
//! Tenant scoping is part of every signature: a method on tenant-owned data
//! takes a [`TenantId`] and filters by it, so another tenant's row is
//! "not found", never returned.

pub mod audit;
pub mod changes;
pub mod connections;
pub mod error;
pub mod ids;
pub mod settings;
pub mod snapshots;
pub mod tenants;
pub mod users;
pub mod zones;

use std::time::Duration;

use sqlx::ConnectOptions;
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use zentralink_model::secrets::{Keyring, SecretError, SecretString};

pub use error::StoreError;
pub use ids::*;

/// The migrations in `migrations/`, embedded in the binary.
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("../migrations");

/// How hard to try reaching PostgreSQL at start-up.
#[derive(Debug, Clone, Copy)]
pub struct ConnectRetry {
    pub attempts: u32,
    pub first_delay: Duration,
    pub max_delay: Duration,
    /// How long one attempt may take.
    pub attempt_timeout: Duration,
}

impl Default for ConnectRetry {
    fn default() -> Self {
        Self {
            attempts: 8,
            first_delay: Duration::from_millis(250),
            max_delay: Duration::from_secs(8),
            attempt_timeout: Duration::from_secs(10),
        }
    }
}

/// The store: a connection pool and the keyring for secrets.
#[derive(Debug, Clone)]
pub struct Store {
    pool: PgPool,
    keyring: Keyring,
}

/// `host:port/database` of a connection URL, never the password.
pub fn describe_url(url: &str) -> String {
    match url.parse::<PgConnectOptions>() {
        Ok(o) => format!(
            "{}:{}/{}",
            o.get_host(),
            o.get_port(),
            o.get_database().unwrap_or("postgres")
        ),
        Err(_) => "the configured DATABASE_URL".into(),
    }
}

impl Store {
    /// Connects, retrying with exponential backoff while the database is unreachable.
    pub async fn connect(
        url: &str,
        keyring: Keyring,
        retry: ConnectRetry,
    ) -> Result<Self, StoreError> {
        let options: PgConnectOptions = url.parse().map_err(|e| {
            StoreError::Unavailable(format!("DATABASE_URL is not a PostgreSQL URL: {e}"))
        })?;
        let options = options.log_statements(tracing::log::LevelFilter::Trace);
        let target = describe_url(url);
        let mut delay = retry.first_delay;
        let mut last = String::new();
        for attempt in 1..=retry.attempts.max(1) {
            match PgPoolOptions::new()
                .max_connections(16)
                .acquire_timeout(retry.attempt_timeout)
                .connect_with(options.clone())
                .await
            {
                Ok(pool) => return Ok(Self { pool, keyring }),
                Err(e) => {
                    last = e.to_string();
                    tracing::warn!(attempt, %target, error = %last, "PostgreSQL is not reachable yet");
                    if attempt < retry.attempts {
                        tokio::time::sleep(delay).await;
                        delay = (delay * 2).min(retry.max_delay);
                    }
                }
            }
        }
        Err(StoreError::Unavailable(format!(
            "could not reach PostgreSQL at {target} after {} attempts: {last}. Is it running? (scripts/test.sh and scripts/quickstart.sh start it)",
            retry.attempts.max(1)
        )))
    }

    /// A store over an existing pool (tests).
    pub fn from_pool(pool: PgPool, keyring: Keyring) -> Self {
        Self { pool, keyring }
    }

    /// Applies pending migrations. Each migration runs in its own transaction:
    /// one that fails leaves the schema as it was.
    pub async fn migrate(&self) -> Result<(), StoreError> {
        MIGRATOR
            .run(&self.pool)
            .await
            .map_err(|e| StoreError::Migration(e.to_string()))
    }

    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    pub fn keyring(&self) -> &Keyring {
        &self.keyring
    }

    /// Encrypts a secret with a fresh random nonce.
    pub fn seal(&self, secret: &SecretString) -> Result<String, StoreError> {
        Ok(self.keyring.seal(secret, fresh_nonce()?))
    }

    pub fn open(&self, envelope: &str) -> Result<SecretString, StoreError> {
        self.keyring.open(envelope).map_err(StoreError::Secret)
    }

    /// Moves every stored secret to the current key. Returns how many values were re-encrypted.
    pub async fn reencrypt_secrets(&self) -> Result<u64, StoreError> {
        let mut moved = 0;
        let mut tx = self.pool.begin().await?;
        for (table, key, column) in [
            ("provider_connections", "id", "credentials_enc"),
            ("totp_secrets", "user_id", "secret_enc"),
            ("smtp_settings", "id", "password_enc"),
        ] {
            let rows: Vec<(uuid::Uuid, String)> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
                "SELECT {key}, {column} FROM {table} WHERE {column} IS NOT NULL FOR UPDATE"
            )))
            .fetch_all(&mut *tx)
            .await?;
            for (id, envelope) in rows {
                if self.keyring.needs_reencryption(&envelope) {
                    let fresh = self
                        .keyring
                        .reencrypt(&envelope, fresh_nonce()?)
                        .map_err(StoreError::Secret)?;
                    sqlx::query(sqlx::AssertSqlSafe(format!(
                        "UPDATE {table} SET {column} = $1 WHERE {key} = $2"
                    )))
                    .bind(fresh)
                    .bind(id)
                    .execute(&mut *tx)
                    .await?;
                    moved += 1;
                }
            }
        }
        tx.commit().await?;
        Ok(moved)
    }
}

/// Twelve fresh random bytes from the operating system.
pub fn fresh_nonce() -> Result<[u8; 12], StoreError> {
    let mut nonce = [0u8; 12];
    getrandom::fill(&mut nonce).map_err(|e| {
        StoreError::Secret(SecretError::Tampered(format!(
            "no randomness available: {e}"
        )))
    })?;
    Ok(nonce)
}
