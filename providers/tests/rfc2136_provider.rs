//! The RFC 2136 provider against a real BIND 9 (started by
//! scripts/bind-server.sh, which scripts/test.sh runs): the shared provider
//! suite with both TSIG algorithms, refused keys, server-enforced
//! prerequisites, unreachable and silent servers, one UPDATE message per
//! plan, multi-message zone transfers (and their limits) and planning a
//! catalog. Does I/O (network, and `dig` for an independent look at the zone).
//!
//! Tests run in parallel; each one owns one test zone (`tNN.rfc2136.test.`,
//! fixed below) and empties it before and after use.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use common::provider_suite::{self, managed, read, set};
use hickory_proto::op::{Message, OpCode};
use hickory_proto::rr::{RData, RecordType};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use zentralink_model::plan::{ChangeOp, Plan, PlanScope, plan_zone};
use zentralink_model::record::RrKey;
use zentralink_model::resources::Rfc2136Settings;
use zentralink_model::secrets::SecretString;
use zentralink_model::{ZoneContent, ZoneName};
use zentralink_providers::resilience::Limits;
use zentralink_providers::rfc2136::Rfc2136Provider;
use zentralink_providers::{GatedProvider, Provider, ProviderError};

// Zones, one per test.
const SUITE_SHA256: u8 = 1;
const SUITE_SHA512: u8 = 2;
const NOT_LIVE: u8 = 3;
const WRONG_KEY: u8 = 4;
const CONFLICT: u8 = 5;
const ONE_MESSAGE: u8 = 6;
const PLANNER: u8 = 7;
const BIG_TRANSFER: u8 = 8;
const TOO_LARGE: u8 = 9;
const APEX: u8 = 10;
const TRANSFER_LIMITS: u8 = 11;

/// Where BIND listens and its two keys, from scripts/bind-server.sh.
struct Bind {
    server: String,
    sha256: (String, String),
    sha512: (String, String),
}

fn bind() -> Bind {
    let var = |name: &str| {
        std::env::var(name).ok().filter(|v| !v.is_empty()).unwrap_or_else(|| {
            panic!(
                "BIND is not running: start it with scripts/bind-server.sh start (scripts/test.sh does), then `source .zentralink/servers/bind.env` ({name} is not set)"
            )
        })
    };
    Bind {
        server: var("ZL_BIND_SERVER"),
        sha256: (var("ZL_BIND_TSIG256_NAME"), var("ZL_BIND_TSIG256_SECRET")),
        sha512: (var("ZL_BIND_TSIG512_NAME"), var("ZL_BIND_TSIG512_SECRET")),
    }
}

fn zone(n: u8) -> ZoneName {
    ZoneName::parse(&format!("t{n:02}.rfc2136.test.")).unwrap()
}

/// Limits that keep failing tests short.
fn quick() -> Limits {
    Limits {
        timeout: Duration::from_secs(5),
        first_backoff: Duration::from_millis(20),
        max_backoff: Duration::from_millis(100),
        ..Limits::default()
    }
}

fn provider_at(
    server: &str,
    key: &(String, String),
    algorithm: &str,
    limits: Limits,
) -> Rfc2136Provider {
    Rfc2136Provider::new(
        &Rfc2136Settings {
            server: server.to_owned(),
            tsig_key_name: key.0.clone(),
            tsig_algorithm: Some(algorithm.to_owned()),
        },
        SecretString::new(key.1.clone()),
        limits,
    )
    .unwrap()
}

fn sha256() -> Rfc2136Provider {
    let b = bind();
    provider_at(&b.server, &b.sha256, "hmac-sha256", quick())
}

/// Applies the plan from the zone's current content to `desired` (apex SOA
/// and NS left alone), in parts of at most `chunk` operations.
async fn converge(p: &dyn Provider, zone: &ZoneName, desired: &ZoneContent, chunk: usize) {
    let current = managed(&read(p, zone).await);
    let plan = plan_zone(desired, &current, &PlanScope::default());
    for part in plan.changes.chunks(chunk) {
        let part = Plan {
            zone: zone.clone(),
            changes: part.to_vec(),
        };
        let report = p.apply(&part).await.unwrap();
        assert!(report.all_ok(), "{report:?}");
    }
}

