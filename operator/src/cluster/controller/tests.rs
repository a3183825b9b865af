//! The controller's reconcile paths against a mocked Kubernetes API server
//! (kube-rs controller-rs style: a `tower_test` service in place of the
//! API server, here recording every request and answering as the API
//! server would), a real PostgreSQL store (`#[sqlx::test]`, DATABASE_URL)
//! and the zone-file provider in a temporary directory.

use std::collections::BTreeMap;
use std::sync::Mutex as StdMutex;

use http::{Request, Response};
use k8s_openapi::api::core::v1::Secret;
use kube::client::Body;
use kube::runtime::reflector::store::Writer;
use kube::runtime::watcher::Event as WatchEvent;
use serde_json::Value;
use ssh_key::PrivateKey;
use ssh_key::private::Ed25519Keypair;
use zentralink_model::approval::{APPROVAL_NAMESPACE, ApprovalMessage, format_message_time, sign};
use zentralink_model::digest::PlanDigest;
use zentralink_model::resources::Decision;
use zentralink_model::secrets::{EncryptionKey, Keyring};

use super::*;
use crate::cluster::lease::Shards;
use crate::reconcile::{Credentials, Options, SystemClock};

/// One request the API server received.
#[derive(Debug, Clone)]
struct Recorded {
    method: String,
    path: String,
    body: Value,
}

type Log = Arc<StdMutex<Vec<Recorded>>>;

/// Answers as the API server would: a PATCH merges into the object it
/// holds (so the typed client can read the answer), a POST echoes.
async fn api_server(
    mut handle: tower_test::mock::Handle<Request<Body>, Response<Body>>,
    objects: Arc<StdMutex<BTreeMap<String, Value>>>,
    log: Log,
) {
    while let Some((request, send)) = handle.next_request().await {
        let method = request.method().to_string();
        let path = request.uri().path().to_owned();
        let bytes = request
            .into_body()
            .collect_bytes()
            .await
            .unwrap_or_default();
        let body: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        if let Ok(mut l) = log.lock() {
            l.push(Recorded {
                method: method.clone(),
                path: path.clone(),
                body: body.clone(),
            });
        }
        let answer = match method.as_str() {
            "PATCH" => {
                let key = path.trim_end_matches("/status").to_owned();
                let mut objects = objects.lock().unwrap_or_else(|e| e.into_inner());
                let entry = objects.entry(key).or_insert_with(|| json!({}));
                merge(entry, &body);
                entry.clone()
            }
            _ => {
                let mut echo = body.clone();
                echo["metadata"]["name"] = json!("generated");
                echo
            }
        };
        let response = Response::builder()
            .status(200)
            .body(Body::from(serde_json::to_vec(&answer).unwrap_or_default()))
            .unwrap_or_else(|e| panic!("{e}"));
        send.send_response(response);
    }
}

fn merge(into: &mut Value, patch: &Value) {
    match (into, patch) {
        (Value::Object(a), Value::Object(b)) => {
            for (k, v) in b {
                merge(a.entry(k.clone()).or_insert(Value::Null), v);
            }
        }
        (slot, v) => *slot = v.clone(),
    }
}

fn key(seed: u8) -> PrivateKey {
    PrivateKey::from(Ed25519Keypair::from_seed(&[seed; 32]))
}

fn public(seed: u8, name: &str) -> String {
    format!(
        "{} {name}@laptop",
        key(seed)
            .public_key()
            .to_openssh()
            .unwrap_or_else(|e| panic!("{e}"))
    )
}

const ALICE: u8 = 1;
const BOB: u8 = 2;

fn obj<K: serde::de::DeserializeOwned>(v: Value) -> K {
    serde_json::from_value(v).unwrap_or_else(|e| panic!("{e}"))
}

fn tenant() -> Tenant {
    obj(json!({
        "apiVersion": "dns.zentralink.net/v1alpha1", "kind": "Tenant",
        "metadata": {"name": "acme"},
        "spec": {"displayName": "Acme", "namespaces": ["acme"], "allowedDomains": ["example."]}
    }))
}

