//! The Hetzner DNS provider: the Hetzner DNS Public API v1 (`Auth-API-Token`
//! header, zones and records by id, `meta.pagination`), written one record
//! at a time with a per-operation outcome. Does I/O (HTTPS).
//!
//! Hetzner keeps one API record per value, each with its own TTL; ZentraLink
//! groups them into record sets. Writes are not atomic: the API's bulk
//! endpoints report valid and invalid records separately and apply the valid
//! ones, so each record is written on its own and the report says exactly
//! which operations were applied before a failure.
//!
//! What `apply` returns:
//! - `Err` when nothing was written: the plan is stale (`Conflict`, nothing
//!   sent), a value cannot be expressed for the API, or the very first write
//!   failed (`Uncertain` when that write may have been applied, for example
//!   after an HTTP 500 or a timeout).
//! - `Ok(report)` once at least one write was confirmed. Each operation is
//!   then `Ok` (applied), `Err` naming what went wrong (the failed one; a
//!   partly applied record set says how many of its record writes were
//!   done), or `Err("not attempted ...")`. Nothing is retried.
//!
//! What is read: only the API's own 404 means a zone is absent (or, for the
//! zone list, that the account has none). A 200 whose JSON lacks what the API
//! documents (`zones`, `records`, `meta.pagination.last_page`, a record's
//! `id`, `type`, `name`, `value`) is [`ProviderError::InvalidAnswer`], never
//! an empty zone. Redirects are never followed (the token would go with
//! them), and answers are read up to [`Limits::max_response_bytes`].

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use async_trait::async_trait;
use hickory_proto::rr::{RData, RecordType};
use reqwest::header::{HeaderValue, RETRY_AFTER};
use reqwest::{Method, StatusCode};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::json;
use zentralink_model::plan::{ChangeOp, Plan};
use zentralink_model::record::{
    RecordSet, RecordValue, RrKey, TXT_STRING_MAX, parse_record_type, type_name,
};
use zentralink_model::resources::{HttpApiSettings, ProviderType};
use zentralink_model::secrets::SecretString;
use zentralink_model::{ZoneContent, ZoneName};

use super::http::{
    base_url, classify_status, client, idempotency_of, page_number, path_segment, read_body,
    read_error_body, redirect_error, secret_header, shorten, transport_error,
};
use super::resilience::{AttemptError, Governor, Limits, retry_after_seconds};
use super::{
    ApplyReport, Capabilities, OpOutcome, PROBE_LABEL, Provider, ProviderError, check_before_values,
};
use zentralink_model::record::quote_character_string as quote;

/// The public API, used when `spec.hetzner.url` is not set.
pub const DEFAULT_URL: &str = "https://dns.hetzner.com/api/v1";

/// Page size asked for; the API documents 100 as the most zones per page.
const PER_PAGE: u32 = 100;
/// A guard against a server that never reports its last page.
const MAX_PAGES: u32 = 100_000;
/// Record types this provider writes: what the API documents as creatable,
/// except SOA (the API does not let it be changed; Hetzner keeps it), RP (no
/// presentation format in ZentraLink's record model) and "DANE" (not a DNS
/// record type; DANE data is written as TLSA).
const WRITABLE_TYPES: [RecordType; 11] = [
    RecordType::A,
    RecordType::AAAA,
    RecordType::NS,
    RecordType::MX,
    RecordType::CNAME,
    RecordType::TXT,
    RecordType::HINFO,
    RecordType::SRV,
    RecordType::TLSA,
    RecordType::DS,
    RecordType::CAA,
];

/// A connection to the Hetzner DNS API.
#[derive(Clone)]
pub struct HetznerProvider {
    base: String,
    client: reqwest::Client,
    /// The `Auth-API-Token` header value, marked sensitive.
    auth: HeaderValue,
    /// Kept only to scrub the token out of any text a server sends back.
    token: SecretString,
    governor: Governor,
}

impl fmt::Debug for HetznerProvider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HetznerProvider")
            .field("base", &self.base)
            .field("token", &self.token)
            .finish_non_exhaustive()
    }
}

