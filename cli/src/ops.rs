//! The reconciler's commands: `reconcile` (one pass), `status`, `history`,
//! `snapshot`, `rollback`. Argument parsing and printing over the operator
//! and store libraries. Does I/O (terminal, database, providers).

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use clap::{Args, Subcommand, ValueEnum};
use tokio::runtime::Handle;
use zentralink_model::ZoneContent;
use zentralink_model::digest::zone_digest;
use zentralink_model::plan::{Ownership, PlanScope, plan_zone};
use zentralink_model::reconcile::rollback_plan;
use zentralink_operator::prefetch::Prefetch;
use zentralink_operator::reconcile::{
    Credentials, Options, PassReport, Reconciler, SystemClock, connection_from_record,
};
use zentralink_operator::source::Source;
use zentralink_operator::source::directory::DirectorySource;
use zentralink_providers::connect_with;
use zentralink_store::changes::{NewChangeRequest, RequestKind};
use zentralink_store::zones::ZoneRecord;
use zentralink_store::{SnapshotId, Store};

use crate::Inputs;

/// Where the desired state comes from.
#[derive(Debug, Clone, Args)]
pub struct SourceArgs {
    /// A directory (or file) of manifests, or a git repository URL
    /// (`file://`, `https://`, `ssh://`, `git@host:path`).
    pub source: String,
    /// git: the branch or tag to read.
    #[arg(long = "ref", value_name = "REF", default_value = "main")]
    pub git_ref: String,
    /// git: the repository's sub-directory that holds the manifests.
    #[arg(long, value_name = "DIR")]
    pub path: Option<String>,
    /// git over https: the environment variable that holds the access token.
    #[arg(long, value_name = "NAME")]
    pub git_token_env: Option<String>,
    /// git over ssh: the private key file.
    #[arg(long, value_name = "FILE")]
    pub ssh_key: Option<PathBuf>,
    /// git over ssh: the known_hosts file the server's key must be in
    /// (default: the user's ~/.ssh/known_hosts).
    #[arg(long, value_name = "FILE")]
    pub known_hosts: Option<PathBuf>,
    /// git: where relative zone-file directories of the manifests resolve
    /// (default: the current directory, as if the repository were checked out there).
    #[arg(long, value_name = "DIR")]
    pub zonefile_root: Option<PathBuf>,
    /// Where clones and state are kept.
    #[arg(long, value_name = "DIR", default_value = ".zentralink/state")]
    pub state_dir: PathBuf,
    /// Who asks for changes read from a directory (default: the user running the command).
    #[arg(long)]
    pub requester: Option<String>,
}

impl SourceArgs {
    fn is_git(&self) -> bool {
        let s = self.source.as_str();
        s.contains("://") || s.starts_with("git@") || s.ends_with(".git")
    }

