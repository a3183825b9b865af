//! The Hetzner DNS provider against a local server speaking the Hetzner DNS
//! API (tests/common/fake_hetzner.rs): the provider suite, paging, retries,
//! rate limits, timeouts, authentication, and record-by-record writes that
//! fail halfway; and against misbehaving servers (tests/common/hostile_http.rs):
//! redirects, huge answers, answers of the wrong shape. Does I/O (loopback HTTP).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::http::Method;
use common::fake_hetzner::{self, FakeHetzner, TOKEN};
use common::hostile_http::{HugeAnswer, Recorder, Redirector, Scripted, Size};
use common::provider_suite::{self, managed, read, set};
use zentralink_model::plan::{ChangeOp, PlanScope, plan_zone};
use zentralink_model::resources::HttpApiSettings;
use zentralink_model::secrets::SecretString;
use zentralink_model::{ZoneContent, ZoneName};
use zentralink_providers::hetzner::HetznerProvider;
use zentralink_providers::resilience::Limits;
use zentralink_providers::{GatedProvider, Provider, ProviderError};

/// The suite's types Hetzner stores (all of them).
const TYPES: &[&str] = &["A", "AAAA", "CNAME", "MX", "TXT", "SRV", "CAA"];

/// Retries quickly, but honours a Retry-After of a second.
fn limits() -> Limits {
    Limits {
        timeout: Duration::from_secs(3),
        first_backoff: Duration::from_millis(10),
        max_backoff: Duration::from_secs(2),
        ..Limits::default()
    }
}

fn provider_at(url: String, token: &str, limits: Limits) -> HetznerProvider {
    HetznerProvider::new(
        &HttpApiSettings { url: Some(url) },
        SecretString::new(token),
        limits,
    )
    .unwrap()
}

fn provider(fake: &FakeHetzner) -> HetznerProvider {
    provider_at(fake.url(), TOKEN, limits())
}

fn zone(name: &str) -> ZoneName {
    ZoneName::parse(name).unwrap()
}

/// A fake with one zone holding only what Hetzner creates (SOA, NS).
async fn fake_with_zone(name: &str) -> (FakeHetzner, ZoneName) {
    let fake = FakeHetzner::start().await;
    fake.add_zone(name);
    (fake, zone(name))
}

/// A plan creating `www A 192.0.2.1` and `mail A 192.0.2.2`.
fn two_creates(z: &ZoneName) -> zentralink_model::plan::Plan {
    let mut desired = ZoneContent::new(z.clone());
    for (name, ip) in [("www", "192.0.2.1"), ("mail", "192.0.2.2")] {
        let (k, s) = set(z, name, "A", 300, &[ip]);
        desired.sets.insert(k, s);
    }
    plan_zone(
        &desired,
        &ZoneContent::new(z.clone()),
        &PlanScope::default(),
    )
}

#[tokio::test]
async fn hetzner_passes_the_provider_suite() {
    let (fake, z) = fake_with_zone("suite.example.").await;
    let p = provider(&fake);
    provider_suite::run(&p, &z, TYPES).await;

    let gated = GatedProvider::new(
        Box::new(p.clone()),
        false,
        "connection lab/hetzner is ReadOnly",
    );
    let writes = fake.write_count();
    provider_suite::not_live_writes_nothing(&gated, &z).await;
    assert_eq!(fake.write_count(), writes, "a gated apply sends nothing");
}

#[tokio::test]
async fn zones_and_records_are_read_across_pages() {
    let fake = FakeHetzner::start().await;
    for n in 0..7 {
        fake.add_zone(&format!("z{n}.example."));
    }
    let z = zone("z3.example.");
    for n in 0..10 {
        fake.add_record(
            "z3.example",
            &format!("host{n}"),
            "A",
            &format!("192.0.2.{n}"),
            Some(300),
        );
    }
    fake.add_record("z3.example", "multi", "A", "198.51.100.1", Some(300));
    fake.add_record("z3.example", "multi", "A", "198.51.100.2", Some(60));
    let p = provider(&fake);

    let zones = p.list_zones().await.unwrap();
    assert_eq!(zones.len(), 7, "{zones:?}");
    assert!(zones.contains(&z));

    fake.clear_requests();
    let content = read(&p, &z).await;
    // 10 hosts + multi + SOA + NS (the NS set holds 3 records)
    assert_eq!(content.len(), 13);
    assert_eq!(content.record_count(), 16);
    let pages = fake
        .requests()
        .iter()
        .filter(|r| r.starts_with("GET /api/v1/records?"))
        .count();
    assert_eq!(pages, 6, "16 records, 3 per page: {:?}", fake.requests());

    // A set whose records carry different TTLs reads with the lowest.
    let (k, _) = set(&z, "multi", "A", 60, &["198.51.100.1"]);
    assert_eq!(content.get(&k).unwrap().ttl, 60);
    assert_eq!(content.get(&k).unwrap().values().len(), 2);
}

