//! The binary with the store: `migrate`, `secrets`, and `provider test`
//! recording its results and an audit event. Needs DATABASE_URL (scripts/test.sh sets it).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::PathBuf;
use std::process::{Command, Output};

use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{Executor, Row};

fn zentralink(args: &[&str], envs: &[(&str, &str)], stdin: Option<&str>) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_zentralink"));
    cmd.args(args)
        .current_dir(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(".."));
    cmd.env_remove("DATABASE_URL")
        .env_remove("PLATFORM_ENCRYPTION_KEY")
        .env_remove("PLATFORM_ENCRYPTION_KEY_PREVIOUS");
    for (k, v) in envs {
        cmd.env(k, v);
    }
    cmd.stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    if let Some(input) = stdin {
        use std::io::Write;
        // The child may exit before reading (a refused command): a broken pipe is fine.
        let _ = child.stdin.take().unwrap().write_all(input.as_bytes());
    }
    drop(child.stdin.take());
    child.wait_with_output().unwrap()
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

#[test]
fn secrets_need_a_key_and_round_trip() {
    let bind = [
        "secrets",
        "encrypt",
        "--tenant",
        "acme",
        "--namespace",
        "acme",
        "--connection",
        "pdns",
    ];
    let out = zentralink(&bind, &[], Some("x"));
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains(
        "PLATFORM_ENCRYPTION_KEY is not set. Generate one with `zentralink secrets generate-key`"
    ));
    let key = text(&zentralink(&["secrets", "generate-key"], &[], None).stdout)
        .trim()
        .to_owned();
    assert_eq!(key.len(), 44, "32 bytes in base64");
    let out = zentralink(
        &bind,
        &[("PLATFORM_ENCRYPTION_KEY", &key)],
        Some("api-key-value\n"),
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let envelope = text(&out.stdout).trim().to_owned();
    assert!(
        envelope.starts_with("enc:v1:") && !envelope.contains("api-key-value"),
        "{envelope}"
    );
    let bad = zentralink(&bind, &[("PLATFORM_ENCRYPTION_KEY", "c2hvcnQ=")], Some("x"));
    assert!(
        text(&bad.stderr).contains("not a base64-encoded 32-byte key"),
        "{}",
        text(&bad.stderr)
    );
}

#[tokio::test]
async fn migrate_and_provider_test_record_results() {
    let admin_url = std::env::var("DATABASE_URL")
        .expect("DATABASE_URL must point at PostgreSQL; run scripts/test.sh, which starts it");
    let admin = PgPoolOptions::new()
        .max_connections(1)
        .connect(&admin_url)
        .await
        .unwrap();
    let db = format!("zl_cli_{}", uuid::Uuid::new_v4().simple());
    admin
        .execute(sqlx::AssertSqlSafe(format!("CREATE DATABASE {db}")))
        .await
        .unwrap();
    let opts: PgConnectOptions = admin_url.parse::<PgConnectOptions>().unwrap();
    let url = format!(
        "postgres://{}{}@{}:{}/{db}",
        opts.get_username(),
        std::env::var("PGPASSWORD")
            .map(|p| format!(":{p}"))
            .unwrap_or_default(),
        opts.get_host(),
        opts.get_port()
    );
    let key = text(&zentralink(&["secrets", "generate-key"], &[], None).stdout)
        .trim()
        .to_owned();
    let env = [
        ("DATABASE_URL", url.as_str()),
        ("PLATFORM_ENCRYPTION_KEY", key.as_str()),
    ];

    let out = zentralink(&["migrate"], &env, None);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("database schema is current"));

    let work = tempfile::tempdir().unwrap();
    let examples = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../examples");
    let status = Command::new("cp")
        .arg("-a")
        .arg(&examples)
        .arg(work.path())
        .status()
        .unwrap();
    assert!(status.success());
    let path = work.path().join("examples");
    let out = zentralink(&["provider", "test", path.to_str().unwrap()], &env, None);
    assert!(
        out.status.success(),
        "{}{}",
        text(&out.stdout),
        text(&out.stderr)
    );

    let pool = PgPoolOptions::new()
        .max_connections(1)
        .connect(&url)
        .await
        .unwrap();
    let rows = sqlx::query("SELECT namespace, name, last_test_ok, last_probe_ok FROM provider_connections ORDER BY namespace")
        .fetch_all(&pool)
        .await
        .unwrap();
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[0].get::<String, _>("namespace"), "acme");
    assert_eq!(rows[0].get::<Option<bool>, _>("last_test_ok"), Some(true));
    assert_eq!(rows[0].get::<Option<bool>, _>("last_probe_ok"), Some(true));
    assert_eq!(
        rows[1].get::<Option<bool>, _>("last_probe_ok"),
        None,
        "read-only connections are never probed"
    );
    let audit = sqlx::query(
        "SELECT action, metadata FROM audit_events WHERE action = 'connection.tested' ORDER BY id",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    assert_eq!(audit.len(), 2);
    let meta: serde_json::Value = audit[0].get("metadata");
    assert_eq!(meta["liveWriteEnabled"], true);
    assert_eq!(meta["reason"], "Enabled");
    let meta: serde_json::Value = audit[1].get("metadata");
    assert_eq!(meta["reason"], "ReadOnlyMode");

    pool.close().await;
    admin
        .execute(sqlx::AssertSqlSafe(format!(
            "DROP DATABASE {db} WITH (FORCE)"
        )))
        .await
        .unwrap();
}
