//! `zentralink plan` reads the zones while it validates the manifests (the
//! prefetch of operator/src/prefetch.rs); against the real PowerDNS that
//! scripts/test.sh starts, its output and exit code are byte for byte those
//! of the path without it (`load_catalog` then `plan_all`, computed here in
//! the test), for zones the quick scan finds in odd formatting, a zone it
//! cannot find, and manifests that do not validate; nothing is written.
//! Needs ZL_PDNS_URL and ZL_PDNS_API_KEY from scripts/pdns-server.sh.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use zentralink_model::ZoneName;
use zentralink_model::plan::{PlanScope, plan_zone};
use zentralink_model::record::{RecordSet, RecordValue, RrKey, parse_record_type};
use zentralink_model::report::{PlanReport, render_markdown, render_text};
use zentralink_model::resources::PowerDnsSettings;
use zentralink_model::secrets::SecretString;
use zentralink_model::{ChangeOp, ZoneContent};
use zentralink_operator::planner::plan_all;
use zentralink_operator::prefetch::scan_manifests;
use zentralink_operator::source::directory::load_catalog;
use zentralink_providers::Provider;
use zentralink_providers::credentials::{CredentialEnv, CredentialSources};
use zentralink_providers::powerdns::PowerDnsProvider;
use zentralink_providers::resilience::Limits;

mod common;
use common::{PdnsLock, env, text};

const KEY_VAR: &str = "ZL_PDNS_API_KEY";

fn zentralink(args: &[&str], dir: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_zentralink"))
        .args(args)
        .current_dir(dir)
        .env("NO_COLOR", "1")
        .env_remove("DATABASE_URL")
        .env_remove("RUST_LOG")
        .env("ZENTRALINK_ALLOW_CREDENTIAL_ENV", KEY_VAR)
        .output()
        .unwrap()
}

/// What the zones hold at PowerDNS before each plan (besides SOA and NS).
const LIVE: &[(&str, &str, &[&str])] = &[
    ("www", "A", &["192.0.2.10"]),
    ("old", "A", &["192.0.2.99"]),
    ("@", "MX", &["10 mx1.example.net."]),
];

fn content(zone: &ZoneName, sets: &[(&str, &str, &[&str])]) -> ZoneContent {
    let mut c = ZoneContent::new(zone.clone());
    for (name, t, values) in sets {
        let rtype = parse_record_type(t).unwrap();
        let values = values
            .iter()
            .map(|v| RecordValue::parse(rtype, v, zone).unwrap())
            .collect();
        c.sets.insert(
            RrKey::new(zone.owner(name).unwrap(), rtype),
            RecordSet::new(300, values),
        );
    }
    c
}

/// The zone's content without the apex SOA and NS the server keeps.
async fn managed(provider: &dyn Provider, zone: &ZoneName) -> ZoneContent {
    let mut current = provider
        .read_zone(zone)
        .await
        .unwrap()
        .unwrap_or_else(|| ZoneContent::new(zone.clone()));
    current.sets.retain(|k, _| {
        !(k.has_name(zone.as_name())
            && matches!(
                k.rtype,
                hickory_proto::rr::RecordType::SOA | hickory_proto::rr::RecordType::NS
            ))
    });
    current
}

/// Brings the zone to LIVE (creating it).
async fn bring_to_live(provider: &dyn Provider, zone: &ZoneName) {
    let plan = plan_zone(
        &content(zone, LIVE),
        &managed(provider, zone).await,
        &PlanScope::default(),
    );
    if !plan.is_empty() {
        provider.apply(&plan).await.unwrap();
    }
}

/// A Tenant and a ProviderConnection in flow style, the way people write short ones.
fn head(url: &str) -> String {
    format!(
        "# the tenant and its PowerDNS\napiVersion: dns.zentralink.net/v1alpha1\nkind: Tenant\nmetadata: {{ name: prefetch }}\nspec: {{ displayName: Prefetch, namespaces: [prefetch], allowedDomains: [e2e.test.] }}\n---\napiVersion: dns.zentralink.net/v1alpha1\nkind: ProviderConnection\nmetadata: {{ name: pdns, namespace: prefetch }}\nspec: {{ type: powerdns, powerdns: {{ url: \"{url}\" }}, credentials: {{ env: {KEY_VAR} }} }}\n"
    )
}

