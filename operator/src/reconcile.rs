//! One reconcile pass over a revision of the desired state: for every zone,
//! observe (the provider's content, the store's state), decide
//! (`zentralink_model::reconcile::decide`, pure), execute (snapshots, one
//! provider batch, history, audit), zones concurrently with a bound. A batch
//! is marked `Executing` in the store before the provider is called; a pass
//! that finds such a mark (a crash) re-reads the provider and records what
//! actually happened, never applying twice. Does I/O.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;
use std::time::Instant;

use chrono::{DateTime, Utc};
use k8s_openapi::jiff::Timestamp;
use tokio::sync::Semaphore;
use zentralink_model::catalog::{Catalog, ConnectionEntry, Policy, ZoneEntry};
use zentralink_model::digest::{PlanDigest, zone_digest};
use zentralink_model::liveness::{CheckOutcome, LiveDecision, decide as decide_live};
use zentralink_model::plan::{ChangeOp, Ownership, Plan, StoredPlan, same_state};
use zentralink_model::reconcile::{
    Decision, Execution, LastApplied, Outcome, RequestKind, RequestState, RequestView, ZoneInputs,
    decide,
};
use zentralink_model::record::{RecordSet, RrKey, parse_record_type, type_name};
use zentralink_model::resources::{ApprovalSpec, ConnectionMode, RecordSetState};
use zentralink_model::secrets::{Keyring, SecretError};
use zentralink_model::{ZoneContent, ZoneName};
use zentralink_providers::credentials::{CredentialEnv, CredentialSources, SecretResolver};
use zentralink_providers::{GatedProvider, Provider, ProviderError, connect_in};
use zentralink_store::audit::{Actor, AuditEvent};
use zentralink_store::changes::{
    ChangeOutcome, ChangeRequestRecord, NewChangeRequest, RequestKind as StoredKind,
};
use zentralink_store::connections::{ConnectionCheck, ConnectionRecord, NewConnection};
use zentralink_store::reconcile::{
    ExecutionEnd, FinishedExecution, NewExecution, ZoneStateRecord, ZoneSummary,
};
use zentralink_store::snapshots::SnapshotReason;
use zentralink_store::{
    ChangeRequestId, ExecutionId, SnapshotId, Store, StoreError, TenantId, ZoneId,
};

use crate::prefetch::{ClaimedRead, Prefetch};
use crate::source::Revision;

/// Where credentials come from in this process (owned, for a long-running operator).
pub struct Credentials {
    pub keyring: Result<Keyring, SecretError>,
    pub env: CredentialEnv,
    pub secrets: Option<Arc<dyn SecretResolver>>,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("keyring", &self.keyring.is_ok())
            .field("env", &self.env)
            .field("secrets", &self.secrets.is_some())
            .finish()
    }
}

impl Credentials {
    pub fn sources(&self) -> CredentialSources<'_> {
        CredentialSources {
            keyring: self.keyring.as_ref().map_err(Clone::clone),
            secrets: self.secrets.as_deref(),
            env: &self.env,
        }
    }
}

/// The time, as a parameter (tests move it).
pub trait Clock: Send + Sync + std::fmt::Debug {
    fn now(&self) -> DateTime<Utc>;
}

/// The system's clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }
}

/// How a pass runs.
#[derive(Debug, Clone)]
pub struct Options {
    /// Zones reconciled at once (each connection's own limits apply too).
    pub concurrency: usize,
    /// Who the operator is, in audit events.
    pub actor: String,
    /// Whether anything may be written (false: a dry pass that only decides, as `plan` does).
    pub execute: bool,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            concurrency: 8,
            actor: "zentralink-operator".into(),
            execute: true,
        }
    }
}

/// What happened to one zone in a pass.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ZoneResult {
    pub tenant: String,
    pub namespace: String,
    pub name: String,
    pub zone: String,
    /// The decision's outcome; `None` when the zone could not be reconciled.
    pub outcome: Option<Outcome>,
    /// Operations in the declared plan.
    pub planned: usize,
    /// Operations executed now, and how many of them applied.
    pub executed: usize,
    pub applied: usize,
    /// The change request the zone waits for, if any.
    pub waiting_for: Option<String>,
    pub drift: Vec<String>,
    /// Why nothing executes, or the error that stopped the zone.
    pub message: Option<String>,
    pub error: Option<String>,
    /// How long the zone's pass took.
    pub duration_ms: u64,
}

/// What a pass did.
#[derive(Debug, Clone, Default, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PassReport {
    pub revision: String,
    pub zones: Vec<ZoneResult>,
}

impl PassReport {
    /// Zones that failed (provider or store errors).
    pub fn errors(&self) -> usize {
        self.zones.iter().filter(|z| z.error.is_some()).count()
    }
}

/// Why a zone could not be reconciled.
#[derive(Debug, thiserror::Error)]
enum ZoneError {
    #[error(transparent)]
    Provider(#[from] ProviderError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("{0}")]
    Other(String),
}

/// What a zone's pass needs of its revision.
struct Inputs<'a> {
    revision: &'a str,
    requester: &'a str,
    snapshots: &'a [(String, Option<String>)],
    /// Rollbacks committed as DnsChangeRequest documents with `rollbackTo`.
    rollbacks: &'a [CommittedRollback],
    approvals: &'a [ApprovalSpec],
    /// Zones managed here that are delegated below this one: (zone, namespace, connection).
    children: &'a [(ZoneName, String, String)],
    connections: &'a BTreeMap<(String, String), Result<Connected, String>>,
}

/// When a request opened at `now` expires, `secs` later (capped far in the
/// future rather than overflowing).
pub fn expires(now: DateTime<Utc>, secs: u64) -> DateTime<Utc> {
    i64::try_from(secs)
        .ok()
        .and_then(chrono::Duration::try_seconds)
        .and_then(|d| now.checked_add_signed(d))
        .unwrap_or(DateTime::<Utc>::MAX_UTC)
}

/// The revision's own declaration of a connection in force, when it is the
/// one in force (same tenant and spec): reads ahead were started from the
/// revision's files, the pass runs on the configuration in force (which
/// differs while a change of the connection waits for approval, and keeps
/// zone-file directories absolute).
fn declared_as_in_force<'r>(
    revision: &'r Revision,
    in_force: &ConnectionEntry,
) -> Option<&'r ConnectionEntry> {
    revision
        .catalog
        .connection(&in_force.namespace, &in_force.name)
        .filter(|d| d.tenant == in_force.tenant && d.spec == in_force.spec)
}

/// A rollback asked for by committing a DnsChangeRequest with `rollbackTo`:
/// opened once, under the document's name, with the commit's requester.
#[derive(Debug, Clone)]
struct CommittedRollback {
    /// The document's `metadata.name`: the change request's name.
    name: String,
    /// `spec.rollbackTo`.
    snapshot: String,
    reason: Option<String>,
    /// The commit's author (or, under `requireSignedCommits`, the owner of
    /// the key that signed it); why not, when the commit cannot name one.
    requester: Result<String, String>,
}

/// The reconciler: a store, credentials, a clock and options.
#[derive(Clone)]
pub struct Reconciler {
    store: Store,
    credentials: Arc<Credentials>,
    clock: Arc<dyn Clock>,
    options: Options,
    metrics: Option<crate::metrics::Metrics>,
}

impl std::fmt::Debug for Reconciler {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Reconciler")
            .field("options", &self.options)
            .finish()
    }
}

/// A connection, built once per pass and shared by its zones.
struct Connected {
    entry: ConnectionEntry,
    record: ConnectionRecord,
    tenant: TenantId,
    provider: Result<Arc<dyn Provider>, ProviderError>,
    live: LiveDecision,
}

impl Reconciler {
    pub fn new(
        store: Store,
        credentials: Arc<Credentials>,
        clock: Arc<dyn Clock>,
        options: Options,
    ) -> Self {
        Self {
            store,
            credentials,
            clock,
            options,
            metrics: None,
        }
    }

