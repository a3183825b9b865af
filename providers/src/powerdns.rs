//! The PowerDNS Authoritative provider, through its HTTP API (`/api/v1`):
//! zones are read as record sets, a plan is written as one PATCH of rrsets
//! (one transaction in PowerDNS) after checking the plan's before-values
//! against a fresh read, and missing zones can be created. Every call goes
//! through the connection's [`Governor`]; redirects are never followed and
//! answers are read up to [`Limits::max_response_bytes`]. An answer that is
//! not the documented JSON is an error, never an empty zone: only HTTP 404
//! (or the 422 older versions send) means a zone is absent. Does I/O (HTTP).

use std::fmt;

use async_trait::async_trait;
use hickory_proto::rr::rdata::HTTPS;
use hickory_proto::rr::rdata::svcb::{Alpn, IpHint, Mandatory, SVCB, SvcParamValue};
use hickory_proto::rr::{Name, RData, RecordType};
use reqwest::header::{CONTENT_TYPE, HeaderMap, RETRY_AFTER};
use reqwest::{Method, StatusCode, Url};
use serde::{Deserialize, Serialize};
use zentralink_model::plan::Plan;
use zentralink_model::record::{
    RecordSet, RecordValue, RrKey, is_server_generated, parse_record_type, type_name,
};
use zentralink_model::resources::{PowerDnsSettings, ProviderType};
use zentralink_model::secrets::{REDACTED, SecretString};
use zentralink_model::{ZoneContent, ZoneName};

use super::http::{BodyError, read_body, read_error_body, redirect_error, shorten};
use super::resilience::{AttemptError, Governor, Idempotency, Limits, retry_after_seconds};
use super::{ApplyReport, Capabilities, PROBE_LABEL, Provider, ProviderError, check_before_values};

/// The server id PowerDNS uses unless configured otherwise.
pub const DEFAULT_SERVER_ID: &str = "localhost";
/// A PowerDNS Authoritative server's API, for one server id.
pub struct PowerDnsProvider {
    /// Carries the API key in its default `X-API-Key` header, marked sensitive.
    client: reqwest::Client,
    /// `<url>/api/v1/servers/<server id>`: the base of every request.
    server_url: Url,
    server_id: String,
    create_zones: bool,
    governor: Governor,
    /// Kept only to scrub it from any text a server sends back.
    api_key: SecretString,
}

impl fmt::Debug for PowerDnsProvider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PowerDnsProvider")
            .field("server_url", &self.server_url.as_str())
            .field("create_zones", &self.create_zones)
            .field("limits", self.governor.limits())
            .field("api_key", &REDACTED)
            .finish()
    }
}

/// What a successful call gave: a body, or "not found" for the caller to interpret.
enum Answer {
    Body(Vec<u8>),
    NotFound,
}

// ------------------------------------------------------------------ API shapes

// Fields PowerDNS always sends are required, so an answer of another shape
// is an error rather than something read as empty.

/// `GET /servers/{id}`.
#[derive(Deserialize)]
struct ServerJson {
    id: String,
    daemon_type: String,
}

/// One entry of `GET /servers/{id}/zones`.
#[derive(Deserialize)]
struct ZoneListEntry {
    name: String,
}

/// `GET /servers/{id}/zones/{zone}?rrsets=true`: `rrsets` is required (and
/// must be a list, not `null`), so an answer without them is an error
/// instead of an empty zone.
#[derive(Deserialize)]
struct ZoneJson {
    rrsets: Vec<RrsetJson>,
}

/// One rrset. Its TTL is checked where it matters: an rrset holding only
/// comments has none to give.
#[derive(Deserialize)]
struct RrsetJson {
    name: String,
    #[serde(rename = "type")]
    rtype: String,
    #[serde(default)]
    ttl: Option<u32>,
    records: Vec<RecordJson>,
}

#[derive(Deserialize, Serialize)]
struct RecordJson {
    content: String,
    disabled: bool,
}

/// One rrset of a PATCH (`changetype` REPLACE or DELETE) or of a zone creation (no `changetype`).
#[derive(Serialize)]
struct RrsetOut {
    name: String,
    #[serde(rename = "type")]
    rtype: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    ttl: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    changetype: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    records: Option<Vec<RecordJson>>,
}

