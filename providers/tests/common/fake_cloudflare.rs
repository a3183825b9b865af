//! A local stand-in for the Cloudflare API v4 (zones and DNS records), for
//! provider tests: an axum server on 127.0.0.1 with in-memory zones and
//! records, the documented paths and `{success, errors, messages, result,
//! result_info}` envelope, the `Authorization: Bearer` check, paging with a
//! small page size, record validation (MX `priority`, SRV/CAA/... `data`,
//! identical records refused), the all-or-nothing `dns_records/batch`, and
//! fault injection (500s, 429 with Retry-After, delays). Does I/O (a TCP
//! listener on loopback).

use std::collections::HashMap;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use axum::Router;
use axum::extract::{Path, Query, Request, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use serde_json::{Map, Value, json};
use tokio::sync::oneshot;

/// The API token the fake accepts.
pub const TOKEN: &str = "cf-test-token-0c6e1d9a4b";

/// The DNS record types the API documents.
const TYPES: [&str; 20] = [
    "A", "AAAA", "CAA", "CERT", "CNAME", "DNSKEY", "DS", "HTTPS", "LOC", "MX", "NAPTR", "NS",
    "PTR", "SMIMEA", "SRV", "SSHFP", "SVCB", "TLSA", "TXT", "URI",
];

/// The fields each `data` type needs.
fn data_fields(rtype: &str) -> Option<&'static [&'static str]> {
    Some(match rtype {
        "SRV" => &["priority", "weight", "port", "target"],
        "CAA" => &["flags", "tag", "value"],
        "TLSA" | "SMIMEA" => &["usage", "selector", "matching_type", "certificate"],
        "SSHFP" => &["algorithm", "type", "fingerprint"],
        "DS" => &["key_tag", "algorithm", "digest_type", "digest"],
        "DNSKEY" => &["flags", "protocol", "algorithm", "public_key"],
        "CERT" => &["type", "key_tag", "algorithm", "certificate"],
        "HTTPS" | "SVCB" => &["priority", "target", "value"],
        "NAPTR" => &[
            "order",
            "preference",
            "flags",
            "service",
            "regex",
            "replacement",
        ],
        "URI" => &["weight", "target"],
        "LOC" => &["lat_degrees", "long_degrees"],
        _ => return None,
    })
}

#[derive(Debug, Clone)]
struct Zone {
    id: String,
    name: String,
}

#[derive(Debug)]
struct Inner {
    zones: Vec<Zone>,
    /// Records as the API returns them (JSON objects with `id` and `zone_id`).
    records: Vec<Map<String, Value>>,
    next_id: u64,
    max_per_page: usize,
    fail_requests: u32,
    fail_writes: u32,
    rate_limited: u32,
    delay: Duration,
    log: Vec<String>,
}

impl Inner {
    fn new_id(&mut self) -> String {
        self.next_id += 1;
        format!("{:032x}", self.next_id.wrapping_mul(0x9e37_79b9_7f4a_7c15))
    }

    fn zone(&self, id: &str) -> Option<Zone> {
        self.zones.iter().find(|z| z.id == id).cloned()
    }
}

type Shared = Arc<Mutex<Inner>>;

fn lock(shared: &Shared) -> MutexGuard<'_, Inner> {
    shared.lock().unwrap_or_else(|e| e.into_inner())
}

/// The running fake. Dropping it stops the server.
#[derive(Debug)]
pub struct FakeCloudflare {
    addr: SocketAddr,
    shared: Shared,
    _stop: oneshot::Sender<()>,
}

