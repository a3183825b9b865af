//! A local stand-in for the Hetzner DNS Public API v1, for provider tests:
//! an axum server on 127.0.0.1 with in-memory zones and records, the
//! documented paths, `Auth-API-Token` check, `meta.pagination` (with a small
//! page size so paging is exercised), the documented error bodies, and fault
//! injection (500s, 429 with Retry-After, delays, a failing record write).
//! Does I/O (a TCP listener on loopback).

use std::collections::{BTreeSet, HashMap};
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::{Path, Query, Request, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::{Value, json};
use tokio::sync::oneshot;

/// The token the fake accepts.
pub const TOKEN: &str = "hetzner-test-token-9f3b2c";

/// Record types the API lets a client create.
const CREATABLE: [&str; 14] = [
    "A", "AAAA", "NS", "MX", "CNAME", "RP", "TXT", "SOA", "HINFO", "SRV", "DANE", "TLSA", "DS",
    "CAA",
];

#[derive(Debug, Clone)]
struct Zone {
    id: String,
    name: String,
    ttl: u32,
}

#[derive(Debug, Clone)]
struct Record {
    id: String,
    zone_id: String,
    rtype: String,
    name: String,
    value: String,
    ttl: Option<u32>,
}

impl Record {
    fn to_json(&self) -> Value {
        let mut v = json!({
            "id": self.id,
            "type": self.rtype,
            "name": self.name,
            "value": self.value,
            "zone_id": self.zone_id,
            "created": "2026-01-01 00:00:00.000 +0000 UTC",
            "modified": "2026-01-01 00:00:00.000 +0000 UTC",
        });
        if let Some(ttl) = self.ttl {
            v["ttl"] = json!(ttl);
        }
        v
    }
}

#[derive(Debug)]
struct Inner {
    zones: Vec<Zone>,
    records: Vec<Record>,
    next_id: u64,
    max_per_page: usize,
    fail_requests: u32,
    fail_writes: u32,
    rate_limited: u32,
    delay: Duration,
    failing_names: BTreeSet<String>,
    /// Writes still to succeed before one is answered 500.
    writes_before_failure: Option<u32>,
    log: Vec<String>,
}

impl Inner {
    fn new_id(&mut self) -> String {
        self.next_id += 1;
        format!("{:022x}", self.next_id * 0x9e37_79b9)
    }

    fn zone(&self, id: &str) -> Option<&Zone> {
        self.zones.iter().find(|z| z.id == id)
    }
}

type Shared = Arc<Mutex<Inner>>;

fn lock(shared: &Shared) -> MutexGuard<'_, Inner> {
    shared.lock().unwrap_or_else(|e| e.into_inner())
}

/// The running fake. Dropping it stops the server.
#[derive(Debug)]
pub struct FakeHetzner {
    addr: SocketAddr,
    shared: Shared,
    _stop: oneshot::Sender<()>,
}

impl FakeHetzner {
    /// Starts the server on a free loopback port.
    pub async fn start() -> Self {
        let shared: Shared = Arc::new(Mutex::new(Inner {
            zones: Vec::new(),
            records: Vec::new(),
            next_id: 0,
            max_per_page: 3,
            fail_requests: 0,
            fail_writes: 0,
            rate_limited: 0,
            delay: Duration::ZERO,
            failing_names: BTreeSet::new(),
            writes_before_failure: None,
            log: Vec::new(),
        }));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the fake Hetzner API to 127.0.0.1");
        let addr = listener.local_addr().expect("local address");
        let (stop, stopped) = oneshot::channel::<()>();
        let app = router(shared.clone());
        tokio::spawn(async move {
            let _ = axum::serve(listener, app)
                .with_graceful_shutdown(async move {
                    let _ = stopped.await;
                })
                .await;
        });
        Self {
            addr,
            shared,
            _stop: stop,
        }
    }

    /// The API base URL, as `spec.hetzner.url` takes it.
    pub fn url(&self) -> String {
        format!("http://{}/api/v1", self.addr)
    }