#[derive(Serialize)]
struct PatchBody {
    rrsets: Vec<RrsetOut>,
}

/// `POST /servers/{id}/zones`. The apex NS set, when the plan declares one,
/// travels in `rrsets` with its TTL, so `nameservers` stays empty.
#[derive(Serialize)]
struct CreateZoneBody {
    name: String,
    kind: &'static str,
    nameservers: Vec<String>,
    rrsets: Vec<RrsetOut>,
}

/// `{"error": "..."}`, how PowerDNS explains a refusal.
#[derive(Deserialize)]
struct ErrorJson {
    error: String,
}

// ------------------------------------------------------------------ the provider

impl PowerDnsProvider {
    /// Builds the provider for a connection's `spec.powerdns` and API key.
    /// Nothing is sent: [`Provider::test_connection`] checks the server.
    pub fn new(
        settings: &PowerDnsSettings,
        api_key: SecretString,
        limits: Limits,
    ) -> Result<Self, ProviderError> {
        super::install_tls_provider();
        let server_id = settings
            .server_id
            .as_deref()
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .unwrap_or(DEFAULT_SERVER_ID)
            .to_owned();
        let server_url = server_url(&settings.url, &server_id)?;
        if api_key.expose().is_empty() {
            return Err(ProviderError::Authentication(
                "the PowerDNS API key is empty".into(),
            ));
        }
        let mut headers = HeaderMap::new();
        headers.insert(
            "X-API-Key",
            super::http::secret_header(api_key.expose(), "the PowerDNS API key")?,
        );
        let client = super::http::client(limits.timeout, headers)?;
        Ok(Self {
            client,
            server_url,
            server_id,
            create_zones: settings.create_zones,
            governor: Governor::new(limits),
            api_key,
        })
    }

    /// The API address of the server id, `<url>/api/v1/servers/<id>`.
    pub fn server_url(&self) -> &Url {
        &self.server_url
    }

    /// `<server url>/<segments...>`.
    fn url(&self, segments: &[&str]) -> Url {
        let mut url = self.server_url.clone();
        if let Ok(mut path) = url.path_segments_mut() {
            path.extend(segments);
        }
        url
    }

    fn zone_url(&self, zone: &ZoneName) -> Url {
        self.url(&["zones", &zone_id(zone)])
    }

    /// Replaces the API key wherever it appears in text from elsewhere.
    fn redact(&self, text: &str) -> String {
        let key = self.api_key.expose();
        if key.is_empty() {
            text.to_owned()
        } else {
            text.replace(key, REDACTED)
        }
    }

    /// Text a server sent, fit to quote: redacted, then shortened.
    fn quote(&self, text: &str) -> String {
        shorten(&self.redact(text))
    }

    /// PowerDNS's explanation in an error body: its `error` field, or the text itself.
    fn server_message(&self, body: &[u8]) -> String {
        let text = match serde_json::from_slice::<ErrorJson>(body) {
            Ok(e) => e.error,
            Err(_) => String::from_utf8_lossy(body).into_owned(),
        };
        self.quote(&text)
    }

    /// One HTTP call under the governor. 2xx gives the body; 404 (and a 422
    /// saying the zone is unknown, as older PowerDNS versions answer) gives
    /// [`Answer::NotFound`]; everything else becomes an error.
    async fn call(
        &self,
        what: &str,
        idempotency: Idempotency,
        method: Method,
        url: Url,
        body: Option<Vec<u8>>,
    ) -> Result<Answer, ProviderError> {
        self.governor
            .call(what, idempotency, || {
                let mut request = self.client.request(method.clone(), url.clone());
                if let Some(b) = &body {
                    request = request
                        .header(CONTENT_TYPE, "application/json")
                        .body(b.clone());
                }
                async move {
                    let response = request
                        .send()
                        .await
                        .map_err(|e| self.transport_error(what, idempotency, e))?;
                    let status = response.status();
                    if status.is_redirection() {
                        return Err(redirect_error(
                            what,
                            "PowerDNS",
                            &response,
                            "spec.powerdns.url",
                            |text| self.redact(text),
                        ));
                    }
                    let limit = self.governor.limits().max_response_bytes;
                    if status.is_success() {
                        return read_body(response, limit)
                            .await
                            .map(Answer::Body)
                            .map_err(|e| match e {
                                BodyError::Cut(e) => self.transport_error(what, idempotency, e),
                                too_large => {
                                    too_large.into_attempt(what, "PowerDNS", status, idempotency)
                                }
                            });
                    }
                    let retry_after = response
                        .headers()
                        .get(RETRY_AFTER)
                        .and_then(|v| v.to_str().ok())
                        .map(str::to_owned);
                    let body = read_error_body(response, limit).await;
                    self.classify(what, idempotency, status, retry_after.as_deref(), &body)
                }
            })
            .await
    }

