//! The Cloudflare provider against a local server speaking the Cloudflare
//! API v4 (tests/common/fake_cloudflare.rs): the provider suite, every record
//! type the provider writes, paging, retries, rate limits, timeouts,
//! authentication, and one all-or-nothing batch per plan; and against
//! misbehaving servers (tests/common/hostile_http.rs): redirects, huge
//! answers, answers of the wrong shape. Does I/O (loopback HTTP).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::http::Method;
use common::fake_cloudflare::{FakeCloudflare, TOKEN, closed_port_url};
use common::hostile_http::{HugeAnswer, Recorder, Redirector, Scripted, Size};
use common::provider_suite::{self, managed, read, set};
use serde_json::json;
use zentralink_model::plan::{ChangeOp, Plan, PlanScope, plan_zone};
use zentralink_model::record::{RecordSet, RecordValue, RrKey};
use zentralink_model::resources::HttpApiSettings;
use zentralink_model::secrets::SecretString;
use zentralink_model::{ZoneContent, ZoneName};
use zentralink_providers::cloudflare::{CloudflareProvider, MAX_BATCH_RECORDS};
use zentralink_providers::resilience::Limits;
use zentralink_providers::{GatedProvider, Provider, ProviderError};

/// The suite's types Cloudflare stores (all of them).
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

fn provider_at(url: String, token: &str, limits: Limits) -> CloudflareProvider {
    CloudflareProvider::new(
        &HttpApiSettings { url: Some(url) },
        SecretString::new(token),
        limits,
    )
    .unwrap()
}

fn provider(fake: &FakeCloudflare) -> CloudflareProvider {
    provider_at(fake.url(), TOKEN, limits())
}

fn zone(name: &str) -> ZoneName {
    ZoneName::parse(name).unwrap()
}

async fn fake_with_zone(name: &str) -> (FakeCloudflare, ZoneName) {
    let fake = FakeCloudflare::start().await;
    fake.add_zone(name);
    (fake, zone(name))
}

fn creates(z: &ZoneName, sets: &[(&str, &str, u32, &[&str])]) -> Plan {
    let mut desired = ZoneContent::new(z.clone());
    for (name, t, ttl, values) in sets {
        let (k, s) = set(z, name, t, *ttl, values);
        desired.sets.insert(k, s);
    }
    plan_zone(
        &desired,
        &ZoneContent::new(z.clone()),
        &PlanScope::default(),
    )
}

#[tokio::test]
async fn cloudflare_passes_the_provider_suite() {
    let (fake, z) = fake_with_zone("suite.example.").await;
    let p = provider(&fake);
    provider_suite::run(&p, &z, TYPES).await;

    let gated = GatedProvider::new(
        Box::new(p.clone()),
        false,
        "connection lab/cloudflare is ReadOnly",
    );
    let writes = fake.write_count();
    provider_suite::not_live_writes_nothing(&gated, &z).await;
    assert_eq!(fake.write_count(), writes, "a gated apply sends nothing");
}

