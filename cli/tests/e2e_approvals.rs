//! Signed approvals end to end, through a git repository, against the real
//! PowerDNS and PostgreSQL that scripts/test.sh starts: approvals signed with
//! `zentralink approve` and with plain `ssh-keygen -Y sign`, submitted to the
//! store or committed to the repository; every acceptance rule refusing what
//! it must (requester, role, unknown key, digest, replay, counted once); M of
//! N; a rejection; and the policy guarding itself (a commit that lowers
//! `minApprovals` or adds its author as an approver gains nothing until the
//! configuration change is approved under the policy in force before it),
//! and signed commits.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use sqlx::postgres::{PgPool, PgPoolOptions};
use sqlx::{Executor, Row};

mod common;
use common::{PdnsLock, env, text};

/// One person with an SSH key (and a second one, to try counting twice).
struct Person {
    name: &'static str,
    email: &'static str,
    key: PathBuf,
    second_key: PathBuf,
}

impl Person {
    fn public(&self) -> String {
        std::fs::read_to_string(self.key.with_extension("pub"))
            .unwrap()
            .trim()
            .to_owned()
    }
    fn second_public(&self) -> String {
        std::fs::read_to_string(self.second_key.with_extension("pub"))
            .unwrap()
            .trim()
            .to_owned()
    }
    fn git(&self) -> String {
        format!("{} {}", self.name, self.email)
    }
}

fn keygen(path: &Path, comment: &str) {
    let out = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-C", comment, "-f"])
        .arg(path)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
}

struct World {
    dir: tempfile::TempDir,
    db_url: String,
    db_name: String,
    admin: PgPool,
    pool: PgPool,
    key: String,
    pdns_url: String,
    pdns_key: String,
    zone: String,
}

impl World {
    fn repo(&self) -> PathBuf {
        self.dir.path().join("repo")
    }

    fn url(&self) -> String {
        format!("file://{}", self.repo().display())
    }

    fn git(&self, args: &[&str], author: &str) -> Output {
        common::git_as(&self.repo(), args, author)
    }

    fn commit(&self, files: &[(&str, &str)], author: &str, sign_with: Option<&Path>) {
        for (file, content) in files {
            let path = self.repo().join(file);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(&path, content).unwrap();
        }
        let out = self.git(&["add", "-A"], author);
        assert!(out.status.success(), "{}", text(&out.stderr));
        let out = match sign_with {
            Some(key) => self.git(
                &[
                    "-c",
                    "gpg.format=ssh",
                    "-c",
                    &format!("user.signingkey={}", key.display()),
                    "commit",
                    "-q",
                    "-S",
                    "-m",
                    "change",
                ],
                author,
            ),
            None => self.git(
                &["-c", "commit.gpgsign=false", "commit", "-q", "-m", "change"],
                author,
            ),
        };
        assert!(out.status.success(), "git commit: {}", text(&out.stderr));
    }

    fn zentralink(&self, args: &[&str]) -> Output {
        Command::new(env!("CARGO_BIN_EXE_zentralink"))
            .args(args)
            .current_dir(self.dir.path())
            .env("NO_COLOR", "1")
            .env("DATABASE_URL", &self.db_url)
            .env("PLATFORM_ENCRYPTION_KEY", &self.key)
            .env("ZENTRALINK_CREDENTIAL_PDNS", &self.pdns_key)
            .output()
            .unwrap()
    }

    fn reconcile(&self) -> serde_json::Value {
        let out = self.zentralink(&["reconcile", &self.url(), "--format", "json"]);
        assert!(
            out.status.success(),
            "reconcile failed:\n{}\n{}",
            text(&out.stdout),
            text(&out.stderr)
        );
        let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        json["zones"][0].clone()
    }

