//! The cron endpoints against a real PostgreSQL (a fresh database per
//! test): the bearer token (none configured, missing, wrong, right; never
//! recorded), unknown jobs, one run of a job at a time (a call while a run
//! holds the job's lock is skipped and says so; two calls at once run
//! once), a run left behind by a dead process, a failing job, and what each
//! of this module's jobs does: expiring pending change requests (never an
//! approved or executing one), snapshot retention (referenced snapshots
//! stay), session clean-up. Needs DATABASE_URL (scripts/test.sh starts
//! PostgreSQL).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::time::Duration as StdDuration;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use chrono::{DateTime, Duration, Utc};
use common::*;
use serde_json::Value;
use sqlx::PgPool;
use uuid::Uuid;
use zentralink_model::secrets::SecretString;
use zentralink_store::{MIGRATOR, TenantId};
use zentralink_web::{Clock, WebConfig};

const TOKEN: &str = "cron-token-7b1f0c2e9a4d";

fn with_token(pool: PgPool) -> Harness {
    harness_with(
        pool,
        WebConfig {
            cron_token: Some(SecretString::new(TOKEN)),
            ..WebConfig::default()
        },
    )
}

/// `POST /api/cron/<job>` with an `Authorization` header (none when `None`).
async fn call(h: &Harness, job: &str, authorization: Option<&str>) -> Resp {
    let mut b = h.browser();
    let mut request = Request::post(format!("/api/cron/{job}"));
    if let Some(a) = authorization {
        request = request.header("authorization", a);
    }
    b.send(request.body(Body::empty()).unwrap()).await
}

async fn run(h: &Harness, job: &str) -> (StatusCode, Value) {
    let r = call(h, job, Some(&format!("Bearer {TOKEN}"))).await;
    let json = serde_json::from_str(&r.body)
        .unwrap_or_else(|e| panic!("{job}: not JSON ({e}): {} {}", r.status, r.body));
    (r.status, json)
}

/// Every cron run as (job, status, details).
async fn runs(h: &Harness) -> Vec<(String, String, Value)> {
    sqlx::query_as("SELECT job, status, details FROM cron_runs ORDER BY id")
        .fetch_all(h.store.pool())
        .await
        .unwrap()
}

#[sqlx::test(migrator = "MIGRATOR")]
async fn without_a_configured_token_every_call_is_refused(pool: PgPool) {
    let h = harness(pool);
    let r = call(&h, "session-cleanup", Some(&format!("Bearer {TOKEN}"))).await;
    assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(r.body.trim(), "cron is not configured");
    assert!(runs(&h).await.is_empty());
}

#[sqlx::test(migrator = "MIGRATOR")]
async fn a_missing_or_wrong_token_is_401_and_leaves_no_row(pool: PgPool) {
    let h = with_token(pool);
    let wrong = [
        None,
        Some("Bearer".to_owned()),
        Some("Bearer wrong".to_owned()),
        Some(format!("Bearer {}", &TOKEN[..TOKEN.len() - 1])),
        Some(format!("Bearer {TOKEN}x")),
        Some(format!("Basic {TOKEN}")),
        Some(TOKEN.to_owned()),
    ];
    for authorization in &wrong {
        for job in ["session-cleanup", "no-such-job"] {
            let r = call(&h, job, authorization.as_deref()).await;
            assert_eq!(
                r.status,
                StatusCode::UNAUTHORIZED,
                "{authorization:?} {job}"
            );
            assert_eq!(
                r.header("www-authenticate").as_deref(),
                Some("Bearer realm=\"cron\"")
            );
            assert!(!r.body.contains(TOKEN));
        }
    }
    assert!(runs(&h).await.is_empty(), "a refused call records nothing");
    // GET is not a way in either.
    let r = h.browser().get("/api/cron/session-cleanup").await;
    assert_eq!(r.status, StatusCode::METHOD_NOT_ALLOWED);
}

#[sqlx::test(migrator = "MIGRATOR")]
async fn the_right_token_runs_the_job_and_records_it_without_the_token(pool: PgPool) {
    let h = with_token(pool);
    let (status, json) = run(&h, "session-cleanup").await;
    assert_eq!(status, StatusCode::OK, "{json}");
    assert_eq!(json["job"], "session-cleanup");
    assert_eq!(json["status"], "ok");
    assert_eq!(json["details"]["sessions"], 0);
    let recorded = runs(&h).await;
    assert_eq!(recorded.len(), 1);
    assert_eq!(recorded[0].0, "session-cleanup");
    assert_eq!(recorded[0].1, "ok");
    assert!(json["run"].as_i64().unwrap() > 0);

    let (status, json) = run(&h, "no-such-job").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(json["error"], "no such job");

    // The token is nowhere in the database's records.
    let everything: Vec<String> = sqlx::query_scalar(
        "SELECT row_to_json(c)::text FROM cron_runs c UNION ALL SELECT row_to_json(a)::text FROM audit_events a",
    )
    .fetch_all(h.store.pool())
    .await
    .unwrap();
    for row in everything {
        assert!(!row.contains(TOKEN), "{row}");
    }
}