#[tokio::test]
async fn records_entered_in_the_console_are_understood() {
    let (fake, z) = fake_with_zone("console.example.").await;
    // No TTL (the zone's applies), a relative MX target, an unquoted TXT, a
    // quoted multi-string TXT with the trailing space the API adds.
    fake.add_record("console.example", "@", "MX", "10 smtpin", None);
    fake.add_record("console.example", "@", "TXT", "v=spf1 mx -all", Some(600));
    fake.add_record(
        "console.example",
        "dkim",
        "TXT",
        "\"v=DKIM1; k=rsa; \" \"p=MIIB\" ",
        Some(600),
    );
    let content = read(&provider(&fake), &z).await;
    let texts = |name: &str, t: &str| {
        let (k, _) = set(&z, name, t, 1, &[]);
        let s = content.get(&k).unwrap();
        (s.ttl, s.texts())
    };
    assert_eq!(
        texts("@", "MX"),
        (86_400, vec!["10 smtpin.console.example.".to_owned()])
    );
    assert_eq!(
        texts("@", "TXT"),
        (600, vec!["\"v=spf1 mx -all\"".to_owned()])
    );
    assert_eq!(
        texts("dkim", "TXT"),
        (600, vec!["\"v=DKIM1; k=rsa; \" \"p=MIIB\"".to_owned()])
    );
}

#[tokio::test]
async fn an_unknown_zone_reads_as_none_and_cannot_be_written() {
    let (fake, _) = fake_with_zone("known.example.").await;
    let p = provider(&fake);
    let other = zone("unknown.example.");
    assert_eq!(p.read_zone(&other).await.unwrap(), None);
    let err = p.apply(&two_creates(&other)).await.unwrap_err();
    assert_eq!(err, ProviderError::ZoneNotFound("unknown.example.".into()));
    assert_eq!(fake.write_count(), 0);
    // An account without zones: the API answers 404, which is an empty list.
    let empty = FakeHetzner::start().await;
    assert!(provider(&empty).list_zones().await.unwrap().is_empty());
    provider(&empty).test_connection().await.unwrap();
}

#[tokio::test]
async fn a_read_answered_500_is_retried() {
    let (fake, z) = fake_with_zone("retry.example.").await;
    let p = provider(&fake);
    fake.set_max_per_page(10);
    fake.clear_requests();
    fake.fail_next_requests(2);
    let content = p.read_zone(&z).await.unwrap().unwrap();
    assert!(managed(&content).is_empty());
    // two failed zone lookups, the successful one, then the records
    assert_eq!(fake.request_count(), 4, "{:?}", fake.requests());
}

#[tokio::test]
async fn a_rate_limited_read_waits_for_retry_after() {
    let (fake, z) = fake_with_zone("slow-down.example.").await;
    let p = provider(&fake);
    fake.rate_limit_next(1);
    let start = Instant::now();
    p.read_zone(&z).await.unwrap().unwrap();
    let waited = start.elapsed();
    assert!(
        waited >= Duration::from_secs(1),
        "Retry-After: 1 was not honoured ({waited:?})"
    );
    assert!(waited < Duration::from_secs(3), "{waited:?}");
}

#[tokio::test]
async fn a_write_answered_500_is_uncertain_and_not_retried() {
    let (fake, z) = fake_with_zone("uncertain.example.").await;
    let p = provider(&fake);
    let before = fake.records("uncertain.example");
    fake.fail_next_writes(1);
    let err = p.apply(&two_creates(&z)).await.unwrap_err();
    assert!(matches!(err, ProviderError::Uncertain(_)), "{err}");
    assert!(err.to_string().contains("re-read"), "{err}");
    assert_eq!(
        fake.write_count(),
        1,
        "a write is never retried: {:?}",
        fake.requests()
    );
    assert_eq!(fake.records("uncertain.example"), before);
}

