//! The DNSSEC guard against a real PowerDNS (started by
//! scripts/pdns-server.sh, found through ZL_PDNS_URL and ZL_PDNS_API_KEY): a
//! child zone signed with `pdnsutil secure-zone`, its DNSKEYs read through
//! the provider's cryptokeys call, the DS records `pdnsutil export-zone-ds`
//! prints checked against them, and `decide` over the parent zone refusing
//! a wrong DS and executing the right one. Does I/O (HTTP, pdnsutil, DNS
//! server state).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::future::Future;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use hickory_proto::rr::RecordType;
use k8s_openapi::jiff::Timestamp;
use serde_json::json;
use zentralink_model::catalog::Policy;
use zentralink_model::dnssec::check_ds_change;
use zentralink_model::liveness::LiveDecision;
use zentralink_model::plan::Ownership;
use zentralink_model::reconcile::{
    ChildZone, Decision, Outcome, RequestKind, RequestState, RequestView, ZoneInputs, decide,
};
use zentralink_model::resources::{DriftMode, PowerDnsSettings};
use zentralink_model::secrets::SecretString;
use zentralink_model::{RecordSet, RecordValue, RrKey, ZoneContent, ZoneName};
use zentralink_providers::Provider;
use zentralink_providers::powerdns::PowerDnsProvider;
use zentralink_providers::resilience::Limits;

// ------------------------------------------------------------------ the server

/// The running PowerDNS, from the environment scripts/pdns-server.sh writes,
/// and the configuration directory pdnsutil needs to sign its zones.
#[derive(Clone)]
struct Pdns {
    url: String,
    key: String,
    config_dir: PathBuf,
}

const START: &str = "start it with scripts/pdns-server.sh start (scripts/test.sh does), then source .zentralink/servers/pdns.env";

fn pdns() -> Pdns {
    let (url, key) = match (
        std::env::var("ZL_PDNS_URL"),
        std::env::var("ZL_PDNS_API_KEY"),
    ) {
        (Ok(url), Ok(key)) if !url.is_empty() && !key.is_empty() => (url, key),
        _ => panic!("PowerDNS is not running: {START}"),
    };
    // scripts/pdns-server.sh's configuration directory, unless told otherwise.
    let config_dir = std::env::var_os("ZL_PDNS_CONFIG_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../.zentralink/servers/pdns")
        });
    let config = std::fs::read_to_string(config_dir.join("pdns.conf")).unwrap_or_else(|e| {
        panic!(
            "{}/pdns.conf cannot be read ({e}): pdnsutil needs the test server's configuration; {START}, or set ZL_PDNS_CONFIG_DIR to its configuration directory",
            config_dir.display()
        )
    });
    let port = url.rsplit(':').next().unwrap_or_default();
    assert!(
        config
            .lines()
            .any(|l| l.trim() == format!("webserver-port={port}")),
        "{} configures another PowerDNS than the one at {url}; {START}, or set ZL_PDNS_CONFIG_DIR to the configuration directory of the server at {url}",
        config_dir.display()
    );
    assert!(
        config.lines().any(|l| l.trim() == "gsqlite3-dnssec=yes"),
        "the PowerDNS at {url} runs without gsqlite3-dnssec=yes, so it cannot sign zones; run scripts/pdns-server.sh start again: it restarts the server in place with the current configuration"
    );
    Pdns {
        url,
        key,
        config_dir,
    }
}

impl Pdns {
    fn zones_url(&self) -> String {
        format!("{}/api/v1/servers/localhost/zones", self.url)
    }

    /// A direct API call, bypassing the provider (setting up).
    async fn raw(
        &self,
        method: reqwest::Method,
        url: &str,
        body: Option<serde_json::Value>,
    ) -> (u16, String) {
        zentralink_providers::install_tls_provider();
        let mut request = reqwest::Client::new()
            .request(method, url)
            .header("X-API-Key", &self.key);
        if let Some(b) = body {
            request = request
                .header("Content-Type", "application/json")
                .body(b.to_string());
        }
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        (status, response.text().await.unwrap())
    }