fn policy(deletions: bool) -> TenantPolicy {
    obj(json!({
        "apiVersion": "dns.zentralink.net/v1alpha1", "kind": "TenantPolicy",
        "metadata": {"name": "policy", "namespace": "acme"},
        "spec": {"approvals": {
            "requiredFor": {"recordTypes": ["MX"], "deletions": deletions, "rollbacks": true},
            "minApprovals": 1,
            "approverRoles": ["OWNER", "ADMIN"],
            "approvers": [
                {"name": "alice", "email": "alice@acme.example", "role": "ADMIN", "publicKeys": [public(ALICE, "alice")]},
                {"name": "bob", "email": "bob@acme.example", "role": "OWNER", "publicKeys": [public(BOB, "bob")]}
            ]
        }}
    }))
}

fn connection(dir: &std::path::Path) -> ProviderConnection {
    obj(json!({
        "apiVersion": "dns.zentralink.net/v1alpha1", "kind": "ProviderConnection",
        "metadata": {"name": "files", "namespace": "acme"},
        "spec": {"type": "zonefile", "zonefile": {"directory": dir.display().to_string()},
                 "mode": "Live", "acknowledgeLiveWrites": true}
    }))
}

fn zone(records: Value, finalized: bool) -> DnsZone {
    let finalizers: Vec<&str> = if finalized { vec![FINALIZER] } else { vec![] };
    obj(json!({
        "apiVersion": "dns.zentralink.net/v1alpha1", "kind": "DnsZone",
        "metadata": {"name": "shop", "namespace": "acme", "generation": 1, "uid": "u-shop",
                     "resourceVersion": "10", "finalizers": finalizers,
                     "annotations": {crate::cluster::REQUESTER_ANNOTATION: "alice@acme.example"}},
        "spec": {"zone": "shop.example.", "providerRef": {"name": "files"}, "recordSets": records}
    }))
}

const ZONE_FILE: &str = "$ORIGIN shop.example.
$TTL 3600
@ IN SOA ns1.example.net. hostmaster.example.net. 1 7200 3600 1209600 3600
@ IN NS ns1.example.net.
";

/// Writers that fill the caches as the watches would (kept: a cache whose
/// writer is gone is never ready again).
#[allow(dead_code)]
struct Writers {
    tenants: Writer<Tenant>,
    policies: Writer<TenantPolicy>,
    connections: Writer<ProviderConnection>,
    change_requests: Writer<DnsChangeRequest>,
    approvals: Writer<Approval>,
    snapshots: Writer<DnsSnapshot>,
    zones: Writer<DnsZone>,
    secrets: Writer<Secret>,
}

fn fill<K>(writer: &mut Writer<K>, objects: Vec<K>)
where
    K: kube::Resource + Clone + 'static,
    K::DynamicType: Eq + std::hash::Hash + Clone,
{
    writer.apply_watcher_event(&WatchEvent::Init);
    for o in objects {
        writer.apply_watcher_event(&WatchEvent::InitApply(o));
    }
    writer.apply_watcher_event(&WatchEvent::InitDone);
}

struct World {
    ctx: Arc<Context>,
    log: Log,
    objects: Arc<StdMutex<BTreeMap<String, Value>>>,
    writers: Writers,
    dir: tempfile::TempDir,
    store: Store,
}

