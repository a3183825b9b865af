//! The DNS dashboard against a real PostgreSQL (one fresh database per
//! test), filled through the store as the operator fills it: zones and
//! their states, a zone's records, history and timeline, change requests
//! with approvals pasted as documents or as `ssh-keygen -Y sign` signatures
//! (real ones, and forged ones), snapshots and rollbacks, provider
//! connections; and another tenant's objects answering 404. Runs
//! `ssh-keygen` (apt-get install openssh-client) and needs DATABASE_URL
//! (scripts/test.sh starts PostgreSQL).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use axum::http::StatusCode;
use chrono::{DateTime, Duration, Utc};
use common::*;
use sqlx::PgPool;
use zentralink_model::approval::{
    ApprovalMessage, format_message_time, timestamp_from_unix, truncate_to_second,
};
use zentralink_model::digest::PlanDigest;
use zentralink_model::reconcile::rollback_plan;
use zentralink_model::resources::Decision;
use zentralink_model::secrets::SecretString;
use zentralink_model::zone::StoredRecordSet;
use zentralink_model::{ZoneContent, ZoneName};
use zentralink_store::approvals::{Judgment, NewConfig};
use zentralink_store::audit::{Actor, AuditEvent};
use zentralink_store::changes::{ChangeOutcome, NewChangeRequest, RequestKind};
use zentralink_store::connections::{ConnectionCheck, NewConnection};
use zentralink_store::reconcile::{ExecutionEnd, FinishedExecution, NewExecution, ZoneSummary};
use zentralink_store::snapshots::SnapshotReason;
use zentralink_store::{ChangeRequestId, ConnectionId, MIGRATOR, Store, TenantId, ZoneId};
use zentralink_web::Clock;

// ---------------------------------------------------------------- fixtures

const DIGEST: &str = "sha256:108783d4a6ffde5ec5cd010f76707c293dbdfb1f4d67e4091644917d736341be";
const OTHER_DIGEST: &str =
    "sha256:0000000000000000000000000000000000000000000000000000000000000001";

fn ssh_keygen() -> Command {
    if Command::new("ssh-keygen")
        .arg("-?")
        .stdin(Stdio::null())
        .output()
        .is_err()
    {
        panic!(
            "ssh-keygen is not installed; these tests sign approvals with OpenSSH: install it (apt-get install openssh-client) and run them again"
        );
    }
    let mut c = Command::new("ssh-keygen");
    c.stdin(Stdio::null());
    c
}

/// An Ed25519 key made by ssh-keygen: its file and public key line.
fn keygen(dir: &Path, name: &str) -> (PathBuf, String) {
    let path = dir.join(name);
    let out = ssh_keygen()
        .args(["-q", "-t", "ed25519", "-N", "", "-C", name, "-f"])
        .arg(&path)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let public = std::fs::read_to_string(format!("{}.pub", path.display())).unwrap();
    (path, public.trim().to_owned())
}

/// `ssh-keygen -Y sign -n zentralink-approval` over `message`.
fn keygen_sign(dir: &Path, key: &Path, message: &[u8]) -> String {
    static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let file = dir.join(format!("message-{n}.txt"));
    std::fs::write(&file, message).unwrap();
    let out = ssh_keygen()
        .args(["-Y", "sign", "-n", "zentralink-approval", "-f"])
        .arg(key)
        .arg(&file)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    std::fs::read_to_string(format!("{}.sig", file.display())).unwrap()
}

struct Keys {
    dir: tempfile::TempDir,
    bob: PathBuf,
    carol: PathBuf,
    ann: PathBuf,
    mallory: PathBuf,
}

/// Bob and Carol approve (OWNER); Ann (who asks for changes) is listed too;
/// Mallory's key is listed nowhere.
fn keys() -> (Keys, Vec<serde_json::Value>) {
    let dir = tempfile::tempdir().unwrap();
    let (bob, bob_pub) = keygen(dir.path(), "bob");
    let (carol, carol_pub) = keygen(dir.path(), "carol");
    let (ann, ann_pub) = keygen(dir.path(), "ann");
    let (mallory, _) = keygen(dir.path(), "mallory");
    let approvers = vec![
        serde_json::json!({"name": "bob", "email": "bob@acme.example", "role": "OWNER", "publicKeys": [bob_pub]}),
        serde_json::json!({"name": "carol", "email": "carol@acme.example", "role": "ADMIN", "publicKeys": [carol_pub]}),
        serde_json::json!({"name": "ann", "email": "ann@acme.example", "role": "OWNER", "publicKeys": [ann_pub]}),
    ];
    (
        Keys {
            dir,
            bob,
            carol,
            ann,
            mallory,
        },
        approvers,
    )
}

