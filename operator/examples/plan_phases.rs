//! Where the time and memory of `zentralink plan DIR --format json` go:
//! the same steps as the binary (load and validate the manifests, read each
//! zone from its provider, decide, render the JSON report), each timed, with
//! the process's resident memory after it. Reads providers, never writes.
//! Used by scripts/bench-reconcile.sh (`big`); figures in docs/benchmarks.md.
//!
//! ```text
//! plan_phases DIR [--overlap] [--allow-credential-env NAME]
//! plan_phases DIR --reads N
//! plan_phases DIR --load-only
//! ```
//!
//! `--load-only` stops after the load: the time and memory of reading and
//! validating the manifests alone (`bench-reconcile.sh memory`).
//!
//! `--reads N` reads every zone N times after the load and prints, per zone,
//! the median wall time of a read and the process's CPU time per read
//! (user + system, from /proc/self/stat): the cost of the read path beside
//! the server's time to answer.
//!
//! `--overlap` is a prototype of reading the providers while the manifests
//! are validated: a quick scan of the manifest texts finds every DnsZone's
//! namespace, `spec.zone` and `spec.providerRef` (the lines before
//! `recordSets:`), the documents of other kinds are validated on their own
//! to give the connections, and those zones' reads start at once; the full
//! load then runs while they are in flight. A prefetched read is used only
//! when the validated catalog has the same zone on a connection with the
//! same spec; any other zone is read afterwards, as without `--overlap`.
//!
//! Uses mimalloc, like the binary, so the figures are the binary's.

#![allow(clippy::print_stdout)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use k8s_openapi::jiff::Timestamp;
use zentralink_model::ZoneContent;
use zentralink_model::ZoneName;
use zentralink_model::catalog::{Catalog, CatalogBuilder, ConnectionEntry};
use zentralink_model::documents::{SourceFile, parse_documents};
use zentralink_model::liveness::LiveDecision;
use zentralink_model::reconcile::{ZoneInputs, decide};
use zentralink_model::report::{PlanReport, ZoneReport};
use zentralink_operator::source::directory::{load_catalog, load_into};
use zentralink_providers::credentials::{CredentialEnv, CredentialSources};
use zentralink_providers::{Provider, ProviderError, connect_in};

#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Resident and peak resident memory of this process, in MiB.
fn memory() -> (u64, u64) {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().trim_end_matches(" kB").trim().parse::<u64>().ok())
            .map_or(0, |kib| kib / 1024)
    };
    (field("VmRSS:"), field("VmHWM:"))
}

/// Prints one phase: its wall time, the time since the start, and memory.
struct Phases {
    started: Instant,
    last: Instant,
}

impl Phases {
    fn new() -> Self {
        let now = Instant::now();
        Self {
            started: now,
            last: now,
        }
    }

    fn done(&mut self, what: &str) {
        let now = Instant::now();
        let (rss, peak) = memory();
        println!(
            "{what:<44} {:>8.1} ms   at {:>8.1} ms   RSS {rss:>4} MiB   peak {peak:>4} MiB",
            (now - self.last).as_secs_f64() * 1000.0,
            (now - self.started).as_secs_f64() * 1000.0,
        );
        self.last = now;
    }
}

/// A zone found by the quick scan: namespace, connection name, zone name.
type ZoneRef = (String, String, String);

/// The quick scan of `--overlap`: every DnsZone's namespace, `spec.zone` and
/// `spec.providerRef` from the lines before its `recordSets:`, and the text
/// of every other document (Tenants, policies, connections), to be validated
/// on its own. A guess only: what it gets wrong is read again later.
fn scan(paths: &[PathBuf]) -> (Vec<ZoneRef>, String) {
    let mut zones = Vec::new();
    let mut others = String::new();
    let mut files = Vec::new();
    for path in paths {
        collect_yaml(path, &mut files);
    }
    files.sort();
    for file in files {
        let Ok(text) = std::fs::read_to_string(&file) else {
            continue;
        };
        for doc in text.split("\n---") {
            let head = doc.split("\n  recordSets:").next().unwrap_or_default();
            if !head.lines().any(|l| l.trim() == "kind: DnsZone") {
                others.push_str(doc.trim_start_matches("---"));
                others.push_str("\n---\n");
                continue;
            }
            let value = |key: &str| {
                head.lines()
                    .find_map(|l| l.trim().strip_prefix(key).map(str::trim))
                    .map(|v| v.trim_matches(['"', '\'']).to_owned())
            };
            let namespace = head
                .find("namespace:")
                .map(|i| &head[i + "namespace:".len()..])
                .and_then(|rest| rest.split([',', '}', '\n']).next())
                .map(|v| v.trim().to_owned());
            let connection = head
                .find("providerRef:")
                .map(|i| &head[i + "providerRef:".len()..])
                .and_then(|rest| rest.split("name:").nth(1))
                .and_then(|rest| rest.split([',', '}', '\n']).next())
                .map(|v| v.trim().to_owned());
            if let (Some(ns), Some(conn), Some(zone)) = (namespace, connection, value("zone:")) {
                zones.push((ns, conn, zone));
            }
        }
    }
    (zones, others)
}