    /// `zentralink approve` with a key; the signed Approval as YAML.
    fn approve(&self, request: &str, key: &Path, extra: &[&str]) -> Output {
        let mut args = vec!["approve", request, "--key", key.to_str().unwrap()];
        args.extend_from_slice(extra);
        self.zentralink(&args)
    }

    /// Signs with plain ssh-keygen the message `zentralink approve --print-message` prints,
    /// and returns the Approval document built from it.
    fn sign_with_ssh_keygen(
        &self,
        request: &str,
        person: &Person,
        approver: &str,
        reject: bool,
    ) -> String {
        let mut args = vec![
            "approve",
            request,
            "--key",
            person.key.to_str().unwrap(),
            "--print-message",
            "--approver",
            approver,
        ];
        if reject {
            args.push("--reject");
        }
        let out = self.zentralink(&args);
        assert!(out.status.success(), "print-message: {}", text(&out.stderr));
        sign_message(
            &out.stdout,
            &person.key,
            &self.namespace_of(&out.stdout),
            request,
        )
    }

    fn namespace_of(&self, message: &[u8]) -> String {
        field(&text(message), "namespace")
    }

    /// The approval message built by hand, as docs/approval-message.md
    /// describes it (for people the CLI would refuse to help sign), signed
    /// with ssh-keygen.
    async fn sign_by_hand(&self, request: &str, person: &Person, approver: &str) -> String {
        let digest: String =
            sqlx::query_scalar("SELECT plan_digest FROM dns_change_requests WHERE name = $1")
                .bind(request)
                .fetch_one(&self.pool)
                .await
                .unwrap();
        let created = chrono::Utc::now().format("%Y-%m-%dT%H:%M:%SZ");
        let message = format!(
            "zentralink-approval-v1\ntenant: acme\nnamespace: acme\nchange-request: {request}\ndigest: {digest}\ndecision: Approve\napprover: {approver}\ncreated: {created}\n"
        );
        sign_message(message.as_bytes(), &person.key, "acme", request)
    }

    async fn state(&self, request: &str) -> String {
        sqlx::query_scalar("SELECT state FROM dns_change_requests WHERE name = $1")
            .bind(request)
            .fetch_one(&self.pool)
            .await
            .unwrap()
    }

    async fn refusals(&self) -> Vec<(String, String)> {
        let rows = sqlx::query(
            "SELECT approver, refusal FROM approvals WHERE NOT accepted ORDER BY created_at, id",
        )
        .fetch_all(&self.pool)
        .await
        .unwrap();
        rows.iter()
            .map(|r| {
                (
                    r.get("approver"),
                    r.get::<Option<String>, _>("refusal").unwrap_or_default(),
                )
            })
            .collect()
    }

    async fn refused_audits(&self) -> i64 {
        sqlx::query_scalar("SELECT count(*) FROM audit_events WHERE action = 'approval.refused'")
            .fetch_one(&self.pool)
            .await
            .unwrap()
    }

    async fn mx(&self) -> Vec<String> {
        self.rrset(&self.zone, "MX").await
    }

    async fn rrset(&self, name: &str, rtype: &str) -> Vec<String> {
        let answer = Command::new("curl")
            .args([
                "-s",
                "-H",
                &format!("X-API-Key: {}", self.pdns_key),
                &format!(
                    "{}/api/v1/servers/localhost/zones/{}",
                    self.pdns_url, self.zone
                ),
            ])
            .output()
            .unwrap();
        let json: serde_json::Value = serde_json::from_slice(&answer.stdout).unwrap();
        json["rrsets"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|r| r["name"] == name && r["type"] == rtype)
            .flat_map(|r| r["records"].as_array().unwrap().iter())
            .map(|r| r["content"].as_str().unwrap().to_owned())
            .collect()
    }
}

fn field(message: &str, name: &str) -> String {
    message
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{name}: ")))
        .unwrap_or_else(|| panic!("no {name} in {message}"))
        .to_owned()
}