#[sqlx::test(migrator = "MIGRATOR")]
async fn a_call_while_a_run_holds_the_lock_does_nothing_and_says_so(pool: PgPool) {
    let h = with_token(pool);
    let lock = h
        .store
        .try_lock_cron_job("session-cleanup")
        .await
        .unwrap()
        .expect("the lock is free");
    assert!(
        h.store
            .try_lock_cron_job("session-cleanup")
            .await
            .unwrap()
            .is_none(),
        "the lock is taken once"
    );
    let (status, json) = run(&h, "session-cleanup").await;
    assert_eq!(status, StatusCode::CONFLICT, "{json}");
    assert_eq!(json["status"], "skipped");
    assert!(
        json["details"]["reason"]
            .as_str()
            .unwrap()
            .contains("in progress"),
        "{json}"
    );
    // Another job is not held up.
    let (status, _) = run(&h, "snapshot-retention").await;
    assert_eq!(status, StatusCode::OK);
    lock.release().await.unwrap();
    let (status, json) = run(&h, "session-cleanup").await;
    assert_eq!(status, StatusCode::OK, "{json}");
    let recorded: Vec<(String, String)> = runs(&h)
        .await
        .into_iter()
        .map(|(job, status, _)| (job, status))
        .collect();
    assert_eq!(
        recorded,
        vec![
            ("session-cleanup".into(), "skipped".into()),
            ("snapshot-retention".into(), "ok".into()),
            ("session-cleanup".into(), "ok".into()),
        ]
    );
}

/// A tenant, a zone and its namespace, straight into the store.
async fn zone(h: &Harness, slug: &str, zone_name: &str) -> (TenantId, Uuid) {
    let tenant = match h.store.tenant_by_slug(slug).await {
        Ok(t) => t.id,
        Err(_) => {
            let id = TenantId::new();
            sqlx::query("INSERT INTO tenants (id, slug, display_name) VALUES ($1, $2, $2)")
                .bind(id)
                .bind(slug)
                .execute(h.store.pool())
                .await
                .unwrap();
            id
        }
    };
    let zone = Uuid::new_v4();
    sqlx::query("INSERT INTO zones (id, tenant_id, namespace, name, zone_name) VALUES ($1, $2, 'dns', $3, $4)")
        .bind(zone)
        .bind(tenant)
        .bind(zone_name.trim_end_matches('.').replace('.', "-"))
        .bind(zone_name)
        .execute(h.store.pool())
        .await
        .unwrap();
    (tenant, zone)
}

async fn change_request(
    h: &Harness,
    tenant: TenantId,
    zone: Uuid,
    name: &str,
    state: &str,
    expires_at: DateTime<Utc>,
    rollback_to: Option<Uuid>,
) -> Uuid {
    let id = Uuid::new_v4();
    sqlx::query(
        "INSERT INTO dns_change_requests (id, tenant_id, zone_id, name, plan, plan_digest, state, requester, expires_at, rollback_to, kind)
         VALUES ($1, $2, $3, $4, '{}'::jsonb, $5, $6, 'ann', $7, $8, CASE WHEN $8::uuid IS NULL THEN 'declared' ELSE 'rollback' END)",
    )
    .bind(id)
    .bind(tenant)
    .bind(zone)
    .bind(name)
    .bind(format!("sha256:{id}"))
    .bind(state)
    .bind(expires_at)
    .bind(rollback_to)
    .execute(h.store.pool())
    .await
    .unwrap();
    id
}

async fn state_of(h: &Harness, id: Uuid) -> String {
    sqlx::query_scalar("SELECT state FROM dns_change_requests WHERE id = $1")
        .bind(id)
        .fetch_one(h.store.pool())
        .await
        .unwrap()
}

