//! The HTML templates, embedded in the binary and rendered by minijinja
//! with auto-escaping (every `.html` template escapes what it prints). No I/O.

use minijinja::Environment;
use serde::Serialize;

use crate::error::WebError;

const TEMPLATES: [(&str, &str); 17] = [
    ("base.html", include_str!("../templates/base.html")),
    ("login.html", include_str!("../templates/login.html")),
    (
        "second_factor.html",
        include_str!("../templates/second_factor.html"),
    ),
    (
        "dashboard.html",
        include_str!("../templates/dashboard.html"),
    ),
    ("zone.html", include_str!("../templates/zone.html")),
    ("totp.html", include_str!("../templates/totp.html")),
    (
        "backup_codes.html",
        include_str!("../templates/backup_codes.html"),
    ),
    ("error.html", include_str!("../templates/error.html")),
    ("audit.html", include_str!("../templates/audit.html")),
    ("members.html", include_str!("../templates/members.html")),
    (
        "invitation.html",
        include_str!("../templates/invitation.html"),
    ),
    ("tenant.html", include_str!("../templates/tenant.html")),
    (
        "change_requests.html",
        include_str!("../templates/change_requests.html"),
    ),
    (
        "change_request.html",
        include_str!("../templates/change_request.html"),
    ),
    (
        "snapshots.html",
        include_str!("../templates/snapshots.html"),
    ),
    ("snapshot.html", include_str!("../templates/snapshot.html")),
    (
        "connections.html",
        include_str!("../templates/connections.html"),
    ),
];

/// For templates: whether a role as stored (`MANAGER`) has a permission
/// (`AUDIT_READ`), by `roles::ROLE_PERMISSIONS`; unknown names have none.
fn role_may(role: &str, permission: &str) -> bool {
    use crate::roles::{Permission, Role};
    let permission = match permission {
        "RESOURCE_WRITE" => Permission::ResourceWrite,
        "USER_MANAGE" => Permission::UserManage,
        "TENANT_MANAGE" => Permission::TenantManage,
        "AUDIT_READ" => Permission::AuditRead,
        _ => return false,
    };
    role.parse::<Role>().is_ok_and(|r| r.may(permission))
}

#[derive(Debug)]
pub struct Templates {
    env: Environment<'static>,
}

impl Templates {
    pub fn new() -> Result<Self, WebError> {
        let mut env = Environment::new();
        // Each part of the service lists its own templates.
        let parts = [
            &TEMPLATES[..],
            crate::tickets::TEMPLATES,
            crate::notifications::TEMPLATES,
            crate::status::TEMPLATES,
            crate::public::TEMPLATES,
        ];
        for &(name, source) in parts.into_iter().flatten() {
            env.add_template(name, source)?;
        }
        // `may(tenant.role, "AUDIT_READ")`: whether a role has a permission, by the one table.
        env.add_function("may", role_may);
        Ok(Self { env })
    }

    pub fn render<S: Serialize>(&self, name: &str, context: S) -> Result<String, WebError> {
        Ok(self.env.get_template(name)?.render(context)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_a_template_prints_is_escaped() {
        let t = Templates::new().unwrap();
        let html = t
            .render(
                "error.html",
                minijinja::context! { status => 404, title => "<script>x</script>", request_id => "r\"1" },
            )
            .unwrap();
        assert!(!html.contains("<script>"), "{html}");
        assert!(html.contains("&lt;script&gt;"), "{html}");
    }
}
