use serde_json::json;

use super::*;

fn obj<K: serde::de::DeserializeOwned>(v: serde_json::Value) -> Arc<K> {
    Arc::new(serde_json::from_value(v).unwrap_or_else(|e| panic!("{e}")))
}

fn tenant(name: &str, namespaces: &[&str]) -> Arc<Tenant> {
    obj(json!({
        "apiVersion": "dns.zentralink.net/v1alpha1", "kind": "Tenant",
        "metadata": {"name": name},
        "spec": {"displayName": name, "namespaces": namespaces, "allowedDomains": ["example."]}
    }))
}

fn policy(namespace: &str) -> Arc<TenantPolicy> {
    obj(json!({
        "apiVersion": "dns.zentralink.net/v1alpha1", "kind": "TenantPolicy",
        "metadata": {"name": "policy", "namespace": namespace},
        "spec": {"approvals": {"minApprovals": 1, "approvers": []}}
    }))
}

fn files(namespace: &str, directory: &str) -> Arc<ProviderConnection> {
    obj(json!({
        "apiVersion": "dns.zentralink.net/v1alpha1", "kind": "ProviderConnection",
        "metadata": {"name": "files", "namespace": namespace},
        "spec": {"type": "zonefile", "zonefile": {"directory": directory}, "mode": "Live", "acknowledgeLiveWrites": true}
    }))
}

fn zone(namespace: &str, requester: Option<&str>, values: &[&str]) -> DnsZone {
    let mut z: DnsZone = serde_json::from_value(json!({
        "apiVersion": "dns.zentralink.net/v1alpha1", "kind": "DnsZone",
        "metadata": {"name": "shop", "namespace": namespace, "generation": 4, "uid": "u-1",
                     "resourceVersion": "77", "finalizers": [crate::cluster::FINALIZER]},
        "spec": {"zone": "shop.example.", "providerRef": {"name": "files"},
                 "recordSets": [{"name": "www", "type": "A", "values": values}]},
        "status": {"conditions": [], "observedGeneration": 3}
    }))
    .unwrap_or_else(|e| panic!("{e}"));
    if let Some(r) = requester {
        z.metadata.annotations = Some(
            [(REQUESTER_ANNOTATION.to_owned(), r.to_owned())]
                .into_iter()
                .collect(),
        );
    }
    z
}

fn approval(namespace: &str, name: &str) -> Arc<Approval> {
    obj(json!({
        "apiVersion": "dns.zentralink.net/v1alpha1", "kind": "Approval",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"changeRequest": "shop-0123456789ab", "planDigest": format!("sha256:{}", "ab".repeat(32)),
                 "approver": "alice", "decision": "Approve", "createdAt": "2026-11-30T21:00:00Z",
                 "signature": "-----BEGIN SSH SIGNATURE-----\nU1NIU0lH\n-----END SSH SIGNATURE-----\n"}
    }))
}

fn rollback(name: &str, by_operator: bool) -> Arc<DnsChangeRequest> {
    let mut labels = serde_json::Map::new();
    if by_operator {
        labels.insert(MANAGED_BY_LABEL.into(), json!(MANAGED_BY));
    }
    obj(json!({
        "apiVersion": "dns.zentralink.net/v1alpha1", "kind": "DnsChangeRequest",
        "metadata": {"name": name, "namespace": "acme", "labels": labels},
        "spec": {"zoneRef": "shop", "rollbackTo": "6bcb470b-b65f-4469-9294-73e85c776cc7",
                 "requester": "bob@acme.example"}
    }))
}

fn acme() -> ClusterObjects {
    ClusterObjects {
        tenants: vec![
            tenant("acme", &["acme", "acme-dns"]),
            tenant("globex", &["globex"]),
        ],
        policies: vec![policy("acme-dns"), policy("globex")],
        connections: vec![files("acme", "zones"), files("globex", "/srv/globex")],
        ..ClusterObjects::default()
    }
}

