//! End to end: a git repository driven through every flow of the reconciler
//! against the real PowerDNS and PostgreSQL that scripts/test.sh starts, with
//! the `zentralink` binary: plan, ungated changes applied with snapshots and
//! history, a gated change waiting as a named request, an unrelated change
//! that neither waits nor supersedes, a new digest superseding, approval and
//! execution, a no-op pass that writes nothing, drift reported then
//! reverted, on-demand snapshots, rollback, an invalid revision that changes
//! nothing, a force-push, and a read-only connection that is never written.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::PathBuf;
use std::process::{Command, Output};

use sqlx::postgres::{PgPool, PgPoolOptions};
use sqlx::{Executor, Row};
use zentralink_model::plan::{PlanScope, plan_zone};
use zentralink_model::resources::PowerDnsSettings;
use zentralink_model::secrets::SecretString;
use zentralink_model::{RecordSet, RecordValue, RrKey, ZoneContent, ZoneName};
use zentralink_providers::Provider;
use zentralink_providers::powerdns::PowerDnsProvider;
use zentralink_providers::resilience::Limits;

mod common;
use common::{PdnsLock, env, text};

/// The world of the test: a repository, a database, a PowerDNS zone.
struct World {
    dir: tempfile::TempDir,
    db_url: String,
    db_name: String,
    admin: PgPool,
    pool: PgPool,
    key: String,
    pdns_url: String,
    pdns_key: String,
    zone: ZoneName,
    provider: PowerDnsProvider,
}

impl World {
    fn repo(&self) -> PathBuf {
        self.dir.path().join("repo")
    }

    fn url(&self) -> String {
        format!("file://{}", self.repo().display())
    }

    fn git(&self, args: &[&str], author: &str) {
        let out = common::git_as(&self.repo(), args, author);
        assert!(out.status.success(), "git {args:?}: {}", text(&out.stderr));
    }

    /// Writes a file of the repository and commits it as `author` ("Name email").
    fn commit(&self, file: &str, content: &str, author: &str, message: &str) {
        let path = self.repo().join(file);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, content).unwrap();
        self.git(&["add", "-A"], author);
        self.git(&["commit", "-q", "-m", message], author);
    }

    fn zentralink(&self, args: &[&str]) -> Output {
        Command::new(env!("CARGO_BIN_EXE_zentralink"))
            .args(args)
            .current_dir(self.dir.path())
            .env("NO_COLOR", "1")
            .env("DATABASE_URL", &self.db_url)
            .env("PLATFORM_ENCRYPTION_KEY", &self.key)
            .env("ZENTRALINK_CREDENTIAL_PDNS", &self.pdns_key)
            .env("USER", "operator-on-call")
            .output()
            .unwrap()
    }

    fn reconcile(&self) -> Output {
        let out = self.zentralink(&["reconcile", &self.url(), "--format", "json"]);
        assert!(
            out.status.success(),
            "reconcile failed:\n{}\n{}",
            text(&out.stdout),
            text(&out.stderr)
        );
        out
    }

    fn zone_report(&self, out: &Output) -> serde_json::Value {
        let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        json["zones"]
            .as_array()
            .unwrap()
            .iter()
            .find(|z| z["zone"] == self.zone.to_string())
            .cloned()
            .unwrap()
    }

    async fn live(&self) -> ZoneContent {
        self.provider.read_zone(&self.zone).await.unwrap().unwrap()
    }

    async fn value(&self, name: &str, t: &str) -> Vec<String> {
        let key = RrKey::new(
            self.zone.owner(name).unwrap(),
            zentralink_model::record::parse_record_type(t).unwrap(),
        );
        self.live()
            .await
            .sets
            .get(&key)
            .map(RecordSet::texts)
            .unwrap_or_default()
    }

    async fn count(&self, table: &str) -> i64 {
        sqlx::query_scalar(sqlx::AssertSqlSafe(format!("SELECT count(*) FROM {table}")))
            .fetch_one(&self.pool)
            .await
            .unwrap()
    }

    async fn rows(&self) -> Vec<i64> {
        let mut out = Vec::new();
        for t in [
            "snapshots",
            "dns_changes",
            "dns_change_requests",
            "executions",
            "audit_events",
            "zone_states",
        ] {
            out.push(self.count(t).await);
        }
        out
    }

    async fn request(&self, name: &str) -> (String, String) {
        let row = sqlx::query("SELECT state, requester FROM dns_change_requests WHERE name = $1")
            .bind(name)
            .fetch_one(&self.pool)
            .await
            .unwrap();
        (row.get("state"), row.get("requester"))
    }

    async fn approve(&self, name: &str) {
        // The signed-approval path comes with its own issue; the store moves it here.
        let done = sqlx::query(
            "UPDATE dns_change_requests SET state = 'Approved', decided_at = now() WHERE name = $1 AND state = 'Pending'",
        )
        .bind(name)
        .execute(&self.pool)
        .await
        .unwrap();
        assert_eq!(done.rows_affected(), 1, "{name} was not pending");
    }
}

