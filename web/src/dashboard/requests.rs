//! Change requests: the tenant's list, and one request's page with its
//! per-record diff, why it is gated, its state and expiry, the approvals
//! accepted and refused with their reasons, who must still approve, the
//! exact `zentralink approve` commands, and the approval message byte for
//! byte. An approver pastes a signed `Approval` document or an `ssh-keygen
//! -Y sign` signature over that message: it is stored as a submission, as
//! `zentralink approve --submit` stores it, for the operator's next pass to
//! judge and count, and judged here at once by the same function
//! (`zentralink_model::approval::judge`) to say whether it is accepted and
//! why not. Reads the store; writes submissions and audit events.

use std::collections::BTreeSet;

use axum::Form;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::http::header::{CONTENT_DISPOSITION, CONTENT_TYPE};
use axum::response::{Html, IntoResponse, Response};
use chrono::{DateTime, Utc};
use minijinja::context;
use serde::{Deserialize, Serialize};
use zentralink_model::approval::{
    APPROVAL_NAMESPACE, ApprovalInput, ApprovalMessage, RequestFacts, Tally, Verdict,
    document_fingerprint, format_message_time, is_requester, judge, parse_message_time, tally,
    timestamp_from_unix, truncate_to_second,
};
use zentralink_model::catalog::Policy;
use zentralink_model::config::StoredConfigPlan;
use zentralink_model::documents::{Resource, SourceFile, check_object_name, parse_documents};
use zentralink_model::plan::StoredPlan;
use zentralink_model::resources::{Approval, ApprovalSpec, Decision, RecordSetState};
use zentralink_store::audit::{Actor, AuditEvent};
use zentralink_store::changes::{ApprovalRecord, ChangeRequestRecord};
use zentralink_store::dashboard::request_facts;
use zentralink_store::{ChangeRequestId, StoreError};

use super::{parse_id, render, when};
use crate::AppState;
use crate::error::{Rendered, WebError};
use crate::roles::{Member, Permission};
use crate::session::Client;

/// The tenant's slug: the tenant name approval messages carry.
fn tenant_slug(member: &Member) -> Result<String, WebError> {
    member
        .frame
        .tenant
        .as_ref()
        .map(|t| t.slug.clone())
        .ok_or(WebError::NotFound)
}

// ---------------------------------------------------------------- list

#[derive(Debug, Deserialize)]
pub struct ListQuery {
    #[serde(default)]
    pub open: Option<String>,
}

#[derive(Debug, Serialize)]
struct ListRow {
    id: String,
    name: String,
    kind: String,
    state: String,
    requester: String,
    reason: Option<String>,
    zone_id: Option<String>,
    zone_name: Option<String>,
    created_at: String,
    expires_at: String,
    accepted: i64,
    refused: i64,
}

/// The tenant's change requests, newest first (`?open=1`: only open ones).
pub async fn list(
    State(state): State<AppState>,
    member: Member,
    Query(query): Query<ListQuery>,
) -> Result<Html<String>, WebError> {
    let open_only = query
        .open
        .as_deref()
        .is_some_and(|v| !v.is_empty() && v != "0");
    let rows: Vec<ListRow> = state
        .store()
        .tenant_change_requests(member.tenant_id, open_only, 500)
        .await?
        .into_iter()
        .map(|r| ListRow {
            id: r.id.to_string(),
            name: r.name,
            kind: r.kind,
            state: r.state,
            requester: r.requester,
            reason: r.reason,
            zone_id: r.zone_id.map(|z| z.to_string()),
            zone_name: r.zone_name,
            created_at: when(r.created_at),
            expires_at: when(r.expires_at),
            accepted: r.accepted,
            refused: r.refused,
        })
        .collect();
    Ok(Html(render(
        &state,
        &member,
        "change_requests.html",
        context! { requests => rows, open_only => open_only },
    )?))
}

// ---------------------------------------------------------------- one request

/// A request with what its page needs: its zone or namespace, its facts
/// for judging, and the policy in force.
struct Loaded {
    record: ChangeRequestRecord,
    namespace: String,
    zone: Option<(String, String)>,
    tenant: String,
    facts: RequestFacts,
    /// `None` before the operator put a configuration in force.
    policy: Option<Policy>,
}