/// Empties a test zone (everything but the apex SOA and NS).
async fn clean(p: &dyn Provider, zone: &ZoneName) {
    converge(p, zone, &ZoneContent::new(zone.clone()), 200).await;
}

fn soa_serial(content: &ZoneContent) -> u32 {
    let value = &content.soa().unwrap().values()[0];
    match value.to_rdata(RecordType::SOA).unwrap() {
        RData::SOA(soa) => soa.serial,
        other => panic!("not an SOA: {other:?}"),
    }
}

/// `dig +short` against the test server, for a look at the zone that does
/// not go through the provider.
fn dig(name: &str, rtype: &str) -> Vec<String> {
    let b = bind();
    let (host, port) = b.server.rsplit_once(':').unwrap();
    let out = Command::new("dig")
        .args([
            "+short",
            "+tcp",
            "-p",
            port,
            &format!("@{host}"),
            name,
            rtype,
        ])
        .output()
        .unwrap_or_else(|e| {
            panic!("dig cannot run ({e}): install dnsutils (scripts/bind-server.sh start does)")
        });
    assert!(out.status.success(), "dig failed: {out:?}");
    let mut lines: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_owned)
        .collect();
    lines.sort();
    lines
}

/// A TCP proxy in front of BIND that counts the DNS messages going through
/// it: UPDATE requests, AXFR requests and messages from the server.
#[derive(Default)]
struct Counts {
    updates: AtomicUsize,
    transfers: AtomicUsize,
    from_server: AtomicUsize,
}

async fn counting_proxy(upstream: String) -> (String, Arc<Counts>) {
    proxy(upstream, false).await
}

/// The proxy; with `tamper`, it changes the TTL of the first answer record
/// of every message from the server (keeping the server's TSIG record).
async fn proxy(upstream: String, tamper: bool) -> (String, Arc<Counts>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap().to_string();
    let counts = Arc::new(Counts::default());
    let shared = counts.clone();
    tokio::spawn(async move {
        while let Ok((client, _)) = listener.accept().await {
            let Ok(server) = TcpStream::connect(&upstream).await else {
                continue;
            };
            let (client_read, client_write) = client.into_split();
            let (server_read, server_write) = server.into_split();
            let up = shared.clone();
            tokio::spawn(async move {
                relay(client_read, server_write, |m: &Message| {
                    if m.metadata.op_code == OpCode::Update {
                        up.updates.fetch_add(1, Ordering::SeqCst);
                    }
                    if m.queries.iter().any(|q| q.query_type() == RecordType::AXFR) {
                        up.transfers.fetch_add(1, Ordering::SeqCst);
                    }
                })
                .await;
            });
            let down = shared.clone();
            tokio::spawn(async move {
                relay_changed(server_read, client_write, |m: &Message| {
                    down.from_server.fetch_add(1, Ordering::SeqCst);
                    if !tamper {
                        return None;
                    }
                    let mut m = m.clone();
                    m.answers.first_mut()?.ttl += 1;
                    m.to_vec().ok()
                })
                .await;
            });
        }
    });
    (address, counts)
}

/// Copies length-prefixed DNS messages from `from` to `to`, showing each to `seen`.
async fn relay(
    from: tokio::net::tcp::OwnedReadHalf,
    to: tokio::net::tcp::OwnedWriteHalf,
    seen: impl Fn(&Message),
) {
    relay_changed(from, to, |m: &Message| {
        seen(m);
        None
    })
    .await;
}

