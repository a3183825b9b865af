//! The controller: DnsZone objects reconciled through the same reconciler
//! as a git revision. Reflectors cache every kind a zone's revision draws on
//! (and the labelled credential Secrets); a change to a Tenant,
//! TenantPolicy, ProviderConnection, Secret, Approval, DnsChangeRequest or
//! DnsSnapshot re-queues the zones it affects. Each reconcile: the shard
//! check, the finalizer, the zone's revision ([`super::objects`]), one pass,
//! then status by server-side apply, Events for what changed, change
//! requests mirrored, Approvals' `Accepted` conditions and DnsSnapshots'
//! status. User errors wait for a change; transient ones back off. Does I/O
//! (the Kubernetes API, the store, the providers).

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, Patch, PatchParams};
use kube::runtime::controller::{Action, Config as ControllerConfig, Controller};
use kube::runtime::events::{Event, EventType, Recorder, Reporter};
use kube::runtime::reflector::{self, ObjectRef, Store as Cache};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Client, Resource, ResourceExt};
use serde_json::json;
use zentralink_model::approval::ApprovalInput;
use zentralink_model::catalog::Policy;
use zentralink_model::resources::{
    Approval, DnsChangeRequest, DnsSnapshot, DnsZone, ProviderConnection, Tenant, TenantPolicy,
};
use zentralink_store::changes::ChangeRequestRecord;
use zentralink_store::{Store, StoreError, TenantId};

use super::lease::Shards;
use super::mirror::{self, ApprovalVerdict, RequestFacts};
use super::objects::{ClusterObjects, ScopeError, zone_revision};
use super::status::{
    ConnectionFacts, ZoneFacts, settle_conditions, transitions, zone_status, zone_verdicts,
};
use super::{CREDENTIALS_LABEL, FIELD_MANAGER, FINALIZER};
use crate::reconcile::Reconciler;

/// How the controller runs.
#[derive(Debug, Clone)]
pub struct ControllerOptions {
    /// Where relative zone-file directories of connections resolve.
    pub zonefile_root: PathBuf,
    /// How often every zone is reconciled even when nothing changed (drift).
    pub requeue: Duration,
    /// Reconciles at once.
    pub concurrency: u16,
    /// This replica's name, in Events (`reportingInstance`).
    pub identity: String,
}

/// Why a reconcile did not finish.
#[derive(Debug, thiserror::Error)]
pub enum ReconcileError {
    /// The objects cannot be reconciled as they are (no tenant, invalid,
    /// a zone another tenant manages): waits for a change, no retries.
    #[error("{0}")]
    User(String),
    /// The Kubernetes API failed: retried with backoff.
    #[error("Kubernetes API: {0}")]
    Kube(#[from] kube::Error),
    /// The store failed: retried with backoff.
    #[error("store: {0}")]
    Store(#[from] StoreError),
    /// The pass failed for the zone (a provider unreachable, ...): retried with backoff.
    #[error("{0}")]
    Pass(String),
}

/// The reflectors' caches.
#[derive(Clone)]
pub struct Caches {
    pub tenants: Cache<Tenant>,
    pub policies: Cache<TenantPolicy>,
    pub connections: Cache<ProviderConnection>,
    pub change_requests: Cache<DnsChangeRequest>,
    pub approvals: Cache<Approval>,
    pub snapshots: Cache<DnsSnapshot>,
    pub zones: Cache<DnsZone>,
    pub secrets: Cache<Secret>,
}

impl std::fmt::Debug for Caches {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Caches")
            .field("zones", &self.zones.state().len())
            .finish_non_exhaustive()
    }
}

impl Caches {
    /// Waits (up to `limit`) until every cache holds its first full list: a
    /// zone reconciled from half-filled caches would see its tenant's
    /// connections or policy missing.
    pub async fn ready(&self, limit: Duration) -> bool {
        let all = async {
            self.tenants.wait_until_ready().await?;
            self.policies.wait_until_ready().await?;
            self.connections.wait_until_ready().await?;
            self.change_requests.wait_until_ready().await?;
            self.approvals.wait_until_ready().await?;
            self.snapshots.wait_until_ready().await?;
            self.zones.wait_until_ready().await?;
            self.secrets.wait_until_ready().await
        };
        matches!(tokio::time::timeout(limit, all).await, Ok(Ok(())))
    }

    /// What a zone's revision draws on, as the caches hold it now.
    pub fn objects(&self) -> ClusterObjects {
        ClusterObjects {
            tenants: self.tenants.state(),
            policies: self.policies.state(),
            connections: self.connections.state(),
            change_requests: self.change_requests.state(),
            approvals: self.approvals.state(),
            snapshots: self.snapshots.state(),
        }
    }

