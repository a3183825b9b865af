//! Read-only first: a connection may write only with `mode: Live`,
//! `acknowledgeLiveWrites: true`, a passing connection test and a passing
//! write-permission probe. The decision, pure; the checks that feed it run in
//! the providers crate.

use crate::resources::ConnectionMode;

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
