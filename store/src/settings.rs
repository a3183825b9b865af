//! SMTP settings (platform-wide and per tenant; the password stored
//! encrypted) and the outgoing mail log.

use chrono::{DateTime, Utc};
use uuid::Uuid;
use zentralink_model::secrets::{SecretBinding, SecretString};

use crate::Store;
use crate::error::StoreError;
use crate::ids::TenantId;

/// SMTP settings to store.
#[derive(Debug, Clone)]
pub struct SmtpSettings {
    pub host: String,
    pub port: u16,
    pub username: Option<String>,
    pub password: Option<SecretString>,
    pub from_address: String,
    /// `none`, `starttls` or `tls`.
    pub tls: String,
}

/// A row of the mail log.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct MailRecord {
    pub id: Uuid,
    pub tenant_id: Option<TenantId>,
    pub to_address: String,
    pub subject: String,
    pub status: String,
    pub attempts: i32,
    pub last_error: Option<String>,
    pub created_at: DateTime<Utc>,
    pub sent_at: Option<DateTime<Utc>>,
    pub next_attempt_at: Option<DateTime<Utc>>,
    /// `notification`, `digest` or `test`.
    pub kind: String,
    /// The tenant's slug (none for the platform's own messages).
    pub tenant_slug: Option<String>,
}

/// The columns of [`MailRecord`], for `FROM mail_messages m LEFT JOIN tenants t`.
const MAIL_COLUMNS: &str =
    "m.id, m.tenant_id, m.to_address, m.subject, m.status, m.attempts, m.last_error,
     m.created_at, m.sent_at, m.next_attempt_at, m.kind, t.slug AS tenant_slug";

/// A queued message claimed for sending: its row stays locked (`FOR UPDATE
/// SKIP LOCKED`, so a concurrent flush passes it by) until the outcome of
/// the attempt is recorded with one of the methods, which commit.
#[derive(Debug)]
pub struct MailClaim {
    tx: sqlx::Transaction<'static, sqlx::Postgres>,
    pub id: Uuid,
    pub tenant_id: Option<TenantId>,
    pub to_address: String,
    pub subject: String,
    pub body: String,
    /// Attempts made before this one.
    pub attempts: i32,
}

impl MailClaim {
    /// The server accepted the message.
    pub async fn sent(mut self, now: DateTime<Utc>) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE mail_messages SET status = 'SENT', attempts = attempts + 1, sent_at = $2,
                    last_error = NULL, next_attempt_at = NULL
              WHERE id = $1",
        )
        .bind(self.id)
        .bind(now)
        .execute(&mut *self.tx)
        .await?;
        self.tx.commit().await?;
        Ok(())
    }

    /// The attempt failed; `retry_at` when it will be tried again (the
    /// row stays QUEUED), none when it is given up (FAILED).
    pub async fn failed(
        mut self,
        error: &str,
        retry_at: Option<DateTime<Utc>>,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE mail_messages SET attempts = attempts + 1, last_error = $2, next_attempt_at = $3,
                    status = CASE WHEN $3::timestamptz IS NULL THEN 'FAILED' ELSE 'QUEUED' END
              WHERE id = $1",
        )
        .bind(self.id)
        .bind(error)
        .bind(retry_at)
        .execute(&mut *self.tx)
        .await?;
        self.tx.commit().await?;
        Ok(())
    }

    /// No attempt was made (say, no SMTP server is configured): the row
    /// stays QUEUED, its attempts unchanged, with `reason` as what it says.
    pub async fn not_attempted(mut self, reason: &str) -> Result<(), StoreError> {
        sqlx::query("UPDATE mail_messages SET last_error = $2 WHERE id = $1")
            .bind(self.id)
            .bind(reason)
            .execute(&mut *self.tx)
            .await?;
        self.tx.commit().await?;
        Ok(())
    }
}

/// An SMTP password is bound to its tenant's settings (or the platform's).
pub(crate) fn smtp_binding(tenant: Option<TenantId>) -> SecretBinding {
    let owner = tenant.map_or_else(|| "platform".to_owned(), |t| t.to_string());
    SecretBinding::stored("smtp_settings", &[&owner])
}