    async fn create_zone(&self, zone: &ZoneName) {
        let (status, body) = self
            .raw(
                reqwest::Method::POST,
                &self.zones_url(),
                Some(json!({
                    "name": zone.to_string(),
                    "kind": "Native",
                    "nameservers": ["ns1.example.net.", "ns2.example.net."],
                })),
            )
            .await;
        assert_eq!(status, 201, "creating {zone}: {body}");
    }

    async fn delete_zone(&self, zone: &ZoneName) {
        let url = format!("{}/{zone}", self.zones_url());
        let (status, body) = self.raw(reqwest::Method::DELETE, &url, None).await;
        assert!(
            status == 204 || status == 404,
            "deleting {zone}: {status} {body}"
        );
    }

    /// Delegates `child` from `parent` with an NS record set.
    async fn delegate(&self, parent: &ZoneName, child: &ZoneName) {
        let url = format!("{}/{parent}", self.zones_url());
        let (status, body) = self
            .raw(
                reqwest::Method::PATCH,
                &url,
                Some(json!({"rrsets": [{
                    "name": child.to_string(), "type": "NS", "ttl": 3600, "changetype": "REPLACE",
                    "records": [{"content": "ns1.example.net.", "disabled": false}],
                }]})),
            )
            .await;
        assert_eq!(status, 204, "delegating {child} from {parent}: {body}");
    }

    /// Runs pdnsutil on the test server's configuration; its standard output.
    fn pdnsutil(&self, args: &[&str]) -> String {
        let output = Command::new("pdnsutil")
            .arg(format!("--config-dir={}", self.config_dir.display()))
            .args(args)
            .output()
            .unwrap_or_else(|e| {
                panic!("pdnsutil cannot run ({e}): install pdns-server (scripts/pdns-server.sh start does)")
            });
        assert!(
            output.status.success(),
            "pdnsutil {}: {}\n{}",
            args.join(" "),
            output.status,
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8(output.stdout).unwrap()
    }
}

/// A zone name no other test (or earlier run) uses.
fn unique_zone(tag: &str) -> ZoneName {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    ZoneName::parse(&format!(
        "{tag}-{}-{}-{nanos}.zl-test.",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::SeqCst)
    ))
    .unwrap()
}

/// Exclusive use of the test PowerDNS while it lives, across test threads
/// and processes: the same lock file as providers/tests/powerdns_provider.rs
/// (the sqlite backend refuses concurrent write transactions, and pdnsutil
/// writes to the same database).
struct ServerLock(PathBuf);

impl ServerLock {
    async fn acquire(server: &Pdns) -> ServerLock {
        let port = server.url.rsplit(':').next().unwrap_or("0").to_owned();
        let path = std::env::temp_dir().join(format!("zentralink-pdns-tests-{port}.lock"));
        loop {
            match std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(&path)
            {
                Ok(mut file) => {
                    write!(file, "{}", std::process::id()).unwrap();
                    return ServerLock(path);
                }
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                    // A lock whose process is gone is stale.
                    let holder = std::fs::read_to_string(&path).unwrap_or_default();
                    let holder = holder.trim();
                    if !holder.is_empty() && !Path::new(&format!("/proc/{holder}")).exists() {
                        let _ = std::fs::remove_file(&path);
                        continue;
                    }
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
                Err(e) => panic!("cannot create {}: {e}", path.display()),
            }
        }
    }
}

impl Drop for ServerLock {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// Runs `body` with a fresh parent zone and a child zone `shop.<parent>`
/// delegated from it and signed by PowerDNS, and deletes both afterwards,
/// also when `body` fails.
async fn with_signed_child<F, Fut>(body: F)
where
    F: FnOnce(Pdns, ZoneName, ZoneName) -> Fut + Send + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    let server = pdns();
    let _exclusive = ServerLock::acquire(&server).await;
    let parent = unique_zone("dnssec-parent");
    let child = ZoneName::parse(&format!("shop.{parent}")).unwrap();
    server.create_zone(&parent).await;
    server.create_zone(&child).await;
    let outcome = {
        let (server, parent, child) = (server.clone(), parent.clone(), child.clone());
        tokio::spawn(async move {
            server.delegate(&parent, &child).await;
            server.pdnsutil(&["secure-zone", &child.to_string()]);
            body(server, parent, child).await;
        })
        .await
    };
    server.delete_zone(&child).await;
    server.delete_zone(&parent).await;
    if let Err(e) = outcome {
        std::panic::resume_unwind(e.into_panic());
    }
}

