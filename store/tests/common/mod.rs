//! Shared fixtures for store tests: keyrings and a seeded tenant pair.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
#![allow(dead_code)]

use chrono::{Duration, Utc};
use sqlx::PgPool;
use zentralink_model::secrets::{EncryptionKey, Keyring, SecretString};
use zentralink_model::{RecordSet, RecordValue, RrKey, ZoneContent, ZoneName};
use zentralink_store::changes::NewChangeRequest;
use zentralink_store::connections::NewConnection;
use zentralink_store::{ConnectionId, Store, TenantId, ZoneId};

pub fn keyring(b: u8) -> Keyring {
    Keyring::new(EncryptionKey::from_bytes([b; 32]), None)
}

pub fn store(pool: PgPool) -> Store {
    Store::from_pool(pool, keyring(1))
}

pub fn content(zone: &str, n: usize) -> ZoneContent {
    let origin = ZoneName::parse(zone).unwrap();
    let mut c = ZoneContent::new(origin.clone());
    for i in 0..n {
        let v = RecordValue::parse(hickory_rr_a(), &format!("192.0.2.{}", i + 1), &origin).unwrap();
        c.sets.insert(
            RrKey::new(origin.owner(&format!("h{i}")).unwrap(), hickory_rr_a()),
            RecordSet::new(300, vec![v]),
        );
    }
    c
}

fn hickory_rr_a() -> hickory_proto::rr::RecordType {
    hickory_proto::rr::RecordType::A
}

/// A tenant with a connection and a zone.
pub struct Seeded {
    pub tenant: TenantId,
    pub connection: ConnectionId,
    pub zone: ZoneId,
}

pub async fn seed(store: &Store, slug: &str, zone: &str, secret: &str) -> Seeded {
    let tenant = store
        .upsert_tenant(slug, &format!("Tenant {slug}"))
        .await
        .unwrap();
    let creds = SecretString::new(secret);
    let connection = store
        .upsert_connection(
            tenant,
            &NewConnection {
                namespace: slug,
                name: "pdns",
                provider_type: "powerdns",
                settings: serde_json::json!({"url": "http://127.0.0.1:8081"}),
                credentials: Some(&creds),
                mode: "ReadOnly",
                acknowledge_live_writes: false,
            },
        )
        .await
        .unwrap();
    let zone = store
        .upsert_zone(tenant, slug, "main", zone, Some(connection))
        .await
        .unwrap();
    Seeded {
        tenant,
        connection,
        zone,
    }
}

pub fn change_request(zone: ZoneId, name: &str) -> NewChangeRequest<'_> {
    NewChangeRequest {
        zone: Some(zone),
        name,
        plan: serde_json::json!({"changes": []}),
        // one digest per name: a zone holds one open request per digest
        plan_digest: Box::leak(format!("sha256:{name}").into_boxed_str()),
        requester: "carol",
        reason: Some("test"),
        rollback_to: None,
        kind: zentralink_store::changes::RequestKind::Declared,
        revision: None,
        expires_at: Utc::now() + Duration::hours(72),
    }
}
