//! One test suite, run against every provider: zone-file, PowerDNS (real
//! pdns_server), RFC 2136 (real BIND), Hetzner and Cloudflare (local servers
//! speaking their documented APIs).
//!
//! The caller hands over a provider and a zone that exists and holds no
//! record sets beyond the apex SOA and NS (which providers manage).

use hickory_proto::rr::RecordType;
use zentralink_model::plan::{ChangeOp, Plan, PlanScope, apply_plan, plan_zone};
use zentralink_model::record::{RecordSet, RecordValue, RrKey, parse_record_type};
use zentralink_model::{ZoneContent, ZoneName};
use zentralink_providers::{GatedProvider, Provider, ProviderError, check_capabilities};

/// Builds a record set from presentation values.
pub fn set(zone: &ZoneName, name: &str, t: &str, ttl: u32, values: &[&str]) -> (RrKey, RecordSet) {
    let rtype = parse_record_type(t).unwrap();
    let vals = values
        .iter()
        .map(|v| RecordValue::parse(rtype, v, zone).unwrap())
        .collect();
    (
        RrKey::new(zone.owner(name).unwrap(), rtype),
        RecordSet::new(ttl, vals),
    )
}

/// The zone's content without the provider-managed apex SOA and NS.
pub fn managed(content: &ZoneContent) -> ZoneContent {
    let mut c = content.clone();
    c.sets.retain(|k, _| {
        !(k.has_name(content.origin.as_name())
            && matches!(k.rtype, RecordType::SOA | RecordType::NS))
    });
    c
}

pub async fn read(p: &dyn Provider, zone: &ZoneName) -> ZoneContent {
    p.read_zone(zone)
        .await
        .unwrap()
        .unwrap_or_else(|| panic!("zone {zone} should exist"))
}

/// The desired content the suite writes first: every common type, a long TXT,
/// a wildcard, an underscore name.
pub fn first_state(zone: &ZoneName, types: &[&str]) -> ZoneContent {
    let all = [
        set(zone, "www", "A", 300, &["192.0.2.10", "192.0.2.11"]),
        set(zone, "www", "AAAA", 300, &["2001:db8::10"]),
        set(zone, "api", "CNAME", 600, &["www"]),
        set(zone, "@", "MX", 3600, &["10 mx1", "20 mx2.example.net."]),
        set(zone, "@", "TXT", 3600, &["\"v=spf1 mx -all\""]),
        set(
            zone,
            "long",
            "TXT",
            3600,
            &[&format!("\"{}\"", "k".repeat(400))],
        ),
        set(
            zone,
            "_sip._tcp",
            "SRV",
            3600,
            &["10 60 5060 sip.example.net."],
        ),
        set(zone, "@", "CAA", 3600, &["0 issue \"letsencrypt.org\""]),
        set(zone, "*.dev", "A", 300, &["192.0.2.50"]),
        set(zone, "_dmarc", "TXT", 3600, &["\"v=DMARC1; p=reject\""]),
    ];
    let mut c = ZoneContent::new(zone.clone());
    for (k, s) in all {
        if types.contains(&zentralink_model::record::type_name(k.rtype).as_str()) {
            c.sets.insert(k, s);
        }
    }
    c
}

/// Runs the whole suite. `types` limits the record types to what the provider stores.
pub async fn run(p: &dyn Provider, zone: &ZoneName, types: &[&str]) {
    connection_test_and_listing(p, zone).await;
    create_update_delete(p, zone, types).await;
    stale_plans_fail_and_change_nothing(p, zone).await;
    write_probe_leaves_nothing(p, zone).await;
    gate_refuses_before_sending(p, zone).await;
}

async fn connection_test_and_listing(p: &dyn Provider, zone: &ZoneName) {
    p.test_connection().await.unwrap();
    if p.capabilities().lists_zones {
        let zones = p.list_zones().await.unwrap();
        assert!(zones.contains(zone), "{zone} not in {zones:?}");
    }
    let content = read(p, zone).await;
    assert!(
        managed(&content).is_empty(),
        "the suite needs an empty zone, found {:?}",
        content.sets.keys().collect::<Vec<_>>()
    );
}

async fn apply_and_check(p: &dyn Provider, plan: &Plan, expect: &ZoneContent) {
    let report = p.apply(plan).await.unwrap();
    assert_eq!(report.outcomes.len(), plan.changes.len());
    assert!(report.all_ok(), "{report:?}");
    let now = managed(&read(p, &plan.zone).await);
    assert_eq!(now.to_stored(), managed(expect).to_stored());
}

