//! Provider benchmark driver: writes generated zones through the real
//! provider code (PowerDNS, RFC 2136) and times it. Used by
//! scripts/bench-providers.sh, which also runs `zentralink plan` on the same
//! manifests and counts the requests the servers saw. Does I/O.
//!
//! ```text
//! provider_bench generate --provider powerdns|rfc2136 --zones N --sets M --change-percent P --out DIR
//! provider_bench apply DIR [--batch N]   # applies every zone's plan, in batches of at most N operations
//! ```
//!
//! RFC 2136 carries a batch in one DNS message of at most 64 KiB, so the
//! initial write of a 50,000-record zone goes in batches (`--batch`); PowerDNS
//! takes any plan as one PATCH.
//!
//! ```text
//! ```

#![allow(clippy::print_stdout)]

use std::fmt::Write as _;
use std::path::PathBuf;
use std::time::Instant;

use zentralink_model::ZoneContent;
use zentralink_model::plan::{PlanScope, plan_zone};
use zentralink_operator::source::directory::load_catalog;
use zentralink_providers::connect_with;
use zentralink_providers::credentials::{CredentialEnv, CredentialSources};

#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn arg(args: &[String], name: &str) -> Option<String> {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .cloned()
}

fn zone_name(provider: &str, zones: usize, i: usize) -> String {
    match provider {
        // bind-server.sh serves b001..b100.bench.test. and big.bench.test. for the benchmark
        "rfc2136" if zones == 1 => "big.bench.test.".into(),
        "rfc2136" => format!("b{:03}.bench.test.", i + 1),
        _ if zones == 1 => "big.pdns-bench.test.".into(),
        _ => format!("p{:03}.pdns-bench.test.", i + 1),
    }
}

fn generate(args: &[String]) -> Result<(), String> {
    let provider = arg(args, "--provider").ok_or("--provider powerdns|rfc2136")?;
    let zones: usize = arg(args, "--zones")
        .and_then(|v| v.parse().ok())
        .ok_or("--zones N")?;
    let sets: usize = arg(args, "--sets")
        .and_then(|v| v.parse().ok())
        .ok_or("--sets M")?;
    let change: usize = arg(args, "--change-percent")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let out = PathBuf::from(arg(args, "--out").ok_or("--out DIR")?);
    std::fs::create_dir_all(&out).map_err(|e| e.to_string())?;
    let connection = match provider.as_str() {
        "powerdns" => "  type: powerdns\n  powerdns: { url: \"${ZL_PDNS_URL}\", createZones: true }\n  credentials: { env: ZL_PDNS_API_KEY }\n".to_owned(),
        "rfc2136" => "  type: rfc2136\n  rfc2136: { server: \"${ZL_BIND_SERVER}\", tsigKeyName: zl-sha256 }\n  credentials: { env: ZL_BIND_TSIG256_SECRET }\n".to_owned(),
        other => return Err(format!("unknown provider {other}")),
    };
    let connection = connection
        .replace(
            "${ZL_PDNS_URL}",
            &std::env::var("ZL_PDNS_URL").unwrap_or_default(),
        )
        .replace(
            "${ZL_BIND_SERVER}",
            &std::env::var("ZL_BIND_SERVER").unwrap_or_default(),
        );
    let mut head = String::new();
    let _ = write!(
        head,
        "apiVersion: dns.zentralink.net/v1alpha1\nkind: Tenant\nmetadata: {{ name: bench }}\nspec: {{ displayName: Bench, namespaces: [bench], allowedDomains: [test.] }}\n---\napiVersion: dns.zentralink.net/v1alpha1\nkind: TenantPolicy\nmetadata: {{ name: policy, namespace: bench }}\nspec: {{ approvals: {{ requiredFor: {{ recordTypes: [], deletions: false, rollbacks: false }} }} }}\n---\napiVersion: dns.zentralink.net/v1alpha1\nkind: ProviderConnection\nmetadata: {{ name: target, namespace: bench }}\nspec:\n{connection}  mode: Live\n  acknowledgeLiveWrites: true\n  limits: {{ timeoutSeconds: 60, maxConcurrency: 8 }}\n"
    );
    std::fs::write(out.join("00-bench.yaml"), head).map_err(|e| e.to_string())?;
    let every = if change == 0 {
        usize::MAX
    } else {
        100 / change.min(100)
    };
    for z in 0..zones {
        let zone = zone_name(&provider, zones, z);
        let mut doc = format!(
            "apiVersion: dns.zentralink.net/v1alpha1\nkind: DnsZone\nmetadata: {{ name: z{z:04}, namespace: bench }}\nspec:\n  zone: {zone}\n  providerRef: {{ name: target }}\n  ownership: Owned\n  defaultTtl: 3600\n  recordSets:\n"
        );
        for i in 0..sets {
            let changed = i % every == every - 1;
            let last = if changed { 200 } else { (i % 250) + 1 };
            let _ = writeln!(
                doc,
                "    - {{ name: host-{i:05}, type: A, values: [192.0.2.{last}] }}"
            );
        }
        std::fs::write(out.join(format!("zone-{z:04}.yaml")), doc).map_err(|e| e.to_string())?;
    }
    println!(
        "generated {zones} zone(s) x {sets} record sets ({change}% changed) in {}",
        out.display()
    );
    Ok(())
}

