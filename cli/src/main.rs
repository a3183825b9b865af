//! The `zentralink` binary: argument parsing over the ZentraLink libraries.
//! Does I/O (files, providers, terminal).

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand, ValueEnum};
use zentralink_model::report::{render_markdown, render_text};
use zentralink_model::secrets::{EncryptionKey, Keyring, SecretBinding, SecretError, SecretString};
use zentralink_operator::planner::plan_all_prefetched;
use zentralink_operator::prefetch::Prefetch;
use zentralink_operator::source::directory::load_catalog;
use zentralink_providers::connect_with;
use zentralink_providers::credentials::{CredentialEnv, CredentialSources};
use zentralink_providers::liveness::check;
use zentralink_store::{ConnectRetry, Store};

/// Writes a line to standard output; a closed or full output is an error
/// (exit 1 with a message), never a panic.
macro_rules! outln {
    ($($arg:tt)*) => {
        writeln!(std::io::stdout().lock(), $($arg)*).context("cannot write to standard output")?
    };
}

/// Writes a line to standard error, ignoring a closed standard error.
macro_rules! errln {
    ($($arg:tt)*) => {{
        let _ = writeln!(std::io::stderr().lock(), $($arg)*);
    }};
}

mod approve;
mod git;
mod ops;
mod web;