/// Puts a configuration in force for tenant `slug` (namespace = slug) as
/// the operator's first pass does: the Tenant and its TenantPolicy.
async fn put_policy_in_force(
    store: &Store,
    tenant: TenantId,
    slug: &str,
    approvers: Vec<serde_json::Value>,
) {
    let configs = vec![
        NewConfig {
            kind: "Tenant".into(),
            namespace: String::new(),
            name: slug.into(),
            spec: serde_json::json!({"displayName": slug, "namespaces": [slug], "allowedDomains": [format!("{slug}.example.")]}),
            spec_digest: "sha256:00".into(),
        },
        NewConfig {
            kind: "TenantPolicy".into(),
            namespace: slug.into(),
            name: "policy".into(),
            spec: serde_json::json!({"approvals": {"minApprovals": 2, "approvers": approvers}}),
            spec_digest: "sha256:00".into(),
        },
    ];
    store
        .accept_configs(
            tenant,
            &configs,
            "bootstrap",
            None,
            &AuditEvent::new(
                Some(tenant),
                Actor::Operator("test".into()),
                "config.accepted",
            ),
        )
        .await
        .unwrap();
}

fn records(zone: &str, sets: &[(&str, &str, &[&str])]) -> ZoneContent {
    let stored: Vec<StoredRecordSet> = sets
        .iter()
        .map(|(name, rtype, values)| StoredRecordSet {
            name: (*name).into(),
            record_type: (*rtype).into(),
            ttl: 300,
            values: values.iter().map(|v| (*v).to_owned()).collect(),
        })
        .collect();
    ZoneContent::from_stored(ZoneName::parse(zone).unwrap(), &stored).unwrap()
}

/// A gated change request of the zone: MX mx1 → mx2.
async fn open_request(
    store: &Store,
    tenant: TenantId,
    zone: ZoneId,
    name: &str,
    requester: &str,
    expires_at: DateTime<Utc>,
) -> ChangeRequestId {
    let plan = serde_json::json!({
        "zone": "acme.example.",
        "changes": [{
            "op": "update", "name": "acme.example.", "type": "MX",
            "before": {"ttl": 300, "values": ["10 mx1.acme.example."]},
            "after": {"ttl": 300, "values": ["10 mx2.acme.example."]},
            "reasons": ["MX record sets need approval (requiredFor.recordTypes)"]
        }]
    });
    store
        .create_change_request(
            tenant,
            &NewChangeRequest {
                zone: Some(zone),
                name,
                plan,
                plan_digest: DIGEST,
                requester,
                reason: Some("MX record sets need approval (requiredFor.recordTypes)"),
                rollback_to: None,
                expires_at,
                kind: RequestKind::Declared,
                revision: Some("0a1b2c3"),
            },
        )
        .await
        .unwrap()
}

/// The approval message the page shows for `approver` at the harness's clock.
fn message(h: &Harness, request: &str, approver: &str, decision: Decision) -> (Vec<u8>, String) {
    let now = h.clock.now();
    let created = truncate_to_second(timestamp_from_unix(now.timestamp(), 0));
    let m = ApprovalMessage::new(
        "acme",
        "acme",
        request,
        DIGEST.parse::<PlanDigest>().unwrap(),
        decision,
        approver,
        created,
    )
    .unwrap();
    (m.to_bytes(), format_message_time(created))
}

/// Signs in as the owner Ann of tenant acme.
async fn signed_in_owner(h: &Harness) -> (TenantId, Browser) {
    let (tenant, _) = h.owner("acme", "ann@acme.example").await;
    let mut b = h.browser();
    let r = b.login("ann@acme.example", PASSWORD).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    (tenant, b)
}

/// A member of `tenant` with `role` whose password is [`PASSWORD`].
async fn member(h: &Harness, tenant: TenantId, email: &str, role: &str) {
    let hash = zentralink_web::password::PasswordHasher::new(1)
        .unwrap()
        .hash(&SecretString::new(PASSWORD))
        .await
        .unwrap();
    let user = h.store.create_user(email, email, &hash).await.unwrap();
    h.store.set_membership(tenant, user, role).await.unwrap();
}

async fn audit_of(h: &Harness, action: &str) -> Vec<String> {
    h.audit_rows()
        .await
        .into_iter()
        .filter(|r| r.contains(&format!("\"action\":\"{action}\"")))
        .collect()
}

async fn live_connection(store: &Store, tenant: TenantId, name: &str, mode: &str) -> ConnectionId {
    store
        .upsert_connection(
            tenant,
            &NewConnection {
                namespace: "acme",
                name,
                provider_type: "powerdns",
                settings: serde_json::json!({"url": "http://pdns.internal:8081", "apiKeySecretRef": "pdns-api-key-ref"}),
                credentials: Some(&SecretString::new("sUp3r-s3cret-api-key")),
                mode,
                acknowledge_live_writes: true,
            },
        )
        .await
        .unwrap()
}

async fn checks(
    store: &Store,
    tenant: TenantId,
    id: ConnectionId,
    test: bool,
    probe: Option<bool>,
) {
    store
        .record_connection_check(
            tenant,
            id,
            ConnectionCheck::Test,
            test,
            if test {
                "reachable, key accepted"
            } else {
                "HTTP 401 from the API"
            },
        )
        .await
        .unwrap();
    if let Some(probe) = probe {
        store
            .record_connection_check(tenant, id, ConnectionCheck::Probe, probe, "write probe ok")
            .await
            .unwrap();
    }
}

