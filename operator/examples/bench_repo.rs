//! Writes the manifests (and, for the zone-file provider, the matching zone
//! files) of the reconciler benchmarks in scripts/bench-reconcile.sh: N zones
//! of M record sets each, on PowerDNS or in zone files, under a tenant policy
//! that gates nothing, optionally with a share of the sets changed. Writes
//! files only (no network).
//!
//! ```text
//! bench_repo --provider powerdns|zonefile --zones N --sets M --domain D --out DIR
//!            [--mixed] [--change-percent P] [--zone-files DIR] [--max-concurrency C]
//! ```
//!
//! - Zone `i` is `z<i, 5 digits>.<D>`; its DnsZone is `zones/z<i>.yaml` under `DIR`,
//!   and `DIR/00-bench.yaml` holds the Tenant, TenantPolicy and ProviderConnection.
//! - Record sets are A sets `host-00000`, ... (one address each), or with
//!   `--mixed` two sets per host name: an A set (every fifth with two
//!   addresses) and in turn an AAAA, TXT (SPF) or MX (two exchanges) set, as
//!   in `model/benches/plan.rs`.
//! - `--change-percent P` changes one set in every 100/P (set 50, 150, ...
//!   at 1%, an A set also in a mixed zone): its TTL grows by 60 and an A
//!   set's first address becomes 192.0.2.x. Every change is an
//!   update, so the plan has P% of the sets and no creates or deletes.
//! - PowerDNS: the URL is `$ZL_PDNS_URL` at generation time, the API key is
//!   read from `ZENTRALINK_CREDENTIAL_PDNS`, and `createZones` is on.
//! - Zone files: the connection's directory is `--zone-files DIR` (made
//!   absolute); with it, one `<zone>.zone` per zone is written there holding
//!   an SOA, an apex NS set and exactly the declared sets, so a pass over
//!   the manifests is a no-op.

#![allow(clippy::print_stdout)]

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// One record set as text: owner (relative), type, TTL, values in presentation format.
struct SetSpec {
    owner: String,
    rtype: &'static str,
    ttl: u32,
    values: Vec<String>,
}

/// Record set `i` of a zone of A sets only.
fn plain_set(i: usize) -> SetSpec {
    SetSpec {
        owner: format!("host-{i:05}"),
        rtype: "A",
        ttl: 300,
        values: vec![format!(
            "10.{}.{}.{}",
            (i >> 16) & 0xff,
            (i >> 8) & 0xff,
            i & 0xff
        )],
    }
}

/// Record set `i` of a mixed zone: two sets per host name, an A set and one
/// of AAAA, TXT, MX in turn (the same shapes as the plan engine bench).
fn mixed_set(i: usize) -> SetSpec {
    let host = i / 2;
    let owner = format!("host-{host:05}");
    let (a, b, c) = ((host >> 16) & 0xff, (host >> 8) & 0xff, host & 0xff);
    if i.is_multiple_of(2) {
        let mut values = vec![format!("10.{a}.{b}.{c}")];
        if host.is_multiple_of(5) {
            values.push(format!("10.{}.{b}.{c}", 128 + a));
        }
        return SetSpec {
            owner,
            rtype: "A",
            ttl: 300,
            values,
        };
    }
    match host % 3 {
        0 => SetSpec {
            owner,
            rtype: "AAAA",
            ttl: 300,
            values: vec![format!("2001:db8:{a:x}:{b:x}::{c:x}")],
        },
        1 => SetSpec {
            owner,
            rtype: "TXT",
            ttl: 3600,
            values: vec![format!(
                "\"v=spf1 ip4:10.{a}.{b}.{c} include:_spf.example.net. -all\""
            )],
        },
        _ => SetSpec {
            owner,
            rtype: "MX",
            ttl: 3600,
            values: vec![
                format!("10 mx{}.example.net.", host % 7),
                format!("20 mx-backup{}.example.net.", host % 3),
            ],
        },
    }
}

