//! Leader election and sharding on coordination.k8s.io Leases. Each replica
//! holds at most one of N shard Leases (`{prefix}-0` .. `{prefix}-{N-1}`),
//! renews it, stops owning it before anyone else may take it, and releases it
//! on shutdown; a zone belongs to the shard its stable hash falls in. With
//! one shard this is plain leader election. Does I/O (the Kubernetes API);
//! the decisions (is a Lease free, what to write) are pure functions below.
//!
//! Safety rests on two clocks agreeing to within a third of the lease
//! duration: a holder stops owning its shard when no renewal has succeeded
//! for the renew deadline (two thirds of the duration, measured from the
//! moment it sent the last successful renewal), while the others take the
//! Lease only once `renewTime + leaseDurationSeconds` has passed.

use std::collections::BTreeMap;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, PostParams};
use sha2::{Digest, Sha256};
use tokio::sync::watch;
use tokio::time::Instant;

use super::{MANAGED_BY, MANAGED_BY_LABEL};

/// The wall clock leases are written and judged by, as a parameter (tests
/// move it). Timers (renew, retry, the renew deadline) run on tokio's clock.
pub trait LeaseClock: Send + Sync + fmt::Debug {
    fn now(&self) -> DateTime<Utc>;
}

/// The system's clock.
impl LeaseClock for crate::reconcile::SystemClock {
    fn now(&self) -> DateTime<Utc> {
        crate::reconcile::Clock::now(self)
    }
}

/// How a replica takes part in the election.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeaseOptions {
    /// Where the Leases live (usually the operator's own namespace).
    pub namespace: String,
    /// This replica, unique among the replicas (usually the pod's name).
    pub identity: String,
    /// How many shards the zones are split into (1: plain leader election).
    pub shards: u32,
    /// How long a Lease stays held without renewal (whole seconds are written).
    pub lease_duration: Duration,
    /// How often the holder renews.
    pub renew_interval: Duration,
    /// How often a replica that holds no shard tries again.
    pub retry_interval: Duration,
    /// The Leases' names are `{name_prefix}-{shard}`.
    pub name_prefix: String,
}

impl LeaseOptions {
    /// The default prefix of the Leases' names.
    pub const DEFAULT_NAME_PREFIX: &str = "zentralink-shard";

    /// Options with the usual timings: a 15 s lease renewed every 2 s (the
    /// holder steps down after 10 s without a renewal), retried every 2 s.
    pub fn new(namespace: impl Into<String>, identity: impl Into<String>, shards: u32) -> Self {
        Self {
            namespace: namespace.into(),
            identity: identity.into(),
            shards,
            lease_duration: Duration::from_secs(15),
            renew_interval: Duration::from_secs(2),
            retry_interval: Duration::from_secs(2),
            name_prefix: Self::DEFAULT_NAME_PREFIX.to_owned(),
        }
    }

    /// These options with another lease duration, the renew and retry
    /// intervals scaled with it (2/15 of it each, as the defaults are for
    /// 15 s), so they stay valid: `--lease-duration 3s` renews every 400 ms.
    pub fn with_lease_duration(self, lease_duration: Duration) -> Self {
        let interval = lease_duration.saturating_mul(2) / 15;
        Self {
            lease_duration,
            renew_interval: interval,
            retry_interval: interval,
            ..self
        }
    }

    /// How long the holder keeps owning its shard after it sent its last
    /// successful renewal: two thirds of the lease duration, so it stops
    /// before another replica may take the Lease.
    pub fn renew_deadline(&self) -> Duration {
        self.lease_duration.saturating_mul(2) / 3
    }

    /// The Lease of `shard`.
    pub fn lease_name(&self, shard: u32) -> String {
        format!("{}-{shard}", self.name_prefix)
    }

    /// Checks the options; [`Shards::spawn`] with options that fail here
    /// holds nothing and logs why, so call this first and report the error.
    pub fn validate(&self) -> Result<(), LeaseError> {
        if self.shards == 0 {
            return Err(LeaseError::NoShards);
        }
        if self.identity.trim().is_empty() {
            return Err(LeaseError::NoIdentity);
        }
        if self.namespace.trim().is_empty() {
            return Err(LeaseError::NoNamespace);
        }
        if self.name_prefix.trim().is_empty() {
            return Err(LeaseError::NoNamePrefix);
        }
        self.lease_duration_seconds()?;
        if self.retry_interval.is_zero() || self.renew_interval.is_zero() {
            return Err(LeaseError::ZeroInterval);
        }
        if self.renew_interval >= self.renew_deadline() {
            return Err(LeaseError::RenewIntervalTooLong {
                renew_interval: self.renew_interval,
                renew_deadline: self.renew_deadline(),
            });
        }
        Ok(())
    }

    /// The lease duration as the Lease counts it: whole seconds, rounded up
    /// (so the others wait at least as long as this replica assumes).
    fn lease_duration_seconds(&self) -> Result<i32, LeaseError> {
        let d = self.lease_duration;
        if d < Duration::from_secs(1) {
            return Err(LeaseError::LeaseDurationTooShort(d));
        }
        let seconds = d.as_secs() + u64::from(d.subsec_nanos() > 0);
        i32::try_from(seconds).map_err(|_| LeaseError::LeaseDurationTooLong(d))
    }
}

