//! scripts/backup.sh and scripts/restore.sh against the real PostgreSQL:
//! back up, drop the database, restore, and compare every table.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::*;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{Executor, PgPool};
use zentralink_store::Store;
use zentralink_store::audit::{Actor, AuditEvent};
use zentralink_store::snapshots::SnapshotReason;

fn admin_url() -> String {
    std::env::var("DATABASE_URL")
        .expect("DATABASE_URL must point at PostgreSQL; run scripts/test.sh, which starts it")
}

fn url_for(db: &str) -> String {
    let opts: PgConnectOptions = admin_url().parse().unwrap();
    let opts = opts.database(db);
    // Rebuild a URL the command-line tools understand.
    let user = opts.get_username().to_owned();
    let pass = std::env::var("PGPASSWORD").ok();
    let auth = match pass {
        Some(p) => format!("{user}:{p}"),
        None => user,
    };
    format!(
        "postgres://{auth}@{}:{}/{db}",
        opts.get_host(),
        opts.get_port()
    )
}

async fn fingerprint(pool: &PgPool) -> Vec<(String, String)> {
    let tables: Vec<String> = sqlx::query_scalar(
        "SELECT table_name::text FROM information_schema.tables WHERE table_schema = 'public' AND table_type = 'BASE TABLE' ORDER BY 1",
    )
    .fetch_all(pool)
    .await
    .unwrap();
    let mut out = Vec::new();
    for t in tables {
        let sql = format!(
            "SELECT coalesce(md5(string_agg(x::text, '|' ORDER BY x::text)), 'empty') FROM \"{t}\" x"
        );
        let h: String = sqlx::query_scalar(sqlx::AssertSqlSafe(sql))
            .fetch_one(pool)
            .await
            .unwrap();
        out.push((t, h));
    }
    out
}

fn run(script: &Path, args: &[&str], db_url: &str, state: &Path) -> String {
    let out = Command::new("bash")
        .arg(script)
        .args(args)
        .env("DATABASE_URL", db_url)
        .env("ZENTRALINK_STATE_DIR", state)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{} failed: {}",
        script.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

#[tokio::test]
async fn backup_drop_restore_gives_identical_data() {
    let admin = PgPoolOptions::new()
        .max_connections(1)
        .connect(&admin_url())
        .await
        .unwrap();
    let db = format!("zl_backup_{}", uuid::Uuid::new_v4().simple());
    admin
        .execute(sqlx::AssertSqlSafe(format!("CREATE DATABASE {db}")))
        .await
        .unwrap();

    let url = url_for(&db);
    let pool = PgPoolOptions::new()
        .max_connections(2)
        .connect(&url)
        .await
        .unwrap();
    let store = Store::from_pool(pool.clone(), keyring(1));
    store.migrate().await.unwrap();
    let a = seed(&store, "acme", "acme.example.", "backup-secret").await;
    store
        .save_snapshot(
            a.tenant,
            a.zone,
            "zonefile",
            SnapshotReason::OnDemand,
            &content("acme.example.", 10),
        )
        .await
        .unwrap();
    store
        .create_change_request(a.tenant, &change_request(a.zone, "main-1"))
        .await
        .unwrap();
    store
        .audit(AuditEvent::new(Some(a.tenant), Actor::System, "backup.test").meta("n", 1usize))
        .await
        .unwrap();
    let before = fingerprint(&pool).await;

    let work = tempfile::tempdir().unwrap();
    let state = work.path().join("state");
    std::fs::create_dir_all(state.join("zones")).unwrap();
    std::fs::write(state.join("zones/acme.example.zone"), "; state file\n").unwrap();
    let scripts = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../scripts");
    let target = work.path().join("backups");
    let prefix = run(
        &scripts.join("backup.sh"),
        &[target.to_str().unwrap()],
        &url,
        &state,
    );
    assert!(Path::new(&format!("{prefix}.dump")).exists());
    assert!(Path::new(&format!("{prefix}.state.tar.gz")).exists());

    // lose everything
    pool.close().await;
    admin
        .execute(sqlx::AssertSqlSafe(format!(
            "DROP DATABASE {db} WITH (FORCE)"
        )))
        .await
        .unwrap();
    admin
        .execute(sqlx::AssertSqlSafe(format!("CREATE DATABASE {db}")))
        .await
        .unwrap();
    std::fs::remove_dir_all(&state).unwrap();

    run(&scripts.join("restore.sh"), &[&prefix], &url, &state);
    let pool = PgPoolOptions::new()
        .max_connections(2)
        .connect(&url)
        .await
        .unwrap();
    let after = fingerprint(&pool).await;
    assert_eq!(before, after);
    assert!(before.iter().any(|(t, h)| t == "snapshots" && h != "empty"));
    assert_eq!(
        std::fs::read_to_string(state.join("zones/acme.example.zone")).unwrap(),
        "; state file\n"
    );
    // the restored store reads its secrets with the same key
    let restored = Store::from_pool(pool.clone(), keyring(1));
    assert_eq!(
        restored
            .connection_credentials(a.tenant, a.connection)
            .await
            .unwrap()
            .unwrap()
            .expose(),
        "backup-secret"
    );

    pool.close().await;
    admin
        .execute(sqlx::AssertSqlSafe(format!(
            "DROP DATABASE {db} WITH (FORCE)"
        )))
        .await
        .unwrap();
}