#[tokio::test]
async fn a_failure_halfway_is_reported_per_operation() {
    let (fake, z) = fake_with_zone("halfway.example.").await;
    let p = provider(&fake);
    let mut desired = ZoneContent::new(z.clone());
    for name in ["a", "b", "c"] {
        let (k, s) = set(&z, name, "A", 300, &["192.0.2.1"]);
        desired.sets.insert(k, s);
    }
    let plan = plan_zone(
        &desired,
        &ZoneContent::new(z.clone()),
        &PlanScope::default(),
    );
    fake.fail_writes_to("b");
    let report = p.apply(&plan).await.unwrap();
    let outcomes: Vec<(String, Result<(), String>)> = report
        .outcomes
        .iter()
        .map(|o| (o.key.to_string(), o.result.clone()))
        .collect();
    assert_eq!(outcomes.len(), 3);
    assert_eq!(outcomes[0], ("a.halfway.example. A".into(), Ok(())));
    let b = outcomes[1].1.as_ref().unwrap_err();
    assert!(b.contains("outcome unknown"), "{b}");
    let c = outcomes[2].1.as_ref().unwrap_err();
    assert!(c.starts_with("not attempted"), "{c}");
    assert!(!report.all_ok());
    // What the report says is what the zone holds.
    let now = managed(&read(&p, &z).await);
    let names: Vec<String> = now.sets.keys().map(|k| k.to_string()).collect();
    assert_eq!(names, vec!["a.halfway.example. A"]);
}

#[tokio::test]
async fn a_record_set_written_partly_says_so() {
    let (fake, z) = fake_with_zone("partly.example.").await;
    let p = provider(&fake);
    let mut desired = ZoneContent::new(z.clone());
    let (k, s) = set(&z, "a", "A", 300, &["192.0.2.1"]);
    desired.sets.insert(k, s);
    let (k, s) = set(&z, "m", "A", 300, &["192.0.2.1", "192.0.2.2"]);
    desired.sets.insert(k, s);
    let plan = plan_zone(
        &desired,
        &ZoneContent::new(z.clone()),
        &PlanScope::default(),
    );
    fake.fail_write_after(2);
    let report = p.apply(&plan).await.unwrap();
    assert_eq!(report.outcomes[0].result, Ok(()));
    let m = report.outcomes[1].result.as_ref().unwrap_err();
    assert!(m.starts_with("partly applied: 1 of 2 record writes"), "{m}");
    let now = managed(&read(&p, &z).await);
    assert_eq!(now.record_count(), 2);
}

#[tokio::test]
async fn updates_rewrite_records_in_place() {
    let (fake, z) = fake_with_zone("inplace.example.").await;
    let p = provider(&fake);
    let mut first = ZoneContent::new(z.clone());
    let (k, s) = set(&z, "www", "A", 300, &["192.0.2.1", "192.0.2.2"]);
    first.sets.insert(k, s);
    p.apply(&plan_zone(
        &first,
        &ZoneContent::new(z.clone()),
        &PlanScope::default(),
    ))
    .await
    .unwrap();
    let mut second = ZoneContent::new(z.clone());
    let (k, s) = set(&z, "www", "A", 300, &["192.0.2.1", "192.0.2.3"]);
    second.sets.insert(k, s);
    let plan = plan_zone(
        &second,
        &managed(&read(&p, &z).await),
        &PlanScope::default(),
    );
    assert_eq!(plan.count(ChangeOp::Update), 1);
    fake.clear_requests();
    p.apply(&plan).await.unwrap();
    let writes: Vec<String> = fake
        .requests()
        .into_iter()
        .filter(|r| !r.starts_with("GET "))
        .collect();
    assert_eq!(
        writes.len(),
        1,
        "only the changed record is rewritten: {writes:?}"
    );
    assert!(writes[0].starts_with("PUT /api/v1/records/"), "{writes:?}");
    assert_eq!(managed(&read(&p, &z).await).to_stored(), second.to_stored());
}