    /// Creates a zone the way Hetzner does: with an SOA and three NS records.
    pub fn add_zone(&self, name: &str) -> String {
        let mut inner = lock(&self.shared);
        let id = inner.new_id();
        let name = name.trim_end_matches('.').to_ascii_lowercase();
        inner.zones.push(Zone {
            id: id.clone(),
            name,
            ttl: 86_400,
        });
        let defaults = [
            (
                "SOA",
                "hydrogen.ns.hetzner.com. dns.hetzner.com. 2026010101 86400 10800 3600000 3600",
            ),
            ("NS", "hydrogen.ns.hetzner.com."),
            ("NS", "oxygen.ns.hetzner.com."),
            ("NS", "helium.ns.hetzner.de."),
        ];
        for (rtype, value) in defaults {
            let rid = inner.new_id();
            inner.records.push(Record {
                id: rid,
                zone_id: id.clone(),
                rtype: rtype.into(),
                name: "@".into(),
                value: value.into(),
                ttl: None,
            });
        }
        id
    }

    /// Adds a record directly (as someone using the DNS console would).
    pub fn add_record(&self, zone: &str, name: &str, rtype: &str, value: &str, ttl: Option<u32>) {
        let mut inner = lock(&self.shared);
        let zone = zone.trim_end_matches('.').to_ascii_lowercase();
        let zone_id = inner
            .zones
            .iter()
            .find(|z| z.name == zone)
            .map(|z| z.id.clone())
            .unwrap_or_else(|| panic!("the fake has no zone {zone}"));
        let id = inner.new_id();
        inner.records.push(Record {
            id,
            zone_id,
            rtype: rtype.into(),
            name: name.into(),
            value: value.into(),
            ttl,
        });
    }

    /// The records of a zone as `name type ttl value` lines, sorted.
    pub fn records(&self, zone: &str) -> Vec<String> {
        let inner = lock(&self.shared);
        let zone = zone.trim_end_matches('.').to_ascii_lowercase();
        let Some(zone) = inner.zones.iter().find(|z| z.name == zone) else {
            return Vec::new();
        };
        let mut out: Vec<String> = inner
            .records
            .iter()
            .filter(|r| r.zone_id == zone.id)
            .map(|r| {
                format!(
                    "{} {} {} {}",
                    r.name,
                    r.rtype,
                    r.ttl.map_or_else(|| "-".into(), |t| t.to_string()),
                    r.value
                )
            })
            .collect();
        out.sort();
        out
    }

    /// Most items per page, whatever the client asks for (default 3).
    pub fn set_max_per_page(&self, n: usize) {
        lock(&self.shared).max_per_page = n.max(1);
    }

    /// The next `n` requests, of any kind, are answered 500.
    pub fn fail_next_requests(&self, n: u32) {
        lock(&self.shared).fail_requests = n;
    }

    /// The next `n` writes (anything but GET) are answered 500, and not applied.
    pub fn fail_next_writes(&self, n: u32) {
        lock(&self.shared).fail_writes = n;
    }

    /// The next `n` requests are answered 429 with `Retry-After: 1`.
    pub fn rate_limit_next(&self, n: u32) {
        lock(&self.shared).rate_limited = n;
    }

    /// Every answer waits this long first.
    pub fn set_delay(&self, delay: Duration) {
        lock(&self.shared).delay = delay;
    }

    /// Writes of records with this (relative) name are answered 500, and not applied.
    pub fn fail_writes_to(&self, name: &str) {
        lock(&self.shared).failing_names.insert(name.to_owned());
    }

    /// After `n` more writes succeed, the next one is answered 500, and not applied.
    pub fn fail_write_after(&self, n: u32) {
        lock(&self.shared).writes_before_failure = Some(n);
    }

    /// Every request received, as `METHOD /path?query`.
    pub fn requests(&self) -> Vec<String> {
        lock(&self.shared).log.clone()
    }

    /// How many requests were received.
    pub fn request_count(&self) -> usize {
        lock(&self.shared).log.len()
    }

    /// How many requests other than GET were received.
    pub fn write_count(&self) -> usize {
        lock(&self.shared)
            .log
            .iter()
            .filter(|l| !l.starts_with("GET "))
            .count()
    }

    /// Forgets the request log.
    pub fn clear_requests(&self) {
        lock(&self.shared).log.clear();
    }
}

