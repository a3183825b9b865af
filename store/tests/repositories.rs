//! The store against a real PostgreSQL: one fresh database per test (`#[sqlx::test]`).
//! Needs DATABASE_URL pointing at a server where databases can be created
//! (scripts/test.sh sets it and starts PostgreSQL).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::time::Duration;

use common::*;
use sqlx::PgPool;
use zentralink_model::secrets::{EncryptionKey, Keyring, SecretError, SecretString};
use zentralink_store::audit::{Actor, AuditEvent, AuditFilter};
use zentralink_store::changes::{ChangeOutcome, ExecutedBatch, NewApproval, RequestState};
use zentralink_store::connections::ConnectionCheck;
use zentralink_store::snapshots::SnapshotReason;
use zentralink_store::{ConnectRetry, MIGRATOR, Store, StoreError};

fn not_found<T: std::fmt::Debug>(label: &str, r: Result<T, StoreError>) {
    match r {
        Err(StoreError::NotFound) => {}
        other => panic!("{label}: expected not found for another tenant's row, got {other:?}"),
    }
}

fn empty<T: std::fmt::Debug>(label: &str, r: Result<Vec<T>, StoreError>) {
    match r {
        Ok(v) if v.is_empty() => {}
        other => panic!("{label}: expected nothing for another tenant, got {other:?}"),
    }
}

/// Every repository method, asked with the other tenant's id, answers "not found" or nothing.
#[sqlx::test(migrator = "MIGRATOR")]
async fn tenant_isolation_of_every_method(pool: PgPool) {
    let store = store(pool);
    let a = seed(&store, "acme", "acme.example.", "acme-secret").await;
    let b = seed(&store, "globex", "globex.example.", "globex-secret").await;
    let content = content("acme.example.", 3);
    let snap = store
        .save_snapshot(
            a.tenant,
            a.zone,
            "powerdns",
            SnapshotReason::OnDemand,
            &content,
        )
        .await
        .unwrap();
    let cr = store
        .create_change_request(a.tenant, &change_request(a.zone, "main-abc"))
        .await
        .unwrap();
    let approval = NewApproval {
        change_request: cr,
        approver: "alice",
        decision: "Approve",
        plan_digest: "sha256:00",
        signature: "sig",
        accepted: true,
        verification: "ok",
    };
    store.record_approval(a.tenant, &approval).await.unwrap();
    let outcomes = vec![ChangeOutcome {
        op: "create".into(),
        name: "h0.acme.example.".into(),
        record_type: "A".into(),
        before: None,
        after: None,
        error: None,
    }];
    store
        .record_dns_changes(
            a.tenant,
            &ExecutedBatch {
                zone: a.zone,
                change_request: Some(cr),
                plan_digest: "sha256:00",
                pre_snapshot: Some(snap),
                post_snapshot: None,
                outcomes: &outcomes,
            },
        )
        .await
        .unwrap();
    store
        .audit(AuditEvent::new(
            Some(a.tenant),
            Actor::System,
            "zone.planned",
        ))
        .await
        .unwrap();

    let other = b.tenant;
    not_found("connection", store.connection(other, a.connection).await);
    not_found(
        "connection_by_name",
        store.connection_by_name(other, "acme", "pdns").await,
    );
    not_found(
        "connection_credentials",
        store.connection_credentials(other, a.connection).await,
    );
    not_found(
        "record_connection_check",
        store
            .record_connection_check(other, a.connection, ConnectionCheck::Test, true, "ok")
            .await,
    );
    not_found("zone", store.zone(other, a.zone).await);
    not_found(
        "zone_by_name",
        store.zone_by_name(other, "acme.example.").await,
    );
    not_found("snapshot", store.snapshot(other, snap).await);
    not_found(
        "snapshot_content",
        store.snapshot_content(other, snap).await,
    );
    not_found("change_request", store.change_request(other, cr).await);
    not_found(
        "change_request_by_name",
        store.change_request_by_name(other, "main-abc").await,
    );
    not_found(
        "transition_change_request",
        store
            .transition_change_request(other, cr, RequestState::Pending, RequestState::Approved)
            .await,
    );
    not_found(
        "record_approval",
        store.record_approval(other, &approval).await,
    );
    not_found(
        "record_dns_changes",
        store
            .record_dns_changes(
                other,
                &ExecutedBatch {
                    zone: a.zone,
                    change_request: None,
                    plan_digest: "x",
                    pre_snapshot: None,
                    post_snapshot: None,
                    outcomes: &outcomes,
                },
            )
            .await,
    );
    not_found(
        "save_snapshot",
        store
            .save_snapshot(
                other,
                a.zone,
                "powerdns",
                SnapshotReason::OnDemand,
                &content,
            )
            .await,
    );
    not_found(
        "create_change_request",
        store
            .create_change_request(other, &change_request(a.zone, "x"))
            .await,
    );
    empty("snapshots", store.snapshots(other, a.zone).await);
    empty(
        "change_requests",
        store.change_requests(other, a.zone).await,
    );
    empty("approvals", store.approvals(other, cr).await);
    empty("dns_changes", store.dns_changes(other, a.zone, 10).await);
    empty(
        "audit_events",
        store.audit_events(other, &AuditFilter::default()).await,
    );
    assert_eq!(
        store.supersede_pending(other, a.zone, None).await.unwrap(),
        0
    );
    assert_eq!(store.prune_snapshots(other, a.zone, 0).await.unwrap(), 0);
    // listing methods show each tenant only its own rows
    assert_eq!(store.connections(other).await.unwrap().len(), 1);
    assert_eq!(
        store.zones(other).await.unwrap()[0].zone_name,
        "globex.example."
    );
    // and the owner still sees everything, untouched
    assert_eq!(
        store.change_request(a.tenant, cr).await.unwrap().state,
        "Pending"
    );
    assert_eq!(store.snapshots(a.tenant, a.zone).await.unwrap().len(), 1);
}