#[test]
fn a_zone_is_reconciled_with_its_tenants_whole_configuration_and_nothing_of_others() {
    let revision = zone_revision(
        &acme(),
        &zone("acme", Some("alice@acme.example"), &["192.0.2.1"]),
        Path::new("/var/lib/zentralink"),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(revision.id, "kubernetes:acme/shop@4");
    assert!(revision.requesters_authenticated());
    let catalog = &revision.catalog;
    assert_eq!(catalog.zones.len(), 1);
    assert_eq!(catalog.tenants.keys().collect::<Vec<_>>(), vec!["acme"]);
    assert_eq!(
        catalog.policies.len(),
        1,
        "the policy of acme-dns, not globex's"
    );
    assert_eq!(catalog.connections.len(), 1);
    let connection = catalog
        .connections
        .values()
        .next()
        .unwrap_or_else(|| panic!());
    assert_eq!(
        connection
            .spec
            .zonefile
            .as_ref()
            .map(|z| z.directory.as_str()),
        Some("/var/lib/zentralink/zones"),
        "a relative directory resolves under the zone-file root"
    );
    assert_eq!(revision.requester("acme", "shop"), "alice@acme.example");
}

#[test]
fn a_namespace_no_tenant_owns_is_refused_with_what_to_do() {
    let err = zone_revision(
        &acme(),
        &zone("stray", None, &["192.0.2.1"]),
        Path::new("/"),
    )
    .err()
    .unwrap_or_else(|| panic!("refused"));
    assert_eq!(err.reason(), "NoTenant");
    assert!(
        err.to_string()
            .contains("list it in a Tenant's spec.namespaces")
    );
}

#[test]
fn an_invalid_zone_is_refused_with_the_validation_message() {
    let err = zone_revision(&acme(), &zone("acme", None, &["300.1.1.1"]), Path::new("/"))
        .err()
        .unwrap_or_else(|| panic!("refused"));
    assert_eq!(err.reason(), "Invalid");
    assert!(
        err.to_string().contains("spec.recordSets[0].values[0]"),
        "{err}"
    );
    assert!(err.to_string().contains("DnsZone acme/shop"), "{err}");
}

#[test]
fn a_zone_being_deleted_declares_no_record_sets() {
    let mut z = zone("acme", None, &["192.0.2.1"]);
    z.metadata.deletion_timestamp = Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(
        k8s_openapi::jiff::Timestamp::UNIX_EPOCH,
    ));
    let revision = zone_revision(&acme(), &z, Path::new("/")).unwrap_or_else(|e| panic!("{e}"));
    let entry = &revision.catalog.zones[0];
    assert_eq!(entry.desired.len(), 0, "{:?}", entry.desired);
}

#[test]
fn without_a_stamp_the_requester_is_unknown_and_never_an_approver() {
    let revision = zone_revision(&acme(), &zone("acme", None, &["192.0.2.1"]), Path::new("/"))
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(revision.requester("acme", "shop"), UNKNOWN_REQUESTER);
}

#[test]
fn approvals_of_the_namespace_and_rollbacks_people_made_are_in_the_revision() {
    let mut objects = acme();
    objects.approvals = vec![approval("acme", "a1"), approval("globex", "a2")];
    objects.change_requests = vec![rollback("back", false), rollback("shop-0123456789ab", true)];
    let revision = zone_revision(
        &objects,
        &zone("acme", None, &["192.0.2.1"]),
        Path::new("/"),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let approvals: Vec<&str> = revision
        .catalog
        .approvals
        .iter()
        .map(|a| a.name.as_str())
        .collect();
    assert_eq!(approvals, vec!["a1"]);
    let requests: Vec<&str> = revision
        .catalog
        .change_requests
        .iter()
        .map(|c| c.name.as_str())
        .collect();
    assert_eq!(
        requests,
        vec!["back"],
        "a mirrored request is not a request to open"
    );
    // the rollback's requester is what the webhook stamped on it
    let origin = &revision.catalog.change_requests[0].origin.file;
    assert_eq!(
        revision.change_of(origin).map(|c| c.author.as_str()),
        Some("bob@acme.example")
    );
}