#[sqlx::test(migrator = "MIGRATOR")]
async fn two_calls_at_once_run_the_job_once(pool: PgPool) {
    let h = with_token(pool.clone());
    let now = h.clock.now();
    let (tenant, zone) = zone(&h, "acme", "example.com.").await;
    let due = change_request(
        &h,
        tenant,
        zone,
        "example-com-aaaa",
        "Pending",
        now - Duration::hours(1),
        None,
    )
    .await;

    // The test holds the request's row: the first run waits on it.
    let mut held = pool.begin().await.unwrap();
    sqlx::query("SELECT 1 FROM dns_change_requests WHERE id = $1 FOR UPDATE")
        .bind(due)
        .execute(&mut *held)
        .await
        .unwrap();

    let first = {
        let app = h.app.clone();
        tokio::spawn(async move {
            let request = Request::post("/api/cron/expire-change-requests")
                .header("authorization", format!("Bearer {TOKEN}"))
                .body(Body::empty())
                .unwrap();
            let mut b = Browser {
                app,
                cookies: Default::default(),
                ip: "192.0.2.10:40000".parse().unwrap(),
                origin: format!("https://{HOST_NAME}"),
                seen: Vec::new(),
            };
            b.send(request).await
        })
    };
    // Wait (a failure, not a measurement) until the first run is recorded as running.
    let started = std::time::Instant::now();
    loop {
        let running: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM cron_runs WHERE job = 'expire-change-requests' AND status = 'running'",
        )
        .fetch_one(h.store.pool())
        .await
        .unwrap();
        if running == 1 {
            break;
        }
        assert!(
            started.elapsed() < StdDuration::from_secs(20),
            "the first run never started"
        );
        tokio::time::sleep(StdDuration::from_millis(20)).await;
    }
    let (status, second) = run(&h, "expire-change-requests").await;
    assert_eq!(status, StatusCode::CONFLICT, "{second}");
    assert_eq!(second["status"], "skipped");
    assert_eq!(
        state_of(&h, due).await,
        "Pending",
        "the second call did nothing"
    );

    held.rollback().await.unwrap();
    let first = first.await.unwrap();
    assert_eq!(first.status, StatusCode::OK, "{}", first.body);
    let first: Value = serde_json::from_str(&first.body).unwrap();
    assert_eq!(first["details"]["expired"], 1, "{first}");
    assert_eq!(state_of(&h, due).await, "Expired");
    let statuses: Vec<String> = runs(&h).await.into_iter().map(|r| r.1).collect();
    assert_eq!(statuses, vec!["ok", "skipped"]);
    let expired: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM audit_events WHERE action = 'change_request.expired'",
    )
    .fetch_one(h.store.pool())
    .await
    .unwrap();
    assert_eq!(expired, 1, "one audit event, from the one run");
}

#[sqlx::test(migrator = "MIGRATOR")]
async fn a_run_left_running_by_a_dead_process_is_marked_failed(pool: PgPool) {
    let h = with_token(pool);
    sqlx::query("INSERT INTO cron_runs (job, status, started_at) VALUES ('session-cleanup', 'running', now() - interval '1 hour')")
        .execute(h.store.pool())
        .await
        .unwrap();
    let (status, json) = run(&h, "session-cleanup").await;
    assert_eq!(status, StatusCode::OK, "{json}");
    let recorded = runs(&h).await;
    assert_eq!(recorded[0].1, "failed");
    assert!(
        recorded[0].2["error"]
            .as_str()
            .unwrap()
            .contains("interrupted")
    );
    assert_eq!(recorded[1].1, "ok");
}

#[sqlx::test(migrator = "MIGRATOR")]
async fn a_failing_job_is_recorded_as_failed(pool: PgPool) {
    let h = with_token(pool);
    // The job's table is gone: the job fails, the framework records it.
    sqlx::query("ALTER TABLE invitations RENAME TO invitations_elsewhere")
        .execute(h.store.pool())
        .await
        .unwrap();
    let (status, json) = run(&h, "session-cleanup").await;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR, "{json}");
    assert_eq!(json["status"], "failed");
    assert!(
        json["details"]["error"]
            .as_str()
            .unwrap()
            .contains("invitations"),
        "{json}"
    );
    let recorded = runs(&h).await;
    assert_eq!(recorded.len(), 1);
    assert_eq!(recorded[0].1, "failed");
    // The lock was given back: the next call runs (and fails again) rather than being skipped.
    let (_, again) = run(&h, "session-cleanup").await;
    assert_eq!(again["status"], "failed");
}

