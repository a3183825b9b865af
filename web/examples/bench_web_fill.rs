//! Fills a benchmark database for scripts/bench-web.sh with what a tenant
//! that has run for a while holds: zones with their observed snapshot (real
//! digests, through the store), last pass state (some awaiting approval,
//! some drifted), per-record change history, change requests in every
//! state, and a long audit log; and as much again for other tenants, so
//! that every query has to find its tenant's rows among others. Does I/O
//! (PostgreSQL at DATABASE_URL, whose schema must be current).
//!
//!   bench_web_fill TENANT ZONES RECORD_SETS CHANGES_PER_ZONE OTHER_TENANTS AUDIT_EVENTS LOGIN_USERS
//!
//! TENANT must exist (`zentralink web create-owner` makes it). LOGIN_USERS
//! members `login-NNN@TENANT.example` of TENANT get the password in
//! BENCH_PASSWORD (hashed once with the service's argon2id parameters: the
//! same work to verify as one hash each). Prints one line per step and the
//! zone ids of TENANT, one per line, after `zones:`.

use std::time::Instant;

use anyhow::{Context, bail};
use zentralink_model::secrets::{EncryptionKey, Keyring, SecretString};
use zentralink_model::zone::StoredRecordSet;
use zentralink_model::{ZoneContent, ZoneName};
use zentralink_store::snapshots::SnapshotReason;
use zentralink_store::{ConnectRetry, Store, TenantId, ZoneId};
use zentralink_web::password::PasswordHasher;

struct Sizes {
    zones: usize,
    record_sets: usize,
    changes_per_zone: usize,
    other_tenants: usize,
    audit_events: usize,
    login_users: usize,
}

fn arg(args: &[String], i: usize, what: &str) -> anyhow::Result<usize> {
    args.get(i)
        .with_context(|| format!("missing argument {i}: {what}"))?
        .parse()
        .with_context(|| format!("argument {i} ({what}) is not a number"))
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    if args.len() != 8 {
        bail!(
            "usage: bench_web_fill TENANT ZONES RECORD_SETS CHANGES_PER_ZONE OTHER_TENANTS AUDIT_EVENTS LOGIN_USERS"
        );
    }
    let slug = args[1].clone();
    let sizes = Sizes {
        zones: arg(&args, 2, "zones")?,
        record_sets: arg(&args, 3, "record sets per zone")?,
        changes_per_zone: arg(&args, 4, "changes per zone")?,
        other_tenants: arg(&args, 5, "other tenants")?,
        audit_events: arg(&args, 6, "audit events")?,
        login_users: arg(&args, 7, "login users")?,
    };
    let url = std::env::var("DATABASE_URL").context("DATABASE_URL is not set")?;
    // Nothing written here is encrypted: any key does.
    let keyring = Keyring::new(EncryptionKey::from_bytes([42; 32]), None);
    let store = Store::connect(&url, keyring, ConnectRetry::default()).await?;
    let tenant = store
        .tenant_by_slug(&slug)
        .await
        .with_context(|| format!("tenant {slug} does not exist: create its owner first"))?
        .id;

    let zones = fill_tenant(&store, tenant, &slug, &sizes).await?;
    if sizes.login_users > 0 {
        let password = std::env::var("BENCH_PASSWORD").context("BENCH_PASSWORD is not set")?;
        let hash = PasswordHasher::new(1)?
            .hash(&SecretString::new(password))
            .await?;
        for i in 0..sizes.login_users {
            let email = format!("login-{i:03}@{slug}.example");
            let user = store.create_user(&email, &email, &hash).await?;
            store.set_membership(tenant, user, "MEMBER").await?;
        }
        println!("{slug}: {} sign-in users", sizes.login_users);
    }
    for i in 1..=sizes.other_tenants {
        let other_slug = format!("other-{i:02}");
        let other = store.upsert_tenant(&other_slug, &other_slug).await?;
        fill_tenant(&store, other, &other_slug, &sizes).await?;
    }
    let started = Instant::now();
    sqlx::query("ANALYZE").execute(store.pool()).await?;
    println!("analyze: {:.1}s", started.elapsed().as_secs_f64());
    println!("zones:");
    for z in zones {
        println!("{z}");
    }
    Ok(())
}

