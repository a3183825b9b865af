//! The plan engine: from desired and actual zone content to an ordered,
//! deterministic list of record-set operations. Pure.

use std::collections::BTreeSet;
use std::fmt;

use hickory_proto::rr::RData;
use hickory_proto::rr::RecordType;
use serde::{Deserialize, Serialize};

use crate::name::ZoneName;
use crate::record::{RecordSet, RecordValue, RrKey};
use crate::zone::ZoneContent;

/// What an operation does to one record set.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ChangeOp {
    Create,
    Update,
    Delete,
}

impl ChangeOp {
    pub fn as_str(self) -> &'static str {
        match self {
            ChangeOp::Create => "create",
            ChangeOp::Update => "update",
            ChangeOp::Delete => "delete",
        }
    }
}

impl fmt::Display for ChangeOp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One record-set operation with the state before and after it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    pub op: ChangeOp,
    pub key: RrKey,
    /// The set as the provider holds it now (`None` for a create).
    pub before: Option<RecordSet>,
    /// The set as it will be (`None` for a delete).
    pub after: Option<RecordSet>,
}

/// An ordered list of operations on one zone. Operations are in record-set
/// key order (DNS canonical name order, then type), so the same inputs always
/// give the same plan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    pub zone: ZoneName,
    pub changes: Vec<Change>,
}

impl Plan {
    pub fn is_empty(&self) -> bool {
        self.changes.is_empty()
    }

    pub fn count(&self, op: ChangeOp) -> usize {
        self.changes.iter().filter(|c| c.op == op).count()
    }
}

pub use crate::resources::Ownership;

/// What a plan may touch.
#[derive(Debug, Clone, Copy, Default)]
pub struct PlanScope<'a> {
    pub ownership: Ownership,
    /// Under `Owned`: record sets ZentraLink applied earlier and still owns; an
    /// undeclared one of these is deleted. Everything else undeclared is left alone.
    pub previously_owned: Option<&'a BTreeSet<RrKey>>,
}

/// Record sets a provider manages unless the zone declares them: the apex SOA
/// (its serial is the provider's) and the apex NS set.
fn provider_managed(key: &RrKey, zone: &ZoneName) -> bool {
    &key.name == zone.as_name() && matches!(key.rtype, RecordType::SOA | RecordType::NS)
}

/// Computes the plan that turns `actual` into `desired`.
///
/// An SOA set is compared without its serial, which the provider bumps on
/// every change; a planned SOA update keeps the provider's serial.
pub fn plan_zone(desired: &ZoneContent, actual: &ZoneContent, scope: &PlanScope<'_>) -> Plan {
    let zone = &desired.origin;
    let mut changes = Vec::new();
    let mut want = desired.sets.iter().peekable();
    let mut have = actual.sets.iter().peekable();
    loop {
        let order = match (want.peek(), have.peek()) {
            (None, None) => break,
            (Some(_), None) => std::cmp::Ordering::Less,
            (None, Some(_)) => std::cmp::Ordering::Greater,
            (Some((wk, _)), Some((hk, _))) => wk.cmp(hk),
        };
        match order {
            std::cmp::Ordering::Less => {
                if let Some((key, set)) = want.next() {
                    changes.push(Change {
                        op: ChangeOp::Create,
                        key: key.clone(),
                        before: None,
                        after: Some(set.clone()),
                    });
                }
            }
            std::cmp::Ordering::Greater => {
                if let Some((key, set)) = have.next() {
                    let delete = !provider_managed(key, zone)
                        && match scope.ownership {
                            Ownership::Full => true,
                            Ownership::Owned => scope
                                .previously_owned
                                .is_some_and(|owned| owned.contains(key)),
                        };
                    if delete {
                        changes.push(Change {
                            op: ChangeOp::Delete,
                            key: key.clone(),
                            before: Some(set.clone()),
                            after: None,
                        });
                    }
                }
            }
            std::cmp::Ordering::Equal => {
                if let (Some((key, want_set)), Some((_, have_set))) = (want.next(), have.next()) {
                    let after = if key.rtype == RecordType::SOA {
                        keep_serial(want_set, have_set)
                    } else {
                        want_set.clone()
                    };
                    if &after != have_set {
                        changes.push(Change {
                            op: ChangeOp::Update,
                            key: key.clone(),
                            before: Some(have_set.clone()),
                            after: Some(after),
                        });
                    }
                }
            }
        }
    }
    Plan {
        zone: zone.clone(),
        changes,
    }
}

/// The desired SOA with the serial the provider holds now.
fn keep_serial(want: &RecordSet, have: &RecordSet) -> RecordSet {
    let serial = have
        .values()
        .first()
        .and_then(|v| v.to_rdata(RecordType::SOA).ok())
        .and_then(|r| match r {
            RData::SOA(soa) => Some(soa.serial),
            _ => None,
        });
    let (Some(serial), Some(Ok(RData::SOA(w)))) = (
        serial,
        want.values().first().map(|v| v.to_rdata(RecordType::SOA)),
    ) else {
        return want.clone();
    };
    let mut soa = w;
    soa.serial = serial;
    match RecordValue::from_rdata(&RData::SOA(soa)) {
        Ok(v) => RecordSet::new(want.ttl, vec![v]),
        Err(_) => want.clone(),
    }
}

/// A plan that no longer matches the zone it is applied to.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ApplyError {
    #[error(
        "{key}: the zone no longer holds the state the plan was made from (expected {expected}, found {found})"
    )]
    Conflict {
        /// The record set, as `name TYPE`.
        key: String,
        expected: String,
        found: String,
    },
}

fn describe(set: Option<&RecordSet>) -> String {
    match set {
        None => "no record set".into(),
        Some(s) => format!("ttl {} [{}]", s.ttl, s.texts().join(", ")),
    }
}

/// Applies a plan to zone content, checking that every touched record set
/// still holds its before-value. All or nothing: on a conflict, nothing changes.
pub fn apply_plan(actual: &ZoneContent, plan: &Plan) -> Result<ZoneContent, ApplyError> {
    let mut next = actual.clone();
    for change in &plan.changes {
        let current = next.sets.get(&change.key);
        if current != change.before.as_ref() {
            return Err(ApplyError::Conflict {
                key: change.key.to_string(),
                expected: describe(change.before.as_ref()),
                found: describe(current),
            });
        }
        match &change.after {
            Some(set) => {
                next.sets.insert(change.key.clone(), set.clone());
            }
            None => {
                next.sets.remove(&change.key);
            }
        }
    }
    Ok(next)
}
