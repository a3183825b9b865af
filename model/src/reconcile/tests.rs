//! Table tests of `decide`, with builders: no server, no store.

use std::collections::BTreeSet;

use k8s_openapi::jiff::{SignedDuration, Timestamp};

use super::*;
use crate::catalog::Policy;
use crate::liveness::LiveDecision;
use crate::name::ZoneName;
use crate::plan::ChangeOp;
use crate::record::{RecordSet, RecordValue, parse_record_type};

const NOW: i64 = 1_800_000_000;

fn now() -> Timestamp {
    Timestamp::from_second(NOW).unwrap_or(Timestamp::UNIX_EPOCH)
}

fn zone_name() -> ZoneName {
    ZoneName::parse("acme.example.").unwrap_or_else(|e| panic!("{e}"))
}

fn key(name: &str, t: &str) -> RrKey {
    let z = zone_name();
    RrKey::new(
        z.owner(name).unwrap_or_else(|e| panic!("{e}")),
        parse_record_type(t).unwrap_or_else(|e| panic!("{e}")),
    )
}

fn set(t: &str, values: &[&str]) -> RecordSet {
    let rtype = parse_record_type(t).unwrap_or_else(|e| panic!("{e}"));
    RecordSet::new(
        300,
        values
            .iter()
            .map(|v| RecordValue::parse(rtype, v, &zone_name()).unwrap_or_else(|e| panic!("{e}")))
            .collect(),
    )
}

/// One zone's inputs, built up by the test.
#[derive(Clone)]
struct Z {
    desired: ZoneContent,
    actual: ZoneContent,
    last: Option<LastApplied>,
    policy: Policy,
    requests: Vec<RequestView>,
    live: LiveDecision,
    drift: DriftMode,
    ownership: Ownership,
    children: Vec<ChildZone>,
}

fn live() -> LiveDecision {
    LiveDecision {
        live: true,
        reason: "Enabled",
        message: "enabled".into(),
    }
}

impl Z {
    fn new() -> Self {
        Self {
            desired: ZoneContent::new(zone_name()),
            actual: ZoneContent::new(zone_name()),
            last: None,
            policy: Policy::default(),
            requests: Vec::new(),
            live: live(),
            drift: DriftMode::Report,
            ownership: Ownership::Full,
            children: Vec::new(),
        }
    }

    /// A managed zone delegated below this one, `label` under it, with these DNSKEYs.
    fn child(mut self, label: &str, dnskeys: Option<RecordSet>) -> Self {
        let name = zone_name().owner(label).unwrap_or_else(|e| panic!("{e}"));
        self.children.push(ChildZone {
            zone: ZoneName::parse(&name.to_ascii()).unwrap_or_else(|e| panic!("{e}")),
            dnskeys,
        });
        self
    }

    /// Declared and on the provider alike.
    fn both(self, name: &str, t: &str, values: &[&str]) -> Self {
        self.want(name, t, values).have(name, t, values)
    }

    fn want(mut self, name: &str, t: &str, values: &[&str]) -> Self {
        self.desired.sets.insert(key(name, t), set(t, values));
        self
    }

    fn have(mut self, name: &str, t: &str, values: &[&str]) -> Self {
        self.actual.sets.insert(key(name, t), set(t, values));
        self
    }

    /// What was last applied: the provider's content as it is now.
    fn applied_now(mut self) -> Self {
        let owned = self.actual.sets.keys().cloned().collect();
        self.last = Some(LastApplied {
            content: self.actual.clone(),
            owned,
            held_for: None,
        });
        self
    }

    fn revert_drift(mut self) -> Self {
        self.drift = DriftMode::Revert;
        self
    }

    fn read_only(mut self) -> Self {
        self.live = LiveDecision {
            live: false,
            reason: "ReadOnlyMode",
            message: "spec.mode is ReadOnly".into(),
        };
        self
    }

    fn request(mut self, name: &str, digest: PlanDigest, state: RequestState) -> Self {
        self.requests.push(RequestView {
            name: name.into(),
            digest,
            state,
            kind: RequestKind::Declared,
            expires_at: now()
                .checked_add(SignedDuration::from_hours(1))
                .unwrap_or(Timestamp::MAX),
        });
        self
    }

