//! The DNS dashboard: the active tenant's zones with their state, a zone's
//! records, per-record history and timeline, its change requests (with
//! pasted approvals, see [`requests`]), its snapshots and rollbacks (see
//! [`snapshots`]), and the provider connections. Every read is scoped by the
//! tenant of the session: another tenant's zone, request or snapshot is
//! "not found". Reads the store; writes only submissions, change requests
//! and audit events.

pub mod requests;
pub mod snapshots;

use std::collections::BTreeMap;

use axum::extract::{Path, State};
use axum::response::Html;
use chrono::{DateTime, Utc};
use minijinja::{Value, context};
use serde::Serialize;
use zentralink_model::liveness::{CheckOutcome, LiveDecision, decide};
use zentralink_model::resources::ConnectionMode;
use zentralink_store::connections::ConnectionRecord;
use zentralink_store::dashboard::ZoneOverview;
use zentralink_store::{ConnectionId, ZoneId};

use crate::AppState;
use crate::error::WebError;
use crate::pages::frame;
use crate::roles::{Member, Permission, Role};
use crate::session::Signed;
use crate::svg::{TimelineBatch, timeline};

/// Renders a dashboard page: the frame of `member` and the page's values.
pub(crate) fn render(
    state: &AppState,
    member: &Member,
    name: &str,
    page: Value,
) -> Result<String, WebError> {
    let frame = &member.frame;
    state.templates().render(
        name,
        context! {
            user => &frame.user,
            tenant => &frame.tenant,
            csrf => &frame.csrf,
            may_write => member.role.may(Permission::ResourceWrite),
            ..page
        },
    )
}

/// A time as the pages show it.
pub(crate) fn when(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%d %H:%M:%S UTC").to_string()
}

/// A path's id, or "not found" (a malformed id is no object of this tenant).
pub(crate) fn parse_id<T: std::str::FromStr>(id: &str) -> Result<T, WebError> {
    id.parse().map_err(|_| WebError::NotFound)
}

// ---------------------------------------------------------------- zone state

/// Where a zone stands, as the zones list shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ZoneState {
    /// The operator has recorded no pass over the zone yet.
    NotSeen,
    /// The connection may not write yet: not tested, test or probe failed, not acknowledged.
    ProviderNotReady,
    /// The connection is read-only: plans are shown, never executed.
    ReadOnly,
    /// A change request waits for approval.
    AwaitingApproval,
    /// The provider differs from what was applied.
    Drifted,
    /// The last decision refused to execute (see its message).
    Attention,
    /// As declared.
    InSync,
}

impl ZoneState {
    pub fn label(self) -> &'static str {
        match self {
            ZoneState::NotSeen => "not seen by the operator yet",
            ZoneState::ProviderNotReady => "provider not ready",
            ZoneState::ReadOnly => "read-only",
            ZoneState::AwaitingApproval => "awaiting approval",
            ZoneState::Drifted => "drifted",
            ZoneState::Attention => "needs attention",
            ZoneState::InSync => "in sync",
        }
    }
}

/// Whether a connection may write, from its recorded mode and checks.
pub fn liveness(c: &ConnectionRecord) -> LiveDecision {
    let check = |ok: Option<bool>, message: &Option<String>| {
        ok.map(|ok| CheckOutcome {
            ok,
            message: message.clone().unwrap_or_default(),
        })
    };
    let mode = if c.mode == "Live" {
        ConnectionMode::Live
    } else {
        ConnectionMode::ReadOnly
    };
    decide(
        mode,
        c.acknowledge_live_writes,
        check(c.last_test_ok, &c.last_test_message).as_ref(),
        check(c.last_probe_ok, &c.last_probe_message).as_ref(),
    )
}