impl HetznerProvider {
    /// Builds a provider for the API at `settings.url` (default
    /// [`DEFAULT_URL`]). Sends nothing.
    pub fn new(
        settings: &HttpApiSettings,
        token: SecretString,
        limits: Limits,
    ) -> Result<Self, ProviderError> {
        super::install_tls_provider();
        let base = base_url(settings.url.as_deref(), DEFAULT_URL, "spec.hetzner.url")?;
        let auth = secret_header(token.expose().trim(), "the Hetzner API token")?;
        let client = client(limits.timeout, reqwest::header::HeaderMap::new())?;
        Ok(Self {
            base,
            client,
            auth,
            token,
            governor: Governor::new(limits),
        })
    }

    /// The API base URL requests go to.
    pub fn base_url(&self) -> &str {
        &self.base
    }

    /// One call through the governor. `missing_ok` turns an HTTP 404 into `Ok(None)`.
    async fn call(
        &self,
        method: Method,
        path: &str,
        query: &[(&str, String)],
        body: Option<&serde_json::Value>,
        missing_ok: bool,
    ) -> Result<Option<Vec<u8>>, ProviderError> {
        let what = format!("Hetzner {method} {path}");
        let url = format!("{}{path}", self.base);
        self.governor
            .call(&what, idempotency_of(&method), || {
                self.attempt(&what, method.clone(), &url, query, body, missing_ok)
            })
            .await
    }

    async fn attempt(
        &self,
        what: &str,
        method: Method,
        url: &str,
        query: &[(&str, String)],
        body: Option<&serde_json::Value>,
        missing_ok: bool,
    ) -> Result<Option<Vec<u8>>, AttemptError> {
        tracing::debug!(what, "calling the Hetzner DNS API");
        let idempotency = idempotency_of(&method);
        let mut request = self
            .client
            .request(method, url)
            .header("Auth-API-Token", self.auth.clone())
            .query(query);
        if let Some(body) = body {
            request = request.json(body);
        }
        let response = request
            .send()
            .await
            .map_err(|e| transport_error(what, &e))?;
        let status = response.status();
        if status.is_redirection() {
            return Err(redirect_error(
                what,
                "Hetzner",
                &response,
                "spec.hetzner.url",
                |text| self.redact(text),
            ));
        }
        let limit = self.governor.limits().max_response_bytes;
        if status.is_success() {
            return read_body(response, limit)
                .await
                .map(Some)
                .map_err(|e| e.into_attempt(what, "Hetzner", status, idempotency));
        }
        let retry_after = retry_after_seconds(
            response
                .headers()
                .get(RETRY_AFTER)
                .and_then(|v| v.to_str().ok()),
        );
        let bytes = read_error_body(response, limit).await;
        let message = shorten(&self.redact(&error_message(&bytes)));
        if status == StatusCode::NOT_FOUND {
            // The API's own 404s carry its error body; anything else means
            // the URL does not lead to the API at all.
            if !is_api_error_body(&bytes) {
                return Err(AttemptError::Permanent(ProviderError::Unsupported(
                    format!(
                        "{what}: HTTP 404 from something that is not the Hetzner DNS API ({message}); check spec.hetzner.url (the default is {DEFAULT_URL})"
                    ),
                )));
            }
            if missing_ok {
                return Ok(None);
            }
        }
        Err(classify(what, status, &message, retry_after))
    }

    /// A GET whose answer is parsed as `T`; `None` for a 404 when `missing_ok`.
    async fn get<T: DeserializeOwned>(
        &self,
        path: &str,
        query: &[(&str, String)],
        missing_ok: bool,
    ) -> Result<Option<T>, ProviderError> {
        let Some(bytes) = self
            .call(Method::GET, path, query, None, missing_ok)
            .await?
        else {
            return Ok(None);
        };
        serde_json::from_slice(&bytes).map(Some).map_err(|e| {
            ProviderError::InvalidAnswer(format!(
                "Hetzner GET {path}: the answer is not what the Hetzner DNS API documents: {}; check spec.hetzner.url (the default is {DEFAULT_URL})",
                shorten(&self.redact(&e.to_string()))
            ))
        })
    }

