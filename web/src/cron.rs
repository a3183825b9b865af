//! The cron endpoints: `POST /api/cron/<job>` behind the `CRON_TOKEN`
//! bearer token (compared in constant time over SHA-256 digests, so its
//! length does not show), one table of jobs, each run a `cron_runs` row
//! (running, then ok or failed, with details), one run of a job at a time
//! (a PostgreSQL advisory lock per job: a second call while one runs does
//! nothing, is recorded as skipped and answers 409). A refused call leaves
//! no row (anyone could otherwise fill the table); it is logged. The jobs
//! of this module: expiring change requests, snapshot retention and the
//! clean-up of sessions, login failures and invitations; their changes to
//! a tenant's data are audit events. Also the staff page of recent runs.
//! Reads and writes the store.

use std::future::Future;
use std::pin::Pin;

use axum::extract::{Path, State};
use axum::http::header::{AUTHORIZATION, CONTENT_TYPE, WWW_AUTHENTICATE};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use chrono::Duration;
use minijinja::context;
use serde::Serialize;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use zentralink_store::StoreError;
use zentralink_store::audit::{Actor, AuditEvent};
use zentralink_store::changes::RequestState;
use zentralink_store::cron::SnapshotRetention;

use crate::AppState;
use crate::error::{Rendered, WebError};
use crate::members::page;
use crate::roles::Staff;
use crate::session::Client;

/// What a job returns: its details (counts), or why it failed.
pub type JobFuture<'a> = Pin<Box<dyn Future<Output = Result<Value, WebError>> + Send + 'a>>;

/// A cron job: its name in `/api/cron/<name>` and what it does.
#[derive(Debug, Clone, Copy)]
pub struct Job {
    pub name: &'static str,
    pub about: &'static str,
    pub run: fn(&AppState) -> JobFuture<'_>,
}

/// Every job, by name.
pub const JOBS: &[Job] = &[
    Job {
        name: "mail-flush",
        about: "sends the queued e-mail that is due",
        run: mail_flush,
    },
    Job {
        name: "notifications",
        about: "turns new events into notifications",
        run: notifications,
    },
    Job {
        name: "notifications-digest",
        about: "sends the notification digests",
        run: notifications_digest,
    },
    Job {
        name: "expire-change-requests",
        about: "pending change requests past their expiry become Expired",
        run: expire_change_requests_job,
    },
    Job {
        name: "snapshot-retention",
        about: "deletes snapshots the retention policy does not keep",
        run: snapshot_retention_job,
    },
    Job {
        name: "session-cleanup",
        about: "deletes expired sessions, old login failures and spent invitations",
        run: session_cleanup_job,
    },
];

fn mail_flush(state: &AppState) -> JobFuture<'_> {
    Box::pin(crate::mail::flush_queue(state))
}
fn notifications(state: &AppState) -> JobFuture<'_> {
    Box::pin(crate::notifications::fan_out(state))
}
fn notifications_digest(state: &AppState) -> JobFuture<'_> {
    Box::pin(crate::notifications::digest(state))
}
fn expire_change_requests_job(state: &AppState) -> JobFuture<'_> {
    Box::pin(expire_change_requests(state))
}
fn snapshot_retention_job(state: &AppState) -> JobFuture<'_> {
    Box::pin(snapshot_retention(state))
}
fn session_cleanup_job(state: &AppState) -> JobFuture<'_> {
    Box::pin(session_cleanup(state))
}

/// The job of a name.
pub fn job(name: &str) -> Option<&'static Job> {
    JOBS.iter().find(|j| j.name == name)
}

// ---------------------------------------------------------------------------
// Authentication

/// Whether `given` is the configured token: SHA-256 of both, compared in
/// constant time (the digests have one length, whatever the tokens').
pub fn token_matches(expected: &str, given: &str) -> bool {
    let expected = Sha256::digest(expected.as_bytes());
    let given = Sha256::digest(given.as_bytes());
    expected.ct_eq(&given).into()
}

/// The token of an `Authorization: Bearer <token>` header.
fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.trim().split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim())
        .filter(|t| !t.is_empty())
}

