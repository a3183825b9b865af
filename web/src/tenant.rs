//! The active tenant: its page (TENANT_MANAGE) with the configuration in
//! force and the TenantPolicy as YAML; an edit of the policy submitted here
//! becomes a configuration change request judged by the policy in force,
//! exactly as a commit would (the policy guards itself); the requirement
//! that every member signs in with a second factor, enforced for every
//! page of the tenant by [`require_enrolment`]; and switching between the
//! tenants a person belongs to, with a new session id. Every action is
//! audited. Reads and writes the store.

use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use minijinja::context;
use serde::{Deserialize, Serialize};
use zentralink_model::config::{PolicyEdit, propose_policy_edit};
use zentralink_model::documents::SourceFile;
use zentralink_store::approvals::ConfigRecord;
use zentralink_store::audit::{Actor, AuditEvent};
use zentralink_store::changes::{NewChangeRequest, RequestKind};

use crate::AppState;
use crate::error::WebError;
use crate::members::{page, rotate_session, see_other};
use crate::roles::{Member, Permission};
use crate::session::{Client, CsrfForm, FoundSession, Posted, Signed, find_session};

/// The name edits are shown under in error messages (`line 7: spec...`).
pub const EDIT_FILE_NAME: &str = "TenantPolicy";

/// Turning the second-factor requirement on or off.
#[derive(Debug, Deserialize)]
pub struct RequireForm {
    /// `on` to require it; anything else (or absent) turns it off.
    #[serde(default)]
    pub require_2fa: String,
    #[serde(default)]
    pub csrf: String,
}

impl CsrfForm for RequireForm {
    fn csrf(&self) -> &str {
        &self.csrf
    }
}

/// An edited TenantPolicy document.
#[derive(Debug, Deserialize)]
pub struct PolicyForm {
    #[serde(default)]
    pub yaml: String,
    #[serde(default)]
    pub csrf: String,
}

impl CsrfForm for PolicyForm {
    fn csrf(&self) -> &str {
        &self.csrf
    }
}

/// Switching to another tenant, by its slug.
#[derive(Debug, Deserialize)]
pub struct SwitchForm {
    #[serde(default)]
    pub tenant: String,
    #[serde(default)]
    pub csrf: String,
}

impl CsrfForm for SwitchForm {
    fn csrf(&self) -> &str {
        &self.csrf
    }
}

/// The TenantPolicy in force as the YAML document a person edits; a
/// starting document (the secure defaults) when the tenant has none.
fn policy_document(stored: &[ConfigRecord]) -> Option<String> {
    let policy = stored.iter().find(|c| c.kind == "TenantPolicy");
    let (namespace, name, spec) = match policy {
        Some(p) => (p.namespace.clone(), p.name.clone(), p.spec.clone()),
        None => {
            let tenant = stored.iter().find(|c| c.kind == "Tenant")?;
            let namespace = tenant
                .spec
                .get("namespaces")
                .and_then(|n| n.get(0))
                .and_then(|n| n.as_str())?
                .to_owned();
            (
                namespace,
                "policy".to_owned(),
                serde_json::json!({ "approvals": { "minApprovals": 1 } }),
            )
        }
    };
    let document = serde_json::json!({
        "apiVersion": "dns.zentralink.net/v1alpha1",
        "kind": "TenantPolicy",
        "metadata": { "name": name, "namespace": namespace },
        "spec": spec,
    });
    serde_yaml::to_string(&document).ok()
}

#[derive(Debug, Serialize)]
struct ConfigView {
    kind: String,
    namespace: String,
    name: String,
    accepted_by: String,
    accepted_at: String,
    revision: String,
}

#[derive(Debug, Serialize)]
struct RequestView {
    id: String,
    name: String,
    state: String,
    requester: String,
    created: String,
}

#[derive(Debug, Serialize)]
struct ProblemView {
    line: Option<usize>,
    path: String,
    message: String,
}

/// What the tenant page says besides the tenant.
#[derive(Debug, Default)]
struct Notice {
    message: String,
    error: String,
    problems: Vec<ProblemView>,
    /// The submitted document, shown again after an error.
    yaml: Option<String>,
    /// The change request just opened, with how it is approved.
    opened: Option<serde_json::Value>,
}

