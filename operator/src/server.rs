//! The operator's HTTP side: `/metrics` (OpenMetrics), `/healthz`,
//! `/readyz` and the git webhook `/hooks/git`, which asks the reconcile loop
//! for a fetch. The router is built from explicit state and served with
//! graceful shutdown. Does I/O (network, signals).

use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use axum::Router;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio::sync::mpsc::error::TrySendError;
use zentralink_model::secrets::SecretString;

use crate::metrics::{Metrics, OPENMETRICS_CONTENT_TYPE};
use crate::webhook::{self, WebhookError, WebhookKind};

/// Largest webhook body accepted; larger ones are answered 413.
pub const WEBHOOK_BODY_LIMIT: usize = 5 * 1024 * 1024;

/// How long `/readyz` waits for [`Readiness::check`] before answering 503.
pub const READINESS_TIMEOUT: Duration = Duration::from_secs(5);

/// Whether the operator can do its work, as the reconcile loop sees it
/// (database reachable, source readable). Asked on every `/readyz`.
#[async_trait]
pub trait Readiness: Send + Sync {
    /// `Ok` when ready; otherwise the reason, which `/readyz` shows to
    /// anyone who can reach the port: name what is missing ("database
    /// unreachable"), never a connection string, credential or raw error.
    async fn check(&self) -> Result<(), String>;
}

/// What the server asks of the reconcile loop.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Trigger {
    /// A verified git webhook: the source may have a new revision, fetch it now.
    GitWebhook {
        /// The webhook's event header (`push`, ...), when sent.
        event: Option<String>,
    },
}

/// Everything the handlers use, passed to [`router`] explicitly.
pub struct ServerState {
    pub metrics: Metrics,
    /// The secret git servers sign webhooks with; `None` disables `/hooks/git` (404).
    pub webhook_secret: Option<SecretString>,
    /// Where webhook triggers go. Give it a small capacity (1 is enough):
    /// when it is full a fetch is already pending, and the webhook is
    /// answered 202 without queueing another.
    pub triggers: mpsc::Sender<Trigger>,
    pub readiness: Arc<dyn Readiness>,
}

impl fmt::Debug for ServerState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServerState")
            .field("metrics", &self.metrics)
            .field("webhook_secret", &self.webhook_secret)
            .field("triggers", &self.triggers)
            .finish_non_exhaustive()
    }
}

/// The operator's endpoints over `state`.
pub fn router(state: ServerState) -> Router {
    Router::new()
        .route("/metrics", get(metrics))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route(
            "/hooks/git",
            post(git_webhook).layer(DefaultBodyLimit::max(WEBHOOK_BODY_LIMIT)),
        )
        .with_state(Arc::new(state))
}

/// Serves `router` on `listener` until `shutdown` resolves, then stops
/// accepting connections and returns once the requests in flight are answered.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, router)
        .with_graceful_shutdown(shutdown)
        .await
}

/// Resolves on SIGTERM or Ctrl-C (SIGINT), for [`serve`]'s `shutdown`.
/// If a handler cannot be installed that is logged and the other one
/// still works (an uncaught SIGTERM still ends the process).
pub async fn shutdown_signal() {
    let ctrl_c = async {
        match tokio::signal::ctrl_c().await {
            Ok(()) => tracing::info!("Ctrl-C received, shutting down"),
            Err(error) => {
                tracing::error!(%error, "cannot listen for Ctrl-C");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(unix)]
    let terminate = async {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut terminate) => {
                terminate.recv().await;
                tracing::info!("SIGTERM received, shutting down");
            }
            Err(error) => {
                tracing::error!(%error, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = terminate => {}
    }
}

type SharedState = State<Arc<ServerState>>;

async fn metrics(State(state): SharedState) -> Response {
    (
        [(header::CONTENT_TYPE, OPENMETRICS_CONTENT_TYPE)],
        state.metrics.encode(),
    )
        .into_response()
}

async fn healthz() -> &'static str {
    "ok"
}

async fn readyz(State(state): SharedState) -> Response {
    match tokio::time::timeout(READINESS_TIMEOUT, state.readiness.check()).await {
        Ok(Ok(())) => (StatusCode::OK, "ready").into_response(),
        Ok(Err(reason)) => (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("not ready: {reason}"),
        )
            .into_response(),
        Err(_elapsed) => (
            StatusCode::SERVICE_UNAVAILABLE,
            format!(
                "not ready: the readiness check took longer than {} s",
                READINESS_TIMEOUT.as_secs()
            ),
        )
            .into_response(),
    }
}

async fn git_webhook(
    State(state): SharedState,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let Some(secret) = &state.webhook_secret else {
        return (StatusCode::NOT_FOUND, "git webhooks are not enabled").into_response();
    };
    let body = match body {
        Ok(body) => body,
        Err(rejection) if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE => {
            tracing::warn!(
                limit = WEBHOOK_BODY_LIMIT,
                "git webhook refused: body too large"
            );
            return (
                StatusCode::PAYLOAD_TOO_LARGE,
                "the webhook body is larger than 5 MiB",
            )
                .into_response();
        }
        Err(rejection) => {
            tracing::warn!(error = %rejection.body_text(), "git webhook refused: body unreadable");
            return (
                StatusCode::BAD_REQUEST,
                "the webhook body could not be read",
            )
                .into_response();
        }
    };
    match webhook::verify(secret.expose().as_bytes(), &headers, &body) {
        Ok(WebhookKind::Ping) => {
            tracing::info!("git webhook ping verified");
            (StatusCode::OK, "pong: the signature matches").into_response()
        }
        Ok(WebhookKind::Fetch { convention, event }) => {
            tracing::info!(?convention, ?event, "git webhook verified");
            send_trigger(&state.triggers, Trigger::GitWebhook { event })
        }
        Err(WebhookError::EmptySecret) => {
            tracing::error!("git webhook refused: {}", WebhookError::EmptySecret);
            (StatusCode::NOT_FOUND, "git webhooks are not enabled").into_response()
        }
        Err(error) => {
            tracing::warn!(%error, "git webhook refused");
            // The reasons name headers and formats, never the secret or a
            // signature, and help whoever sets the hook up.
            (StatusCode::UNAUTHORIZED, error.to_string()).into_response()
        }
    }
}

fn send_trigger(triggers: &mpsc::Sender<Trigger>, trigger: Trigger) -> Response {
    match triggers.try_send(trigger) {
        Ok(()) => (StatusCode::ACCEPTED, "fetch triggered").into_response(),
        Err(TrySendError::Full(_)) => {
            (StatusCode::ACCEPTED, "fetch already pending").into_response()
        }
        Err(TrySendError::Closed(_)) => {
            tracing::error!("git webhook verified but the reconcile loop is not listening");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                "the reconcile loop is not running; try again later",
            )
                .into_response()
        }
    }
}
