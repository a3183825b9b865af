//! The provider suite against the zone-file provider.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::provider_suite;
use zentralink_model::ZoneName;
use zentralink_providers::GatedProvider;
use zentralink_providers::zonefile::ZoneFileProvider;

const ALL: &[&str] = &["A", "AAAA", "CNAME", "MX", "TXT", "SRV", "CAA"];

#[tokio::test]
async fn zonefile_passes_the_provider_suite() {
    let dir = tempfile::tempdir().unwrap();
    let zone = ZoneName::parse("suite.example.").unwrap();
    let p = ZoneFileProvider::new(dir.path());
    std::fs::write(
        p.path_for(&zone),
        "$ORIGIN suite.example.\n@ 3600 IN SOA ns1 hostmaster 1 3600 600 1209600 300\n@ 3600 IN NS ns1.example.net.\n",
    )
    .unwrap();
    provider_suite::run(&p, &zone, ALL).await;
    let gated = GatedProvider::new(
        Box::new(ZoneFileProvider::new(dir.path())),
        false,
        "ReadOnly",
    );
    provider_suite::not_live_writes_nothing(&gated, &zone).await;
}
