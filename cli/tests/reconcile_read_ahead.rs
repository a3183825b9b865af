//! `zentralink reconcile DIRECTORY` reads the zones while the manifests
//! load (operator/src/prefetch.rs), before the pass holds the zone's lock.
//! Against the real PowerDNS (behind a proxy that counts its GETs) and
//! PostgreSQL: a read ahead of a zone still as read is used (no second read
//! of the whole zone, only the small read of its serial); a zone changed
//! after the read ahead is read again, and the change is seen (drift), as
//! without the read ahead. Needs DATABASE_URL and PowerDNS.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, Uri};
use axum::response::{IntoResponse, Response};
use sqlx::Executor;
use tokio::runtime::Handle;
use zentralink_model::reconcile::Outcome;
use zentralink_model::secrets::{EncryptionKey, Keyring};
use zentralink_operator::prefetch::Prefetch;
use zentralink_operator::reconcile::{
    Credentials, Options, PassReport, Reconciler, SystemClock, ZoneResult,
};
use zentralink_operator::source::Source;
use zentralink_operator::source::directory::DirectorySource;
use zentralink_providers::credentials::CredentialEnv;
use zentralink_store::{ConnectRetry, Store};

mod common;
use common::{PdnsLock, env};

const CREDENTIAL: &str = "ZENTRALINK_CREDENTIAL_PDNS";

/// Forwards to PowerDNS and remembers every GET's path and query.
#[derive(Clone)]
struct Proxy {
    upstream: String,
    client: reqwest::Client,
    gets: Arc<Mutex<Vec<String>>>,
}

impl Proxy {
    /// GETs of whole zones (with their rrsets) and of serials only, since `from`.
    fn reads_since(&self, from: usize) -> (usize, usize) {
        let gets = self.gets.lock().unwrap();
        let zone_reads = gets[from..].iter().filter(|p| p.contains("/zones/"));
        let (small, whole): (Vec<&String>, Vec<&String>) =
            zone_reads.partition(|p| p.contains("rrsets=false"));
        (whole.len(), small.len())
    }

    fn seen(&self) -> usize {
        self.gets.lock().unwrap().len()
    }
}

async fn forward(
    State(p): State<Proxy>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if method == Method::GET {
        let path = uri.path_and_query().map_or("", |q| q.as_str()).to_owned();
        p.gets.lock().unwrap().push(path);
    }
    common::pass_on(&p.client, &p.upstream, &method, &uri, &headers, body)
        .await
        .into_response()
}

