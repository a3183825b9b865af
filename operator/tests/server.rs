//! The operator's HTTP endpoints: every route and status through the router
//! (`oneshot`), then the real server on loopback TCP with a graceful
//! shutdown that lets an in-flight request finish.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use axum::Router;
use axum::body::Body;
use axum::http::{HeaderMap, Method, Request, StatusCode, header};
use data_encoding::HEXLOWER;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use tokio::net::TcpListener;
use tokio::sync::mpsc::error::TryRecvError;
use tokio::sync::{Notify, mpsc, oneshot};
use tower::ServiceExt;
use zentralink_model::secrets::SecretString;
use zentralink_operator::metrics::{Metrics, OPENMETRICS_CONTENT_TYPE};
use zentralink_operator::server::{
    Readiness, ServerState, Trigger, WEBHOOK_BODY_LIMIT, router, serve, shutdown_signal,
};

const SECRET: &str = "webhook secret for tests";
const PUSH: &[u8] = br#"{"ref":"refs/heads/main","after":"76ae82c7b1a177c8d03f9e96e0adf2466113728f","repository":{"full_name":"acme/zones"}}"#;

/// A readiness check with a fixed answer, after an optional delay; it
/// signals `started` when a check begins.
struct FixedReadiness {
    answer: Result<(), String>,
    delay: Duration,
    started: Arc<Notify>,
}

#[async_trait]
impl Readiness for FixedReadiness {
    async fn check(&self) -> Result<(), String> {
        self.started.notify_one();
        tokio::time::sleep(self.delay).await;
        self.answer.clone()
    }
}

fn readiness(answer: Result<(), String>, delay: Duration) -> Arc<FixedReadiness> {
    Arc::new(FixedReadiness {
        answer,
        delay,
        started: Arc::new(Notify::new()),
    })
}

struct Fixture {
    state: ServerState,
    triggers: mpsc::Receiver<Trigger>,
}

fn fixture(secret: Option<&str>) -> Fixture {
    let (sender, triggers) = mpsc::channel(8);
    Fixture {
        state: ServerState {
            metrics: Metrics::new(),
            webhook_secret: secret.map(SecretString::new),
            triggers: sender,
            readiness: readiness(Ok(()), Duration::ZERO),
        },
        triggers,
    }
}

async fn call(router: Router, request: Request<Body>) -> (StatusCode, HeaderMap, String) {
    let response = router.oneshot(request).await.unwrap();
    let status = response.status();
    let headers = response.headers().clone();
    let body = axum::body::to_bytes(response.into_body(), usize::MAX)
        .await
        .unwrap();
    (status, headers, String::from_utf8(body.to_vec()).unwrap())
}

fn get(path: &str) -> Request<Body> {
    Request::get(path).body(Body::empty()).unwrap()
}

fn hmac_hex(secret: &str, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(body);
    HEXLOWER.encode(&mac.finalize().into_bytes())
}

fn github_hook(secret: &str, event: &str, body: &[u8]) -> Request<Body> {
    Request::post("/hooks/git")
        .header("x-github-event", event)
        .header("x-github-delivery", "72d3162e-cc78-11e3-81ab-4c9367dc0958")
        .header(
            "x-hub-signature-256",
            format!("sha256={}", hmac_hex(secret, body)),
        )
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(body.to_vec()))
        .unwrap()
}

fn gitea_hook(secret: &str, body: &[u8]) -> Request<Body> {
    Request::post("/hooks/git")
        .header("x-gitea-event", "push")
        .header("x-gitea-signature", hmac_hex(secret, body))
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(body.to_vec()))
        .unwrap()
}

/// Nothing (more) was sent: the channel is empty, or closed because the
/// router holding the sender is gone.
fn assert_no_trigger(triggers: &mut mpsc::Receiver<Trigger>) {
    match triggers.try_recv() {
        Err(TryRecvError::Empty | TryRecvError::Disconnected) => {}
        Ok(trigger) => panic!("unexpected trigger {trigger:?}"),
    }
}

fn push_trigger() -> Trigger {
    Trigger::GitWebhook {
        event: Some("push".to_owned()),
    }
}

