//! The acceptance rules of approvals (`judge`), the counting of decisions
//! (`tally`) and who counts as the requester (`is_requester`). Every rule
//! has a case that an approval passing all the other rules breaks, so each
//! case fails when its rule is removed. Keys are built in the test.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeSet;

use k8s_openapi::jiff::{SignedDuration, Timestamp};
use ssh_key::PrivateKey;
use ssh_key::private::Ed25519Keypair;
use zentralink_model::approval::{
    APPROVAL_NAMESPACE, ApprovalInput, ApprovalMessage, RefusalCode, RequestFacts, Tally, Verdict,
    format_message_time, is_requester, judge, sign, tally,
};
use zentralink_model::catalog::{ApproverEntry, Policy};
use zentralink_model::digest::PlanDigest;
use zentralink_model::policy::Role;
use zentralink_model::reconcile::RequestState;
use zentralink_model::resources::{ApprovalSpec, Decision};

fn time(s: &str) -> Timestamp {
    s.parse().unwrap()
}

fn key(seed: u8) -> PrivateKey {
    PrivateKey::from(Ed25519Keypair::from_seed(&[seed; 32]))
}

fn public_line(key: &PrivateKey, comment: &str) -> String {
    format!("{} {comment}", key.public_key().to_openssh().unwrap())
}

const ALICE: u8 = 1;
const BOB: u8 = 2;
const CAROL_1: u8 = 3;
const CAROL_2: u8 = 4;
const VICTOR: u8 = 5;
const STRANGER: u8 = 9;

const CURRENT: PlanDigest = PlanDigest([0xab; 32]);
const OLD: PlanDigest = PlanDigest([0x01; 32]);

fn approver(name: &str, email: Option<&str>, role: Role, seeds: &[u8]) -> ApproverEntry {
    ApproverEntry {
        name: name.into(),
        email: email.map(Into::into),
        role,
        public_keys: seeds
            .iter()
            .map(|s| public_line(&key(*s), &format!("{name}@laptop")))
            .collect(),
    }
}

/// alice and carol (two keys) are admins, bob the owner, victor only a viewer.
fn policy() -> Policy {
    Policy {
        min_approvals: 2,
        approvers: vec![
            approver("alice", Some("alice@example.com"), Role::Admin, &[ALICE]),
            approver("bob", None, Role::Owner, &[BOB]),
            approver("carol", None, Role::Admin, &[CAROL_1, CAROL_2]),
            approver("victor", None, Role::Viewer, &[VICTOR]),
        ],
        ..Policy::default()
    }
}

fn request() -> RequestFacts {
    RequestFacts {
        tenant: "acme".into(),
        namespace: "acme-dns".into(),
        name: "acme-example-abababababab".into(),
        digest: CURRENT,
        state: RequestState::Pending,
        requester: "Dave Example <dave@example.com>".into(),
        created_at: time("2026-11-30T20:00:00Z"),
        expires_at: time("2026-12-03T20:00:00Z"),
    }
}

fn now() -> Timestamp {
    time("2026-11-30T21:00:00Z")
}

/// What a signer put in the message, which the document may then misstate.
#[derive(Clone)]
struct Signed {
    tenant: String,
    namespace: String,
    change_request: String,
    digest: PlanDigest,
    decision: Decision,
    approver: String,
    created: Timestamp,
    seed: u8,
}

impl Signed {
    fn by(approver: &str, seed: u8) -> Self {
        let r = request();
        Self {
            tenant: r.tenant,
            namespace: r.namespace,
            change_request: r.name,
            digest: CURRENT,
            decision: Decision::Approve,
            approver: approver.into(),
            created: time("2026-11-30T20:30:00Z"),
            seed,
        }
    }