    /// The namespaces of the tenant that owns `namespace`.
    fn tenant_namespaces(&self, namespace: &str) -> Vec<String> {
        self.tenants
            .state()
            .iter()
            .filter(|t| t.spec.namespaces.iter().any(|n| n == namespace))
            .flat_map(|t| t.spec.namespaces.clone())
            .collect()
    }

    /// The zones in any of `namespaces`.
    fn zones_in(&self, namespaces: &[String]) -> Vec<ObjectRef<DnsZone>> {
        self.zones
            .state()
            .iter()
            .filter(|z| z.namespace().is_some_and(|ns| namespaces.contains(&ns)))
            .map(|z| ObjectRef::from_obj(z.as_ref()))
            .collect()
    }

    /// The zones a change to something in `namespace` may affect: every zone of its tenant.
    fn tenant_zones(&self, namespace: &str) -> Vec<ObjectRef<DnsZone>> {
        let mut namespaces = self.tenant_namespaces(namespace);
        if namespaces.is_empty() {
            namespaces.push(namespace.to_owned());
        }
        self.zones_in(&namespaces)
    }
}

/// What every reconcile shares.
pub struct Context {
    pub client: Client,
    pub reconciler: Reconciler,
    pub caches: Caches,
    pub recorder: Recorder,
    pub shards: Shards,
    pub options: ControllerOptions,
    /// Consecutive failures per zone, for the backoff.
    failures: Mutex<HashMap<ObjectRef<DnsZone>, u32>>,
}

impl std::fmt::Debug for Context {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Context")
            .field("caches", &self.caches)
            .field("options", &self.options)
            .finish_non_exhaustive()
    }
}

impl Context {
    pub fn new(
        client: Client,
        reconciler: Reconciler,
        caches: Caches,
        shards: Shards,
        options: ControllerOptions,
    ) -> Self {
        let recorder = Recorder::new(
            client.clone(),
            Reporter {
                controller: FIELD_MANAGER.to_owned(),
                instance: Some(options.identity.clone()),
            },
        );
        Self {
            client,
            reconciler,
            caches,
            recorder,
            shards,
            options,
            failures: Mutex::new(HashMap::new()),
        }
    }

    fn store(&self) -> &Store {
        self.reconciler.store()
    }

    fn now(&self) -> Timestamp {
        let now = self.reconciler.clock_now();
        Timestamp::from_millisecond(now.timestamp_millis()).unwrap_or(Timestamp::UNIX_EPOCH)
    }
}

/// The reflectors for every kind but DnsZone (the controller watches those)
/// and the labelled Secrets; each a stream to drive, and the caches.
pub struct Reflectors {
    pub caches: Caches,
    tenant_events: futures::stream::BoxStream<'static, Result<Tenant, watcher::Error>>,
    policy_events: futures::stream::BoxStream<'static, Result<TenantPolicy, watcher::Error>>,
    connection_events:
        futures::stream::BoxStream<'static, Result<ProviderConnection, watcher::Error>>,
    request_events: futures::stream::BoxStream<'static, Result<DnsChangeRequest, watcher::Error>>,
    approval_events: futures::stream::BoxStream<'static, Result<Approval, watcher::Error>>,
    snapshot_events: futures::stream::BoxStream<'static, Result<DnsSnapshot, watcher::Error>>,
    secret_events: futures::stream::BoxStream<'static, Result<Secret, watcher::Error>>,
    controller: Controller<DnsZone>,
}

impl std::fmt::Debug for Reflectors {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Reflectors").finish_non_exhaustive()
    }
}

fn watch_config() -> watcher::Config {
    // paginated initial lists, so a restart with many objects does not ask for all at once
    watcher::Config::default().page_size(500)
}

macro_rules! reflect {
    ($client:expr, $kind:ty) => {{
        let (cache, writer) = reflector::store::<$kind>();
        let stream = watcher(Api::<$kind>::all($client.clone()), watch_config())
            .default_backoff()
            .reflect(writer)
            .touched_objects()
            .boxed();
        (cache, stream)
    }};
}