/// A DnsZone the quick scan finds through odd formatting: comments, quotes,
/// a tag, `kind` after `spec`, and its connection in a nested block.
fn zone_found_by_the_scan(zone: &ZoneName) -> String {
    format!(
        "--- # first zone\nspec:\n  # the record sets come first\n  recordSets:\n  - name: www\n    type: A\n    ttl: 300\n    values: [\"192.0.2.11\"]\n  - {{ name: '@', type: MX, ttl: 300, values: ['10 mx1.example.net.'] }}\n  providerRef:\n    name: \"pdns\"   # the connection\n  zone: !!str '{zone}'\nmetadata:\n  name: found\n  namespace: prefetch\napiVersion: dns.zentralink.net/v1alpha1\nkind: DnsZone\n"
    )
}

/// A DnsZone whose name the quick scan does not see (it is on the line after its key).
fn zone_hidden_from_the_scan(zone: &ZoneName) -> String {
    format!(
        "---\napiVersion: dns.zentralink.net/v1alpha1\nkind: DnsZone\nmetadata: {{ name: hidden, namespace: prefetch }}\nspec:\n  zone:\n    {zone}\n  providerRef: {{ name: pdns }}\n  recordSets:\n    - {{ name: www, type: A, ttl: 300, values: [192.0.2.12] }}\n    - {{ name: old, type: A, ttl: 300, values: [192.0.2.99] }}\n    - {{ name: '@', type: MX, ttl: 300, values: ['10 mx1.example.net.'] }}\n"
    )
}

/// The plan of the manifests as the path without reads ahead makes it.
async fn unprefetched(paths: &[PathBuf], key: &str) -> PlanReport {
    let (catalog, errors) = load_catalog(paths);
    assert!(errors.is_empty(), "{errors}");
    let env = CredentialEnv::new(
        [(KEY_VAR.to_owned(), key.to_owned())],
        &[KEY_VAR.to_owned()],
    )
    .unwrap();
    let sources = CredentialSources {
        env: &env,
        ..Default::default()
    };
    plan_all(
        &catalog,
        &sources,
        None,
        None,
        k8s_openapi::jiff::Timestamp::now(),
    )
    .await
}