    /// Maps an HTTP status other than 2xx and 3xx to "not found" or an attempt error.
    fn classify(
        &self,
        what: &str,
        idempotency: Idempotency,
        status: StatusCode,
        retry_after: Option<&str>,
        body: &[u8],
    ) -> Result<Answer, AttemptError> {
        let message = self.server_message(body);
        let detail = if message.is_empty() {
            String::new()
        } else {
            format!(": {message}")
        };
        match status {
            StatusCode::NOT_FOUND => Ok(Answer::NotFound),
            StatusCode::UNPROCESSABLE_ENTITY if message.contains("Could not find domain") => {
                Ok(Answer::NotFound)
            }
            StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => Err(AttemptError::Permanent(
                ProviderError::Authentication(format!(
                    "{what}: PowerDNS at {} answered HTTP {status}: the API key was refused; check the connection's credentials against the server's api-key setting",
                    self.server_url
                )),
            )),
            StatusCode::TOO_MANY_REQUESTS => Err(AttemptError::Transient {
                error: ProviderError::RateLimited(format!(
                    "{what}: PowerDNS answered HTTP {status}{detail}"
                )),
                retry_after: retry_after_seconds(retry_after),
            }),
            StatusCode::CONFLICT => Err(AttemptError::Permanent(ProviderError::Conflict(format!(
                "{what}: PowerDNS answered HTTP {status}{detail}"
            )))),
            s if s.is_server_error() => Err(AttemptError::transient(match idempotency {
                Idempotency::Idempotent => ProviderError::Unreachable(format!(
                    "{what}: PowerDNS answered HTTP {status}{detail}"
                )),
                // The governor turns a failed write into `Uncertain`, naming
                // the call itself. `Io`, so that no word of the server's text
                // can pass for a refused connection (which means "not applied").
                Idempotency::Write => {
                    ProviderError::Io(format!("PowerDNS answered HTTP {status}{detail}"))
                }
            })),
            StatusCode::PAYLOAD_TOO_LARGE => Err(AttemptError::Permanent(
                ProviderError::Unsupported(format!(
                    "{what}: PowerDNS refused the request as too large (HTTP {status}); raise webserver-max-bodysize on the server"
                )),
            )),
            _ => Err(AttemptError::Permanent(ProviderError::Unsupported(
                format!("{what}: PowerDNS refused the request (HTTP {status}){detail}"),
            ))),
        }
    }

    /// A request that got no HTTP answer: worth another try. A connection
    /// that failed is [`ProviderError::NotSent`] (a write was not sent); any
    /// other failed write the governor reports as `Uncertain`, naming the
    /// call itself.
    fn transport_error(
        &self,
        what: &str,
        idempotency: Idempotency,
        error: reqwest::Error,
    ) -> AttemptError {
        let builder = error.is_builder();
        let not_sent = error.is_connect();
        let error = error.without_url();
        let mut causes = vec![error.to_string()];
        let mut source = std::error::Error::source(&error);
        while let Some(cause) = source {
            let text = cause.to_string();
            if causes.last() != Some(&text) {
                causes.push(text);
            }
            source = cause.source();
        }
        let causes = causes.join(": ");
        let named = idempotency == Idempotency::Idempotent || builder || not_sent;
        let message = self.redact(&format!(
            "{}no answer from PowerDNS at {}: {causes}",
            if named {
                format!("{what}: ")
            } else {
                String::new()
            },
            self.server_url,
        ));
        if builder {
            AttemptError::Permanent(ProviderError::Io(message))
        } else if not_sent {
            AttemptError::transient(ProviderError::NotSent(message))
        } else {
            AttemptError::transient(ProviderError::Unreachable(message))
        }
    }
}

// ------------------------------------------------------------------ operations