impl Store {
    /// Stores SMTP settings for a tenant, or for the platform with `None`.
    pub async fn set_smtp_settings(
        &self,
        tenant: Option<TenantId>,
        s: &SmtpSettings,
    ) -> Result<(), StoreError> {
        let binding = smtp_binding(tenant);
        let password = s
            .password
            .as_ref()
            .map(|p| self.seal(p, &binding))
            .transpose()?;
        let mut tx = self.pool.begin().await?;
        sqlx::query("DELETE FROM smtp_settings WHERE tenant_id IS NOT DISTINCT FROM $1")
            .bind(tenant)
            .execute(&mut *tx)
            .await?;
        sqlx::query(
            "INSERT INTO smtp_settings (id, tenant_id, host, port, username, password_enc, from_address, tls)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(Uuid::new_v4())
        .bind(tenant)
        .bind(&s.host)
        .bind(i32::from(s.port))
        .bind(&s.username)
        .bind(password)
        .bind(&s.from_address)
        .bind(&s.tls)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// The SMTP settings in force for a tenant: its own, else the platform's, else none.
    pub async fn smtp_settings(
        &self,
        tenant: Option<TenantId>,
    ) -> Result<Option<SmtpSettings>, StoreError> {
        type Row = (
            Option<TenantId>,
            String,
            i32,
            Option<String>,
            Option<String>,
            String,
            String,
        );
        let row: Option<Row> = sqlx::query_as(
            "SELECT tenant_id, host, port, username, password_enc, from_address, tls FROM smtp_settings
             WHERE tenant_id = $1 OR tenant_id IS NULL
             ORDER BY tenant_id IS NULL LIMIT 1",
        )
        .bind(tenant)
        .fetch_optional(&self.pool)
        .await?;
        let Some((owner, host, port, username, password_enc, from_address, tls)) = row else {
            return Ok(None);
        };
        Ok(Some(SmtpSettings {
            host,
            port: u16::try_from(port)
                .map_err(|_| StoreError::Corrupt(format!("SMTP port {port}")))?,
            username,
            password: password_enc
                .map(|e| self.open(&e, &smtp_binding(owner)))
                .transpose()?,
            from_address,
            tls,
        }))
    }

    /// Queues an e-mail; every attempt is a row with its status.
    pub async fn queue_mail(
        &self,
        tenant: Option<TenantId>,
        to: &str,
        subject: &str,
        body: &str,
    ) -> Result<Uuid, StoreError> {
        Ok(sqlx::query_scalar(
            "INSERT INTO mail_messages (id, tenant_id, to_address, subject, body) VALUES ($1, $2, $3, $4, $5) RETURNING id",
        )
        .bind(Uuid::new_v4())
        .bind(tenant)
        .bind(to)
        .bind(subject)
        .bind(body)
        .fetch_one(&self.pool)
        .await?)
    }

    /// Records the outcome of a delivery attempt.
    pub async fn mark_mail(
        &self,
        id: Uuid,
        sent: bool,
        error: Option<&str>,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE mail_messages SET attempts = attempts + 1, status = $2, last_error = $3,
                    sent_at = CASE WHEN $2 = 'SENT' THEN now() ELSE sent_at END
             WHERE id = $1",
        )
        .bind(id)
        .bind(if sent { "SENT" } else { "FAILED" })
        .bind(error)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// A tenant's mail log, newest first.
    pub async fn mail_messages(&self, tenant: TenantId) -> Result<Vec<MailRecord>, StoreError> {
        Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {MAIL_COLUMNS} FROM mail_messages m LEFT JOIN tenants t ON t.id = m.tenant_id
              WHERE m.tenant_id = $1 ORDER BY m.created_at DESC, m.id LIMIT 500"
        )))
        .bind(tenant)
        .fetch_all(&self.pool)
        .await?)
    }

    /// Every tenant's mail log and the platform's, newest first (staff).
    pub async fn all_mail_messages(&self, limit: i64) -> Result<Vec<MailRecord>, StoreError> {
        Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {MAIL_COLUMNS} FROM mail_messages m LEFT JOIN tenants t ON t.id = m.tenant_id
              ORDER BY m.created_at DESC, m.id LIMIT $1"
        )))
        .bind(limit)
        .fetch_all(&self.pool)
        .await?)
    }

    /// One message of the log: a tenant's with `Some`, any with `None` (staff).
    pub async fn mail_message(
        &self,
        tenant: Option<TenantId>,
        id: Uuid,
    ) -> Result<MailRecord, StoreError> {
        Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {MAIL_COLUMNS} FROM mail_messages m LEFT JOIN tenants t ON t.id = m.tenant_id
              WHERE m.id = $1 AND ($2::uuid IS NULL OR m.tenant_id = $2)"
        )))
        .bind(id)
        .bind(tenant)
        .fetch_one(&self.pool)
        .await?)
    }

    /// Queues a message (a test message, a digest) with its kind.
    pub async fn queue_mail_of_kind(
        &self,
        mail: &crate::notifications::NewMail<'_>,
    ) -> Result<Uuid, StoreError> {
        crate::notifications::insert_mail(&self.pool, mail)
            .await?
            .ok_or_else(|| StoreError::Conflict("this message is queued already".into()))
    }

    /// Claims the oldest queued message that is due at `now` and not in
    /// `skip` (only the message `only`, when given), locking its row (rows
    /// another flush holds are passed by).
    pub async fn claim_due_mail(
        &self,
        now: DateTime<Utc>,
        skip: &[Uuid],
        only: Option<Uuid>,
    ) -> Result<Option<MailClaim>, StoreError> {
        let mut tx = self.pool.begin().await?;
        type Row = (Uuid, Option<TenantId>, String, String, String, i32);
        let row: Option<Row> = sqlx::query_as(
            "SELECT id, tenant_id, to_address, subject, body, attempts FROM mail_messages
              WHERE status = 'QUEUED' AND (next_attempt_at IS NULL OR next_attempt_at <= $1)
                AND NOT (id = ANY($2)) AND ($3::uuid IS NULL OR id = $3)
              ORDER BY COALESCE(next_attempt_at, created_at), created_at, id
              LIMIT 1 FOR UPDATE SKIP LOCKED",
        )
        .bind(now)
        .bind(skip)
        .bind(only)
        .fetch_optional(&mut *tx)
        .await?;
        Ok(row.map(
            |(id, tenant_id, to_address, subject, body, attempts)| MailClaim {
                tx,
                id,
                tenant_id,
                to_address,
                subject,
                body,
                attempts,
            },
        ))
    }

    /// The SMTP settings stored for exactly this owner (a tenant, or the
    /// platform with `None`), without falling back.
    pub async fn own_smtp_settings(
        &self,
        tenant: Option<TenantId>,
    ) -> Result<Option<SmtpSettings>, StoreError> {
        let exists: bool = sqlx::query_scalar(
            "SELECT EXISTS (SELECT 1 FROM smtp_settings WHERE tenant_id IS NOT DISTINCT FROM $1)",
        )
        .bind(tenant)
        .fetch_one(&self.pool)
        .await?;
        if !exists {
            return Ok(None);
        }
        match tenant {
            // A tenant's own row comes first in `smtp_settings`.
            Some(_) => self.smtp_settings(tenant).await,
            None => self.smtp_settings(None).await,
        }
    }

    /// Removes a tenant's override (or the platform's settings with `None`);
    /// whether there were any.
    pub async fn delete_smtp_settings(&self, tenant: Option<TenantId>) -> Result<bool, StoreError> {
        Ok(
            sqlx::query("DELETE FROM smtp_settings WHERE tenant_id IS NOT DISTINCT FROM $1")
                .bind(tenant)
                .execute(&self.pool)
                .await?
                .rows_affected()
                > 0,
        )
    }
}
