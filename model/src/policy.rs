//! Policy gating: which operations of a plan need approval, and why. Pure.

use std::collections::BTreeSet;
use std::fmt;

use hickory_proto::rr::RecordType;
use serde::Serialize;

use crate::digest::{PlanDigest, plan_digest};
use crate::plan::{ChangeOp, Plan};
use crate::record::type_name;

/// The gating rules of a tenant, validated from `TenantPolicy.spec.approvals.requiredFor`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GatePolicy {
    /// Changes to record sets of these types need approval.
    pub record_types: BTreeSet<u16>,
    /// Deleting a record set needs approval.
    pub deletions: bool,
    /// A plan touching more record sets than this needs approval as a whole.
    pub bulk_change_threshold: Option<u32>,
    /// A rollback to a snapshot needs approval as a whole.
    pub rollbacks: bool,
}

impl Default for GatePolicy {
    /// Secure defaults for a tenant without a policy: critical types,
    /// deletions, more than 20 record sets, rollbacks.
    fn default() -> Self {
        Self {
            record_types: [
                RecordType::MX,
                RecordType::NS,
                RecordType::TXT,
                RecordType::CAA,
                RecordType::SOA,
            ]
            .into_iter()
            .map(u16::from)
            .collect(),
            deletions: true,
            bulk_change_threshold: Some(20),
            rollbacks: true,
        }
    }
}

/// Why an operation needs approval.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(tag = "reason", rename_all = "camelCase")]
pub enum GateReason {
    /// The record type is gated.
    #[serde(rename_all = "camelCase")]
    RecordType { record_type: String },
    /// The operation deletes a record set.
    Deletion,
    /// The plan touches more record sets than the threshold.
    #[serde(rename_all = "camelCase")]
    BulkChange { changes: usize, threshold: u32 },
    /// The plan is a rollback to a snapshot.
    Rollback,
}

impl fmt::Display for GateReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            GateReason::RecordType { record_type } => {
                write!(f, "{record_type} records need approval")
            }
            GateReason::Deletion => f.write_str("deletions need approval"),
            GateReason::BulkChange { changes, threshold } => write!(
                f,
                "the plan touches {changes} record sets, more than the bulk threshold of {threshold}"
            ),
            GateReason::Rollback => f.write_str("rollbacks need approval"),
        }
    }
}

/// The roles of the web service; approvers carry one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Role {
    Owner,
    Admin,
    Manager,
    Member,
    Viewer,
}

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

    pub fn parse(s: &str) -> Result<Role, String> {
        Role::ALL
            .into_iter()
            .find(|r| r.as_str().eq_ignore_ascii_case(s.trim()))
            .ok_or_else(|| {
                format!(
                    "{s:?} is not a role; expected one of OWNER, ADMIN, MANAGER, MEMBER, VIEWER"
                )
            })
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Parses a duration such as `72h`, `3d`, `90m`, `1h30m` or `3600s` into seconds.
pub fn parse_duration(input: &str) -> Result<u64, String> {
    let s = input.trim();
    let bad = || format!("{input:?} is not a duration (examples: 72h, 3d, 90m, 1h30m)");
    if s.is_empty() {
        return Err(bad());
    }
    let mut total: u64 = 0;
    let mut digits = String::new();
    for ch in s.chars() {
        if ch.is_ascii_digit() {
            digits.push(ch);
            continue;
        }
        let unit = match ch {
            's' => 1,
            'm' => 60,
            'h' => 3600,
            'd' => 86_400,
            'w' => 604_800,
            _ => return Err(bad()),
        };
        let n: u64 = digits.parse().map_err(|_| bad())?;
        total = n
            .checked_mul(unit)
            .and_then(|v| total.checked_add(v))
            .ok_or_else(bad)?;
        digits.clear();
    }
    if !digits.is_empty() || total == 0 {
        return Err(bad());
    }
    Ok(total)
}

/// How the plan came about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum PlanOrigin {
    /// Reconciling the declared state.
    #[default]
    Declared,
    /// Rolling back to a snapshot.
    Rollback,
}

/// A plan with its digest and, per operation, the reasons it needs approval.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClassifiedPlan {
    pub tenant: String,
    pub plan: Plan,
    pub digest: PlanDigest,
    /// `reasons[i]` belongs to `plan.changes[i]`; empty means no approval needed.
    pub reasons: Vec<Vec<GateReason>>,
}

impl ClassifiedPlan {
    /// True when any operation needs approval: the plan waits as a whole.
    pub fn requires_approval(&self) -> bool {
        self.reasons.iter().any(|r| !r.is_empty())
    }

    pub fn gated_count(&self) -> usize {
        self.reasons.iter().filter(|r| !r.is_empty()).count()
    }
}

/// Classifies every operation of a plan against the policy and computes its digest.
pub fn classify(
    tenant: &str,
    plan: Plan,
    policy: &GatePolicy,
    origin: PlanOrigin,
) -> ClassifiedPlan {
    let total = plan.changes.len();
    let bulk = policy
        .bulk_change_threshold
        .filter(|t| total > usize::try_from(*t).unwrap_or(usize::MAX));
    let reasons = plan
        .changes
        .iter()
        .map(|c| {
            let mut r = Vec::new();
            if policy.record_types.contains(&u16::from(c.key.rtype)) {
                r.push(GateReason::RecordType {
                    record_type: type_name(c.key.rtype),
                });
            }
            if policy.deletions && c.op == ChangeOp::Delete {
                r.push(GateReason::Deletion);
            }
            if let Some(threshold) = bulk {
                r.push(GateReason::BulkChange {
                    changes: total,
                    threshold,
                });
            }
            if policy.rollbacks && origin == PlanOrigin::Rollback {
                r.push(GateReason::Rollback);
            }
            r
        })
        .collect();
    let digest = plan_digest(tenant, &plan);
    ClassifiedPlan {
        tenant: tenant.to_owned(),
        plan,
        digest,
        reasons,
    }
}
