//! The reconcile decision: from what a zone should hold, what its provider
//! holds, what ZentraLink last applied, the policy, the zone's change
//! requests and whether the connection may write, to what happens now.
//! `zentralink plan` and the reconciler both go through [`decide`], so what a
//! pull request shows is what the operator will do. Pure: time is a parameter.
//!
//! The rules (README "How a zone is reconciled"):
//! - the plan turns the provider's content into the declared content;
//! - drift is provider content that differs from what ZentraLink last
//!   applied; with `drift: Report` its changes are reported and left alone,
//!   with `drift: Revert` they are planned back like any other change;
//! - ungated operations execute right away; gated ones wait together in one
//!   change request whose digest covers them and the before-values of the
//!   record sets they touch (an unrelated change neither waits for it nor
//!   supersedes it); when the bulk threshold gates the plan, the whole plan
//!   is the request;
//! - a request whose digest no longer matches the plan is superseded (its
//!   approvals do not carry over); an approved, current request executes;
//! - a rollback request, while open, holds the zone: nothing else is
//!   executed (other requests wait, untouched), so nothing supersedes it but a
//!   change on the provider; once it executed, the zone stays at the snapshot
//!   until its declared content changes, and the requests that waited are superseded;
//! - a connection that may not write executes nothing and opens nothing;
//! - a plan that creates, changes or removes the DS record set of a delegated
//!   child zone ZentraLink manages is refused unless the child's current
//!   DNSKEY set matches the new DS set ([`check_ds_change`]): nothing is
//!   executed or requested for the zone, and its requests stay as they are
//!   (pending ones past their expiry still expire). The declared plan is
//!   checked first, before the connection's mode, so a read-only pass shows
//!   the refusal too; a rollback's plan is checked before it executes or waits.

use std::collections::BTreeSet;
use std::fmt;

use hickory_proto::rr::RecordType;
use k8s_openapi::jiff::Timestamp;
use serde::Serialize;

use crate::catalog::Policy;
use crate::digest::{PlanDigest, change_request_name, plan_digest, zone_digest};
use crate::dnssec::check_ds_change;
use crate::liveness::LiveDecision;
use crate::name::ZoneName;
use crate::plan::{Change, Ownership, Plan, PlanScope, plan_zone};
use crate::policy::{ClassifiedPlan, GateReason, PlanOrigin, classify};
use crate::record::{RecordSet, RrKey};
use crate::resources::DriftMode;
use crate::zone::ZoneContent;

// ---------------------------------------------------------------- requests

/// The life of a change request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub enum RequestState {
    /// Waiting for approvals.
    Pending,
    /// Enough approvals: executes on the next pass while its digest is current.
    Approved,
    /// Being executed: marked before the provider call, so a crash is recovered.
    Executing,
    /// A valid rejection was given.
    Rejected,
    /// The plan changed (or was no longer wanted) before it executed.
    Superseded,
    /// Not approved in time.
    Expired,
    /// Executed; every operation applied.
    Applied,
    /// Executed, and not every operation applied.
    Failed,
}

impl RequestState {
    pub const ALL: [RequestState; 8] = [
        RequestState::Pending,
        RequestState::Approved,
        RequestState::Executing,
        RequestState::Rejected,
        RequestState::Superseded,
        RequestState::Expired,
        RequestState::Applied,
        RequestState::Failed,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            RequestState::Pending => "Pending",
            RequestState::Approved => "Approved",
            RequestState::Executing => "Executing",
            RequestState::Rejected => "Rejected",
            RequestState::Superseded => "Superseded",
            RequestState::Expired => "Expired",
            RequestState::Applied => "Applied",
            RequestState::Failed => "Failed",
        }
    }

    pub fn parse(s: &str) -> Option<RequestState> {
        RequestState::ALL.into_iter().find(|r| r.as_str() == s)
    }

    /// Still to be decided or executed.
    pub fn is_open(self) -> bool {
        matches!(
            self,
            RequestState::Pending | RequestState::Approved | RequestState::Executing
        )
    }

    /// The states a request may move to from this one. `Executing` may go
    /// back to `Approved` when the provider was not reached (nothing applied).
    pub fn may_become(self, next: RequestState) -> bool {
        use RequestState::*;
        matches!(
            (self, next),
            (Pending, Approved | Rejected | Superseded | Expired)
                | (Approved, Executing | Superseded)
                | (Executing, Applied | Failed | Approved)
        )
    }
}

impl fmt::Display for RequestState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a change request asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RequestKind {
    /// The gated part of the declared plan.
    Declared,
    /// Rolling the zone back to a snapshot, whose content is given.
    Rollback {
        snapshot: String,
        target: ZoneContent,
    },
}