impl FakeCloudflare {
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
            log: Vec::new(),
        }));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the fake Cloudflare API to 127.0.0.1");
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

    /// The API base URL, as `spec.cloudflare.url` takes it.
    pub fn url(&self) -> String {
        format!("http://{}/client/v4", self.addr)
    }

    /// Creates a zone (Cloudflare lists no SOA or NS records for it).
    pub fn add_zone(&self, name: &str) -> String {
        let mut inner = lock(&self.shared);
        let id = inner.new_id();
        inner.zones.push(Zone {
            id: id.clone(),
            name: name.trim_end_matches('.').to_ascii_lowercase(),
        });
        id
    }

    /// Adds a record directly (as someone using the dashboard would). `record`
    /// holds the API fields (`name`, `type`, `content`, `data`, ...).
    pub fn add_record(&self, zone: &str, record: Value) {
        let mut inner = lock(&self.shared);
        let zone_name = zone.trim_end_matches('.').to_ascii_lowercase();
        let zone = inner
            .zones
            .iter()
            .find(|z| z.name == zone_name)
            .cloned()
            .unwrap_or_else(|| panic!("the fake has no zone {zone_name}"));
        let Value::Object(fields) = record else {
            panic!("a record is a JSON object");
        };
        let existing = inner.records.clone();
        let mut record = validate(&zone, &fields, None, &existing)
            .unwrap_or_else(|(_, m)| panic!("the fake refuses the record: {m}"));
        let id = inner.new_id();
        record.insert("id".into(), json!(id));
        inner.records.push(record);
    }

    /// The records of a zone as `name type ttl content|data` lines, sorted.
    pub fn records(&self, zone: &str) -> Vec<String> {
        let inner = lock(&self.shared);
        let zone = zone.trim_end_matches('.').to_ascii_lowercase();
        let Some(zone) = inner.zones.iter().find(|z| z.name == zone) else {
            return Vec::new();
        };
        let mut out: Vec<String> = inner
            .records
            .iter()
            .filter(|r| r.get("zone_id").and_then(Value::as_str) == Some(zone.id.as_str()))
            .map(|r| {
                let get = |k: &str| r.get(k).cloned().unwrap_or(Value::Null);
                format!(
                    "{} {} {} {}",
                    get("name").as_str().unwrap_or_default(),
                    get("type").as_str().unwrap_or_default(),
                    get("ttl"),
                    match r.get("data") {
                        Some(d) => d.to_string(),
                        None => get("content").as_str().unwrap_or_default().to_owned(),
                    }
                )
            })
            .collect();
        out.sort();
        out
    }

    /// The records of a zone as the API returns them.
    pub fn raw_records(&self, zone: &str) -> Vec<Value> {
        let inner = lock(&self.shared);
        let zone = zone.trim_end_matches('.').to_ascii_lowercase();
        let Some(zone) = inner.zones.iter().find(|z| z.name == zone) else {
            return Vec::new();
        };
        inner
            .records
            .iter()
            .filter(|r| r.get("zone_id").and_then(Value::as_str) == Some(zone.id.as_str()))
            .map(|r| Value::Object(r.clone()))
            .collect()
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

    /// How many batch requests were received.
    pub fn batch_count(&self) -> usize {
        lock(&self.shared)
            .log
            .iter()
            .filter(|l| l.starts_with("POST ") && l.contains("/dns_records/batch"))
            .count()
    }

    /// Forgets the request log.
    pub fn clear_requests(&self) {
        lock(&self.shared).log.clear();
    }
}

fn router(shared: Shared) -> Router {
    let api = Router::new()
        .route("/user/tokens/verify", get(verify_token))
        .route("/zones", get(list_zones))
        .route(
            "/zones/{zone_id}/dns_records",
            get(list_records).post(create_record),
        )
        .route("/zones/{zone_id}/dns_records/batch", post(batch))
        .route(
            "/zones/{zone_id}/dns_records/{id}",
            put(overwrite_record)
                .patch(patch_record)
                .delete(delete_record),
        );
    Router::new()
        .nest("/client/v4", api)
        .layer(middleware::from_fn_with_state(shared.clone(), gate))
        .with_state(shared)
}

fn envelope(status: StatusCode, result: Value, result_info: Option<Value>) -> Response {
    let mut body = json!({ "success": true, "errors": [], "messages": [], "result": result });
    if let Some(info) = result_info {
        body["result_info"] = info;
    }
    (status, axum::Json(body)).into_response()
}

