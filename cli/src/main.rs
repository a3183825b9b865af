//! The `zentralink` binary: argument parsing over the ZentraLink libraries.
//! Does I/O (files, providers, terminal).

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand, ValueEnum};
use zentralink_model::report::{render_markdown, render_text};
use zentralink_model::secrets::{EncryptionKey, Keyring, SecretString};
use zentralink_operator::liveness::check;
use zentralink_operator::planner::plan_all;
use zentralink_operator::provider::connect;
use zentralink_operator::source::directory::load_catalog;
use zentralink_store::{ConnectRetry, Store};

/// mimalloc: plans and validation of large zones allocate many small values;
/// it is about twice as fast as the system allocator there (docs/benchmarks.md).
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// ZentraLink: a GitOps control plane for DNS.
#[derive(Debug, Parser)]
#[command(name = "zentralink", version, about, propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
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
        /// Exit 2 when any zone has changes.
        #[arg(long)]
        exit_code: bool,
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
    /// Encrypt a value read from standard input (or --value) with PLATFORM_ENCRYPTION_KEY; prints enc:v1:...
    Encrypt {
        /// The value; prefer standard input, which keeps it out of the shell history.
        #[arg(long)]
        value: Option<String>,
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
    let cli = Cli::parse();
    match run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(1)
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Validate { paths } => validate(&paths),
        Command::Plan {
            paths,
            format,
            color,
            exit_code,
        } => plan(&paths, format, color, exit_code),
        Command::Crds { out } => crds(out),
        Command::Migrate => runtime()?.block_on(migrate()),
        Command::Provider {
            command: ProviderCommand::Test { paths, connection },
        } => runtime()?.block_on(provider_test(&paths, connection.as_deref())),
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
        )),
        Command::Secrets { command } => secrets(command),
    }
}