/// Why a lease operation failed. Every one is logged and retried; none ends
/// the election except invalid options.
#[derive(Debug, thiserror::Error)]
pub enum LeaseError {
    #[error("--shards is 0: run with at least one shard (1 is plain leader election)")]
    NoShards,
    #[error(
        "the replica identity is empty: give each replica a unique one (--identity, usually the pod's name)"
    )]
    NoIdentity,
    #[error("the Lease namespace is empty: pass --namespace (usually the operator's own)")]
    NoNamespace,
    #[error("the Lease name prefix is empty: leave it at the default, zentralink-shard")]
    NoNamePrefix,
    #[error("the lease duration {0:?} is under one second: Leases count it in whole seconds")]
    LeaseDurationTooShort(Duration),
    #[error("the lease duration {0:?} does not fit a Lease's leaseDurationSeconds: shorten it")]
    LeaseDurationTooLong(Duration),
    #[error("the renew and retry intervals must be longer than zero")]
    ZeroInterval,
    #[error(
        "the renew interval {renew_interval:?} is not shorter than the renew deadline {renew_deadline:?} (two thirds of the lease duration): renew more often or lengthen the lease"
    )]
    RenewIntervalTooLong {
        renew_interval: Duration,
        renew_deadline: Duration,
    },
    #[error("{verb} Lease {namespace}/{name} failed: {source}{}", api_hint(.source))]
    Api {
        verb: &'static str,
        namespace: String,
        name: String,
        #[source]
        source: Box<kube::Error>,
    },
    #[error(
        "Lease {namespace}/{name} came without a resourceVersion, so it cannot be replaced safely: is this a Kubernetes API server?"
    )]
    NoResourceVersion { namespace: String, name: String },
    #[error(
        "Lease {namespace}/{name} changed under every renewal while still held by this replica: is another process running with the same identity?"
    )]
    Contended { namespace: String, name: String },
    #[error(
        "no answer from the Kubernetes API within {after:?} while looking for a free shard in namespace {namespace}; retrying"
    )]
    TimedOut { namespace: String, after: Duration },
    #[error("the clock reads {0}, which a Lease cannot hold: check the system clock")]
    ClockOutOfRange(DateTime<Utc>),
}

/// What to do about an API error, after its message.
fn api_hint(error: &kube::Error) -> &'static str {
    match error {
        kube::Error::Api(s) if s.is_forbidden() => {
            "; grant get, create and update on leases.coordination.k8s.io in this namespace (the chart's Role does)"
        }
        kube::Error::Api(s) if s.is_not_found() => "; does the namespace exist?",
        _ => "; retrying",
    }
}

/// The shard a zone belongs to: the first 8 bytes of SHA-256 of
/// `namespace/name`, big-endian, modulo `shards`. Stable across processes
/// and versions; changing it moves zones between replicas during an upgrade.
/// No shards (0) is treated as one.
pub fn shard_of(namespace: &str, name: &str, shards: u32) -> u32 {
    bucket(&[namespace, "/", name], shards)
}

/// The shard a replica tries first, so replicas spread over the shards.
fn first_shard(identity: &str, shards: u32) -> u32 {
    bucket(&[identity], shards)
}

fn bucket(parts: &[&str], shards: u32) -> u32 {
    let mut hasher = Sha256::new();
    for part in parts {
        hasher.update(part.as_bytes());
    }
    let digest: [u8; 32] = hasher.finalize().into();
    let [a, b, c, d, e, f, g, h, ..] = digest;
    let position = u64::from_be_bytes([a, b, c, d, e, f, g, h]) % u64::from(shards.max(1));
    u32::try_from(position).unwrap_or(0)
}

/// Which shard this replica holds, shared with the controller. Cloning is
/// cheap; every clone follows the same election.
#[derive(Debug, Clone)]
pub struct Shards {
    held: watch::Receiver<Option<u32>>,
    count: u32,
    /// Keeps a fixed answer's channel open, so `changes()` never ends.
    _fixed: Option<Arc<watch::Sender<Option<u32>>>>,
}

impl Shards {
    /// Starts the election as a task. It runs until `shutdown` completes,
    /// then stops owning its shard and releases the Lease. Invalid options
    /// (see [`LeaseOptions::validate`]) are logged and nothing is held.
    pub fn spawn(
        client: kube::Client,
        options: LeaseOptions,
        clock: Arc<dyn LeaseClock>,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> (Shards, tokio::task::JoinHandle<()>) {
        let (sender, held) = watch::channel(None);
        let shards = Shards {
            held,
            count: options.shards,
            _fixed: None,
        };
        let task = tokio::spawn(async move {
            if let Err(error) = options.validate() {
                tracing::error!(%error, "no leader election: this replica reconciles nothing");
                return;
            }
            let elector = Elector {
                api: Api::namespaced(client, &options.namespace),
                deadline: options.renew_deadline(),
                options,
                clock,
                held: sender,
            };
            elector.run(shutdown).await;
        });
        (shards, task)
    }

    /// A fixed answer: every zone (`true`) or none, as one shard. For tests
    /// and for sources other than Kubernetes, where one process reconciles.
    pub fn single(held: bool) -> Shards {
        let (sender, receiver) = watch::channel(held.then_some(0));
        Shards {
            held: receiver,
            count: 1,
            _fixed: Some(Arc::new(sender)),
        }
    }

    /// The shard this replica holds now. None when it holds none, and once
    /// the election's task has ended (shut down or aborted).
    pub fn held(&self) -> Option<u32> {
        if self.held.has_changed().is_err() {
            return None;
        }
        *self.held.borrow()
    }

    /// Whether this replica reconciles the zone `namespace/name` now.
    pub fn owns(&self, namespace: &str, name: &str) -> bool {
        self.held()
            .is_some_and(|shard| shard == shard_of(namespace, name, self.count))
    }

    /// How many shards the zones are split into.
    pub fn count(&self) -> u32 {
        self.count
    }

    /// Follows [`held`](Self::held): the controller re-queues every zone of
    /// a newly held shard. `changed()` fails once the election has ended.
    pub fn changes(&self) -> watch::Receiver<Option<u32>> {
        self.held.clone()
    }
}

/// A Lease this replica holds, as last written, and until when it may act
/// on it.
#[derive(Debug, Clone)]
struct Holding {
    shard: u32,
    lease: Box<Lease>,
    owned_until: Instant,
}

/// What one acquisition attempt on one shard came to.
#[derive(Debug)]
enum Attempt {
    Acquired(Holding),
    HeldBy(String),
    LostRace,
}

/// How keeping a held shard ended.
#[derive(Debug)]
enum Kept {
    Renewed(Holding),
    /// Another replica holds the Lease now.
    Lost,
    /// No renewal succeeded before the renew deadline.
    DeadlinePassed,
    Shutdown(Holding),
}

type Shutdown<'a> = Pin<&'a mut (dyn Future<Output = ()> + Send)>;

/// One replica's side of the election.
struct Elector {
    api: Api<Lease>,
    options: LeaseOptions,
    deadline: Duration,
    clock: Arc<dyn LeaseClock>,
    held: watch::Sender<Option<u32>>,
}

impl Elector {
    async fn run(self, shutdown: impl Future<Output = ()> + Send) {
        let mut shutdown = std::pin::pin!(shutdown);
        let mut shutdown: Shutdown<'_> = shutdown.as_mut();
        let retry = self.options.retry_interval;
        let mut after_errors = Backoff::new(retry, retry.max(self.options.lease_duration));
        let mut holding = None;
        loop {
            let Some(held) = holding.take() else {
                let pass = tokio::time::timeout(self.options.lease_duration, self.acquire_any());
                let attempt = tokio::select! {
                    biased;
                    () = shutdown.as_mut() => break,
                    attempt = pass => attempt.unwrap_or_else(|_| Err(self.timed_out())),
                };
                let wait = match attempt {
                    Ok(Some(held)) => {
                        after_errors.reset();
                        self.publish(Some(held.shard));
                        tracing::info!(
                            shard = held.shard,
                            lease = %self.options.lease_name(held.shard),
                            identity = %self.options.identity,
                            "holding the shard: reconciling its zones"
                        );
                        holding = Some(held);
                        continue;
                    }
                    Ok(None) => {
                        after_errors.reset();
                        retry
                    }
                    Err(error) => {
                        tracing::warn!(%error, "cannot acquire a shard");
                        after_errors.next_wait()
                    }
                };
                tokio::select! {
                    biased;
                    () = shutdown.as_mut() => break,
                    () = tokio::time::sleep(wait) => continue,
                }
            };
            let shard = held.shard;
            match self.keep(held, shutdown.as_mut()).await {
                Kept::Renewed(renewed) => holding = Some(renewed),
                Kept::Lost => {
                    self.publish(None);
                    tracing::warn!(
                        shard,
                        "stepped down: another replica holds the shard's Lease"
                    );
                }
                Kept::DeadlinePassed => {
                    self.publish(None);
                    tracing::warn!(
                        shard,
                        deadline = ?self.deadline,
                        "stepped down: no renewal succeeded within the renew deadline"
                    );
                }
                Kept::Shutdown(held) => {
                    self.publish(None);
                    self.release(held).await;
                    return;
                }
            }
        }
        self.publish(None);
    }

