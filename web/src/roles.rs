//! Roles and permissions: the five roles of a tenant and what each may do,
//! in one table (`ROLE_PERMISSIONS`), and the `Member` extractor every
//! tenant page starts from: a signed-in session whose active tenant the
//! user is still a member of. No I/O but the membership look-up.

use std::fmt;
use std::str::FromStr;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use serde::Serialize;
use zentralink_store::TenantId;

use crate::AppState;
use crate::error::WebError;
use crate::pages::{Frame, frame};
use crate::session::Signed;

/// A member's role in a tenant, highest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Role {
    Owner,
    Admin,
    Manager,
    Member,
    Viewer,
}

/// What a role may do in its tenant. Reading the tenant's zones, change
/// requests and snapshots needs only membership.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Permission {
    /// Change DNS resources: paste approvals, request rollbacks.
    ResourceWrite,
    /// Invite, change roles, remove members.
    UserManage,
    /// View and edit the tenant and its policy.
    TenantManage,
    /// Read the audit log.
    AuditRead,
}

/// The one table of who may do what.
pub const ROLE_PERMISSIONS: &[(Role, &[Permission])] = &[
    (
        Role::Owner,
        &[
            Permission::ResourceWrite,
            Permission::UserManage,
            Permission::TenantManage,
            Permission::AuditRead,
        ],
    ),
    (
        Role::Admin,
        &[
            Permission::ResourceWrite,
            Permission::UserManage,
            Permission::TenantManage,
            Permission::AuditRead,
        ],
    ),
    (
        Role::Manager,
        &[Permission::ResourceWrite, Permission::AuditRead],
    ),
    (Role::Member, &[Permission::ResourceWrite]),
    (Role::Viewer, &[]),
];

impl Role {
    pub const ALL: [Role; 5] = [
        Role::Owner,
        Role::Admin,
        Role::Manager,
        Role::Member,
        Role::Viewer,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Owner => "OWNER",
            Role::Admin => "ADMIN",
            Role::Manager => "MANAGER",
            Role::Member => "MEMBER",
            Role::Viewer => "VIEWER",
        }
    }

    /// Whether this role has `permission`, by [`ROLE_PERMISSIONS`].
    pub fn may(self, permission: Permission) -> bool {
        ROLE_PERMISSIONS
            .iter()
            .find(|(role, _)| *role == self)
            .is_some_and(|(_, permissions)| permissions.contains(&permission))
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Role {
    type Err = WebError;
    fn from_str(s: &str) -> Result<Self, WebError> {
        Role::ALL
            .into_iter()
            .find(|r| r.as_str() == s)
            .ok_or_else(|| WebError::BadRequest(format!("unknown role {s:?}")))
    }
}

/// A signed-in member of the session's active tenant, with the page frame.
/// A session without an active tenant, or whose user has left it, is "not
/// found" on every tenant page.
#[derive(Debug)]
pub struct Member {
    pub session: Signed,
    /// The page frame; its `tenant` is always set.
    pub frame: Frame,
    pub tenant_id: TenantId,
    pub role: Role,
}

impl Member {
    /// The member a signed-in session is: of its active tenant, which the
    /// user must still belong to (404 otherwise, on every tenant page and
    /// form).
    pub fn of(session: Signed) -> Result<Member, WebError> {
        let frame = frame(&session.0);
        let (tenant_id, role) = match &frame.tenant {
            Some(t) => (
                t.id,
                t.role.parse::<Role>().map_err(|_| WebError::NotFound)?,
            ),
            None => return Err(WebError::NotFound),
        };
        Ok(Member {
            session,
            frame,
            tenant_id,
            role,
        })
    }

    /// `Ok` when the member's role has `permission`; a 403 otherwise (the
    /// object is this tenant's, so saying so gives nothing away).
    pub fn require(&self, permission: Permission) -> Result<(), WebError> {
        if self.role.may(permission) {
            Ok(())
        } else {
            Err(WebError::Forbidden(permission))
        }
    }
}

impl FromRequestParts<AppState> for Member {
    type Rejection = WebError;
    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, WebError> {
        Member::of(Signed::from_request_parts(parts, state).await?)
    }
}

/// A signed-in member of the platform's staff (`users.platform_admin`):
/// the support desk across tenants, status incidents, platform-wide mail
/// settings and templates. Staff must have confirmed a second factor and
/// signed in with it. To anyone else every staff page is "not found".
#[derive(Debug)]
pub struct Staff {
    pub session: Signed,
    pub frame: Frame,
}

impl Staff {
    pub fn of(session: Signed) -> Result<Staff, WebError> {
        let record = &session.0.record;
        if !record.platform_admin {
            return Err(WebError::NotFound);
        }
        if !(record.totp_enrolled && record.second_factor) {
            return Err(WebError::BadRequest(
                "staff pages need a second factor: enrol one under Account, 2FA, then sign in again"
                    .into(),
            ));
        }
        let frame = frame(&session.0);
        Ok(Staff { session, frame })
    }

    pub fn user(&self) -> zentralink_store::UserId {
        self.session.user()
    }
}

impl FromRequestParts<AppState> for Staff {
    type Rejection = WebError;
    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, WebError> {
        Staff::of(Signed::from_request_parts(parts, state).await?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_gives_each_role_what_the_design_says() {
        use Permission::*;
        let expect = |role: Role, perms: &[Permission]| {
            for p in [ResourceWrite, UserManage, TenantManage, AuditRead] {
                assert_eq!(role.may(p), perms.contains(&p), "{role} {p:?}");
            }
        };
        expect(
            Role::Owner,
            &[ResourceWrite, UserManage, TenantManage, AuditRead],
        );
        expect(
            Role::Admin,
            &[ResourceWrite, UserManage, TenantManage, AuditRead],
        );
        expect(Role::Manager, &[ResourceWrite, AuditRead]);
        expect(Role::Member, &[ResourceWrite]);
        expect(Role::Viewer, &[]);
    }

    #[test]
    fn roles_parse_from_the_stored_names_only() {
        for role in Role::ALL {
            assert_eq!(role.as_str().parse::<Role>().ok(), Some(role));
        }
        assert!("owner".parse::<Role>().is_err());
        assert!("ROOT".parse::<Role>().is_err());
    }
}