fn collect_yaml(path: &Path, out: &mut Vec<PathBuf>) {
    if path.is_dir() {
        if let Ok(entries) = std::fs::read_dir(path) {
            for entry in entries.flatten() {
                collect_yaml(&entry.path(), out);
            }
        }
    } else if path.extension().is_some_and(|e| e == "yaml" || e == "yml") {
        out.push(path.to_path_buf());
    }
}

/// The process's user + system CPU time so far, in milliseconds.
fn cpu_ms() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // The fields after the command name (which is in parentheses).
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map_or("", |(_, rest)| rest)
        .split_whitespace()
        .collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    // utime and stime are fields 14 and 15 of the line, 12 and 13 after the name; 100 ticks a second.
    (ticks(11) + ticks(12)) * 10.0
}

/// `--reads N`: each zone read N times; median wall and mean CPU per read.
async fn reads(
    catalog: &Catalog,
    sources: &CredentialSources<'_>,
    times: usize,
) -> Result<(), String> {
    for zone in &catalog.zones {
        let conn = catalog
            .connection(&zone.namespace, &zone.connection)
            .ok_or("no connection")?;
        let provider = connect(conn, sources).map_err(|e| e.to_string())?;
        let mut walls = Vec::with_capacity(times);
        let cpu_before = cpu_ms();
        let mut sets = 0;
        for _ in 0..times {
            let (result, ms) = read(Arc::clone(&provider), zone.zone.clone()).await;
            sets = result.map_err(|e| e.to_string())?.map_or(0, |c| c.len());
            walls.push(ms);
        }
        let cpu = (cpu_ms() - cpu_before) / times.max(1) as f64;
        walls.sort_by(f64::total_cmp);
        let (rss, peak) = memory();
        println!(
            "{}: {sets} sets, {times} reads: median wall {:.1} ms, CPU {cpu:.1} ms a read; RSS {rss} MiB, peak {peak} MiB",
            zone.zone,
            walls.get(times / 2).copied().unwrap_or_default()
        );
    }
    Ok(())
}

type Read = Result<Option<ZoneContent>, ProviderError>;

async fn read(provider: Arc<dyn Provider>, zone: ZoneName) -> (Read, f64) {
    let started = Instant::now();
    let result = provider.read_zone(&zone).await;
    (result, started.elapsed().as_secs_f64() * 1000.0)
}

fn connect(
    entry: &ConnectionEntry,
    sources: &CredentialSources<'_>,
) -> Result<Arc<dyn Provider>, ProviderError> {
    connect_in(entry, sources, None).map(Arc::from)
}

