//! The zone-file provider against real files in a temporary directory.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeSet;

use hickory_proto::rr::RecordType;
use zentralink_model::plan::{ChangeOp, Ownership, PlanScope, plan_zone};
use zentralink_model::record::{RecordSet, RecordValue, RrKey, parse_record_type};
use zentralink_model::{ZoneContent, ZoneName};
use zentralink_providers::zonefile::{ZoneFileProvider, parse_zone_file, render_zone_file};
use zentralink_providers::{GatedProvider, Provider, ProviderError};

fn zone() -> ZoneName {
    ZoneName::parse("acme.example.").unwrap()
}

fn set(t: &str, ttl: u32, values: &[&str]) -> (RrKey, RecordSet) {
    unreachable_key(t, "@", ttl, values)
}

fn unreachable_key(t: &str, name: &str, ttl: u32, values: &[&str]) -> (RrKey, RecordSet) {
    let z = zone();
    let rtype = parse_record_type(t).unwrap();
    let vals = values
        .iter()
        .map(|v| RecordValue::parse(rtype, v, &z).unwrap())
        .collect();
    (
        RrKey::new(z.owner(name).unwrap(), rtype),
        RecordSet::new(ttl, vals),
    )
}

fn content(sets: Vec<(RrKey, RecordSet)>) -> ZoneContent {
    let mut c = ZoneContent::new(zone());
    c.sets.extend(sets);
    c
}

const FILE: &str = r#"$ORIGIN acme.example.
$TTL 3600
@   IN SOA ns1.acme.example. hostmaster.acme.example. (
        2024010101 ; serial
        3600 600 1209600 300 )
@   IN NS  ns1.acme.example.
@   IN NS  ns2.acme.example.
@   IN MX  10 mx1
www 300 IN A 192.0.2.10
    300 IN A 192.0.2.11
mail._domainkey IN TXT ( "v=DKIM1; k=rsa; "
                         "p=MIIB" )
private IN TYPE65280 \# 4 0a000001
WWW2 IN CNAME www
"#;

#[test]
fn reads_a_bind_style_file() {
    let c = parse_zone_file(FILE, &zone()).unwrap();
    let get = |name: &str, t: RecordType| {
        c.get(&RrKey::new(zone().owner(name).unwrap(), t))
            .map(|s| (s.ttl, s.texts()))
    };
    assert_eq!(
        get("www", RecordType::A),
        Some((300, vec!["192.0.2.10".into(), "192.0.2.11".into()]))
    );
    assert_eq!(
        get("@", RecordType::MX),
        Some((3600, vec!["10 mx1.acme.example.".into()]))
    );
    assert_eq!(
        get("mail._domainkey", RecordType::TXT),
        Some((3600, vec!["\"v=DKIM1; k=rsa; \" \"p=MIIB\"".into()]))
    );
    assert_eq!(
        get("private", RecordType::Unknown(65280)),
        Some((3600, vec!["\\# 4 0a000001".into()]))
    );
    assert_eq!(
        get("www2", RecordType::CNAME),
        Some((3600, vec!["www.acme.example.".into()]))
    );
    assert_eq!(c.len(), 7);
}

#[test]
fn rendered_file_reads_back_identically() {
    let c = parse_zone_file(FILE, &zone()).unwrap();
    let text = render_zone_file(&c);
    assert_eq!(parse_zone_file(&text, &zone()).unwrap(), c);
}

#[test]
fn broken_files_are_clear_errors() {
    let err = parse_zone_file("$ORIGIN acme.example.\nwww IN A 300.1.1.1\n", &zone()).unwrap_err();
    assert!(!err.is_empty());
    let err = parse_zone_file("www IN TXT ( \"open\n", &zone()).unwrap_err();
    assert!(err.contains("line 1"), "{err}");
}

#[tokio::test]
async fn missing_file_is_a_missing_zone() {
    let dir = tempfile::tempdir().unwrap();
    let p = ZoneFileProvider::new(dir.path());
    assert_eq!(p.read_zone(&zone()).await.unwrap(), None);
    assert!(p.list_zones().await.unwrap().is_empty());
}

#[tokio::test]
async fn apply_writes_atomically_and_bumps_the_serial() {
    let dir = tempfile::tempdir().unwrap();
    let p = ZoneFileProvider::new(dir.path());
    std::fs::write(p.path_for(&zone()), FILE).unwrap();
    let actual = p.read_zone(&zone()).await.unwrap().unwrap();

    let mut desired = actual.clone();
    let (k, s) = unreachable_key("A", "www", 300, &["192.0.2.99"]);
    desired.sets.insert(k.clone(), s.clone());
    let (k2, s2) = unreachable_key("AAAA", "v6", 600, &["2001:db8::1"]);
    desired.sets.insert(k2.clone(), s2.clone());
    let plan = plan_zone(&desired, &actual, &PlanScope::default());
    assert_eq!(plan.changes.len(), 2);

    let report = p.apply(&plan).await.unwrap();
    assert!(report.all_ok());
    assert_eq!(report.outcomes.len(), 2);

    let after = p.read_zone(&zone()).await.unwrap().unwrap();
    assert_eq!(after.get(&k), Some(&s));
    assert_eq!(after.get(&k2), Some(&s2));
    let soa = after.soa().unwrap().texts().join("");
    assert!(soa.contains(" 2024010102 "), "serial bumped: {soa}");
    // no temporary files left behind
    let names: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names.len(), 1, "{names:?}");
    // planning again against the written file: nothing left to do
    let again = plan_zone(&desired, &after, &PlanScope::default());
    assert!(again.is_empty(), "{:?}", again.changes);
    assert_eq!(p.list_zones().await.unwrap(), vec![zone()]);
}