impl Reflectors {
    /// Builds (does not start) the watches.
    pub fn new(client: &Client, concurrency: u16) -> Self {
        let (tenants, tenant_events) = reflect!(client, Tenant);
        let (policies, policy_events) = reflect!(client, TenantPolicy);
        let (connections, connection_events) = reflect!(client, ProviderConnection);
        let (change_requests, request_events) = reflect!(client, DnsChangeRequest);
        let (approvals, approval_events) = reflect!(client, Approval);
        let (snapshots, snapshot_events) = reflect!(client, DnsSnapshot);
        let (secrets, writer) = reflector::store::<Secret>();
        let secret_events = watcher(
            Api::<Secret>::all(client.clone()),
            watch_config().labels(&format!("{CREDENTIALS_LABEL}=true")),
        )
        .default_backoff()
        .reflect(writer)
        .touched_objects()
        .boxed();
        let controller = Controller::new(Api::<DnsZone>::all(client.clone()), watch_config())
            .with_config(ControllerConfig::default().concurrency(concurrency));
        let caches = Caches {
            tenants,
            policies,
            connections,
            change_requests,
            approvals,
            snapshots,
            zones: controller.store(),
            secrets,
        };
        Self {
            caches,
            tenant_events,
            policy_events,
            connection_events,
            request_events,
            approval_events,
            snapshot_events,
            secret_events,
            controller,
        }
    }
}

/// Runs the controller until `shutdown` resolves. The reflectors' streams
/// must be driven: they are the controller's watches.
pub async fn run(
    reflectors: Reflectors,
    ctx: Arc<Context>,
    shutdown: impl std::future::Future<Output = ()> + Send + Sync + 'static,
) {
    let Reflectors {
        caches,
        tenant_events,
        policy_events,
        connection_events,
        request_events,
        approval_events,
        snapshot_events,
        secret_events,
        controller,
        ..
    } = reflectors;
    let c = caches.clone();
    let tenant_zones = move |t: Tenant| c.zones_in(&t.spec.namespaces);
    let c = caches.clone();
    let policy_zones = move |p: TenantPolicy| c.tenant_zones(&p.namespace().unwrap_or_default());
    let c = caches.clone();
    let connection_zones =
        move |p: ProviderConnection| c.tenant_zones(&p.namespace().unwrap_or_default());
    let c = caches.clone();
    let request_zones = move |r: DnsChangeRequest| {
        let ns = r.namespace().unwrap_or_default();
        if r.spec.zone_ref.is_empty() {
            c.tenant_zones(&ns)
        } else {
            vec![ObjectRef::new(&r.spec.zone_ref).within(&ns)]
        }
    };
    let c = caches.clone();
    let approval_zones = move |a: Approval| {
        let ns = a.namespace().unwrap_or_default();
        let mirrored = c
            .change_requests
            .get(&ObjectRef::new(&a.spec.change_request).within(&ns));
        match mirrored {
            Some(r) if !r.spec.zone_ref.is_empty() => {
                vec![ObjectRef::new(&r.spec.zone_ref).within(&ns)]
            }
            // a configuration request, or one not mirrored yet: the tenant's zones
            _ => c.tenant_zones(&ns),
        }
    };
    let snapshot_zones = |s: DnsSnapshot| {
        vec![ObjectRef::new(&s.spec.zone_ref).within(&s.namespace().unwrap_or_default())]
    };
    let c = caches.clone();
    let secret_zones = move |s: Secret| {
        let ns = s.namespace().unwrap_or_default();
        let name = s.name_any();
        let users: Vec<String> = c
            .connections
            .state()
            .iter()
            .filter(|p| {
                p.namespace().as_deref() == Some(ns.as_str())
                    && p.spec
                        .credentials
                        .as_ref()
                        .and_then(|c| c.secret_ref.as_ref())
                        .is_some_and(|r| r.name == name)
            })
            .map(|p| p.name_any())
            .collect();
        c.zones
            .state()
            .iter()
            .filter(|z| {
                z.namespace().as_deref() == Some(ns.as_str())
                    && users.contains(&z.spec.provider_ref.name)
            })
            .map(|z| ObjectRef::from_obj(z.as_ref()))
            .collect::<Vec<_>>()
    };
    // a newly held shard: every zone is looked at again (those of other shards return at once)
    let shard_changes = watch_changes(ctx.shards.changes());
    controller
        .watches_stream(tenant_events, tenant_zones)
        .watches_stream(policy_events, policy_zones)
        .watches_stream(connection_events, connection_zones)
        .watches_stream(request_events, request_zones)
        .watches_stream(approval_events, approval_zones)
        .watches_stream(snapshot_events, snapshot_zones)
        .watches_stream(secret_events, secret_zones)
        .reconcile_all_on(shard_changes)
        .graceful_shutdown_on(shutdown)
        .run(reconcile, error_policy, ctx)
        .for_each(|result| async move {
            match result {
                Ok((zone, _)) => tracing::debug!(zone = %zone, "reconciled"),
                Err(e) => tracing::debug!(error = %e, "reconcile did not finish"),
            }
        })
        .await;
}