/// A zone's state and why, from the operator's last pass, its open
/// requests and its connection. Pure.
pub fn zone_state(z: &ZoneOverview, connection: Option<&ConnectionRecord>) -> (ZoneState, String) {
    if !z.seen {
        return (
            ZoneState::NotSeen,
            "The operator has not reconciled this zone yet; its state is not known.".into(),
        );
    }
    let Some(c) = connection else {
        return (
            ZoneState::ProviderNotReady,
            "The zone has no provider connection.".into(),
        );
    };
    let live = liveness(c);
    if c.mode != "Live" {
        return (ZoneState::ReadOnly, live.message);
    }
    if !live.live {
        return (ZoneState::ProviderNotReady, live.message);
    }
    let outcome = z.outcome.as_deref().unwrap_or("");
    if z.pending_requests > 0 || outcome == "AwaitingApproval" {
        return (
            ZoneState::AwaitingApproval,
            format!(
                "{} change request(s) wait for approval.",
                z.pending_requests.max(1)
            ),
        );
    }
    let drift = z.drift_keys();
    if !drift.is_empty() || outcome == "DriftReported" {
        return (
            ZoneState::Drifted,
            format!(
                "The provider differs from what was applied: {}.",
                if drift.is_empty() {
                    "see the zone".to_owned()
                } else {
                    drift.join(", ")
                }
            ),
        );
    }
    if outcome == "Refused" {
        return (
            ZoneState::Attention,
            z.message
                .clone()
                .unwrap_or_else(|| "The last pass executed nothing.".into()),
        );
    }
    (
        ZoneState::InSync,
        if z.held {
            "Held at a rollback until the declared content changes.".into()
        } else {
            "As declared.".into()
        },
    )
}

#[derive(Debug, Serialize)]
struct ZoneRow {
    id: String,
    zone_name: String,
    object: String,
    connection: Option<String>,
    state: ZoneState,
    state_label: &'static str,
    why: String,
    observed_at: Option<String>,
    pending_requests: i64,
    drift: usize,
}

fn zone_row(z: &ZoneOverview, connections: &BTreeMap<ConnectionId, ConnectionRecord>) -> ZoneRow {
    let connection = z.connection_id.and_then(|id| connections.get(&id));
    let (state, why) = zone_state(z, connection);
    ZoneRow {
        id: z.id.to_string(),
        zone_name: z.zone_name.clone(),
        object: format!("{}/{}", z.namespace, z.name),
        connection: connection.map(|c| format!("{}/{} ({})", c.namespace, c.name, c.provider_type)),
        state,
        state_label: state.label(),
        why,
        observed_at: z.observed_at.map(when),
        pending_requests: z.pending_requests,
        drift: z.drift_keys().len(),
    }
}

async fn connections_by_id(
    state: &AppState,
    member: &Member,
) -> Result<BTreeMap<ConnectionId, ConnectionRecord>, WebError> {
    Ok(state
        .store()
        .connections(member.tenant_id)
        .await?
        .into_iter()
        .map(|c| (c.id, c))
        .collect())
}

// ---------------------------------------------------------------- pages

/// The zones of the active tenant with their state. A signed-in user
/// without a tenant is told so.
pub async fn zones(
    State(state): State<AppState>,
    session: Signed,
) -> Result<Html<String>, WebError> {
    let frame = frame(&session.0);
    let Some(tenant) = &frame.tenant else {
        return Ok(Html(state.templates().render(
            "dashboard.html",
            context! {
                user => &frame.user, csrf => &frame.csrf, zones => Vec::<ZoneRow>::new(),
            },
        )?));
    };
    let (tenant_id, role) = (
        tenant.id,
        tenant
            .role
            .parse::<Role>()
            .map_err(|_| WebError::NotFound)?,
    );
    let member = Member {
        session,
        frame,
        tenant_id,
        role,
    };
    let connections = connections_by_id(&state, &member).await?;
    let rows: Vec<ZoneRow> = state
        .store()
        .zone_overviews(tenant_id)
        .await?
        .iter()
        .map(|z| zone_row(z, &connections))
        .collect();
    Ok(Html(render(
        &state,
        &member,
        "dashboard.html",
        context! { zones => rows },
    )?))
}

/// A record set as the pages show it.
#[derive(Debug, Serialize)]
pub(crate) struct RecordRow {
    pub name: String,
    pub record_type: String,
    pub ttl: u32,
    pub values: Vec<String>,
    pub drifted: bool,
}

/// `{ttl, values}` of a stored change as one line.
pub(crate) fn set_text(v: &Option<serde_json::Value>) -> Option<String> {
    let v = v.as_ref()?;
    let ttl = v.get("ttl").and_then(serde_json::Value::as_u64);
    let values: Vec<String> = v
        .get("values")
        .and_then(|a| a.as_array())
        .map(|a| {
            a.iter()
                .map(|x| x.as_str().map_or_else(|| x.to_string(), str::to_owned))
                .collect()
        })
        .unwrap_or_default();
    Some(match ttl {
        Some(ttl) => format!("TTL {ttl}: {}", values.join(", ")),
        None => values.join(", "),
    })
}