    /// The source these arguments name.
    pub fn build(&self) -> anyhow::Result<Arc<dyn Source>> {
        if self.is_git() {
            return crate::git::build(self);
        }
        let requester = self.requester.clone().unwrap_or_else(|| {
            std::env::var("USER")
                .map(|u| format!("{u} (local)"))
                .unwrap_or_else(|_| "local user".into())
        });
        Ok(Arc::new(DirectorySource::new(
            vec![PathBuf::from(&self.source)],
            requester,
        )))
    }
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum OutputFormat {
    Text,
    Json,
}

/// `zentralink reconcile SOURCE`.
#[derive(Debug, Args)]
pub struct ReconcileArgs {
    #[command(flatten)]
    pub source: SourceArgs,
    /// Zones reconciled at once.
    #[arg(long, default_value_t = 8)]
    pub concurrency: usize,
    #[arg(long, value_enum, default_value_t = OutputFormat::Text)]
    pub format: OutputFormat,
}

pub fn credentials(inputs: &Inputs) -> Arc<Credentials> {
    Arc::new(credentials_value(inputs))
}

/// The credentials of the process (the cluster operator adds the cluster's Secrets).
fn credentials_value(inputs: &Inputs) -> Credentials {
    Credentials {
        keyring: inputs.keyring.clone(),
        env: inputs.credential_env.clone(),
        secrets: None,
    }
}

/// Starts the zone reads of a directory source while its manifests load
/// (as `zentralink plan` does); nothing for a git source, whose files are
/// known only once it is fetched.
pub fn read_ahead(args: &ReconcileArgs, inputs: &Inputs, runtime: &Handle) -> Prefetch {
    if args.source.is_git() {
        return Prefetch::default();
    }
    let credentials = credentials_value(inputs);
    Prefetch::start_digested(
        runtime,
        &[PathBuf::from(&args.source.source)],
        &credentials.sources(),
        None,
    )
}

/// One pass: exit 0 when every zone converged or waits for approval, 1 on errors.
pub async fn reconcile(
    args: &ReconcileArgs,
    inputs: &Inputs,
    prefetch: Prefetch,
) -> anyhow::Result<ExitCode> {
    let source = args.source.build()?;
    let store = crate::open_store(inputs).await?;
    store.migrate().await?;
    let name = source.name();
    let revision = match source.fetch().await {
        Ok(r) => r,
        Err(e) => {
            if store
                .record_source_error(&name, e.revision(), &e.to_string())
                .await?
            {
                store
                    .audit(
                        zentralink_store::audit::AuditEvent::new(
                            None,
                            zentralink_store::audit::Actor::Operator("zentralink-cli".into()),
                            "source.failed",
                        )
                        .target("Source", &name)
                        .meta("error", e.to_string()),
                    )
                    .await?;
            }
            errln!("error: {e}");
            errln!("nothing was changed; the last good revision stays in force");
            return Ok(ExitCode::from(1));
        }
    };
    store.record_good_revision(&name, &revision.id).await?;
    let reconciler = Reconciler::new(
        store.clone(),
        credentials(inputs),
        Arc::new(SystemClock),
        Options {
            concurrency: args.concurrency,
            actor: "zentralink-cli".into(),
            execute: true,
        },
    );
    let report = reconciler.pass_prefetched(&revision, prefetch).await;
    store.record_pass(&name, report.errors() == 0).await?;
    match args.format {
        OutputFormat::Json => outln!("{}", serde_json::to_string_pretty(&report)?),
        OutputFormat::Text => print_pass(&report)?,
    }
    // The process exits next: the system takes the revision's memory back
    // at once, where freeing its record sets one by one takes milliseconds.
    std::mem::forget(revision);
    Ok(if report.errors() == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

fn print_pass(report: &PassReport) -> anyhow::Result<()> {
    outln!("revision {}", report.revision);
    for z in &report.zones {
        let outcome = z
            .outcome
            .map_or("Failed", zentralink_model::reconcile::Outcome::as_str);
        outln!("{} ({}/{}): {outcome}", z.zone, z.namespace, z.name);
        if z.executed > 0 {
            outln!("    applied {} of {} operations", z.applied, z.executed);
        }
        if let Some(w) = &z.waiting_for {
            outln!("    waits for approval in change request {w}");
        }
        if !z.drift.is_empty() {
            outln!("    drift: {}", z.drift.join(", "));
        }
        if let Some(m) = &z.message {
            outln!("    {m}");
        }
        if let Some(e) = &z.error {
            outln!("    error: {e}");
        }
    }
    Ok(())
}

/// `zentralink operator --source SOURCE`.
#[derive(Debug, Args)]
pub struct OperatorArgs {
    /// Where the desired state comes from (see `reconcile`).
    #[arg(long = "source", value_name = "SOURCE")]
    pub source_url: String,
    #[command(flatten)]
    pub options: SourceOptions,
    /// How often the source is read, e.g. 30s, 5m.
    #[arg(long, default_value = "30s")]
    pub interval: String,
    /// How often every zone is reconciled even when the revision did not change (drift).
    #[arg(long, default_value = "5m")]
    pub full_pass: String,
    /// Where /metrics, /healthz, /readyz and /hooks/git listen.
    #[arg(long, default_value = "127.0.0.1:9180")]
    pub listen: std::net::SocketAddr,
    /// The environment variable holding the git webhook secret (default: none, /hooks/git off).
    #[arg(long, value_name = "NAME")]
    pub webhook_secret_env: Option<String>,
    /// Zones reconciled at once.
    #[arg(long, default_value_t = 8)]
    pub concurrency: usize,
    #[command(flatten)]
    pub cluster: ClusterFlags,
}

/// The options of `operator --source kubernetes`.
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "With --source kubernetes")]
pub struct ClusterFlags {
    /// Serve the admission webhook (HTTPS) here, e.g. 0.0.0.0:9443.
    #[arg(long, value_name = "ADDR")]
    pub admission_listen: Option<std::net::SocketAddr>,
    /// The webhook's certificate from a directory (tls.crt, tls.key; as
    /// cert-manager writes it). Without it the operator makes its own and
    /// patches its CA into the webhook configurations.
    #[arg(long, value_name = "DIR")]
    pub admission_tls_dir: Option<PathBuf>,
    /// The webhook's Service (the generated certificate names <svc>.<ns>.svc).
    #[arg(long, value_name = "NAME", default_value = "zentralink-webhook")]
    pub admission_service: String,
    /// The Validating- and MutatingWebhookConfigurations to patch the generated CA into.
    #[arg(
        long,
        value_name = "NAME,...",
        value_delimiter = ',',
        default_value = "zentralink"
    )]
    pub admission_configs: Vec<String>,
    /// More names or addresses for the generated certificate (repeat), e.g. 127.0.0.1.
    #[arg(long = "admission-san", value_name = "NAME")]
    pub admission_sans: Vec<String>,
    /// The operator's namespace: its Leases live there.
    #[arg(long, env = "POD_NAMESPACE", default_value = "zentralink")]
    pub namespace: String,
    /// This replica's name (the pod's name; default: the host name).
    #[arg(long, env = "POD_NAME")]
    pub identity: Option<String>,
    /// The operator's ServiceAccount: the one user the webhook lets set a requester.
    #[arg(
        long,
        env = "ZENTRALINK_SERVICE_ACCOUNT",
        default_value = "zentralink-operator"
    )]
    pub service_account: String,
    /// Split the zones into N shards, each reconciled by the replica that holds its Lease.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=1024))]
    pub shards: u32,
    /// How long a Lease stays held without renewal.
    #[arg(long, default_value = "15s")]
    pub lease_duration: String,
}

/// Runs the reconcile loop until SIGTERM or Ctrl-C.
pub async fn operator(args: &OperatorArgs, inputs: &Inputs) -> anyhow::Result<ExitCode> {
    if args.source_url == "kubernetes" {
        return cluster_operator(args, inputs).await;
    }
    let source_args = SourceArgs {
        source: args.source_url.clone(),
        git_ref: args.options.git_ref.clone(),
        path: args.options.path.clone(),
        git_token_env: args.options.git_token_env.clone(),
        ssh_key: args.options.ssh_key.clone(),
        known_hosts: args.options.known_hosts.clone(),
        zonefile_root: args.options.zonefile_root.clone(),
        state_dir: args.options.state_dir.clone(),
        requester: args.options.requester.clone(),
    };
    let source = source_args.build()?;
    let seconds = |flag: &str, v: &str| {
        zentralink_model::policy::parse_duration(v)
            .map(std::time::Duration::from_secs)
            .map_err(|e| anyhow::anyhow!("{flag}: {e}"))
    };
    let interval = seconds("--interval", &args.interval)?;
    let full_pass = seconds("--full-pass", &args.full_pass)?;
    let webhook_secret = match &args.webhook_secret_env {
        Some(var) => Some(zentralink_model::secrets::SecretString::new(
            std::env::var(var)
                .ok()
                .filter(|v| !v.is_empty())
                .ok_or_else(|| {
                    anyhow::anyhow!("--webhook-secret-env {var}: the variable is not set")
                })?,
        )),
        None => None,
    };
    let store = crate::open_store(inputs).await?;
    store.migrate().await?;
    let metrics = zentralink_operator::metrics::Metrics::new();
    let reconciler = Reconciler::new(
        store,
        credentials(inputs),
        Arc::new(SystemClock),
        Options {
            concurrency: args.concurrency,
            actor: "zentralink-operator".into(),
            execute: true,
        },
    )
    .with_metrics(metrics.clone());
    zentralink_operator::daemon::run(
        reconciler,
        source,
        metrics,
        zentralink_operator::daemon::DaemonOptions {
            interval,
            full_pass,
            listen: Some(args.listen),
            webhook_secret,
        },
        zentralink_operator::server::shutdown_signal(),
    )
    .await?;
    Ok(ExitCode::SUCCESS)
}