    /// The Approval document as `zentralink approve` writes it, with the
    /// tenant the caller found for its namespace.
    fn document(&self) -> ApprovalInput {
        let message = ApprovalMessage::new(
            &self.tenant,
            &self.namespace,
            &self.change_request,
            self.digest,
            self.decision,
            &self.approver,
            self.created,
        )
        .unwrap();
        let signature = sign(APPROVAL_NAMESPACE, &message.to_bytes(), &key(self.seed)).unwrap();
        ApprovalInput {
            namespace: self.namespace.clone(),
            tenant: self.tenant.clone(),
            change_request: self.change_request.clone(),
            plan_digest: self.digest.to_string(),
            approver: self.approver.clone(),
            decision: self.decision,
            signature,
            created_at: format_message_time(self.created),
        }
    }
}

fn alice() -> Signed {
    Signed::by("alice", ALICE)
}

struct Case {
    name: &'static str,
    approval: ApprovalInput,
    request: RequestFacts,
    policy: Policy,
    now: Timestamp,
    expected: Result<&'static str, RefusalCode>,
}

fn case(
    name: &'static str,
    approval: ApprovalInput,
    expected: Result<&'static str, RefusalCode>,
) -> Case {
    Case {
        name,
        approval,
        request: request(),
        policy: policy(),
        now: now(),
        expected,
    }
}