    /// Removes the token from text a server sent back, should it echo it.
    fn redact(&self, text: &str) -> String {
        let token = self.token.expose().trim();
        if token.is_empty() {
            text.to_owned()
        } else {
            text.replace(token, zentralink_model::secrets::REDACTED)
        }
    }

    /// The zone named `zone`, or `None` when the account has no such zone.
    async fn find_zone(&self, zone: &ZoneName) -> Result<Option<ApiZone>, ProviderError> {
        let name = zone.without_dot();
        // The API answers 404 (not an empty list) for a name it does not hold.
        let page: Option<ZonesPage> = self.get("/zones", &[("name", name.clone())], true).await?;
        Ok(page.and_then(|p| {
            p.zones
                .into_iter()
                .find(|z| z.name.trim_end_matches('.').eq_ignore_ascii_case(&name))
        }))
    }

    /// Every record of a zone, following `meta.pagination` to the last page.
    async fn fetch_records(&self, zone: &ApiZone) -> Result<Vec<ApiRecord>, ProviderError> {
        let mut records = Vec::new();
        let mut seen = BTreeSet::new();
        let mut page = 1u32;
        loop {
            let query = [
                ("zone_id", zone.id.clone()),
                ("page", page.to_string()),
                ("per_page", PER_PAGE.to_string()),
            ];
            let answer: RecordsPage =
                self.get("/records", &query, false).await?.ok_or_else(|| {
                    ProviderError::InvalidAnswer("Hetzner GET /records: no answer".into())
                })?;
            let got = answer.records.len();
            let last = answer.meta.last_page("Hetzner GET /records")?;
            for record in answer.records {
                // A record moving between pages while we read must not count twice.
                if seen.insert(record.id.clone()) {
                    records.push(record);
                }
            }
            if page >= last || got == 0 {
                return Ok(records);
            }
            if page >= MAX_PAGES {
                return Err(ProviderError::InvalidAnswer(format!(
                    "Hetzner GET /records: the zone {} claims more than {MAX_PAGES} pages of records",
                    zone.name
                )));
            }
            page += 1;
        }
    }

    /// The zone's content and, per record set, the API records that hold it.
    async fn read_state(&self, zone: &ZoneName) -> Result<Option<ZoneState>, ProviderError> {
        let Some(api_zone) = self.find_zone(zone).await? else {
            return Ok(None);
        };
        let records = self.fetch_records(&api_zone).await?;
        let default_ttl = api_zone.ttl;
        let mut by_key: BTreeMap<RrKey, Vec<Existing>> = BTreeMap::new();
        for record in records {
            let (key, existing) = record_from_api(&record, zone, default_ttl)
                .map_err(|e| ProviderError::InvalidAnswer(shorten(&self.redact(&e))))?;
            by_key.entry(key).or_default().push(existing);
        }
        let mut content = ZoneContent::new(zone.clone());
        for (key, records) in &by_key {
            // The API gives every record its own TTL; DNS gives a record set
            // one (RFC 2181 section 5.2). When the records of a set differ,
            // the lowest is what resolvers end up using, so that is the
            // set's TTL; the next update of the set writes one TTL to all.
            let ttl = records.iter().map(|r| r.ttl).min().unwrap_or(default_ttl);
            let values = records.iter().map(|r| r.value.clone()).collect();
            content
                .sets
                .insert(key.clone(), RecordSet::new(ttl, values));
        }
        Ok(Some(ZoneState {
            zone: api_zone,
            content,
            records: by_key,
        }))
    }

    /// Sends one record write.
    async fn write(&self, zone_id: &str, step: &Step) -> Result<(), ProviderError> {
        match step {
            Step::Create { body } => {
                let body = body.for_zone(zone_id);
                self.call(Method::POST, "/records", &[], Some(&body), false)
                    .await?;
            }
            Step::Rewrite { id, body } => {
                let body = body.for_zone(zone_id);
                self.call(
                    Method::PUT,
                    &format!("/records/{}", path_segment(id)),
                    &[],
                    Some(&body),
                    false,
                )
                .await?;
            }
            Step::Remove { id } => {
                self.call(
                    Method::DELETE,
                    &format!("/records/{}", path_segment(id)),
                    &[],
                    None,
                    false,
                )
                .await?;
            }
        }
        Ok(())
    }
}

