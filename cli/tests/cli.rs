//! The `zentralink` binary end to end: validate, plan (text, markdown, json,
//! exit codes) and crds, on `examples/` and on small repositories made here.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn zentralink(args: &[&str], cwd: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_zentralink"))
        .args(args)
        .current_dir(cwd)
        .env("NO_COLOR", "1")
        .env_remove("DATABASE_URL")
        .env_remove("PLATFORM_ENCRYPTION_KEY")
        .output()
        .unwrap()
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

#[test]
fn examples_are_valid() {
    let out = zentralink(&["validate", "examples"], &repo_root());
    assert!(
        out.status.success(),
        "{}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    assert!(
        text(&out.stdout).starts_with("valid: 2 tenant(s)"),
        "{}",
        text(&out.stdout)
    );
}

#[test]
fn plan_of_examples_as_json() {
    let dir = tempfile::tempdir().unwrap();
    copy_dir(&repo_root().join("examples"), &dir.path().join("examples"));
    let before =
        std::fs::read_to_string(dir.path().join("examples/zonefiles/acme/acme.example.zone"))
            .unwrap();
    let out = zentralink(&["plan", "examples", "--format", "json"], dir.path());
    assert!(out.status.success(), "{}", text(&out.stderr));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let zones = json["zones"].as_array().unwrap();
    let acme = zones.iter().find(|z| z["zone"] == "acme.example.").unwrap();
    assert_eq!(acme["tenant"], "acme");
    assert_eq!(acme["namespace"], "acme");
    assert!(acme["digest"].as_str().unwrap().starts_with("sha256:"));
    assert_eq!(acme["requiresApproval"], true);
    let cr = acme["changeRequest"].as_str().unwrap();
    assert!(cr.starts_with("acme-example-"), "{cr}");
    let changes = acme["changes"].as_array().unwrap();
    let find = |name: &str, t: &str| {
        changes
            .iter()
            .find(|c| c["name"] == name && c["type"] == t)
            .unwrap_or_else(|| panic!("no change for {name} {t}: {changes:?}"))
    };
    let mx = find("acme.example.", "MX");
    assert_eq!(mx["op"], "update");
    assert_eq!(mx["requiresApproval"], true);
    assert_eq!(mx["reasons"][0], "MX records need approval");
    assert!(mx["before"]["values"].is_array() && mx["after"]["values"].is_array());
    let www = find("www.acme.example.", "A");
    assert_eq!(www["op"], "update");
    assert_eq!(www["requiresApproval"], false);
    assert_eq!(www["reasons"].as_array().unwrap().len(), 0);
    let deleted: Vec<_> = changes.iter().filter(|c| c["op"] == "delete").collect();
    assert!(!deleted.is_empty());
    assert!(
        deleted
            .iter()
            .all(|c| c["requiresApproval"] == true && c["after"].is_null())
    );
    // plan never writes
    let after =
        std::fs::read_to_string(dir.path().join("examples/zonefiles/acme/acme.example.zone"))
            .unwrap();
    assert_eq!(before, after);
    // the digest is stable across runs
    let again = zentralink(&["plan", "examples", "--format", "json"], dir.path());
    assert_eq!(out.stdout, again.stdout);
}

#[test]
fn plan_exit_code_and_formats() {
    let root = repo_root();
    // examples/ changes an MX record set: it waits for approval
    let out = zentralink(&["plan", "examples", "--exit-code"], &root);
    assert_eq!(out.status.code(), Some(3), "{}", text(&out.stderr));
    let t = text(&out.stdout);
    assert!(
        t.contains("acme.example. (acme/acme-example, provider files, live writes requested)"),
        "{t}"
    );
    assert!(
        t.contains("[needs approval: MX records need approval]"),
        "{t}"
    );
    assert!(!t.contains("\x1b["), "no colour when NO_COLOR is set");
    let coloured = zentralink(&["plan", "examples", "--color", "always"], &root);
    assert!(
        text(&coloured.stdout).contains("\x1b[33m~"),
        "updates are yellow"
    );
    let md = zentralink(&["plan", "examples", "--format", "markdown"], &root);
    let m = text(&md.stdout);
    assert!(m.starts_with("## ZentraLink plan"), "{m}");
    assert!(m.contains("| `acme.example.` | acme/acme-example |"), "{m}");
    assert!(m.contains("```diff"), "{m}");
}

const SMALL: &str = "\
apiVersion: dns.zentralink.net/v1alpha1
kind: Tenant
metadata: { name: t }
spec: { displayName: T, namespaces: [t], allowedDomains: [t.example.] }
---
apiVersion: dns.zentralink.net/v1alpha1
kind: ProviderConnection
metadata: { name: files, namespace: t }
spec: { type: zonefile, zonefile: { directory: zones } }
---
apiVersion: dns.zentralink.net/v1alpha1
kind: DnsZone
metadata: { name: t, namespace: t }
spec:
  zone: t.example.
  providerRef: { name: files }
  recordSets:
    - { name: '@', type: NS, values: [ns1.t.example.] }
    - { name: www, type: A, ttl: 300, values: [192.0.2.1, 192.0.2.2] }
