//! The admission webhook against a real Kubernetes API server: the CRDs of
//! `crds/` installed, the webhook served in this process with a generated
//! certificate for 127.0.0.1, registered through `clientConfig.url` with the
//! generated CA patched in by `inject_ca_bundle`, then objects created and
//! changed through the API server, which calls the webhook as it would in a
//! cluster. Uses only the API server: no pod runs, no kubelet is needed (the
//! API server must reach 127.0.0.1 of this host, so it runs here too).
//!
//! Run them with a cluster whose kubeconfig may create CRDs, namespaces and
//! webhook configurations:
//!
//! ```text
//! KUBECONFIG=~/.kube/config cargo test -p zentralink-operator --test cluster_admission -- --ignored
//! ```
//!
//! Each test makes its own namespace and webhook configurations (scoped to
//! that namespace, so nothing else in the cluster goes through them) and
//! deletes them at the end, also when it fails. The CRDs stay installed:
//! other cluster tests share them.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::future::Future;
use std::time::Duration;

use k8s_openapi::api::admissionregistration::v1::{
    MutatingWebhookConfiguration, ValidatingWebhookConfiguration,
};
use k8s_openapi::api::authentication::v1::SelfSubjectReview;
use k8s_openapi::api::core::v1::Namespace;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams};
use serde_json::{Value, json};
use zentralink_model::resources::{Approval, DnsChangeRequest, DnsZone};
use zentralink_operator::cluster::REQUESTER_ANNOTATION;
use zentralink_operator::cluster::admission::{
    AdmissionOptions, AdmissionServer, IMMUTABLE_APPROVAL, MUTATE_PATH, TlsSource, VALIDATE_PATH,
    tls,
};

const OPERATOR: &str = "system:serviceaccount:zentralink:zentralink-operator";
const FIELD_MANAGER: &str = "zentralink-cluster-tests";
const VALIDATING_WEBHOOK: &str = "validate.dns.zentralink.net";
const MUTATING_WEBHOOK: &str = "mutate.dns.zentralink.net";
const SOMEONE_ELSE: &str = "someone-else@acme.example";

/// What a test body works with.
#[derive(Clone)]
struct Cluster {
    client: kube::Client,
    namespace: String,
    /// The user the kubeconfig authenticates as.
    user: String,
}

impl Cluster {
    fn zones(&self) -> Api<DnsZone> {
        Api::namespaced(self.client.clone(), &self.namespace)
    }
    fn change_requests(&self) -> Api<DnsChangeRequest> {
        Api::namespaced(self.client.clone(), &self.namespace)
    }
    fn approvals(&self) -> Api<Approval> {
        Api::namespaced(self.client.clone(), &self.namespace)
    }
}

/// Sets up the webhook for one test, runs `body`, and removes all it made.
async fn with_webhook<F, Fut>(test: &str, body: F)
where
    F: FnOnce(Cluster) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    if std::env::var_os("KUBECONFIG").is_none() {
        panic!(
            "KUBECONFIG is not set: point it at a cluster (an API server on this host is enough) and run \
             `KUBECONFIG=... cargo test -p zentralink-operator --test cluster_admission -- --ignored`"
        );
    }
    zentralink_providers::install_tls_provider();
    let client = kube::Client::try_default()
        .await
        .expect("cannot connect with KUBECONFIG");
    install_crds(&client).await;
    let user = whoami(&client).await;
    assert_ne!(
        user, OPERATOR,
        "run the tests as a user other than the operator"
    );

    let server = AdmissionServer::bind(
        AdmissionOptions {
            listen: "127.0.0.1:0".parse().unwrap(),
            tls: TlsSource::Generate {
                service: "zentralink-webhook".into(),
                namespace: "zentralink".into(),
                extra_sans: vec!["127.0.0.1".into(), "localhost".into()],
                webhook_configs: Vec::new(),
            },
            operator_user: OPERATOR.into(),
        },
        None,
    )
    .await
    .unwrap();
    let port = server.local_addr().unwrap().port();
    let ca = server.ca_bundle().unwrap().to_owned();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let serving = tokio::spawn(server.run(async move {
        let _ = stopped.await;
    }));

    let suffix = uuid::Uuid::new_v4().simple().to_string();
    let namespace = format!("zl-admission-{test}-{}", &suffix[..8]);
    let namespaces: Api<Namespace> = Api::all(client.clone());
    namespaces
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({ "metadata": { "name": namespace } })).unwrap(),
        )
        .await
        .unwrap();
    create_webhook_configurations(&client, &namespace, port).await;
    let patched = tls::inject_ca_bundle(&client, std::slice::from_ref(&namespace), &ca)
        .await
        .unwrap();
    assert_eq!(patched, 2, "both configurations get the CA");
    assert_eq!(
        tls::inject_ca_bundle(&client, std::slice::from_ref(&namespace), &ca)
            .await
            .unwrap(),
        0,
        "a bundle already in place is not written again"
    );

    let cluster = Cluster {
        client: client.clone(),
        namespace: namespace.clone(),
        user,
    };
    wait_until_called(&cluster).await;
    let outcome = tokio::spawn(body(cluster)).await;

    // clean up, also after a failure
    let dp = DeleteParams::default();
    let validating: Api<ValidatingWebhookConfiguration> = Api::all(client.clone());
    let mutating: Api<MutatingWebhookConfiguration> = Api::all(client.clone());
    let _ = validating.delete(&namespace, &dp).await;
    let _ = mutating.delete(&namespace, &dp).await;
    let lp = ListParams::default();
    let _ = Api::<DnsZone>::namespaced(client.clone(), &namespace)
        .delete_collection(&dp, &lp)
        .await;
    let _ = Api::<DnsChangeRequest>::namespaced(client.clone(), &namespace)
        .delete_collection(&dp, &lp)
        .await;
    let _ = Api::<Approval>::namespaced(client.clone(), &namespace)
        .delete_collection(&dp, &lp)
        .await;
    // without a controller manager the namespace stays Terminating: not waited for
    let _ = namespaces.delete(&namespace, &dp).await;
    let _ = stop.send(());
    let _ = tokio::time::timeout(Duration::from_secs(15), serving).await;

    if let Err(e) = outcome {
        std::panic::resume_unwind(e.into_panic());
    }
}