/// A change request of the zone, as the store holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestView {
    pub name: String,
    pub digest: PlanDigest,
    pub state: RequestState,
    pub kind: RequestKind,
    pub expires_at: Timestamp,
}

// ---------------------------------------------------------------- inputs

/// What ZentraLink last applied to the zone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LastApplied {
    /// The zone as it was right after the last execution (its post-change
    /// snapshot), or the baseline recorded on the zone's first pass.
    pub content: ZoneContent,
    /// Under `Owned`: the record sets ZentraLink applied and still owns.
    pub owned: BTreeSet<RrKey>,
    /// After a rollback: the digest of the declared content at that time.
    /// While the declared content is unchanged, the zone stays rolled back.
    pub held_for: Option<PlanDigest>,
}

/// A zone ZentraLink manages that is delegated below the zone being
/// decided, with its DNSKEY set as observed. A plan touching the DS set at
/// its apex name is checked against these keys.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChildZone {
    pub zone: ZoneName,
    /// The child's apex DNSKEY set as its provider serves it; `None` when it
    /// serves none (the child is not signed).
    pub dnskeys: Option<RecordSet>,
}

/// Everything [`decide`] looks at for one zone.
#[derive(Debug, Clone, Copy)]
pub struct ZoneInputs<'a> {
    /// The tenant (its name, part of every digest).
    pub tenant: &'a str,
    /// The DnsZone object's name (change requests are named after it).
    pub object: &'a str,
    pub desired: &'a ZoneContent,
    pub ownership: Ownership,
    pub drift: DriftMode,
    /// The provider's content (empty when the zone does not exist there).
    pub actual: &'a ZoneContent,
    pub last_applied: Option<&'a LastApplied>,
    pub policy: &'a Policy,
    /// The zone's change requests (open ones, and any closed one whose name
    /// a new request would take).
    pub requests: &'a [RequestView],
    /// Whether the connection may write, and why not.
    pub live: &'a LiveDecision,
    pub now: Timestamp,
    /// The zones ZentraLink manages that are delegated below this one, with
    /// their current DNSKEY sets (empty when there are none).
    pub children: &'a [ChildZone],
}

// ---------------------------------------------------------------- decision

/// A change request to open.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewRequest {
    pub name: String,
    /// The operations that wait, with their reasons.
    pub plan: ClassifiedPlan,
    pub expires_at: Timestamp,
}

/// What happens to the zone's change requests.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RequestChanges {
    /// Open requests whose plan is no longer the plan: they become `Superseded`.
    pub supersede: Vec<String>,
    /// Pending requests past their expiry: they become `Expired`.
    pub expire: Vec<String>,
    /// A request to open.
    pub open: Option<NewRequest>,
    /// The open request that stays as it is (waiting for approvals).
    pub keep: Option<String>,
}

/// What executes now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Execution {
    /// The operations, in key order, with their digest.
    pub plan: Plan,
    pub digest: PlanDigest,
    /// The approved request this executes (its operations are part of `plan`).
    pub request: Option<String>,
    /// A rollback: after it, the zone stays at the snapshot while the declared content is unchanged.
    pub rollback: bool,
}

/// The one-line summary of a decision, for status and metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Outcome {
    /// The zone is as declared; nothing to do.
    Converged,
    /// Operations execute now (none wait).
    Execute,
    /// Operations wait for approval in a change request (opened, kept or
    /// replacing a superseded one); ungated ones may execute meanwhile.
    AwaitingApproval,
    /// An approved request executes now.
    ExecuteApproved,
    /// The provider drifted from what was applied; reported, not reverted.
    DriftReported,
    /// The zone stays at a rollback until its declared content changes.
    RolledBack,
    /// Nothing is executed or requested: the connection may not write.
    ReadOnly,
    /// Nothing is executed: the decision refused (see the reason).
    Refused,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Converged => "Converged",
            Outcome::Execute => "Execute",
            Outcome::AwaitingApproval => "AwaitingApproval",
            Outcome::ExecuteApproved => "ExecuteApproved",
            Outcome::DriftReported => "DriftReported",
            Outcome::RolledBack => "RolledBack",
            Outcome::ReadOnly => "ReadOnly",
            Outcome::Refused => "Refused",
        }
    }
}

/// What to do with one zone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    pub outcome: Outcome,
    /// The declared plan (what `zentralink plan` shows), classified: drift
    /// left alone under `drift: Report` is not part of it.
    pub plan: ClassifiedPlan,
    /// What executes now, if anything.
    pub execute: Option<Execution>,
    pub requests: RequestChanges,
    /// Drift: for each record set that differs from what was last applied,
    /// the change from the applied state to the provider's.
    pub drift: Vec<Change>,
    /// Why nothing executes, when something would have (read-only, refused, rolled back).
    pub reason: Option<String>,
}