/// Copies length-prefixed DNS messages, sending what `change` returns instead
/// of a message when it returns something.
async fn relay_changed(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    change: impl Fn(&Message) -> Option<Vec<u8>>,
) {
    while let Ok(len) = from.read_u16().await {
        let mut buf = vec![0; usize::from(len)];
        if from.read_exact(&mut buf).await.is_err() {
            break;
        }
        if let Some(changed) = Message::from_vec(&buf).ok().and_then(|m| change(&m)) {
            buf = changed;
        }
        let Ok(len) = u16::try_from(buf.len()) else {
            break;
        };
        if to.write_all(&len.to_be_bytes()).await.is_err() || to.write_all(&buf).await.is_err() {
            break;
        }
    }
    let _ = to.shutdown().await;
}

#[tokio::test]
async fn passes_the_provider_suite_with_hmac_sha256() {
    let p = sha256();
    let z = zone(SUITE_SHA256);
    clean(&p, &z).await;
    provider_suite::run(&p, &z, &["A", "AAAA", "CNAME", "MX", "TXT", "SRV", "CAA"]).await;
    clean(&p, &z).await;
}

#[tokio::test]
async fn passes_the_provider_suite_with_hmac_sha512() {
    let b = bind();
    let p = provider_at(&b.server, &b.sha512, "hmac-sha512", quick());
    let z = zone(SUITE_SHA512);
    clean(&p, &z).await;
    provider_suite::run(&p, &z, &["A", "TXT"]).await;
    clean(&p, &z).await;
}

#[tokio::test]
async fn a_connection_that_is_not_live_writes_nothing() {
    let z = zone(NOT_LIVE);
    clean(&sha256(), &z).await;
    let gated = GatedProvider::new(Box::new(sha256()), false, "spec.mode is ReadOnly");
    provider_suite::not_live_writes_nothing(&gated, &z).await;
}

#[tokio::test]
async fn refused_keys_are_authentication_errors_and_change_nothing() {
    let b = bind();
    let good = sha256();
    let z = zone(WRONG_KEY);
    clean(&good, &z).await;
    let mut one = ZoneContent::new(z.clone());
    let (k, s) = set(&z, "keep", "A", 300, &["192.0.2.1"]);
    one.sets.insert(k, s);
    converge(&good, &z, &one, 100).await;
    let before = read(&good, &z).await;

    // The right key name with another secret (BADSIG), and an unknown key name (BADKEY).
    let wrong_secret = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=";
    let bad_sig = provider_at(
        &b.server,
        &(b.sha256.0.clone(), wrong_secret.to_owned()),
        "hmac-sha256",
        quick(),
    );
    let bad_key = provider_at(
        &b.server,
        &("zl-unknown".to_owned(), b.sha256.1.clone()),
        "hmac-sha256",
        quick(),
    );
    let mut two = one.clone();
    let (k, s) = set(&z, "intruder", "A", 300, &["192.0.2.66"]);
    two.sets.insert(k, s);
    let plan = plan_zone(&two, &managed(&before), &PlanScope::default());
    for (p, tsig) in [(&bad_sig, "BADSIG"), (&bad_key, "BADKEY")] {
        let errors = [
            p.test_connection().await.unwrap_err(),
            p.read_zone(&z).await.unwrap_err(),
            p.apply(&plan).await.unwrap_err(),
            p.probe_write(&z).await.unwrap_err(),
        ];
        for e in errors {
            let text = e.to_string();
            assert!(
                matches!(e, ProviderError::Authentication(_)),
                "expected an authentication error, got {e}"
            );
            assert!(text.contains(tsig), "{text}");
            assert!(
                !text.contains(wrong_secret) && !text.contains(&b.sha256.1),
                "an error shows a secret: {text}"
            );
        }
    }
    let after = read(&good, &z).await;
    assert_eq!(after.to_stored(), before.to_stored(), "nothing may change");
    assert!(dig(&format!("intruder.{z}"), "A").is_empty());
    clean(&good, &z).await;
}