/// `ssh-keygen -Y sign -n zentralink-approval` over the message, as an Approval document.
fn sign_message(message: &[u8], key: &Path, namespace: &str, request: &str) -> String {
    let dir = tempfile::tempdir().unwrap();
    let msg = dir.path().join("message");
    std::fs::write(&msg, message).unwrap();
    let out = Command::new("ssh-keygen")
        .args(["-Y", "sign", "-n", "zentralink-approval", "-f"])
        .arg(key)
        .arg(&msg)
        .stderr(Stdio::piped())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "ssh-keygen -Y sign: {}",
        text(&out.stderr)
    );
    let signature = std::fs::read_to_string(msg.with_extension("sig")).unwrap();
    let m = text(message);
    let indented: String = signature.lines().map(|l| format!("    {l}\n")).collect();
    format!(
        "apiVersion: dns.zentralink.net/v1alpha1\nkind: Approval\nmetadata: {{ name: {request}-{}-{}, namespace: {namespace} }}\nspec:\n  changeRequest: {request}\n  planDigest: \"{}\"\n  approver: {}\n  decision: {}\n  createdAt: \"{}\"\n  signature: |\n{indented}",
        field(&m, "approver"),
        field(&m, "decision").to_lowercase(),
        field(&m, "digest"),
        field(&m, "approver"),
        field(&m, "decision"),
        field(&m, "created"),
    )
}

const TENANT: &str = "apiVersion: dns.zentralink.net/v1alpha1
kind: Tenant
metadata: { name: acme }
spec: { displayName: Acme, namespaces: [acme], allowedDomains: [test.] }
";

fn policy(
    min: u32,
    people: &[(&Person, &str)],
    signed_commits: bool,
    extra_key: Option<String>,
) -> String {
    let mut approvers = String::new();
    for (p, role) in people {
        let mut keys = format!("[\"{}\", \"{}\"", p.public(), p.second_public());
        if let (Some(k), "dave") = (&extra_key, p.name.to_lowercase().as_str()) {
            keys.push_str(&format!(", \"{k}\""));
        }
        keys.push(']');
        approvers.push_str(&format!(
            "      - name: {}\n        email: {}\n        role: {role}\n        publicKeys: {keys}\n",
            p.name.to_lowercase(),
            p.email
        ));
    }
    format!(
        "apiVersion: dns.zentralink.net/v1alpha1
kind: TenantPolicy
metadata: {{ name: policy, namespace: acme }}
spec:
  requireSignedCommits: {signed_commits}
  approvals:
    requiredFor: {{ recordTypes: [MX], deletions: true, rollbacks: true }}
    minApprovals: {min}
    approverRoles: [OWNER, ADMIN]
    approvers:
{approvers}"
    )
}