impl Decision {
    /// True when the pass writes nothing at all for this zone.
    pub fn is_quiet(&self) -> bool {
        self.execute.is_none()
            && self.requests.open.is_none()
            && self.requests.supersede.is_empty()
            && self.requests.expire.is_empty()
    }
}

/// Decides what happens to one zone. Pure.
pub fn decide(z: &ZoneInputs<'_>) -> Decision {
    let zone = &z.desired.origin;
    let open: Vec<&RequestView> = z.requests.iter().filter(|r| r.state.is_open()).collect();
    let mut changes = RequestChanges::default();

    // Pending requests past their expiry are expired first, whatever else happens.
    let mut live_requests = Vec::new();
    for r in open {
        if r.state == RequestState::Pending && r.expires_at <= z.now {
            changes.expire.push(r.name.clone());
        } else {
            live_requests.push(r);
        }
    }

    let declared = declared_plan(z);
    let drift = drift_of(z);

    // A DS change that would break a delegated child's validation refuses
    // the whole pass: nothing executes, nothing is asked for.
    if let Err(reason) = check_delegations(z, &declared.plan) {
        return Decision {
            outcome: Outcome::Refused,
            plan: declared,
            execute: None,
            requests: changes,
            drift,
            reason: Some(reason),
        };
    }

    if !z.live.live {
        return Decision {
            outcome: Outcome::ReadOnly,
            plan: declared,
            execute: None,
            requests: changes,
            drift,
            reason: Some(z.live.message.clone()),
        };
    }

    // An open rollback holds the zone.
    if let Some(rollback) = live_requests
        .iter()
        .find(|r| matches!(r.kind, RequestKind::Rollback { .. }))
    {
        return decide_rollback(z, rollback, &live_requests, declared, drift, changes);
    }

    // A rollback that executed holds the zone while the declared content is unchanged.
    if let Some(held) = z.last_applied.and_then(|l| l.held_for)
        && held == zone_digest(z.desired)
    {
        changes
            .supersede
            .extend(live_requests.iter().map(|r| r.name.clone()));
        return Decision {
            outcome: Outcome::RolledBack,
            plan: declared,
            execute: None,
            requests: changes,
            drift,
            reason: Some(format!(
                "{zone} was rolled back to a snapshot; it stays there until its declared content changes (revert or amend the DnsZone to resume)"
            )),
        };
    }

    let (gated, ungated) = split(&declared);
    let mut execute_plan = ungated;
    let mut executed_request = None;

    if gated.is_empty() {
        changes
            .supersede
            .extend(live_requests.iter().map(|r| r.name.clone()));
    } else {
        let waiting = sub_plan(&declared, |reasons| !reasons.is_empty());
        let name = change_request_name(z.object, &waiting.digest);
        for r in &live_requests {
            if r.digest != waiting.digest {
                changes.supersede.push(r.name.clone());
            }
        }
        let current = live_requests.iter().find(|r| r.digest == waiting.digest);
        match current.map(|r| r.state) {
            Some(RequestState::Approved) => {
                execute_plan.extend(gated);
                executed_request = current.map(|r| r.name.clone());
            }
            Some(_) => changes.keep = current.map(|r| r.name.clone()),
            None => {
                // The same plan was asked for before. Rejected or expired (just
                // now, too): decided, not asked again. Superseded, applied or
                // failed: asked again under the next free name.
                let decided = z.requests.iter().find(|r| {
                    r.digest == waiting.digest
                        && (matches!(r.state, RequestState::Rejected | RequestState::Expired)
                            || changes.expire.contains(&r.name))
                });
                if let Some(closed) = decided {
                    let closed = RequestView {
                        state: if changes.expire.contains(&closed.name) {
                            RequestState::Expired
                        } else {
                            closed.state
                        },
                        ..closed.clone()
                    };
                    return refuse_closed(z, &closed, declared, drift, changes, execute_plan);
                }
                changes.open = Some(NewRequest {
                    name: free_name(&name, z.requests),
                    plan: waiting,
                    expires_at: expiry(z),
                });
            }
        }
    }

    let execute = (!execute_plan.is_empty()).then(|| {
        execute_plan.sort_by(|a, b| a.key.cmp(&b.key));
        let plan = Plan {
            zone: zone.clone(),
            changes: execute_plan,
        };
        Execution {
            digest: plan_digest(z.tenant, &plan),
            plan,
            request: executed_request.clone(),
            rollback: false,
        }
    });
    let outcome = if executed_request.is_some() {
        Outcome::ExecuteApproved
    } else if changes.open.is_some() || changes.keep.is_some() {
        Outcome::AwaitingApproval
    } else if execute.is_some() {
        Outcome::Execute
    } else if !drift.is_empty() && z.drift == DriftMode::Report {
        Outcome::DriftReported
    } else {
        Outcome::Converged
    };
    Decision {
        outcome,
        plan: declared,
        execute,
        requests: changes,
        drift,
        reason: None,
    }
}