    fn publish(&self, shard: Option<u32>) {
        self.held.send_if_modified(|held| {
            let changed = *held != shard;
            *held = shard;
            changed
        });
    }

    /// Tries every shard once, starting at this replica's own, and takes
    /// the first free one.
    async fn acquire_any(&self) -> Result<Option<Holding>, LeaseError> {
        let shards = self.options.shards;
        let first = first_shard(&self.options.identity, shards);
        for offset in 0..shards {
            let shard = u32::try_from((u64::from(first) + u64::from(offset)) % u64::from(shards))
                .unwrap_or(0);
            match self.try_acquire(shard).await? {
                Attempt::Acquired(held) => return Ok(Some(held)),
                Attempt::HeldBy(holder) => tracing::debug!(shard, %holder, "shard held"),
                Attempt::LostRace => tracing::debug!(shard, "another replica took the shard first"),
            }
        }
        Ok(None)
    }

    async fn try_acquire(&self, shard: u32) -> Result<Attempt, LeaseError> {
        let name = self.options.lease_name(shard);
        let current = self
            .api
            .get_opt(&name)
            .await
            .map_err(|e| self.api_error("reading", &name, e))?;
        let started = Instant::now();
        let now = self.clock.now();
        let written = match current {
            None => {
                let lease = fresh_lease(&self.options, &name, now)?;
                self.api.create(&PostParams::default(), &lease).await
            }
            Some(current) => {
                let holder = holder_of(&current);
                if holder != Some(self.options.identity.as_str()) && !is_free(&current, now) {
                    return Ok(Attempt::HeldBy(holder.unwrap_or_default().to_owned()));
                }
                let lease = taken_lease(&self.options, current, now)?;
                self.api
                    .replace(&name, &PostParams::default(), &lease)
                    .await
            }
        };
        match written {
            Ok(lease) => Ok(Attempt::Acquired(Holding {
                shard,
                lease: Box::new(lease),
                owned_until: started + self.deadline,
            })),
            Err(kube::Error::Api(s)) if s.is_conflict() || s.is_already_exists() => {
                Ok(Attempt::LostRace)
            }
            Err(e) => Err(self.api_error("writing", &name, e)),
        }
    }

    /// Waits for the renew interval, then renews until a renewal succeeds,
    /// the Lease is lost, the renew deadline passes or shutdown comes.
    async fn keep(&self, held: Holding, mut shutdown: Shutdown<'_>) -> Kept {
        let deadline = tokio::time::sleep_until(held.owned_until);
        tokio::pin!(deadline);
        tokio::select! {
            biased;
            () = shutdown.as_mut() => return Kept::Shutdown(held),
            () = deadline.as_mut() => return Kept::DeadlinePassed,
            () = tokio::time::sleep(self.options.renew_interval) => {}
        }
        let interval = self.options.renew_interval;
        let mut backoff = Backoff::new((interval / 4).max(Duration::from_millis(100)), interval);
        loop {
            let renewal = tokio::select! {
                biased;
                () = shutdown.as_mut() => return Kept::Shutdown(held),
                () = deadline.as_mut() => return Kept::DeadlinePassed,
                renewal = self.renew(&held) => renewal,
            };
            match renewal {
                Ok(Some(renewed)) => return Kept::Renewed(renewed),
                Ok(None) => return Kept::Lost,
                Err(error) => {
                    tracing::warn!(shard = held.shard, %error, "cannot renew the shard's Lease")
                }
            }
            tokio::select! {
                biased;
                () = shutdown.as_mut() => return Kept::Shutdown(held),
                () = deadline.as_mut() => return Kept::DeadlinePassed,
                () = tokio::time::sleep(backoff.next_wait()) => {}
            }
        }
    }

    /// One renewal: the Lease as last written with a new renewTime. On a
    /// conflict the Lease is read again and renewed if it is still ours.
    /// `None`: another replica holds it, or it is gone.
    async fn renew(&self, held: &Holding) -> Result<Option<Holding>, LeaseError> {
        let name = self.options.lease_name(held.shard);
        let mut current = Lease::clone(&held.lease);
        for _ in 0..2 {
            let started = Instant::now();
            let lease = renewed_lease(&self.options, current, self.clock.now())?;
            match self
                .api
                .replace(&name, &PostParams::default(), &lease)
                .await
            {
                Ok(lease) => {
                    return Ok(Some(Holding {
                        shard: held.shard,
                        lease: Box::new(lease),
                        owned_until: started + self.deadline,
                    }));
                }
                Err(kube::Error::Api(s)) if s.is_not_found() => return Ok(None),
                Err(kube::Error::Api(s)) if s.is_conflict() => {}
                Err(e) => return Err(self.api_error("renewing", &name, e)),
            }
            match self.read_if_ours(&name).await? {
                Some(lease) => current = lease,
                None => return Ok(None),
            }
        }
        Err(LeaseError::Contended {
            namespace: self.options.namespace.clone(),
            name,
        })
    }