#[tokio::test]
async fn apply_creates_a_new_zone_with_an_soa() {
    let dir = tempfile::tempdir().unwrap();
    let p = ZoneFileProvider::new(dir.path().join("new"));
    let desired = content(vec![
        set("NS", 3600, &["ns1.acme.example."]),
        unreachable_key("A", "www", 300, &["192.0.2.1"]),
    ]);
    let plan = plan_zone(&desired, &ZoneContent::new(zone()), &PlanScope::default());
    p.apply(&plan).await.unwrap();
    let written = p.read_zone(&zone()).await.unwrap().unwrap();
    assert!(
        written.soa().unwrap().texts()[0]
            .starts_with("ns1.acme.example. hostmaster.acme.example. 1 ")
    );
    assert_eq!(written.len(), 3);
}

#[tokio::test]
async fn a_concurrent_change_makes_apply_fail_and_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let p = ZoneFileProvider::new(dir.path());
    std::fs::write(p.path_for(&zone()), FILE).unwrap();
    let actual = p.read_zone(&zone()).await.unwrap().unwrap();
    let mut desired = actual.clone();
    let (k, s) = unreachable_key("A", "www", 300, &["192.0.2.99"]);
    desired.sets.insert(k, s);
    let plan = plan_zone(&desired, &actual, &PlanScope::default());

    // someone edits the file between plan and apply
    let edited = FILE.replace("192.0.2.10", "192.0.2.77");
    std::fs::write(p.path_for(&zone()), &edited).unwrap();
    let err = p.apply(&plan).await.unwrap_err();
    assert!(matches!(err, ProviderError::Conflict(_)), "{err}");
    assert_eq!(
        std::fs::read_to_string(p.path_for(&zone())).unwrap(),
        edited
    );
}

#[tokio::test]
async fn owned_zones_leave_foreign_records_alone() {
    let dir = tempfile::tempdir().unwrap();
    let p = ZoneFileProvider::new(dir.path());
    std::fs::write(p.path_for(&zone()), FILE).unwrap();
    let actual = p.read_zone(&zone()).await.unwrap().unwrap();
    let desired = content(vec![unreachable_key("A", "api", 60, &["192.0.2.50"])]);
    let plan = plan_zone(
        &desired,
        &actual,
        &PlanScope {
            ownership: Ownership::Owned,
            previously_owned: None,
        },
    );
    assert_eq!(plan.changes.len(), 1);
    assert_eq!(plan.changes[0].op, ChangeOp::Create);
    let full = plan_zone(&desired, &actual, &PlanScope::default());
    // apex SOA and NS are provider-managed; everything else undeclared is deleted
    let deleted: BTreeSet<String> = full
        .changes
        .iter()
        .filter(|c| c.op == ChangeOp::Delete)
        .map(|c| c.key.to_string())
        .collect();
    assert_eq!(deleted.len(), 5, "{deleted:?}");
    assert!(
        !deleted
            .iter()
            .any(|k| k.ends_with(" SOA") || k == "acme.example. NS")
    );
}

#[tokio::test]
async fn a_connection_that_is_not_live_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let inner = ZoneFileProvider::new(dir.path());
    let path = inner.path_for(&zone());
    let gated = GatedProvider::new(Box::new(inner), false, "connection acme/files is ReadOnly");
    let desired = content(vec![unreachable_key("A", "www", 300, &["192.0.2.1"])]);
    let plan = plan_zone(&desired, &ZoneContent::new(zone()), &PlanScope::default());
    let err = gated.apply(&plan).await.unwrap_err();
    assert_eq!(
        err,
        ProviderError::NotLive("connection acme/files is ReadOnly".into())
    );
    assert!(!path.exists(), "nothing may be written");
}

#[tokio::test]
async fn unsupported_types_are_refused_before_writing() {
    use zentralink_providers::{Capabilities, check_capabilities};
    let desired = content(vec![unreachable_key(
        "ALIAS",
        "shop",
        300,
        &["lb.example.net."],
    )]);
    let plan = plan_zone(&desired, &ZoneContent::new(zone()), &PlanScope::default());
    let caps = Capabilities {
        record_types: None,
        atomic_batch: true,
        alias: false,
        max_batch: None,
        lists_zones: true,
    };
    let err = check_capabilities(&caps, &plan).unwrap_err();
    assert!(err.to_string().contains("ALIAS"), "{err}");
    let dir = tempfile::tempdir().unwrap();
    let gated = GatedProvider::new(Box::new(ZoneFileProvider::new(dir.path())), true, "");
    assert!(matches!(
        gated.apply(&plan).await,
        Err(ProviderError::Unsupported(_))
    ));
    assert!(std::fs::read_dir(dir.path()).unwrap().next().is_none());
}

#[test]
fn escaped_txt_bytes_in_zone_files_read_as_bytes() {
    let text = "$ORIGIN acme.example.\n$TTL 300\nutf8 IN TXT \"caf\\195\\169\"  \"two  spaces\"\nplain IN TXT \"café\"\n";
    let c = parse_zone_file(text, &zone()).unwrap();
    let get = |n: &str| {
        c.get(&RrKey::new(zone().owner(n).unwrap(), RecordType::TXT))
            .unwrap()
            .texts()
    };
    assert_eq!(
        get("utf8"),
        vec!["\"caf\\195\\169\" \"two  spaces\"".to_owned()]
    );
    assert_eq!(get("plain"), vec!["\"caf\\195\\169\"".to_owned()]);
    // and what we write reads back the same
    assert_eq!(parse_zone_file(&render_zone_file(&c), &zone()).unwrap(), c);
}