impl PowerDnsProvider {
    /// `GET` of a JSON document; `None` on 404.
    async fn get_json<T: serde::de::DeserializeOwned>(
        &self,
        what: &str,
        url: Url,
    ) -> Result<Option<T>, ProviderError> {
        match self
            .call(what, Idempotency::Idempotent, Method::GET, url, None)
            .await?
        {
            Answer::NotFound => Ok(None),
            Answer::Body(body) => serde_json::from_slice(&body).map(Some).map_err(|e| {
                ProviderError::InvalidAnswer(format!(
                    "{what}: PowerDNS at {} sent a body that is not the expected JSON ({}): {}",
                    self.server_url,
                    self.quote(&e.to_string()),
                    self.quote(&String::from_utf8_lossy(&body))
                ))
            }),
        }
    }

    /// A write (`PATCH` of rrsets, `POST` of a zone). 404 means the zone does not exist.
    async fn write(
        &self,
        what: &str,
        method: Method,
        url: Url,
        body: &impl Serialize,
        zone: &ZoneName,
    ) -> Result<(), ProviderError> {
        let body = serde_json::to_vec(body)
            .map_err(|e| ProviderError::Io(format!("{what}: cannot encode the request: {e}")))?;
        tracing::debug!(what, bytes = body.len(), "PowerDNS write");
        match self
            .call(what, Idempotency::Write, method, url, Some(body))
            .await?
        {
            Answer::Body(_) => Ok(()),
            Answer::NotFound => Err(ProviderError::ZoneNotFound(zone.to_string())),
        }
    }

    /// One PATCH of rrsets on a zone: all of them or none (PowerDNS applies it in one transaction).
    async fn patch(&self, zone: &ZoneName, rrsets: Vec<RrsetOut>) -> Result<(), ProviderError> {
        let what = format!("change zone {zone}");
        self.write(
            &what,
            Method::PATCH,
            self.zone_url(zone),
            &PatchBody { rrsets },
            zone,
        )
        .await
    }

    /// Applies a plan to an existing zone whose current content is `current`.
    async fn apply_to_existing(
        &self,
        plan: &Plan,
        current: &ZoneContent,
    ) -> Result<(), ProviderError> {
        check_before_values(current, plan)?;
        let rrsets = plan
            .changes
            .iter()
            .map(|c| match &c.after {
                Some(set) => replace_rrset(&c.key, set),
                None => delete_rrset(&c.key),
            })
            .collect();
        // PowerDNS has no conditional PATCH: between the read above and this
        // write, an out-of-band change to a touched record set would be
        // overwritten. The window is one round trip.
        self.patch(&plan.zone, rrsets).await
    }

    /// Creates the missing zone of a plan with every record set of the plan,
    /// in one POST (kind Native). Only creates are possible on a zone that
    /// does not exist; anything else is a conflict. PowerDNS adds an SOA
    /// when the plan declares none.
    async fn create_zone(&self, plan: &Plan) -> Result<(), ProviderError> {
        check_before_values(&ZoneContent::new(plan.zone.clone()), plan)?;
        let rrsets = plan
            .changes
            .iter()
            .filter_map(|c| c.after.as_ref().map(|set| (&c.key, set)))
            .map(|(key, set)| RrsetOut {
                changetype: None,
                ..replace_rrset(key, set)
            })
            .collect();
        let body = CreateZoneBody {
            name: plan.zone.to_string(),
            kind: "Native",
            nameservers: Vec::new(),
            rrsets,
        };
        let what = format!("create zone {}", plan.zone);
        self.write(&what, Method::POST, self.url(&["zones"]), &body, &plan.zone)
            .await
    }
}

#[async_trait]
impl Provider for PowerDnsProvider {
    fn provider_type(&self) -> ProviderType {
        ProviderType::Powerdns
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities {
            // PowerDNS stores every type, unknown ones in RFC 3597 form.
            record_types: None,
            atomic_batch: true,
            // Native ALIAS records.
            alias: true,
            max_batch: None,
            lists_zones: true,
        }
    }