#[sqlx::test(migrator = "MIGRATOR")]
async fn two_tenants_never_manage_the_same_zone(pool: PgPool) {
    let store = store(pool);
    let a = seed(&store, "acme", "shared.example.", "s1").await;
    let b = store.upsert_tenant("globex", "Globex").await.unwrap();
    let err = store
        .upsert_zone(b, "globex", "main", "shared.example.", None)
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Conflict(_)), "{err}");
    // the owner may update its own registration
    assert_eq!(
        store
            .upsert_zone(a.tenant, "acme", "main", "shared.example.", None)
            .await
            .unwrap(),
        a.zone
    );
}

#[sqlx::test(migrator = "MIGRATOR")]
async fn credentials_are_encrypted_at_rest(pool: PgPool) {
    let store = store(pool.clone());
    let a = seed(&store, "acme", "acme.example.", "pdns-api-key-1234").await;
    let raw: String = sqlx::query_scalar("SELECT credentials_enc FROM provider_connections")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert!(raw.starts_with("enc:v1:"), "{raw}");
    assert!(!raw.contains("pdns-api-key-1234"));
    let record = store.connection(a.tenant, a.connection).await.unwrap();
    assert!(record.has_credentials);
    assert!(!format!("{record:?}").contains("pdns-api-key-1234"));
    assert_eq!(
        store
            .connection_credentials(a.tenant, a.connection)
            .await
            .unwrap()
            .unwrap()
            .expose(),
        "pdns-api-key-1234"
    );
}