/// Hands in a signature over the shown message, as the page's form does.
async fn paste_signature(
    b: &mut Browser,
    path: &str,
    csrf: &str,
    approver: &str,
    created: &str,
    signature: &str,
) -> Resp {
    b.post(
        path,
        &[
            ("csrf", csrf),
            ("approver", approver),
            ("decision", "Approve"),
            ("created", created),
            ("signature", signature),
        ],
    )
    .await
}

/// A page's text as a browser shows it (minijinja escapes `/` too).
fn unescape(html: &str) -> String {
    html.replace("&#x2f;", "/")
        .replace("&quot;", "\"")
        .replace("&#x27;", "'")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
}

fn converged() -> ZoneSummary {
    ZoneSummary {
        outcome: "Converged".into(),
        plan_changes: 0,
        drift: vec![],
        message: None,
    }
}

// ---------------------------------------------------------------- zones

#[sqlx::test(migrator = "MIGRATOR")]
async fn the_zones_list_says_each_zones_state(pool: PgPool) {
    let h = harness(pool);
    let (t, mut b) = signed_in_owner(&h).await;
    let s = &h.store;
    let read_only = live_connection(s, t, "readonly", "ReadOnly").await;
    let failing = live_connection(s, t, "failing", "Live").await;
    checks(s, t, failing, false, None).await;
    let live = live_connection(s, t, "live", "Live").await;
    checks(s, t, live, true, Some(true)).await;
    let content = records(
        "acme.example.",
        &[("www.acme.example.", "A", &["192.0.2.1"])],
    );

    let zone = |n: &'static str, c: Option<ConnectionId>| async move {
        s.upsert_zone(t, "acme", n, &format!("{n}.acme.example."), c)
            .await
            .unwrap()
    };
    let _unseen = zone("unseen", Some(live)).await;
    for (z, summary) in [
        (zone("ro", Some(read_only)).await, converged()),
        (zone("broken", Some(failing)).await, converged()),
        (zone("synced", Some(live)).await, converged()),
        (
            zone("drifty", Some(live)).await,
            ZoneSummary {
                outcome: "DriftReported".into(),
                drift: vec!["www.drifty.acme.example. A".into()],
                ..converged()
            },
        ),
    ] {
        s.record_baseline(t, z, "powerdns", &content, &[], &summary)
            .await
            .unwrap();
    }
    let waiting = zone("waiting", Some(live)).await;
    s.record_baseline(t, waiting, "powerdns", &content, &[], &converged())
        .await
        .unwrap();
    open_request(
        s,
        t,
        waiting,
        "waiting-108783d4a6ff",
        "dave (local)",
        h.clock.now() + Duration::days(3),
    )
    .await;

    let page = b.get("/dashboard").await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    let row = |zone: &str| {
        let at = page
            .body
            .find(&format!(">{zone}.acme.example.</a>"))
            .unwrap_or_else(|| panic!("{zone} missing: {}", page.body));
        let end = page.body[at..].find("</tr>").unwrap() + at;
        page.body[at..end].to_owned()
    };
    assert!(
        row("unseen").contains("not seen by the operator yet"),
        "{}",
        row("unseen")
    );
    assert!(row("ro").contains("state-read-only"), "{}", row("ro"));
    assert!(
        row("broken").contains("provider not ready"),
        "{}",
        row("broken")
    );
    assert!(
        row("broken").contains("HTTP 401 from the API"),
        "{}",
        row("broken")
    );
    assert!(row("synced").contains("in sync"), "{}", row("synced"));
    assert!(row("drifty").contains(">drifted<"), "{}", row("drifty"));
    assert!(row("drifty").contains("www.drifty.acme.example. A"));
    assert!(
        row("waiting").contains("awaiting approval"),
        "{}",
        row("waiting")
    );
    // Credentials and settings are never on a page.
    for secret in ["sUp3r-s3cret-api-key", "pdns-api-key-ref"] {
        assert!(!page.body.contains(secret));
    }
}

