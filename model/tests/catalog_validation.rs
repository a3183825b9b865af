//! Validation across documents: every refused case gives its own error with file, line and path.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use zentralink_model::catalog::Catalog;
use zentralink_model::diagnostics::Diagnostics;
use zentralink_model::documents::{SourceFile, parse_documents};

const BASE: &str = "\
apiVersion: dns.zentralink.net/v1alpha1
kind: Tenant
metadata: { name: acme }
spec:
  displayName: Acme
  namespaces: [acme]
  allowedDomains: [acme.example.]
---
apiVersion: dns.zentralink.net/v1alpha1
kind: ProviderConnection
metadata: { name: files, namespace: acme }
spec:
  type: zonefile
  zonefile: { directory: zones }
";

fn zone(record_sets: &str) -> String {
    format!(
        "---\napiVersion: dns.zentralink.net/v1alpha1\nkind: DnsZone\nmetadata: {{ name: acme, namespace: acme }}\nspec:\n  zone: acme.example.\n  providerRef: {{ name: files }}\n  recordSets:\n{record_sets}"
    )
}

fn build(text: &str) -> (Catalog, Diagnostics) {
    let file = SourceFile::new("repo/acme.yaml", text);
    let (objects, mut errors) = parse_documents(&file);
    let (catalog, more) = Catalog::build(objects);
    errors.extend(more);
    (catalog, errors)
}

/// Builds BASE + extra and expects exactly one error at `path` containing `fragment`; returns its line.
fn one_error(extra: &str, path: &str, fragment: &str) -> Option<usize> {
    let (_, errors) = build(&format!("{BASE}{extra}"));
    assert_eq!(errors.len(), 1, "expected one error, got:\n{errors}");
    let e = &errors.0[0];
    assert_eq!(e.path, path, "{e}");
    assert!(e.message.contains(fragment), "expected {fragment:?} in {e}");
    assert_eq!(e.file, "repo/acme.yaml");
    e.line
}

#[test]
fn a_valid_zone_builds() {
    let (catalog, errors) = build(&format!(
        "{BASE}{}",
        zone(
            "    - { name: www, type: A, values: [192.0.2.1] }\n    - { name: '@', type: MX, values: ['10 mx1'] }\n"
        )
    ));
    assert!(errors.is_empty(), "{errors}");
    assert_eq!(catalog.zones.len(), 1);
    assert_eq!(catalog.zones[0].desired.len(), 2);
    assert_eq!(catalog.zones[0].tenant, "acme");
}

#[test]
fn invalid_ipv4_names_file_line_and_value() {
    let line = one_error(
        &zone(
            "    - name: www\n      type: A\n      values:\n        - 192.0.2.1\n        - 300.1.1.1\n",
        ),
        "spec.recordSets[0].values[1]",
        "\"300.1.1.1\" is not an IPv4 address",
    );
    assert_eq!(line, Some(27));
}

#[test]
fn cname_at_apex() {
    one_error(
        &zone("    - { name: '@', type: CNAME, values: [other.example.] }\n"),
        "spec.recordSets[0]",
        "CNAME cannot be at the zone apex",
    );
}

#[test]
fn cname_beside_other_data() {
    one_error(
        &zone(
            "    - { name: www, type: A, values: [192.0.2.1] }\n    - { name: www, type: CNAME, values: [x.acme.example.] }\n",
        ),
        "spec.recordSets[1]",
        "CNAME cannot stand beside other data",
    );
}

#[test]
fn name_outside_the_zone() {
    one_error(
        &zone("    - { name: www.other.example., type: A, values: [192.0.2.1] }\n"),
        "spec.recordSets[0].name",
        "outside the zone",
    );
}

#[test]
fn zone_outside_allowed_domains() {
    let text = zone("    - { name: www, type: A, values: [192.0.2.1] }\n")
        .replace("zone: acme.example.", "zone: evil.example.");
    one_error(
        &text,
        "spec.zone",
        "not under tenant \"acme\"'s allowedDomains",
    );
}

#[test]
fn mx_target_that_is_an_address() {
    one_error(
        &zone("    - { name: '@', type: MX, values: ['10 192.0.2.1'] }\n"),
        "spec.recordSets[0].values[0]",
        "IP address",
    );
}

#[test]
fn ttl_out_of_bounds() {
    one_error(
        &zone("    - { name: www, type: A, ttl: 0, values: [192.0.2.1] }\n"),
        "spec.recordSets[0].ttl",
        "out of bounds",
    );
}

