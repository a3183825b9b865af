//! The web service's sign-in state: sessions (only the SHA-256 of each
//! opaque token is stored), failed sign-ins for throttling (keyed by a
//! SHA-256 subject, never the raw e-mail or IP) and login fingerprints
//! (SHA-256 of IP and user agent). Time comes from the caller. Does I/O.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::Store;
use crate::error::StoreError;
use crate::ids::{TenantId, UserId};

/// A live session joined with what every request needs to know about its user.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct SessionRecord {
    pub id: Uuid,
    pub user_id: UserId,
    pub tenant_id: Option<TenantId>,
    /// Whether the second factor was given when the session was made.
    pub second_factor: bool,
    /// Whether the user has a confirmed TOTP secret (then a session without
    /// `second_factor` is only half signed in).
    pub totp_enrolled: bool,
    pub email: String,
    pub display_name: String,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    /// The active tenant's slug, name and the user's role in it, read with
    /// the session; all `None` when there is no active tenant or the user
    /// is no longer a member of it.
    pub tenant_slug: Option<String>,
    pub tenant_display_name: Option<String>,
    pub tenant_role: Option<String>,
    /// The active tenant requires 2FA and the user has not confirmed one.
    pub owes_enrolment: bool,
    /// The user is one of the platform's staff (support desk, incidents,
    /// platform settings), whatever tenant is active.
    pub platform_admin: bool,
    /// Unread in-app notifications of the user in the active tenant.
    pub unread_notifications: i64,
}

/// A session to create.
#[derive(Debug, Clone)]
pub struct NewSession<'a> {
    /// SHA-256 of the opaque token handed to the browser.
    pub token_sha256: &'a [u8],
    pub user: UserId,
    pub tenant: Option<TenantId>,
    pub second_factor: bool,
    pub now: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
}

impl Store {
    /// Creates a session and returns its id.
    pub async fn create_session(&self, new: &NewSession<'_>) -> Result<Uuid, StoreError> {
        Ok(sqlx::query_scalar(
            "INSERT INTO sessions (id, token_sha256, user_id, tenant_id, second_factor, created_at, last_seen_at, expires_at)
             VALUES ($1, $2, $3, $4, $5, $6, $6, $7) RETURNING id",
        )
        .bind(Uuid::new_v4())
        .bind(new.token_sha256)
        .bind(new.user)
        .bind(new.tenant)
        .bind(new.second_factor)
        .bind(new.now)
        .bind(new.expires_at)
        .fetch_one(&self.pool)
        .await?)
    }

    /// The session whose token hashes to `token_sha256`, when it has not
    /// expired at `now` and its user is not disabled.
    pub async fn session_by_token(
        &self,
        token_sha256: &[u8],
        now: DateTime<Utc>,
    ) -> Result<Option<SessionRecord>, StoreError> {
        Ok(sqlx::query_as(
            "SELECT s.id, s.user_id, s.tenant_id, s.second_factor,
                    (t.confirmed_at IS NOT NULL) AS totp_enrolled,
                    u.email, u.display_name, s.created_at, s.expires_at,
                    tn.slug AS tenant_slug, tn.display_name AS tenant_display_name,
                    m.role AS tenant_role,
                    COALESCE(tn.require_2fa AND t.confirmed_at IS NULL, false) AS owes_enrolment,
                    u.platform_admin,
                    (SELECT count(*) FROM notifications n
                      WHERE n.tenant_id = s.tenant_id AND n.user_id = s.user_id AND n.read_at IS NULL)
                      AS unread_notifications
             FROM sessions s
             JOIN users u ON u.id = s.user_id
             LEFT JOIN totp_secrets t ON t.user_id = s.user_id
             LEFT JOIN memberships m ON m.tenant_id = s.tenant_id AND m.user_id = s.user_id
             LEFT JOIN tenants tn ON tn.id = m.tenant_id
             WHERE s.token_sha256 = $1 AND s.expires_at > $2 AND u.disabled_at IS NULL",
        )
        .bind(token_sha256)
        .bind(now)
        .fetch_optional(&self.pool)
        .await?)
    }