#[sqlx::test(migrator = "MIGRATOR")]
async fn a_zone_page_shows_records_history_per_record_and_a_timeline(pool: PgPool) {
    let h = harness(pool);
    let (t, mut b) = signed_in_owner(&h).await;
    let s = &h.store;
    let z = s
        .upsert_zone(t, "acme", "main", "acme.example.", None)
        .await
        .unwrap();
    let before = records(
        "acme.example.",
        &[
            ("www.acme.example.", "A", &["192.0.2.1"]),
            ("api.acme.example.", "A", &["192.0.2.7"]),
        ],
    );
    s.record_baseline(t, z, "powerdns", &before, &[], &converged())
        .await
        .unwrap();
    let pre = s
        .save_snapshot(t, z, "powerdns", SnapshotReason::PreChange, &before)
        .await
        .unwrap();
    let execution = s
        .begin_execution(
            t,
            &NewExecution {
                zone: z,
                request: None,
                plan: serde_json::json!({}),
                plan_digest: DIGEST,
                rollback: false,
                revision: Some("c0ffee1"),
                requester: Some("Dave Example <dave@acme.example>"),
                pre_snapshot: pre,
            },
        )
        .await
        .unwrap();
    let after = records(
        "acme.example.",
        &[
            ("www.acme.example.", "A", &["192.0.2.2"]),
            ("api.acme.example.", "A", &["192.0.2.7"]),
        ],
    );
    let outcomes = [
        ChangeOutcome {
            op: "update".into(),
            name: "www.acme.example.".into(),
            record_type: "A".into(),
            before: Some(serde_json::json!({"ttl": 300, "values": ["192.0.2.1"]})),
            after: Some(serde_json::json!({"ttl": 300, "values": ["192.0.2.2"]})),
            error: None,
        },
        ChangeOutcome {
            op: "create".into(),
            name: "mail.acme.example.".into(),
            record_type: "A".into(),
            before: None,
            after: Some(serde_json::json!({"ttl": 300, "values": ["192.0.2.9"]})),
            error: Some("provider refused: rate limited".into()),
        },
    ];
    s.finish_execution(
        t,
        &FinishedExecution {
            execution,
            zone: z,
            end: ExecutionEnd::Done,
            provider: "powerdns",
            post_content: &after,
            outcomes: &outcomes,
            owned: vec![],
            held_for: None,
            revision: Some("c0ffee1"),
            requester: Some("Dave Example <dave@acme.example>"),
            request: None,
            plan_digest: DIGEST,
            pre_snapshot: Some(pre),
            audit: AuditEvent::new(
                Some(t),
                Actor::Operator("test".into()),
                "dns.changes.applied",
            ),
        },
    )
    .await
    .unwrap();

    let page = b.get(&format!("/zones/{z}")).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    let body = &page.body;
    // Records as last observed: the post-change snapshot.
    assert!(
        body.contains("As the operator last observed the zone"),
        "{body}"
    );
    assert!(body.contains("post-change"));
    assert!(body.contains("<code>192.0.2.2</code>") && !body.contains("<code>192.0.2.1</code>"));
    // History per record, with outcome, who, when and revision.
    assert!(body.contains("<h3>www.acme.example. A</h3>"), "{body}");
    assert!(body.contains("<h3>mail.acme.example. A</h3>"));
    assert!(body.contains("TTL 300: 192.0.2.1") && body.contains("TTL 300: 192.0.2.2"));
    assert!(body.contains("failed: provider refused: rate limited"));
    assert!(
        body.contains("Dave Example &lt;dave@acme.example&gt;"),
        "who is escaped and shown"
    );
    assert!(body.contains("c0ffee1"));
    // The timeline: SVG, described, no script.
    let svg_start = body.find("<svg").expect("no timeline");
    let svg = &body[svg_start..body.find("</svg>").unwrap()];
    assert!(svg.contains("role=\"img\""));
    assert!(
        svg.contains("<title id=\"timeline-title\">Changes to acme.example. over time</title>")
    );
    assert!(svg.contains("1 operation(s) applied, 1 failed"), "{svg}");
    assert!(!body.contains("<script"));
}

// ---------------------------------------------------------------- change requests