#[async_trait]
impl Provider for HetznerProvider {
    fn provider_type(&self) -> ProviderType {
        ProviderType::Hetzner
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities {
            record_types: Some(WRITABLE_TYPES.iter().map(|t| u16::from(*t)).collect()),
            atomic_batch: false,
            alias: false,
            max_batch: None,
            lists_zones: true,
        }
    }

    async fn list_zones(&self) -> Result<Vec<ZoneName>, ProviderError> {
        let mut zones = Vec::new();
        let mut page = 1u32;
        loop {
            let query = [
                ("page", page.to_string()),
                ("per_page", PER_PAGE.to_string()),
            ];
            // An account without any zone is answered with 404, not an empty list.
            let Some(answer) = self.get::<ZonesPage>("/zones", &query, true).await? else {
                break;
            };
            let got = answer.zones.len();
            let last = answer.meta.last_page("Hetzner GET /zones")?;
            for z in &answer.zones {
                let name = ZoneName::parse(&z.name).map_err(|e| {
                    ProviderError::InvalidAnswer(shorten(&format!(
                        "Hetzner GET /zones: zone name {:?}: {e}",
                        z.name
                    )))
                })?;
                zones.push(name);
            }
            if page >= last || got == 0 || page >= MAX_PAGES {
                break;
            }
            page += 1;
        }
        zones.sort();
        zones.dedup();
        Ok(zones)
    }

    async fn read_zone(&self, zone: &ZoneName) -> Result<Option<ZoneContent>, ProviderError> {
        Ok(self.read_state(zone).await?.map(|s| s.content))
    }

    async fn apply(&self, plan: &Plan) -> Result<ApplyReport, ProviderError> {
        if plan.is_empty() {
            return Ok(ApplyReport::default());
        }
        let state = self
            .read_state(&plan.zone)
            .await?
            .ok_or_else(|| ProviderError::ZoneNotFound(plan.zone.to_string()))?;
        check_before_values(&state.content, plan)?;
        // Every value is converted before the first write, so a value the
        // API cannot take stops the plan before anything changes.
        let mut steps_per_change = Vec::with_capacity(plan.changes.len());
        for change in &plan.changes {
            let existing = state
                .records
                .get(&change.key)
                .map(Vec::as_slice)
                .unwrap_or_default();
            let steps = steps_for(&plan.zone, &change.key, existing, change.after.as_ref())
                .map_err(|e| ProviderError::Unsupported(format!("{}: {e}", change.key)))?;
            steps_per_change.push(steps);
        }

        // Deletions first, then updates, then creations, so that a name
        // changing type (a CNAME replaced by an A set) never holds both.
        let mut order: Vec<usize> = (0..plan.changes.len()).collect();
        order.sort_by_key(|&i| match plan.changes[i].op {
            ChangeOp::Delete => 0,
            ChangeOp::Update => 1,
            ChangeOp::Create => 2,
        });

        let mut results: Vec<Option<Result<(), String>>> = vec![None; plan.changes.len()];
        let mut confirmed_writes = 0usize;
        for &i in &order {
            let steps = &steps_per_change[i];
            let mut done = 0usize;
            for step in steps {
                match self.write(&state.zone.id, step).await {
                    Ok(()) => {
                        done += 1;
                        confirmed_writes += 1;
                    }
                    Err(error) if confirmed_writes == 0 => return Err(error),
                    Err(error) => {
                        let message = if done == 0 {
                            error.to_string()
                        } else {
                            format!(
                                "partly applied: {done} of {} record writes were done, then: {error}",
                                steps.len()
                            )
                        };
                        results[i] = Some(Err(message));
                        return Ok(report(plan, results));
                    }
                }
            }
            results[i] = Some(Ok(()));
        }
        Ok(report(plan, results))
    }

    async fn test_connection(&self) -> Result<(), ProviderError> {
        // 200 (zones, in the documented shape) and 404 (an account without
        // zones) both prove the token works.
        self.get::<ZonesPage>(
            "/zones",
            &[("page", "1".into()), ("per_page", "1".into())],
            true,
        )
        .await
        .map(|_| ())
    }

