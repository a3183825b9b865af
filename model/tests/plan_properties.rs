//! Property tests of the plan engine, the plan digest and policy gating over
//! randomly generated zone contents.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::{BTreeMap, BTreeSet};

use hickory_proto::rr::RecordType;
use proptest::prelude::*;
use proptest::sample::Index;
use zentralink_model::plan::{ApplyError, Ownership};
use zentralink_model::policy::{GatePolicy, GateReason, PlanOrigin, classify};
use zentralink_model::{
    ChangeOp, Plan, PlanScope, RecordSet, RecordValue, RrKey, ZoneContent, ZoneName, apply_plan,
    plan_digest, plan_zone,
};

const ORIGIN: &str = "example.test.";
const TENANT: &str = "acme";

/// Owner names record sets are drawn from. Small, so that desired and actual
/// zones share keys often. The apex is included (only with the types below,
/// never SOA or NS, which the provider manages).
const OWNERS: [&str; 12] = [
    "@",
    "www",
    "mail",
    "api",
    "a",
    "b.c",
    "*.dev",
    "_dmarc",
    "_sip._tcp",
    "xn--bcher-kva",
    "deep.sub.zone",
    "z-9",
];

const TYPES: [RecordType; 7] = [
    RecordType::A,
    RecordType::AAAA,
    RecordType::TXT,
    RecordType::MX,
    RecordType::CNAME,
    RecordType::SRV,
    RecordType::CAA,
];

const TTLS: [u32; 5] = [60, 300, 3600, 86_400, 2_147_483_647];

/// A record set as plain data: TTL and value seeds. Value text is derived
/// from (type, seed), so the strategy needs no knowledge of each type.
#[derive(Debug, Clone, PartialEq, Eq)]
struct SetSpec {
    ttl: u32,
    seeds: Vec<u16>,
}

/// Zone content as plain data: (owner index, type index) -> set.
type ZoneSpec = BTreeMap<(usize, usize), SetSpec>;

fn zone_name() -> ZoneName {
    ZoneName::parse(ORIGIN).unwrap()
}

/// Presentation text of a value of `rtype`, derived from `seed`. Some seeds
/// give names relative to the zone, some absolute ones: both must plan the same.
fn value_text(rtype: RecordType, seed: u16) -> String {
    let n = u32::from(seed);
    match rtype {
        RecordType::A => format!("192.0.{}.{}", n / 256, n % 256),
        RecordType::AAAA => format!("2001:db8::{n:x}"),
        RecordType::TXT => match n % 3 {
            0 => format!("\"v=spf1 ip4:192.0.2.{} -all\"", n % 256),
            1 => format!("\"token-{n}\" \"second string {n}\""),
            _ => format!(
                "\"k={n}; \\\"quoted\\\" \\\\ {}\"",
                "x".repeat((n % 300) as usize)
            ),
        },
        RecordType::MX => {
            if n.is_multiple_of(2) {
                format!("{} mx{n}", n % 50)
            } else {
                format!("{} MX{n}.Example.Test.", n % 50)
            }
        }
        RecordType::CNAME => {
            if n.is_multiple_of(2) {
                format!("target{n}")
            } else {
                format!("host{n}.cdn.example.")
            }
        }
        RecordType::SRV => format!("{} {} {} sip{n}.example.test.", n % 10, n % 100, 5000 + n),
        RecordType::CAA => match n % 3 {
            0 => format!("0 issue \"ca{n}.example\""),
            1 => format!("0 issuewild \"ca{n}.example\""),
            _ => format!("128 iodef \"mailto:security{n}@example.test\""),
        },
        other => panic!("no value generator for {other}"),
    }
}

fn set_spec() -> impl Strategy<Value = SetSpec> {
    (
        prop::sample::select(TTLS.to_vec()),
        prop::collection::vec(0u16..48, 1..4),
    )
        .prop_map(|(ttl, seeds)| SetSpec { ttl, seeds })
}

fn zone_spec(max_sets: usize) -> impl Strategy<Value = ZoneSpec> {
    prop::collection::btree_map((0..OWNERS.len(), 0..TYPES.len()), set_spec(), 0..max_sets)
}

/// A desired and an actual zone that overlap: each actual set is kept as is,
/// dropped, or replaced by the other generated set of the same key; keys only
/// the other zone has are added.
fn zone_pair() -> impl Strategy<Value = (ZoneSpec, ZoneSpec)> {
    (
        zone_spec(48),
        zone_spec(48),
        prop::collection::vec(0u8..3, 1..16),
    )
        .prop_map(|(actual, other, choices)| {
            let mut desired = ZoneSpec::new();
            for (i, (key, set)) in actual.iter().enumerate() {
                match choices[i % choices.len()] {
                    0 => {
                        desired.insert(*key, set.clone());
                    }
                    1 => {}
                    _ => {
                        desired.insert(*key, other.get(key).unwrap_or(set).clone());
                    }
                }
            }
            for (key, set) in &other {
                if !actual.contains_key(key) {
                    desired.insert(*key, set.clone());
                }
            }
            (desired, actual)
        })
}

