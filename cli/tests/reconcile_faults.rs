//! Faults through the reconciler, against the real PowerDNS behind a proxy
//! that misbehaves on writes: a 429 (refused, nothing applied), a 500 after
//! the write went through (uncertain: the zone is read back and the write
//! recorded as applied), a 500 before it (uncertain: read back, nothing
//! applied, planned again). Every time the history says what the zone holds,
//! and the next pass picks up from the truth. Needs DATABASE_URL and PowerDNS.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::process::{Command, Output};
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use sqlx::postgres::{PgPool, PgPoolOptions};
use sqlx::{Executor, Row};

mod common;
use common::{PdnsLock, env, text};

const FORWARD: u8 = 0;
const PATCH_429: u8 = 1;
const PATCH_500_AFTER: u8 = 2;
const PATCH_500_BEFORE: u8 = 3;

#[derive(Clone)]
struct Proxy {
    upstream: String,
    mode: Arc<AtomicU8>,
    client: reqwest::Client,
}

async fn forward(
    State(p): State<Proxy>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let mode = p.mode.load(Ordering::SeqCst);
    let write = method != Method::GET;
    if write && mode == PATCH_429 {
        return (StatusCode::TOO_MANY_REQUESTS, "slow down").into_response();
    }
    if write && mode == PATCH_500_BEFORE {
        return (StatusCode::INTERNAL_SERVER_ERROR, "backend exploded").into_response();
    }
    let (status, bytes) =
        common::pass_on(&p.client, &p.upstream, &method, &uri, &headers, body).await;
    if write && mode == PATCH_500_AFTER {
        return (
            StatusCode::INTERNAL_SERVER_ERROR,
            "applied, then the proxy failed",
        )
            .into_response();
    }
    (status, bytes).into_response()
}