impl World {
    async fn new(pool: sqlx::PgPool, deletions_gated: bool) -> World {
        let store = Store::from_pool(pool, Keyring::new(EncryptionKey::from_bytes([7; 32]), None));
        store.migrate().await.unwrap_or_else(|e| panic!("{e}"));
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        std::fs::write(dir.path().join("shop.example.zone"), ZONE_FILE)
            .unwrap_or_else(|e| panic!("{e}"));
        let (mock, handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
        let client = Client::new(mock, "default");
        let log: Log = Arc::default();
        let objects: Arc<StdMutex<BTreeMap<String, Value>>> = Arc::default();
        tokio::spawn(api_server(handle, Arc::clone(&objects), Arc::clone(&log)));
        let (tenants, mut tw) = reflector::store();
        let (policies, mut pw) = reflector::store();
        let (connections, mut cw) = reflector::store();
        let (change_requests, mut rw) = reflector::store();
        let (approvals, mut aw) = reflector::store();
        let (snapshots, mut sw) = reflector::store();
        let (zones, mut zw) = reflector::store();
        let (secrets, mut secw) = reflector::store();
        fill(&mut tw, vec![tenant()]);
        fill(&mut pw, vec![policy(deletions_gated)]);
        fill(&mut cw, vec![connection(dir.path())]);
        fill(&mut rw, vec![]);
        fill(&mut aw, vec![]);
        fill(&mut sw, vec![]);
        fill(&mut zw, vec![]);
        fill(&mut secw, vec![]);
        let caches = Caches {
            tenants,
            policies,
            connections,
            change_requests,
            approvals,
            snapshots,
            zones,
            secrets,
        };
        let reconciler = Reconciler::new(
            store.clone(),
            Arc::new(Credentials {
                keyring: Ok(Keyring::new(EncryptionKey::from_bytes([7; 32]), None)),
                env: Default::default(),
                secrets: None,
            }),
            Arc::new(SystemClock),
            Options::default(),
        );
        let ctx = Arc::new(Context::new(
            client,
            reconciler,
            caches,
            Shards::single(true),
            ControllerOptions {
                zonefile_root: dir.path().to_path_buf(),
                requeue: Duration::from_secs(300),
                concurrency: 1,
                identity: "test".into(),
            },
        ));
        World {
            ctx,
            log,
            objects,
            writers: Writers {
                tenants: tw,
                policies: pw,
                connections: cw,
                change_requests: rw,
                approvals: aw,
                snapshots: sw,
                zones: zw,
                secrets: secw,
            },
            dir,
            store,
        }
    }

    /// Reconciles the zone as the API server holds it (after earlier patches).
    async fn reconcile(&self, zone: &DnsZone) -> Result<Action, ReconcileError> {
        let mut zone = zone.clone();
        if let Some(held) = self
            .objects
            .lock()
            .ok()
            .and_then(|o| o.get(&zone_path()).cloned())
            && let Some(status) = held.get("status")
        {
            zone.status = serde_json::from_value(status.clone()).ok();
        }
        // the API server's copy is what later patches merge into
        if let Ok(mut o) = self.objects.lock() {
            let mut current = serde_json::to_value(&zone).unwrap_or_default();
            if let Some(held) = o.get(&zone_path())
                && let Some(status) = held.get("status")
            {
                current["status"] = status.clone();
            }
            o.insert(zone_path(), current);
        }
        let result = reconcile(Arc::new(zone), Arc::clone(&self.ctx)).await;
        // let the recorded answers land
        tokio::task::yield_now().await;
        result
    }

    /// What the watches would bring back: the API server's Approvals, status included.
    fn sync_approvals(&mut self) {
        let held: Vec<Approval> = self
            .objects
            .lock()
            .map(|o| {
                o.iter()
                    .filter(|(k, _)| k.contains("/approvals/"))
                    .filter_map(|(_, v)| serde_json::from_value(v.clone()).ok())
                    .collect()
            })
            .unwrap_or_default();
        for a in held {
            self.writers
                .approvals
                .apply_watcher_event(&WatchEvent::Apply(a));
        }
    }

    fn take_log(&self) -> Vec<Recorded> {
        self.log
            .lock()
            .map(|mut l| std::mem::take(&mut *l))
            .unwrap_or_default()
    }

    fn zone_file(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("shop.example.zone")).unwrap_or_default()
    }

    fn add_approval(&mut self, approval: Approval) {
        self.objects.lock().ok().map(|mut o| {
            o.insert(
                format!(
                    "/apis/dns.zentralink.net/v1alpha1/namespaces/acme/approvals/{}",
                    approval.name_any()
                ),
                serde_json::to_value(&approval).unwrap_or_default(),
            )
        });
        self.writers
            .approvals
            .apply_watcher_event(&WatchEvent::Apply(approval));
    }
}

fn zone_path() -> String {
    "/apis/dns.zentralink.net/v1alpha1/namespaces/acme/dnszones/shop".into()
}