/// `zentralink operator --source kubernetes`: the controller, the admission
/// webhook and the leases, with the store as the system of record.
async fn cluster_operator(args: &OperatorArgs, inputs: &Inputs) -> anyhow::Result<ExitCode> {
    use zentralink_operator::cluster;
    let seconds = |flag: &str, v: &str| {
        zentralink_model::policy::parse_duration(v)
            .map(std::time::Duration::from_secs)
            .map_err(|e| anyhow::anyhow!("{flag}: {e}"))
    };
    let requeue = seconds("--full-pass", &args.full_pass)?;
    let lease_duration = seconds("--lease-duration", &args.cluster.lease_duration)?;
    let flags = &args.cluster;
    let identity = flags.identity.clone().unwrap_or_else(|| {
        std::fs::read_to_string("/etc/hostname")
            .map(|h| h.trim().to_owned())
            .ok()
            .filter(|h| !h.is_empty())
            .unwrap_or_else(|| format!("zentralink-{}", std::process::id()))
    });
    let zonefile_root = match &args.options.zonefile_root {
        Some(root) => root.clone(),
        None => std::env::current_dir()?,
    };
    let store = crate::open_store(inputs).await?;
    store.migrate().await?;
    let metrics = zentralink_operator::metrics::Metrics::new();
    let admission = flags
        .admission_listen
        .map(|listen| cluster::admission::AdmissionOptions {
            listen,
            tls: cluster::run::tls_source(
                flags.admission_tls_dir.clone(),
                &flags.admission_service,
                &flags.namespace,
                flags.admission_sans.clone(),
                flags.admission_configs.clone(),
            ),
            operator_user: format!(
                "system:serviceaccount:{}:{}",
                flags.namespace, flags.service_account
            ),
        });
    let concurrency = u16::try_from(args.concurrency.max(1)).unwrap_or(u16::MAX);
    cluster::run::run(
        cluster::run::ClusterOptions {
            listen: args.listen,
            admission,
            namespace: flags.namespace.clone(),
            identity: identity.clone(),
            shards: flags.shards,
            lease_duration,
            controller: cluster::controller::ControllerOptions {
                zonefile_root,
                requeue,
                concurrency,
                identity,
            },
        },
        cluster::run::Inputs {
            store,
            credentials: credentials_value(inputs),
            clock: Arc::new(SystemClock),
            metrics,
            reconcile: Options {
                concurrency: args.concurrency,
                actor: "zentralink-operator".into(),
                execute: true,
            },
        },
        zentralink_operator::server::shutdown_signal(),
    )
    .await?;
    Ok(ExitCode::SUCCESS)
}

/// The source options of `operator` (its source is given with `--source`).
#[derive(Debug, Clone, Args)]
pub struct SourceOptions {
    #[arg(long = "ref", value_name = "REF", default_value = "main")]
    pub git_ref: String,
    #[arg(long, value_name = "DIR")]
    pub path: Option<String>,
    #[arg(long, value_name = "NAME")]
    pub git_token_env: Option<String>,
    #[arg(long, value_name = "FILE")]
    pub ssh_key: Option<PathBuf>,
    #[arg(long, value_name = "FILE")]
    pub known_hosts: Option<PathBuf>,
    #[arg(long, value_name = "DIR")]
    pub zonefile_root: Option<PathBuf>,
    #[arg(long, value_name = "DIR", default_value = ".zentralink/state")]
    pub state_dir: PathBuf,
    #[arg(long)]
    pub requester: Option<String>,
}

/// `zentralink status`.
#[derive(Debug, Args)]
pub struct StatusArgs {
    #[arg(long, value_enum, default_value_t = OutputFormat::Text)]
    pub format: OutputFormat,
}

#[derive(Debug, serde::Serialize)]
#[serde(rename_all = "camelCase")]
struct ZoneStatus {
    zone: String,
    tenant: String,
    object: String,
    provider: Option<String>,
    provider_ready: Option<bool>,
    live_writes: Option<bool>,
    revision: Option<String>,
    applied_at: Option<String>,
    outcome: Option<String>,
    plan_changes: i32,
    drift: Vec<String>,
    message: Option<String>,
    pending: Vec<PendingStatus>,
}

#[derive(Debug, serde::Serialize)]
#[serde(rename_all = "camelCase")]
struct PendingStatus {
    name: String,
    state: String,
    digest: String,
    requester: String,
    reason: Option<String>,
    expires_at: String,
    approvals: usize,
    /// Every signed decision judged so far, accepted or refused, and why.
    judged: Vec<JudgedStatus>,
}

#[derive(Debug, serde::Serialize)]
#[serde(rename_all = "camelCase")]
struct JudgedStatus {
    approver: String,
    decision: String,
    accepted: bool,
    refusal: Option<String>,
    verification: String,
    judged_at: String,
}

