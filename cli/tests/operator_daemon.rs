//! `zentralink operator` as a process: it reconciles a git repository at
//! start, serves /healthz, /readyz and /metrics, fetches at once on a signed
//! webhook (and refuses an unsigned one), keeps the last good revision when a
//! new one does not validate, and stops cleanly on SIGTERM. Needs DATABASE_URL.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use sqlx::Executor;

const SECRET: &str = "webhook-secret-for-tests";

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn git(repo: &Path, args: &[&str]) {
    let out = Command::new("git")
        .args(args)
        .current_dir(repo)
        .env("GIT_AUTHOR_NAME", "Carol")
        .env("GIT_AUTHOR_EMAIL", "carol@acme.example")
        .env("GIT_COMMITTER_NAME", "Carol")
        .env("GIT_COMMITTER_EMAIL", "carol@acme.example")
        .output()
        .unwrap();
    assert!(out.status.success(), "git {args:?}: {}", text(&out.stderr));
}

fn manifests(www: &str) -> String {
    format!(
        "apiVersion: dns.zentralink.net/v1alpha1
kind: Tenant
metadata: {{ name: acme }}
spec: {{ displayName: Acme, namespaces: [acme], allowedDomains: [daemon.test.] }}
---
apiVersion: dns.zentralink.net/v1alpha1
kind: ProviderConnection
metadata: {{ name: files, namespace: acme }}
spec:
  type: zonefile
  zonefile: {{ directory: ../zones }}
  mode: Live
  acknowledgeLiveWrites: true
---
apiVersion: dns.zentralink.net/v1alpha1
kind: DnsZone
metadata: {{ name: daemon, namespace: acme }}
spec:
  zone: daemon.test.
  providerRef: {{ name: files }}
  recordSets:
    - {{ name: '@', type: NS, ttl: 300, values: [ns1.example.net.] }}
    - {{ name: www, type: A, ttl: 300, values: [{www}] }}
"
    )
}

fn commit(repo: &Path, www: &str, message: &str) {
    std::fs::write(repo.join("acme/zone.yaml"), manifests(www)).unwrap();
    git(repo, &["add", "-A"]);
    git(repo, &["commit", "-q", "-m", message]);
}