#[sqlx::test(migrator = "MIGRATOR")]
async fn expiry_moves_only_pending_requests_past_their_time(pool: PgPool) {
    let h = with_token(pool);
    let now = h.clock.now();
    let (acme, zone_a) = zone(&h, "acme", "example.com.").await;
    let (globex, zone_g) = zone(&h, "globex", "example.org.").await;
    let past = now - Duration::minutes(1);
    let due_a = change_request(&h, acme, zone_a, "example-com-1111", "Pending", past, None).await;
    let due_g = change_request(
        &h,
        globex,
        zone_g,
        "example-org-2222",
        "Pending",
        past,
        None,
    )
    .await;
    let later = change_request(
        &h,
        acme,
        zone_a,
        "example-com-3333",
        "Pending",
        now + Duration::hours(1),
        None,
    )
    .await;
    let approved =
        change_request(&h, acme, zone_a, "example-com-4444", "Approved", past, None).await;
    let executing = change_request(
        &h,
        acme,
        zone_a,
        "example-com-5555",
        "Executing",
        past,
        None,
    )
    .await;

    let (status, json) = run(&h, "expire-change-requests").await;
    assert_eq!(status, StatusCode::OK, "{json}");
    assert_eq!(json["details"]["expired"], 2, "{json}");
    assert_eq!(state_of(&h, due_a).await, "Expired");
    assert_eq!(state_of(&h, due_g).await, "Expired");
    assert_eq!(state_of(&h, later).await, "Pending");
    assert_eq!(state_of(&h, approved).await, "Approved");
    assert_eq!(state_of(&h, executing).await, "Executing");

    let events: Vec<(Option<TenantId>, String, String, Value)> = sqlx::query_as(
        "SELECT tenant_id, actor_kind, target_id, metadata FROM audit_events WHERE action = 'change_request.expired' ORDER BY target_id",
    )
    .fetch_all(h.store.pool())
    .await
    .unwrap();
    assert_eq!(events.len(), 2);
    assert_eq!(events[0].0, Some(acme));
    assert_eq!(events[0].1, "system");
    assert_eq!(events[0].2, "dns/example-com-1111");
    assert_eq!(events[0].3["zone"], "dns/example-com");
    assert_eq!(events[1].0, Some(globex));

    // Nothing left to do: a second run expires nothing.
    let (_, json) = run(&h, "expire-change-requests").await;
    assert_eq!(json["details"]["expired"], 0);
}

async fn snapshot(
    h: &Harness,
    tenant: TenantId,
    zone: Uuid,
    reason: &str,
    at: DateTime<Utc>,
) -> Uuid {
    let id = Uuid::new_v4();
    sqlx::query(
        "INSERT INTO snapshots (id, tenant_id, zone_id, zone_name, provider, reason, digest, record_sets, records, created_at)
         VALUES ($1, $2, $3, 'example.com.', 'powerdns', $4, 'sha256:x', 0, '[]'::jsonb, $5)",
    )
    .bind(id)
    .bind(tenant)
    .bind(zone)
    .bind(reason)
    .bind(at)
    .execute(h.store.pool())
    .await
    .unwrap();
    id
}

async fn snapshot_exists(h: &Harness, id: Uuid) -> bool {
    sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM snapshots WHERE id = $1)")
        .bind(id)
        .fetch_one(h.store.pool())
        .await
        .unwrap()
}

