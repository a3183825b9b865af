//! `check_object`: one object validated alone, as the admission webhook
//! does. It refuses what `Catalog::build` refuses about the object itself,
//! with the same messages, and nothing that needs another object.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;

use zentralink_model::catalog::{Catalog, check_object};
use zentralink_model::diagnostics::Diagnostics;
use zentralink_model::documents::{LoadedObject, SourceFile, parse_documents};

fn load(text: &str) -> Vec<LoadedObject> {
    let (objects, errors) = parse_documents(&SourceFile::new("object.yaml", text));
    assert!(errors.is_empty(), "{errors}");
    objects
}

fn check_one(text: &str) -> Diagnostics {
    let mut objects = load(text);
    assert_eq!(objects.len(), 1, "one object expected");
    check_object(objects.remove(0))
}

/// `path: message` of each error, as admission shows them.
fn shown(errors: &Diagnostics) -> Vec<String> {
    errors
        .iter()
        .map(|d| format!("{}: {}", d.path, d.message))
        .collect()
}

const ZONE: &str = "\
apiVersion: dns.zentralink.net/v1alpha1
kind: DnsZone
metadata: { name: acme, namespace: acme }
spec:
  zone: acme.example.
  providerRef: { name: not-created-yet }
  recordSets:
    - { name: www, type: A, values: [192.0.2.1] }
";

#[test]
fn a_zone_whose_connection_does_not_exist_yet_is_valid_alone() {
    let errors = check_one(ZONE);
    assert!(errors.is_empty(), "{errors}");
    // the whole-source validation does refuse it (no tenant, no connection)
    let (_, errors) = Catalog::build(load(ZONE));
    assert!(!errors.is_empty());
}

#[test]
fn a_bad_record_value_is_refused_with_its_field_path() {
    let text = ZONE.replace("192.0.2.1", "300.1.1.1");
    let errors = check_one(&text);
    assert_eq!(
        shown(&errors),
        ["spec.recordSets[0].values[0]: \"300.1.1.1\" is not an IPv4 address"]
    );
}

#[test]
fn zone_rules_are_checked_alone() {
    let text = ZONE.replace(
        "    - { name: www, type: A, values: [192.0.2.1] }\n",
        "    - { name: www, type: A, values: [192.0.2.1] }\n    - { name: www, type: CNAME, values: [web.acme.example.] }\n    - { name: www, type: A, values: [192.0.2.2] }\n",
    );
    let errors = shown(&check_one(&text));
    assert_eq!(errors.len(), 2, "{errors:?}");
    assert!(errors[0].starts_with("spec.recordSets[2]: duplicate record set www A"));
    assert!(errors[1].contains("CNAME"), "{errors:?}");
}

#[test]
fn a_zone_outside_any_tenant_is_not_judged_alone() {
    // allowed domains belong to the tenant: another object
    let text = ZONE.replace("zone: acme.example.", "zone: other.example.");
    assert!(check_one(&text).is_empty());
}