";

const SMALL_ZONE: &str = "$ORIGIN t.example.\n$TTL 3600\n@ IN SOA ns1 hostmaster 7 3600 600 1209600 300\n@ IN NS ns1.t.example.\nwww 300 IN A 192.0.2.2\nwww 300 IN A 192.0.2.1\n";

#[test]
fn an_unchanged_zone_has_an_empty_plan() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("repo.yaml"), SMALL).unwrap();
    std::fs::create_dir(dir.path().join("zones")).unwrap();
    std::fs::write(dir.path().join("zones/t.example.zone"), SMALL_ZONE).unwrap();
    let out = zentralink(
        &["plan", "repo.yaml", "--exit-code", "--format", "json"],
        dir.path(),
    );
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["zones"][0]["changes"].as_array().unwrap().len(), 0);
    assert_eq!(json["zones"][0]["requiresApproval"], false);
    // an ungated change only: exit 2, and it would execute at once
    std::fs::write(
        dir.path().join("zones/t.example.zone"),
        SMALL_ZONE.replace("www 300 IN A 192.0.2.1\n", ""),
    )
    .unwrap();
    let out = zentralink(
        &["plan", "repo.yaml", "--exit-code", "--format", "json"],
        dir.path(),
    );
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["zones"][0]["executesNow"], 1);
    assert_eq!(json["zones"][0]["outcome"], "ReadOnly");
    assert_eq!(
        json["zones"][0]["liveRequested"], false,
        "connections are read-only unless acknowledged"
    );
}

#[test]
fn a_broken_zone_file_fails_that_zone_only() {
    let dir = tempfile::tempdir().unwrap();
    let second = SMALL
        .replace("metadata: { name: t }", "metadata: { name: u }")
        .replace("[t]", "[u]")
        .replace("t.example", "u.example")
        .replace("namespace: t", "namespace: u")
        .replace("name: t,", "name: u,");
    std::fs::write(
        dir.path().join("repo.yaml"),
        format!("{SMALL}---\n{second}"),
    )
    .unwrap();
    std::fs::create_dir(dir.path().join("zones")).unwrap();
    std::fs::write(
        dir.path().join("zones/t.example.zone"),
        "www IN A 300.1.1.1\n",
    )
    .unwrap();
    let out = zentralink(&["plan", "repo.yaml", "--format", "json"], dir.path());
    assert_eq!(out.status.code(), Some(1));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let t = json["zones"]
        .as_array()
        .unwrap()
        .iter()
        .find(|z| z["zone"] == "t.example.")
        .unwrap();
    assert!(
        t["error"].as_str().unwrap().contains("t.example.zone"),
        "{t}"
    );
    let u = json["zones"]
        .as_array()
        .unwrap()
        .iter()
        .find(|z| z["zone"] == "u.example.")
        .unwrap();
    assert!(u["error"].is_null());
    assert_eq!(
        u["changes"].as_array().unwrap().len(),
        2,
        "a missing zone file is an empty zone"
    );
    assert!(
        text(&out.stderr).contains("t.example.: "),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn validate_prints_every_error_and_exits_1() {
    let dir = tempfile::tempdir().unwrap();
    let broken = SMALL
        .replace("[192.0.2.1, 192.0.2.2]", "[300.1.1.1, 192.0.2.2]")
        .replace(
            "type: NS, values: [ns1.t.example.]",
            "type: NS, ttl: 0, values: [ns1.t.example.]",
        );
    std::fs::write(dir.path().join("repo.yaml"), broken).unwrap();
    let out = zentralink(&["validate", "."], dir.path());
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    assert!(
        err.contains("./repo.yaml:18: spec.recordSets[0].ttl: TTL 0 is out of bounds"),
        "{err}"
    );
    assert!(
        err.contains(
            "./repo.yaml:19: spec.recordSets[1].values[0]: \"300.1.1.1\" is not an IPv4 address"
        ),
        "{err}"
    );
    assert!(err.contains("2 errors found"), "{err}");
    // plan refuses to plan invalid input
    let out = zentralink(&["plan", "."], dir.path());
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("nothing planned"));
}

#[test]
fn missing_paths_are_errors() {
    let out = zentralink(&["validate", "does-not-exist"], &repo_root());
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("does-not-exist: no such file or directory"));
}