#[sqlx::test(migrator = "MIGRATOR")]
async fn snapshot_retention_keeps_young_newest_and_referenced_snapshots(pool: PgPool) {
    let h = with_token(pool);
    let now = h.clock.now();
    let (acme, zone_a) = zone(&h, "acme", "example.com.").await;
    let (_, zone_b) = zone(&h, "acme", "example.net.").await;
    // 30 old snapshots of one zone, oldest first: a baseline, a rollback
    // target, one in the change history, then on-demand ones.
    let old = |i: i64| now - Duration::days(200) + Duration::hours(i);
    let baseline = snapshot(&h, acme, zone_a, "baseline", old(0)).await;
    let rollback_target = snapshot(&h, acme, zone_a, "on-demand", old(1)).await;
    let in_history = snapshot(&h, acme, zone_a, "pre-change", old(2)).await;
    let mut plain = Vec::new();
    for i in 3..30 {
        plain.push(snapshot(&h, acme, zone_a, "on-demand", old(i)).await);
    }
    change_request(
        &h,
        acme,
        zone_a,
        "example-com-rb",
        "Rejected",
        now,
        Some(rollback_target),
    )
    .await;
    sqlx::query(
        "INSERT INTO dns_changes (tenant_id, zone_id, plan_digest, op, name, record_type, outcome, pre_snapshot_id)
         VALUES ($1, $2, 'sha256:y', 'update', 'www', 'A', 'applied', $3)",
    )
    .bind(acme)
    .bind(zone_a)
    .bind(in_history)
    .execute(h.store.pool())
    .await
    .unwrap();
    // Another zone: only young snapshots, more than 20 of them.
    let mut young = Vec::new();
    for i in 0..25 {
        young.push(
            snapshot(
                &h,
                acme,
                zone_b,
                "on-demand",
                now - Duration::days(10) + Duration::hours(i),
            )
            .await,
        );
    }

    let (status, json) = run(&h, "snapshot-retention").await;
    assert_eq!(status, StatusCode::OK, "{json}");
    // 30 old: the newest 20 stay, and of the 10 older the 3 referred to or baseline.
    assert_eq!(json["details"]["deleted"], 7, "{json}");
    assert!(snapshot_exists(&h, baseline).await);
    assert!(snapshot_exists(&h, rollback_target).await);
    assert!(snapshot_exists(&h, in_history).await);
    for id in &plain[..7] {
        assert!(
            !snapshot_exists(&h, *id).await,
            "an old unreferenced snapshot stayed"
        );
    }
    for id in plain[7..].iter().chain(&young) {
        assert!(snapshot_exists(&h, *id).await, "a kept snapshot went");
    }
    let event: Value = sqlx::query_scalar(
        "SELECT metadata FROM audit_events WHERE action = 'snapshot.retention' AND tenant_id = $1",
    )
    .bind(acme)
    .fetch_one(h.store.pool())
    .await
    .unwrap();
    assert_eq!(event["deleted"], 7);
    assert_eq!(event["keep_per_zone"], 20);
    let (_, again) = run(&h, "snapshot-retention").await;
    assert_eq!(again["details"]["deleted"], 0);
}

#[sqlx::test(migrator = "MIGRATOR")]
async fn session_cleanup_removes_what_has_no_use_left(pool: PgPool) {
    let h = with_token(pool);
    let now = h.clock.now();
    let (tenant, user) = h.owner("acme", "ann@acme.example").await;
    let pool = h.store.pool();
    for (token, expires) in [
        (1u8, now - Duration::minutes(1)),
        (2, now + Duration::days(1)),
    ] {
        sqlx::query(
            "INSERT INTO sessions (id, token_sha256, user_id, expires_at, created_at) VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(Uuid::new_v4())
        .bind(vec![token; 32])
        .bind(user)
        .bind(expires)
        .bind(now - Duration::days(2))
        .execute(pool)
        .await
        .unwrap();
    }
    for at in [now - Duration::days(2), now - Duration::minutes(5)] {
        sqlx::query("INSERT INTO login_failures (subject, failed_at) VALUES ($1, $2)")
            .bind(vec![9u8; 32])
            .bind(at)
            .execute(pool)
            .await
            .unwrap();
    }
    // (created, expires, accepted, revoked): spent 40 days ago ×3, spent lately, open.
    let day = Duration::days(1);
    let invitations = [
        (now - day * 50, now - day * 43, Some(now - day * 45), None),
        (now - day * 50, now - day * 43, None, Some(now - day * 45)),
        (now - day * 50, now - day * 43, None, None),
        (now - day * 10, now - day * 3, None, None),
        (now - day, now + day * 6, None, None),
    ];
    for (i, (created, expires, accepted, revoked)) in invitations.into_iter().enumerate() {
        sqlx::query(
            "INSERT INTO invitations (id, tenant_id, token_sha256, email, role, created_at, expires_at, accepted_at, revoked_at)
             VALUES ($1, $2, $3, 'bob@acme.example', 'MEMBER', $4, $5, $6, $7)",
        )
        .bind(Uuid::new_v4())
        .bind(tenant)
        .bind(vec![u8::try_from(i).unwrap(); 32])
        .bind(created)
        .bind(expires)
        .bind(accepted)
        .bind(revoked)
        .execute(pool)
        .await
        .unwrap();
    }

    let (status, json) = run(&h, "session-cleanup").await;
    assert_eq!(status, StatusCode::OK, "{json}");
    assert_eq!(json["details"]["sessions"], 1, "{json}");
    assert_eq!(json["details"]["login_failures"], 1, "{json}");
    assert_eq!(json["details"]["invitations"], 3, "{json}");
    let left = |table: &str| {
        let sql = format!("SELECT count(*) FROM {table}");
        async move {
            sqlx::query_scalar::<_, i64>(sqlx::AssertSqlSafe(sql))
                .fetch_one(pool)
                .await
                .unwrap()
        }
    };
    assert_eq!(left("sessions").await, 1);
    assert_eq!(left("login_failures").await, 1);
    assert_eq!(left("invitations").await, 2);
}
