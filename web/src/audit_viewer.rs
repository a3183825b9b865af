//! The audit viewer, `GET /audit`: the active tenant's audit log for members
//! whose role may read it (AUDIT_READ), filtered by actor, action, target
//! and time, paged by keyset over (time, id) so events recorded meanwhile
//! never shift a page. Only the tenant's own events: platform-wide ones
//! (no tenant) and other tenants' never appear. Filter input is parsed here
//! into a store query, with a message per field that is wrong. Reads the store.

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};
use chrono::{DateTime, Duration, NaiveDate, NaiveDateTime, Utc};
use minijinja::context;
use serde::{Deserialize, Serialize};
use zentralink_store::audit::{AUDIT_PAGE_MAX, ActionMatch, AuditCursor, AuditEntry, AuditQuery};

use crate::AppState;
use crate::error::{Rendered, WebError};
use crate::roles::{Member, Permission};

/// Events per page unless the visitor asks for another size.
pub const DEFAULT_PAGE_SIZE: i64 = 50;

/// The query string of `/audit`, as typed: every field is text, parsed by
/// [`parse_params`]. Unknown fields are ignored.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
pub struct AuditParams {
    #[serde(default)]
    pub actor: String,
    #[serde(default)]
    pub action: String,
    #[serde(default)]
    pub target_kind: String,
    #[serde(default)]
    pub target_id: String,
    #[serde(default)]
    pub from: String,
    #[serde(default)]
    pub to: String,
    #[serde(default)]
    pub before: String,
    #[serde(default)]
    pub limit: String,
}

/// Who the actor filter names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ActorFilter {
    /// A member's e-mail address, looked up among the tenant's members.
    Email(String),
    /// An actor id as stored: a user's id, an operator's name, `system`, `anonymous`.
    Id(String),
}

/// The filters, parsed; the actor still to be looked up.
#[derive(Debug, Clone, PartialEq)]
pub struct ParsedFilter {
    pub actor: Option<ActorFilter>,
    pub query: AuditQuery,
}

/// What is wrong with one field of the filter form.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FieldProblem {
    pub field: &'static str,
    pub message: String,
}

fn problem(field: &'static str, message: impl Into<String>) -> FieldProblem {
    FieldProblem {
        field,
        message: message.into(),
    }
}

fn has_control(s: &str) -> bool {
    s.chars().any(char::is_control)
}

fn parse_actor(raw: &str) -> Result<Option<ActorFilter>, FieldProblem> {
    if raw.is_empty() {
        return Ok(None);
    }
    if raw.len() > 254 || has_control(raw) {
        return Err(problem(
            "actor",
            "The actor is a member's e-mail address or an actor id of at most 254 characters.",
        ));
    }
    if raw.contains('@') {
        return Ok(Some(ActorFilter::Email(raw.to_lowercase())));
    }
    // A user id as stored is a lower-case hyphenated uuid; accept any spelling of one.
    Ok(Some(ActorFilter::Id(match uuid::Uuid::parse_str(raw) {
        Ok(id) => id.to_string(),
        Err(_) => raw.to_owned(),
    })))
}

fn parse_action(raw: &str) -> Result<Option<ActionMatch>, FieldProblem> {
    if raw.is_empty() {
        return Ok(None);
    }
    let (name, prefix) = match raw.strip_suffix('*') {
        Some(p) => (p, true),
        None => (raw, false),
    };
    let valid = name.len() <= 100
        && !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
    if !valid {
        return Err(problem(
            "action",
            "An action is letters, digits, '.', '_' or '-' (at most 100), e.g. login.failed; end it with * to match every action starting so, e.g. 2fa.*",
        ));
    }
    Ok(Some(if prefix {
        ActionMatch::Prefix(name.to_owned())
    } else {
        ActionMatch::Exact(name.to_owned())
    }))
}

fn parse_target_kind(raw: &str) -> Result<Option<String>, FieldProblem> {
    if raw.is_empty() {
        return Ok(None);
    }
    let valid = raw.len() <= 64
        && raw
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
    if valid {
        Ok(Some(raw.to_owned()))
    } else {
        Err(problem(
            "target_kind",
            "A target kind is letters, digits, '.', '_' or '-' (at most 64), e.g. user or DnsZone.",
        ))
    }
}

fn parse_target_id(raw: &str) -> Result<Option<String>, FieldProblem> {
    if raw.is_empty() {
        return Ok(None);
    }
    if raw.len() > 256 || has_control(raw) {
        return Err(problem(
            "target_id",
            "A target id has at most 256 characters and no control characters.",
        ));
    }
    Ok(Some(raw.to_owned()))
}