    fn decide(&self) -> Decision {
        decide(&ZoneInputs {
            tenant: "acme",
            object: "acme-example",
            desired: &self.desired,
            ownership: self.ownership,
            drift: self.drift,
            actual: &self.actual,
            last_applied: self.last.as_ref(),
            policy: &self.policy,
            requests: &self.requests,
            live: &self.live,
            now: now(),
            children: &self.children,
        })
    }
}

fn executed(d: &Decision) -> Vec<(ChangeOp, String)> {
    d.execute
        .as_ref()
        .map(|e| {
            e.plan
                .changes
                .iter()
                .map(|c| (c.op, c.key.to_string()))
                .collect()
        })
        .unwrap_or_default()
}

fn opened(d: &Decision) -> &NewRequest {
    d.requests
        .open
        .as_ref()
        .unwrap_or_else(|| panic!("no request opened: {d:?}"))
}

// ------------------------------------------------------------ the declared plan

#[test]
fn a_zone_as_declared_is_converged_and_quiet() {
    let d = Z::new()
        .both("www", "A", &["192.0.2.1"])
        .both("@", "MX", &["10 mx1"])
        .decide();
    assert_eq!(d.outcome, Outcome::Converged);
    assert!(d.is_quiet());
    assert!(d.plan.plan.is_empty());
}

#[test]
fn ungated_changes_execute_at_once() {
    let d = Z::new()
        .want("www", "A", &["192.0.2.1"])
        .both("api", "A", &["192.0.2.2"])
        .decide();
    assert_eq!(d.outcome, Outcome::Execute);
    assert_eq!(
        executed(&d),
        vec![(ChangeOp::Create, "www.acme.example. A".into())]
    );
    assert!(d.requests.open.is_none());
}

#[test]
fn gated_changes_wait_in_a_named_request_and_nothing_of_them_executes() {
    let d = Z::new()
        .want("@", "MX", &["10 mx2"])
        .have("@", "MX", &["10 mx1"])
        .decide();
    assert_eq!(d.outcome, Outcome::AwaitingApproval);
    assert!(d.execute.is_none());
    let r = opened(&d);
    assert_eq!(r.name, format!("acme-example-{}", r.plan.digest.short(12)));
    assert_eq!(r.plan.plan.changes.len(), 1);
    assert_eq!(
        r.expires_at,
        now()
            .checked_add(SignedDuration::from_hours(72))
            .unwrap_or(Timestamp::MAX)
    );
}

#[test]
fn ungated_operations_execute_while_gated_ones_wait() {
    let d = Z::new()
        .want("@", "MX", &["10 mx2"])
        .have("@", "MX", &["10 mx1"])
        .want("www", "A", &["192.0.2.9"])
        .have("www", "A", &["192.0.2.1"])
        .decide();
    assert_eq!(d.outcome, Outcome::AwaitingApproval);
    assert_eq!(
        executed(&d),
        vec![(ChangeOp::Update, "www.acme.example. A".into())]
    );
    let r = opened(&d);
    let keys: Vec<String> = r
        .plan
        .plan
        .changes
        .iter()
        .map(|c| c.key.to_string())
        .collect();
    assert_eq!(keys, vec!["acme.example. MX"]);
    // the request's digest covers only its own operations
    let only_mx = Z::new()
        .want("@", "MX", &["10 mx2"])
        .have("@", "MX", &["10 mx1"])
        .decide();
    assert_eq!(opened(&only_mx).plan.digest, r.plan.digest);
}

fn pending_mx() -> (Z, String, PlanDigest) {
    let base = Z::new()
        .want("@", "MX", &["10 mx2"])
        .have("@", "MX", &["10 mx1"]);
    let first = base.decide();
    let r = opened(&first).clone();
    (
        base.request(&r.name, r.plan.digest, RequestState::Pending),
        r.name,
        r.plan.digest,
    )
}

#[test]
fn a_waiting_request_is_kept_and_an_unrelated_change_neither_waits_nor_supersedes_it() {
    let (z, name, _) = pending_mx();
    let d = z.clone().decide();
    assert_eq!(d.outcome, Outcome::AwaitingApproval);
    assert_eq!(d.requests.keep.as_deref(), Some(name.as_str()));
    assert!(d.is_quiet(), "{d:?}");
    let d = z.want("www", "A", &["192.0.2.1"]).decide();
    assert_eq!(d.requests.keep.as_deref(), Some(name.as_str()));
    assert!(d.requests.supersede.is_empty());
    assert_eq!(executed(&d).len(), 1);
}