/// A waiting request as `status` shows it: its approvals so far and every judgment.
async fn pending_status(
    store: &zentralink_store::Store,
    r: &zentralink_store::changes::ChangeRequestRecord,
) -> anyhow::Result<PendingStatus> {
    let judged: Vec<JudgedStatus> = store
        .approvals(r.tenant_id, r.id)
        .await?
        .into_iter()
        .map(|a| JudgedStatus {
            approver: a.approver,
            decision: a.decision,
            accepted: a.accepted,
            refusal: a.refusal,
            verification: a.verification,
            judged_at: a.created_at.to_rfc3339(),
        })
        .collect();
    Ok(PendingStatus {
        name: r.name.clone(),
        state: r.state.clone(),
        digest: r.plan_digest.clone(),
        requester: r.requester.clone(),
        reason: r.reason.clone(),
        expires_at: r.expires_at.to_rfc3339(),
        approvals: judged.iter().filter(|j| j.accepted).count(),
        judged,
    })
}

fn print_pending(p: &PendingStatus, label: &str) -> anyhow::Result<()> {
    outln!(
        "    {label} {} ({}): {} approval(s) so far; requested by {}; expires {}{}",
        p.name,
        p.state,
        p.approvals,
        p.requester,
        p.expires_at,
        p.reason
            .as_deref()
            .map(|r| format!("; gated: {r}"))
            .unwrap_or_default()
    );
    for j in &p.judged {
        let verdict = match (&j.refusal, j.accepted) {
            (_, true) => "accepted".to_owned(),
            (Some(code), false) => format!("REFUSED ({code})"),
            (None, false) => "REFUSED".to_owned(),
        };
        outln!(
            "        {} by {} {verdict}: {}",
            j.decision,
            j.approver,
            j.verification
        );
    }
    Ok(())
}