#[tokio::test]
async fn a_stale_plan_is_refused_by_the_server_and_nothing_of_it_is_applied() {
    let p = sha256();
    let z = zone(CONFLICT);
    clean(&p, &z).await;
    let mut one = ZoneContent::new(z.clone());
    for (name, ip) in [("race", "192.0.2.1"), ("keep", "192.0.2.5")] {
        let (k, s) = set(&z, name, "A", 300, &[ip]);
        one.sets.insert(k, s);
    }
    converge(&p, &z, &one, 100).await;

    // Planned from `one`: update race, create other, delete keep.
    let mut two = ZoneContent::new(z.clone());
    let (k, s) = set(&z, "race", "A", 300, &["192.0.2.2"]);
    two.sets.insert(k, s);
    let (k, s) = set(&z, "other", "A", 300, &["192.0.2.3"]);
    two.sets.insert(k, s);
    let stale = plan_zone(&two, &one, &PlanScope::default());
    assert_eq!(stale.changes.len(), 3);

    // Someone changes race elsewhere.
    let mut elsewhere = one.clone();
    let (k, s) = set(&z, "race", "A", 300, &["192.0.2.77"]);
    elsewhere.sets.insert(k, s);
    converge(&p, &z, &elsewhere, 100).await;
    let serial = soa_serial(&read(&p, &z).await);

    let err = p.apply(&stale).await.unwrap_err();
    assert!(matches!(err, ProviderError::Conflict(_)), "{err}");
    assert!(err.to_string().contains("NXRRSET"), "{err}");
    assert!(err.to_string().contains("Nothing was applied"), "{err}");

    // The server's own answers, not the provider's read: nothing of the batch.
    assert_eq!(dig(&format!("race.{z}"), "A"), vec!["192.0.2.77"]);
    assert!(dig(&format!("other.{z}"), "A").is_empty());
    assert_eq!(dig(&format!("keep.{z}"), "A"), vec!["192.0.2.5"]);
    let now = read(&p, &z).await;
    assert_eq!(managed(&now).to_stored(), elsewhere.to_stored());
    assert_eq!(soa_serial(&now), serial, "the zone did not change at all");

    // A create whose record set appeared meanwhile fails too (YXRRSET).
    let mut three = elsewhere.clone();
    let (k, s) = set(&z, "late", "TXT", 300, &["\"mine\""]);
    three.sets.insert(k, s);
    let create = plan_zone(&three, &elsewhere, &PlanScope::default());
    let mut theirs = elsewhere.clone();
    let (k, s) = set(&z, "late", "TXT", 300, &["\"theirs\""]);
    theirs.sets.insert(k, s);
    converge(&p, &z, &theirs, 100).await;
    let err = p.apply(&create).await.unwrap_err();
    assert!(
        matches!(err, ProviderError::Conflict(ref m) if m.contains("YXRRSET")),
        "{err}"
    );
    assert_eq!(dig(&format!("late.{z}"), "TXT"), vec!["\"theirs\""]);
    clean(&p, &z).await;
}

#[tokio::test]
async fn a_server_that_is_down_is_unreachable_after_retries() {
    let b = bind();
    // A port nobody listens on.
    let closed = {
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        l.local_addr().unwrap().to_string()
    };
    let p = provider_at(&closed, &b.sha256, "hmac-sha256", quick());
    let z = zone(SUITE_SHA256);
    let err = p.read_zone(&z).await.unwrap_err();
    assert!(
        matches!(err, ProviderError::NotSent(ref m) if m.contains("connection refused")),
        "{err}"
    );
    assert!(matches!(
        p.test_connection().await,
        Err(ProviderError::NotSent(_))
    ));
    // A refused connection means the UPDATE was never sent: not uncertain.
    let mut one = ZoneContent::new(z.clone());
    let (k, s) = set(&z, "x", "A", 300, &["192.0.2.1"]);
    one.sets.insert(k, s);
    let plan = plan_zone(&one, &ZoneContent::new(z.clone()), &PlanScope::default());
    let err = p.apply(&plan).await.unwrap_err();
    assert!(matches!(err, ProviderError::NotSent(_)), "{err}");
    assert!(!err.may_have_applied());

    // A peer that closes every connection at once: each read attempt is made.
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap().to_string();
    let accepted = Arc::new(AtomicUsize::new(0));
    let seen = accepted.clone();
    tokio::spawn(async move {
        while let Ok((socket, _)) = listener.accept().await {
            seen.fetch_add(1, Ordering::SeqCst);
            drop(socket);
        }
    });
    let limits = quick();
    let attempts = limits.attempts as usize;
    let p = provider_at(&address, &b.sha256, "hmac-sha256", limits);
    let err = p.read_zone(&z).await.unwrap_err();
    assert!(matches!(err, ProviderError::Unreachable(_)), "{err}");
    assert_eq!(accepted.load(Ordering::SeqCst), attempts, "retried reads");
    accepted.store(0, Ordering::SeqCst);
    let err = p.apply(&plan).await.unwrap_err();
    assert!(matches!(err, ProviderError::Uncertain(_)), "{err}");
    assert_eq!(
        accepted.load(Ordering::SeqCst),
        1,
        "writes are never retried"
    );
}