async fn tenant_page_with(
    state: &AppState,
    member: &Member,
    status: StatusCode,
    notice: Notice,
) -> Result<Response, WebError> {
    let store = state.store();
    let settings = store.tenant_settings(member.tenant_id).await?;
    let stored = store.tenant_configs(member.tenant_id).await?;
    let configs: Vec<ConfigView> = stored
        .iter()
        .map(|c| ConfigView {
            kind: c.kind.clone(),
            namespace: c.namespace.clone(),
            name: c.name.clone(),
            accepted_by: c.accepted_by.clone(),
            accepted_at: c.accepted_at.format("%Y-%m-%d %H:%M UTC").to_string(),
            revision: c.revision.clone().unwrap_or_default(),
        })
        .collect();
    let tenant_spec = stored
        .iter()
        .find(|c| c.kind == "Tenant")
        .map(|c| c.spec.clone());
    let in_force = ConfigRecord::objects(&stored);
    let policy = if in_force.is_empty() {
        None
    } else {
        zentralink_model::config::in_force_policy(&in_force)
            .ok()
            .map(|(p, _)| {
                context! {
                    min_approvals => p.min_approvals,
                    approver_roles => p.approver_roles.iter().map(|r| r.as_str()).collect::<Vec<_>>(),
                    approvers => p.approvers.iter().map(|a| a.name.clone()).collect::<Vec<_>>(),
                    expires_after_hours => p.expires_after_secs / 3600,
                    require_signed_commits => p.require_signed_commits,
                }
            })
    };
    let policy_in_force_yaml = if stored.iter().any(|c| c.kind == "TenantPolicy") {
        policy_document(&stored)
    } else {
        None
    };
    let requests: Vec<RequestView> = store
        .config_requests(member.tenant_id)
        .await?
        .into_iter()
        .take(10)
        .map(|r| RequestView {
            id: r.id.to_string(),
            name: r.name,
            state: r.state,
            requester: r.requester,
            created: r.created_at.format("%Y-%m-%d %H:%M UTC").to_string(),
        })
        .collect();
    let editable = notice.yaml.clone().or_else(|| policy_document(&stored));
    let actor_enrolled = store
        .totp_status(member.session.user())
        .await?
        .is_some_and(|t| t.confirmed);
    let f = &member.frame;
    let html = state.templates().render(
        "tenant.html",
        context! {
            user => f.user, tenant => f.tenant, csrf => f.csrf,
            settings => context! {
                slug => settings.slug, display_name => settings.display_name,
                require_2fa => settings.require_2fa,
                created => settings.created_at.format("%Y-%m-%d").to_string(),
            },
            tenant_spec => tenant_spec,
            configs => configs, policy => policy, policy_yaml => policy_in_force_yaml,
            editable => editable, requests => requests, actor_enrolled => actor_enrolled,
            message => notice.message, error => notice.error, problems => notice.problems,
            opened => notice.opened,
        },
    )?;
    Ok(page(status, html))
}

/// GET /tenant: the tenant, its second-factor requirement and the
/// configuration in force (TENANT_MANAGE).
pub async fn tenant_page(
    State(state): State<AppState>,
    member: Member,
) -> Result<Response, WebError> {
    member.require(Permission::TenantManage)?;
    tenant_page_with(&state, &member, StatusCode::OK, Notice::default()).await
}

fn event(member: &Member, action: &str, client: &Client) -> AuditEvent {
    AuditEvent::new(
        Some(member.tenant_id),
        Actor::User(member.session.user()),
        action,
    )
    .from_client(client.ip.clone(), client.user_agent.clone())
}

/// POST /tenant/2fa: require a second factor of every member, or stop.
/// Who turns it on must have one.
pub async fn set_require_2fa(
    State(state): State<AppState>,
    posted: Posted<Signed, RequireForm>,
) -> Result<Response, WebError> {
    let Posted {
        session,
        form,
        client,
    } = posted;
    let member = Member::of(session)?;
    member.require(Permission::TenantManage)?;
    let on = form.require_2fa == "on";
    let store = state.store();
    if on
        && !store
            .totp_status(member.session.user())
            .await?
            .is_some_and(|t| t.confirmed)
    {
        return tenant_page_with(
            &state,
            &member,
            StatusCode::CONFLICT,
            Notice {
                error: "Turn on two-factor sign-in for your own account first (Two-factor sign-in in the menu), then require it of every member.".into(),
                ..Notice::default()
            },
        )
        .await;
    }
    let audit =
        event(&member, "tenant.require_2fa_changed", &client).target("tenant", member.tenant_id);
    store
        .set_tenant_require_2fa(member.tenant_id, on, audit)
        .await?;
    see_other("/tenant", &[])
}