fn manifests(proxy: &str, zone: &str) -> String {
    format!(
        "apiVersion: dns.zentralink.net/v1alpha1
kind: Tenant
metadata: {{ name: ahead }}
spec: {{ displayName: Ahead, namespaces: [ahead], allowedDomains: [test.] }}
---
apiVersion: dns.zentralink.net/v1alpha1
kind: TenantPolicy
metadata: {{ name: policy, namespace: ahead }}
spec:
  approvals:
    requiredFor: {{ recordTypes: [], deletions: false, rollbacks: false, bulkChangeThreshold: 1000 }}
---
apiVersion: dns.zentralink.net/v1alpha1
kind: ProviderConnection
metadata: {{ name: pdns, namespace: ahead }}
spec:
  type: powerdns
  powerdns: {{ url: \"{proxy}\", createZones: true }}
  credentials: {{ env: {CREDENTIAL} }}
  mode: Live
  acknowledgeLiveWrites: true
---
apiVersion: dns.zentralink.net/v1alpha1
kind: DnsZone
metadata: {{ name: ahead, namespace: ahead }}
spec:
  zone: {zone}
  providerRef: {{ name: pdns }}
  defaultTtl: 300
  recordSets:
    - {{ name: '@', type: NS, ttl: 3600, values: [ns1.example.net.] }}
    - {{ name: www, type: A, values: [192.0.2.10] }}
"
    )
}

fn only_zone(report: &PassReport) -> &ZoneResult {
    assert_eq!(report.zones.len(), 1, "{report:?}");
    let z = &report.zones[0];
    assert_eq!(z.error, None, "{report:?}");
    z
}

/// Starts the reads ahead of the manifests under `paths` and waits until
/// PowerDNS has answered them.
async fn read_ahead(paths: &[PathBuf], credentials: &Credentials) -> Prefetch {
    let prefetch = Prefetch::start(&Handle::current(), paths, &credentials.sources(), None);
    assert_eq!(prefetch.pending().count(), 1, "{prefetch:?}");
    for _ in 0..500 {
        if prefetch.finished() == 1 {
            return prefetch;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("the read ahead did not finish in 5 s");
}

// The proxy runs on the test's runtime beside the pass: more than one thread.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_read_ahead_is_used_only_while_the_zone_is_as_read() {
    zentralink_providers::install_tls_provider();
    let pdns_url = env("ZL_PDNS_URL");
    let pdns_key = env("ZL_PDNS_API_KEY");
    let _turn = PdnsLock::acquire(&pdns_url);
    let proxy = Proxy {
        upstream: pdns_url.clone(),
        client: reqwest::Client::new(),
        gets: Arc::default(),
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let proxy_url = format!("http://{}", listener.local_addr().unwrap());
    let app = axum::Router::new()
        .fallback(forward)
        .with_state(proxy.clone());
    tokio::spawn(async move { axum::serve(listener, app).await });

    let zone = format!("ahead-{}.pdns.test.", std::process::id());
    let zone_url = format!("{pdns_url}/api/v1/servers/localhost/zones/{zone}");
    let http = reqwest::Client::new();
    let _ = http
        .delete(&zone_url)
        .header("X-API-Key", &pdns_key)
        .send()
        .await;
    // The connection's write probe needs a zone of it to exist: an empty one.
    let created = http
        .post(format!("{pdns_url}/api/v1/servers/localhost/zones"))
        .header("X-API-Key", &pdns_key)
        .json(&serde_json::json!({"name": zone, "kind": "Native", "nameservers": []}))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status().as_u16(), 201, "{created:?}");

    let (admin, db_url, db) = common::fresh_database("zl_ahead").await;
    let keyring = Keyring::new(EncryptionKey::from_bytes([3; 32]), None);
    let store = Store::connect(&db_url, keyring.clone(), ConnectRetry::default())
        .await
        .unwrap();
    store.migrate().await.unwrap();
    let work = tempfile::tempdir().unwrap();
    let file = work.path().join("zones.yaml");
    std::fs::write(&file, manifests(&proxy_url, &zone)).unwrap();
    let paths = vec![file.clone()];
    let credentials = Arc::new(Credentials {
        keyring: Ok(keyring),
        env: CredentialEnv::new(
            [(CREDENTIAL.to_owned(), pdns_key.clone())],
            &[CREDENTIAL.to_owned()],
        )
        .unwrap(),
        secrets: None,
    });
    let source = DirectorySource::new(paths.clone(), "tester (local)");
    let reconciler = Reconciler::new(
        store.clone(),
        Arc::clone(&credentials),
        Arc::new(SystemClock),
        Options {
            concurrency: 4,
            actor: "read-ahead-test".into(),
            execute: true,
        },
    );

    // The first pass creates the zone (and tests the connection).
    let report = reconciler.pass(&source.fetch().await.unwrap()).await;
    let first = only_zone(&report);
    assert_eq!(first.applied, 2, "{report:?}");

    // Nothing changed since the read ahead: it is the pass's observation.
    let prefetch = read_ahead(&paths, &credentials).await;
    let from = proxy.seen();
    let revision = source.fetch().await.unwrap();
    let report = reconciler.pass_prefetched(&revision, prefetch).await;
    let z = only_zone(&report);
    assert_eq!(z.outcome, Some(Outcome::Converged), "{report:?}");
    assert!(z.drift.is_empty(), "{report:?}");
    assert_eq!(
        proxy.reads_since(from),
        (0, 1),
        "no whole read, one read of the serial: {:?}",
        proxy.gets.lock().unwrap()[from..].to_vec()
    );

    // www changed at PowerDNS after the read ahead (its serial moves): the
    // pass reads the zone again and sees the drift the read ahead missed.
    let prefetch = read_ahead(&paths, &credentials).await;
    let changed = http
        .patch(&zone_url)
        .header("X-API-Key", &pdns_key)
        .json(&serde_json::json!({"rrsets": [{
            "name": format!("www.{zone}"), "type": "A", "ttl": 300, "changetype": "REPLACE",
            "records": [{"content": "198.51.100.7", "disabled": false}],
        }]}))
        .send()
        .await
        .unwrap();
    assert!(changed.status().is_success(), "{changed:?}");
    let from = proxy.seen();
    let report = reconciler.pass_prefetched(&revision, prefetch).await;
    let z = only_zone(&report);
    assert_eq!(z.drift, [format!("www.{zone} A")], "{report:?}");
    assert_eq!(
        proxy.reads_since(from),
        (1, 1),
        "the serial, then the whole zone again: {:?}",
        proxy.gets.lock().unwrap()[from..].to_vec()
    );

    // The connection's settings changed between the scan and the load (a
    // file written meanwhile): the read ahead was made through settings the
    // validated revision does not have, and is never used.
    let prefetch = read_ahead(&paths, &credentials).await;
    std::fs::write(
        &file,
        manifests(&proxy_url, &zone).replace(
            "acknowledgeLiveWrites: true\n",
            "acknowledgeLiveWrites: true\n  limits: { timeoutSeconds: 7 }\n",
        ),
    )
    .unwrap();
    let revision = source.fetch().await.unwrap();
    let from = proxy.seen();
    let report = reconciler.pass_prefetched(&revision, prefetch).await;
    assert_eq!(only_zone(&report).drift, [format!("www.{zone} A")]);
    assert_eq!(
        proxy.reads_since(from).0,
        1,
        "read again through the validated connection"
    );

    drop(store);
    let _ = http
        .delete(&zone_url)
        .header("X-API-Key", &pdns_key)
        .send()
        .await;
    admin
        .execute(sqlx::AssertSqlSafe(format!(
            "DROP DATABASE IF EXISTS {db} WITH (FORCE)"
        )))
        .await
        .unwrap();
}