/// A `watch` receiver as a stream, one item per change.
fn watch_changes<T: Send + Sync + 'static>(
    rx: tokio::sync::watch::Receiver<T>,
) -> impl futures::Stream<Item = ()> + Send + 'static {
    futures::stream::unfold(rx, |mut rx| async move {
        rx.changed().await.ok()?;
        Some(((), rx))
    })
}

/// Reconciles one zone.
pub async fn reconcile(zone: Arc<DnsZone>, ctx: Arc<Context>) -> Result<Action, ReconcileError> {
    let namespace = zone.namespace().unwrap_or_default();
    let name = zone.name_any();
    if !ctx.shards.owns(&namespace, &name) {
        return Ok(Action::await_change());
    }
    if !ctx.caches.ready(Duration::from_secs(30)).await {
        tracing::warn!(zone = %name, "the caches of the cluster's objects are not filled yet (can the operator list and watch every kind? see its RBAC)");
        return Ok(Action::requeue(Duration::from_secs(5)));
    }
    let api: Api<DnsZone> = Api::namespaced(ctx.client.clone(), &namespace);
    let deleting = zone.metadata.deletion_timestamp.is_some();
    let finalized = zone.finalizers().iter().any(|f| f == FINALIZER);
    if deleting && !finalized {
        return Ok(Action::await_change());
    }
    if !deleting && !finalized {
        // the finalizer first: a deleted zone's records then go through a plan
        let mut finalizers = zone.finalizers().to_vec();
        finalizers.push(FINALIZER.to_owned());
        api.patch(
            &name,
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"finalizers": finalizers}})),
        )
        .await?;
        return Ok(Action::await_change());
    }
    let result = apply(&zone, &ctx, &api).await;
    let key = ObjectRef::from_obj(zone.as_ref());
    if let Ok(mut failures) = ctx.failures.lock() {
        match &result {
            Ok(_) | Err(ReconcileError::User(_)) => {
                failures.remove(&key);
            }
            Err(_) => *failures.entry(key).or_insert(0) += 1,
        }
    }
    result
}

/// Backoff for transient errors (5 s doubling to 5 min); user errors wait for a change.
pub fn error_policy(zone: Arc<DnsZone>, error: &ReconcileError, ctx: Arc<Context>) -> Action {
    match error {
        ReconcileError::User(_) => Action::await_change(),
        _ => {
            let failures = ctx
                .failures
                .lock()
                .ok()
                .and_then(|f| f.get(&ObjectRef::from_obj(zone.as_ref())).copied())
                .unwrap_or(1);
            tracing::warn!(zone = %zone.name_any(), failures, "{error}");
            Action::requeue(backoff(failures))
        }
    }
}

/// 5 s, 10 s, 20 s, ... up to 5 minutes.
pub fn backoff(failures: u32) -> Duration {
    let exponent = failures.saturating_sub(1).min(6);
    Duration::from_secs((5u64 << exponent).min(300))
}