#[test]
fn a_changed_declared_value_supersedes_the_request_and_opens_another() {
    let (z, name, digest) = pending_mx();
    let d = z.want("@", "MX", &["10 mx3"]).decide();
    assert_eq!(d.requests.supersede, vec![name.clone()]);
    let r = opened(&d);
    assert_ne!(r.plan.digest, digest);
    assert_ne!(r.name, name);
}

#[test]
fn a_changed_provider_value_of_a_touched_set_supersedes_the_request() {
    let (z, name, _) = pending_mx();
    let d = z.have("@", "MX", &["10 mx9"]).decide();
    assert_eq!(d.requests.supersede, vec![name]);
    assert!(d.requests.open.is_some());
}

#[test]
fn an_approved_current_request_executes_with_the_ungated_operations() {
    let (mut z, name, _) = pending_mx();
    z.requests[0].state = RequestState::Approved;
    let d = z.want("www", "A", &["192.0.2.1"]).decide();
    assert_eq!(d.outcome, Outcome::ExecuteApproved);
    let e = d.execute.as_ref().unwrap_or_else(|| panic!("{d:?}"));
    assert_eq!(e.request.as_deref(), Some(name.as_str()));
    assert_eq!(
        executed(&d),
        vec![
            (ChangeOp::Update, "acme.example. MX".into()),
            (ChangeOp::Create, "www.acme.example. A".into())
        ]
    );
}

#[test]
fn an_approved_but_stale_request_is_superseded_not_executed() {
    let (mut z, name, _) = pending_mx();
    z.requests[0].state = RequestState::Approved;
    let d = z.want("@", "MX", &["10 mx3"]).decide();
    assert!(d.execute.is_none(), "{d:?}");
    assert_eq!(d.requests.supersede, vec![name]);
    assert!(d.requests.open.is_some());
}

#[test]
fn a_request_no_longer_wanted_is_superseded() {
    let (z, name, _) = pending_mx();
    // the declared MX goes back to what the provider holds
    let d = z.want("@", "MX", &["10 mx1"]).decide();
    assert_eq!(d.outcome, Outcome::Converged);
    assert_eq!(d.requests.supersede, vec![name]);
}

#[test]
fn over_the_bulk_threshold_the_whole_plan_waits() {
    let mut z = Z::new();
    for i in 0..21 {
        z = z.want(&format!("h{i}"), "A", &["192.0.2.1"]);
    }
    let d = z.decide();
    assert_eq!(d.outcome, Outcome::AwaitingApproval);
    assert!(d.execute.is_none());
    assert_eq!(opened(&d).plan.plan.changes.len(), 21);
    assert_eq!(
        opened(&d).plan.digest,
        d.plan.digest,
        "the request is the whole plan"
    );
}

#[test]
fn a_read_only_connection_shows_the_plan_and_does_nothing() {
    let d = Z::new()
        .want("www", "A", &["192.0.2.1"])
        .want("@", "MX", &["10 mx1"])
        .read_only()
        .decide();
    assert_eq!(d.outcome, Outcome::ReadOnly);
    assert!(d.is_quiet());
    assert!(d.requests.keep.is_none());
    assert_eq!(d.plan.plan.changes.len(), 2);
    assert_eq!(d.reason.as_deref(), Some("spec.mode is ReadOnly"));
}

#[test]
fn an_expired_request_is_expired_and_not_asked_again_under_its_name() {
    let (mut z, name, _) = pending_mx();
    z.requests[0].expires_at = now();
    let d = z.want("www", "A", &["192.0.2.1"]).decide();
    assert_eq!(d.requests.expire, vec![name.clone()]);
    assert!(d.requests.open.is_none());
    assert_eq!(d.outcome, Outcome::Refused);
    assert!(
        d.reason.as_deref().is_some_and(|r| r.contains("expired")),
        "{d:?}"
    );
    assert_eq!(executed(&d).len(), 1, "the ungated change still executes");
}