#[tokio::test]
async fn a_wrong_token_is_an_authentication_error_without_the_token() {
    let (fake, z) = fake_with_zone("auth.example.").await;
    let secret = "wrong-token-7d1e0c55";
    let p = provider_at(fake.url(), secret, limits());
    for err in [
        p.read_zone(&z).await.unwrap_err(),
        p.test_connection().await.unwrap_err(),
        p.apply(&two_creates(&z)).await.unwrap_err(),
    ] {
        assert!(matches!(err, ProviderError::Authentication(_)), "{err}");
        let text = err.to_string();
        assert!(
            text.contains("Invalid authentication credentials"),
            "{text}"
        );
        assert!(!text.contains(secret), "the token leaked: {text}");
    }
    assert!(!format!("{p:?}").contains(secret));
    assert_eq!(fake.write_count(), 0);
    // An authentication error is not retried.
    assert_eq!(fake.request_count(), 3, "{:?}", fake.requests());
}

#[tokio::test]
async fn a_server_that_is_down_is_unreachable_after_retries() {
    let url = format!("{}/api/v1", fake_hetzner::closed_port_url().await);
    let p = provider_at(url, TOKEN, limits());
    let start = Instant::now();
    let err = p.read_zone(&zone("down.example.")).await.unwrap_err();
    assert!(matches!(err, ProviderError::NotSent(_)), "{err}");
    assert!(err.to_string().contains("refused"), "{err}");
    // 4 attempts with 10, 20, 40 ms of backoff (and jitter) in between
    assert!(
        start.elapsed() >= Duration::from_millis(30),
        "{:?}",
        start.elapsed()
    );
    let err = p.test_connection().await.unwrap_err();
    assert!(matches!(err, ProviderError::NotSent(_)), "{err}");
}

#[tokio::test]
async fn a_url_that_is_not_the_api_is_an_error_not_a_missing_zone() {
    let (fake, z) = fake_with_zone("wrong-url.example.").await;
    let p = provider_at(format!("{}/v2", fake.url()), TOKEN, limits());
    for err in [
        p.read_zone(&z).await.unwrap_err(),
        p.test_connection().await.unwrap_err(),
        p.list_zones().await.unwrap_err(),
    ] {
        assert!(
            matches!(err, ProviderError::Unsupported(ref m) if m.contains("spec.hetzner.url")),
            "{err}"
        );
    }
}

#[tokio::test]
async fn slow_answers_time_out() {
    let (fake, z) = fake_with_zone("slow.example.").await;
    let p = provider_at(
        fake.url(),
        TOKEN,
        Limits {
            timeout: Duration::from_millis(200),
            attempts: 2,
            ..limits()
        },
    );
    fake.set_delay(Duration::from_secs(1));
    let err = p.read_zone(&z).await.unwrap_err();
    assert!(
        matches!(err, ProviderError::Unreachable(ref m) if m.contains("no answer within")),
        "{err}"
    );
    assert_eq!(fake.request_count(), 2);
}

#[tokio::test]
async fn a_no_op_plan_sends_nothing() {
    let (fake, z) = fake_with_zone("noop.example.").await;
    let p = provider(&fake);
    let plan = plan_zone(
        &ZoneContent::new(z.clone()),
        &ZoneContent::new(z.clone()),
        &PlanScope::default(),
    );
    assert!(plan.is_empty());
    fake.clear_requests();
    let report = p.apply(&plan).await.unwrap();
    assert!(report.outcomes.is_empty());
    assert_eq!(fake.request_count(), 0, "{:?}", fake.requests());
}

#[tokio::test]
async fn unsupported_values_are_refused_before_anything_is_sent() {
    let (fake, z) = fake_with_zone("refuse.example.").await;
    let p = provider(&fake);
    let mut desired = ZoneContent::new(z.clone());
    let (k, s) = set(
        &z,
        "gw",
        "SSHFP",
        300,
        &["4 2 123456789abcdef67890123456789abcdef67890123456789abcdef123456789"],
    );
    desired.sets.insert(k, s);
    let plan = plan_zone(
        &desired,
        &ZoneContent::new(z.clone()),
        &PlanScope::default(),
    );
    let gated = GatedProvider::new(Box::new(p), true, "");
    let err = gated.apply(&plan).await.unwrap_err();
    assert!(
        matches!(err, ProviderError::Unsupported(ref m) if m.contains("SSHFP")),
        "{err}"
    );
    assert_eq!(fake.request_count(), 0);
}