async fn load(state: &AppState, member: &Member, id: &str) -> Result<Loaded, WebError> {
    let id: ChangeRequestId = parse_id(id)?;
    let store = state.store();
    let record = store.change_request(member.tenant_id, id).await?;
    let (namespace, zone) = match record.zone_id {
        Some(zone_id) => {
            let zone = store.zone(member.tenant_id, zone_id).await?;
            (
                zone.namespace.clone(),
                Some((zone.id.to_string(), zone.zone_name)),
            )
        }
        None => {
            let plan: StoredConfigPlan = serde_json::from_value(record.plan.clone())
                .map_err(|e| StoreError::Corrupt(format!("change request {}: {e}", record.name)))?;
            (plan.namespace, None)
        }
    };
    let tenant = tenant_slug(member)?;
    let facts = request_facts(&tenant, &namespace, &record)?;
    let policy = store.policy_in_force(member.tenant_id).await?;
    Ok(Loaded {
        record,
        namespace,
        zone,
        tenant,
        facts,
        policy,
    })
}

#[derive(Debug, Serialize)]
struct DiffRow {
    op: String,
    subject: String,
    before: Option<String>,
    after: Option<String>,
    reasons: Vec<String>,
}

fn set_line(s: &Option<RecordSetState>) -> Option<String> {
    s.as_ref()
        .map(|s| format!("TTL {}: {}", s.ttl, s.values.join(", ")))
}

fn json_text(v: &Option<serde_json::Value>) -> Option<String> {
    v.as_ref()
        .map(|v| serde_json::to_string_pretty(v).unwrap_or_else(|_| v.to_string()))
}

/// The request's operations, one row each, from its stored plan.
fn diff_rows(record: &ChangeRequestRecord) -> Result<Vec<DiffRow>, WebError> {
    let corrupt =
        |e: serde_json::Error| StoreError::Corrupt(format!("change request {}: {e}", record.name));
    if record.kind == "config" {
        let plan: StoredConfigPlan =
            serde_json::from_value(record.plan.clone()).map_err(corrupt)?;
        return Ok(plan
            .config
            .iter()
            .map(|c| DiffRow {
                op: c.op.to_string(),
                subject: format!("{} {}/{}", c.kind.as_str(), c.namespace, c.name),
                before: json_text(&c.before),
                after: json_text(&c.after),
                reasons: Vec::new(),
            })
            .collect());
    }
    let plan: StoredPlan = serde_json::from_value(record.plan.clone()).map_err(corrupt)?;
    Ok(plan
        .changes
        .iter()
        .map(|c| DiffRow {
            op: c.op.to_string(),
            subject: format!("{} {}", c.name, c.record_type),
            before: set_line(&c.before),
            after: set_line(&c.after),
            reasons: c.reasons.clone(),
        })
        .collect())
}

#[derive(Debug, Serialize)]
struct JudgedRow {
    approver: String,
    decision: String,
    accepted: bool,
    refusal: Option<String>,
    verification: String,
    at: String,
}

impl From<&ApprovalRecord> for JudgedRow {
    fn from(a: &ApprovalRecord) -> Self {
        Self {
            approver: a.approver.clone(),
            decision: a.decision.clone(),
            accepted: a.accepted,
            refusal: a.refusal.clone(),
            verification: a.verification.clone(),
            at: when(a.created_at),
        }
    }
}

/// The accepted decisions that count for the request's current digest.
fn counted(approvals: &[ApprovalRecord], digest: &str) -> Vec<Verdict> {
    approvals
        .iter()
        .filter(|a| a.accepted && a.plan_digest == digest)
        .map(|a| Verdict {
            approver: a.approver.clone(),
            decision: if a.decision == "Reject" {
                Decision::Reject
            } else {
                Decision::Approve
            },
            key_fingerprint: String::new(),
        })
        .collect()
}

/// Who may still approve: the policy's approvers whose role may approve,
/// who did not ask for the change and have not decided yet.
fn still_to_approve(policy: &Policy, requester: &str, decided: &BTreeSet<String>) -> Vec<String> {
    policy
        .approvers
        .iter()
        .filter(|a| policy.approver_roles.contains(&a.role))
        .filter(|a| !is_requester(a, requester))
        .filter(|a| !decided.contains(&a.name))
        .map(|a| a.name.clone())
        .collect()
}

#[derive(Debug, Deserialize)]
pub struct MessageQuery {
    #[serde(default)]
    pub approver: Option<String>,
    #[serde(default)]
    pub decision: Option<String>,
    #[serde(default)]
    pub created: Option<String>,
}