fn status_patches(log: &[Recorded], path: &str) -> Vec<Value> {
    log.iter()
        .filter(|r| r.method == "PATCH" && r.path == format!("{path}/status"))
        .map(|r| r.body["status"].clone())
        .collect()
}

fn events(log: &[Recorded]) -> Vec<(String, String)> {
    log.iter()
        .filter(|r| r.method == "POST" && r.path.contains("/events"))
        .map(|r| {
            (
                r.body["reason"].as_str().unwrap_or_default().to_owned(),
                r.body["type"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect()
}

fn condition<'a>(status: &'a Value, type_: &str) -> &'a Value {
    status["conditions"]
        .as_array()
        .and_then(|c| c.iter().find(|c| c["type"] == type_))
        .unwrap_or_else(|| panic!("no {type_} in {status}"))
}

fn www(value: &str) -> Value {
    json!([{"name": "www", "type": "A", "values": [value]}])
}

#[sqlx::test(migrations = false)]
async fn a_zone_gets_the_finalizer_before_anything_else(pool: sqlx::PgPool) {
    let w = World::new(pool, true).await;
    let action = w
        .reconcile(&zone(www("192.0.2.1"), false))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(action, Action::await_change());
    let log = w.take_log();
    assert_eq!(log.len(), 1, "{log:?}");
    assert_eq!(log[0].method, "PATCH");
    assert_eq!(log[0].path, zone_path());
    assert_eq!(log[0].body["metadata"]["finalizers"], json!([FINALIZER]));
    assert!(!w.zone_file().contains("www"), "nothing applied yet");
}

#[sqlx::test(migrations = false)]
async fn an_ungated_change_is_applied_and_the_status_says_ready(pool: sqlx::PgPool) {
    let w = World::new(pool, true).await;
    let z = zone(www("192.0.2.1"), true);
    let action = w.reconcile(&z).await.unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(action, Action::requeue(Duration::from_secs(300)));
    assert!(w.zone_file().contains("192.0.2.1"), "{}", w.zone_file());
    let log = w.take_log();
    let statuses = status_patches(&log, &zone_path());
    assert_eq!(statuses.len(), 1, "{log:?}");
    let st = &statuses[0];
    assert_eq!(condition(st, "Ready")["status"], "True");
    assert_eq!(condition(st, "Ready")["reason"], "Converged");
    assert_eq!(condition(st, "Ready")["observedGeneration"], 1);
    assert_eq!(condition(st, "LiveWriteEnabled")["status"], "True");
    assert_eq!(condition(st, "ProviderReady")["status"], "True");
    assert_eq!(condition(st, "AwaitingApproval")["status"], "False");
    assert_eq!(st["appliedRevision"], "kubernetes:acme/shop@1");
    assert!(
        st["lastAppliedDigest"]
            .as_str()
            .is_some_and(|d| d.starts_with("sha256:"))
    );
    let reasons: Vec<String> = events(&log).into_iter().map(|(r, _)| r).collect();
    assert!(reasons.contains(&"Applied".to_owned()), "{reasons:?}");
    assert!(
        reasons.contains(&"LiveWritesEnabled".to_owned()),
        "{reasons:?}"
    );
    assert!(
        !log.iter().any(|r| r.path.contains("dnschangerequests")),
        "nothing gated, nothing mirrored"
    );
    // the history names the revision and the stamped requester
    let rows: Vec<(String, Option<String>)> =
        sqlx::query_as("SELECT requester, revision FROM dns_changes")
            .fetch_all(w.store.pool())
            .await
            .unwrap_or_default();
    assert_eq!(
        rows,
        vec![(
            "alice@acme.example".to_owned(),
            Some("kubernetes:acme/shop@1".to_owned())
        )]
    );

    // a second reconcile with nothing changed writes nothing to the API server
    let again = w.reconcile(&z).await.unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(again, Action::requeue(Duration::from_secs(300)));
    let log = w.take_log();
    assert!(log.is_empty(), "a no-op reconcile writes nothing: {log:?}");
}

#[sqlx::test(migrations = false)]
async fn a_gated_change_waits_in_a_mirrored_change_request_that_a_signed_approval_releases(
    pool: sqlx::PgPool,
) {
    let mut w = World::new(pool, true).await;
    let records = json!([
        {"name": "www", "type": "A", "values": ["192.0.2.1"]},
        {"name": "@", "type": "MX", "values": ["10 mx1.shop.example."]}
    ]);
    let z = zone(records, true);
    w.reconcile(&z).await.unwrap_or_else(|e| panic!("{e}"));
    assert!(
        w.zone_file().contains("192.0.2.1"),
        "the ungated part applies at once"
    );
    assert!(!w.zone_file().contains("mx1"), "the MX waits");
    let log = w.take_log();
    let st = &status_patches(&log, &zone_path())[0];
    assert_eq!(condition(st, "AwaitingApproval")["status"], "True");
    assert_eq!(condition(st, "Ready")["reason"], "AwaitingApproval");
    let request = st["pendingChangeRequest"]
        .as_str()
        .unwrap_or_else(|| panic!("{st}"))
        .to_owned();
    assert!(
        events(&log).iter().any(|(r, _)| r == "Gated"),
        "{:?}",
        events(&log)
    );
    // mirrored: the object (spec, labels) and its status (what it needs, who may sign)
    let cr_path =
        format!("/apis/dns.zentralink.net/v1alpha1/namespaces/acme/dnschangerequests/{request}");
    let object = log
        .iter()
        .find(|r| r.method == "PATCH" && r.path == cr_path)
        .unwrap_or_else(|| panic!("not mirrored: {log:?}"));
    assert_eq!(object.body["spec"]["zoneRef"], "shop");
    assert_eq!(object.body["spec"]["requester"], "alice@acme.example");
    assert_eq!(object.body["spec"]["changes"][0]["type"], "MX");
    assert_eq!(
        object.body["metadata"]["labels"]["app.kubernetes.io/managed-by"],
        "zentralink"
    );
    let cr_status = &status_patches(&log, &cr_path)[0];
    assert_eq!(cr_status["state"], "Pending");
    assert_eq!(cr_status["approvalsNeeded"], 1);
    assert_eq!(
        cr_status["mayApprove"],
        json!(["bob"]),
        "never the requester"
    );
    let digest: PlanDigest = object.body["spec"]["planDigest"]
        .as_str()
        .and_then(|d| d.parse().ok())
        .unwrap_or_else(|| panic!("digest"));

    // the mirrored request lands in the cache, as the watch would bring it
    let mirrored: DnsChangeRequest = obj(w
        .objects
        .lock()
        .ok()
        .and_then(|o| o.get(&cr_path).cloned())
        .unwrap_or_default());
    w.writers
        .change_requests
        .apply_watcher_event(&WatchEvent::Apply(mirrored));

    // alice asked for it: her approval is refused; bob's counts
    let signed = |who: &str, seed: u8, name: &str| -> Approval {
        let created = zentralink_model::approval::truncate_to_second(Timestamp::now());
        let message = ApprovalMessage::new(
            "acme",
            "acme",
            &request,
            digest,
            Decision::Approve,
            who,
            created,
        )
        .unwrap_or_else(|e| panic!("{e}"));
        let signature = sign(APPROVAL_NAMESPACE, &message.to_bytes(), &key(seed))
            .unwrap_or_else(|e| panic!("{e}"));
        obj(json!({
            "apiVersion": "dns.zentralink.net/v1alpha1", "kind": "Approval",
            "metadata": {"name": name, "namespace": "acme", "generation": 1},
            "spec": {"changeRequest": request, "planDigest": digest.to_string(), "approver": who,
                     "decision": "Approve", "createdAt": format_message_time(created), "signature": signature}
        }))
    };
    w.add_approval(signed("alice", ALICE, "by-alice"));
    w.reconcile(&z).await.unwrap_or_else(|e| panic!("{e}"));
    assert!(
        !w.zone_file().contains("mx1"),
        "the requester's approval counts for nothing"
    );
    let log = w.take_log();
    let alice_path = "/apis/dns.zentralink.net/v1alpha1/namespaces/acme/approvals/by-alice";
    let alice = &status_patches(&log, alice_path)[0];
    assert_eq!(alice["conditions"][0]["type"], "Accepted");
    assert_eq!(alice["conditions"][0]["status"], "False");
    assert_eq!(alice["conditions"][0]["reason"], "RequesterCannotApprove");
    assert!(
        events(&log)
            .iter()
            .any(|(r, t)| r == "ApprovalRefused" && t == "Warning")
    );

    w.sync_approvals();
    w.add_approval(signed("bob", BOB, "by-bob"));
    w.reconcile(&z).await.unwrap_or_else(|e| panic!("{e}"));
    assert!(
        w.zone_file().contains("mx1.shop.example."),
        "{}",
        w.zone_file()
    );
    let log = w.take_log();
    let bob = &status_patches(
        &log,
        "/apis/dns.zentralink.net/v1alpha1/namespaces/acme/approvals/by-bob",
    )[0];
    assert_eq!(bob["conditions"][0]["status"], "True");
    assert!(events(&log).iter().any(|(r, _)| r == "ApprovalAccepted"));
    let cr = status_patches(&log, &cr_path);
    assert_eq!(
        cr.last().map(|s| s["state"].clone()),
        Some(json!("Applied")),
        "{log:?}"
    );
    let st = status_patches(&log, &zone_path());
    assert_eq!(condition(&st[0], "Ready")["status"], "True", "{st:?}");
    // alice's refusal is final: not judged again
    assert!(status_patches(&log, alice_path).is_empty());
}

#[sqlx::test(migrations = false)]
async fn a_dnssnapshot_object_is_taken_once_and_its_status_names_the_snapshot(pool: sqlx::PgPool) {
    let mut w = World::new(pool, true).await;
    let z = zone(www("192.0.2.1"), true);
    w.reconcile(&z).await.unwrap_or_else(|e| panic!("{e}"));
    w.take_log();
    let snapshot: DnsSnapshot = obj(json!({
        "apiVersion": "dns.zentralink.net/v1alpha1", "kind": "DnsSnapshot",
        "metadata": {"name": "before-migration", "namespace": "acme", "generation": 1},
        "spec": {"zoneRef": "shop", "reason": "before the mail migration"}
    }));
    if let Ok(mut o) = w.objects.lock() {
        o.insert(
            "/apis/dns.zentralink.net/v1alpha1/namespaces/acme/dnssnapshots/before-migration"
                .into(),
            serde_json::to_value(&snapshot).unwrap_or_default(),
        );
    }
    w.writers
        .snapshots
        .apply_watcher_event(&WatchEvent::Apply(snapshot));
    w.reconcile(&z).await.unwrap_or_else(|e| panic!("{e}"));
    let log = w.take_log();
    let path = "/apis/dns.zentralink.net/v1alpha1/namespaces/acme/dnssnapshots/before-migration";
    let st = status_patches(&log, path);
    assert_eq!(st.len(), 1, "{log:?}");
    let id = st[0]["snapshotId"]
        .as_str()
        .unwrap_or_else(|| panic!("{}", st[0]));
    assert!(
        st[0]["digest"]
            .as_str()
            .is_some_and(|d| d.starts_with("sha256:"))
    );
    assert_eq!(st[0]["conditions"][0]["type"], "Ready");
    // the store holds it, with who asked and why
    let (asked_by, note): (Option<String>, Option<String>) =
        sqlx::query_as("SELECT requested_by, note FROM snapshots WHERE id::text = $1")
            .bind(id)
            .fetch_one(w.store.pool())
            .await
            .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(asked_by.as_deref(), Some("acme/before-migration"));
    assert_eq!(note.as_deref(), Some("before the mail migration"));
    // taken once: another pass takes no second snapshot for the object
    w.reconcile(&z).await.unwrap_or_else(|e| panic!("{e}"));
    let taken: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM snapshots WHERE requested_by = 'acme/before-migration'",
    )
    .fetch_one(w.store.pool())
    .await
    .unwrap_or(0);
    assert_eq!(taken, 1);
}

#[sqlx::test(migrations = false)]
async fn a_deleted_zone_goes_only_after_its_records_went_through_a_plan(pool: sqlx::PgPool) {
    // deletions gated: the records wait, and so does the object
    let w = World::new(pool, true).await;
    let z = zone(www("192.0.2.1"), true);
    w.reconcile(&z).await.unwrap_or_else(|e| panic!("{e}"));
    assert!(w.zone_file().contains("192.0.2.1"));
    w.take_log();
    let mut deleted = z.clone();
    deleted.metadata.deletion_timestamp = Some(
        k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(Timestamp::now()),
    );
    w.reconcile(&deleted)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(w.zone_file().contains("192.0.2.1"), "not silently deleted");
    let log = w.take_log();
    let st = &status_patches(&log, &zone_path())[0];
    assert_eq!(condition(st, "AwaitingApproval")["status"], "True");
    assert!(
        !log.iter()
            .any(|r| r.path == zone_path() && r.body["metadata"]["finalizers"].is_array()),
        "the finalizer stays: {log:?}"
    );
}

#[sqlx::test(migrations = false)]
async fn an_ungated_deletion_removes_the_records_then_the_finalizer(pool: sqlx::PgPool) {
    let w = World::new(pool, false).await;
    let z = zone(www("192.0.2.1"), true);
    w.reconcile(&z).await.unwrap_or_else(|e| panic!("{e}"));
    w.take_log();
    let mut deleted = z.clone();
    deleted.metadata.deletion_timestamp = Some(
        k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(Timestamp::now()),
    );
    // the pass deletes the records; the next one finds nothing left and lets the object go
    w.reconcile(&deleted)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(!w.zone_file().contains("192.0.2.1"), "{}", w.zone_file());
    let action = w
        .reconcile(&deleted)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(action, Action::await_change());
    let log = w.take_log();
    let removal = log
        .iter()
        .find(|r| r.path == zone_path() && r.body["metadata"]["finalizers"].is_array())
        .unwrap_or_else(|| panic!("finalizer not removed: {log:?}"));
    assert_eq!(removal.body["metadata"]["finalizers"], json!([]));
    assert_eq!(removal.body["metadata"]["resourceVersion"], "10");
}

#[sqlx::test(migrations = false)]
async fn a_zone_no_tenant_owns_is_refused_once_and_waits_for_a_change(pool: sqlx::PgPool) {
    let mut w = World::new(pool, true).await;
    fill(&mut w.writers.tenants, vec![]);
    let z = zone(www("192.0.2.1"), true);
    let err = w
        .reconcile(&z)
        .await
        .err()
        .unwrap_or_else(|| panic!("refused"));
    assert!(matches!(err, ReconcileError::User(_)), "{err}");
    assert_eq!(
        error_policy(Arc::new(z.clone()), &err, Arc::clone(&w.ctx)),
        Action::await_change(),
        "a user error is not retried"
    );
    let log = w.take_log();
    let st = &status_patches(&log, &zone_path())[0];
    assert_eq!(condition(st, "Ready")["reason"], "NoTenant");
    assert!(
        events(&log)
            .iter()
            .any(|(r, t)| r == "NoTenant" && t == "Warning")
    );
    // the same refusal again writes nothing
    let _ = w.reconcile(&z).await;
    assert!(w.take_log().is_empty());
    assert!(!w.zone_file().contains("192.0.2.1"));
}

#[test]
fn transient_errors_back_off_from_5_seconds_to_5_minutes() {
    assert_eq!(backoff(1), Duration::from_secs(5));
    assert_eq!(backoff(2), Duration::from_secs(10));
    assert_eq!(backoff(4), Duration::from_secs(40));
    assert_eq!(backoff(20), Duration::from_secs(300));
}

#[test]
fn statuses_compare_without_their_times() {
    let a = json!({"conditions": [{"type": "Ready", "status": "True", "lastTransitionTime": "2026-11-30T20:00:00Z"}], "x": null});
    let b = json!({"conditions": [{"type": "Ready", "status": "True", "lastTransitionTime": "2026-11-30T21:00:00Z"}]});
    assert!(same_status(&a, &b));
    let c = json!({"conditions": [{"type": "Ready", "status": "False", "lastTransitionTime": "2026-11-30T21:00:00Z"}]});
    assert!(!same_status(&a, &c));
}