#[sqlx::test(migrator = "MIGRATOR")]
async fn tampered_ciphertext_is_a_clear_error(pool: PgPool) {
    let store = store(pool.clone());
    let a = seed(&store, "acme", "acme.example.", "secret-value").await;
    sqlx::query("UPDATE provider_connections SET credentials_enc = overlay(credentials_enc placing (CASE WHEN substr(credentials_enc, length(credentials_enc) - 9, 1) = 'A' THEN 'B' ELSE 'A' END) from length(credentials_enc) - 9 for 1)")
        .execute(&pool)
        .await
        .unwrap();
    let err = store
        .connection_credentials(a.tenant, a.connection)
        .await
        .unwrap_err();
    assert!(
        matches!(err, StoreError::Secret(SecretError::Tampered { .. })),
        "{err:?}"
    );
    // a wrong key is an error too, never garbage
    let wrong = Store::from_pool(pool, keyring(9));
    let err = wrong
        .connection_credentials(a.tenant, a.connection)
        .await
        .unwrap_err();
    assert!(
        matches!(err, StoreError::Secret(SecretError::UnknownKey(_))),
        "{err:?}"
    );
}

#[sqlx::test(migrator = "MIGRATOR")]
async fn credentials_copied_into_another_tenants_row_do_not_decrypt(pool: PgPool) {
    let store = store(pool.clone());
    let acme = seed(&store, "acme", "acme.example.", "acme-only-secret").await;
    let globex = seed(&store, "globex", "globex.example.", "globex-secret").await;
    // someone with database access copies acme's ciphertext into globex's row
    sqlx::query(
        "UPDATE provider_connections SET credentials_enc =
            (SELECT credentials_enc FROM provider_connections WHERE id = $1)
         WHERE id = $2",
    )
    .bind(acme.connection.0)
    .bind(globex.connection.0)
    .execute(&pool)
    .await
    .unwrap();
    let err = store
        .connection_credentials(globex.tenant, globex.connection)
        .await
        .unwrap_err();
    assert!(
        matches!(err, StoreError::Secret(SecretError::Tampered { .. })),
        "{err:?}"
    );
    assert!(!err.to_string().contains("acme-only-secret"));
    // acme's own row still reads
    assert_eq!(
        store
            .connection_credentials(acme.tenant, acme.connection)
            .await
            .unwrap()
            .unwrap()
            .expose(),
        "acme-only-secret"
    );
}

#[sqlx::test(migrator = "MIGRATOR")]
async fn key_rotation_moves_every_secret(pool: PgPool) {
    let old = store(pool.clone());
    let a = seed(&old, "acme", "acme.example.", "conn-secret").await;
    let user = old
        .create_user(
            "alice@acme.example",
            "Alice",
            "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA",
        )
        .await
        .unwrap();
    old.set_totp_secret(user, &SecretString::new("JBSWY3DPEHPK3PXP"))
        .await
        .unwrap();
    old.set_smtp_settings(
        Some(a.tenant),
        &zentralink_store::settings::SmtpSettings {
            host: "127.0.0.1".into(),
            port: 2525,
            username: Some("mailer".into()),
            password: Some(SecretString::new("smtp-pass")),
            from_address: "dns@acme.example".into(),
            tls: "none".into(),
        },
    )
    .await
    .unwrap();

    let rotated = Store::from_pool(
        pool.clone(),
        Keyring::new(
            EncryptionKey::from_bytes([2; 32]),
            Some(EncryptionKey::from_bytes([1; 32])),
        ),
    );
    assert_eq!(
        rotated
            .connection_credentials(a.tenant, a.connection)
            .await
            .unwrap()
            .unwrap()
            .expose(),
        "conn-secret"
    );
    assert_eq!(rotated.reencrypt_secrets().await.unwrap(), 3);
    assert_eq!(rotated.reencrypt_secrets().await.unwrap(), 0, "idempotent");

    let new_only = Store::from_pool(pool, keyring(2));
    assert_eq!(
        new_only
            .connection_credentials(a.tenant, a.connection)
            .await
            .unwrap()
            .unwrap()
            .expose(),
        "conn-secret"
    );
    assert_eq!(
        new_only.totp_secret(user).await.unwrap().expose(),
        "JBSWY3DPEHPK3PXP"
    );
    let smtp = new_only
        .smtp_settings(Some(a.tenant))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(smtp.password.unwrap().expose(), "smtp-pass");
    assert!(matches!(
        old.totp_secret(user).await,
        Err(StoreError::Secret(SecretError::UnknownKey(_)))
    ));
}