/// A plain-text answer that the error-page layer leaves as it is.
fn text(status: StatusCode, body: &'static str) -> Response {
    let mut r = (status, body).into_response();
    r.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    r.extensions_mut().insert(Rendered);
    r
}

fn json_response(status: StatusCode, body: &Value) -> Response {
    let mut r = (status, axum::Json(body)).into_response();
    r.extensions_mut().insert(Rendered);
    r
}

// ---------------------------------------------------------------------------
// Running a job

/// How a call of a job ended.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Outcome {
    pub job: &'static str,
    /// The `cron_runs` row.
    pub run: i64,
    /// ok, failed or skipped.
    pub status: &'static str,
    pub details: Value,
}

/// A job's error for the run's details: its message, at most 500 characters.
fn error_details(e: &WebError) -> Value {
    json!({ "error": zentralink_model::secrets::shorten(&e.to_string(), 500) })
}

/// Runs `job` unless a run of it is in progress (then records a skipped
/// run and does nothing). A run left `running` by a process that died is
/// marked failed first.
pub async fn run_job(state: &AppState, job: &'static Job) -> Result<Outcome, WebError> {
    let store = state.store();
    let skipped = |run| Outcome {
        job: job.name,
        run,
        status: "skipped",
        details: json!({ "reason": "a run of this job is in progress; this call did nothing" }),
    };
    let Some(lock) = store.try_lock_cron_job(job.name).await? else {
        let out = skipped(0);
        let run = store
            .record_skipped_cron_run(job.name, out.details.clone())
            .await?;
        return Ok(Outcome { run, ..out });
    };
    let interrupted = store.fail_interrupted_cron_runs(&lock).await?;
    if interrupted > 0 {
        tracing::warn!(
            job = job.name,
            interrupted,
            "cron: an earlier run ended before it finished; marked failed"
        );
    }
    let run = match store.start_cron_run(job.name).await {
        Ok(run) => run,
        Err(StoreError::Conflict(_)) => {
            let out = skipped(0);
            let run = store
                .record_skipped_cron_run(job.name, out.details.clone())
                .await?;
            return Ok(Outcome { run, ..out });
        }
        Err(e) => return Err(e.into()),
    };
    let result = (job.run)(state).await;
    let (status, details) = match result {
        Ok(details) => ("ok", details),
        Err(e) => {
            tracing::warn!(job = job.name, run, "cron: the job failed: {e}");
            ("failed", error_details(&e))
        }
    };
    store.finish_cron_run(run, status, details.clone()).await?;
    if let Err(e) = lock.release().await {
        tracing::warn!(job = job.name, "cron: releasing the job's lock: {e}");
    }
    Ok(Outcome {
        job: job.name,
        run,
        status,
        details,
    })
}

/// `POST /api/cron/{job}`: runs a job for a caller with the cron token.
/// 503 when no token is configured, 401 without the right one, 404 for an
/// unknown job (asked only after the token), 409 when a run is in progress,
/// 500 when the job failed; the JSON body says what ran.
pub async fn run(
    State(state): State<AppState>,
    Path(name): Path<String>,
    headers: HeaderMap,
    client: Client,
) -> Response {
    let Some(expected) = state.config().cron_token.as_ref() else {
        return text(StatusCode::SERVICE_UNAVAILABLE, "cron is not configured\n");
    };
    let authorised = bearer(&headers).is_some_and(|given| token_matches(expected.expose(), given));
    if !authorised {
        tracing::info!(
            ip = client.ip.as_deref().unwrap_or("-"),
            "cron: a call without the right bearer token was refused"
        );
        let mut r = text(
            StatusCode::UNAUTHORIZED,
            "a valid bearer token is required\n",
        );
        r.headers_mut().insert(
            WWW_AUTHENTICATE,
            HeaderValue::from_static("Bearer realm=\"cron\""),
        );
        return r;
    }
    let Some(job) = job(&name) else {
        return json_response(
            StatusCode::NOT_FOUND,
            &json!({
                "error": "no such job",
                "jobs": JOBS.iter().map(|j| j.name).collect::<Vec<_>>(),
            }),
        );
    };
    // The run goes on even if the caller goes away (or the request times
    // out): it records its own outcome.
    let task_state = state.clone();
    let handle = tokio::spawn(async move { run_job(&task_state, job).await });
    match handle.await {
        Ok(Ok(outcome)) => {
            let status = match outcome.status {
                "ok" => StatusCode::OK,
                "skipped" => StatusCode::CONFLICT,
                _ => StatusCode::INTERNAL_SERVER_ERROR,
            };
            json_response(status, &json!(outcome))
        }
        Ok(Err(e)) => {
            tracing::error!(job = job.name, "cron: the run could not be recorded: {e}");
            json_response(
                StatusCode::SERVICE_UNAVAILABLE,
                &json!({ "job": job.name, "status": "failed", "error": "the run could not be recorded; see the log" }),
            )
        }
        Err(e) => {
            tracing::error!(job = job.name, "cron: the run panicked: {e}");
            json_response(
                StatusCode::INTERNAL_SERVER_ERROR,
                &json!({ "job": job.name, "status": "failed", "error": "the run ended unexpectedly; see the log" }),
            )
        }
    }
}