    /// Frees the Lease at once, so a restart does not wait a lease duration.
    /// Bounded by the renew deadline; on failure the Lease simply expires.
    async fn release(&self, held: Holding) {
        let name = self.options.lease_name(held.shard);
        let release = async {
            let mut current = *held.lease;
            for _ in 0..2 {
                let lease = released_lease(current)?;
                match self
                    .api
                    .replace(&name, &PostParams::default(), &lease)
                    .await
                {
                    Ok(_) => return Ok(true),
                    Err(kube::Error::Api(s)) if s.is_conflict() => {}
                    Err(kube::Error::Api(s)) if s.is_not_found() => return Ok(false),
                    Err(e) => return Err(self.api_error("releasing", &name, e)),
                }
                match self.read_if_ours(&name).await? {
                    Some(lease) => current = lease,
                    None => return Ok(false),
                }
            }
            Ok(false)
        };
        match tokio::time::timeout(self.deadline, release).await {
            Ok(Ok(true)) => {
                tracing::info!(shard = held.shard, lease = %name, "released the shard's Lease")
            }
            Ok(Ok(false)) => {}
            Ok(Err(error)) => {
                tracing::warn!(%error, "cannot release the shard's Lease: it frees itself when it expires");
            }
            Err(_) => tracing::warn!(
                lease = %name,
                "releasing the shard's Lease timed out: it frees itself when it expires"
            ),
        }
    }

    /// The Lease as it is now, if this replica still holds it.
    async fn read_if_ours(&self, name: &str) -> Result<Option<Lease>, LeaseError> {
        let lease = self
            .api
            .get_opt(name)
            .await
            .map_err(|e| self.api_error("reading", name, e))?;
        Ok(lease.filter(|l| holder_of(l) == Some(self.options.identity.as_str())))
    }

    fn timed_out(&self) -> LeaseError {
        LeaseError::TimedOut {
            namespace: self.options.namespace.clone(),
            after: self.options.lease_duration,
        }
    }

    fn api_error(&self, verb: &'static str, name: &str, source: kube::Error) -> LeaseError {
        LeaseError::Api {
            verb,
            namespace: self.options.namespace.clone(),
            name: name.to_owned(),
            source: Box::new(source),
        }
    }
}

/// Waits that double after each failure, up to a ceiling.
#[derive(Debug)]
struct Backoff {
    first: Duration,
    ceiling: Duration,
    next: Duration,
}

impl Backoff {
    fn new(first: Duration, ceiling: Duration) -> Self {
        Self {
            first,
            ceiling,
            next: first,
        }
    }

    fn next_wait(&mut self) -> Duration {
        let wait = self.next;
        self.next = self.next.saturating_mul(2).min(self.ceiling);
        wait
    }

    fn reset(&mut self) {
        self.next = self.first;
    }
}

fn holder_of(lease: &Lease) -> Option<&str> {
    lease
        .spec
        .as_ref()
        .and_then(|s| s.holder_identity.as_deref())
        .filter(|h| !h.is_empty())
}

/// Whether anyone may take the Lease at `now`: it has no holder, or its
/// holder's last renewal plus the duration it wrote lies in the past.
fn is_free(lease: &Lease, now: DateTime<Utc>) -> bool {
    let Some(spec) = &lease.spec else {
        return true;
    };
    if holder_of(lease).is_none() {
        return true;
    }
    let Some(renewed) = spec.renew_time.as_ref().or(spec.acquire_time.as_ref()) else {
        return true;
    };
    let Some(renewed) = DateTime::from_timestamp_micros(renewed.0.as_microsecond()) else {
        return true;
    };
    let duration = chrono::Duration::seconds(i64::from(spec.lease_duration_seconds.unwrap_or(0)));
    renewed
        .checked_add_signed(duration)
        .is_some_and(|expires| expires < now)
}

fn micro_time(now: DateTime<Utc>) -> Result<MicroTime, LeaseError> {
    Timestamp::from_microsecond(now.timestamp_micros())
        .map(MicroTime)
        .map_err(|_| LeaseError::ClockOutOfRange(now))
}

/// A new Lease, held by this replica.
fn fresh_lease(
    options: &LeaseOptions,
    name: &str,
    now: DateTime<Utc>,
) -> Result<Lease, LeaseError> {
    let at = micro_time(now)?;
    Ok(Lease {
        metadata: ObjectMeta {
            name: Some(name.to_owned()),
            namespace: Some(options.namespace.clone()),
            labels: Some(BTreeMap::from([(
                MANAGED_BY_LABEL.to_owned(),
                MANAGED_BY.to_owned(),
            )])),
            ..ObjectMeta::default()
        },
        spec: Some(LeaseSpec {
            holder_identity: Some(options.identity.clone()),
            acquire_time: Some(at.clone()),
            renew_time: Some(at),
            lease_duration_seconds: Some(options.lease_duration_seconds()?),
            lease_transitions: Some(0),
            ..LeaseSpec::default()
        }),
    })
}

/// `current` (free, or this replica's from before) taken by this replica;
/// its resourceVersion makes the write fail if anyone wrote it since.
fn taken_lease(
    options: &LeaseOptions,
    current: Lease,
    now: DateTime<Utc>,
) -> Result<Lease, LeaseError> {
    let ours = holder_of(&current) == Some(options.identity.as_str());
    let mut lease = renewed_lease(options, current, now)?;
    if !ours {
        let spec = lease.spec.get_or_insert_with(LeaseSpec::default);
        spec.holder_identity = Some(options.identity.clone());
        spec.acquire_time = spec.renew_time.clone();
        spec.lease_transitions = Some(spec.lease_transitions.unwrap_or(0).saturating_add(1));
    }
    Ok(lease)
}

/// `current` with a new renewTime and this replica's duration.
fn renewed_lease(
    options: &LeaseOptions,
    mut current: Lease,
    now: DateTime<Utc>,
) -> Result<Lease, LeaseError> {
    require_resource_version(&current, &options.namespace)?;
    let spec = current.spec.get_or_insert_with(LeaseSpec::default);
    spec.renew_time = Some(micro_time(now)?);
    spec.lease_duration_seconds = Some(options.lease_duration_seconds()?);
    Ok(current)
}

/// `current` with no holder: free at once.
fn released_lease(mut current: Lease) -> Result<Lease, LeaseError> {
    let namespace = current.metadata.namespace.clone().unwrap_or_default();
    require_resource_version(&current, &namespace)?;
    if let Some(spec) = current.spec.as_mut() {
        spec.holder_identity = None;
    }
    Ok(current)
}

fn require_resource_version(lease: &Lease, namespace: &str) -> Result<(), LeaseError> {
    match lease.metadata.resource_version.as_deref() {
        Some(v) if !v.is_empty() => Ok(()),
        _ => Err(LeaseError::NoResourceVersion {
            namespace: namespace.to_owned(),
            name: lease.metadata.name.clone().unwrap_or_default(),
        }),
    }
}

#[cfg(test)]
mod tests {
    //! The election against a mocked API server (the kube-rs controller-rs
    //! habit): each test plays the server's side request by request, with
    //! tokio's time paused so the clock moves only when every task waits.