/// The record sets of zone `origin`: an apex with NS, MX, TXT, then hosts
/// with A, AAAA, CNAME and TXT in turn.
fn zone_content(origin: &str, sets: usize, generation: usize) -> anyhow::Result<ZoneContent> {
    let mut stored = vec![
        StoredRecordSet {
            name: origin.to_owned(),
            record_type: "NS".into(),
            ttl: 3600,
            values: vec!["ns1.example.net.".into(), "ns2.example.net.".into()],
        },
        StoredRecordSet {
            name: origin.to_owned(),
            record_type: "MX".into(),
            ttl: 3600,
            values: vec![format!("10 mx1.{origin}"), format!("20 mx2.{origin}")],
        },
        StoredRecordSet {
            name: origin.to_owned(),
            record_type: "TXT".into(),
            ttl: 3600,
            values: vec!["\"v=spf1 mx -all\"".into()],
        },
    ];
    for i in 0..sets.saturating_sub(stored.len()) {
        let host = format!("host{i:03}.{origin}");
        let (record_type, values) = match i % 4 {
            0 => ("A", vec![format!("192.0.2.{}", (i + generation) % 250 + 1)]),
            1 => ("AAAA", vec![format!("2001:db8::{:x}", i + generation + 1)]),
            2 => ("CNAME", vec![format!("host{:03}.{origin}", i - 2)]),
            _ => ("TXT", vec![format!("\"owner=team-{}\"", i % 7)]),
        };
        stored.push(StoredRecordSet {
            name: host,
            record_type: record_type.into(),
            ttl: 300,
            values,
        });
    }
    let name = ZoneName::parse(origin).map_err(anyhow::Error::msg)?;
    ZoneContent::from_stored(name, &stored).map_err(anyhow::Error::msg)
}