#[tokio::test]
async fn metrics_are_served_as_openmetrics_text() {
    let Fixture { state, .. } = fixture(None);
    state.metrics.set_plan_changes("acme.example.", 3);
    state.metrics.source_fetch("zones", "ok");
    let (status, headers, body) = call(router(state), get("/metrics")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(headers[header::CONTENT_TYPE], OPENMETRICS_CONTENT_TYPE);
    assert!(
        body.contains("# TYPE zentralink_plan_changes gauge\n"),
        "{body}"
    );
    assert!(
        body.contains("zentralink_plan_changes{zone=\"acme.example.\"} 3\n"),
        "{body}"
    );
    assert!(
        body.contains("zentralink_source_fetches_total{source=\"zones\",result=\"ok\"} 1\n"),
        "{body}"
    );
    assert!(body.ends_with("# EOF\n"), "{body}");
}

#[tokio::test]
async fn healthz_answers_ok_while_the_process_runs() {
    let Fixture { mut state, .. } = fixture(None);
    // liveness does not depend on readiness
    state.readiness = readiness(Err("database unreachable".into()), Duration::ZERO);
    let (status, headers, body) = call(router(state), get("/healthz")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body, "ok");
    assert!(
        headers[header::CONTENT_TYPE]
            .to_str()
            .unwrap()
            .starts_with("text/plain")
    );
}

#[tokio::test]
async fn readyz_answers_ready_when_the_check_passes() {
    let Fixture { state, .. } = fixture(None);
    let (status, _, body) = call(router(state), get("/readyz")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body, "ready");
}

#[tokio::test]
async fn readyz_answers_503_with_the_reason() {
    let Fixture { mut state, .. } = fixture(None);
    state.readiness = readiness(Err("database unreachable".into()), Duration::ZERO);
    let (status, headers, body) = call(router(state), get("/readyz")).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(body, "not ready: database unreachable");
    assert!(
        headers[header::CONTENT_TYPE]
            .to_str()
            .unwrap()
            .starts_with("text/plain")
    );
}

#[tokio::test(start_paused = true)]
async fn readyz_answers_503_when_the_check_hangs() {
    let Fixture { mut state, .. } = fixture(None);
    state.readiness = readiness(Ok(()), Duration::from_secs(3600));
    let (status, _, body) = call(router(state), get("/readyz")).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(body, "not ready: the readiness check took longer than 5 s");
}

#[tokio::test]
async fn a_valid_github_push_sends_exactly_one_trigger() {
    let Fixture {
        state,
        mut triggers,
    } = fixture(Some(SECRET));
    let (status, _, body) = call(router(state), github_hook(SECRET, "push", PUSH)).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    assert_eq!(triggers.try_recv(), Ok(push_trigger()));
    assert_no_trigger(&mut triggers);
}

#[tokio::test]
async fn a_valid_gitea_push_sends_exactly_one_trigger() {
    let Fixture {
        state,
        mut triggers,
    } = fixture(Some(SECRET));
    let (status, _, body) = call(router(state), gitea_hook(SECRET, PUSH)).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    assert_eq!(triggers.try_recv(), Ok(push_trigger()));
    assert_no_trigger(&mut triggers);
}

#[tokio::test]
async fn a_github_ping_is_answered_200_and_triggers_nothing() {
    let Fixture {
        state,
        mut triggers,
    } = fixture(Some(SECRET));
    let ping = br#"{"zen":"Design for failure.","hook_id":1}"#;
    let (status, _, _) = call(router(state), github_hook(SECRET, "ping", ping)).await;
    assert_eq!(status, StatusCode::OK);
    assert_no_trigger(&mut triggers);
}

#[tokio::test]
async fn invalid_webhooks_are_answered_401_and_trigger_nothing() {
    let Fixture {
        state,
        mut triggers,
    } = fixture(Some(SECRET));
    let app = router(state);
    let mut altered = PUSH.to_vec();
    altered[10] ^= 0x01;
    let altered_github = {
        let signed = github_hook(SECRET, "push", PUSH);
        let (parts, _) = signed.into_parts();
        Request::from_parts(parts, Body::from(altered.clone()))
    };
    let altered_gitea = {
        let signed = gitea_hook(SECRET, PUSH);
        let (parts, _) = signed.into_parts();
        Request::from_parts(parts, Body::from(altered))
    };
    let unsigned = Request::post("/hooks/git")
        .header("x-github-event", "push")
        .body(Body::from(PUSH.to_vec()))
        .unwrap();
    let malformed = Request::post("/hooks/git")
        .header("x-gitea-signature", "not-hex")
        .body(Body::from(PUSH.to_vec()))
        .unwrap();
    let short = Request::post("/hooks/git")
        .header("x-hub-signature-256", "sha256=abcd")
        .body(Body::from(PUSH.to_vec()))
        .unwrap();
    let cases = [
        (
            "another secret",
            github_hook("another secret", "push", PUSH),
        ),
        ("another secret, gitea", gitea_hook("another secret", PUSH)),
        ("altered body", altered_github),
        ("altered body, gitea", altered_gitea),
        ("no signature", unsigned),
        ("malformed signature", malformed),
        ("short signature", short),
    ];
    for (case, request) in cases {
        let (status, _, body) = call(app.clone(), request).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{case}: {body}");
        assert!(!body.contains(SECRET), "{case}: {body}");
    }
    assert_no_trigger(&mut triggers);
}

#[tokio::test]
async fn without_a_webhook_secret_the_hook_is_404() {
    for secret in [None, Some("")] {
        let Fixture {
            state,
            mut triggers,
        } = fixture(secret);
        let signed = github_hook(secret.unwrap_or(""), "push", PUSH);
        let (status, _, _) = call(router(state), signed).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "secret {secret:?}");
        assert_no_trigger(&mut triggers);
    }
}