#[test]
fn a_rejected_plan_is_not_asked_again() {
    let (mut z, name, _) = pending_mx();
    z.requests[0].state = RequestState::Rejected;
    let d = z.decide();
    assert_eq!(d.outcome, Outcome::Refused);
    assert!(d.requests.open.is_none());
    assert!(
        d.reason
            .as_deref()
            .is_some_and(|r| r.contains(&name) && r.contains("rejected"))
    );
}

#[test]
fn a_superseded_plan_asked_again_gets_the_next_name() {
    let (mut z, name, digest) = pending_mx();
    z.requests[0].state = RequestState::Superseded;
    let d = z.clone().decide();
    let r = opened(&d);
    assert_eq!(r.plan.digest, digest);
    assert_eq!(r.name, format!("{name}-2"));
    // and again
    z = z.request(&format!("{name}-2"), digest, RequestState::Applied);
    assert_eq!(opened(&z.decide()).name, format!("{name}-3"));
}

// ------------------------------------------------------------ drift

#[test]
fn drift_is_reported_and_left_alone_under_report() {
    let d = Z::new()
        .both("www", "A", &["192.0.2.1"])
        .applied_now()
        .have("www", "A", &["198.51.100.1"])
        .decide();
    assert_eq!(d.outcome, Outcome::DriftReported);
    assert!(d.execute.is_none());
    assert!(d.plan.plan.is_empty());
    assert_eq!(d.drift.len(), 1);
    assert_eq!(d.drift[0].key.to_string(), "www.acme.example. A");
}

#[test]
fn drift_is_planned_back_under_revert_through_the_same_gating() {
    let d = Z::new()
        .both("www", "A", &["192.0.2.1"])
        .both("@", "MX", &["10 mx1"])
        .applied_now()
        .have("www", "A", &["198.51.100.1"])
        .have("@", "MX", &["10 evil"])
        .revert_drift()
        .decide();
    assert_eq!(
        executed(&d),
        vec![(ChangeOp::Update, "www.acme.example. A".into())]
    );
    assert_eq!(
        opened(&d).plan.plan.changes[0].key.to_string(),
        "acme.example. MX"
    );
    assert_eq!(d.drift.len(), 2);
}

#[test]
fn a_declared_change_to_a_drifted_set_is_planned_under_report() {
    let d = Z::new()
        .both("www", "A", &["192.0.2.1"])
        .applied_now()
        .have("www", "A", &["198.51.100.1"])
        .want("www", "A", &["192.0.2.2"])
        .decide();
    assert_eq!(executed(&d).len(), 1);
}

#[test]
fn drift_in_an_owned_zone_concerns_only_owned_record_sets() {
    let mut z = Z::new().both("www", "A", &["192.0.2.1"]).applied_now();
    z.ownership = Ownership::Owned;
    // a foreign record set appears and another changes
    let d = z
        .have("foreign", "A", &["203.0.113.1"])
        .have("www", "A", &["198.51.100.1"])
        .decide();
    let keys: Vec<String> = d.drift.iter().map(|c| c.key.to_string()).collect();
    assert_eq!(keys, vec!["www.acme.example. A"]);
}

#[test]
fn owned_zones_delete_only_what_they_owned() {
    let mut z = Z::new()
        .both("www", "A", &["192.0.2.1"])
        .have("foreign", "A", &["203.0.113.1"]);
    z.ownership = Ownership::Owned;
    z.last = Some(LastApplied {
        content: z.actual.clone(),
        owned: BTreeSet::from([key("www", "A")]),
        held_for: None,
    });
    let d = z.clone().decide();
    assert_eq!(d.outcome, Outcome::Converged);
    // undeclaring an owned set deletes it (a gated deletion)
    z.desired.sets.remove(&key("www", "A"));
    let d = z.decide();
    let r = opened(&d);
    assert_eq!(r.plan.plan.changes[0].op, ChangeOp::Delete);
    assert_eq!(r.plan.plan.changes.len(), 1);
}

// ------------------------------------------------------------ rollback