#[tokio::test]
async fn every_type_the_provider_writes_reads_back_unchanged() {
    let (fake, z) = fake_with_zone("types.example.").await;
    let p = provider(&fake);
    let hash = "0c72ac70b745ac19998811b131d662c9ac69dbdbe7cb23e5b514b56664c5d3d6";
    let plan = creates(
        &z,
        &[
            ("sub", "NS", 3600, &["ns1.example.net.", "ns2.example.net."]),
            ("10", "PTR", 3600, &["host.types.example."]),
            ("_443._tcp", "TLSA", 3600, &[&format!("3 1 1 {hash}")]),
            ("x._smimecert", "SMIMEA", 3600, &[&format!("3 1 1 {hash}")]),
            (
                "host",
                "SSHFP",
                3600,
                &["4 2 123456789abcdef67890123456789abcdef67890123456789abcdef123456789"],
            ),
            (
                "child",
                "DS",
                3600,
                &["60485 8 2 d4b7d520e7bb5f0f67674a0cceb1e3e0614b93c4f9e99b8383f6a1e4469da50a"],
            ),
            ("cert", "CERT", 3600, &["1 12345 8 AQIDBAUGBwgJCg=="]),
            ("@", "HTTPS", 300, &["1 . alpn=h2,h3 port=443"]),
            (
                "_dns",
                "SVCB",
                300,
                &["1 svc.types.example. alpn=h2 port=8443"],
            ),
            (
                "@",
                "NAPTR",
                3600,
                &[
                    "100 10 \"S\" \"SIP+D2U\" \"!^.*$!sip:info@types.example!\" _sip._udp.types.example.",
                ],
            ),
            (
                "_ftp._tcp",
                "TYPE256",
                3600,
                &["\\# 21 000a00016674703a2f2f6674702e6578616d706c65"],
            ),
            ("@", "MX", 3600, &["0 ."]),
            (
                "@",
                "CAA",
                3600,
                &[
                    "0 issue \"letsencrypt.org; validationmethods=dns-01\"",
                    "128 iodef \"mailto:security@types.example\"",
                ],
            ),
        ],
    );
    let expected = zentralink_model::plan::apply_plan(&ZoneContent::new(z.clone()), &plan).unwrap();
    let report = p.apply(&plan).await.unwrap();
    assert!(report.all_ok(), "{report:?}");
    let now = read(&p, &z).await;
    assert_eq!(now.to_stored(), expected.to_stored());
    let again = plan_zone(&expected, &now, &PlanScope::default());
    assert!(again.is_empty(), "{:?}", again.changes);
    assert_eq!(fake.batch_count(), 1);
}

#[tokio::test]
async fn records_entered_in_the_dashboard_are_understood() {
    let (fake, z) = fake_with_zone("dash.example.").await;
    fake.add_record("dash.example", json!({"type": "TXT", "name": "dash.example", "content": "i love dns it is great", "ttl": 1}));
    fake.add_record(
        "dash.example",
        json!({"type": "MX", "name": "@", "content": "mx.dash.example", "priority": 5, "ttl": 300}),
    );
    fake.add_record(
        "dash.example",
        json!({"type": "A", "name": "www", "content": "192.0.2.7", "proxied": true, "ttl": 1}),
    );
    fake.add_record(
        "dash.example",
        json!({"type": "SRV", "name": "_sip._tcp", "ttl": 300,
        "data": {"priority": 10, "weight": 60, "port": 5060, "target": "sip.example.net"}}),
    );
    let content = read(&provider(&fake), &z).await;
    let texts = |name: &str, t: &str| {
        let (k, _) = set(&z, name, t, 1, &[]);
        let s = content.get(&k).unwrap();
        (s.ttl, s.texts())
    };
    assert_eq!(
        texts("@", "TXT"),
        (1, vec!["\"i love dns it is great\"".to_owned()])
    );
    assert_eq!(
        texts("@", "MX"),
        (300, vec!["5 mx.dash.example.".to_owned()])
    );
    assert_eq!(texts("www", "A"), (1, vec!["192.0.2.7".to_owned()]));
    assert_eq!(
        texts("_sip._tcp", "SRV"),
        (300, vec!["10 60 5060 sip.example.net.".to_owned()])
    );
}

#[tokio::test]
async fn an_update_keeps_proxy_status_and_comments() {
    let (fake, z) = fake_with_zone("keep.example.").await;
    fake.add_record(
        "keep.example",
        json!({"type": "A", "name": "www", "content": "192.0.2.7", "proxied": true, "ttl": 300,
               "comment": "origin, managed by the web team"}),
    );
    let p = provider(&fake);
    let mut desired = ZoneContent::new(z.clone());
    let (k, s) = set(&z, "www", "A", 300, &["192.0.2.8"]);
    desired.sets.insert(k, s);
    let plan = plan_zone(&desired, &read(&p, &z).await, &PlanScope::default());
    assert_eq!(plan.count(ChangeOp::Update), 1);
    p.apply(&plan).await.unwrap();
    let records = fake.raw_records("keep.example");
    assert_eq!(records.len(), 1);
    assert_eq!(records[0]["content"], "192.0.2.8");
    assert_eq!(records[0]["proxied"], true);
    assert_eq!(records[0]["comment"], "origin, managed by the web team");
}

