//! Snapshots of a zone: the list, one snapshot's records and its diff
//! against the zone as the operator last observed it (its newest
//! snapshot), and "request rollback to this snapshot", which opens a
//! rollback change request as `zentralink rollback` does: the plan is
//! `zentralink_model::reconcile::rollback_plan` under the tenant's policy
//! in force, gated, expiring and executed by the operator like any other.
//! Reads the store; writes change requests and audit events.

use axum::Form;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::http::header::LOCATION;
use axum::response::{Html, IntoResponse, Response};
use minijinja::context;
use serde::{Deserialize, Serialize};
use zentralink_model::ZoneContent;
use zentralink_model::policy::ClassifiedPlan;
use zentralink_model::reconcile::rollback_plan;
use zentralink_store::audit::{Actor, AuditEvent};
use zentralink_store::changes::{NewChangeRequest, RequestKind};
use zentralink_store::snapshots::SnapshotRecord;
use zentralink_store::zones::ZoneRecord;
use zentralink_store::{SnapshotId, StoreError, ZoneId};

use super::{RecordRow, parse_id, render, when};
use crate::AppState;
use crate::error::{Rendered, WebError};
use crate::roles::{Member, Permission};
use crate::session::Client;

#[derive(Debug, Serialize)]
struct SnapshotRow {
    id: String,
    reason: String,
    provider: String,
    digest: String,
    record_sets: i32,
    created_at: String,
}

impl From<&SnapshotRecord> for SnapshotRow {
    fn from(s: &SnapshotRecord) -> Self {
        Self {
            id: s.id.to_string(),
            reason: s.reason.clone(),
            provider: s.provider.clone(),
            digest: s.digest.clone(),
            record_sets: s.record_sets,
            created_at: when(s.created_at),
        }
    }
}

/// A zone's snapshots, newest first.
pub async fn list(
    State(state): State<AppState>,
    member: Member,
    Path(id): Path<String>,
) -> Result<Html<String>, WebError> {
    let id: ZoneId = parse_id(&id)?;
    let zone = state.store().zone(member.tenant_id, id).await?;
    let rows: Vec<SnapshotRow> = state
        .store()
        .snapshots(member.tenant_id, id)
        .await?
        .iter()
        .map(SnapshotRow::from)
        .collect();
    Ok(Html(render(
        &state,
        &member,
        "snapshots.html",
        context! {
            zone => context! { id => zone.id.to_string(), name => zone.zone_name },
            snapshots => rows,
        },
    )?))
}

/// A snapshot, its zone, its content, and the zone as last observed.
struct Loaded {
    snapshot: SnapshotRecord,
    zone: ZoneRecord,
    content: ZoneContent,
    /// The newest snapshot of the zone and its content.
    observed: Option<(SnapshotRecord, ZoneContent)>,
}

async fn load(state: &AppState, member: &Member, id: &str) -> Result<Loaded, WebError> {
    let id: SnapshotId = parse_id(id)?;
    let store = state.store();
    let snapshot = store.snapshot(member.tenant_id, id).await?;
    let zone = store.zone(member.tenant_id, snapshot.zone_id).await?;
    let content = store.snapshot_content(member.tenant_id, id).await?;
    let observed = match store.latest_snapshot(member.tenant_id, zone.id).await? {
        Some(latest) if latest.id == snapshot.id => Some((latest, content.clone())),
        Some(latest) => {
            let c = store.snapshot_content(member.tenant_id, latest.id).await?;
            Some((latest, c))
        }
        None => None,
    };
    Ok(Loaded {
        snapshot,
        zone,
        content,
        observed,
    })
}

#[derive(Debug, Serialize)]
struct DiffRow {
    op: String,
    subject: String,
    now: Option<String>,
    snapshot: Option<String>,
    reasons: Vec<String>,
}

fn set_line(set: Option<&zentralink_model::RecordSet>) -> Option<String> {
    set.map(|s| format!("TTL {}: {}", s.ttl, s.texts().join(", ")))
}

fn diff_rows(plan: &ClassifiedPlan) -> Vec<DiffRow> {
    plan.plan
        .changes
        .iter()
        .enumerate()
        .map(|(i, c)| DiffRow {
            op: c.op.to_string(),
            subject: c.key.to_string(),
            now: set_line(c.before.as_ref()),
            snapshot: set_line(c.after.as_ref()),
            reasons: plan
                .reasons
                .get(i)
                .map(|r| r.iter().map(ToString::to_string).collect())
                .unwrap_or_default(),
        })
        .collect()
}

/// The rollback plan from the zone as last observed back to the snapshot,
/// under the tenant's policy in force (the secure default before there is one).
async fn plan_back(
    state: &AppState,
    member: &Member,
    loaded: &Loaded,
) -> Result<Option<ClassifiedPlan>, WebError> {
    let Some((_, observed)) = &loaded.observed else {
        return Ok(None);
    };
    let policy = state
        .store()
        .policy_in_force(member.tenant_id)
        .await?
        .unwrap_or_default();
    let tenant = member
        .frame
        .tenant
        .as_ref()
        .map(|t| t.slug.clone())
        .ok_or(WebError::NotFound)?;
    Ok(Some(rollback_plan(
        &tenant,
        &loaded.content,
        observed,
        &policy,
    )))
}