    /// Records provider calls, errors and executions in `metrics`.
    pub fn with_metrics(mut self, metrics: crate::metrics::Metrics) -> Self {
        self.metrics = Some(metrics);
        self
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    pub(crate) fn options(&self) -> &Options {
        &self.options
    }

    pub(crate) fn metrics(&self) -> Option<&crate::metrics::Metrics> {
        self.metrics.as_ref()
    }

    pub(crate) fn clock_now(&self) -> DateTime<Utc> {
        self.clock.now()
    }

    fn actor(&self) -> Actor {
        Actor::Operator(self.options.actor.clone())
    }

    fn now(&self) -> (DateTime<Utc>, Timestamp) {
        let now = self.clock.now();
        (now, to_timestamp(now))
    }

    /// One pass over every zone of the revision. Zones run concurrently,
    /// at most `concurrency` at a time; a zone's task borrows its entry from
    /// the revision's shared catalog, and is made only when it may start.
    pub async fn pass(&self, revision: &Revision) -> PassReport {
        self.pass_prefetched(revision, Prefetch::default()).await
    }

    /// [`Reconciler::pass`], taking the zone reads `prefetch` started while
    /// the revision was loading (`zentralink reconcile` on a directory). A
    /// read ahead predates the zone's lock: it is used only when no
    /// interrupted execution had to be recovered and the provider vouches
    /// that the zone is still as read ([`Provider::still_as_read`]);
    /// otherwise the zone is read again under the lock, as without it.
    pub async fn pass_prefetched(&self, revision: &Revision, mut prefetch: Prefetch) -> PassReport {
        let files_root = revision.files_root.as_deref();
        prefetch.keep_only(&revision.catalog, files_root);
        let effective = Arc::new(self.configuration(revision).await);
        let connections = self
            .connect_all(revision, &effective.connections, &prefetch)
            .await;
        let connections = Arc::new(connections);
        let related = Arc::new(Related::index(&revision.catalog));
        let bound = Arc::new(Semaphore::new(self.options.concurrency.max(1)));
        let mut tasks = tokio::task::JoinSet::new();
        let mut results: Vec<(usize, ZoneResult)> =
            Vec::with_capacity(revision.catalog.zones.len());
        let collect = |results: &mut Vec<(usize, ZoneResult)>, joined| match joined {
            Ok(r) => results.push(r),
            Err(e) => tracing::error!("a zone's reconcile task stopped: {e}"),
        };
        for (i, zone) in revision.catalog.zones.iter().enumerate() {
            let key = (zone.namespace.clone(), zone.name.clone());
            if let Some(why) = effective.refused.get(&key) {
                results.push((i, refused_result(zone, why)));
                continue;
            }
            // The semaphore is never closed: a permit always comes.
            let slot = Arc::clone(&bound).acquire_owned().await.ok();
            while let Some(joined) = tasks.try_join_next() {
                collect(&mut results, joined);
            }
            let requester = effective
                .requesters
                .get(&key)
                .cloned()
                .unwrap_or_else(|| revision.requester(&zone.namespace, &zone.name).to_owned());
            let policy = effective.policy_for(&zone.tenant);
            let rollbacks = committed_rollbacks(revision, related.change_requests(&key), &policy);
            let snapshots: Vec<(String, Option<String>)> = related
                .snapshots(&key)
                .iter()
                .filter_map(|&s| revision.catalog.snapshots.get(s))
                .map(|s| (format!("{}/{}", s.namespace, s.name), s.spec.reason.clone()))
                .collect();
            let read_ahead =
                match connections.get(&(zone.namespace.clone(), zone.connection.clone())) {
                    Some(Ok(c)) => declared_as_in_force(revision, &c.entry)
                        .and_then(|declared| prefetch.claim(zone, declared, files_root)),
                    _ => None,
                };
            let this = self.clone();
            let catalog = Arc::clone(&revision.catalog);
            let connections = Arc::clone(&connections);
            let related = Arc::clone(&related);
            let revision_id = revision.id.clone();
            tasks.spawn(async move {
                let _slot = slot;
                let zone = &catalog.zones[i];
                let children = related.children(&catalog, i);
                let started = Instant::now();
                let result = this
                    .zone(
                        zone,
                        &policy,
                        &connections,
                        &Inputs {
                            revision: &revision_id,
                            requester: &requester,
                            snapshots: &snapshots,
                            rollbacks: &rollbacks,
                            approvals: related.approvals(&zone.namespace),
                            children: &children,
                            connections: &connections,
                        },
                        read_ahead,
                    )
                    .await;
                tracing::debug!(zone = %zone.zone, elapsed = ?started.elapsed(), "zone reconciled");
                (i, result)
            });
        }
        while let Some(joined) = tasks.join_next().await {
            collect(&mut results, joined);
        }
        results.sort_by_key(|(i, _)| *i);
        if self.options.execute {
            self.warn_unknown_approvals(revision).await;
        }
        PassReport {
            revision: revision.id.clone(),
            zones: results.into_iter().map(|(_, r)| r).collect(),
        }
    }

    /// An Approval naming no change request of its tenant counts for
    /// nothing; says so in the log (a typo, or a request of another tenant).
    async fn warn_unknown_approvals(&self, revision: &Revision) {
        for a in &revision.catalog.approvals {
            let known = match self
                .store
                .change_requests_named(&a.spec.change_request)
                .await
            {
                Ok(found) => {
                    let tenant = self.store.tenant_by_slug(&a.tenant).await.ok();
                    found
                        .iter()
                        .any(|r| tenant.as_ref().is_some_and(|t| t.id == r.tenant_id))
                }
                Err(e) => {
                    tracing::warn!(
                        "cannot look up change request {}: {e}",
                        a.spec.change_request
                    );
                    continue;
                }
            };
            if !known {
                tracing::warn!(
                    approval = %format!("{}/{}", a.namespace, a.name),
                    file = %a.origin.file,
                    "the Approval names change request {:?}, which tenant {} does not have; it counts for nothing (zentralink status lists the waiting requests)",
                    a.spec.change_request,
                    a.tenant
                );
            }
        }
    }

    /// Registers every connection of the revision, builds its provider and
    /// decides whether it may write (running the test and probe when needed).
    async fn connect_all(
        &self,
        revision: &Revision,
        connections: &BTreeMap<(String, String), ConnectionEntry>,
        prefetch: &Prefetch,
    ) -> BTreeMap<(String, String), Result<Connected, String>> {
        let sources = self.credentials.sources();
        let mut out = BTreeMap::new();
        for (key, entry) in connections {
            // The provider the reads ahead went through, so that its rate
            // and concurrency limits hold across all the connection's calls.
            let built = declared_as_in_force(revision, entry)
                .and_then(|declared| prefetch.provider(declared, revision.files_root.as_deref()));
            let connected = self.connect_one(revision, entry, &sources, built).await;
            if let Err(e) = &connected {
                tracing::warn!(connection = %format!("{}/{}", key.0, key.1), "{e}");
            }
            out.insert(key.clone(), connected);
        }
        out
    }

    async fn connect_one(
        &self,
        revision: &Revision,
        entry: &ConnectionEntry,
        sources: &CredentialSources<'_>,
        built: Option<Arc<dyn Provider>>,
    ) -> Result<Connected, String> {
        let display = revision
            .catalog
            .tenants
            .get(&entry.tenant)
            .map_or_else(|| entry.tenant.clone(), |t| t.display_name.clone());
        let tenant = self
            .store
            .ensure_tenant(&entry.tenant, &display)
            .await
            .map_err(|e| e.to_string())?;
        let settings = stored_settings(entry, revision.files_root.as_deref())?;
        let mode = match entry.spec.mode {
            ConnectionMode::Live => "Live",
            ConnectionMode::ReadOnly => "ReadOnly",
        };
        let mut record = self
            .store
            .ensure_connection(
                tenant,
                &NewConnection {
                    namespace: &entry.namespace,
                    name: &entry.name,
                    provider_type: entry.spec.provider_type.as_str(),
                    settings,
                    credentials: None,
                    mode,
                    acknowledge_live_writes: entry.spec.acknowledge_live_writes,
                },
            )
            .await
            .map_err(|e| e.to_string())?;
        let provider: Result<Arc<dyn Provider>, ProviderError> = match built {
            Some(p) => Ok(p),
            None => connect_in(entry, sources, revision.files_root.as_deref()).map(Arc::from),
        };
        if let Ok(p) = &provider
            && entry.live_requested()
            && self.options.execute
            && needs_check(&record, self.clock.now())
        {
            // The probe writes into a zone of this connection that exists at the provider.
            let mut probe_zone = None;
            for z in revision
                .catalog
                .zones
                .iter()
                .filter(|z| z.namespace == entry.namespace && z.connection == entry.name)
            {
                probe_zone.get_or_insert_with(|| z.zone.clone());
                if matches!(p.read_zone(&z.zone).await, Ok(Some(_))) {
                    probe_zone = Some(z.zone.clone());
                    break;
                }
            }
            record = self
                .check_connection(tenant, entry, &record, p.as_ref(), probe_zone.as_ref())
                .await
                .map_err(|e| e.to_string())?;
        }
        let live = live_decision(entry, &record);
        Ok(Connected {
            entry: entry.clone(),
            record,
            tenant,
            provider,
            live,
        })
    }

    /// Runs the connection test and write probe, and records them (read-only first).
    async fn check_connection(
        &self,
        tenant: TenantId,
        entry: &ConnectionEntry,
        record: &ConnectionRecord,
        provider: &dyn Provider,
        probe_zone: Option<&ZoneName>,
    ) -> Result<ConnectionRecord, StoreError> {
        let report = zentralink_providers::liveness::check(
            entry,
            provider,
            probe_zone,
            to_timestamp(self.clock.now()),
        )
        .await;
        self.store
            .record_connection_check(
                tenant,
                record.id,
                ConnectionCheck::Test,
                report.test.ok,
                &report.test.message,
            )
            .await?;
        if let Some(p) = &report.probe {
            self.store
                .record_connection_check(
                    tenant,
                    record.id,
                    ConnectionCheck::Probe,
                    p.ok,
                    &p.message,
                )
                .await?;
        }
        self.store
            .audit(
                AuditEvent::new(Some(tenant), self.actor(), "connection.tested")
                    .target(
                        "ProviderConnection",
                        format!("{}/{}", entry.namespace, entry.name),
                    )
                    .meta("testPassed", report.test.ok)
                    .meta("testMessage", report.test.message.clone())
                    .meta("liveWriteEnabled", report.decision.live)
                    .meta("reason", report.decision.reason),
            )
            .await?;
        self.store.connection(tenant, record.id).await
    }

    /// Reconciles one zone; every error stays with the zone.
    async fn zone(
        &self,
        zone: &ZoneEntry,
        policy: &Policy,
        connections: &BTreeMap<(String, String), Result<Connected, String>>,
        inputs: &Inputs<'_>,
        read_ahead: Option<ClaimedRead>,
    ) -> ZoneResult {
        let mut result = ZoneResult {
            tenant: zone.tenant.clone(),
            namespace: zone.namespace.clone(),
            name: zone.name.clone(),
            zone: zone.zone.to_string(),
            outcome: None,
            planned: 0,
            executed: 0,
            applied: 0,
            waiting_for: None,
            drift: Vec::new(),
            message: None,
            error: None,
            duration_ms: 0,
        };
        let started = Instant::now();
        let key = (zone.namespace.clone(), zone.connection.clone());
        let conn = match connections.get(&key) {
            Some(Ok(c)) => c,
            Some(Err(e)) => {
                result.error = Some(format!("connection {}/{}: {e}", key.0, key.1));
                return result;
            }
            None => {
                result.error = Some(format!("no ProviderConnection {}/{}", key.0, key.1));
                return result;
            }
        };
        if let Err(e) = self
            .zone_inner(zone, policy, conn, inputs, read_ahead, &mut result)
            .await
        {
            tracing::warn!(zone = %zone.zone, "reconcile failed: {e}");
            if let (Some(m), ZoneError::Provider(p)) = (&self.metrics, &e) {
                m.provider_failed(&format!("{}/{}", key.0, key.1), p);
            }
            result.error = Some(e.to_string());
        }
        result.duration_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
        result
    }

    async fn zone_inner(
        &self,
        zone: &ZoneEntry,
        policy: &Policy,
        conn: &Connected,
        inputs: &Inputs<'_>,
        mut read_ahead: Option<ClaimedRead>,
        result: &mut ZoneResult,
    ) -> Result<(), ZoneError> {
        let (revision, requester, snapshots) =
            (inputs.revision, inputs.requester, inputs.snapshots);
        let provider = conn.provider.as_ref().map_err(Clone::clone)?;
        let tenant = conn.tenant;
        let zone_id = self
            .store
            .ensure_zone(
                tenant,
                &zone.namespace,
                &zone.name,
                &zone.zone.to_string(),
                Some(conn.record.id),
            )
            .await?;
        let Some(_lock) = self.store.try_lock_zone(zone_id).await? else {
            result.message = Some("another pass holds this zone; skipped".into());
            return Ok(());
        };
        let gated = GatedProvider::shared(
            Arc::clone(provider),
            conn.live.live && self.options.execute,
            conn.live.message.clone(),
        );
        if self.options.execute
            && let Some(in_flight) = self.store.execution_in_flight(tenant, zone_id).await?
        {
            // What was read ahead predates the recovery.
            read_ahead = None;
            self.recover(tenant, zone, &gated, in_flight).await?;
        }

        // ---- observe (the stored state first: a read ahead may still be
        // on its way)
        let mut state = self.store.zone_state(tenant, zone_id).await?;
        let basis = applied_basis(zone, state.as_ref());
        if let Some(s) = state.as_mut() {
            // Parsed into the basis: the list is not held twice through the pass.
            s.owned = serde_json::Value::Null;
        }
        let connection = format!("{}/{}", conn.entry.namespace, conn.entry.name);
        let read_started = Instant::now();
        let (read, digest) = match self.read_ahead(zone, &gated, read_ahead).await {
            Some((content, digest)) => (Ok(Some(content)), digest),
            None => (gated.read_zone(&zone.zone).await, None),
        };
        if let Some(m) = &self.metrics {
            m.provider_call(&connection, "read", read_started.elapsed());
        }
        let read = read?.unwrap_or_else(|| ZoneContent::new(zone.zone.clone()));
        let observed = self.last_applied(tenant, basis, read, digest).await?;
        let (actual, last_applied) = (observed.actual(), observed.last_applied());
        let mut records = self.store.change_requests(tenant, zone_id).await?;
        let mut notes = Vec::new();
        if self.options.execute
            && conn.live.live
            && self
                .open_committed_rollbacks(
                    tenant, zone, zone_id, policy, actual, &records, inputs, &mut notes,
                )
                .await?
        {
            records = self.store.change_requests(tenant, zone_id).await?;
        }
        if self.options.execute
            && self
                .settle_approvals(tenant, zone, policy, &records, inputs.approvals)
                .await?
        {
            records = self.store.change_requests(tenant, zone_id).await?;
        }
        let records: Vec<ChangeRequestRecord> = records.into_iter().take(64).collect();
        let mut views = Vec::with_capacity(records.len());
        for r in &records {
            views.push(self.request_view(tenant, r).await?);
        }
        let (now, now_ts) = self.now();
        let children = self.child_zones(zone, actual, &views, inputs).await?;

        // ---- decide
        let decision = decide(&ZoneInputs {
            tenant: &zone.tenant,
            object: &zone.name,
            desired: &zone.desired,
            ownership: zone.ownership,
            drift: zone.drift,
            actual,
            last_applied,
            policy,
            requests: &views,
            live: &conn.live,
            now: now_ts,
            children: &children,
        });
        result.outcome = Some(decision.outcome);
        result.planned = decision.plan.plan.changes.len();
        result.drift = decision.drift.iter().map(|c| c.key.to_string()).collect();
        result.message = match (notes.is_empty(), &decision.reason) {
            (true, reason) => reason.clone(),
            (false, Some(reason)) => Some(format!("{}; {reason}", notes.join("; "))),
            (false, None) => Some(notes.join("; ")),
        };
        result.waiting_for = decision
            .requests
            .open
            .as_ref()
            .map(|r| r.name.clone())
            .or_else(|| decision.requests.keep.clone());
        if !self.options.execute {
            return Ok(());
        }

        // ---- execute
        for (asked_by, note) in snapshots {
            let taken = self
                .store
                .save_requested_snapshot(
                    tenant,
                    zone_id,
                    conn.entry.spec.provider_type.as_str(),
                    actual,
                    Some(asked_by),
                    note.as_deref(),
                )
                .await?;
            tracing::debug!(zone = %zone.zone, snapshot = %taken.id, "DnsSnapshot {asked_by}");
        }
        let by_name: BTreeMap<&str, &ChangeRequestRecord> =
            records.iter().map(|r| (r.name.as_str(), r)).collect();
        self.act_on_requests(
            tenant, zone, zone_id, &decision, &by_name, revision, requester, now,
        )
        .await?;
        if let Some(held) = last_applied.and_then(|l| l.held_for)
            && held != zone_digest(&zone.desired)
        {
            self.store.release_hold(tenant, zone_id).await?;
        }
        let mut summary_message = decision.reason.clone();
        if let Some(execution) = &decision.execute {
            let request = execution
                .request
                .as_deref()
                .and_then(|n| by_name.get(n).copied());
            let asked_by = request.map_or(requester, |r| r.requester.as_str());
            match self
                .execute(
                    tenant,
                    zone,
                    zone_id,
                    &gated,
                    &observed,
                    execution,
                    request.map(|r| r.id),
                    revision,
                    asked_by,
                )
                .await
            {
                Ok((executed, applied)) => {
                    result.executed = executed;
                    result.applied = applied;
                    if let Some(m) = &self.metrics {
                        m.execution(
                            &zone.zone.to_string(),
                            if applied == executed {
                                "applied"
                            } else {
                                "failed"
                            },
                        );
                    }
                }
                Err(e) => {
                    if let Some(m) = &self.metrics {
                        m.execution(&zone.zone.to_string(), "abandoned");
                        if let ZoneError::Provider(p) = &e {
                            m.provider_failed(&connection, p);
                        }
                    }
                    summary_message = Some(e.to_string());
                    result.error = Some(e.to_string());
                }
            }
        } else if state.is_none() {
            let owned = baseline_owned(zone, actual);
            self.store
                .record_baseline(
                    tenant,
                    zone_id,
                    conn.entry.spec.provider_type.as_str(),
                    actual,
                    &owned,
                    &summary_of(&decision, summary_message.clone()),
                )
                .await?;
        }
        self.store
            .update_zone_summary(tenant, zone_id, &summary_of(&decision, summary_message))
            .await?;
        if !decision.drift.is_empty()
            && state
                .as_ref()
                .is_some_and(|s| s.drift_keys() != result.drift)
        {
            self.store
                .audit(
                    AuditEvent::new(Some(tenant), self.actor(), "zone.drift.detected")
                        .target("DnsZone", format!("{}/{}", zone.namespace, zone.name))
                        .meta("zone", zone.zone.to_string())
                        .meta("recordSets", result.drift.clone())
                        .meta("mode", format!("{:?}", zone.drift)),
                )
                .await?;
        }
        if observed.actual().len() >= DROP_ASIDE_SETS {
            drop_aside((observed, state, decision));
        }
        Ok(())
    }

    /// The zone as read ahead (with its digest, when computed), when the
    /// provider vouches, now that this pass holds the zone's lock, that it
    /// has not changed since; `None` (read it again) otherwise, failed
    /// reads ahead included.
    async fn read_ahead(
        &self,
        zone: &ZoneEntry,
        gated: &GatedProvider,
        read_ahead: Option<ClaimedRead>,
    ) -> Option<(ZoneContent, Option<PlanDigest>)> {
        let ahead = read_ahead?.wait().await?;
        let content = match ahead.read {
            Ok(Some(content)) => content,
            Ok(None) => return None,
            Err(e) => {
                tracing::debug!(zone = %zone.zone, "the read ahead failed ({e}); reading again");
                return None;
            }
        };
        match gated.still_as_read(&zone.zone, &content).await {
            Ok(true) => Some((content, ahead.digest)),
            Ok(false) => {
                tracing::debug!(zone = %zone.zone, "the zone may have changed since it was read ahead; reading again");
                None
            }
            Err(e) => {
                tracing::debug!(zone = %zone.zone, "cannot tell whether the zone changed since it was read ahead ({e}); reading again");
                None
            }
        }
    }

    /// What the zone was left as by its last execution (or baseline), beside
    /// the content just read (`actual`, with its digest when already
    /// computed). The last applied snapshot is loaded only when its digest
    /// differs from the content read: a zone found as it was left cannot
    /// have drifted, and the content read is that snapshot's content.
    async fn last_applied(
        &self,
        tenant: TenantId,
        basis: Option<AppliedBasis>,
        actual: ZoneContent,
        digest: Option<PlanDigest>,
    ) -> Result<Observed, ZoneError> {
        let Some(basis) = basis else {
            return Ok(Observed::Apart {
                actual,
                last_applied: None,
            });
        };
        let as_left = basis.digest.as_deref().is_some_and(|stored| {
            digest.unwrap_or_else(|| zone_digest(&actual)).to_string() == stored
        });
        if as_left {
            return Ok(Observed::AsLeft {
                last_applied: LastApplied {
                    content: actual,
                    owned: basis.owned,
                    held_for: basis.held_for,
                },
                snapshot: basis.snapshot,
            });
        }
        let content = self.store.snapshot_content(tenant, basis.snapshot).await?;
        Ok(Observed::Apart {
            actual,
            last_applied: Some(LastApplied {
                content,
                owned: basis.owned,
                held_for: basis.held_for,
            }),
        })
    }

    /// The managed zones delegated below this one whose DS set this pass may
    /// change, with their DNSKEY sets as their providers serve them. A child
    /// whose DS set stays as it is is not read (a no-op pass reads one zone).
    async fn child_zones(
        &self,
        zone: &ZoneEntry,
        actual: &ZoneContent,
        requests: &[RequestView],
        inputs: &Inputs<'_>,
    ) -> Result<Vec<zentralink_model::reconcile::ChildZone>, ZoneError> {
        use hickory_proto::rr::RecordType;
        let mut out = Vec::new();
        for (child, namespace, connection) in inputs.children {
            let ds = RrKey::new(child.as_name().clone(), RecordType::DS);
            let touched = zone.desired.sets.get(&ds) != actual.sets.get(&ds)
                || requests.iter().any(|r| match &r.kind {
                    RequestKind::Rollback { target, .. } => {
                        target.sets.get(&ds) != actual.sets.get(&ds)
                    }
                    RequestKind::Declared => false,
                });
            if !touched {
                continue;
            }
            let Some(Ok(conn)) = inputs
                .connections
                .get(&(namespace.clone(), connection.clone()))
            else {
                return Err(ZoneError::Other(format!(
                    "the DS set of {child} changes, and its zone's connection {namespace}/{connection} cannot be used to read its DNSKEYs"
                )));
            };
            let provider = conn.provider.as_ref().map_err(Clone::clone)?;
            let dnskeys = match provider.dnskeys(child).await? {
                Some(set) => Some(set),
                None => provider.read_zone(child).await?.and_then(|c| {
                    c.sets
                        .get(&RrKey::new(child.as_name().clone(), RecordType::DNSKEY))
                        .cloned()
                }),
            };
            out.push(zentralink_model::reconcile::ChildZone {
                zone: child.clone(),
                dnskeys,
            });
        }
        Ok(out)
    }

    /// Judges the approvals of the zone's pending requests; true when a
    /// request changed state (approved or rejected).
    async fn settle_approvals(
        &self,
        tenant: TenantId,
        zone: &ZoneEntry,
        policy: &Policy,
        records: &[ChangeRequestRecord],
        documents: &[zentralink_model::resources::ApprovalSpec],
    ) -> Result<bool, ZoneError> {
        use crate::approvals::{ApprovalSource, facts, settle};
        use zentralink_model::approval::ApprovalInput;
        let mut changed = false;
        for r in records.iter().filter(|r| r.state == "Pending") {
            let mut inputs: Vec<(ApprovalInput, ApprovalSource)> = documents
                .iter()
                .filter(|a| a.change_request == r.name)
                .map(|a| {
                    (
                        ApprovalInput::from_spec(&zone.tenant, &zone.namespace, a),
                        ApprovalSource::Revision,
                    )
                })
                .collect();
            for s in self.store.pending_submissions(tenant, r.id).await? {
                match serde_json::from_value::<zentralink_model::resources::Approval>(
                    s.document.clone(),
                ) {
                    Ok(doc) => inputs.push((
                        ApprovalInput::from_spec(
                            &zone.tenant,
                            doc.metadata.namespace.as_deref().unwrap_or_default(),
                            &doc.spec,
                        ),
                        ApprovalSource::Submitted(s.id),
                    )),
                    Err(e) => {
                        tracing::warn!(request = %r.name, "a submitted approval does not read: {e}");
                        self.store.mark_submission_judged(tenant, s.id).await?;
                    }
                }
            }
            if inputs.is_empty() {
                continue;
            }
            let facts = facts(&zone.tenant, &zone.namespace, r).map_err(ZoneError::Other)?;
            let settled = settle(
                &self.store,
                &self.options.actor,
                tenant,
                r,
                &facts,
                policy,
                &inputs,
                self.clock.now(),
            )
            .await?;
            if let Some(m) = &self.metrics {
                for result in &settled.judged {
                    m.approval_judged(&zone.tenant, result);
                }
            }
            changed |= settled.state != RequestState::Pending;
        }
        Ok(changed)
    }

    /// Opens the rollbacks committed as DnsChangeRequest documents that have
    /// no change request yet (once: by the document's name), each with its
    /// commit's requester, its plan the per-record diff from the live zone to
    /// the snapshot. One that cannot be opened (an unknown snapshot, a
    /// snapshot of another zone, an unsigned commit under
    /// `requireSignedCommits`) is noted and logged, and opens nothing.
    /// Returns whether any request was opened.
    #[allow(clippy::too_many_arguments)]
    async fn open_committed_rollbacks(
        &self,
        tenant: TenantId,
        zone: &ZoneEntry,
        zone_id: ZoneId,
        policy: &Policy,
        actual: &ZoneContent,
        records: &[ChangeRequestRecord],
        inputs: &Inputs<'_>,
        notes: &mut Vec<String>,
    ) -> Result<bool, ZoneError> {
        let target = format!("{}/{}", zone.namespace, zone.name);
        let mut opened = false;
        for doc in inputs.rollbacks {
            if records.iter().any(|r| r.name == doc.name) {
                continue;
            }
            let mut refuse = |why: String| {
                let note = format!("DnsChangeRequest {}/{}: {why}", zone.namespace, doc.name);
                tracing::warn!(zone = %zone.zone, "{note}");
                notes.push(note);
            };
            let requester = match &doc.requester {
                Ok(r) => r.clone(),
                Err(e) => {
                    refuse(format!("{e}; the rollback is not opened"));
                    continue;
                }
            };
            let Ok(snapshot) = doc.snapshot.parse::<SnapshotId>() else {
                refuse(format!("{:?} is not a snapshot id", doc.snapshot));
                continue;
            };
            let found = match self.store.snapshot(tenant, snapshot).await {
                Ok(found) => found,
                Err(StoreError::NotFound) => {
                    refuse(format!(
                        "snapshot {snapshot} is not a snapshot of {} (zentralink snapshot list {})",
                        zone.zone, zone.zone
                    ));
                    continue;
                }
                Err(e) => return Err(e.into()),
            };
            if found.zone_id != zone_id {
                refuse(format!(
                    "snapshot {snapshot} is not a snapshot of {} (zentralink snapshot list {})",
                    zone.zone, zone.zone
                ));
                continue;
            }
            let content = self.store.snapshot_content(tenant, snapshot).await?;
            let plan =
                zentralink_model::reconcile::rollback_plan(&zone.tenant, &content, actual, policy);
            if plan.plan.is_empty() {
                refuse(format!(
                    "{} already holds the content of snapshot {snapshot}; nothing to roll back",
                    zone.zone
                ));
                continue;
            }
            let (now, _) = self.now();
            let expires_at = expires(now, policy.expires_after_secs);
            let reason = doc
                .reason
                .clone()
                .unwrap_or_else(|| format!("roll back to snapshot {snapshot}"));
            let created = self
                .store
                .create_change_request(
                    tenant,
                    &NewChangeRequest {
                        zone: Some(zone_id),
                        name: &doc.name,
                        plan: serde_json::to_value(plan.plan.to_stored(Some(&plan.reasons)))
                            .map_err(|e| ZoneError::Other(e.to_string()))?,
                        plan_digest: &plan.digest.to_string(),
                        requester: &requester,
                        reason: Some(&reason),
                        rollback_to: Some(snapshot),
                        expires_at,
                        kind: StoredKind::Rollback,
                        revision: Some(inputs.revision),
                    },
                )
                .await;
            let id = match created {
                Ok(id) => id,
                Err(StoreError::Conflict(m)) => {
                    refuse(m);
                    continue;
                }
                Err(e) => return Err(e.into()),
            };
            self.store
                .audit(
                    AuditEvent::new(Some(tenant), self.actor(), "change_request.opened")
                        .target(
                            "DnsChangeRequest",
                            format!("{}/{}", zone.namespace, doc.name),
                        )
                        .meta("zone", target.clone())
                        .meta("requestId", id.to_string())
                        .meta("rollbackTo", snapshot.to_string())
                        .meta("requester", requester.clone())
                        .meta("revision", inputs.revision)
                        .meta("digest", plan.digest.to_string())
                        .meta("operations", plan.plan.changes.len()),
                )
                .await?;
            tracing::info!(zone = %zone.zone, request = %doc.name, %snapshot, "committed rollback opened");
            opened = true;
        }
        Ok(opened)
    }

    /// A stored request as the decision sees it (a rollback with its snapshot's content).
    async fn request_view(
        &self,
        tenant: TenantId,
        r: &ChangeRequestRecord,
    ) -> Result<RequestView, ZoneError> {
        let digest = r.plan_digest.parse::<PlanDigest>().map_err(|e| {
            ZoneError::Other(format!("change request {}: stored digest: {e}", r.name))
        })?;
        let state = r.state()?;
        let kind = match (r.kind.as_str(), r.rollback_to) {
            ("rollback", Some(snapshot)) if state.is_open() => RequestKind::Rollback {
                snapshot: snapshot.to_string(),
                target: self.store.snapshot_content(tenant, snapshot).await?,
            },
            // A closed rollback's target is never looked at again.
            _ => RequestKind::Declared,
        };
        Ok(RequestView {
            name: r.name.clone(),
            digest,
            state,
            kind,
            expires_at: to_timestamp(r.expires_at),
        })
    }

    /// Expires, supersedes and opens change requests as decided, each with an audit event.
    #[allow(clippy::too_many_arguments)]
    async fn act_on_requests(
        &self,
        tenant: TenantId,
        zone: &ZoneEntry,
        zone_id: ZoneId,
        decision: &Decision,
        by_name: &BTreeMap<&str, &ChangeRequestRecord>,
        revision: &str,
        requester: &str,
        now: DateTime<Utc>,
    ) -> Result<(), ZoneError> {
        let target = format!("{}/{}", zone.namespace, zone.name);
        for name in &decision.requests.expire {
            if let Some(r) = by_name.get(name.as_str()) {
                let moved = self
                    .store
                    .transition_change_request_with(
                        tenant,
                        r.id,
                        RequestState::Pending,
                        RequestState::Expired,
                        Some("not approved before it expired"),
                    )
                    .await;
                if moved.is_ok() {
                    self.request_event(tenant, "change_request.expired", name, &target, None)
                        .await?;
                }
            }
        }
        for name in &decision.requests.supersede {
            let Some(r) = by_name.get(name.as_str()) else {
                continue;
            };
            let from = r.state()?;
            if !from.may_become(RequestState::Superseded) {
                continue;
            }
            let why = decision
                .requests
                .open
                .as_ref()
                .map(|n| format!("superseded by {}: the plan changed", n.name))
                .or_else(|| decision.reason.clone())
                .unwrap_or_else(|| "the plan it holds is no longer the zone's plan".into());
            if self
                .store
                .transition_change_request_with(
                    tenant,
                    r.id,
                    from,
                    RequestState::Superseded,
                    Some(&why),
                )
                .await
                .is_ok()
            {
                self.request_event(
                    tenant,
                    "change_request.superseded",
                    name,
                    &target,
                    Some(&why),
                )
                .await?;
            }
        }
        if let Some(open) = &decision.requests.open {
            let plan = serde_json::to_value(open.plan.plan.to_stored(Some(&open.plan.reasons)))
                .map_err(|e| ZoneError::Other(e.to_string()))?;
            let reasons: BTreeSet<String> = open
                .plan
                .reasons
                .iter()
                .flatten()
                .map(ToString::to_string)
                .collect();
            let reason = reasons.into_iter().collect::<Vec<_>>().join("; ");
            let expires_at = from_timestamp(open.expires_at).unwrap_or(now);
            let id = self
                .store
                .create_change_request(
                    tenant,
                    &NewChangeRequest {
                        zone: Some(zone_id),
                        name: &open.name,
                        plan,
                        plan_digest: &open.plan.digest.to_string(),
                        requester,
                        reason: Some(&reason),
                        rollback_to: None,
                        expires_at,
                        kind: StoredKind::Declared,
                        revision: Some(revision),
                    },
                )
                .await?;
            self.store
                .audit(
                    AuditEvent::new(Some(tenant), self.actor(), "change_request.opened")
                        .target(
                            "DnsChangeRequest",
                            format!("{}/{}", zone.namespace, open.name),
                        )
                        .meta("zone", zone.zone.to_string())
                        .meta("requestId", id.to_string())
                        .meta("digest", open.plan.digest.to_string())
                        .meta("operations", open.plan.plan.changes.len())
                        .meta("reasons", reason)
                        .meta("requester", requester)
                        .meta("revision", revision),
                )
                .await?;
        }
        Ok(())
    }

    async fn request_event(
        &self,
        tenant: TenantId,
        action: &str,
        name: &str,
        target: &str,
        why: Option<&str>,
    ) -> Result<(), StoreError> {
        let namespace = target.split('/').next().unwrap_or_default();
        let mut event = AuditEvent::new(Some(tenant), self.actor(), action)
            .target("DnsChangeRequest", format!("{namespace}/{name}"))
            .meta("zone", target);
        if let Some(why) = why {
            event = event.meta("reason", why);
        }
        self.store.audit(event).await.map(|_| ())
    }

    /// Executes a plan crash-safely: pre-change snapshot, the execution marked
    /// in the store, one provider batch, then (in one transaction) the
    /// post-change snapshot, one history row per operation, the zone's
    /// applied state, the request's end state and the audit event. A zone
    /// found as the last execution left it gets its pre-change snapshot as
    /// a copy of that snapshot made in the database (the content is not
    /// encoded and sent again); the zone after the batch is the provider's
    /// word when it knows it (an atomic batch), else read back.
    /// Returns (operations executed, operations applied).
    #[allow(clippy::too_many_arguments)]
    async fn execute(
        &self,
        tenant: TenantId,
        zone: &ZoneEntry,
        zone_id: ZoneId,
        gated: &GatedProvider,
        observed: &Observed,
        execution: &Execution,
        request: Option<ChangeRequestId>,
        revision: &str,
        requester: &str,
    ) -> Result<(usize, usize), ZoneError> {
        let last = observed.last_applied();
        let provider_name = gated.provider().provider_type().as_str();
        tracing::info!(
            zone = %zone.zone,
            operations = execution.plan.changes.len(),
            request = execution.request.as_deref().unwrap_or("-"),
            "executing"
        );
        let pre = match observed.stored_as() {
            Some(snapshot) => {
                self.store
                    .copy_snapshot(tenant, snapshot, SnapshotReason::PreChange)
                    .await?
            }
            None => {
                self.store
                    .save_snapshot(
                        tenant,
                        zone_id,
                        provider_name,
                        SnapshotReason::PreChange,
                        observed.actual(),
                    )
                    .await?
            }
        };
        let stored = serde_json::to_value(execution.plan.to_stored(None))
            .map_err(|e| ZoneError::Other(e.to_string()))?;
        let digest = execution.digest.to_string();
        let id = self
            .store
            .begin_execution(
                tenant,
                &NewExecution {
                    zone: zone_id,
                    request,
                    plan: stored,
                    plan_digest: &digest,
                    rollback: execution.rollback,
                    revision: Some(revision),
                    requester: Some(requester),
                    pre_snapshot: pre,
                },
            )
            .await?;
        let apply_started = Instant::now();
        let applied = gated
            .apply_observed(&execution.plan, observed.actual())
            .await;
        if let Some(m) = &self.metrics {
            m.provider_call(
                &format!("{}/{}", zone.namespace, zone.connection),
                "apply",
                apply_started.elapsed(),
            );
        }
        let (outcomes, after): (Vec<Result<(), String>>, Option<ZoneContent>) = match applied {
            Ok(report) => {
                let by_key: BTreeMap<&RrKey, &Result<(), String>> = report
                    .outcomes
                    .iter()
                    .map(|o| (&o.key, &o.result))
                    .collect();
                let outcomes = execution
                    .plan
                    .changes
                    .iter()
                    .map(|c| {
                        by_key.get(&c.key).map_or_else(
                            || Err("the provider did not report this operation".into()),
                            |r| (*r).clone(),
                        )
                    })
                    .collect();
                (outcomes, report.after)
            }
            Err(e) if !e.may_have_applied() => {
                self.store
                    .abandon_execution(tenant, id, request, &e.to_string())
                    .await?;
                return Err(e.into());
            }
            Err(e) => {
                // Uncertain: the provider says what happened.
                tracing::warn!(zone = %zone.zone, "{e}; reading the zone back to see what was applied");
                let now = gated
                    .read_zone(&zone.zone)
                    .await?
                    .unwrap_or_else(|| ZoneContent::new(zone.zone.clone()));
                let outcomes = outcomes_from_content(&execution.plan, &now);
                if outcomes.iter().all(Result::is_err) {
                    // Nothing reached the zone: as if the batch was refused.
                    self.store
                        .abandon_execution(tenant, id, request, &e.to_string())
                        .await?;
                    return Err(ZoneError::Other(format!(
                        "{e}; the zone read back shows nothing of the batch applied: it is planned again on the next pass"
                    )));
                }
                return self
                    .close(
                        tenant,
                        zone,
                        zone_id,
                        id,
                        ExecutionEnd::Recovered,
                        provider_name,
                        &now,
                        &execution.plan,
                        &outcomes,
                        last,
                        execution.rollback,
                        request,
                        &digest,
                        Some(pre),
                        Some(revision),
                        Some(requester),
                    )
                    .await;
            }
        };
        let post = match after {
            // The provider knows the zone after its batch: no read back.
            Some(after) => after,
            None => match gated.read_zone(&zone.zone).await {
                Ok(c) => c.unwrap_or_else(|| ZoneContent::new(zone.zone.clone())),
                Err(e) => {
                    // The batch went through but the zone cannot be read back: the
                    // execution stays marked, and the next pass records it.
                    return Err(ZoneError::Other(format!(
                        "applied, but the zone could not be read back ({e}); the next pass records the outcome"
                    )));
                }
            },
        };
        self.close(
            tenant,
            zone,
            zone_id,
            id,
            ExecutionEnd::Done,
            provider_name,
            &post,
            &execution.plan,
            &outcomes,
            last,
            execution.rollback,
            request,
            &digest,
            Some(pre),
            Some(revision),
            Some(requester),
        )
        .await
    }

    /// Writes everything that closes an execution, in one transaction.
    #[allow(clippy::too_many_arguments)]
    async fn close(
        &self,
        tenant: TenantId,
        zone: &ZoneEntry,
        zone_id: ZoneId,
        execution: ExecutionId,
        end: ExecutionEnd,
        provider: &str,
        post: &ZoneContent,
        plan: &Plan,
        outcomes: &[Result<(), String>],
        last: Option<&LastApplied>,
        rollback: bool,
        request: Option<ChangeRequestId>,
        digest: &str,
        pre: Option<SnapshotId>,
        revision: Option<&str>,
        requester: Option<&str>,
    ) -> Result<(usize, usize), ZoneError> {
        let rows: Vec<ChangeOutcome> = plan
            .changes
            .iter()
            .zip(outcomes)
            .map(|(c, r)| ChangeOutcome {
                op: c.op.as_str().to_owned(),
                name: c.key.name().to_ascii(),
                record_type: type_name(c.key.rtype),
                before: c.before.as_ref().map(state_json),
                after: c.after.as_ref().map(state_json),
                error: r.clone().err(),
            })
            .collect();
        let applied = outcomes.iter().filter(|r| r.is_ok()).count();
        let owned = owned_after(zone, last, plan, outcomes, post);
        let held_for = rollback.then(|| zone_digest(&zone.desired).to_string());
        let request_end = request.map(|id| {
            (
                id,
                if applied == plan.changes.len() {
                    RequestState::Applied
                } else {
                    RequestState::Failed
                },
            )
        });
        let action = if applied == plan.changes.len() {
            "dns.changes.applied"
        } else {
            "dns.changes.failed"
        };
        let audit = AuditEvent::new(Some(tenant), self.actor(), action)
            .target("DnsZone", format!("{}/{}", zone.namespace, zone.name))
            .meta("zone", zone.zone.to_string())
            .meta("digest", digest)
            .meta("operations", plan.changes.len())
            .meta("applied", applied)
            .meta("execution", execution.to_string())
            .meta("recovered", end == ExecutionEnd::Recovered)
            .meta("rollback", rollback)
            .meta("revision", revision.unwrap_or_default())
            .meta("requester", requester.unwrap_or_default());
        let post = self
            .store
            .finish_execution(
                tenant,
                &FinishedExecution {
                    execution,
                    zone: zone_id,
                    end,
                    provider,
                    post_content: post,
                    outcomes: &rows,
                    owned: owned.iter().map(ToString::to_string).collect(),
                    held_for,
                    revision,
                    requester,
                    request: request_end,
                    plan_digest: digest,
                    pre_snapshot: pre,
                    audit,
                },
            )
            .await?;
        tracing::info!(zone = %zone.zone, applied, operations = plan.changes.len(), post_snapshot = %post, "executed");
        Ok((plan.changes.len(), applied))
    }

    /// An execution left `Executing` (the process died): the provider is
    /// read, and what it holds says which operations applied. Nothing is applied again.
    async fn recover(
        &self,
        tenant: TenantId,
        zone: &ZoneEntry,
        gated: &GatedProvider,
        execution: zentralink_store::reconcile::ExecutionRecord,
    ) -> Result<(), ZoneError> {
        let stored: StoredPlan = serde_json::from_value(execution.plan.clone()).map_err(|e| {
            ZoneError::Other(format!("execution {}: stored plan: {e}", execution.id))
        })?;
        let plan = Plan::from_stored(&stored).map_err(|e| {
            ZoneError::Other(format!("execution {}: stored plan: {e}", execution.id))
        })?;
        let now = gated
            .read_zone(&zone.zone)
            .await?
            .unwrap_or_else(|| ZoneContent::new(zone.zone.clone()));
        let outcomes = outcomes_from_content(&plan, &now);
        let applied = outcomes.iter().filter(|o| o.is_ok()).count();
        tracing::warn!(
            zone = %zone.zone,
            execution = %execution.id,
            applied,
            operations = plan.changes.len(),
            "recovering an interrupted execution from what the provider holds"
        );
        if applied == 0 {
            // Nothing reached the zone: as if the batch was never sent.
            self.store
                .abandon_execution(
                    tenant,
                    execution.id,
                    execution.change_request_id,
                    "interrupted before the provider applied it; nothing was applied",
                )
                .await?;
            return Ok(());
        }
        let state = self.store.zone_state(tenant, execution.zone_id).await?;
        let last = match state.and_then(|s| s.last_applied_snapshot_id.map(|id| (id, s))) {
            Some((snapshot, s)) => Some(LastApplied {
                content: self.store.snapshot_content(tenant, snapshot).await?,
                owned: parse_keys(&zone.zone, s.owned_strs()),
                held_for: None,
            }),
            None => None,
        };
        self.close(
            tenant,
            zone,
            execution.zone_id,
            execution.id,
            ExecutionEnd::Recovered,
            gated.provider().provider_type().as_str(),
            &now,
            &plan,
            &outcomes,
            last.as_ref(),
            execution.rollback,
            execution.change_request_id,
            &execution.plan_digest,
            execution.pre_snapshot_id,
            execution.revision.as_deref(),
            execution.requester.as_deref(),
        )
        .await
        .map(|_| ())
    }
}

/// What a pass looks up for each zone, indexed once per pass instead of
/// scanning every object of the catalog for every zone.
struct Related {
    /// By zone (its index in the catalog): the zones delegated below it, in catalog order.
    children: Vec<Vec<usize>>,
    /// The Approval documents of each namespace.
    approvals: HashMap<String, Vec<ApprovalSpec>>,
    /// By (namespace, DnsZone name): its DnsChangeRequest and DnsSnapshot documents (indices).
    change_requests: HashMap<(String, String), Vec<usize>>,
    snapshots: HashMap<(String, String), Vec<usize>>,
}

impl Related {
    fn index(catalog: &Catalog) -> Self {
        // A zone's children are found from the other side: each zone walks
        // up its own ancestors (a few names) and registers with the managed
        // ones, so the index costs zones x depth, not zones x zones.
        let mut by_name: HashMap<&hickory_proto::rr::Name, Vec<usize>> = HashMap::new();
        for (i, z) in catalog.zones.iter().enumerate() {
            by_name.entry(z.zone.as_name()).or_default().push(i);
        }
        let mut children = vec![Vec::new(); catalog.zones.len()];
        for (child, z) in catalog.zones.iter().enumerate() {
            let mut above = z.zone.as_name().clone();
            while !above.is_root() {
                above = above.base_name();
                for &parent in by_name.get(&above).into_iter().flatten() {
                    children[parent].push(child);
                }
            }
        }
        let mut approvals: HashMap<String, Vec<ApprovalSpec>> = HashMap::new();
        for a in &catalog.approvals {
            approvals
                .entry(a.namespace.clone())
                .or_default()
                .push(a.spec.clone());
        }
        let mut change_requests: HashMap<(String, String), Vec<usize>> = HashMap::new();
        for (i, c) in catalog.change_requests.iter().enumerate() {
            change_requests
                .entry((c.namespace.clone(), c.spec.zone_ref.clone()))
                .or_default()
                .push(i);
        }
        let mut snapshots: HashMap<(String, String), Vec<usize>> = HashMap::new();
        for (i, s) in catalog.snapshots.iter().enumerate() {
            snapshots
                .entry((s.namespace.clone(), s.spec.zone_ref.clone()))
                .or_default()
                .push(i);
        }
        Self {
            children,
            approvals,
            change_requests,
            snapshots,
        }
    }