#[test]
fn txt_that_cannot_be_encoded() {
    one_error(
        &zone("    - { name: www, type: TXT, values: ['\"unterminated'] }\n"),
        "spec.recordSets[0].values[0]",
        "not valid TXT data",
    );
}

#[test]
fn duplicate_record_set() {
    one_error(
        &zone(
            "    - { name: www, type: A, values: [192.0.2.1] }\n    - { name: WWW.acme.example., type: a, values: [192.0.2.2] }\n",
        ),
        "spec.recordSets[1]",
        "duplicate record set www A",
    );
}

#[test]
fn duplicate_value() {
    one_error(
        &zone("    - { name: www, type: A, values: [192.0.2.1, 192.0.2.1] }\n"),
        "spec.recordSets[0].values[1]",
        "listed twice",
    );
}

#[test]
fn empty_values() {
    one_error(
        &zone("    - { name: www, type: A, values: [] }\n"),
        "spec.recordSets[0].values",
        "at least one value",
    );
}

#[test]
fn missing_provider() {
    let text = zone("    - { name: www, type: A, values: [192.0.2.1] }\n")
        .replace("name: files }", "name: nope }");
    one_error(
        &text,
        "spec.providerRef.name",
        "no valid ProviderConnection \"nope\"",
    );
}

#[test]
fn duplicate_objects() {
    let z = zone("    - { name: www, type: A, values: [192.0.2.1] }\n");
    one_error(
        &format!("{z}{z}"),
        "metadata.name",
        "duplicate DnsZone acme/acme: already declared at repo/acme.yaml:16",
    );
}

#[test]
fn two_tenants_can_never_manage_the_same_zone() {
    let other = "---\napiVersion: dns.zentralink.net/v1alpha1\nkind: Tenant\nmetadata: { name: globex }\nspec: { displayName: Globex, namespaces: [globex], allowedDomains: [example.] }\n---\napiVersion: dns.zentralink.net/v1alpha1\nkind: ProviderConnection\nmetadata: { name: files, namespace: globex }\nspec: { type: zonefile, zonefile: { directory: z } }\n";
    let z = zone("    - { name: www, type: A, values: [192.0.2.1] }\n");
    let theirs = z
        .replace("namespace: acme", "namespace: globex")
        .replace("name: acme,", "name: stolen,");
    one_error(
        &format!("{other}{z}{theirs}"),
        "spec.zone",
        "already managed by DnsZone",
    );
}

#[test]
fn namespace_without_tenant() {
    let z = zone("    - { name: www, type: A, values: [192.0.2.1] }\n")
        .replace("namespace: acme", "namespace: nobody");
    one_error(&z, "metadata.namespace", "belongs to no Tenant");
}

#[test]
fn namespace_claimed_twice() {
    let t = "---\napiVersion: dns.zentralink.net/v1alpha1\nkind: Tenant\nmetadata: { name: other }\nspec: { displayName: O, namespaces: [acme], allowedDomains: [other.example.] }\n";
    one_error(
        t,
        "spec.namespaces[0]",
        "already belongs to tenant \"acme\"",
    );
}

#[test]
fn plain_credentials_are_refused() {
    let c = "---\napiVersion: dns.zentralink.net/v1alpha1\nkind: ProviderConnection\nmetadata: { name: pdns, namespace: acme }\nspec:\n  type: powerdns\n  powerdns: { url: 'http://127.0.0.1:8081' }\n  credentials: { value: hunter2 }\n";
    let (_, errors) = build(&format!("{BASE}{c}"));
    assert_eq!(errors.len(), 1, "{errors}");
    assert_eq!(errors.0[0].path, "spec.credentials.value");
    assert!(
        !errors.to_string().contains("hunter2"),
        "a secret must never be echoed"
    );
}

#[test]
fn connection_blocks_must_match_the_type() {
    let c = "---\napiVersion: dns.zentralink.net/v1alpha1\nkind: ProviderConnection\nmetadata: { name: pdns, namespace: acme }\nspec:\n  type: powerdns\n  zonefile: { directory: x }\n  credentials: { env: PDNS_KEY }\n";
    let (_, errors) = build(&format!("{BASE}{c}"));
    let paths: Vec<&str> = errors.iter().map(|e| e.path.as_str()).collect();
    assert_eq!(paths, vec!["spec.powerdns", "spec.zonefile"], "{errors}");
}