/// A moment typed into `from` or `to`, in UTC: a date (`2026-12-02`), a
/// date and time as a browser's date-time field sends it
/// (`2026-12-02T14:30`, seconds optional), or RFC 3339 with an offset.
/// A date alone means the start of that day, or with `end_of_day` the
/// start of the next (so `to` = a date includes that whole day).
fn parse_moment(raw: &str, end_of_day: bool) -> Option<DateTime<Utc>> {
    let raw = raw.trim();
    if let Ok(t) = DateTime::parse_from_rfc3339(raw) {
        return Some(t.with_timezone(&Utc));
    }
    for format in [
        "%Y-%m-%dT%H:%M",
        "%Y-%m-%dT%H:%M:%S",
        "%Y-%m-%d %H:%M",
        "%Y-%m-%d %H:%M:%S",
    ] {
        if let Ok(t) = NaiveDateTime::parse_from_str(raw, format) {
            return Some(t.and_utc());
        }
    }
    let day = NaiveDate::parse_from_str(raw, "%Y-%m-%d").ok()?;
    let start = day.and_hms_opt(0, 0, 0)?.and_utc();
    Some(if end_of_day {
        start + Duration::days(1)
    } else {
        start
    })
}

fn parse_time(
    field: &'static str,
    raw: &str,
    end_of_day: bool,
) -> Result<Option<DateTime<Utc>>, FieldProblem> {
    if raw.is_empty() {
        return Ok(None);
    }
    if raw.len() > 64 {
        return Err(problem(field, "That is not a date or time."));
    }
    parse_moment(raw, end_of_day).map(Some).ok_or_else(|| {
        problem(
            field,
            format!(
                "{raw:?} is not a date or time; write 2026-12-02, 2026-12-02T14:30 (UTC) or 2026-12-02T14:30:00+01:00."
            ),
        )
    })
}

/// The text of a page cursor: the event's time in microseconds since the
/// epoch and its id.
pub fn cursor_text(cursor: &AuditCursor) -> String {
    format!("{}_{}", cursor.created_at.timestamp_micros(), cursor.id)
}

/// The cursor of a page link, if the text is one.
pub fn parse_cursor(raw: &str) -> Option<AuditCursor> {
    let (micros, id) = raw.split_once('_')?;
    let created_at = DateTime::from_timestamp_micros(micros.parse().ok()?)?;
    let id = id.parse().ok().filter(|id: &i64| *id > 0)?;
    Some(AuditCursor { created_at, id })
}

fn parse_limit(raw: &str) -> Result<i64, FieldProblem> {
    if raw.is_empty() {
        return Ok(DEFAULT_PAGE_SIZE);
    }
    match raw.parse::<i64>() {
        Ok(n) if (1..=AUDIT_PAGE_MAX).contains(&n) => Ok(n),
        _ => Err(problem(
            "limit",
            format!("The page size is a whole number from 1 to {AUDIT_PAGE_MAX}."),
        )),
    }
}

/// The value, or `None` with the problem noted.
fn keep<T>(problems: &mut Vec<FieldProblem>, r: Result<T, FieldProblem>) -> Option<T> {
    r.map_err(|e| problems.push(e)).ok()
}

/// Parses the filter form: the store query (actor still to look up), or
/// every field that is wrong, each with what to write instead.
pub fn parse_params(p: &AuditParams) -> Result<ParsedFilter, Vec<FieldProblem>> {
    let mut problems = Vec::new();
    let actor = keep(&mut problems, parse_actor(p.actor.trim())).flatten();
    let action = keep(&mut problems, parse_action(p.action.trim())).flatten();
    let target_kind = keep(&mut problems, parse_target_kind(p.target_kind.trim())).flatten();
    let target_id = keep(&mut problems, parse_target_id(p.target_id.trim())).flatten();
    let from = keep(&mut problems, parse_time("from", p.from.trim(), false)).flatten();
    let to = keep(&mut problems, parse_time("to", p.to.trim(), true)).flatten();
    let limit = keep(&mut problems, parse_limit(p.limit.trim())).unwrap_or(DEFAULT_PAGE_SIZE);
    let before = match p.before.trim() {
        "" => None,
        raw => keep(
            &mut problems,
            parse_cursor(raw).ok_or_else(|| {
                problem(
                    "before",
                    "The page link is not valid; start again from the newest events.",
                )
            }),
        ),
    };
    if let (Some(from), Some(to)) = (from, to)
        && from >= to
    {
        problems.push(problem("to", "'To' must be later than 'from'."));
    }
    if !problems.is_empty() {
        return Err(problems);
    }
    Ok(ParsedFilter {
        actor,
        query: AuditQuery {
            actor_id: None,
            action,
            target_kind,
            target_id,
            from,
            to,
            before,
            limit,
        },
    })
}

/// One row of the table.
#[derive(Debug, Serialize)]
struct EventView {
    id: i64,
    time: String,
    actor: String,
    action: String,
    target: String,
    ip: String,
    user_agent: String,
    metadata: String,
}