fn provider(server: &Pdns) -> PowerDnsProvider {
    let settings = PowerDnsSettings {
        url: server.url.clone(),
        server_id: None,
        create_zones: false,
    };
    PowerDnsProvider::new(&settings, SecretString::new(&server.key), Limits::default()).unwrap()
}

/// The DS records `pdnsutil export-zone-ds` prints for `child`, as the
/// parent's record values (`shop.parent. IN DS 23455 13 2 a218... ; ( SHA256 digest )`).
fn exported_ds(server: &Pdns, child: &ZoneName) -> Vec<RecordValue> {
    let printed = server.pdnsutil(&["export-zone-ds", &child.to_string()]);
    let values: Vec<RecordValue> = printed
        .lines()
        .filter_map(|line| {
            let data = line.split(';').next()?;
            let (_, rdata) = data.split_once(" DS ")?;
            Some(RecordValue::parse(RecordType::DS, rdata, child).unwrap())
        })
        .collect();
    assert!(
        !values.is_empty(),
        "export-zone-ds printed no DS:\n{printed}"
    );
    values
}

/// `value` with its text changed by `edit`, parsed again.
fn edited(value: &RecordValue, zone: &ZoneName, edit: impl Fn(&[&str]) -> String) -> RecordValue {
    let fields: Vec<&str> = value.text().split_whitespace().collect();
    RecordValue::parse(RecordType::DS, &edit(&fields), zone).unwrap()
}

/// The same DS with the last digit of its digest changed.
fn wrong_digest(value: &RecordValue, zone: &ZoneName) -> RecordValue {
    edited(value, zone, |f| {
        let digest = f[3..].concat();
        let (head, last) = digest.split_at(digest.len() - 1);
        let last = if last.eq_ignore_ascii_case("0") {
            "1"
        } else {
            "0"
        };
        format!("{} {} {} {head}{last}", f[0], f[1], f[2])
    })
}

/// The same DS naming the next key tag.
fn wrong_key_tag(value: &RecordValue, zone: &ZoneName) -> RecordValue {
    edited(value, zone, |f| {
        let tag: u16 = f[0].parse().unwrap();
        format!(
            "{} {} {} {}",
            tag.wrapping_add(1),
            f[1],
            f[2],
            f[3..].concat()
        )
    })
}

fn now() -> Timestamp {
    Timestamp::from_second(1_800_000_000).unwrap()
}

fn live() -> LiveDecision {
    LiveDecision {
        live: true,
        reason: "Enabled",
        message: "enabled".into(),
    }
}

/// `decide` over the parent: its content on the provider, declared with
/// the child's DS set `ds` (none: removed), with the child listed.
fn decide_parent(
    parent: &ZoneName,
    actual: &ZoneContent,
    child: &ChildZone,
    ds: Option<&RecordSet>,
    requests: &[RequestView],
) -> Decision {
    let mut desired = actual.clone();
    let key = RrKey::new(child.zone.as_name().clone(), RecordType::DS);
    match ds {
        Some(set) => desired.sets.insert(key, set.clone()),
        None => desired.sets.remove(&key),
    };
    assert_eq!(&desired.origin, parent);
    decide(&ZoneInputs {
        tenant: "acme",
        object: "parent",
        desired: &desired,
        ownership: Ownership::Full,
        drift: DriftMode::Report,
        actual,
        last_applied: None,
        policy: &Policy::default(),
        requests,
        live: &live(),
        now: now(),
        children: std::slice::from_ref(child),
    })
}

// ------------------------------------------------------------------ the tests