/// Checks every change of the plan to the DS set at the apex of a child
/// zone listed in [`ZoneInputs::children`] against that child's DNSKEY set.
fn check_delegations(z: &ZoneInputs<'_>, plan: &Plan) -> Result<(), String> {
    let parent = &plan.zone;
    let problems: Vec<String> = plan
        .changes
        .iter()
        .filter(|c| c.key.rtype == RecordType::DS)
        .filter_map(|c| {
            let child = z.children.iter().find(|child| {
                &child.zone != parent
                    && parent.contains(child.zone.as_name())
                    && RrKey::new(child.zone.as_name().clone(), RecordType::DS) == c.key
            })?;
            check_ds_change(&child.zone, child.dnskeys.as_ref(), c.after.as_ref()).err()
        })
        .collect();
    if problems.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "{parent}: nothing is executed or requested: {}",
            problems.join("; ")
        ))
    }
}

/// The declared plan, classified, without the drift `drift: Report` leaves alone.
fn declared_plan(z: &ZoneInputs<'_>) -> ClassifiedPlan {
    let owned = z.last_applied.map(|l| &l.owned);
    let mut plan = plan_zone(
        z.desired,
        z.actual,
        &PlanScope {
            ownership: z.ownership,
            previously_owned: owned,
        },
    );
    if z.drift == DriftMode::Report
        && let Some(last) = z.last_applied
    {
        // A change that only undoes drift (the declared set is what was
        // applied, the provider's differs) is reported, not planned.
        plan.changes.retain(|c| {
            let applied = last.content.sets.get(&c.key);
            let declared = z.desired.sets.get(&c.key);
            let drifted = applied != z.actual.sets.get(&c.key);
            !(drifted && declared == applied)
        });
    }
    classify(z.tenant, plan, &z.policy.gate, PlanOrigin::Declared)
}

/// Record sets that differ from what was last applied, as changes from the
/// applied state to the provider's. Under `Owned`, only owned record sets.
fn drift_of(z: &ZoneInputs<'_>) -> Vec<Change> {
    let Some(last) = z.last_applied else {
        return Vec::new();
    };
    // The content read stands for the last applied one (their digests were
    // equal): nothing drifted, and 100,000 sets need not be compared.
    if std::ptr::eq(z.actual, &last.content) {
        return Vec::new();
    }
    let scope = PlanScope {
        ownership: Ownership::Full,
        previously_owned: None,
    };
    let mut drift = plan_zone(z.actual, &last.content, &scope).changes;
    if z.ownership == Ownership::Owned {
        drift.retain(|c| last.owned.contains(&c.key));
    }
    drift
}

/// The gated and the ungated operations of a classified plan.
fn split(plan: &ClassifiedPlan) -> (Vec<Change>, Vec<Change>) {
    let mut gated = Vec::new();
    let mut ungated = Vec::new();
    for (c, reasons) in plan.plan.changes.iter().zip(&plan.reasons) {
        if reasons.is_empty() {
            ungated.push(c.clone());
        } else {
            gated.push(c.clone());
        }
    }
    (gated, ungated)
}

/// The operations of `plan` whose reasons `keep`, classified, with their own digest.
fn sub_plan(plan: &ClassifiedPlan, keep: impl Fn(&[GateReason]) -> bool) -> ClassifiedPlan {
    let mut changes = Vec::new();
    let mut reasons = Vec::new();
    for (c, r) in plan.plan.changes.iter().zip(&plan.reasons) {
        if keep(r) {
            changes.push(c.clone());
            reasons.push(r.clone());
        }
    }
    let sub = Plan {
        zone: plan.plan.zone.clone(),
        changes,
    };
    ClassifiedPlan {
        tenant: plan.tenant.clone(),
        digest: plan_digest(&plan.tenant, &sub),
        plan: sub,
        reasons,
    }
}