fn rollback(z: Z, state: RequestState) -> (Z, String) {
    // the snapshot held mx1; the provider now holds mx2
    let target = {
        let mut t = ZoneContent::new(zone_name());
        t.sets.insert(key("@", "MX"), set("MX", &["10 mx1"]));
        t.sets.insert(key("www", "A"), set("A", &["192.0.2.1"]));
        t
    };
    let plan = rollback_plan("acme", &target, &z.actual, &z.policy);
    let name = format!("acme-example-rollback-{}", plan.digest.short(12));
    let mut z = z;
    z.requests.push(RequestView {
        name: name.clone(),
        digest: plan.digest,
        state,
        kind: RequestKind::Rollback {
            snapshot: "snap-1".into(),
            target,
        },
        expires_at: now()
            .checked_add(SignedDuration::from_hours(1))
            .unwrap_or(Timestamp::MAX),
    });
    (z, name)
}

fn after_a_change() -> Z {
    Z::new()
        .both("@", "MX", &["10 mx2"])
        .both("www", "A", &["192.0.2.1"])
}

#[test]
fn a_waiting_rollback_holds_the_zone() {
    let (z, name) = rollback(after_a_change(), RequestState::Pending);
    let d = z.want("api", "A", &["192.0.2.5"]).decide();
    assert_eq!(d.outcome, Outcome::AwaitingApproval);
    assert_eq!(d.requests.keep.as_deref(), Some(name.as_str()));
    assert!(
        d.execute.is_none(),
        "nothing else executes while a rollback waits"
    );
}

#[test]
fn an_approved_rollback_executes_the_diff_to_the_snapshot() {
    let (z, name) = rollback(after_a_change(), RequestState::Approved);
    let d = z.decide();
    assert_eq!(d.outcome, Outcome::ExecuteApproved);
    let e = d.execute.as_ref().unwrap_or_else(|| panic!("{d:?}"));
    assert!(e.rollback);
    assert_eq!(e.request.as_deref(), Some(name.as_str()));
    assert_eq!(
        executed(&d),
        vec![(ChangeOp::Update, "acme.example. MX".into())]
    );
}

#[test]
fn a_rollback_over_records_changed_since_is_superseded() {
    let (z, name) = rollback(after_a_change(), RequestState::Approved);
    let d = z.have("@", "MX", &["10 mx3"]).decide();
    assert_eq!(d.outcome, Outcome::Refused);
    assert!(d.execute.is_none());
    assert_eq!(d.requests.supersede, vec![name]);
}

#[test]
fn after_a_rollback_the_zone_stays_until_its_declared_content_changes() {
    let mut z = Z::new()
        .want("@", "MX", &["10 mx2"])
        .have("@", "MX", &["10 mx1"])
        .applied_now();
    if let Some(last) = z.last.as_mut() {
        last.held_for = Some(zone_digest(&z.desired));
    }
    let d = z.clone().decide();
    assert_eq!(d.outcome, Outcome::RolledBack);
    assert!(d.is_quiet());
    // a new declared content resumes reconciling
    let d = z.want("@", "MX", &["10 mx3"]).decide();
    assert_eq!(d.outcome, Outcome::AwaitingApproval);
}

// ------------------------------------------------------------ DS of delegated children

mod delegation {
    use hickory_proto::dnssec::rdata::{DNSKEY, DS};
    use hickory_proto::dnssec::{Algorithm, DigestType, PublicKey, PublicKeyBuf};
    use hickory_proto::serialize::binary::BinEncodable;

    use super::*;
    use crate::record::generic;

    /// The child `shop.acme.example.`'s key-signing key (algorithm 13; the
    /// key bytes are made up: only digests and key tags are computed).
    pub(super) fn ksk(seed: u8) -> DNSKEY {
        let bytes = (0u8..64).map(|b| b.wrapping_mul(seed) ^ 0x5a).collect();
        DNSKEY::with_flags(257, PublicKeyBuf::new(bytes, Algorithm::ECDSAP256SHA256))
    }

    pub(super) fn keys(of: &[&DNSKEY]) -> RecordSet {
        let values = of
            .iter()
            .map(|k| {
                let wire = k.to_bytes().unwrap_or_else(|e| panic!("{e}"));
                RecordValue::parse_existing(RecordType::DNSKEY, &generic(&wire), &zone_name())
                    .unwrap_or_else(|e| panic!("{e}"))
            })
            .collect();
        RecordSet::new(3600, values)
    }