#[derive(Debug, Serialize)]
struct HistoryRow {
    at: String,
    op: String,
    outcome: String,
    error: Option<String>,
    before: Option<String>,
    after: Option<String>,
    requester: Option<String>,
    revision: Option<String>,
    request: Option<String>,
}

#[derive(Debug, Serialize)]
struct RequestLink {
    id: String,
    name: String,
    state: String,
    kind: String,
    created_at: String,
}

/// How many changes of a zone its page shows (history and timeline).
const HISTORY_LIMIT: i64 = 500;

/// A zone: its state, its records as last observed, each record's history,
/// the timeline of its changes and its change requests.
pub async fn zone(
    State(state): State<AppState>,
    member: Member,
    Path(id): Path<String>,
) -> Result<Html<String>, WebError> {
    let id: ZoneId = parse_id(&id)?;
    let store = state.store();
    let tenant = member.tenant_id;
    let overview = store.zone_overview(tenant, id).await?;
    let connections = connections_by_id(&state, &member).await?;
    let row = zone_row(&overview, &connections);
    let drift = overview.drift_keys();

    let observed = store.latest_snapshot(tenant, id).await?;
    let (records, observed_view) = match &observed {
        Some(s) => {
            let content = store.snapshot_content(tenant, s.id).await?;
            let records: Vec<RecordRow> = content
                .to_stored()
                .into_iter()
                .map(|r| {
                    let key = format!("{} {}", r.name, r.record_type);
                    RecordRow {
                        drifted: drift.contains(&key),
                        name: r.name,
                        record_type: r.record_type,
                        ttl: r.ttl,
                        values: r.values,
                    }
                })
                .collect();
            (
                records,
                Some(context! {
                    id => s.id.to_string(),
                    at => when(s.created_at),
                    reason => &s.reason,
                    provider => &s.provider,
                }),
            )
        }
        None => (Vec::new(), None),
    };

    let history = store.history(tenant, id, None, None, HISTORY_LIMIT).await?;
    let mut by_record: BTreeMap<String, Vec<HistoryRow>> = BTreeMap::new();
    let mut batches: BTreeMap<(i64, String), TimelineBatch> = BTreeMap::new();
    for h in &history {
        let batch = batches
            .entry((h.created_at.timestamp(), h.plan_digest.clone()))
            .or_insert_with(|| TimelineBatch {
                at: h.created_at,
                applied: 0,
                failed: 0,
                label: h
                    .request
                    .clone()
                    .or_else(|| h.revision.as_ref().map(|r| format!("revision {r}")))
                    .unwrap_or_else(|| "ungated changes".into()),
            });
        if h.outcome == "applied" {
            batch.applied = batch.applied.saturating_add(1);
        } else {
            batch.failed = batch.failed.saturating_add(1);
        }
        by_record
            .entry(format!("{} {}", h.name, h.record_type))
            .or_default()
            .push(HistoryRow {
                at: when(h.created_at),
                op: h.op.clone(),
                outcome: h.outcome.clone(),
                error: h.error.clone(),
                before: set_text(&h.before),
                after: set_text(&h.after),
                requester: h.requester.clone(),
                revision: h.revision.clone(),
                request: h.request.clone(),
            });
    }
    let batches: Vec<TimelineBatch> = batches.into_values().collect();
    let chart = timeline(&overview.zone_name, &batches);
    let history: Vec<Value> = by_record
        .into_iter()
        .map(|(record, rows)| context! { record => record, changes => rows })
        .collect();

    let requests: Vec<RequestLink> = store
        .change_requests(tenant, id)
        .await?
        .into_iter()
        .map(|r| RequestLink {
            id: r.id.to_string(),
            name: r.name,
            state: r.state,
            kind: r.kind,
            created_at: when(r.created_at),
        })
        .collect();

    Ok(Html(render(
        &state,
        &member,
        "zone.html",
        context! {
            zone => row,
            message => &overview.message,
            revision => &overview.revision,
            applied_at => overview.applied_at.map(when),
            drift => drift,
            records => records,
            observed => observed_view,
            history => history,
            history_limit => HISTORY_LIMIT,
            timeline => Value::from_safe_string(chart),
            requests => requests,
        },
    )?))
}

