//! `zentralink operator --source kubernetes` against a real Kubernetes API
//! server: `kubectl apply -f examples/` does what a git commit of them does,
//! and an approver's Approval object what a committed approval does.
//!
//! Needs a cluster: an API server (no kubelet needed; no pod ever runs),
//! `KUBECONFIG` naming it, PostgreSQL at DATABASE_URL, and `ssh-keygen`.
//! Run with:
//!
//! ```sh
//! KUBECONFIG=~/.kube/config DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres \
//!     cargo test -p zentralink --test cluster_controller -- --ignored --nocapture
//! ```
//!
//! The operator runs as a local process; its admission webhook is
//! registered with `clientConfig.url: https://127.0.0.1:PORT` and an
//! `objectSelector` that sends it only this test's objects. Everything the
//! test makes (namespaces, tenants, webhook configurations) carries a
//! unique name and is deleted at the end; the CRDs stay installed.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use k8s_openapi::api::admissionregistration::v1::{
    MutatingWebhookConfiguration, ValidatingWebhookConfiguration,
};
use k8s_openapi::api::authentication::v1::SelfSubjectReview;
use k8s_openapi::api::core::v1::Namespace;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use kube::{Client, ResourceExt};
use serde_json::{Value, json};
use sqlx::Executor;
use zentralink_model::resources::{
    Approval, DnsChangeRequest, DnsZone, ProviderConnection, Tenant, TenantPolicy,
};

mod common;
use common::text;