async fn fill_tenant(
    store: &Store,
    tenant: TenantId,
    slug: &str,
    sizes: &Sizes,
) -> anyhow::Result<Vec<ZoneId>> {
    let started = Instant::now();
    let mut zones = Vec::with_capacity(sizes.zones);
    for i in 0..sizes.zones {
        let origin = format!("z{i:03}.{slug}.example.");
        let zone = store
            .upsert_zone(tenant, "dns", &format!("z{i:03}"), &origin, None)
            .await?;
        let content = zone_content(&origin, sizes.record_sets, i)?;
        store
            .save_snapshot(tenant, zone, "powerdns", SnapshotReason::Baseline, &content)
            .await?;
        zones.push(zone);
    }
    let pool = store.pool();
    // The last pass: most zones in sync, every 10th awaiting approval, every
    // 15th drifted on one record set.
    sqlx::query(
        "INSERT INTO zone_states (tenant_id, zone_id, owned, revision, applied_at, outcome, plan_changes, drift, message, updated_at)
         SELECT z.tenant_id, z.id, '[]'::jsonb, 'rev-' || n, now() - interval '1 hour',
                CASE WHEN n % 10 = 0 THEN 'AwaitingApproval' ELSE 'Converged' END,
                CASE WHEN n % 10 = 0 THEN 3 ELSE 0 END,
                CASE WHEN n % 15 = 0 THEN jsonb_build_array('host000.' || z.zone_name || ' A') ELSE '[]'::jsonb END,
                CASE WHEN n % 10 = 0 THEN 'waiting for 1 approval' END,
                now() - interval '2 minutes'
           FROM (SELECT z.*, row_number() OVER (ORDER BY zone_name) AS n FROM zones z WHERE tenant_id = $1) z",
    )
    .bind(tenant)
    .execute(pool)
    .await?;
    // Change requests: for every zone ten applied ones over the last 90 days,
    // every 10th zone one pending, every 7th one rejected.
    sqlx::query(
        "INSERT INTO dns_change_requests (id, tenant_id, zone_id, name, plan, plan_digest, state, requester, reason, created_at, expires_at, decided_at, applied_at, kind, revision)
         SELECT gen_random_uuid(), z.tenant_id, z.id, z.name || '-' || lpad(k::text, 4, '0'),
                jsonb_build_object('zone', z.zone_name, 'changes', jsonb_build_array()),
                'sha256:' || encode(sha256((z.id::text || k)::bytea), 'hex'), s.state, 'ci@' || $2 || '.example', 'release ' || k,
                now() - (k || ' days')::interval, now() - (k || ' days')::interval + interval '7 days',
                CASE WHEN s.state <> 'Pending' THEN now() - (k || ' days')::interval + interval '1 hour' END,
                CASE WHEN s.state = 'Applied' THEN now() - (k || ' days')::interval + interval '2 hours' END,
                'declared', 'rev-' || k
           FROM (SELECT z.*, row_number() OVER (ORDER BY zone_name) AS n FROM zones z WHERE tenant_id = $1) z
           CROSS JOIN generate_series(1, 12) AS k
           CROSS JOIN LATERAL (SELECT CASE
                WHEN k <= 10 THEN 'Applied'
                WHEN k = 11 AND z.n % 10 = 0 THEN 'Pending'
                WHEN k = 12 AND z.n % 7 = 0 THEN 'Rejected'
                ELSE NULL END AS state) s
          WHERE s.state IS NOT NULL",
    )
    .bind(tenant)
    .bind(slug)
    .execute(pool)
    .await?;
    // Per-record history: changes spread over 90 days, five per applied request.
    sqlx::query(
        "INSERT INTO dns_changes (tenant_id, zone_id, change_request_id, plan_digest, op, name, record_type, before, after, outcome, error, revision, requester, created_at)
         SELECT z.tenant_id, z.id, r.id, coalesce(r.plan_digest, 'sha256:' || encode(sha256((z.id::text || (c / 5))::bytea), 'hex')),
                CASE WHEN c % 9 = 0 THEN 'create' ELSE 'update' END,
                'host' || lpad(((c * 4) % 200)::text, 3, '0') || '.' || z.zone_name, 'A',
                CASE WHEN c % 9 = 0 THEN NULL ELSE jsonb_build_object('ttl', 300, 'values', jsonb_build_array('192.0.2.' || (c % 250 + 1))) END,
                jsonb_build_object('ttl', 300, 'values', jsonb_build_array('192.0.2.' || ((c + 1) % 250 + 1))),
                CASE WHEN c % 50 = 0 THEN 'failed' ELSE 'applied' END,
                CASE WHEN c % 50 = 0 THEN 'provider answered 422' END,
                'rev-' || (c / 5), 'ci@' || $2 || '.example',
                now() - ((90.0 * ($3 - c) / $3) || ' days')::interval
           FROM zones z
           CROSS JOIN generate_series(1, $3) AS c
           LEFT JOIN dns_change_requests r
             ON r.tenant_id = z.tenant_id AND r.zone_id = z.id AND r.state = 'Applied'
            AND r.name = z.name || '-' || lpad((c % 10 + 1)::text, 4, '0') AND c % 5 = 0
          WHERE z.tenant_id = $1",
    )
    .bind(tenant)
    .bind(slug)
    .bind(i32::try_from(sizes.changes_per_zone)?)
    .execute(pool)
    .await?;
    // The audit log: sign-ins, changes, approvals, member changes from a
    // handful of people over 90 days.
    sqlx::query(
        "INSERT INTO audit_events (tenant_id, actor_kind, actor_id, action, target_kind, target_id, ip, user_agent, metadata, created_at)
         SELECT $1, 'user', 'user-' || (e % 12),
                (ARRAY['login','login','login','logout','change_request.approval_pasted','member.role_changed','member.invited','totp.enrolled'])[e % 8 + 1],
                'user', 'user-' || (e % 12), '192.0.2.' || (e % 200 + 1), 'Mozilla/5.0 (bench)',
                jsonb_build_object('second_factor', 'totp'),
                now() - ((90.0 * ($2 - e) / $2) || ' days')::interval
           FROM generate_series(1, $2) AS e",
    )
    .bind(tenant)
    .bind(i32::try_from(sizes.audit_events)?)
    .execute(pool)
    .await?;
    println!(
        "{slug}: {} zones x {} record sets, {} changes per zone, {} audit events in {:.1}s",
        sizes.zones,
        sizes.record_sets,
        sizes.changes_per_zone,
        sizes.audit_events,
        started.elapsed().as_secs_f64()
    );
    Ok(zones)
}
