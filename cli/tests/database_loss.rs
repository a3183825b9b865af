//! The database goes away in the middle of a pass: right after PowerDNS
//! applied a batch, before the reconciler could record it. The pass fails
//! cleanly (an error naming the database, exit 1, no panic, no hang), the
//! provider keeps what it applied, and the next pass, with the database
//! back, records what happened from the provider's truth: one history row,
//! applied, no second write. The operator process rides out the same loss:
//! `/readyz` answers 503 while the database is unreachable, and the process
//! recovers when it returns. Real PostgreSQL and PowerDNS, each behind a
//! proxy the test controls. Needs DATABASE_URL and PowerDNS.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::process::{Command, Output, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, Uri};
use axum::response::{IntoResponse, Response};
use sqlx::Executor;
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

mod common;
use common::{PdnsLock, env, text};

/// A TCP proxy in front of PostgreSQL that can cut every connection and
/// refuse new ones, as a database that went away does.
#[derive(Clone)]
struct Database {
    /// true while the database is "away".
    down: watch::Sender<bool>,
}

impl Database {
    async fn start(upstream: String) -> (Database, u16) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let (down, _) = watch::channel(false);
        let db = Database { down };
        let this = db.clone();
        tokio::spawn(async move {
            loop {
                let Ok((client, _)) = listener.accept().await else {
                    continue;
                };
                if *this.down.borrow() {
                    drop(client);
                    continue;
                }
                let mut gone = this.down.subscribe();
                let upstream = upstream.clone();
                tokio::spawn(async move {
                    let Ok(server) = TcpStream::connect(&upstream).await else {
                        return;
                    };
                    let (mut client, mut server) = (client, server);
                    tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut client, &mut server) => {}
                        _ = gone.wait_for(|down| *down) => {}
                    }
                });
            }
        });
        (db, port)
    }

    fn away(&self) {
        self.down.send_replace(true);
    }

    fn back(&self) {
        self.down.send_replace(false);
    }
}

/// An HTTP proxy in front of PowerDNS that counts writes and, when armed,
/// takes the database away right after the next write was applied.
#[derive(Clone)]
struct Pdns {
    upstream: String,
    client: reqwest::Client,
    writes: Arc<AtomicUsize>,
    armed: Arc<AtomicBool>,
    database: Database,
}

async fn forward(
    State(p): State<Pdns>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let write = method != Method::GET;
    let (status, bytes) =
        common::pass_on(&p.client, &p.upstream, &method, &uri, &headers, body).await;
    if write {
        p.writes.fetch_add(1, Ordering::SeqCst);
        if p.armed.swap(false, Ordering::SeqCst) {
            p.database.away();
        }
    }
    (status, bytes).into_response()
}