/// mimalloc: plans and validation of large zones allocate many small values;
/// it is about twice as fast as the system allocator there (docs/benchmarks.md).
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// ZentraLink: a GitOps control plane for DNS.
#[derive(Debug, Parser)]
#[command(name = "zentralink", version, about, propagate_version = true)]
struct Cli {
    /// Format of the log lines written to standard error.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text)]
    log_format: LogFormat,
    /// An environment variable that connections may name in `credentials.env`,
    /// besides those named ZENTRALINK_CREDENTIAL_*. Repeat it, or separate names
    /// with commas. The process's own variables (PLATFORM_ENCRYPTION_KEY,
    /// DATABASE_URL, CRON_TOKEN, ...) can never be allowed.
    #[arg(
        long = "allow-credential-env",
        global = true,
        value_name = "NAME",
        value_delimiter = ',',
        env = "ZENTRALINK_ALLOW_CREDENTIAL_ENV"
    )]
    allow_credential_env: Vec<String>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum LogFormat {
    /// Lines for people.
    Text,
    /// One JSON object per line, for log collectors.
    Json,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Validate manifests (files or directories, read recursively). Exit 0 when all are valid, 1 otherwise.
    Validate {
        /// Files or directories of YAML manifests.
        #[arg(required = true)]
        paths: Vec<PathBuf>,
    },
    /// Validate, read each zone from its provider (read-only) and print the plan.
    Plan {
        /// Files or directories of YAML manifests.
        #[arg(required = true)]
        paths: Vec<PathBuf>,
        /// Output format.
        #[arg(long, value_enum, default_value_t = Format::Text)]
        format: Format,
        /// Colour the text output.
        #[arg(long, value_enum, default_value_t = Color::Auto)]
        color: Color,
        /// Exit 0 when no zone has changes, 2 when there are changes that can
        /// apply, 3 when some wait for approval.
        #[arg(long)]
        exit_code: bool,
        /// Who asks for the change (the pull request's author, `Name <email>`
        /// or an approver's name): never listed among those who may approve it.
        #[arg(long)]
        requester: Option<String>,
    },
    /// Check provider connections: the connection test and, for connections meant to write, the write probe.
    Provider {
        #[command(subcommand)]
        command: ProviderCommand,
    },
    /// Write a DnsZone manifest of a live zone, so it comes under management without a diff.
    Import {
        /// Files or directories of YAML manifests that declare the connection.
        #[arg(required = true)]
        paths: Vec<PathBuf>,
        /// The ProviderConnection, as NAMESPACE/NAME.
        #[arg(long)]
        connection: String,
        /// The zone to import, e.g. acme.example.
        #[arg(long)]
        zone: String,
        /// Name of the DnsZone object (default: the zone name with dots as dashes).
        #[arg(long)]
        name: Option<String>,
        /// Declare the apex NS set too (otherwise the provider keeps managing it).
        #[arg(long)]
        include_apex_ns: bool,
        /// Write to this file instead of standard output.
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Apply the database migrations in DATABASE_URL (also done at start-up by the operator and web service).
    Migrate,
    /// Encrypt values for git-tracked YAML, generate keys, re-encrypt stored secrets.
    Secrets {
        #[command(subcommand)]
        command: SecretsCommand,
    },
    /// Run one reconcile pass over a source and exit: 0 when every zone
    /// converged or waits for approval, 1 on errors, 2 on bad usage.
    Reconcile(ops::ReconcileArgs),
    /// Reconcile continuously: read the source at an interval and on a
    /// verified git webhook, reconcile what changed, every zone at the full-pass
    /// interval; serve /metrics, /healthz, /readyz. Stops cleanly on SIGTERM.
    Operator(Box<ops::OperatorArgs>),
    /// Per zone: the revision applied, the last pass, the plan size, change
    /// requests waiting and what for, drift, provider readiness.
    Status(ops::StatusArgs),
    /// A zone's per-record history: who, when, which revision or request, before and after.
    History(ops::HistoryArgs),
    /// Take, list, show and compare zone snapshots.
    Snapshot {
        #[command(subcommand)]
        command: ops::SnapshotCommand,
    },
    /// Ask to roll a zone back to a snapshot: a change request, gated like any other.
    Rollback(ops::RollbackArgs),
    /// Show a change request's plan, check its digest and sign a decision on it
    /// (prints a signed Approval to apply or commit; --submit stores it).
    Approve(approve::ApproveArgs),
    /// Check the signatures of Approval documents (no store). Exit 0 when all are valid, 1 otherwise.
    Verify(approve::VerifyArgs),
    /// Serve the web service (accounts, 2FA, the DNS dashboard); `web create-owner` makes a tenant's first owner.
    Web(web::WebArgs),
    /// Print the CustomResourceDefinitions, or write one file per CRD into a directory.
    Crds {
        /// Write `<name>.yaml` files into this directory instead of printing.
        #[arg(long)]
        out: Option<PathBuf>,
    },
}

#[derive(Debug, Subcommand)]
enum ProviderCommand {
    /// Run the connection test, and the write probe where the connection asks for live writes.
    /// Exit 0 when every check passed, 1 otherwise. With DATABASE_URL set, results are recorded.
    Test {
        /// Files or directories of YAML manifests.
        #[arg(required = true)]
        paths: Vec<PathBuf>,
        /// Only this connection, as NAMESPACE/NAME (default: every connection).
        #[arg(long)]
        connection: Option<String>,
    },
}

#[derive(Debug, Subcommand)]
enum SecretsCommand {
    /// Encrypt a connection's credential read from standard input (or --value) with
    /// PLATFORM_ENCRYPTION_KEY; prints enc:v1:... for `credentials.value`. The value
    /// is bound to the tenant and connection: it decrypts nowhere else.
    Encrypt {
        /// The tenant the connection belongs to (its Tenant object's name).
        #[arg(long)]
        tenant: String,
        /// The ProviderConnection's namespace.
        #[arg(long)]
        namespace: String,
        /// The ProviderConnection's name.
        #[arg(long)]
        connection: String,
        /// The value; prefer standard input, which keeps it out of the shell history.
        #[arg(long)]
        value: Option<String>,
    },
    /// Re-encrypt the enc:v1 credentials in manifest files under PLATFORM_ENCRYPTION_KEY
    /// (after rotating: the old key in PLATFORM_ENCRYPTION_KEY_PREVIOUS), in place,
    /// each keeping its binding to its connection.
    Rotate {
        /// Files or directories of YAML manifests.
        #[arg(required = true)]
        paths: Vec<PathBuf>,
    },
    /// Print a new random PLATFORM_ENCRYPTION_KEY (32 bytes, base64).
    GenerateKey,
    /// Re-encrypt every stored secret under PLATFORM_ENCRYPTION_KEY (after rotating: the old key in PLATFORM_ENCRYPTION_KEY_PREVIOUS).
    Reencrypt,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum Format {
    Text,
    Markdown,
    Json,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum Color {
    Auto,
    Always,
    Never,
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => return usage(&e),
    };
    init_logging(cli.log_format);
    let inputs = match Inputs::from_process(&cli.allow_credential_env) {
        Ok(i) => i,
        Err(e) => {
            errln!("error: {e:#}");
            return ExitCode::from(2);
        }
    };
    match run(cli.command, &inputs) {
        Ok(code) => code,
        Err(e) => {
            errln!("error: {e:#}");
            ExitCode::from(1)
        }
    }
}

/// Prints help and version to standard output and usage errors to standard
/// error, without panicking when either is closed.
fn usage(e: &clap::Error) -> ExitCode {
    use clap::error::ErrorKind;
    let rendered = e.render().to_string();
    match e.kind() {
        ErrorKind::DisplayHelp | ErrorKind::DisplayVersion => {
            match std::io::stdout().lock().write_all(rendered.as_bytes()) {
                Ok(()) => ExitCode::SUCCESS,
                Err(err) => {
                    errln!("error: cannot write to standard output: {err}");
                    ExitCode::from(1)
                }
            }
        }
        _ => {
            let _ = std::io::stderr().lock().write_all(rendered.as_bytes());
            ExitCode::from(2)
        }
    }
}

/// Logs go to standard error: warnings by default (retries, waits), more with RUST_LOG.
fn init_logging(format: LogFormat) {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("warn"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = match format {
        LogFormat::Text => builder
            .with_ansi(std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none())
            .try_init(),
        LogFormat::Json => builder.json().try_init(),
    };
}

/// What the process takes from its environment, read once, here: the
/// environment variables credentials may come from and the encryption keys.
pub(crate) struct Inputs {
    pub(crate) credential_env: CredentialEnv,
    /// The keyring, or why there is none (not set, or what is wrong with a key).
    pub(crate) keyring: Result<Keyring, SecretError>,
}

impl Inputs {
    fn from_process(allowed: &[String]) -> anyhow::Result<Self> {
        let allowed: Vec<String> = allowed
            .iter()
            .map(|a| a.trim().to_owned())
            .filter(|a| !a.is_empty())
            .collect();
        let credential_env =
            CredentialEnv::new(std::env::vars(), &allowed).map_err(|e| anyhow::anyhow!("{e}"))?;
        let current = std::env::var("PLATFORM_ENCRYPTION_KEY").ok();
        let previous = std::env::var("PLATFORM_ENCRYPTION_KEY_PREVIOUS").ok();
        Ok(Self {
            credential_env,
            keyring: Keyring::from_values(current.as_deref(), previous.as_deref()),
        })
    }

    pub(crate) fn sources(&self) -> CredentialSources<'_> {
        CredentialSources {
            keyring: self.keyring.as_ref().map_err(Clone::clone),
            secrets: None,
            env: &self.credential_env,
        }
    }

    fn keyring(&self) -> anyhow::Result<Keyring> {
        Ok(self.keyring.clone()?)
    }
}

fn run(command: Command, inputs: &Inputs) -> anyhow::Result<ExitCode> {
    match command {
        Command::Validate { paths } => validate(&paths),
        Command::Plan {
            paths,
            format,
            color,
            exit_code,
            requester,
        } => plan(&paths, format, color, exit_code, requester, inputs),
        Command::Crds { out } => crds(out),
        Command::Web(args) => runtime()?.block_on(web::web(&args, inputs)),
        Command::Migrate => runtime()?.block_on(migrate(inputs)),
        Command::Provider {
            command: ProviderCommand::Test { paths, connection },
        } => runtime()?.block_on(provider_test(&paths, connection.as_deref(), inputs)),
        Command::Import {
            paths,
            connection,
            zone,
            name,
            include_apex_ns,
            out,
        } => runtime()?.block_on(import(
            &paths,
            &connection,
            &zone,
            name,
            include_apex_ns,
            out,
            inputs,
        )),
        Command::Secrets { command } => secrets(command, inputs),
        Command::Reconcile(args) => {
            let runtime = runtime()?;
            let prefetch = ops::read_ahead(&args, inputs, runtime.handle());
            let done = runtime.block_on(ops::reconcile(&args, inputs, prefetch));
            // Every write of the pass has been awaited; what may still run
            // is the freeing of what the zones held (on blocking threads),
            // which the process's exit does at once.
            runtime.shutdown_background();
            done
        }
        Command::Operator(args) => runtime()?.block_on(ops::operator(&args, inputs)),
        Command::Status(args) => runtime()?.block_on(ops::status(&args, inputs)),
        Command::History(args) => runtime()?.block_on(ops::history(&args, inputs)),
        Command::Snapshot { command } => runtime()?.block_on(ops::snapshot(&command, inputs)),
        Command::Rollback(args) => runtime()?.block_on(ops::rollback(&args, inputs)),
        Command::Approve(args) => runtime()?.block_on(ops::approve(&args, inputs)),
        Command::Verify(args) => {
            let out = approve::verify(&args)?;
            std::io::stdout()
                .lock()
                .write_all(out.text.as_bytes())
                .context("cannot write to standard output")?;
            Ok(if out.valid {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            })
        }
    }
}

fn load_valid(paths: &[PathBuf]) -> anyhow::Result<zentralink_model::catalog::Catalog> {
    let (catalog, errors) = load_catalog(paths);
    if !errors.is_empty() {
        for e in errors.iter() {
            errln!("{e}");
        }
        anyhow::bail!(
            "{} error(s) in the manifests; fix them first (zentralink validate)",
            errors.len()
        );
    }
    Ok(catalog)
}

fn split_ref(reference: &str) -> anyhow::Result<(&str, &str)> {
    reference
        .split_once('/')
        .ok_or_else(|| anyhow::anyhow!("{reference:?}: write the connection as NAMESPACE/NAME"))
}

async fn provider_test(
    paths: &[PathBuf],
    only: Option<&str>,
    inputs: &Inputs,
) -> anyhow::Result<ExitCode> {
    let catalog = load_valid(paths)?;
    let only = only.map(split_ref).transpose()?;
    let store = match std::env::var("DATABASE_URL") {
        Ok(_) => Some(open_store(inputs).await?),
        Err(_) => None,
    };
    let sources = inputs.sources();
    let mut all_ok = true;
    let mut seen = 0;
    for conn in catalog.connections.values() {
        if only.is_some_and(|(ns, name)| ns != conn.namespace || name != conn.name) {
            continue;
        }
        seen += 1;
        let probe_zone = catalog
            .zones
            .iter()
            .find(|z| z.namespace == conn.namespace && z.connection == conn.name)
            .map(|z| z.zone.clone());
        let report = match connect_with(conn, &sources) {
            Ok(p) => {
                check(
                    conn,
                    p.as_ref(),
                    probe_zone.as_ref(),
                    k8s_openapi::jiff::Timestamp::now(),
                )
                .await
            }
            Err(e) => {
                outln!(
                    "{}/{} ({}): cannot connect: {e}",
                    conn.namespace,
                    conn.name,
                    conn.spec.provider_type.as_str()
                );
                all_ok = false;
                continue;
            }
        };
        outln!(
            "{}/{} ({})",
            conn.namespace,
            conn.name,
            conn.spec.provider_type.as_str()
        );
        outln!(
            "  connection test: {} - {}",
            if report.test.ok { "passed" } else { "FAILED" },
            report.test.message
        );
        match &report.probe {
            Some(p) => outln!(
                "  write probe:     {} - {}",
                if p.ok { "passed" } else { "FAILED" },
                p.message
            ),
            None => outln!("  write probe:     not run - the connection is not meant to write"),
        }
        outln!(
            "  live writes:     {} ({}: {})",
            if report.decision.live {
                "enabled"
            } else {
                "disabled"
            },
            report.decision.reason,
            report.decision.message
        );
        all_ok &= report.test.ok && report.probe.as_ref().is_none_or(|p| p.ok);
        if let Some(store) = &store {
            record_check(store, &catalog, conn, &report).await?;
        }
    }
    if seen == 0 {
        anyhow::bail!("no matching ProviderConnection in the manifests");
    }
    Ok(if all_ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// Records a connection check in the store: results on the connection row, and an audit event.
async fn record_check(
    store: &Store,
    catalog: &zentralink_model::catalog::Catalog,
    conn: &zentralink_model::catalog::ConnectionEntry,
    report: &zentralink_providers::liveness::LiveReport,
) -> anyhow::Result<()> {
    use zentralink_store::audit::{Actor, AuditEvent};
    use zentralink_store::connections::{ConnectionCheck, NewConnection};
    let display = catalog
        .tenants
        .get(&conn.tenant)
        .map_or_else(|| conn.tenant.clone(), |t| t.display_name.clone());
    let tenant = store.upsert_tenant(&conn.tenant, &display).await?;
    let mut settings = serde_json::to_value(&conn.spec)?;
    if let Some(m) = settings.as_object_mut() {
        m.remove("credentials");
    }
    let mode = match conn.spec.mode {
        zentralink_model::resources::ConnectionMode::Live => "Live",
        zentralink_model::resources::ConnectionMode::ReadOnly => "ReadOnly",
    };
    let id = store
        .upsert_connection(
            tenant,
            &NewConnection {
                namespace: &conn.namespace,
                name: &conn.name,
                provider_type: conn.spec.provider_type.as_str(),
                settings,
                credentials: None,
                mode,
                acknowledge_live_writes: conn.spec.acknowledge_live_writes,
            },
        )
        .await?;
    store
        .record_connection_check(
            tenant,
            id,
            ConnectionCheck::Test,
            report.test.ok,
            &report.test.message,
        )
        .await?;
    if let Some(p) = &report.probe {
        store
            .record_connection_check(tenant, id, ConnectionCheck::Probe, p.ok, &p.message)
            .await?;
    }
    store
        .audit(
            AuditEvent::new(
                Some(tenant),
                Actor::Operator("zentralink-cli".into()),
                "connection.tested",
            )
            .target(
                "ProviderConnection",
                format!("{}/{}", conn.namespace, conn.name),
            )
            .meta("testPassed", report.test.ok)
            .meta("testMessage", report.test.message.clone())
            .meta(
                "probe",
                report.probe.as_ref().map_or("not run".to_owned(), |p| {
                    if p.ok {
                        "passed".into()
                    } else {
                        format!("failed: {}", p.message)
                    }
                }),
            )
            .meta("liveWriteEnabled", report.decision.live)
            .meta("reason", report.decision.reason),
        )
        .await?;
    Ok(())
}

async fn import(
    paths: &[PathBuf],
    connection: &str,
    zone: &str,
    name: Option<String>,
    include_apex_ns: bool,
    out: Option<PathBuf>,
    inputs: &Inputs,
) -> anyhow::Result<ExitCode> {
    use zentralink_model::adopt::{AdoptOptions, zone_manifest, zone_manifest_yaml};
    let catalog = load_valid(paths)?;
    let (ns, conn_name) = split_ref(connection)?;
    let conn = catalog.connection(ns, conn_name).ok_or_else(|| {
        anyhow::anyhow!("no ProviderConnection {ns}/{conn_name} in the manifests")
    })?;
    let zone =
        zentralink_model::ZoneName::parse(zone).map_err(|e| anyhow::anyhow!("--zone: {e}"))?;
    let provider = connect_with(conn, &inputs.sources())?;
    let content = provider
        .read_zone(&zone)
        .await?
        .ok_or_else(|| anyhow::anyhow!("zone {zone} does not exist at {ns}/{conn_name}"))?;
    let object_name = name.unwrap_or_else(|| zone.without_dot().replace('.', "-"));
    let manifest = zone_manifest(
        &content,
        &AdoptOptions {
            object_name,
            namespace: ns.to_owned(),
            connection: conn_name.to_owned(),
            include_apex_ns,
        },
    );
    let yaml = format!(
        "# Imported by `zentralink import` from {ns}/{conn_name}: {} record sets of {zone}\n{}",
        manifest.spec.record_sets.len(),
        zone_manifest_yaml(&manifest)?
    );
    match out {
        Some(path) => {
            std::fs::write(&path, yaml)
                .with_context(|| format!("cannot write {}", path.display()))?;
            errln!("wrote {}", path.display());
        }
        None => std::io::stdout()
            .lock()
            .write_all(yaml.as_bytes())
            .context("cannot write to standard output")?,
    }
    Ok(ExitCode::SUCCESS)
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")
}

pub(crate) async fn open_store(inputs: &Inputs) -> anyhow::Result<Store> {
    let url = std::env::var("DATABASE_URL")
        .map_err(|_| anyhow::anyhow!("DATABASE_URL is not set; point it at PostgreSQL, e.g. postgres://zentralink@127.0.0.1:5432/zentralink"))?;
    let store = Store::connect(&url, inputs.keyring()?, ConnectRetry::default()).await?;
    Ok(store)
}

async fn migrate(inputs: &Inputs) -> anyhow::Result<ExitCode> {
    let store = open_store(inputs).await?;
    store.migrate().await?;
    outln!(
        "database schema is current ({} migrations)",
        zentralink_store::MIGRATOR.iter().count()
    );
    Ok(ExitCode::SUCCESS)
}

fn secrets(command: SecretsCommand, inputs: &Inputs) -> anyhow::Result<ExitCode> {
    match command {
        SecretsCommand::GenerateKey => {
            let mut key = [0u8; 32];
            getrandom::fill(&mut key)
                .map_err(|e| anyhow::anyhow!("no randomness available: {e}"))?;
            outln!("{}", EncryptionKey::from_bytes(key).to_base64());
        }
        SecretsCommand::Encrypt {
            tenant,
            namespace,
            connection,
            value,
        } => {
            for (flag, v) in [
                ("--tenant", &tenant),
                ("--namespace", &namespace),
                ("--connection", &connection),
            ] {
                zentralink_model::documents::check_object_name(v)
                    .map_err(|e| anyhow::anyhow!("{flag}: {e}"))?;
            }
            let ring = inputs.keyring()?;
            let value = match value {
                Some(v) => v,
                None => {
                    let mut s = String::new();
                    std::io::Read::read_to_string(
                        &mut std::io::Read::take(std::io::stdin(), 1 << 20),
                        &mut s,
                    )
                    .context("cannot read standard input")?;
                    s.trim_end_matches(['\n', '\r']).to_owned()
                }
            };
            if value.is_empty() {
                anyhow::bail!("nothing to encrypt: pass the value on standard input");
            }
            let binding = SecretBinding::connection(&tenant, &namespace, &connection);
            outln!(
                "{}",
                ring.seal(
                    &SecretString::new(value),
                    &binding,
                    zentralink_store::fresh_nonce()?
                )
            );
        }
        SecretsCommand::Rotate { paths } => return rotate_manifests(&paths, inputs),
        SecretsCommand::Reencrypt => {
            let rt = runtime()?;
            let moved = rt.block_on(async {
                let store = open_store(inputs).await?;
                store.migrate().await?;
                anyhow::Ok(store.reencrypt_secrets().await?)
            })?;
            outln!(
                "re-encrypted {moved} stored secret(s) under key {}",
                inputs.keyring()?.current_id()
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Re-encrypts the `credentials.value` of every connection in the manifests
/// that is not under the current key, writing each file back in place with
/// only those values replaced. Every value must decrypt for its own
/// connection first: nothing is written when one does not.
fn rotate_manifests(paths: &[PathBuf], inputs: &Inputs) -> anyhow::Result<ExitCode> {
    let catalog = load_valid(paths)?;
    let ring = inputs.keyring()?;
    let mut by_file: std::collections::BTreeMap<String, Vec<(String, String)>> =
        std::collections::BTreeMap::new();
    for conn in catalog.connections.values() {
        let Some(old) = conn.spec.credentials.as_ref().and_then(|c| c.value.clone()) else {
            continue;
        };
        if !ring.needs_reencryption(&old) {
            continue;
        }
        let binding = SecretBinding::connection(&conn.tenant, &conn.namespace, &conn.name);
        let fresh = ring
            .reencrypt(&old, &binding, zentralink_store::fresh_nonce()?)
            .with_context(|| format!("connection {}/{}", conn.namespace, conn.name))?;
        by_file
            .entry(conn.origin.file.to_string())
            .or_default()
            .push((old, fresh));
    }
    let mut moved = 0;
    for (file, replacements) in by_file {
        let mut text =
            std::fs::read_to_string(&file).with_context(|| format!("cannot read {file} again"))?;
        for (old, fresh) in &replacements {
            text = text.replacen(old.as_str(), fresh, 1);
            moved += 1;
        }
        write_atomically(std::path::Path::new(&file), text.as_bytes())
            .with_context(|| format!("cannot write {file}"))?;
        outln!("{file}: re-encrypted {} value(s)", replacements.len());
    }
    outln!(
        "re-encrypted {moved} manifest value(s) under key {}",
        ring.current_id()
    );
    Ok(ExitCode::SUCCESS)
}

/// Writes a file through a temporary file in the same directory and a rename.
fn write_atomically(path: &std::path::Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(std::path::Path::new("."));
    let mut tmp = tempfile::NamedTempFile::new_in(dir)?;
    tmp.write_all(bytes)?;
    tmp.as_file().sync_all()?;
    tmp.persist(path).map_err(|e| e.error)?;
    Ok(())
}

fn validate(paths: &[PathBuf]) -> anyhow::Result<ExitCode> {
    let (catalog, errors) = load_catalog(paths);
    if !errors.is_empty() {
        for e in errors.iter() {
            errln!("{e}");
        }
        errln!(
            "{} error{} found",
            errors.len(),
            if errors.len() == 1 { "" } else { "s" }
        );
        return Ok(ExitCode::from(1));
    }
    outln!(
        "valid: {} tenant(s), {} policy(ies), {} connection(s), {} zone(s), {} record set(s)",
        catalog.tenants.len(),
        catalog.policies.len(),
        catalog.connections.len(),
        catalog.zones.len(),
        catalog.zones.iter().map(|z| z.desired.len()).sum::<usize>()
    );
    Ok(ExitCode::SUCCESS)
}

fn plan(
    paths: &[PathBuf],
    format: Format,
    color: Color,
    exit_code: bool,
    requester: Option<String>,
    inputs: &Inputs,
) -> anyhow::Result<ExitCode> {
    let sources = inputs.sources();
    // The zones' reads start while the manifests are validated; a read is
    // used only where the validated catalog agrees with it (docs/benchmarks.md).
    let runtime = runtime();
    let prefetch = match &runtime {
        Ok(runtime) => Prefetch::start(runtime.handle(), paths, &sources, None),
        Err(_) => Prefetch::default(),
    };
    let (catalog, errors) = load_catalog(paths);
    if !errors.is_empty() {
        // Nothing read is used or shown.
        prefetch.abort();
        for e in errors.iter() {
            errln!("{e}");
        }
        errln!(
            "{} error{} found; nothing planned",
            errors.len(),
            if errors.len() == 1 { "" } else { "s" }
        );
        return Ok(ExitCode::from(1));
    }
    let report = runtime?.block_on(plan_all_prefetched(
        &catalog,
        &sources,
        None,
        requester.as_deref(),
        k8s_openapi::jiff::Timestamp::now(),
        prefetch,
    ));
    let text = match format {
        Format::Json => serde_json::to_string_pretty(&report)? + "\n",
        Format::Markdown => render_markdown(&report),
        Format::Text => {
            let colour = match color {
                Color::Always => true,
                Color::Never => false,
                Color::Auto => {
                    std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none()
                }
            };
            render_text(&report, colour)
        }
    };
    std::io::stdout()
        .lock()
        .write_all(text.as_bytes())
        .context("cannot write to standard output")?;
    if report.has_errors() {
        for z in report
            .zones
            .iter()
            .filter_map(|z| z.error.as_ref().map(|e| (z, e)))
        {
            errln!("{}: {}", z.0.zone, z.1);
        }
        return Ok(ExitCode::from(1));
    }
    if exit_code && report.has_gated_changes() {
        return Ok(ExitCode::from(3));
    }
    if exit_code && report.has_changes() {
        return Ok(ExitCode::from(2));
    }
    Ok(ExitCode::SUCCESS)
}

fn crds(out: Option<PathBuf>) -> anyhow::Result<ExitCode> {
    let files = zentralink_model::resources::crd_files()?;
    match out {
        None => {
            let mut stdout = std::io::stdout().lock();
            for (i, (_, yaml)) in files.iter().enumerate() {
                if i > 0 {
                    writeln!(stdout, "---").context("cannot write to standard output")?;
                }
                stdout
                    .write_all(yaml.as_bytes())
                    .context("cannot write to standard output")?;
            }
        }
        Some(dir) => {
            std::fs::create_dir_all(&dir)
                .with_context(|| format!("cannot create {}", dir.display()))?;
            for (name, yaml) in files {
                let path = dir.join(name);
                std::fs::write(&path, yaml)
                    .with_context(|| format!("cannot write {}", path.display()))?;
                outln!("wrote {}", path.display());
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