fn load_valid(paths: &[PathBuf]) -> anyhow::Result<zentralink_model::catalog::Catalog> {
    let (catalog, errors) = load_catalog(paths);
    if !errors.is_empty() {
        for e in errors.iter() {
            eprintln!("{e}");
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

async fn provider_test(paths: &[PathBuf], only: Option<&str>) -> anyhow::Result<ExitCode> {
    let catalog = load_valid(paths)?;
    let only = only.map(split_ref).transpose()?;
    let store = match std::env::var("DATABASE_URL") {
        Ok(_) => Some(open_store().await?),
        Err(_) => None,
    };
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
        let report = match connect(conn) {
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
                println!(
                    "{}/{} ({}): cannot connect: {e}",
                    conn.namespace,
                    conn.name,
                    conn.spec.provider_type.as_str()
                );
                all_ok = false;
                continue;
            }
        };
        println!(
            "{}/{} ({})",
            conn.namespace,
            conn.name,
            conn.spec.provider_type.as_str()
        );
        println!(
            "  connection test: {} - {}",
            if report.test.ok { "passed" } else { "FAILED" },
            report.test.message
        );
        match &report.probe {
            Some(p) => println!(
                "  write probe:     {} - {}",
                if p.ok { "passed" } else { "FAILED" },
                p.message
            ),
            None => println!("  write probe:     not run - the connection is not meant to write"),
        }
        println!(
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
    report: &zentralink_operator::liveness::LiveReport,
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
) -> anyhow::Result<ExitCode> {
    use zentralink_model::adopt::{AdoptOptions, zone_manifest, zone_manifest_yaml};
    let catalog = load_valid(paths)?;
    let (ns, conn_name) = split_ref(connection)?;
    let conn = catalog.connection(ns, conn_name).ok_or_else(|| {
        anyhow::anyhow!("no ProviderConnection {ns}/{conn_name} in the manifests")
    })?;
    let zone =
        zentralink_model::ZoneName::parse(zone).map_err(|e| anyhow::anyhow!("--zone: {e}"))?;
    let provider = connect(conn)?;
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
            eprintln!("wrote {}", path.display());
        }
        None => print!("{yaml}"),
    }
    Ok(ExitCode::SUCCESS)
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")
}

fn keyring() -> anyhow::Result<Keyring> {
    let current = std::env::var("PLATFORM_ENCRYPTION_KEY").ok();
    let previous = std::env::var("PLATFORM_ENCRYPTION_KEY_PREVIOUS").ok();
    Ok(Keyring::from_values(
        current.as_deref(),
        previous.as_deref(),
    )?)
}

async fn open_store() -> anyhow::Result<Store> {
    let url = std::env::var("DATABASE_URL")
        .map_err(|_| anyhow::anyhow!("DATABASE_URL is not set; point it at PostgreSQL, e.g. postgres://zentralink@127.0.0.1:5432/zentralink"))?;
    let store = Store::connect(&url, keyring()?, ConnectRetry::default()).await?;
    Ok(store)
}

async fn migrate() -> anyhow::Result<ExitCode> {
    let store = open_store().await?;
    store.migrate().await?;
    println!(
        "database schema is current ({} migrations)",
        zentralink_store::MIGRATOR.iter().count()
    );
    Ok(ExitCode::SUCCESS)
}

fn secrets(command: SecretsCommand) -> anyhow::Result<ExitCode> {
    match command {
        SecretsCommand::GenerateKey => {
            let mut key = [0u8; 32];
            getrandom::fill(&mut key)
                .map_err(|e| anyhow::anyhow!("no randomness available: {e}"))?;
            println!("{}", EncryptionKey::from_bytes(key).to_base64());
        }
        SecretsCommand::Encrypt { value } => {
            let ring = keyring()?;
            let value = match value {
                Some(v) => v,
                None => {
                    let mut s = String::new();
                    std::io::Read::read_to_string(&mut std::io::stdin(), &mut s)
                        .context("cannot read standard input")?;
                    s.trim_end_matches(['\n', '\r']).to_owned()
                }
            };
            if value.is_empty() {
                anyhow::bail!("nothing to encrypt: pass the value on standard input");
            }
            println!(
                "{}",
                ring.seal(&SecretString::new(value), zentralink_store::fresh_nonce()?)
            );
        }
        SecretsCommand::Reencrypt => {
            let rt = runtime()?;
            let moved = rt.block_on(async {
                let store = open_store().await?;
                store.migrate().await?;
                anyhow::Ok(store.reencrypt_secrets().await?)
            })?;
            println!(
                "re-encrypted {moved} stored secret(s) under key {}",
                keyring()?.current_id()
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn validate(paths: &[PathBuf]) -> anyhow::Result<ExitCode> {
    let (catalog, errors) = load_catalog(paths);
    if !errors.is_empty() {
        for e in errors.iter() {
            eprintln!("{e}");
        }
        eprintln!(
            "{} error{} found",
            errors.len(),
            if errors.len() == 1 { "" } else { "s" }
        );
        return Ok(ExitCode::from(1));
    }
    println!(
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
) -> anyhow::Result<ExitCode> {
    let (catalog, errors) = load_catalog(paths);
    if !errors.is_empty() {
        for e in errors.iter() {
            eprintln!("{e}");
        }
        eprintln!(
            "{} error{} found; nothing planned",
            errors.len(),
            if errors.len() == 1 { "" } else { "s" }
        );
        return Ok(ExitCode::from(1));
    }
    let report = runtime()?.block_on(plan_all(&catalog));
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
    std::io::stdout().write_all(text.as_bytes())?;
    if report.has_errors() {
        for z in report
            .zones
            .iter()
            .filter_map(|z| z.error.as_ref().map(|e| (z, e)))
        {
            eprintln!("{}: {}", z.0.zone, z.1);
        }
        return Ok(ExitCode::from(1));
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
                    writeln!(stdout, "---")?;
                }
                stdout.write_all(yaml.as_bytes())?;
            }
        }
        Some(dir) => {
            std::fs::create_dir_all(&dir)
                .with_context(|| format!("cannot create {}", dir.display()))?;
            for (name, yaml) in files {
                let path = dir.join(name);
                std::fs::write(&path, yaml)
                    .with_context(|| format!("cannot write {}", path.display()))?;
                println!("wrote {}", path.display());
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