fn hmac_hex(body: &str) -> String {
    let mut child = Command::new("openssl")
        .args(["dgst", "-sha256", "-hmac", SECRET])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(body.as_bytes())
        .unwrap();
    let out = text(&child.wait_with_output().unwrap().stdout);
    out.rsplit(' ').next().unwrap().trim().to_owned()
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

async fn wait_until<F: Fn() -> bool>(what: &str, limit: Duration, check: F) {
    let started = Instant::now();
    while !check() {
        assert!(started.elapsed() < limit, "timed out waiting until {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

struct Killer(Child);

impl Drop for Killer {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test]
async fn the_operator_follows_webhooks_keeps_the_last_good_revision_and_stops_on_sigterm() {
    zentralink_providers::install_tls_provider();
    let (admin, db_url, db) = common::fresh_database("zl_daemon").await;
    let work = tempfile::tempdir().unwrap();
    let repo = work.path().join("repo");
    std::fs::create_dir_all(repo.join("acme")).unwrap();
    std::fs::create_dir_all(work.path().join("zones")).unwrap();
    std::fs::write(
        work.path().join("zones/daemon.test.zone"),
        "$ORIGIN daemon.test.\n@ 300 IN SOA ns1.example.net. hostmaster.example.net. 1 3600 600 1209600 300\n@ 300 IN NS ns1.example.net.\n",
    )
    .unwrap();
    git(&repo, &["init", "-q", "-b", "main"]);
    commit(&repo, "192.0.2.1", "first");
    let key = text(
        &Command::new(env!("CARGO_BIN_EXE_zentralink"))
            .args(["secrets", "generate-key"])
            .output()
            .unwrap()
            .stdout,
    )
    .trim()
    .to_owned();
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let zone_file = work.path().join("zones/daemon.test.zone");
    let operator = Command::new(env!("CARGO_BIN_EXE_zentralink"))
        .args([
            "operator",
            "--source",
            &format!("file://{}", repo.display()),
            "--zonefile-root",
            work.path().to_str().unwrap(),
            "--interval",
            "10m",
            "--full-pass",
            "10m",
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--webhook-secret-env",
            "ZL_TEST_WEBHOOK_SECRET",
        ])
        .current_dir(work.path())
        .env("DATABASE_URL", &db_url)
        .env("PLATFORM_ENCRYPTION_KEY", &key)
        .env("ZL_TEST_WEBHOOK_SECRET", SECRET)
        .env("NO_COLOR", "1")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut operator = Killer(operator);
    let client = reqwest::Client::new();
    let get = |path: &str| {
        let client = client.clone();
        let url = format!("{base}{path}");
        async move { client.get(url).send().await }
    };

    // starts, passes once, applies the first revision
    let holds = |value: &str| {
        std::fs::read_to_string(&zone_file)
            .map(|t| t.contains(value))
            .unwrap_or(false)
    };
    wait_until(
        "the first revision is applied",
        Duration::from_secs(60),
        || holds("192.0.2.1"),
    )
    .await;
    // the file is written before the pass records it and counts it
    let counted = "zentralink_reconcile_passes_total{zone=\"daemon.test.\",outcome=\"Execute\"} 1";
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let metrics = get("/metrics").await.unwrap().text().await.unwrap();
        if metrics.contains(counted) {
            break;
        }
        assert!(Instant::now() < deadline, "{metrics}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(get("/healthz").await.unwrap().status(), 200);
    let ready = get("/readyz").await.unwrap();
    assert_eq!(ready.status(), 200, "{}", ready.text().await.unwrap());

    // a new commit is not fetched until the webhook says so (the interval is 10 minutes)
    commit(&repo, "192.0.2.2", "second");
    let body = r#"{"ref":"refs/heads/main"}"#;
    let unsigned = client
        .post(format!("{base}/hooks/git"))
        .header("X-GitHub-Event", "push")
        .header("X-Hub-Signature-256", "sha256=00")
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(unsigned.status(), 401);
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(holds("192.0.2.1"), "an unsigned webhook triggers nothing");
    let signed = client
        .post(format!("{base}/hooks/git"))
        .header("X-GitHub-Event", "push")
        .header("X-Hub-Signature-256", format!("sha256={}", hmac_hex(body)))
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(signed.status(), 202);
    wait_until(
        "the webhook's revision is applied",
        Duration::from_secs(30),
        || holds("192.0.2.2"),
    )
    .await;

    // a revision that does not validate changes nothing, and /readyz says so
    commit(&repo, "300.2.2.2", "broken");
    let signed = client
        .post(format!("{base}/hooks/git"))
        .header("X-Gitea-Signature", hmac_hex(body))
        .header("X-Gitea-Event", "push")
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(signed.status(), 202);
    let started = Instant::now();
    loop {
        let r = get("/readyz").await.unwrap();
        if r.status() == 503 {
            assert!(r.text().await.unwrap().contains("does not validate"));
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "readyz never reported the bad revision"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(holds("192.0.2.2"), "the last good revision stays in force");

    // SIGTERM: a clean stop
    let pid = operator.0.id().to_string();
    let killed = Command::new("kill").args(["-TERM", &pid]).status().unwrap();
    assert!(killed.success());
    let started = Instant::now();
    let status = loop {
        if let Some(s) = operator.0.try_wait().unwrap() {
            break s;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "the operator did not stop"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let mut stderr = String::new();
    use std::io::Read;
    let _ = operator
        .0
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr);
    assert!(status.success(), "exit {status}: {stderr}");
    assert!(stderr.contains("does not validate"), "{stderr}");

    let _ = admin
        .execute(sqlx::AssertSqlSafe(format!(
            "DROP DATABASE {db} WITH (FORCE)"
        )))
        .await;
}