    use super::*;
    use http::{Method, Request, Response, StatusCode};
    use kube::client::Body;
    use serde_json::json;
    use tokio::sync::{mpsc, oneshot};
    use tower_test::mock::{self, Handle, SendResponse};

    const NS: &str = "zentralink-system";
    const ME: &str = "replica-a";
    const LEASES: &str = "/apis/coordination.k8s.io/v1/namespaces/zentralink-system/leases";

    fn start() -> DateTime<Utc> {
        "2026-03-01T12:00:00Z".parse().unwrap()
    }

    fn at(seconds: f64) -> DateTime<Utc> {
        start() + chrono::Duration::microseconds((seconds * 1e6).round() as i64)
    }

    fn micro(t: DateTime<Utc>) -> MicroTime {
        micro_time(t).unwrap()
    }

    /// Wall time that follows tokio's (paused) clock from [`start`].
    #[derive(Debug)]
    struct TestClock {
        origin: Instant,
    }

    impl LeaseClock for TestClock {
        fn now(&self) -> DateTime<Utc> {
            start() + chrono::Duration::from_std(self.origin.elapsed()).unwrap()
        }
    }

    /// 15 s leases renewed every 2 s (deadline 10 s), retried every 2 s.
    fn options(shards: u32) -> LeaseOptions {
        LeaseOptions::new(NS, ME, shards)
    }

    fn lease_path(shard: u32) -> String {
        format!("{LEASES}/zentralink-shard-{shard}")
    }

    fn held_by(holder: &str, shard: u32, renewed: DateTime<Utc>, version: &str) -> Lease {
        Lease {
            metadata: ObjectMeta {
                name: Some(format!("zentralink-shard-{shard}")),
                namespace: Some(NS.into()),
                resource_version: Some(version.into()),
                ..ObjectMeta::default()
            },
            spec: Some(LeaseSpec {
                holder_identity: Some(holder.into()),
                acquire_time: Some(micro(renewed - chrono::Duration::minutes(5))),
                renew_time: Some(micro(renewed)),
                lease_duration_seconds: Some(15),
                lease_transitions: Some(3),
                ..LeaseSpec::default()
            }),
        }
    }

    fn spec(lease: &Lease) -> &LeaseSpec {
        lease.spec.as_ref().unwrap()
    }

    /// The API server's side of the conversation.
    struct ApiServer(Handle<Request<Body>, Response<Body>>);

    /// One request the replica sent, waiting for its answer.
    struct Call {
        method: Method,
        path: String,
        body: Option<Lease>,
        respond: SendResponse<Response<Body>>,
    }

    impl ApiServer {
        async fn next(&mut self) -> Call {
            let (request, respond) = self
                .0
                .next_request()
                .await
                .expect("the replica sent no further request");
            let method = request.method().clone();
            let path = request.uri().path().to_owned();
            let bytes = request.into_body().collect_bytes().await.unwrap();
            let body = (!bytes.is_empty()).then(|| serde_json::from_slice(&bytes).unwrap());
            Call {
                method,
                path,
                body,
                respond,
            }
        }

        async fn expect(&mut self, method: Method, path: &str) -> Call {
            let call = self.next().await;
            assert_eq!(
                (&call.method, call.path.as_str()),
                (&method, path),
                "unexpected request"
            );
            call
        }
    }

    impl Call {
        fn sent(&self) -> &Lease {
            self.body.as_ref().expect("the request carries a Lease")
        }

        fn answer(self, status: StatusCode, body: serde_json::Value) {
            let response = Response::builder()
                .status(status)
                .body(Body::from(serde_json::to_vec(&body).unwrap()))
                .unwrap();
            self.respond.send_response(response);
        }

        fn lease(self, lease: &Lease) {
            self.answer(StatusCode::OK, serde_json::to_value(lease).unwrap());
        }

        /// Stores what was sent under a new resourceVersion and returns it.
        fn stores(self, version: &str) -> Lease {
            let mut lease = self.sent().clone();
            lease.metadata.resource_version = Some(version.into());
            let status = if self.method == Method::POST {
                StatusCode::CREATED
            } else {
                StatusCode::OK
            };
            self.answer(status, serde_json::to_value(&lease).unwrap());
            lease
        }

        fn fails(self, code: u16, reason: &str) {
            let body = json!({
                "kind": "Status", "apiVersion": "v1", "metadata": {},
                "status": "Failure", "message": format!("{reason} (mocked)"),
                "reason": reason, "code": code,
            });
            self.answer(StatusCode::from_u16(code).unwrap(), body);
        }

        fn not_found(self) {
            self.fails(404, "NotFound");
        }

        fn conflict(self) {
            self.fails(409, "Conflict");
        }

        fn server_error(self) {
            self.fails(500, "InternalError");
        }
    }

    /// One replica under test, with the API server it talks to.
    struct Replica {
        shards: Shards,
        api: ApiServer,
        clock: Arc<TestClock>,
        stop: Option<oneshot::Sender<()>>,
        task: tokio::task::JoinHandle<()>,
    }

