//! The Cloudflare provider: the Cloudflare API v4 (`Authorization: Bearer`
//! token, the `{success, errors, result, result_info}` envelope, zones and
//! DNS records by id), writing each plan in ONE request to the atomic
//! `dns_records/batch` endpoint. Does I/O (HTTPS).
//!
//! Cloudflare keeps one API record per value, each with its own TTL;
//! ZentraLink groups them into record sets. How values travel:
//! - A, AAAA, CNAME, NS, PTR, TXT: `content` (host names without the
//!   trailing dot, as the API shows them); new A, AAAA and CNAME records are
//!   created with `proxied: false` (DNS only), since a proxied record does
//!   not answer with the declared data. Existing records are patched, not
//!   overwritten, so their proxy status, comment and tags stay;
//! - MX: the exchange in `content`, the preference in `priority`;
//! - CAA, CERT, DS, HTTPS, NAPTR, SMIMEA, SRV, SSHFP, SVCB, TLSA, URI: the
//!   fields in a `data` object (what the API reads for these types).
//!   URI has no presentation format in ZentraLink's record model; it is
//!   declared as `TYPE256` with RFC 3597 data.
//!
//! `apply` sends nothing when the plan is stale (`Conflict`), and otherwise
//! one batch. Cloudflare runs a batch in one database transaction (deletes,
//! then patches, puts and posts), so it is applied entirely or not at all:
//! the report marks every operation applied, or `apply` returns the error.
//!
//! What is read: a zone is absent only when the documented zone lookup
//! (`GET /zones?name=`) lists no zone of that name. A 2xx answer that is
//! not the documented envelope (`success`, `errors`, a `result` of the
//! documented type, `result_info.total_pages` on lists, a record's `id`,
//! `name`, `type` and `ttl`) is [`ProviderError::InvalidAnswer`], never an
//! empty zone. Redirects are never followed (the token would go with them),
//! and answers are read up to [`Limits::max_response_bytes`].

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use async_trait::async_trait;
use hickory_proto::rr::{Name, RData, RecordType};
use reqwest::header::{AUTHORIZATION, HeaderValue, RETRY_AFTER};
use reqwest::{Method, StatusCode};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value, json};
use zentralink_model::plan::Plan;
use zentralink_model::record::{
    RecordSet, RecordValue, RrKey, generic, parse_record_type, type_name,
};
use zentralink_model::resources::{HttpApiSettings, ProviderType};
use zentralink_model::secrets::SecretString;
use zentralink_model::{ZoneContent, ZoneName};

use super::http::{
    base_url, classify_status, client, idempotency_of, page_number, path_segment, read_body,
    read_error_body, redirect_error, secret_header, shorten, transport_error,
};
use super::resilience::{AttemptError, Governor, Limits, retry_after_seconds};
use super::{ApplyReport, Capabilities, PROBE_LABEL, Provider, ProviderError, check_before_values};
use zentralink_model::record::quote_character_string as quote;

/// The public API, used when `spec.cloudflare.url` is not set.
pub const DEFAULT_URL: &str = "https://api.cloudflare.com/client/v4";

/// Records in one batch on the Free plan (Pro and above: 3,500). The plan of
/// a zone is not known here, so the lower figure is the one promised.
pub const MAX_BATCH_RECORDS: usize = 200;

/// The URI record type (RFC 7553), which hickory-proto does not name.
const URI: RecordType = RecordType::Unknown(256);
/// Most zones per page the API allows.
const ZONES_PER_PAGE: u32 = 50;
/// Records per page asked for.
const RECORDS_PER_PAGE: u32 = 500;
/// A guard against a server that never reports its last page.
const MAX_PAGES: u32 = 100_000;
/// Error codes Cloudflare uses (with HTTP 400 as well as 401/403) for a
/// missing, malformed, invalid or insufficient token.
const AUTH_ERROR_CODES: [i64; 6] = [1000, 6003, 6111, 9109, 10000, 10001];

/// Record types this provider writes: the DNS record types the API documents,
/// except DNSKEY (ZentraLink's model holds it only as RFC 3597 data and
/// Cloudflare signs zones itself) and LOC (no presentation format in the model).
const WRITABLE_TYPES: [RecordType; 18] = [
    RecordType::A,
    RecordType::AAAA,
    RecordType::CAA,
    RecordType::CERT,
    RecordType::CNAME,
    RecordType::DS,
    RecordType::HTTPS,
    RecordType::MX,
    RecordType::NAPTR,
    RecordType::NS,
    RecordType::PTR,
    RecordType::SMIMEA,
    RecordType::SRV,
    RecordType::SSHFP,
    RecordType::SVCB,
    RecordType::TLSA,
    RecordType::TXT,
    URI,
];

/// A connection to the Cloudflare API.
#[derive(Clone)]
pub struct CloudflareProvider {
    base: String,
    client: reqwest::Client,
    /// `Bearer <token>`, marked sensitive.
    auth: HeaderValue,
    /// Kept only to scrub the token out of any text a server sends back.
    token: SecretString,
    governor: Governor,
}

impl fmt::Debug for CloudflareProvider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CloudflareProvider")
            .field("base", &self.base)
            .field("token", &self.token)
            .finish_non_exhaustive()
    }
}

