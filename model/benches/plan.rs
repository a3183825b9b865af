//! Plan engine benchmarks: `plan_zone` on zones of 1,000 to 100,000 record
//! sets with 1% changed, the digest and gating of the 100,000-set plan, and
//! loading, validating and planning a zone from its YAML manifest.
//!
//! Run with `cargo bench -p zentralink-model --bench plan`; results are in
//! docs/benchmarks.md.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

/// The same allocator as the `zentralink` binary, so the figures are the binary's.
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::fmt::Write as _;
use std::hint::black_box;
use std::time::Duration;

use criterion::{BatchSize, BenchmarkId, Criterion, SamplingMode, criterion_group, criterion_main};
use hickory_proto::rr::RecordType;
use zentralink_model::catalog::Catalog;
use zentralink_model::documents::{SourceFile, parse_documents};
use zentralink_model::policy::{GatePolicy, PlanOrigin, classify};
use zentralink_model::{
    ChangeOp, PlanScope, RecordSet, RecordValue, RrKey, ZoneContent, ZoneName, plan_digest,
    plan_zone,
};

const ORIGIN: &str = "bench.example.";
const SIZES: [usize; 3] = [1_000, 10_000, 100_000];

/// One record set as plain data: owner (relative), type, TTL, value texts.
#[derive(Debug, Clone)]
struct Spec {
    owner: String,
    rtype: RecordType,
    ttl: u32,
    values: Vec<String>,
}

/// Record set `i` of a zone: two sets per host (`host-00000`), an A set and
/// one of AAAA, TXT, MX in turn.
fn spec(i: usize) -> Spec {
    let host = i / 2;
    let owner = format!("host-{host:05}");
    let (a, b, c) = ((host >> 16) & 0xff, (host >> 8) & 0xff, host & 0xff);
    if i.is_multiple_of(2) {
        let mut values = vec![format!("10.{a}.{b}.{c}")];
        if host.is_multiple_of(5) {
            values.push(format!("10.{}.{b}.{c}", 128 + a));
        }
        return Spec {
            owner,
            rtype: RecordType::A,
            ttl: 300,
            values,
        };
    }
    match host % 3 {
        0 => Spec {
            owner,
            rtype: RecordType::AAAA,
            ttl: 300,
            values: vec![format!("2001:db8:{a:x}:{b:x}::{c:x}")],
        },
        1 => Spec {
            owner,
            rtype: RecordType::TXT,
            ttl: 3600,
            values: vec![format!(
                "\"v=spf1 ip4:10.{a}.{b}.{c} include:_spf.bench.example. -all\""
            )],
        },
        _ => Spec {
            owner,
            rtype: RecordType::MX,
            ttl: 3600,
            values: vec![
                format!("10 mx{}.bench.example.", host % 7),
                format!("20 mx-backup{}.bench.example.", host % 3),
            ],
        },
    }
}

/// The desired and actual record sets of a zone of `n` sets, 1% of them
/// changed: of every 300 sets, one is updated (TTL and a value), one exists
/// only in the desired zone (create) and one only in the actual zone (delete).
fn specs(n: usize) -> (Vec<Spec>, Vec<Spec>) {
    let mut desired = Vec::with_capacity(n);
    let mut actual = Vec::with_capacity(n);
    for i in 0..n {
        let s = spec(i);
        match i % 300 {
            0 => {
                let mut changed = s.clone();
                changed.ttl += 60;
                if changed.rtype == RecordType::A {
                    changed.values[0] = format!("192.0.2.{}", i % 256);
                }
                desired.push(changed);
                actual.push(s);
            }
            100 => desired.push(s),
            200 => actual.push(s),
            _ => {
                desired.push(s.clone());
                actual.push(s);
            }
        }
    }
    (desired, actual)
}

fn expected_changes(n: usize) -> usize {
    (0..n).filter(|i| i.is_multiple_of(100)).count()
}

fn zone(specs: &[Spec]) -> ZoneContent {
    let origin = ZoneName::parse(ORIGIN).unwrap();
    let mut content = ZoneContent::new(origin.clone());
    for s in specs {
        let values = s
            .values
            .iter()
            .map(|v| RecordValue::parse(s.rtype, v, &origin).unwrap())
            .collect();
        content.sets.insert(
            RrKey::new(origin.owner(&s.owner).unwrap(), s.rtype),
            RecordSet::new(s.ttl, values),
        );
    }
    content
}