    async fn probe_write(&self, zone: &ZoneName) -> Result<(), ProviderError> {
        let api_zone = self
            .find_zone(zone)
            .await?
            .ok_or_else(|| ProviderError::ZoneNotFound(zone.to_string()))?;
        let body = json!({
            "zone_id": api_zone.id,
            "type": "TXT",
            "name": PROBE_LABEL,
            "value": "\"zentralink write probe\"",
            "ttl": 60,
        });
        let created = self
            .call(Method::POST, "/records", &[], Some(&body), false)
            .await?;
        let created_id = created
            .and_then(|b| serde_json::from_slice::<RecordReply>(&b).ok())
            .map(|r| r.record.id);
        // Without an id in the answer, find the probe record by name.
        let ids = match created_id {
            Some(id) => vec![id],
            None => self
                .fetch_records(&api_zone)
                .await?
                .into_iter()
                .filter(|r| r.name == PROBE_LABEL && r.record_type == "TXT")
                .map(|r| r.id)
                .collect(),
        };
        for id in ids {
            self.call(
                Method::DELETE,
                &format!("/records/{}", path_segment(&id)),
                &[],
                None,
                true,
            )
            .await
            .map_err(|e| {
                ProviderError::Io(format!(
                    "the write probe created {PROBE_LABEL}.{zone} TXT but could not delete it ({e}); delete it in the Hetzner DNS console"
                ))
            })?;
        }
        Ok(())
    }
}

/// The outcomes in plan order; operations never reached are "not attempted".
fn report(plan: &Plan, results: Vec<Option<Result<(), String>>>) -> ApplyReport {
    ApplyReport {
        outcomes: plan
            .changes
            .iter()
            .zip(results)
            .map(|(change, result)| OpOutcome {
                op: change.op,
                key: change.key.clone(),
                result: result.unwrap_or_else(|| {
                    Err(
                        "not attempted: an earlier operation failed, so nothing after it was sent"
                            .into(),
                    )
                }),
            })
            .collect(),
        // Operations are sent one by one: the zone is read to know it after.
        after: None,
    }
}

// The answers' shapes. Fields the API documents as always present are
// required (no `#[serde(default)]`), so an answer of another shape is an
// error instead of an empty list.

/// A zone as the API lists it.
#[derive(Debug, Clone, Deserialize)]
struct ApiZone {
    id: String,
    name: String,
    /// The TTL of the zone's records that carry none.
    ttl: u32,
}

/// One API record: one value of a record set.
#[derive(Debug, Clone, Deserialize)]
struct ApiRecord {
    id: String,
    #[serde(rename = "type")]
    record_type: String,
    name: String,
    value: String,
    /// Optional in the API: a record without one has the zone's.
    #[serde(default)]
    ttl: Option<u32>,
}

/// `GET /zones`.
#[derive(Debug, Deserialize)]
struct ZonesPage {
    zones: Vec<ApiZone>,
    meta: Meta,
}

/// `GET /records`.
#[derive(Debug, Deserialize)]
struct RecordsPage {
    records: Vec<ApiRecord>,
    meta: Meta,
}

#[derive(Debug, Deserialize)]
struct RecordReply {
    record: ApiRecord,
}

#[derive(Debug, Deserialize)]
struct Meta {
    pagination: Pagination,
}

/// `meta.pagination`. The API documents its fields as JSON numbers.
#[derive(Debug, Deserialize)]
struct Pagination {
    last_page: serde_json::Number,
}

impl Meta {
    /// `meta.pagination.last_page`, which must be a whole number.
    fn last_page(&self, what: &str) -> Result<u32, ProviderError> {
        let n = &self.pagination.last_page;
        page_number(n).ok_or_else(|| {
            ProviderError::InvalidAnswer(format!(
                "{what}: meta.pagination.last_page is {}, not a page number",
                shorten(&n.to_string())
            ))
        })
    }
}

/// The error bodies Hetzner sends: `{"error": {"message", "code"}}` from the
/// API, `{"message": ...}` from its gateway (401, 429).
#[derive(Debug, Deserialize)]
struct ErrorBody {
    #[serde(default)]
    error: Option<ErrorDetail>,
    #[serde(default)]
    message: Option<String>,
}