#[tokio::test]
async fn a_connection_document_builds_a_hetzner_provider() {
    let (fake, z) = fake_with_zone("catalog.example.").await;
    let yaml = format!(
        r#"apiVersion: dns.zentralink.net/v1alpha1
kind: Tenant
metadata: {{ name: lab }}
spec:
  displayName: Lab
  namespaces: [lab]
  allowedDomains: [catalog.example.]
---
apiVersion: dns.zentralink.net/v1alpha1
kind: ProviderConnection
metadata: {{ name: hetzner, namespace: lab }}
spec:
  type: hetzner
  hetzner: {{ url: "{url}" }}
  credentials: {{ env: ZL_TEST_HETZNER_TOKEN }}
"#,
        url = fake.url()
    );
    let file = zentralink_model::documents::SourceFile::new("lab.yaml", yaml);
    let (objects, errors) = zentralink_model::documents::parse_documents(&file);
    assert!(errors.is_empty(), "{errors:?}");
    let (catalog, errors) = zentralink_model::catalog::Catalog::build(objects);
    assert!(errors.is_empty(), "{errors:?}");
    let entry = catalog.connection("lab", "hetzner").unwrap();
    let env = zentralink_providers::credentials::CredentialEnv::new(
        [("ZL_TEST_HETZNER_TOKEN".to_owned(), TOKEN.to_owned())],
        &["ZL_TEST_HETZNER_TOKEN".to_owned()],
    )
    .unwrap();
    let sources = zentralink_providers::credentials::CredentialSources {
        env: &env,
        ..Default::default()
    };
    let p = zentralink_providers::connect_with(entry, &sources).unwrap();
    assert_eq!(p.provider_type().as_str(), "hetzner");
    assert!(!p.capabilities().atomic_batch);
    p.test_connection().await.unwrap();
    assert!(p.read_zone(&z).await.unwrap().is_some());
}

// ------------------------------------------------------------------ hardening

#[tokio::test]
async fn the_token_never_follows_a_redirect() {
    let elsewhere = Recorder::start().await;
    let redirector = Redirector::everything_to(elsewhere.url()).await;
    let p = provider_at(format!("{}/api/v1", redirector.url()), TOKEN, limits());
    let z = zone("redirected.example.");
    for err in [
        p.read_zone(&z).await.unwrap_err(),
        p.list_zones().await.unwrap_err(),
        p.test_connection().await.unwrap_err(),
        p.apply(&two_creates(&z)).await.unwrap_err(),
    ] {
        assert!(matches!(err, ProviderError::Unsupported(_)), "{err}");
        let text = err.to_string();
        assert!(
            text.contains(&format!(
                "Hetzner answered 302 Found redirecting to {}/api/v1/zones?",
                elsewhere.url()
            )),
            "{text}"
        );
        assert!(
            text.contains("never follow redirects: set spec.hetzner.url"),
            "{text}"
        );
    }
    assert_eq!(elsewhere.requests(), Vec::<String>::new());
    assert_eq!(redirector.redirected(), 4, "a redirect is not retried");
}

#[tokio::test]
async fn a_write_answered_with_a_redirect_is_not_sent_elsewhere() {
    let (fake, z) = fake_with_zone("redirected-write.example.").await;
    let elsewhere = Recorder::start().await;
    let api = fake.url();
    let redirector = Redirector::writes_to(elsewhere.url(), api.trim_end_matches("/api/v1")).await;
    let p = provider_at(format!("{}/api/v1", redirector.url()), TOKEN, limits());
    let err = p.apply(&two_creates(&z)).await.unwrap_err();
    assert!(
        matches!(err, ProviderError::Unsupported(ref m)
            if m.contains(&format!("307 Temporary Redirect redirecting to {}/api/v1/records", elsewhere.url()))),
        "{err}"
    );
    assert!(redirector.forwarded() > 0, "the zone was read through it");
    assert_eq!(redirector.redirected(), 1, "one write, not repeated");
    assert_eq!(elsewhere.requests(), Vec::<String>::new());
    assert_eq!(fake.write_count(), 0);
}

/// Limits with a small bound on answers (64 KiB), so that going past it is quick.
fn small_answers() -> Limits {
    Limits {
        max_response_bytes: 64 * 1024,
        ..limits()
    }
}