fn connection(url: &str) -> String {
    format!(
        "apiVersion: dns.zentralink.net/v1alpha1
kind: ProviderConnection
metadata: {{ name: pdns, namespace: acme }}
spec:
  type: powerdns
  powerdns: {{ url: \"{url}\" }}
  credentials: {{ env: ZENTRALINK_CREDENTIAL_PDNS }}
  mode: Live
  acknowledgeLiveWrites: true
"
    )
}

fn zone_doc(zone: &str, mx: &str, www: &str) -> String {
    format!(
        "apiVersion: dns.zentralink.net/v1alpha1
kind: DnsZone
metadata: {{ name: mail, namespace: acme }}
spec:
  zone: {zone}
  providerRef: {{ name: pdns }}
  defaultTtl: 300
  recordSets:
    - {{ name: '@', type: NS, ttl: 3600, values: [ns1.example.net.] }}
    - {{ name: '@', type: MX, values: ['{mx}'] }}
    - {{ name: www, type: A, values: [{www}] }}
"
    )
}

async fn world() -> World {
    let pdns_url = env("ZL_PDNS_URL");
    let pdns_key = env("ZL_PDNS_API_KEY");
    let (admin, db_url, db_name) = common::fresh_database("zl_appr").await;
    let pool = PgPoolOptions::new()
        .max_connections(2)
        .connect_lazy(&db_url)
        .unwrap();
    let key = text(
        &Command::new(env!("CARGO_BIN_EXE_zentralink"))
            .args(["secrets", "generate-key"])
            .output()
            .unwrap()
            .stdout,
    )
    .trim()
    .to_owned();
    let zone = format!("appr-{}.e2e.test.", std::process::id());
    // the zone exists with MX mx1 before the first pass
    let created = Command::new("curl")
        .args([
            "-s",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
            "-X",
            "POST",
            "-H",
            &format!("X-API-Key: {pdns_key}"),
            "-H",
            "Content-Type: application/json",
            "-d",
            &serde_json::json!({
                "name": zone, "kind": "Native", "nameservers": ["ns1.example.net."],
                "rrsets": [{"name": zone, "type": "MX", "ttl": 300, "changetype": "REPLACE",
                            "records": [{"content": "10 mx1.example.net.", "disabled": false}]}]
            })
            .to_string(),
            &format!("{pdns_url}/api/v1/servers/localhost/zones"),
        ])
        .output()
        .unwrap();
    assert_eq!(text(&created.stdout), "201", "creating the zone");
    World {
        dir: tempfile::tempdir().unwrap(),
        db_url,
        db_name,
        admin,
        pool,
        key,
        pdns_url,
        pdns_key,
        zone,
    }
}

#[tokio::test]
async fn signed_approvals_through_git_against_powerdns() {
    let _turn = PdnsLock::acquire(&env("ZL_PDNS_URL"));
    let w = world().await;
    std::fs::create_dir_all(w.repo()).unwrap();
    let keys = w.dir.path().join("keys");
    std::fs::create_dir_all(&keys).unwrap();
    let person = |name: &'static str, email: &'static str| {
        let key = keys.join(name);
        let second = keys.join(format!("{name}-2"));
        keygen(&key, email);
        keygen(&second, email);
        Person {
            name,
            email,
            key,
            second_key: second,
        }
    };
    let alice = person("Alice", "alice@acme.example");
    let bob = person("Bob", "bob@acme.example");
    let carol = person("Carol", "carol@acme.example");
    let dave = person("Dave", "dave@acme.example");
    let eve = person("Eve", "eve@acme.example");
    let team = [
        (&alice, "ADMIN"),
        (&bob, "OWNER"),
        (&carol, "MEMBER"),
        (&dave, "ADMIN"),
    ];
    assert!(
        w.git(&["init", "-q", "-b", "main"], &dave.git())
            .status
            .success()
    );

    // ---- 1. Dave changes the MX: it waits for 2 approvals under the policy
    w.commit(
        &[
            ("tenant.yaml", TENANT),
            ("acme/policy.yaml", &policy(2, &team, false, None)),
            ("acme/connection.yaml", &connection(&w.pdns_url)),
            (
                "acme/mail.yaml",
                &zone_doc(&w.zone, "10 mx2.example.net.", "192.0.2.1"),
            ),
        ],
        &dave.git(),
        None,
    );
    let z = w.reconcile();
    let request = z["waitingFor"].as_str().unwrap().to_owned();
    assert_eq!(w.state(&request).await, "Pending");
    assert_eq!(w.mx().await, vec!["10 mx1.example.net."]);

    // ---- 2. the requester cannot approve: the CLI refuses to sign, the operator refuses a signature
    let out = w.approve(&request, &dave.key, &[]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("another approver has to decide"),
        "{}",
        text(&out.stderr)
    );
    let by_dave = w.sign_by_hand(&request, &dave, "dave").await;
    // ---- 3. a MEMBER may not approve under approverRoles [OWNER, ADMIN]
    let by_carol = w.sign_by_hand(&request, &carol, "carol").await;
    // ---- an approver naming a key that is not theirs: Eve signs as alice
    let by_eve = sign_message(
        &w.approve(&request, &alice.key, &["--print-message"]).stdout,
        &eve.key,
        "acme",
        &request,
    );
    w.commit(
        &[
            ("approvals/dave.yaml", &by_dave),
            ("approvals/carol.yaml", &by_carol),
            ("approvals/eve.yaml", &by_eve),
        ],
        &dave.git(),
        None,
    );
    w.reconcile();
    assert_eq!(w.state(&request).await, "Pending");
    let refusals = w.refusals().await;
    assert!(
        refusals.contains(&("dave".into(), "RequesterCannotApprove".into())),
        "{refusals:?}"
    );
    assert!(
        refusals.contains(&("carol".into(), "RoleNotAllowed".into())),
        "{refusals:?}"
    );
    assert!(
        refusals.contains(&("alice".into(), "UnknownKey".into())),
        "{refusals:?}"
    );
    let audited = w.refused_audits().await;
    assert_eq!(audited, 3, "every refusal is audited");
    // judged once: another pass adds no judgment and no audit
    w.reconcile();
    assert_eq!(w.refused_audits().await, audited);
    // zentralink status says who was refused and why
    let status = text(&w.zentralink(&["status"]).stdout);
    assert!(
        status.contains("Approve by carol REFUSED (RoleNotAllowed)"),
        "{status}"
    );
    assert!(
        status.contains("Approve by dave REFUSED (RequesterCannotApprove)"),
        "{status}"
    );
    assert!(status.contains("0 approval(s) so far"), "{status}");

    // ---- 4. Alice approves with the CLI, submitted to the store: 1 of 2
    let out = w.approve(&request, &alice.key, &["--submit"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("MX"),
        "the plan is shown before signing"
    );
    // signatures are made to the second: the next one is a new document
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let again = w.approve(&request, &alice.key, &["--submit"]);
    assert!(
        again.status.success(),
        "a new signature (new time) is a new document"
    );
    w.reconcile();
    assert_eq!(w.state(&request).await, "Pending", "one person counts once");
    assert_eq!(w.mx().await, vec!["10 mx1.example.net."]);
    let counted_once: i64 =
        sqlx::query_scalar("SELECT count(*) FROM approvals WHERE approver = 'alice' AND accepted")
            .fetch_one(&w.pool)
            .await
            .unwrap();
    assert_eq!(counted_once, 1);
    // her second key does not count twice either
    let out = w.approve(&request, &alice.second_key, &["--submit"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    w.reconcile();
    assert_eq!(w.state(&request).await, "Pending");
    assert!(
        w.refusals()
            .await
            .contains(&("alice".into(), "AlreadyCounted".into()))
    );

    // ---- 5. a signature over another digest is refused
    let tampered = {
        // another well-formed digest: its first hex digit changed
        let genuine = w.sign_with_ssh_keygen(&request, &bob, "bob", false);
        let start = genuine.find("planDigest: \"sha256:").unwrap() + "planDigest: \"sha256:".len();
        let other = if &genuine[start..start + 1] == "f" {
            "0"
        } else {
            "f"
        };
        let mut t = genuine.clone();
        t.replace_range(start..start + 1, other);
        assert_ne!(t, genuine);
        // a document of its own beside the genuine one to come
        t.replacen("-bob-approve,", "-bob-tampered,", 1)
    };
    assert!(tampered.contains("-bob-tampered,"));
    w.commit(
        &[("approvals/bob-tampered.yaml", &tampered)],
        &dave.git(),
        None,
    );
    w.reconcile();
    assert_eq!(w.state(&request).await, "Pending");
    let refusals = w.refusals().await;
    assert!(
        refusals
            .iter()
            .any(|(a, code)| a == "bob" && (code == "DigestMismatch" || code == "BadSignature")),
        "{refusals:?}"
    );

    // ---- 6. Bob signs with plain ssh-keygen, committed: 2 of 2, and exactly the plan executes
    let by_bob = w.sign_with_ssh_keygen(&request, &bob, "bob", false);
    let verify_file = w.dir.path().join("bob-approval.yaml");
    std::fs::write(&verify_file, &by_bob).unwrap();
    let verified = w.zentralink(&["verify", verify_file.to_str().unwrap(), "--tenant", "acme"]);
    assert!(
        verified.status.success(),
        "{}{}",
        text(&verified.stdout),
        text(&verified.stderr)
    );
    w.commit(&[("approvals/bob.yaml", &by_bob)], &dave.git(), None);
    let z = w.reconcile();
    assert_eq!(z["outcome"], "ExecuteApproved", "{z}");
    assert_eq!(w.state(&request).await, "Applied");
    assert_eq!(w.mx().await, vec!["10 mx2.example.net."]);

    // ---- 7. replay: Bob's approval copied onto another request does not count
    w.commit(
        &[(
            "acme/mail.yaml",
            &zone_doc(&w.zone, "10 mx3.example.net.", "192.0.2.1"),
        )],
        &dave.git(),
        None,
    );
    let z = w.reconcile();
    let second = z["waitingFor"].as_str().unwrap().to_owned();
    let replayed = by_bob.replace(&request, &second);
    w.commit(
        &[("approvals/bob-replayed.yaml", &replayed)],
        &dave.git(),
        None,
    );
    w.reconcile();
    assert_eq!(w.state(&second).await, "Pending");
    assert!(
        w.refusals()
            .await
            .iter()
            .any(|(a, code)| a == "bob" && (code == "BadSignature" || code == "DigestMismatch"))
    );

    // ---- 8. one valid rejection rejects; the plan is not asked again
    let rejection = w.approve(
        &second,
        &bob.key,
        &["--reject", "--reason", "mx3 is not ready"],
    );
    assert!(rejection.status.success(), "{}", text(&rejection.stderr));
    w.commit(
        &[("approvals/bob-rejects.yaml", &text(&rejection.stdout))],
        &dave.git(),
        None,
    );
    let z = w.reconcile();
    assert_eq!(w.state(&second).await, "Rejected");
    assert_eq!(z["outcome"], "Refused", "{z}");
    assert_eq!(w.mx().await, vec!["10 mx2.example.net."]);

    // ---- 8a. an Approval for a request that does not exist counts for nothing, and the log says so
    let typo = text(&rejection.stdout).replace(&second, "mail-000000000000");
    w.commit(&[("approvals/typo.yaml", &typo)], &dave.git(), None);
    let out = w.zentralink(&["reconcile", &w.url(), "--format", "json"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("\"mail-000000000000\", which tenant acme does not have"),
        "{}",
        text(&out.stderr)
    );
    assert_eq!(w.state(&second).await, "Rejected");

    // ---- 9a. minApprovals 0 does not even validate: the revision is refused and nothing changes
    w.commit(
        &[
            ("acme/policy.yaml", &policy(0, &team, false, None)),
            (
                "acme/mail.yaml",
                &zone_doc(&w.zone, "10 mx4.example.net.", "192.0.2.1"),
            ),
        ],
        &dave.git(),
        None,
    );
    let out = w.zentralink(&["reconcile", &w.url(), "--format", "json"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stdout));
    assert!(
        text(&out.stderr).contains("minApprovals"),
        "{}",
        text(&out.stderr)
    );
    assert_eq!(w.mx().await, vec!["10 mx2.example.net."]);

    // ---- 9. the policy guards itself: one commit lowers minApprovals to 1 AND changes the MX
    w.commit(
        &[
            ("acme/policy.yaml", &policy(1, &team, false, None)),
            (
                "acme/mail.yaml",
                &zone_doc(&w.zone, "10 mx4.example.net.", "192.0.2.1"),
            ),
        ],
        &dave.git(),
        None,
    );
    let z = w.reconcile();
    let third = z["waitingFor"].as_str().unwrap().to_owned();
    let config: String = sqlx::query_scalar(
        "SELECT name FROM dns_change_requests WHERE kind = 'config' AND state = 'Pending'",
    )
    .fetch_one(&w.pool)
    .await
    .unwrap();
    // Alice approves the MX alone: under the policy in force (2) that is not enough
    assert!(
        w.approve(&third, &alice.key, &["--submit"])
            .status
            .success()
    );
    w.reconcile();
    assert_eq!(
        w.state(&third).await,
        "Pending",
        "the lowered minApprovals is not in force"
    );
    assert_eq!(w.mx().await, vec!["10 mx2.example.net."]);

    // ... and a commit that adds Eve (its author) as an approver gains nothing either
    let eve_team = [
        (&alice, "ADMIN"),
        (&bob, "OWNER"),
        (&carol, "MEMBER"),
        (&dave, "ADMIN"),
        (&eve, "OWNER"),
    ];
    w.commit(
        &[("acme/policy.yaml", &policy(1, &eve_team, false, None))],
        &eve.git(),
        None,
    );
    w.reconcile();
    let by_eve = w.sign_by_hand(&third, &eve, "eve").await;
    w.commit(&[("approvals/eve-mx.yaml", &by_eve)], &eve.git(), None);
    w.reconcile();
    assert_eq!(w.state(&third).await, "Pending");
    assert!(
        w.refusals()
            .await
            .iter()
            .any(|(a, code)| a == "eve" && code == "UnknownKey")
    );
    // back to the lowered policy without Eve
    w.commit(
        &[("acme/policy.yaml", &policy(1, &team, false, None))],
        &dave.git(),
        None,
    );
    w.reconcile();
    let config: String = sqlx::query_scalar(
        "SELECT name FROM dns_change_requests WHERE kind = 'config' AND state = 'Pending'",
    )
    .fetch_one(&w.pool)
    .await
    .unwrap_or(config);
    // the configuration change is approved by two approvers under the policy in force
    assert!(
        w.approve(&config, &alice.key, &["--submit"])
            .status
            .success()
    );
    let by_bob = w.approve(&config, &bob.key, &["--submit"]);
    assert!(by_bob.status.success(), "{}", text(&by_bob.stderr));
    let z = w.reconcile();
    assert_eq!(w.state(&config).await, "Applied");
    // now minApprovals 1 is in force: Alice's approval of the MX counts, and it executes
    assert_eq!(z["outcome"], "ExecuteApproved", "{z}");
    assert_eq!(w.mx().await, vec!["10 mx4.example.net."]);

    // ---- 10. signed commits: turned on (a configuration change, approved), then unsigned commits change nothing
    w.commit(
        &[("acme/policy.yaml", &policy(1, &team, true, None))],
        &dave.git(),
        None,
    );
    w.reconcile();
    let turn_on: String = sqlx::query_scalar(
        "SELECT name FROM dns_change_requests WHERE kind = 'config' AND state = 'Pending'",
    )
    .fetch_one(&w.pool)
    .await
    .unwrap();
    assert!(
        w.approve(&turn_on, &alice.key, &["--submit"])
            .status
            .success()
    );
    w.reconcile();
    assert_eq!(w.state(&turn_on).await, "Applied");
    w.commit(
        &[(
            "acme/mail.yaml",
            &zone_doc(&w.zone, "10 mx4.example.net.", "192.0.2.2"),
        )],
        &eve.git(),
        None,
    );
    let z = w.reconcile();
    assert_eq!(z["outcome"], "Refused", "{z}");
    assert!(z["message"].as_str().unwrap().contains("not signed"), "{z}");
    // signed by an approver's key: accepted, and the key's owner is the requester
    w.commit(
        &[(
            "acme/mail.yaml",
            &zone_doc(&w.zone, "10 mx4.example.net.", "192.0.2.3"),
        )],
        &dave.git(),
        Some(&dave.key),
    );
    let z = w.reconcile();
    assert_eq!(z["outcome"], "Execute", "{z}");
    let requester: String = sqlx::query_scalar(
        "SELECT requester FROM dns_changes WHERE name = $1 ORDER BY id DESC LIMIT 1",
    )
    .bind(format!("www.{}", w.zone))
    .fetch_one(&w.pool)
    .await
    .unwrap();
    assert_eq!(requester, "dave");

    // ---- 11. a rollback committed as a DnsChangeRequest: its commit names the requester
    // (to the snapshot before Dave's signed change: www was .1; .2 never applied)
    let snapshot: String = sqlx::query_scalar(
        "SELECT id::text FROM snapshots WHERE reason = 'pre-change' ORDER BY created_at DESC LIMIT 1",
    )
    .fetch_one(&w.pool)
    .await
    .unwrap();
    let rollback = |reason: &str| {
        format!(
            "apiVersion: dns.zentralink.net/v1alpha1\nkind: DnsChangeRequest\nmetadata: {{ name: www-back, namespace: acme }}\nspec:\n  zoneRef: mail\n  rollbackTo: \"{snapshot}\"\n  reason: {reason}\n"
        )
    };
    // unsigned, while the policy requires signed commits: not opened, and why
    w.commit(
        &[(
            "requests/www-back.yaml",
            &rollback("www back to .1 (before the signed change)"),
        )],
        &eve.git(),
        None,
    );
    let z = w.reconcile();
    let message = z["message"].as_str().unwrap_or_default().to_owned();
    assert!(
        message.contains("www-back") && message.contains("not signed"),
        "{z}"
    );
    let opened: i64 =
        sqlx::query_scalar("SELECT count(*) FROM dns_change_requests WHERE name = 'www-back'")
            .fetch_one(&w.pool)
            .await
            .unwrap();
    assert_eq!(opened, 0);
    // signed by Dave: opened once, with Dave as its requester, who cannot approve it
    w.commit(
        &[(
            "requests/www-back.yaml",
            &rollback("www back to .1, signed"),
        )],
        &dave.git(),
        Some(&dave.key),
    );
    let z = w.reconcile();
    assert_eq!(z["outcome"], "AwaitingApproval", "{z}");
    assert_eq!(z["waitingFor"], "www-back", "{z}");
    let (asked_by, kind): (String, String) =
        sqlx::query_as("SELECT requester, kind FROM dns_change_requests WHERE name = 'www-back'")
            .fetch_one(&w.pool)
            .await
            .unwrap();
    assert_eq!((asked_by.as_str(), kind.as_str()), ("dave", "rollback"));
    let out = w.approve("www-back", &dave.key, &["--submit"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    assert!(
        w.approve("www-back", &alice.key, &["--submit"])
            .status
            .success()
    );
    let z = w.reconcile();
    assert_eq!(z["outcome"], "ExecuteApproved", "{z}");
    assert_eq!(w.state("www-back").await, "Applied");
    assert_eq!(
        w.rrset(&format!("www.{}", w.zone), "A").await,
        vec!["192.0.2.1"]
    );
    // the document stays in the repository: it is not asked again
    let z = w.reconcile();
    assert_ne!(z["waitingFor"], "www-back", "{z}");
    let opened: i64 =
        sqlx::query_scalar("SELECT count(*) FROM dns_change_requests WHERE name LIKE 'www-back%'")
            .fetch_one(&w.pool)
            .await
            .unwrap();
    assert_eq!(opened, 1);

    w.pool.close().await;
    let _ = w
        .admin
        .execute(sqlx::AssertSqlSafe(format!(
            "DROP DATABASE {} WITH (FORCE)",
            w.db_name
        )))
        .await;
}