#[derive(Debug, Deserialize)]
struct ErrorDetail {
    #[serde(default)]
    message: String,
}

/// Whether a body is the API's `{"error": {...}}` answer.
fn is_api_error_body(body: &[u8]) -> bool {
    serde_json::from_slice::<ErrorBody>(body).is_ok_and(|b| b.error.is_some())
}

/// The server's own words from an error answer, or the body as text (to be
/// redacted and shortened by the caller).
fn error_message(body: &[u8]) -> String {
    if let Ok(parsed) = serde_json::from_slice::<ErrorBody>(body) {
        if let Some(m) = parsed.error.map(|e| e.message).filter(|m| !m.is_empty()) {
            return m;
        }
        if let Some(m) = parsed.message.filter(|m| !m.is_empty()) {
            return m;
        }
    }
    String::from_utf8_lossy(body).into_owned()
}

/// Maps an HTTP error status to an attempt outcome.
fn classify(
    what: &str,
    status: StatusCode,
    message: &str,
    retry_after: Option<std::time::Duration>,
) -> AttemptError {
    classify_status(
        what,
        status,
        message,
        retry_after,
        "check the API token (DNS console, API tokens) and that it may manage this zone",
        "Hetzner",
    )
}

/// The zone as read, with the API records behind each record set.
#[derive(Debug)]
struct ZoneState {
    zone: ApiZone,
    content: ZoneContent,
    records: BTreeMap<RrKey, Vec<Existing>>,
}

/// One API record, parsed.
#[derive(Debug, Clone)]
struct Existing {
    id: String,
    value: RecordValue,
    ttl: u32,
}

/// Turns an API record into its record-set key and parsed value.
fn record_from_api(
    record: &ApiRecord,
    zone: &ZoneName,
    default_ttl: u32,
) -> Result<(RrKey, Existing), String> {
    let context = || {
        format!(
            "Hetzner record {} {} {:?}",
            record.name, record.record_type, record.value
        )
    };
    let name = zone
        .owner(&record.name)
        .map_err(|e| format!("{}: {e}", context()))?;
    let rtype =
        parse_record_type(&record.record_type).map_err(|e| format!("{}: {e}", context()))?;
    let text = if rtype == RecordType::TXT {
        txt_from_api(&record.value)
    } else {
        record.value.clone()
    };
    let value = RecordValue::parse_existing(rtype, &text, zone)
        .map_err(|e| format!("{}: {e}", context()))?;
    Ok((
        RrKey::new(name, rtype),
        Existing {
            id: record.id.clone(),
            value,
            ttl: record.ttl.unwrap_or(default_ttl),
        },
    ))
}

/// TXT values come back either in presentation format (quoted strings, with
/// a trailing space after several of them) or, when entered in the console
/// without quotes, as the raw text, which is one string.
fn txt_from_api(value: &str) -> String {
    let trimmed = value.trim();
    if trimmed.starts_with('"') {
        trimmed.to_owned()
    } else {
        quote(trimmed.as_bytes())
    }
}

/// The value as the API takes it: the presentation format, with names
/// absolute (a trailing dot), except two types:
/// - HINFO, which ZentraLink's model renders in the generic RFC 3597 form;
/// - a TXT holding one string of 254 or 255 bytes, sent without quotes: the
///   API refuses such a value once quoted, since it counts the quotes towards
///   the 255-byte limit (observed by other clients of the API).
fn value_for_api(rtype: RecordType, value: &RecordValue) -> Result<String, String> {
    match rtype {
        RecordType::HINFO => match value.to_rdata(rtype)? {
            RData::HINFO(h) => Ok(format!("{} {}", quote(&h.cpu), quote(&h.os))),
            _ => Err("HINFO data does not decode".into()),
        },
        RecordType::TXT => match value.to_rdata(rtype)? {
            RData::TXT(txt) => match &*txt.txt_data {
                [only]
                    if only.len() >= TXT_STRING_MAX - 1
                        && only
                            .iter()
                            .all(|b| (0x20..=0x7e).contains(b) && *b != b'"' && *b != b'\\') =>
                {
                    Ok(String::from_utf8_lossy(only).into_owned())
                }
                _ => Ok(value.text().to_owned()),
            },
            _ => Err("TXT data does not decode".into()),
        },
        _ => Ok(value.text().to_owned()),
    }
}

