//! The PowerDNS Authoritative provider, through its HTTP API (`/api/v1`):
//! zones are read as record sets, a plan is written as one PATCH of rrsets
//! (one transaction in PowerDNS) after checking the plan's before-values
//! against a fresh read, and missing zones can be created. Every call goes
//! through the connection's [`Governor`]; redirects are never followed and
//! answers are read up to [`Limits::max_response_bytes`]. An answer that is
//! not the documented JSON is an error, never an empty zone: only HTTP 404
//! (or the 422 older versions send) means a zone is absent. The DNSKEYs of a
//! zone PowerDNS signs come from its cryptokeys, not from its records. Does
//! I/O (HTTP).

use std::borrow::Cow;
use std::collections::btree_map::Entry;
use std::fmt;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::time::Instant;

use async_trait::async_trait;
use hickory_proto::dnssec::rdata::{DNSKEY, DNSSECRData};
use hickory_proto::dnssec::{Algorithm, PublicKeyBuf};
use hickory_proto::rr::rdata::svcb::{Alpn, IpHint, Mandatory, SVCB, SvcParamValue};
use hickory_proto::rr::rdata::{A, AAAA, HTTPS};
use hickory_proto::rr::{Name, RData, RecordType};
use reqwest::header::{CONTENT_TYPE, HeaderMap, RETRY_AFTER};
use reqwest::{Method, StatusCode, Url};
use serde::de::{self, DeserializeSeed, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize};
use zentralink_model::plan::Plan;
use zentralink_model::record::{
    RecordSet, RecordValue, RrKey, is_server_generated, parse_record_type, type_name,
};
use zentralink_model::resources::{PowerDnsSettings, ProviderType};
use zentralink_model::secrets::{REDACTED, SecretString};
use zentralink_model::{ZoneContent, ZoneName};

use super::http::{BodyError, read_body, read_error_body, redirect_error, shorten};
use super::resilience::{AttemptError, Governor, Idempotency, Limits, retry_after_seconds};
use super::{
    ApplyReport, Capabilities, PROBE_LABEL, Provider, ProviderError, check_before_values,
    check_before_values_owned,
};

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
/// A zone without its rrsets: the SOA serial PowerDNS stores.
#[derive(Deserialize)]
struct ZoneSerialJson {
    serial: u32,
    /// How PowerDNS moves the serial on changes made through the API
    /// (`DEFAULT`, `INCREASE`, `EPOCH`, ...; empty or `OFF`: it does not).
    #[serde(default)]
    soa_edit_api: String,
}

impl ZoneSerialJson {
    /// Whether every change made through the API moves this zone's serial.
    fn serial_moves_on_change(&self) -> bool {
        !self.soa_edit_api.is_empty() && !self.soa_edit_api.eq_ignore_ascii_case("OFF")
    }
}

#[derive(Deserialize)]
struct ZoneListEntry {
    name: String,
}

/// One rrset of `GET /servers/{id}/zones/{zone}?rrsets=true`, its strings
/// borrowed from the answer's bytes where they hold no escapes. Its TTL is
/// checked where it matters: an rrset holding only comments has none to
/// give. The zone object around the rrsets is read by [`ZoneAnswer`].
#[derive(Deserialize)]
struct RrsetJson<'a> {
    #[serde(borrow)]
    name: Cow<'a, str>,
    #[serde(rename = "type", borrow)]
    rtype: Cow<'a, str>,
    #[serde(default)]
    ttl: Option<u32>,
    #[serde(borrow)]
    records: Vec<RecordIn<'a>>,
}

/// One record of an rrset read, borrowed like [`RrsetJson`].
#[derive(Deserialize)]
struct RecordIn<'a> {
    #[serde(borrow)]
    content: Cow<'a, str>,
    disabled: bool,
}

/// One record of an rrset written.
#[derive(Serialize)]
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

/// One key of `GET /servers/{id}/zones/{zone}/cryptokeys`.
#[derive(Deserialize)]
struct CryptokeyJson {
    /// Whether the key signs.
    active: bool,
    /// Whether its DNSKEY is served; absent before PowerDNS 4.3, when every key was.
    #[serde(default = "published_by_default")]
    published: bool,
    /// The DNSKEY data, `flags protocol algorithm base64-key`.
    dnskey: String,
}