fn router(shared: Shared) -> Router {
    let api = Router::new()
        .route("/zones", get(list_zones))
        .route("/records", get(list_records).post(create_record))
        .route(
            "/records/bulk",
            axum::routing::post(bulk_create).put(bulk_update),
        )
        .route(
            "/records/{id}",
            get(get_record).put(update_record).delete(delete_record),
        );
    Router::new()
        .nest("/api/v1", api)
        .layer(middleware::from_fn_with_state(shared.clone(), gate))
        .with_state(shared)
}

fn json_response(status: StatusCode, body: Value) -> Response {
    (status, axum::Json(body)).into_response()
}

/// `{"<resource>": {}, "error": {"message", "code"}}`, the API's error body.
fn api_error(status: StatusCode, resource: &str, message: &str) -> Response {
    json_response(
        status,
        json!({ resource: {}, "error": { "message": message, "code": status.as_u16() } }),
    )
}

/// Logging, delay, injected faults and the token check, before any handler.
async fn gate(State(shared): State<Shared>, request: Request, next: Next) -> Response {
    let method = request.method().clone();
    let delay = {
        let mut inner = lock(&shared);
        inner.log.push(format!("{} {}", method, request.uri()));
        inner.delay
    };
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
    {
        let mut inner = lock(&shared);
        if inner.rate_limited > 0 {
            inner.rate_limited -= 1;
            // The gateway's answer, with the Retry-After it sends.
            let mut response = json_response(
                StatusCode::TOO_MANY_REQUESTS,
                json!({ "message": "API rate limit exceeded" }),
            );
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
            return response;
        }
        if inner.fail_requests > 0 {
            inner.fail_requests -= 1;
            return api_error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "error_detail",
                "internal server error",
            );
        }
        if method != Method::GET && inner.fail_writes > 0 {
            inner.fail_writes -= 1;
            return api_error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "record",
                "internal server error",
            );
        }
        if method != Method::GET {
            match inner.writes_before_failure {
                Some(0) => {
                    inner.writes_before_failure = None;
                    return api_error(
                        StatusCode::INTERNAL_SERVER_ERROR,
                        "record",
                        "internal server error",
                    );
                }
                Some(n) => inner.writes_before_failure = Some(n - 1),
                None => {}
            }
        }
    }
    match request.headers().get("Auth-API-Token") {
        None => json_response(
            StatusCode::UNAUTHORIZED,
            json!({ "message": "No API key found in request" }),
        ),
        Some(v) if v.as_bytes() != TOKEN.as_bytes() => json_response(
            StatusCode::UNAUTHORIZED,
            json!({ "message": "Invalid authentication credentials" }),
        ),
        Some(_) => next.run(request).await,
    }
}

/// Page `page` of `items` and the `meta.pagination` block.
fn paginate<T: Clone>(
    items: &[T],
    query: &HashMap<String, String>,
    max_per_page: usize,
) -> (Vec<T>, Value) {
    let per_page = query
        .get("per_page")
        .and_then(|p| p.parse::<usize>().ok())
        .filter(|p| *p > 0)
        .unwrap_or(max_per_page)
        .min(max_per_page);
    let page = query
        .get("page")
        .and_then(|p| p.parse::<usize>().ok())
        .filter(|p| *p > 0)
        .unwrap_or(1);
    let total = items.len();
    let last_page = total.div_ceil(per_page).max(1);
    let slice = items
        .iter()
        .skip((page - 1) * per_page)
        .take(per_page)
        .cloned()
        .collect();
    let meta = json!({
        "pagination": {
            "page": page,
            "per_page": per_page,
            "previous_page": page.saturating_sub(1).max(1),
            "next_page": (page + 1).min(last_page),
            "last_page": last_page,
            "total_entries": total,
        }
    });
    (slice, meta)
}

fn empty_meta() -> Value {
    json!({ "pagination": { "page": 0, "per_page": 0, "previous_page": 0, "next_page": 0, "last_page": 0, "total_entries": 0 } })
}

