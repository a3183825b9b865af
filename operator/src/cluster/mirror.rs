//! The store's change requests as DnsChangeRequest objects, so `kubectl get
//! dnschangerequests` shows what waits and the approvals still needed; the
//! `Accepted` condition of Approval objects; the status of DnsSnapshot
//! objects. The store stays the system of record: these are built from it,
//! as server-side apply bodies. Pure.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use k8s_openapi::jiff::Timestamp;
use serde_json::{Value, json};
use zentralink_model::catalog::Policy;
use zentralink_model::config::StoredConfigPlan;
use zentralink_model::plan::StoredPlan;
use zentralink_model::resources::PlannedChange;

use super::{MANAGED_BY, MANAGED_BY_LABEL};

const API_VERSION: &str = "dns.zentralink.net/v1alpha1";

/// The label naming the DnsZone a mirrored request belongs to.
pub const ZONE_LABEL: &str = "dns.zentralink.net/zone";

/// A change request as the store holds it, with what the mirror shows.
#[derive(Debug, Clone, PartialEq)]
pub struct RequestFacts {
    pub name: String,
    pub namespace: String,
    /// The DnsZone object's name; empty for a configuration request.
    pub zone_ref: String,
    pub kind: String,
    pub plan: Value,
    pub digest: String,
    pub state: String,
    pub requester: String,
    pub reason: Option<String>,
    pub rollback_to: Option<String>,
    pub expires_at: Timestamp,
    pub approved_by: Vec<String>,
    pub message: Option<String>,
}

/// The planned operations of a stored plan, as the object shows them. A
/// configuration request lists its changed objects (`type` is their kind).
pub fn planned_changes(kind: &str, plan: &Value) -> Vec<PlannedChange> {
    if kind == "config" {
        let Ok(config) = serde_json::from_value::<StoredConfigPlan>(plan.clone()) else {
            return Vec::new();
        };
        return config
            .config
            .iter()
            .map(|c| PlannedChange {
                op: c.op.as_str().to_owned(),
                name: if c.namespace.is_empty() {
                    c.name.clone()
                } else {
                    format!("{}/{}", c.namespace, c.name)
                },
                record_type: c.kind.as_str().to_owned(),
                before: None,
                after: None,
                reasons: vec!["the tenant's configuration changes".into()],
            })
            .collect();
    }
    let Ok(stored) = serde_json::from_value::<StoredPlan>(plan.clone()) else {
        return Vec::new();
    };
    stored
        .changes
        .into_iter()
        .map(|c| PlannedChange {
            op: c.op.as_str().to_owned(),
            name: c.name,
            record_type: c.record_type,
            before: c.before,
            after: c.after,
            reasons: c.reasons,
        })
        .collect()
}

/// The approvers who may still decide: the policy's approvers with an
/// allowed role, not the requester, not those who approved already.
pub fn may_approve(policy: &Policy, requester: &str, approved_by: &[String]) -> Vec<String> {
    policy
        .approvers
        .iter()
        .filter(|a| policy.approver_roles.contains(&a.role))
        .filter(|a| !zentralink_model::approval::is_requester(a, requester))
        .filter(|a| !approved_by.contains(&a.name))
        .map(|a| a.name.clone())
        .collect()
}

/// The server-side apply body of the mirrored object (spec and metadata).
/// A request a person made (a rollback DnsChangeRequest) keeps its own
/// metadata: only the operator's fields are added to it.
pub fn request_object(r: &RequestFacts, made_by_person: bool) -> Value {
    let mut labels = BTreeMap::new();
    if !made_by_person {
        labels.insert(MANAGED_BY_LABEL.to_owned(), MANAGED_BY.to_owned());
        if !r.zone_ref.is_empty() {
            labels.insert(ZONE_LABEL.to_owned(), r.zone_ref.clone());
        }
    }
    let mut spec = json!({
        "zoneRef": r.zone_ref,
        "planDigest": r.digest,
        "changes": planned_changes(&r.kind, &r.plan),
    });
    if !made_by_person {
        spec["requester"] = json!(r.requester);
        if let Some(reason) = &r.reason {
            spec["reason"] = json!(reason);
        }
        if let Some(to) = &r.rollback_to {
            spec["rollbackTo"] = json!(to);
        }
    }
    let mut metadata = json!({"name": r.name, "namespace": r.namespace});
    if !labels.is_empty() {
        metadata["labels"] = json!(labels);
    }
    json!({
        "apiVersion": API_VERSION,
        "kind": "DnsChangeRequest",
        "metadata": metadata,
        "spec": spec,
    })
}