/// The API's error envelope.
fn failure(status: StatusCode, code: u32, message: &str) -> Response {
    (
        status,
        axum::Json(json!({
            "success": false,
            "errors": [{ "code": code, "message": message }],
            "messages": [],
            "result": null,
        })),
    )
        .into_response()
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
            let mut response = failure(
                StatusCode::TOO_MANY_REQUESTS,
                971,
                "Please wait and consider throttling your request speed",
            );
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
            return response;
        }
        if inner.fail_requests > 0 || (method != Method::GET && inner.fail_writes > 0) {
            if inner.fail_requests > 0 {
                inner.fail_requests -= 1;
            } else {
                inner.fail_writes -= 1;
            }
            return failure(
                StatusCode::INTERNAL_SERVER_ERROR,
                10002,
                "An unknown error has occurred",
            );
        }
    }
    let expected = format!("Bearer {TOKEN}");
    match request.headers().get(header::AUTHORIZATION) {
        Some(v) if v.as_bytes() == expected.as_bytes() => next.run(request).await,
        _ => failure(StatusCode::UNAUTHORIZED, 10000, "Authentication error"),
    }
}

/// Page `page` of `items` and the `result_info` block.
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
    let slice: Vec<T> = items
        .iter()
        .skip((page - 1) * per_page)
        .take(per_page)
        .cloned()
        .collect();
    let info = json!({
        "page": page,
        "per_page": per_page,
        "count": slice.len(),
        "total_count": total,
        "total_pages": total.div_ceil(per_page).max(1),
    });
    (slice, info)
}

async fn verify_token() -> Response {
    envelope(
        StatusCode::OK,
        json!({ "id": "f267e341f3dd4697bd3b9f71dd96247f", "status": "active" }),
        None,
    )
}

async fn list_zones(
    State(shared): State<Shared>,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    let inner = lock(&shared);
    let wanted = query
        .get("name")
        .map(|n| n.trim_end_matches('.').to_ascii_lowercase());
    let zones: Vec<Value> = inner
        .zones
        .iter()
        .filter(|z| wanted.as_ref().is_none_or(|w| &z.name == w))
        .map(|z| {
            json!({
                "id": z.id, "name": z.name, "status": "active", "paused": false, "type": "full",
                "name_servers": ["ada.ns.cloudflare.com", "bob.ns.cloudflare.com"],
            })
        })
        .collect();
    let (page, info) = paginate(&zones, &query, inner.max_per_page);
    envelope(StatusCode::OK, Value::Array(page), Some(info))
}

fn unknown_zone(zone_id: &str) -> Response {
    failure(
        StatusCode::NOT_FOUND,
        7003,
        &format!(
            "Could not route to /zones/{zone_id}/dns_records, perhaps your object identifier is invalid?"
        ),
    )
}

async fn list_records(
    State(shared): State<Shared>,
    Path(zone_id): Path<String>,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    let inner = lock(&shared);
    if inner.zone(&zone_id).is_none() {
        return unknown_zone(&zone_id);
    }
    let records: Vec<Value> = inner
        .records
        .iter()
        .filter(|r| r.get("zone_id").and_then(Value::as_str) == Some(zone_id.as_str()))
        .map(|r| Value::Object(r.clone()))
        .collect();
    let (page, info) = paginate(&records, &query, inner.max_per_page);
    envelope(StatusCode::OK, Value::Array(page), Some(info))
}

/// A validation failure: the API's error code and message.
type Invalid = (u32, String);