async fn apply(
    zone: &DnsZone,
    ctx: &Context,
    api: &Api<DnsZone>,
) -> Result<Action, ReconcileError> {
    let namespace = zone.namespace().unwrap_or_default();
    let name = zone.name_any();
    let generation = zone.metadata.generation;
    let previous: Vec<Condition> = zone
        .status
        .as_ref()
        .map(|s| s.conditions.clone())
        .unwrap_or_default();
    let objects = ctx.caches.objects();
    let revision = match zone_revision(&objects, zone, &ctx.options.zonefile_root) {
        Ok(r) => r,
        Err(e) => return refuse(zone, ctx, api, &previous, e.reason(), &e.to_string()).await,
    };
    let Some(entry) = revision.catalog.zones.first() else {
        let e = ScopeError::Invalid("the zone is not in its own revision".into());
        return refuse(zone, ctx, api, &previous, e.reason(), &e.to_string()).await;
    };
    let tenant_name = entry.tenant.clone();
    // two tenants never manage one zone: the one the store knows first keeps it
    if let Ok(other) = ctx.store().zone_by_zone_name(&entry.zone.to_string()).await {
        let owner = ctx.store().tenant(other.tenant_id).await?;
        if owner.slug != tenant_name || other.namespace != namespace || other.name != name {
            let why = format!(
                "zone {} is managed by tenant {} (DnsZone {}/{}); two tenants, or two DnsZones, never manage the same zone",
                entry.zone, owner.slug, other.namespace, other.name
            );
            return refuse(zone, ctx, api, &previous, "ZoneClaimed", &why).await;
        }
    }
    let connection_name = entry.connection.clone();
    let report = ctx.reconciler.pass(&revision).await;
    let result = report
        .zones
        .into_iter()
        .find(|z| z.namespace == namespace && z.name == name);
    let tenant = ctx.store().tenant_by_slug(&tenant_name).await.ok();
    let (facts, connection) = match &tenant {
        Some(t) => (
            zone_facts(ctx.store(), t.id, &namespace, &name).await?,
            connection_facts(ctx.store(), t.id, &namespace, &connection_name).await?,
        ),
        None => (ZoneFacts::default(), None),
    };
    let verdicts = zone_verdicts(result.as_ref(), None, connection.as_ref());
    let conditions = settle_conditions(&previous, &verdicts, generation, ctx.now());
    let status = zone_status(conditions.clone(), generation, result.as_ref(), &facts);
    write_zone_status(zone, api, &status).await?;
    publish_transitions(zone, ctx, &previous, &conditions).await;
    if let Some(r) = &result
        && r.executed > 0
    {
        let (type_, reason) = if r.applied == r.executed {
            (EventType::Normal, "Applied")
        } else {
            (EventType::Warning, "ApplyFailed")
        };
        publish(
            zone,
            ctx,
            type_,
            reason,
            "Execute",
            format!(
                "applied {} of {} operation(s) ({})",
                r.applied, r.executed, revision.id
            ),
        )
        .await;
    }
    if let Some(t) = &tenant {
        let policy = crate::guard::policy_in_force(ctx.store(), t.id)
            .await
            .map_err(|e| ReconcileError::Pass(e.to_string()))?
            .unwrap_or_default();
        mirror_requests(ctx, t.id, &tenant_name, zone, &policy).await?;
        judge_approvals(ctx, t.id, &tenant_name, &namespace).await?;
        snapshot_statuses(ctx, t.id, zone).await?;
    }
    let deleting = zone.metadata.deletion_timestamp.is_some();
    match &result {
        Some(r) if r.error.is_some() => {
            Err(ReconcileError::Pass(r.error.clone().unwrap_or_default()))
        }
        Some(r) if deleting && r.error.is_none() && r.planned == 0 && r.waiting_for.is_none() => {
            // nothing of the zone is left to remove: the object may go
            remove_finalizer(zone, api).await?;
            Ok(Action::await_change())
        }
        _ => Ok(Action::requeue(ctx.options.requeue)),
    }
}

/// The zone cannot be reconciled as it is: says why in its status and an
/// Event, and waits for a change.
async fn refuse(
    zone: &DnsZone,
    ctx: &Context,
    api: &Api<DnsZone>,
    previous: &[Condition],
    reason: &str,
    message: &str,
) -> Result<Action, ReconcileError> {
    let generation = zone.metadata.generation;
    let verdicts = zone_verdicts(None, Some((reason, message)), None);
    let conditions = settle_conditions(previous, &verdicts, generation, ctx.now());
    let status = zone_status(conditions.clone(), generation, None, &ZoneFacts::default());
    write_zone_status(zone, api, &status).await?;
    publish_transitions(zone, ctx, previous, &conditions).await;
    Err(ReconcileError::User(message.to_owned()))
}

/// Applies the status unless it says what the object's status says already
/// (times aside), so a pass that changed nothing writes nothing.
async fn write_zone_status(
    zone: &DnsZone,
    api: &Api<DnsZone>,
    status: &super::status::ZoneStatus,
) -> Result<(), ReconcileError> {
    let wanted = serde_json::to_value(status).unwrap_or_default();
    let current = zone
        .status
        .as_ref()
        .and_then(|s| serde_json::to_value(s).ok())
        .unwrap_or_default();
    if same_status(&current, &wanted) {
        return Ok(());
    }
    api.patch_status(
        &zone.name_any(),
        &PatchParams::apply(FIELD_MANAGER).force(),
        &Patch::Apply(json!({
            "apiVersion": "dns.zentralink.net/v1alpha1",
            "kind": "DnsZone",
            "status": wanted,
        })),
    )
    .await?;
    Ok(())
}

/// Whether two statuses say the same, `lastTransitionTime`s and absent-vs-null aside.
pub fn same_status(current: &serde_json::Value, wanted: &serde_json::Value) -> bool {
    fn strip(v: &serde_json::Value) -> serde_json::Value {
        match v {
            serde_json::Value::Object(m) => serde_json::Value::Object(
                m.iter()
                    .filter(|(k, v)| *k != "lastTransitionTime" && !v.is_null())
                    .map(|(k, v)| (k.clone(), strip(v)))
                    .collect(),
            ),
            serde_json::Value::Array(a) => serde_json::Value::Array(a.iter().map(strip).collect()),
            other => other.clone(),
        }
    }
    strip(current) == strip(wanted)
}