    /// The DS of `key` at `shop.acme.example.`, as its signer prints it.
    pub(super) fn ds_of(key: &DNSKEY) -> String {
        let owner = zone_name().owner("shop").unwrap_or_else(|e| panic!("{e}"));
        let digest = key
            .to_digest(&owner, DigestType::SHA256)
            .unwrap_or_else(|e| panic!("{e}"));
        DS::new(
            key.calculate_key_tag().unwrap_or_else(|e| panic!("{e}")),
            key.public_key().algorithm(),
            DigestType::SHA256,
            digest.as_ref().to_vec(),
        )
        .to_string()
    }
}

use delegation::{ds_of, keys, ksk};

/// A parent zone delegating `shop` (managed, signed with `ksk(7)`), whose DS is `ds`.
fn delegating(ds: &str) -> Z {
    Z::new()
        .both("shop", "NS", &["ns1.example.net."])
        .want("shop", "DS", &[ds])
        .child("shop", Some(keys(&[&ksk(7)])))
}

fn refused_for_dnssec(d: &Decision) -> String {
    assert_eq!(d.outcome, Outcome::Refused, "{d:?}");
    assert!(d.execute.is_none(), "nothing executes: {d:?}");
    assert!(d.requests.open.is_none(), "nothing is requested: {d:?}");
    assert!(d.requests.keep.is_none(), "{d:?}");
    assert!(
        d.requests.supersede.is_empty(),
        "requests stay as they are: {d:?}"
    );
    d.reason.clone().unwrap_or_default()
}

#[test]
fn the_ds_of_the_childs_current_key_waits_for_approval_then_executes() {
    let z = delegating(&ds_of(&ksk(7)));
    let d = z.clone().decide();
    assert_eq!(d.outcome, Outcome::AwaitingApproval, "{d:?}");
    let r = opened(&d).clone();
    assert_eq!(
        r.plan.reasons,
        vec![vec![GateReason::Dnssec {
            record_type: "DS".into()
        }]]
    );
    let d = z
        .request(&r.name, r.plan.digest, RequestState::Approved)
        .decide();
    assert_eq!(d.outcome, Outcome::ExecuteApproved, "{d:?}");
    assert_eq!(
        executed(&d),
        vec![(ChangeOp::Create, "shop.acme.example. DS".into())]
    );
}

#[test]
fn a_ds_matching_no_key_of_the_child_is_refused_and_nothing_else_happens() {
    let wrong = ds_of(&ksk(9));
    // an ungated change beside it does not execute either
    let d = delegating(&wrong).want("www", "A", &["192.0.2.1"]).decide();
    let reason = refused_for_dnssec(&d);
    assert!(reason.contains("shop.acme.example."), "{reason}");
    assert!(reason.contains("bogus"), "{reason}");
    assert!(
        reason.contains("nothing is executed or requested"),
        "{reason}"
    );
    assert_eq!(d.plan.plan.changes.len(), 2, "the plan is still shown");
}

#[test]
fn a_ds_with_a_wrong_digest_is_refused() {
    let right = ds_of(&ksk(7));
    // the same key tag, algorithm and digest type; the digest's last byte changed
    let wrong = format!("{}00", &right[..right.len() - 2]);
    assert_ne!(wrong, right);
    let reason = refused_for_dnssec(&delegating(&wrong).decide());
    assert!(reason.contains("SHA-256 digest of that key"), "{reason}");
}

#[test]
fn an_approved_request_for_a_ds_no_longer_matching_does_not_execute() {
    // approved while the child had ksk(9); the child rolled to ksk(7) since
    let ds = ds_of(&ksk(9));
    let base = Z::new()
        .both("shop", "NS", &["ns1.example.net."])
        .want("shop", "DS", &[&ds]);
    let r = opened(&base.clone().decide()).clone();
    let d = base
        .request(&r.name, r.plan.digest, RequestState::Approved)
        .child("shop", Some(keys(&[&ksk(7)])))
        .decide();
    refused_for_dnssec(&d);
}

#[test]
fn removing_the_ds_of_a_signed_child_is_refused() {
    let z =
        Z::new()
            .both("shop", "NS", &["ns1.example.net."])
            .have("shop", "DS", &[&ds_of(&ksk(7))]);
    let d = z.clone().child("shop", Some(keys(&[&ksk(7)]))).decide();
    let reason = refused_for_dnssec(&d);
    assert!(reason.contains("cannot be removed"), "{reason}");
    // once the child is unsigned, the removal waits for approval like any
    let d = z.child("shop", None).decide();
    assert_eq!(d.outcome, Outcome::AwaitingApproval, "{d:?}");
    assert_eq!(opened(&d).plan.plan.changes[0].op, ChangeOp::Delete);
}