async fn apply(args: &[String]) -> Result<(), String> {
    let dir = PathBuf::from(args.get(2).ok_or("apply DIR")?);
    let batch: usize = arg(args, "--batch")
        .and_then(|v| v.parse().ok())
        .unwrap_or(usize::MAX);
    let (catalog, errors) = load_catalog(&[dir]);
    if !errors.is_empty() {
        return Err(errors.to_string());
    }
    // The bench's manifests name the test servers' own variables; allow exactly those.
    let env = CredentialEnv::new(
        std::env::vars(),
        &[
            "ZL_PDNS_API_KEY".to_owned(),
            "ZL_BIND_TSIG256_SECRET".to_owned(),
        ],
    )?;
    let sources = CredentialSources {
        env: &env,
        ..Default::default()
    };
    let started = Instant::now();
    let mut ops = 0;
    let mut writes = 0;
    for zone in &catalog.zones {
        let conn = catalog
            .connection(&zone.namespace, &zone.connection)
            .ok_or("no connection")?;
        let provider = connect_with(conn, &sources).map_err(|e| e.to_string())?;
        let actual = provider
            .read_zone(&zone.zone)
            .await
            .map_err(|e| e.to_string())?
            .unwrap_or_else(|| ZoneContent::new(zone.zone.clone()));
        let plan = plan_zone(
            &zone.desired,
            &actual,
            &PlanScope {
                ownership: zone.ownership,
                previously_owned: None,
            },
        );
        if plan.is_empty() {
            continue;
        }
        ops += plan.changes.len();
        for part in plan.changes.chunks(batch.max(1)) {
            let part = zentralink_model::plan::Plan {
                zone: plan.zone.clone(),
                changes: part.to_vec(),
            };
            writes += 1;
            let report = provider
                .apply(&part)
                .await
                .map_err(|e| format!("{}: {e}", zone.zone))?;
            if !report.all_ok() {
                return Err(format!("{}: not every operation was applied", zone.zone));
            }
        }
    }
    println!(
        "applied {ops} record-set operation(s) in {writes} batch(es) over {} zone(s) in {:.3} s",
        catalog.zones.len(),
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

fn main() -> std::process::ExitCode {
    let args: Vec<String> = std::env::args().collect();
    let result = match args.get(1).map(String::as_str) {
        Some("generate") => generate(&args),
        Some("apply") => match tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
        {
            Ok(rt) => rt.block_on(apply(&args)),
            Err(e) => Err(e.to_string()),
        },
        _ => Err("usage: provider_bench generate|apply ...".into()),
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            std::process::ExitCode::from(1)
        }
    }
}