    async fn list_zones(&self) -> Result<Vec<ZoneName>, ProviderError> {
        let mut url = self.url(&["zones"]);
        // Without DNSSEC details, listing many zones is about ten times faster.
        url.query_pairs_mut().append_pair("dnssec", "false");
        let entries: Vec<ZoneListEntry> = self
            .get_json("list zones", url)
            .await?
            .ok_or_else(|| self.server_not_found())?;
        let mut zones: Vec<ZoneName> = entries
            .iter()
            .filter_map(|e| match ZoneName::parse(&e.name) {
                Ok(z) => Some(z),
                Err(error) => {
                    tracing::warn!(zone = %e.name, %error, "PowerDNS lists a zone ZentraLink cannot manage; left out");
                    None
                }
            })
            .collect();
        zones.sort();
        zones.dedup();
        Ok(zones)
    }

    async fn read_zone(&self, zone: &ZoneName) -> Result<Option<ZoneContent>, ProviderError> {
        let mut url = self.zone_url(zone);
        url.query_pairs_mut().append_pair("rrsets", "true");
        let what = format!("read zone {zone}");
        let Some(answer) = self.get_json::<ZoneJson>(&what, url).await? else {
            return Ok(None);
        };
        zone_content(zone, answer)
            .map(Some)
            .map_err(|e| ProviderError::InvalidAnswer(format!("{what}: {}", self.quote(&e))))
    }

    async fn apply(&self, plan: &Plan) -> Result<ApplyReport, ProviderError> {
        if plan.is_empty() {
            // Nothing to do: not even a read.
            return Ok(ApplyReport::default());
        }
        match self.read_zone(&plan.zone).await? {
            Some(current) => self.apply_to_existing(plan, &current).await?,
            None if self.create_zones => self.create_zone(plan).await?,
            None => return Err(ProviderError::ZoneNotFound(plan.zone.to_string())),
        }
        // One transaction: every operation took effect.
        Ok(ApplyReport::all_applied(plan))
    }

    async fn test_connection(&self) -> Result<(), ProviderError> {
        let server: ServerJson = self
            .get_json("connection test", self.server_url.clone())
            .await?
            .ok_or_else(|| self.server_not_found())?;
        if server.daemon_type != "authoritative" {
            return Err(ProviderError::Unsupported(format!(
                "{} is a PowerDNS {} server, not an Authoritative one",
                self.server_url,
                self.quote(&server.daemon_type)
            )));
        }
        if server.id != self.server_id {
            return Err(ProviderError::InvalidAnswer(format!(
                "{} answered for server id {:?} instead of {:?}",
                self.server_url,
                self.quote(&server.id),
                self.server_id
            )));
        }
        Ok(())
    }

    async fn probe_write(&self, zone: &ZoneName) -> Result<(), ProviderError> {
        let name = Name::from_ascii(PROBE_LABEL)
            .and_then(|label| label.append_domain(zone.as_name()))
            .map_err(|e| {
                ProviderError::Unsupported(format!(
                    "{zone}: no probe name fits under this zone: {e}"
                ))
            })?;
        let key = RrKey::new(name, RecordType::TXT);
        let value = RecordValue::parse(RecordType::TXT, "\"zentralink write probe\"", zone)
            .map_err(|e| ProviderError::Io(format!("the probe value does not parse: {e}")))?;
        self.patch(
            zone,
            vec![replace_rrset(&key, &RecordSet::new(60, vec![value]))],
        )
        .await?;
        self.patch(zone, vec![delete_rrset(&key)])
            .await
            .map_err(|e| {
                ProviderError::with_context(
                    e,
                    &format!(
                        "the probe record {key} was written but not deleted; delete it by hand"
                    ),
                )
            })
    }
}

impl PowerDnsProvider {
    fn server_not_found(&self) -> ProviderError {
        ProviderError::Unsupported(format!(
            "{} was not found: check spec.powerdns.url (the API's base address, for example http://127.0.0.1:8081) and spec.powerdns.serverId (usually {DEFAULT_SERVER_ID})",
            self.server_url
        ))
    }
}

// ------------------------------------------------------------------ pure helpers