fn parse_decision(text: Option<&str>) -> Result<Decision, String> {
    match text.unwrap_or("Approve") {
        "Approve" | "" => Ok(Decision::Approve),
        "Reject" => Ok(Decision::Reject),
        other => Err(format!(
            "the decision is {other:?}; it is Approve or Reject"
        )),
    }
}

/// The message an approver signs for `loaded`, by `approver`, at `created`
/// (the time the page gave, else now, to the second).
fn message_for(
    loaded: &Loaded,
    approver: &str,
    decision: Decision,
    created: Option<&str>,
    now: DateTime<Utc>,
) -> Result<ApprovalMessage, String> {
    let created = match created.filter(|c| !c.is_empty()) {
        Some(text) => parse_message_time(text)?,
        None => truncate_to_second(timestamp_from_unix(
            now.timestamp(),
            now.timestamp_subsec_nanos(),
        )),
    };
    ApprovalMessage::new(
        &loaded.tenant,
        &loaded.namespace,
        &loaded.record.name,
        loaded.facts.digest,
        decision,
        approver,
        created,
    )
    .map_err(|e| e.to_string())
}

/// What a paste came to, shown at the top of the page.
#[derive(Debug, Serialize)]
struct PasteResult {
    accepted: bool,
    code: Option<String>,
    message: String,
    stored: bool,
}

async fn request_page(
    state: &AppState,
    member: &Member,
    loaded: &Loaded,
    query: &MessageQuery,
    result: Option<PasteResult>,
) -> Result<String, WebError> {
    let store = state.store();
    let now = state.now();
    let record = &loaded.record;
    let diff = diff_rows(record)?;
    let approvals = store.approvals(member.tenant_id, record.id).await?;
    let accepted: Vec<JudgedRow> = approvals
        .iter()
        .filter(|a| a.accepted)
        .map(JudgedRow::from)
        .collect();
    let refused: Vec<JudgedRow> = approvals
        .iter()
        .filter(|a| !a.accepted)
        .map(JudgedRow::from)
        .collect();
    let counted = counted(&approvals, &record.plan_digest);
    let decided: BTreeSet<String> = counted.iter().map(|v| v.approver.clone()).collect();
    let now_ts = timestamp_from_unix(now.timestamp(), now.timestamp_subsec_nanos());

    // Submissions the operator has not judged yet, with what the judgment
    // would say now.
    let mut waiting = Vec::new();
    for s in store.submissions(member.tenant_id, record.id).await? {
        if s.judged_at.is_some() {
            continue;
        }
        let Ok(doc) = serde_json::from_value::<Approval>(s.submission.document.clone()) else {
            continue;
        };
        let input = ApprovalInput::from_spec(
            &loaded.tenant,
            doc.metadata.namespace.as_deref().unwrap_or_default(),
            &doc.spec,
        );
        let verdict = judge(
            &input,
            &loaded.facts,
            loaded.policy.as_ref().unwrap_or(&Policy::default()),
            now_ts,
        );
        waiting.push(context! {
            approver => doc.spec.approver,
            decision => format!("{:?}", doc.spec.decision),
            submitted_at => when(s.submission.submitted_at),
            would_accept => verdict.is_ok(),
            why => verdict.err().map(|r| format!("{}: {}", r.code, r.message)),
        });
    }

    let approval_state = loaded.policy.as_ref().map(|policy| {
        let (need, rejected_by) = match tally(&counted, policy) {
            Tally::Approved { .. } => (0, None),
            Tally::Rejected { by } => (0, Some(by)),
            Tally::Waiting { need, .. } => (need, None),
        };
        context! {
            min_approvals => policy.min_approvals.max(1),
            roles => policy.approver_roles.iter().map(|r| r.as_str()).collect::<Vec<_>>(),
            need => need,
            rejected_by => rejected_by,
            still => still_to_approve(policy, &record.requester, &decided),
            approvers => policy.approvers.iter().map(|a| a.name.clone()).collect::<Vec<_>>(),
        }
    });

    // The message to sign with ssh-keygen, for the approver the page was asked for.
    let mut signing = None;
    let mut signing_error = None;
    if let Some(approver) = query.approver.as_deref().filter(|a| !a.is_empty()) {
        match parse_decision(query.decision.as_deref()).and_then(|decision| {
            message_for(loaded, approver, decision, query.created.as_deref(), now)
                .map(|m| (decision, m))
        }) {
            Ok((decision, message)) => {
                let text = String::from_utf8_lossy(&message.to_bytes()).into_owned();
                let created = format_message_time(message.created());
                let decision = if decision == Decision::Reject {
                    "Reject"
                } else {
                    "Approve"
                };
                signing = Some(context! {
                    approver => approver,
                    decision => decision,
                    created => created,
                    message => text,
                    download => format!(
                        "/change-requests/{}/message?approver={}&decision={}&created={}",
                        record.id,
                        url_encode(approver),
                        decision,
                        url_encode(&created)
                    ),
                });
            }
            Err(e) => signing_error = Some(e),
        }
    }

    let state_now = if record.state == "Pending" && now >= record.expires_at {
        "Pending (past its expiry: the operator marks it Expired on its next pass)".to_owned()
    } else {
        record.state.clone()
    };
    let name = &record.name;
    let commands = vec![
        format!("zentralink approve {name} --key ~/.ssh/id_ed25519 --submit"),
        format!(
            "zentralink approve {name} --key ~/.ssh/id_ed25519 --reject --reason \"...\" --submit"
        ),
        format!(
            "zentralink approve {name} --key ~/.ssh/id_ed25519.pub --print-message > message.txt"
        ),
        format!("ssh-keygen -Y sign -n {APPROVAL_NAMESPACE} -f ~/.ssh/id_ed25519 message.txt"),
    ];
    render(
        state,
        member,
        "change_request.html",
        context! {
            request => context! {
                id => record.id.to_string(),
                name => name,
                kind => &record.kind,
                state => state_now,
                open => record.state == "Pending",
                requester => &record.requester,
                reason => &record.reason,
                message => &record.message,
                revision => &record.revision,
                digest => &record.plan_digest,
                created_at => when(record.created_at),
                expires_at => when(record.expires_at),
                decided_at => record.decided_at.map(when),
                applied_at => record.applied_at.map(when),
                rollback_to => record.rollback_to.map(|s| s.to_string()),
                signed_by_requester => record.requester_signature.is_some(),
            },
            namespace => &loaded.namespace,
            zone => loaded.zone.as_ref().map(|(id, name)| context! { id => id, name => name }),
            gated => diff_has_reasons(record) || diff.iter().any(|d| !d.reasons.is_empty()),
            diff => diff,
            accepted => accepted,
            refused => refused,
            waiting => waiting,
            approval_state => approval_state,
            commands => commands,
            signing => signing,
            signing_error => signing_error,
            result => result,
        },
    )
}

