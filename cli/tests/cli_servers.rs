//! The `zentralink` binary against the real DNS servers scripts/test.sh
//! starts: `plan` shows the per-record diff of a PowerDNS and a BIND zone, and
//! `import` followed by `plan` shows none. Needs ZL_PDNS_* and ZL_BIND_* from
//! scripts/pdns-server.sh and scripts/bind-server.sh.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;
use std::process::{Command, Output};

use zentralink_model::ZoneContent;
use zentralink_model::ZoneName;
use zentralink_model::plan::{PlanScope, plan_zone};
use zentralink_model::record::{RecordSet, RecordValue, RrKey, parse_record_type};
use zentralink_model::resources::{PowerDnsSettings, Rfc2136Settings};
use zentralink_model::secrets::SecretString;
use zentralink_providers::Provider;
use zentralink_providers::powerdns::PowerDnsProvider;
use zentralink_providers::resilience::Limits;
use zentralink_providers::rfc2136::Rfc2136Provider;

fn env(name: &str, how: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| {
        panic!("{name} is not set: start the server with {how} (scripts/test.sh does)")
    })
}

fn zentralink(args: &[&str], dir: &Path, extra: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_zentralink"));
    cmd.args(args)
        .current_dir(dir)
        .env("NO_COLOR", "1")
        .env_remove("DATABASE_URL")
        // The manifests name the test servers' own variables: the operator allows them.
        .env(
            "ZENTRALINK_ALLOW_CREDENTIAL_ENV",
            "ZL_PDNS_API_KEY,ZL_BIND_TSIG256_SECRET",
        );
    for (k, v) in extra {
        cmd.env(k, v);
    }
    cmd.output().unwrap()
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn content(zone: &ZoneName, sets: &[(&str, &str, &[&str])]) -> ZoneContent {
    let mut c = ZoneContent::new(zone.clone());
    for (name, t, values) in sets {
        let rtype = parse_record_type(t).unwrap();
        let vals = values
            .iter()
            .map(|v| RecordValue::parse(rtype, v, zone).unwrap())
            .collect();
        c.sets.insert(
            RrKey::new(zone.owner(name).unwrap(), rtype),
            RecordSet::new(300, vals),
        );
    }
    c
}

const LIVE: &[(&str, &str, &[&str])] = &[
    ("www", "A", &["192.0.2.10"]),
    ("@", "MX", &["10 mx1.example.net."]),
    ("old", "A", &["192.0.2.99"]),
];

fn manifests(zone: &ZoneName, connection: &str) -> String {
    format!(
        "apiVersion: dns.zentralink.net/v1alpha1\nkind: Tenant\nmetadata: {{ name: e2e }}\nspec: {{ displayName: E2E, namespaces: [e2e], allowedDomains: [test.] }}\n---\napiVersion: dns.zentralink.net/v1alpha1\nkind: ProviderConnection\nmetadata: {{ name: target, namespace: e2e }}\nspec:\n{connection}---\napiVersion: dns.zentralink.net/v1alpha1\nkind: DnsZone\nmetadata: {{ name: main, namespace: e2e }}\nspec:\n  zone: {zone}\n  providerRef: {{ name: target }}\n  defaultTtl: 300\n  recordSets:\n    - {{ name: www, type: A, values: [192.0.2.11] }}\n    - {{ name: '@', type: MX, values: ['10 mx1.example.net.'] }}\n"
    )
}

/// Writes LIVE into the zone, then checks `plan`, `import` and `plan` again through the binary.
async fn plan_and_import(
    provider: &dyn Provider,
    zone: &ZoneName,
    connection: &str,
    extra: &[(&str, &str)],
) {
    // bring the zone to the LIVE state (apex SOA/NS stay the server's)
    let current = provider
        .read_zone(zone)
        .await
        .unwrap()
        .unwrap_or_else(|| ZoneContent::new(zone.clone()));
    let mut managed = current.clone();
    managed.sets.retain(|k, _| {
        !(k.has_name(zone.as_name())
            && matches!(
                k.rtype,
                hickory_proto::rr::RecordType::SOA | hickory_proto::rr::RecordType::NS
            ))
    });
    let plan = plan_zone(&content(zone, LIVE), &managed, &PlanScope::default());
    if !plan.is_empty() {
        provider.apply(&plan).await.unwrap();
    }

    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("repo.yaml"), manifests(zone, connection)).unwrap();
    let out = zentralink(
        &["plan", "repo.yaml", "--format", "json", "--exit-code"],
        dir.path(),
        extra,
    );
    // the plan deletes a record set, which waits for approval: exit 3
    assert_eq!(
        out.status.code(),
        Some(3),
        "{}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let changes = json["zones"][0]["changes"].as_array().unwrap();
    let summary: Vec<String> = changes
        .iter()
        .map(|c| {
            format!(
                "{} {} {}",
                c["op"].as_str().unwrap(),
                c["name"].as_str().unwrap(),
                c["type"].as_str().unwrap()
            )
        })
        .collect();
    let old = format!("delete old.{zone} A");
    let www = format!("update www.{zone} A");
    assert_eq!(summary, vec![old, www], "{json}");

    let out = zentralink(
        &[
            "import",
            "repo.yaml",
            "--connection",
            "e2e/target",
            "--zone",
            &zone.to_string(),
            "--out",
            "imported.yaml",
        ],
        dir.path(),
        extra,
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let repo = std::fs::read_to_string(dir.path().join("repo.yaml")).unwrap();
    let without_zone = &repo[..repo.rfind("---").unwrap()];
    std::fs::write(dir.path().join("repo.yaml"), without_zone).unwrap();
    let out = zentralink(&["plan", ".", "--exit-code"], dir.path(), extra);
    assert_eq!(
        out.status.code(),
        Some(0),
        "an imported zone plans without a diff: {}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    assert!(
        text(&out.stdout).contains("no changes"),
        "{}",
        text(&out.stdout)
    );
}

/// The PowerDNS test server (gsqlite3) refuses concurrent writes; every test
/// that writes to it holds this lock file (the same one the operator's
/// PowerDNS tests use), across processes.
struct PdnsLock(std::path::PathBuf);

impl PdnsLock {
    async fn acquire(url: &str) -> PdnsLock {
        let port = url.rsplit(':').next().unwrap_or("0");
        let path = std::env::temp_dir().join(format!("zentralink-pdns-tests-{port}.lock"));
        loop {
            match std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(&path)
            {
                Ok(mut f) => {
                    use std::io::Write;
                    write!(f, "{}", std::process::id()).unwrap();
                    return PdnsLock(path);
                }
                Err(_) => {
                    let holder = std::fs::read_to_string(&path).unwrap_or_default();
                    if !holder.trim().is_empty()
                        && !Path::new(&format!("/proc/{}", holder.trim())).exists()
                    {
                        let _ = std::fs::remove_file(&path);
                        continue;
                    }
                    tokio::time::sleep(std::time::Duration::from_millis(10)).await;
                }
            }
        }
    }
}

impl Drop for PdnsLock {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

#[tokio::test]
async fn plan_and_import_against_powerdns() {
    let url = env("ZL_PDNS_URL", "scripts/pdns-server.sh start");
    let key = env("ZL_PDNS_API_KEY", "scripts/pdns-server.sh start");
    let zone = ZoneName::parse(&format!("cli-{}.e2e.test.", std::process::id())).unwrap();
    let settings = PowerDnsSettings {
        url: url.clone(),
        server_id: None,
        create_zones: true,
    };
    let provider =
        PowerDnsProvider::new(&settings, SecretString::new(key), Limits::default()).unwrap();
    let connection = format!(
        "  type: powerdns\n  powerdns: {{ url: \"{url}\" }}\n  credentials: {{ env: ZL_PDNS_API_KEY }}\n"
    );
    let _exclusive = PdnsLock::acquire(&url).await;
    plan_and_import(&provider, &zone, &connection, &[]).await;
}

#[tokio::test]
async fn plan_and_import_against_bind() {
    let server = env("ZL_BIND_SERVER", "scripts/bind-server.sh start");
    let secret = env("ZL_BIND_TSIG256_SECRET", "scripts/bind-server.sh start");
    let name = env("ZL_BIND_TSIG256_NAME", "scripts/bind-server.sh start");
    // t40 is this test's own zone (operator tests use others).
    let zone = ZoneName::parse("t40.rfc2136.test.").unwrap();
    let settings = Rfc2136Settings {
        server: server.clone(),
        tsig_key_name: name.clone(),
        tsig_algorithm: None,
    };
    let provider =
        Rfc2136Provider::new(&settings, SecretString::new(secret), Limits::default()).unwrap();
    let connection = format!(
        "  type: rfc2136\n  rfc2136: {{ server: \"{server}\", tsigKeyName: {name} }}\n  credentials: {{ env: ZL_BIND_TSIG256_SECRET }}\n"
    );
    plan_and_import(&provider, &zone, &connection, &[]).await;
}