async fn snapshot_page(
    state: &AppState,
    member: &Member,
    loaded: &Loaded,
    notice: Option<String>,
) -> Result<String, WebError> {
    let plan = plan_back(state, member, loaded).await?;
    let records: Vec<RecordRow> = loaded
        .content
        .to_stored()
        .into_iter()
        .map(|r| RecordRow {
            name: r.name,
            record_type: r.record_type,
            ttl: r.ttl,
            values: r.values,
            drifted: false,
        })
        .collect();
    let drift = state
        .store()
        .zone_state(member.tenant_id, loaded.zone.id)
        .await?
        .map(|s| s.drift_keys())
        .unwrap_or_default();
    render(
        state,
        member,
        "snapshot.html",
        context! {
            snapshot => SnapshotRow::from(&loaded.snapshot),
            zone => context! { id => loaded.zone.id.to_string(), name => &loaded.zone.zone_name },
            records => records,
            observed => loaded.observed.as_ref().map(|(s, _)| context! {
                id => s.id.to_string(),
                at => when(s.created_at),
                reason => &s.reason,
                same => s.id == loaded.snapshot.id,
            }),
            drift => drift,
            diff => plan.as_ref().map(diff_rows),
            gated => plan.as_ref().is_some_and(ClassifiedPlan::requires_approval),
            digest => plan.as_ref().map(|p| p.digest.to_string()),
            notice => notice,
        },
    )
}

/// A snapshot's records and what rolling back to it would change.
pub async fn page(
    State(state): State<AppState>,
    member: Member,
    Path(id): Path<String>,
) -> Result<Html<String>, WebError> {
    let loaded = load(&state, &member, &id).await?;
    Ok(Html(snapshot_page(&state, &member, &loaded, None).await?))
}

#[derive(Debug, Deserialize)]
pub struct RollbackForm {
    #[serde(default)]
    pub csrf: String,
    #[serde(default)]
    pub reason: String,
}

/// The page again with why no request was opened.
async fn not_opened(
    state: &AppState,
    member: &Member,
    loaded: &Loaded,
    status: StatusCode,
    why: String,
) -> Result<Response, WebError> {
    let html = snapshot_page(state, member, loaded, Some(why)).await?;
    let mut response = (status, Html(html)).into_response();
    response.extensions_mut().insert(Rendered);
    Ok(response)
}

/// Opens a rollback change request to the snapshot (RESOURCE_WRITE), then
/// shows it. The requester is the signed-in user (`Name <e-mail>`), who
/// therefore cannot approve it.
pub async fn request_rollback(
    State(state): State<AppState>,
    member: Member,
    client: Client,
    Path(id): Path<String>,
    Form(form): Form<RollbackForm>,
) -> Result<Response, WebError> {
    // Another tenant's snapshot is "not found" before anything else is said.
    let loaded = load(&state, &member, &id).await?;
    member.session.0.check_csrf(&form.csrf)?;
    member.require(Permission::ResourceWrite)?;
    let store = state.store();
    let Some(plan) = plan_back(&state, &member, &loaded).await? else {
        return not_opened(
            &state,
            &member,
            &loaded,
            StatusCode::CONFLICT,
            "the operator has not observed this zone yet, so there is nothing to plan a rollback from".into(),
        )
        .await;
    };
    let snapshot = loaded.snapshot.id;
    if plan.plan.is_empty() {
        return not_opened(
            &state,
            &member,
            &loaded,
            StatusCode::CONFLICT,
            format!(
                "{} already holds the content of snapshot {snapshot}, as last observed; nothing to roll back",
                loaded.zone.zone_name
            ),
        )
        .await;
    }
    let policy = store
        .policy_in_force(member.tenant_id)
        .await?
        .unwrap_or_default();
    let user = store.user(member.session.user()).await?;
    let requester = format!("{} <{}>", user.display_name, user.email);
    let name = format!("{}-rollback-{}", loaded.zone.name, plan.digest.short(12));
    let reason = match form.reason.trim() {
        "" => format!("roll back to snapshot {snapshot}"),
        given => given.chars().take(500).collect(),
    };
    let now = state.now();
    let expires_at = i64::try_from(policy.expires_after_secs)
        .ok()
        .and_then(chrono::Duration::try_seconds)
        .and_then(|d| now.checked_add_signed(d))
        .unwrap_or(chrono::DateTime::<chrono::Utc>::MAX_UTC);
    let stored = serde_json::to_value(plan.plan.to_stored(Some(&plan.reasons)))
        .map_err(|e| WebError::Internal(format!("the rollback plan does not serialize: {e}")))?;
    let digest = plan.digest.to_string();
    let created = store
        .create_change_request(
            member.tenant_id,
            &NewChangeRequest {
                zone: Some(loaded.zone.id),
                name: &name,
                plan: stored,
                plan_digest: &digest,
                requester: &requester,
                reason: Some(&reason),
                rollback_to: Some(snapshot),
                expires_at,
                kind: RequestKind::Rollback,
                revision: None,
            },
        )
        .await;
    let request = match created {
        Ok(request) => request,
        Err(StoreError::Conflict(why)) => {
            return not_opened(&state, &member, &loaded, StatusCode::CONFLICT, why).await;
        }
        Err(e) => return Err(e.into()),
    };
    store
        .audit(
            AuditEvent::new(
                Some(member.tenant_id),
                Actor::User(member.session.user()),
                "change_request.opened",
            )
            .target(
                "DnsChangeRequest",
                format!("{}/{}", loaded.zone.namespace, name),
            )
            .from_client(client.ip, client.user_agent)
            .meta("zone", loaded.zone.zone_name.clone())
            .meta("requestId", request.to_string())
            .meta("rollbackTo", snapshot.to_string())
            .meta("requester", requester)
            .meta("digest", digest)
            .meta("operations", plan.plan.changes.len())
            .meta("source", "web"),
        )
        .await?;
    Ok((
        StatusCode::SEE_OTHER,
        [(LOCATION, format!("/change-requests/{request}"))],
    )
        .into_response())
}
