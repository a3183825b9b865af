//! Plants known secret values through every path that handles secrets, then
//! searches a full dump of the database and every log line for them.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::io::Write;
use std::process::Command;
use std::sync::{Arc, Mutex};

use common::*;
use sqlx::Executor;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use zentralink_model::secrets::{EncryptionKey, Keyring, SecretString};
use zentralink_store::Store;
use zentralink_store::audit::{Actor, AuditEvent, AuditFilter};
use zentralink_store::connections::{ConnectionCheck, NewConnection};
use zentralink_store::settings::SmtpSettings;

const PLANTED: [&str; 5] = [
    "planted-provider-key-7f3a9c",
    "planted-totp-JBSWY3DPEHPK3PXP",
    "planted-smtp-password-51e0",
    "planted-rfc2136-tsig-c2VjcmV0",
    "planted-rotated-key-99aa",
];

#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if let Ok(mut b) = self.0.lock() {
            b.extend_from_slice(buf);
        }
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn planted_secrets_appear_nowhere() {
    let logs = Captured::default();
    let writer = logs.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let admin_url = std::env::var("DATABASE_URL")
        .expect("DATABASE_URL must point at PostgreSQL; run scripts/test.sh, which starts it");
    let admin = PgPoolOptions::new()
        .max_connections(1)
        .connect(&admin_url)
        .await
        .unwrap();
    let db = format!("zl_leak_{}", uuid::Uuid::new_v4().simple());
    admin
        .execute(sqlx::AssertSqlSafe(format!("CREATE DATABASE {db}")))
        .await
        .unwrap();
    let opts: PgConnectOptions = admin_url.parse::<PgConnectOptions>().unwrap().database(&db);
    let pool = PgPoolOptions::new()
        .max_connections(2)
        .connect_with(opts.clone())
        .await
        .unwrap();

    let store = Store::from_pool(pool.clone(), keyring(1));
    store.migrate().await.unwrap();
    let a = seed(&store, "acme", "acme.example.", PLANTED[0]).await;
    let tsig = SecretString::new(PLANTED[3]);
    let bind = store
        .upsert_connection(
            a.tenant,
            &NewConnection {
                namespace: "acme",
                name: "bind",
                provider_type: "rfc2136",
                settings: serde_json::json!({"server": "127.0.0.1:53", "tsigKeyName": "zl"}),
                credentials: Some(&tsig),
                mode: "Live",
                acknowledge_live_writes: true,
            },
        )
        .await
        .unwrap();
    store
        .record_connection_check(a.tenant, bind, ConnectionCheck::Test, true, "reachable")
        .await
        .unwrap();
    let user = store
        .create_user(
            "alice@acme.example",
            "Alice",
            "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA",
        )
        .await
        .unwrap();
    store
        .set_totp_secret(user, &SecretString::new(PLANTED[1]))
        .await
        .unwrap();
    store
        .set_smtp_settings(
            None,
            &SmtpSettings {
                host: "127.0.0.1".into(),
                port: 2525,
                username: Some("mailer".into()),
                password: Some(SecretString::new(PLANTED[2])),
                from_address: "noreply@zentralink.test".into(),
                tls: "none".into(),
            },
        )
        .await
        .unwrap();
    // Audit events about secret-bearing actions, built the way callers do:
    // a secret can only reach metadata through its redacting Display/Debug.
    let secret = SecretString::new(PLANTED[0]);
    let record = store.connection(a.tenant, a.connection).await.unwrap();
    store
        .audit(
            AuditEvent::new(Some(a.tenant), Actor::User(user), "connection.updated")
                .target("ProviderConnection", "acme/pdns")
                .meta("credentials", format!("{secret}"))
                .meta("debug", format!("{secret:?} {record:?}")),
        )
        .await
        .unwrap();
    tracing::info!(credentials = %secret, connection = ?record, "connection updated");
    // Rotation moves every value to a new key.
    let rotated = Store::from_pool(
        pool.clone(),
        Keyring::new(
            EncryptionKey::from_bytes([2; 32]),
            Some(EncryptionKey::from_bytes([1; 32])),
        ),
    );
    assert_eq!(rotated.reencrypt_secrets().await.unwrap(), 4);
    let again = SecretString::new(PLANTED[4]);
    rotated.set_totp_secret(user, &again).await.unwrap();
    // Errors about secrets name no secret.
    sqlx::query("UPDATE totp_secrets SET secret_enc = secret_enc || 'x'")
        .execute(&pool)
        .await
        .unwrap();
    let err = rotated.totp_secret(user).await.unwrap_err();
    tracing::error!(error = %err, "expected failure");

    // Everything the store reads back stays redacted.
    let events = store
        .audit_events(a.tenant, &AuditFilter::default())
        .await
        .unwrap();
    let shown = format!("{events:?} {err} {err:?}");

    // The whole database, as pg_dump writes it.
    let mut cmd = Command::new("pg_dump");
    cmd.arg("--host")
        .arg(opts.get_host())
        .arg("--port")
        .arg(opts.get_port().to_string())
        .arg("--username")
        .arg(opts.get_username())
        .arg(&db);
    let dump = cmd.output().unwrap();
    assert!(
        dump.status.success(),
        "pg_dump: {}",
        String::from_utf8_lossy(&dump.stderr)
    );
    let dump = String::from_utf8_lossy(&dump.stdout).into_owned();
    assert!(
        dump.contains("enc:v1:"),
        "the dump holds the encrypted values"
    );
    assert!(
        dump.contains("[redacted]"),
        "the audit metadata holds the redaction marker"
    );

    let logs = String::from_utf8_lossy(&logs.0.lock().unwrap()).into_owned();
    assert!(logs.contains("connection updated"), "logs were captured");
    for planted in PLANTED {
        assert!(
            !dump.contains(planted),
            "{planted} found in the database dump"
        );
        assert!(!logs.contains(planted), "{planted} found in the logs");
        assert!(
            !shown.contains(planted),
            "{planted} found in what the store returns"
        );
    }

    pool.close().await;
    admin
        .execute(sqlx::AssertSqlSafe(format!(
            "DROP DATABASE {db} WITH (FORCE)"
        )))
        .await
        .unwrap();
}