#[tokio::test]
async fn an_answer_larger_than_the_limit_is_refused_while_streaming() {
    for size in [Size::Endless, Size::Chunked(1 << 20)] {
        let server = HugeAnswer::start(200, size).await;
        let p = provider_at(format!("{}/api/v1", server.url()), TOKEN, small_answers());
        let start = Instant::now();
        let err = p.read_zone(&zone("huge.example.")).await.unwrap_err();
        assert!(
            matches!(err, ProviderError::InvalidAnswer(ref m)
                if m.contains("is larger than the 65536 bytes ZentraLink reads of one answer")),
            "{size:?}: {err}"
        );
        assert!(start.elapsed() < Duration::from_secs(2), "{size:?}");
        assert_eq!(
            server.requests(),
            1,
            "{size:?}: a huge answer is not asked for again"
        );
        assert!(
            server.all_closed_within(Duration::from_secs(5)).await,
            "{size:?}: the answer was not abandoned"
        );
        // What the server got into the sockets' buffers before the client hung up.
        assert!(
            server.sent() < 32 << 20,
            "{size:?}: {} bytes",
            server.sent()
        );
    }
}

#[tokio::test]
async fn an_answer_announcing_more_than_the_limit_is_refused_unread() {
    // 1.5 GiB announced, against the default limit.
    let server = HugeAnswer::start(200, Size::Announced(3 << 29)).await;
    let p = provider_at(format!("{}/api/v1", server.url()), TOKEN, limits());
    let err = p.list_zones().await.unwrap_err();
    assert!(
        matches!(err, ProviderError::InvalidAnswer(ref m)
            if m.contains("announces 1610612736 bytes, more than the 256 MiB ZentraLink reads")),
        "{err}"
    );
    // One byte more than a small limit.
    let server = HugeAnswer::start(200, Size::Announced(64 * 1024 + 1)).await;
    let p = provider_at(format!("{}/api/v1", server.url()), TOKEN, small_answers());
    let err = p.read_zone(&zone("huge.example.")).await.unwrap_err();
    assert!(
        matches!(err, ProviderError::InvalidAnswer(ref m) if m.contains("announces 65537 bytes")),
        "{err}"
    );
}

#[tokio::test]
async fn an_error_answer_with_an_endless_body_is_reported_by_its_status() {
    let server = HugeAnswer::start(500, Size::Endless).await;
    let p = provider_at(format!("{}/api/v1", server.url()), TOKEN, small_answers());
    let err = p.read_zone(&zone("huge.example.")).await.unwrap_err();
    assert!(
        matches!(err, ProviderError::Unreachable(ref m) if m.contains("HTTP 500")),
        "{err}"
    );
    assert!(err.to_string().len() < 1000, "{err}");
    assert_eq!(server.requests(), 4, "a 500 is retried, whatever its body");
}

/// `meta` as the API documents it, for one page.
const ONE_PAGE: &str = r#"{"pagination": {"page": 1, "per_page": 100, "previous_page": 1, "next_page": 1, "last_page": 1, "total_entries": 1}}"#;

