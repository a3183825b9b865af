//! A TenantPolicy edit proposed in the web service against the operator: the
//! request it opens (revision `web`) is neither superseded nor executed by
//! passes whose source declares the configuration in force; when the source
//! declares the same policy, the operator takes that very request (same
//! digest, same name) instead of opening another. Directory source, zone-file
//! provider, PostgreSQL.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::path::Path;
use std::process::{Command, Output};

use common::text;
use zentralink_model::config::{ConfigObject, WEB_REVISION, propose_policy_edit};
use zentralink_model::documents::SourceFile;
use zentralink_model::secrets::{EncryptionKey, Keyring};
use zentralink_store::Store;
use zentralink_store::approvals::ConfigRecord;
use zentralink_store::changes::{NewChangeRequest, RequestKind};

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

fn reconcile(dir: &Path, db_url: &str, key: &str) -> Output {
    let out = Command::new(env!("CARGO_BIN_EXE_zentralink"))
        .args(["reconcile"])
        .arg(dir.join("repo"))
        .arg("--state-dir")
        .arg(dir.join("state"))
        .env("NO_COLOR", "1")
        .env("DATABASE_URL", db_url)
        .env("PLATFORM_ENCRYPTION_KEY", key)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "reconcile failed:\n{}\n{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    out
}

async fn requests(pool: &sqlx::PgPool) -> Vec<(String, String, Option<String>)> {
    sqlx::query_as(
        "SELECT name, state, revision FROM dns_change_requests WHERE kind = 'config' ORDER BY created_at, name",
    )
    .fetch_all(pool)
    .await
    .unwrap()
}

#[tokio::test]
async fn a_policy_edit_from_the_web_waits_for_the_source_and_is_then_the_request() {
    let examples = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples");
    let dir = tempfile::tempdir().unwrap();
    let repo = dir.path().join("repo");
    for sub in ["acme", "tenants", "zonefiles"] {
        copy_dir(&examples.join(sub), &repo.join(sub));
    }
    // acme only: globex's tenant object goes
    std::fs::remove_file(repo.join("tenants/globex.yaml")).unwrap();
    let (_admin, db_url, _name) = common::fresh_database("zl_webpolicy").await;
    let key = EncryptionKey::from_bytes([9u8; 32]);
    let key_text = key.to_base64();
    // the first pass puts the declared configuration in force
    reconcile(dir.path(), &db_url, &key_text);

    let pool = sqlx::PgPool::connect(&db_url).await.unwrap();
    let store = Store::from_pool(pool.clone(), Keyring::new(key, None));
    let tenant = store.tenant_by_slug("acme").await.unwrap();
    let in_force: Vec<ConfigObject> =
        ConfigRecord::objects(&store.tenant_configs(tenant.id).await.unwrap());
    assert!(
        !in_force.is_empty(),
        "the first pass put the configuration in force"
    );

    // a person proposes, in the web service, requests to expire after 48h
    let declared = std::fs::read_to_string(repo.join("acme/policy.yaml")).unwrap();
    let edited = declared.replace("expiresAfter: 72h", "expiresAfter: 48h");
    assert_ne!(declared, edited);
    let edit = propose_policy_edit(
        "acme",
        &in_force,
        &SourceFile::new("policy.yaml", edited.clone()),
    )
    .unwrap();
    assert!(!edit.changes.is_empty());
    let name = format!("config-acme-{}", edit.digest.short(12));
    store
        .create_change_request(
            tenant.id,
            &NewChangeRequest {
                zone: None,
                name: &name,
                plan: serde_json::to_value(&edit.plan).unwrap(),
                plan_digest: &edit.digest.to_string(),
                requester: "Carol <carol@acme.example>",
                reason: Some("configuration change, requested in the web service"),
                rollback_to: None,
                expires_at: chrono::Utc::now() + chrono::Duration::hours(72),
                kind: RequestKind::Config,
                revision: Some(WEB_REVISION),
            },
        )
        .await
        .unwrap();

    // passes over the unchanged source neither supersede nor execute it
    reconcile(dir.path(), &db_url, &key_text);
    reconcile(dir.path(), &db_url, &key_text);
    assert_eq!(
        requests(&pool).await,
        vec![(name.clone(), "Pending".to_owned(), Some("web".to_owned()))]
    );
    let policy_spec = |configs: Vec<zentralink_store::approvals::ConfigRecord>| {
        configs
            .into_iter()
            .find(|c| c.kind == "TenantPolicy")
            .map(|c| c.spec)
            .unwrap()
    };
    let before = policy_spec(store.tenant_configs(tenant.id).await.unwrap());
    assert_eq!(before["approvals"]["expiresAfter"], "72h");

    // the source declares the same policy: the operator takes that request,
    // opens no other, and the policy in force stays until it is approved
    std::fs::write(repo.join("acme/policy.yaml"), &edited).unwrap();
    reconcile(dir.path(), &db_url, &key_text);
    let after = requests(&pool).await;
    assert_eq!(after.len(), 1, "no second request: {after:?}");
    assert_eq!(after[0].0, name);
    assert_eq!(after[0].1, "Pending");
    let still = policy_spec(store.tenant_configs(tenant.id).await.unwrap());
    assert_eq!(still["approvals"]["expiresAfter"], "72h");

    // the source then declares yet another policy: the web request is left
    // for its approvers (or its expiry), and the source's change gets its own
    let other = declared.replace("expiresAfter: 72h", "expiresAfter: 24h");
    std::fs::write(repo.join("acme/policy.yaml"), &other).unwrap();
    reconcile(dir.path(), &db_url, &key_text);
    let last = requests(&pool).await;
    assert_eq!(last.len(), 2, "{last:?}");
    assert_eq!(
        last[0],
        (name, "Pending".to_owned(), Some("web".to_owned()))
    );
    assert_eq!(last[1].1, "Pending");
    assert_ne!(last[1].2.as_deref(), Some("web"));
}
