use zentralink_model::catalog::ApproverEntry;
use zentralink_model::policy::Role;

use super::*;

fn facts(state: &str) -> RequestFacts {
    RequestFacts {
        name: "shop-0123456789ab".into(),
        namespace: "acme".into(),
        zone_ref: "shop".into(),
        kind: "declared".into(),
        plan: json!({"zone": "shop.example.", "changes": [{
            "op": "update", "name": "shop.example.", "type": "MX",
            "before": {"ttl": 3600, "values": ["10 mx1.shop.example."]},
            "after": {"ttl": 3600, "values": ["20 mx1.shop.example."]},
            "reasons": ["MX records need approval"]
        }]}),
        digest: format!("sha256:{}", "01".repeat(32)),
        state: state.into(),
        requester: "Carol <carol@acme.example>".into(),
        reason: Some("move the MX".into()),
        rollback_to: None,
        expires_at: "2026-12-03T21:00:00Z"
            .parse()
            .unwrap_or_else(|e| panic!("{e}")),
        approved_by: vec![],
        message: None,
    }
}

fn approver(name: &str, email: &str, role: Role) -> ApproverEntry {
    ApproverEntry {
        name: name.into(),
        email: Some(email.into()),
        role,
        public_keys: vec![],
    }
}

fn policy(min: u32) -> Policy {
    Policy {
        min_approvals: min,
        approvers: vec![
            approver("alice", "alice@acme.example", Role::Admin),
            approver("bob", "bob@acme.example", Role::Owner),
            approver("carol", "carol@acme.example", Role::Admin),
            approver("mallory", "m@acme.example", Role::Member),
        ],
        ..Policy::default()
    }
}

#[test]
fn a_mirrored_request_carries_the_plan_the_digest_and_the_requester() {
    let o = request_object(&facts("Pending"), false);
    assert_eq!(o["kind"], "DnsChangeRequest");
    assert_eq!(o["metadata"]["labels"][MANAGED_BY_LABEL], MANAGED_BY);
    assert_eq!(o["metadata"]["labels"][ZONE_LABEL], "shop");
    assert_eq!(o["spec"]["planDigest"], facts("Pending").digest);
    assert_eq!(o["spec"]["requester"], "Carol <carol@acme.example>");
    assert_eq!(o["spec"]["changes"][0]["type"], "MX");
    assert_eq!(
        o["spec"]["changes"][0]["after"]["values"][0],
        "20 mx1.shop.example."
    );
    assert_eq!(
        o["spec"]["changes"][0]["reasons"][0],
        "MX records need approval"
    );
}

#[test]
fn a_request_a_person_made_keeps_their_fields() {
    let o = request_object(&facts("Pending"), true);
    assert!(o["metadata"].get("labels").is_none());
    assert!(
        o["spec"].get("requester").is_none(),
        "the stamped requester stays theirs"
    );
    assert!(o["spec"].get("reason").is_none());
    assert_eq!(o["spec"]["planDigest"], facts("Pending").digest);
}

#[test]
fn a_pending_request_says_how_many_more_and_who_may_sign() {
    let mut f = facts("Pending");
    f.approved_by = vec!["alice".into()];
    let s = request_status(&f, &policy(2), &[], Some(1), Timestamp::UNIX_EPOCH);
    let st = &s["status"];
    assert_eq!(st["state"], "Pending");
    assert_eq!(st["approvalsNeeded"], 1);
    // not carol (the requester), not mallory (MEMBER), not alice (approved already)
    assert_eq!(st["mayApprove"], json!(["bob"]));
    assert_eq!(st["conditions"][0]["type"], "AwaitingApproval");
    assert_eq!(st["conditions"][0]["status"], "True");
    assert!(
        st["conditions"][0]["message"]
            .as_str()
            .unwrap_or_default()
            .contains("zentralink approve shop-0123456789ab")
    );
}

#[test]
fn a_closed_request_needs_nothing_and_says_its_state() {
    let mut f = facts("Rejected");
    f.message = Some("rejected by bob".into());
    let s = request_status(&f, &policy(2), &[], Some(1), Timestamp::UNIX_EPOCH);
    assert_eq!(s["status"]["approvalsNeeded"], 0);
    assert!(s["status"].get("mayApprove").is_none());
    assert_eq!(s["status"]["conditions"][0]["status"], "False");
    assert_eq!(s["status"]["conditions"][0]["reason"], "Rejected");
    assert_eq!(s["status"]["conditions"][0]["message"], "rejected by bob");
}

#[test]
fn a_configuration_request_lists_the_objects_it_changes() {
    let plan = json!({"tenant": "acme", "namespace": "acme", "config": [
        {"kind": "TenantPolicy", "namespace": "acme", "name": "policy", "op": "update",
         "before": {}, "after": {}}
    ]});
    let changes = planned_changes("config", &plan);
    assert_eq!(changes.len(), 1);
    assert_eq!(changes[0].record_type, "TenantPolicy");
    assert_eq!(changes[0].name, "acme/policy");
    assert_eq!(changes[0].op, "update");
}

#[test]
fn an_approval_says_whether_it_counts_and_why() {
    let t = Timestamp::UNIX_EPOCH;
    let accepted = approval_status(
        &ApprovalVerdict::Accepted {
            message: "signature by alice verified".into(),
        },
        &[],
        Some(1),
        t,
    );
    assert_eq!(accepted["status"]["conditions"][0]["status"], "True");
    let refused = approval_status(
        &ApprovalVerdict::Refused {
            code: "RequesterCannotApprove".into(),
            message: "carol asked for it".into(),
        },
        &[],
        Some(1),
        t,
    );
    assert_eq!(refused["status"]["conditions"][0]["status"], "False");
    assert_eq!(
        refused["status"]["conditions"][0]["reason"],
        "RequesterCannotApprove"
    );
    let unknown = approval_status(
        &ApprovalVerdict::UnknownRequest {
            request: "nope".into(),
        },
        &[],
        Some(1),
        t,
    );
    assert_eq!(
        unknown["status"]["conditions"][0]["reason"],
        "UnknownChangeRequest"
    );
}