#[test]
fn crds_print_and_write() {
    let out = zentralink(&["crds"], &repo_root());
    assert!(out.status.success());
    let t = text(&out.stdout);
    assert_eq!(t.matches("kind: CustomResourceDefinition").count(), 7);
    let dir = tempfile::tempdir().unwrap();
    let out = zentralink(
        &["crds", "--out", dir.path().to_str().unwrap()],
        &repo_root(),
    );
    assert!(out.status.success());
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 7);
}

/// Each file in tests/fixtures/invalid/ fails in exactly one way: one error,
/// at the line and field path its `# expect-at:` header names, with its
/// `# expect-error:` fragment in the message.
#[test]
fn every_invalid_fixture_gives_its_own_error() {
    let root = repo_root();
    let dir = root.join("tests/fixtures/invalid");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    files.sort();
    assert!(files.len() >= 15, "fixtures: {files:?}");
    for file in files {
        let text = std::fs::read_to_string(&file).unwrap();
        let header = |key: &str| {
            text.lines()
                .find_map(|l| l.strip_prefix(&format!("# {key}: ")))
                .unwrap_or_else(|| panic!("{}: no `# {key}:` header", file.display()))
                .to_owned()
        };
        let fragment = header("expect-error");
        let at = header("expect-at");
        let rel = file
            .strip_prefix(&root)
            .unwrap()
            .to_str()
            .unwrap()
            .to_owned();
        let out = zentralink(&["validate", &rel], &root);
        assert_eq!(out.status.code(), Some(1), "{rel} must be refused");
        let stderr = text_of(&out.stderr);
        let errors: Vec<&str> = stderr.lines().filter(|l| l.starts_with(&rel)).collect();
        assert_eq!(
            errors.len(),
            1,
            "{rel}: expected exactly one error, got:\n{stderr}"
        );
        let expected_prefix = format!("{rel}:{at}: ");
        assert!(
            errors[0].starts_with(&expected_prefix),
            "{rel}: expected the error at {at}, got {}",
            errors[0]
        );
        assert!(
            errors[0].contains(&fragment),
            "{rel}: expected {fragment:?} in {}",
            errors[0]
        );
        // plan refuses the same input and writes nothing
        let out = zentralink(&["plan", &rel, "--format", "json"], &root);
        assert_eq!(
            out.status.code(),
            Some(1),
            "{rel}: plan must refuse invalid input"
        );
        assert!(
            out.stdout.is_empty(),
            "{rel}: plan printed a plan for invalid input"
        );
    }
}

fn text_of(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// An imported zone plans without a diff, and `provider test` reports each connection.
#[test]
fn import_then_plan_has_no_diff_and_provider_test_reports() {
    let dir = tempfile::tempdir().unwrap();
    copy_dir(&repo_root().join("examples"), &dir.path().join("examples"));
    let out = zentralink(
        &[
            "import",
            "examples",
            "--connection",
            "acme/files",
            "--zone",
            "acme.example.",
        ],
        dir.path(),
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let manifest = text(&out.stdout);
    assert!(
        manifest.contains("kind: DnsZone") && manifest.contains("zone: acme.example."),
        "{manifest}"
    );
    assert!(
        !manifest.contains("type: SOA"),
        "the SOA stays the provider's"
    );
    // replace the declared zone by the imported one
    std::fs::remove_file(dir.path().join("examples/acme/acme.example.yaml")).unwrap();
    std::fs::write(dir.path().join("examples/acme/imported.yaml"), &manifest).unwrap();
    let out = zentralink(&["plan", "examples", "--format", "json"], dir.path());
    assert!(out.status.success(), "{}", text(&out.stderr));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let acme = json["zones"]
        .as_array()
        .unwrap()
        .iter()
        .find(|z| z["zone"] == "acme.example.")
        .unwrap();
    assert_eq!(acme["changes"].as_array().unwrap().len(), 0, "{acme}");

    let out = zentralink(&["provider", "test", "examples"], dir.path());
    assert!(
        out.status.success(),
        "{}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    let t = text(&out.stdout);
    assert!(
        t.contains("acme/files (zonefile)\n  connection test: passed"),
        "{t}"
    );
    assert!(t.contains("live writes:     enabled (Enabled"), "{t}");
    assert!(t.contains("globex/files (zonefile)"), "{t}");
    assert!(
        t.contains("write probe:     not run"),
        "a read-only connection is never probed: {t}"
    );
    assert!(t.contains("disabled (ReadOnlyMode"), "{t}");

    // a broken connection fails the test and exits 1
    std::fs::remove_dir_all(dir.path().join("examples/zonefiles/globex")).unwrap();
    let out = zentralink(
        &[
            "provider",
            "test",
            "examples",
            "--connection",
            "globex/files",
        ],
        dir.path(),
    );
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stdout));
    assert!(text(&out.stdout).contains("connection test: FAILED"));
}