async fn remove_finalizer(zone: &DnsZone, api: &Api<DnsZone>) -> Result<(), ReconcileError> {
    let finalizers: Vec<String> = zone
        .finalizers()
        .iter()
        .filter(|f| *f != FINALIZER)
        .cloned()
        .collect();
    api.patch(
        &zone.name_any(),
        &PatchParams::default(),
        &Patch::Merge(json!({"metadata": {"finalizers": finalizers, "resourceVersion": zone.resource_version()}})),
    )
    .await?;
    Ok(())
}

async fn publish_transitions(
    zone: &DnsZone,
    ctx: &Context,
    before: &[Condition],
    now: &[Condition],
) {
    for (type_, reason, note) in notable_transitions(before, now) {
        publish(zone, ctx, type_, &reason, "Reconcile", note).await;
    }
}

/// The condition transitions an Event is published for: `Ready` (both
/// ways), a change request opened (`Gated`), drift found, the provider
/// failing, live writes turned on or off. A condition seen for the first
/// time in its quiet state (nothing waits, no drift) is no news.
pub fn notable_transitions(
    before: &[Condition],
    now: &[Condition],
) -> Vec<(EventType, String, String)> {
    transitions(before, now)
        .into_iter()
        .filter_map(|c| {
            let seen = before.iter().any(|p| p.type_ == c.type_);
            let (type_, reason) = match (c.type_.as_str(), c.status.as_str()) {
                ("Ready", "True") => (EventType::Normal, c.reason.clone()),
                ("Ready", _) if c.reason == "AwaitingApproval" => {
                    (EventType::Normal, c.reason.clone())
                }
                ("Ready", _) => (EventType::Warning, c.reason.clone()),
                ("AwaitingApproval", "True") => (EventType::Normal, "Gated".to_owned()),
                ("AwaitingApproval", _) if seen => {
                    (EventType::Normal, "NoLongerWaiting".to_owned())
                }
                ("Drifted", "True") => (EventType::Warning, "DriftDetected".to_owned()),
                ("Drifted", _) if seen => (EventType::Normal, "DriftGone".to_owned()),
                ("ProviderReady", "False") => (EventType::Warning, c.reason.clone()),
                ("ProviderReady", _) if seen => (EventType::Normal, c.reason.clone()),
                ("LiveWriteEnabled", _) if seen || c.status == "True" => {
                    (EventType::Normal, format!("LiveWrites{}", c.reason))
                }
                _ => return None,
            };
            Some((
                type_,
                reason,
                format!("{} is {}: {}", c.type_, c.status, c.message),
            ))
        })
        .collect()
}

async fn publish(
    zone: &DnsZone,
    ctx: &Context,
    type_: EventType,
    reason: &str,
    action: &str,
    note: String,
) {
    let event = Event {
        type_,
        reason: reason.chars().take(128).collect(),
        note: Some(note.chars().take(1000).collect()),
        action: action.to_owned(),
        secondary: None,
    };
    if let Err(e) = ctx.recorder.publish(&event, &zone.object_ref(&())).await {
        // an Event lost is logged, never a reason to fail the reconcile
        tracing::warn!(zone = %zone.name_any(), "cannot publish an Event: {e}");
    }
}

async fn zone_facts(
    store: &Store,
    tenant: TenantId,
    namespace: &str,
    name: &str,
) -> Result<ZoneFacts, StoreError> {
    let Some(record) = store.zone_by_object(tenant, namespace, name).await? else {
        return Ok(ZoneFacts::default());
    };
    let state = store.zone_state(tenant, record.id).await?;
    let latest = store.snapshots(tenant, record.id).await?.into_iter().next();
    Ok(ZoneFacts {
        last_applied_digest: state.as_ref().and_then(|s| s.last_applied_digest.clone()),
        applied_revision: state.as_ref().and_then(|s| s.revision.clone()),
        last_snapshot: latest.as_ref().map(|s| s.id.to_string()),
        record_sets: latest.and_then(|s| u32::try_from(s.record_sets).ok()),
    })
}

