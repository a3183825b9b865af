//! The operator's Prometheus metrics: one registry of `zentralink_*`
//! families that the reconcile loop updates through plain-valued methods and
//! `/metrics` encodes as OpenMetrics text. No I/O.

use std::sync::Arc;
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::{Registry, Unit};
use zentralink_providers::ProviderError;

/// `Content-Type` of what [`Metrics::encode`] returns.
pub const OPENMETRICS_CONTENT_TYPE: &str =
    "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Prefix of every metric family name.
const PREFIX: &str = "zentralink";

/// Histogram buckets of a reconcile pass, in seconds: 5 ms to 60 s.
const PASS_BUCKETS: [f64; 14] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 20.0, 30.0, 60.0,
];

/// Histogram buckets of one provider request, in seconds: 5 ms to 60 s.
const PROVIDER_BUCKETS: [f64; 14] = PASS_BUCKETS;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ZoneLabels {
    zone: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ZoneOutcomeLabels {
    zone: String,
    outcome: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ZoneResultLabels {
    zone: String,
    result: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ConnectionKindLabels {
    connection: String,
    kind: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ConnectionOperationLabels {
    connection: String,
    operation: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct TenantResultLabels {
    tenant: String,
    result: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct SourceLabels {
    source: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct SourceResultLabels {
    source: String,
    result: String,
}

type HistogramFamily<L> = Family<L, Histogram, fn() -> Histogram>;

fn pass_histogram() -> Histogram {
    Histogram::new(PASS_BUCKETS)
}

fn provider_histogram() -> Histogram {
    Histogram::new(PROVIDER_BUCKETS)
}

/// The operator's metrics. Cloning is cheap (one `Arc`) and every method
/// takes `&self`, so the loop, its tasks and the HTTP server share one.
///
/// Label values are taken as given: pass the documented values (outcomes,
/// kinds, results), not free text, so the number of series stays bounded.
#[derive(Clone, Debug)]
pub struct Metrics {
    inner: Arc<Families>,
}

#[derive(Debug)]
struct Families {
    registry: Registry,
    reconcile_passes: Family<ZoneOutcomeLabels, Counter>,
    reconcile_pass_duration: HistogramFamily<ZoneLabels>,
    plan_changes: Family<ZoneLabels, Gauge>,
    pending_change_requests: Family<ZoneLabels, Gauge>,
    drift_record_sets: Family<ZoneLabels, Gauge>,
    provider_errors: Family<ConnectionKindLabels, Counter>,
    provider_request_duration: HistogramFamily<ConnectionOperationLabels>,
    source_fetches: Family<SourceResultLabels, Counter>,
    source_last_good_revision: Family<SourceLabels, Gauge>,
    source_last_pass: Family<SourceLabels, Gauge>,
    executions: Family<ZoneResultLabels, Counter>,
    approvals_judged: Family<TenantResultLabels, Counter>,
}

impl Families {
    /// Registers each family under its name. Counters get their `_total`
    /// suffix, and families with a unit their `_seconds` suffix, from the encoder.
    fn register_all(&mut self) {
        let registry = &mut self.registry;
        registry.register(
            "reconcile_passes",
            "Reconcile passes of a zone, by outcome",
            self.reconcile_passes.clone(),
        );
        registry.register_with_unit(
            "reconcile_pass_duration",
            "Time one reconcile pass of a zone took",
            Unit::Seconds,
            self.reconcile_pass_duration.clone(),
        );
        registry.register(
            "plan_changes",
            "Record-set changes in the last plan of a zone",
            self.plan_changes.clone(),
        );
        registry.register(
            "pending_change_requests",
            "Change requests of a zone waiting for approval",
            self.pending_change_requests.clone(),
        );
        registry.register(
            "drift_record_sets",
            "Record sets of a zone whose provider content differs from the last applied state",
            self.drift_record_sets.clone(),
        );
        registry.register(
            "provider_errors",
            "Failed provider calls of a connection, by kind of error",
            self.provider_errors.clone(),
        );
        registry.register_with_unit(
            "provider_request_duration",
            "Time one provider call took, by operation (read, apply, test, probe)",
            Unit::Seconds,
            self.provider_request_duration.clone(),
        );
        registry.register(
            "source_fetches",
            "Fetches of a source of desired state, by result (ok, unreachable, invalid)",
            self.source_fetches.clone(),
        );
        registry.register_with_unit(
            "source_last_good_revision_timestamp",
            "Unix time at which a source last gave a revision that loaded without errors",
            Unit::Seconds,
            self.source_last_good_revision.clone(),
        );
        registry.register_with_unit(
            "source_last_pass_timestamp",
            "Unix time at which the last reconcile pass over a source finished",
            Unit::Seconds,
            self.source_last_pass.clone(),
        );
        registry.register(
            "executions",
            "Executions of a plan on a zone, by result (applied, failed, recovered, abandoned)",
            self.executions.clone(),
        );
        registry.register(
            "approvals_judged",
            "Signed approvals judged, by tenant and result (accepted, or the refusal's code)",
            self.approvals_judged.clone(),
        );
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// A fresh registry with every family registered and no series yet.
    pub fn new() -> Self {
        let mut families = Families {
            registry: Registry::with_prefix(PREFIX),
            reconcile_passes: Family::default(),
            reconcile_pass_duration: Family::new_with_constructor(pass_histogram),
            plan_changes: Family::default(),
            pending_change_requests: Family::default(),
            drift_record_sets: Family::default(),
            provider_errors: Family::default(),
            provider_request_duration: Family::new_with_constructor(provider_histogram),
            source_fetches: Family::default(),
            source_last_good_revision: Family::default(),
            source_last_pass: Family::default(),
            executions: Family::default(),
            approvals_judged: Family::default(),
        };
        families.register_all();
        Self {
            inner: Arc::new(families),
        }
    }

    /// One reconcile pass of `zone` ended with `outcome` after `duration`.
    pub fn pass_finished(&self, zone: &str, outcome: &str, duration: Duration) {
        self.inner
            .reconcile_passes
            .get_or_create(&ZoneOutcomeLabels {
                zone: zone.to_owned(),
                outcome: outcome.to_owned(),
            })
            .inc();
        self.inner
            .reconcile_pass_duration
            .get_or_create(&zone_labels(zone))
            .observe(duration.as_secs_f64());
    }

    /// The last plan of `zone` had `changes` record-set changes.
    pub fn set_plan_changes(&self, zone: &str, changes: usize) {
        set_count(&self.inner.plan_changes, zone, changes);
    }

    /// `zone` has `pending` change requests waiting for approval.
    pub fn set_pending(&self, zone: &str, pending: usize) {
        set_count(&self.inner.pending_change_requests, zone, pending);
    }

    /// `drifted` record sets of `zone` differ from the last applied state.
    pub fn set_drift(&self, zone: &str, drifted: usize) {
        set_count(&self.inner.drift_record_sets, zone, drifted);
    }

    /// A call to `connection` failed with `kind`, one of not_sent,
    /// unreachable, authentication, conflict, invalid_answer, rate_limited,
    /// uncertain, unsupported, io, not_live, zone_not_found (see
    /// [`provider_error_kind`], and [`Metrics::provider_failed`] which uses it).
    pub fn provider_error(&self, connection: &str, kind: &str) {
        self.inner
            .provider_errors
            .get_or_create(&ConnectionKindLabels {
                connection: connection.to_owned(),
                kind: kind.to_owned(),
            })
            .inc();
    }

    /// A call to `connection` failed with `error`: counted under its kind.
    pub fn provider_failed(&self, connection: &str, error: &ProviderError) {
        self.provider_error(connection, provider_error_kind(error));
    }

    /// A call to `connection` (`operation`: read, apply, test or probe) took `duration`.
    pub fn provider_call(&self, connection: &str, operation: &str, duration: Duration) {
        self.inner
            .provider_request_duration
            .get_or_create(&ConnectionOperationLabels {
                connection: connection.to_owned(),
                operation: operation.to_owned(),
            })
            .observe(duration.as_secs_f64());
    }

    /// A fetch of `source` ended with `result`: ok, unreachable or invalid.
    pub fn source_fetch(&self, source: &str, result: &str) {
        self.inner
            .source_fetches
            .get_or_create(&SourceResultLabels {
                source: source.to_owned(),
                result: result.to_owned(),
            })
            .inc();
    }

    /// `source` gave a good revision at `unix_seconds`.
    pub fn source_good_revision(&self, source: &str, unix_seconds: i64) {
        self.inner
            .source_last_good_revision
            .get_or_create(&source_labels(source))
            .set(unix_seconds);
    }

    /// A reconcile pass over `source` finished at `unix_seconds`.
    pub fn source_pass(&self, source: &str, unix_seconds: i64) {
        self.inner
            .source_last_pass
            .get_or_create(&source_labels(source))
            .set(unix_seconds);
    }

    /// An execution on `zone` ended with `result`: applied, failed, recovered or abandoned.
    pub fn execution(&self, zone: &str, result: &str) {
        self.inner
            .executions
            .get_or_create(&ZoneResultLabels {
                zone: zone.to_owned(),
                result: result.to_owned(),
            })
            .inc();
    }

    /// A signed approval of `tenant` was judged: `accepted`, or the refusal's code.
    pub fn approval_judged(&self, tenant: &str, result: &str) {
        self.inner
            .approvals_judged
            .get_or_create(&TenantResultLabels {
                tenant: tenant.to_owned(),
                result: result.to_owned(),
            })
            .inc();
    }

    /// Every family as OpenMetrics text (ending in `# EOF`), served with
    /// [`OPENMETRICS_CONTENT_TYPE`].
    pub fn encode(&self) -> String {
        let mut text = String::new();
        // Writing into a `String` cannot fail, and label values are plain
        // strings, so the encoder has no error to return here.
        if encode(&mut text, &self.inner.registry).is_err() {
            tracing::error!("encoding the metrics failed; the exposition is incomplete");
        }
        text
    }
}

/// The `kind` label of a provider error, as [`Metrics::provider_error`] takes it.
pub fn provider_error_kind(error: &ProviderError) -> &'static str {
    match error {
        ProviderError::NotSent(_) => "not_sent",
        ProviderError::Unreachable(_) => "unreachable",
        ProviderError::Authentication(_) => "authentication",
        ProviderError::ZoneNotFound(_) => "zone_not_found",
        ProviderError::Conflict(_) => "conflict",
        ProviderError::InvalidAnswer(_) => "invalid_answer",
        ProviderError::NotLive(_) => "not_live",
        ProviderError::RateLimited(_) => "rate_limited",
        ProviderError::Uncertain(_) => "uncertain",
        ProviderError::Unsupported(_) => "unsupported",
        ProviderError::Io(_) => "io",
    }
}

fn zone_labels(zone: &str) -> ZoneLabels {
    ZoneLabels {
        zone: zone.to_owned(),
    }
}

fn source_labels(source: &str) -> SourceLabels {
    SourceLabels {
        source: source.to_owned(),
    }
}

fn set_count(family: &Family<ZoneLabels, Gauge>, zone: &str, count: usize) {
    let value = i64::try_from(count).unwrap_or(i64::MAX);
    family.get_or_create(&zone_labels(zone)).set(value);
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The exposition parsed the way Prometheus reads it: metadata lines by
    /// family, samples by name and labels.
    #[derive(Debug, Default)]
    struct Exposition {
        help: Vec<String>,
        types: Vec<(String, String)>,
        units: Vec<(String, String)>,
        samples: Vec<Sample>,
        ends_with_eof: bool,
    }

    impl Exposition {
        fn parse(text: &str) -> Self {
            let mut parsed = Exposition::default();
            let mut lines = text.lines().peekable();
            while let Some(line) = lines.next() {
                if line == "# EOF" {
                    assert!(lines.peek().is_none(), "text after # EOF");
                    parsed.ends_with_eof = true;
                } else if let Some(rest) = line.strip_prefix("# HELP ") {
                    let (name, help) = rest.split_once(' ').expect("HELP name text");
                    assert!(!help.is_empty(), "{line}");
                    parsed.help.push(name.to_owned());
                } else if let Some(rest) = line.strip_prefix("# TYPE ") {
                    let (name, kind) = rest.split_once(' ').expect("TYPE name kind");
                    parsed.types.push((name.to_owned(), kind.to_owned()));
                } else if let Some(rest) = line.strip_prefix("# UNIT ") {
                    let (name, unit) = rest.split_once(' ').expect("UNIT name unit");
                    parsed.units.push((name.to_owned(), unit.to_owned()));
                } else {
                    assert!(!line.starts_with('#'), "unknown comment {line}");
                    parsed.samples.push(parse_sample(line));
                }
            }
            parsed
        }

        fn kind_of(&self, family: &str) -> Option<&str> {
            self.types
                .iter()
                .find(|(name, _)| name == family)
                .map(|(_, kind)| kind.as_str())
        }

        fn value(&self, sample: &str, labels: &[(&str, &str)]) -> Option<f64> {
            self.samples
                .iter()
                .find(|found| {
                    found.name == sample
                        && found.labels.len() == labels.len()
                        && labels.iter().all(|(key, value)| {
                            found.labels.iter().any(|(k, v)| k == key && v == value)
                        })
                })
                .map(|found| found.value)
        }
    }

    /// One sample line: `name{a="1",b="2"} 3.0`, or `name 3.0`.
    #[derive(Debug)]
    struct Sample {
        name: String,
        labels: Vec<(String, String)>,
        value: f64,
    }

    fn parse_sample(line: &str) -> Sample {
        let (series, value) = line.rsplit_once(' ').expect("sample has a value");
        let value: f64 = value.parse().unwrap_or_else(|_| panic!("value in {line}"));
        let Some((name, labels)) = series.split_once('{') else {
            return Sample {
                name: series.to_owned(),
                labels: Vec::new(),
                value,
            };
        };
        let labels = labels.strip_suffix('}').expect("labels close");
        let labels = labels
            .split(',')
            .map(|pair| {
                let (key, quoted) = pair.split_once('=').expect("label key=value");
                let unquoted = quoted
                    .strip_prefix('"')
                    .and_then(|v| v.strip_suffix('"'))
                    .expect("quoted label value");
                (key.to_owned(), unquoted.to_owned())
            })
            .collect();
        assert!(
            name.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':'),
            "metric name {name}"
        );
        Sample {
            name: name.to_owned(),
            labels,
            value,
        }
    }

    fn filled() -> Metrics {
        let metrics = Metrics::new();
        metrics.pass_finished("acme.example.", "applied", Duration::from_millis(20));
        metrics.set_plan_changes("acme.example.", 3);
        metrics.set_pending("acme.example.", 1);
        metrics.set_drift("acme.example.", 2);
        metrics.provider_error("pdns-main", "unreachable");
        metrics.provider_call("pdns-main", "read", Duration::from_millis(7));
        metrics.source_fetch("zones-repo", "ok");
        metrics.source_good_revision("zones-repo", 1_700_000_000);
        metrics.source_pass("zones-repo", 1_700_000_060);
        metrics.execution("acme.example.", "applied");
        metrics.approval_judged("acme", "accepted");
        metrics.approval_judged("acme", "UnknownKey");
        metrics
    }

    #[test]
    fn a_fresh_registry_has_no_series_and_ends_with_eof() {
        // prometheus-client leaves out families without series
        assert_eq!(Metrics::new().encode(), "# EOF\n");
    }

    #[test]
    fn every_family_is_declared_with_help_type_and_unit_once_set() {
        let parsed = Exposition::parse(&filled().encode());
        assert!(parsed.ends_with_eof);
        let expected = [
            ("zentralink_reconcile_passes", "counter"),
            ("zentralink_reconcile_pass_duration_seconds", "histogram"),
            ("zentralink_plan_changes", "gauge"),
            ("zentralink_pending_change_requests", "gauge"),
            ("zentralink_drift_record_sets", "gauge"),
            ("zentralink_provider_errors", "counter"),
            ("zentralink_provider_request_duration_seconds", "histogram"),
            ("zentralink_source_fetches", "counter"),
            (
                "zentralink_source_last_good_revision_timestamp_seconds",
                "gauge",
            ),
            ("zentralink_source_last_pass_timestamp_seconds", "gauge"),
            ("zentralink_executions", "counter"),
            ("zentralink_approvals_judged", "counter"),
        ];
        for (family, kind) in expected {
            assert_eq!(parsed.kind_of(family), Some(kind), "{family}");
            assert!(parsed.help.iter().any(|h| h == family), "HELP {family}");
        }
        assert_eq!(parsed.types.len(), expected.len());
        assert_eq!(parsed.help.len(), expected.len());
        for (family, unit) in &parsed.units {
            assert_eq!(unit, "seconds", "{family}");
            assert!(family.ends_with("_seconds"), "{family}");
        }
        assert_eq!(parsed.units.len(), 4);
        // every sample belongs to a declared family
        for Sample { name, .. } in &parsed.samples {
            let declared = parsed.types.iter().any(|(family, kind)| {
                let suffixes: &[&str] = match kind.as_str() {
                    "counter" => &["_total"],
                    "histogram" => &["_bucket", "_sum", "_count"],
                    _ => &[""],
                };
                suffixes
                    .iter()
                    .any(|suffix| *name == format!("{family}{suffix}"))
            });
            assert!(declared, "sample {name} has no family");
        }
    }

    #[test]
    fn every_family_appears_with_its_labels_once_set() {
        let parsed = Exposition::parse(&filled().encode());
        assert!(parsed.ends_with_eof);
        let zone = ("zone", "acme.example.");
        let expect = |sample: &str, labels: &[(&str, &str)], expected: f64| {
            let value = parsed
                .value(sample, labels)
                .unwrap_or_else(|| panic!("{sample} {labels:?} missing"));
            assert!((value - expected).abs() < 1e-9, "{sample}: {value}");
        };
        let pdns_read = [("connection", "pdns-main"), ("operation", "read")];
        let repo = [("source", "zones-repo")];
        expect(
            "zentralink_reconcile_passes_total",
            &[zone, ("outcome", "applied")],
            1.0,
        );
        expect(
            "zentralink_reconcile_pass_duration_seconds_count",
            &[zone],
            1.0,
        );
        expect(
            "zentralink_reconcile_pass_duration_seconds_sum",
            &[zone],
            0.02,
        );
        expect("zentralink_plan_changes", &[zone], 3.0);
        expect("zentralink_pending_change_requests", &[zone], 1.0);
        expect("zentralink_drift_record_sets", &[zone], 2.0);
        expect(
            "zentralink_provider_errors_total",
            &[("connection", "pdns-main"), ("kind", "unreachable")],
            1.0,
        );
        expect(
            "zentralink_provider_request_duration_seconds_count",
            &pdns_read,
            1.0,
        );
        expect(
            "zentralink_provider_request_duration_seconds_sum",
            &pdns_read,
            0.007,
        );
        expect(
            "zentralink_source_fetches_total",
            &[("source", "zones-repo"), ("result", "ok")],
            1.0,
        );
        expect(
            "zentralink_source_last_good_revision_timestamp_seconds",
            &repo,
            1_700_000_000.0,
        );
        expect(
            "zentralink_source_last_pass_timestamp_seconds",
            &repo,
            1_700_000_060.0,
        );
        expect(
            "zentralink_executions_total",
            &[zone, ("result", "applied")],
            1.0,
        );
        expect(
            "zentralink_approvals_judged_total",
            &[("tenant", "acme"), ("result", "UnknownKey")],
            1.0,
        );
    }

    #[test]
    fn a_pass_lands_in_the_buckets_from_5_ms_to_60_s() {
        let metrics = Metrics::new();
        metrics.pass_finished("a.example.", "noop", Duration::from_millis(3));
        metrics.pass_finished("a.example.", "noop", Duration::from_secs(45));
        metrics.pass_finished("a.example.", "noop", Duration::from_secs(120));
        let parsed = Exposition::parse(&metrics.encode());
        let bucket = |le: &str| {
            parsed
                .value(
                    "zentralink_reconcile_pass_duration_seconds_bucket",
                    &[("zone", "a.example."), ("le", le)],
                )
                .unwrap_or_else(|| panic!("bucket le={le}"))
        };
        assert_eq!(bucket("0.005"), 1.0);
        assert_eq!(bucket("30.0"), 1.0);
        assert_eq!(bucket("60.0"), 2.0);
        assert_eq!(bucket("+Inf"), 3.0);
        let count = parsed.value(
            "zentralink_reconcile_pass_duration_seconds_count",
            &[("zone", "a.example.")],
        );
        assert_eq!(count, Some(3.0));
    }

    #[test]
    fn counters_add_up_and_gauges_keep_the_last_value() {
        let metrics = filled();
        let clone = metrics.clone();
        clone.execution("acme.example.", "applied");
        clone.execution("acme.example.", "failed");
        clone.set_plan_changes("acme.example.", 0);
        let parsed = Exposition::parse(&metrics.encode());
        let zone = ("zone", "acme.example.");
        let executions =
            |result| parsed.value("zentralink_executions_total", &[zone, ("result", result)]);
        assert_eq!(executions("applied"), Some(2.0));
        assert_eq!(executions("failed"), Some(1.0));
        assert_eq!(parsed.value("zentralink_plan_changes", &[zone]), Some(0.0));
    }

    #[test]
    fn label_values_with_quotes_and_newlines_are_escaped() {
        let metrics = Metrics::new();
        metrics.source_fetch("repo \"x\"\nnext", "ok");
        let text = metrics.encode();
        assert!(text.contains(r#"source="repo \"x\"\nnext""#), "{text}");
        // still one sample line per series
        let samples = text
            .lines()
            .filter(|l| l.starts_with("zentralink_source_fetches_total"))
            .count();
        assert_eq!(samples, 1, "{text}");
    }

    #[test]
    fn provider_errors_are_counted_under_their_kind() {
        let metrics = Metrics::new();
        metrics.provider_failed("pdns", &ProviderError::RateLimited("429".into()));
        metrics.provider_failed("pdns", &ProviderError::ZoneNotFound("a.".into()));
        let parsed = Exposition::parse(&metrics.encode());
        for kind in ["rate_limited", "zone_not_found"] {
            let value = parsed.value(
                "zentralink_provider_errors_total",
                &[("connection", "pdns"), ("kind", kind)],
            );
            assert_eq!(value, Some(1.0), "{kind}");
        }
    }

    #[test]
    fn metrics_are_shared_across_threads() {
        let metrics = Metrics::new();
        let handles: Vec<_> = (0..4)
            .map(|_| {
                let metrics = metrics.clone();
                std::thread::spawn(move || {
                    for _ in 0..100 {
                        metrics.source_fetch("s", "ok");
                    }
                })
            })
            .collect();
        for handle in handles {
            handle.join().expect("thread");
        }
        let parsed = Exposition::parse(&metrics.encode());
        let value = parsed.value(
            "zentralink_source_fetches_total",
            &[("source", "s"), ("result", "ok")],
        );
        assert_eq!(value, Some(400.0));
    }
}
