//! Plan reports for people and machines: terminal text (optionally coloured),
//! Markdown for a pull-request comment, and the JSON shape. Pure.

use std::fmt::Write as _;

use serde::Serialize;

use crate::catalog::{Policy, ZoneEntry};
use crate::plan::ChangeOp;
use crate::reconcile::{Decision, Outcome};
use crate::record::{RecordSet, type_name};
use crate::resources::RecordSetState;

/// Every zone's plan; the `--format json` output.
#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PlanReport {
    pub zones: Vec<ZoneReport>,
}

/// One zone's plan.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ZoneReport {
    pub tenant: String,
    pub namespace: String,
    pub name: String,
    pub zone: String,
    pub provider: String,
    /// Whether the connection asks for live writes (`mode: Live` and
    /// `acknowledgeLiveWrites: true`). Writes are enabled only when the
    /// connection test and write probe pass too (`zentralink provider test`);
    /// a plan never claims more.
    pub live_requested: bool,
    pub digest: String,
    /// What the reconciler will do: `Converged`, `Execute`, `AwaitingApproval`,
    /// `ExecuteApproved`, `DriftReported`, `RolledBack`, `ReadOnly` or `Refused`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub outcome: Option<Outcome>,
    pub requires_approval: bool,
    /// The deterministic name of the change request the gated operations wait in.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub change_request: Option<String>,
    /// The digest approvers sign: of the gated operations (with the
    /// before-values of what they touch), not of the whole plan.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub change_request_digest: Option<String>,
    /// Operations that execute as soon as the plan is applied (not gated).
    pub executes_now: usize,
    /// Why nothing executes (read-only connection, refused, rolled back).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// Who must approve the gated operations, and how.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub approval: Option<ApprovalNeeded>,
    pub changes: Vec<ChangeReport>,
    /// Set when the zone could not be planned (provider unreachable, ...).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// What a change request needs before it executes.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ApprovalNeeded {
    pub change_request: String,
    /// The digest approvers sign.
    pub digest: String,
    /// Why the operations are gated.
    pub reasons: Vec<String>,
    /// Distinct approvers needed.
    pub min_approvals: u32,
    /// Roles whose approvers count.
    pub roles: Vec<String>,
    /// The approvers who may sign (never the requester).
    pub approvers: Vec<String>,
    /// The command an approver runs.
    pub command: String,
}

impl ApprovalNeeded {
    /// What `plan` says a change request needs, under `policy`, when
    /// `requester` asks for it (`None`: not known here).
    pub fn of(
        name: &str,
        digest: &str,
        reasons: Vec<String>,
        policy: &Policy,
        requester: Option<&str>,
    ) -> Self {
        let approvers = policy
            .approvers
            .iter()
            .filter(|a| policy.approver_roles.contains(&a.role))
            .filter(|a| requester.is_none_or(|r| !crate::approval::is_requester(a, r)))
            .map(|a| a.name.clone())
            .collect();
        Self {
            change_request: name.to_owned(),
            digest: digest.to_owned(),
            reasons,
            min_approvals: policy.min_approvals.max(1),
            roles: policy
                .approver_roles
                .iter()
                .map(|r| r.as_str().to_owned())
                .collect(),
            approvers,
            command: format!("zentralink approve {name} --key ~/.ssh/id_ed25519"),
        }
    }

    fn summary(&self) -> String {
        format!(
            "needs {} approval{} from {} ({}): {}",
            self.min_approvals,
            if self.min_approvals == 1 { "" } else { "s" },
            self.roles.join(" or "),
            if self.approvers.is_empty() {
                "nobody may sign it: add approvers to the TenantPolicy".to_owned()
            } else {
                format!("may sign: {}", self.approvers.join(", "))
            },
            self.reasons.join("; ")
        )
    }
}

/// One operation.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ChangeReport {
    pub op: ChangeOp,
    pub name: String,
    #[serde(rename = "type")]
    pub record_type: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub before: Option<RecordSetState>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub after: Option<RecordSetState>,
    pub requires_approval: bool,
    pub reasons: Vec<String>,
}

fn state(set: Option<&RecordSet>) -> Option<RecordSetState> {
    set.map(|s| RecordSetState {
        ttl: s.ttl,
        values: s.texts(),
    })
}

