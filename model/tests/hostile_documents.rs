//! Documents written to mislead a reviewer or to exhaust the process: every
//! one is refused with an error naming its file, line and field, quickly, and
//! no error echoes a huge input whole.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use zentralink_model::catalog::{Catalog, parse_ssh_public_key};
use zentralink_model::diagnostics::{Diagnostics, MAX_MESSAGE_CHARS};
use zentralink_model::documents::{MAX_NESTING, SourceFile, check_object_name, parse_documents};

const TENANT: &str = "\
apiVersion: dns.zentralink.net/v1alpha1
kind: Tenant
metadata: { name: acme }
spec:
  displayName: Acme
  namespaces: [acme]
  allowedDomains: [acme.example.]
";

fn build(text: &str) -> (Catalog, Diagnostics) {
    let file = SourceFile::new("repo/acme.yaml", text);
    let (objects, mut errors) = parse_documents(&file);
    let (catalog, more) = Catalog::build(objects);
    errors.extend(more);
    (catalog, errors)
}

fn only_error(text: &str) -> zentralink_model::Diagnostic {
    let (_, errors) = build(text);
    assert_eq!(errors.len(), 1, "expected one error, got:\n{errors}");
    errors.0[0].clone()
}

// ------------------------------------------------------------ duplicate keys

#[test]
fn a_second_spec_is_refused_not_applied() {
    let text = format!(
        "{TENANT}spec:\n  displayName: Evil\n  namespaces: [acme]\n  allowedDomains: [evil.example.]\n"
    );
    let e = only_error(&text);
    assert_eq!(e.line, Some(8), "{e}");
    assert_eq!(e.path, "spec");
    assert!(e.message.contains("given twice"), "{e}");
}

#[test]
fn duplicate_keys_are_refused_at_every_level() {
    let cases = [
        // top level, in flow style and another key
        (
            "apiVersion: dns.zentralink.net/v1alpha1\nkind: Tenant\nkind: Tenant\nmetadata: { name: acme }\nspec: { displayName: A, namespaces: [acme], allowedDomains: [acme.example.] }\n",
            "kind",
            3,
        ),
        // metadata
        (
            "apiVersion: dns.zentralink.net/v1alpha1\nkind: Tenant\nmetadata:\n  name: acme\n  name: globex\nspec: { displayName: A, namespaces: [acme], allowedDomains: [acme.example.] }\n",
            "metadata.name",
            5,
        ),
        // labels (a map, not a struct)
        (
            "apiVersion: dns.zentralink.net/v1alpha1\nkind: Tenant\nmetadata:\n  name: acme\n  labels: { team: a, team: b }\nspec: { displayName: A, namespaces: [acme], allowedDomains: [acme.example.] }\n",
            "metadata.labels.team",
            5,
        ),
        // inside spec
        (
            "apiVersion: dns.zentralink.net/v1alpha1\nkind: Tenant\nmetadata: { name: acme }\nspec:\n  displayName: A\n  namespaces: [acme]\n  allowedDomains: [acme.example.]\n  allowedDomains: [evil.example.]\n",
            "spec.allowedDomains",
            8,
        ),
    ];
    for (text, path, line) in cases {
        let e = only_error(text);
        assert_eq!(e.path, path, "{e}");
        assert_eq!(e.line, Some(line), "{e}");
        assert!(e.message.contains("given twice"), "{e}");
    }
}

#[test]
fn duplicate_keys_deep_in_a_record_set_are_refused() {
    let text = format!(
        "{TENANT}---\napiVersion: dns.zentralink.net/v1alpha1\nkind: ProviderConnection\nmetadata: {{ name: files, namespace: acme }}\nspec: {{ type: zonefile, zonefile: {{ directory: z }} }}\n---\napiVersion: dns.zentralink.net/v1alpha1\nkind: DnsZone\nmetadata: {{ name: z, namespace: acme }}\nspec:\n  zone: acme.example.\n  providerRef: {{ name: files }}\n  recordSets:\n    - name: '@'\n      type: MX\n      values: ['10 mx1']\n      values: ['10 evil.example.']\n"
    );
    let e = only_error(&text);
    assert_eq!(e.path, "spec.recordSets[0].values");
    assert_eq!(e.line, Some(24), "{e}");
}