/// The change request name for a digest: `config-TENANT-DIGEST12`, with a
/// suffix when a request of that name exists already.
fn request_name(tenant: &str, edit: &PolicyEdit, taken: &[String]) -> String {
    let base = format!("config-{tenant}-{}", edit.digest.short(12));
    if !taken.contains(&base) {
        return base;
    }
    (2u32..)
        .map(|i| format!("{base}-{i}"))
        .find(|n| !taken.contains(n))
        .unwrap_or(base)
}

/// POST /tenant/policy: an edited TenantPolicy becomes a configuration
/// change request judged by the policy in force; nothing changes before it
/// is approved.
pub async fn request_policy_edit(
    State(state): State<AppState>,
    posted: Posted<Signed, PolicyForm>,
) -> Result<Response, WebError> {
    let Posted {
        session,
        form,
        client,
    } = posted;
    let member = Member::of(session)?;
    member.require(Permission::TenantManage)?;
    let store = state.store();
    let settings = store.tenant_settings(member.tenant_id).await?;
    let stored = store.tenant_configs(member.tenant_id).await?;
    let in_force = ConfigRecord::objects(&stored);
    let refuse = |error: String, problems: Vec<ProblemView>| Notice {
        error,
        problems,
        yaml: Some(form.yaml.clone()),
        ..Notice::default()
    };
    if in_force.is_empty() {
        let notice = refuse(
            "This tenant has no configuration in force yet: the operator puts the first one in force from your source (git or Kubernetes); edit the policy here after that.".into(),
            Vec::new(),
        );
        return tenant_page_with(&state, &member, StatusCode::CONFLICT, notice).await;
    }
    let file = SourceFile::new(EDIT_FILE_NAME, form.yaml.clone());
    let edit = match propose_policy_edit(&settings.slug, &in_force, &file) {
        Ok(edit) => edit,
        Err(diagnostics) => {
            let problems = diagnostics
                .iter()
                .map(|d| ProblemView {
                    line: d.line,
                    path: d.path.clone(),
                    message: d.message.clone(),
                })
                .collect();
            let notice = refuse(
                "The policy was not submitted: fix what is listed below.".into(),
                problems,
            );
            return tenant_page_with(&state, &member, StatusCode::UNPROCESSABLE_ENTITY, notice)
                .await;
        }
    };
    if edit.changes.is_empty() {
        let notice = Notice {
            message: "That is the policy in force already: nothing to request.".into(),
            ..Notice::default()
        };
        return tenant_page_with(&state, &member, StatusCode::OK, notice).await;
    }
    let digest = edit.digest.to_string();
    let recent = store.config_requests(member.tenant_id).await?;
    let open = recent
        .iter()
        .find(|r| r.plan_digest == digest && r.state().is_ok_and(|s| s.is_open()));
    let name = match open {
        Some(r) => r.name.clone(),
        None => {
            let taken: Vec<String> = recent.iter().map(|r| r.name.clone()).collect();
            let name = request_name(&settings.slug, &edit, &taken);
            let plan = serde_json::to_value(&edit.plan)
                .map_err(|e| WebError::Internal(format!("plan does not serialize: {e}")))?;
            let record = &member.session.0.record;
            let requester = format!("{} <{}>", record.display_name, record.email);
            let what: Vec<String> = edit
                .changes
                .iter()
                .map(|c| format!("{} {} {}", c.op, c.kind.as_str(), c.name))
                .collect();
            let reason = format!(
                "configuration change ({}), requested in the web service, judged by the policy in force",
                what.join(", ")
            );
            let expires = state.now()
                + chrono::Duration::seconds(
                    i64::try_from(edit.policy_in_force.expires_after_secs).unwrap_or(259_200),
                );
            let id = store
                .create_change_request(
                    member.tenant_id,
                    &NewChangeRequest {
                        zone: None,
                        name: &name,
                        plan,
                        plan_digest: &digest,
                        requester: &requester,
                        reason: Some(&reason),
                        rollback_to: None,
                        expires_at: expires,
                        kind: RequestKind::Config,
                        revision: Some(zentralink_model::config::WEB_REVISION),
                    },
                )
                .await?;
            store
                .audit(
                    event(&member, "tenant.policy_edit_requested", &client)
                        .target(
                            "DnsChangeRequest",
                            format!("{}/{name}", edit.plan.namespace),
                        )
                        .meta("change_request", id.to_string())
                        .meta("digest", digest.clone())
                        .meta("changes", what),
                )
                .await?;
            name
        }
    };
    let p = &edit.policy_in_force;
    let notice = Notice {
        message: format!(
            "Change request {name} is open. The policy is put in force when your source (git or Kubernetes) declares it and the request is approved; until then the policy in force stays. It needs {} approval{} by approvers with the role {}.",
            p.min_approvals,
            if p.min_approvals == 1 { "" } else { "s" },
            p.approver_roles
                .iter()
                .map(|r| r.as_str())
                .collect::<Vec<_>>()
                .join(" or ")
        ),
        opened: Some(serde_json::json!({
            "name": name,
            "namespace": edit.plan.namespace,
            "digest": digest,
        })),
        ..Notice::default()
    };
    tenant_page_with(&state, &member, StatusCode::OK, notice).await
}

