//! `zentralink operator`: reconcile continuously. The source is read at an
//! interval and at once when a verified git webhook arrives; zones are
//! reconciled when the revision changes, and all of them at a longer
//! interval even when it does not (to find drift). A revision that cannot be
//! read or does not validate changes nothing: the last good one stays in
//! force. SIGTERM (or Ctrl-C) lets the pass in flight finish and starts no
//! new one. Does I/O.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use tokio::sync::{mpsc, watch};
use zentralink_model::secrets::SecretString;
use zentralink_store::Store;
use zentralink_store::audit::{Actor, AuditEvent};

use crate::metrics::Metrics;
use crate::reconcile::{PassReport, Reconciler};
use crate::server::{Readiness, ServerState, Trigger, router, serve};
use crate::source::{Fetched, Revision, Source, SourceError};

/// How the operator runs.
#[derive(Debug, Clone)]
pub struct DaemonOptions {
    /// How often the source is read.
    pub interval: Duration,
    /// How often every zone is reconciled even when the revision did not change.
    pub full_pass: Duration,
    /// Where `/metrics`, `/healthz`, `/readyz` and `/hooks/git` listen (none: no HTTP).
    pub listen: Option<SocketAddr>,
    /// The secret git webhooks are signed with; without it `/hooks/git` answers 404.
    pub webhook_secret: Option<SecretString>,
}

/// Readiness: the database answers and the last read of the source worked.
struct Ready {
    store: Store,
    source_ok: Arc<AtomicBool>,
}

#[async_trait]
impl Readiness for Ready {
    async fn check(&self) -> Result<(), String> {
        self.store
            .ping()
            .await
            .map_err(|_| "database unreachable".to_owned())?;
        if self.source_ok.load(Ordering::Relaxed) {
            Ok(())
        } else {
            Err("the source could not be read, or its revision does not validate (see zentralink status)".into())
        }
    }
}

/// Runs until `shutdown` resolves; returns after the pass in flight (if any) finished.
pub async fn run(
    reconciler: Reconciler,
    source: Arc<dyn Source>,
    metrics: Metrics,
    options: DaemonOptions,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let (stop_tx, mut stop_rx) = watch::channel(false);
    tokio::spawn(async move {
        shutdown.await;
        let _ = stop_tx.send(true);
    });
    let (triggers, mut webhooks) = mpsc::channel::<Trigger>(1);
    let source_ok = Arc::new(AtomicBool::new(false));
    let server = match options.listen {
        Some(addr) => {
            let listener = tokio::net::TcpListener::bind(addr).await?;
            tracing::info!(%addr, "serving /metrics, /healthz, /readyz, /hooks/git");
            let app = router(ServerState {
                metrics: metrics.clone(),
                webhook_secret: options.webhook_secret.clone(),
                triggers,
                readiness: Arc::new(Ready {
                    store: reconciler.store().clone(),
                    source_ok: Arc::clone(&source_ok),
                }),
            });
            let mut stop = stop_rx.clone();
            Some(tokio::spawn(serve(listener, app, async move {
                let _ = stop.wait_for(|s| *s).await;
            })))
        }
        None => None,
    };
    let name = source.name();
    let mut in_force: Option<Revision> = None;
    let mut last_full: Option<Instant> = None;
    let mut first = true;
    loop {
        if !first {
            tokio::select! {
                _ = stop_rx.wait_for(|s| *s) => break,
                _ = tokio::time::sleep(options.interval) => {}
                Some(t) = webhooks.recv() => tracing::info!(?t, "fetching now"),
            }
        }
        first = false;
        if *stop_rx.borrow() {
            break;
        }
        let full_due = last_full.is_none_or(|t| t.elapsed() >= options.full_pass);
        // An unchanged source is not parsed again: one catalog in memory.
        let fetched = source
            .fetch_if_changed(in_force.as_ref().map(|r| r.id.as_str()))
            .await;
        let changed = match fetched {
            Ok(fetched) => {
                source_ok.store(true, Ordering::Relaxed);
                metrics.source_fetch(&name, "ok");
                let changed = match fetched {
                    Fetched::New(revision) => {
                        let changed = in_force.as_ref().is_none_or(|r| r.id != revision.id);
                        if changed {
                            tracing::info!(revision = %revision.id, "new revision in force");
                            metrics.source_good_revision(&name, chrono::Utc::now().timestamp());
                        }
                        in_force = Some(revision);
                        changed
                    }
                    Fetched::Unchanged => false,
                };
                if let Some(revision) = &in_force
                    && let Err(e) = reconciler
                        .store()
                        .record_good_revision(&name, &revision.id)
                        .await
                {
                    tracing::warn!("cannot record the revision: {e}");
                }
                changed
            }
            Err(e) => {
                source_ok.store(false, Ordering::Relaxed);
                metrics.source_fetch(
                    &name,
                    match e {
                        SourceError::Unreachable { .. } => "unreachable",
                        SourceError::Invalid { .. } => "invalid",
                    },
                );
                report_source_error(reconciler.store(), &name, &e).await;
                false
            }
        };
        let Some(revision) = &in_force else {
            continue;
        };
        if !(changed || full_due) {
            continue;
        }
        let started = Instant::now();
        let report = reconciler.pass(revision).await;
        last_full = Some(Instant::now());
        record_pass(reconciler.store(), &metrics, &name, &report).await;
        tracing::info!(
            revision = %report.revision,
            zones = report.zones.len(),
            errors = report.errors(),
            elapsed = ?started.elapsed(),
            "pass finished"
        );
    }
    tracing::info!("stopped: no new pass will start");
    if let Some(server) = server {
        let _ = server.await;
    }
    Ok(())
}

async fn report_source_error(store: &Store, name: &str, e: &SourceError) {
    tracing::error!("{e}; the last good revision stays in force");
    match store
        .record_source_error(name, e.revision(), &e.to_string())
        .await
    {
        Ok(true) => {
            let event = AuditEvent::new(
                None,
                Actor::Operator("zentralink-operator".into()),
                "source.failed",
            )
            .target("Source", name)
            .meta("revision", e.revision().unwrap_or("none").to_owned())
            .meta("error", e.to_string());
            if let Err(e) = store.audit(event).await {
                tracing::warn!("cannot audit the source error: {e}");
            }
        }
        Ok(false) => {}
        Err(e) => tracing::warn!("cannot record the source error: {e}"),
    }
}

async fn record_pass(store: &Store, metrics: &Metrics, name: &str, report: &PassReport) {
    metrics.source_pass(name, chrono::Utc::now().timestamp());
    for z in &report.zones {
        let outcome = z.outcome.map_or("Error", |o| o.as_str());
        metrics.pass_finished(&z.zone, outcome, Duration::from_millis(z.duration_ms));
        metrics.set_plan_changes(&z.zone, z.planned);
        metrics.set_pending(&z.zone, usize::from(z.waiting_for.is_some()));
        metrics.set_drift(&z.zone, z.drift.len());
    }
    if let Err(e) = store.record_pass(name, report.errors() == 0).await {
        tracing::warn!("cannot record the pass: {e}");
    }
}