fn manifests(proxy: &str, zone: &str, www: &str) -> String {
    format!(
        "apiVersion: dns.zentralink.net/v1alpha1
kind: Tenant
metadata: {{ name: dbloss }}
spec: {{ displayName: Database loss, namespaces: [dbloss], allowedDomains: [test.] }}
---
apiVersion: dns.zentralink.net/v1alpha1
kind: ProviderConnection
metadata: {{ name: pdns, namespace: dbloss }}
spec:
  type: powerdns
  powerdns: {{ url: \"{proxy}\" }}
  credentials: {{ env: ZENTRALINK_CREDENTIAL_PDNS }}
  mode: Live
  acknowledgeLiveWrites: true
  limits: {{ timeoutSeconds: 5 }}
---
apiVersion: dns.zentralink.net/v1alpha1
kind: DnsZone
metadata: {{ name: dbloss, namespace: dbloss }}
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

async fn count(pool: &PgPool, sql: &str, value: &str) -> i64 {
    sqlx::query_scalar(sqlx::AssertSqlSafe(sql.to_owned()))
        .bind(value)
        .fetch_one(pool)
        .await
        .unwrap()
}

async fn readyz(port: u16) -> Option<u16> {
    let answer = reqwest::Client::new()
        .get(format!("http://127.0.0.1:{port}/readyz"))
        .timeout(Duration::from_secs(2))
        .send()
        .await
        .ok()?;
    Some(answer.status().as_u16())
}

/// Polls until `ready` returns true, or panics after `secs` seconds saying what it waited for.
async fn eventually<F, Fut>(secs: u64, what: &str, mut ready: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    for _ in 0..secs * 10 {
        if ready().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("waited {secs} s for {what}");
}

// The proxies run on the test's runtime while the binary runs: more than one thread.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_lost_mid_pass_loses_nothing() {
    zentralink_providers::install_tls_provider();
    let pdns_url = env("ZL_PDNS_URL");
    let pdns_key = env("ZL_PDNS_API_KEY");
    let _turn = PdnsLock::acquire(&pdns_url);

    let admin_url = env("DATABASE_URL");
    let admin = PgPoolOptions::new()
        .max_connections(1)
        .connect(&admin_url)
        .await
        .unwrap();
    let db = format!("zl_dbloss_{}", uuid::Uuid::new_v4().simple());
    admin
        .execute(sqlx::AssertSqlSafe(format!("CREATE DATABASE {db}")))
        .await
        .unwrap();
    let opts: PgConnectOptions = admin_url.parse().unwrap();
    let password = std::env::var("PGPASSWORD")
        .map(|p| format!(":{p}"))
        .unwrap_or_default();
    let (database, db_port) =
        Database::start(format!("{}:{}", opts.get_host(), opts.get_port())).await;
    // zentralink reaches the database only through the proxy; the test reads it directly
    let through_proxy = format!(
        "postgres://{}{password}@127.0.0.1:{db_port}/{db}",
        opts.get_username()
    );
    let direct = format!(
        "postgres://{}{password}@{}:{}/{db}",
        opts.get_username(),
        opts.get_host(),
        opts.get_port()
    );
    let pool = PgPoolOptions::new()
        .max_connections(1)
        .connect_lazy(&direct)
        .unwrap();

    let pdns = Pdns {
        upstream: pdns_url.clone(),
        client: reqwest::Client::new(),
        writes: Arc::new(AtomicUsize::new(0)),
        armed: Arc::new(AtomicBool::new(false)),
        database: database.clone(),
    };
    let (writes, armed) = (Arc::clone(&pdns.writes), Arc::clone(&pdns.armed));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let proxy_url = format!("http://{}", listener.local_addr().unwrap());
    let app = axum::Router::new().fallback(forward).with_state(pdns);
    tokio::spawn(async move { axum::serve(listener, app).await });

    let work = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(work.path().join("repo")).unwrap();
    let zone = format!("dbloss-{}.pdns.test.", std::process::id());
    let key = text(
        &Command::new(env!("CARGO_BIN_EXE_zentralink"))
            .args(["secrets", "generate-key"])
            .output()
            .unwrap()
            .stdout,
    )
    .trim()
    .to_owned();
    let zentralink = |args: &[&str]| {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_zentralink"));
        cmd.args(args)
            .current_dir(work.path())
            .env("DATABASE_URL", &through_proxy)
            .env("PLATFORM_ENCRYPTION_KEY", &key)
            .env("ZENTRALINK_CREDENTIAL_PDNS", &pdns_key);
        cmd
    };
    let declare = |www: &str| {
        std::fs::write(
            work.path().join("repo/zone.yaml"),
            manifests(&proxy_url, &zone, www),
        )
        .unwrap();
    };
    let reconcile = || -> Output {
        zentralink(&["reconcile", "repo", "--format", "json"])
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
    let applied =
        "SELECT count(*) FROM dns_changes WHERE after->'values'->>0 = $1 AND outcome = 'applied'";
    let any_row = "SELECT count(*) FROM dns_changes WHERE after->'values'->>0 = $1";

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

    // ---- a first pass, database and provider well
    declare("192.0.2.1");
    let out = reconcile();
    assert!(
        out.status.success(),
        "{}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    assert_eq!(live_www().await.as_deref(), Some("192.0.2.1"));
    assert_eq!(count(&pool, applied, "192.0.2.1").await, 1);

    // ---- the database goes away right after PowerDNS applied the next batch
    declare("192.0.2.2");
    armed.store(true, Ordering::SeqCst);
    let before = writes.load(Ordering::SeqCst);
    let out = reconcile();
    assert_eq!(
        out.status.code(),
        Some(1),
        "the pass fails: {}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    let said = format!("{}{}", text(&out.stdout), text(&out.stderr));
    assert!(
        said.to_lowercase().contains("database"),
        "the error names the database: {said}"
    );
    assert!(!said.contains("panicked"), "{said}");
    assert_eq!(writes.load(Ordering::SeqCst), before + 1, "one write");
    assert_eq!(live_www().await.as_deref(), Some("192.0.2.2"));
    // nothing recorded yet: the execution stays marked as begun
    assert_eq!(count(&pool, any_row, "192.0.2.2").await, 0);
    let in_flight: i64 =
        sqlx::query_scalar("SELECT count(*) FROM executions WHERE state = 'Executing'")
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(in_flight, 1);

    // ---- while it is away, a pass fails at once and writes nothing
    let out = reconcile();
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stdout));
    assert!(!text(&out.stderr).contains("panicked"));
    assert_eq!(writes.load(Ordering::SeqCst), before + 1);

    // ---- back: the next pass records what happened, from the provider, without writing again
    database.back();
    let out = reconcile();
    assert!(
        out.status.success(),
        "{}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    assert_eq!(writes.load(Ordering::SeqCst), before + 1, "no second write");
    assert_eq!(count(&pool, applied, "192.0.2.2").await, 1);
    assert_eq!(count(&pool, any_row, "192.0.2.2").await, 1);
    let recovered: i64 =
        sqlx::query_scalar("SELECT count(*) FROM executions WHERE state = 'Recovered'")
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(recovered, 1);
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["zones"][0]["outcome"], "Converged", "{json}");

    // ---- the operator process: not ready while the database is away, and back after
    let http_port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let listen = format!("127.0.0.1:{http_port}");
    let mut operator = zentralink(&[
        "operator",
        "--source",
        "repo",
        "--interval",
        "1s",
        "--full-pass",
        "1s",
        "--listen",
        &listen,
    ])
    .stdout(Stdio::null())
    .stderr(Stdio::null())
    .spawn()
    .unwrap();
    eventually(30, "/readyz 200", || async {
        readyz(http_port).await == Some(200)
    })
    .await;
    database.away();
    eventually(30, "/readyz 503 while the database is away", || async {
        readyz(http_port).await == Some(503)
    })
    .await;
    assert!(
        operator.try_wait().unwrap().is_none(),
        "the operator keeps running"
    );
    database.back();
    declare("192.0.2.3");
    eventually(
        30,
        "the change applied after the database came back",
        || async { live_www().await.as_deref() == Some("192.0.2.3") },
    )
    .await;
    eventually(30, "/readyz 200 again", || async {
        readyz(http_port).await == Some(200)
    })
    .await;
    eventually(30, "the change recorded", || async {
        count(&pool, applied, "192.0.2.3").await == 1
    })
    .await;
    // SIGTERM: a clean stop
    let _ = Command::new("kill")
        .args(["-TERM", &operator.id().to_string()])
        .status();
    let status = operator.wait().unwrap();
    assert_eq!(status.code(), Some(0));

    pool.close().await;
    let _ = admin
        .execute(sqlx::AssertSqlSafe(format!(
            "DROP DATABASE {db} WITH (FORCE)"
        )))
        .await;
}