fn published_by_default() -> bool {
    true
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

    /// Applies a plan to an existing zone whose current content is
    /// `current`. Returns the zone as it is after the PATCH: `current` with
    /// the plan applied and the SOA serial PowerDNS gave it; `None` when the
    /// serial could not be learnt (the batch applied all the same).
    async fn apply_to_existing(
        &self,
        plan: &Plan,
        current: ZoneContent,
    ) -> Result<Option<ZoneContent>, ProviderError> {
        let mut after = check_before_values_owned(current, plan)?;
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
        self.patch(&plan.zone, rrsets).await?;
        // With SOA-EDIT-API (DEFAULT for zones made through the API) PowerDNS
        // moves the SOA serial on every change: the one part of the zone
        // after the PATCH that is not the checked content with the plan applied.
        match self.stored_serial(&plan.zone).await {
            Ok(Some(serial)) if set_soa_serial(&mut after, serial) => Ok(Some(after)),
            Ok(_) => Ok(None),
            Err(e) => {
                tracing::debug!(zone = %plan.zone, "the SOA serial after the change is unknown ({e}); the zone must be read again");
                Ok(None)
            }
        }
    }

    /// The zone's SOA serial as PowerDNS stores it (the zone without its
    /// rrsets: a small answer); `None` when the zone is gone.
    async fn stored_serial(&self, zone: &ZoneName) -> Result<Option<u32>, ProviderError> {
        Ok(self.zone_serial(zone).await?.map(|z| z.serial))
    }

    /// The zone without its rrsets: its serial and SOA-EDIT-API setting.
    async fn zone_serial(&self, zone: &ZoneName) -> Result<Option<ZoneSerialJson>, ProviderError> {
        let mut url = self.zone_url(zone);
        url.query_pairs_mut().append_pair("rrsets", "false");
        let what = format!("read the SOA serial of zone {zone}");
        self.get_json(&what, url).await
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
        let started = Instant::now();
        let body = match self
            .call(&what, Idempotency::Idempotent, Method::GET, url, None)
            .await?
        {
            Answer::NotFound => return Ok(None),
            Answer::Body(body) => body,
        };
        let answered = started.elapsed();
        let content = match zone_content(zone, &body) {
            Ok(content) => content,
            Err(AnswerError::Json(e)) => {
                return Err(ProviderError::InvalidAnswer(format!(
                    "{what}: PowerDNS at {} sent a body that is not the expected JSON ({}): {}",
                    self.server_url,
                    self.quote(&e.to_string()),
                    self.quote(&String::from_utf8_lossy(&body))
                )));
            }
            Err(AnswerError::Content(e)) => {
                return Err(ProviderError::InvalidAnswer(format!(
                    "{what}: {}",
                    self.quote(&e)
                )));
            }
        };
        let bytes = body.len();
        drop(body);
        tracing::debug!(
            zone = %zone,
            bytes,
            sets = content.len(),
            answer_ms = answered.as_millis(),
            read_ms = (started.elapsed() - answered).as_millis(),
            "PowerDNS zone read"
        );
        Ok(Some(content))
    }

    async fn apply(&self, plan: &Plan) -> Result<ApplyReport, ProviderError> {
        if plan.is_empty() {
            // Nothing to do: not even a read.
            return Ok(ApplyReport::default());
        }
        // One transaction: every operation took effect.
        let applied = ApplyReport::all_applied(plan);
        match self.read_zone(&plan.zone).await? {
            Some(current) => match self.apply_to_existing(plan, current).await? {
                Some(after) => Ok(applied.with_after(after)),
                None => Ok(applied),
            },
            // PowerDNS adds an SOA and NS records of its own: read it to know.
            None if self.create_zones => {
                self.create_zone(plan).await?;
                Ok(applied)
            }
            None => Err(ProviderError::ZoneNotFound(plan.zone.to_string())),
        }
    }

    /// The whole zone is read again (a large zone's GET is most of a
    /// change's time) only when it may have changed since `observed`: when
    /// its stored SOA serial is no longer the observed one, or the zone does
    /// not move its serial on API changes (SOA-EDIT-API off). PowerDNS moves
    /// the serial on every change made through its API; a change written
    /// straight into its database without touching the SOA is not seen here
    /// (nor, between the read and the write, by [`Provider::apply`]).
    async fn apply_observed(
        &self,
        plan: &Plan,
        observed: &ZoneContent,
    ) -> Result<ApplyReport, ProviderError> {
        if plan.is_empty() {
            return Ok(ApplyReport::default());
        }
        if !self.still_as_read(&plan.zone, observed).await? {
            return self.apply(plan).await;
        }
        tracing::debug!(zone = %plan.zone, "serial unchanged since the zone was read: its before-values are checked against that read");
        let applied = ApplyReport::all_applied(plan);
        match self.apply_to_existing(plan, observed.clone()).await? {
            Some(after) => Ok(applied.with_after(after)),
            None => Ok(applied),
        }
    }

    /// `true` while the stored SOA serial is the observed one and the zone
    /// moves its serial on API changes (a small GET without the rrsets).
    async fn still_as_read(
        &self,
        zone: &ZoneName,
        observed: &ZoneContent,
    ) -> Result<bool, ProviderError> {
        Ok(match self.zone_serial(zone).await? {
            Some(stored) => {
                stored.serial_moves_on_change() && soa_serial(observed) == Some(stored.serial)
            }
            None => false,
        })
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

    /// The DNSKEYs of the zone's active, published cryptokeys: the keys a DS
    /// may point at (an inactive key signs nothing). `None` when the zone
    /// does not exist or PowerDNS does not sign it.
    async fn dnskeys(&self, zone: &ZoneName) -> Result<Option<RecordSet>, ProviderError> {
        let what = format!("read the DNSSEC keys of zone {zone}");
        let url = self.url(&["zones", &zone_id(zone), "cryptokeys"]);
        let Some(keys) = self.get_json::<Vec<CryptokeyJson>>(&what, url).await? else {
            return Ok(None);
        };
        dnskey_set(&keys)
            .map_err(|e| ProviderError::InvalidAnswer(format!("{what}: {}", self.quote(&e))))
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
        name: key.name().to_ascii(),
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

/// The TTL given to a DNSKEY set read from cryptokeys. The API does not say
/// which TTL PowerDNS serves them with; the set is compared by its keys only.
pub const DNSKEY_TTL: u32 = 3600;

/// The DNSKEY set of the active, published keys among `keys`; `None` when there is none.
fn dnskey_set(keys: &[CryptokeyJson]) -> Result<Option<RecordSet>, String> {
    let values = keys
        .iter()
        .filter(|k| k.active && k.published)
        .map(|k| dnskey_value(&k.dnskey).map_err(|e| format!("DNSKEY {:?}: {e}", k.dnskey)))
        .collect::<Result<Vec<_>, _>>()?;
    Ok((!values.is_empty()).then(|| RecordSet::new(DNSKEY_TTL, values)))
}

/// A DNSKEY in presentation format (`257 3 13 <base64>`), built as
/// hickory-proto's DNSKEY data.
fn dnskey_value(text: &str) -> Result<RecordValue, String> {
    fn number<T: std::str::FromStr>(field: Option<&str>, name: &str) -> Result<T, String> {
        let field = field.ok_or_else(|| format!("no {name}"))?;
        field
            .parse()
            .map_err(|_| format!("the {name} {field:?} is not a number in range"))
    }
    let mut fields = text.split_whitespace();
    let flags: u16 = number(fields.next(), "flags")?;
    let protocol: u8 = number(fields.next(), "protocol")?;
    if protocol != 3 {
        return Err(format!(
            "the protocol is {protocol}, not 3 (RFC 4034 section 2.1.2)"
        ));
    }
    let algorithm: u8 = number(fields.next(), "algorithm")?;
    let key: String = fields.collect();
    let key = data_encoding::BASE64
        .decode(key.as_bytes())
        .map_err(|e| format!("the public key is not base64: {e}"))?;
    if key.is_empty() {
        return Err("no public key".into());
    }
    let dnskey = DNSKEY::with_flags(flags, PublicKeyBuf::new(key, Algorithm::from_u8(algorithm)));
    RecordValue::from_rdata(&RData::DNSSEC(DNSSECRData::DNSKEY(dnskey)))
}

/// The serial of the zone's apex SOA, when it has a single SOA value.
fn soa_serial(content: &ZoneContent) -> Option<u32> {
    let key = RrKey::new(content.origin.as_name().clone(), RecordType::SOA);
    match content.sets.get(&key)?.values() {
        [value] => match value.to_rdata(RecordType::SOA) {
            Ok(RData::SOA(soa)) => Some(soa.serial),
            _ => None,
        },
        _ => None,
    }
}

/// Gives the zone's apex SOA the serial `serial`; false when the content
/// has no single SOA value to give it to (then the content is left alone).
fn set_soa_serial(content: &mut ZoneContent, serial: u32) -> bool {
    let key = RrKey::new(content.origin.as_name().clone(), RecordType::SOA);
    let Some(set) = content.sets.get_mut(&key) else {
        return false;
    };
    let [value] = set.values() else {
        return false;
    };
    let Ok(RData::SOA(mut soa)) = value.to_rdata(RecordType::SOA) else {
        return false;
    };
    if soa.serial == serial {
        return true;
    }
    soa.serial = serial;
    match RecordValue::from_rdata(&RData::SOA(soa)) {
        Ok(value) => {
            *set = RecordSet::new(set.ttl, vec![value]);
            true
        }
        Err(_) => false,
    }
}

fn delete_rrset(key: &RrKey) -> RrsetOut {
    RrsetOut {
        name: key.name().to_ascii(),
        rtype: pdns_type(key.rtype),
        ttl: None,
        changetype: Some("DELETE"),
        records: None,
    }
}

/// Why a zone answer did not become zone content.
#[derive(Debug)]
enum AnswerError {
    /// The body is not the documented JSON.
    Json(serde_json::Error),
    /// An rrset does not convert (a bad value, a name outside the zone, ...).
    Content(String),
}

/// Reads PowerDNS's zone answer into zone content in one pass over the
/// bytes: each rrset is converted as soon as it is parsed, so neither a
/// copy of the body as text nor a list of parsed rrsets is held.
fn zone_content(zone: &ZoneName, body: &[u8]) -> Result<ZoneContent, AnswerError> {
    let mut builder = ContentBuilder::new(zone);
    let mut json = serde_json::Deserializer::from_slice(body);
    let parsed = ZoneAnswer(&mut builder)
        .deserialize(&mut json)
        .and_then(|()| json.end());
    match (parsed, builder.failure) {
        (Ok(()), _) => Ok(builder.content),
        (Err(_), Some(failure)) => Err(AnswerError::Content(failure)),
        (Err(e), None) => Err(AnswerError::Json(e)),
    }
}

/// Zone content built one rrset at a time.
struct ContentBuilder<'z> {
    zone: &'z ZoneName,
    content: ZoneContent,
    /// Why an rrset did not convert; parsing stops there.
    failure: Option<String>,
}

impl<'z> ContentBuilder<'z> {
    fn new(zone: &'z ZoneName) -> Self {
        Self {
            zone,
            content: ZoneContent::new(zone.clone()),
            failure: None,
        }
    }

    /// Adds one rrset. Values are parsed from their presentation format,
    /// which canonicalises them (a TXT `\;` becomes `;`).
    fn add(&mut self, rrset: &RrsetJson<'_>) -> Result<(), String> {
        if rrset
            .rtype
            .parse::<RecordType>()
            .is_ok_and(is_server_generated)
        {
            return Ok(());
        }
        // A disabled record is stored but not served: it is not part of the
        // zone's content, so a set of only disabled records is absent. Note
        // that writing such a set (REPLACE) drops its disabled records.
        if rrset.records.iter().all(|r| r.disabled) {
            return Ok(());
        }
        let what = || format!("record set {} {}", rrset.name, rrset.rtype);
        let rtype = parse_record_type(&rrset.rtype).map_err(|e| format!("{}: {e}", what()))?;
        let mut name = Name::from_ascii(&*rrset.name)
            .map_err(|e| format!("{}: bad owner name: {e}", what()))?;
        name.set_fqdn(true);
        if !self.zone.contains(&name) {
            return Err(format!("{}: the name is outside the zone", what()));
        }
        let ttl = rrset
            .ttl
            .ok_or_else(|| format!("{}: the answer has no TTL", what()))?;
        let mut values = Vec::with_capacity(rrset.records.len());
        for record in rrset.records.iter().filter(|r| !r.disabled) {
            values.push(
                record_value(rtype, &record.content, self.zone)
                    .map_err(|e| format!("{}: value {:?}: {e}", what(), record.content))?,
            );
        }
        match self.content.sets.entry(RrKey::new(name, rtype)) {
            Entry::Vacant(slot) => {
                slot.insert(RecordSet::new(ttl, values));
            }
            // The same name in another case: one set.
            Entry::Occupied(mut slot) => {
                let merged = slot.get().values().iter().cloned().chain(values).collect();
                slot.insert(RecordSet::new(ttl, merged));
            }
        }
        Ok(())
    }
}

/// A value PowerDNS holds, as [`RecordValue::parse_existing`] reads it.
/// Addresses, most of a large zone, skip the presentation parser: it reads
/// them with the standard library's parsers, so the value is the same.
fn record_value(rtype: RecordType, text: &str, zone: &ZoneName) -> Result<RecordValue, String> {
    let address = match rtype {
        RecordType::A => text.trim().parse::<Ipv4Addr>().ok().map(|a| RData::A(A(a))),
        RecordType::AAAA => text
            .trim()
            .parse::<Ipv6Addr>()
            .ok()
            .map(|a| RData::AAAA(AAAA(a))),
        _ => None,
    };
    match address {
        Some(rdata) => RecordValue::from_rdata(&rdata),
        None => RecordValue::parse_existing(rtype, text, zone),
    }
}

/// The zone object of a read: every field but `rrsets` is skipped, and
/// `rrsets` is required (and must be a list, not `null`), so an answer
/// without them is an error instead of an empty zone.
struct ZoneAnswer<'b, 'z>(&'b mut ContentBuilder<'z>);

/// The keys of the zone object that matter.
#[derive(Deserialize)]
#[serde(field_identifier, rename_all = "lowercase")]
enum ZoneField {
    Rrsets,
    #[serde(other)]
    Other,
}

impl<'de> DeserializeSeed<'de> for ZoneAnswer<'_, '_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for ZoneAnswer<'_, '_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a PowerDNS zone with its rrsets")
    }

    fn visit_map<M: MapAccess<'de>>(self, mut map: M) -> Result<(), M::Error> {
        let builder = self.0;
        let mut seen = false;
        while let Some(field) = map.next_key::<ZoneField>()? {
            match field {
                ZoneField::Rrsets if seen => return Err(de::Error::duplicate_field("rrsets")),
                ZoneField::Rrsets => {
                    map.next_value_seed(Rrsets(&mut *builder))?;
                    seen = true;
                }
                ZoneField::Other => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        if seen {
            Ok(())
        } else {
            Err(de::Error::missing_field("rrsets"))
        }
    }
}

/// The `rrsets` list, each rrset converted as it is read.
struct Rrsets<'b, 'z>(&'b mut ContentBuilder<'z>);

impl<'de> DeserializeSeed<'de> for Rrsets<'_, '_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_seq(self)
    }
}

