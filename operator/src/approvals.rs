//! Settling a change request's approvals: every signed Approval for it,
//! from the revision's documents or handed in with `zentralink approve
//! --submit`, is judged once (`zentralink_model::approval::judge`, one
//! verification path for all), recorded with its verdict and an audit
//! event, and the tally moves the request to Approved or Rejected. Does I/O
//! (the store).

use std::collections::BTreeSet;

use chrono::{DateTime, Utc};
use k8s_openapi::jiff::Timestamp;
use sha2::{Digest, Sha256};
use zentralink_model::approval::{
    ApprovalInput, RequestFacts, Tally, Verdict, decision_text, judge, parse_message_time, tally,
};
use zentralink_model::catalog::Policy;
use zentralink_model::digest::PlanDigest;
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

/// The identity of a signed document: the SHA-256 over every field the
/// approval message is built from and its signature (white space in the
/// armor ignored). Two documents with one signature but different fields
/// (a tampered digest beside the genuine one) are two documents, each judged.
pub fn document_fingerprint(input: &ApprovalInput) -> String {
    let normalized: String = input.signature.split_whitespace().collect();
    let mut hash = Sha256::new();
    for field in [
        input.tenant.as_str(),
        input.namespace.as_str(),
        input.change_request.as_str(),
        input.plan_digest.as_str(),
        input.approver.as_str(),
        decision_text(input.decision),
        input.created_at.as_str(),
        normalized.as_str(),
    ] {
        // length-prefixed: no field can run into the next
        hash.update((field.len() as u64).to_be_bytes());
        hash.update(field.as_bytes());
    }
    format!(
        "sha256:{}",
        hash.finalize()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<String>()
    )
}

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
    Ok(RequestFacts {
        tenant: tenant.to_owned(),
        namespace: namespace.to_owned(),
        name: request.name.clone(),
        digest: request
            .plan_digest
            .parse::<PlanDigest>()
            .map_err(|e| format!("change request {}: {e}", request.name))?,
        state: RequestState::parse(&request.state)
            .ok_or_else(|| format!("change request {}: state {}", request.name, request.state))?,
        requester: request.requester.clone(),
        created_at: to_timestamp(request.created_at),
        expires_at: to_timestamp(request.expires_at),
    })
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