#[derive(Debug, Serialize)]
struct ConnectionRow {
    object: String,
    provider_type: String,
    mode: String,
    acknowledged: bool,
    live: bool,
    live_reason: &'static str,
    live_message: String,
    has_credentials: bool,
    test: Option<Value>,
    probe: Option<Value>,
    updated_at: String,
}

fn check_view(
    at: Option<DateTime<Utc>>,
    ok: Option<bool>,
    message: &Option<String>,
) -> Option<Value> {
    Some(context! {
        at => when(at?),
        ok => ok.unwrap_or(false),
        message => message.clone().unwrap_or_default(),
    })
}

/// The tenant's provider connections: read-only or live and why, with the
/// last connection test and write probe. Never their settings or
/// credentials (a settings value may name where a credential is kept).
pub async fn connections(
    State(state): State<AppState>,
    member: Member,
) -> Result<Html<String>, WebError> {
    let rows: Vec<ConnectionRow> = state
        .store()
        .connections(member.tenant_id)
        .await?
        .iter()
        .map(|c| {
            let live = liveness(c);
            ConnectionRow {
                object: format!("{}/{}", c.namespace, c.name),
                provider_type: c.provider_type.clone(),
                mode: c.mode.clone(),
                acknowledged: c.acknowledge_live_writes,
                live: live.live,
                live_reason: live.reason,
                live_message: live.message,
                has_credentials: c.has_credentials,
                test: check_view(c.last_test_at, c.last_test_ok, &c.last_test_message),
                probe: check_view(c.last_probe_at, c.last_probe_ok, &c.last_probe_message),
                updated_at: when(c.updated_at),
            }
        })
        .collect();
    Ok(Html(render(
        &state,
        &member,
        "connections.html",
        context! { connections => rows },
    )?))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use zentralink_store::TenantId;

    fn overview() -> ZoneOverview {
        ZoneOverview {
            id: ZoneId::new(),
            namespace: "acme".into(),
            name: "main".into(),
            zone_name: "acme.example.".into(),
            connection_id: None,
            created_at: Utc::now(),
            seen: true,
            outcome: Some("Converged".into()),
            drift: Some(serde_json::json!([])),
            message: None,
            observed_at: None,
            applied_at: None,
            revision: None,
            held: false,
            pending_requests: 0,
        }
    }

    fn connection(mode: &str, test: Option<bool>, probe: Option<bool>) -> ConnectionRecord {
        ConnectionRecord {
            id: ConnectionId::new(),
            tenant_id: TenantId::new(),
            namespace: "acme".into(),
            name: "pdns".into(),
            provider_type: "powerdns".into(),
            settings: serde_json::json!({}),
            has_credentials: true,
            mode: mode.into(),
            acknowledge_live_writes: true,
            last_test_at: None,
            last_test_ok: test,
            last_test_message: Some("401 from the API".into()),
            last_probe_at: None,
            last_probe_ok: probe,
            last_probe_message: None,
            updated_at: Utc::now(),
        }
    }

    #[test]
    fn each_state_comes_from_what_the_operator_recorded() {
        let live = connection("Live", Some(true), Some(true));
        let z = overview();
        assert_eq!(zone_state(&z, Some(&live)).0, ZoneState::InSync);
        let unseen = ZoneOverview {
            seen: false,
            ..overview()
        };
        assert_eq!(zone_state(&unseen, Some(&live)).0, ZoneState::NotSeen);
        assert_eq!(zone_state(&z, None).0, ZoneState::ProviderNotReady);
        let read_only = connection("ReadOnly", Some(true), Some(true));
        assert_eq!(zone_state(&z, Some(&read_only)).0, ZoneState::ReadOnly);
        let failing = connection("Live", Some(false), None);
        let (state, why) = zone_state(&z, Some(&failing));
        assert_eq!(state, ZoneState::ProviderNotReady);
        assert!(why.contains("401 from the API"), "{why}");
        let waiting = ZoneOverview {
            pending_requests: 2,
            ..overview()
        };
        assert_eq!(
            zone_state(&waiting, Some(&live)).0,
            ZoneState::AwaitingApproval
        );
        let drifted = ZoneOverview {
            drift: Some(serde_json::json!(["www.acme.example. A"])),
            ..overview()
        };
        let (state, why) = zone_state(&drifted, Some(&live));
        assert_eq!(state, ZoneState::Drifted);
        assert!(why.contains("www.acme.example. A"));
    }
}