#[test]
fn policy_that_can_never_be_satisfied() {
    let p = "---\napiVersion: dns.zentralink.net/v1alpha1\nkind: TenantPolicy\nmetadata: { name: policy, namespace: acme }\nspec:\n  approvals:\n    minApprovals: 2\n    approvers:\n      - name: alice\n        role: ADMIN\n        publicKeys: ['ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGVKLmvqNnS7P1d2Xc0pB0hHZZ2kM5jU6G0M4cXtZ5uY alice']\n";
    one_error(p, "spec.approvals.minApprovals", "only 1 approver(s)");
}

#[test]
fn policy_field_errors() {
    let p = "---\napiVersion: dns.zentralink.net/v1alpha1\nkind: TenantPolicy\nmetadata: { name: policy, namespace: acme }\nspec:\n  approvals:\n    requiredFor: { recordTypes: [MX, BOGUS] }\n    approverRoles: [OWNER, KING]\n    expiresAfter: soon\n    approvers:\n      - { name: bob, role: OWNER, publicKeys: ['ssh-ed25519 notbase64!'] }\n";
    let (_, errors) = build(&format!("{BASE}{p}"));
    let paths: Vec<&str> = errors.iter().map(|e| e.path.as_str()).collect();
    assert_eq!(
        paths,
        vec![
            "spec.approvals.requiredFor.recordTypes[1]",
            "spec.approvals.approverRoles[1]",
            "spec.approvals.expiresAfter",
            "spec.approvals.approvers[0].publicKeys[0]",
        ],
        "{errors}"
    );
}

#[test]
fn every_error_is_reported_not_only_the_first() {
    let (_, errors) = build(&format!(
        "{BASE}{}",
        zone(
            "    - { name: a, type: A, values: [300.1.1.1] }\n    - { name: b, type: AAAA, values: [192.0.2.1] }\n    - { name: c, type: BOGUS, values: [x] }\n"
        )
    ));
    assert_eq!(errors.len(), 3, "{errors}");
}

#[test]
fn references_from_change_requests_and_snapshots() {
    let s = "---\napiVersion: dns.zentralink.net/v1alpha1\nkind: DnsSnapshot\nmetadata: { name: snap, namespace: acme }\nspec: { zoneRef: nope }\n";
    one_error(s, "spec.zoneRef", "no valid DnsZone \"nope\"");
    let a = "---\napiVersion: dns.zentralink.net/v1alpha1\nkind: Approval\nmetadata: { name: ok, namespace: acme }\nspec: { changeRequest: cr, planDigest: 'sha256:00', approver: alice, decision: Approve, signature: x, createdAt: yesterday }\n";
    let (_, errors) = build(&format!("{BASE}{a}"));
    let paths: Vec<&str> = errors.iter().map(|e| e.path.as_str()).collect();
    assert_eq!(
        paths,
        vec!["spec.planDigest", "spec.signature", "spec.createdAt"],
        "{errors}"
    );
}

#[test]
fn a_committed_rollback_names_a_snapshot_id() {
    let zone = zone("    - { name: a, type: A, values: [192.0.2.1] }\n");
    let rollback = |to: &str| {
        format!(
            "---\napiVersion: dns.zentralink.net/v1alpha1\nkind: DnsChangeRequest\nmetadata: {{ name: back, namespace: acme }}\nspec: {{ zoneRef: acme, rollbackTo: '{to}' }}\n"
        )
    };
    one_error(
        &format!("{zone}{}", rollback("last-tuesday")),
        "spec.rollbackTo",
        "is not a snapshot id",
    );
    let (catalog, errors) = build(&format!(
        "{BASE}{zone}{}",
        rollback("6bcb470b-b65f-4469-9294-73e85c776cc7")
    ));
    assert!(errors.is_empty(), "{errors}");
    assert_eq!(catalog.change_requests.len(), 1);
}

#[test]
fn huge_zone_validates() {
    let mut sets = String::new();
    for i in 0..20_000 {
        sets.push_str(&format!(
            "    - {{ name: host-{i}, type: A, values: [192.0.2.{}] }}\n",
            i % 250 + 1
        ));
    }
    let (catalog, errors) = build(&format!("{BASE}{}", zone(&sets)));
    assert!(errors.is_empty(), "{errors}");
    assert_eq!(catalog.zones[0].desired.len(), 20_000);
}
