use zentralink_model::reconcile::Outcome;

use super::*;

fn result(outcome: Option<Outcome>) -> ZoneResult {
    ZoneResult {
        tenant: "acme".into(),
        namespace: "acme".into(),
        name: "shop".into(),
        zone: "shop.example.".into(),
        outcome,
        planned: 0,
        executed: 0,
        applied: 0,
        waiting_for: None,
        drift: Vec::new(),
        message: None,
        error: None,
        duration_ms: 1,
    }
}

fn live() -> ConnectionFacts {
    ConnectionFacts {
        name: "acme/files".into(),
        live_mode: true,
        acknowledged: true,
        test: Some((true, "answered".into())),
        probe: Some((true, "wrote and removed a probe".into())),
    }
}

fn find<'a>(v: &'a [Verdict], type_: &str) -> &'a Verdict {
    v.iter()
        .find(|c| c.type_ == type_)
        .unwrap_or_else(|| panic!("no {type_}"))
}

#[test]
fn a_converged_zone_is_ready_and_planned_with_nothing_waiting() {
    let v = zone_verdicts(Some(&result(Some(Outcome::Converged))), None, Some(&live()));
    let types: Vec<&str> = v.iter().map(|c| c.type_).collect();
    assert_eq!(
        types,
        vec![
            "Ready",
            "Planned",
            "AwaitingApproval",
            "Drifted",
            "ProviderReady",
            "LiveWriteEnabled"
        ]
    );
    assert!(find(&v, "Ready").ok);
    assert_eq!(find(&v, "Planned").reason, "NoChanges");
    assert!(!find(&v, "AwaitingApproval").ok);
    assert!(!find(&v, "Drifted").ok);
    assert!(find(&v, "LiveWriteEnabled").ok);
}

#[test]
fn gated_operations_make_the_zone_wait_not_ready() {
    let mut r = result(Some(Outcome::AwaitingApproval));
    r.planned = 2;
    r.executed = 1;
    r.applied = 1;
    r.waiting_for = Some("shop-0123456789ab".into());
    let v = zone_verdicts(Some(&r), None, Some(&live()));
    assert!(!find(&v, "Ready").ok);
    assert_eq!(find(&v, "Ready").reason, "AwaitingApproval");
    let waiting = find(&v, "AwaitingApproval");
    assert!(waiting.ok);
    assert!(waiting.message.contains("shop-0123456789ab"));
    assert_eq!(find(&v, "Planned").reason, "ChangesPlanned");
}

#[test]
fn an_execution_that_did_not_apply_everything_is_not_ready() {
    let mut r = result(Some(Outcome::Execute));
    r.planned = 3;
    r.executed = 3;
    r.applied = 2;
    let v = zone_verdicts(Some(&r), None, None);
    assert_eq!(find(&v, "Ready").reason, "ApplyFailed");
    r.applied = 3;
    let v = zone_verdicts(Some(&r), None, None);
    assert!(find(&v, "Ready").ok);
    assert_eq!(
        find(&v, "Ready").reason,
        "Converged",
        "where the zone stands, not what the pass did"
    );
    assert_eq!(find(&v, "Planned").reason, "NoChanges");
}

#[test]
fn drift_and_errors_are_said_with_their_reasons() {
    let mut r = result(Some(Outcome::DriftReported));
    r.drift = vec!["www.shop.example. A".into()];
    let v = zone_verdicts(Some(&r), None, None);
    assert!(find(&v, "Drifted").ok);
    assert!(find(&v, "Drifted").message.contains("www.shop.example. A"));
    let mut r = result(None);
    r.error = Some("provider unreachable".into());
    let v = zone_verdicts(Some(&r), None, None);
    assert_eq!(find(&v, "Ready").reason, "ReconcileFailed");
    assert!(!find(&v, "Planned").ok);
}

#[test]
fn a_read_only_connection_says_why_it_does_not_write() {
    let facts = ConnectionFacts {
        live_mode: false,
        ..live()
    };
    let v = zone_verdicts(Some(&result(Some(Outcome::ReadOnly))), None, Some(&facts));
    let writes = find(&v, "LiveWriteEnabled");
    assert!(!writes.ok);
    assert_eq!(writes.reason, "ReadOnlyMode");
    let untested = ConnectionFacts {
        test: None,
        probe: None,
        ..live()
    };
    let v = zone_verdicts(
        Some(&result(Some(Outcome::ReadOnly))),
        None,
        Some(&untested),
    );
    assert_eq!(find(&v, "ProviderReady").reason, "NotTested");
}

#[test]
fn a_refused_zone_is_neither_ready_nor_planned() {
    let v = zone_verdicts(
        None,
        Some(("NoTenant", "namespace x belongs to no Tenant")),
        None,
    );
    assert_eq!(find(&v, "Ready").reason, "NoTenant");
    assert!(!find(&v, "Planned").ok);
}

#[test]
fn transition_times_are_kept_while_the_status_holds() {
    let t0: Timestamp = "2026-11-30T20:00:00Z"
        .parse()
        .unwrap_or_else(|e| panic!("{e}"));
    let t1: Timestamp = "2026-11-30T21:00:00Z"
        .parse()
        .unwrap_or_else(|e| panic!("{e}"));
    let first = settle_conditions(
        &[],
        &zone_verdicts(Some(&result(Some(Outcome::Converged))), None, None),
        Some(1),
        t0,
    );
    // same statuses an hour later: times kept, no transition
    let again = settle_conditions(
        &first,
        &zone_verdicts(Some(&result(Some(Outcome::Converged))), None, None),
        Some(2),
        t1,
    );
    assert!(
        again
            .iter()
            .all(|c| c.last_transition_time.0 == t0 && c.observed_generation == Some(2))
    );
    assert!(transitions(&first, &again).is_empty());
    // Ready turns False: its time moves, and it is a transition
    let mut r = result(None);
    r.error = Some("boom".into());
    let failed = settle_conditions(&again, &zone_verdicts(Some(&r), None, None), Some(2), t1);
    let ready = failed
        .iter()
        .find(|c| c.type_ == "Ready")
        .unwrap_or_else(|| panic!());
    assert_eq!(ready.last_transition_time.0, t1);
    let moved: Vec<&str> = transitions(&again, &failed)
        .iter()
        .map(|c| c.type_.as_str())
        .collect();
    assert_eq!(moved, vec!["Ready", "Planned"]);
}

#[test]
fn long_messages_are_cut_on_a_character_boundary() {
    let long = "é".repeat(5000);
    let c = settle_conditions(
        &[],
        &[Verdict {
            type_: "Ready",
            ok: false,
            reason: "X".into(),
            message: long,
        }],
        None,
        Timestamp::UNIX_EPOCH,
    );
    assert!(c[0].message.len() <= 4100);
    assert!(c[0].message.ends_with("..."));
}