/// `base`, or `base-2`, `base-3`, ... when requests of the zone hold it already.
fn free_name(base: &str, requests: &[RequestView]) -> String {
    let taken = |n: &str| requests.iter().any(|r| r.name == n);
    if !taken(base) {
        return base.to_owned();
    }
    (2u32..)
        .map(|i| format!("{base}-{i}"))
        .find(|n| !taken(n))
        .unwrap_or_else(|| base.to_owned())
}

fn expiry(z: &ZoneInputs<'_>) -> Timestamp {
    let secs = i64::try_from(z.policy.expires_after_secs).unwrap_or(i64::MAX / 2);
    z.now
        .checked_add(k8s_openapi::jiff::SignedDuration::from_secs(secs))
        .unwrap_or(Timestamp::MAX)
}

/// The plan of a rollback to `target`: every record set of the zone back to
/// the snapshot (provider-managed apex SOA and NS included when the snapshot holds them).
pub fn rollback_plan(
    tenant: &str,
    target: &ZoneContent,
    actual: &ZoneContent,
    policy: &Policy,
) -> ClassifiedPlan {
    let plan = plan_zone(
        target,
        actual,
        &PlanScope {
            ownership: Ownership::Full,
            previously_owned: None,
        },
    );
    classify(tenant, plan, &policy.gate, PlanOrigin::Rollback)
}

fn decide_rollback(
    z: &ZoneInputs<'_>,
    rollback: &RequestView,
    open: &[&RequestView],
    declared: ClassifiedPlan,
    drift: Vec<Change>,
    mut changes: RequestChanges,
) -> Decision {
    let RequestKind::Rollback { target, snapshot } = &rollback.kind else {
        return Decision {
            outcome: Outcome::Converged,
            plan: declared,
            execute: None,
            requests: changes,
            drift,
            reason: None,
        };
    };
    // Other open requests wait behind the rollback, untouched: if it is
    // rejected they go on; once it executed, the hold supersedes them.
    let _ = open;
    let now = rollback_plan(z.tenant, target, z.actual, z.policy);
    if now.digest != rollback.digest {
        changes.supersede.push(rollback.name.clone());
        return Decision {
            outcome: Outcome::Refused,
            plan: declared,
            execute: None,
            requests: changes,
            drift,
            reason: Some(format!(
                "rollback {} to snapshot {snapshot} is superseded: the zone changed since it was requested; request the rollback again to see the new plan",
                rollback.name
            )),
        };
    }
    if let Err(reason) = check_delegations(z, &now.plan) {
        return Decision {
            outcome: Outcome::Refused,
            plan: declared,
            execute: None,
            requests: changes,
            drift,
            reason: Some(format!(
                "rollback {} to snapshot {snapshot} is refused: {reason}",
                rollback.name
            )),
        };
    }
    if rollback.state == RequestState::Approved || !now.requires_approval() {
        return Decision {
            outcome: Outcome::ExecuteApproved,
            plan: declared,
            execute: Some(Execution {
                digest: now.digest,
                plan: now.plan,
                request: Some(rollback.name.clone()),
                rollback: true,
            }),
            requests: changes,
            drift,
            reason: None,
        };
    }
    changes.keep = Some(rollback.name.clone());
    Decision {
        outcome: Outcome::AwaitingApproval,
        plan: declared,
        execute: None,
        requests: changes,
        drift,
        reason: Some(format!(
            "rollback {} to snapshot {snapshot} waits for approval; nothing else executes meanwhile",
            rollback.name
        )),
    }
}

/// The gated plan is exactly one that was decided already (rejected or
/// expired): it is not asked again; the ungated operations still execute.
fn refuse_closed(
    z: &ZoneInputs<'_>,
    closed: &RequestView,
    declared: ClassifiedPlan,
    drift: Vec<Change>,
    changes: RequestChanges,
    mut ungated: Vec<Change>,
) -> Decision {
    let why = match closed.state {
        RequestState::Rejected => format!(
            "change request {} for this exact plan was rejected; change the declared state to ask again",
            closed.name
        ),
        RequestState::Expired => format!(
            "change request {} for this exact plan expired without enough approvals; change the declared state to ask again",
            closed.name
        ),
        other => format!(
            "change request {} for this exact plan is {other}",
            closed.name
        ),
    };
    let execute = (!ungated.is_empty()).then(|| {
        ungated.sort_by(|a, b| a.key.cmp(&b.key));
        let plan = Plan {
            zone: z.desired.origin.clone(),
            changes: ungated,
        };
        Execution {
            digest: plan_digest(z.tenant, &plan),
            plan,
            request: None,
            rollback: false,
        }
    });
    Decision {
        outcome: Outcome::Refused,
        plan: declared,
        execute,
        requests: changes,
        drift,
        reason: Some(why),
    }
}

#[cfg(test)]
mod tests;