#[tokio::test]
async fn the_ds_pdnsutil_exports_matches_the_keys_the_provider_reads() {
    with_signed_child(|server, parent, child| async move {
        let p = provider(&server);
        let keys = p
            .dnskeys(&child)
            .await
            .unwrap()
            .unwrap_or_else(|| panic!("{child} is signed, but no DNSKEY was read"));
        assert!(!keys.values().is_empty());
        assert_eq!(
            p.dnskeys(&parent).await.unwrap(),
            None,
            "the parent is not signed"
        );
        // The cryptokeys' DNSKEYs are what PowerDNS serves, not records of the zone.
        let content = p.read_zone(&child).await.unwrap().unwrap();
        assert!(
            !content.sets.keys().any(|k| k.rtype == RecordType::DNSKEY),
            "{content:?}"
        );

        let exported = exported_ds(&server, &child);
        let ds = RecordSet::new(3600, exported.clone());
        assert_eq!(check_ds_change(&child, Some(&keys), Some(&ds)), Ok(()));
        for value in &exported {
            let one = RecordSet::new(3600, vec![value.clone()]);
            assert_eq!(
                check_ds_change(&child, Some(&keys), Some(&one)),
                Ok(()),
                "{value}"
            );
            let wrong = RecordSet::new(3600, vec![wrong_digest(value, &child)]);
            let error = check_ds_change(&child, Some(&keys), Some(&wrong)).unwrap_err();
            assert!(error.contains("digest of that key"), "{error}");
            let wrong = RecordSet::new(3600, vec![wrong_key_tag(value, &child)]);
            let error = check_ds_change(&child, Some(&keys), Some(&wrong)).unwrap_err();
            assert!(error.contains("has no such key"), "{error}");
        }
        let error = check_ds_change(&child, Some(&keys), None).unwrap_err();
        assert!(error.contains("cannot be removed"), "{error}");
    })
    .await;
}

#[tokio::test]
async fn decide_over_the_parent_refuses_a_wrong_ds_and_executes_the_right_one() {
    with_signed_child(|server, parent, child| async move {
        let p = provider(&server);
        let observed = ChildZone {
            zone: child.clone(),
            dnskeys: p.dnskeys(&child).await.unwrap(),
        };
        let actual = p.read_zone(&parent).await.unwrap().unwrap();
        let right = RecordSet::new(3600, exported_ds(&server, &child));
        let wrong = RecordSet::new(
            3600,
            right
                .values()
                .iter()
                .map(|v| wrong_digest(v, &child))
                .collect(),
        );

        // A wrong DS: refused, nothing executes, nothing is requested.
        let d = decide_parent(&parent, &actual, &observed, Some(&wrong), &[]);
        assert_eq!(d.outcome, Outcome::Refused, "{d:?}");
        assert!(d.is_quiet(), "{d:?}");
        let reason = d.reason.unwrap_or_default();
        assert!(reason.contains("bogus"), "{reason}");
        assert!(reason.contains(&child.to_string()), "{reason}");

        // The right DS: gated (DS always is); approved, it executes.
        let d = decide_parent(&parent, &actual, &observed, Some(&right), &[]);
        assert_eq!(d.outcome, Outcome::AwaitingApproval, "{d:?}");
        let opened = d.requests.open.unwrap();
        let approved = RequestView {
            name: opened.name.clone(),
            digest: opened.plan.digest,
            state: RequestState::Approved,
            kind: RequestKind::Declared,
            expires_at: opened.expires_at,
        };
        let d = decide_parent(
            &parent,
            &actual,
            &observed,
            Some(&right),
            std::slice::from_ref(&approved),
        );
        assert_eq!(d.outcome, Outcome::ExecuteApproved, "{d:?}");
        let execution = d.execute.unwrap();
        let report = p.apply(&execution.plan).await.unwrap();
        assert!(report.all_ok(), "{report:?}");
        let after = p.read_zone(&parent).await.unwrap().unwrap();
        let ds_key = RrKey::new(child.as_name().clone(), RecordType::DS);
        assert_eq!(
            after.sets.get(&ds_key).map(RecordSet::texts),
            Some(right.texts())
        );

        // Removing it again while the child is signed: refused.
        let d = decide_parent(&parent, &after, &observed, None, &[]);
        assert_eq!(d.outcome, Outcome::Refused, "{d:?}");
        assert!(d.is_quiet(), "{d:?}");
        assert!(
            d.reason.unwrap_or_default().contains("cannot be removed"),
            "removal of a signed child's DS"
        );
    })
    .await;
}