async fn connection_facts(
    store: &Store,
    tenant: TenantId,
    namespace: &str,
    name: &str,
) -> Result<Option<ConnectionFacts>, StoreError> {
    let record = match store.connection_by_name(tenant, namespace, name).await {
        Ok(r) => r,
        Err(StoreError::NotFound) => return Ok(None),
        Err(e) => return Err(e),
    };
    let check = |ok: Option<bool>, message: &Option<String>| {
        ok.map(|ok| (ok, message.clone().unwrap_or_default()))
    };
    Ok(Some(ConnectionFacts {
        name: format!("{namespace}/{name}"),
        live_mode: record.mode == "Live",
        acknowledged: record.acknowledge_live_writes,
        test: check(record.last_test_ok, &record.last_test_message),
        probe: check(record.last_probe_ok, &record.last_probe_message),
    }))
}

/// Requests mirrored: the zone's latest ones, and the tenant's open configuration requests.
const MIRRORED_PER_ZONE: usize = 20;

async fn mirror_requests(
    ctx: &Context,
    tenant: TenantId,
    tenant_name: &str,
    zone: &DnsZone,
    policy: &Policy,
) -> Result<(), ReconcileError> {
    let namespace = zone.namespace().unwrap_or_default();
    let mut records: Vec<(ChangeRequestRecord, String, String)> = Vec::new();
    if let Some(z) = ctx
        .store()
        .zone_by_object(tenant, &namespace, &zone.name_any())
        .await?
    {
        for r in ctx
            .store()
            .change_requests(tenant, z.id)
            .await?
            .into_iter()
            .take(MIRRORED_PER_ZONE)
        {
            records.push((r, namespace.clone(), zone.name_any()));
        }
    }
    for r in ctx
        .store()
        .config_requests(tenant)
        .await?
        .into_iter()
        .take(MIRRORED_PER_ZONE)
    {
        let ns =
            serde_json::from_value::<zentralink_model::config::StoredConfigPlan>(r.plan.clone())
                .map(|p| p.namespace)
                .unwrap_or_else(|_| namespace.clone());
        records.push((r, ns, String::new()));
    }
    let _ = tenant_name;
    for (record, ns, zone_ref) in records {
        let approved_by: Vec<String> = ctx
            .store()
            .counted_approvals(tenant, record.id)
            .await?
            .into_iter()
            .filter(|a| a.decision == "Approve" && a.plan_digest == record.plan_digest)
            .map(|a| a.approver)
            .collect();
        let facts = RequestFacts {
            name: record.name.clone(),
            namespace: ns.clone(),
            zone_ref,
            kind: record.kind.clone(),
            plan: record.plan.clone(),
            digest: record.plan_digest.clone(),
            state: record.state.clone(),
            requester: record.requester.clone(),
            reason: record.reason.clone(),
            rollback_to: record.rollback_to.map(|s| s.to_string()),
            expires_at: Timestamp::from_millisecond(record.expires_at.timestamp_millis())
                .unwrap_or(Timestamp::UNIX_EPOCH),
            approved_by,
            message: record.message.clone(),
        };
        let existing = ctx
            .caches
            .change_requests
            .get(&ObjectRef::new(&record.name).within(&ns));
        let made_by_person = existing
            .as_ref()
            .is_some_and(|e| !super::objects::made_by_operator(&e.metadata));
        let api: Api<DnsChangeRequest> = Api::namespaced(ctx.client.clone(), &ns);
        let object = mirror::request_object(&facts, made_by_person);
        let spec_current = existing.as_ref().is_some_and(|e| {
            e.spec.plan_digest.as_deref() == Some(facts.digest.as_str())
                && serde_json::to_value(&e.spec.changes).ok()
                    == Some(object["spec"]["changes"].clone())
        });
        if !spec_current {
            api.patch(
                &record.name,
                &PatchParams::apply(FIELD_MANAGER).force(),
                &Patch::Apply(&object),
            )
            .await?;
        }
        let previous = existing
            .as_ref()
            .and_then(|e| e.status.as_ref())
            .map(|s| s.conditions.clone())
            .unwrap_or_default();
        let generation = existing.as_ref().and_then(|e| e.metadata.generation);
        let status = mirror::request_status(&facts, policy, &previous, generation, ctx.now());
        let current = existing
            .as_ref()
            .and_then(|e| e.status.as_ref())
            .and_then(|s| serde_json::to_value(s).ok())
            .unwrap_or_default();
        if !same_status(&current, &status["status"]) {
            api.patch_status(
                &record.name,
                &PatchParams::apply(FIELD_MANAGER).force(),
                &Patch::Apply(&status),
            )
            .await?;
        }
    }
    Ok(())
}