// ------------------------------------------------------------ nesting

#[test]
fn deep_nesting_is_refused_at_once() {
    for depth in [MAX_NESTING + 1, 10_000, 100_000] {
        for (open, close) in [("[", "]"), ("{a: ", "}")] {
            let text = format!(
                "{TENANT}---\napiVersion: dns.zentralink.net/v1alpha1\nkind: Tenant\nmetadata: {{ name: b }}\nspec: {}{}\n",
                open.repeat(depth),
                close.repeat(depth)
            );
            let e = only_error(&text);
            assert!(e.message.contains("nested more than 64 levels"), "{e}");
            assert_eq!(e.line, Some(12), "{e}");
        }
    }
    // block style and compact sequences, too
    let mut block = String::from(
        "apiVersion: dns.zentralink.net/v1alpha1\nkind: Tenant\nmetadata: { name: b }\nspec:\n",
    );
    for i in 0..200 {
        block.push_str(&format!("{}k{i}:\n", " ".repeat(i + 1)));
    }
    assert!(only_error(&block).message.contains("nested more than"));
    let compact = format!(
        "apiVersion: dns.zentralink.net/v1alpha1\nkind: Tenant\nmetadata: {{ name: b }}\nspec:\n  x:\n  {}a\n",
        "- ".repeat(5_000)
    );
    assert!(only_error(&compact).message.contains("nested more than"));
}

#[test]
fn ordinary_nesting_still_loads() {
    // brackets inside quoted strings do not count
    let text = TENANT.replace(
        "displayName: Acme",
        &format!("displayName: \"{}\"", "[".repeat(500)),
    );
    let (catalog, errors) = build(&text);
    assert!(errors.is_empty(), "{errors}");
    assert_eq!(catalog.tenants.len(), 1);
}

// ------------------------------------------------------------ sizes of echoed values

#[test]
fn a_huge_name_is_not_echoed_whole() {
    let name = "A".repeat(5_000_000);
    let text = TENANT.replace("name: acme }", &format!("name: {name} }}"));
    let e = only_error(&text);
    assert_eq!(e.path, "metadata.name");
    assert!(
        e.to_string().len() < 2 * MAX_MESSAGE_CHARS,
        "{} bytes",
        e.to_string().len()
    );
    assert!(e.message.contains("bytes in all"), "{}", &e.message[..200]);
}

// ------------------------------------------------------------ byte-order mark

#[test]
fn a_byte_order_mark_is_accepted() {
    let (catalog, errors) = build(&format!("\u{feff}{TENANT}"));
    assert!(errors.is_empty(), "{errors}");
    assert_eq!(catalog.tenants.len(), 1);
}

// ------------------------------------------------------------ object names

#[test]
fn object_names_follow_the_kubernetes_subdomain_rule() {
    for good in ["a", "acme", "acme.example", "a-b.c-d", "0abc", "a.b.c"] {
        assert!(check_object_name(good).is_ok(), "{good}");
    }
    for bad in [
        "a..b", "a.-b", "a-.b", ".a", "a.", "-a", "a-", "A", "a_b", "", "a b",
    ] {
        assert!(check_object_name(bad).is_err(), "{bad:?}");
    }
    assert!(check_object_name(&"a".repeat(254)).is_err());
    let e = only_error(&TENANT.replace("name: acme }", "name: a..b }"));
    assert_eq!(e.path, "metadata.name");
}

// ------------------------------------------------------------ many values

#[test]
fn many_values_in_one_record_set_load_in_linear_time() {
    let mut values = String::new();
    for i in 0..100_000u32 {
        values.push_str(&format!(
            "        - 10.{}.{}.{}\n",
            i >> 16,
            (i >> 8) & 255,
            i & 255
        ));
    }
    let text = format!(
        "{TENANT}---\napiVersion: dns.zentralink.net/v1alpha1\nkind: ProviderConnection\nmetadata: {{ name: files, namespace: acme }}\nspec: {{ type: zonefile, zonefile: {{ directory: z }} }}\n---\napiVersion: dns.zentralink.net/v1alpha1\nkind: DnsZone\nmetadata: {{ name: z, namespace: acme }}\nspec:\n  zone: acme.example.\n  providerRef: {{ name: files }}\n  recordSets:\n    - name: many\n      type: A\n      values:\n{values}        - 10.0.0.1\n"
    );
    let e = only_error(&text);
    assert_eq!(e.path, "spec.recordSets[0].values[100000]");
    assert!(e.message.contains("listed twice"), "{e}");
}

