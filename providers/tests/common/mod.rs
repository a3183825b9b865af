//! Shared by the provider tests: the one provider test suite every provider
//! passes, fakes of the Hetzner and Cloudflare APIs, and misbehaving servers.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, dead_code)]

pub mod fake_cloudflare;
pub mod fake_hetzner;
pub mod hostile_http;
pub mod provider_suite;

use zentralink_model::ZoneContent;
use zentralink_model::catalog::Catalog;
use zentralink_model::plan::{Plan, PlanScope, plan_zone};
use zentralink_providers::credentials::CredentialSources;
use zentralink_providers::{ProviderError, connect_with};

/// Plans every zone of a catalog through the connection it declares: connect
/// with the catalog's credentials, read the zone, plan. Reads only.
pub async fn plan_catalog(
    catalog: &Catalog,
    sources: &CredentialSources<'_>,
) -> Vec<Result<Plan, ProviderError>> {
    let mut plans = Vec::new();
    for zone in &catalog.zones {
        let conn = catalog
            .connection(&zone.namespace, &zone.connection)
            .unwrap();
        let plan = match connect_with(conn, sources) {
            Ok(p) => p.read_zone(&zone.zone).await.map(|actual| {
                let actual = actual.unwrap_or_else(|| ZoneContent::new(zone.zone.clone()));
                plan_zone(
                    &zone.desired,
                    &actual,
                    &PlanScope {
                        ownership: zone.ownership,
                        previously_owned: None,
                    },
                )
            }),
            Err(e) => Err(e),
        };
        plans.push(plan);
    }
    plans
}
