//! What a DnsZone's status says after a pass: the conditions (`Ready`,
//! `Planned`, `AwaitingApproval`, `Drifted`, `ProviderReady`,
//! `LiveWriteEnabled`) with `observedGeneration`, reasons and messages, the
//! last applied digest and revision, the pending change request and counts;
//! and the Events a transition deserves. A condition keeps its
//! `lastTransitionTime` while its status does not change. Pure.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use k8s_openapi::jiff::Timestamp;
use serde::Serialize;
use zentralink_model::liveness::{CheckOutcome, LiveDecision, decide as decide_live};
use zentralink_model::reconcile::Outcome;
use zentralink_model::resources::ConnectionMode;

use crate::reconcile::ZoneResult;

/// What the store knows of the zone's connection.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ConnectionFacts {
    pub name: String,
    pub live_mode: bool,
    pub acknowledged: bool,
    pub test: Option<(bool, String)>,
    pub probe: Option<(bool, String)>,
}

impl ConnectionFacts {
    fn live(&self) -> LiveDecision {
        let outcome = |c: &Option<(bool, String)>| {
            c.as_ref().map(|(ok, message)| CheckOutcome {
                ok: *ok,
                message: message.clone(),
            })
        };
        decide_live(
            if self.live_mode {
                ConnectionMode::Live
            } else {
                ConnectionMode::ReadOnly
            },
            self.acknowledged,
            outcome(&self.test).as_ref(),
            outcome(&self.probe).as_ref(),
        )
    }
}

/// What the store knows of the zone after the pass.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ZoneFacts {
    pub last_applied_digest: Option<String>,
    pub applied_revision: Option<String>,
    pub last_snapshot: Option<String>,
    pub record_sets: Option<u32>,
}

/// The status the operator applies to a DnsZone (server-side apply: every
/// field it owns is always written, so a cleared field is removed).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ZoneStatus {
    pub conditions: Vec<Condition>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_applied_digest: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub applied_revision: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pending_change_request: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_snapshot: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub record_sets: Option<u32>,
    pub planned_changes: u32,
    pub drifted_record_sets: u32,
}

/// One condition as the pass sees it, before times are settled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    pub type_: &'static str,
    pub ok: bool,
    pub reason: String,
    pub message: String,
}

fn verdict(type_: &'static str, ok: bool, reason: &str, message: impl Into<String>) -> Verdict {
    Verdict {
        type_,
        ok,
        reason: reason.to_owned(),
        message: message.into(),
    }
}

/// The conditions of a zone after a pass (`result`), or after it could not
/// be reconciled at all (`refused`: why, with its reason).
pub fn zone_verdicts(
    result: Option<&ZoneResult>,
    refused: Option<(&str, &str)>,
    connection: Option<&ConnectionFacts>,
) -> Vec<Verdict> {
    let mut out = Vec::new();
    if let Some((reason, message)) = refused {
        out.push(verdict("Ready", false, reason, message));
        out.push(verdict("Planned", false, reason, message));
        out.push(verdict(
            "AwaitingApproval",
            false,
            "NotPlanned",
            "no plan was made",
        ));
        out.push(verdict("Drifted", false, "NotPlanned", "no plan was made"));
    } else if let Some(r) = result {
        out.extend(result_verdicts(r));
    }
    if let Some(c) = connection {
        out.push(match &c.test {
            Some((true, m)) => verdict("ProviderReady", true, "ConnectionTestPassed", m.clone()),
            Some((false, m)) => verdict("ProviderReady", false, "ConnectionTestFailed", m.clone()),
            None => verdict(
                "ProviderReady",
                false,
                "NotTested",
                format!("connection {} has not been tested yet", c.name),
            ),
        });
        let live = c.live();
        out.push(verdict(
            "LiveWriteEnabled",
            live.live,
            live.reason,
            live.message,
        ));
    }
    out
}