/// A record as a client sent it, checked and completed the way the API does
/// (name made absolute, host names without their trailing dot, `content`
/// filled from `data`). `replacing` is the id of the record being overwritten.
fn validate(
    zone: &Zone,
    fields: &Map<String, Value>,
    replacing: Option<&str>,
    existing: &[Map<String, Value>],
) -> Result<Map<String, Value>, Invalid> {
    let invalid = |m: String| (1004, format!("DNS Validation Error: {m}"));
    let rtype = fields
        .get("type")
        .and_then(Value::as_str)
        .ok_or_else(|| invalid("type is required".into()))?
        .to_ascii_uppercase();
    if !TYPES.contains(&rtype.as_str()) {
        return Err(invalid(format!("unsupported record type {rtype}")));
    }
    let raw_name = fields
        .get("name")
        .and_then(Value::as_str)
        .ok_or_else(|| invalid("name is required".into()))?
        .trim_end_matches('.')
        .to_ascii_lowercase();
    let name = if raw_name == "@" || raw_name.is_empty() {
        zone.name.clone()
    } else if raw_name == zone.name || raw_name.ends_with(&format!(".{}", zone.name)) {
        raw_name
    } else {
        format!("{raw_name}.{}", zone.name)
    };
    let ttl = match fields.get("ttl") {
        None | Some(Value::Null) => 1,
        Some(v) => v
            .as_u64()
            .ok_or_else(|| invalid(format!("ttl {v} is not a number")))?,
    };
    if ttl != 1 && !(60..=86_400).contains(&ttl) {
        return Err((
            9021,
            "Invalid TTL. Must be between 60 and 86400 seconds, or 1 for Automatic.".into(),
        ));
    }
    let proxied = fields
        .get("proxied")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    if proxied && !matches!(rtype.as_str(), "A" | "AAAA" | "CNAME") {
        return Err((9004, "This record type cannot be proxied.".into()));
    }
    let mut record = Map::new();
    record.insert("zone_id".into(), json!(zone.id));
    record.insert("zone_name".into(), json!(zone.name));
    record.insert("name".into(), json!(name));
    record.insert("type".into(), json!(rtype));
    record.insert("ttl".into(), json!(ttl));
    record.insert(
        "proxiable".into(),
        json!(matches!(rtype.as_str(), "A" | "AAAA" | "CNAME")),
    );
    record.insert("proxied".into(), json!(proxied));
    record.insert("meta".into(), json!({ "auto_added": false }));
    for kept in ["comment", "tags"] {
        if let Some(v) = fields.get(kept) {
            record.insert(kept.into(), v.clone());
        }
    }
    record.insert("created_on".into(), json!("2026-01-01T00:00:00.000000Z"));
    record.insert("modified_on".into(), json!("2026-01-01T00:00:00.000000Z"));
    if matches!(rtype.as_str(), "MX" | "URI") {
        let priority = fields
            .get("priority")
            .and_then(Value::as_u64)
            .filter(|p| *p <= 65_535)
            .ok_or_else(|| invalid(format!("{rtype} records need a priority from 0 to 65535")))?;
        record.insert("priority".into(), json!(priority));
    }
    match data_fields(&rtype) {
        Some(needed) => {
            let data = fields
                .get("data")
                .and_then(Value::as_object)
                .ok_or_else(|| invalid(format!("{rtype} records need a data object")))?;
            for field in needed {
                if !data.contains_key(*field) {
                    return Err(invalid(format!("{rtype} data needs {field}")));
                }
            }
            let mut data = data.clone();
            for host in ["target", "replacement"] {
                if let Some(Value::String(h)) = data.get_mut(host)
                    && h.len() > 1
                {
                    *h = h.trim_end_matches('.').to_owned();
                }
            }
            let text = |k: &str| match data.get(k) {
                Some(Value::String(s)) => s.clone(),
                Some(v) => v.to_string(),
                None => String::new(),
            };
            let content = match rtype.as_str() {
                "SRV" => format!("{} {} {}", text("weight"), text("port"), text("target")),
                "CAA" => format!("{} {} \"{}\"", text("flags"), text("tag"), text("value")),
                "URI" => format!("{} \"{}\"", text("weight"), text("target")),
                _ => needed.iter().map(|k| text(k)).collect::<Vec<_>>().join(" "),
            };
            record.insert("content".into(), json!(content));
            record.insert("data".into(), Value::Object(data));
        }
        None => {
            let content = fields
                .get("content")
                .and_then(Value::as_str)
                .filter(|c| !c.trim().is_empty())
                .ok_or_else(|| invalid(format!("{rtype} records need content")))?;
            let ok = match rtype.as_str() {
                "A" => content.parse::<Ipv4Addr>().is_ok(),
                "AAAA" => content.parse::<Ipv6Addr>().is_ok(),
                "TXT" => content.len() <= 4096,
                _ => true,
            };
            if !ok {
                return Err(invalid(format!("content for {rtype} record is invalid")));
            }
            let content =
                if matches!(rtype.as_str(), "CNAME" | "NS" | "PTR" | "MX") && content != "." {
                    content.trim_end_matches('.').to_ascii_lowercase()
                } else {
                    content.to_owned()
                };
            record.insert("content".into(), json!(content));
        }
    }
    let same = |other: &Map<String, Value>| {
        ["zone_id", "name", "type", "content", "priority", "data"]
            .iter()
            .all(|k| other.get(*k) == record.get(*k))
    };
    if existing
        .iter()
        .filter(|r| r.get("id").and_then(Value::as_str) != replacing)
        .any(same)
    {
        return Err((81058, "An identical record already exists.".into()));
    }
    Ok(record)
}