#[test]
fn connection_settings_and_credentials_are_checked_alone() {
    let text = "\
apiVersion: dns.zentralink.net/v1alpha1
kind: ProviderConnection
metadata: { name: pdns, namespace: acme }
spec:
  type: powerdns
  powerdns: { url: \"ftp://pdns\" }
  credentials: { value: plain-secret }
";
    let errors = shown(&check_one(text));
    assert_eq!(errors.len(), 2, "{errors:?}");
    assert!(errors[0].starts_with("spec.powerdns.url: "), "{errors:?}");
    assert!(
        errors[1]
            .starts_with("spec.credentials.value: credentials in a manifest must be encrypted"),
        "{errors:?}"
    );
}

#[test]
fn policy_fields_are_checked_alone() {
    let text = "\
apiVersion: dns.zentralink.net/v1alpha1
kind: TenantPolicy
metadata: { name: policy, namespace: acme }
spec:
  approvals:
    minApprovals: 0
    approverRoles: [OWNER, CHIEF]
    expiresAfter: soon
";
    let errors = shown(&check_one(text));
    assert_eq!(errors.len(), 3, "{errors:?}");
    assert!(errors[0].starts_with("spec.approvals.minApprovals: minApprovals must be at least 1"));
    assert!(errors[1].starts_with("spec.approvals.approverRoles[1]: "));
    assert!(errors[2].starts_with("spec.approvals.expiresAfter: "));
}

#[test]
fn a_tenant_is_checked_alone() {
    let text = "\
apiVersion: dns.zentralink.net/v1alpha1
kind: Tenant
metadata: { name: acme }
spec: { displayName: \" \", namespaces: [Acme], allowedDomains: [] }
";
    let errors = shown(&check_one(text));
    assert_eq!(errors.len(), 3, "{errors:?}");
    assert!(errors[0].starts_with("spec.displayName: "));
    assert!(errors[1].starts_with("spec.allowedDomains: "));
    assert!(errors[2].starts_with("spec.namespaces[0]: "));
}

#[test]
fn change_requests_snapshots_and_approvals_need_no_zone_alone() {
    let change_request = "\
apiVersion: dns.zentralink.net/v1alpha1
kind: DnsChangeRequest
metadata: { name: rollback, namespace: acme }
spec: { zoneRef: not-created-yet, rollbackTo: yesterday }
";
    assert_eq!(
        shown(&check_one(change_request)),
        [
            "spec.rollbackTo: \"yesterday\" is not a snapshot id (a UUID, as `zentralink snapshot list ZONE` prints it)"
        ]
    );
    let snapshot = "\
apiVersion: dns.zentralink.net/v1alpha1
kind: DnsSnapshot
metadata: { name: before-migration, namespace: acme }
spec: { zoneRef: not-created-yet }
";
    assert!(check_one(snapshot).is_empty());
    let approval = "\
apiVersion: dns.zentralink.net/v1alpha1
kind: Approval
metadata: { name: alice, namespace: acme }
spec:
  changeRequest: not-created-yet
  planDigest: sha256:1234
  approver: alice
  decision: Approve
  createdAt: 2026-11-30T21:00:00Z
  signature: unsigned
";
    let errors = shown(&check_one(approval));
    assert_eq!(errors.len(), 2, "{errors:?}");
    assert!(errors[0].starts_with("spec.planDigest: "));
    assert!(errors[1].starts_with("spec.signature: "));
}

/// Every example object is valid alone.
#[test]
fn every_example_object_is_valid_alone() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples");
    let mut checked = 0;
    for dir in ["tenants", "acme", "globex"] {
        let mut files: Vec<_> = std::fs::read_dir(root.join(dir))
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
            .collect();
        files.sort();
        for file in files {
            let text = std::fs::read_to_string(&file).unwrap();
            for object in load(&text) {
                let errors = check_object(object);
                assert!(errors.is_empty(), "{}: {errors}", file.display());
                checked += 1;
            }
        }
    }
    assert!(checked >= 10, "only {checked} example objects found");
}

/// What an object alone is refused for, the whole source is refused for too,
/// with the same message: check_object runs a part of Catalog::build, never
/// a rule of its own.
#[test]
fn errors_alone_are_a_part_of_the_source_errors() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/invalid");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    files.sort();
    let mut alone_total = 0;
    for file in files {
        let text = std::fs::read_to_string(&file).unwrap();
        let (objects, _) = parse_documents(&SourceFile::new("fixture.yaml", text.as_str()));
        let (_, whole) = Catalog::build(objects.clone());
        for object in objects {
            for error in check_object(object).iter() {
                alone_total += 1;
                assert!(
                    whole.iter().any(|w| w == error),
                    "{}: {error} is not among the source's errors:\n{whole}",
                    file.display()
                );
            }
        }
    }
    // the fixtures with object-local errors (values, TTLs, zone rules...) found some
    assert!(
        alone_total >= 6,
        "only {alone_total} object-local errors found"
    );
}
