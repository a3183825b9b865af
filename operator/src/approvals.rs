//! Settling a change request's approvals: every signed Approval for it,
//! from the revision's documents or handed in with `zentralink approve
//! --submit`, is judged once (`zentralink_model::approval::judge`, one
//! verification path for all), recorded with its verdict and an audit
//! event, and the tally moves the request to Approved or Rejected. Does I/O
//! (the store).

use std::collections::BTreeSet;

use chrono::{DateTime, Utc};
use k8s_openapi::jiff::Timestamp;
use zentralink_model::approval::{
    ApprovalInput, RequestFacts, Tally, Verdict, judge, parse_message_time, tally,
};
use zentralink_model::catalog::Policy;
use zentralink_model::reconcile::RequestState;
use zentralink_model::resources::Decision;
use zentralink_store::approvals::Judgment;
use zentralink_store::audit::{Actor, AuditEvent};
use zentralink_store::changes::ChangeRequestRecord;
use zentralink_store::{Store, StoreError, TenantId};

use crate::reconcile::to_timestamp;

/// Where an approval came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ApprovalSource {
    /// An `Approval` document of the source's revision.
    Revision,
    /// Handed in with `zentralink approve --submit`.
    Submitted(uuid::Uuid),
}

impl ApprovalSource {
    fn as_str(self) -> &'static str {
        match self {
            ApprovalSource::Revision => "git",
            ApprovalSource::Submitted(_) => "submitted",
        }
    }
}

pub use zentralink_model::approval::document_fingerprint;

/// Where a request stands after its approvals were settled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settled {
    pub state: RequestState,
    /// The documents judged in this call: `accepted`, or the refusal's code.
    pub judged: Vec<&'static str>,
    /// Approvers counted so far, and how many more are needed.
    pub have: Vec<String>,
    pub need: u32,
}

fn decision_str(d: Decision) -> &'static str {
    match d {
        Decision::Approve => "Approve",
        Decision::Reject => "Reject",
    }
}

/// The facts a judgment needs about a stored request.
pub fn facts(
    tenant: &str,
    namespace: &str,
    request: &ChangeRequestRecord,
) -> Result<RequestFacts, String> {
    zentralink_store::dashboard::request_facts(tenant, namespace, request)
        .map_err(|e| e.to_string())
}