    /// The zones delegated below zone `i`: (zone, namespace, connection).
    fn children(&self, catalog: &Catalog, i: usize) -> Vec<(ZoneName, String, String)> {
        self.children
            .get(i)
            .into_iter()
            .flatten()
            .filter_map(|&c| catalog.zones.get(c))
            .map(|c| (c.zone.clone(), c.namespace.clone(), c.connection.clone()))
            .collect()
    }

    fn approvals(&self, namespace: &str) -> &[ApprovalSpec] {
        self.approvals.get(namespace).map_or(&[], Vec::as_slice)
    }

    fn change_requests(&self, zone: &(String, String)) -> impl Iterator<Item = usize> + '_ {
        self.change_requests
            .get(zone)
            .into_iter()
            .flatten()
            .copied()
    }

    fn snapshots(&self, zone: &(String, String)) -> &[usize] {
        self.snapshots.get(zone).map_or(&[], Vec::as_slice)
    }
}

/// The rollbacks committed for a zone (DnsChangeRequest documents with
/// `rollbackTo`, by their index in the catalog), each with its requester.
fn committed_rollbacks(
    revision: &Revision,
    documents: impl Iterator<Item = usize>,
    policy: &Policy,
) -> Vec<CommittedRollback> {
    documents
        .filter_map(|i| revision.catalog.change_requests.get(i))
        .filter_map(|c| {
            let snapshot = c.spec.rollback_to.clone()?;
            let requester = match revision.change_of(&c.origin.file) {
                Some(change) if policy.require_signed_commits => {
                    crate::guard::signed_by(policy, change)
                        .map_err(|e| format!("the policy requires signed commits: {e}"))
                }
                Some(change) => Ok(change.author.clone()),
                None if policy.require_signed_commits => Err(
                    "the policy requires signed commits, and this source has no commits".to_owned(),
                ),
                None => Ok(revision.default_requester.clone()),
            };
            Some(CommittedRollback {
                name: c.name.clone(),
                snapshot,
                reason: c.spec.reason.clone(),
                requester,
            })
        })
        .collect()
}