#[test]
fn changing_a_ds_set_is_checked_against_the_new_set() {
    let old = ds_of(&ksk(9));
    let new = ds_of(&ksk(7));
    let d = delegating(&new).have("shop", "DS", &[&old]).decide();
    assert_eq!(d.outcome, Outcome::AwaitingApproval, "{d:?}");
    let d = delegating(&old).have("shop", "DS", &[&new]).decide();
    refused_for_dnssec(&d);
}

#[test]
fn a_ds_below_no_managed_child_is_only_gated() {
    let d = Z::new()
        .want("other", "DS", &[&ds_of(&ksk(9))])
        .child("shop", Some(keys(&[&ksk(7)])))
        .decide();
    assert_eq!(d.outcome, Outcome::AwaitingApproval, "{d:?}");
    // and without children listed nothing is checked
    let mut z = delegating(&ds_of(&ksk(9)));
    z.children.clear();
    assert_eq!(z.decide().outcome, Outcome::AwaitingApproval);
}

#[test]
fn a_refusal_leaves_waiting_requests_alone_and_still_expires_old_ones() {
    let (mut z, name, _) = pending_mx();
    z.requests.push(RequestView {
        name: "old".into(),
        digest: plan_digest(
            "acme",
            &Plan {
                zone: zone_name(),
                changes: Vec::new(),
            },
        ),
        state: RequestState::Pending,
        kind: RequestKind::Declared,
        expires_at: now(),
    });
    let z = z
        .both("shop", "NS", &["ns1.example.net."])
        .want("shop", "DS", &[&ds_of(&ksk(9))])
        .child("shop", Some(keys(&[&ksk(7)])));
    let d = z.decide();
    refused_for_dnssec(&d);
    assert_eq!(d.requests.expire, vec!["old".to_owned()]);
    assert!(!d.requests.expire.contains(&name));
}

#[test]
fn a_read_only_connection_shows_the_refusal() {
    let d = delegating(&ds_of(&ksk(9))).read_only().decide();
    let reason = refused_for_dnssec(&d);
    assert!(reason.contains("bogus"), "{reason}");
}

#[test]
fn a_rollback_restoring_a_stale_ds_is_refused() {
    // the snapshot held the DS of ksk(9); the child has rolled to ksk(7)
    let stale = ds_of(&ksk(9));
    let current = ds_of(&ksk(7));
    let z = Z::new()
        .both("shop", "NS", &["ns1.example.net."])
        .both("shop", "DS", &[&current])
        .child("shop", Some(keys(&[&ksk(7)])));
    let mut target = z.actual.clone();
    target.sets.insert(key("shop", "DS"), set("DS", &[&stale]));
    let plan = rollback_plan("acme", &target, &z.actual, &z.policy);
    let mut z = z;
    z.requests.push(RequestView {
        name: "acme-example-rollback".into(),
        digest: plan.digest,
        state: RequestState::Approved,
        kind: RequestKind::Rollback {
            snapshot: "snap-1".into(),
            target,
        },
        expires_at: now()
            .checked_add(SignedDuration::from_hours(1))
            .unwrap_or(Timestamp::MAX),
    });
    let d = z.decide();
    let reason = refused_for_dnssec(&d);
    assert!(
        reason.starts_with("rollback acme-example-rollback"),
        "{reason}"
    );
}

// ------------------------------------------------------------ request states

#[test]
fn request_states_move_only_forward() {
    use RequestState::*;
    let allowed = [
        (Pending, Approved),
        (Pending, Rejected),
        (Pending, Superseded),
        (Pending, Expired),
        (Approved, Executing),
        (Approved, Superseded),
        (Executing, Applied),
        (Executing, Failed),
        (Executing, Approved),
    ];
    for from in RequestState::ALL {
        for to in RequestState::ALL {
            assert_eq!(
                from.may_become(to),
                allowed.contains(&(from, to)),
                "{from} -> {to}"
            );
        }
        assert_eq!(RequestState::parse(from.as_str()), Some(from));
    }
}