/// Judges each approval not judged before, records it, and applies the tally.
#[allow(clippy::too_many_arguments)]
pub async fn settle(
    store: &Store,
    actor: &str,
    tenant_id: TenantId,
    request: &ChangeRequestRecord,
    facts: &RequestFacts,
    policy: &Policy,
    approvals: &[(ApprovalInput, ApprovalSource)],
    now: DateTime<Utc>,
) -> Result<Settled, StoreError> {
    let judged = store.judged_fingerprints(tenant_id, request.id).await?;
    let mut counted: Vec<Verdict> = store
        .counted_approvals(tenant_id, request.id)
        .await?
        .into_iter()
        .filter(|a| a.plan_digest == request.plan_digest)
        .map(|a| Verdict {
            approver: a.approver,
            decision: if a.decision == "Reject" {
                Decision::Reject
            } else {
                Decision::Approve
            },
            key_fingerprint: a.key_fingerprint.unwrap_or_default(),
        })
        .collect();
    let now_ts: Timestamp = to_timestamp(now);
    let target = format!("{}/{}", facts.namespace, request.name);
    let mut verdicts: Vec<&'static str> = Vec::new();
    for (input, source) in approvals {
        let fingerprint = document_fingerprint(input);
        if judged.contains(&fingerprint) {
            if let ApprovalSource::Submitted(id) = source {
                store.mark_submission_judged(tenant_id, *id).await?;
            }
            continue;
        }
        let signed_at = parse_message_time(&input.created_at)
            .ok()
            .and_then(crate::reconcile::from_timestamp);
        let verdict = judge(input, facts, policy, now_ts);
        let already: BTreeSet<&str> = counted.iter().map(|v| v.approver.as_str()).collect();
        let (accepted, refusal, verification, key) = match &verdict {
            Ok(v) if already.contains(v.approver.as_str()) => (
                false,
                Some("AlreadyCounted"),
                format!(
                    "{} has approved this request already (one person counts once, however many keys or approvals)",
                    v.approver
                ),
                Some(v.key_fingerprint.clone()),
            ),
            Ok(v) => (
                true,
                None,
                format!(
                    "signature by {} ({}) verified; {} accepted",
                    v.approver,
                    v.key_fingerprint,
                    decision_str(v.decision)
                ),
                Some(v.key_fingerprint.clone()),
            ),
            Err(r) => (false, Some(r.code.as_str()), r.message.clone(), None),
        };
        let action = if accepted {
            "approval.accepted"
        } else {
            "approval.refused"
        };
        let mut audit = AuditEvent::new(Some(tenant_id), Actor::Operator(actor.to_owned()), action)
            .target("DnsChangeRequest", &target)
            .meta("approver", input.approver.clone())
            .meta("decision", decision_str(input.decision))
            .meta("digest", input.plan_digest.clone())
            .meta("source", source.as_str())
            .meta("document", fingerprint.clone())
            .meta("reason", verification.clone());
        if let Some(code) = refusal {
            audit = audit.meta("refusal", code);
        }
        let recorded = store
            .record_judgment(
                tenant_id,
                &Judgment {
                    change_request: request.id,
                    approver: &input.approver,
                    decision: decision_str(input.decision),
                    plan_digest: &input.plan_digest,
                    signature: &input.signature,
                    fingerprint: &fingerprint,
                    source: source.as_str(),
                    signed_at,
                    accepted,
                    refusal,
                    verification: &verification,
                    key_fingerprint: key.as_deref(),
                },
                &audit,
            )
            .await?;
        if recorded.is_some() {
            verdicts.push(refusal.unwrap_or("accepted"));
            if accepted {
                tracing::info!(request = %request.name, approver = %input.approver, "approval accepted");
            } else {
                tracing::warn!(request = %request.name, approver = %input.approver, refusal = refusal.unwrap_or(""), "approval refused: {verification}");
            }
        }
        if let ApprovalSource::Submitted(id) = source {
            store.mark_submission_judged(tenant_id, *id).await?;
        }
        if let (Ok(v), true) = (verdict, accepted) {
            counted.push(v);
        }
    }
    let state = RequestState::parse(&request.state).unwrap_or(RequestState::Pending);
    if state != RequestState::Pending {
        return Ok(Settled {
            judged: verdicts.clone(),
            state,
            have: Vec::new(),
            need: 0,
        });
    }
    match tally(&counted, policy) {
        Tally::Approved { by } => {
            let why = format!("approved by {}", by.join(", "));
            store
                .transition_change_request_with(
                    tenant_id,
                    request.id,
                    RequestState::Pending,
                    RequestState::Approved,
                    Some(&why),
                )
                .await?;
            store
                .audit(
                    AuditEvent::new(
                        Some(tenant_id),
                        Actor::Operator(actor.to_owned()),
                        "change_request.approved",
                    )
                    .target("DnsChangeRequest", &target)
                    .meta("approvers", by.clone())
                    .meta("digest", request.plan_digest.clone()),
                )
                .await?;
            Ok(Settled {
                judged: verdicts.clone(),
                state: RequestState::Approved,
                have: by,
                need: 0,
            })
        }
        Tally::Rejected { by } => {
            let why = format!("rejected by {by}");
            store
                .transition_change_request_with(
                    tenant_id,
                    request.id,
                    RequestState::Pending,
                    RequestState::Rejected,
                    Some(&why),
                )
                .await?;
            store
                .audit(
                    AuditEvent::new(
                        Some(tenant_id),
                        Actor::Operator(actor.to_owned()),
                        "change_request.rejected",
                    )
                    .target("DnsChangeRequest", &target)
                    .meta("approver", by)
                    .meta("digest", request.plan_digest.clone()),
                )
                .await?;
            Ok(Settled {
                judged: verdicts.clone(),
                state: RequestState::Rejected,
                have: Vec::new(),
                need: 0,
            })
        }
        Tally::Waiting { have, need } => Ok(Settled {
            judged: verdicts.clone(),
            state: RequestState::Pending,
            have,
            need,
        }),
    }
}