/// The CRDs of `crds/`, by server-side apply, until each is Established.
async fn install_crds(client: &kube::Client) {
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../crds");
    let mut names = Vec::new();
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_none_or(|e| e != "yaml") {
            continue;
        }
        let crd: Value = serde_yaml::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        let name = crd["metadata"]["name"].as_str().unwrap().to_owned();
        crds.patch(
            &name,
            &PatchParams::apply(FIELD_MANAGER).force(),
            &Patch::Apply(crd),
        )
        .await
        .unwrap_or_else(|e| panic!("cannot install the CRD {name}: {e}"));
        names.push(name);
    }
    assert_eq!(names.len(), 7, "seven CRDs in crds/");
    for name in names {
        eventually(&format!("the CRD {name} to be established"), || {
            let crds = crds.clone();
            let name = name.clone();
            async move {
                let crd = crds.get(&name).await.ok()?;
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

/// The user the kubeconfig authenticates as, as the API server sees it.
async fn whoami(client: &kube::Client) -> String {
    let reviews: Api<SelfSubjectReview> = Api::all(client.clone());
    let review = reviews
        .create(&PostParams::default(), &SelfSubjectReview::default())
        .await
        .expect("SelfSubjectReview (Kubernetes 1.28 and later) tells who the tests run as");
    review
        .status
        .and_then(|s| s.user_info)
        .and_then(|u| u.username)
        .expect("the API server names the test's user")
}

/// Both configurations, named after the namespace, sending only that
/// namespace's objects to the webhook at 127.0.0.1, without a caBundle yet.
async fn create_webhook_configurations(client: &kube::Client, namespace: &str, port: u16) {
    let webhook = |name: &str, path: &str| {
        json!({
            "name": name,
            "clientConfig": { "url": format!("https://127.0.0.1:{port}{path}") },
            "rules": [{
                "apiGroups": ["dns.zentralink.net"],
                "apiVersions": ["v1alpha1"],
                "operations": ["CREATE", "UPDATE"],
                "resources": ["tenants", "tenantpolicies", "providerconnections", "dnszones", "dnschangerequests", "approvals"],
                "scope": "Namespaced"
            }],
            "namespaceSelector": { "matchLabels": { "kubernetes.io/metadata.name": namespace } },
            "failurePolicy": "Fail",
            "sideEffects": "None",
            "admissionReviewVersions": ["v1"],
            "timeoutSeconds": 10
        })
    };
    let validating: ValidatingWebhookConfiguration = serde_json::from_value(json!({
        "metadata": { "name": namespace },
        "webhooks": [webhook(VALIDATING_WEBHOOK, VALIDATE_PATH)]
    }))
    .unwrap();
    let mut mutating_hook = webhook(MUTATING_WEBHOOK, MUTATE_PATH);
    mutating_hook["reinvocationPolicy"] = json!("Never");
    let mutating: MutatingWebhookConfiguration = serde_json::from_value(json!({
        "metadata": { "name": namespace },
        "webhooks": [mutating_hook]
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

/// The API server takes a moment to see new webhook configurations and
/// their CA: dry-run creates show when both webhooks answer.
async fn wait_until_called(cluster: &Cluster) {
    let dry_run = PostParams {
        dry_run: true,
        ..PostParams::default()
    };
    eventually("the validating webhook to be called", || {
        let zones = cluster.zones();
        let dry_run = dry_run.clone();
        async move {
            match zones.create(&dry_run, &zone("probe", &["300.1.1.1"])).await {
                Err(kube::Error::Api(e)) if e.message.contains("is not an IPv4 address") => {
                    Some(())
                }
                _ => None,
            }
        }
    })
    .await;
    eventually("the mutating webhook to be called", || {
        let zones = cluster.zones();
        let dry_run = dry_run.clone();
        async move {
            let created = zones
                .create(&dry_run, &zone("probe", &["192.0.2.1"]))
                .await
                .ok()?;
            requester_of(&created).map(|_| ())
        }
    })
    .await;
}

async fn eventually<F, Fut>(what: &str, mut probe: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<()>>,
{
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        if probe().await.is_some() {
            return;
        }
        if tokio::time::Instant::now() > deadline {
            panic!("waited 60 s for {what}");
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

fn zone(name: &str, values: &[&str]) -> DnsZone {
    serde_json::from_value(json!({
        "apiVersion": "dns.zentralink.net/v1alpha1",
        "kind": "DnsZone",
        "metadata": { "name": name },
        "spec": {
            "zone": "acme.example.",
            // created later, or never: a cross-reference admission does not judge
            "providerRef": { "name": "created-later" },
            "recordSets": [ { "name": "www", "type": "A", "values": values } ]
        }
    }))
    .unwrap()
}

fn requester_of(zone: &DnsZone) -> Option<String> {
    zone.metadata
        .annotations
        .as_ref()?
        .get(REQUESTER_ANNOTATION)
        .cloned()
}

/// The API server's refusal of a request the test expected refused.
fn refusal<T: std::fmt::Debug>(result: Result<T, kube::Error>) -> kube::core::Status {
    match result {
        Err(kube::Error::Api(e)) => *e,
        other => panic!("expected a refusal from the API server, got {other:?}"),
    }
}

#[tokio::test]
#[ignore = "needs cluster: set KUBECONFIG"]
async fn an_invalid_zone_is_refused_with_the_validation_message() {
    with_webhook("invalid", |cluster| async move {
        let e = refusal(
            cluster
                .zones()
                .create(&PostParams::default(), &zone("bad", &["192.0.2.1", "300.1.1.1"]))
                .await,
        );
        assert_eq!(e.code, 422, "{e:?}");
        let expected = format!(
            "admission webhook \"{VALIDATING_WEBHOOK}\" denied the request: DnsZone {}/bad is invalid: spec.recordSets[0].values[1]: \"300.1.1.1\" is not an IPv4 address",
            cluster.namespace
        );
        assert_eq!(e.message, expected);
        // nothing was stored
        assert!(cluster.zones().get_opt("bad").await.unwrap().is_none());
    })
    .await;
}

#[tokio::test]
#[ignore = "needs cluster: set KUBECONFIG"]
async fn a_valid_zone_is_admitted_stamped_with_its_creator() {
    with_webhook("stamp", |cluster| async move {
        let zones = cluster.zones();
        let created = zones
            .create(&PostParams::default(), &zone("good", &["192.0.2.1"]))
            .await
            .expect("a valid zone whose connection is not created yet is admitted");
        assert_eq!(
            requester_of(&created).as_deref(),
            Some(cluster.user.as_str())
        );

        // a metadata-only change that drops the annotation: it is put back
        let stored = zones
            .patch(
                "good",
                &PatchParams::default(),
                &Patch::Merge(json!({ "metadata": {
                    "labels": { "team": "dns" },
                    "annotations": { REQUESTER_ANNOTATION: null }
                } })),
            )
            .await
            .unwrap();
        assert_eq!(
            requester_of(&stored).as_deref(),
            Some(cluster.user.as_str())
        );
        assert_eq!(
            stored
                .metadata
                .labels
                .unwrap_or_default()
                .get("team")
                .map(String::as_str),
            Some("dns")
        );

        // a spec change by the same user keeps them the requester
        let changed = zones
            .patch(
                "good",
                &PatchParams::default(),
                &Patch::Merge(json!({ "spec": { "defaultTtl": 600 } })),
            )
            .await
            .unwrap();
        assert_eq!(
            requester_of(&changed).as_deref(),
            Some(cluster.user.as_str())
        );

        // a change request gets spec.requester
        let change_request: DnsChangeRequest = serde_json::from_value(json!({
            "apiVersion": "dns.zentralink.net/v1alpha1",
            "kind": "DnsChangeRequest",
            "metadata": { "name": "rollback" },
            "spec": { "zoneRef": "good", "rollbackTo": "8c5b4c1e-0a7e-4f57-9a59-2d3c9e6f1b20" }
        }))
        .unwrap();
        let created = cluster
            .change_requests()
            .create(&PostParams::default(), &change_request)
            .await
            .unwrap();
        assert_eq!(
            created.spec.requester.as_deref(),
            Some(cluster.user.as_str())
        );
    })
    .await;
}

#[tokio::test]
#[ignore = "needs cluster: set KUBECONFIG"]
async fn claiming_someone_else_as_requester_is_refused() {
    with_webhook("claim", |cluster| async move {
        let mut claimed = zone("claimed", &["192.0.2.1"]);
        claimed.metadata.annotations = Some(
            [(REQUESTER_ANNOTATION.to_owned(), SOMEONE_ELSE.to_owned())]
                .into_iter()
                .collect(),
        );
        let e = refusal(cluster.zones().create(&PostParams::default(), &claimed).await);
        assert_eq!(e.code, 403, "{e:?}");
        assert!(
            e.message.starts_with(&format!(
                "admission webhook \"{MUTATING_WEBHOOK}\" denied the request: the annotation {REQUESTER_ANNOTATION} is set to \"{SOMEONE_ELSE}\", but you are "
            )),
            "{e:?}"
        );

        // nor on a zone that exists, nor through spec.requester
        cluster
            .zones()
            .create(&PostParams::default(), &zone("mine", &["192.0.2.1"]))
            .await
            .unwrap();
        let e = refusal(
            cluster
                .zones()
                .patch(
                    "mine",
                    &PatchParams::default(),
                    &Patch::Merge(json!({ "metadata": { "annotations": { REQUESTER_ANNOTATION: SOMEONE_ELSE } } })),
                )
                .await,
        );
        assert_eq!(e.code, 403, "{e:?}");
        let change_request: DnsChangeRequest = serde_json::from_value(json!({
            "apiVersion": "dns.zentralink.net/v1alpha1",
            "kind": "DnsChangeRequest",
            "metadata": { "name": "rollback" },
            "spec": {
                "zoneRef": "mine",
                "rollbackTo": "8c5b4c1e-0a7e-4f57-9a59-2d3c9e6f1b20",
                "requester": SOMEONE_ELSE
            }
        }))
        .unwrap();
        let e = refusal(
            cluster
                .change_requests()
                .create(&PostParams::default(), &change_request)
                .await,
        );
        assert!(e.message.contains("spec.requester is set to"), "{e:?}");
    })
    .await;
}

#[tokio::test]
#[ignore = "needs cluster: set KUBECONFIG"]
async fn an_approval_cannot_be_changed_only_relabelled() {
    with_webhook("approval", |cluster| async move {
        let approval: Approval = serde_json::from_value(json!({
            "apiVersion": "dns.zentralink.net/v1alpha1",
            "kind": "Approval",
            "metadata": { "name": "alice-approves" },
            "spec": {
                "changeRequest": "acme-example-0000000",
                "planDigest": "sha256:0000000000000000000000000000000000000000000000000000000000000000",
                "approver": "alice",
                "decision": "Approve",
                "createdAt": "2026-03-01T12:00:00Z",
                "signature": "-----BEGIN SSH SIGNATURE-----\nU1NIU0lH\n-----END SSH SIGNATURE-----\n"
            }
        }))
        .unwrap();
        let approvals = cluster.approvals();
        approvals
            .create(&PostParams::default(), &approval)
            .await
            .expect("an approval of a change request not created yet is admitted");
        let e = refusal(
            approvals
                .patch(
                    "alice-approves",
                    &PatchParams::default(),
                    &Patch::Merge(json!({ "spec": { "decision": "Reject" } })),
                )
                .await,
        );
        assert_eq!(
            e.message,
            format!("admission webhook \"{VALIDATING_WEBHOOK}\" denied the request: {IMMUTABLE_APPROVAL}")
        );
        let relabelled = approvals
            .patch(
                "alice-approves",
                &PatchParams::default(),
                &Patch::Merge(json!({ "metadata": { "labels": { "reviewed": "yes" } } })),
            )
            .await
            .expect("a metadata-only change of an approval passes");
        assert_eq!(relabelled.spec.decision, approval.spec.decision);
    })
    .await;
}