const TENANT: &str = "apiVersion: dns.zentralink.net/v1alpha1
kind: Tenant
metadata: { name: acme }
spec: { displayName: Acme Corp, namespaces: [acme], allowedDomains: [test.] }
";

fn connections(url: &str) -> String {
    format!(
        "apiVersion: dns.zentralink.net/v1alpha1
kind: ProviderConnection
metadata: {{ name: pdns, namespace: acme }}
spec:
  type: powerdns
  powerdns: {{ url: \"{url}\" }}
  credentials: {{ env: ZENTRALINK_CREDENTIAL_PDNS }}
  mode: Live
  acknowledgeLiveWrites: true
---
apiVersion: dns.zentralink.net/v1alpha1
kind: ProviderConnection
metadata: {{ name: pdns-readonly, namespace: acme }}
spec:
  type: powerdns
  powerdns: {{ url: \"{url}\" }}
  credentials: {{ env: ZENTRALINK_CREDENTIAL_PDNS }}
"
    )
}

fn zone_doc(zone: &ZoneName, www: &str, mx: &str, extra: &str, drift: &str) -> String {
    format!(
        "apiVersion: dns.zentralink.net/v1alpha1
kind: DnsZone
metadata: {{ name: shop, namespace: acme }}
spec:
  zone: {zone}
  providerRef: {{ name: pdns }}
  drift: {drift}
  defaultTtl: 300
  recordSets:
    - {{ name: '@', type: NS, values: [ns1.example.net.] }}
    - {{ name: www, type: A, values: [{www}] }}
    - {{ name: '@', type: MX, values: ['{mx}'] }}
{extra}"
    )
}

fn readonly_zone(zone: &ZoneName) -> String {
    format!(
        "apiVersion: dns.zentralink.net/v1alpha1
kind: DnsZone
metadata: {{ name: shop-mirror, namespace: acme }}
spec:
  zone: {zone}
  providerRef: {{ name: pdns-readonly }}
  recordSets:
    - {{ name: '@', type: NS, values: [ns1.example.net.] }}
    - {{ name: www, type: A, values: [203.0.113.77] }}
"
    )
}

async fn create_zone(provider: &PowerDnsProvider, zone: &ZoneName) {
    let mut initial = ZoneContent::new(zone.clone());
    let ns = hickory_proto::rr::RecordType::NS;
    initial.sets.insert(
        RrKey::new(zone.as_name().clone(), ns),
        RecordSet::new(
            300,
            vec![RecordValue::parse(ns, "ns1.example.net.", zone).unwrap()],
        ),
    );
    let mx = hickory_proto::rr::RecordType::MX;
    initial.sets.insert(
        RrKey::new(zone.as_name().clone(), mx),
        RecordSet::new(
            300,
            vec![RecordValue::parse(mx, "10 mx1.example.net.", zone).unwrap()],
        ),
    );
    let plan = plan_zone(
        &initial,
        &ZoneContent::new(zone.clone()),
        &PlanScope::default(),
    );
    provider.apply(&plan).await.unwrap();
}

async fn world() -> World {
    let pdns_url = env("ZL_PDNS_URL");
    let pdns_key = env("ZL_PDNS_API_KEY");
    let (admin, db_url, db_name) = common::fresh_database("zl_e2e").await;
    let pool = PgPoolOptions::new()
        .max_connections(2)
        .connect_lazy(&db_url)
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let key = text(
        &Command::new(env!("CARGO_BIN_EXE_zentralink"))
            .args(["secrets", "generate-key"])
            .output()
            .unwrap()
            .stdout,
    )
    .trim()
    .to_owned();
    let zone = ZoneName::parse(&format!("shop-{}.e2e.test.", std::process::id())).unwrap();
    let provider = PowerDnsProvider::new(
        &PowerDnsSettings {
            url: pdns_url.clone(),
            server_id: None,
            create_zones: true,
        },
        SecretString::new(pdns_key.clone()),
        Limits::default(),
    )
    .unwrap();
    create_zone(&provider, &zone).await;
    World {
        dir,
        db_url,
        db_name,
        admin,
        pool,
        key,
        pdns_url,
        pdns_key,
        zone,
        provider,
    }
}

#[tokio::test]
async fn a_git_repository_through_every_flow_against_powerdns() {
    let _turn = PdnsLock::acquire(&env("ZL_PDNS_URL"));
    let w = world().await;
    std::fs::create_dir_all(w.repo()).unwrap();
    w.git(&["init", "-q", "-b", "main"], "Carol carol@acme.example");
    w.commit(
        "tenants/acme.yaml",
        TENANT,
        "Carol carol@acme.example",
        "tenant",
    );
    w.commit(
        "acme/connections.yaml",
        &connections(&w.pdns_url),
        "Carol carol@acme.example",
        "connections",
    );
    w.commit(
        "acme/shop.yaml",
        &zone_doc(&w.zone, "192.0.2.10", "10 mx2.example.net.", "", "Report"),
        "Dave dave@acme.example",
        "shop zone",
    );
    w.commit(
        "acme/mirror.yaml",
        &readonly_zone(&w.zone_mirror()),
        "Carol carol@acme.example",
        "mirror",
    );

    // ---- 1. the first pass: www is created at once; the MX change waits
    let out = w.reconcile();
    let z = w.zone_report(&out);
    assert_eq!(z["outcome"], "AwaitingApproval", "{z}");
    assert_eq!(z["executed"], 1);
    assert_eq!(z["applied"], 1);
    let request = z["waitingFor"].as_str().unwrap().to_owned();
    assert!(request.starts_with("shop-"), "{request}");
    assert_eq!(w.value("www", "A").await, vec!["192.0.2.10"]);
    assert_eq!(
        w.value("@", "MX").await,
        vec!["10 mx1.example.net."],
        "the gated MX waits"
    );
    let (state, requester) = w.request(&request).await;
    assert_eq!(state, "Pending");
    assert_eq!(
        requester, "Dave <dave@acme.example>",
        "the author of the zone's last commit"
    );
    // pre and post snapshots, one history row, one audit event for the batch
    let snaps: Vec<String> = sqlx::query_scalar("SELECT reason FROM snapshots ORDER BY created_at")
        .fetch_all(&w.pool)
        .await
        .unwrap();
    assert!(
        snaps.contains(&"pre-change".to_owned()) && snaps.contains(&"post-change".to_owned()),
        "{snaps:?}"
    );
    let history = w.zentralink(&["history", &w.zone.to_string(), "--format", "json"]);
    let rows: serde_json::Value = serde_json::from_slice(&history.stdout).unwrap();
    assert_eq!(rows.as_array().unwrap().len(), 1, "{rows}");
    assert_eq!(rows[0]["op"], "create");
    assert_eq!(rows[0]["requester"], "Dave <dave@acme.example>");
    assert!(
        rows[0]["revision"]
            .as_str()
            .unwrap()
            .starts_with("main@sha1:")
    );
    let applied_events: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM audit_events WHERE action = 'dns.changes.applied'",
    )
    .fetch_one(&w.pool)
    .await
    .unwrap();
    assert_eq!(applied_events, 1);
    // the read-only connection was never written
    assert!(
        w.provider
            .read_zone(&w.zone_mirror())
            .await
            .unwrap()
            .is_none()
    );
    let mirror = w.zone_report_of(&out, &w.zone_mirror());
    assert_eq!(mirror["outcome"], "ReadOnly");

    // ---- 2. a pass with nothing new writes nothing anywhere
    let before = w.rows().await;
    let live_before = w.live().await;
    w.reconcile();
    assert_eq!(w.rows().await, before, "a no-op pass adds no row anywhere");
    assert_eq!(w.live().await, live_before);

    // ---- 3. an unrelated change executes at once; the request is kept
    w.commit(
        "acme/shop.yaml",
        &zone_doc(&w.zone, "192.0.2.11", "10 mx2.example.net.", "", "Report"),
        "Erin erin@acme.example",
        "move www",
    );
    let z = w.zone_report(&w.reconcile());
    assert_eq!(z["waitingFor"], request.as_str());
    assert_eq!(w.value("www", "A").await, vec!["192.0.2.11"]);
    assert_eq!(
        w.request(&request).await.0,
        "Pending",
        "not superseded by an unrelated change"
    );

    // ---- 4. a new MX value: a new digest supersedes the request
    w.commit(
        "acme/shop.yaml",
        &zone_doc(&w.zone, "192.0.2.11", "10 mx3.example.net.", "", "Report"),
        "Dave dave@acme.example",
        "mx3",
    );
    let z = w.zone_report(&w.reconcile());
    let second = z["waitingFor"].as_str().unwrap().to_owned();
    assert_ne!(second, request);
    assert_eq!(w.request(&request).await.0, "Superseded");
    assert_eq!(w.request(&second).await.0, "Pending");

    // ---- 5. approved: exactly the approved plan executes
    w.approve(&second).await;
    let z = w.zone_report(&w.reconcile());
    assert_eq!(z["outcome"], "ExecuteApproved", "{z}");
    assert_eq!(w.value("@", "MX").await, vec!["10 mx3.example.net."]);
    assert_eq!(w.request(&second).await.0, "Applied");
    let mx_history = w.zentralink(&[
        "history",
        &w.zone.to_string(),
        "--type",
        "MX",
        "--format",
        "json",
    ]);
    let rows: serde_json::Value = serde_json::from_slice(&mx_history.stdout).unwrap();
    assert_eq!(rows[0]["changeRequest"], second.as_str());
    assert_eq!(rows[0]["outcome"], "applied");

    // ---- 6. drift: reported and left alone under Report
    let drifted = {
        let mut want = w.live().await;
        let a = hickory_proto::rr::RecordType::A;
        want.sets.insert(
            RrKey::new(w.zone.owner("www").unwrap(), a),
            RecordSet::new(
                300,
                vec![RecordValue::parse(a, "198.51.100.66", &w.zone).unwrap()],
            ),
        );
        plan_zone(&want, &w.live().await, &PlanScope::default())
    };
    w.provider.apply(&drifted).await.unwrap();
    let z = w.zone_report(&w.reconcile());
    assert_eq!(z["outcome"], "DriftReported", "{z}");
    assert_eq!(z["drift"][0], format!("www.{} A", w.zone));
    assert_eq!(
        w.value("www", "A").await,
        vec!["198.51.100.66"],
        "left alone"
    );
    let drift_events: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM audit_events WHERE action = 'zone.drift.detected'",
    )
    .fetch_one(&w.pool)
    .await
    .unwrap();
    assert_eq!(drift_events, 1);
    let status = text(&w.zentralink(&["status"]).stdout);
    assert!(
        status.contains(&format!("drift: www.{} A", w.zone)),
        "{status}"
    );
    // ... and planned back under Revert (an A record: ungated)
    w.commit(
        "acme/shop.yaml",
        &zone_doc(&w.zone, "192.0.2.11", "10 mx3.example.net.", "", "Revert"),
        "Dave dave@acme.example",
        "revert drift",
    );
    w.reconcile();
    assert_eq!(w.value("www", "A").await, vec!["192.0.2.11"]);

    // ---- 7. snapshots on demand: from the CLI, and from a DnsSnapshot document (once)
    let taken = w.zentralink(&[
        "snapshot",
        "take",
        &w.zone.to_string(),
        "--reason",
        "before the sale",
    ]);
    assert!(taken.status.success(), "{}", text(&taken.stderr));
    let on_demand = text(&taken.stdout)
        .split_whitespace()
        .nth(1)
        .unwrap()
        .to_owned();
    w.commit(
        "acme/snapshot.yaml",
        "apiVersion: dns.zentralink.net/v1alpha1\nkind: DnsSnapshot\nmetadata: { name: weekly, namespace: acme }\nspec: { zoneRef: shop, reason: weekly }\n",
        "Carol carol@acme.example",
        "snapshot",
    );
    w.reconcile();
    w.reconcile();
    let asked: i64 =
        sqlx::query_scalar("SELECT count(*) FROM snapshots WHERE requested_by = 'acme/weekly'")
            .fetch_one(&w.pool)
            .await
            .unwrap();
    assert_eq!(asked, 1, "a DnsSnapshot is taken once");
    let shown = w.zentralink(&["snapshot", "show", &on_demand]);
    assert!(
        text(&shown.stdout).contains("192.0.2.11"),
        "{}",
        text(&shown.stdout)
    );

    // ---- 8. rollback: a change request like any other, gated by `rollbacks`
    w.commit(
        "acme/shop.yaml",
        &zone_doc(&w.zone, "192.0.2.12", "10 mx3.example.net.", "", "Revert"),
        "Erin erin@acme.example",
        "www .12",
    );
    w.reconcile();
    assert_eq!(w.value("www", "A").await, vec!["192.0.2.12"]);
    let diff = w.zentralink(&["snapshot", "diff", &on_demand]);
    assert!(
        text(&diff.stdout).contains("- 192.0.2.11") || text(&diff.stdout).contains("+ 192.0.2.12"),
        "{}",
        text(&diff.stdout)
    );
    let rb = w.zentralink(&[
        "rollback",
        &w.zone.to_string(),
        "--to",
        &on_demand,
        "--requester",
        "frank",
    ]);
    assert!(rb.status.success(), "{}", text(&rb.stderr));
    let rollback_name = text(&rb.stdout)
        .split_whitespace()
        .nth(2)
        .unwrap()
        .trim_end_matches(':')
        .to_owned();
    let z = w.zone_report(&w.reconcile());
    assert_eq!(z["waitingFor"], rollback_name.as_str(), "{z}");
    assert_eq!(
        w.value("www", "A").await,
        vec!["192.0.2.12"],
        "a waiting rollback changes nothing"
    );
    w.approve(&rollback_name).await;
    let z = w.zone_report(&w.reconcile());
    assert_eq!(z["outcome"], "ExecuteApproved", "{z}");
    assert_eq!(w.value("www", "A").await, vec!["192.0.2.11"]);
    assert_eq!(w.request(&rollback_name).await.0, "Applied");
    let z = w.zone_report(&w.reconcile());
    assert_eq!(
        z["outcome"], "RolledBack",
        "the zone stays at the snapshot: {z}"
    );
    assert_eq!(w.value("www", "A").await, vec!["192.0.2.11"]);

    // ---- 9. an invalid revision changes nothing; the last good one stays in force
    let good: String = sqlx::query_scalar("SELECT good_revision FROM source_states")
        .fetch_one(&w.pool)
        .await
        .unwrap();
    w.commit(
        "acme/shop.yaml",
        &zone_doc(&w.zone, "300.1.1.1", "10 mx3.example.net.", "", "Revert"),
        "Mallory mallory@acme.example",
        "broken",
    );
    let before = w.rows().await;
    let out = w.zentralink(&["reconcile", &w.url()]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("acme/shop.yaml:"),
        "{}",
        text(&out.stderr)
    );
    assert!(
        text(&out.stderr).contains("300.1.1.1"),
        "{}",
        text(&out.stderr)
    );
    assert_eq!(w.value("www", "A").await, vec!["192.0.2.11"]);
    let after = w.rows().await;
    assert_eq!(
        before[..4],
        after[..4],
        "no snapshot, change, request or execution"
    );
    let (still_good, error): (String, Option<String>) =
        sqlx::query_as("SELECT good_revision, last_error FROM source_states")
            .fetch_one(&w.pool)
            .await
            .unwrap();
    assert_eq!(still_good, good);
    assert!(error.unwrap().contains("does not validate"));
    let status = text(&w.zentralink(&["status"]).stdout);
    assert!(status.contains("last error"), "{status}");

    // ---- 10. a force-push is followed
    w.git(
        &["reset", "-q", "--hard", "HEAD~1"],
        "Carol carol@acme.example",
    );
    w.commit(
        "acme/shop.yaml",
        &zone_doc(&w.zone, "192.0.2.13", "10 mx3.example.net.", "", "Revert"),
        "Carol carol@acme.example",
        "rewritten",
    );
    let z = w.zone_report(&w.reconcile());
    assert_eq!(z["outcome"], "Execute", "{z}");
    assert_eq!(w.value("www", "A").await, vec!["192.0.2.13"]);
    let head = String::from_utf8(
        Command::new("git")
            .args(["rev-parse", "HEAD"])
            .current_dir(w.repo())
            .output()
            .unwrap()
            .stdout,
    )
    .unwrap();
    let in_force: String = sqlx::query_scalar("SELECT good_revision FROM source_states")
        .fetch_one(&w.pool)
        .await
        .unwrap();
    assert_eq!(in_force, format!("main@sha1:{}", head.trim()));

    w.pool.close().await;
    let _ = w
        .admin
        .execute(sqlx::AssertSqlSafe(format!(
            "DROP DATABASE {} WITH (FORCE)",
            w.db_name
        )))
        .await;
}

impl World {
    fn zone_mirror(&self) -> ZoneName {
        ZoneName::parse(&format!("mirror-{}", self.zone)).unwrap()
    }

    fn zone_report_of(&self, out: &Output, zone: &ZoneName) -> serde_json::Value {
        let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        json["zones"]
            .as_array()
            .unwrap()
            .iter()
            .find(|z| z["zone"] == zone.to_string())
            .cloned()
            .unwrap()
    }
}