async fn list_zones(
    State(shared): State<Shared>,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    let inner = lock(&shared);
    let wanted = query
        .get("name")
        .map(|n| n.trim_end_matches('.').to_ascii_lowercase());
    let zones: Vec<&Zone> = inner
        .zones
        .iter()
        .filter(|z| wanted.as_ref().is_none_or(|w| &z.name == w))
        .collect();
    if zones.is_empty() {
        // What the real API answers for an unknown name, and for an account
        // without zones: 404, not an empty list.
        return json_response(
            StatusCode::NOT_FOUND,
            json!({ "zones": [], "meta": empty_meta(), "error": { "message": "zone not found", "code": 404 } }),
        );
    }
    let (page, meta) = paginate(&zones, &query, inner.max_per_page);
    let zones: Vec<Value> = page
        .iter()
        .map(|z| {
            json!({
                "id": z.id, "name": z.name, "ttl": z.ttl,
                "created": "2026-01-01 00:00:00.000 +0000 UTC",
                "modified": "2026-01-01 00:00:00.000 +0000 UTC",
                "status": "verified", "paused": false, "is_secondary_dns": false,
                "ns": ["hydrogen.ns.hetzner.com", "oxygen.ns.hetzner.com", "helium.ns.hetzner.de"],
                "records_count": inner.records.iter().filter(|r| r.zone_id == z.id).count(),
            })
        })
        .collect();
    json_response(StatusCode::OK, json!({ "zones": zones, "meta": meta }))
}

async fn list_records(
    State(shared): State<Shared>,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    let inner = lock(&shared);
    let zone_id = query.get("zone_id");
    if let Some(id) = zone_id
        && inner.zone(id).is_none()
    {
        return json_response(
            StatusCode::NOT_FOUND,
            json!({ "records": [], "error": { "message": "zone not found", "code": 404 } }),
        );
    }
    let records: Vec<&Record> = inner
        .records
        .iter()
        .filter(|r| zone_id.is_none_or(|z| &r.zone_id == z))
        .collect();
    let (page, meta) = paginate(&records, &query, inner.max_per_page);
    let records: Vec<Value> = page.iter().map(|r| r.to_json()).collect();
    json_response(StatusCode::OK, json!({ "records": records, "meta": meta }))
}

/// A record as a client sent it, checked the way the API checks it.
fn validate(inner: &Inner, body: &Value) -> Result<Record, String> {
    let text = |field: &str| -> Result<String, String> {
        body.get(field)
            .and_then(Value::as_str)
            .map(str::to_owned)
            .ok_or_else(|| format!("missing: {field}"))
    };
    let zone_id = text("zone_id")?;
    if inner.zone(&zone_id).is_none() {
        return Err("zone not found".into());
    }
    let rtype = text("type")?;
    if !CREATABLE.contains(&rtype.as_str()) {
        return Err(format!("invalid type: {rtype}"));
    }
    let name = text("name")?;
    if name.is_empty() {
        return Err("missing: name".into());
    }
    let value = text("value")?;
    if value.trim().is_empty() {
        return Err("missing: value".into());
    }
    let valid = match rtype.as_str() {
        "A" => value.parse::<Ipv4Addr>().is_ok(),
        "AAAA" => value.parse::<Ipv6Addr>().is_ok(),
        "MX" | "SRV" | "CAA" => value.split_whitespace().count() >= 2,
        _ => true,
    };
    if !valid {
        return Err(format!("invalid value for {rtype}: {value}"));
    }
    let ttl = match body.get("ttl") {
        None | Some(Value::Null) => None,
        Some(v) => Some(
            v.as_u64()
                .and_then(|t| u32::try_from(t).ok())
                .ok_or_else(|| format!("invalid ttl: {v}"))?,
        ),
    };
    Ok(Record {
        id: String::new(),
        zone_id,
        rtype,
        name,
        value,
        ttl,
    })
}

async fn create_record(State(shared): State<Shared>, body: axum::body::Bytes) -> Response {
    let mut inner = lock(&shared);
    let Ok(body) = serde_json::from_slice::<Value>(&body) else {
        return api_error(StatusCode::BAD_REQUEST, "record", "invalid JSON body");
    };
    let mut record = match validate(&inner, &body) {
        Ok(r) => r,
        Err(e) => {
            return api_error(
                StatusCode::UNPROCESSABLE_ENTITY,
                "record",
                &format!("422 Unprocessable Entity: {e}"),
            );
        }
    };
    if inner.failing_names.contains(&record.name) {
        return api_error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "record",
            "internal server error",
        );
    }
    record.id = inner.new_id();
    let answer = record.to_json();
    inner.records.push(record);
    json_response(StatusCode::OK, json!({ "record": answer }))
}