/// POST /tenant/switch: another of the person's tenants becomes active,
/// with a new session id; a tenant they do not belong to is not found.
pub async fn switch(
    State(state): State<AppState>,
    posted: Posted<Signed, SwitchForm>,
) -> Result<Response, WebError> {
    let Posted {
        session,
        form,
        client,
    } = posted;
    let store = state.store();
    let memberships = store.memberships_of(session.user()).await?;
    let Some(to) = memberships.iter().find(|m| m.slug == form.tenant) else {
        return Err(WebError::NotFound);
    };
    let from = session.tenant().and_then(|id| {
        memberships
            .iter()
            .find(|m| m.tenant_id == id)
            .map(|m| m.slug.clone())
    });
    let cookie = rotate_session(&state, &session, Some(to.tenant_id)).await?;
    let mut audit = AuditEvent::new(
        Some(to.tenant_id),
        Actor::User(session.user()),
        "tenant.switched",
    )
    .from_client(client.ip.clone(), client.user_agent.clone())
    .target("tenant", to.tenant_id)
    .meta("to", to.slug.clone());
    if let Some(from) = from {
        audit = audit.meta("from", from);
    }
    store.audit(audit).await?;
    see_other("/dashboard", &[cookie])
}

/// Paths a member who owes the tenant a second factor may still open:
/// enrolling, signing out, switching tenant, invitations, the stylesheet
/// and the health check.
fn open_while_enrolling(path: &str) -> bool {
    path == "/account/2fa"
        || path.starts_with("/account/2fa/")
        || path == "/logout"
        || path.starts_with("/logout/")
        || path == "/login"
        || path.starts_with("/login/")
        || path == "/tenant/switch"
        || path.starts_with("/invitations/")
        || path.starts_with("/static/")
        || path == "/api/healthz"
        || path.starts_with("/api/cron/")
        || path == "/status"
        || matches!(
            path,
            "/security" | "/toms" | "/dpa" | "/integrations" | "/subprocessors"
        )
        || path.starts_with("/.well-known/")
}

/// Whether the request's session is signed in to a tenant that requires a
/// second factor by someone who has none.
/// The layer that keeps a member who owes their tenant a second factor on
/// the enrolment page: every other page of the tenant answers with a
/// redirect to `/account/2fa` until they have enrolled.
pub async fn require_enrolment(
    State(state): State<AppState>,
    mut request: Request,
    next: Next,
) -> Response {
    if open_while_enrolling(request.uri().path()) {
        return next.run(request).await;
    }
    match find_session(request.headers(), &state).await {
        Ok(found) => {
            let owes = found.as_ref().is_some_and(|s| s.record.owes_enrolment);
            if owes {
                return see_other("/account/2fa", &[]).unwrap_or_else(IntoResponse::into_response);
            }
            // The handler's extractor takes it from here instead of reading it again.
            request.extensions_mut().insert(FoundSession(found));
            next.run(request).await
        }
        Err(e) => e.into_response(),
    }
}