fn result_verdicts(r: &ZoneResult) -> Vec<Verdict> {
    let message = r.message.clone().unwrap_or_default();
    let mut out = Vec::new();
    let (ready, reason, why) = match (&r.error, r.outcome) {
        (Some(e), _) => (false, "ReconcileFailed", e.clone()),
        (None, None) => (false, "NotReconciled", message.clone()),
        (None, Some(outcome)) => {
            let all_applied = r.executed == r.applied;
            match outcome {
                Outcome::Converged => (true, "Converged", HOLDS.into()),
                // what executed is an Event (`Applied`); the status says where the zone
                // stands, so the next pass, finding it so, writes nothing
                Outcome::Execute | Outcome::ExecuteApproved if all_applied => {
                    match &r.waiting_for {
                        None => (true, "Converged", HOLDS.into()),
                        Some(request) => (
                            false,
                            "AwaitingApproval",
                            format!(
                                "gated operations wait for approval in DnsChangeRequest {request}"
                            ),
                        ),
                    }
                }
                Outcome::Execute | Outcome::ExecuteApproved => (
                    false,
                    "ApplyFailed",
                    format!(
                        "applied {} of {} operation(s){}",
                        r.applied,
                        r.executed,
                        if message.is_empty() {
                            String::new()
                        } else {
                            format!(": {message}")
                        }
                    ),
                ),
                Outcome::AwaitingApproval => (
                    false,
                    "AwaitingApproval",
                    match &r.waiting_for {
                        Some(request) => format!(
                            "gated operations wait for approval in DnsChangeRequest {request}"
                        ),
                        None => message.clone(),
                    },
                ),
                other => (false, outcome_reason(other), message.clone()),
            }
        }
    };
    out.push(verdict("Ready", ready, reason, why));
    match (&r.error, r.outcome) {
        (None, Some(_)) => {
            let left = remaining(r);
            out.push(verdict(
                "Planned",
                true,
                if left == 0 {
                    "NoChanges"
                } else {
                    "ChangesPlanned"
                },
                if left == 0 {
                    "nothing is left to apply".to_owned()
                } else {
                    format!("{left} operation(s) left to apply")
                },
            ))
        }
        (Some(e), _) => out.push(verdict("Planned", false, "ReconcileFailed", e.clone())),
        (None, None) => out.push(verdict("Planned", false, "NotReconciled", message.clone())),
    }
    out.push(match &r.waiting_for {
        Some(request) => verdict(
            "AwaitingApproval",
            true,
            "ChangeRequestPending",
            format!("gated operations wait for approval in DnsChangeRequest {request}"),
        ),
        None => verdict(
            "AwaitingApproval",
            false,
            "NothingWaits",
            "no change request waits",
        ),
    });
    out.push(if r.drift.is_empty() {
        verdict(
            "Drifted",
            false,
            "NoDrift",
            "the provider holds what was last applied",
        )
    } else {
        verdict(
            "Drifted",
            true,
            "DriftDetected",
            format!(
                "{} record set(s) differ from what was last applied: {}",
                r.drift.len(),
                r.drift
                    .iter()
                    .take(10)
                    .cloned()
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        )
    });
    out
}

const HOLDS: &str = "the zone holds what is declared";

/// Operations of the plan not applied by the pass (waiting, refused, failed).
fn remaining(r: &ZoneResult) -> usize {
    r.planned.saturating_sub(r.applied)
}

fn outcome_reason(outcome: Outcome) -> &'static str {
    match outcome {
        Outcome::Converged => "Converged",
        Outcome::Execute => "Applied",
        Outcome::ExecuteApproved => "Applied",
        Outcome::AwaitingApproval => "AwaitingApproval",
        Outcome::ReadOnly => "ReadOnly",
        Outcome::Refused => "Refused",
        Outcome::RolledBack => "RolledBack",
        Outcome::DriftReported => "DriftReported",
    }
}

/// The conditions to write: each verdict with `observedGeneration`, its
/// `lastTransitionTime` kept from `previous` while its status is unchanged.
pub fn settle_conditions(
    previous: &[Condition],
    verdicts: &[Verdict],
    generation: Option<i64>,
    now: Timestamp,
) -> Vec<Condition> {
    verdicts
        .iter()
        .map(|v| {
            let status = if v.ok { "True" } else { "False" };
            let since = previous
                .iter()
                .find(|c| c.type_ == v.type_ && c.status == status)
                .map(|c| c.last_transition_time.clone())
                .unwrap_or(Time(now));
            Condition {
                type_: v.type_.to_owned(),
                status: status.to_owned(),
                reason: v.reason.clone(),
                message: bounded(&v.message),
                observed_generation: generation,
                last_transition_time: since,
            }
        })
        .collect()
}

/// Conditions whose status or reason changed: each deserves an Event.
pub fn transitions<'a>(previous: &[Condition], now: &'a [Condition]) -> Vec<&'a Condition> {
    now.iter()
        .filter(|c| {
            !previous
                .iter()
                .any(|p| p.type_ == c.type_ && p.status == c.status && p.reason == c.reason)
        })
        .collect()
}

/// A zone's status after a pass.
pub fn zone_status(
    conditions: Vec<Condition>,
    generation: Option<i64>,
    result: Option<&ZoneResult>,
    facts: &ZoneFacts,
) -> ZoneStatus {
    ZoneStatus {
        conditions,
        observed_generation: generation,
        last_applied_digest: facts.last_applied_digest.clone(),
        applied_revision: facts.applied_revision.clone(),
        pending_change_request: result.and_then(|r| r.waiting_for.clone()),
        last_snapshot: facts.last_snapshot.clone(),
        record_sets: facts.record_sets,
        planned_changes: result.map_or(0, |r| u32::try_from(remaining(r)).unwrap_or(u32::MAX)),
        drifted_record_sets: result.map_or(0, |r| u32::try_from(r.drift.len()).unwrap_or(u32::MAX)),
    }
}

/// Condition messages stay short enough for `kubectl describe` (and under
/// the API's 32 KiB limit).
fn bounded(message: &str) -> String {
    const MAX: usize = 4096;
    if message.len() <= MAX {
        return message.to_owned();
    }
    let mut cut = MAX;
    while !message.is_char_boundary(cut) {
        cut -= 1;
    }
    format!("{}...", &message[..cut])
}

#[cfg(test)]
mod tests;