#[sqlx::test(migrator = "MIGRATOR")]
async fn a_change_request_shows_its_diff_gate_approvals_and_who_must_still_approve(pool: PgPool) {
    let h = harness(pool);
    let (t, mut b) = signed_in_owner(&h).await;
    let (_keys, approvers) = keys();
    put_policy_in_force(&h.store, t, "acme", approvers).await;
    let z = h
        .store
        .upsert_zone(t, "acme", "main", "acme.example.", None)
        .await
        .unwrap();
    let name = "main-108783d4a6ff";
    let cr = open_request(
        &h.store,
        t,
        z,
        name,
        "Ann <ann@acme.example>",
        h.clock.now() + Duration::days(3),
    )
    .await;
    // The operator judged two documents: carol's accepted, mallory's refused.
    for (approver, accepted, refusal, why, fp) in [
        (
            "carol",
            true,
            None,
            "signature by carol (SHA256:abc) verified; Approve accepted",
            "sha256:01",
        ),
        (
            "bob",
            false,
            Some("UnknownKey"),
            "the approval is signed with the ssh-ed25519 key SHA256:zzz, which no approver of tenant \"acme\" lists",
            "sha256:02",
        ),
    ] {
        h.store
            .record_judgment(
                t,
                &Judgment {
                    change_request: cr,
                    approver,
                    decision: "Approve",
                    plan_digest: DIGEST,
                    signature: "-----BEGIN SSH SIGNATURE-----",
                    fingerprint: fp,
                    source: "git",
                    signed_at: None,
                    accepted,
                    refusal,
                    verification: why,
                    key_fingerprint: None,
                },
                &AuditEvent::new(Some(t), Actor::Operator("test".into()), "approval.judged"),
            )
            .await
            .unwrap()
            .unwrap();
    }

    let list = b.get("/change-requests?open=1").await;
    assert_eq!(list.status, StatusCode::OK, "{}", list.body);
    assert!(
        list.body.contains(name) && list.body.contains("1 accepted, 1 refused"),
        "{}",
        list.body
    );

    let page = b.get(&format!("/change-requests/{cr}")).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    let body = &unescape(&page.body);
    assert!(body.contains("acme.example. MX"));
    assert!(
        body.contains("TTL 300: 10 mx1.acme.example.")
            && body.contains("TTL 300: 10 mx2.acme.example.")
    );
    assert!(body.contains("MX record sets need approval (requiredFor.recordTypes)"));
    assert!(body.contains("Pending") && body.contains("Expires"));
    assert!(
        body.contains("signature by carol (SHA256:abc) verified"),
        "accepted with its reason"
    );
    assert!(
        body.contains("refused (UnknownKey)"),
        "refused with its code: {body}"
    );
    assert!(body.contains("1 more approval(s) needed"), "{body}");
    // Bob may still approve; Carol has; Ann asked for it.
    assert!(
        body.contains("Who may still approve (the requester excluded): bob."),
        "{body}"
    );
    assert!(body.contains(&format!(
        "zentralink approve {name} --key ~/.ssh/id_ed25519 --submit"
    )));

    // The message for bob, byte for byte as docs/approval-message.md builds it.
    let (expected, created) = message(&h, name, "bob", Decision::Approve);
    let shown = b
        .get(&format!(
            "/change-requests/{cr}?approver=bob&decision=Approve"
        ))
        .await;
    let text = String::from_utf8(expected.clone()).unwrap();
    assert!(text.starts_with("zentralink-approval-v1\ntenant: acme\nnamespace: acme\n"));
    assert!(
        unescape(&shown.body).contains(&format!("<pre class=\"message\">{text}</pre>")),
        "{}",
        shown.body
    );
    let file = b
        .get(&format!(
            "/change-requests/{cr}/message?approver=bob&decision=Approve&created={created}"
        ))
        .await;
    assert_eq!(file.status, StatusCode::OK);
    assert_eq!(file.body.as_bytes(), expected.as_slice());
    assert_eq!(
        file.header("content-type").as_deref(),
        Some("text/plain; charset=utf-8")
    );
}

