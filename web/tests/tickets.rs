//! Tickets and the support desk against a real PostgreSQL (a fresh
//! database per test): opening, replies, internal notes that never reach
//! a member (pages, the live stream, its replay, audit metadata), status
//! moves by role including refused ones, numbers per tenant under
//! concurrency, another tenant's ticket and the desk for non-staff as "not
//! found", and the Server-Sent Events stream: replay after `Last-Event-ID`
//! without loss or duplicate, delivery from another process through
//! LISTEN/NOTIFY, a stream that outlives the request timeout, and streams
//! that end when their session does. Needs DATABASE_URL (scripts/test.sh
//! starts PostgreSQL).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::time::Duration;

use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::header::{COOKIE, HOST, USER_AGENT};
use axum::http::{Request, StatusCode};
use common::*;
use futures_util::StreamExt;
use sqlx::PgPool;
use tower::ServiceExt;
use zentralink_model::secrets::SecretString;
use zentralink_store::tickets::TicketId;
use zentralink_store::{MIGRATOR, TenantId, UserId};
use zentralink_web::{AppState, app};

const OWNER: &str = "ann@acme.example";
const STAFF: &str = "sam@support.example";

/// How long a test waits for something that should come (a failure, not a measurement).
const PATIENCE: Duration = Duration::from_secs(20);

/// A harness whose state the test holds (to shorten the streams'
/// keep-alive and look at the hub).
fn harness_with_state(pool: PgPool) -> (Harness, AppState) {
    let mut h = harness(pool);
    let state = AppState::with_clock(h.store.clone(), h.config.clone(), h.clock.clone()).unwrap();
    h.app = app(state.clone());
    (h, state)
}

fn assert_redirect(r: &Resp, to: &str) {
    assert_eq!(
        r.status,
        StatusCode::SEE_OTHER,
        "expected a redirect to {to}: {}",
        r.body
    );
    assert_eq!(r.location(), Some(to));
}

/// Templates escape `/` as `&#x2f;`; browsers read it back as `/`.
fn text(html: &str) -> String {
    html.replace("&#x2f;", "/")
}

async fn user(h: &Harness, email: &str) -> UserId {
    let hash = zentralink_web::password::PasswordHasher::new(1)
        .unwrap()
        .hash(&SecretString::new(PASSWORD))
        .await
        .unwrap();
    match h.store.user_credentials_by_email(email).await.unwrap() {
        Some(c) => c.id,
        None => h.store.create_user(email, email, &hash).await.unwrap(),
    }
}

async fn member(h: &Harness, tenant: TenantId, email: &str, role: &str) -> UserId {
    let id = user(h, email).await;
    h.store.set_membership(tenant, id, role).await.unwrap();
    id
}

async fn signed_in(h: &Harness, email: &str) -> Browser {
    let mut b = h.browser();
    assert_redirect(&b.login(email, PASSWORD).await, "/dashboard");
    b
}

/// One of the platform's staff, signed in with a second factor.
async fn staff(h: &Harness, email: &str) -> Browser {
    user(h, email).await;
    h.store.set_platform_admin(email, true).await.unwrap();
    let mut b = signed_in(h, email).await;
    enrol(h, &mut b).await;
    b
}

/// Opens a ticket through the form; returns its id.
async fn open(b: &mut Browser, subject: &str, body: &str) -> TicketId {
    let csrf = b.get("/tickets/new").await.csrf();
    let r = b
        .post(
            "/tickets",
            &[
                ("subject", subject),
                ("body", body),
                ("priority", "HIGH"),
                ("zone", ""),
                ("change_request", ""),
                ("csrf", &csrf),
            ],
        )
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    let at = r.location().unwrap().to_owned();
    at.strip_prefix("/tickets/").unwrap().parse().unwrap()
}

async fn reply(b: &mut Browser, ticket: TicketId, body: &str) -> Resp {
    let csrf = b.session_csrf().await;
    b.post(
        &format!("/tickets/{ticket}/comments"),
        &[("body", body), ("csrf", &csrf)],
    )
    .await
}

async fn member_moves(b: &mut Browser, ticket: TicketId, to: &str) -> Resp {
    let csrf = b.session_csrf().await;
    b.post(
        &format!("/tickets/{ticket}/status"),
        &[("to", to), ("csrf", &csrf)],
    )
    .await
}