#[tokio::test]
async fn a_peer_that_never_answers_times_out() {
    let b = bind();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap().to_string();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            held.push(socket);
        }
    });
    let limits = Limits {
        timeout: Duration::from_millis(300),
        attempts: 2,
        ..quick()
    };
    let p = provider_at(&address, &b.sha256, "hmac-sha256", limits);
    let z = zone(SUITE_SHA256);
    let err = p.read_zone(&z).await.unwrap_err();
    assert!(
        matches!(err, ProviderError::Unreachable(ref m) if m.contains("no answer within")),
        "{err}"
    );
    let mut one = ZoneContent::new(z.clone());
    let (k, s) = set(&z, "x", "A", 300, &["192.0.2.1"]);
    one.sets.insert(k, s);
    let plan = plan_zone(&one, &ZoneContent::new(z.clone()), &PlanScope::default());
    let err = p.apply(&plan).await.unwrap_err();
    assert!(
        matches!(err, ProviderError::Uncertain(ref m) if m.contains("re-read")),
        "{err}"
    );
}

#[tokio::test]
async fn one_plan_is_one_update_message() {
    let b = bind();
    let direct = sha256();
    let z = zone(ONE_MESSAGE);
    clean(&direct, &z).await;
    let mut one = ZoneContent::new(z.clone());
    for (name, ip) in [("a", "192.0.2.1"), ("b", "192.0.2.2"), ("c", "192.0.2.3")] {
        let (k, s) = set(&z, name, "A", 300, &[ip]);
        one.sets.insert(k, s);
    }
    converge(&direct, &z, &one, 100).await;
    let before = read(&direct, &z).await;

    let (proxy, counts) = counting_proxy(b.server.clone()).await;
    let p = provider_at(&proxy, &b.sha256, "hmac-sha256", quick());
    let mut two = one.clone();
    let (k, s) = set(&z, "a", "A", 60, &["192.0.2.10", "192.0.2.11"]);
    two.sets.insert(k, s);
    two.sets.remove(&set(&z, "b", "A", 300, &["192.0.2.2"]).0);
    for (name, t, v) in [
        ("d", "TXT", "\"four\""),
        ("e", "MX", "10 mx.example.net."),
        ("f", "AAAA", "2001:db8::f"),
    ] {
        let (k, s) = set(&z, name, t, 300, &[v]);
        two.sets.insert(k, s);
    }
    let plan = plan_zone(&two, &managed(&before), &PlanScope::default());
    assert_eq!(plan.changes.len(), 5);
    let report = p.apply(&plan).await.unwrap();
    assert_eq!(report.outcomes.len(), 5);
    assert!(report.all_ok());
    assert_eq!(
        counts.updates.load(Ordering::SeqCst),
        1,
        "one UPDATE message"
    );
    assert_eq!(counts.from_server.load(Ordering::SeqCst), 1, "one answer");

    let after = read(&direct, &z).await;
    assert_eq!(managed(&after).to_stored(), two.to_stored());
    assert_eq!(
        soa_serial(&after),
        soa_serial(&before) + 1,
        "the server applied one update"
    );
    // An empty plan sends nothing.
    let nothing = plan_zone(&two, &managed(&after), &PlanScope::default());
    assert!(nothing.is_empty());
    assert!(p.apply(&nothing).await.unwrap().outcomes.is_empty());
    assert_eq!(counts.updates.load(Ordering::SeqCst), 1);
    clean(&direct, &z).await;
}