/// `<url>/api/v1/servers/<id>` from `spec.powerdns.url` (with or without
/// `/api/v1`) and the server id.
fn server_url(base: &str, server_id: &str) -> Result<Url, ProviderError> {
    // A URL with `user:password@` is not repeated in messages.
    let shown = if base.contains('@') {
        String::new()
    } else {
        format!(" {base:?}")
    };
    let invalid =
        |why: String| ProviderError::Unsupported(format!("spec.powerdns.url{shown} {why}"));
    let mut url = Url::parse(base.trim()).map_err(|e| invalid(format!("is not a URL: {e}")))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(invalid("must start with http:// or https://".into()));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(invalid(
            "must not hold a user name or password; the API key comes from spec.credentials".into(),
        ));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(invalid("must not hold a query or a fragment".into()));
    }
    let path = url.path().trim_end_matches('/');
    let path = path.strip_suffix("/api/v1").unwrap_or(path).to_owned();
    url.set_path(&path);
    url.path_segments_mut()
        .map_err(|()| invalid("cannot hold a path".into()))?
        .pop_if_empty()
        .extend(["api", "v1", "servers", server_id]);
    Ok(url)
}

/// The zone's id in API paths, as PowerDNS makes it: the absolute name with
/// every byte other than letters, digits, `.` and `-` written `=XX`.
pub fn zone_id(zone: &ZoneName) -> String {
    let mut id = String::new();
    for b in zone.to_string().bytes() {
        if b.is_ascii_alphanumeric() || b == b'.' || b == b'-' {
            id.push(char::from(b));
        } else {
            id.push_str(&format!("={b:02X}"));
        }
    }
    id
}

/// The type as PowerDNS names it: ALIAS for our ANAME, `TYPE<n>` for unknown types.
pub fn pdns_type(rtype: RecordType) -> String {
    match rtype {
        RecordType::ANAME => "ALIAS".into(),
        other => type_name(other),
    }
}

fn replace_rrset(key: &RrKey, set: &RecordSet) -> RrsetOut {
    RrsetOut {
        name: key.name.to_ascii(),
        rtype: pdns_type(key.rtype),
        ttl: Some(set.ttl),
        changetype: Some("REPLACE"),
        records: Some(
            set.values()
                .iter()
                .map(|v| RecordJson {
                    content: pdns_content(key.rtype, v),
                    disabled: false,
                })
                .collect(),
        ),
    }
}

/// Record data as PowerDNS takes it. PowerDNS refuses data that is not in
/// its own canonical form; our canonical text is that form for every type but
/// SVCB and HTTPS, whose value lists hickory-proto ends with a comma
/// (`alpn=h2,h3,`), which PowerDNS does not parse.
pub fn pdns_content(rtype: RecordType, value: &RecordValue) -> String {
    match (rtype, value.to_rdata(rtype)) {
        (RecordType::SVCB | RecordType::HTTPS, Ok(RData::SVCB(svcb)))
        | (RecordType::SVCB | RecordType::HTTPS, Ok(RData::HTTPS(HTTPS(svcb)))) => svcb_text(&svcb),
        _ => value.text().to_owned(),
    }
}

/// SVCB presentation format (RFC 9460) with plain comma-separated lists.
fn svcb_text(svcb: &SVCB) -> String {
    fn list<T: fmt::Display>(items: &[T]) -> String {
        items
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(",")
    }
    let mut out = format!("{} {}", svcb.svc_priority, svcb.target_name);
    for (key, value) in &svcb.svc_params {
        out.push(' ');
        out.push_str(&match value {
            SvcParamValue::Mandatory(Mandatory(keys)) => format!("{key}={}", list(keys)),
            SvcParamValue::Alpn(Alpn(ids)) => format!("{key}={}", list(ids)),
            SvcParamValue::NoDefaultAlpn => key.to_string(),
            SvcParamValue::Port(port) => format!("{key}={port}"),
            SvcParamValue::Ipv4Hint(IpHint(ips)) => format!("{key}={}", list(ips)),
            SvcParamValue::Ipv6Hint(IpHint(ips)) => format!("{key}={}", list(ips)),
            other => {
                let text = format!("{key}={other}");
                text.strip_suffix(',').map(str::to_owned).unwrap_or(text)
            }
        });
    }
    out
}

fn delete_rrset(key: &RrKey) -> RrsetOut {
    RrsetOut {
        name: key.name.to_ascii(),
        rtype: pdns_type(key.rtype),
        ttl: None,
        changetype: Some("DELETE"),
        records: None,
    }
}

