//! `zentralink operator --source kubernetes`: the controller, the admission
//! webhook, the leases and the HTTP endpoints (`/metrics`, `/healthz`,
//! `/readyz`) of one replica, started together and stopped together on
//! SIGTERM. Every replica serves the webhook; only the holder of a shard's
//! Lease reconciles that shard's zones. Does I/O.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use tokio::sync::{mpsc, watch};
use zentralink_store::Store;

use super::admission::{AdmissionOptions, TlsSource};
use super::controller::{Context, ControllerOptions, Reflectors, run as run_controller};
use super::lease::{LeaseOptions, Shards};
use super::secrets::CachedSecrets;
use crate::metrics::Metrics;
use crate::reconcile::{Clock, Credentials, Options, Reconciler};
use crate::server::{Readiness, ServerState, router, serve};

/// How the cluster operator runs.
#[derive(Debug, Clone)]
pub struct ClusterOptions {
    /// `/metrics`, `/healthz`, `/readyz` (plain HTTP).
    pub listen: SocketAddr,
    /// The admission webhook (TLS); `None`: no webhook served.
    pub admission: Option<AdmissionOptions>,
    /// The operator's namespace (Leases live there).
    pub namespace: String,
    /// This replica's name (the pod's name).
    pub identity: String,
    /// How many shards the zones are split into (1: leader election).
    pub shards: u32,
    pub lease_duration: Duration,
    pub controller: ControllerOptions,
}

/// What a cluster operator needs from the process: the store, credentials
/// (the cluster's Secrets are added here), the clock, the metrics.
#[derive(Debug)]
pub struct Inputs {
    pub store: Store,
    pub credentials: Credentials,
    pub clock: Arc<dyn Clock>,
    pub metrics: Metrics,
    pub reconcile: Options,
}

/// Why the cluster operator stopped before it was asked to.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error(
        "cannot reach the Kubernetes API (set KUBECONFIG, or run in a pod with a service account)"
    )]
    Client(#[from] kube::Error),
    #[error("the HTTP endpoints: {0}")]
    Http(#[from] std::io::Error),
    #[error("the admission webhook: {0}")]
    Admission(String),
    #[error(transparent)]
    Lease(#[from] super::lease::LeaseError),
}

/// Ready when the database answers and every cache holds its first list.
struct Ready {
    store: Store,
    caches_ready: watch::Receiver<bool>,
}

#[async_trait]
impl Readiness for Ready {
    async fn check(&self) -> Result<(), String> {
        self.store
            .ping()
            .await
            .map_err(|_| "database unreachable".to_owned())?;
        if *self.caches_ready.borrow() {
            Ok(())
        } else {
            Err("the caches of the cluster's objects are not filled yet".into())
        }
    }
}

/// Runs until `shutdown` resolves.
pub async fn run(
    options: ClusterOptions,
    inputs: Inputs,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<(), RunError> {
    let client = kube::Client::try_default().await?;
    let (stop_tx, stop_rx) = watch::channel(false);
    tokio::spawn(async move {
        shutdown.await;
        let _ = stop_tx.send(true);
    });
    let stopped = move || {
        let mut rx = stop_rx.clone();
        async move {
            let _ = rx.wait_for(|s| *s).await;
        }
    };

    let reflectors = Reflectors::new(&client, options.controller.concurrency);
    let mut credentials = inputs.credentials;
    credentials.secrets = Some(Arc::new(CachedSecrets::new(
        reflectors.caches.secrets.clone(),
    )));
    let reconciler = Reconciler::new(
        inputs.store.clone(),
        Arc::new(credentials),
        Arc::clone(&inputs.clock),
        inputs.reconcile,
    )
    .with_metrics(inputs.metrics.clone());

    let lease_options = LeaseOptions::new(&options.namespace, &options.identity, options.shards)
        .with_lease_duration(options.lease_duration);
    lease_options.validate()?;
    // the leases are released only after the controller drained: a zone's
    // reconcile in flight keeps its shard until it ends
    let (release_tx, release_rx) = tokio::sync::oneshot::channel::<()>();
    let (shards, lease_task) = Shards::spawn(
        client.clone(),
        lease_options,
        Arc::new(crate::reconcile::SystemClock),
        async move {
            let _ = release_rx.await;
        },
    );

    let (ready_tx, ready_rx) = watch::channel(false);
    let (triggers, _unused) = mpsc::channel(1);
    let listener = tokio::net::TcpListener::bind(options.listen).await?;
    tracing::info!(addr = %options.listen, "serving /metrics, /healthz, /readyz");
    let http = tokio::spawn(serve(
        listener,
        router(ServerState {
            metrics: inputs.metrics.clone(),
            webhook_secret: None,
            triggers,
            readiness: Arc::new(Ready {
                store: inputs.store.clone(),
                caches_ready: ready_rx,
            }),
        }),
        stopped(),
    ));

    let admission = options.admission.clone().map(|a| {
        let client = client.clone();
        let stop = stopped();
        tokio::spawn(async move { super::admission::serve(a, Some(client), stop).await })
    });

    let caches = reflectors.caches.clone();
    tokio::spawn(async move {
        if caches.ready(Duration::MAX).await {
            tracing::info!("caches filled; reconciling");
            let _ = ready_tx.send(true);
        }
    });

    let ctx = Arc::new(Context::new(
        client.clone(),
        reconciler,
        reflectors.caches.clone(),
        shards,
        options.controller.clone(),
    ));
    run_controller(reflectors, ctx, stopped()).await;
    let _ = release_tx.send(());
    let _ = lease_task.await;
    if let Ok(Err(e)) = http.await {
        return Err(RunError::Http(e));
    }
    if let Some(task) = admission
        && let Ok(Err(e)) = task.await
    {
        return Err(RunError::Admission(e.to_string()));
    }
    Ok(())
}

/// Where the admission webhook's certificate comes from, from the flags.
pub fn tls_source(
    dir: Option<PathBuf>,
    service: &str,
    namespace: &str,
    extra_sans: Vec<String>,
    webhook_configs: Vec<String>,
) -> TlsSource {
    match dir {
        Some(dir) => TlsSource::Files { dir },
        None => TlsSource::Generate {
            service: service.to_owned(),
            namespace: namespace.to_owned(),
            extra_sans,
            webhook_configs,
        },
    }
}