/// A record body without its zone id.
#[derive(Debug, Clone)]
struct RecordBody {
    record_type: String,
    name: String,
    value: String,
    ttl: u32,
}

impl RecordBody {
    fn for_zone(&self, zone_id: &str) -> serde_json::Value {
        json!({
            "zone_id": zone_id,
            "type": self.record_type,
            "name": self.name,
            "value": self.value,
            "ttl": self.ttl,
        })
    }
}

/// One record write.
#[derive(Debug, Clone)]
enum Step {
    Create { body: RecordBody },
    Rewrite { id: String, body: RecordBody },
    Remove { id: String },
}

/// The record writes that turn the `existing` records of one set into `after`
/// (`None`: delete the set). Records already right are left alone; a record
/// with a wanted value but another TTL is rewritten; other records are reused
/// for the remaining values, then values are added or records removed.
fn steps_for(
    zone: &ZoneName,
    key: &RrKey,
    existing: &[Existing],
    after: Option<&RecordSet>,
) -> Result<Vec<Step>, String> {
    let Some(after) = after else {
        return Ok(existing
            .iter()
            .map(|r| Step::Remove { id: r.id.clone() })
            .collect());
    };
    let body = |value: &RecordValue| -> Result<RecordBody, String> {
        Ok(RecordBody {
            record_type: type_name(key.rtype),
            name: zone.relative(&key.name()),
            value: value_for_api(key.rtype, value)?,
            ttl: after.ttl,
        })
    };
    let mut wanted: Vec<&RecordValue> = after.values().iter().collect();
    let mut pending = Vec::new();
    for record in existing {
        match wanted.iter().position(|v| **v == record.value) {
            Some(i) if record.ttl == after.ttl => {
                wanted.remove(i);
            }
            _ => pending.push(record),
        }
    }
    let mut steps = Vec::new();
    let mut spare = Vec::new();
    for record in pending {
        match wanted.iter().position(|v| **v == record.value) {
            Some(i) => {
                let value = wanted.remove(i);
                steps.push(Step::Rewrite {
                    id: record.id.clone(),
                    body: body(value)?,
                });
            }
            None => spare.push(record),
        }
    }
    let mut spare = spare.into_iter();
    for value in wanted {
        match spare.next() {
            Some(record) => steps.push(Step::Rewrite {
                id: record.id.clone(),
                body: body(value)?,
            }),
            None => steps.push(Step::Create { body: body(value)? }),
        }
    }
    steps.extend(spare.map(|r| Step::Remove { id: r.id.clone() }));
    Ok(steps)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use super::*;

    fn zone() -> ZoneName {
        ZoneName::parse("acme.example.").unwrap()
    }

    fn value(t: RecordType, v: &str) -> RecordValue {
        RecordValue::parse(t, v, &zone()).unwrap()
    }

    fn existing(id: &str, t: RecordType, v: &str, ttl: u32) -> Existing {
        Existing {
            id: id.into(),
            value: value(t, v),
            ttl,
        }
    }

    fn describe(steps: &[Step]) -> Vec<String> {
        steps
            .iter()
            .map(|s| match s {
                Step::Create { body } => format!("create {} {}", body.value, body.ttl),
                Step::Rewrite { id, body } => format!("rewrite {id} {} {}", body.value, body.ttl),
                Step::Remove { id } => format!("remove {id}"),
            })
            .collect()
    }

    #[test]
    fn updates_touch_only_the_records_that_change() {
        let key = RrKey::new(zone().owner("www").unwrap(), RecordType::A);
        let have = [
            existing("1", RecordType::A, "192.0.2.1", 300),
            existing("2", RecordType::A, "192.0.2.2", 300),
            existing("3", RecordType::A, "192.0.2.3", 600),
        ];
        let after = RecordSet::new(
            300,
            vec![
                value(RecordType::A, "192.0.2.1"),
                value(RecordType::A, "192.0.2.3"),
                value(RecordType::A, "192.0.2.4"),
                value(RecordType::A, "192.0.2.5"),
            ],
        );
        let steps = steps_for(&zone(), &key, &have, Some(&after)).unwrap();
        assert_eq!(
            describe(&steps),
            vec![
                "rewrite 3 192.0.2.3 300",
                "rewrite 2 192.0.2.4 300",
                "create 192.0.2.5 300",
            ]
        );
        let fewer = RecordSet::new(300, vec![value(RecordType::A, "192.0.2.2")]);
        let steps = steps_for(&zone(), &key, &have, Some(&fewer)).unwrap();
        assert_eq!(describe(&steps), vec!["remove 1", "remove 3"]);
        assert_eq!(
            describe(&steps_for(&zone(), &key, &have, None).unwrap()),
            vec!["remove 1", "remove 2", "remove 3"]
        );
    }

    #[test]
    fn values_are_sent_in_the_form_the_api_reads() {
        assert_eq!(
            value_for_api(RecordType::MX, &value(RecordType::MX, "10 mx1")).unwrap(),
            "10 mx1.acme.example."
        );
        assert_eq!(
            value_for_api(RecordType::TXT, &value(RecordType::TXT, "\"v=spf1 -all\"")).unwrap(),
            "\"v=spf1 -all\""
        );
        let full = "x".repeat(255);
        assert_eq!(
            value_for_api(
                RecordType::TXT,
                &value(RecordType::TXT, &format!("\"{full}\""))
            )
            .unwrap(),
            full
        );
        assert_eq!(
            value_for_api(
                RecordType::HINFO,
                &value(RecordType::HINFO, "\"INTEL-386\" \"Linux\"")
            )
            .unwrap(),
            "\"INTEL-386\" \"Linux\""
        );
    }

    #[test]
    fn txt_values_read_quoted_or_raw() {
        let quoted = txt_from_api("\"v=spf1 mx -all\" ");
        assert_eq!(quoted, "\"v=spf1 mx -all\"");
        let raw = txt_from_api("v=DMARC1; p=reject");
        assert_eq!(
            value(RecordType::TXT, &raw),
            value(RecordType::TXT, "\"v=DMARC1; p=reject\"")
        );
    }

    #[test]
    fn api_records_become_record_set_members() {
        let record = ApiRecord {
            id: "r1".into(),
            record_type: "MX".into(),
            name: "@".into(),
            value: "10 smtpin".into(),
            ttl: None,
        };
        let (key, parsed) = record_from_api(&record, &zone(), 7200).unwrap();
        assert_eq!(key.to_string(), "acme.example. MX");
        assert_eq!(parsed.value.text(), "10 smtpin.acme.example.");
        assert_eq!(parsed.ttl, 7200);
        let bad = ApiRecord {
            value: "not an address".into(),
            record_type: "A".into(),
            ..record
        };
        let err = record_from_api(&bad, &zone(), 7200).unwrap_err();
        assert!(err.contains("Hetzner record @ A"), "{err}");
    }

    #[test]
    fn error_bodies_give_their_message() {
        assert_eq!(
            error_message(br#"{"record":{},"error":{"message":"zone not found","code":422}}"#),
            "zone not found"
        );
        assert_eq!(
            error_message(br#"{"message":"Invalid authentication credentials"}"#),
            "Invalid authentication credentials"
        );
        assert_eq!(
            shorten(&error_message(b"<html>\n bad gateway </html>")),
            "<html> bad gateway </html>"
        );
    }

    #[test]
    fn base_urls_are_checked() {
        assert_eq!(
            base_url(None, DEFAULT_URL, "spec.hetzner.url").unwrap(),
            DEFAULT_URL
        );
        assert_eq!(
            base_url(Some("http://127.0.0.1:9/api/v1/"), DEFAULT_URL, "f").unwrap(),
            "http://127.0.0.1:9/api/v1"
        );
        assert!(base_url(Some("ftp://x"), DEFAULT_URL, "f").is_err());
        assert!(base_url(Some("not a url"), DEFAULT_URL, "f").is_err());
        assert_eq!(path_segment("ab/../c d"), "ab%2F..%2Fc%20d");
    }
}