fn cases() -> Vec<Case> {
    use RefusalCode::*;
    let mut cases = vec![
        case(
            "a valid approval is accepted",
            alice().document(),
            Ok("alice"),
        ),
        case(
            "an approval signed with a second key counts for its owner",
            Signed::by("carol", CAROL_2).document(),
            Ok("carol"),
        ),
        case(
            "a valid rejection is accepted",
            Signed {
                decision: Decision::Reject,
                ..alice()
            }
            .document(),
            Ok("alice"),
        ),
        case(
            "an approval signed the second the request opened is accepted",
            Signed {
                created: time("2026-11-30T20:00:00Z"),
                ..alice()
            }
            .document(),
            Ok("alice"),
        ),
        case(
            "an approval signed five minutes ahead of the clock is accepted",
            Signed {
                created: time("2026-11-30T21:05:00Z"),
                ..alice()
            }
            .document(),
            Ok("alice"),
        ),
    ];

    // BadSignature: the document says something the signer did not sign.
    let mut flipped = alice().document();
    flipped.decision = Decision::Reject;
    cases.push(case(
        "a decision changed after signing breaks the signature",
        flipped,
        Err(BadSignature),
    ));
    let mut redated = alice().document();
    redated.created_at = "2026-11-30T20:31:00Z".into();
    cases.push(case(
        "a time changed after signing breaks the signature",
        redated,
        Err(BadSignature),
    ));
    let mut other_digest = Signed {
        digest: OLD,
        ..alice()
    }
    .document();
    other_digest.plan_digest = CURRENT.to_string();
    cases.push(case(
        "a signature over another digest does not verify for this one",
        other_digest,
        Err(BadSignature),
    ));
    let mut copied = Signed {
        change_request: "acme-example-010101010101".into(),
        ..alice()
    }
    .document();
    copied.change_request = request().name;
    cases.push(case(
        "an approval of another request, renamed to this one, does not verify",
        copied,
        Err(BadSignature),
    ));
    let mut other_tenant = Signed {
        tenant: "globex".into(),
        ..alice()
    }
    .document();
    other_tenant.tenant = "acme".into();
    cases.push(case(
        "an approval signed for another tenant's namespace of the same name does not verify",
        other_tenant,
        Err(BadSignature),
    ));
    let mut stolen = alice().document();
    stolen.approver = "bob".into();
    cases.push(case(
        "alice's signature under bob's name does not verify",
        stolen,
        Err(BadSignature),
    ));
    let mut garbage = alice().document();
    garbage.signature = "-----BEGIN SSH SIGNATURE-----\nAAAA\n-----END SSH SIGNATURE-----\n".into();
    cases.push(case(
        "an unreadable signature is refused",
        garbage,
        Err(BadSignature),
    ));

    // ReplayedElsewhere: the document names another request than the one judged.
    let mut elsewhere = alice().document();
    elsewhere.change_request = "acme-example-010101010101".into();
    cases.push(case(
        "an approval naming another request does not count for this one",
        elsewhere,
        Err(ReplayedElsewhere),
    ));
    let mut other_namespace = alice().document();
    other_namespace.namespace = "acme-web".into();
    cases.push(case(
        "an approval in another namespace does not count for this one",
        other_namespace,
        Err(ReplayedElsewhere),
    ));
    let mut other_owner = alice().document();
    other_owner.tenant = "globex".into();
    cases.push(case(
        "an approval in a namespace of another tenant does not count for this one",
        other_owner,
        Err(ReplayedElsewhere),
    ));

    // Keys and approvers.
    cases.push(case(
        "a key no approver lists is refused",
        Signed::by("alice", STRANGER).document(),
        Err(UnknownKey),
    ));
    cases.push(case(
        "bob's key cannot sign for alice",
        Signed::by("alice", BOB).document(),
        Err(NotTheApprover),
    ));
    cases.push(case(
        "a name the policy does not list cannot be claimed with a listed key",
        Signed::by("mallory", ALICE).document(),
        Err(NotTheApprover),
    ));
    cases.push(case(
        "an approver whose role is not in approverRoles is refused",
        Signed::by("victor", VICTOR).document(),
        Err(RoleNotAllowed),
    ));
    let mut owners_only = case(
        "approverRoles narrowed to owners refuses an admin",
        alice().document(),
        Err(RoleNotAllowed),
    );
    owners_only.policy.approver_roles = [Role::Owner].into_iter().collect();
    cases.push(owners_only);

    // The plan and the requester.
    cases.push(case(
        "an approval of an older plan is refused",
        Signed {
            digest: OLD,
            ..alice()
        }
        .document(),
        Err(DigestMismatch),
    ));
    let mut own = case(
        "the requester cannot approve their own change",
        alice().document(),
        Err(RequesterCannotApprove),
    );
    own.request.requester = "Alice Example <ALICE@example.com>".into();
    cases.push(own);
    let mut own_local = case(
        "a local requester cannot approve their own rollback",
        alice().document(),
        Err(RequesterCannotApprove),
    );
    own_local.request.requester = "alice (local)".into();
    cases.push(own_local);

    // The request's life.
    for state in RequestState::ALL {
        if state == RequestState::Pending {
            continue;
        }
        let mut closed = case(
            "a request that is no longer pending takes no decisions",
            alice().document(),
            Err(RequestNotPending),
        );
        closed.request.state = state;
        cases.push(closed);
    }
    let mut expired = case(
        "a request at its expiry takes no decisions",
        alice().document(),
        Err(RequestExpired),
    );
    expired.now = request().expires_at;
    cases.push(expired);

    // Time.
    cases.push(case(
        "an approval dated before the request was opened is refused",
        Signed {
            created: time("2026-11-30T19:59:59Z"),
            ..alice()
        }
        .document(),
        Err(SignedBeforeRequest),
    ));
    cases.push(case(
        "an approval dated more than five minutes ahead is refused",
        Signed {
            created: time("2026-11-30T21:05:01Z"),
            ..alice()
        }
        .document(),
        Err(SignedInTheFuture),
    ));

    // The document's own fields.
    let mut offset = alice().document();
    offset.created_at = "2026-11-30T21:30:00+01:00".into();
    cases.push(case(
        "a time not written as the message writes it is malformed",
        offset,
        Err(Malformed),
    ));
    let mut fraction = alice().document();
    fraction.created_at = "2026-11-30T20:30:00.000Z".into();
    cases.push(case(
        "a time with a fraction is malformed",
        fraction,
        Err(Malformed),
    ));
    let mut digest_text = alice().document();
    digest_text.plan_digest = "sha256:abab".into();
    cases.push(case(
        "a short digest is malformed",
        digest_text,
        Err(Malformed),
    ));
    let mut smuggled = alice().document();
    smuggled.approver = "alice\ndecision: Reject".into();
    cases.push(case(
        "an approver name with a line break is malformed",
        smuggled,
        Err(Malformed),
    ));
    cases
}

