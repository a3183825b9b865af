//! ZentraLink's PostgreSQL store: migrations, tenant-scoped repositories,
//! encrypted secrets, the audit writer, snapshots and DNS change history.
//! Does I/O (PostgreSQL through sqlx).
//!
//! Tenant scoping is part of every signature: a method on tenant-owned data
//! takes a [`TenantId`] and filters by it, so another tenant's row is
//! "not found", never returned.

pub mod approvals;
pub mod audit;
pub mod changes;
pub mod connections;
pub mod cron;
pub mod dashboard;
pub mod error;
pub mod ids;
pub mod members;
pub mod notifications;
pub mod reconcile;
pub mod sessions;
pub mod settings;
pub mod snapshots;
pub mod status;
pub mod tenants;
pub mod tickets;
pub mod users;
pub mod zones;

use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgConnection, PgPool, PgPoolOptions};
use sqlx::{ConnectOptions, Connection};
use zentralink_model::secrets::{Keyring, SecretBinding, SecretError, SecretString};

pub use error::StoreError;
pub use ids::*;

/// The migrations in `migrations/`, embedded in the binary.
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("../migrations");

/// How hard to try reaching PostgreSQL at start-up. The defaults give up
/// after about 24 s of waiting when the server refuses connections (8
/// attempts, backoff 0.25 s doubling to 8 s), and never wait longer than
/// `deadline` in all, even when every attempt runs into its timeout.
#[derive(Debug, Clone, Copy)]
pub struct ConnectRetry {
    pub attempts: u32,
    pub first_delay: Duration,
    pub max_delay: Duration,
    /// How long one attempt may take.
    pub attempt_timeout: Duration,
    /// The longest the whole connect may take.
    pub deadline: Duration,
}