fn manifests(proxy: &str, zone: &str, www: &str) -> String {
    format!(
        "apiVersion: dns.zentralink.net/v1alpha1
kind: Tenant
metadata: {{ name: faults }}
spec: {{ displayName: Faults, namespaces: [faults], allowedDomains: [test.] }}
---
apiVersion: dns.zentralink.net/v1alpha1
kind: ProviderConnection
metadata: {{ name: pdns, namespace: faults }}
spec:
  type: powerdns
  powerdns: {{ url: \"{proxy}\", createZones: true }}
  credentials: {{ env: ZENTRALINK_CREDENTIAL_PDNS }}
  mode: Live
  acknowledgeLiveWrites: true
  limits: {{ timeoutSeconds: 5 }}
---
apiVersion: dns.zentralink.net/v1alpha1
kind: DnsZone
metadata: {{ name: faults, namespace: faults }}
spec:
  zone: {zone}
  providerRef: {{ name: pdns }}
  defaultTtl: 300
  recordSets:
    - {{ name: '@', type: NS, ttl: 3600, values: [ns1.example.net.] }}
    - {{ name: www, type: A, values: [{www}] }}
"
    )
}

async fn applied_rows(pool: &PgPool, value: &str) -> (i64, i64) {
    let rows = sqlx::query("SELECT outcome FROM dns_changes WHERE after->'values'->>0 = $1")
        .bind(value)
        .fetch_all(pool)
        .await
        .unwrap();
    let applied = rows
        .iter()
        .filter(|r| r.get::<String, _>("outcome") == "applied")
        .count();
    (applied as i64, (rows.len() - applied) as i64)
}

// The proxy runs on the test's runtime while the binary runs: more than one thread.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn write_faults_never_record_what_did_not_happen() {
    zentralink_providers::install_tls_provider();
    let pdns_url = env("ZL_PDNS_URL");
    let pdns_key = env("ZL_PDNS_API_KEY");
    let _turn = PdnsLock::acquire(&pdns_url);
    let proxy = Proxy {
        upstream: pdns_url.clone(),
        mode: Arc::new(AtomicU8::new(FORWARD)),
        client: reqwest::Client::new(),
    };
    let mode = Arc::clone(&proxy.mode);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let proxy_url = format!("http://{}", listener.local_addr().unwrap());
    let app = axum::Router::new().fallback(forward).with_state(proxy);
    tokio::spawn(async move { axum::serve(listener, app).await });

    let (admin, db_url, db) = common::fresh_database("zl_faults").await;
    let pool = PgPoolOptions::new()
        .max_connections(1)
        .connect_lazy(&db_url)
        .unwrap();
    let work = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(work.path().join("repo")).unwrap();
    let zone = format!("faults-{}.pdns.test.", std::process::id());
    let key = text(
        &Command::new(env!("CARGO_BIN_EXE_zentralink"))
            .args(["secrets", "generate-key"])
            .output()
            .unwrap()
            .stdout,
    )
    .trim()
    .to_owned();
    let reconcile = |www: &str| -> Output {
        std::fs::write(
            work.path().join("repo/zone.yaml"),
            manifests(&proxy_url, &zone, www),
        )
        .unwrap();
        Command::new(env!("CARGO_BIN_EXE_zentralink"))
            .args(["reconcile", "repo", "--format", "json"])
            .current_dir(work.path())
            .env("DATABASE_URL", &db_url)
            .env("PLATFORM_ENCRYPTION_KEY", &key)
            .env("ZENTRALINK_CREDENTIAL_PDNS", &pdns_key)
            .output()
            .unwrap()
    };
    let live_www = || async {
        let answer = reqwest::Client::new()
            .get(format!("{pdns_url}/api/v1/servers/localhost/zones/{zone}"))
            .header("X-API-Key", &pdns_key)
            .send()
            .await
            .unwrap();
        let json: serde_json::Value = answer.json().await.unwrap();
        json["rrsets"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["name"] == format!("www.{zone}") && r["type"] == "A")
            .map(|r| r["records"][0]["content"].as_str().unwrap().to_owned())
    };

    // The zone exists first (the write probe needs one), created through the proxy.
    let create = reqwest::Client::new()
        .post(format!("{pdns_url}/api/v1/servers/localhost/zones"))
        .header("X-API-Key", &pdns_key)
        .json(&serde_json::json!({"name": zone, "kind": "Native", "nameservers": ["ns1.example.net."]}))
        .send()
        .await
        .unwrap();
    assert!(
        create.status().is_success(),
        "{}",
        create.text().await.unwrap()
    );

    let out = reconcile("192.0.2.1");
    assert!(
        out.status.success(),
        "{}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    assert_eq!(live_www().await.as_deref(), Some("192.0.2.1"));
    assert_eq!(applied_rows(&pool, "192.0.2.1").await, (1, 0));

    // 429 on the write: refused, nothing applied, nothing recorded as applied
    mode.store(PATCH_429, Ordering::SeqCst);
    let out = reconcile("192.0.2.2");
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stdout));
    assert!(
        text(&out.stdout).contains("rate limited"),
        "{}",
        text(&out.stdout)
    );
    assert_eq!(live_www().await.as_deref(), Some("192.0.2.1"));
    assert_eq!(applied_rows(&pool, "192.0.2.2").await, (0, 0));
    let failed: i64 = sqlx::query_scalar("SELECT count(*) FROM executions WHERE state = 'Failed'")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(
        failed, 1,
        "the attempt is on record as an execution that applied nothing"
    );

    // 500 before the write reaches PowerDNS: uncertain, read back, nothing applied
    mode.store(PATCH_500_BEFORE, Ordering::SeqCst);
    let out = reconcile("192.0.2.2");
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stdout));
    assert!(
        text(&out.stdout).contains("nothing of the batch applied"),
        "{}",
        text(&out.stdout)
    );
    assert_eq!(live_www().await.as_deref(), Some("192.0.2.1"));
    assert_eq!(applied_rows(&pool, "192.0.2.2").await, (0, 0));

    // 500 after the write went through: uncertain, read back, recorded as applied
    mode.store(PATCH_500_AFTER, Ordering::SeqCst);
    let out = reconcile("192.0.2.2");
    assert!(
        out.status.success(),
        "{}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    assert_eq!(live_www().await.as_deref(), Some("192.0.2.2"));
    assert_eq!(applied_rows(&pool, "192.0.2.2").await, (1, 0));
    let recovered: i64 =
        sqlx::query_scalar("SELECT count(*) FROM executions WHERE state = 'Recovered'")
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(recovered, 1);

    // and the next pass, with the provider well again, has nothing to do
    mode.store(FORWARD, Ordering::SeqCst);
    let before: i64 = sqlx::query_scalar("SELECT count(*) FROM dns_changes")
        .fetch_one(&pool)
        .await
        .unwrap();
    let out = reconcile("192.0.2.2");
    assert!(out.status.success());
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["zones"][0]["outcome"], "Converged", "{json}");
    let after: i64 = sqlx::query_scalar("SELECT count(*) FROM dns_changes")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(before, after);

    pool.close().await;
    let _ = admin
        .execute(sqlx::AssertSqlSafe(format!(
            "DROP DATABASE {db} WITH (FORCE)"
        )))
        .await;
}