// ------------------------------------------------------------ approver keys

const ED25519: &str =
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGarNjkyjhDQo0b3u5GAWgUlf8ByEPdp46ptTtbp2+D7 alice@laptop";

#[test]
fn approver_keys_are_parsed_fully() {
    assert!(parse_ssh_public_key(ED25519).is_ok());
    let body = ED25519.split_whitespace().nth(1).unwrap();
    let truncated = format!("ssh-ed25519 {} alice", &body[..body.len() - 8]);
    let err = parse_ssh_public_key(&truncated).unwrap_err();
    assert!(
        err.contains("not a valid OpenSSH ssh-ed25519 public key"),
        "{err}"
    );
    // a body of another type under this type's name
    let mislabelled = ED25519.replace("ssh-ed25519 ", "ecdsa-sha2-nistp256 ");
    assert!(parse_ssh_public_key(&mislabelled).is_err());
    assert!(parse_ssh_public_key("ssh-dss AAAAB3NzaC1kc3M= x").is_err());
    assert!(parse_ssh_public_key("").is_err());

    let policy = format!(
        "{TENANT}---\napiVersion: dns.zentralink.net/v1alpha1\nkind: TenantPolicy\nmetadata: {{ name: policy, namespace: acme }}\nspec:\n  approvals:\n    approvers:\n      - name: alice\n        role: ADMIN\n        publicKeys: [\"{truncated}\"]\n"
    );
    let e = only_error(&policy);
    assert_eq!(e.path, "spec.approvals.approvers[0].publicKeys[0]");
    assert_eq!(e.line, Some(17), "{e}");
}

// ------------------------------------------------------------ connection URLs and credentials

fn connection(spec: &str) -> String {
    format!(
        "{TENANT}---\napiVersion: dns.zentralink.net/v1alpha1\nkind: ProviderConnection\nmetadata: {{ name: pdns, namespace: acme }}\nspec:\n{spec}"
    )
}

#[test]
fn urls_that_the_provider_would_refuse_are_refused_at_validation() {
    for (url, fragment) in [
        ("http://[::1", "not a valid URL"),
        ("http://a b/", "not a valid URL"),
        ("ftp://pdns.example", "not an http"),
        ("http://user:pw@pdns.example/", "user name or password"),
        ("http://pdns.example/?x=1", "query"),
        ("http://", "not a valid URL"),
    ] {
        let e = only_error(&connection(&format!(
            "  type: powerdns\n  powerdns: {{ url: \"{url}\" }}\n  credentials: {{ env: ZENTRALINK_CREDENTIAL_PDNS }}\n"
        )));
        assert_eq!(e.path, "spec.powerdns.url", "{url}: {e}");
        assert!(e.message.contains(fragment), "{url}: {e}");
        assert!(!e.message.contains(":pw@"), "{e}");
    }
    let e = only_error(&connection(
        "  type: hetzner\n  hetzner: { url: \"http://a b\" }\n  credentials: { env: ZENTRALINK_CREDENTIAL_H }\n",
    ));
    assert_eq!(e.path, "spec.hetzner.url");
}

#[test]
fn credentials_cannot_name_the_processs_own_variables() {
    for var in [
        "PLATFORM_ENCRYPTION_KEY",
        "DATABASE_URL",
        "CRON_TOKEN",
        "PGPASSWORD",
    ] {
        let e = only_error(&connection(&format!(
            "  type: powerdns\n  powerdns: {{ url: \"http://127.0.0.1:8081\" }}\n  credentials: {{ env: {var} }}\n"
        )));
        assert_eq!(e.path, "spec.credentials.env", "{e}");
        assert!(e.message.contains("never sent to a provider"), "{e}");
    }
}