impl From<AuditEntry> for EventView {
    fn from(e: AuditEntry) -> Self {
        let r = e.record;
        let actor = match (r.actor_kind.as_str(), e.actor_email) {
            (_, Some(email)) => email,
            ("user", None) => format!("user {}", r.actor_id),
            ("operator", None) => format!("operator {}", r.actor_id),
            (kind, None) => kind.to_owned(),
        };
        let target = match (r.target_kind, r.target_id, e.target_email) {
            (Some(kind), _, Some(email)) => format!("{kind} {email}"),
            (Some(kind), Some(id), None) => format!("{kind} {id}"),
            (Some(kind), None, None) => kind,
            (None, Some(id), _) => id,
            (None, None, _) => String::new(),
        };
        let metadata = match &r.metadata {
            serde_json::Value::Object(m) if m.is_empty() => String::new(),
            other => other.to_string(),
        };
        Self {
            id: r.id,
            time: r.created_at.format("%Y-%m-%d %H:%M:%S UTC").to_string(),
            actor,
            action: r.action,
            target,
            ip: r.ip.unwrap_or_default(),
            user_agent: r.user_agent.unwrap_or_default(),
            metadata,
        }
    }
}

/// Percent-encoding of a query-string value.
fn encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// `/audit` with the filters of `p` (as typed), another cursor, the page size.
fn page_link(p: &AuditParams, before: Option<&AuditCursor>) -> String {
    let mut pairs: Vec<(&str, String)> = [
        ("actor", &p.actor),
        ("action", &p.action),
        ("target_kind", &p.target_kind),
        ("target_id", &p.target_id),
        ("from", &p.from),
        ("to", &p.to),
        ("limit", &p.limit),
    ]
    .into_iter()
    .filter(|(_, v)| !v.trim().is_empty())
    .map(|(k, v)| (k, v.trim().to_owned()))
    .collect();
    if let Some(c) = before {
        pairs.push(("before", cursor_text(c)));
    }
    if pairs.is_empty() {
        return "/audit".into();
    }
    let query: Vec<String> = pairs
        .iter()
        .map(|(k, v)| format!("{k}={}", encode(v)))
        .collect();
    format!("/audit?{}", query.join("&"))
}