#[sqlx::test(migrator = "MIGRATOR")]
async fn a_pasted_ssh_keygen_signature_is_judged_at_once_and_handed_in(pool: PgPool) {
    let h = harness(pool);
    let (t, mut b) = signed_in_owner(&h).await;
    let (keys, approvers) = keys();
    put_policy_in_force(&h.store, t, "acme", approvers).await;
    let z = h
        .store
        .upsert_zone(t, "acme", "main", "acme.example.", None)
        .await
        .unwrap();
    let name = "main-108783d4a6ff";
    let cr = open_request(
        &h.store,
        t,
        z,
        name,
        "Ann <ann@acme.example>",
        h.clock.now() + Duration::hours(2),
    )
    .await;
    let csrf = b.session_csrf().await;
    let path = format!("/change-requests/{cr}/approvals");
    // Bob signs the shown message with ssh-keygen: accepted, handed in.
    let (bytes, created) = message(&h, name, "bob", Decision::Approve);
    let signature = keygen_sign(keys.dir.path(), &keys.bob, &bytes);
    let r = paste_signature(&mut b, &path, &csrf, "bob", &created, &signature).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert!(
        r.body.contains("Accepted.") && r.body.contains("signature by bob"),
        "{}",
        r.body
    );
    let pending = h.store.pending_submissions(t, cr).await.unwrap();
    assert_eq!(pending.len(), 1, "stored as a submission for the operator");
    let doc: zentralink_model::resources::Approval =
        serde_json::from_value(pending[0].document.clone()).unwrap();
    assert_eq!(doc.spec.approver, "bob");
    assert_eq!(doc.metadata.namespace.as_deref(), Some("acme"));
    assert_eq!(
        pending[0].fingerprint,
        zentralink_model::approval::document_fingerprint(
            &zentralink_model::approval::ApprovalInput::from_spec("acme", "acme", &doc.spec)
        ),
        "the same document identity the operator and the CLI use"
    );
    let page = b.get(&format!("/change-requests/{cr}")).await;
    assert!(
        page.body.contains("Approve by bob, handed in at")
            && page.body.contains("would be accepted"),
        "{}",
        page.body
    );

    // The same signature again: handed in once.
    let r = paste_signature(&mut b, &path, &csrf, "bob", &created, &signature).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(r.body.contains("submitted already"), "{}", r.body);

    // Forged: Bob's signature over another message (a Reject) pasted as an Approve.
    let (reject, _) = message(&h, name, "bob", Decision::Reject);
    let forged = keygen_sign(keys.dir.path(), &keys.bob, &reject);
    let r = paste_signature(&mut b, &path, &csrf, "bob", &created, &forged).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        r.body.contains("Refused (BadSignature)") && r.body.contains("does not verify"),
        "{}",
        r.body
    );

    // A key nobody lists, claiming to be Bob.
    let mallory = keygen_sign(keys.dir.path(), &keys.mallory, &bytes);
    let r = paste_signature(&mut b, &path, &csrf, "bob", &created, &mallory).await;
    assert!(
        r.body.contains("Refused (UnknownKey)") && r.body.contains("no approver of tenant"),
        "{}",
        r.body
    );

    // Carol's key signing as Bob.
    let (carol_as_bob, _) = message(&h, name, "bob", Decision::Approve);
    let r = paste_signature(
        &mut b,
        &path,
        &csrf,
        "bob",
        &created,
        &keygen_sign(keys.dir.path(), &keys.carol, &carol_as_bob),
    )
    .await;
    assert!(r.body.contains("Refused (NotTheApprover)"), "{}", r.body);

    // The requester signing her own change.
    let (own, _) = message(&h, name, "ann", Decision::Approve);
    let r = paste_signature(
        &mut b,
        &path,
        &csrf,
        "ann",
        &created,
        &keygen_sign(keys.dir.path(), &keys.ann, &own),
    )
    .await;
    assert!(
        r.body.contains("Refused (RequesterCannotApprove)")
            && r.body.contains("cannot decide on it too"),
        "{}",
        r.body
    );

    // Garbage instead of a signature.
    let r = paste_signature(&mut b, &path, &csrf, "carol", &created, "not a signature").await;
    assert!(
        r.body.contains("Refused (BadSignature)") && r.body.contains("BEGIN SSH SIGNATURE"),
        "{}",
        r.body
    );

    // Expired: Carol signs after the request's expiry.
    h.clock.advance(Duration::hours(3));
    let (late, late_created) = message(&h, name, "carol", Decision::Approve);
    let r = paste_signature(
        &mut b,
        &path,
        &csrf,
        "carol",
        &late_created,
        &keygen_sign(keys.dir.path(), &keys.carol, &late),
    )
    .await;
    assert!(
        r.body.contains("Refused (RequestExpired)") && r.body.contains("expired at"),
        "{}",
        r.body
    );

    // Every paste was audited, accepted or refused, without the signature.
    let events = audit_of(&h, "approval.pasted").await;
    assert_eq!(events.len(), 8, "{events:?}");
    let metadata: Vec<serde_json::Value> = events
        .iter()
        .map(|e| serde_json::from_str::<serde_json::Value>(e).unwrap()["metadata"].clone())
        .collect();
    assert_eq!(
        metadata.iter().filter(|m| m["accepted"] == true).count(),
        1,
        "{metadata:?}"
    );
    for code in [
        "BadSignature",
        "UnknownKey",
        "NotTheApprover",
        "RequesterCannotApprove",
        "RequestExpired",
        "AlreadySubmitted",
    ] {
        assert!(
            metadata.iter().any(|m| m["refusal"] == code),
            "{code}: {metadata:?}"
        );
    }
    // "U1NIU0lH" is "SSHSIG" in base64: the start of every armored signature.
    assert!(
        events
            .iter()
            .all(|e| e.contains("192.0.2.10") && !e.contains("U1NIU0lH")),
        "{events:?}"
    );
}

