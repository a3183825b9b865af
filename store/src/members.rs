//! A tenant's members and invitations, and its second-factor requirement.
//! Invitation tokens are kept only as SHA-256; an invitation is taken once,
//! atomically. Role changes and removals lock the tenant row, so "the last
//! owner stays" holds even when two owners demote each other at once, and
//! end the affected member's sessions in that tenant in the same
//! transaction as the change and its audit event. Time comes from the
//! caller. Does I/O.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::Store;
use crate::audit::AuditEvent;
use crate::error::StoreError;
use crate::ids::{TenantId, UserId};

/// A member of a tenant as the members page lists them.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct MemberRecord {
    pub user_id: UserId,
    pub email: String,
    pub display_name: String,
    pub role: String,
    /// Whether the member has a confirmed TOTP secret.
    pub totp_enrolled: bool,
    pub joined_at: DateTime<Utc>,
}

/// An invitation not yet accepted, revoked or expired.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct InvitationRecord {
    pub id: Uuid,
    pub tenant_id: TenantId,
    pub tenant_slug: String,
    pub tenant_display_name: String,
    pub email: String,
    pub role: String,
    /// The inviter's e-mail, when the inviter still exists.
    pub invited_by: Option<String>,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
}

/// An invitation to record.
#[derive(Debug, Clone)]
pub struct NewInvitation<'a> {
    /// SHA-256 of the token in the link.
    pub token_sha256: &'a [u8],
    pub email: &'a str,
    pub role: &'a str,
    pub invited_by: UserId,
    pub now: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
}

/// What accepting an invitation did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Accepted {
    pub invitation: Uuid,
    pub tenant: TenantId,
    /// The member's role now (their old one when they were a member already).
    pub role: String,
    /// False when the person was a member of the tenant already.
    pub joined: bool,
}

/// The outcome of a role change or a removal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MembershipChange {
    /// Done; the member's role before, and how many of their sessions in
    /// the tenant were ended.
    Changed { from: String, sessions_ended: u64 },
    /// The member has that role already; nothing was written.
    Unchanged,
    /// Refused: the tenant would be left without an owner.
    LastOwner,
    /// Refused: only an owner may make or unmake an owner.
    OwnerOnly,
}

/// A tenant with its settings.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct TenantSettings {
    pub id: TenantId,
    pub slug: String,
    pub display_name: String,
    pub require_2fa: bool,
    pub created_at: DateTime<Utc>,
}

const INVITATION_COLUMNS: &str =
    "i.id, i.tenant_id, t.slug AS tenant_slug, t.display_name AS tenant_display_name,
    i.email, i.role, u.email AS invited_by, i.created_at, i.expires_at";

/// Locks the tenant's row: membership changes of one tenant run one at a time.
async fn lock_tenant(
    tx: &mut sqlx::Transaction<'_, sqlx::Postgres>,
    tenant: TenantId,
) -> Result<(), StoreError> {
    sqlx::query("SELECT id FROM tenants WHERE id = $1 FOR UPDATE")
        .bind(tenant)
        .fetch_one(&mut **tx)
        .await?;
    Ok(())
}

async fn owner_count(
    tx: &mut sqlx::Transaction<'_, sqlx::Postgres>,
    tenant: TenantId,
) -> Result<i64, StoreError> {
    Ok(sqlx::query_scalar(
        "SELECT count(*) FROM memberships WHERE tenant_id = $1 AND role = 'OWNER'",
    )
    .bind(tenant)
    .fetch_one(&mut **tx)
    .await?)
}

async fn end_sessions_in(
    tx: &mut sqlx::Transaction<'_, sqlx::Postgres>,
    tenant: TenantId,
    user: UserId,
) -> Result<u64, StoreError> {
    Ok(
        sqlx::query("DELETE FROM sessions WHERE tenant_id = $1 AND user_id = $2")
            .bind(tenant)
            .bind(user)
            .execute(&mut **tx)
            .await?
            .rows_affected(),
    )
}

impl Store {
    /// The tenant's members, by e-mail.
    pub async fn tenant_members(&self, tenant: TenantId) -> Result<Vec<MemberRecord>, StoreError> {
        Ok(sqlx::query_as(
            "SELECT m.user_id, u.email, u.display_name, m.role,
                    (ts.confirmed_at IS NOT NULL) AS totp_enrolled, m.created_at AS joined_at
             FROM memberships m
             JOIN users u ON u.id = m.user_id
             LEFT JOIN totp_secrets ts ON ts.user_id = m.user_id
             WHERE m.tenant_id = $1
             ORDER BY lower(u.email)",
        )
        .bind(tenant)
        .fetch_all(&self.pool)
        .await?)
    }