async fn get_record(State(shared): State<Shared>, Path(id): Path<String>) -> Response {
    let inner = lock(&shared);
    match inner.records.iter().find(|r| r.id == id) {
        Some(r) => json_response(StatusCode::OK, json!({ "record": r.to_json() })),
        None => api_error(StatusCode::NOT_FOUND, "record", "record not found"),
    }
}

async fn update_record(
    State(shared): State<Shared>,
    Path(id): Path<String>,
    body: axum::body::Bytes,
) -> Response {
    let mut inner = lock(&shared);
    let Ok(body) = serde_json::from_slice::<Value>(&body) else {
        return api_error(StatusCode::BAD_REQUEST, "record", "invalid JSON body");
    };
    let Some(index) = inner.records.iter().position(|r| r.id == id) else {
        return api_error(StatusCode::NOT_FOUND, "record", "record not found");
    };
    let mut record = match validate(&inner, &body) {
        Ok(r) => r,
        Err(e) => {
            return api_error(
                StatusCode::UNPROCESSABLE_ENTITY,
                "record",
                &format!("422 Unprocessable Entity: {e}"),
            );
        }
    };
    if inner.failing_names.contains(&record.name)
        || inner.failing_names.contains(&inner.records[index].name)
    {
        return api_error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "record",
            "internal server error",
        );
    }
    record.id = id;
    let answer = record.to_json();
    inner.records[index] = record;
    json_response(StatusCode::OK, json!({ "record": answer }))
}

async fn delete_record(State(shared): State<Shared>, Path(id): Path<String>) -> Response {
    let mut inner = lock(&shared);
    let Some(index) = inner.records.iter().position(|r| r.id == id) else {
        return api_error(StatusCode::NOT_FOUND, "record", "record not found");
    };
    if inner.failing_names.contains(&inner.records[index].name) {
        return api_error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "record",
            "internal server error",
        );
    }
    inner.records.remove(index);
    Response::new(Body::empty())
}

/// `POST /records/bulk`: valid records are created, invalid ones reported.
async fn bulk_create(State(shared): State<Shared>, body: axum::body::Bytes) -> Response {
    let mut inner = lock(&shared);
    let Some(list) = serde_json::from_slice::<Value>(&body)
        .ok()
        .and_then(|b| b.get("records").and_then(Value::as_array).cloned())
    else {
        return api_error(
            StatusCode::UNPROCESSABLE_ENTITY,
            "records",
            "missing: records",
        );
    };
    let (mut created, mut valid, mut invalid) = (Vec::new(), Vec::new(), Vec::new());
    for item in &list {
        match validate(&inner, item) {
            Ok(mut record) => {
                record.id = inner.new_id();
                valid.push(item.clone());
                created.push(record.to_json());
                inner.records.push(record);
            }
            Err(_) => invalid.push(item.clone()),
        }
    }
    json_response(
        StatusCode::OK,
        json!({ "records": created, "valid_records": valid, "invalid_records": invalid }),
    )
}

/// `PUT /records/bulk`: records are updated by id, failures reported.
async fn bulk_update(State(shared): State<Shared>, body: axum::body::Bytes) -> Response {
    let mut inner = lock(&shared);
    let Some(list) = serde_json::from_slice::<Value>(&body)
        .ok()
        .and_then(|b| b.get("records").and_then(Value::as_array).cloned())
    else {
        return api_error(
            StatusCode::UNPROCESSABLE_ENTITY,
            "records",
            "missing: records",
        );
    };
    let (mut updated, mut failed) = (Vec::new(), Vec::new());
    for item in &list {
        let id = item.get("id").and_then(Value::as_str).unwrap_or_default();
        let index = inner.records.iter().position(|r| r.id == id);
        match (index, validate(&inner, item)) {
            (Some(index), Ok(mut record)) => {
                record.id = id.to_owned();
                updated.push(record.to_json());
                inner.records[index] = record;
            }
            _ => failed.push(item.clone()),
        }
    }
    json_response(
        StatusCode::OK,
        json!({ "records": updated, "failed_records": failed }),
    )
}

/// `http://127.0.0.1:<port>` where nothing listens, for "server down" tests.
pub async fn closed_port_url() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind a loopback port");
    let port = listener.local_addr().expect("local address").port();
    drop(listener);
    format!("http://127.0.0.1:{port}")
}
