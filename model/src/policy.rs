//! Policy gating: which operations of a plan need approval, and why.
//! Changes to the record sets that carry a zone's DNSSEC chain of trust (DS,
//! DNSKEY, CDS, CDNSKEY) always do, whatever the policy says. Pure.

use std::collections::BTreeSet;
use std::fmt;

use hickory_proto::rr::RecordType;
use serde::Serialize;

use crate::digest::{PlanDigest, plan_digest};
use crate::dnssec::is_trust_anchor_type;
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
    /// The record set carries the zone's DNSSEC chain of trust (DS, DNSKEY,
    /// CDS, CDNSKEY): always gated, whatever the policy says.
    #[serde(rename_all = "camelCase")]
    Dnssec { record_type: String },
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
            GateReason::Dnssec { record_type } => write!(
                f,
                "{record_type} records always need approval: they decide whether the zone validates"
            ),
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
            if is_trust_anchor_type(c.key.rtype) {
                // Gated whatever the policy says; its own reason says why,
                // so a policy listing the type adds nothing.
                r.push(GateReason::Dnssec {
                    record_type: type_name(c.key.rtype),
                });
            } else if policy.record_types.contains(&u16::from(c.key.rtype)) {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::name::ZoneName;
    use crate::plan::Change;
    use crate::record::{RecordSet, RecordValue, RrKey, generic};

    fn zone() -> ZoneName {
        ZoneName::parse("acme.example.").unwrap_or_else(|e| panic!("{e}"))
    }

    /// One value of each type, in a form its parser takes.
    fn value(rtype: RecordType) -> RecordValue {
        let sha256 = "ab".repeat(32);
        let key = {
            let mut wire = vec![0x01, 0x01, 3, 13];
            wire.extend((0u8..64).map(|b| b.wrapping_mul(7)));
            generic(&wire)
        };
        let text = match rtype {
            RecordType::DS => format!("60485 13 2 {sha256}"),
            RecordType::CDS => {
                let mut wire = vec![0xec, 0x45, 13, 2];
                wire.extend([0xab; 32]);
                generic(&wire)
            }
            RecordType::DNSKEY | RecordType::CDNSKEY => key,
            RecordType::A => "192.0.2.1".into(),
            other => panic!("no test value for {other}"),
        };
        RecordValue::parse(rtype, &text, &zone()).unwrap_or_else(|e| panic!("{rtype}: {e}"))
    }

    fn change(op: ChangeOp, rtype: RecordType) -> Change {
        let set = Some(RecordSet::new(3600, vec![value(rtype)]));
        let name = zone().owner("shop").unwrap_or_else(|e| panic!("{e}"));
        Change {
            op,
            key: RrKey::new(name, rtype),
            before: (op != ChangeOp::Create).then(|| set.clone()).flatten(),
            after: (op != ChangeOp::Delete).then_some(set).flatten(),
        }
    }

    /// A policy that gates nothing at all.
    fn gates_nothing() -> GatePolicy {
        GatePolicy {
            record_types: BTreeSet::new(),
            deletions: false,
            bulk_change_threshold: None,
            rollbacks: false,
        }
    }

    fn reasons_of(c: Change, policy: &GatePolicy) -> Vec<GateReason> {
        let plan = Plan {
            zone: zone(),
            changes: vec![c],
        };
        let classified = classify("acme", plan, policy, PlanOrigin::Declared);
        classified.reasons.into_iter().next().unwrap_or_default()
    }

    #[test]
    fn dnssec_record_sets_always_need_approval_whatever_the_policy() {
        let listing_ds = GatePolicy {
            record_types: [u16::from(RecordType::DS)].into_iter().collect(),
            ..gates_nothing()
        };
        let policies = [
            ("recordTypes: []", gates_nothing(), false),
            ("default", GatePolicy::default(), true),
            ("recordTypes: [DS]", listing_ds, false),
        ];
        for rtype in [
            RecordType::DS,
            RecordType::DNSKEY,
            RecordType::CDS,
            RecordType::CDNSKEY,
        ] {
            for op in [ChangeOp::Create, ChangeOp::Update, ChangeOp::Delete] {
                for (name, policy, deletions) in &policies {
                    let dnssec = GateReason::Dnssec {
                        record_type: rtype.to_string(),
                    };
                    let mut expected = vec![dnssec];
                    if *deletions && op == ChangeOp::Delete {
                        expected.push(GateReason::Deletion);
                    }
                    assert_eq!(
                        reasons_of(change(op, rtype), policy),
                        expected,
                        "{op} {rtype} under {name}"
                    );
                }
            }
        }
    }

    #[test]
    fn other_types_follow_the_policy() {
        assert!(reasons_of(change(ChangeOp::Create, RecordType::A), &gates_nothing()).is_empty());
        let gating_a = GatePolicy {
            record_types: [u16::from(RecordType::A)].into_iter().collect(),
            ..gates_nothing()
        };
        assert_eq!(
            reasons_of(change(ChangeOp::Update, RecordType::A), &gating_a),
            vec![GateReason::RecordType {
                record_type: "A".into()
            }]
        );
    }

    #[test]
    fn the_dnssec_reason_says_why() {
        let reason = GateReason::Dnssec {
            record_type: "DS".into(),
        };
        assert_eq!(
            reason.to_string(),
            "DS records always need approval: they decide whether the zone validates"
        );
        assert_eq!(
            serde_json::to_value(&reason).unwrap_or_default(),
            serde_json::json!({"reason": "dnssec", "recordType": "DS"})
        );
    }
}