/// The request body as a JSON object.
fn parse_object(body: &[u8]) -> Option<Map<String, Value>> {
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(o)) => Some(o),
        _ => None,
    }
}

fn invalid_body() -> Response {
    failure(StatusCode::BAD_REQUEST, 9207, "Request body is invalid.")
}

async fn create_record(
    State(shared): State<Shared>,
    Path(zone_id): Path<String>,
    body: axum::body::Bytes,
) -> Response {
    let mut inner = lock(&shared);
    let Some(zone) = inner.zone(&zone_id) else {
        return unknown_zone(&zone_id);
    };
    let Some(fields) = parse_object(&body) else {
        return invalid_body();
    };
    match validate(&zone, &fields, None, &inner.records) {
        Ok(mut record) => {
            let id = inner.new_id();
            record.insert("id".into(), json!(id));
            inner.records.push(record.clone());
            envelope(StatusCode::OK, Value::Object(record), None)
        }
        Err((code, message)) => failure(StatusCode::BAD_REQUEST, code, &message),
    }
}

/// `PUT` replaces a record; `PATCH` changes only the fields given.
async fn change_record(
    shared: &Shared,
    zone_id: &str,
    id: &str,
    body: &[u8],
    merge: bool,
) -> Response {
    let mut inner = lock(shared);
    let Some(zone) = inner.zone(zone_id) else {
        return unknown_zone(zone_id);
    };
    let Some(index) = inner
        .records
        .iter()
        .position(|r| r.get("id").and_then(Value::as_str) == Some(id))
    else {
        return failure(StatusCode::NOT_FOUND, 81044, "Record does not exist.");
    };
    let Some(fields) = parse_object(body) else {
        return invalid_body();
    };
    let fields = if merge {
        let mut merged = inner.records[index].clone();
        merged.extend(fields);
        merged
    } else {
        fields
    };
    match validate(&zone, &fields, Some(id), &inner.records) {
        Ok(mut record) => {
            record.insert("id".into(), json!(id));
            inner.records[index] = record.clone();
            envelope(StatusCode::OK, Value::Object(record), None)
        }
        Err((code, message)) => failure(StatusCode::BAD_REQUEST, code, &message),
    }
}

async fn overwrite_record(
    State(shared): State<Shared>,
    Path((zone_id, id)): Path<(String, String)>,
    body: axum::body::Bytes,
) -> Response {
    change_record(&shared, &zone_id, &id, &body, false).await
}

async fn patch_record(
    State(shared): State<Shared>,
    Path((zone_id, id)): Path<(String, String)>,
    body: axum::body::Bytes,
) -> Response {
    change_record(&shared, &zone_id, &id, &body, true).await
}