/// Zones of at least this many record sets are freed by [`drop_aside`];
/// smaller ones in place (a pass over 10,000 small zones spawns nothing).
const DROP_ASIDE_SETS: usize = 10_000;

/// Drops what a zone's pass held on a blocking thread, beside the work that
/// follows: freeing 100,000 record sets one by one takes milliseconds.
fn drop_aside<T: Send + 'static>(held: T) {
    match tokio::runtime::Handle::try_current() {
        Ok(runtime) => {
            runtime.spawn_blocking(move || drop(held));
        }
        Err(_) => drop(held),
    }
}

/// What the stored state says of the zone's last applied content, besides
/// the content itself: taken before the provider's answer is awaited.
struct AppliedBasis {
    snapshot: SnapshotId,
    /// `last_applied_digest`.
    digest: Option<String>,
    owned: BTreeSet<RrKey>,
    held_for: Option<PlanDigest>,
}

fn applied_basis(zone: &ZoneEntry, state: Option<&ZoneStateRecord>) -> Option<AppliedBasis> {
    let state = state?;
    let snapshot = state.last_applied_snapshot_id?;
    // Ownership is kept as a list only under `Owned` (under `Full`,
    // ZentraLink owns every declared set): a `Full` zone of many sets
    // does not parse its stored list again on every pass.
    let owned = match zone.ownership {
        Ownership::Owned => parse_keys(&zone.zone, state.owned_strs()),
        Ownership::Full => BTreeSet::new(),
    };
    Some(AppliedBasis {
        snapshot,
        digest: state.last_applied_digest.clone(),
        owned,
        held_for: state
            .held_for
            .as_deref()
            .and_then(|d| d.parse::<PlanDigest>().ok()),
    })
}