impl CloudflareProvider {
    /// Builds a provider for the API at `settings.url` (default
    /// [`DEFAULT_URL`]) with an API token. Sends nothing.
    pub fn new(
        settings: &HttpApiSettings,
        token: SecretString,
        limits: Limits,
    ) -> Result<Self, ProviderError> {
        super::install_tls_provider();
        let base = base_url(settings.url.as_deref(), DEFAULT_URL, "spec.cloudflare.url")?;
        let auth = secret_header(
            &format!("Bearer {}", token.expose().trim()),
            "the Cloudflare API token",
        )?;
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

    /// One call through the governor, giving the body of a 2xx answer.
    async fn call(
        &self,
        method: Method,
        path: &str,
        query: &[(&str, String)],
        body: Option<&Value>,
    ) -> Result<Vec<u8>, ProviderError> {
        let what = format!("Cloudflare {method} {path}");
        let url = format!("{}{path}", self.base);
        self.governor
            .call(&what, idempotency_of(&method), || {
                self.attempt(&what, method.clone(), &url, query, body)
            })
            .await
    }

    async fn attempt(
        &self,
        what: &str,
        method: Method,
        url: &str,
        query: &[(&str, String)],
        body: Option<&Value>,
    ) -> Result<Vec<u8>, AttemptError> {
        tracing::debug!(what, "calling the Cloudflare API");
        let idempotency = idempotency_of(&method);
        let mut request = self
            .client
            .request(method, url)
            .header(AUTHORIZATION, self.auth.clone())
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
                "Cloudflare",
                &response,
                "spec.cloudflare.url",
                |text| self.redact(text),
            ));
        }
        let limit = self.governor.limits().max_response_bytes;
        if status.is_success() {
            return read_body(response, limit)
                .await
                .map_err(|e| e.into_attempt(what, "Cloudflare", status, idempotency));
        }
        let retry_after = retry_after_seconds(
            response
                .headers()
                .get(RETRY_AFTER)
                .and_then(|v| v.to_str().ok()),
        );
        let bytes = read_error_body(response, limit).await;
        let (message, codes) = error_details(&bytes);
        let message = shorten(&self.redact(&message));
        // 7000 is the API's "No route for that URI"; a 404 without the
        // envelope did not come from the API at all.
        if status == StatusCode::NOT_FOUND && (codes.is_empty() || codes.contains(&7000)) {
            return Err(AttemptError::Permanent(ProviderError::Unsupported(
                format!(
                    "{what}: HTTP 404 ({message}); this URL does not lead to the Cloudflare API v4: check spec.cloudflare.url (the default is {DEFAULT_URL})"
                ),
            )));
        }
        Err(classify(what, status, &message, &codes, retry_after))
    }

    /// A call whose envelope is read: a failure it reports is an error,
    /// and otherwise the whole answer is parsed as `T` ([`Single`] or
    /// [`Page`]), which must match.
    async fn envelope<T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        query: &[(&str, String)],
        body: Option<&Value>,
    ) -> Result<T, ProviderError> {
        let bytes = self.call(method.clone(), path, query, body).await?;
        let not_documented = |e: serde_json::Error| {
            ProviderError::InvalidAnswer(format!(
                "Cloudflare {method} {path}: the answer is not the documented envelope: {}; check spec.cloudflare.url (the default is {DEFAULT_URL})",
                shorten(&self.redact(&e.to_string()))
            ))
        };
        let status: Status = serde_json::from_slice(&bytes).map_err(not_documented)?;
        if !status.success {
            return Err(ProviderError::Unsupported(format!(
                "Cloudflare {method} {path}: the API reports failure: {}",
                shorten(&self.redact(&describe_errors(&status.errors)))
            )));
        }
        serde_json::from_slice(&bytes).map_err(not_documented)
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

    /// The zone named `zone`, or `None` when the token sees no such zone.
    async fn find_zone(&self, zone: &ZoneName) -> Result<Option<ApiZone>, ProviderError> {
        let name = zone.without_dot();
        let answer: Page<ApiZone> = self
            .envelope(
                Method::GET,
                "/zones",
                &[
                    ("name", name.clone()),
                    ("per_page", ZONES_PER_PAGE.to_string()),
                ],
                None,
            )
            .await?;
        // The documented "no such zone": a list without it.
        Ok(answer
            .result
            .into_iter()
            .find(|z| z.name.trim_end_matches('.').eq_ignore_ascii_case(&name)))
    }

    /// Every DNS record of a zone, following `result_info` to the last page.
    async fn fetch_records(&self, zone: &ApiZone) -> Result<Vec<ApiRecord>, ProviderError> {
        let path = format!("/zones/{}/dns_records", path_segment(&zone.id));
        let mut records = Vec::new();
        let mut seen = BTreeSet::new();
        let mut page = 1u32;
        loop {
            let query = [
                ("page", page.to_string()),
                ("per_page", RECORDS_PER_PAGE.to_string()),
            ];
            let answer: Page<ApiRecord> = self.envelope(Method::GET, &path, &query, None).await?;
            let total_pages = answer.total_pages(&format!("Cloudflare GET {path}"))?;
            let batch = answer.result;
            let got = batch.len();
            for record in batch {
                // A record moving between pages while we read must not count twice.
                if seen.insert(record.id.clone()) {
                    records.push(record);
                }
            }
            if page >= total_pages || got == 0 {
                return Ok(records);
            }
            if page >= MAX_PAGES {
                return Err(ProviderError::InvalidAnswer(format!(
                    "Cloudflare GET {path}: the zone {} claims more than {MAX_PAGES} pages of records",
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
        let mut by_key: BTreeMap<RrKey, Vec<Existing>> = BTreeMap::new();
        for record in &records {
            if record.is_read_only() {
                // Records Cloudflare manages for its own products (for
                // example Email Routing) cannot be changed through the API.
                tracing::debug!(name = %record.name, record_type = %record.record_type, "skipping a read-only Cloudflare record");
                continue;
            }
            let (key, existing) = record_from_api(record, zone)
                .map_err(|e| ProviderError::InvalidAnswer(shorten(&self.redact(&e))))?;
            by_key.entry(key).or_default().push(existing);
        }
        let mut content = ZoneContent::new(zone.clone());
        for (key, records) in &by_key {
            // The API gives every record its own TTL; DNS gives a record set
            // one (RFC 2181 section 5.2). When the records of a set differ,
            // the lowest is what resolvers end up using, so that is the
            // set's TTL; the next update of the set writes one TTL to all.
            let ttl = records.iter().map(|r| r.ttl).min().unwrap_or(1);
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
}

#[async_trait]
impl Provider for CloudflareProvider {
    fn provider_type(&self) -> ProviderType {
        ProviderType::Cloudflare
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities {
            record_types: Some(WRITABLE_TYPES.iter().map(|t| u16::from(*t)).collect()),
            atomic_batch: true,
            alias: false,
            max_batch: Some(MAX_BATCH_RECORDS),
            lists_zones: true,
        }
    }

    async fn list_zones(&self) -> Result<Vec<ZoneName>, ProviderError> {
        let mut zones = Vec::new();
        let mut page = 1u32;
        loop {
            let query = [
                ("page", page.to_string()),
                ("per_page", ZONES_PER_PAGE.to_string()),
            ];
            let answer: Page<ApiZone> = self.envelope(Method::GET, "/zones", &query, None).await?;
            let total_pages = answer.total_pages("Cloudflare GET /zones")?;
            let batch = answer.result;
            let got = batch.len();
            for z in &batch {
                zones.push(ZoneName::parse(&z.name).map_err(|e| {
                    ProviderError::InvalidAnswer(shorten(&format!(
                        "Cloudflare GET /zones: zone name {:?}: {e}",
                        z.name
                    )))
                })?);
            }
            if page >= total_pages || got == 0 || page >= MAX_PAGES {
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
        let mut batch = Batch::default();
        for change in &plan.changes {
            let existing = state
                .records
                .get(&change.key)
                .map(Vec::as_slice)
                .unwrap_or_default();
            batch
                .add(&change.key, existing, change.after.as_ref())
                .map_err(|e| ProviderError::Unsupported(format!("{}: {e}", change.key)))?;
        }
        if batch.len() > MAX_BATCH_RECORDS {
            return Err(ProviderError::Unsupported(format!(
                "the plan writes {} Cloudflare records; one batch takes at most {MAX_BATCH_RECORDS} on every plan, and splitting it would lose all-or-nothing; nothing was sent",
                batch.len()
            )));
        }
        let path = format!("/zones/{}/dns_records/batch", path_segment(&state.zone.id));
        let body = batch.into_body();
        let bytes = self
            .call(Method::POST, &path, &[], Some(&body))
            .await
            .map_err(|e| match e {
                ProviderError::Unsupported(m) => ProviderError::Unsupported(format!(
                    "{m}; the batch is all-or-nothing, so nothing was applied"
                )),
                other => other,
            })?;
        // A 2xx answer means the transaction committed; an envelope that says
        // otherwise, or none at all, leaves the outcome unknown.
        match serde_json::from_slice::<Status>(&bytes) {
            Ok(status) if status.success => {}
            Ok(status) => {
                return Err(ProviderError::Uncertain(format!(
                    "Cloudflare POST {path}: HTTP 2xx but the API reports failure ({}); re-read the zone before trying again",
                    shorten(&self.redact(&describe_errors(&status.errors)))
                )));
            }
            Err(e) => {
                return Err(ProviderError::Uncertain(format!(
                    "Cloudflare POST {path}: HTTP 2xx but the answer is not the documented envelope ({}); the batch was probably applied: re-read the zone before trying again",
                    shorten(&self.redact(&e.to_string()))
                )));
            }
        }
        Ok(ApplyReport::all_applied(plan))
    }

    async fn test_connection(&self) -> Result<(), ProviderError> {
        // Listing zones works for user and account API tokens alike and
        // proves the Zone:Read permission every read needs.
        // (`/user/tokens/verify` refuses account-owned tokens.) The answer
        // must be the documented list, which tells the API from anything else.
        self.envelope::<Page<ApiZone>>(
            Method::GET,
            "/zones",
            &[("page", "1".into()), ("per_page", "5".into())],
            None,
        )
        .await
        .map(|_| ())
    }

    async fn probe_write(&self, zone: &ZoneName) -> Result<(), ProviderError> {
        let api_zone = self
            .find_zone(zone)
            .await?
            .ok_or_else(|| ProviderError::ZoneNotFound(zone.to_string()))?;
        let records_path = format!("/zones/{}/dns_records", path_segment(&api_zone.id));
        let probe_name = format!("{PROBE_LABEL}.{}", zone.without_dot());
        let body = json!({
            "type": "TXT",
            "name": probe_name,
            "content": "\"zentralink write probe\"",
            "ttl": 60,
        });
        let created: Single<RecordId> = self
            .envelope(Method::POST, &records_path, &[], Some(&body))
            .await
            .map_err(|e| match e {
                ProviderError::InvalidAnswer(m) => ProviderError::InvalidAnswer(format!(
                    "{m}; the probe record may have been created without the answer saying which: delete {probe_name} TXT in the Cloudflare dashboard"
                )),
                other => other,
            })?;
        let id = created.result.id;
        self.call(
            Method::DELETE,
            &format!("{records_path}/{}", path_segment(&id)),
            &[],
            None,
        )
        .await
        .map_err(|e| {
            ProviderError::Io(format!(
                "the write probe created {probe_name} TXT but could not delete it ({e}); delete it in the Cloudflare dashboard"
            ))
        })?;
        Ok(())
    }
}

// The answers' shapes. Fields the API documents as always present are
// required (no `#[serde(default)]`), so an answer of another shape is an
// error instead of an empty list.

/// What every 2xx answer starts with, read first: a failure is reported
/// whatever `result` holds.
#[derive(Debug, Deserialize)]
struct Status {
    success: bool,
    errors: Vec<ApiMessage>,
}

/// A successful answer about one object.
#[derive(Debug, Deserialize)]
struct Single<T> {
    result: T,
}

/// A successful answer to a list: a list (not `null`, not an object) and
/// `result_info`, which says how many pages there are.
#[derive(Debug, Deserialize)]
struct Page<T> {
    result: Vec<T>,
    result_info: ResultInfo,
}

impl<T> Page<T> {
    fn total_pages(&self, what: &str) -> Result<u32, ProviderError> {
        let n = &self.result_info.total_pages;
        page_number(n).ok_or_else(|| {
            ProviderError::InvalidAnswer(format!(
                "{what}: result_info.total_pages is {}, not a page count",
                shorten(&n.to_string())
            ))
        })
    }
}

/// An error answer's envelope, read leniently: it may come from a gateway.
#[derive(Debug, Deserialize)]
struct ErrorEnvelope {
    #[serde(default)]
    errors: Vec<ApiMessage>,
}

/// One entry of `errors` (with its `error_chain`).
#[derive(Debug, Deserialize)]
struct ApiMessage {
    #[serde(default)]
    code: Option<i64>,
    #[serde(default)]
    message: String,
    #[serde(default)]
    error_chain: Vec<ApiMessage>,
}

#[derive(Debug, Deserialize)]
struct ResultInfo {
    total_pages: serde_json::Number,
}

/// The created record of a `POST`, of which only the id is used.
#[derive(Debug, Deserialize)]
struct RecordId {
    id: String,
}

#[derive(Debug, Clone, Deserialize)]
struct ApiZone {
    id: String,
    name: String,
}

/// One API record: one value of a record set.
#[derive(Debug, Clone, Deserialize)]
struct ApiRecord {
    id: String,
    name: String,
    #[serde(rename = "type")]
    record_type: String,
    /// Checked where the type needs it (types with `data` need none).
    #[serde(default)]
    content: Option<String>,
    /// 1 means "automatic".
    ttl: u32,
    #[serde(default)]
    priority: Option<u16>,
    #[serde(default)]
    data: Option<Map<String, Value>>,
    #[serde(default)]
    meta: Option<Map<String, Value>>,
}

impl ApiRecord {
    fn is_read_only(&self) -> bool {
        self.meta
            .as_ref()
            .and_then(|m| m.get("read_only"))
            .and_then(Value::as_bool)
            .unwrap_or(false)
    }
}

/// `code N: message (code M: cause)` for each error.
fn describe_errors(errors: &[ApiMessage]) -> String {
    if errors.is_empty() {
        return "no error given".into();
    }
    errors
        .iter()
        .map(|e| {
            let mut out = match e.code {
                Some(code) => format!("code {code}: {}", e.message),
                None => e.message.clone(),
            };
            if !e.error_chain.is_empty() {
                out.push_str(&format!(" ({})", describe_errors(&e.error_chain)));
            }
            out
        })
        .collect::<Vec<_>>()
        .join("; ")
}

fn collect_codes(errors: &[ApiMessage], out: &mut Vec<i64>) {
    for e in errors {
        out.extend(e.code);
        collect_codes(&e.error_chain, out);
    }
}

/// The server's words and error codes from an error answer (the words to be
/// redacted and shortened by the caller).
fn error_details(body: &[u8]) -> (String, Vec<i64>) {
    if let Ok(envelope) = serde_json::from_slice::<ErrorEnvelope>(body)
        && !envelope.errors.is_empty()
    {
        let mut codes = Vec::new();
        collect_codes(&envelope.errors, &mut codes);
        return (describe_errors(&envelope.errors), codes);
    }
    (String::from_utf8_lossy(body).into_owned(), Vec::new())
}

/// Maps an HTTP error status (and Cloudflare's error codes) to an attempt outcome.
fn classify(
    what: &str,
    status: StatusCode,
    message: &str,
    codes: &[i64],
    retry_after: Option<std::time::Duration>,
) -> AttemptError {
    if status.as_u16() == 400 && codes.iter().any(|c| AUTH_ERROR_CODES.contains(c)) {
        return AttemptError::Permanent(ProviderError::Authentication(format!(
            "{what}: HTTP {status}: {message}; check the API token (give the token itself, without \"Bearer\")"
        )));
    }
    classify_status(
        what,
        status,
        message,
        retry_after,
        "check the API token and that it has Zone:Read and DNS:Edit for this zone",
        "Cloudflare",
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

/// The API's name for a record type.
fn api_type_name(rtype: RecordType) -> String {
    if rtype == URI {
        "URI".into()
    } else {
        type_name(rtype)
    }
}

/// A host name as the API writes it: no trailing dot, `.` for the root.
fn api_host(name: &Name) -> String {
    if name.is_root() {
        return ".".into();
    }
    let ascii = name.to_ascii();
    ascii.strip_suffix('.').unwrap_or(&ascii).to_owned()
}

/// A host name from the API as an absolute name in presentation format.
fn absolute_host(host: &str) -> String {
    let host = host.trim();
    if host.is_empty() || host == "." {
        ".".into()
    } else if host.ends_with('.') {
        host.to_owned()
    } else {
        format!("{host}.")
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The API fields (`content`, `priority`, `data`) that carry one value.
fn value_fields(rtype: RecordType, value: &RecordValue) -> Result<Map<String, Value>, String> {
    let mut out = Map::new();
    let not_its_type = || format!("{} data does not decode", type_name(rtype));
    match rtype {
        RecordType::A | RecordType::AAAA | RecordType::TXT => {
            out.insert("content".into(), json!(value.text()));
        }
        RecordType::CNAME | RecordType::NS | RecordType::PTR => {
            let host = match value.to_rdata(rtype)? {
                RData::CNAME(n) => n.0,
                RData::NS(n) => n.0,
                RData::PTR(n) => n.0,
                _ => return Err(not_its_type()),
            };
            out.insert("content".into(), json!(api_host(&host)));
        }
        RecordType::MX => {
            let RData::MX(mx) = value.to_rdata(rtype)? else {
                return Err(not_its_type());
            };
            out.insert("content".into(), json!(api_host(&mx.exchange)));
            out.insert("priority".into(), json!(mx.preference));
        }
        RecordType::SRV => {
            let RData::SRV(srv) = value.to_rdata(rtype)? else {
                return Err(not_its_type());
            };
            out.insert(
                "data".into(),
                json!({
                    "priority": srv.priority,
                    "weight": srv.weight,
                    "port": srv.port,
                    "target": api_host(&srv.target),
                }),
            );
        }
        RecordType::CAA => {
            let RData::CAA(caa) = value.to_rdata(rtype)? else {
                return Err(not_its_type());
            };
            let text = String::from_utf8(caa.value.clone())
                .map_err(|_| "the API takes CAA values as text; this one is not UTF-8")?;
            out.insert(
                "data".into(),
                json!({ "flags": caa.flags(), "tag": caa.tag, "value": text }),
            );
        }
        RecordType::TLSA | RecordType::SMIMEA => {
            let tlsa = match value.to_rdata(rtype)? {
                RData::TLSA(t) => t,
                RData::SMIMEA(s) => s.0,
                _ => return Err(not_its_type()),
            };
            out.insert(
                "data".into(),
                json!({
                    "usage": u8::from(tlsa.cert_usage),
                    "selector": u8::from(tlsa.selector),
                    "matching_type": u8::from(tlsa.matching),
                    "certificate": hex(&tlsa.cert_data),
                }),
            );
        }
        RecordType::SSHFP => {
            let RData::SSHFP(sshfp) = value.to_rdata(rtype)? else {
                return Err(not_its_type());
            };
            out.insert(
                "data".into(),
                json!({
                    "algorithm": u8::from(sshfp.algorithm),
                    "type": u8::from(sshfp.fingerprint_type),
                    "fingerprint": hex(&sshfp.fingerprint),
                }),
            );
        }
        RecordType::DS => {
            let RData::DNSSEC(hickory_proto::dnssec::rdata::DNSSECRData::DS(ds)) =
                value.to_rdata(rtype)?
            else {
                return Err(not_its_type());
            };
            out.insert(
                "data".into(),
                json!({
                    "key_tag": ds.key_tag(),
                    "algorithm": u8::from(ds.algorithm()),
                    "digest_type": u8::from(ds.digest_type()),
                    "digest": hex(ds.digest()),
                }),
            );
        }
        RecordType::CERT => {
            let RData::CERT(cert) = value.to_rdata(rtype)? else {
                return Err(not_its_type());
            };
            out.insert(
                "data".into(),
                json!({
                    "type": u16::from(cert.cert_type),
                    "key_tag": cert.key_tag,
                    "algorithm": u8::from(cert.algorithm),
                    "certificate": cert.cert_base64(),
                }),
            );
        }
        RecordType::HTTPS | RecordType::SVCB => {
            let svcb = match value.to_rdata(rtype)? {
                RData::HTTPS(https) => https.0,
                RData::SVCB(svcb) => svcb,
                _ => return Err(not_its_type()),
            };
            let params: Vec<String> = svcb
                .svc_params
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect();
            out.insert(
                "data".into(),
                json!({
                    "priority": svcb.svc_priority,
                    "target": api_host(&svcb.target_name),
                    "value": params.join(" "),
                }),
            );
        }
        RecordType::NAPTR => {
            let RData::NAPTR(naptr) = value.to_rdata(rtype)? else {
                return Err(not_its_type());
            };
            let text = |b: &[u8]| {
                String::from_utf8(b.to_vec())
                    .map_err(|_| "the API takes NAPTR fields as text; this one is not UTF-8")
            };
            out.insert(
                "data".into(),
                json!({
                    "order": naptr.order,
                    "preference": naptr.preference,
                    "flags": text(&naptr.flags)?,
                    "service": text(&naptr.services)?,
                    "regex": text(&naptr.regexp)?,
                    "replacement": api_host(&naptr.replacement),
                }),
            );
        }
        t if t == URI => {
            // hickory-proto has no URI type (RFC 7553): its fields are read with its decoder.
            let mut d = hickory_proto::serialize::binary::BinDecoder::new(value.wire());
            let short = |_| "URI data is too short".to_owned();
            let priority = d.read_u16().map_err(short)?.unverified();
            let weight = d.read_u16().map_err(short)?.unverified();
            let target =
                String::from_utf8(d.read_slice(d.len()).map_err(short)?.unverified().to_vec())
                    .map_err(|_| "the API takes URI targets as text; this one is not UTF-8")?;
            out.insert("priority".into(), json!(priority));
            out.insert("data".into(), json!({ "weight": weight, "target": target }));
        }
        other => {
            return Err(format!(
                "this provider does not write {} records to Cloudflare",
                api_type_name(other)
            ));
        }
    }
    Ok(out)
}

/// The request body for one record (the `id` is added for a put).
fn record_body(key: &RrKey, value: &RecordValue, ttl: u32) -> Result<Map<String, Value>, String> {
    let mut body = Map::new();
    body.insert("name".into(), json!(api_host(&key.name())));
    body.insert("type".into(), json!(api_type_name(key.rtype)));
    body.insert("ttl".into(), json!(ttl));
    if matches!(
        key.rtype,
        RecordType::A | RecordType::AAAA | RecordType::CNAME
    ) {
        body.insert("proxied".into(), json!(false));
    }
    body.extend(value_fields(key.rtype, value)?);
    Ok(body)
}

fn field<'a>(data: &'a Map<String, Value>, name: &str) -> Result<&'a Value, String> {
    data.get(name)
        .ok_or_else(|| format!("data.{name} is missing"))
}

/// A numeric field of `data` (JSON numbers, possibly written as 1.0).
fn number(data: &Map<String, Value>, name: &str) -> Result<u64, String> {
    let v = field(data, name)?;
    v.as_u64()
        .or_else(|| {
            v.as_f64()
                .filter(|f| f.fract() == 0.0 && *f >= 0.0)
                .map(|f| f as u64)
        })
        .ok_or_else(|| format!("data.{name} is not a number: {v}"))
}

fn string<'a>(data: &'a Map<String, Value>, name: &str) -> Result<&'a str, String> {
    let v = field(data, name)?;
    v.as_str()
        .ok_or_else(|| format!("data.{name} is not a string: {v}"))
}

/// The presentation text of a value as the API returns it.
fn presentation(record: &ApiRecord, rtype: RecordType) -> Result<String, String> {
    let content = || {
        record
            .content
            .clone()
            .ok_or_else(|| "the record has no content".to_owned())
    };
    let data = || {
        record
            .data
            .as_ref()
            .ok_or_else(|| "the record has no data".to_owned())
    };
    Ok(match rtype {
        RecordType::TXT => {
            // Quoted strings as in a zone file, or (entered without quotes
            // in the dashboard) the raw text, which is one string.
            let text = content()?;
            let trimmed = text.trim();
            if trimmed.len() >= 2 && trimmed.starts_with('"') && trimmed.ends_with('"') {
                trimmed.to_owned()
            } else {
                quote(trimmed.as_bytes())
            }
        }
        RecordType::CNAME | RecordType::NS | RecordType::PTR => absolute_host(&content()?),
        RecordType::MX => {
            let priority = record
                .priority
                .ok_or_else(|| "an MX record without priority".to_owned())?;
            format!("{priority} {}", absolute_host(&content()?))
        }
        RecordType::SRV => {
            let d = data()?;
            format!(
                "{} {} {} {}",
                number(d, "priority")?,
                number(d, "weight")?,
                number(d, "port")?,
                absolute_host(string(d, "target")?)
            )
        }
        RecordType::CAA => {
            let d = data()?;
            format!(
                "{} {} {}",
                number(d, "flags")?,
                string(d, "tag")?,
                quote(string(d, "value")?.as_bytes())
            )
        }
        RecordType::TLSA | RecordType::SMIMEA => {
            let d = data()?;
            format!(
                "{} {} {} {}",
                number(d, "usage")?,
                number(d, "selector")?,
                number(d, "matching_type")?,
                string(d, "certificate")?
            )
        }
        RecordType::SSHFP => {
            let d = data()?;
            format!(
                "{} {} {}",
                number(d, "algorithm")?,
                number(d, "type")?,
                string(d, "fingerprint")?
            )
        }
        RecordType::DS => {
            let d = data()?;
            format!(
                "{} {} {} {}",
                number(d, "key_tag")?,
                number(d, "algorithm")?,
                number(d, "digest_type")?,
                string(d, "digest")?
            )
        }
        RecordType::CERT => {
            let d = data()?;
            format!(
                "{} {} {} {}",
                number(d, "type")?,
                number(d, "key_tag")?,
                number(d, "algorithm")?,
                string(d, "certificate")?
            )
        }
        RecordType::HTTPS | RecordType::SVCB => {
            let d = data()?;
            let params = d.get("value").and_then(Value::as_str).unwrap_or("");
            format!(
                "{} {} {params}",
                number(d, "priority")?,
                absolute_host(string(d, "target")?)
            )
        }
        RecordType::NAPTR => {
            let d = data()?;
            format!(
                "{} {} {} {} {} {}",
                number(d, "order")?,
                number(d, "preference")?,
                quote(string(d, "flags")?.as_bytes()),
                quote(string(d, "service")?.as_bytes()),
                quote(string(d, "regex")?.as_bytes()),
                absolute_host(string(d, "replacement")?)
            )
        }
        t if t == URI => {
            let d = data()?;
            let priority = match record.priority {
                Some(p) => u64::from(p),
                None => number(d, "priority")?,
            };
            let weight = number(d, "weight")?;
            let (Ok(priority), Ok(weight)) = (u16::try_from(priority), u16::try_from(weight))
            else {
                return Err("URI priority and weight must be at most 65535".into());
            };
            let mut wire = Vec::new();
            wire.extend_from_slice(&priority.to_be_bytes());
            wire.extend_from_slice(&weight.to_be_bytes());
            wire.extend_from_slice(string(d, "target")?.as_bytes());
            generic(&wire)
        }
        _ => content()?,
    })
}

/// Turns an API record into its record-set key and parsed value.
fn record_from_api(record: &ApiRecord, zone: &ZoneName) -> Result<(RrKey, Existing), String> {
    let context = || format!("Cloudflare record {} {}", record.name, record.record_type);
    let name = zone
        .owner(&absolute_host(&record.name))
        .map_err(|e| format!("{}: {e}", context()))?;
    let rtype = if record.record_type.eq_ignore_ascii_case("URI") {
        URI
    } else {
        parse_record_type(&record.record_type).map_err(|e| format!("{}: {e}", context()))?
    };
    let text = presentation(record, rtype).map_err(|e| format!("{}: {e}", context()))?;
    let value = RecordValue::parse_existing(rtype, &text, zone)
        .map_err(|e| format!("{} {text:?}: {e}", context()))?;
    Ok((
        RrKey::new(name, rtype),
        Existing {
            id: record.id.clone(),
            value,
            // 1 is the API's "automatic" TTL; it is kept as 1 so that writing
            // it back keeps it automatic.
            ttl: record.ttl,
        },
    ))
}

/// The operations of one batch request.
#[derive(Debug, Default)]
struct Batch {
    deletes: Vec<Value>,
    patches: Vec<Value>,
    posts: Vec<Value>,
}

impl Batch {
    /// Records written by the batch.
    fn len(&self) -> usize {
        self.deletes.len() + self.patches.len() + self.posts.len()
    }

    /// Adds the writes that turn the `existing` records of one set into
    /// `after` (`None`: delete the set). Records already right are left
    /// alone; a record with a wanted value but another TTL is patched; other
    /// records are reused (patched) for the remaining values, then values
    /// are added or records removed. No two records ever hold the same
    /// value, which the API refuses.
    ///
    /// A reused record is patched, not overwritten, so what ZentraLink does
    /// not manage (proxy status, comment, tags) stays as it was.
    fn add(
        &mut self,
        key: &RrKey,
        existing: &[Existing],
        after: Option<&RecordSet>,
    ) -> Result<(), String> {
        let Some(after) = after else {
            self.deletes
                .extend(existing.iter().map(|r| json!({ "id": r.id })));
            return Ok(());
        };
        let patch = |id: &str, value: &RecordValue| -> Result<Value, String> {
            let mut body = record_body(key, value, after.ttl)?;
            body.remove("proxied");
            body.insert("id".into(), json!(id));
            Ok(Value::Object(body))
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
        let mut spare = Vec::new();
        for record in pending {
            match wanted.iter().position(|v| **v == record.value) {
                Some(i) => {
                    let value = wanted.remove(i);
                    self.patches.push(patch(&record.id, value)?);
                }
                None => spare.push(record),
            }
        }
        let mut spare = spare.into_iter();
        for value in wanted {
            match spare.next() {
                Some(record) => self.patches.push(patch(&record.id, value)?),
                None => self
                    .posts
                    .push(Value::Object(record_body(key, value, after.ttl)?)),
            }
        }
        self.deletes.extend(spare.map(|r| json!({ "id": r.id })));
        Ok(())
    }

    /// The request body; empty lists are left out.
    fn into_body(self) -> Value {
        let mut body = Map::new();
        for (name, list) in [
            ("deletes", self.deletes),
            ("patches", self.patches),
            ("posts", self.posts),
        ] {
            if !list.is_empty() {
                body.insert(name.into(), Value::Array(list));
            }
        }
        Value::Object(body)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use super::*;

    fn zone() -> ZoneName {
        ZoneName::parse("acme.example.").unwrap()
    }

    /// Writes a value the way the provider does, reads it back the way the
    /// provider does, and expects the same value.
    fn round_trip(t: &str, name: &str, v: &str) {
        let rtype = if t == "URI" {
            URI
        } else {
            parse_record_type(t).unwrap()
        };
        let key = RrKey::new(zone().owner(name).unwrap(), rtype);
        let value =
            RecordValue::parse(rtype, v, &zone()).unwrap_or_else(|e| panic!("{t} {v}: {e}"));
        let body = record_body(&key, &value, 300).unwrap_or_else(|e| panic!("{t} {v}: {e}"));
        let mut stored = body.clone();
        stored.insert("id".into(), json!("0123"));
        let record: ApiRecord = serde_json::from_value(Value::Object(stored)).unwrap();
        let (read_key, existing) = record_from_api(&record, &zone())
            .unwrap_or_else(|e| panic!("{t} {v}: {e} from {body:?}"));
        assert_eq!(read_key, key);
        assert_eq!(existing.value, value, "{t} {v} via {body:?}");
        assert_eq!(existing.ttl, 300);
    }

    #[test]
    fn every_written_type_reads_back_identically() {
        round_trip("A", "www", "192.0.2.10");
        round_trip("AAAA", "www", "2001:db8::10");
        round_trip("CNAME", "api", "www");
        round_trip("NS", "sub", "ns1.example.net.");
        round_trip("PTR", "10", "host.acme.example.");
        round_trip("MX", "@", "10 mx1.acme.example.");
        round_trip("MX", "@", "0 .");
        round_trip("TXT", "@", "\"v=spf1 mx -all\"");
        round_trip("TXT", "long", &format!("\"{}\"", "k".repeat(400)));
        round_trip("SRV", "_sip._tcp", "10 60 5060 sip.example.net.");
        round_trip("CAA", "@", "0 issue \"letsencrypt.org\"");
        round_trip("CAA", "@", "128 iodef \"mailto:security@acme.example\"");
        round_trip(
            "TLSA",
            "_443._tcp",
            "3 1 1 0c72ac70b745ac19998811b131d662c9ac69dbdbe7cb23e5b514b56664c5d3d6",
        );
        round_trip(
            "SMIMEA",
            "x._smimecert",
            "3 1 1 0c72ac70b745ac19998811b131d662c9ac69dbdbe7cb23e5b514b56664c5d3d6",
        );
        round_trip(
            "SSHFP",
            "host",
            "4 2 123456789abcdef67890123456789abcdef67890123456789abcdef123456789",
        );
        round_trip(
            "DS",
            "child",
            "60485 8 2 d4b7d520e7bb5f0f67674a0cceb1e3e0614b93c4f9e99b8383f6a1e4469da50a",
        );
        round_trip("CERT", "cert", "1 12345 8 AQIDBAUGBwgJCg==");
        round_trip("HTTPS", "@", "1 . alpn=h2,h3 port=443");
        round_trip("SVCB", "_dns", "1 svc.acme.example. alpn=h2 port=8443");
        round_trip(
            "NAPTR",
            "@",
            "100 10 \"S\" \"SIP+D2U\" \"!^.*$!sip:info@acme.example!\" _sip._udp.acme.example.",
        );
        round_trip(
            "URI",
            "_ftp._tcp",
            "\\# 21 000a00016674703a2f2f6674702e6578616d706c65",
        );
    }

    #[test]
    fn mx_and_srv_travel_as_the_api_documents() {
        let key = RrKey::new(zone().owner("@").unwrap(), RecordType::MX);
        let value = RecordValue::parse(RecordType::MX, "10 mx1", &zone()).unwrap();
        let body = record_body(&key, &value, 3600).unwrap();
        assert_eq!(body["content"], "mx1.acme.example");
        assert_eq!(body["priority"], 10);
        assert_eq!(body["name"], "acme.example");
        assert!(body.get("proxied").is_none());
        let key = RrKey::new(zone().owner("_sip._tcp").unwrap(), RecordType::SRV);
        let value =
            RecordValue::parse(RecordType::SRV, "10 60 5060 sip.example.net.", &zone()).unwrap();
        let body = record_body(&key, &value, 3600).unwrap();
        assert_eq!(
            body["data"],
            json!({"priority": 10, "weight": 60, "port": 5060, "target": "sip.example.net"})
        );
        let key = RrKey::new(zone().owner("www").unwrap(), RecordType::A);
        let value = RecordValue::parse(RecordType::A, "192.0.2.1", &zone()).unwrap();
        assert_eq!(record_body(&key, &value, 60).unwrap()["proxied"], false);
    }

    #[test]
    fn raw_txt_content_is_one_string() {
        let record: ApiRecord = serde_json::from_value(json!({
            "id": "1", "name": "acme.example", "type": "TXT", "ttl": 1,
            "content": "i love dns it is great"
        }))
        .unwrap();
        let (_, existing) = record_from_api(&record, &zone()).unwrap();
        assert_eq!(existing.value.text(), "\"i love dns it is great\"");
        assert_eq!(existing.ttl, 1);
    }

    #[test]
    fn batches_reuse_records_and_never_duplicate_values() {
        let key = RrKey::new(zone().owner("www").unwrap(), RecordType::A);
        let v = |s: &str| RecordValue::parse(RecordType::A, s, &zone()).unwrap();
        let existing = [
            Existing {
                id: "1".into(),
                value: v("192.0.2.1"),
                ttl: 300,
            },
            Existing {
                id: "2".into(),
                value: v("192.0.2.2"),
                ttl: 300,
            },
        ];
        let mut batch = Batch::default();
        let after = RecordSet::new(300, vec![v("192.0.2.2"), v("192.0.2.3"), v("192.0.2.4")]);
        batch.add(&key, &existing, Some(&after)).unwrap();
        let body = batch.into_body();
        assert_eq!(body["patches"][0]["id"], "1");
        assert_eq!(body["patches"][0]["content"], "192.0.2.3");
        assert!(body["patches"][0].get("proxied").is_none());
        assert_eq!(body["posts"][0]["content"], "192.0.2.4");
        assert!(body.get("deletes").is_none());
        assert_eq!(body["patches"].as_array().map(Vec::len), Some(1));
    }

    #[test]
    fn authentication_failures_are_recognised_by_code() {
        let body = br#"{"success":false,"errors":[{"code":6003,"message":"Invalid request headers","error_chain":[{"code":6111,"message":"Invalid format for Authorization header"}]}],"messages":[],"result":null}"#;
        let (message, codes) = error_details(body);
        assert!(message.contains("code 6111: Invalid format"), "{message}");
        let outcome = classify(
            "GET /zones",
            StatusCode::BAD_REQUEST,
            &message,
            &codes,
            None,
        );
        assert!(matches!(
            outcome,
            AttemptError::Permanent(ProviderError::Authentication(_))
        ));
        let outcome = classify(
            "POST",
            StatusCode::BAD_REQUEST,
            "code 1004: DNS Validation Error",
            &[1004],
            None,
        );
        assert!(matches!(
            outcome,
            AttemptError::Permanent(ProviderError::Unsupported(_))
        ));
    }
}