#[tokio::test]
async fn zones_and_records_are_read_across_pages() {
    let fake = FakeCloudflare::start().await;
    for n in 0..7 {
        fake.add_zone(&format!("z{n}.example."));
    }
    let z = zone("z3.example.");
    for n in 0..10 {
        fake.add_record("z3.example", json!({"type": "A", "name": format!("host{n}"), "content": format!("192.0.2.{n}"), "ttl": 300}));
    }
    fake.add_record(
        "z3.example",
        json!({"type": "A", "name": "multi", "content": "198.51.100.1", "ttl": 300}),
    );
    fake.add_record(
        "z3.example",
        json!({"type": "A", "name": "multi", "content": "198.51.100.2", "ttl": 60}),
    );
    let p = provider(&fake);

    let zones = p.list_zones().await.unwrap();
    assert_eq!(zones.len(), 7, "{zones:?}");

    fake.clear_requests();
    let content = read(&p, &z).await;
    assert_eq!(content.len(), 11);
    assert_eq!(content.record_count(), 12);
    let pages = fake
        .requests()
        .iter()
        .filter(|r| r.starts_with("GET ") && r.contains("/dns_records?"))
        .count();
    assert_eq!(pages, 4, "12 records, 3 per page: {:?}", fake.requests());
    // A set whose records carry different TTLs reads with the lowest.
    let (k, _) = set(&z, "multi", "A", 60, &["198.51.100.1"]);
    assert_eq!(content.get(&k).unwrap().ttl, 60);
}

#[tokio::test]
async fn an_unknown_zone_reads_as_none() {
    let (fake, _) = fake_with_zone("known.example.").await;
    let p = provider(&fake);
    let other = zone("unknown.example.");
    assert_eq!(p.read_zone(&other).await.unwrap(), None);
    let err = p
        .apply(&creates(&other, &[("www", "A", 300, &["192.0.2.1"])]))
        .await
        .unwrap_err();
    assert_eq!(err, ProviderError::ZoneNotFound("unknown.example.".into()));
    let err = p.probe_write(&other).await.unwrap_err();
    assert_eq!(err, ProviderError::ZoneNotFound("unknown.example.".into()));
    assert_eq!(fake.write_count(), 0);
}