const LABEL: &str = "zentralink-test";
const MANAGER: &str = "zentralink-cluster-test";

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Polls `check` every 250 ms until it returns `Some`, or panics after `secs` naming what it waited for.
async fn eventually<T, F, Fut>(secs: u64, what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    for _ in 0..secs * 4 {
        if let Some(v) = check().await {
            return v;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    panic!("waited {secs} s for {what}");
}

/// The operator process; killed when dropped.
struct Operator(Child);

impl Drop for Operator {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// One test's names: namespaces `<id>-acme` and `<id>-globex`, tenants `<id>-acme`, ...
struct Names {
    id: String,
}

impl Names {
    fn ns(&self, example: &str) -> String {
        format!("{}-{example}", self.id)
    }
}

/// The examples as this test applies them: namespaces and tenants renamed,
/// every object labelled for the test's webhook, the approvers' keys made here.
fn documents(names: &Names, keys: &Path) -> Vec<Value> {
    let mut out = Vec::new();
    for dir in ["tenants", "acme", "globex"] {
        let mut files: Vec<PathBuf> = std::fs::read_dir(repo().join("examples").join(dir))
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
            .collect();
        files.sort();
        for file in files {
            let mut source = std::fs::read_to_string(&file).unwrap();
            if dir == "acme" && file.ends_with("policy.yaml") {
                for who in ["alice", "bob"] {
                    let example = source
                        .lines()
                        .find(|l| l.contains(&format!("{who}@acme.example\"")))
                        .and_then(|l| l.split('"').nth(1))
                        .unwrap()
                        .to_owned();
                    let public = std::fs::read_to_string(keys.join(format!("{who}.pub"))).unwrap();
                    source = source.replace(&example, public.trim());
                }
            }
            for doc in serde_yaml::Deserializer::from_str(&source) {
                let value: Value = serde::Deserialize::deserialize(doc).unwrap();
                if value.is_null() {
                    continue;
                }
                out.push(rename(value, names));
            }
        }
    }
    out
}

fn rename(mut v: Value, names: &Names) -> Value {
    let kind = v["kind"].as_str().unwrap_or_default().to_owned();
    if kind == "Tenant" {
        let name = v["metadata"]["name"].as_str().unwrap().to_owned();
        v["metadata"]["name"] = json!(names.ns(&name));
        let namespaces: Vec<String> = v["spec"]["namespaces"]
            .as_array()
            .unwrap()
            .iter()
            .map(|n| names.ns(n.as_str().unwrap()))
            .collect();
        v["spec"]["namespaces"] = json!(namespaces);
    } else if let Some(ns) = v["metadata"]["namespace"].as_str().map(str::to_owned) {
        v["metadata"]["namespace"] = json!(names.ns(&ns));
    }
    v["metadata"]["labels"][LABEL] = json!(names.id);
    v
}

async fn apply(client: &Client, doc: &Value) -> Result<(), kube::Error> {
    let name = doc["metadata"]["name"].as_str().unwrap().to_owned();
    let ns = doc["metadata"]["namespace"].as_str().map(str::to_owned);
    let pp = PatchParams::apply(MANAGER);
    macro_rules! put {
        ($kind:ty) => {{
            let typed: $kind = serde_json::from_value(doc.clone()).unwrap();
            let api: Api<$kind> =
                Api::namespaced(client.clone(), ns.as_deref().unwrap_or_default());
            api.patch(&name, &pp, &Patch::Apply(&typed))
                .await
                .map(|_| ())
        }};
    }
    match doc["kind"].as_str().unwrap_or_default() {
        "Tenant" => {
            let typed: Tenant = serde_json::from_value(doc.clone()).unwrap();
            Api::<Tenant>::all(client.clone())
                .patch(&name, &pp, &Patch::Apply(&typed))
                .await
                .map(|_| ())
        }
        "TenantPolicy" => put!(TenantPolicy),
        "ProviderConnection" => put!(ProviderConnection),
        "DnsZone" => put!(DnsZone),
        "DnsChangeRequest" => put!(DnsChangeRequest),
        "Approval" => put!(Approval),
        other => panic!("no {other} in the examples"),
    }
}

async fn install_crds(client: &Client) {
    let api: Api<CustomResourceDefinition> = Api::all(client.clone());
    let mut names = Vec::new();
    for entry in std::fs::read_dir(repo().join("crds")).unwrap() {
        let path = entry.unwrap().path();
        let crd: CustomResourceDefinition =
            serde_yaml::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        api.patch(
            &crd.name_any(),
            &PatchParams::apply(MANAGER).force(),
            &Patch::Apply(&crd),
        )
        .await
        .unwrap();
        names.push(crd.name_any());
    }
    for name in names {
        eventually(60, &format!("CRD {name} established"), || {
            let api = api.clone();
            let name = name.clone();
            async move {
                let crd = api.get(&name).await.ok()?;
                crd.status?
                    .conditions?
                    .iter()
                    .any(|c| c.type_ == "Established" && c.status == "True")
                    .then_some(())
            }
        })
        .await;
    }
}

async fn webhooks(client: &Client, names: &Names, port: u16) {
    let selector = json!({"matchLabels": {LABEL: names.id}});
    let rule = |ops: &[&str], resources: &[&str]| {
        json!({"apiGroups": ["dns.zentralink.net"], "apiVersions": ["v1alpha1"],
               "operations": ops, "resources": resources, "scope": "*"})
    };
    let validating: ValidatingWebhookConfiguration = serde_json::from_value(json!({
        "apiVersion": "admissionregistration.k8s.io/v1", "kind": "ValidatingWebhookConfiguration",
        "metadata": {"name": names.id},
        "webhooks": [{
            "name": "validate.dns.zentralink.net",
            "clientConfig": {"url": format!("https://127.0.0.1:{port}/validate")},
            "rules": [rule(&["CREATE", "UPDATE"], &["tenants", "tenantpolicies", "providerconnections", "dnszones", "dnschangerequests", "approvals", "dnssnapshots"])],
            "objectSelector": selector,
            "failurePolicy": "Fail", "sideEffects": "None",
            "admissionReviewVersions": ["v1"], "timeoutSeconds": 10
        }]
    }))
    .unwrap();
    let mutating: MutatingWebhookConfiguration = serde_json::from_value(json!({
        "apiVersion": "admissionregistration.k8s.io/v1", "kind": "MutatingWebhookConfiguration",
        "metadata": {"name": names.id},
        "webhooks": [{
            "name": "mutate.dns.zentralink.net",
            "clientConfig": {"url": format!("https://127.0.0.1:{port}/mutate")},
            "rules": [rule(&["CREATE", "UPDATE"], &["tenants", "tenantpolicies", "providerconnections", "dnszones", "dnschangerequests"])],
            "objectSelector": selector,
            "failurePolicy": "Fail", "sideEffects": "None",
            "admissionReviewVersions": ["v1"], "timeoutSeconds": 10,
            "reinvocationPolicy": "Never"
        }]
    }))
    .unwrap();
    Api::<ValidatingWebhookConfiguration>::all(client.clone())
        .create(&PostParams::default(), &validating)
        .await
        .unwrap();
    Api::<MutatingWebhookConfiguration>::all(client.clone())
        .create(&PostParams::default(), &mutating)
        .await
        .unwrap();
}

/// The condition's status of an object, once its observed generation caught up.
fn condition(status: &Option<Value>, type_: &str) -> Option<(String, String)> {
    status.as_ref()?["conditions"]
        .as_array()?
        .iter()
        .find(|c| c["type"] == type_)
        .map(|c| {
            (
                c["status"].as_str().unwrap_or_default().to_owned(),
                c["reason"].as_str().unwrap_or_default().to_owned(),
            )
        })
}

async fn zone_status(client: &Client, ns: &str, name: &str) -> Option<Value> {
    let api: Api<DnsZone> = Api::namespaced(client.clone(), ns);
    let z = api.get(name).await.ok()?;
    serde_json::to_value(z.status?).ok()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs cluster: set KUBECONFIG"]
async fn kubectl_apply_of_the_examples_does_what_a_commit_does() {
    zentralink_providers::install_tls_provider();
    let client = Client::try_default()
        .await
        .expect("KUBECONFIG must name a reachable API server");
    let names = Names {
        id: format!("zlt{}", &uuid::Uuid::new_v4().simple().to_string()[..8]),
    };
    let work = tempfile::tempdir().unwrap();

    let (admin, db_url, db) = common::fresh_database("zl_cluster").await;

    // the examples' zone files, where the connections' relative directories point
    let examples = work.path().join("examples");
    std::fs::create_dir_all(examples.join("tenants")).unwrap();
    for tenant in ["acme", "globex"] {
        let dir = examples.join("zonefiles").join(tenant);
        std::fs::create_dir_all(&dir).unwrap();
        for entry in std::fs::read_dir(repo().join("examples/zonefiles").join(tenant)).unwrap() {
            let p = entry.unwrap().path();
            std::fs::copy(&p, dir.join(p.file_name().unwrap())).unwrap();
        }
    }
    let keys = work.path().join("keys");
    std::fs::create_dir_all(&keys).unwrap();
    for who in ["alice", "bob"] {
        let out = Command::new("ssh-keygen")
            .args(["-q", "-t", "ed25519", "-N", "", "-C"])
            .arg(format!("{who}@acme.example"))
            .arg("-f")
            .arg(keys.join(who))
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", text(&out.stderr));
    }
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
        let mut c = Command::new(env!("CARGO_BIN_EXE_zentralink"));
        c.args(args)
            .env("DATABASE_URL", &db_url)
            .env("PLATFORM_ENCRYPTION_KEY", &key);
        c
    };

    install_crds(&client).await;
    for example in ["acme", "globex"] {
        let ns: Namespace = serde_json::from_value(json!({
            "apiVersion": "v1", "kind": "Namespace",
            "metadata": {"name": names.ns(example), "labels": {LABEL: names.id}}
        }))
        .unwrap();
        Api::<Namespace>::all(client.clone())
            .create(&PostParams::default(), &ns)
            .await
            .unwrap();
    }

    // the webhook configurations first (they select only this test's
    // objects), so the operator's first CA patch finds both of them
    let admission_port = free_port();
    webhooks(&client, &names, admission_port).await;
    // the operator, its webhook on loopback
    let http_port = free_port();
    let operator = Operator(
        zentralink(&[
            "operator",
            "--source",
            "kubernetes",
            "--listen",
            &format!("127.0.0.1:{http_port}"),
            "--admission-listen",
            &format!("127.0.0.1:{admission_port}"),
            "--admission-san",
            "127.0.0.1",
            "--admission-configs",
            &names.id,
            "--namespace",
            &names.ns("acme"),
            "--identity",
            "cluster-test",
            "--zonefile-root",
            examples.join("tenants").to_str().unwrap(),
            "--full-pass",
            "5s",
        ])
        .env("RUST_LOG", "info")
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap(),
    );
    // the operator patches its CA into both configurations it was named
    eventually(30, "the CA bundle patched in", || {
        let validating = Api::<ValidatingWebhookConfiguration>::all(client.clone());
        let mutating = Api::<MutatingWebhookConfiguration>::all(client.clone());
        let id = names.id.clone();
        async move {
            let patched =
                |bundle: Option<&k8s_openapi::ByteString>| bundle.is_some_and(|b| !b.0.is_empty());
            let v = validating.get(&id).await.ok()?.webhooks?;
            let m = mutating.get(&id).await.ok()?.webhooks?;
            (v.iter()
                .all(|w| patched(w.client_config.ca_bundle.as_ref()))
                && m.iter()
                    .all(|w| patched(w.client_config.ca_bundle.as_ref())))
            .then_some(())
        }
    })
    .await;

    // whoever the test runs as: the webhook stamps that name
    let me = Api::<SelfSubjectReview>::all(client.clone())
        .create(&PostParams::default(), &SelfSubjectReview::default())
        .await
        .unwrap()
        .status
        .and_then(|s| s.user_info)
        .and_then(|u| u.username)
        .unwrap();

    // ---- kubectl apply -f examples/
    for doc in documents(&names, &keys) {
        apply(&client, &doc)
            .await
            .unwrap_or_else(|e| panic!("{}: {e}", doc["metadata"]["name"]));
    }
    let acme = names.ns("acme");
    let globex = names.ns("globex");
    let zone_file = examples.join("zonefiles/acme/acme.example.zone");

    // acme.example.: the ungated www change applied, the MX change and the deletion wait
    let status = eventually(90, "acme-example waiting for approval", || {
        let client = client.clone();
        let acme = acme.clone();
        async move {
            let st = zone_status(&client, &acme, "acme-example").await?;
            (condition(&Some(st.clone()), "AwaitingApproval")?.0 == "True").then_some(st)
        }
    })
    .await;
    assert!(
        std::fs::read_to_string(&zone_file)
            .unwrap()
            .contains("192.0.2.11")
    );
    let request = status["pendingChangeRequest"].as_str().unwrap().to_owned();
    assert_eq!(
        condition(&Some(status.clone()), "LiveWriteEnabled").map(|c| c.0),
        Some("True".into())
    );
    // the reverse zone is as declared; globex's read-only zones are planned, never written
    eventually(60, "the reverse zone ready", || {
        let client = client.clone();
        let acme = acme.clone();
        async move {
            let st = zone_status(&client, &acme, "reverse-192-0-2").await;
            (condition(&st, "Ready")?.0 == "True").then_some(())
        }
    })
    .await;
    let st = eventually(60, "globex-example reconciled", || {
        let client = client.clone();
        let globex = globex.clone();
        async move { zone_status(&client, &globex, "globex-example").await }
    })
    .await;
    assert_eq!(
        condition(&Some(st), "LiveWriteEnabled"),
        Some(("False".into(), "ReadOnlyMode".into()))
    );

    // the requester is who applied the zone, stamped by the webhook
    let zone = Api::<DnsZone>::namespaced(client.clone(), &acme)
        .get("acme-example")
        .await
        .unwrap();
    assert_eq!(
        zone.annotations().get("dns.zentralink.net/requested-by"),
        Some(&me)
    );

    // ---- kubectl get dnschangerequests: mirrored, with what it still needs
    let cr = eventually(30, "the change request mirrored", || {
        let api = Api::<DnsChangeRequest>::namespaced(client.clone(), &acme);
        let request = request.clone();
        async move {
            let cr = api.get(&request).await.ok()?;
            (cr.status.as_ref()?.approvals_needed == Some(1)).then_some(cr)
        }
    })
    .await;
    assert_eq!(cr.spec.requester.as_deref(), Some(me.as_str()));
    assert!(
        cr.spec
            .changes
            .iter()
            .any(|c| c.record_type == "MX" && !c.reasons.is_empty())
    );

    // ---- the webhook refuses what validation refuses, with the same message
    let mut bad = documents(&names, &keys)
        .into_iter()
        .find(|d| d["kind"] == "DnsZone" && d["metadata"]["name"] == "acme-example")
        .unwrap();
    bad["metadata"]["name"] = json!("bad-zone");
    bad["spec"]["recordSets"] = json!([{"name": "www", "type": "A", "values": ["300.1.1.1"]}]);
    let refused = apply(&client, &bad).await.expect_err("refused");
    assert!(
        refused.to_string().contains("spec.recordSets[0].values[0]"),
        "{refused}"
    );
    // ... and anyone setting another requester
    let mut forged = documents(&names, &keys)
        .into_iter()
        .find(|d| d["kind"] == "DnsZone" && d["metadata"]["name"] == "acme-example")
        .unwrap();
    forged["metadata"]["annotations"]["dns.zentralink.net/requested-by"] = json!("bob");
    assert!(
        apply(&client, &forged).await.is_err(),
        "a forged requester is refused"
    );

    // ---- bob approves with plain ssh-keygen; the Approval object releases the change
    let out = zentralink(&[
        "approve",
        &request,
        "--key",
        keys.join("bob.pub").to_str().unwrap(),
        "--print-message",
    ])
    .output()
    .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    let message = work.path().join("message");
    std::fs::write(&message, &out.stdout).unwrap();
    let signed = Command::new("ssh-keygen")
        .args(["-q", "-Y", "sign", "-n", "zentralink-approval", "-f"])
        .arg(keys.join("bob"))
        .arg(&message)
        .output()
        .unwrap();
    assert!(signed.status.success(), "{}", text(&signed.stderr));
    let field = |name: &str| {
        text(&out.stdout)
            .lines()
            .find_map(|l| l.strip_prefix(&format!("{name}: ")).map(str::to_owned))
            .unwrap()
    };
    let approval = json!({
        "apiVersion": "dns.zentralink.net/v1alpha1", "kind": "Approval",
        "metadata": {"name": format!("{request}-bob"), "namespace": acme, "labels": {LABEL: names.id}},
        "spec": {"changeRequest": request, "planDigest": field("digest"), "approver": "bob",
                 "decision": "Approve", "createdAt": field("created"),
                 "signature": std::fs::read_to_string(work.path().join("message.sig")).unwrap()}
    });
    apply(&client, &approval).await.unwrap();
    eventually(90, "the MX change applied", || {
        let zone_file = zone_file.clone();
        async move {
            std::fs::read_to_string(&zone_file)
                .ok()?
                .contains("20 mx2.acme.example.")
                .then_some(())
        }
    })
    .await;
    let accepted = eventually(30, "the Approval accepted", || {
        let api = Api::<Approval>::namespaced(client.clone(), &acme);
        let name = format!("{request}-bob");
        async move {
            let a = api.get(&name).await.ok()?;
            let st = serde_json::to_value(a.status?).ok();
            condition(&st, "Accepted")
        }
    })
    .await;
    assert_eq!(accepted.0, "True");
    // an Approval cannot be changed after it was made
    let mut changed = approval.clone();
    changed["spec"]["decision"] = json!("Reject");
    assert!(apply(&client, &changed).await.is_err());

    // ---- clean up what the test made; the operator goes first, or it
    // would put back the finalizers removed below
    drop(operator);
    let dp = DeleteParams::default();
    let _ = Api::<ValidatingWebhookConfiguration>::all(client.clone())
        .delete(&names.id, &dp)
        .await;
    let _ = Api::<MutatingWebhookConfiguration>::all(client.clone())
        .delete(&names.id, &dp)
        .await;
    for tenant in ["acme", "globex"] {
        let _ = Api::<Tenant>::all(client.clone())
            .delete(&names.ns(tenant), &dp)
            .await;
    }
    // zones carry the operator's finalizer: their removal is a gated plan, so
    // the test lets them go by removing the finalizer itself
    for ns in [&acme, &globex] {
        let zones: Api<DnsZone> = Api::namespaced(client.clone(), ns);
        if let Ok(list) = zones.list(&Default::default()).await {
            for z in list {
                let _ = zones
                    .patch(
                        &z.name_any(),
                        &PatchParams::default(),
                        &Patch::Merge(json!({"metadata": {"finalizers": null}})),
                    )
                    .await;
            }
        }
        let _ = Api::<Namespace>::all(client.clone()).delete(ns, &dp).await;
    }
    let _ = admin
        .execute(sqlx::AssertSqlSafe(format!(
            "DROP DATABASE {db} WITH (FORCE)"
        )))
        .await;
}