    /// Records an invitation and its audit event in one transaction.
    pub async fn create_invitation(
        &self,
        tenant: TenantId,
        new: &NewInvitation<'_>,
        audit: AuditEvent,
    ) -> Result<Uuid, StoreError> {
        let id = Uuid::new_v4();
        let mut tx = self.pool.begin().await?;
        sqlx::query(
            "INSERT INTO invitations (id, tenant_id, token_sha256, email, role, invited_by, created_at, expires_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(id)
        .bind(tenant)
        .bind(new.token_sha256)
        .bind(new.email)
        .bind(new.role)
        .bind(new.invited_by)
        .bind(new.now)
        .bind(new.expires_at)
        .execute(&mut *tx)
        .await?;
        crate::audit::insert(&mut *tx, &audit.target("invitation", id)).await?;
        tx.commit().await?;
        Ok(id)
    }

    /// The tenant's invitations still open at `now`, newest first.
    pub async fn open_invitations(
        &self,
        tenant: TenantId,
        now: DateTime<Utc>,
    ) -> Result<Vec<InvitationRecord>, StoreError> {
        Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {INVITATION_COLUMNS}
             FROM invitations i JOIN tenants t ON t.id = i.tenant_id
             LEFT JOIN users u ON u.id = i.invited_by
             WHERE i.tenant_id = $1 AND i.accepted_at IS NULL AND i.revoked_at IS NULL AND i.expires_at > $2
             ORDER BY i.created_at DESC, i.id"
        )))
        .bind(tenant)
        .bind(now)
        .fetch_all(&self.pool)
        .await?)
    }

    /// The open invitation whose token hashes to `token_sha256`; `None`
    /// when there is none, or it was accepted, revoked or has expired.
    pub async fn invitation_by_token(
        &self,
        token_sha256: &[u8],
        now: DateTime<Utc>,
    ) -> Result<Option<InvitationRecord>, StoreError> {
        Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {INVITATION_COLUMNS}
             FROM invitations i JOIN tenants t ON t.id = i.tenant_id
             LEFT JOIN users u ON u.id = i.invited_by
             WHERE i.token_sha256 = $1 AND i.accepted_at IS NULL AND i.revoked_at IS NULL AND i.expires_at > $2"
        )))
        .bind(token_sha256)
        .bind(now)
        .fetch_optional(&self.pool)
        .await?)
    }

    /// Revokes one of the tenant's open invitations, with its audit event;
    /// not found when the tenant has no such open invitation.
    pub async fn revoke_invitation(
        &self,
        tenant: TenantId,
        id: Uuid,
        by: UserId,
        now: DateTime<Utc>,
        audit: AuditEvent,
    ) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await?;
        let email: Option<String> = sqlx::query_scalar(
            "UPDATE invitations SET revoked_at = $4, revoked_by = $3
             WHERE tenant_id = $1 AND id = $2 AND accepted_at IS NULL AND revoked_at IS NULL AND expires_at > $4
             RETURNING email",
        )
        .bind(tenant)
        .bind(id)
        .bind(by)
        .bind(now)
        .fetch_optional(&mut *tx)
        .await?;
        let Some(email) = email else {
            return Err(StoreError::NotFound);
        };
        crate::audit::insert(
            &mut *tx,
            &audit.target("invitation", id).meta("email", email),
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Takes an open invitation for an existing user whose e-mail it names,
    /// makes them a member (a member already keeps their role) and records
    /// the audit event, in one transaction. Not found when the invitation is
    /// not open or names another e-mail.
    pub async fn accept_invitation(
        &self,
        token_sha256: &[u8],
        user: UserId,
        now: DateTime<Utc>,
        audit: AuditEvent,
    ) -> Result<Accepted, StoreError> {
        let mut tx = self.pool.begin().await?;
        let taken: Option<(Uuid, TenantId, String)> = sqlx::query_as(
            "UPDATE invitations i SET accepted_at = $3, accepted_by = $2
             FROM users u
             WHERE i.token_sha256 = $1 AND u.id = $2 AND lower(u.email) = lower(i.email)
               AND i.accepted_at IS NULL AND i.revoked_at IS NULL AND i.expires_at > $3
             RETURNING i.id, i.tenant_id, i.role",
        )
        .bind(token_sha256)
        .bind(user)
        .bind(now)
        .fetch_optional(&mut *tx)
        .await?;
        let Some((invitation, tenant, invited_role)) = taken else {
            return Err(StoreError::NotFound);
        };
        let inserted = sqlx::query(
            "INSERT INTO memberships (tenant_id, user_id, role) VALUES ($1, $2, $3)
             ON CONFLICT (tenant_id, user_id) DO NOTHING",
        )
        .bind(tenant)
        .bind(user)
        .bind(&invited_role)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        let role: String = sqlx::query_scalar(
            "SELECT role FROM memberships WHERE tenant_id = $1 AND user_id = $2",
        )
        .bind(tenant)
        .bind(user)
        .fetch_one(&mut *tx)
        .await?;
        let joined = inserted == 1;
        let event = AuditEvent {
            tenant: Some(tenant),
            ..audit
        }
        .target("invitation", invitation)
        .meta("role", role.clone())
        .meta("new_account", false)
        .meta("already_member", !joined);
        crate::audit::insert(&mut *tx, &event).await?;
        tx.commit().await?;
        Ok(Accepted {
            invitation,
            tenant,
            role,
            joined,
        })
    }

    /// Takes an open invitation for a person without an account: creates
    /// the user (id `user`, the invited e-mail, an argon2id hash made by the
    /// caller), the membership and the audit event, in one transaction. Not
    /// found when the invitation is not open; a conflict when an account
    /// with the e-mail exists (nothing is written then).
    pub async fn accept_invitation_with_new_account(
        &self,
        token_sha256: &[u8],
        user: UserId,
        display_name: &str,
        password_hash: &str,
        now: DateTime<Utc>,
        audit: AuditEvent,
    ) -> Result<Accepted, StoreError> {
        if !password_hash.starts_with("$argon2id$") {
            return Err(StoreError::Conflict(
                "password_hash must be an argon2id PHC string".into(),
            ));
        }
        let mut tx = self.pool.begin().await?;
        let taken: Option<(Uuid, TenantId, String, String)> = sqlx::query_as(
            "UPDATE invitations SET accepted_at = $2, accepted_by = NULL
             WHERE token_sha256 = $1 AND accepted_at IS NULL AND revoked_at IS NULL AND expires_at > $2
             RETURNING id, tenant_id, role, email",
        )
        .bind(token_sha256)
        .bind(now)
        .fetch_optional(&mut *tx)
        .await?;
        let Some((invitation, tenant, role, email)) = taken else {
            return Err(StoreError::NotFound);
        };
        sqlx::query(
            "INSERT INTO users (id, email, display_name, password_hash, created_at) VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(user)
        .bind(&email)
        .bind(display_name)
        .bind(password_hash)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        sqlx::query("UPDATE invitations SET accepted_by = $2 WHERE id = $1")
            .bind(invitation)
            .bind(user)
            .execute(&mut *tx)
            .await?;
        sqlx::query("INSERT INTO memberships (tenant_id, user_id, role) VALUES ($1, $2, $3)")
            .bind(tenant)
            .bind(user)
            .bind(&role)
            .execute(&mut *tx)
            .await?;
        let event = AuditEvent {
            tenant: Some(tenant),
            ..audit
        }
        .target("invitation", invitation)
        .meta("role", role.clone())
        .meta("new_account", true);
        crate::audit::insert(&mut *tx, &event).await?;
        tx.commit().await?;
        Ok(Accepted {
            invitation,
            tenant,
            role,
            joined: true,
        })
    }

    /// Gives a member another role. Refused when the member is the last
    /// owner and would stop being one, or when an owner is made or unmade
    /// by someone who is not an owner (`actor_is_owner`). The member's
    /// sessions in the tenant end (they sign in again under the new role,
    /// with a new session id). The audit event is completed with the role
    /// before and written in the same transaction. Not found when the user
    /// is not a member of the tenant.
    pub async fn change_member_role(
        &self,
        tenant: TenantId,
        member: UserId,
        role: &str,
        actor_is_owner: bool,
        audit: AuditEvent,
    ) -> Result<MembershipChange, StoreError> {
        let mut tx = self.pool.begin().await?;
        lock_tenant(&mut tx, tenant).await?;
        let from: String = sqlx::query_scalar(
            "SELECT role FROM memberships WHERE tenant_id = $1 AND user_id = $2 FOR UPDATE",
        )
        .bind(tenant)
        .bind(member)
        .fetch_one(&mut *tx)
        .await?;
        if from == role {
            return Ok(MembershipChange::Unchanged);
        }
        if (from == "OWNER" || role == "OWNER") && !actor_is_owner {
            return Ok(MembershipChange::OwnerOnly);
        }
        if from == "OWNER" && owner_count(&mut tx, tenant).await? <= 1 {
            return Ok(MembershipChange::LastOwner);
        }
        sqlx::query("UPDATE memberships SET role = $3 WHERE tenant_id = $1 AND user_id = $2")
            .bind(tenant)
            .bind(member)
            .bind(role)
            .execute(&mut *tx)
            .await?;
        let sessions_ended = end_sessions_in(&mut tx, tenant, member).await?;
        let event = audit
            .target("user", member)
            .meta("from", from.clone())
            .meta("to", role)
            .meta(
                "sessions_ended",
                i64::try_from(sessions_ended).unwrap_or(i64::MAX),
            );
        crate::audit::insert(&mut *tx, &event).await?;
        tx.commit().await?;
        Ok(MembershipChange::Changed {
            from,
            sessions_ended,
        })
    }

    /// Removes a member from the tenant and ends their sessions there, with
    /// the same rules as [`Store::change_member_role`]: the last owner stays,
    /// and only an owner removes an owner. Not found when the user is not a
    /// member of the tenant.
    pub async fn remove_member(
        &self,
        tenant: TenantId,
        member: UserId,
        actor_is_owner: bool,
        audit: AuditEvent,
    ) -> Result<MembershipChange, StoreError> {
        let mut tx = self.pool.begin().await?;
        lock_tenant(&mut tx, tenant).await?;
        let from: String = sqlx::query_scalar(
            "SELECT role FROM memberships WHERE tenant_id = $1 AND user_id = $2 FOR UPDATE",
        )
        .bind(tenant)
        .bind(member)
        .fetch_one(&mut *tx)
        .await?;
        if from == "OWNER" && !actor_is_owner {
            return Ok(MembershipChange::OwnerOnly);
        }
        if from == "OWNER" && owner_count(&mut tx, tenant).await? <= 1 {
            return Ok(MembershipChange::LastOwner);
        }
        sqlx::query("DELETE FROM memberships WHERE tenant_id = $1 AND user_id = $2")
            .bind(tenant)
            .bind(member)
            .execute(&mut *tx)
            .await?;
        let sessions_ended = end_sessions_in(&mut tx, tenant, member).await?;
        let event = audit
            .target("user", member)
            .meta("role", from.clone())
            .meta(
                "sessions_ended",
                i64::try_from(sessions_ended).unwrap_or(i64::MAX),
            );
        crate::audit::insert(&mut *tx, &event).await?;
        tx.commit().await?;
        Ok(MembershipChange::Changed {
            from,
            sessions_ended,
        })
    }

    /// The tenant and its settings.
    pub async fn tenant_settings(&self, tenant: TenantId) -> Result<TenantSettings, StoreError> {
        Ok(sqlx::query_as(
            "SELECT id, slug, display_name, require_2fa, created_at FROM tenants WHERE id = $1",
        )
        .bind(tenant)
        .fetch_one(&self.pool)
        .await?)
    }

    /// Turns the tenant's second-factor requirement on or off, with its
    /// audit event; false (and no event) when it was so already.
    pub async fn set_tenant_require_2fa(
        &self,
        tenant: TenantId,
        on: bool,
        audit: AuditEvent,
    ) -> Result<bool, StoreError> {
        let mut tx = self.pool.begin().await?;
        let changed = sqlx::query(
            "UPDATE tenants SET require_2fa = $2 WHERE id = $1 AND require_2fa IS DISTINCT FROM $2",
        )
        .bind(tenant)
        .bind(on)
        .execute(&mut *tx)
        .await?
        .rows_affected()
            == 1;
        if changed {
            crate::audit::insert(&mut *tx, &audit.meta("require_2fa", on)).await?;
        }
        tx.commit().await?;
        Ok(changed)
    }
}
