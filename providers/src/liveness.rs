//! Runs a connection's test and write probe (I/O) and reports the
//! `ProviderReady` and `LiveWriteEnabled` conditions with reasons and times;
//! the decision itself is `zentralink_model::liveness::decide`.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use k8s_openapi::jiff::Timestamp;
use zentralink_model::ZoneName;
use zentralink_model::catalog::ConnectionEntry;
pub use zentralink_model::liveness::{CheckOutcome, LiveDecision, decide};
use zentralink_model::resources::ConnectionMode;

use crate::{PROBE_LABEL, Provider};

/// What `check` found.
#[derive(Debug, Clone)]
pub struct LiveReport {
    pub test: CheckOutcome,
    /// `None` when the probe was not run (the connection is not meant to write).
    pub probe: Option<CheckOutcome>,
    pub decision: LiveDecision,
    /// `ProviderReady` and `LiveWriteEnabled`.
    pub conditions: Vec<Condition>,
}

fn condition(
    kind: &str,
    ok: bool,
    reason: &str,
    message: &str,
    now: Timestamp,
    generation: Option<i64>,
) -> Condition {
    Condition {
        type_: kind.to_owned(),
        status: if ok { "True" } else { "False" }.to_owned(),
        reason: reason.to_owned(),
        message: message.to_owned(),
        last_transition_time: Time(now),
        observed_generation: generation,
    }
}

/// Runs the connection test and, when the spec asks for live writes, the
/// write probe in `probe_zone`. Never probes a connection that is not meant to write.
pub async fn check(
    entry: &ConnectionEntry,
    provider: &dyn Provider,
    probe_zone: Option<&ZoneName>,
    now: Timestamp,
) -> LiveReport {
    let test = match provider.test_connection().await {
        Ok(()) => CheckOutcome {
            ok: true,
            message: "the provider answered and accepted the credentials".into(),
        },
        Err(e) => CheckOutcome {
            ok: false,
            message: e.to_string(),
        },
    };
    let wants_live = entry.spec.mode == ConnectionMode::Live && entry.spec.acknowledge_live_writes;
    let probe = match (wants_live && test.ok, probe_zone) {
        (true, Some(zone)) => Some(match provider.probe_write(zone).await {
            Ok(()) => CheckOutcome {
                ok: true,
                message: format!(
                    "the provider accepted a test write in {zone} (a {PROBE_LABEL} record, removed again)"
                ),
            },
            Err(e) => CheckOutcome {
                ok: false,
                message: e.to_string(),
            },
        }),
        (true, None) => Some(CheckOutcome {
            ok: false,
            message: "no zone uses this connection, so there is nowhere to probe".into(),
        }),
        (false, _) => None,
    };
    let decision = decide(
        entry.spec.mode,
        entry.spec.acknowledge_live_writes,
        Some(&test),
        probe.as_ref(),
    );
    let conditions = vec![
        condition(
            "ProviderReady",
            test.ok,
            if test.ok {
                "ConnectionTestPassed"
            } else {
                "ConnectionTestFailed"
            },
            &test.message,
            now,
            None,
        ),
        condition(
            "LiveWriteEnabled",
            decision.live,
            decision.reason,
            &decision.message,
            now,
            None,
        ),
    ];
    LiveReport {
        test,
        probe,
        decision,
        conditions,
    }
}
