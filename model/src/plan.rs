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
    key.has_name(zone.as_name()) && matches!(key.rtype, RecordType::SOA | RecordType::NS)
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

/// A plan as stored with change requests and executions, and as tools read
/// it: record sets as TTL and canonical presentation values, operations in
/// plan order, each with the reasons it needs approval.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StoredPlan {
    pub zone: String,
    pub changes: Vec<StoredChange>,
}

/// One stored operation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StoredChange {
    pub op: ChangeOp,
    pub name: String,
    #[serde(rename = "type")]
    pub record_type: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub before: Option<crate::resources::RecordSetState>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub after: Option<crate::resources::RecordSetState>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub reasons: Vec<String>,
}

fn stored_set(set: Option<&RecordSet>) -> Option<crate::resources::RecordSetState> {
    set.map(|s| crate::resources::RecordSetState {
        ttl: s.ttl,
        values: s.texts(),
    })
}

impl Plan {
    /// The stored form; `reasons[i]` (when given) belongs to `changes[i]`.
    pub fn to_stored(&self, reasons: Option<&[Vec<crate::policy::GateReason>]>) -> StoredPlan {
        StoredPlan {
            zone: self.zone.to_string(),
            changes: self
                .changes
                .iter()
                .enumerate()
                .map(|(i, c)| StoredChange {
                    op: c.op,
                    name: c.key.name().to_ascii(),
                    record_type: crate::record::type_name(c.key.rtype),
                    before: stored_set(c.before.as_ref()),
                    after: stored_set(c.after.as_ref()),
                    reasons: reasons
                        .and_then(|r| r.get(i))
                        .map(|r| r.iter().map(ToString::to_string).collect())
                        .unwrap_or_default(),
                })
                .collect(),
        }
    }

    /// Rebuilds a plan from its stored form, parsing every value again.
    pub fn from_stored(stored: &StoredPlan) -> Result<Plan, String> {
        let zone = ZoneName::parse(&stored.zone)?;
        let set = |s: &Option<crate::resources::RecordSetState>,
                   rtype: RecordType|
         -> Result<Option<RecordSet>, String> {
            s.as_ref()
                .map(|s| {
                    let values = s
                        .values
                        .iter()
                        .map(|v| RecordValue::parse_existing(rtype, v, &zone))
                        .collect::<Result<Vec<_>, _>>()?;
                    Ok(RecordSet::new(s.ttl, values))
                })
                .transpose()
        };
        let mut changes = Vec::with_capacity(stored.changes.len());
        for (i, c) in stored.changes.iter().enumerate() {
            let at = |e: String| format!("operation {i} ({} {}): {e}", c.name, c.record_type);
            let rtype = crate::record::parse_record_type(&c.record_type).map_err(at)?;
            let name = zone.owner(&c.name).map_err(at)?;
            let before = set(&c.before, rtype).map_err(at)?;
            let after = set(&c.after, rtype).map_err(at)?;
            let expected = match (&before, &after) {
                (None, Some(_)) => ChangeOp::Create,
                (Some(_), Some(_)) => ChangeOp::Update,
                (Some(_), None) => ChangeOp::Delete,
                (None, None) => return Err(at("neither a before nor an after state".into())),
            };
            if expected != c.op {
                return Err(at(format!(
                    "a {} must have {}",
                    c.op,
                    match c.op {
                        ChangeOp::Create => "only an after state",
                        ChangeOp::Update => "a before and an after state",
                        ChangeOp::Delete => "only a before state",
                    }
                )));
            }
            changes.push(Change {
                op: c.op,
                key: RrKey::new(name, rtype),
                before,
                after,
            });
        }
        Ok(Plan { zone, changes })
    }
}

/// Whether two states of a record set are the same, an SOA's serial aside
/// (the provider bumps it on every change).
pub fn same_state(key: &RrKey, a: Option<&RecordSet>, b: Option<&RecordSet>) -> bool {
    match (a, b) {
        (Some(a), Some(b)) if key.rtype == RecordType::SOA => &keep_serial(a, b) == b,
        _ => a == b,
    }
}