impl ZoneReport {
    /// The report of a decision (`reconcile::decide`) about one zone, with
    /// who may approve what waits under `policy` (the requester excluded).
    pub fn new(
        entry: &ZoneEntry,
        decision: &Decision,
        live_requested: bool,
        policy: &Policy,
        requester: Option<&str>,
    ) -> Self {
        let plan = &decision.plan;
        let changes = plan
            .plan
            .changes
            .iter()
            .zip(&plan.reasons)
            .map(|(c, reasons)| ChangeReport {
                op: c.op,
                name: c.key.name().to_ascii(),
                record_type: type_name(c.key.rtype),
                before: state(c.before.as_ref()),
                after: state(c.after.as_ref()),
                requires_approval: !reasons.is_empty(),
                reasons: reasons.iter().map(ToString::to_string).collect(),
            })
            .collect();
        let requires_approval = plan.requires_approval();
        let (change_request, change_request_digest) = match &decision.requests.open {
            Some(open) => (Some(open.name.clone()), Some(open.plan.digest.to_string())),
            None => (decision.requests.keep.clone(), None),
        };
        let approval = decision.requests.open.as_ref().map(|open| {
            let reasons: std::collections::BTreeSet<String> = open
                .plan
                .reasons
                .iter()
                .flatten()
                .map(ToString::to_string)
                .collect();
            ApprovalNeeded::of(
                &open.name,
                &open.plan.digest.to_string(),
                reasons.into_iter().collect(),
                policy,
                requester,
            )
        });
        Self {
            tenant: entry.tenant.clone(),
            namespace: entry.namespace.clone(),
            name: entry.name.clone(),
            zone: entry.zone.to_string(),
            provider: entry.connection.clone(),
            live_requested,
            digest: plan.digest.to_string(),
            outcome: Some(decision.outcome),
            requires_approval,
            change_request,
            change_request_digest,
            executes_now: plan.reasons.iter().filter(|r| r.is_empty()).count(),
            message: decision.reason.clone(),
            approval,
            changes,
            error: None,
        }
    }

    /// A zone that could not be planned.
    pub fn failed(entry: &ZoneEntry, error: String) -> Self {
        Self {
            tenant: entry.tenant.clone(),
            namespace: entry.namespace.clone(),
            name: entry.name.clone(),
            zone: entry.zone.to_string(),
            provider: entry.connection.clone(),
            live_requested: false,
            digest: String::new(),
            outcome: None,
            requires_approval: false,
            change_request: None,
            change_request_digest: None,
            executes_now: 0,
            message: None,
            approval: None,
            changes: Vec::new(),
            error: Some(error),
        }
    }

    fn count(&self, op: ChangeOp) -> usize {
        self.changes.iter().filter(|c| c.op == op).count()
    }

    fn summary(&self) -> String {
        if self.changes.is_empty() {
            return "no changes".into();
        }
        let gated = self.changes.iter().filter(|c| c.requires_approval).count();
        let mut s = format!(
            "{} change{}: {} create, {} update, {} delete",
            self.changes.len(),
            if self.changes.len() == 1 { "" } else { "s" },
            self.count(ChangeOp::Create),
            self.count(ChangeOp::Update),
            self.count(ChangeOp::Delete)
        );
        if gated > 0 {
            let _ = write!(s, "; {gated} need approval");
        }
        s
    }
}

impl PlanReport {
    pub fn has_changes(&self) -> bool {
        self.zones.iter().any(|z| !z.changes.is_empty())
    }

    pub fn has_errors(&self) -> bool {
        self.zones.iter().any(|z| z.error.is_some())
    }

    /// True when any zone has operations that wait for approval.
    pub fn has_gated_changes(&self) -> bool {
        self.zones
            .iter()
            .any(|z| z.changes.iter().any(|c| c.requires_approval))
    }
}

struct Palette {
    add: &'static str,
    del: &'static str,
    chg: &'static str,
    warn: &'static str,
    bold: &'static str,
    dim: &'static str,
    reset: &'static str,
}

const COLOR: Palette = Palette {
    add: "\x1b[32m",
    del: "\x1b[31m",
    chg: "\x1b[33m",
    warn: "\x1b[35m",
    bold: "\x1b[1m",
    dim: "\x1b[2m",
    reset: "\x1b[0m",
};
const PLAIN: Palette = Palette {
    add: "",
    del: "",
    chg: "",
    warn: "",
    bold: "",
    dim: "",
    reset: "",
};

fn symbol(op: ChangeOp) -> char {
    match op {
        ChangeOp::Create => '+',
        ChangeOp::Update => '~',
        ChangeOp::Delete => '-',
    }
}

/// Terminal text: one block per zone, a line per operation, values diffed.
pub fn render_text(report: &PlanReport, color: bool) -> String {
    let p = if color { &COLOR } else { &PLAIN };
    let mut out = String::new();
    for z in &report.zones {
        let _ = writeln!(
            out,
            "{}{}{} ({}/{}, provider {}{})",
            p.bold,
            z.zone,
            p.reset,
            z.namespace,
            z.name,
            z.provider,
            if z.live_requested {
                ", live writes requested"
            } else {
                ", read-only"
            }
        );
        if let Some(e) = &z.error {
            let _ = writeln!(out, "  {}error:{} {e}", p.del, p.reset);
            continue;
        }
        let _ = writeln!(
            out,
            "  {}{}{}  digest {}",
            p.dim,
            z.summary(),
            p.reset,
            z.digest
        );
        if let Some(cr) = &z.change_request {
            let _ = writeln!(
                out,
                "  {}gated operations wait for approval as change request {cr}{}",
                p.warn, p.reset
            );
        }
        if let Some(a) = &z.approval {
            let _ = writeln!(out, "  {}{}{}", p.warn, a.summary(), p.reset);
            let _ = writeln!(out, "  {}sign with: {}{}", p.dim, a.command, p.reset);
        }
        if let Some(m) = &z.message {
            let _ = writeln!(out, "  {}{m}{}", p.warn, p.reset);
        }
        for c in &z.changes {
            let colour = match c.op {
                ChangeOp::Create => p.add,
                ChangeOp::Update => p.chg,
                ChangeOp::Delete => p.del,
            };
            let _ = write!(
                out,
                "  {colour}{} {} {}{}",
                symbol(c.op),
                c.name,
                c.record_type,
                p.reset
            );
            if c.requires_approval {
                let _ = write!(
                    out,
                    "  {}[needs approval: {}]{}",
                    p.warn,
                    c.reasons.join("; "),
                    p.reset
                );
            }
            out.push('\n');
            write_value_diff(&mut out, c, p);
        }
        out.push('\n');
    }
    out
}