    fn replica(options: LeaseOptions) -> Replica {
        let (service, handle) = mock::pair::<Request<Body>, Response<Body>>();
        let client = kube::Client::new(service, "default");
        let clock = Arc::new(TestClock {
            origin: Instant::now(),
        });
        let (stop, stopped) = oneshot::channel::<()>();
        let (shards, task) = Shards::spawn(client, options, clock.clone(), async move {
            let _ = stopped.await;
        });
        Replica {
            shards,
            api: ApiServer(handle),
            clock,
            stop: Some(stop),
            task,
        }
    }

    impl Replica {
        fn now(&self) -> DateTime<Utc> {
            self.clock.now()
        }

        async fn until_held(&self, expected: Option<u32>) {
            self.shards
                .changes()
                .wait_for(|held| *held == expected)
                .await
                .expect("the election ended");
        }

        fn shut_down(&mut self) {
            let _ = self.stop.take().unwrap().send(());
        }
    }

    /// A replica holding shard 0 of one, created at the start (version "1").
    async fn holder() -> Replica {
        let mut r = replica(options(1));
        r.api.expect(Method::GET, &lease_path(0)).await.not_found();
        r.api.expect(Method::POST, LEASES).await.stores("1");
        r.until_held(Some(0)).await;
        r
    }

    /// Answers every further request with a 500 and reports when it came.
    fn failing_server(
        mut api: ApiServer,
        clock: Arc<TestClock>,
    ) -> mpsc::UnboundedReceiver<(Method, DateTime<Utc>)> {
        let (calls, seen) = mpsc::unbounded_channel();
        tokio::spawn(async move {
            loop {
                let call = api.next().await;
                let _ = calls.send((call.method.clone(), clock.now()));
                call.server_error();
            }
        });
        seen
    }

    #[tokio::test(start_paused = true)]
    async fn a_missing_lease_is_created_and_held() {
        let mut r = replica(options(1));
        r.api.expect(Method::GET, &lease_path(0)).await.not_found();
        let create = r.api.expect(Method::POST, LEASES).await;
        let sent = create.sent().clone();
        assert_eq!(sent.metadata.name.as_deref(), Some("zentralink-shard-0"));
        assert_eq!(
            sent.metadata
                .labels
                .as_ref()
                .unwrap()
                .get(MANAGED_BY_LABEL)
                .map(String::as_str),
            Some(MANAGED_BY)
        );
        assert_eq!(spec(&sent).holder_identity.as_deref(), Some(ME));
        assert_eq!(spec(&sent).acquire_time, Some(micro(start())));
        assert_eq!(spec(&sent).renew_time, Some(micro(start())));
        assert_eq!(spec(&sent).lease_duration_seconds, Some(15));
        assert_eq!(spec(&sent).lease_transitions, Some(0));
        assert_eq!(
            r.shards.held(),
            None,
            "nothing is owned before the write succeeds"
        );
        create.stores("1");
        r.until_held(Some(0)).await;
        assert!(r.shards.owns("acme", "www"));
    }

    #[tokio::test(start_paused = true)]
    async fn an_expired_lease_is_taken_with_the_resource_version_read() {
        let mut r = replica(options(1));
        let expired = held_by("replica-b", 0, at(-15.5), "41");
        r.api
            .expect(Method::GET, &lease_path(0))
            .await
            .lease(&expired);
        let replace = r.api.expect(Method::PUT, &lease_path(0)).await;
        let sent = replace.sent().clone();
        assert_eq!(sent.metadata.resource_version.as_deref(), Some("41"));
        assert_eq!(spec(&sent).holder_identity.as_deref(), Some(ME));
        assert_eq!(spec(&sent).acquire_time, Some(micro(start())));
        assert_eq!(spec(&sent).renew_time, Some(micro(start())));
        assert_eq!(spec(&sent).lease_duration_seconds, Some(15));
        assert_eq!(spec(&sent).lease_transitions, Some(4));
        replace.stores("42");
        r.until_held(Some(0)).await;
    }

    #[tokio::test(start_paused = true)]
    async fn a_released_lease_is_taken_at_once() {
        let mut r = replica(options(1));
        let mut released = held_by("replica-b", 0, start(), "7");
        released.spec.as_mut().unwrap().holder_identity = None;
        r.api
            .expect(Method::GET, &lease_path(0))
            .await
            .lease(&released);
        let replace = r.api.expect(Method::PUT, &lease_path(0)).await;
        assert_eq!(spec(replace.sent()).holder_identity.as_deref(), Some(ME));
        replace.stores("8");
        r.until_held(Some(0)).await;
    }

    #[tokio::test(start_paused = true)]
    async fn a_lease_another_replica_renewed_is_left_alone_and_tried_again_after_the_retry_interval()
     {
        let mut r = replica(options(1));
        let fresh = held_by("replica-b", 0, at(-14.0), "41");
        r.api
            .expect(Method::GET, &lease_path(0))
            .await
            .lease(&fresh);
        let again = r.api.expect(Method::GET, &lease_path(0)).await;
        assert_eq!(
            r.now(),
            at(2.0),
            "no write, and the next try after the retry interval"
        );
        assert_eq!(r.shards.held(), None);
        // by now it has expired
        again.lease(&fresh);
        r.api.expect(Method::PUT, &lease_path(0)).await.stores("42");
        r.until_held(Some(0)).await;
    }

    #[tokio::test(start_paused = true)]
    async fn losing_the_race_to_create_holds_nothing() {
        let mut r = replica(options(1));
        r.api.expect(Method::GET, &lease_path(0)).await.not_found();
        r.api
            .expect(Method::POST, LEASES)
            .await
            .fails(409, "AlreadyExists");
        let again = r.api.expect(Method::GET, &lease_path(0)).await;
        assert_eq!(r.now(), at(2.0), "tried again after the retry interval");
        assert_eq!(r.shards.held(), None);
        again.lease(&held_by("replica-b", 0, at(1.0), "1"));
        let _ = r.api.expect(Method::GET, &lease_path(0)).await;
        assert_eq!(r.now(), at(4.0));
        assert_eq!(r.shards.held(), None);
    }