fn zones_answer(zones: &str, meta: Option<&str>) -> String {
    match meta {
        Some(meta) => format!(r#"{{"zones": {zones}, "meta": {meta}}}"#),
        None => format!(r#"{{"zones": {zones}}}"#),
    }
}

fn records_answer(records: &str, meta: Option<&str>) -> String {
    match meta {
        Some(meta) => format!(r#"{{"records": {records}, "meta": {meta}}}"#),
        None => format!(r#"{{"records": {records}}}"#),
    }
}

/// A server answering `/zones` and `/records` with the given bodies (HTTP
/// 200), and every write with 200 `{}`.
async fn scripted(zones: String, records: String) -> Scripted {
    Scripted::start(Arc::new(
        move |_: &Method, path: &str, _: &str| match path {
            "/api/v1/zones" => (200, zones.clone()),
            "/api/v1/records" => (200, records.clone()),
            _ => (200, "{}".to_owned()),
        },
    ))
    .await
}

#[tokio::test]
async fn an_answer_of_the_wrong_shape_is_an_error_never_an_empty_zone() {
    let zone_ok = r#"[{"id": "z1", "name": "shape.example", "ttl": 86400}]"#;
    let record_ok = r#"[{"id": "r1", "type": "A", "name": "www", "value": "192.0.2.1", "zone_id": "z1", "ttl": 300}]"#;
    let z = zone("shape.example.");

    // The documented shape reads (so the cases below fail for their flaw alone).
    let server = scripted(
        zones_answer(zone_ok, Some(ONE_PAGE)),
        records_answer(record_ok, Some(ONE_PAGE)),
    )
    .await;
    let p = provider_at(format!("{}/api/v1", server.url()), TOKEN, limits());
    assert_eq!(read(&p, &z).await.record_count(), 1);

    let good_zones = zones_answer(zone_ok, Some(ONE_PAGE));
    let good_records = records_answer(record_ok, Some(ONE_PAGE));
    let cases: Vec<(&str, String, String)> = vec![
        (
            "not JSON",
            "<html>maintenance</html>".into(),
            good_records.clone(),
        ),
        (
            "no zones key",
            format!(r#"{{"meta": {ONE_PAGE}}}"#),
            good_records.clone(),
        ),
        (
            "zones: null",
            zones_answer("null", Some(ONE_PAGE)),
            good_records.clone(),
        ),
        (
            "zones: {}",
            zones_answer("{}", Some(ONE_PAGE)),
            good_records.clone(),
        ),
        (
            "a zone without id",
            zones_answer(
                r#"[{"name": "shape.example", "ttl": 86400}]"#,
                Some(ONE_PAGE),
            ),
            good_records.clone(),
        ),
        (
            "zones without meta",
            zones_answer(zone_ok, None),
            good_records.clone(),
        ),
        (
            "meta without pagination",
            zones_answer(zone_ok, Some("{}")),
            good_records.clone(),
        ),
        (
            "last_page missing",
            zones_answer(zone_ok, Some(r#"{"pagination": {"page": 1}}"#)),
            good_records.clone(),
        ),
        (
            "last_page a string",
            zones_answer(zone_ok, Some(r#"{"pagination": {"last_page": "1"}}"#)),
            good_records.clone(),
        ),
        (
            "no records key",
            good_zones.clone(),
            format!(r#"{{"meta": {ONE_PAGE}}}"#),
        ),
        (
            "records: null",
            good_zones.clone(),
            records_answer("null", Some(ONE_PAGE)),
        ),
        (
            "records: {}",
            good_zones.clone(),
            records_answer("{}", Some(ONE_PAGE)),
        ),
        (
            "records without meta",
            good_zones.clone(),
            records_answer(record_ok, None),
        ),
        (
            "records with last_page null",
            good_zones.clone(),
            records_answer(record_ok, Some(r#"{"pagination": {"last_page": null}}"#)),
        ),
        (
            "a record without value",
            good_zones.clone(),
            records_answer(
                r#"[{"id": "r1", "type": "A", "name": "www", "ttl": 300}]"#,
                Some(ONE_PAGE),
            ),
        ),
        (
            "a record without id",
            good_zones.clone(),
            records_answer(
                r#"[{"type": "A", "name": "www", "value": "192.0.2.1"}]"#,
                Some(ONE_PAGE),
            ),
        ),
        (
            "a record without type",
            good_zones.clone(),
            records_answer(
                r#"[{"id": "r1", "name": "www", "value": "192.0.2.1"}]"#,
                Some(ONE_PAGE),
            ),
        ),
    ];
    for (case, zones, records) in cases {
        let zones_broken = zones != good_zones;
        let server = scripted(zones, records).await;
        let p = provider_at(format!("{}/api/v1", server.url()), TOKEN, limits());
        let read = p.read_zone(&z).await;
        assert!(
            matches!(read, Err(ProviderError::InvalidAnswer(_))),
            "{case}: read as {read:?}"
        );
        let applied = p.apply(&two_creates(&z)).await;
        assert!(
            matches!(applied, Err(ProviderError::InvalidAnswer(_))),
            "{case}: applied as {applied:?}"
        );
        if zones_broken {
            let listed = p.list_zones().await;
            assert!(
                matches!(listed, Err(ProviderError::InvalidAnswer(_))),
                "{case}: listed as {listed:?}"
            );
            let tested = p.test_connection().await;
            assert!(
                matches!(tested, Err(ProviderError::InvalidAnswer(_))),
                "{case}: tested as {tested:?}"
            );
        }
        assert_eq!(
            server.writes(),
            Vec::<String>::new(),
            "{case}: nothing is written"
        );
    }
}