// ---------------------------------------------------------------------------
// The jobs of this module

/// How many pending change requests one run expires at most (the next run
/// takes the rest).
pub const EXPIRE_BATCH: i64 = 1000;

/// What the request's audit event says (the same as the operator's).
pub const EXPIRED_MESSAGE: &str = "not approved before it expired";

/// Pending change requests past their expiry become Expired, each with a
/// `change_request.expired` audit event, as the operator does on its
/// passes. Only Pending ones: an approved or executing request is never
/// touched; one that moved meanwhile is left as it is.
pub async fn expire_change_requests(state: &AppState) -> Result<Value, WebError> {
    let store = state.store();
    let due = store
        .expiring_change_requests(state.now(), EXPIRE_BATCH)
        .await?;
    let more = i64::try_from(due.len()).unwrap_or(i64::MAX) >= EXPIRE_BATCH;
    let (mut expired, mut moved) = (0u64, 0u64);
    for r in due {
        let outcome = store
            .transition_change_request_with(
                r.tenant_id,
                r.id,
                RequestState::Pending,
                RequestState::Expired,
                Some(EXPIRED_MESSAGE),
            )
            .await;
        match outcome {
            Ok(()) => {}
            // Approved, rejected or expired by the operator meanwhile.
            Err(StoreError::Conflict(_)) => {
                moved += 1;
                continue;
            }
            Err(e) => return Err(e.into()),
        }
        expired += 1;
        let mut event = AuditEvent::new(Some(r.tenant_id), Actor::System, "change_request.expired")
            .meta("reason", EXPIRED_MESSAGE)
            .meta("by", "cron");
        match (&r.zone_namespace, &r.zone_object) {
            (Some(namespace), Some(object)) => {
                event = event
                    .target("DnsChangeRequest", format!("{namespace}/{}", r.name))
                    .meta("zone", format!("{namespace}/{object}"));
            }
            _ => {
                event = event
                    .target("DnsChangeRequest", &r.name)
                    .meta("kind", r.kind.as_str());
            }
        }
        store.audit(event).await?;
    }
    Ok(json!({ "expired": expired, "changed_meanwhile": moved, "more": more }))
}

/// The retention policy: every snapshot younger than 90 days and the newest
/// 20 of each zone are kept; so are each zone's baseline and every snapshot
/// a change request (rollback target), a change history row, an execution
/// or a zone's applied state refers to.
pub const SNAPSHOT_RETENTION: SnapshotRetention = SnapshotRetention {
    max_age: Duration::days(90),
    keep_per_zone: 20,
};

