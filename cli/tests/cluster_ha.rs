//! `zentralink operator --source kubernetes` as three replicas with one
//! shard (leader election): the leader applies a DnsZone to a zone file, is
//! killed with SIGKILL, the zone is changed, and another replica applies the
//! change once the dead leader's Lease expires. PostgreSQL then shows each
//! change applied exactly once and no execution left in flight.
//!
//! Relies on these flags of `zentralink operator`:
//!   --source kubernetes --shards N --identity ID --namespace NS --listen ADDR
//! and on the environment: DATABASE_URL (PostgreSQL; a fresh database is made
//! from it), PLATFORM_ENCRYPTION_KEY (made here with `secrets generate-key`)
//! and KUBECONFIG (a Kubernetes API server; one on loopback is enough, no
//! kubelet: pods never run). Needs `kubectl` on PATH. Run with
//! `cargo nextest run -p zentralink --test cluster_ha --run-ignored all`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use sqlx::postgres::PgPoolOptions;
use sqlx::{Executor, Row};

/// The operator's default lease duration (--lease-duration 15s) and retry
/// interval: how long a dead leader's shard can stay unowned.
const LEASE: Duration = Duration::from_secs(15);
const RETRY: Duration = Duration::from_secs(2);

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn kubectl(args: &[&str], stdin: Option<&str>) -> String {
    let mut child = Command::new("kubectl")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run kubectl ({e}): install it and put it on PATH"));
    let mut input = child.stdin.take().unwrap();
    if let Some(stdin) = stdin {
        input.write_all(stdin.as_bytes()).unwrap();
    }
    drop(input);
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "kubectl {args:?}: {}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    text(&out.stdout)
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Deletes what the test made in the cluster, also when it fails: the
/// zone's finalizer is removed first (no operator is left to remove it).
struct ClusterObjects {
    namespace: String,
    tenant: String,
}

impl Drop for ClusterObjects {
    fn drop(&mut self) {
        let quiet = |args: &[&str]| {
            let _ = Command::new("kubectl")
                .args(args)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
        };
        quiet(&[
            "patch",
            "dnszones.dns.zentralink.net",
            "ha",
            "-n",
            &self.namespace,
            "--type=merge",
            "-p",
            r#"{"metadata":{"finalizers":null}}"#,
        ]);
        quiet(&["delete", "namespace", &self.namespace, "--wait=false"]);
        quiet(&[
            "delete",
            "tenants.dns.zentralink.net",
            &self.tenant,
            "--wait=false",
        ]);
    }
}

/// One `zentralink operator` process; killed (SIGKILL) when dropped.
struct Replica {
    identity: String,
    child: Child,
    log: PathBuf,
}

impl Replica {
    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    fn kill(&mut self) {
        let _ = self.child.kill(); // SIGKILL: no release, no cleanup
        let _ = self.child.wait();
    }
}

impl Drop for Replica {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Everything the replicas said, for a failure message.
fn logs(replicas: &[Replica]) -> String {
    replicas
        .iter()
        .map(|r| format!("--- {} ---\n{}", r.identity, r.log()))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Waits until `check` holds, failing early if a replica exits by itself.
async fn wait_until(
    what: &str,
    limit: Duration,
    replicas: &mut [Replica],
    check: impl Fn() -> bool,
) {
    let started = Instant::now();
    while !check() {
        for r in replicas.iter_mut() {
            if let Some(status) = r.child.try_wait().unwrap() {
                panic!(
                    "{} exited ({status}) while waiting until {what}:\n{}",
                    r.identity,
                    r.log()
                );
            }
        }
        if started.elapsed() > limit {
            panic!(
                "timed out after {limit:?} waiting until {what}:\n{}",
                logs(replicas)
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn objects(namespace: &str, tenant: &str, zone: &str, directory: &Path, www: &str) -> String {
    format!(
        "apiVersion: dns.zentralink.net/v1alpha1
kind: Tenant
metadata: {{ name: {tenant} }}
spec: {{ displayName: HA test, namespaces: [{namespace}], allowedDomains: [test.] }}
---
apiVersion: dns.zentralink.net/v1alpha1
kind: TenantPolicy
metadata: {{ name: policy, namespace: {namespace} }}
spec:
  approvals:
    requiredFor: {{ recordTypes: [], deletions: false, rollbacks: false }}
---
apiVersion: dns.zentralink.net/v1alpha1
kind: ProviderConnection
metadata: {{ name: files, namespace: {namespace} }}
spec:
  type: zonefile
  zonefile: {{ directory: '{directory}' }}
  mode: Live
  acknowledgeLiveWrites: true
---
apiVersion: dns.zentralink.net/v1alpha1
kind: DnsZone
metadata: {{ name: ha, namespace: {namespace} }}
spec:
  zone: {zone}
  providerRef: {{ name: files }}
  recordSets:
    - {{ name: '@', type: NS, ttl: 300, values: [ns1.example.net.] }}
    - {{ name: www, type: A, ttl: 300, values: [{www}] }}
",
        directory = directory.display()
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs cluster: set KUBECONFIG"]
async fn another_replica_takes_over_from_a_killed_leader_and_every_change_is_applied_once() {
    if std::env::var_os("KUBECONFIG").is_none() {
        panic!(
            "KUBECONFIG is not set: point it at a Kubernetes API server (kind, k3d, or \
             kube-apiserver with etcd on loopback) and run the ignored tests"
        );
    }
    let (admin, db_url, db) = common::fresh_database("zl_ha").await;
    let id = &db["zl_ha_".len()..][..10];

    // the CRDs, a namespace with a tenant, its policy, a live zone-file connection and a zone
    let crds = Path::new(env!("CARGO_MANIFEST_DIR")).join("../crds");
    let crds = crds.to_str().unwrap();
    kubectl(
        &["apply", "--server-side", "--force-conflicts", "-f", crds],
        None,
    );
    kubectl(
        &[
            "wait",
            "--for=condition=Established",
            "--timeout=60s",
            "-f",
            crds,
        ],
        None,
    );
    let namespace = format!("zl-ha-{id}");
    let tenant = namespace.clone();
    let _cluster = ClusterObjects {
        namespace: namespace.clone(),
        tenant: tenant.clone(),
    };
    kubectl(&["create", "namespace", &namespace], None);
    let work = tempfile::tempdir().unwrap();
    let zones = work.path().join("zones");
    std::fs::create_dir_all(&zones).unwrap();
    let zone = format!("ha-{id}.test.");
    let zone_file = zones.join(format!("ha-{id}.test.zone"));
    std::fs::write(
        &zone_file,
        format!(
            "$ORIGIN {zone}\n@ 300 IN SOA ns1.example.net. hostmaster.example.net. 1 3600 600 1209600 300\n@ 300 IN NS ns1.example.net.\n"
        ),
    )
    .unwrap();
    kubectl(
        &["apply", "-f", "-"],
        Some(&objects(&namespace, &tenant, &zone, &zones, "192.0.2.1")),
    );

    let key = text(
        &Command::new(env!("CARGO_BIN_EXE_zentralink"))
            .args(["secrets", "generate-key"])
            .output()
            .unwrap()
            .stdout,
    )
    .trim()
    .to_owned();
    let mut replicas: Vec<Replica> = (1..=3)
        .map(|n| {
            let identity = format!("r{n}");
            let log = work.path().join(format!("{identity}.log"));
            let child = Command::new(env!("CARGO_BIN_EXE_zentralink"))
                .args([
                    "operator",
                    "--source",
                    "kubernetes",
                    "--shards",
                    "1",
                    "--identity",
                    &identity,
                    "--namespace",
                    &namespace,
                    "--listen",
                    &format!("127.0.0.1:{}", free_port()),
                ])
                .current_dir(work.path())
                .env("DATABASE_URL", &db_url)
                .env("PLATFORM_ENCRYPTION_KEY", &key)
                .env("RUST_LOG", "info")
                .env("NO_COLOR", "1")
                .stdout(Stdio::null())
                .stderr(std::fs::File::create(&log).unwrap())
                .spawn()
                .unwrap();
            Replica {
                identity,
                child,
                log,
            }
        })
        .collect();
    let holds = |value: &str| {
        std::fs::read_to_string(&zone_file)
            .map(|t| t.contains(value))
            .unwrap_or(false)
    };

    // the leader applies the zone
    wait_until(
        "the zone file holds www 192.0.2.1",
        Duration::from_secs(120),
        &mut replicas,
        || holds("192.0.2.1"),
    )
    .await;
    let holder = || {
        kubectl(
            &[
                "get",
                "leases.coordination.k8s.io",
                "zentralink-shard-0",
                "-n",
                &namespace,
                "-o",
                "jsonpath={.spec.holderIdentity}",
            ],
            None,
        )
        .trim()
        .to_owned()
    };
    let leader = holder();
    let position = replicas
        .iter()
        .position(|r| r.identity == leader)
        .unwrap_or_else(|| panic!("the Lease names {leader:?}, not one of the replicas"));

    // it dies without releasing its Lease; the zone changes meanwhile
    let mut dead = replicas.remove(position);
    dead.kill();
    kubectl(
        &["apply", "-f", "-"],
        Some(&objects(&namespace, &tenant, &zone, &zones, "192.0.2.2")),
    );
    wait_until(
        "another replica applies www 192.0.2.2",
        LEASE + RETRY + Duration::from_secs(60),
        &mut replicas,
        || holds("192.0.2.2"),
    )
    .await;
    let successor = holder();
    assert_ne!(successor, leader, "the dead leader still holds the Lease");
    assert!(replicas.iter().any(|r| r.identity == successor));

    // each change applied exactly once, nothing left in flight
    let pool = PgPoolOptions::new()
        .max_connections(1)
        .connect(&db_url)
        .await
        .unwrap();
    let www = format!("www.{zone}");
    for value in ["192.0.2.1", "192.0.2.2"] {
        let outcomes: Vec<String> = sqlx::query(
            "SELECT outcome FROM dns_changes WHERE name = $1 AND after->'values'->>0 = $2",
        )
        .bind(&www)
        .bind(value)
        .fetch_all(&pool)
        .await
        .unwrap()
        .iter()
        .map(|r| r.get("outcome"))
        .collect();
        assert_eq!(
            outcomes,
            ["applied"],
            "{www} -> {value}: expected exactly one applied history row\n{}\n--- {} (killed) ---\n{}",
            logs(&replicas),
            dead.identity,
            dead.log()
        );
    }
    let in_flight: i64 =
        sqlx::query_scalar("SELECT count(*) FROM executions WHERE state = 'Executing'")
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(in_flight, 0, "an execution is left Executing");

    drop(replicas);
    pool.close().await;
    let _ = admin
        .execute(sqlx::AssertSqlSafe(format!(
            "DROP DATABASE {db} WITH (FORCE)"
        )))
        .await;
}