/// The zone as read from the provider, and as the last execution (or the
/// baseline) left it: one copy of the content when the two are the same.
enum Observed {
    /// The zone holds exactly its last applied content (the digests are
    /// equal): that snapshot is not loaded; the content read stands for both.
    AsLeft {
        last_applied: LastApplied,
        snapshot: SnapshotId,
    },
    /// Changed since, or seen for the first time.
    Apart {
        actual: ZoneContent,
        last_applied: Option<LastApplied>,
    },
}

impl Observed {
    /// The zone as the provider holds it now.
    fn actual(&self) -> &ZoneContent {
        match self {
            Observed::AsLeft { last_applied, .. } => &last_applied.content,
            Observed::Apart { actual, .. } => actual,
        }
    }

    fn last_applied(&self) -> Option<&LastApplied> {
        match self {
            Observed::AsLeft { last_applied, .. } => Some(last_applied),
            Observed::Apart { last_applied, .. } => last_applied.as_ref(),
        }
    }

    /// A snapshot already stored of exactly the content read.
    fn stored_as(&self) -> Option<SnapshotId> {
        match self {
            Observed::AsLeft { snapshot, .. } => Some(*snapshot),
            Observed::Apart { .. } => None,
        }
    }
}

/// A zone the configuration in force does not let through this pass.
fn refused_result(zone: &ZoneEntry, why: &str) -> ZoneResult {
    ZoneResult {
        tenant: zone.tenant.clone(),
        namespace: zone.namespace.clone(),
        name: zone.name.clone(),
        zone: zone.zone.to_string(),
        outcome: Some(Outcome::Refused),
        planned: 0,
        executed: 0,
        applied: 0,
        waiting_for: None,
        drift: Vec::new(),
        message: Some(why.to_owned()),
        error: None,
        duration_ms: 0,
    }
}