async fn create_update_delete(p: &dyn Provider, zone: &ZoneName, types: &[&str]) {
    let actual = read(p, zone).await;
    let desired = first_state(zone, types);
    let plan = plan_zone(&desired, &managed(&actual), &PlanScope::default());
    assert_eq!(plan.count(ChangeOp::Create), desired.len());
    apply_and_check(p, &plan, &desired).await;

    // Reading back and planning again: nothing to do (no write).
    let again = plan_zone(
        &desired,
        &managed(&read(p, zone).await),
        &PlanScope::default(),
    );
    assert!(
        again.is_empty(),
        "a no-op plan after apply: {:?}",
        again.changes
    );

    // An update of values and TTL, a create and a delete in one batch.
    let mut next = desired.clone();
    let (k, s) = set(zone, "www", "A", 60, &["192.0.2.12"]);
    next.sets.insert(k, s);
    let (k, s) = set(zone, "new", "A", 300, &["192.0.2.99"]);
    next.sets.insert(k, s);
    let (k, _) = set(zone, "*.dev", "A", 300, &["192.0.2.50"]);
    next.sets.remove(&k);
    let current = managed(&read(p, zone).await);
    let plan = plan_zone(&next, &current, &PlanScope::default());
    assert_eq!(
        (
            plan.count(ChangeOp::Create),
            plan.count(ChangeOp::Update),
            plan.count(ChangeOp::Delete)
        ),
        (1, 1, 1)
    );
    apply_and_check(p, &plan, &next).await;

    // Back to empty.
    let empty = ZoneContent::new(zone.clone());
    let plan = plan_zone(
        &empty,
        &managed(&read(p, zone).await),
        &PlanScope::default(),
    );
    apply_and_check(p, &plan, &empty).await;
}

/// A plan whose before-values no longer hold is refused, and nothing of it is applied.
async fn stale_plans_fail_and_change_nothing(p: &dyn Provider, zone: &ZoneName) {
    let empty = ZoneContent::new(zone.clone());
    let mut one = empty.clone();
    let (k, s) = set(zone, "race", "A", 300, &["192.0.2.1"]);
    one.sets.insert(k.clone(), s);
    let create = plan_zone(&one, &empty, &PlanScope::default());
    p.apply(&create).await.unwrap();

    // Planned against the state with "race", then someone changes "race" out of band.
    let mut two = one.clone();
    let (k2, s2) = set(zone, "race", "A", 300, &["192.0.2.2"]);
    two.sets.insert(k2, s2);
    let (k3, s3) = set(zone, "other", "A", 300, &["192.0.2.3"]);
    two.sets.insert(k3.clone(), s3);
    let stale = plan_zone(&two, &one, &PlanScope::default());
    let mut out_of_band = one.clone();
    let (k4, s4) = set(zone, "race", "A", 300, &["192.0.2.77"]);
    out_of_band.sets.insert(k4, s4);
    p.apply(&plan_zone(&out_of_band, &one, &PlanScope::default()))
        .await
        .unwrap();

    let err = p.apply(&stale).await.unwrap_err();
    assert!(
        matches!(err, ProviderError::Conflict(_)),
        "expected a conflict, got {err}"
    );
    let now = managed(&read(p, zone).await);
    assert_eq!(
        now.to_stored(),
        out_of_band.to_stored(),
        "nothing of the stale plan may be applied"
    );
    assert!(now.get(&k3).is_none());

    let cleanup = plan_zone(&empty, &now, &PlanScope::default());
    p.apply(&cleanup).await.unwrap();
    assert!(apply_plan(&now, &cleanup).unwrap().is_empty());
}

async fn write_probe_leaves_nothing(p: &dyn Provider, zone: &ZoneName) {
    p.probe_write(zone).await.unwrap();
    let now = read(p, zone).await;
    assert!(
        !now.sets
            .keys()
            .any(|k| k.name().to_ascii().starts_with("_zentralink-probe")),
        "the probe record must be deleted again"
    );
}

async fn gate_refuses_before_sending(p: &dyn Provider, zone: &ZoneName) {
    let mut one = ZoneContent::new(zone.clone());
    let (k, s) = set(zone, "gated", "A", 300, &["192.0.2.9"]);
    one.sets.insert(k, s);
    let plan = plan_zone(&one, &ZoneContent::new(zone.clone()), &PlanScope::default());
    // The capability check passes plain records and refuses ALIAS where unsupported.
    let caps = p.capabilities();
    check_capabilities(&caps, &plan).unwrap();
    if !caps.alias {
        let mut alias = ZoneContent::new(zone.clone());
        let (k, s) = set(zone, "shop", "ALIAS", 300, &["lb.example.net."]);
        alias.sets.insert(k, s);
        let plan = plan_zone(
            &alias,
            &ZoneContent::new(zone.clone()),
            &PlanScope::default(),
        );
        assert!(check_capabilities(&caps, &plan).is_err());
    }
}

/// A gated (not live) wrapper refuses to write, before any request leaves the process.
pub async fn not_live_writes_nothing(gated: &GatedProvider, zone: &ZoneName) {
    let before = gated.read_zone(zone).await.unwrap().unwrap();
    let mut one = managed(&before);
    let (k, s) = set(zone, "never", "A", 300, &["192.0.2.8"]);
    one.sets.insert(k, s);
    let plan = plan_zone(&one, &managed(&before), &PlanScope::default());
    assert!(matches!(
        gated.apply(&plan).await,
        Err(ProviderError::NotLive(_))
    ));
    let after = gated.read_zone(zone).await.unwrap().unwrap();
    assert_eq!(managed(&after).to_stored(), managed(&before).to_stored());
}