/// xorshift64*: a tiny deterministic generator for shuffling from a seed.
struct Shuffler(u64);

impl Shuffler {
    fn new(seed: u64) -> Self {
        Self(seed | 1)
    }
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn shuffle<T>(&mut self, items: &mut [T]) {
        for i in (1..items.len()).rev() {
            let j = (self.next() % (i as u64 + 1)) as usize;
            items.swap(i, j);
        }
    }
}

fn key_of(zone: &ZoneName, (owner, rtype): (usize, usize)) -> RrKey {
    RrKey::new(zone.owner(OWNERS[owner]).unwrap(), TYPES[rtype])
}

fn set_of(zone: &ZoneName, rtype: RecordType, spec: &SetSpec, values: &[u16]) -> RecordSet {
    let parsed = values
        .iter()
        .map(|seed| {
            let text = value_text(rtype, *seed);
            RecordValue::parse(rtype, &text, zone)
                .unwrap_or_else(|e| panic!("{rtype} {text:?}: {e}"))
        })
        .collect();
    RecordSet::new(spec.ttl, parsed)
}

/// Builds the zone, inserting sets in canonical key order with values in the
/// generated order.
fn build(spec: &ZoneSpec) -> ZoneContent {
    let zone = zone_name();
    let mut content = ZoneContent::new(zone.clone());
    for (key, set) in spec {
        let rtype = TYPES[key.1];
        content
            .sets
            .insert(key_of(&zone, *key), set_of(&zone, rtype, set, &set.seeds));
    }
    content
}

/// Builds the same zone, inserting sets in an order shuffled by `seed` and
/// with the values of each set shuffled too.
fn build_shuffled(spec: &ZoneSpec, seed: u64) -> ZoneContent {
    let zone = zone_name();
    let mut rng = Shuffler::new(seed);
    let mut entries: Vec<(&(usize, usize), &SetSpec)> = spec.iter().collect();
    rng.shuffle(&mut entries);
    let mut content = ZoneContent::new(zone.clone());
    for (key, set) in entries {
        let mut values = set.seeds.clone();
        rng.shuffle(&mut values);
        let rtype = TYPES[key.1];
        content
            .sets
            .insert(key_of(&zone, *key), set_of(&zone, rtype, set, &values));
    }
    content
}

fn full() -> PlanScope<'static> {
    PlanScope::default()
}

fn owned(previously: Option<&BTreeSet<RrKey>>) -> PlanScope<'_> {
    PlanScope {
        ownership: Ownership::Owned,
        previously_owned: previously,
    }
}

/// Every change is consistent with its op and the plan is in strict key order.
fn check_well_formed(plan: &Plan) -> Result<(), TestCaseError> {
    for pair in plan.changes.windows(2) {
        prop_assert!(
            pair[0].key < pair[1].key,
            "plan not in key order: {} then {}",
            pair[0].key,
            pair[1].key
        );
    }
    for c in &plan.changes {
        match c.op {
            ChangeOp::Create => prop_assert!(c.before.is_none() && c.after.is_some()),
            ChangeOp::Update => {
                prop_assert!(c.before.is_some() && c.after.is_some());
                prop_assert_ne!(&c.before, &c.after);
            }
            ChangeOp::Delete => prop_assert!(c.before.is_some() && c.after.is_none()),
        }
    }
    Ok(())
}

fn config() -> ProptestConfig {
    ProptestConfig::with_cases(64)
}

