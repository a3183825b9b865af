//! Read-only first: a connection may write only with `mode: Live`,
//! `acknowledgeLiveWrites: true`, a passing connection test and a passing
//! write-permission probe. The decision is a pure function; `check` runs the
//! test and probe (I/O) and reports conditions with reasons and times.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use k8s_openapi::jiff::Timestamp;
use zentralink_model::ZoneName;
use zentralink_model::catalog::ConnectionEntry;
use zentralink_model::resources::ConnectionMode;

use crate::provider::Provider;

/// The result of one check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckOutcome {
    pub ok: bool,
    pub message: String,
}

/// Whether the connection may write, and why (the `LiveWriteEnabled` reason).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LiveDecision {
    pub live: bool,
    /// CamelCase reason: `Enabled`, `ReadOnlyMode`, `NotAcknowledged`, `ConnectionTestFailed`, `ProbeFailed`, `NotProbed`.
    pub reason: &'static str,
    pub message: String,
}

/// Decides from the spec and the check results. Pure.
pub fn decide(
    mode: ConnectionMode,
    acknowledged: bool,
    test: Option<&CheckOutcome>,
    probe: Option<&CheckOutcome>,
) -> LiveDecision {
    let d = |live, reason, message: String| LiveDecision {
        live,
        reason,
        message,
    };
    if mode != ConnectionMode::Live {
        return d(
            false,
            "ReadOnlyMode",
            "spec.mode is ReadOnly: plans are shown, never executed".into(),
        );
    }
    if !acknowledged {
        return d(
            false,
            "NotAcknowledged",
            "spec.mode is Live but spec.acknowledgeLiveWrites is not true".into(),
        );
    }
    match (test, probe) {
        (Some(t), _) if !t.ok => d(
            false,
            "ConnectionTestFailed",
            format!("connection test failed: {}", t.message),
        ),
        (None, _) => d(
            false,
            "ConnectionTestFailed",
            "the connection has not been tested".into(),
        ),
        (Some(_), Some(p)) if !p.ok => d(
            false,
            "ProbeFailed",
            format!("write probe failed: {}", p.message),
        ),
        (Some(_), None) => d(false, "NotProbed", "the write probe has not run".into()),
        (Some(_), Some(_)) => d(
            true,
            "Enabled",
            "mode Live, acknowledged, connection test and write probe passed".into(),
        ),
    }
}

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
                    "the provider accepted a test write in {zone} (a _zentralink-probe record, removed again)"
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

#[cfg(test)]
mod tests {
    use super::*;

    fn ok() -> CheckOutcome {
        CheckOutcome {
            ok: true,
            message: "ok".into(),
        }
    }
    fn bad() -> CheckOutcome {
        CheckOutcome {
            ok: false,
            message: "401".into(),
        }
    }

    #[test]
    fn all_four_conditions_are_needed() {
        use ConnectionMode::*;
        assert_eq!(
            decide(ReadOnly, true, Some(&ok()), Some(&ok())).reason,
            "ReadOnlyMode"
        );
        assert_eq!(
            decide(Live, false, Some(&ok()), Some(&ok())).reason,
            "NotAcknowledged"
        );
        assert_eq!(
            decide(Live, true, Some(&bad()), Some(&ok())).reason,
            "ConnectionTestFailed"
        );
        assert_eq!(
            decide(Live, true, None, None).reason,
            "ConnectionTestFailed"
        );
        assert_eq!(decide(Live, true, Some(&ok()), None).reason, "NotProbed");
        assert_eq!(
            decide(Live, true, Some(&ok()), Some(&bad())).reason,
            "ProbeFailed"
        );
        let yes = decide(Live, true, Some(&ok()), Some(&ok()));
        assert!(yes.live);
        assert_eq!(yes.reason, "Enabled");
        assert!(!decide(Live, true, Some(&ok()), Some(&bad())).live);
    }
}