async fn staff_writes(b: &mut Browser, ticket: TicketId, kind: &str, body: &str) -> Resp {
    let csrf = b.session_csrf().await;
    let r = b
        .post(
            &format!("/support/tickets/{ticket}/comments"),
            &[("body", body), ("kind", kind), ("csrf", &csrf)],
        )
        .await;
    assert_redirect(&r, &format!("/support/tickets/{ticket}#reply"));
    r
}

async fn staff_moves(b: &mut Browser, ticket: TicketId, to: &str) -> Resp {
    let csrf = b.session_csrf().await;
    b.post(
        &format!("/support/tickets/{ticket}/status"),
        &[("to", to), ("csrf", &csrf)],
    )
    .await
}

async fn status_of(h: &Harness, ticket: TicketId) -> String {
    h.store.desk_ticket(ticket).await.unwrap().status
}

/// One Server-Sent Event.
#[derive(Debug, Clone)]
struct Sse {
    id: i64,
    event: String,
    data: serde_json::Value,
}

/// A live stream read frame by frame.
struct Stream {
    body: axum::body::BodyDataStream,
    buffer: String,
    /// Keep-alive comments seen.
    comments: usize,
}

/// Opens an event stream as the browser `b` (its cookies), optionally
/// resuming after `last_event_id`.
async fn stream(b: &Browser, path: &str, last_event_id: Option<i64>) -> (StatusCode, Stream) {
    let mut request = Request::get(path).body(Body::empty()).unwrap();
    let headers = request.headers_mut();
    headers.insert(HOST, HOST_NAME.parse().unwrap());
    headers.insert(USER_AGENT, USER_AGENT_TEXT.parse().unwrap());
    let jar: Vec<String> = b.cookies.iter().map(|(k, v)| format!("{k}={v}")).collect();
    headers.insert(COOKIE, jar.join("; ").parse().unwrap());
    if let Some(id) = last_event_id {
        headers.insert("last-event-id", id.to_string().parse().unwrap());
    }
    request.extensions_mut().insert(ConnectInfo(b.ip));
    let response = b.app.clone().oneshot(request).await.unwrap();
    let status = response.status();
    if status == StatusCode::OK {
        assert_eq!(
            response.headers().get("content-type").unwrap(),
            "text/event-stream"
        );
    }
    (
        status,
        Stream {
            body: response.into_body().into_data_stream(),
            buffer: String::new(),
            comments: 0,
        },
    )
}

impl Stream {
    /// The next frame: `Some(event)`, `None` for a comment; panics when the
    /// stream ends or nothing comes within [`PATIENCE`].
    async fn frame(&mut self) -> Option<Sse> {
        match self.frame_or_end().await {
            Ok(frame) => frame,
            Err(()) => panic!("the stream ended"),
        }
    }

    async fn frame_or_end(&mut self) -> Result<Option<Sse>, ()> {
        loop {
            if let Some(end) = self.buffer.find("\n\n") {
                let raw: String = self.buffer.drain(..end + 2).collect();
                return Ok(parse_frame(&raw, &mut self.comments));
            }
            match tokio::time::timeout(PATIENCE, self.body.next()).await {
                Err(_) => panic!("nothing came on the stream within {PATIENCE:?}"),
                Ok(None) => return Err(()),
                Ok(Some(chunk)) => self
                    .buffer
                    .push_str(&String::from_utf8_lossy(&chunk.unwrap())),
            }
        }
    }

    /// The next event (keep-alive comments skipped).
    async fn next(&mut self) -> Sse {
        loop {
            if let Some(event) = self.frame().await {
                return event;
            }
        }
    }

    /// Reads until the server ends the stream; the events on the way.
    async fn until_end(&mut self) -> Vec<Sse> {
        let mut seen = Vec::new();
        while let Ok(frame) = self.frame_or_end().await {
            seen.extend(frame);
        }
        seen
    }
}

fn parse_frame(raw: &str, comments: &mut usize) -> Option<Sse> {
    let (mut id, mut event, mut data) = (None, String::new(), String::new());
    for line in raw.lines() {
        if line.starts_with(':') {
            *comments += 1;
        } else if let Some(v) = line.strip_prefix("id:") {
            id = Some(v.trim().parse().unwrap());
        } else if let Some(v) = line.strip_prefix("event:") {
            event = v.trim().to_owned();
        } else if let Some(v) = line.strip_prefix("data:") {
            data.push_str(v.strip_prefix(' ').unwrap_or(v));
        }
    }
    id.map(|id| Sse {
        id,
        event,
        data: serde_json::from_str(&data).unwrap(),
    })
}