    #[tokio::test(start_paused = true)]
    async fn losing_the_race_to_replace_holds_nothing_and_tries_the_next_shard() {
        // replica-a starts at shard 1 of 2
        let mut r = replica(options(2));
        r.api
            .expect(Method::GET, &lease_path(1))
            .await
            .lease(&held_by("replica-b", 1, at(-60.0), "5"));
        r.api.expect(Method::PUT, &lease_path(1)).await.conflict();
        r.api.expect(Method::GET, &lease_path(0)).await.not_found();
        r.api.expect(Method::POST, LEASES).await.stores("1");
        r.until_held(Some(0)).await;
        assert_eq!(r.now(), start());
        // acme/www is in shard 0 of 2, kube-system/coredns in shard 1
        assert!(r.shards.owns("acme", "www"));
        assert!(!r.shards.owns("kube-system", "coredns"));
        // it holds one shard: the next request renews it, no other is tried
        let renewal = r.api.expect(Method::PUT, &lease_path(0)).await;
        assert_eq!(r.now(), at(2.0));
        renewal.stores("2");
    }

    #[tokio::test(start_paused = true)]
    async fn a_replica_tries_every_shard_starting_at_its_own() {
        let mut r = replica(options(3));
        for shard in [1, 2, 0] {
            r.api
                .expect(Method::GET, &lease_path(shard))
                .await
                .lease(&held_by("replica-b", shard, start(), "3"));
        }
        let _ = r.api.expect(Method::GET, &lease_path(1)).await;
        assert_eq!(r.now(), at(2.0));
        assert_eq!(r.shards.held(), None);
    }

    #[tokio::test(start_paused = true)]
    async fn its_own_lease_from_before_a_restart_is_taken_back_at_once() {
        let mut r = replica(options(1));
        let mine = held_by(ME, 0, at(-1.0), "12");
        r.api.expect(Method::GET, &lease_path(0)).await.lease(&mine);
        let replace = r.api.expect(Method::PUT, &lease_path(0)).await;
        let sent = replace.sent().clone();
        assert_eq!(sent.metadata.resource_version.as_deref(), Some("12"));
        assert_eq!(spec(&sent).renew_time, Some(micro(start())));
        assert_eq!(
            spec(&sent).acquire_time,
            spec(&mine).acquire_time,
            "not a new acquisition"
        );
        assert_eq!(spec(&sent).lease_transitions, Some(3), "not a transition");
        replace.stores("13");
        r.until_held(Some(0)).await;
    }

    #[tokio::test(start_paused = true)]
    async fn transient_errors_are_retried_with_backoff() {
        let mut r = replica(options(1));
        r.api
            .expect(Method::GET, &lease_path(0))
            .await
            .server_error();
        r.api
            .expect(Method::GET, &lease_path(0))
            .await
            .server_error();
        assert_eq!(r.now(), at(2.0));
        r.api.expect(Method::GET, &lease_path(0)).await.not_found();
        assert_eq!(r.now(), at(6.0), "the wait doubled");
        r.api.expect(Method::POST, LEASES).await.stores("1");
        r.until_held(Some(0)).await;
    }

    #[tokio::test(start_paused = true)]
    async fn the_holder_renews_every_renew_interval() {
        let mut r = holder().await;
        for (seconds, read, written) in [(2.0, "1", "2"), (4.0, "2", "3"), (6.0, "3", "4")] {
            let renewal = r.api.expect(Method::PUT, &lease_path(0)).await;
            assert_eq!(r.now(), at(seconds));
            let sent = renewal.sent().clone();
            assert_eq!(sent.metadata.resource_version.as_deref(), Some(read));
            assert_eq!(spec(&sent).holder_identity.as_deref(), Some(ME));
            assert_eq!(spec(&sent).renew_time, Some(micro(at(seconds))));
            assert_eq!(spec(&sent).acquire_time, Some(micro(start())));
            assert_eq!(spec(&sent).lease_transitions, Some(0));
            renewal.stores(written);
            assert_eq!(r.shards.held(), Some(0));
        }
    }

    #[tokio::test(start_paused = true)]
    async fn the_holder_steps_down_when_renewals_fail_past_the_deadline_before_the_lease_can_expire()
     {
        let r = holder().await;
        let Replica {
            shards, api, clock, ..
        } = r;
        let mut calls = failing_server(api, clock.clone());
        shards.changes().wait_for(Option::is_none).await.unwrap();
        let stepped_down = clock.now();
        assert_eq!(
            stepped_down,
            at(10.0),
            "owns() turns false at the renew deadline"
        );
        assert!(!shards.owns("acme", "www"));
        let expires = at(15.0); // renewTime (the start) + leaseDurationSeconds
        assert!(
            stepped_down < expires,
            "before anyone else may take the Lease"
        );
        let mut renewals = Vec::new();
        while let Ok((method, when)) = calls.try_recv() {
            if when < stepped_down {
                assert_eq!(method, Method::PUT);
                renewals.push(when);
            }
        }
        assert!(renewals.len() >= 4, "renewals were retried: {renewals:?}");
        assert_eq!(renewals[0], at(2.0));
    }

    #[tokio::test(start_paused = true)]
    async fn the_holder_steps_down_at_the_deadline_when_the_api_server_does_not_answer() {
        let mut r = holder().await;
        let hung = r.api.expect(Method::PUT, &lease_path(0)).await;
        assert_eq!(r.now(), at(2.0));
        r.until_held(None).await;
        assert_eq!(r.now(), at(10.0));
        drop(hung);
    }

    #[tokio::test(start_paused = true)]
    async fn the_holder_steps_down_at_once_when_another_replica_took_the_lease() {
        let mut r = holder().await;
        r.api.expect(Method::PUT, &lease_path(0)).await.conflict();
        r.api
            .expect(Method::GET, &lease_path(0))
            .await
            .lease(&held_by("replica-b", 0, at(1.0), "9"));
        r.until_held(None).await;
        assert_eq!(r.now(), at(2.0));
    }

