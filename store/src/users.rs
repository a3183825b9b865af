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

/// What signing in needs to know about a user: never shown to anyone.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct UserCredentials {
    pub id: UserId,
    /// The argon2id PHC string.
    pub password_hash: String,
    pub disabled: bool,
}

/// A tenant a user belongs to, with the role there.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct MembershipRecord {
    pub tenant_id: TenantId,
    pub slug: String,
    pub display_name: String,
    pub role: String,
}

/// Where a user stands with TOTP.
#[derive(Debug, Clone, Copy, PartialEq, Eq, sqlx::FromRow)]
pub struct TotpStatus {
    /// Confirmed with a code: signing in asks for one.
    pub confirmed: bool,
    /// The last time step whose code was accepted: no code of it or before is accepted again.
    pub last_used_step: Option<i64>,
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

    /// Makes a user (by e-mail) one of the platform's staff, or not; not
    /// found when no user has that address.
    pub async fn set_platform_admin(&self, email: &str, staff: bool) -> Result<UserId, StoreError> {
        sqlx::query_scalar("UPDATE users SET platform_admin = $2 WHERE email = $1 RETURNING id")
            .bind(email)
            .bind(staff)
            .fetch_optional(&self.pool)
            .await?
            .ok_or(StoreError::NotFound)
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

    /// A user's sign-in data by e-mail (case-insensitive).
    pub async fn user_credentials_by_email(
        &self,
        email: &str,
    ) -> Result<Option<UserCredentials>, StoreError> {
        Ok(sqlx::query_as(
            "SELECT id, password_hash, (disabled_at IS NOT NULL) AS disabled FROM users WHERE lower(email) = lower($1)",
        )
        .bind(email)
        .fetch_optional(&self.pool)
        .await?)
    }

    /// A user's argon2id password hash.
    pub async fn password_hash(&self, user: UserId) -> Result<String, StoreError> {
        Ok(
            sqlx::query_scalar("SELECT password_hash FROM users WHERE id = $1")
                .bind(user)
                .fetch_one(&self.pool)
                .await?,
        )
    }

    /// Creates a user and makes them OWNER of a tenant, in one transaction.
    pub async fn create_owner(
        &self,
        tenant: TenantId,
        email: &str,
        display_name: &str,
        password_hash: &str,
    ) -> Result<UserId, StoreError> {
        if !password_hash.starts_with("$argon2id$") {
            return Err(StoreError::Conflict(
                "password_hash must be an argon2id PHC string".into(),
            ));
        }
        let mut tx = self.pool.begin().await?;
        let id: UserId = sqlx::query_scalar(
            "INSERT INTO users (id, email, display_name, password_hash) VALUES ($1, $2, $3, $4) RETURNING id",
        )
        .bind(UserId::new())
        .bind(email)
        .bind(display_name)
        .bind(password_hash)
        .fetch_one(&mut *tx)
        .await?;
        sqlx::query("INSERT INTO memberships (tenant_id, user_id, role) VALUES ($1, $2, 'OWNER')")
            .bind(tenant)
            .bind(id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(id)
    }

    /// The tenants a user belongs to, by slug.
    pub async fn memberships_of(&self, user: UserId) -> Result<Vec<MembershipRecord>, StoreError> {
        Ok(sqlx::query_as(
            "SELECT m.tenant_id, t.slug, t.display_name, m.role
             FROM memberships m JOIN tenants t ON t.id = m.tenant_id
             WHERE m.user_id = $1 ORDER BY t.slug",
        )
        .bind(user)
        .fetch_all(&self.pool)
        .await?)
    }

    /// The user's TOTP state; `None` when no secret is stored.
    pub async fn totp_status(&self, user: UserId) -> Result<Option<TotpStatus>, StoreError> {
        Ok(sqlx::query_as(
            "SELECT (confirmed_at IS NOT NULL) AS confirmed, last_used_step FROM totp_secrets WHERE user_id = $1",
        )
        .bind(user)
        .fetch_optional(&self.pool)
        .await?)
    }

    /// Stores a new, unconfirmed TOTP secret (encrypted), replacing an
    /// unconfirmed one. Returns false, changing nothing, when the user
    /// already has a confirmed secret: that one is removed only by disabling 2FA.
    pub async fn start_totp_enrolment(
        &self,
        user: UserId,
        secret: &SecretString,
    ) -> Result<bool, StoreError> {
        let enc = self.seal(secret, &totp_binding(user))?;
        let stored = sqlx::query(
            "INSERT INTO totp_secrets (user_id, secret_enc) VALUES ($1, $2)
             ON CONFLICT (user_id) DO UPDATE SET secret_enc = EXCLUDED.secret_enc, last_used_step = NULL, created_at = now()
             WHERE totp_secrets.confirmed_at IS NULL",
        )
        .bind(user)
        .bind(enc)
        .execute(&self.pool)
        .await?
        .rows_affected();
        Ok(stored == 1)
    }

    /// Confirms an unconfirmed TOTP secret with the step of the code given;
    /// false when there is none to confirm.
    pub async fn confirm_totp(
        &self,
        user: UserId,
        step: i64,
        at: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "UPDATE totp_secrets SET confirmed_at = $3, last_used_step = $2
             WHERE user_id = $1 AND confirmed_at IS NULL",
        )
        .bind(user)
        .bind(step)
        .bind(at)
        .execute(&self.pool)
        .await?
        .rows_affected();
        Ok(done == 1)
    }

    /// Takes a time step for a confirmed secret, atomically: true only when
    /// the step is later than every step used before, so a code is never
    /// accepted twice, even by two requests at once.
    pub async fn use_totp_step(&self, user: UserId, step: i64) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "UPDATE totp_secrets SET last_used_step = $2
             WHERE user_id = $1 AND confirmed_at IS NOT NULL
               AND (last_used_step IS NULL OR last_used_step < $2)",
        )
        .bind(user)
        .bind(step)
        .execute(&self.pool)
        .await?
        .rows_affected();
        Ok(done == 1)
    }

    /// The argon2id hashes of a user's unused backup codes, with their ids.
    pub async fn unused_backup_codes(
        &self,
        user: UserId,
    ) -> Result<Vec<(i64, String)>, StoreError> {
        Ok(sqlx::query_as(
            "SELECT id, code_hash FROM backup_codes WHERE user_id = $1 AND used_at IS NULL ORDER BY id",
        )
        .bind(user)
        .fetch_all(&self.pool)
        .await?)
    }

    /// Marks a backup code used, atomically: true only for the first caller.
    pub async fn use_backup_code(
        &self,
        user: UserId,
        id: i64,
        at: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "UPDATE backup_codes SET used_at = $3 WHERE id = $1 AND user_id = $2 AND used_at IS NULL",
        )
        .bind(id)
        .bind(user)
        .bind(at)
        .execute(&self.pool)
        .await?
        .rows_affected();
        Ok(done == 1)
    }
}