#[sqlx::test(migrator = "MIGRATOR")]
async fn a_pasted_approval_document_is_judged_and_a_wrong_digest_is_refused(pool: PgPool) {
    let h = harness(pool);
    let (t, mut b) = signed_in_owner(&h).await;
    let (keys, approvers) = keys();
    put_policy_in_force(&h.store, t, "acme", approvers).await;
    let z = h
        .store
        .upsert_zone(t, "acme", "main", "acme.example.", None)
        .await
        .unwrap();
    let name = "main-108783d4a6ff";
    let cr = open_request(
        &h.store,
        t,
        z,
        name,
        "dave (local)",
        h.clock.now() + Duration::days(1),
    )
    .await;
    let csrf = b.session_csrf().await;
    let now = h.clock.now();
    let created = format_message_time(truncate_to_second(timestamp_from_unix(now.timestamp(), 0)));
    let document = |digest: &str, signature: &str| {
        let indented: Vec<String> = signature.lines().map(|l| format!("    {l}")).collect();
        format!(
            "apiVersion: dns.zentralink.net/v1alpha1\nkind: Approval\nmetadata:\n  name: {name}-carol-approve\n  namespace: acme\nspec:\n  changeRequest: {name}\n  planDigest: {digest}\n  approver: carol\n  decision: Approve\n  createdAt: {created}\n  signature: |\n{}\n",
            indented.join("\n")
        )
    };
    // Carol signed another digest than the request's.
    let other = ApprovalMessage::new(
        "acme",
        "acme",
        name,
        OTHER_DIGEST.parse::<PlanDigest>().unwrap(),
        Decision::Approve,
        "carol",
        zentralink_model::approval::parse_message_time(&created).unwrap(),
    )
    .unwrap()
    .to_bytes();
    let wrong = keygen_sign(keys.dir.path(), &keys.carol, &other);
    let r = b
        .post(
            &format!("/change-requests/{cr}/approvals"),
            &[
                ("csrf", &csrf),
                ("document", &document(OTHER_DIGEST, &wrong)),
            ],
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.body);
    assert!(
        r.body.contains("Refused (DigestMismatch)") && r.body.contains("is not this plan"),
        "{}",
        r.body
    );

    // The same, over the request's digest: accepted.
    let (right, _) = message(&h, name, "carol", Decision::Approve);
    let good = keygen_sign(keys.dir.path(), &keys.carol, &right);
    let r = b
        .post(
            &format!("/change-requests/{cr}/approvals"),
            &[("csrf", &csrf), ("document", &document(DIGEST, &good))],
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert!(r.body.contains("Accepted."), "{}", r.body);

    // Not an Approval at all.
    let r = b
        .post(
            &format!("/change-requests/{cr}/approvals"),
            &[("csrf", &csrf), ("document", "kind: [unclosed")],
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        r.body.contains("Refused (Malformed)") && r.body.contains("does not read"),
        "{}",
        r.body
    );
    assert_eq!(h.store.pending_submissions(t, cr).await.unwrap().len(), 2);
}

#[sqlx::test(migrator = "MIGRATOR")]
async fn a_viewer_sees_requests_but_cannot_paste_or_roll_back(pool: PgPool) {
    let h = harness(pool);
    let (t, _) = h.owner("acme", "ann@acme.example").await;
    member(&h, t, "vic@acme.example", "VIEWER").await;
    let z = h
        .store
        .upsert_zone(t, "acme", "main", "acme.example.", None)
        .await
        .unwrap();
    let cr = open_request(
        &h.store,
        t,
        z,
        "main-108783d4a6ff",
        "dave (local)",
        h.clock.now() + Duration::days(1),
    )
    .await;
    let snapshot = h
        .store
        .save_snapshot(
            t,
            z,
            "powerdns",
            SnapshotReason::OnDemand,
            &records("acme.example.", &[]),
        )
        .await
        .unwrap();
    let mut b = h.browser();
    b.login("vic@acme.example", PASSWORD).await;
    let page = b.get(&format!("/change-requests/{cr}")).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    assert!(page.body.contains("Your role cannot hand in approvals."));
    let csrf = b.session_csrf().await;
    let r = b
        .post(
            &format!("/change-requests/{cr}/approvals"),
            &[("csrf", &csrf), ("document", "x")],
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let r = b
        .post(
            &format!("/snapshots/{snapshot}/rollback"),
            &[("csrf", &csrf)],
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert!(h.store.pending_submissions(t, cr).await.unwrap().is_empty());
}

// ---------------------------------------------------------------- snapshots

#[sqlx::test(migrator = "MIGRATOR")]
async fn rolling_back_to_a_snapshot_opens_a_change_request_as_the_cli_does(pool: PgPool) {
    let h = harness(pool);
    let (t, mut b) = signed_in_owner(&h).await;
    let (_keys, approvers) = keys();
    put_policy_in_force(&h.store, t, "acme", approvers).await;
    let s = &h.store;
    let z = s
        .upsert_zone(t, "acme", "main", "acme.example.", None)
        .await
        .unwrap();
    let old = records(
        "acme.example.",
        &[
            ("www.acme.example.", "A", &["192.0.2.1"]),
            ("old.acme.example.", "TXT", &["\"kept\""]),
        ],
    );
    let now = records(
        "acme.example.",
        &[("www.acme.example.", "A", &["192.0.2.2"])],
    );
    s.record_baseline(t, z, "powerdns", &old, &[], &converged())
        .await
        .unwrap();
    let target = s.latest_snapshot(t, z).await.unwrap().unwrap().id;
    let latest = s
        .save_snapshot(t, z, "powerdns", SnapshotReason::PostChange, &now)
        .await
        .unwrap();

    let list = b.get(&format!("/zones/{z}/snapshots")).await;
    assert_eq!(list.status, StatusCode::OK);
    assert!(
        list.body.contains(&format!("/snapshots/{target}"))
            && list.body.contains(&format!("/snapshots/{latest}"))
    );

    let page = b.get(&format!("/snapshots/{target}")).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    assert!(
        page.body
            .contains("Compared with the zone as the operator last observed it"),
        "{}",
        page.body
    );
    assert!(
        page.body
            .contains("would make 2 change(s), and it needs approval"),
        "{}",
        page.body
    );
    assert!(
        page.body.contains("old.acme.example. TXT") && page.body.contains("TTL 300: 192.0.2.1")
    );

    let csrf = b.session_csrf().await;
    let r = b
        .post(
            &format!("/snapshots/{target}/rollback"),
            &[("csrf", &csrf), ("reason", "bad deploy")],
        )
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    let location = r.location().unwrap().to_owned();
    let id: ChangeRequestId = location
        .trim_start_matches("/change-requests/")
        .parse()
        .unwrap();
    let record = s.change_request(t, id).await.unwrap();
    let policy = s.policy_in_force(t).await.unwrap().unwrap();
    let plan = rollback_plan("acme", &old, &now, &policy);
    assert_eq!(
        record.plan_digest,
        plan.digest.to_string(),
        "the CLI's plan and digest"
    );
    assert_eq!(
        record.name,
        format!("main-rollback-{}", plan.digest.short(12))
    );
    assert_eq!(
        (record.kind.as_str(), record.state.as_str()),
        ("rollback", "Pending")
    );
    assert_eq!(record.rollback_to, Some(target));
    assert_eq!(record.reason.as_deref(), Some("bad deploy"));
    assert_eq!(record.requester, "ann@acme.example <ann@acme.example>");
    assert_eq!(
        record.expires_at,
        h.clock.now() + Duration::seconds(policy.expires_after_secs as i64)
    );
    let shown = b.get(&location).await;
    assert!(
        shown.body.contains("rollback to snapshot") && shown.body.contains("old.acme.example. TXT"),
        "{}",
        shown.body
    );
    let opened = audit_of(&h, "change_request.opened").await;
    assert_eq!(opened.len(), 1);
    assert!(
        opened[0].contains(&target.to_string()) && opened[0].contains("192.0.2.10"),
        "{}",
        opened[0]
    );

    // Rolling back to what the zone already holds opens nothing.
    let r = b
        .post(&format!("/snapshots/{latest}/rollback"), &[("csrf", &csrf)])
        .await;
    assert_eq!(r.status, StatusCode::CONFLICT);
    assert!(r.body.contains("already holds the content"), "{}", r.body);
}

#[sqlx::test(migrator = "MIGRATOR")]
async fn connections_show_live_state_and_checks_but_never_credentials(pool: PgPool) {
    let h = harness(pool);
    let (t, mut b) = signed_in_owner(&h).await;
    let live = live_connection(&h.store, t, "live", "Live").await;
    checks(&h.store, t, live, true, Some(true)).await;
    let broken = live_connection(&h.store, t, "broken", "Live").await;
    checks(&h.store, t, broken, false, None).await;
    live_connection(&h.store, t, "readonly", "ReadOnly").await;
    let page = b.get("/connections").await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    let body = unescape(&page.body);
    let row = |name: &str| {
        let at = body.find(&format!("<td>acme/{name}</td>")).unwrap();
        body[at..at + body[at..].find("</tr>").unwrap()].to_owned()
    };
    assert!(
        row("live").contains(">live<") && row("live").contains("passed at"),
        "{}",
        row("live")
    );
    assert!(
        row("broken").contains("failed at") && row("broken").contains("HTTP 401 from the API"),
        "{}",
        row("broken")
    );
    assert!(
        row("readonly").contains(">read-only<")
            && row("readonly").contains("spec.mode is ReadOnly")
    );
    for secret in ["sUp3r-s3cret-api-key", "pdns-api-key-ref", "enc:v1:"] {
        assert!(!page.body.contains(secret), "{secret} on the page");
    }
}

// ---------------------------------------------------------------- isolation

#[sqlx::test(migrator = "MIGRATOR")]
async fn another_tenants_zone_request_and_snapshot_are_not_found(pool: PgPool) {
    let h = harness(pool);
    let (_, mut b) = signed_in_owner(&h).await;
    let (globex, _) = h.owner("globex", "gus@globex.example").await;
    let z = h
        .store
        .upsert_zone(globex, "globex", "main", "globex.example.", None)
        .await
        .unwrap();
    let cr = open_request(
        &h.store,
        globex,
        z,
        "main-108783d4a6ff",
        "gus (local)",
        h.clock.now() + Duration::days(1),
    )
    .await;
    let snapshot = h
        .store
        .save_snapshot(
            globex,
            z,
            "powerdns",
            SnapshotReason::OnDemand,
            &records("globex.example.", &[]),
        )
        .await
        .unwrap();
    for path in [
        format!("/zones/{z}"),
        format!("/zones/{z}/snapshots"),
        format!("/snapshots/{snapshot}"),
        format!("/change-requests/{cr}"),
        format!("/change-requests/{cr}/message?approver=bob&decision=Approve"),
        "/zones/not-a-uuid".to_owned(),
    ] {
        let r = b.get(&path).await;
        assert_eq!(r.status, StatusCode::NOT_FOUND, "{path}");
        assert!(!r.body.contains("globex.example"), "{path}");
    }
    let csrf = b.session_csrf().await;
    for path in [
        format!("/snapshots/{snapshot}/rollback"),
        format!("/change-requests/{cr}/approvals"),
    ] {
        let r = b.post(&path, &[("csrf", &csrf), ("document", "x")]).await;
        assert_eq!(r.status, StatusCode::NOT_FOUND, "{path}");
    }
    for page in ["/dashboard", "/change-requests", "/connections"] {
        let r = b.get(page).await;
        assert_eq!(r.status, StatusCode::OK);
        assert!(
            !r.body.contains("globex") && !r.body.contains(&cr.to_string()),
            "{page}"
        );
    }
    assert!(
        h.store
            .pending_submissions(globex, cr)
            .await
            .unwrap()
            .is_empty()
    );
    assert!(audit_of(&h, "change_request.opened").await.is_empty());
}