/// A connection's spec as the store keeps it, so commands given only the
/// database can reach the provider again: credentials stay a reference (an
/// environment variable's name, an `enc:v1:` envelope bound to this
/// connection, a Secret's name), never a value; a zone-file directory is
/// made absolute.
pub(crate) fn stored_settings(
    entry: &ConnectionEntry,
    files_root: Option<&std::path::Path>,
) -> Result<serde_json::Value, String> {
    let mut spec = entry.spec.clone();
    if let Some(z) = spec.zonefile.as_mut() {
        let dir =
            zentralink_providers::resolve_relative(&entry.origin.file, &z.directory, files_root);
        let dir = std::path::absolute(&dir).unwrap_or(dir);
        z.directory = dir.display().to_string();
    }
    serde_json::to_value(&spec).map_err(|e| e.to_string())
}

/// Rebuilds a connection from what the store keeps (see [`stored_settings`]).
pub fn connection_from_record(
    tenant: &str,
    record: &ConnectionRecord,
) -> Result<ConnectionEntry, String> {
    let spec: zentralink_model::resources::ProviderConnectionSpec =
        serde_json::from_value(record.settings.clone()).map_err(|e| {
            format!(
                "connection {}/{}: the stored settings do not read ({e}); run a reconcile pass to store them again",
                record.namespace, record.name
            )
        })?;
    Ok(ConnectionEntry {
        tenant: tenant.to_owned(),
        namespace: record.namespace.clone(),
        name: record.name.clone(),
        spec,
        origin: zentralink_model::documents::Location::named("(store)"),
    })
}

