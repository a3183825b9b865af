//! Users, memberships (a role per tenant) and second-factor secrets. TOTP
//! secrets are stored encrypted; backup codes only as argon2id hashes made by the caller.

use chrono::{DateTime, Utc};
use zentralink_model::secrets::{SecretBinding, SecretString};

use crate::Store;
use crate::error::StoreError;
use crate::ids::{TenantId, UserId};

#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct UserRecord {
    pub id: UserId,
    pub email: String,
    pub display_name: String,
    pub platform_admin: bool,
    pub disabled_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
}

/// A TOTP secret is bound to its user.
pub(crate) fn totp_binding(user: UserId) -> SecretBinding {
    SecretBinding::stored("totp_secrets", &[&user.to_string()])
}

impl Store {
    /// Creates a user with an argon2id password hash (never a password).
    pub async fn create_user(
        &self,
        email: &str,
        display_name: &str,
        password_hash: &str,
    ) -> Result<UserId, StoreError> {
        if !password_hash.starts_with("$argon2id$") {
            return Err(StoreError::Conflict(
                "password_hash must be an argon2id PHC string".into(),
            ));
        }
        Ok(sqlx::query_scalar(
            "INSERT INTO users (id, email, display_name, password_hash) VALUES ($1, $2, $3, $4) RETURNING id",
        )
        .bind(UserId::new())
        .bind(email)
        .bind(display_name)
        .bind(password_hash)
        .fetch_one(&self.pool)
        .await?)
    }

    pub async fn user(&self, id: UserId) -> Result<UserRecord, StoreError> {
        Ok(sqlx::query_as("SELECT id, email, display_name, platform_admin, disabled_at, created_at FROM users WHERE id = $1")
            .bind(id)
            .fetch_one(&self.pool)
            .await?)
    }

    /// Gives a user a role in a tenant (or changes it).
    pub async fn set_membership(
        &self,
        tenant: TenantId,
        user: UserId,
        role: &str,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO memberships (tenant_id, user_id, role) VALUES ($1, $2, $3)
             ON CONFLICT (tenant_id, user_id) DO UPDATE SET role = EXCLUDED.role",
        )
        .bind(tenant)
        .bind(user)
        .bind(role)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// The user's role in the tenant; not found when the user is not a member.
    pub async fn membership(&self, tenant: TenantId, user: UserId) -> Result<String, StoreError> {
        Ok(
            sqlx::query_scalar(
                "SELECT role FROM memberships WHERE tenant_id = $1 AND user_id = $2",
            )
            .bind(tenant)
            .bind(user)
            .fetch_one(&self.pool)
            .await?,
        )
    }

    /// Stores (replaces) a user's TOTP secret, encrypted, unconfirmed.
    pub async fn set_totp_secret(
        &self,
        user: UserId,
        secret: &SecretString,
    ) -> Result<(), StoreError> {
        let enc = self.seal(secret, &totp_binding(user))?;
        sqlx::query(
            "INSERT INTO totp_secrets (user_id, secret_enc) VALUES ($1, $2)
             ON CONFLICT (user_id) DO UPDATE SET secret_enc = EXCLUDED.secret_enc, confirmed_at = NULL, last_used_step = NULL, created_at = now()",
        )
        .bind(user)
        .bind(enc)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// The user's TOTP secret, decrypted.
    pub async fn totp_secret(&self, user: UserId) -> Result<SecretString, StoreError> {
        let enc: String =
            sqlx::query_scalar("SELECT secret_enc FROM totp_secrets WHERE user_id = $1")
                .bind(user)
                .fetch_one(&self.pool)
                .await?;
        self.open(&enc, &totp_binding(user))
    }

    /// Replaces a user's backup codes with new argon2id hashes.
    pub async fn replace_backup_codes(
        &self,
        user: UserId,
        hashes: &[String],
    ) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await?;
        sqlx::query("DELETE FROM backup_codes WHERE user_id = $1")
            .bind(user)
            .execute(&mut *tx)
            .await?;
        for h in hashes {
            if !h.starts_with("$argon2id$") {
                return Err(StoreError::Conflict(
                    "backup codes are stored only as argon2id hashes".into(),
                ));
            }
            sqlx::query("INSERT INTO backup_codes (user_id, code_hash) VALUES ($1, $2)")
                .bind(user)
                .bind(h)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Disabling 2FA wipes the secret and every backup code.
    pub async fn disable_second_factor(&self, user: UserId) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await?;
        sqlx::query("DELETE FROM totp_secrets WHERE user_id = $1")
            .bind(user)
            .execute(&mut *tx)
            .await?;
        sqlx::query("DELETE FROM backup_codes WHERE user_id = $1")
            .bind(user)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }
}