/// GET /audit.
pub async fn page(
    State(state): State<AppState>,
    member: Member,
    Query(params): Query<AuditParams>,
) -> Result<Response, WebError> {
    member.require(Permission::AuditRead)?;
    let store = state.store();
    let actions = store.audit_actions(member.tenant_id).await?;
    let mut problems = Vec::new();
    let mut query = None;
    match parse_params(&params) {
        Ok(ParsedFilter {
            actor,
            query: mut q,
        }) => {
            match actor {
                Some(ActorFilter::Id(id)) => q.actor_id = Some(id),
                Some(ActorFilter::Email(email)) => {
                    match store.member_id_by_email(member.tenant_id, &email).await? {
                        Some(id) => q.actor_id = Some(id.to_string()),
                        None => problems.push(problem(
                            "actor",
                            format!(
                                "No member of this tenant has the e-mail address {email}; enter a member's address or an actor id."
                            ),
                        )),
                    }
                }
                None => {}
            }
            if problems.is_empty() {
                query = Some(q);
            }
        }
        Err(p) => problems = p,
    }
    let (events, next, first_page) = match &query {
        Some(q) => {
            let page = store.audit_page(member.tenant_id, q).await?;
            let next = page.next.as_ref().map(|c| page_link(&params, Some(c)));
            let events: Vec<EventView> = page.entries.into_iter().map(EventView::from).collect();
            (events, next, q.before.is_none())
        }
        None => (Vec::new(), None, true),
    };
    let newest = (!first_page).then(|| page_link(&params, None));
    let errors: std::collections::BTreeMap<&str, &str> = problems
        .iter()
        .map(|p| (p.field, p.message.as_str()))
        .collect();
    let frame = member.frame;
    let html = state.templates().render(
        "audit.html",
        context! {
            user => frame.user, tenant => frame.tenant, csrf => frame.csrf,
            params => &params, problems => &problems, errors => errors, events => events,
            next => next, newest => newest, actions => actions,
            valid => problems.is_empty(), page_max => AUDIT_PAGE_MAX,
        },
    )?;
    if problems.is_empty() {
        Ok(Html(html).into_response())
    } else {
        let mut r = (StatusCode::BAD_REQUEST, Html(html)).into_response();
        r.extensions_mut().insert(Rendered);
        Ok(r)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn params(f: impl FnOnce(&mut AuditParams)) -> AuditParams {
        let mut p = AuditParams::default();
        f(&mut p);
        p
    }

    fn fields(p: &AuditParams) -> Vec<&'static str> {
        parse_params(p)
            .unwrap_err()
            .into_iter()
            .map(|e| e.field)
            .collect()
    }

    #[test]
    fn an_empty_form_is_the_newest_page_of_everything() {
        let f = parse_params(&AuditParams::default()).unwrap();
        assert_eq!(f.actor, None);
        assert_eq!(f.query.limit, DEFAULT_PAGE_SIZE);
        assert!(f.query.action.is_none() && f.query.before.is_none());
    }

    #[test]
    fn actions_match_exactly_or_by_prefix_and_nothing_else() {
        let f = parse_params(&params(|p| p.action = "2fa.*".into())).unwrap();
        assert_eq!(f.query.action, Some(ActionMatch::Prefix("2fa.".into())));
        let f = parse_params(&params(|p| p.action = "login.failed".into())).unwrap();
        assert_eq!(
            f.query.action,
            Some(ActionMatch::Exact("login.failed".into()))
        );
        for bad in ["%", "login failed", "*", "a*b", "x'; --"] {
            assert_eq!(
                fields(&params(|p| p.action = bad.into())),
                ["action"],
                "{bad}"
            );
        }
    }

    #[test]
    fn times_are_dates_browser_date_times_or_rfc3339() {
        let f = parse_params(&params(|p| {
            p.from = "2026-12-01".into();
            p.to = "2026-12-01".into();
        }))
        .unwrap();
        assert_eq!(
            f.query.from.unwrap().to_rfc3339(),
            "2026-12-01T00:00:00+00:00"
        );
        assert_eq!(
            f.query.to.unwrap().to_rfc3339(),
            "2026-12-02T00:00:00+00:00",
            "a date includes its day"
        );
        let f = parse_params(&params(|p| p.from = "2026-12-01T14:30".into())).unwrap();
        assert_eq!(
            f.query.from.unwrap().to_rfc3339(),
            "2026-12-01T14:30:00+00:00"
        );
        let f = parse_params(&params(|p| p.from = "2026-12-01T14:30:00+01:00".into())).unwrap();
        assert_eq!(
            f.query.from.unwrap().to_rfc3339(),
            "2026-12-01T13:30:00+00:00"
        );
        assert_eq!(fields(&params(|p| p.from = "yesterday".into())), ["from"]);
        assert_eq!(
            fields(&params(|p| {
                p.from = "2026-12-02".into();
                p.to = "2026-12-01".into();
            })),
            ["to"]
        );
    }

    #[test]
    fn every_wrong_field_is_named_at_once() {
        let p = params(|p| {
            p.actor = "a\u{7}b".into();
            p.target_kind = "no spaces".into();
            p.target_id = "x".repeat(300);
            p.limit = "5000".into();
            p.before = "garbage".into();
        });
        assert_eq!(
            fields(&p),
            ["actor", "target_kind", "target_id", "limit", "before"]
        );
    }

    #[test]
    fn cursors_round_trip_and_garbage_is_refused() {
        let c = AuditCursor {
            created_at: DateTime::from_timestamp_micros(1_800_000_000_123_456).unwrap(),
            id: 42,
        };
        assert_eq!(parse_cursor(&cursor_text(&c)), Some(c));
        for bad in ["", "1_", "_1", "1_0", "1_-3", "x_1", "1-1"] {
            assert_eq!(parse_cursor(bad), None, "{bad}");
        }
    }

    #[test]
    fn actors_are_emails_or_ids() {
        let f = parse_params(&params(|p| p.actor = "Ann@Acme.example".into())).unwrap();
        assert_eq!(f.actor, Some(ActorFilter::Email("ann@acme.example".into())));
        let f = parse_params(&params(|p| {
            p.actor = "6F9619FF-8B86-D011-B42D-00C04FC964FF".into()
        }))
        .unwrap();
        assert_eq!(
            f.actor,
            Some(ActorFilter::Id(
                "6f9619ff-8b86-d011-b42d-00c04fc964ff".into()
            ))
        );
        let f = parse_params(&params(|p| p.actor = "zentralink-cli".into())).unwrap();
        assert_eq!(f.actor, Some(ActorFilter::Id("zentralink-cli".into())));
    }

    #[test]
    fn page_links_keep_the_filters_and_encode_them() {
        let p = params(|p| {
            p.action = "2fa.*".into();
            p.actor = "a b&c".into();
        });
        let c = AuditCursor {
            created_at: DateTime::from_timestamp_micros(5).unwrap(),
            id: 7,
        };
        assert_eq!(
            page_link(&p, Some(&c)),
            "/audit?actor=a%20b%26c&action=2fa.%2A&before=5_7"
        );
        assert_eq!(page_link(&AuditParams::default(), None), "/audit");
    }
}