/// Deletes the snapshots [`SNAPSHOT_RETENTION`] does not keep; one
/// `snapshot.retention` audit event per tenant with how many.
pub async fn snapshot_retention(state: &AppState) -> Result<Value, WebError> {
    let store = state.store();
    let policy = SNAPSHOT_RETENTION;
    let deleted = store.apply_snapshot_retention(policy, state.now()).await?;
    let mut total = 0i64;
    for (tenant, count) in &deleted {
        total += count;
        store
            .audit(
                AuditEvent::new(Some(*tenant), Actor::System, "snapshot.retention")
                    .meta("deleted", *count)
                    .meta("max_age_days", policy.max_age.num_days())
                    .meta("keep_per_zone", policy.keep_per_zone)
                    .meta("by", "cron"),
            )
            .await?;
    }
    Ok(json!({
        "deleted": total,
        "tenants": deleted.len(),
        "policy": { "max_age_days": policy.max_age.num_days(), "keep_per_zone": policy.keep_per_zone },
    }))
}

/// How long a spent invitation (accepted, revoked or expired) is kept.
pub const SPENT_INVITATION_RETENTION: Duration = Duration::days(30);

/// How long a failed sign-in is kept at least (longer when the throttling
/// window is longer).
pub const LOGIN_FAILURE_RETENTION: Duration = Duration::days(1);

/// Deletes expired sessions, failed sign-ins older than the throttling
/// window (and at least a day), and invitations spent 30 days ago.
pub async fn session_cleanup(state: &AppState) -> Result<Value, WebError> {
    let now = state.now();
    let keep_failures = state.config().throttle.window.max(LOGIN_FAILURE_RETENTION);
    let done = state
        .store()
        .clean_up_sessions(now, now - keep_failures, now - SPENT_INVITATION_RETENTION)
        .await?;
    Ok(json!({
        "sessions": done.sessions,
        "login_failures": done.login_failures,
        "invitations": done.invitations,
    }))
}

// ---------------------------------------------------------------------------
// The staff page

#[derive(Debug, Serialize)]
struct RunView {
    id: i64,
    job: String,
    started: String,
    finished: Option<String>,
    status: String,
    details: String,
}

/// `GET /admin/cron`: the latest 100 runs.
pub async fn runs_page(State(state): State<AppState>, staff: Staff) -> Result<Response, WebError> {
    let fmt = |t: chrono::DateTime<chrono::Utc>| t.format("%Y-%m-%d %H:%M:%S UTC").to_string();
    let runs: Vec<RunView> = state
        .store()
        .cron_runs(100)
        .await?
        .into_iter()
        .map(|r| RunView {
            id: r.id,
            job: r.job,
            started: fmt(r.started_at),
            finished: r.finished_at.map(fmt),
            status: r.status,
            details: r.details.to_string(),
        })
        .collect();
    let jobs: Vec<(&str, &str)> = JOBS.iter().map(|j| (j.name, j.about)).collect();
    let frame = staff.frame;
    let html = state.templates().render(
        "cron_runs.html",
        context! {
            user => frame.user, tenant => frame.tenant, csrf => frame.csrf,
            runs => runs, jobs => jobs, configured => state.config().cron_token.is_some(),
        },
    )?;
    Ok(page(StatusCode::OK, html))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_compared_whole() {
        assert!(token_matches("s3cret-token", "s3cret-token"));
        assert!(!token_matches("s3cret-token", "s3cret-toke"));
        assert!(!token_matches("s3cret-token", "s3cret-token "));
        assert!(!token_matches("s3cret-token", ""));
    }

    #[test]
    fn only_a_bearer_header_carries_a_token() {
        let with = |v: &'static str| {
            let mut h = HeaderMap::new();
            h.insert(AUTHORIZATION, HeaderValue::from_static(v));
            h
        };
        assert_eq!(bearer(&with("Bearer abc")), Some("abc"));
        assert_eq!(bearer(&with("bearer  abc ")), Some("abc"));
        assert_eq!(bearer(&with("Basic abc")), None);
        assert_eq!(bearer(&with("Bearer ")), None);
        assert_eq!(bearer(&HeaderMap::new()), None);
    }

    #[test]
    fn every_job_has_one_name() {
        let mut names: Vec<&str> = JOBS.iter().map(|j| j.name).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), JOBS.len());
    }
}
