//! `zentralink plan`: for every zone of a catalog, read the provider (reads
//! only, never writes) and decide with the same `decide` the reconciler
//! uses, from the declared state and the provider alone: no store, no
//! history, so change requests that already wait are not known here and a
//! connection that asks for live writes is taken as live. What a pull
//! request shows is what the operator will do with it. Does I/O (reads).

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use k8s_openapi::jiff::Timestamp;
use zentralink_model::ZoneContent;
use zentralink_model::catalog::{Catalog, ZoneEntry};
use zentralink_model::liveness::LiveDecision;
use zentralink_model::reconcile::{Decision, ZoneInputs, decide};
use zentralink_model::report::{PlanReport, ZoneReport};
use zentralink_providers::credentials::CredentialSources;
use zentralink_providers::{Provider, ProviderError, connect_in};

/// The decision about one zone against its provider's current content.
pub async fn plan_one(
    catalog: &Catalog,
    zone: &ZoneEntry,
    provider: &dyn Provider,
    live_requested: bool,
    now: Timestamp,
) -> Result<Decision, ProviderError> {
    let actual = provider
        .read_zone(&zone.zone)
        .await?
        .unwrap_or_else(|| ZoneContent::new(zone.zone.clone()));
    let policy = catalog.policy_for(&zone.tenant);
    let live = if live_requested {
        LiveDecision {
            live: true,
            reason: "Requested",
            message:
                "live writes requested (they run once the connection test and write probe pass)"
                    .into(),
        }
    } else {
        LiveDecision {
            live: false,
            reason: "ReadOnlyMode",
            message: "read-only connection: the plan is shown, never executed".into(),
        }
    };
    Ok(decide(&ZoneInputs {
        tenant: &zone.tenant,
        object: &zone.name,
        desired: &zone.desired,
        ownership: zone.ownership,
        drift: zone.drift,
        actual: &actual,
        last_applied: None,
        policy: &policy,
        requests: &[],
        live: &live,
        now,
        children: &[],
    }))
}

/// Plans every zone, each connection built once. A zone whose provider
/// fails is reported with its error; the others are still planned.
pub async fn plan_all(
    catalog: &Catalog,
    sources: &CredentialSources<'_>,
    files_root: Option<&Path>,
    requester: Option<&str>,
    now: Timestamp,
) -> PlanReport {
    let mut providers: BTreeMap<(String, String), Result<Arc<dyn Provider>, ProviderError>> =
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
            .or_insert_with(|| connect_in(conn, sources, files_root).map(Arc::from));
        let result = match provider {
            Ok(p) => plan_one(catalog, zone, p.as_ref(), conn.live_requested(), now).await,
            Err(e) => Err(e.clone()),
        };
        report.zones.push(match result {
            Ok(decision) => ZoneReport::new(
                zone,
                &decision,
                conn.live_requested(),
                &catalog.policy_for(&zone.tenant),
                requester,
            ),
            Err(e) => ZoneReport::failed(zone, e.to_string()),
        });
    }
    report
}