fn body_of(e: &Sse) -> &str {
    e.data["body"].as_str().unwrap_or_default()
}

/// Tenant "acme" with its owner signed in, a MEMBER, a VIEWER, and a staff member.
struct Desk {
    owner: Browser,
    tenant: TenantId,
    desk: Browser,
}

async fn desk(h: &Harness) -> Desk {
    let (tenant, _) = h.owner("acme", OWNER).await;
    let owner = signed_in(h, OWNER).await;
    let desk = staff(h, STAFF).await;
    Desk {
        owner,
        tenant,
        desk,
    }
}

#[sqlx::test(migrator = "MIGRATOR")]
async fn a_member_opens_a_ticket_and_staff_answer_it_on_the_desk(pool: PgPool) {
    let h = harness(pool);
    let Desk {
        mut owner,
        mut desk,
        tenant,
    } = desk(&h).await;
    let zone = h
        .store
        .upsert_zone(tenant, "dns", "example-com", "example.com.", None)
        .await
        .unwrap();

    // The form offers the tenant's zones; a domain-bound ticket names its zone.
    let form = owner.get("/tickets/new").await;
    assert_eq!(form.status, StatusCode::OK);
    assert!(form.body.contains("example.com."), "{}", form.body);
    let csrf = form.csrf();
    let r = owner
        .post(
            "/tickets",
            &[
                ("subject", "MX change stuck"),
                ("body", "Our MX change is <b>pending</b> since Monday."),
                ("priority", "URGENT"),
                ("zone", &zone.to_string()),
                ("change_request", ""),
                ("csrf", &csrf),
            ],
        )
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    let ticket: TicketId = r.location().unwrap()[9..].parse().unwrap();
    let page = owner.get(&format!("/tickets/{ticket}")).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.body.contains("#1 MX change stuck"), "{}", page.body);
    assert!(page.body.contains("example.com."));
    // What members write is text, escaped.
    assert!(page.body.contains("&lt;b&gt;pending&lt;"), "{}", page.body);
    assert!(!page.body.contains("<b>pending"));
    let record = h.store.ticket(tenant, ticket).await.unwrap();
    assert_eq!((record.number, record.priority.as_str()), (1, "URGENT"));
    assert_eq!(record.zone_id, Some(zone));
    assert_eq!(record.domain.as_deref(), Some("example.com."));
    assert_eq!(record.customer_user_id, None);

    // A ticket about the account is bound to the member who opened it.
    let second = open(&mut owner, "Invoice address", "Please change it.").await;
    let record = h.store.ticket(tenant, second).await.unwrap();
    assert_eq!(record.number, 2);
    assert!(record.customer_user_id.is_some());
    assert_eq!(record.domain, None);

    // The list shows both; filters by status.
    let list = owner.get("/tickets").await;
    assert!(list.body.contains("MX change stuck") && list.body.contains("Invoice address"));

    let closed = owner.get("/tickets?status=CLOSED").await;
    assert!(!closed.body.contains("MX change stuck"), "{}", closed.body);
    member(&h, tenant, "mo@acme.example", "MEMBER").await;
    let mut mo = signed_in(&h, "mo@acme.example").await;
    let theirs = mo.get("/tickets?mine=1").await;
    assert_eq!(theirs.status, StatusCode::OK);
    assert!(!theirs.body.contains("Invoice address"), "{}", theirs.body);
    assert!(mo.get("/tickets").await.body.contains("Invoice address"));
    assert_eq!(
        owner.get("/tickets?status=DONE").await.status,
        StatusCode::BAD_REQUEST
    );

    // The desk lists every tenant's tickets; staff answer.
    let desk_page = desk.get("/support").await;
    assert_eq!(desk_page.status, StatusCode::OK, "{}", desk_page.body);
    assert!(
        desk_page.body.contains("MX change stuck"),
        "{}",
        desk_page.body
    );
    staff_writes(&mut desk, ticket, "reply", "We are looking into it.").await;
    let page = owner.get(&format!("/tickets/{ticket}")).await;
    assert!(
        page.body.contains("We are looking into it."),
        "{}",
        page.body
    );

    // Staff assign to one of the staff.
    let staff_id = h
        .store
        .user_credentials_by_email(STAFF)
        .await
        .unwrap()
        .unwrap()
        .id;
    let csrf = desk.session_csrf().await;
    let r = desk
        .post(
            &format!("/support/tickets/{ticket}/assign"),
            &[("assignee", &staff_id.to_string()), ("csrf", &csrf)],
        )
        .await;
    assert_redirect(&r, &format!("/support/tickets/{ticket}"));
    assert_eq!(
        h.store.desk_ticket(ticket).await.unwrap().assignee_id,
        Some(staff_id)
    );
    let mine = desk.get("/support?mine=1").await;
    assert!(mine.body.contains("MX change stuck") && !mine.body.contains("Invoice address"));
    // Only staff can be assigned.
    let owner_id = h
        .store
        .user_credentials_by_email(OWNER)
        .await
        .unwrap()
        .unwrap()
        .id;
    let r = desk
        .post(
            &format!("/support/tickets/{ticket}/assign"),
            &[("assignee", &owner_id.to_string()), ("csrf", &csrf)],
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        h.store.desk_ticket(ticket).await.unwrap().assignee_id,
        Some(staff_id)
    );

    // Empty comments and unknown statuses are refused.
    assert_eq!(
        reply(&mut owner, ticket, "   ").await.status,
        StatusCode::UNPROCESSABLE_ENTITY
    );
    assert_eq!(
        member_moves(&mut owner, ticket, "DONE").await.status,
        StatusCode::BAD_REQUEST
    );
}