impl<'de> Visitor<'de> for Rrsets<'_, '_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a list of rrsets")
    }

    fn visit_seq<S: SeqAccess<'de>>(self, mut seq: S) -> Result<(), S::Error> {
        while let Some(rrset) = seq.next_element::<RrsetJson<'de>>()? {
            if let Err(failure) = self.0.add(&rrset) {
                self.0.failure = Some(failure);
                return Err(de::Error::custom("an rrset does not convert"));
            }
        }
        Ok(())
    }
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

    /// One rrset as PowerDNS sends it (keys in its order, with comments).
    fn rrset(name: &str, rtype: &str, records: &[(&str, bool)]) -> serde_json::Value {
        let records: Vec<serde_json::Value> = records
            .iter()
            .map(|(c, d)| serde_json::json!({"content": c, "disabled": d}))
            .collect();
        serde_json::json!({"comments": [], "name": name, "records": records, "ttl": 300, "type": rtype})
    }

    /// A zone answer around the rrsets, with fields before and after them.
    fn answer(rrsets: Vec<serde_json::Value>) -> Vec<u8> {
        serde_json::to_vec(&serde_json::json!({
            "account": "", "dnssec": false, "id": "acme.example.", "kind": "Native",
            "masters": [], "name": "acme.example.", "rrsets": rrsets, "serial": 1
        }))
        .unwrap_or_default()
    }

    fn content_error(z: &ZoneName, body: &[u8]) -> String {
        match zone_content(z, body) {
            Err(AnswerError::Content(e)) => e,
            other => panic!("expected a content error, got {other:?}"),
        }
    }

    #[test]
    fn rrsets_become_canonical_content() {
        let z = zone("acme.example.");
        let body = answer(vec![
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
        ]);
        let content = zone_content(&z, &body).unwrap_or_else(|e| panic!("{e:?}"));
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
        let outside = answer(vec![rrset("other.example.", "A", &[("192.0.2.1", false)])]);
        assert!(content_error(&z, &outside).contains("outside the zone"));
        let bad = answer(vec![rrset("x.acme.example.", "A", &[("300.1.1.1", false)])]);
        let error = content_error(&z, &bad);
        assert!(error.contains("x.acme.example. A"), "{error}");
        assert!(error.contains("\"300.1.1.1\""), "{error}");
        let no_ttl = br#"{"rrsets": [{"name": "x.acme.example.", "type": "A", "records": [{"content": "192.0.2.1", "disabled": false}]}]}"#;
        assert!(content_error(&z, no_ttl).contains("no TTL"));
    }

    #[test]
    fn answers_of_another_shape_are_json_errors_not_empty_zones() {
        let z = zone("acme.example.");
        for body in [
            &br#"{"name": "acme.example."}"#[..],
            br#"{"rrsets": null}"#,
            br#"{"rrsets": []} trailing"#,
            br#"{"rrsets": [], "rrsets": []}"#,
            br#"{"rrsets": [{"name": "x.acme.example.", "type": "A"}]}"#,
            br#"[]"#,
            b"<html>not json</html>",
        ] {
            assert!(
                matches!(zone_content(&z, body), Err(AnswerError::Json(_))),
                "{}",
                String::from_utf8_lossy(body)
            );
        }
        let empty = zone_content(&z, br#"{"rrsets": [], "comments": {"x": [1, 2]}}"#)
            .unwrap_or_else(|e| panic!("{e:?}"));
        assert!(empty.is_empty());
    }

    #[test]
    fn escaped_strings_are_read_like_plain_ones() {
        let z = zone("acme.example.");
        // \u0077 is "w": an escaped name cannot be borrowed from the body.
        let body = br#"{"rrsets": [{"name": "\u0077ww.acme.example.", "type": "TXT", "ttl": 60,
            "records": [{"content": "\"a \\\"quoted\\\" word\"", "disabled": false}]}]}"#;
        let content = zone_content(&z, body).unwrap_or_else(|e| panic!("{e:?}"));
        let stored = content.to_stored();
        assert_eq!(stored.len(), 1);
        assert_eq!(stored[0].name, "www.acme.example.");
        assert_eq!(
            stored[0].values,
            vec!["\"a \\\"quoted\\\" word\"".to_owned()]
        );
    }

    #[test]
    fn addresses_read_on_the_short_path_equal_the_presentation_parser() {
        let z = zone("acme.example.");
        for (rtype, text) in [
            (RecordType::A, "192.0.2.1"),
            (RecordType::A, " 10.0.0.255 "),
            (RecordType::A, "0.0.0.0"),
            (RecordType::AAAA, "2001:db8::1"),
            (RecordType::AAAA, "2001:DB8:0:0:0:0:0:1"),
            (RecordType::AAAA, "::"),
            (RecordType::AAAA, "::ffff:192.0.2.1"),
            (RecordType::AAAA, "fe80::1:2:3:4"),
        ] {
            let short = record_value(rtype, text, &z).unwrap_or_else(|e| panic!("{text}: {e}"));
            let full = RecordValue::parse_existing(rtype, text, &z)
                .unwrap_or_else(|e| panic!("{text}: {e}"));
            assert_eq!(short.wire(), full.wire(), "{text}");
            assert_eq!(short.text(), full.text(), "{text}");
        }
        // What the standard library refuses goes to the presentation parser, and its error.
        for (rtype, text) in [
            (RecordType::A, "192.0.2.01"),
            (RecordType::A, "192.0.2"),
            (RecordType::AAAA, "2001:db8::1%eth0"),
            (RecordType::AAAA, "192.0.2.1"),
        ] {
            assert_eq!(
                record_value(rtype, text, &z).map(|v| v.text().to_owned()),
                RecordValue::parse_existing(rtype, text, &z).map(|v| v.text().to_owned()),
                "{text}"
            );
        }
    }

    /// RFC 4034 section 5.4's example key, `dskey.example.com.` (key tag 60485).
    const RFC4034_KEY: &str = "AQOeiiR0GOMYkDshWoSKz9XzfwJr1AYtsmx3TGkJaNXVbfi/2pHm822aJ5iI9BMzNXxeYCmZDRD99WYwYqUSdjMmmAphXdvxegXd/M5+X7OrzKBaMbCVdFLUUh6DhweJBjEVv5f2wwjM9XzcnOf+EPbtG9DMBmADjFDc2w/rljwvFw==";

    fn cryptokey(active: bool, published: Option<bool>, dnskey: &str) -> CryptokeyJson {
        let mut json = serde_json::json!({
            "type": "Cryptokey", "id": 1, "keytype": "csk", "active": active,
            "dnskey": dnskey, "algorithm": "RSASHA1", "bits": 512,
        });
        if let Some(p) = published {
            json["published"] = serde_json::json!(p);
        }
        serde_json::from_value(json).unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn cryptokeys_become_the_dnskey_set_of_the_active_published_keys() {
        let key = format!("256 3 5 {RFC4034_KEY}");
        let set = dnskey_set(&[
            cryptokey(true, Some(true), &key),
            cryptokey(false, Some(true), "257 3 13 AAAA"),
            cryptokey(true, Some(false), "257 3 13 AAAB"),
        ])
        .unwrap_or_else(|e| panic!("{e}"))
        .unwrap_or_else(|| panic!("one key is active and published"));
        assert_eq!(set.values().len(), 1);
        let Ok(RData::DNSSEC(DNSSECRData::DNSKEY(k))) =
            set.values()[0].to_rdata(RecordType::DNSKEY)
        else {
            panic!("not DNSKEY data: {:?}", set.values()[0]);
        };
        assert_eq!(k.flags(), 256);
        assert_eq!(k.calculate_key_tag().ok(), Some(60485));
        // Before PowerDNS 4.3 there was no `published`: every key was.
        let old = dnskey_set(&[cryptokey(true, None, &key)]).unwrap_or_default();
        assert_eq!(old, Some(set));
        // An unsigned zone has no keys: PowerDNS does not sign it.
        assert_eq!(dnskey_set(&[]), Ok(None));
        assert_eq!(dnskey_set(&[cryptokey(false, Some(true), &key)]), Ok(None));
    }

    #[test]
    fn malformed_dnskeys_are_errors() {
        for (text, why) in [
            ("257 3 13", "no public key"),
            ("257 2 13 AAAA", "not 3"),
            ("70000 3 13 AAAA", "flags"),
            ("257 3 x AAAA", "algorithm"),
            ("257 3 13 !!!", "base64"),
            ("", "no flags"),
        ] {
            let error = dnskey_set(&[cryptokey(true, Some(true), text)]).unwrap_err();
            assert!(error.contains(why), "{text:?}: {error}");
        }
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

    #[test]
    fn the_soa_serial_powerdns_gave_replaces_the_one_the_content_had() {
        let z = zone("acme.example.");
        let soa = |serial: u32| {
            let text =
                format!("ns1.acme.example. hostmaster.acme.example. {serial} 3600 600 604800 300");
            RecordValue::parse(RecordType::SOA, &text, &z).unwrap_or_else(|e| panic!("{e}"))
        };
        let key = RrKey::new(z.as_name().clone(), RecordType::SOA);
        let mut content = ZoneContent::new(z.clone());
        content
            .sets
            .insert(key.clone(), RecordSet::new(3600, vec![soa(2026113001)]));
        assert!(set_soa_serial(&mut content, 2026113002));
        assert_eq!(
            content.sets.get(&key),
            Some(&RecordSet::new(3600, vec![soa(2026113002)]))
        );
        assert!(
            set_soa_serial(&mut content, 2026113002),
            "already that serial"
        );
        // No SOA to give it to: the content stays as it is, and the caller reads the zone.
        let mut without = ZoneContent::new(z);
        assert!(!set_soa_serial(&mut without, 7));
        assert!(without.is_empty());
    }
}