/// Converts PowerDNS's rrsets to zone content. Values are parsed from their
/// presentation format, which canonicalises them (a TXT `\;` becomes `;`).
fn zone_content(zone: &ZoneName, answer: ZoneJson) -> Result<ZoneContent, String> {
    let mut content = ZoneContent::new(zone.clone());
    for rrset in answer.rrsets {
        if rrset
            .rtype
            .parse::<RecordType>()
            .is_ok_and(is_server_generated)
        {
            continue;
        }
        // A disabled record is stored but not served: it is not part of the
        // zone's content, so a set of only disabled records is absent. Note
        // that writing such a set (REPLACE) drops its disabled records.
        let enabled: Vec<&RecordJson> = rrset.records.iter().filter(|r| !r.disabled).collect();
        if enabled.is_empty() {
            continue;
        }
        let what = format!("record set {} {}", rrset.name, rrset.rtype);
        let rtype = parse_record_type(&rrset.rtype).map_err(|e| format!("{what}: {e}"))?;
        let mut name =
            Name::from_ascii(&rrset.name).map_err(|e| format!("{what}: bad owner name: {e}"))?;
        name.set_fqdn(true);
        if !zone.contains(&name) {
            return Err(format!("{what}: the name is outside the zone"));
        }
        let ttl = rrset
            .ttl
            .ok_or_else(|| format!("{what}: the answer has no TTL"))?;
        let values = enabled
            .iter()
            .map(|r| {
                RecordValue::parse_existing(rtype, &r.content, zone)
                    .map_err(|e| format!("{what}: value {:?}: {e}", r.content))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let key = RrKey::new(name, rtype);
        let values = match content.sets.remove(&key) {
            // The same name in another case: one set.
            Some(existing) => existing.values().iter().cloned().chain(values).collect(),
            None => values,
        };
        content.sets.insert(key, RecordSet::new(ttl, values));
    }
    Ok(content)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn zone(name: &str) -> ZoneName {
        ZoneName::parse(name).unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn server_urls() {
        let url = |base: &str| server_url(base, "localhost").map(|u| u.to_string());
        let expected = "http://127.0.0.1:8081/api/v1/servers/localhost";
        assert_eq!(url("http://127.0.0.1:8081").as_deref(), Ok(expected));
        assert_eq!(url("http://127.0.0.1:8081/").as_deref(), Ok(expected));
        assert_eq!(
            url(" http://127.0.0.1:8081/api/v1/ ").as_deref(),
            Ok(expected)
        );
        assert_eq!(
            url("https://dns.example/pdns").as_deref(),
            Ok("https://dns.example/pdns/api/v1/servers/localhost")
        );
        assert!(url("ftp://x").is_err());
        assert!(url("not a url").is_err());
        let err = url("http://admin:secret@127.0.0.1:8081").unwrap_err();
        assert!(!err.to_string().contains("secret"), "{err}");
        assert_eq!(
            server_url("http://h", "a/b")
                .map(|u| u.to_string())
                .as_deref(),
            Ok("http://h/api/v1/servers/a%2Fb")
        );
    }

    #[test]
    fn zone_ids_follow_powerdns() {
        assert_eq!(zone_id(&zone("acme.example")), "acme.example.");
        assert_eq!(zone_id(&zone("_tcp.acme.example.")), "=5Ftcp.acme.example.");
        assert_eq!(
            zone_id(&zone("2.0.192.in-addr.arpa.")),
            "2.0.192.in-addr.arpa."
        );
    }

    #[test]
    fn alias_is_anames_name_at_powerdns() {
        assert_eq!(pdns_type(RecordType::ANAME), "ALIAS");
        assert_eq!(pdns_type(RecordType::Unknown(65280)), "TYPE65280");
        assert_eq!(pdns_type(RecordType::MX), "MX");
    }

    #[test]
    fn svcb_data_is_written_without_trailing_commas() {
        let z = zone("acme.example.");
        let content = |rtype: RecordType, text: &str| {
            let value = RecordValue::parse(rtype, text, &z).unwrap_or_else(|e| panic!("{e}"));
            pdns_content(rtype, &value)
        };
        assert_eq!(
            content(RecordType::SVCB, "1 web alpn=h2,h3 port=8443"),
            "1 web.acme.example. alpn=h2,h3 port=8443"
        );
        assert_eq!(
            content(
                RecordType::HTTPS,
                "1 . ipv6hint=2001:db8::1,2001:db8::2 no-default-alpn alpn=h2 mandatory=alpn,port port=443 ipv4hint=192.0.2.1"
            ),
            "1 . mandatory=alpn,port alpn=h2 no-default-alpn port=443 ipv4hint=192.0.2.1 ipv6hint=2001:db8::1,2001:db8::2"
        );
        assert_eq!(
            content(RecordType::HTTPS, "0 cdn.example.net."),
            "0 cdn.example.net."
        );
        // Other types are written as their canonical text.
        assert_eq!(content(RecordType::MX, "10 mx1"), "10 mx1.acme.example.");
    }

    fn rrset(name: &str, rtype: &str, records: &[(&str, bool)]) -> RrsetJson {
        RrsetJson {
            name: name.into(),
            rtype: rtype.into(),
            ttl: Some(300),
            records: records
                .iter()
                .map(|(c, d)| RecordJson {
                    content: (*c).into(),
                    disabled: *d,
                })
                .collect(),
        }
    }

    #[test]
    fn rrsets_become_canonical_content() {
        let z = zone("acme.example.");
        let answer = ZoneJson {
            rrsets: vec![
                rrset("acme.example.", "ALIAS", &[("LB.example.net.", false)]),
                rrset(
                    "dkim.acme.example.",
                    "TXT",
                    &[("\"v=DKIM1\\; k=rsa\"", false)],
                ),
                rrset("off.acme.example.", "A", &[("192.0.2.1", true)]),
                rrset(
                    "mixed.acme.example.",
                    "A",
                    &[("192.0.2.1", true), ("192.0.2.2", false)],
                ),
                rrset("acme.example.", "RRSIG", &[("whatever", false)]),
                rrset("WWW.acme.example.", "A", &[("192.0.2.3", false)]),
                rrset("www.acme.example.", "A", &[("192.0.2.4", false)]),
            ],
        };
        let content = zone_content(&z, answer).unwrap_or_else(|e| panic!("{e}"));
        let stored: Vec<(String, String, Vec<String>)> = content
            .to_stored()
            .into_iter()
            .map(|s| (s.name, s.record_type, s.values))
            .collect();
        assert_eq!(
            stored,
            vec![
                (
                    "acme.example.".into(),
                    "ANAME".into(),
                    vec!["lb.example.net.".into()]
                ),
                (
                    "dkim.acme.example.".into(),
                    "TXT".into(),
                    vec!["\"v=DKIM1; k=rsa\"".into()]
                ),
                (
                    "mixed.acme.example.".into(),
                    "A".into(),
                    vec!["192.0.2.2".into()]
                ),
                (
                    "www.acme.example.".into(),
                    "A".into(),
                    vec!["192.0.2.3".into(), "192.0.2.4".into()]
                ),
            ]
        );
    }

    #[test]
    fn foreign_or_broken_rrsets_are_errors() {
        let z = zone("acme.example.");
        let outside = ZoneJson {
            rrsets: vec![rrset("other.example.", "A", &[("192.0.2.1", false)])],
        };
        assert!(zone_content(&z, outside).is_err_and(|e| e.contains("outside the zone")));
        let bad = ZoneJson {
            rrsets: vec![rrset("x.acme.example.", "A", &[("300.1.1.1", false)])],
        };
        assert!(zone_content(&z, bad).is_err_and(|e| e.contains("x.acme.example. A")));
    }

    #[test]
    fn patch_bodies() {
        let z = zone("acme.example.");
        let key = RrKey::new(
            z.owner("shop").unwrap_or_else(|e| panic!("{e}")),
            RecordType::ANAME,
        );
        let value = RecordValue::parse(RecordType::ANAME, "lb.example.net.", &z)
            .unwrap_or_else(|e| panic!("{e}"));
        let body = PatchBody {
            rrsets: vec![
                replace_rrset(&key, &RecordSet::new(300, vec![value])),
                delete_rrset(&key),
            ],
        };
        let json = serde_json::to_value(&body).unwrap_or_default();
        assert_eq!(
            json,
            serde_json::json!({"rrsets": [
                {"name": "shop.acme.example.", "type": "ALIAS", "ttl": 300, "changetype": "REPLACE",
                 "records": [{"content": "lb.example.net.", "disabled": false}]},
                {"name": "shop.acme.example.", "type": "ALIAS", "changetype": "DELETE"}
            ]})
        );
    }
}