#[tokio::test]
async fn a_zone_transfer_of_many_messages_is_read_whole_and_verified() {
    let b = bind();
    let direct = sha256();
    let z = zone(BIG_TRANSFER);
    clean(&direct, &z).await;
    let mut big = ZoneContent::new(z.clone());
    for i in 0..1500 {
        let (k, s) = set(
            &z,
            &format!("host{i:04}"),
            "TXT",
            300,
            &[&format!("\"{i:04} {}\"", "x".repeat(120))],
        );
        big.sets.insert(k, s);
    }
    converge(&direct, &z, &big, 250).await;

    let (proxy, counts) = counting_proxy(b.server.clone()).await;
    let p = provider_at(&proxy, &b.sha256, "hmac-sha256", quick());
    let content = read(&p, &z).await;
    assert_eq!(counts.transfers.load(Ordering::SeqCst), 1);
    let messages = counts.from_server.load(Ordering::SeqCst);
    assert!(messages > 1, "BIND sent the zone in {messages} message(s)");
    assert_eq!(managed(&content).to_stored(), big.to_stored());
    clean(&direct, &z).await;
}

#[tokio::test]
async fn a_zone_transfer_past_its_limits_is_refused_and_not_retried() {
    let b = bind();
    let direct = sha256();
    let z = zone(TRANSFER_LIMITS);
    clean(&direct, &z).await;
    let mut hosts = ZoneContent::new(z.clone());
    for i in 0..20 {
        let (k, s) = set(
            &z,
            &format!("host{i:02}"),
            "A",
            300,
            &[&format!("192.0.2.{i}")],
        );
        hosts.sets.insert(k, s);
    }
    converge(&direct, &z, &hosts, 100).await;
    let limited = |records: usize, bytes: usize| Limits {
        max_transfer_records: records,
        max_transfer_bytes: bytes,
        ..quick()
    };

    let (proxy_address, counts) = counting_proxy(b.server.clone()).await;
    let p = provider_at(
        &proxy_address,
        &b.sha256,
        "hmac-sha256",
        limited(10, usize::MAX),
    );
    let err = p.read_zone(&z).await.unwrap_err();
    assert!(
        matches!(err, ProviderError::InvalidAnswer(ref m)
            if m.contains("the transfer holds more than 10 records, the most ZentraLink reads of one zone")),
        "{err}"
    );
    assert_eq!(counts.transfers.load(Ordering::SeqCst), 1, "not retried");

    let p = provider_at(
        &b.server,
        &b.sha256,
        "hmac-sha256",
        limited(usize::MAX, 512),
    );
    let err = p.read_zone(&z).await.unwrap_err();
    assert!(
        matches!(err, ProviderError::InvalidAnswer(ref m)
            if m.contains("the transfer holds more than 512 bytes of messages")),
        "{err}"
    );

    // Within the limits, the zone reads whole.
    let p = provider_at(&b.server, &b.sha256, "hmac-sha256", limited(100, 64 * 1024));
    assert_eq!(managed(&read(&p, &z).await).to_stored(), hosts.to_stored());
    clean(&direct, &z).await;
}