/// Per zone: revision applied, last decision, plan size, waiting requests, drift, provider readiness.
pub async fn status(args: &StatusArgs, inputs: &Inputs) -> anyhow::Result<ExitCode> {
    let store = crate::open_store(inputs).await?;
    store.migrate().await?;
    let sources = store.source_states().await?;
    let zones = store.all_zones().await?;
    let states: std::collections::HashMap<_, _> = store
        .all_zone_states()
        .await?
        .into_iter()
        .map(|s| (s.zone_id, s))
        .collect();
    let open = store.all_open_change_requests().await?;
    let mut out = Vec::new();
    for z in &zones {
        let tenant = store.tenant(z.tenant_id).await?;
        let connection = match z.connection_id {
            Some(c) => Some(store.connection(z.tenant_id, c).await?),
            None => None,
        };
        let state = states.get(&z.id);
        let mut pending = Vec::new();
        for r in open.iter().filter(|r| r.zone_id == Some(z.id)) {
            pending.push(pending_status(&store, r).await?);
        }
        out.push(ZoneStatus {
            zone: z.zone_name.clone(),
            tenant: tenant.slug,
            object: format!("{}/{}", z.namespace, z.name),
            provider: connection
                .as_ref()
                .map(|c| format!("{}/{} ({})", c.namespace, c.name, c.provider_type)),
            provider_ready: connection.as_ref().and_then(|c| c.last_test_ok),
            live_writes: connection.as_ref().map(|c| {
                c.mode == "Live"
                    && c.acknowledge_live_writes
                    && c.last_test_ok == Some(true)
                    && c.last_probe_ok == Some(true)
            }),
            revision: state.and_then(|s| s.revision.clone()),
            applied_at: state.and_then(|s| s.applied_at.map(|t| t.to_rfc3339())),
            outcome: state.and_then(|s| s.outcome.clone()),
            plan_changes: state.map_or(0, |s| s.plan_changes),
            drift: state.map(|s| s.drift_keys()).unwrap_or_default(),
            message: state.and_then(|s| s.message.clone()),
            pending,
        });
    }
    // Configuration change requests (a tenant's Tenant, TenantPolicy or
    // connections changed) belong to the tenant, not to a zone.
    let mut config_requests = Vec::new();
    for r in open.iter().filter(|r| r.kind == "config") {
        let tenant = store.tenant(r.tenant_id).await?;
        config_requests.push((tenant.slug, pending_status(&store, r).await?));
    }
    if let OutputFormat::Json = args.format {
        let config: Vec<serde_json::Value> = config_requests
            .iter()
            .map(|(tenant, p)| serde_json::json!({"tenant": tenant, "request": p}))
            .collect();
        let sources: Vec<serde_json::Value> = sources
            .iter()
            .map(|s| {
                serde_json::json!({
                    "source": s.source,
                    "goodRevision": s.good_revision,
                    "goodAt": s.good_at.map(|t| t.to_rfc3339()),
                    "lastRevision": s.last_revision,
                    "lastError": s.last_error,
                    "lastPassAt": s.last_pass_at.map(|t| t.to_rfc3339()),
                    "lastPassOk": s.last_pass_ok,
                })
            })
            .collect();
        outln!(
            "{}",
            serde_json::to_string_pretty(
                &serde_json::json!({"sources": sources, "configRequests": config, "zones": out})
            )?
        );
        return Ok(ExitCode::SUCCESS);
    }
    for s in &sources {
        outln!("source {}", s.source);
        outln!(
            "    revision in force: {}{}",
            s.good_revision.as_deref().unwrap_or("none yet"),
            s.good_at
                .map(|t| format!(" (since {})", t.to_rfc3339()))
                .unwrap_or_default()
        );
        if let Some(at) = s.last_pass_at {
            outln!(
                "    last pass: {} ({})",
                at.to_rfc3339(),
                if s.last_pass_ok == Some(true) {
                    "every zone reconciled"
                } else {
                    "with errors"
                }
            );
        }
        if let Some(e) = &s.last_error {
            outln!(
                "    last error ({}): {e}",
                s.last_revision.as_deref().unwrap_or("no revision read")
            );
        }
    }
    for (tenant, p) in &config_requests {
        outln!("tenant {tenant}: its configuration waits for approval");
        print_pending(p, "configuration change request")?;
    }
    for z in &out {
        outln!(
            "{} ({}, tenant {}): {}",
            z.zone,
            z.object,
            z.tenant,
            z.outcome.as_deref().unwrap_or("not reconciled yet")
        );
        if let Some(p) = &z.provider {
            outln!(
                "    provider {p}: {}, live writes {}",
                match z.provider_ready {
                    Some(true) => "ready",
                    Some(false) => "NOT ready",
                    None => "not tested",
                },
                if z.live_writes == Some(true) {
                    "enabled"
                } else {
                    "disabled"
                }
            );
        }
        outln!(
            "    applied revision: {}{}",
            z.revision.as_deref().unwrap_or("none"),
            z.applied_at
                .as_deref()
                .map(|t| format!(" at {t}"))
                .unwrap_or_default()
        );
        if z.plan_changes > 0 {
            outln!("    plan: {} operation(s)", z.plan_changes);
        }
        for p in &z.pending {
            print_pending(p, "change request")?;
        }
        if !z.drift.is_empty() {
            outln!("    drift: {}", z.drift.join(", "));
        }
        if let Some(m) = &z.message {
            outln!("    {m}");
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `zentralink history ZONE`.
#[derive(Debug, Args)]
pub struct HistoryArgs {
    /// The zone, e.g. acme.example.
    pub zone: String,
    /// Only this owner name (relative to the zone, or absolute).
    #[arg(long)]
    pub name: Option<String>,
    /// Only this record type.
    #[arg(long = "type", value_name = "TYPE")]
    pub record_type: Option<String>,
    #[arg(long, default_value_t = 100)]
    pub limit: i64,
    #[arg(long, value_enum, default_value_t = OutputFormat::Text)]
    pub format: OutputFormat,
}

async fn zone_record(store: &Store, zone: &str) -> anyhow::Result<ZoneRecord> {
    let name = zentralink_model::ZoneName::parse(zone).map_err(|e| anyhow::anyhow!("{e}"))?;
    store
        .zone_by_zone_name(&name.to_string())
        .await
        .map_err(|e| match e {
            zentralink_store::StoreError::NotFound => anyhow::anyhow!(
                "zone {name} is not managed here (no reconcile pass has registered it)"
            ),
            other => other.into(),
        })
}

fn set_text(v: &Option<serde_json::Value>) -> String {
    match v {
        None => "(none)".into(),
        Some(v) => {
            let ttl = v["ttl"].as_u64().unwrap_or(0);
            let values: Vec<&str> = v["values"]
                .as_array()
                .map(|a| a.iter().filter_map(|x| x.as_str()).collect())
                .unwrap_or_default();
            format!("ttl {ttl} [{}]", values.join(", "))
        }
    }
}

/// The per-record history: who, when, which revision or request, before → after.
pub async fn history(args: &HistoryArgs, inputs: &Inputs) -> anyhow::Result<ExitCode> {
    let store = crate::open_store(inputs).await?;
    let zone = zone_record(&store, &args.zone).await?;
    let origin =
        zentralink_model::ZoneName::parse(&zone.zone_name).map_err(|e| anyhow::anyhow!("{e}"))?;
    let name = args
        .name
        .as_deref()
        .map(|n| origin.owner(n).map(|n| n.to_ascii()))
        .transpose()
        .map_err(|e| anyhow::anyhow!("--name: {e}"))?;
    let rtype = args
        .record_type
        .as_deref()
        .map(|t| {
            zentralink_model::record::parse_record_type(t).map(zentralink_model::record::type_name)
        })
        .transpose()
        .map_err(|e| anyhow::anyhow!("--type: {e}"))?;
    let rows = store
        .history(
            zone.tenant_id,
            zone.id,
            name.as_deref(),
            rtype.as_deref(),
            args.limit,
        )
        .await?;
    if let OutputFormat::Json = args.format {
        let rows: Vec<serde_json::Value> = rows
            .iter()
            .map(|r| {
                serde_json::json!({
                    "at": r.created_at.to_rfc3339(),
                    "op": r.op, "name": r.name, "type": r.record_type,
                    "before": r.before, "after": r.after,
                    "outcome": r.outcome, "error": r.error,
                    "revision": r.revision, "changeRequest": r.request,
                    "requester": r.requester, "digest": r.plan_digest,
                })
            })
            .collect();
        outln!("{}", serde_json::to_string_pretty(&rows)?);
        return Ok(ExitCode::SUCCESS);
    }
    if rows.is_empty() {
        outln!("no recorded changes for {}", zone.zone_name);
    }
    for r in &rows {
        outln!(
            "{} {} {} {} {}{}",
            r.created_at.format("%Y-%m-%d %H:%M:%S UTC"),
            r.op,
            r.name,
            r.record_type,
            r.outcome,
            r.error
                .as_deref()
                .map(|e| format!(" ({e})"))
                .unwrap_or_default()
        );
        outln!(
            "    by {}; {}{}",
            r.requester.as_deref().unwrap_or("unknown"),
            r.revision.as_deref().unwrap_or("no revision"),
            r.request
                .as_deref()
                .map(|c| format!(", change request {c}"))
                .unwrap_or_default()
        );
        outln!("    {} -> {}", set_text(&r.before), set_text(&r.after));
    }
    Ok(ExitCode::SUCCESS)
}

/// `zentralink snapshot ...`.
#[derive(Debug, Subcommand)]
pub enum SnapshotCommand {
    /// Take a snapshot of a zone as its provider holds it now.
    Take {
        zone: String,
        /// Why (kept with the snapshot).
        #[arg(long)]
        reason: Option<String>,
    },
    /// List a zone's snapshots, newest first.
    List { zone: String },
    /// Print a snapshot (digest checked) as a zone file or YAML.
    Show {
        id: String,
        #[arg(long, value_enum, default_value_t = ShowFormat::Zonefile)]
        format: ShowFormat,
    },
    /// The per-record diff from snapshot A to snapshot B, or to the live zone.
    Diff {
        a: String,
        /// Another snapshot; without it, the live zone.
        b: Option<String>,
    },
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum ShowFormat {
    Zonefile,
    Yaml,
}

fn snapshot_id(s: &str) -> anyhow::Result<SnapshotId> {
    s.parse().map_err(|_| {
        anyhow::anyhow!("{s:?} is not a snapshot id (see `zentralink snapshot list ZONE`)")
    })
}

/// Reads a managed zone from its provider, through the connection the store keeps.
async fn read_live(
    store: &Store,
    zone: &ZoneRecord,
    inputs: &Inputs,
) -> anyhow::Result<(ZoneContent, String)> {
    let connection = zone
        .connection_id
        .ok_or_else(|| anyhow::anyhow!("zone {} has no connection", zone.zone_name))?;
    let record = store.connection(zone.tenant_id, connection).await?;
    let tenant = store.tenant(zone.tenant_id).await?;
    let entry =
        connection_from_record(&tenant.slug, &record).map_err(|e| anyhow::anyhow!("{e}"))?;
    let provider = connect_with(&entry, &inputs.sources())?;
    let origin =
        zentralink_model::ZoneName::parse(&zone.zone_name).map_err(|e| anyhow::anyhow!("{e}"))?;
    let content = provider
        .read_zone(&origin)
        .await?
        .unwrap_or_else(|| ZoneContent::new(origin));
    Ok((content, record.provider_type))
}

pub async fn snapshot(command: &SnapshotCommand, inputs: &Inputs) -> anyhow::Result<ExitCode> {
    let store = crate::open_store(inputs).await?;
    store.migrate().await?;
    match command {
        SnapshotCommand::Take { zone, reason } => {
            let zone = zone_record(&store, zone).await?;
            let (content, provider) = read_live(&store, &zone, inputs).await?;
            let taken = store
                .save_requested_snapshot(
                    zone.tenant_id,
                    zone.id,
                    &provider,
                    &content,
                    None,
                    reason.as_deref(),
                )
                .await?;
            store
                .audit(
                    zentralink_store::audit::AuditEvent::new(
                        Some(zone.tenant_id),
                        zentralink_store::audit::Actor::Operator("zentralink-cli".into()),
                        "snapshot.taken",
                    )
                    .target("DnsZone", format!("{}/{}", zone.namespace, zone.name))
                    .meta("snapshot", taken.id.to_string())
                    .meta("digest", taken.digest.clone())
                    .meta("recordSets", i64::from(taken.record_sets)),
                )
                .await?;
            outln!(
                "snapshot {} of {}: {} record sets, digest {}",
                taken.id,
                zone.zone_name,
                taken.record_sets,
                taken.digest
            );
        }
        SnapshotCommand::List { zone } => {
            let zone = zone_record(&store, zone).await?;
            for s in store.snapshots(zone.tenant_id, zone.id).await? {
                outln!(
                    "{}  {}  {:<11}  {:>6} record sets  {}",
                    s.id,
                    s.created_at.format("%Y-%m-%d %H:%M:%S UTC"),
                    s.reason,
                    s.record_sets,
                    s.digest
                );
            }
        }
        SnapshotCommand::Show { id, format } => {
            let record = store.snapshot_any_tenant(snapshot_id(id)?).await?;
            let content = store.snapshot_content(record.tenant_id, record.id).await?;
            match format {
                ShowFormat::Zonefile => {
                    let text = zentralink_providers::zonefile::render_zone_file(&content);
                    std::io::stdout()
                        .lock()
                        .write_all(text.as_bytes())
                        .context("cannot write to standard output")?;
                }
                ShowFormat::Yaml => {
                    let doc = serde_json::json!({
                        "snapshot": record.id.to_string(),
                        "zone": record.zone_name,
                        "takenAt": record.created_at.to_rfc3339(),
                        "reason": record.reason,
                        "digest": record.digest,
                        "recordSets": content.to_stored(),
                    });
                    outln!("{}", serde_yaml::to_string(&doc)?.trim_end());
                }
            }
        }
        SnapshotCommand::Diff { a, b } => {
            let first = store.snapshot_any_tenant(snapshot_id(a)?).await?;
            let from = store.snapshot_content(first.tenant_id, first.id).await?;
            let (to, label) = match b {
                Some(b) => {
                    let second = store.snapshot_any_tenant(snapshot_id(b)?).await?;
                    if second.tenant_id != first.tenant_id || second.zone_id != first.zone_id {
                        anyhow::bail!("the two snapshots are of different zones");
                    }
                    (
                        store.snapshot_content(second.tenant_id, second.id).await?,
                        format!("snapshot {}", second.id),
                    )
                }
                None => {
                    let zone = store.zone(first.tenant_id, first.zone_id).await?;
                    (
                        read_live(&store, &zone, inputs).await?.0,
                        "the live zone".to_owned(),
                    )
                }
            };
            let plan = plan_zone(
                &to,
                &from,
                &PlanScope {
                    ownership: Ownership::Full,
                    previously_owned: None,
                },
            );
            outln!(
                "from snapshot {} to {label}: {} change(s)",
                first.id,
                plan.changes.len()
            );
            let classified = zentralink_model::policy::classify(
                "",
                plan,
                &zentralink_model::policy::GatePolicy {
                    record_types: Default::default(),
                    deletions: false,
                    bulk_change_threshold: None,
                    rollbacks: false,
                },
                zentralink_model::policy::PlanOrigin::Declared,
            );
            print_changes(&classified)?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Prints a plan's operations with their value diffs (the `plan` text form).
fn print_changes(plan: &zentralink_model::policy::ClassifiedPlan) -> anyhow::Result<()> {
    for c in &plan.plan.changes {
        let sym = match c.op {
            zentralink_model::ChangeOp::Create => '+',
            zentralink_model::ChangeOp::Update => '~',
            zentralink_model::ChangeOp::Delete => '-',
        };
        outln!("  {sym} {}", c.key);
        let old = c.before.as_ref().map(|s| s.texts()).unwrap_or_default();
        let new = c.after.as_ref().map(|s| s.texts()).unwrap_or_default();
        if let (Some(b), Some(a)) = (&c.before, &c.after)
            && b.ttl != a.ttl
        {
            outln!("      ttl {} -> {}", b.ttl, a.ttl);
        }
        for v in old.iter().filter(|v| !new.contains(v)) {
            outln!("      - {v}");
        }
        for v in new.iter().filter(|v| !old.contains(v)) {
            outln!("      + {v}");
        }
    }
    Ok(())
}

/// `zentralink rollback ZONE --to SNAPSHOT`.
#[derive(Debug, Args)]
pub struct RollbackArgs {
    pub zone: String,
    /// The snapshot to return to (`zentralink snapshot list ZONE`).
    #[arg(long = "to", value_name = "SNAPSHOT")]
    pub to: String,
    /// Why (kept with the change request).
    #[arg(long)]
    pub reason: Option<String>,
    /// Who asks (default: the user running the command). With --key, the
    /// key's owner among the tenant's approvers asks, and cannot approve it.
    #[arg(long, conflicts_with = "key")]
    pub requester: Option<String>,
    /// Sign the request with your SSH key (namespace zentralink-request):
    /// you are then its requester, known for certain.
    #[arg(long, value_name = "FILE")]
    pub key: Option<PathBuf>,
    /// The environment variable holding the key's passphrase.
    #[arg(long, value_name = "NAME")]
    pub passphrase_env: Option<String>,
}

/// Opens a rollback change request: its plan is the per-record diff from the
/// live zone to the snapshot; the reconciler gates and executes it like any other.
pub async fn rollback(args: &RollbackArgs, inputs: &Inputs) -> anyhow::Result<ExitCode> {
    let store = crate::open_store(inputs).await?;
    store.migrate().await?;
    let zone = zone_record(&store, &args.zone).await?;
    let snapshot = snapshot_id(&args.to)?;
    let record = store
        .snapshot(zone.tenant_id, snapshot)
        .await
        .map_err(|e| match e {
            zentralink_store::StoreError::NotFound => {
                anyhow::anyhow!(
                    "snapshot {snapshot} is not a snapshot of {}",
                    zone.zone_name
                )
            }
            other => other.into(),
        })?;
    if record.zone_id != zone.id {
        anyhow::bail!(
            "snapshot {snapshot} is not a snapshot of {}",
            zone.zone_name
        );
    }
    let target = store.snapshot_content(zone.tenant_id, snapshot).await?;
    let (actual, _) = read_live(&store, &zone, inputs).await?;
    let tenant = store.tenant(zone.tenant_id).await?;
    // Gated and expiring as the tenant's policy in force says (the operator
    // judges it by the same policy when it decides).
    let policy = zentralink_operator::guard::policy_in_force(&store, zone.tenant_id)
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?
        .unwrap_or_default();
    let plan = rollback_plan(&tenant.slug, &target, &actual, &policy);
    if plan.plan.is_empty() {
        outln!(
            "{} already holds the content of snapshot {snapshot} (digest {}); nothing to roll back",
            zone.zone_name,
            zone_digest(&target)
        );
        return Ok(ExitCode::SUCCESS);
    }
    let name = format!("{}-rollback-{}", zone.name, plan.digest.short(12));
    let (requester, signature) = match &args.key {
        Some(key) => {
            let signed = sign_rollback(
                &store,
                &zone,
                &tenant.slug,
                &args.to,
                &plan.digest,
                key,
                args.passphrase_env.as_deref(),
            )
            .await?;
            (signed.0, Some(signed.1))
        }
        None => (
            args.requester.clone().unwrap_or_else(|| {
                std::env::var("USER")
                    .map(|u| format!("{u} (local)"))
                    .unwrap_or_else(|_| "local user".into())
            }),
            None,
        ),
    };
    let stored = serde_json::to_value(plan.plan.to_stored(None))?;
    let reason = args
        .reason
        .clone()
        .unwrap_or_else(|| format!("roll back to snapshot {snapshot}"));
    let id = store
        .create_change_request(
            zone.tenant_id,
            &NewChangeRequest {
                zone: Some(zone.id),
                name: &name,
                plan: stored,
                plan_digest: &plan.digest.to_string(),
                requester: &requester,
                reason: Some(&reason),
                rollback_to: Some(snapshot),
                expires_at: zentralink_operator::reconcile::expires(
                    chrono::Utc::now(),
                    policy.expires_after_secs,
                ),
                kind: RequestKind::Rollback,
                revision: None,
            },
        )
        .await?;
    if let Some(signature) = &signature {
        store
            .set_requester_signature(zone.tenant_id, id, signature)
            .await?;
    }
    store
        .audit(
            zentralink_store::audit::AuditEvent::new(
                Some(zone.tenant_id),
                zentralink_store::audit::Actor::Operator(requester.clone()),
                "change_request.opened",
            )
            .target("DnsChangeRequest", format!("{}/{}", zone.namespace, name))
            .meta("zone", zone.zone_name.clone())
            .meta("requestId", id.to_string())
            .meta("rollbackTo", snapshot.to_string())
            .meta("signedByRequester", signature.is_some())
            .meta("digest", plan.digest.to_string())
            .meta("operations", plan.plan.changes.len()),
        )
        .await?;
    outln!(
        "change request {name}: roll {} back to snapshot {snapshot} ({} operation(s), digest {})",
        zone.zone_name,
        plan.plan.changes.len(),
        plan.digest
    );
    print_changes(&plan)?;
    outln!("it is gated like any change: the next reconcile pass executes it once it may");
    Ok(ExitCode::SUCCESS)
}

/// `zentralink approve`: fetches the change request, its plan and the
/// tenant's policy in force from the store, shows the plan, checks the
/// digest, and signs (or prints the message to sign); `--submit` stores the
/// signed Approval for the next pass to judge.
pub async fn approve(
    args: &crate::approve::ApproveArgs,
    inputs: &Inputs,
) -> anyhow::Result<ExitCode> {
    use crate::approve::RequestPlan;
    let store = crate::open_store(inputs).await?;
    store.migrate().await?;
    let mut found = store.change_requests_named(&args.change_request).await?;
    let record = match found.len() {
        0 => anyhow::bail!(
            "no change request {} (zentralink status lists the ones waiting)",
            args.change_request
        ),
        1 => found.remove(0),
        n => anyhow::bail!(
            "{n} tenants have a change request named {}; it cannot be told which one is meant",
            args.change_request
        ),
    };
    let tenant = store.tenant(record.tenant_id).await?;
    let (namespace, plan) = if record.kind == "config" {
        let config: zentralink_model::config::StoredConfigPlan =
            serde_json::from_value(record.plan.clone()).map_err(|e| {
                anyhow::anyhow!("the stored plan of {} does not read: {e}", record.name)
            })?;
        (config.namespace.clone(), RequestPlan::Config(config))
    } else {
        let zone_id = record
            .zone_id
            .ok_or_else(|| anyhow::anyhow!("change request {} has no zone", record.name))?;
        let zone = store.zone(record.tenant_id, zone_id).await?;
        let stored: zentralink_model::plan::StoredPlan =
            serde_json::from_value(record.plan.clone()).map_err(|e| {
                anyhow::anyhow!("the stored plan of {} does not read: {e}", record.name)
            })?;
        (zone.namespace, RequestPlan::Zone(stored))
    };
    let facts = zentralink_operator::approvals::facts(&tenant.slug, &namespace, &record)
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let policy = zentralink_operator::guard::policy_in_force(&store, record.tenant_id)
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?
        .ok_or_else(|| {
            anyhow::anyhow!(
                "tenant {} has no configuration in force yet: its approvers are known after its first reconcile pass",
                tenant.slug
            )
        })?;
    let out = crate::approve::approve(
        args,
        &facts,
        &plan,
        &policy,
        k8s_openapi::jiff::Timestamp::now(),
        &|name| std::env::var(name).ok(),
    )?;
    errln!("{}", out.plan);
    if args.submit {
        let approval = out
            .approval
            .ok_or_else(|| anyhow::anyhow!("--submit needs a signature (not --print-message)"))?;
        let fingerprint = zentralink_operator::approvals::document_fingerprint(
            &zentralink_model::approval::ApprovalInput::from_spec(
                &tenant.slug,
                &namespace,
                &approval.spec,
            ),
        );
        let document = serde_json::to_value(&approval)?;
        store
            .submit_approval(record.tenant_id, record.id, &document, &fingerprint)
            .await
            .map_err(|e| match e {
                zentralink_store::StoreError::Conflict(m) => anyhow::anyhow!("{m}"),
                other => other.into(),
            })?;
        store
            .audit(
                zentralink_store::audit::AuditEvent::new(
                    Some(record.tenant_id),
                    zentralink_store::audit::Actor::Operator(approval.spec.approver.clone()),
                    "approval.submitted",
                )
                .target("DnsChangeRequest", format!("{namespace}/{}", record.name))
                .meta("document", fingerprint)
                .meta("decision", format!("{:?}", approval.spec.decision)),
            )
            .await?;
        outln!(
            "submitted: the next reconcile pass judges the {} of {} on {}",
            if approval.spec.decision == zentralink_model::resources::Decision::Reject {
                "rejection"
            } else {
                "approval"
            },
            approval.spec.approver,
            record.name
        );
        return Ok(ExitCode::SUCCESS);
    }
    std::io::stdout()
        .lock()
        .write_all(&out.stdout)
        .context("cannot write to standard output")?;
    Ok(ExitCode::SUCCESS)
}

/// Signs a rollback request with the requester's key: the key must belong to
/// an approver of the tenant (in force), who becomes the requester.
async fn sign_rollback(
    store: &Store,
    zone: &ZoneRecord,
    tenant: &str,
    snapshot: &str,
    digest: &zentralink_model::digest::PlanDigest,
    key: &std::path::Path,
    passphrase_env: Option<&str>,
) -> anyhow::Result<(String, String)> {
    use zentralink_model::approval::{REQUEST_NAMESPACE, RequestMessage, sign, truncate_to_second};
    let policy = zentralink_operator::guard::policy_in_force(store, zone.tenant_id)
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?
        .ok_or_else(|| anyhow::anyhow!("tenant {tenant} has no configuration in force yet"))?;
    let file = crate::approve::KeyFile::read(key)?;
    let owner = policy
        .approvers
        .iter()
        .find(|a| {
            a.public_keys.iter().any(|line| {
                zentralink_model::catalog::parse_ssh_public_key(line)
                    .is_ok_and(|k| k.key_data() == file.public.key_data())
            })
        })
        .map(|a| a.name.clone())
        .ok_or_else(|| {
            anyhow::anyhow!(
                "no approver of tenant {tenant} lists this key; the requester of a signed rollback is known by their key"
            )
        })?;
    let message = RequestMessage::new(
        tenant,
        &zone.namespace,
        &zone.name,
        snapshot,
        *digest,
        &owner,
        truncate_to_second(k8s_openapi::jiff::Timestamp::now()),
    )
    .map_err(|e| anyhow::anyhow!("{e}"))?;
    let private = file.private_for_signing(key, passphrase_env, &|n| std::env::var(n).ok())?;
    let signature = sign(REQUEST_NAMESPACE, &message.to_bytes(), &private)
        .map_err(|e| anyhow::anyhow!("cannot sign with {}: {e}", key.display()))?;
    Ok((owner, signature))
}
