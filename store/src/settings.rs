//! SMTP settings (platform-wide and per tenant; the password stored
//! encrypted), the outgoing mail log and cron runs.

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

    pub async fn mail_messages(&self, tenant: TenantId) -> Result<Vec<MailRecord>, StoreError> {
        Ok(sqlx::query_as(
            "SELECT id, tenant_id, to_address, subject, status, attempts, last_error, created_at
             FROM mail_messages WHERE tenant_id = $1 ORDER BY created_at DESC",
        )
        .bind(tenant)
        .fetch_all(&self.pool)
        .await?)
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
}