fn diff_has_reasons(record: &ChangeRequestRecord) -> bool {
    record.reason.as_deref().is_some_and(|r| !r.is_empty())
}

fn url_encode(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// A change request's page; `?approver=NAME&decision=Approve|Reject` shows
/// the message that approver signs with `ssh-keygen`.
pub async fn page(
    State(state): State<AppState>,
    member: Member,
    Path(id): Path<String>,
    Query(query): Query<MessageQuery>,
) -> Result<Html<String>, WebError> {
    let loaded = load(&state, &member, &id).await?;
    Ok(Html(
        request_page(&state, &member, &loaded, &query, None).await?,
    ))
}

/// The approval message as a file, byte for byte (what `ssh-keygen -Y
/// sign` signs), for the approver, decision and time given.
pub async fn message(
    State(state): State<AppState>,
    member: Member,
    Path(id): Path<String>,
    Query(query): Query<MessageQuery>,
) -> Result<Response, WebError> {
    let loaded = load(&state, &member, &id).await?;
    let approver = query
        .approver
        .as_deref()
        .filter(|a| !a.is_empty())
        .ok_or_else(|| WebError::BadRequest("name the approver (?approver=NAME)".into()))?;
    let decision = parse_decision(query.decision.as_deref()).map_err(WebError::BadRequest)?;
    let message = message_for(
        &loaded,
        approver,
        decision,
        query.created.as_deref(),
        state.now(),
    )
    .map_err(WebError::BadRequest)?;
    Ok((
        [
            (CONTENT_TYPE, "text/plain; charset=utf-8"),
            (CONTENT_DISPOSITION, "attachment; filename=\"message.txt\""),
        ],
        message.to_bytes(),
    )
        .into_response())
}

// ---------------------------------------------------------------- pasting

/// A pasted approval: a whole `Approval` document, or a signature over the
/// message the page showed (with that message's approver, decision and time).
#[derive(Debug, Deserialize)]
pub struct PasteForm {
    #[serde(default)]
    pub csrf: String,
    #[serde(default)]
    pub document: String,
    #[serde(default)]
    pub signature: String,
    #[serde(default)]
    pub approver: String,
    #[serde(default)]
    pub decision: String,
    #[serde(default)]
    pub created: String,
}

/// The Approval object name `zentralink approve` would give.
fn approval_name(request: &str, approver: &str, decision: Decision) -> String {
    let mut part = String::new();
    for c in approver.chars().flat_map(char::to_lowercase) {
        if c.is_ascii_alphanumeric() {
            part.push(c);
        } else if !part.ends_with('-') {
            part.push('-');
        }
    }
    let part = part.trim_matches('-');
    let part = if part.is_empty() { "approver" } else { part };
    let verb = if decision == Decision::Reject {
        "reject"
    } else {
        "approve"
    };
    let name = format!("{request}-{part}-{verb}");
    if check_object_name(&name).is_ok() {
        name
    } else {
        format!("{request}-{verb}")
    }
}

/// Reads a pasted Approval document: exactly one, of kind Approval.
fn read_document(text: &str) -> Result<Approval, String> {
    let file = SourceFile::new("the pasted document", text);
    let (mut objects, errors) = parse_documents(&file);
    if !errors.is_empty() {
        return Err(format!("the document does not read: {errors}"));
    }
    if objects.len() != 1 {
        return Err(format!(
            "paste exactly one Approval document; found {}",
            objects.len()
        ));
    }
    match objects.remove(0).resource {
        Resource::Approval(a) => Ok(a),
        other => Err(format!(
            "the document is a {}, not an Approval",
            other.kind().as_str()
        )),
    }
}

/// The Approval a signature over the shown message makes.
fn document_from_signature(loaded: &Loaded, form: &PasteForm) -> Result<Approval, String> {
    let decision = parse_decision(Some(form.decision.as_str()))?;
    if form.approver.trim().is_empty() {
        return Err("name the approver whose message was signed".into());
    }
    parse_message_time(&form.created)?;
    let spec = ApprovalSpec {
        change_request: loaded.record.name.clone(),
        plan_digest: loaded.record.plan_digest.clone(),
        approver: form.approver.clone(),
        decision,
        created_at: form.created.clone(),
        signature: form.signature.trim().to_owned(),
        comment: None,
    };
    let mut approval = Approval::new(
        &approval_name(&loaded.record.name, &form.approver, decision),
        spec,
    );
    approval.metadata.namespace = Some(loaded.namespace.clone());
    Ok(approval)
}

/// Stores a pasted approval as a submission (as `zentralink approve
/// --submit` does) and judges it at once with the operator's rules; the
/// page says whether it is accepted and why not. Needs RESOURCE_WRITE.
pub async fn paste(
    State(state): State<AppState>,
    member: Member,
    client: Client,
    Path(id): Path<String>,
    Form(form): Form<PasteForm>,
) -> Result<Response, WebError> {
    // Another tenant's request is "not found" before anything else is said.
    let loaded = load(&state, &member, &id).await?;
    member.session.0.check_csrf(&form.csrf)?;
    member.require(Permission::ResourceWrite)?;
    let store = state.store();
    let now = state.now();
    let target = format!("{}/{}", loaded.namespace, loaded.record.name);
    let by_document = !form.document.trim().is_empty();
    let audit = |accepted: bool| {
        AuditEvent::new(
            Some(member.tenant_id),
            Actor::User(member.session.user()),
            "approval.pasted",
        )
        .target("DnsChangeRequest", &target)
        .from_client(client.ip.clone(), client.user_agent.clone())
        .meta("requestId", loaded.record.id.to_string())
        .meta("form", if by_document { "document" } else { "signature" })
        .meta("accepted", accepted)
    };

    let document = if by_document {
        read_document(&form.document)
    } else if form.signature.trim().is_empty() {
        Err("paste a signed Approval document, or a signature over the message shown".into())
    } else {
        document_from_signature(&loaded, &form)
    };
    let approval = match document {
        Ok(a) => a,
        Err(why) => {
            store
                .audit(
                    audit(false)
                        .meta("refusal", "Malformed")
                        .meta("reason", why.clone()),
                )
                .await?;
            let result = PasteResult {
                accepted: false,
                code: Some("Malformed".into()),
                message: why,
                stored: false,
            };
            return refused_page(&state, &member, &loaded, &form, result).await;
        }
    };
    let namespace = approval.metadata.namespace.clone().unwrap_or_default();
    let input = ApprovalInput::from_spec(&loaded.tenant, &namespace, &approval.spec);
    let fingerprint = document_fingerprint(&input);
    let json = serde_json::to_value(&approval)
        .map_err(|e| WebError::Internal(format!("the approval does not serialize: {e}")))?;
    let policy = loaded.policy.clone().unwrap_or_default();
    let now_ts = timestamp_from_unix(now.timestamp(), now.timestamp_subsec_nanos());
    let verdict = judge(&input, &loaded.facts, &policy, now_ts);
    let already: BTreeSet<String> = counted(
        &store.approvals(member.tenant_id, loaded.record.id).await?,
        &loaded.record.plan_digest,
    )
    .into_iter()
    .map(|v| v.approver)
    .collect();
    let (accepted, code, message) = match &verdict {
        Ok(v) if already.contains(&v.approver) => (
            false,
            Some("AlreadyCounted".to_owned()),
            format!(
                "{} has decided on this request already (one person counts once, however many keys or approvals)",
                v.approver
            ),
        ),
        Ok(v) => (
            true,
            None,
            format!(
                "signature by {} ({}) verified; {} accepted. The operator counts it on its next pass.",
                v.approver,
                v.key_fingerprint,
                if v.decision == Decision::Reject {
                    "Reject"
                } else {
                    "Approve"
                }
            ),
        ),
        Err(r) => {
            let mut message = r.message.clone();
            if namespace.is_empty() {
                message.push_str(
                    " (the document has no metadata.namespace; the signed message binds the namespace, so set it to the request's)",
                );
            }
            if loaded.policy.is_none() {
                message.push_str(
                    " (the operator has not put this tenant's configuration in force yet, so no approver is known)",
                );
            }
            (false, Some(r.code.as_str().to_owned()), message)
        }
    };
    let stored = match store
        .submit_approval(member.tenant_id, loaded.record.id, &json, &fingerprint)
        .await
    {
        Ok(_) => true,
        Err(StoreError::Conflict(_)) => false,
        Err(e) => return Err(e.into()),
    };
    let (accepted, code, message) = if stored {
        (accepted, code, message)
    } else {
        (
            false,
            Some("AlreadySubmitted".to_owned()),
            "this signed approval was submitted already; it is judged once".to_owned(),
        )
    };
    let mut event = audit(accepted)
        .meta("approver", approval.spec.approver.clone())
        .meta(
            "decision",
            if approval.spec.decision == Decision::Reject {
                "Reject"
            } else {
                "Approve"
            },
        )
        .meta("digest", approval.spec.plan_digest.clone())
        .meta("document", fingerprint)
        .meta("reason", message.clone());
    if let Some(code) = &code {
        event = event.meta("refusal", code.clone());
    }
    store.audit(event).await?;
    let result = PasteResult {
        accepted,
        code,
        message,
        stored,
    };
    if accepted {
        let html = request_page(&state, &member, &loaded, &no_query(), Some(result)).await?;
        Ok(Html(html).into_response())
    } else {
        refused_page(&state, &member, &loaded, &form, result).await
    }
}

fn no_query() -> MessageQuery {
    MessageQuery {
        approver: None,
        decision: None,
        created: None,
    }
}

/// The page again, with the refusal and the message the approver was signing.
async fn refused_page(
    state: &AppState,
    member: &Member,
    loaded: &Loaded,
    form: &PasteForm,
    result: PasteResult,
) -> Result<Response, WebError> {
    let query = MessageQuery {
        approver: Some(form.approver.clone()).filter(|a| !a.is_empty()),
        decision: Some(form.decision.clone()).filter(|d| !d.is_empty()),
        created: Some(form.created.clone()).filter(|c| !c.is_empty()),
    };
    let html = request_page(state, member, loaded, &query, Some(result)).await?;
    let mut response = (StatusCode::UNPROCESSABLE_ENTITY, Html(html)).into_response();
    response.extensions_mut().insert(Rendered);
    Ok(response)
}