#[sqlx::test(migrator = "MIGRATOR")]
async fn internal_notes_never_reach_a_member_page_stream_replay_or_audit_metadata(pool: PgPool) {
    let h = harness(pool);
    let Desk {
        mut owner,
        mut desk,
        ..
    } = desk(&h).await;
    let ticket = open(&mut owner, "Zone transfer fails", "AXFR refused.").await;
    const NOTE: &str = "Internal: customer's secondary is misconfigured, do not tell them yet";
    staff_writes(&mut desk, ticket, "internal", NOTE).await;
    staff_writes(
        &mut desk,
        ticket,
        "reply",
        "Could you send us the secondary's address?",
    )
    .await;

    // Staff see the note, marked.
    let staff_page = text(&desk.get(&format!("/support/tickets/{ticket}")).await.body);
    assert!(staff_page.contains("misconfigured"), "{staff_page}");
    assert!(staff_page.contains("Internal note"));

    // Members see the reply, never the note: ticket page, list, new-ticket page.
    for path in [
        format!("/tickets/{ticket}"),
        "/tickets".into(),
        "/tickets/new".into(),
    ] {
        let page = text(&owner.get(&path).await.body);
        assert!(!page.contains("misconfigured"), "{path}: {page}");
        assert!(!page.contains("Internal note"), "{path}");
    }
    let page = text(&owner.get(&format!("/tickets/{ticket}")).await.body);
    assert!(page.contains("send us the secondary"), "{page}");

    // The member's stream replays everything but the note.
    let (status, mut live) = stream(&owner, &format!("/tickets/{ticket}/events"), None).await;
    assert_eq!(status, StatusCode::OK);
    let opened = live.next().await;
    assert_eq!(opened.data["kind"], "OPENED");
    let answer = live.next().await;
    assert_eq!(
        body_of(&answer),
        "Could you send us the secondary's address?"
    );
    // Live: a note, then a reply; the stream's next event is the reply.
    staff_writes(
        &mut desk,
        ticket,
        "internal",
        "Another internal note, misconfigured",
    )
    .await;
    staff_writes(&mut desk, ticket, "reply", "Found it, fixed.").await;
    let next = live.next().await;
    assert_eq!(body_of(&next), "Found it, fixed.");
    assert!(!next.data["internal"].as_bool().unwrap());

    // The staff stream carries the notes.
    let (status, mut staff_live) =
        stream(&desk, &format!("/support/tickets/{ticket}/events"), None).await;
    assert_eq!(status, StatusCode::OK);
    let mut bodies = Vec::new();
    for _ in 0..5 {
        let e = staff_live.next().await;
        bodies.push((
            body_of(&e).to_owned(),
            e.data["internal"].as_bool().unwrap(),
        ));
    }
    assert!(bodies.contains(&(NOTE.to_owned(), true)), "{bodies:?}");

    // Audit events: every action with its number and `internal`, never a body.
    let rows = h.audit_rows().await;
    let tickets: Vec<&String> = rows.iter().filter(|r| r.contains("\"ticket.")).collect();
    assert_eq!(tickets.len(), 5, "{tickets:#?}");
    for row in &tickets {
        assert!(
            !row.contains("misconfigured") && !row.contains("secondary"),
            "{row}"
        );
        assert!(!row.contains("AXFR") && !row.contains("Found it"), "{row}");
        let json: serde_json::Value = serde_json::from_str(row).unwrap();
        assert_eq!(json["metadata"]["number"], 1, "{row}");
        assert!(json["metadata"]["internal"].is_boolean(), "{row}");
        assert!(
            row.contains("192.0.2.10") && row.contains(USER_AGENT_TEXT),
            "{row}"
        );
    }
    let internal = tickets
        .iter()
        .map(|r| serde_json::from_str::<serde_json::Value>(r).unwrap())
        .filter(|j| j["metadata"]["internal"] == true)
        .count();
    assert_eq!(internal, 2);
}