/// A manifest with a Tenant, its TenantPolicy, a zonefile ProviderConnection
/// and a DnsZone holding `specs`.
fn manifest(specs: &[Spec]) -> String {
    let mut out = String::with_capacity(specs.len() * 110 + 1024);
    out.push_str(
        "\
apiVersion: dns.zentralink.net/v1alpha1
kind: Tenant
metadata:
  name: bench
spec:
  displayName: Bench Corp
  namespaces: [bench]
  allowedDomains: [bench.example.]
---
apiVersion: dns.zentralink.net/v1alpha1
kind: TenantPolicy
metadata:
  name: policy
  namespace: bench
spec:
  approvals:
    requiredFor:
      recordTypes: [MX, NS, TXT, CAA, SOA]
      deletions: true
      bulkChangeThreshold: 20
    minApprovals: 1
    expiresAfter: 72h
---
apiVersion: dns.zentralink.net/v1alpha1
kind: ProviderConnection
metadata:
  name: files
  namespace: bench
spec:
  type: zonefile
  zonefile:
    directory: zones
---
apiVersion: dns.zentralink.net/v1alpha1
kind: DnsZone
metadata:
  name: bench-example
  namespace: bench
spec:
  zone: bench.example.
  providerRef:
    name: files
  defaultTtl: 3600
  recordSets:
",
    );
    for s in specs {
        let _ = writeln!(out, "    - name: {}", s.owner);
        let _ = writeln!(out, "      type: {}", s.rtype);
        let _ = writeln!(out, "      ttl: {}", s.ttl);
        out.push_str("      values:\n");
        for v in &s.values {
            // Single-quoted YAML scalars keep TXT's double quotes as written.
            let _ = writeln!(out, "        - '{}'", v.replace('\'', "''"));
        }
    }
    out
}

fn load_validate_plan(text: &str, actual: &ZoneContent) -> zentralink_model::Plan {
    let (objects, errors) = parse_documents(&SourceFile::new("bench.yaml", text));
    assert!(errors.is_empty(), "{errors}");
    let (catalog, errors) = Catalog::build(objects);
    assert!(errors.is_empty(), "{errors}");
    let entry = catalog.zones.first().expect("the manifest declares a zone");
    plan_zone(&entry.desired, actual, &PlanScope::default())
}

fn configure(
    group: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>,
    n: usize,
) {
    if n >= 100_000 {
        group
            .sample_size(10)
            .sampling_mode(SamplingMode::Flat)
            .warm_up_time(Duration::from_secs(1))
            .measurement_time(Duration::from_secs(5));
    } else {
        group
            .sample_size(20)
            .sampling_mode(SamplingMode::Auto)
            .warm_up_time(Duration::from_secs(1))
            .measurement_time(Duration::from_secs(3));
    }
}

fn bench_plan(c: &mut Criterion) {
    let mut group = c.benchmark_group("plan_zone");
    for n in SIZES {
        let (desired, actual) = specs(n);
        let (desired, actual) = (zone(&desired), zone(&actual));
        let plan = plan_zone(&desired, &actual, &PlanScope::default());
        assert_eq!(plan.changes.len(), expected_changes(n));
        assert!(
            plan.count(ChangeOp::Create) > 0
                && plan.count(ChangeOp::Update) > 0
                && plan.count(ChangeOp::Delete) > 0
        );
        configure(&mut group, n);
        group.bench_with_input(BenchmarkId::from_parameter(n), &n, |b, _| {
            b.iter(|| {
                plan_zone(
                    black_box(&desired),
                    black_box(&actual),
                    &PlanScope::default(),
                )
            })
        });
    }
    group.finish();
}

fn bench_digest_and_classify(c: &mut Criterion) {
    let n = 100_000;
    let (desired, actual) = specs(n);
    let plan = plan_zone(&zone(&desired), &zone(&actual), &PlanScope::default());
    assert_eq!(plan.changes.len(), expected_changes(n));
    let policy = GatePolicy::default();
    let mut group = c.benchmark_group("gate_100000");
    group
        .sample_size(50)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
    group.bench_function("plan_digest", |b| {
        b.iter(|| plan_digest(black_box("bench"), black_box(&plan)))
    });
    group.bench_function("classify", |b| {
        b.iter_batched(
            || plan.clone(),
            |p| classify("bench", p, &policy, PlanOrigin::Declared),
            BatchSize::SmallInput,
        )
    });
    group.finish();
}

fn bench_yaml(c: &mut Criterion) {
    let mut group = c.benchmark_group("load_validate_plan");
    for n in SIZES {
        let (desired, actual) = specs(n);
        let text = manifest(&desired);
        let actual = zone(&actual);
        // Once outside the measurement: the loaded zone is the one built
        // directly, so the plan is the 1% one.
        let plan = load_validate_plan(&text, &actual);
        assert_eq!(
            plan,
            plan_zone(&zone(&desired), &actual, &PlanScope::default())
        );
        assert_eq!(plan.changes.len(), expected_changes(n));
        configure(&mut group, n);
        group.bench_with_input(BenchmarkId::from_parameter(n), &n, |b, _| {
            b.iter(|| load_validate_plan(black_box(&text), black_box(&actual)))
        });
        if n == 100_000 {
            // Where the time goes: YAML parsing alone.
            group.bench_function("parse_documents_only/100000", |b| {
                b.iter(|| parse_documents(&SourceFile::new("bench.yaml", black_box(text.as_str()))))
            });
        }
    }
    group.finish();
}

criterion_group!(benches, bench_plan, bench_digest_and_classify, bench_yaml);
criterion_main!(benches);