impl Default for ConnectRetry {
    fn default() -> Self {
        Self {
            attempts: 8,
            first_delay: Duration::from_millis(250),
            max_delay: Duration::from_secs(8),
            attempt_timeout: Duration::from_secs(3),
            deadline: Duration::from_secs(40),
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
    /// Connects, retrying with exponential backoff while the database is
    /// unreachable, and saying (as a warning) what it waits for. A URL that
    /// is not PostgreSQL's, a refused password or a missing database fail at once.
    pub async fn connect(
        url: &str,
        keyring: Keyring,
        retry: ConnectRetry,
    ) -> Result<Self, StoreError> {
        check_scheme(url)?;
        let options: PgConnectOptions = url.parse().map_err(|e| {
            StoreError::Unavailable(format!("DATABASE_URL is not a PostgreSQL URL: {e}"))
        })?;
        let options = options.log_statements(tracing::log::LevelFilter::Trace);
        let target = describe_url(url);
        let started = std::time::Instant::now();
        let attempts = retry.attempts.max(1);
        let mut delay = retry.first_delay;
        let mut last = String::new();
        let mut tried = 0;
        for attempt in 1..=attempts {
            tried = attempt;
            let outcome =
                tokio::time::timeout(retry.attempt_timeout, PgConnection::connect_with(&options))
                    .await;
            match outcome {
                Ok(Ok(probe)) => {
                    // Reachable: the pool opens its connections as they are needed.
                    let _ = probe.close().await;
                    let pool = PgPoolOptions::new()
                        .max_connections(32)
                        .acquire_timeout(retry.attempt_timeout.max(Duration::from_secs(10)))
                        .connect_lazy_with(options);
                    return Ok(Self { pool, keyring });
                }
                Ok(Err(e)) if is_permanent(&e) => {
                    return Err(StoreError::Unavailable(format!(
                        "PostgreSQL at {target} refused the connection: {}",
                        describe_error(&e)
                    )));
                }
                Ok(Err(e)) => last = describe_error(&e),
                Err(_) => {
                    last = format!("no answer within {:?}", retry.attempt_timeout);
                }
            }
            let remaining = retry.deadline.saturating_sub(started.elapsed());
            if attempt == attempts || remaining.is_zero() {
                break;
            }
            let wait = delay.min(remaining);
            tracing::warn!(
                "waiting for PostgreSQL at {target}: attempt {attempt} of {attempts} failed ({last}); trying again in {:.2} s",
                wait.as_secs_f64()
            );
            tokio::time::sleep(wait).await;
            delay = (delay * 2).min(retry.max_delay);
        }
        Err(StoreError::Unavailable(format!(
            "could not reach PostgreSQL at {target} after {tried} attempts in {:.1} s: {last}. Is it running? (scripts/test.sh and scripts/quickstart.sh start it)",
            started.elapsed().as_secs_f64()
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

    /// Whether the database answers.
    pub async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    pub fn keyring(&self) -> &Keyring {
        &self.keyring
    }

    /// Encrypts a secret for one place (table row) with a fresh random nonce.
    pub fn seal(
        &self,
        secret: &SecretString,
        binding: &SecretBinding,
    ) -> Result<String, StoreError> {
        Ok(self.keyring.seal(secret, binding, fresh_nonce()?))
    }

    pub fn open(
        &self,
        envelope: &str,
        binding: &SecretBinding,
    ) -> Result<SecretString, StoreError> {
        self.keyring
            .open(envelope, binding)
            .map_err(StoreError::Secret)
    }

    /// Moves every stored secret to the current key, each keeping the binding
    /// to its row. Returns how many values were re-encrypted.
    pub async fn reencrypt_secrets(&self) -> Result<u64, StoreError> {
        let mut moved = 0;
        let mut tx = self.pool.begin().await?;
        let connections: Vec<(uuid::Uuid, TenantId, String, String, String)> = sqlx::query_as(
            "SELECT id, tenant_id, namespace, name, credentials_enc FROM provider_connections
             WHERE credentials_enc IS NOT NULL FOR UPDATE",
        )
        .fetch_all(&mut *tx)
        .await?;
        let mut updates = Vec::new();
        for (id, tenant, namespace, name, envelope) in connections {
            let binding = connections::credentials_binding(tenant, &namespace, &name);
            updates.push((
                "provider_connections",
                "credentials_enc",
                id,
                envelope,
                binding,
            ));
        }
        let totp: Vec<(uuid::Uuid, String)> =
            sqlx::query_as("SELECT user_id, secret_enc FROM totp_secrets FOR UPDATE")
                .fetch_all(&mut *tx)
                .await?;
        for (user, envelope) in totp {
            let binding = users::totp_binding(UserId(user));
            updates.push(("totp_secrets", "secret_enc", user, envelope, binding));
        }
        let smtp: Vec<(uuid::Uuid, Option<TenantId>, String)> = sqlx::query_as(
            "SELECT id, tenant_id, password_enc FROM smtp_settings
             WHERE password_enc IS NOT NULL FOR UPDATE",
        )
        .fetch_all(&mut *tx)
        .await?;
        for (id, tenant, envelope) in smtp {
            let binding = settings::smtp_binding(tenant);
            updates.push(("smtp_settings", "password_enc", id, envelope, binding));
        }
        for (table, column, id, envelope, binding) in updates {
            if !self.keyring.needs_reencryption(&envelope) {
                continue;
            }
            let fresh = self
                .keyring
                .reencrypt(&envelope, &binding, fresh_nonce()?)
                .map_err(StoreError::Secret)?;
            let key = if table == "totp_secrets" {
                "user_id"
            } else {
                "id"
            };
            sqlx::query(sqlx::AssertSqlSafe(format!(
                "UPDATE {table} SET {column} = $1 WHERE {key} = $2"
            )))
            .bind(fresh)
            .bind(id)
            .execute(&mut *tx)
            .await?;
            moved += 1;
        }
        tx.commit().await?;
        Ok(moved)
    }
}

/// Refuses URLs of other databases at once (sqlx would read some of them as PostgreSQL's).
fn check_scheme(url: &str) -> Result<(), StoreError> {
    let scheme = url.split_once("://").map(|(s, _)| s.to_ascii_lowercase());
    match scheme.as_deref() {
        Some("postgres" | "postgresql") => Ok(()),
        Some(other) => Err(StoreError::Unavailable(format!(
            "DATABASE_URL uses the scheme {:?}; ZentraLink stores its data in PostgreSQL: use postgres://USER@HOST:PORT/DATABASE",
            zentralink_model::secrets::shorten(other, 32)
        ))),
        None => Err(StoreError::Unavailable(
            "DATABASE_URL is not a URL; use postgres://USER@HOST:PORT/DATABASE".into(),
        )),
    }
}

/// Authentication failures and missing databases do not get better by waiting.
fn is_permanent(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::Database(db) => matches!(
            db.code().as_deref(),
            // invalid_authorization_specification, invalid_password, invalid_catalog_name
            Some("28000" | "28P01" | "3D000")
        ),
        sqlx::Error::Configuration(_) | sqlx::Error::Tls(_) => true,
        _ => false,
    }
}

/// An error's message with its causes (never the URL's password: sqlx does not print it).
fn describe_error(e: &sqlx::Error) -> String {
    let mut out = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        let more = s.to_string();
        if !out.contains(&more) {
            out.push_str(": ");
            out.push_str(&more);
        }
        source = s.source();
    }
    out
}

/// Twelve fresh random bytes from the operating system.
pub fn fresh_nonce() -> Result<[u8; 12], StoreError> {
    let mut nonce = [0u8; 12];
    getrandom::fill(&mut nonce)
        .map_err(|e| StoreError::Secret(SecretError::NoRandomness(e.to_string())))?;
    Ok(nonce)
}