async fn delete_record(
    State(shared): State<Shared>,
    Path((zone_id, id)): Path<(String, String)>,
) -> Response {
    let mut inner = lock(&shared);
    if inner.zone(&zone_id).is_none() {
        return unknown_zone(&zone_id);
    }
    let Some(index) = inner
        .records
        .iter()
        .position(|r| r.get("id").and_then(Value::as_str) == Some(id.as_str()))
    else {
        return failure(StatusCode::NOT_FOUND, 81044, "Record does not exist.");
    };
    inner.records.remove(index);
    envelope(StatusCode::OK, json!({ "id": id }), None)
}

/// `POST /zones/{zone_id}/dns_records/batch`: deletes, patches, puts, posts,
/// in that order, in one transaction: any failure leaves the zone untouched.
async fn batch(
    State(shared): State<Shared>,
    Path(zone_id): Path<String>,
    body: axum::body::Bytes,
) -> Response {
    let mut inner = lock(&shared);
    let Some(zone) = inner.zone(&zone_id) else {
        return unknown_zone(&zone_id);
    };
    let Some(fields) = parse_object(&body) else {
        return invalid_body();
    };
    let list = |name: &str| -> Vec<Map<String, Value>> {
        fields
            .get(name)
            .and_then(Value::as_array)
            .map(|a| a.iter().filter_map(|v| v.as_object().cloned()).collect())
            .unwrap_or_default()
    };
    let mut records = inner.records.clone();
    let mut result = Map::new();
    let find = |records: &[Map<String, Value>], id: Option<&str>| {
        records.iter().position(|r| {
            r.get("zone_id").and_then(Value::as_str) == Some(zone.id.as_str())
                && r.get("id").and_then(Value::as_str) == id
        })
    };
    let mut done = Vec::new();
    for (i, item) in list("deletes").iter().enumerate() {
        let id = item.get("id").and_then(Value::as_str);
        match find(&records, id) {
            Some(index) => done.push(Value::Object(records.remove(index))),
            None => {
                return failure(
                    StatusCode::BAD_REQUEST,
                    81044,
                    &format!("deletes[{i}]: Record does not exist."),
                );
            }
        }
    }
    result.insert("deletes".into(), Value::Array(std::mem::take(&mut done)));
    for (name, merge) in [("patches", true), ("puts", false)] {
        for (i, item) in list(name).iter().enumerate() {
            let id = item.get("id").and_then(Value::as_str).map(str::to_owned);
            let Some(index) = find(&records, id.as_deref()) else {
                return failure(
                    StatusCode::BAD_REQUEST,
                    81044,
                    &format!("{name}[{i}]: Record does not exist."),
                );
            };
            let mut given = item.clone();
            given.remove("id");
            let fields = if merge {
                let mut merged = records[index].clone();
                merged.extend(given);
                merged
            } else {
                given
            };
            match validate(&zone, &fields, id.as_deref(), &records) {
                Ok(mut record) => {
                    record.insert("id".into(), json!(id));
                    records[index] = record.clone();
                    done.push(Value::Object(record));
                }
                Err((code, message)) => {
                    return failure(
                        StatusCode::BAD_REQUEST,
                        code,
                        &format!("{name}[{i}]: {message}"),
                    );
                }
            }
        }
        result.insert(name.into(), Value::Array(std::mem::take(&mut done)));
    }
    for (i, item) in list("posts").iter().enumerate() {
        match validate(&zone, item, None, &records) {
            Ok(mut record) => {
                let id = inner.new_id();
                record.insert("id".into(), json!(id));
                records.push(record.clone());
                done.push(Value::Object(record));
            }
            Err((code, message)) => {
                return failure(
                    StatusCode::BAD_REQUEST,
                    code,
                    &format!("posts[{i}]: {message}"),
                );
            }
        }
    }
    result.insert("posts".into(), Value::Array(done));
    inner.records = records;
    envelope(StatusCode::OK, Value::Object(result), None)
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