/// Which operations of a plan the zone shows as applied: the record set
/// holds its after-state (an SOA's serial aside). One that still holds its
/// before-state was not applied; one that holds neither was changed by someone else.
fn outcomes_from_content(plan: &Plan, content: &ZoneContent) -> Vec<Result<(), String>> {
    plan.changes
        .iter()
        .map(|c| {
            let now = content.sets.get(&c.key);
            if same_state(&c.key, c.after.as_ref(), now) {
                Ok(())
            } else if same_state(&c.key, c.before.as_ref(), now) {
                Err("not applied: the provider still holds the state before the change".into())
            } else {
                Err("not applied as planned: the provider holds another state (changed by someone else meanwhile)".into())
            }
        })
        .collect()
}

/// The record sets ZentraLink owns after a batch: what it owned, plus what
/// it created or updated, minus what it deleted. Under `Full`, every declared set present.
fn owned_after(
    zone: &ZoneEntry,
    last: Option<&LastApplied>,
    plan: &Plan,
    outcomes: &[Result<(), String>],
    post: &ZoneContent,
) -> BTreeSet<RrKey> {
    if zone.ownership == Ownership::Full {
        return zone
            .desired
            .sets
            .keys()
            .filter(|k| post.sets.contains_key(*k))
            .cloned()
            .collect();
    }
    let mut owned: BTreeSet<RrKey> = last
        .map(|l| l.owned.clone())
        .unwrap_or_else(|| baseline_keys(zone, post));
    for (c, r) in plan.changes.iter().zip(outcomes) {
        if r.is_err() {
            continue;
        }
        match c.op {
            ChangeOp::Create | ChangeOp::Update => {
                owned.insert(c.key.clone());
            }
            ChangeOp::Delete => {
                owned.remove(&c.key);
            }
        }
    }
    owned
}