fn write_value_diff(out: &mut String, c: &ChangeReport, p: &Palette) {
    let before = c.before.as_ref();
    let after = c.after.as_ref();
    if let (Some(b), Some(a)) = (before, after)
        && b.ttl != a.ttl
    {
        let _ = writeln!(
            out,
            "      ttl {}{}{} -> {}{}{}",
            p.del, b.ttl, p.reset, p.add, a.ttl, p.reset
        );
    }
    let old: &[String] = before.map(|b| b.values.as_slice()).unwrap_or(&[]);
    let new: &[String] = after.map(|a| a.values.as_slice()).unwrap_or(&[]);
    for v in old.iter().filter(|v| !new.contains(v)) {
        let _ = writeln!(out, "      {}- {v}{}", p.del, p.reset);
    }
    for v in new.iter().filter(|v| !old.contains(v)) {
        let ttl = if before.is_none() {
            after
                .map(|a| format!("  (ttl {})", a.ttl))
                .unwrap_or_default()
        } else {
            String::new()
        };
        let _ = writeln!(out, "      {}+ {v}{}{}", p.add, p.reset, ttl);
    }
}

/// Markdown for a pull-request comment: a summary table, then a diff block per zone.
pub fn render_markdown(report: &PlanReport) -> String {
    let mut out = String::from(
        "## ZentraLink plan\n\n| Zone | Object | Changes | Approval |\n|---|---|---|---|\n",
    );
    for z in &report.zones {
        let approval = match (&z.error, &z.change_request) {
            (Some(_), _) => "error".to_owned(),
            (None, Some(cr)) => format!("required (`{cr}`)"),
            (None, None) if z.changes.is_empty() => "-".into(),
            (None, None) => "not required".into(),
        };
        let summary = if z.error.is_some() {
            "could not plan".to_owned()
        } else {
            z.summary()
        };
        let _ = writeln!(
            out,
            "| `{}` | {}/{} | {} | {} |",
            z.zone, z.namespace, z.name, summary, approval
        );
    }
    for z in report
        .zones
        .iter()
        .filter(|z| !z.changes.is_empty() || z.error.is_some())
    {
        let _ = writeln!(out, "\n### `{}`\n", z.zone);
        if let Some(e) = &z.error {
            let _ = writeln!(out, "> **Error:** {e}");
            continue;
        }
        let _ = writeln!(
            out,
            "Digest `{}`{}\n",
            z.digest,
            if z.live_requested {
                ""
            } else {
                " (read-only connection: will not be executed)"
            }
        );
        if let Some(a) = &z.approval {
            let _ = writeln!(
                out,
                "**Waits for approval** as change request `{}` (digest `{}`): {}.\n\nApprovers sign with:\n\n```sh\n{}\n```\n",
                a.change_request,
                a.digest,
                a.summary(),
                a.command
            );
        }
        out.push_str("```diff\n");
        for c in &z.changes {
            let flag = if c.requires_approval {
                format!("  # needs approval: {}", c.reasons.join("; "))
            } else {
                String::new()
            };
            let _ = writeln!(
                out,
                "{} {} {} {}{flag}",
                symbol(c.op),
                c.op,
                c.name,
                c.record_type
            );
            let old: &[String] = c
                .before
                .as_ref()
                .map(|b| b.values.as_slice())
                .unwrap_or(&[]);
            let new: &[String] = c.after.as_ref().map(|a| a.values.as_slice()).unwrap_or(&[]);
            if let (Some(b), Some(a)) = (&c.before, &c.after)
                && b.ttl != a.ttl
            {
                let _ = writeln!(out, "- ttl {}\n+ ttl {}", b.ttl, a.ttl);
            }
            for v in old.iter().filter(|v| !new.contains(v)) {
                let _ = writeln!(out, "-     {v}");
            }
            for v in new.iter().filter(|v| !old.contains(v)) {
                let _ = writeln!(out, "+     {v}");
            }
        }
        out.push_str("```\n");
    }
    out
}