#[test]
fn every_rule_refuses_what_it_guards_against() {
    let mut failures = Vec::new();
    let mut seen = BTreeSet::new();
    for c in cases() {
        let got = judge(&c.approval, &c.request, &c.policy, c.now);
        let ok = match (&got, &c.expected) {
            (Ok(v), Ok(name)) => v.approver == *name,
            (Err(r), Err(code)) => {
                seen.insert(*code);
                r.code == *code && !r.message.is_empty()
            }
            _ => false,
        };
        if !ok {
            failures.push(format!(
                "{}: expected {:?}, got {got:?}",
                c.name, c.expected
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    let all: BTreeSet<RefusalCode> = RefusalCode::ALL.into_iter().collect();
    assert_eq!(seen, all, "every refusal code has a case");
}

#[test]
fn keys_are_compared_parsed_not_as_text() {
    let mut policy = policy();
    policy.approvers[0].public_keys = vec![format!(
        "  {}   another comment  ",
        key(ALICE).public_key().to_openssh().unwrap()
    )];
    let verdict = judge(&alice().document(), &request(), &policy, now()).unwrap();
    assert_eq!(verdict.approver, "alice");
    assert!(verdict.key_fingerprint.starts_with("SHA256:"));
    assert_eq!(
        verdict.key_fingerprint,
        key(ALICE)
            .public_key()
            .fingerprint(ssh_key::HashAlg::Sha256)
            .to_string()
    );
}

#[test]
fn a_request_opened_mid_second_takes_an_approval_from_that_second() {
    let mut request = request();
    request.created_at = time("2026-11-30T20:30:00.750Z");
    assert!(judge(&alice().document(), &request, &policy(), now()).is_ok());
}

#[test]
fn refusals_say_what_to_do() {
    let refusal = judge(
        &Signed::by("alice", STRANGER).document(),
        &request(),
        &policy(),
        now(),
    )
    .unwrap_err();
    assert_eq!(refusal.code.as_str(), "UnknownKey");
    assert!(refusal.message.contains("SHA256:"), "{refusal}");
    assert!(refusal.message.contains("publicKeys"), "{refusal}");
    let mut late = request();
    late.state = RequestState::Superseded;
    let refusal = judge(&alice().document(), &late, &policy(), now()).unwrap_err();
    assert!(refusal.message.contains("Superseded"), "{refusal}");
}

#[test]
fn an_approval_spec_becomes_the_judged_input() {
    let doc = alice().document();
    let spec = ApprovalSpec {
        change_request: doc.change_request.clone(),
        plan_digest: doc.plan_digest.clone(),
        approver: doc.approver.clone(),
        decision: doc.decision,
        created_at: doc.created_at.clone(),
        signature: doc.signature.clone(),
        comment: Some("looked at the MX change".into()),
    };
    assert_eq!(ApprovalInput::from_spec("acme", "acme-dns", &spec), doc);
}

// ---------------------------------------------------------------- tally

fn verdict(approver: &str, decision: Decision) -> Verdict {
    Verdict {
        approver: approver.into(),
        decision,
        key_fingerprint: "SHA256:x".into(),
    }
}

#[test]
fn one_person_counts_once_however_many_keys_or_approvals() {
    let by_carol_twice: Vec<Verdict> = [CAROL_1, CAROL_2]
        .into_iter()
        .map(|seed| {
            judge(
                &Signed::by("carol", seed).document(),
                &request(),
                &policy(),
                now(),
            )
            .unwrap()
        })
        .collect();
    assert_ne!(
        by_carol_twice[0].key_fingerprint,
        by_carol_twice[1].key_fingerprint
    );
    assert_eq!(
        tally(&by_carol_twice, &policy()),
        Tally::Waiting {
            have: vec!["carol".into()],
            need: 1
        }
    );
    let mut with_alice = by_carol_twice.clone();
    with_alice.push(judge(&alice().document(), &request(), &policy(), now()).unwrap());
    assert_eq!(
        tally(&with_alice, &policy()),
        Tally::Approved {
            by: vec!["alice".into(), "carol".into()]
        }
    );
}

#[test]
fn m_of_n_needs_m_distinct_approvers() {
    let mut policy = policy();
    policy.min_approvals = 3;
    let approvals = [
        verdict("bob", Decision::Approve),
        verdict("alice", Decision::Approve),
        verdict("bob", Decision::Approve),
    ];
    assert_eq!(
        tally(&approvals, &policy),
        Tally::Waiting {
            have: vec!["alice".into(), "bob".into()],
            need: 1
        }
    );
    let mut three = approvals.to_vec();
    three.push(verdict("carol", Decision::Approve));
    assert_eq!(
        tally(&three, &policy),
        Tally::Approved {
            by: vec!["alice".into(), "bob".into(), "carol".into()]
        }
    );
    assert_eq!(
        tally(&[], &policy),
        Tally::Waiting {
            have: vec![],
            need: 3
        }
    );
}

#[test]
fn one_rejection_rejects_whatever_the_approvals() {
    let verdicts = [
        verdict("alice", Decision::Approve),
        verdict("carol", Decision::Approve),
        verdict("bob", Decision::Reject),
    ];
    assert_eq!(
        tally(&verdicts, &policy()),
        Tally::Rejected { by: "bob".into() }
    );
}

#[test]
fn at_least_one_approval_is_always_needed() {
    let mut policy = policy();
    policy.min_approvals = 0;
    assert_eq!(
        tally(&[], &policy),
        Tally::Waiting {
            have: vec![],
            need: 1
        }
    );
}

// ---------------------------------------------------------------- requester

#[test]
fn the_requester_is_found_by_name_or_email() {
    let alice = approver("alice", Some("alice@example.com"), Role::Admin, &[ALICE]);
    let no_email = approver("alice", None, Role::Admin, &[ALICE]);
    let table: [(&ApproverEntry, &str, bool); 21] = [
        // several requesters (a configuration change by several authors): any one counts
        (
            &alice,
            "Bob Builder <bob@example.com>; Alice <alice@example.com>",
            true,
        ),
        (
            &alice,
            "Alice Example <alice@example.com>; Bob <bob@example.com>",
            true,
        ),
        (&alice, "bob; alice (local)", true),
        (
            &alice,
            "Bob <bob@example.com>; Carol <carol@example.com>",
            false,
        ),
        (&alice, "alice", true),
        (&alice, "Alice", true),
        (&alice, "  alice  ", true),
        (&alice, "alice (local)", true),
        (&alice, "ALICE (local)", true),
        (&alice, "Alice <alice@other.example>", true),
        (&alice, "Someone Else <ALICE@Example.COM>", true),
        (&alice, "alice@example.com", true),
        (&no_email, "Someone Else <alice@example.com>", false),
        (&alice, "bob", false),
        (&alice, "Bob Builder <bob@example.com>", false),
        (&alice, "malice", false),
        (&alice, "alice2 (local)", false),
        (&alice, "Alice Example <alice.example@example.com>", false),
        (&alice, "", false),
        (&alice, "<>", false),
        (&alice, "local user", false),
    ];
    for (approver, requester, expected) in table {
        assert_eq!(
            is_requester(approver, requester),
            expected,
            "is_requester({:?} <{:?}>, {requester:?})",
            approver.name,
            approver.email
        );
    }
}

#[test]
fn clock_skew_boundary_is_exactly_five_minutes() {
    let at = |created: Timestamp| {
        judge(
            &Signed { created, ..alice() }.document(),
            &request(),
            &policy(),
            now(),
        )
        .map(|v| v.approver)
        .map_err(|r| r.code)
    };
    let limit = now().checked_add(SignedDuration::from_secs(300)).unwrap();
    assert_eq!(at(limit), Ok("alice".into()));
    assert_eq!(
        at(limit.checked_add(SignedDuration::from_secs(1)).unwrap()),
        Err(RefusalCode::SignedInTheFuture)
    );
}