/// The `Accepted` condition of the tenant's Approvals that have no final verdict yet.
async fn judge_approvals(
    ctx: &Context,
    tenant: TenantId,
    tenant_name: &str,
    namespace: &str,
) -> Result<(), ReconcileError> {
    let namespaces = ctx.caches.tenant_namespaces(namespace);
    for approval in ctx.caches.approvals.state() {
        let ns = approval.namespace().unwrap_or_default();
        if !namespaces.contains(&ns) {
            continue;
        }
        let previous: Vec<Condition> = approval
            .status
            .as_ref()
            .map(|s| s.conditions.clone())
            .unwrap_or_default();
        let settled = previous.iter().any(|c| {
            c.type_ == "Accepted"
                && (c.status == "True"
                    || (c.status == "False"
                        && c.reason != "UnknownChangeRequest"
                        && c.reason != "NotJudgedYet"))
        });
        if settled {
            continue;
        }
        let verdict = match ctx
            .store()
            .change_request_by_name(tenant, &approval.spec.change_request)
            .await
        {
            Err(StoreError::NotFound) => ApprovalVerdict::UnknownRequest {
                request: approval.spec.change_request.clone(),
            },
            Err(e) => return Err(e.into()),
            Ok(request) => {
                let input = ApprovalInput::from_spec(tenant_name, &ns, &approval.spec);
                let fingerprint = crate::approvals::document_fingerprint(&input);
                match ctx
                    .store()
                    .judgment(tenant, request.id, &fingerprint)
                    .await?
                {
                    Some(j) if j.accepted => ApprovalVerdict::Accepted {
                        message: j.verification,
                    },
                    Some(j) => ApprovalVerdict::Refused {
                        code: j.refusal.unwrap_or_else(|| "Refused".into()),
                        message: j.verification,
                    },
                    None => ApprovalVerdict::NotJudged,
                }
            }
        };
        let generation = approval.metadata.generation;
        let status = mirror::approval_status(&verdict, &previous, generation, ctx.now());
        let current = approval
            .status
            .as_ref()
            .and_then(|s| serde_json::to_value(s).ok())
            .unwrap_or_default();
        if same_status(&current, &status["status"]) {
            continue;
        }
        let api: Api<Approval> = Api::namespaced(ctx.client.clone(), &ns);
        api.patch_status(
            &approval.name_any(),
            &PatchParams::apply(FIELD_MANAGER).force(),
            &Patch::Apply(&status),
        )
        .await?;
        let (type_, reason, note) = match &verdict {
            ApprovalVerdict::Accepted { message } => {
                (EventType::Normal, "ApprovalAccepted", message.clone())
            }
            ApprovalVerdict::Refused { code, message } => (
                EventType::Warning,
                "ApprovalRefused",
                format!("{code}: {message}"),
            ),
            ApprovalVerdict::UnknownRequest { request } => (
                EventType::Warning,
                "ApprovalRefused",
                format!("no change request {request} waits in namespace {ns}"),
            ),
            ApprovalVerdict::NotJudged => continue,
        };
        let event = Event {
            type_,
            reason: reason.into(),
            note: Some(note.chars().take(1000).collect()),
            action: "Judge".into(),
            secondary: None,
        };
        if let Err(e) = ctx
            .recorder
            .publish(&event, &approval.object_ref(&()))
            .await
        {
            tracing::warn!(approval = %approval.name_any(), "cannot publish an Event: {e}");
        }
    }
    Ok(())
}

/// The status of the zone's DnsSnapshots the pass took.
async fn snapshot_statuses(
    ctx: &Context,
    tenant: TenantId,
    zone: &DnsZone,
) -> Result<(), ReconcileError> {
    let namespace = zone.namespace().unwrap_or_default();
    for s in ctx.caches.snapshots.state() {
        if s.namespace().as_deref() != Some(namespace.as_str())
            || s.spec.zone_ref != zone.name_any()
            || s.status.as_ref().is_some_and(|st| st.snapshot_id.is_some())
        {
            continue;
        }
        let asked_by = format!("{namespace}/{}", s.name_any());
        let Some(taken) = ctx.store().snapshot_requested_by(tenant, &asked_by).await? else {
            continue;
        };
        let previous: Vec<Condition> = s
            .status
            .as_ref()
            .map(|st| st.conditions.clone())
            .unwrap_or_default();
        let status = mirror::snapshot_status(
            &taken.id.to_string(),
            &taken.digest,
            u32::try_from(taken.record_sets).unwrap_or(0),
            &previous,
            s.metadata.generation,
            ctx.now(),
        );
        let api: Api<DnsSnapshot> = Api::namespaced(ctx.client.clone(), &namespace);
        api.patch_status(
            &s.name_any(),
            &PatchParams::apply(FIELD_MANAGER).force(),
            &Patch::Apply(&status),
        )
        .await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests;