    /// Ends one session of a user.
    pub async fn delete_session(&self, user: UserId, id: Uuid) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM sessions WHERE id = $1 AND user_id = $2")
            .bind(id)
            .bind(user)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Ends every session of a user; returns how many there were.
    pub async fn delete_user_sessions(&self, user: UserId) -> Result<u64, StoreError> {
        Ok(sqlx::query("DELETE FROM sessions WHERE user_id = $1")
            .bind(user)
            .execute(&self.pool)
            .await?
            .rows_affected())
    }

    /// How many live sessions a user has at `now`.
    pub async fn count_user_sessions(
        &self,
        user: UserId,
        now: DateTime<Utc>,
    ) -> Result<i64, StoreError> {
        Ok(sqlx::query_scalar(
            "SELECT count(*) FROM sessions WHERE user_id = $1 AND expires_at > $2",
        )
        .bind(user)
        .bind(now)
        .fetch_one(&self.pool)
        .await?)
    }

    /// Records a failed sign-in against a throttling subject (a SHA-256).
    pub async fn record_login_failure(
        &self,
        subject: &[u8],
        at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        sqlx::query("INSERT INTO login_failures (subject, failed_at) VALUES ($1, $2)")
            .bind(subject)
            .bind(at)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// The times of a subject's failed sign-ins since `since`, oldest first.
    pub async fn login_failures_since(
        &self,
        subject: &[u8],
        since: DateTime<Utc>,
    ) -> Result<Vec<DateTime<Utc>>, StoreError> {
        Ok(sqlx::query_scalar(
            "SELECT failed_at FROM login_failures WHERE subject = $1 AND failed_at > $2 ORDER BY failed_at",
        )
        .bind(subject)
        .bind(since)
        .fetch_all(&self.pool)
        .await?)
    }

    /// Records a sign-in attempt against a throttling subject before its
    /// password is checked, and returns the times of the subject's earlier
    /// attempts since `since` (those recorded before this one), oldest
    /// first, with this attempt's id. Counting attempts in flight as
    /// failures is what keeps a burst of simultaneous guesses within the
    /// limit; a successful attempt is forgotten again
    /// ([`Store::forget_login_attempt`]).
    pub async fn record_login_attempt(
        &self,
        subject: &[u8],
        at: DateTime<Utc>,
        since: DateTime<Utc>,
    ) -> Result<(i64, Vec<DateTime<Utc>>), StoreError> {
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO login_failures (subject, failed_at) VALUES ($1, $2) RETURNING id",
        )
        .bind(subject)
        .bind(at)
        .fetch_one(&self.pool)
        .await?;
        let earlier = sqlx::query_scalar(
            "SELECT failed_at FROM login_failures
             WHERE subject = $1 AND failed_at > $2 AND id < $3 ORDER BY failed_at",
        )
        .bind(subject)
        .bind(since)
        .bind(id)
        .fetch_all(&self.pool)
        .await?;
        Ok((id, earlier))
    }

    /// Forgets one recorded attempt (it succeeded, or it was refused
    /// before its password was checked).
    pub async fn forget_login_attempt(&self, id: i64) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM login_failures WHERE id = $1")
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Forgets a subject's failed sign-ins (after a successful one).
    pub async fn clear_login_failures(&self, subject: &[u8]) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM login_failures WHERE subject = $1")
            .bind(subject)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Records that a user signed in with this fingerprint (SHA-256 of IP
    /// and user agent); true when it had not been seen for the user before.
    pub async fn record_login_fingerprint(
        &self,
        user: UserId,
        fingerprint: &[u8],
        at: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let inserted: bool = sqlx::query_scalar(
            "INSERT INTO login_fingerprints (user_id, fingerprint, first_seen_at, last_seen_at)
             VALUES ($1, $2, $3, $3)
             ON CONFLICT (user_id, fingerprint) DO UPDATE SET last_seen_at = EXCLUDED.last_seen_at
             RETURNING (xmax = 0)",
        )
        .bind(user)
        .bind(fingerprint)
        .bind(at)
        .fetch_one(&self.pool)
        .await?;
        Ok(inserted)
    }
}