#[sqlx::test(migrator = "MIGRATOR")]
async fn status_moves_follow_the_table_and_refused_ones_change_nothing(pool: PgPool) {
    let h = harness(pool);
    let Desk {
        mut owner,
        mut desk,
        tenant,
    } = desk(&h).await;
    member(&h, tenant, "mo@acme.example", "MEMBER").await;
    member(&h, tenant, "vic@acme.example", "VIEWER").await;
    let mut mo = signed_in(&h, "mo@acme.example").await;
    let mut vic = signed_in(&h, "vic@acme.example").await;
    let ticket = open(&mut mo, "DNSSEC", "Please sign our zone.").await;
    let actions_before = h.audit_actions().await.len();

    // A VIEWER reads, and is refused every write.
    assert_eq!(
        vic.get(&format!("/tickets/{ticket}")).await.status,
        StatusCode::OK
    );
    assert_eq!(
        reply(&mut vic, ticket, "me too").await.status,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        member_moves(&mut vic, ticket, "CLOSED").await.status,
        StatusCode::FORBIDDEN
    );
    let csrf = vic.session_csrf().await;
    let r = vic
        .post(
            "/tickets",
            &[
                ("subject", "x"),
                ("body", "y"),
                ("priority", "LOW"),
                ("csrf", &csrf),
            ],
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    // Members cannot set the desk's states.
    for to in ["IN_PROGRESS", "WAITING_ON_CUSTOMER", "RESOLVED"] {
        let r = member_moves(&mut mo, ticket, to).await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "{to}");
        assert_eq!(status_of(&h, ticket).await, "OPEN");
    }
    assert_eq!(
        h.audit_actions().await.len(),
        actions_before,
        "refusals write nothing"
    );
    assert_eq!(
        h.store.ticket_events(ticket, 0, true).await.unwrap().len(),
        1
    );

    // Staff: in progress, then waiting on the customer.
    assert_redirect(
        &staff_moves(&mut desk, ticket, "IN_PROGRESS").await,
        &format!("/support/tickets/{ticket}"),
    );
    staff_moves(&mut desk, ticket, "WAITING_ON_CUSTOMER").await;
    assert_eq!(status_of(&h, ticket).await, "WAITING_ON_CUSTOMER");
    // The customer's reply puts it back in the desk's queue.
    assert_redirect(
        &reply(&mut mo, ticket, "Here is the DS record.").await,
        &format!("/tickets/{ticket}#reply"),
    );
    assert_eq!(status_of(&h, ticket).await, "OPEN");
    // Resolved by staff; a member reopens it, then closes it.
    staff_moves(&mut desk, ticket, "RESOLVED").await;
    assert_redirect(
        &member_moves(&mut owner, ticket, "OPEN").await,
        &format!("/tickets/{ticket}"),
    );
    assert_eq!(status_of(&h, ticket).await, "OPEN");
    member_moves(&mut mo, ticket, "CLOSED").await;
    assert_eq!(status_of(&h, ticket).await, "CLOSED");
    // Closed: members neither reopen nor reply; staff reopen.
    assert_eq!(
        member_moves(&mut owner, ticket, "OPEN").await.status,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        reply(&mut owner, ticket, "hello?").await.status,
        StatusCode::FORBIDDEN
    );
    assert_eq!(status_of(&h, ticket).await, "CLOSED");
    // A move the table does not have is refused for staff too.
    assert_eq!(
        staff_moves(&mut desk, ticket, "RESOLVED").await.status,
        StatusCode::FORBIDDEN
    );
    staff_moves(&mut desk, ticket, "OPEN").await;
    assert_eq!(status_of(&h, ticket).await, "OPEN");

    let moves: Vec<(String, String)> = h
        .store
        .ticket_events(ticket, 0, true)
        .await
        .unwrap()
        .into_iter()
        .filter(|e| e.kind == "STATUS")
        .map(|e| (e.from_status.unwrap(), e.to_status.unwrap()))
        .collect();
    let expected = [
        ("OPEN", "IN_PROGRESS"),
        ("IN_PROGRESS", "WAITING_ON_CUSTOMER"),
        ("WAITING_ON_CUSTOMER", "OPEN"),
        ("OPEN", "RESOLVED"),
        ("RESOLVED", "OPEN"),
        ("OPEN", "CLOSED"),
        ("CLOSED", "OPEN"),
    ];
    assert_eq!(
        moves,
        expected.map(|(a, b)| (a.to_owned(), b.to_owned())).to_vec()
    );
    let changed = h
        .audit_rows()
        .await
        .into_iter()
        .filter(|r| r.contains("\"ticket.status_changed\""))
        .count();
    assert_eq!(changed, 6, "the reply's move is recorded with the reply");
}

