//! Plans every zone of a catalog: observe (read each zone from its provider),
//! decide (the pure plan engine and policy gating). Reads only; never writes.

use std::collections::BTreeMap;

use zentralink_model::ZoneContent;
use zentralink_model::catalog::{Catalog, ZoneEntry};
use zentralink_model::plan::{PlanScope, plan_zone};
use zentralink_model::policy::{ClassifiedPlan, PlanOrigin, classify};
use zentralink_model::report::{PlanReport, ZoneReport};

use zentralink_providers::credentials::CredentialSources;
use zentralink_providers::{Provider, ProviderError, connect_with};

/// The plan of one zone against its provider's current content.
pub async fn plan_one(
    catalog: &Catalog,
    zone: &ZoneEntry,
    provider: &dyn Provider,
) -> Result<ClassifiedPlan, ProviderError> {
    let actual = provider
        .read_zone(&zone.zone)
        .await?
        .unwrap_or_else(|| ZoneContent::new(zone.zone.clone()));
    let plan = plan_zone(
        &zone.desired,
        &actual,
        &PlanScope {
            ownership: zone.ownership,
            previously_owned: None,
        },
    );
    let policy = catalog.policy_for(&zone.tenant);
    Ok(classify(
        &zone.tenant,
        plan,
        &policy.gate,
        PlanOrigin::Declared,
    ))
}

/// Plans every zone. A zone whose provider fails is reported with its error;
/// the others are still planned.
pub async fn plan_all(catalog: &Catalog, sources: &CredentialSources<'_>) -> PlanReport {
    let mut providers: BTreeMap<(String, String), Result<Box<dyn Provider>, ProviderError>> =
        BTreeMap::new();
    let mut report = PlanReport::default();
    for zone in &catalog.zones {
        let key = (zone.namespace.clone(), zone.connection.clone());
        let Some(conn) = catalog.connection(&zone.namespace, &zone.connection) else {
            report.zones.push(ZoneReport::failed(
                zone,
                format!("no ProviderConnection {}/{}", key.0, key.1),
            ));
            continue;
        };
        let provider = providers
            .entry(key)
            .or_insert_with(|| connect_with(conn, sources));
        let result = match provider {
            Ok(p) => plan_one(catalog, zone, p.as_ref()).await,
            Err(e) => Err(e.clone()),
        };
        report.zones.push(match result {
            Ok(plan) => ZoneReport::new(zone, &plan, conn.live_requested()),
            Err(e) => ZoneReport::failed(zone, e.to_string()),
        });
    }
    report
}