/// The status body of a mirrored request.
pub fn request_status(
    r: &RequestFacts,
    policy: &Policy,
    previous: &[Condition],
    generation: Option<i64>,
    now: Timestamp,
) -> Value {
    let pending = r.state == "Pending";
    let have = u32::try_from(r.approved_by.len()).unwrap_or(u32::MAX);
    let needed = if r.state == "Pending" {
        policy.min_approvals.max(1).saturating_sub(have)
    } else {
        0
    };
    let (status, reason, message) = match r.state.as_str() {
        "Pending" => (
            "True",
            "WaitingForApprovals",
            format!(
                "needs {needed} more approval(s) of {} from {}; sign with: zentralink approve {} --key ~/.ssh/id_ed25519",
                policy.min_approvals.max(1),
                policy
                    .approver_roles
                    .iter()
                    .map(|r| r.as_str())
                    .collect::<Vec<_>>()
                    .join(" or "),
                r.name
            ),
        ),
        other => (
            "False",
            other,
            r.message
                .clone()
                .unwrap_or_else(|| format!("the request is {other}")),
        ),
    };
    let since = |s: &str| {
        previous
            .iter()
            .find(|c| c.type_ == "AwaitingApproval" && c.status == s)
            .map(|c| c.last_transition_time.clone())
            .unwrap_or(Time(now))
    };
    let condition = Condition {
        type_: "AwaitingApproval".into(),
        status: status.into(),
        reason: reason.into(),
        message: message.clone(),
        observed_generation: generation,
        last_transition_time: since(status),
    };
    let mut st = json!({
        "state": r.state,
        "approvedBy": r.approved_by,
        "approvalsNeeded": needed,
        "expiresAt": r.expires_at.to_string(),
        "conditions": [condition],
        "observedGeneration": generation,
    });
    if pending {
        st["mayApprove"] = json!(may_approve(policy, &r.requester, &r.approved_by));
    }
    json!({
        "apiVersion": API_VERSION,
        "kind": "DnsChangeRequest",
        "status": st,
    })
}

/// How an Approval object was judged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ApprovalVerdict {
    Accepted {
        message: String,
    },
    Refused {
        code: String,
        message: String,
    },
    /// No change request of that name waits in the namespace.
    UnknownRequest {
        request: String,
    },
    /// Not judged yet (the request's zone has not been reconciled since).
    NotJudged,
}

/// The status body of an Approval object.
pub fn approval_status(
    verdict: &ApprovalVerdict,
    previous: &[Condition],
    generation: Option<i64>,
    now: Timestamp,
) -> Value {
    let (status, reason, message) = match verdict {
        ApprovalVerdict::Accepted { message } => ("True", "Accepted".to_owned(), message.clone()),
        ApprovalVerdict::Refused { code, message } => ("False", code.clone(), message.clone()),
        ApprovalVerdict::UnknownRequest { request } => (
            "False",
            "UnknownChangeRequest".to_owned(),
            format!(
                "no change request {request} waits in this namespace (kubectl get dnschangerequests); the approval counts for nothing"
            ),
        ),
        ApprovalVerdict::NotJudged => (
            "Unknown",
            "NotJudgedYet".to_owned(),
            "the operator has not judged this approval yet".to_owned(),
        ),
    };
    let since = previous
        .iter()
        .find(|c| c.type_ == "Accepted" && c.status == status)
        .map(|c| c.last_transition_time.clone())
        .unwrap_or(Time(now));
    json!({
        "apiVersion": API_VERSION,
        "kind": "Approval",
        "status": {
            "conditions": [Condition {
                type_: "Accepted".into(),
                status: status.into(),
                reason,
                message,
                observed_generation: generation,
                last_transition_time: since,
            }],
            "observedGeneration": generation,
        },
    })
}

/// The status body of a DnsSnapshot taken for its object.
pub fn snapshot_status(
    id: &str,
    digest: &str,
    record_sets: u32,
    previous: &[Condition],
    generation: Option<i64>,
    now: Timestamp,
) -> Value {
    let since = previous
        .iter()
        .find(|c| c.type_ == "Ready" && c.status == "True")
        .map(|c| c.last_transition_time.clone())
        .unwrap_or(Time(now));
    json!({
        "apiVersion": API_VERSION,
        "kind": "DnsSnapshot",
        "status": {
            "snapshotId": id,
            "digest": digest,
            "recordSets": record_sets,
            "conditions": [Condition {
                type_: "Ready".into(),
                status: "True".into(),
                reason: "Taken".into(),
                message: format!("snapshot {id} holds {record_sets} record set(s)"),
                observed_generation: generation,
                last_transition_time: since,
            }],
            "observedGeneration": generation,
        },
    })
}

#[cfg(test)]
mod tests;