#[tokio::test]
async fn a_plan_larger_than_one_message_is_refused_before_sending() {
    let b = bind();
    let direct = sha256();
    let z = zone(TOO_LARGE);
    clean(&direct, &z).await;
    let (proxy, counts) = counting_proxy(b.server.clone()).await;
    let p = provider_at(&proxy, &b.sha256, "hmac-sha256", quick());
    let mut big = ZoneContent::new(z.clone());
    for i in 0..800 {
        let (k, s) = set(
            &z,
            &format!("h{i}"),
            "TXT",
            300,
            &[&format!("\"{}\"", "y".repeat(100))],
        );
        big.sets.insert(k, s);
    }
    let plan = plan_zone(&big, &ZoneContent::new(z.clone()), &PlanScope::default());
    assert_eq!(p.update_len(&plan).unwrap(), None);
    let err = p.apply(&plan).await.unwrap_err();
    assert!(
        matches!(err, ProviderError::Unsupported(ref m) if m.contains("do not fit") && m.contains("smaller parts")),
        "{err}"
    );
    assert_eq!(counts.updates.load(Ordering::SeqCst), 0, "nothing was sent");
    assert!(managed(&read(&direct, &z).await).is_empty());
    // The same plan in parts that fit goes through.
    let parts: Vec<Plan> = plan
        .changes
        .chunks(400)
        .map(|c| Plan {
            zone: z.clone(),
            changes: c.to_vec(),
        })
        .collect();
    for part in &parts {
        assert!(p.update_len(part).unwrap().is_some());
        p.apply(part).await.unwrap();
    }
    assert_eq!(counts.updates.load(Ordering::SeqCst), parts.len());
    assert_eq!(managed(&read(&direct, &z).await).len(), 800);
    clean(&direct, &z).await;
}

/// Sets the apex NS and SOA (serial kept) of a zone; returns the content read after.
async fn set_apex(p: &dyn Provider, z: &ZoneName, ns: &[&str], soa_minimum: u32) -> ZoneContent {
    let current = read(p, z).await;
    let mut desired = current.clone();
    for (t, values) in [
        ("NS", ns.iter().map(|v| (*v).to_owned()).collect::<Vec<_>>()),
        (
            "SOA",
            vec![format!(
                "ns1.rfc2136.test. hostmaster.rfc2136.test. 1 3600 600 1209600 {soa_minimum}"
            )],
        ),
    ] {
        let values: Vec<&str> = values.iter().map(String::as_str).collect();
        let (k, s) = set(z, "@", t, 3600, &values);
        desired.sets.insert(k, s);
    }
    let plan = plan_zone(&desired, &current, &PlanScope::default());
    p.apply(&plan).await.unwrap();
    let after = read(p, z).await;
    assert!(
        plan_zone(&desired, &after, &PlanScope::default()).is_empty(),
        "the apex is as planned"
    );
    if !plan.is_empty() {
        assert!(soa_serial(&after) > soa_serial(&current));
    }
    after
}

#[tokio::test]
async fn the_apex_soa_and_ns_can_be_updated() {
    let p = sha256();
    let z = zone(APEX);
    clean(&p, &z).await;
    // The state scripts/bind-server.sh writes.
    let start = set_apex(&p, &z, &["ns1.rfc2136.test."], 300).await;
    let apex_ns = RrKey::new(z.as_name().clone(), RecordType::NS);
    let apex_soa = RrKey::new(z.as_name().clone(), RecordType::SOA);

    // Another name server, and a new SOA minimum TTL, in one UPDATE.
    let after = set_apex(&p, &z, &["ns1.rfc2136.test.", "ns2.rfc2136.test."], 120).await;
    assert_eq!(after.get(&apex_ns).unwrap().values().len(), 2);
    let soa_text = after.get(&apex_soa).unwrap().texts()[0].clone();
    assert!(soa_text.ends_with(" 1209600 120"), "{soa_text}");

    // And back: the second name server is removed, never the last one.
    let back = set_apex(&p, &z, &["ns1.rfc2136.test."], 300).await;
    assert_eq!(back.get(&apex_ns), start.get(&apex_ns));
}

#[tokio::test]
async fn an_answer_changed_on_the_way_is_refused() {
    let b = bind();
    let (address, counts) = proxy(b.server.clone(), true).await;
    let p = provider_at(&address, &b.sha256, "hmac-sha256", quick());
    let err = p.read_zone(&zone(SUITE_SHA256)).await.unwrap_err();
    assert!(
        matches!(err, ProviderError::Authentication(ref m) if m.contains("does not verify")),
        "{err}"
    );
    assert_eq!(
        counts.transfers.load(Ordering::SeqCst),
        1,
        "a bad signature is not retried"
    );
}