proptest! {
    #![proptest_config(config())]

    /// Full ownership: applying the plan to the actual zone gives the desired zone.
    #[test]
    fn applying_a_full_plan_yields_desired((desired, actual) in zone_pair()) {
        let desired = build(&desired);
        let actual = build(&actual);
        let plan = plan_zone(&desired, &actual, &full());
        check_well_formed(&plan)?;
        prop_assert_eq!(&plan.zone, &desired.origin);
        let applied = apply_plan(&actual, &plan).map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(&applied, &desired);
        // Counts add up: every key of either zone is created, updated, deleted or unchanged.
        let shared = desired.sets.keys().filter(|k| actual.sets.contains_key(*k)).count();
        prop_assert_eq!(plan.count(ChangeOp::Create), desired.len() - shared);
        prop_assert_eq!(plan.count(ChangeOp::Delete), actual.len() - shared);
        // And once applied, there is nothing left to do.
        prop_assert!(plan_zone(&desired, &applied, &full()).is_empty());
    }

    /// A plan stored (as change requests and executions keep it) reads back
    /// as the same plan with the same digest.
    #[test]
    fn a_stored_plan_reads_back_with_its_digest((desired, actual) in zone_pair()) {
        let desired = build(&desired);
        let actual = build(&actual);
        let plan = plan_zone(&desired, &actual, &full());
        let stored = plan.to_stored(None);
        let json = serde_json::to_value(&stored).map_err(|e| TestCaseError::fail(e.to_string()))?;
        let back: zentralink_model::plan::StoredPlan =
            serde_json::from_value(json).map_err(|e| TestCaseError::fail(e.to_string()))?;
        let read = Plan::from_stored(&back).map_err(TestCaseError::fail)?;
        prop_assert_eq!(&read, &plan);
        prop_assert_eq!(plan_digest(TENANT, &read), plan_digest(TENANT, &plan));
    }

    /// A plan checks its before-values: applied a second time, it conflicts
    /// and changes nothing.
    #[test]
    fn a_plan_does_not_apply_twice((desired, actual) in zone_pair()) {
        let desired = build(&desired);
        let actual = build(&actual);
        let plan = plan_zone(&desired, &actual, &full());
        let applied = apply_plan(&actual, &plan).map_err(|e| TestCaseError::fail(e.to_string()))?;
        let again = apply_plan(&applied, &plan);
        if plan.is_empty() {
            prop_assert_eq!(again, Ok(applied));
        } else {
            let is_conflict = matches!(again, Err(ApplyError::Conflict { .. }));
            prop_assert!(is_conflict, "{:?}", again);
        }
    }

    /// The plan of a zone against itself is empty, whatever the ownership.
    #[test]
    fn a_zone_planned_against_itself_is_empty(spec in zone_spec(64)) {
        let zone = build(&spec);
        prop_assert!(plan_zone(&zone, &zone, &full()).is_empty());
        prop_assert!(plan_zone(&zone, &zone, &owned(None)).is_empty());
        let all: BTreeSet<RrKey> = zone.sets.keys().cloned().collect();
        prop_assert!(plan_zone(&zone, &zone, &owned(Some(&all))).is_empty());
    }

    /// The digest is stable, and neither the order sets are inserted in nor
    /// the order values are written in changes the plan or its digest.
    #[test]
    fn plan_and_digest_do_not_depend_on_input_order(
        (desired, actual) in zone_pair(),
        seed_desired in any::<u64>(),
        seed_actual in any::<u64>(),
    ) {
        let plan = plan_zone(&build(&desired), &build(&actual), &full());
        let shuffled_desired = build_shuffled(&desired, seed_desired);
        let shuffled_actual = build_shuffled(&actual, seed_actual);
        prop_assert_eq!(&shuffled_desired, &build(&desired));
        let shuffled = plan_zone(&shuffled_desired, &shuffled_actual, &full());
        prop_assert_eq!(&plan, &shuffled);
        let digest = plan_digest(TENANT, &plan);
        prop_assert_eq!(digest, plan_digest(TENANT, &plan));
        prop_assert_eq!(digest, plan_digest(TENANT, &shuffled));
        prop_assert_eq!(digest, plan_digest(TENANT, &plan.clone()));
        // The digest binds the tenant.
        prop_assert_ne!(digest, plan_digest("globex", &plan));
    }

    /// Changing one desired set's TTL changes the plan, and so its digest.
    #[test]
    fn different_plans_have_different_digests(
        (desired, actual) in zone_pair(),
        pick in any::<Index>(),
    ) {
        prop_assume!(!desired.is_empty());
        let key = *pick.get(&desired.keys().copied().collect::<Vec<_>>());
        let mut changed = desired.clone();
        if let Some(set) = changed.get_mut(&key) {
            set.ttl = if set.ttl == 60 { 61 } else { set.ttl - 1 };
        }
        let actual = build(&actual);
        let plan = plan_zone(&build(&desired), &actual, &full());
        let other = plan_zone(&build(&changed), &actual, &full());
        prop_assert_ne!(&plan, &other);
        prop_assert_ne!(plan_digest(TENANT, &plan), plan_digest(TENANT, &other));
    }

    /// Owned, with nothing owned before: nothing is deleted, and the result is
    /// actual and desired together, desired winning on shared keys.
    #[test]
    fn owned_without_history_never_deletes((desired, actual) in zone_pair()) {
        let desired = build(&desired);
        let actual = build(&actual);
        let plan = plan_zone(&desired, &actual, &owned(None));
        check_well_formed(&plan)?;
        prop_assert_eq!(plan.count(ChangeOp::Delete), 0);
        let applied = apply_plan(&actual, &plan).map_err(|e| TestCaseError::fail(e.to_string()))?;
        let mut expected = actual.clone();
        for (key, set) in &desired.sets {
            expected.sets.insert(key.clone(), set.clone());
        }
        prop_assert_eq!(applied, expected);
    }

    /// Owned, with a history: undeclared sets ZentraLink owned are deleted,
    /// other undeclared sets are left alone.
    #[test]
    fn owned_with_history_deletes_only_what_it_owned(
        (desired, actual) in zone_pair(),
        owned_mask in prop::collection::vec(any::<bool>(), 1..16),
    ) {
        let desired = build(&desired);
        let actual = build(&actual);
        let previously: BTreeSet<RrKey> = actual
            .sets
            .keys()
            .enumerate()
            .filter(|(i, _)| owned_mask[i % owned_mask.len()])
            .map(|(_, k)| k.clone())
            .collect();
        let plan = plan_zone(&desired, &actual, &owned(Some(&previously)));
        check_well_formed(&plan)?;
        for c in plan.changes.iter().filter(|c| c.op == ChangeOp::Delete) {
            prop_assert!(previously.contains(&c.key));
            prop_assert!(!desired.sets.contains_key(&c.key));
        }
        let applied = apply_plan(&actual, &plan).map_err(|e| TestCaseError::fail(e.to_string()))?;
        let mut expected = desired.clone();
        for (key, set) in &actual.sets {
            if !desired.sets.contains_key(key) && !previously.contains(key) {
                expected.sets.insert(key.clone(), set.clone());
            }
        }
        prop_assert_eq!(applied, expected);
    }

    /// Default gating: deletions and MX/TXT/CAA changes are gated; A changes
    /// alone are not in plans of up to 20 changes; larger plans gate every op.
    #[test]
    fn default_policy_gates_as_documented((desired, actual) in zone_pair()) {
        let plan = plan_zone(&build(&desired), &build(&actual), &full());
        let total = plan.changes.len();
        let classified = classify(TENANT, plan.clone(), &GatePolicy::default(), PlanOrigin::Declared);
        prop_assert_eq!(&classified.plan, &plan);
        prop_assert_eq!(classified.digest, plan_digest(TENANT, &plan));
        prop_assert_eq!(classified.reasons.len(), total);
        let bulk = GateReason::BulkChange { changes: total, threshold: 20 };
        for (change, reasons) in plan.changes.iter().zip(&classified.reasons) {
            prop_assert_eq!(
                change.op == ChangeOp::Delete,
                reasons.contains(&GateReason::Deletion),
                "{} {}: {:?}", change.op, change.key, reasons
            );
            let gated_type = matches!(change.key.rtype, RecordType::MX | RecordType::TXT | RecordType::CAA);
            let type_reason = GateReason::RecordType { record_type: change.key.rtype.to_string() };
            prop_assert_eq!(gated_type, reasons.contains(&type_reason), "{}: {:?}", change.key, reasons);
            prop_assert!(!reasons.contains(&GateReason::Rollback));
            if total > 20 {
                prop_assert!(reasons.contains(&bulk), "{}: {:?}", change.key, reasons);
            } else {
                let has_bulk = reasons.iter().any(|r| matches!(r, GateReason::BulkChange { .. }));
                prop_assert!(!has_bulk, "{}: {:?}", change.key, reasons);
                if change.key.rtype == RecordType::A && change.op != ChangeOp::Delete {
                    prop_assert!(reasons.is_empty(), "{}: {:?}", change.key, reasons);
                }
            }
        }
        prop_assert_eq!(classified.requires_approval(), classified.gated_count() > 0);
        // A rollback of the same plan gates every op.
        let rollback = classify(TENANT, plan, &GatePolicy::default(), PlanOrigin::Rollback);
        prop_assert!(rollback.reasons.iter().all(|r| r.contains(&GateReason::Rollback)));
    }
}

/// The generator reaches both sides of the bulk threshold and every kind of op
/// (guards against a strategy that silently stops exercising the properties).
#[test]
fn generator_covers_small_and_bulk_plans() {
    use proptest::strategy::ValueTree;
    use proptest::test_runner::TestRunner;

    let mut runner = TestRunner::deterministic();
    let strategy = zone_pair();
    let (mut small, mut bulk) = (0, 0);
    let mut ops = BTreeSet::new();
    for _ in 0..64 {
        let (desired, actual) = strategy.new_tree(&mut runner).unwrap().current();
        let plan = plan_zone(&build(&desired), &build(&actual), &full());
        if plan.changes.len() > 20 {
            bulk += 1;
        } else {
            small += 1;
        }
        ops.extend(plan.changes.iter().map(|c| c.op));
    }
    assert!(small > 0 && bulk > 0, "small {small}, bulk {bulk}");
    assert_eq!(ops.len(), 3, "{ops:?}");
}