#[sqlx::test(migrator = "MIGRATOR")]
async fn concurrent_openings_get_distinct_numbers_per_tenant(pool: PgPool) {
    let h = harness(pool);
    let (acme, _) = h.owner("acme", OWNER).await;
    let (_other, _) = h.owner("other", "olga@other.example").await;
    let mut b = signed_in(&h, OWNER).await;
    let csrf = b.session_csrf().await;
    let mut tasks = Vec::new();
    for i in 0..16 {
        let mut copy = Browser {
            app: b.app.clone(),
            cookies: b.cookies.clone(),
            ip: b.ip,
            origin: b.origin.clone(),
            seen: Vec::new(),
        };
        let csrf = csrf.clone();
        tasks.push(tokio::spawn(async move {
            let subject = format!("Concurrent {i}");
            let r = copy
                .post(
                    "/tickets",
                    &[
                        ("subject", &subject),
                        ("body", "race"),
                        ("priority", "LOW"),
                        ("csrf", &csrf),
                    ],
                )
                .await;
            assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let mut numbers: Vec<i64> = h
        .store
        .tickets(
            acme,
            &zentralink_store::tickets::TicketFilter {
                limit: 100,
                ..Default::default()
            },
        )
        .await
        .unwrap()
        .into_iter()
        .map(|t| t.number)
        .collect();
    numbers.sort_unstable();
    assert_eq!(numbers, (1..=16).collect::<Vec<i64>>());
    // Another tenant starts at #1.
    let mut olga = signed_in(&h, "olga@other.example").await;
    let theirs = open(&mut olga, "First", "one").await;
    let other = h.store.tenant_by_slug("other").await.unwrap().id;
    assert_eq!(h.store.ticket(other, theirs).await.unwrap().number, 1);
}

#[sqlx::test(migrator = "MIGRATOR")]
async fn another_tenant_s_ticket_and_the_desk_for_non_staff_are_not_found(pool: PgPool) {
    let h = harness(pool);
    let Desk { mut owner, .. } = desk(&h).await;
    let ticket = open(&mut owner, "Secret project", "Details of acme.").await;
    h.owner("other", "olga@other.example").await;
    let mut olga = signed_in(&h, "olga@other.example").await;
    let missing = TicketId::new();
    let csrf = olga.session_csrf().await;
    for id in [ticket, missing] {
        for path in [format!("/tickets/{id}"), format!("/tickets/{id}/events")] {
            let r = olga.get(&path).await;
            assert_eq!(r.status, StatusCode::NOT_FOUND, "{path}");
            assert!(!r.body.contains("Secret project"));
        }
        let r = olga
            .post(
                &format!("/tickets/{id}/comments"),
                &[("body", "hi"), ("csrf", &csrf)],
            )
            .await;
        assert_eq!(r.status, StatusCode::NOT_FOUND);
        let r = olga
            .post(
                &format!("/tickets/{id}/status"),
                &[("to", "CLOSED"), ("csrf", &csrf)],
            )
            .await;
        assert_eq!(r.status, StatusCode::NOT_FOUND);
    }
    assert!(!olga.get("/tickets").await.body.contains("Secret project"));
    // Another tenant's zone cannot be named in a new ticket.
    let acme = h.store.tenant_by_slug("acme").await.unwrap().id;
    let zone = h
        .store
        .upsert_zone(acme, "dns", "acme-com", "acme.example.", None)
        .await
        .unwrap();
    let r = olga
        .post(
            "/tickets",
            &[
                ("subject", "Sneaky"),
                ("body", "about acme's zone"),
                ("priority", "LOW"),
                ("zone", &zone.to_string()),
                ("csrf", &csrf),
            ],
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(!r.body.contains("acme.example."));
    assert_eq!(status_of(&h, ticket).await, "OPEN");
    assert_eq!(
        h.store.ticket_events(ticket, 0, true).await.unwrap().len(),
        1
    );

    // The desk is not found for members, owners included.
    for b in [&mut owner, &mut olga] {
        let csrf = b.session_csrf().await;
        for path in [
            "/support".to_owned(),
            format!("/support/tickets/{ticket}"),
            format!("/support/tickets/{ticket}/events"),
        ] {
            assert_eq!(b.get(&path).await.status, StatusCode::NOT_FOUND, "{path}");
        }
        for (path, field) in [
            ("comments", "body"),
            ("status", "to"),
            ("assign", "assignee"),
        ] {
            let r = b
                .post(
                    &format!("/support/tickets/{ticket}/{path}"),
                    &[(field, "CLOSED"), ("kind", "internal"), ("csrf", &csrf)],
                )
                .await;
            assert_eq!(r.status, StatusCode::NOT_FOUND, "{path}");
        }
    }
    assert_eq!(status_of(&h, ticket).await, "OPEN");
    // A visitor is sent to sign in.
    let mut visitor = h.browser();
    assert_redirect(
        &visitor.get(&format!("/tickets/{ticket}/events")).await,
        "/login",
    );
    assert_redirect(&visitor.get("/support").await, "/login");
}

#[sqlx::test(migrator = "MIGRATOR")]
async fn a_stream_resumed_with_last_event_id_loses_nothing_and_repeats_nothing(pool: PgPool) {
    let (h, state) = harness_with_state(pool);
    let Desk {
        mut owner,
        mut desk,
        ..
    } = desk(&h).await;
    let ticket = open(&mut owner, "Resume", "first").await;
    staff_writes(&mut desk, ticket, "reply", "second").await;
    let path = format!("/tickets/{ticket}/events");

    // Read two events, then disconnect.
    let (_, mut live) = stream(&owner, &path, None).await;
    let first = live.next().await;
    let second = live.next().await;
    assert_eq!((body_of(&first), body_of(&second)), ("first", "second"));
    assert_eq!(first.event, "ticket");
    assert!(second.id > first.id);
    assert_eq!(state.tickets().watched_tickets(), 1);
    drop(live);
    // The last viewer left: the ticket's channel is gone.
    assert_eq!(state.tickets().watched_tickets(), 0);

    // Three more while away (and an internal note).
    reply(&mut owner, ticket, "third").await;
    staff_writes(&mut desk, ticket, "internal", "not for you").await;
    staff_writes(&mut desk, ticket, "reply", "fourth").await;
    reply(&mut owner, ticket, "fifth").await;

    // Back with Last-Event-ID: exactly those three, then the live ones.
    let (_, mut live) = stream(&owner, &path, Some(second.id)).await;
    let replayed: Vec<String> = [live.next().await, live.next().await, live.next().await]
        .iter()
        .map(|e| body_of(e).to_owned())
        .collect();
    assert_eq!(replayed, ["third", "fourth", "fifth"]);
    staff_writes(&mut desk, ticket, "reply", "sixth").await;
    let sixth = live.next().await;
    assert_eq!(body_of(&sixth), "sixth");
    // `?after=` (what the page's script sends first) works the same way.
    let (_, mut from_page) = stream(&owner, &format!("{path}?after={}", sixth.id), None).await;
    reply(&mut owner, ticket, "seventh").await;
    assert_eq!(body_of(&from_page.next().await), "seventh");
    assert_eq!(body_of(&live.next().await), "seventh");
}

#[sqlx::test(migrator = "MIGRATOR")]
async fn a_comment_written_by_one_process_reaches_the_viewers_of_another(pool: PgPool) {
    let (h, _state) = harness_with_state(pool);
    let Desk {
        mut owner,
        desk: mut staff_b,
        ..
    } = desk(&h).await;
    let ticket = open(&mut owner, "Two processes", "hello").await;
    // A second web process: its own state, hub and listener, same database.
    let other = AppState::with_clock(h.store.clone(), h.config.clone(), h.clock.clone()).unwrap();
    let mut desk_elsewhere = Browser {
        app: app(other.clone()),
        cookies: staff_b.cookies.clone(),
        ip: staff_b.ip,
        origin: staff_b.origin.clone(),
        seen: Vec::new(),
    };
    let (_, mut live) = stream(&owner, &format!("/tickets/{ticket}/events"), None).await;
    assert_eq!(body_of(&live.next().await), "hello");
    staff_writes(
        &mut desk_elsewhere,
        ticket,
        "reply",
        "from the other process",
    )
    .await;
    assert_eq!(body_of(&live.next().await), "from the other process");
    // And the other way round, for a staff viewer over there.
    let (_, mut staff_live) = stream(
        &desk_elsewhere,
        &format!("/support/tickets/{ticket}/events?after=0"),
        None,
    )
    .await;
    for _ in 0..2 {
        staff_live.next().await;
    }
    reply(&mut owner, ticket, "back to you").await;
    assert_eq!(body_of(&staff_live.next().await), "back to you");
    let _ = &mut staff_b;
}

#[sqlx::test(migrator = "MIGRATOR")]
async fn a_stream_ends_when_its_member_is_removed_or_signs_out(pool: PgPool) {
    let (h, state) = harness_with_state(pool);
    state.tickets().set_keep_alive(Duration::from_millis(100));
    let Desk {
        mut owner, tenant, ..
    } = desk(&h).await;
    let mo_id = member(&h, tenant, "mo@acme.example", "MEMBER").await;
    let mo = signed_in(&h, "mo@acme.example").await;
    let ticket = open(&mut owner, "Leaving", "bye").await;
    let path = format!("/tickets/{ticket}/events");

    // Removed from the tenant: the open stream ends, a new one is not found.
    let (_, mut live) = stream(&mo, &path, None).await;
    assert_eq!(body_of(&live.next().await), "bye");
    let csrf = owner.session_csrf().await;
    let r = owner
        .post(&format!("/members/{mo_id}/remove"), &[("csrf", &csrf)])
        .await;
    assert!(
        r.status.is_redirection() || r.status.is_success(),
        "{}",
        r.body
    );
    live.until_end().await;
    let (status, _) = stream(&mo, &path, None).await;
    assert!(
        status == StatusCode::NOT_FOUND || status == StatusCode::SEE_OTHER,
        "{status}"
    );

    // Signed out: the stream ends too.
    let (_, mut live) = stream(&owner, &path, None).await;
    live.next().await;
    let csrf = owner.session_csrf().await;
    owner.post("/logout", &[("csrf", &csrf)]).await;
    live.until_end().await;
}

#[sqlx::test(migrator = "MIGRATOR")]
async fn a_stream_outlives_the_request_timeout_with_keep_alive_comments(pool: PgPool) {
    let (h, _state) = harness_with_state(pool);
    let Desk {
        mut owner,
        mut desk,
        ..
    } = desk(&h).await;
    let ticket = open(&mut owner, "Long watch", "start").await;
    let (_, mut live) = stream(&owner, &format!("/tickets/{ticket}/events"), None).await;
    live.next().await;
    // Past the 30 s request timeout, with a keep-alive every 15 s.
    let waited = zentralink_web::hardening::REQUEST_TIMEOUT + Duration::from_secs(3);
    let started = std::time::Instant::now();
    while started.elapsed() < waited {
        assert!(
            live.frame().await.is_none(),
            "only keep-alives while nothing happens"
        );
    }
    assert!(live.comments >= 2, "{} keep-alive comments", live.comments);
    staff_writes(&mut desk, ticket, "reply", "still here").await;
    assert_eq!(body_of(&live.next().await), "still here");
}