    #[tokio::test(start_paused = true)]
    async fn a_renewal_that_conflicts_with_an_unrelated_write_is_retried_on_the_new_version() {
        let mut r = holder().await;
        r.api.expect(Method::PUT, &lease_path(0)).await.conflict();
        let mut labelled = held_by(ME, 0, start(), "5");
        labelled.metadata.labels = Some(BTreeMap::from([("team".into(), "dns".into())]));
        r.api
            .expect(Method::GET, &lease_path(0))
            .await
            .lease(&labelled);
        let retry = r.api.expect(Method::PUT, &lease_path(0)).await;
        assert_eq!(retry.sent().metadata.resource_version.as_deref(), Some("5"));
        retry.stores("6");
        assert_eq!(r.shards.held(), Some(0));
        let next = r.api.expect(Method::PUT, &lease_path(0)).await;
        assert_eq!(next.sent().metadata.resource_version.as_deref(), Some("6"));
    }

    #[tokio::test(start_paused = true)]
    async fn shutdown_stops_owning_and_releases_the_lease() {
        let mut r = holder().await;
        r.shut_down();
        let release = r.api.expect(Method::PUT, &lease_path(0)).await;
        assert_eq!(
            r.shards.held(),
            None,
            "owns() is false before the release is sent"
        );
        let sent = release.sent().clone();
        assert_eq!(sent.metadata.resource_version.as_deref(), Some("1"));
        assert_eq!(spec(&sent).holder_identity, None);
        assert!(
            is_free(&sent, start()),
            "free at once, not after the lease duration"
        );
        release.stores("2");
        r.task.await.unwrap();
        assert_eq!(r.shards.held(), None);
    }

    #[tokio::test(start_paused = true)]
    async fn shutdown_ends_the_election_even_when_the_release_gets_no_answer() {
        let mut r = holder().await;
        r.shut_down();
        let hung = r.api.expect(Method::PUT, &lease_path(0)).await;
        (&mut r.task).await.unwrap();
        assert_eq!(r.now(), at(10.0), "bounded by the renew deadline");
        drop(hung);
    }

    #[tokio::test(start_paused = true)]
    async fn an_ended_election_holds_nothing() {
        let r = holder().await;
        r.task.abort();
        assert!(r.task.await.unwrap_err().is_cancelled());
        assert_eq!(r.shards.held(), None);
        assert!(!r.shards.owns("acme", "www"));
    }

    #[tokio::test(start_paused = true)]
    async fn invalid_options_hold_nothing() {
        let mut r = replica(LeaseOptions {
            renew_interval: Duration::from_secs(10),
            ..options(1)
        });
        (&mut r.task).await.unwrap();
        assert_eq!(r.shards.held(), None);
    }

    #[test]
    fn options_are_checked() {
        assert!(options(1).validate().is_ok());
        assert!(matches!(options(0).validate(), Err(LeaseError::NoShards)));
        let with = |change: fn(&mut LeaseOptions)| {
            let mut o = options(1);
            change(&mut o);
            o.validate()
        };
        assert!(matches!(
            with(|o| o.identity.clear()),
            Err(LeaseError::NoIdentity)
        ));
        assert!(matches!(
            with(|o| o.namespace.clear()),
            Err(LeaseError::NoNamespace)
        ));
        assert!(matches!(
            with(|o| o.lease_duration = Duration::from_millis(500)),
            Err(LeaseError::LeaseDurationTooShort(_))
        ));
        assert!(matches!(
            with(|o| o.renew_interval = Duration::from_secs(10)),
            Err(LeaseError::RenewIntervalTooLong { .. })
        ));
        assert!(matches!(
            with(|o| o.retry_interval = Duration::ZERO),
            Err(LeaseError::ZeroInterval)
        ));
        let odd = LeaseOptions {
            lease_duration: Duration::from_millis(3500),
            ..options(1)
        };
        assert_eq!(odd.lease_duration_seconds().unwrap(), 4, "rounded up");
        assert_eq!(options(1).renew_deadline(), Duration::from_secs(10));
        let short = options(1).with_lease_duration(Duration::from_secs(3));
        assert_eq!(short.renew_interval, Duration::from_millis(400));
        assert_eq!(short.retry_interval, Duration::from_millis(400));
        assert!(short.validate().is_ok());
        assert!(
            options(1)
                .with_lease_duration(Duration::from_secs(1))
                .validate()
                .is_ok()
        );
        assert_eq!(
            options(1).with_lease_duration(Duration::from_secs(15)),
            options(1)
        );
        assert_eq!(options(1).lease_name(2), "zentralink-shard-2");
    }

    #[test]
    fn shard_of_is_stable() {
        // SHA-256("namespace/name"), first 8 bytes big-endian, mod N: these
        // values must never change, or zones move between replicas on upgrade.
        assert_eq!(shard_of("acme", "www", 4), 2);
        assert_eq!(shard_of("acme", "www", 1000), 738);
        assert_eq!(shard_of("acme", "acme-example", 16), 12);
        assert_eq!(shard_of("globex", "globex-example", 3), 2);
        assert_eq!(shard_of("kube-system", "coredns", 16), 11);
        assert_eq!(shard_of("a", "b", 16), 13);
        assert_eq!(shard_of("acme", "www", 1), 0);
        assert_eq!(shard_of("acme", "www", 0), 0, "no shards counts as one");
    }

    #[test]
    fn shard_of_spreads_zones_evenly() {
        let mut counts = [0u32; 4];
        for n in 0..10_000 {
            let shard = shard_of(&format!("tenant-{}", n % 37), &format!("zone-{n}"), 4);
            counts[shard as usize] += 1;
        }
        for count in counts {
            assert!((2_250..=2_750).contains(&count), "{counts:?}");
        }
    }

    #[test]
    fn a_fixed_answer_owns_everything_or_nothing() {
        let all = Shards::single(true);
        assert_eq!(all.held(), Some(0));
        assert!(all.owns("acme", "www") && all.owns("globex", "globex-example"));
        assert_eq!(
            all.changes().has_changed().ok(),
            Some(false),
            "its channel stays open"
        );
        let none = Shards::single(false);
        assert_eq!(none.held(), None);
        assert!(!none.owns("acme", "www"));
    }

    #[test]
    fn a_lease_is_free_without_a_holder_or_once_its_duration_has_passed() {
        let lease = held_by("replica-b", 0, start(), "1");
        assert!(!is_free(&lease, at(15.0)));
        assert!(is_free(&lease, at(15.000_001)));
        let mut released = lease.clone();
        released.spec.as_mut().unwrap().holder_identity = Some(String::new());
        assert!(is_free(&released, start()));
        assert!(is_free(&Lease::default(), start()));
    }
}