/// Deletes the test's zones at PowerDNS (best effort).
async fn delete_zones(url: &str, key: &str, zones: &[&ZoneName]) {
    zentralink_providers::install_tls_provider();
    let client = reqwest::Client::new();
    for zone in zones {
        let _ = client
            .delete(format!("{url}/api/v1/servers/localhost/zones/{zone}"))
            .header("X-API-Key", key)
            .send()
            .await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn plan_prints_what_the_path_without_reads_ahead_prints() {
    let url = env("ZL_PDNS_URL");
    let key = env(KEY_VAR);
    let _exclusive = PdnsLock::acquire(&url);
    let provider = PowerDnsProvider::new(
        &PowerDnsSettings {
            url: url.clone(),
            server_id: None,
            create_zones: true,
        },
        SecretString::new(key.clone()),
        Limits::default(),
    )
    .unwrap();
    let found = ZoneName::parse(&format!("found-{}.e2e.test.", std::process::id())).unwrap();
    let hidden = ZoneName::parse(&format!("hidden-{}.e2e.test.", std::process::id())).unwrap();
    bring_to_live(&provider, &found).await;
    bring_to_live(&provider, &hidden).await;

    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("connection.yaml"), head(&url)).unwrap();
    std::fs::write(
        dir.path().join("zones.yaml"),
        format!(
            "{}{}",
            zone_found_by_the_scan(&found),
            zone_hidden_from_the_scan(&hidden)
        ),
    )
    .unwrap();
    // The same path for the binary and for the path computed here, so that
    // file names read the same.
    let root = dir.path().display().to_string();
    let paths = vec![dir.path().to_path_buf()];

    let expected = unprefetched(&paths, &key).await;
    // What the plan says, known beforehand: `found` deletes `old` (which
    // waits for approval) and updates `www`; `hidden` updates `www`.
    let summary: Vec<String> = expected
        .zones
        .iter()
        .flat_map(|z| {
            z.changes
                .iter()
                .map(move |c| format!("{} {:?} {}", z.zone, c.op, c.name))
        })
        .collect();
    assert_eq!(
        summary,
        [
            format!("{found} {:?} old.{found}", ChangeOp::Delete),
            format!("{found} {:?} www.{found}", ChangeOp::Update),
            format!("{hidden} {:?} www.{hidden}", ChangeOp::Update),
        ],
        "{expected:?}"
    );

    let outputs = [
        (
            vec!["plan", &root, "--format", "json", "--exit-code"],
            serde_json::to_string_pretty(&expected).unwrap() + "\n",
        ),
        (
            vec!["plan", &root, "--format", "markdown", "--exit-code"],
            render_markdown(&expected),
        ),
        (
            vec!["plan", &root, "--color", "never", "--exit-code"],
            render_text(&expected, false),
        ),
    ];
    for (args, stdout) in outputs {
        let out = zentralink(&args, dir.path());
        assert_eq!(text(&out.stdout), stdout, "{args:?}: {}", text(&out.stderr));
        assert_eq!(text(&out.stderr), "", "{args:?}");
        assert_eq!(out.status.code(), Some(3), "{args:?}: a deletion waits");
    }

    // The scan found `found`, not `hidden`, and the binary used its read.
    let scanned: Vec<String> = scan_manifests(&paths)
        .zones
        .into_iter()
        .map(|z| z.zone)
        .collect();
    assert_eq!(scanned, [found.to_string()]);
    let out = Command::new(env!("CARGO_BIN_EXE_zentralink"))
        .args(["plan", &root, "--format", "json", "--log-format", "json"])
        .env("NO_COLOR", "1")
        .env_remove("DATABASE_URL")
        .env("RUST_LOG", "zentralink_operator::prefetch=debug")
        .env("ZENTRALINK_ALLOW_CREDENTIAL_ENV", KEY_VAR)
        .output()
        .unwrap();
    let log = text(&out.stderr);
    let taken: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("read ahead taken") && l.contains("\"used\":true"))
        .collect();
    assert_eq!(taken.len(), 1, "{log}");
    assert!(taken[0].contains(&found.to_string()), "{log}");
    assert_eq!(
        text(&out.stdout),
        serde_json::to_string_pretty(&expected).unwrap() + "\n"
    );

    // Plan only reads.
    for zone in [&found, &hidden] {
        assert_eq!(
            managed(&provider, zone).await,
            content(zone, LIVE),
            "{zone}"
        );
    }
    delete_zones(&url, &key, &[&found, &hidden]).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn manifests_that_do_not_validate_print_only_their_errors() {
    let url = env("ZL_PDNS_URL");
    let key = env(KEY_VAR);
    let _exclusive = PdnsLock::acquire(&url);
    let provider = PowerDnsProvider::new(
        &PowerDnsSettings {
            url: url.clone(),
            server_id: None,
            create_zones: true,
        },
        SecretString::new(key.clone()),
        Limits::default(),
    )
    .unwrap();
    let zone = ZoneName::parse(&format!("invalid-{}.e2e.test.", std::process::id())).unwrap();
    bring_to_live(&provider, &zone).await;

    // The scan finds the zone and its connection, so its read starts; the
    // zone's second set does not validate.
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("repo.yaml"),
        format!(
            "{}---\napiVersion: dns.zentralink.net/v1alpha1\nkind: DnsZone\nmetadata: {{ name: invalid, namespace: prefetch }}\nspec:\n  zone: {zone}\n  providerRef: {{ name: pdns }}\n  recordSets:\n    - {{ name: www, type: A, values: [192.0.2.1] }}\n    - {{ name: mail, type: A, values: [not-an-address] }}\n",
            head(&url)
        ),
    )
    .unwrap();
    let manifest = dir.path().join("repo.yaml");
    let (_, errors) = load_catalog(std::slice::from_ref(&manifest));
    assert_eq!(errors.len(), 1, "{errors}");
    let error = errors.iter().next().unwrap().to_string();
    assert!(
        error.starts_with(&format!("{}:", manifest.display()))
            && error.contains("spec.recordSets[1].values[0]"),
        "{error}"
    );

    let manifest = manifest.display().to_string();
    for format in ["json", "text", "markdown"] {
        let out = zentralink(&["plan", &manifest, "--format", format], dir.path());
        assert_eq!(out.status.code(), Some(1), "{format}");
        assert_eq!(text(&out.stdout), "", "{format}: nothing planned is shown");
        assert_eq!(
            text(&out.stderr),
            format!("{error}\n1 error found; nothing planned\n"),
            "{format}"
        );
    }
    assert_eq!(managed(&provider, &zone).await, content(&zone, LIVE));
    delete_zones(&url, &key, &[&zone]).await;
}