#[tokio::test]
async fn what_rfc2136_cannot_do_is_said_plainly() {
    let p = sha256();
    assert!(!p.capabilities().lists_zones);
    assert!(!p.capabilities().alias);
    assert!(p.capabilities().atomic_batch);
    let err = p.list_zones().await.unwrap_err();
    assert!(
        matches!(err, ProviderError::Unsupported(ref m) if m.contains("cannot list")),
        "{err}"
    );
    let missing = ZoneName::parse("t99.rfc2136.test.").unwrap();
    let err = p.read_zone(&missing).await.unwrap_err();
    assert!(
        matches!(err, ProviderError::ZoneNotFound(ref m) if m.contains("NOTAUTH")),
        "{err}"
    );
    p.test_connection().await.unwrap();
}

#[tokio::test]
async fn a_catalog_with_an_rfc2136_connection_is_planned() {
    let b = bind();
    let p = sha256();
    let z = zone(PLANNER);
    clean(&p, &z).await;
    let mut existing = ZoneContent::new(z.clone());
    let (k, s) = set(&z, "www", "A", 300, &["192.0.2.1"]);
    existing.sets.insert(k, s);
    converge(&p, &z, &existing, 100).await;

    let yaml = format!(
        r#"apiVersion: dns.zentralink.net/v1alpha1
kind: Tenant
metadata: {{ name: lab }}
spec:
  displayName: Lab
  namespaces: [lab]
  allowedDomains: [rfc2136.test.]
---
apiVersion: dns.zentralink.net/v1alpha1
kind: ProviderConnection
metadata: {{ name: bind, namespace: lab }}
spec:
  type: rfc2136
  rfc2136: {{ server: "{server}", tsigKeyName: {key} }}
  credentials: {{ env: ZL_BIND_TSIG256_SECRET }}
---
apiVersion: dns.zentralink.net/v1alpha1
kind: DnsZone
metadata: {{ name: lab-zone, namespace: lab }}
spec:
  zone: {z}
  providerRef: {{ name: bind }}
  recordSets:
    - {{ name: www, type: A, ttl: 300, values: [192.0.2.2] }}
    - {{ name: "@", type: MX, values: ["10 mx.example.net."] }}
"#,
        server = b.server,
        key = b.sha256.0,
    );
    let file = zentralink_model::documents::SourceFile::new("lab.yaml", yaml);
    let (objects, errors) = zentralink_model::documents::parse_documents(&file);
    assert!(errors.is_empty(), "{errors:?}");
    let (catalog, errors) = zentralink_model::catalog::Catalog::build(objects);
    assert!(errors.is_empty(), "{errors:?}");
    let env = zentralink_providers::credentials::CredentialEnv::new(
        [("ZL_BIND_TSIG256_SECRET".to_owned(), b.sha256.1.clone())],
        &["ZL_BIND_TSIG256_SECRET".to_owned()],
    )
    .unwrap();
    let sources = zentralink_providers::credentials::CredentialSources {
        env: &env,
        ..Default::default()
    };
    let plans = common::plan_catalog(&catalog, &sources).await;
    assert_eq!(plans.len(), 1);
    let plan = plans[0].clone().unwrap();
    assert!(!catalog.connection("lab", "bind").unwrap().live_requested());
    let ops: Vec<(ChangeOp, String, String)> = plan
        .changes
        .iter()
        .map(|c| {
            (
                c.op,
                c.key.name().to_ascii(),
                zentralink_model::record::type_name(c.key.rtype),
            )
        })
        .collect();
    assert_eq!(ops.len(), 2, "{ops:?}");
    assert!(
        ops.iter()
            .any(|(op, _, t)| *op == ChangeOp::Update && t == "A"),
        "{ops:?}"
    );
    assert!(
        ops.iter()
            .any(|(op, _, t)| *op == ChangeOp::Create && t == "MX"),
        "{ops:?}"
    );
    // Planning reads only.
    assert_eq!(
        managed(&read(&p, &z).await).to_stored(),
        existing.to_stored()
    );
    clean(&p, &z).await;
}
