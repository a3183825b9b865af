//! `zentralink plan`: for every zone of a catalog, read the provider (reads
//! only, never writes) and decide with the same `decide` the reconciler
//! uses, from the declared state and the provider alone: no store, no
//! history, so change requests that already wait are not known here and a
//! connection that asks for live writes is taken as live. What a pull
//! request shows is what the operator will do with it. Reads started before
//! the manifests were validated ([`crate::prefetch`]) are used where the
//! validated catalog agrees with them. Does I/O (reads).

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

use crate::prefetch::Prefetch;

/// The decision about one zone against its provider's current content.
pub async fn plan_one(
    catalog: &Catalog,
    zone: &ZoneEntry,
    provider: &dyn Provider,
    live_requested: bool,
    now: Timestamp,
) -> Result<Decision, ProviderError> {
    let actual = provider.read_zone(&zone.zone).await?;
    Ok(decide_zone(catalog, zone, actual, live_requested, now))
}

/// The decision about one zone against the content read from its provider
/// (`None`: the zone does not exist there).
fn decide_zone(
    catalog: &Catalog,
    zone: &ZoneEntry,
    actual: Option<ZoneContent>,
    live_requested: bool,
    now: Timestamp,
) -> Decision {
    let actual = actual.unwrap_or_else(|| ZoneContent::new(zone.zone.clone()));
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
    decide(&ZoneInputs {
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
    })
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
    plan_all_prefetched(
        catalog,
        sources,
        files_root,
        requester,
        now,
        Prefetch::default(),
    )
    .await
}

/// [`plan_all`], taking the reads `prefetch` started where they were
/// started for a zone of `catalog` on a connection equal to its validated
/// one, and reading the others as usual; the reads no zone takes are
/// aborted. The report is the one [`plan_all`] gives: `prefetch` must have
/// been started with the same `sources` and `files_root`.
pub async fn plan_all_prefetched(
    catalog: &Catalog,
    sources: &CredentialSources<'_>,
    files_root: Option<&Path>,
    requester: Option<&str>,
    now: Timestamp,
    mut prefetch: Prefetch,
) -> PlanReport {
    prefetch.keep_only(catalog, files_root);
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
        let live_requested = conn.live_requested();
        let result = match prefetch.take(zone, conn, files_root).await {
            Some(read) => {
                read.map(|actual| decide_zone(catalog, zone, actual, live_requested, now))
            }
            None => {
                // The provider the prefetch built for this connection, if
                // any, so that the connection's limits hold across its reads.
                let provider = providers.entry(key).or_insert_with(|| {
                    prefetch
                        .provider(conn, files_root)
                        .map_or_else(|| connect_in(conn, sources, files_root).map(Arc::from), Ok)
                });
                match provider {
                    Ok(p) => plan_one(catalog, zone, p.as_ref(), live_requested, now).await,
                    Err(e) => Err(e.clone()),
                }
            }
        };
        report.zones.push(match result {
            Ok(decision) => ZoneReport::new(
                zone,
                &decision,
                live_requested,
                &catalog.policy_for(&zone.tenant),
                requester,
            ),
            Err(e) => ZoneReport::failed(zone, e.to_string()),
        });
    }
    report
}