#[tokio::test]
async fn a_body_over_5_mib_is_413_and_one_of_5_mib_is_accepted() {
    let Fixture {
        state,
        mut triggers,
    } = fixture(Some(SECRET));
    let app = router(state);
    let at_limit = vec![b' '; WEBHOOK_BODY_LIMIT];
    let (status, _, _) = call(app.clone(), gitea_hook(SECRET, &at_limit)).await;
    assert_eq!(status, StatusCode::ACCEPTED);
    assert_eq!(triggers.try_recv(), Ok(push_trigger()));

    let over = vec![b' '; WEBHOOK_BODY_LIMIT + 1];
    let (status, _, body) = call(app, gitea_hook(SECRET, &over)).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{body}");
    assert_no_trigger(&mut triggers);
}

#[tokio::test]
async fn a_closed_trigger_channel_is_503() {
    let Fixture { state, triggers } = fixture(Some(SECRET));
    drop(triggers);
    let (status, _, body) = call(router(state), github_hook(SECRET, "push", PUSH)).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
}

#[tokio::test]
async fn webhooks_while_a_fetch_is_pending_are_coalesced() {
    let (sender, mut triggers) = mpsc::channel(1);
    let Fixture { mut state, .. } = fixture(Some(SECRET));
    state.triggers = sender;
    let app = router(state);
    for _ in 0..3 {
        let (status, _, _) = call(app.clone(), gitea_hook(SECRET, PUSH)).await;
        assert_eq!(status, StatusCode::ACCEPTED);
    }
    assert_eq!(triggers.try_recv(), Ok(push_trigger()));
    assert_no_trigger(&mut triggers);
}

#[tokio::test]
async fn wrong_methods_and_unknown_paths_are_refused() {
    let Fixture {
        state,
        mut triggers,
    } = fixture(Some(SECRET));
    let app = router(state);
    let (status, _, _) = call(app.clone(), get("/hooks/git")).await;
    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
    let post_metrics = Request::builder()
        .method(Method::POST)
        .uri("/metrics")
        .body(Body::empty())
        .unwrap();
    let (status, _, _) = call(app.clone(), post_metrics).await;
    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
    let (status, _, _) = call(app, get("/admin")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_no_trigger(&mut triggers);
}

#[test]
fn the_state_never_prints_the_webhook_secret() {
    let Fixture { state, .. } = fixture(Some(SECRET));
    let printed = format!("{state:?}");
    assert!(!printed.contains(SECRET), "{printed}");
    assert!(printed.contains("[redacted]"), "{printed}");
}

#[tokio::test]
async fn the_server_answers_over_tcp_and_shuts_down_after_in_flight_requests() {
    let slow = readiness(Ok(()), Duration::from_millis(300));
    let started = slow.started.clone();
    let Fixture { mut state, .. } = fixture(None);
    state.readiness = slow;
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let (stop, stopped) = oneshot::channel::<()>();
    let server = tokio::spawn(serve(listener, router(state), async {
        let _ = stopped.await;
    }));

    // reqwest builds a TLS configuration even for plain http
    zentralink_providers::install_tls_provider();
    let client = reqwest::Client::new();
    let health = client
        .get(format!("http://{address}/healthz"))
        .send()
        .await
        .unwrap();
    assert_eq!(health.status(), reqwest::StatusCode::OK);
    assert_eq!(health.text().await.unwrap(), "ok");

    let in_flight = tokio::spawn({
        let client = client.clone();
        async move {
            let response = client
                .get(format!("http://{address}/readyz"))
                .send()
                .await?;
            let status = response.status();
            Ok::<_, reqwest::Error>((status, response.text().await?))
        }
    });
    // shut down while the readiness check sleeps
    tokio::time::timeout(Duration::from_secs(5), started.notified())
        .await
        .expect("the /readyz request reached the readiness check");
    stop.send(()).unwrap();
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert!(
        !server.is_finished(),
        "serve waits for the in-flight request"
    );

    let (status, body) = tokio::time::timeout(Duration::from_secs(5), in_flight)
        .await
        .expect("the in-flight request is answered")
        .unwrap()
        .unwrap();
    assert_eq!(status, reqwest::StatusCode::OK);
    assert_eq!(body, "ready");
    tokio::time::timeout(Duration::from_secs(5), server)
        .await
        .expect("serve returns after the in-flight request")
        .unwrap()
        .unwrap();

    // the listener is closed now
    let fresh = reqwest::Client::new();
    let refused = fresh.get(format!("http://{address}/healthz")).send().await;
    assert!(refused.is_err(), "{refused:?}");
}

#[tokio::test]
async fn shutdown_signal_resolves_on_sigterm() {
    let waiting = tokio::spawn(shutdown_signal());
    // let the task install its handlers before the signal is sent
    tokio::time::sleep(Duration::from_millis(200)).await;
    let sent = std::process::Command::new("kill")
        .args(["-TERM", &std::process::id().to_string()])
        .status()
        .unwrap();
    assert!(sent.success());
    tokio::time::timeout(Duration::from_secs(5), waiting)
        .await
        .expect("shutdown_signal resolves on SIGTERM")
        .unwrap();
}