/// The options of one generation.
struct Options {
    provider: String,
    zones: usize,
    sets: usize,
    domain: String,
    out: PathBuf,
    mixed: bool,
    /// Every how many sets one is changed (`usize::MAX`: none).
    change_every: usize,
    zone_files: Option<PathBuf>,
    max_concurrency: Option<u32>,
}

fn arg(args: &[String], name: &str) -> Option<String> {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .cloned()
}

fn number(args: &[String], name: &str) -> Result<Option<usize>, String> {
    arg(args, name)
        .map(|v| {
            v.parse()
                .map_err(|_| format!("{name} takes a whole number, not {v:?}"))
        })
        .transpose()
}

impl Options {
    fn from_args(args: &[String]) -> Result<Self, String> {
        let provider = arg(args, "--provider").ok_or("--provider powerdns|zonefile is required")?;
        if provider != "powerdns" && provider != "zonefile" {
            return Err(format!(
                "--provider {provider:?}: this generator writes powerdns or zonefile"
            ));
        }
        let zones = number(args, "--zones")?.ok_or("--zones N is required")?;
        let sets = number(args, "--sets")?.ok_or("--sets M is required")?;
        let domain =
            arg(args, "--domain").ok_or("--domain D (for example rc.test.) is required")?;
        let domain = format!("{}.", domain.trim_end_matches('.'));
        let out = PathBuf::from(arg(args, "--out").ok_or("--out DIR is required")?);
        let change = number(args, "--change-percent")?.unwrap_or(0);
        let change_every = if change == 0 {
            usize::MAX
        } else {
            100 / change.min(100)
        };
        let zone_files = arg(args, "--zone-files").map(PathBuf::from);
        match (provider.as_str(), &zone_files) {
            ("zonefile", None) => return Err("--provider zonefile needs --zone-files DIR".into()),
            ("powerdns", Some(_)) => return Err("--zone-files is for --provider zonefile".into()),
            _ => {}
        }
        let max_concurrency = number(args, "--max-concurrency")?
            .map(|n| u32::try_from(n).map_err(|_| "--max-concurrency is too large".to_owned()))
            .transpose()?;
        Ok(Self {
            provider,
            zones,
            sets,
            domain,
            out,
            mixed: args.iter().any(|a| a == "--mixed"),
            change_every,
            zone_files,
            max_concurrency,
        })
    }

    fn zone_name(&self, i: usize) -> String {
        format!("z{i:05}.{}", self.domain)
    }

    /// Record set `i` as declared: the generated set, changed when its turn comes.
    fn set(&self, i: usize) -> SetSpec {
        let mut set = if self.mixed {
            mixed_set(i)
        } else {
            plain_set(i)
        };
        if i % self.change_every == self.change_every / 2 {
            set.ttl += 60;
            if set.rtype == "A" {
                set.values[0] = format!("192.0.2.{}", i % 256);
            }
        }
        set
    }
}

/// The Tenant, a TenantPolicy that gates nothing, and the ProviderConnection.
fn head(options: &Options, zone_dir: Option<&Path>) -> String {
    let connection = match zone_dir {
        Some(dir) => format!(
            "  type: zonefile\n  zonefile: {{ directory: {:?} }}\n",
            dir.display().to_string()
        ),
        None => format!(
            "  type: powerdns\n  powerdns: {{ url: {:?}, createZones: true }}\n  credentials: {{ env: ZENTRALINK_CREDENTIAL_PDNS }}\n",
            std::env::var("ZL_PDNS_URL").unwrap_or_default()
        ),
    };
    let concurrency = options
        .max_concurrency
        .map(|n| format!(", maxConcurrency: {n}"))
        .unwrap_or_default();
    format!(
        "apiVersion: dns.zentralink.net/v1alpha1
kind: Tenant
metadata: {{ name: bench }}
spec: {{ displayName: Bench, namespaces: [bench], allowedDomains: [{domain}] }}
---
apiVersion: dns.zentralink.net/v1alpha1
kind: TenantPolicy
metadata: {{ name: policy, namespace: bench }}
spec:
  approvals:
    requiredFor: {{ recordTypes: [], deletions: false, rollbacks: false, bulkChangeThreshold: 1000000 }}
---
apiVersion: dns.zentralink.net/v1alpha1
kind: ProviderConnection
metadata: {{ name: target, namespace: bench }}
spec:
{connection}  mode: Live
  acknowledgeLiveWrites: true
  limits: {{ timeoutSeconds: 120{concurrency} }}
",
        domain = options.domain,
    )
}