#[tokio::test]
async fn a_read_answered_500_is_retried() {
    let (fake, z) = fake_with_zone("retry.example.").await;
    let p = provider(&fake);
    fake.clear_requests();
    fake.fail_next_requests(2);
    let content = p.read_zone(&z).await.unwrap().unwrap();
    assert!(content.is_empty());
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
async fn a_batch_answered_500_is_uncertain_and_not_retried() {
    let (fake, z) = fake_with_zone("uncertain.example.").await;
    let p = provider(&fake);
    fake.fail_next_writes(1);
    let plan = creates(
        &z,
        &[
            ("www", "A", 300, &["192.0.2.1"]),
            ("mail", "A", 300, &["192.0.2.2"]),
        ],
    );
    let err = p.apply(&plan).await.unwrap_err();
    assert!(matches!(err, ProviderError::Uncertain(_)), "{err}");
    assert!(err.to_string().contains("re-read"), "{err}");
    assert_eq!(
        fake.write_count(),
        1,
        "a write is never retried: {:?}",
        fake.requests()
    );
    assert!(fake.records("uncertain.example").is_empty());
}

#[tokio::test]
async fn a_refused_batch_applies_nothing() {
    let (fake, z) = fake_with_zone("refused.example.").await;
    let p = provider(&fake);
    // The second set's TTL is below Cloudflare's minimum of 60 seconds.
    let plan = creates(
        &z,
        &[
            ("ok", "A", 300, &["192.0.2.1"]),
            ("short", "A", 30, &["192.0.2.2"]),
        ],
    );
    let err = p.apply(&plan).await.unwrap_err();
    assert!(
        matches!(err, ProviderError::Unsupported(ref m) if m.contains("Invalid TTL") && m.contains("nothing was applied")),
        "{err}"
    );
    assert!(fake.records("refused.example").is_empty(), "all or nothing");
}

#[tokio::test]
async fn each_plan_is_one_batch_request() {
    let (fake, z) = fake_with_zone("batch.example.").await;
    let p = provider(&fake);
    let mut first = ZoneContent::new(z.clone());
    for (name, t, ttl, values) in [
        ("www", "A", 300, &["192.0.2.1", "192.0.2.2"][..]),
        ("old", "CNAME", 300, &["www"][..]),
        ("@", "MX", 3600, &["10 mx1", "20 mx2"][..]),
    ] {
        let (k, s) = set(&z, name, t, ttl, values);
        first.sets.insert(k, s);
    }
    let plan = plan_zone(&first, &ZoneContent::new(z.clone()), &PlanScope::default());
    fake.clear_requests();
    p.apply(&plan).await.unwrap();
    assert_eq!(
        (fake.batch_count(), fake.write_count()),
        (1, 1),
        "{:?}",
        fake.requests()
    );

    // An update (values and TTL), a create and a delete: again one request.
    let mut second = first.clone();
    let (k, s) = set(&z, "www", "A", 60, &["192.0.2.2", "192.0.2.3"]);
    second.sets.insert(k, s);
    let (k, _) = set(&z, "old", "CNAME", 300, &["www"]);
    second.sets.remove(&k);
    let (k, s) = set(&z, "old", "A", 300, &["192.0.2.9"]);
    second.sets.insert(k, s);
    let plan = plan_zone(
        &second,
        &managed(&read(&p, &z).await),
        &PlanScope::default(),
    );
    assert_eq!(
        (
            plan.count(ChangeOp::Create),
            plan.count(ChangeOp::Update),
            plan.count(ChangeOp::Delete)
        ),
        (1, 1, 1)
    );
    fake.clear_requests();
    let report = p.apply(&plan).await.unwrap();
    assert!(report.all_ok() && report.outcomes.len() == 3, "{report:?}");
    assert_eq!(
        (fake.batch_count(), fake.write_count()),
        (1, 1),
        "{:?}",
        fake.requests()
    );
    assert_eq!(read(&p, &z).await.to_stored(), second.to_stored());
}

#[tokio::test]
async fn a_stale_plan_sends_nothing() {
    let (fake, z) = fake_with_zone("stale.example.").await;
    let p = provider(&fake);
    let plan = creates(&z, &[("www", "A", 300, &["192.0.2.1"])]);
    fake.add_record(
        "stale.example",
        json!({"type": "A", "name": "www", "content": "192.0.2.66", "ttl": 300}),
    );
    fake.clear_requests();
    let err = p.apply(&plan).await.unwrap_err();
    assert!(
        matches!(err, ProviderError::Conflict(ref m) if m.contains("nothing was sent")),
        "{err}"
    );
    assert_eq!(fake.write_count(), 0);
}

#[tokio::test]
async fn a_plan_over_the_batch_limit_is_refused_before_sending() {
    let (fake, z) = fake_with_zone("big.example.").await;
    let p = provider(&fake);
    assert_eq!(p.capabilities().max_batch, Some(MAX_BATCH_RECORDS));
    // Few record sets, but more records than one batch may hold.
    let mut desired = ZoneContent::new(z.clone());
    for set_no in 0..3u32 {
        let values = (0..100u32)
            .map(|i| {
                RecordValue::parse(
                    hickory_proto::rr::RecordType::A,
                    &format!("10.{set_no}.{}.{}", i / 250, i % 250),
                    &z,
                )
                .unwrap()
            })
            .collect();
        desired.sets.insert(
            RrKey::new(
                z.owner(&format!("pool{set_no}")).unwrap(),
                hickory_proto::rr::RecordType::A,
            ),
            RecordSet::new(300, values),
        );
    }
    let plan = plan_zone(
        &desired,
        &ZoneContent::new(z.clone()),
        &PlanScope::default(),
    );
    fake.clear_requests();
    let err = p.apply(&plan).await.unwrap_err();
    assert!(
        matches!(err, ProviderError::Unsupported(ref m) if m.contains("300 Cloudflare records")),
        "{err}"
    );
    assert_eq!(fake.write_count(), 0);
}

#[tokio::test]
async fn a_wrong_token_is_an_authentication_error_without_the_token() {
    let (fake, z) = fake_with_zone("auth.example.").await;
    let secret = "wrong-token-2b9a77e1";
    let p = provider_at(fake.url(), secret, limits());
    for err in [
        p.read_zone(&z).await.unwrap_err(),
        p.test_connection().await.unwrap_err(),
        p.probe_write(&z).await.unwrap_err(),
    ] {
        assert!(matches!(err, ProviderError::Authentication(_)), "{err}");
        let text = err.to_string();
        assert!(text.contains("Authentication error"), "{text}");
        assert!(!text.contains(secret), "the token leaked: {text}");
    }
    assert!(!format!("{p:?}").contains(secret));
    assert_eq!(
        fake.request_count(),
        3,
        "not retried: {:?}",
        fake.requests()
    );
}

#[tokio::test]
async fn a_server_that_is_down_is_unreachable_after_retries() {
    let url = format!("{}/client/v4", closed_port_url().await);
    let p = provider_at(url, TOKEN, limits());
    let err = p.read_zone(&zone("down.example.")).await.unwrap_err();
    assert!(
        matches!(err, ProviderError::NotSent(ref m) if m.contains("refused")),
        "{err}"
    );
    let err = p.test_connection().await.unwrap_err();
    assert!(matches!(err, ProviderError::NotSent(_)), "{err}");
}

#[tokio::test]
async fn a_url_that_is_not_the_api_is_an_error_not_a_missing_zone() {
    let (fake, z) = fake_with_zone("wrong-url.example.").await;
    let p = provider_at(format!("{}/v5", fake.url()), TOKEN, limits());
    for err in [
        p.read_zone(&z).await.unwrap_err(),
        p.test_connection().await.unwrap_err(),
    ] {
        assert!(
            matches!(err, ProviderError::Unsupported(ref m) if m.contains("spec.cloudflare.url")),
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
    fake.clear_requests();
    assert!(p.apply(&plan).await.unwrap().outcomes.is_empty());
    assert_eq!(fake.request_count(), 0, "{:?}", fake.requests());
}

#[tokio::test]
async fn a_connection_document_builds_a_cloudflare_provider() {
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
metadata: {{ name: cloudflare, namespace: lab }}
spec:
  type: cloudflare
  cloudflare: {{ url: "{url}" }}
  credentials: {{ env: ZL_TEST_CLOUDFLARE_TOKEN }}
"#,
        url = fake.url()
    );
    let file = zentralink_model::documents::SourceFile::new("lab.yaml", yaml);
    let (objects, errors) = zentralink_model::documents::parse_documents(&file);
    assert!(errors.is_empty(), "{errors:?}");
    let (catalog, errors) = zentralink_model::catalog::Catalog::build(objects);
    assert!(errors.is_empty(), "{errors:?}");
    let entry = catalog.connection("lab", "cloudflare").unwrap();
    let env = zentralink_providers::credentials::CredentialEnv::new(
        [("ZL_TEST_CLOUDFLARE_TOKEN".to_owned(), TOKEN.to_owned())],
        &["ZL_TEST_CLOUDFLARE_TOKEN".to_owned()],
    )
    .unwrap();
    let sources = zentralink_providers::credentials::CredentialSources {
        env: &env,
        ..Default::default()
    };
    let p = zentralink_providers::connect_with(entry, &sources).unwrap();
    assert_eq!(p.provider_type().as_str(), "cloudflare");
    assert!(p.capabilities().atomic_batch);
    p.test_connection().await.unwrap();
    assert!(p.read_zone(&z).await.unwrap().is_some());
}

// ------------------------------------------------------------------ hardening

/// A plan creating `www A 192.0.2.1`.
fn one_create(z: &ZoneName) -> Plan {
    creates(z, &[("www", "A", 300, &["192.0.2.1"])])
}

#[tokio::test]
async fn the_token_never_follows_a_redirect() {
    let elsewhere = Recorder::start().await;
    let redirector = Redirector::everything_to(elsewhere.url()).await;
    let p = provider_at(format!("{}/client/v4", redirector.url()), TOKEN, limits());
    let z = zone("redirected.example.");
    for err in [
        p.read_zone(&z).await.unwrap_err(),
        p.list_zones().await.unwrap_err(),
        p.test_connection().await.unwrap_err(),
        p.apply(&one_create(&z)).await.unwrap_err(),
    ] {
        assert!(matches!(err, ProviderError::Unsupported(_)), "{err}");
        let text = err.to_string();
        assert!(
            text.contains(&format!(
                "Cloudflare answered 302 Found redirecting to {}/client/v4/zones?",
                elsewhere.url()
            )),
            "{text}"
        );
        assert!(
            text.contains("never follow redirects: set spec.cloudflare.url"),
            "{text}"
        );
    }
    assert_eq!(elsewhere.requests(), Vec::<String>::new());
    assert_eq!(redirector.redirected(), 4, "a redirect is not retried");
}

#[tokio::test]
async fn a_batch_answered_with_a_redirect_is_not_sent_elsewhere() {
    let (fake, z) = fake_with_zone("redirected-write.example.").await;
    let elsewhere = Recorder::start().await;
    let api = fake.url();
    let redirector =
        Redirector::writes_to(elsewhere.url(), api.trim_end_matches("/client/v4")).await;
    let p = provider_at(format!("{}/client/v4", redirector.url()), TOKEN, limits());
    let err = p.apply(&one_create(&z)).await.unwrap_err();
    assert!(
        matches!(err, ProviderError::Unsupported(ref m)
            if m.contains(&format!("307 Temporary Redirect redirecting to {}/client/v4/zones/", elsewhere.url()))
                && m.contains("nothing was applied")),
        "{err}"
    );
    assert!(redirector.forwarded() > 0, "the zone was read through it");
    assert_eq!(redirector.redirected(), 1, "one batch, not repeated");
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
        let p = provider_at(
            format!("{}/client/v4", server.url()),
            TOKEN,
            small_answers(),
        );
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
    let p = provider_at(format!("{}/client/v4", server.url()), TOKEN, limits());
    let err = p.list_zones().await.unwrap_err();
    assert!(
        matches!(err, ProviderError::InvalidAnswer(ref m)
            if m.contains("announces 1610612736 bytes, more than the 256 MiB ZentraLink reads")),
        "{err}"
    );
    let server = HugeAnswer::start(200, Size::Announced(64 * 1024 + 1)).await;
    let p = provider_at(
        format!("{}/client/v4", server.url()),
        TOKEN,
        small_answers(),
    );
    let err = p.read_zone(&zone("huge.example.")).await.unwrap_err();
    assert!(
        matches!(err, ProviderError::InvalidAnswer(ref m) if m.contains("announces 65537 bytes")),
        "{err}"
    );
}

#[tokio::test]
async fn an_error_answer_with_an_endless_body_is_reported_by_its_status() {
    let server = HugeAnswer::start(500, Size::Endless).await;
    let p = provider_at(
        format!("{}/client/v4", server.url()),
        TOKEN,
        small_answers(),
    );
    let err = p.read_zone(&zone("huge.example.")).await.unwrap_err();
    assert!(
        matches!(err, ProviderError::Unreachable(ref m) if m.contains("HTTP 500")),
        "{err}"
    );
    assert!(err.to_string().len() < 1000, "{err}");
    assert_eq!(server.requests(), 4, "a 500 is retried, whatever its body");
}

/// `result_info` as the API documents it, for one page.
const ONE_PAGE: &str =
    r#"{"page": 1, "per_page": 50, "count": 1, "total_count": 1, "total_pages": 1}"#;

/// An envelope around `result` (a JSON text), with `result_info` when given.
fn envelope(result: &str, info: Option<&str>) -> String {
    match info {
        Some(info) => format!(
            r#"{{"success": true, "errors": [], "messages": [], "result": {result}, "result_info": {info}}}"#
        ),
        None => format!(r#"{{"success": true, "errors": [], "messages": [], "result": {result}}}"#),
    }
}

/// A server answering the zone lookup and the record list with the given
/// bodies (HTTP 200), and every write with a successful envelope.
async fn scripted(zones: String, records: String) -> Scripted {
    Scripted::start(Arc::new(move |_: &Method, path: &str, _: &str| {
        if path == "/client/v4/zones" {
            (200, zones.clone())
        } else if path.ends_with("/dns_records") {
            (200, records.clone())
        } else {
            (200, envelope(r#"{"id": "w1"}"#, None))
        }
    }))
    .await
}

#[tokio::test]
async fn an_answer_of_the_wrong_shape_is_an_error_never_an_empty_zone() {
    let zone_ok = r#"[{"id": "z1", "name": "shape.example", "status": "active"}]"#;
    let record_ok = r#"[{"id": "r1", "name": "www.shape.example", "type": "A", "content": "192.0.2.1", "ttl": 300, "proxied": false}]"#;
    let z = zone("shape.example.");

    // The documented shape reads (so the cases below fail for their flaw alone).
    let server = scripted(
        envelope(zone_ok, Some(ONE_PAGE)),
        envelope(record_ok, Some(ONE_PAGE)),
    )
    .await;
    let p = provider_at(format!("{}/client/v4", server.url()), TOKEN, limits());
    assert_eq!(read(&p, &z).await.record_count(), 1);

    let good_zones = envelope(zone_ok, Some(ONE_PAGE));
    let good_records = envelope(record_ok, Some(ONE_PAGE));
    let cases: Vec<(&str, String, String)> = vec![
        (
            "not JSON",
            "<html>maintenance</html>".into(),
            good_records.clone(),
        ),
        (
            "no envelope",
            r#"{"zones": []}"#.into(),
            good_records.clone(),
        ),
        (
            "no success",
            format!(r#"{{"errors": [], "result": {zone_ok}, "result_info": {ONE_PAGE}}}"#),
            good_records.clone(),
        ),
        (
            "no result",
            format!(r#"{{"success": true, "errors": [], "result_info": {ONE_PAGE}}}"#),
            good_records.clone(),
        ),
        (
            "result: null",
            envelope("null", Some(ONE_PAGE)),
            good_records.clone(),
        ),
        (
            "result: {}",
            envelope("{}", Some(ONE_PAGE)),
            good_records.clone(),
        ),
        (
            "a zone without id",
            envelope(r#"[{"name": "shape.example"}]"#, Some(ONE_PAGE)),
            good_records.clone(),
        ),
        (
            "zones without result_info",
            envelope(zone_ok, None),
            good_records.clone(),
        ),
        (
            "total_pages missing",
            envelope(zone_ok, Some(r#"{"page": 1, "count": 1}"#)),
            good_records.clone(),
        ),
        (
            "records: null",
            good_zones.clone(),
            envelope("null", Some(ONE_PAGE)),
        ),
        (
            "records: {}",
            good_zones.clone(),
            envelope("{}", Some(ONE_PAGE)),
        ),
        (
            "records without result_info",
            good_zones.clone(),
            envelope(record_ok, None),
        ),
        (
            "records with total_pages -1",
            good_zones.clone(),
            envelope(record_ok, Some(r#"{"total_pages": -1}"#)),
        ),
        (
            "a record without ttl",
            good_zones.clone(),
            envelope(
                r#"[{"id": "r1", "name": "www.shape.example", "type": "A", "content": "192.0.2.1"}]"#,
                Some(ONE_PAGE),
            ),
        ),
        (
            "a record without id",
            good_zones.clone(),
            envelope(
                r#"[{"name": "www.shape.example", "type": "A", "content": "192.0.2.1", "ttl": 300}]"#,
                Some(ONE_PAGE),
            ),
        ),
        (
            "a record without content",
            good_zones.clone(),
            envelope(
                r#"[{"id": "r1", "name": "www.shape.example", "type": "A", "ttl": 300}]"#,
                Some(ONE_PAGE),
            ),
        ),
    ];
    for (case, zones, records) in cases {
        let zones_broken = zones != good_zones;
        let server = scripted(zones, records).await;
        let p = provider_at(format!("{}/client/v4", server.url()), TOKEN, limits());
        let read = p.read_zone(&z).await;
        assert!(
            matches!(read, Err(ProviderError::InvalidAnswer(_))),
            "{case}: read as {read:?}"
        );
        let applied = p.apply(&one_create(&z)).await;
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

#[tokio::test]
async fn a_zone_lookup_listing_no_such_zone_is_the_documented_absence() {
    let server = scripted(
        envelope(
            "[]",
            Some(r#"{"page": 1, "per_page": 50, "count": 0, "total_count": 0, "total_pages": 0}"#),
        ),
        envelope("[]", Some(ONE_PAGE)),
    )
    .await;
    let p = provider_at(format!("{}/client/v4", server.url()), TOKEN, limits());
    assert_eq!(p.read_zone(&zone("absent.example.")).await, Ok(None));
}