/// On first sight, ZentraLink owns the declared record sets the zone already holds as declared.
fn baseline_keys(zone: &ZoneEntry, actual: &ZoneContent) -> BTreeSet<RrKey> {
    zone.desired
        .sets
        .iter()
        .filter(|(k, set)| actual.sets.get(*k) == Some(*set))
        .map(|(k, _)| k.clone())
        .collect()
}

fn baseline_owned(zone: &ZoneEntry, actual: &ZoneContent) -> Vec<String> {
    baseline_keys(zone, actual)
        .iter()
        .map(ToString::to_string)
        .collect()
}

/// `name TYPE` strings back into keys (unreadable ones are dropped).
fn parse_keys<'k>(zone: &ZoneName, keys: impl IntoIterator<Item = &'k str>) -> BTreeSet<RrKey> {
    keys.into_iter()
        .filter_map(|k| {
            let (name, t) = k.rsplit_once(' ')?;
            let rtype = parse_record_type(t).ok()?;
            let name = zone.owner(name).ok()?;
            Some(RrKey::new(name, rtype))
        })
        .collect()
}

fn state_json(set: &RecordSet) -> serde_json::Value {
    serde_json::to_value(RecordSetState {
        ttl: set.ttl,
        values: set.texts(),
    })
    .unwrap_or(serde_json::Value::Null)
}

fn summary_of(decision: &Decision, message: Option<String>) -> ZoneSummary {
    ZoneSummary {
        outcome: decision.outcome.as_str().to_owned(),
        plan_changes: i32::try_from(decision.plan.plan.changes.len()).unwrap_or(i32::MAX),
        drift: decision.drift.iter().map(|c| c.key.to_string()).collect(),
        message,
    }
}

/// Whether the connection's test and probe must run (again): never run for
/// these settings, or failed more than five minutes ago.
fn needs_check(record: &ConnectionRecord, now: DateTime<Utc>) -> bool {
    let retry = chrono::Duration::minutes(5);
    let stale = |at: Option<DateTime<Utc>>| at.is_none_or(|t| now - t > retry);
    match (record.last_test_ok, record.last_probe_ok) {
        (Some(true), Some(true)) => false,
        (None, _) | (_, None) => true,
        _ => stale(record.last_test_at.max(record.last_probe_at)),
    }
}

/// Whether the connection may write: its spec and its recorded checks.
fn live_decision(entry: &ConnectionEntry, record: &ConnectionRecord) -> LiveDecision {
    let outcome = |ok: Option<bool>, message: &Option<String>| {
        ok.map(|ok| CheckOutcome {
            ok,
            message: message.clone().unwrap_or_default(),
        })
    };
    let test = outcome(record.last_test_ok, &record.last_test_message);
    let probe = outcome(record.last_probe_ok, &record.last_probe_message);
    decide_live(
        entry.spec.mode,
        entry.spec.acknowledge_live_writes,
        test.as_ref(),
        probe.as_ref(),
    )
}

/// chrono to jiff (the model's time type).
pub fn to_timestamp(t: DateTime<Utc>) -> Timestamp {
    Timestamp::new(
        t.timestamp(),
        i32::try_from(t.timestamp_subsec_nanos()).unwrap_or(0),
    )
    .unwrap_or(Timestamp::UNIX_EPOCH)
}

/// jiff to chrono.
pub fn from_timestamp(t: Timestamp) -> Option<DateTime<Utc>> {
    DateTime::from_timestamp(
        t.as_second(),
        u32::try_from(t.subsec_nanosecond()).unwrap_or(0),
    )
}

#[cfg(test)]
mod related_tests {
    use super::*;
    use zentralink_model::documents::Location;
    use zentralink_model::resources::DriftMode;

    fn entry(namespace: &str, zone: &str) -> ZoneEntry {
        let zone = ZoneName::parse(zone).unwrap();
        ZoneEntry {
            tenant: "acme".into(),
            namespace: namespace.into(),
            name: zone.without_dot().replace('.', "-"),
            desired: ZoneContent::new(zone.clone()),
            zone,
            connection: "pdns".into(),
            ownership: Ownership::Full,
            drift: DriftMode::Report,
            origin: Location::named("zones.yaml"),
        }
    }

    /// The index finds, for every zone, exactly the zones the scan of every
    /// zone against every other found: those strictly below it, in catalog order.
    #[test]
    fn children_are_the_managed_zones_strictly_below_each_zone() {
        let catalog = Catalog {
            zones: vec![
                entry("acme", "example.com."),
                entry("acme", "a.example.com."),
                entry("globex", "a.example.com."),
                entry("acme", "x.b.a.example.com."),
                entry("acme", "b.a.example.com."),
                entry("acme", "example.net."),
                entry("acme", "notexample.com."),
            ],
            ..Catalog::default()
        };
        let related = Related::index(&catalog);
        for (i, zone) in catalog.zones.iter().enumerate() {
            let scanned: Vec<(ZoneName, String, String)> = catalog
                .zones
                .iter()
                .filter(|c| c.zone != zone.zone && c.zone.is_within(&zone.zone))
                .map(|c| (c.zone.clone(), c.namespace.clone(), c.connection.clone()))
                .collect();
            assert_eq!(related.children(&catalog, i), scanned, "{}", zone.zone);
        }
        let names = |i: usize| -> Vec<String> {
            related
                .children(&catalog, i)
                .iter()
                .map(|(z, ns, _)| format!("{ns}/{z}"))
                .collect()
        };
        assert_eq!(
            names(0),
            [
                "acme/a.example.com.",
                "globex/a.example.com.",
                "acme/x.b.a.example.com.",
                "acme/b.a.example.com."
            ]
        );
        assert!(names(5).is_empty() && names(6).is_empty());
    }
}