/// A YAML flow sequence of the values; TXT values (which hold double quotes) in single quotes.
fn yaml_values(values: &[String]) -> String {
    let quoted: Vec<String> = values.iter().map(|v| format!("'{v}'")).collect();
    format!("[{}]", quoted.join(", "))
}

fn zone_manifest(options: &Options, i: usize) -> String {
    let mut doc = format!(
        "apiVersion: dns.zentralink.net/v1alpha1
kind: DnsZone
metadata: {{ name: z{i:05}, namespace: bench }}
spec:
  zone: {zone}
  providerRef: {{ name: target }}
  ownership: Owned
  defaultTtl: 3600
  recordSets:
",
        zone = options.zone_name(i)
    );
    for s in (0..options.sets).map(|n| options.set(n)) {
        let _ = writeln!(
            doc,
            "    - {{ name: {}, type: {}, ttl: {}, values: {} }}",
            s.owner,
            s.rtype,
            s.ttl,
            yaml_values(&s.values)
        );
    }
    doc
}

/// The zone file that holds exactly the declared sets, an SOA and an apex NS set.
fn zone_file(options: &Options, i: usize) -> String {
    let mut text = format!(
        "$ORIGIN {zone}\n@ 3600 IN SOA ns1.example.net. hostmaster.example.net. 1 3600 600 1209600 300\n@ 3600 IN NS ns1.example.net.\n",
        zone = options.zone_name(i)
    );
    for s in (0..options.sets).map(|n| options.set(n)) {
        for v in &s.values {
            let _ = writeln!(text, "{} {} IN {} {v}", s.owner, s.ttl, s.rtype);
        }
    }
    text
}

fn write(path: &Path, text: &str) -> Result<(), String> {
    std::fs::write(path, text).map_err(|e| format!("cannot write {}: {e}", path.display()))
}

fn generate(options: &Options) -> Result<(), String> {
    let zones_dir = options.out.join("zones");
    std::fs::create_dir_all(&zones_dir)
        .map_err(|e| format!("cannot create {}: {e}", zones_dir.display()))?;
    let zone_dir = match &options.zone_files {
        Some(dir) => {
            std::fs::create_dir_all(dir)
                .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
            Some(
                std::fs::canonicalize(dir)
                    .map_err(|e| format!("cannot resolve {}: {e}", dir.display()))?,
            )
        }
        None => None,
    };
    write(
        &options.out.join("00-bench.yaml"),
        &head(options, zone_dir.as_deref()),
    )?;
    for i in 0..options.zones {
        write(
            &zones_dir.join(format!("z{i:05}.yaml")),
            &zone_manifest(options, i),
        )?;
        if let Some(dir) = &zone_dir {
            let name = options.zone_name(i);
            write(
                &dir.join(format!("{}.zone", name.trim_end_matches('.'))),
                &zone_file(options, i),
            )?;
        }
    }
    println!(
        "wrote {} zone(s) x {} record sets ({}) for {} in {}",
        options.zones,
        options.sets,
        if options.mixed { "mixed" } else { "A" },
        options.provider,
        options.out.display()
    );
    Ok(())
}

fn main() -> std::process::ExitCode {
    let args: Vec<String> = std::env::args().collect();
    match Options::from_args(&args).and_then(|o| generate(&o)) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            std::process::ExitCode::from(2)
        }
    }
}