async fn run(
    paths: Vec<PathBuf>,
    overlap: bool,
    load_only: bool,
    repeat: Option<usize>,
    env: CredentialEnv,
) -> Result<(), String> {
    let sources = CredentialSources {
        env: &env,
        ..Default::default()
    };
    let mut phases = Phases::new();
    let mut prefetched: BTreeMap<ZoneRef, (ConnectionEntry, tokio::task::JoinHandle<(Read, f64)>)> =
        BTreeMap::new();
    if overlap {
        let (zones, others) = scan(&paths);
        let (objects, _) = parse_documents(&SourceFile::new("scan", others));
        let (head, _) = Catalog::build(objects);
        for (ns, conn, zone) in zones {
            let (Some(entry), Ok(name)) = (head.connection(&ns, &conn), ZoneName::parse(&zone))
            else {
                continue;
            };
            let Ok(provider) = connect(entry, &sources) else {
                continue;
            };
            let handle = tokio::spawn(read(provider, name));
            prefetched.insert((ns, conn, zone), (entry.clone(), handle));
        }
        phases.done(&format!("scan, {} read(s) started", prefetched.len()));
    }
    let catalog = if overlap {
        let (catalog, errors) = load_catalog(&paths);
        if !errors.is_empty() {
            return Err(errors.to_string());
        }
        phases.done("load_catalog (reads in flight)");
        catalog
    } else {
        let mut builder = CatalogBuilder::new();
        let (errors, _) = load_into(&paths, &mut builder);
        if !errors.is_empty() {
            return Err(errors.to_string());
        }
        phases.done("load_into (parse, check, convert per file)");
        let (catalog, errors) = builder.finish();
        if !errors.is_empty() {
            return Err(errors.to_string());
        }
        phases.done("CatalogBuilder::finish (across objects)");
        catalog
    };
    if load_only {
        println!(
            "{} zone(s), {} record set(s)",
            catalog.zones.len(),
            catalog.zones.iter().map(|z| z.desired.len()).sum::<usize>()
        );
        return Ok(());
    }
    if let Some(times) = repeat {
        return reads(&catalog, &sources, times).await;
    }
    let mut report = PlanReport::default();
    let now = Timestamp::now();
    let mut providers: BTreeMap<(String, String), Arc<dyn Provider>> = BTreeMap::new();
    for zone in &catalog.zones {
        let conn = catalog
            .connection(&zone.namespace, &zone.connection)
            .ok_or("no connection")?;
        let key = (
            zone.namespace.clone(),
            zone.connection.clone(),
            zone.zone.to_string(),
        );
        let early = match prefetched.remove(&key) {
            Some((entry, handle)) if entry.spec == conn.spec => Some(handle),
            _ => None,
        };
        let (result, read_ms) = match early {
            Some(handle) => {
                let waited = Instant::now();
                let (result, ms) = handle.await.map_err(|e| e.to_string())?;
                println!(
                    "    read of {} (prefetched) took {ms:.1} ms, waited {:.1} ms for it",
                    zone.zone,
                    waited.elapsed().as_secs_f64() * 1000.0
                );
                (result, ms)
            }
            None => {
                let provider = match providers.get(&(key.0.clone(), key.1.clone())) {
                    Some(p) => Arc::clone(p),
                    None => {
                        let p = connect(conn, &sources).map_err(|e| e.to_string())?;
                        providers.insert((key.0.clone(), key.1.clone()), Arc::clone(&p));
                        p
                    }
                };
                read(provider, zone.zone.clone()).await
            }
        };
        let actual = result
            .map_err(|e| e.to_string())?
            .unwrap_or_else(|| ZoneContent::new(zone.zone.clone()));
        phases.done(&format!(
            "read {} ({} sets, {read_ms:.0} ms)",
            zone.zone,
            actual.len()
        ));
        let policy = catalog.policy_for(&zone.tenant);
        let live = LiveDecision {
            live: conn.live_requested(),
            reason: "Requested",
            message: String::new(),
        };
        let decision = decide(&ZoneInputs {
            tenant: &zone.tenant,
            object: &zone.name,
            desired: &zone.desired,
            ownership: zone.ownership,
            drift: zone.drift,
            actual: &actual,
            last_applied: None,
            policy: &policy,
            requests: &[],
            live: &live,
            now,
            children: &[],
        });
        report.zones.push(ZoneReport::new(
            zone,
            &decision,
            conn.live_requested(),
            &policy,
            None,
        ));
        phases.done("decide + report entry");
        drop(actual);
        phases.done("drop the actual zone");
    }
    let json = serde_json::to_string_pretty(&report).map_err(|e| e.to_string())?;
    phases.done(&format!("render JSON ({} bytes)", json.len()));
    drop(catalog);
    phases.done("drop the catalog");
    Ok(())
}

fn main() -> std::process::ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let overlap = args.iter().any(|a| a == "--overlap");
    let load_only = args.iter().any(|a| a == "--load-only");
    let mut allowed = Vec::new();
    let mut paths = Vec::new();
    let mut repeat = None;
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--overlap" | "--load-only" => {}
            "--allow-credential-env" => allowed.extend(it.next().cloned()),
            "--reads" => repeat = it.next().and_then(|n| n.parse().ok()),
            _ => paths.push(PathBuf::from(a)),
        }
    }
    let result = CredentialEnv::new(std::env::vars(), &allowed).and_then(|env| {
        tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .map_err(|e| e.to_string())?
            .block_on(run(paths, overlap, load_only, repeat, env))
    });
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            std::process::ExitCode::from(1)
        }
    }
}