#[sqlx::test(migrator = "MIGRATOR")]
async fn snapshots_round_trip_and_detect_alteration(pool: PgPool) {
    let store = store(pool.clone());
    let a = seed(&store, "acme", "acme.example.", "s").await;
    let content = content("acme.example.", 5);
    let id = store
        .save_snapshot(
            a.tenant,
            a.zone,
            "zonefile",
            SnapshotReason::PreChange,
            &content,
        )
        .await
        .unwrap();
    let meta = store.snapshot(a.tenant, id).await.unwrap();
    assert_eq!(meta.record_sets, 5);
    assert_eq!(meta.reason, "pre-change");
    assert_eq!(
        meta.digest,
        zentralink_model::digest::zone_digest(&content).to_string()
    );
    assert_eq!(store.snapshot_content(a.tenant, id).await.unwrap(), content);
    sqlx::query("UPDATE snapshots SET records = jsonb_set(records, '{0,ttl}', '1')")
        .execute(&pool)
        .await
        .unwrap();
    assert!(matches!(
        store.snapshot_content(a.tenant, id).await,
        Err(StoreError::Corrupt(_))
    ));
}

#[sqlx::test(migrator = "MIGRATOR")]
async fn snapshot_retention_keeps_referenced_ones(pool: PgPool) {
    let store = store(pool);
    let a = seed(&store, "acme", "acme.example.", "s").await;
    let mut ids = Vec::new();
    for i in 0..6 {
        ids.push(
            store
                .save_snapshot(
                    a.tenant,
                    a.zone,
                    "zonefile",
                    SnapshotReason::OnDemand,
                    &content("acme.example.", i + 1),
                )
                .await
                .unwrap(),
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    // the oldest is a rollback target, the second oldest a recorded change's pre-snapshot
    let mut cr = change_request(a.zone, "rollback-1");
    cr.rollback_to = Some(ids[0]);
    store.create_change_request(a.tenant, &cr).await.unwrap();
    let one = vec![ChangeOutcome {
        op: "create".into(),
        name: "h0.acme.example.".into(),
        record_type: "A".into(),
        before: None,
        after: None,
        error: None,
    }];
    store
        .record_dns_changes(
            a.tenant,
            &ExecutedBatch {
                zone: a.zone,
                change_request: None,
                plan_digest: "sha256:00",
                pre_snapshot: Some(ids[1]),
                post_snapshot: None,
                outcomes: &one,
            },
        )
        .await
        .unwrap();
    assert_eq!(store.prune_snapshots(a.tenant, a.zone, 2).await.unwrap(), 2);
    let left: Vec<_> = store
        .snapshots(a.tenant, a.zone)
        .await
        .unwrap()
        .into_iter()
        .map(|s| s.id)
        .collect();
    assert_eq!(left, vec![ids[5], ids[4], ids[1], ids[0]]);
}

#[sqlx::test(migrator = "MIGRATOR")]
async fn change_request_lifecycle(pool: PgPool) {
    let store = store(pool);
    let a = seed(&store, "acme", "acme.example.", "s").await;
    let first = store
        .create_change_request(a.tenant, &change_request(a.zone, "main-0123"))
        .await
        .unwrap();
    let again = store
        .create_change_request(a.tenant, &change_request(a.zone, "main-0123"))
        .await
        .unwrap();
    assert_eq!(first, again, "one request per deterministic name");
    store
        .transition_change_request(
            a.tenant,
            first,
            RequestState::Pending,
            RequestState::Approved,
        )
        .await
        .unwrap();
    let err = store
        .transition_change_request(
            a.tenant,
            first,
            RequestState::Pending,
            RequestState::Approved,
        )
        .await
        .unwrap_err();
    assert!(
        err.to_string().contains("is Approved, not Pending"),
        "{err}"
    );
    let err = store
        .transition_change_request(
            a.tenant,
            first,
            RequestState::Applied,
            RequestState::Pending,
        )
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Conflict(_)));
    let second = store
        .create_change_request(a.tenant, &change_request(a.zone, "main-4567"))
        .await
        .unwrap();
    assert_eq!(
        store
            .supersede_pending(a.tenant, a.zone, None)
            .await
            .unwrap(),
        2
    );
    assert_eq!(
        store.change_request(a.tenant, second).await.unwrap().state,
        "Superseded"
    );
    assert!(
        store
            .change_request(a.tenant, first)
            .await
            .unwrap()
            .decided_at
            .is_some()
    );
}

#[sqlx::test(migrator = "MIGRATOR")]
async fn an_approver_counts_once(pool: PgPool) {
    let store = store(pool);
    let a = seed(&store, "acme", "acme.example.", "s").await;
    let cr = store
        .create_change_request(a.tenant, &change_request(a.zone, "main-1"))
        .await
        .unwrap();
    let ok = NewApproval {
        change_request: cr,
        approver: "alice",
        decision: "Approve",
        plan_digest: "sha256:00",
        signature: "sig",
        accepted: true,
        verification: "signature verified",
    };
    store.record_approval(a.tenant, &ok).await.unwrap();
    assert!(matches!(
        store.record_approval(a.tenant, &ok).await,
        Err(StoreError::Conflict(_))
    ));
    // refused approvals are recorded with their reason, as often as they come
    let refused = NewApproval {
        accepted: false,
        verification: "digest does not match",
        ..ok.clone()
    };
    store.record_approval(a.tenant, &refused).await.unwrap();
    store.record_approval(a.tenant, &refused).await.unwrap();
    let all = store.approvals(a.tenant, cr).await.unwrap();
    assert_eq!(all.len(), 3);
    assert_eq!(all.iter().filter(|x| x.accepted).count(), 1);
}

#[sqlx::test(migrator = "MIGRATOR")]
async fn concurrent_writers_lose_nothing(pool: PgPool) {
    let store = store(pool);
    let a = seed(&store, "acme", "acme.example.", "s").await;
    let mut tasks = Vec::new();
    for w in 0..4 {
        let store = store.clone();
        let (tenant, zone) = (a.tenant, a.zone);
        tasks.push(tokio::spawn(async move {
            for i in 0..25 {
                let o = vec![ChangeOutcome {
                    op: "update".into(),
                    name: format!("w{w}-{i}.acme.example."),
                    record_type: "A".into(),
                    before: None,
                    after: None,
                    error: None,
                }];
                store
                    .record_dns_changes(
                        tenant,
                        &ExecutedBatch {
                            zone,
                            change_request: None,
                            plan_digest: "sha256:00",
                            pre_snapshot: None,
                            post_snapshot: None,
                            outcomes: &o,
                        },
                    )
                    .await
                    .unwrap();
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let rows = store.dns_changes(a.tenant, a.zone, 1000).await.unwrap();
    assert_eq!(rows.len(), 100);
    let names: std::collections::BTreeSet<_> = rows.iter().map(|r| r.name.clone()).collect();
    assert_eq!(names.len(), 100);
}

#[sqlx::test(migrator = "MIGRATOR")]
async fn audit_filters(pool: PgPool) {
    let store = store(pool);
    let a = seed(&store, "acme", "acme.example.", "s").await;
    for action in ["zone.planned", "zone.applied", "zone.planned"] {
        store
            .audit(
                AuditEvent::new(Some(a.tenant), Actor::Operator("operator".into()), action)
                    .target("DnsZone", "acme/main")
                    .from_client(Some("127.0.0.1".into()), Some("zentralink/0.1".into()))
                    .meta("changes", 3usize),
            )
            .await
            .unwrap();
    }
    let planned = store
        .audit_events(
            a.tenant,
            &AuditFilter {
                action: Some("zone.planned".into()),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(planned.len(), 2);
    assert_eq!(planned[0].metadata["changes"], 3);
    assert_eq!(planned[0].actor_kind, "operator");
    assert_eq!(planned[0].ip.as_deref(), Some("127.0.0.1"));
}

#[tokio::test]
async fn an_unreachable_database_is_a_clear_error_after_retries() {
    let started = std::time::Instant::now();
    let err = Store::connect(
        "postgres://zl:pw-do-not-print@127.0.0.1:1/zentralink",
        keyring(1),
        ConnectRetry {
            attempts: 3,
            first_delay: Duration::from_millis(20),
            max_delay: Duration::from_millis(40),
            attempt_timeout: Duration::from_millis(500),
            deadline: Duration::from_secs(30),
        },
    )
    .await
    .unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.contains("could not reach PostgreSQL at 127.0.0.1:1/zentralink after 3 attempts"),
        "{msg}"
    );
    assert!(msg.contains("refused"), "says why: {msg}");
    assert!(!msg.contains("pw-do-not-print"), "{msg}");
    assert!(
        started.elapsed() >= Duration::from_millis(60),
        "it backed off between attempts"
    );
}

#[tokio::test]
async fn other_databases_urls_are_refused_at_once() {
    for url in [
        "mysql://root@127.0.0.1:3306/zentralink",
        "sqlite:///tmp/zl.db",
        "127.0.0.1:5432",
    ] {
        let err = Store::connect(url, keyring(1), ConnectRetry::default())
            .await
            .unwrap_err()
            .to_string();
        assert!(err.contains("postgres://"), "{url}: {err}");
    }
}

#[tokio::test]
async fn a_missing_database_fails_at_once_without_retrying() {
    let base = std::env::var("DATABASE_URL")
        .expect("DATABASE_URL must point at the test PostgreSQL (scripts/test.sh sets it)");
    let (server, _) = base.rsplit_once('/').unwrap();
    let url = format!("{server}/zl_no_such_database_here");
    let err = Store::connect(
        &url,
        keyring(1),
        ConnectRetry {
            attempts: 50,
            first_delay: Duration::from_secs(5),
            max_delay: Duration::from_secs(5),
            attempt_timeout: Duration::from_secs(5),
            deadline: Duration::from_secs(600),
        },
    )
    .await
    .unwrap_err()
    .to_string();
    // With 50 attempts 5 s apart, only a refusal without retrying returns here at all.
    assert!(err.contains("refused the connection"), "{err}");
    assert!(err.contains("zl_no_such_database_here"), "{err}");
}

#[sqlx::test(migrations = false)]
async fn a_failing_migration_leaves_the_schema_unchanged(pool: PgPool) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("1_good.sql"),
        "CREATE TABLE good_table (id int);",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("2_bad.sql"),
        "CREATE TABLE bad_table (id int);\nSELECT 1/0;",
    )
    .unwrap();
    let migrator = sqlx::migrate::Migrator::new(dir.path()).await.unwrap();
    assert!(migrator.run(&pool).await.is_err());
    let tables: Vec<String> = sqlx::query_scalar("SELECT table_name::text FROM information_schema.tables WHERE table_schema = 'public' AND table_name LIKE '%_table' ORDER BY 1")
        .fetch_all(&pool)
        .await
        .unwrap();
    assert_eq!(
        tables,
        vec!["good_table".to_owned()],
        "the failed migration rolled back whole"
    );
}

#[sqlx::test(migrations = false)]
async fn migrations_apply_to_an_empty_database_and_are_idempotent(pool: PgPool) {
    let store = store(pool);
    store.migrate().await.unwrap();
    store.migrate().await.unwrap();
    let n: i64 = sqlx::query_scalar("SELECT count(*) FROM information_schema.tables WHERE table_schema = 'public' AND table_name <> '_sqlx_migrations'")
        .fetch_one(store.pool())
        .await
        .unwrap();
    assert!(n >= 24, "{n} tables");
}
