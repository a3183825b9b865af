//! The RFC 2136 provider (BIND 9, Knot, PowerDNS): reads a zone by a
//! TSIG-signed AXFR and writes a plan as one TSIG-signed UPDATE message whose
//! prerequisites pin every touched record set to the value the plan was made
//! from, so the server applies all of it or nothing. Every message, signature
//! and signature check is hickory-proto's; the transport is DNS over TCP
//! (RFC 1035 section 4.2.2 framing) with tokio. Does I/O (network).
//!
//! Choices worth knowing:
//! - Every answer must carry a TSIG signature that verifies with the key
//!   (RFC 8945), every message of a multi-message AXFR included (BIND signs
//!   each one). An answer that does not verify is refused, and so is a
//!   transfer with unsigned messages in between (RFC 8945 section 5.3.1
//!   allows up to 99), which hickory-proto's verifier does not chain.
//!   Unsigned error answers (REFUSED, ...) are read for their rcode only.
//! - RFC 2136 cannot list a server's zones or create a zone: `list_zones`
//!   reports that, and a zone the server does not serve is
//!   [`ProviderError::ZoneNotFound`].
//! - Prerequisites compare record data, not TTLs (RFC 2136 section 2.4.2): a
//!   change made elsewhere to a TTL alone does not stop a plan.
//! - The apex SOA and NS sets are special on every RFC 2136 server (section
//!   3.4.2): deleting them is ignored. An SOA update is sent as the new SOA
//!   with the next serial; an apex NS update adds the new records and then
//!   deletes the old ones one by one; deleting either set is refused here.

use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;
use std::time::{SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use hickory_proto::ProtoError;
use hickory_proto::op::{Header, Message, MessageType, OpCode, Query, ResponseCode, UpdateMessage};
use hickory_proto::rr::rdata::TXT;
use hickory_proto::rr::rdata::tsig::{TsigAlgorithm, TsigError};
use hickory_proto::rr::{DNSClass, Name, RData, Record, RecordType, TSigVerifier, TSigner};
use hickory_proto::serialize::binary::{BinDecodable, BinDecoder};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use zentralink_model::plan::{Change, ChangeOp, Plan};
use zentralink_model::record::{RecordSet, RecordValue, RrKey, is_server_generated, type_name};
use zentralink_model::resources::{ProviderType, Rfc2136Settings};
use zentralink_model::secrets::SecretString;
use zentralink_model::{ZoneContent, ZoneName};

use super::resilience::{AttemptError, Governor, Idempotency, Limits};
use super::{ApplyReport, Capabilities, PROBE_LABEL, Provider, ProviderError};

/// Largest DNS message over TCP: the length prefix is 16 bits.
pub const MAX_MESSAGE_LEN: usize = 65_535;

/// The most records ZentraLink reads in one zone transfer. PowerDNS's HTTP
/// answer for a zone this large is about 240 MB, near
/// [`MAX_RESPONSE_BYTES`](super::resilience::MAX_RESPONSE_BYTES); a transfer that
/// goes on past it is refused instead of being held in memory. The limit of
/// a connection is [`Limits::max_transfer_records`].
pub const MAX_TRANSFER_RECORDS: usize = 2_000_000;

/// The most bytes (DNS messages, as received) ZentraLink reads in one zone
/// transfer: 512 MiB. The limit of a connection is [`Limits::max_transfer_bytes`].
pub const MAX_TRANSFER_BYTES: usize = 512 * 1024 * 1024;

/// Seconds of clock difference a TSIG signature tolerates (RFC 8945 recommends 300).
const TSIG_FUDGE: u16 = 300;

/// A connection to one RFC 2136 primary server with one TSIG key.
pub struct Rfc2136Provider {
    server: SocketAddr,
    key_name: Name,
    algorithm: TsigAlgorithm,
    signer: TSigner,
    governor: Governor,
}

impl fmt::Debug for Rfc2136Provider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Rfc2136Provider")
            .field("server", &self.server)
            .field("key_name", &self.key_name.to_ascii())
            .field("algorithm", &algorithm_name(&self.algorithm))
            .field("secret", &"<redacted>")
            .finish()
    }
}

impl Rfc2136Provider {
    /// Builds the provider from a connection's `spec.rfc2136` and the TSIG
    /// secret: the base64 value `tsig-keygen` prints as the key's `secret`.
    /// Nothing is sent until a method is called.
    pub fn new(
        settings: &Rfc2136Settings,
        tsig_secret: SecretString,
        limits: Limits,
    ) -> Result<Self, ProviderError> {
        let server: SocketAddr = settings.server.trim().parse().map_err(|_| {
            ProviderError::Unsupported(format!(
                "spec.rfc2136.server {:?} is not an address with a port, such as 127.0.0.1:53",
                settings.server
            ))
        })?;
        let mut key_name = Name::from_ascii(settings.tsig_key_name.trim()).map_err(|e| {
            ProviderError::Unsupported(format!(
                "spec.rfc2136.tsigKeyName {:?} is not a DNS name: {e}",
                settings.tsig_key_name
            ))
        })?;
        key_name.set_fqdn(true);
        let algorithm = match settings
            .tsig_algorithm
            .as_deref()
            .map(|a| a.trim().to_ascii_lowercase())
            .as_deref()
        {
            None | Some("hmac-sha256") => TsigAlgorithm::HmacSha256,
            Some("hmac-sha512") => TsigAlgorithm::HmacSha512,
            Some(other) => {
                return Err(ProviderError::Unsupported(format!(
                    "spec.rfc2136.tsigAlgorithm {other:?} is not supported; use hmac-sha256 or hmac-sha512"
                )));
            }
        };
        let key = decode_base64(tsig_secret.expose())
            .filter(|k| !k.is_empty())
            .ok_or_else(|| {
                ProviderError::Authentication(format!(
                    "the TSIG secret of key {} is not base64: give the key's `secret` value as tsig-keygen prints it",
                    key_name.to_ascii()
                ))
            })?;
        let signer =
            TSigner::new(key, algorithm.clone(), key_name.clone(), TSIG_FUDGE).map_err(|e| {
                ProviderError::Unsupported(format!(
                    "TSIG algorithm {} cannot sign: {e}",
                    algorithm_name(&algorithm)
                ))
            })?;
        Ok(Self {
            server,
            key_name,
            algorithm,
            signer,
            governor: Governor::new(limits),
        })
    }

    /// The server this provider talks to.
    pub fn server(&self) -> SocketAddr {
        self.server
    }

    /// The UPDATE message that carries `plan`, before signing: the zone
    /// section, one prerequisite per touched record set (its exact
    /// before-records, or "does not exist" for a create) and the updates.
    /// Refuses operations an RFC 2136 server would silently ignore.
    pub fn update_message(&self, plan: &Plan) -> Result<Message, ProviderError> {
        let zone = plan.zone.as_name();
        let mut message = new_update(zone);
        for change in &plan.changes {
            check_change(&plan.zone, change)?;
            add_prerequisite(&mut message, change)?;
            add_updates(&mut message, zone, change)?;
        }
        Ok(message)
    }

    /// The size in bytes of the signed UPDATE message that carries `plan`,
    /// or `None` when it does not fit into one DNS message (64 KiB).
    pub fn update_len(&self, plan: &Plan) -> Result<Option<usize>, ProviderError> {
        let message = self.update_message(plan)?;
        Ok(match self.sign(&message)? {
            Signed::Fits(request) => Some(request.bytes.len()),
            Signed::TooLarge => None,
        })
    }

    /// Signs a request; returns its bytes and the verifier of the answers.
    /// hickory-proto stops writing records at 64 KiB and sets the TC flag;
    /// such a message is reported as too large, never sent.
    fn sign(&self, message: &Message) -> Result<Signed, ProviderError> {
        let mut signed = message.clone();
        let verifier = match signed.finalize(&self.signer, unix_now()) {
            Ok(Some(verifier)) => verifier,
            Ok(None) => {
                return Err(ProviderError::Io(
                    "TSIG signing gave no verifier for the answers".into(),
                ));
            }
            Err(ProtoError::MaxBufferSizeExceeded(_)) => return Ok(Signed::TooLarge),
            Err(e) => {
                return Err(ProviderError::Io(format!(
                    "the request cannot be TSIG-signed: {e}"
                )));
            }
        };
        let bytes = match signed.to_vec() {
            Ok(bytes) => bytes,
            Err(ProtoError::MaxBufferSizeExceeded(_)) => return Ok(Signed::TooLarge),
            Err(e) => {
                return Err(ProviderError::Io(format!(
                    "the request cannot be encoded: {e}"
                )));
            }
        };
        let header = Header::read(&mut BinDecoder::new(&bytes))
            .map_err(|e| ProviderError::Io(format!("the encoded request does not decode: {e}")))?;
        let complete = !header.metadata.truncation
            && usize::from(header.counts.answers) == signed.answers.len()
            && usize::from(header.counts.authorities) == signed.authorities.len();
        if !complete || bytes.len() > MAX_MESSAGE_LEN {
            return Ok(Signed::TooLarge);
        }
        Ok(Signed::Fits(SignedRequest {
            id: signed.metadata.id,
            bytes,
            verifier,
        }))
    }

    /// Signs a request that must fit (a query, a probe).
    fn sign_small(&self, message: &Message) -> Result<SignedRequest, AttemptError> {
        match self.sign(message).map_err(AttemptError::Permanent)? {
            Signed::Fits(request) => Ok(request),
            Signed::TooLarge => Err(AttemptError::Permanent(ProviderError::Unsupported(
                format!("the request does not fit into one DNS message ({MAX_MESSAGE_LEN} bytes)"),
            ))),
        }
    }

    /// Opens a TCP connection and sends one signed request. A connection
    /// that cannot be opened is [`ProviderError::NotSent`]: a write was not sent.
    async fn send(&self, request: &SignedRequest, what: &str) -> Result<TcpStream, AttemptError> {
        let frame = frame(&request.bytes).map_err(AttemptError::Permanent)?;
        let mut stream = TcpStream::connect(self.server).await.map_err(|e| {
            AttemptError::transient(ProviderError::NotSent(
                if e.kind() == std::io::ErrorKind::ConnectionRefused {
                    format!("{what}: connection refused")
                } else {
                    format!("{what}: cannot connect: {e}")
                },
            ))
        })?;
        stream.write_all(&frame).await.map_err(|e| {
            AttemptError::transient(ProviderError::Unreachable(format!(
                "{what}: sending the request failed: {e}"
            )))
        })?;
        Ok(stream)
    }

    /// Reads one answer of an exchange and checks it: a DNS response to our
    /// request, without a TSIG error, signed with our key (the MAC verifies
    /// and chains to the request or the previous answer). Gives the message
    /// and its size in bytes.
    async fn receive(
        &self,
        stream: &mut TcpStream,
        request: &mut SignedRequest,
        what: &str,
    ) -> Result<(Message, usize), AttemptError> {
        let bytes = read_frame(stream).await.map_err(|e| {
            AttemptError::transient(ProviderError::Unreachable(format!(
                "{what}: {}",
                if e.kind() == std::io::ErrorKind::UnexpectedEof {
                    "the server closed the connection before answering".to_owned()
                } else {
                    format!("reading the answer failed: {e}")
                }
            )))
        })?;
        let message = match request.verifier.verify(&bytes) {
            Ok(response) => response.into_message(),
            Err(verify_error) => self
                .unverified(&bytes, &verify_error.to_string(), what)
                .map_err(AttemptError::Permanent)?,
        };
        if message.metadata.id != request.id {
            return Err(AttemptError::Permanent(ProviderError::InvalidAnswer(
                format!("{what}: the answer is for another request (id mismatch)"),
            )));
        }
        Ok((message, bytes.len()))
    }

    /// Explains an answer whose TSIG signature did not verify. An unsigned
    /// error answer is returned as it is (its rcode is mapped by the caller);
    /// everything else is refused.
    fn unverified(
        &self,
        bytes: &[u8],
        verify_error: &str,
        what: &str,
    ) -> Result<Message, ProviderError> {
        let message = Message::from_vec(bytes).map_err(|e| {
            ProviderError::InvalidAnswer(format!("{what}: the answer is not a DNS message: {e}"))
        })?;
        if message.metadata.message_type != MessageType::Response {
            return Err(ProviderError::InvalidAnswer(format!(
                "{what}: the server sent a request instead of an answer"
            )));
        }
        let key = self.key_name.to_ascii();
        let alg = algorithm_name(&self.algorithm);
        if let Some(error) = message.signature().and_then(|s| s.data.error) {
            return Err(ProviderError::Authentication(format!(
                "{what}: {}",
                match error {
                    TsigError::BadKey => format!(
                        "the server does not know key {key} with algorithm {alg} (TSIG BADKEY): check spec.rfc2136.tsigKeyName and tsigAlgorithm against the server's key"
                    ),
                    TsigError::BadSig => format!(
                        "the server rejected the signature of key {key} (TSIG BADSIG): the secret does not match the server's"
                    ),
                    TsigError::BadTime => format!(
                        "the server's clock and this machine's differ by more than {TSIG_FUDGE} s (TSIG BADTIME): synchronise the clocks"
                    ),
                    TsigError::BadTrunc =>
                        "the server refused the signature as truncated (TSIG BADTRUNC)".to_owned(),
                    TsigError::Unknown(code) =>
                        format!("the server refused the signature of key {key} (TSIG error {code})"),
                }
            )));
        }
        if message.signature().is_some() {
            return Err(ProviderError::Authentication(format!(
                "{what}: the TSIG signature of the server's answer does not verify with key {key}: {verify_error}"
            )));
        }
        match message.metadata.response_code {
            ResponseCode::NotAuth => Err(ProviderError::Authentication(format!(
                "{what}: the server answered NOTAUTH without a signature: it does not accept key {key} ({alg})"
            ))),
            ResponseCode::NoError => Err(ProviderError::InvalidAnswer(format!(
                "{what}: the answer carries no TSIG signature of key {key}, so it cannot be trusted (a server that signs only some messages of a zone transfer is not supported)"
            ))),
            _ => Ok(message),
        }
    }

    /// One request, one answer.
    async fn exchange(&self, request: &Message, what: &str) -> Result<Message, AttemptError> {
        let mut signed = self.sign_small(request)?;
        let mut stream = self.send(&signed, what).await?;
        let (answer, _) = self.receive(&mut stream, &mut signed, what).await?;
        Ok(answer)
    }

    /// A whole AXFR: the records between the opening and the closing SOA,
    /// the closing SOA left out. A transfer passing the connection's
    /// [`Limits::max_transfer_records`] or [`Limits::max_transfer_bytes`] is
    /// refused as soon as it does.
    async fn transfer(&self, zone: &ZoneName, what: &str) -> Result<Vec<Record>, AttemptError> {
        let request = axfr_request(zone);
        let mut signed = self.sign_small(&request)?;
        let mut stream = self.send(&signed, what).await?;
        let limits = self.governor.limits();
        let mut records: Vec<Record> = Vec::new();
        let mut received = 0usize;
        loop {
            let (mut message, size) = self.receive(&mut stream, &mut signed, what).await?;
            received = received.saturating_add(size);
            if received > limits.max_transfer_bytes {
                return Err(transfer_too_large(
                    what,
                    &format!("more than {} bytes of messages", limits.max_transfer_bytes),
                ));
            }
            match message.metadata.response_code {
                ResponseCode::NoError => {}
                ResponseCode::NotAuth | ResponseCode::NXDomain => {
                    return Err(AttemptError::Permanent(ProviderError::ZoneNotFound(
                        format!(
                            "{zone} (the server at {} answered {} to a signed AXFR: it does not serve the zone; RFC 2136 cannot create zones, so add it to the server's configuration)",
                            self.server,
                            rcode_text(message.metadata.response_code)
                        ),
                    )));
                }
                ResponseCode::Refused => {
                    return Err(AttemptError::Permanent(ProviderError::Authentication(
                        format!(
                            "{what}: the server refused the zone transfer (REFUSED): its allow-transfer must grant key {}",
                            self.key_name.to_ascii()
                        ),
                    )));
                }
                ResponseCode::ServFail => {
                    return Err(AttemptError::transient(ProviderError::Unreachable(
                        format!("{what}: the server failed (SERVFAIL); see its log"),
                    )));
                }
                other => {
                    return Err(AttemptError::Permanent(ProviderError::InvalidAnswer(
                        format!("{what}: the server answered {}", rcode_text(other)),
                    )));
                }
            }
            let answers = std::mem::take(&mut message.answers);
            if records.is_empty()
                && answers
                    .first()
                    .is_none_or(|r| r.record_type() != RecordType::SOA)
            {
                return Err(AttemptError::Permanent(ProviderError::InvalidAnswer(
                    format!("{what}: the transfer does not start with the zone's SOA"),
                )));
            }
            if answers.len() > limits.max_transfer_records.saturating_sub(records.len()) {
                return Err(transfer_too_large(
                    what,
                    &format!("more than {} records", limits.max_transfer_records),
                ));
            }
            records.extend(answers);
            if records.len() > 1
                && records
                    .last()
                    .is_some_and(|r| r.record_type() == RecordType::SOA)
            {
                records.pop();
                return Ok(records);
            }
        }
    }

    /// Sends one UPDATE and maps the answer: NOERROR means every operation
    /// was applied; any other answer means none was (RFC 2136 section 3.7).
    async fn send_update(
        &self,
        message: &Message,
        zone: &ZoneName,
        operations: usize,
    ) -> Result<(), ProviderError> {
        let what = format!("UPDATE of {zone} at {}", self.server);
        let answer = self
            .governor
            .call(&what, Idempotency::Write, || self.exchange(message, &what))
            .await?;
        let rcode = answer.metadata.response_code;
        let key = self.key_name.to_ascii();
        match rcode {
            ResponseCode::NoError => Ok(()),
            ResponseCode::YXRRSet
            | ResponseCode::NXRRSet
            | ResponseCode::YXDomain
            | ResponseCode::NXDomain => Err(ProviderError::Conflict(format!(
                "zone {zone}: the server refused the UPDATE because a prerequisite failed ({}): at least one of the {operations} record sets it touches no longer holds the records the plan was made from. Nothing was applied (an UPDATE is all or nothing): read the zone and plan again",
                rcode_text(rcode)
            ))),
            ResponseCode::Refused => Err(ProviderError::Authentication(format!(
                "{what}: the server refused it (REFUSED): either the zone's update-policy does not grant key {key} the names and types of the plan, or the server's own checks refused the data (BIND's check-integrity refuses an MX or SRV whose target inside the zone has no address record); the server's log says which"
            ))),
            ResponseCode::NotAuth => Err(ProviderError::Authentication(format!(
                "{what}: the server is not authoritative for the zone or does not accept key {key} for it (NOTAUTH)"
            ))),
            ResponseCode::NotZone => Err(ProviderError::Unsupported(format!(
                "{what}: a name of the update is outside the zone (NOTZONE); nothing was applied"
            ))),
            ResponseCode::NotImp => Err(ProviderError::Unsupported(format!(
                "{what}: the server does not implement dynamic updates (NOTIMP)"
            ))),
            ResponseCode::FormErr => Err(ProviderError::Unsupported(format!(
                "{what}: the server could not parse the update (FORMERR); nothing was applied"
            ))),
            ResponseCode::ServFail => Err(ProviderError::Uncertain(format!(
                "{what}: the server failed (SERVFAIL); RFC 2136 servers apply an update all or nothing, but read the zone again before retrying and see the server's log"
            ))),
            other => Err(ProviderError::InvalidAnswer(format!(
                "{what}: unexpected answer {}",
                rcode_text(other)
            ))),
        }
    }
}

/// A signed request, or the news that it does not fit into one message.
enum Signed {
    Fits(SignedRequest),
    TooLarge,
}

/// A signed request: its id, its bytes and the verifier of the answers.
struct SignedRequest {
    id: u16,
    bytes: Vec<u8>,
    verifier: TSigVerifier,
}

#[async_trait]
impl Provider for Rfc2136Provider {
    fn provider_type(&self) -> ProviderType {
        ProviderType::Rfc2136
    }

    /// Every record type but ALIAS (no RFC 2136 server expands it); a batch
    /// is one UPDATE message, all or nothing, limited by size (64 KiB) rather
    /// than by a number of operations: `apply` refuses a plan that does not fit.
    fn capabilities(&self) -> Capabilities {
        Capabilities {
            record_types: None,
            atomic_batch: true,
            alias: false,
            max_batch: None,
            lists_zones: false,
        }
    }

    async fn list_zones(&self) -> Result<Vec<ZoneName>, ProviderError> {
        Err(ProviderError::Unsupported(format!(
            "RFC 2136 cannot list the zones of {}: its zones are in the server's configuration; declare each one in a DnsZone",
            self.server
        )))
    }

    /// A TSIG-signed AXFR; DNSSEC records the server generates are left out.
    async fn read_zone(&self, zone: &ZoneName) -> Result<Option<ZoneContent>, ProviderError> {
        let what = format!("AXFR of {zone} from {}", self.server);
        let records = self
            .governor
            .call(&what, Idempotency::Idempotent, || {
                self.transfer(zone, &what)
            })
            .await?;
        let content = zone_content(zone, records)
            .map_err(|e| ProviderError::InvalidAnswer(format!("{what}: {e}")))?;
        tracing::debug!(%zone, server = %self.server, sets = content.len(), "zone transferred");
        Ok(Some(content))
    }

    /// One UPDATE message for the whole plan, its prerequisites holding every
    /// touched record set to its before-value. A plan whose message would
    /// exceed 64 KiB is refused before anything is sent.
    async fn apply(&self, plan: &Plan) -> Result<ApplyReport, ProviderError> {
        if plan.is_empty() {
            return Ok(ApplyReport::default());
        }
        let message = self.update_message(plan)?;
        if let Signed::TooLarge = self.sign(&message)? {
            return Err(ProviderError::Unsupported(format!(
                "zone {}: the plan's {} operations do not fit into one UPDATE message (at most {MAX_MESSAGE_LEN} bytes with their prerequisites); nothing was sent: apply the plan in smaller parts",
                plan.zone,
                plan.changes.len()
            )));
        }
        self.send_update(&message, &plan.zone, plan.changes.len())
            .await?;
        Ok(ApplyReport::all_applied(plan))
    }

    /// A TSIG-signed query for the SOA of the root zone. No zone belongs to
    /// a connection, and every server answers this query somehow (usually
    /// REFUSED or NOTAUTH, since it is not authoritative for the root): what
    /// matters is the signature. An answer signed with the key, whatever its
    /// rcode, proves that the server knows the key and that the secrets
    /// match; a TSIG error (BADKEY, BADSIG, BADTIME) or an unsigned NOTAUTH
    /// fails the test. An unsigned answer to a server that does not check
    /// signatures on queries passes: the write probe's signed UPDATE checks
    /// the key then.
    async fn test_connection(&self) -> Result<(), ProviderError> {
        let what = format!("connection test (signed SOA query) to {}", self.server);
        let mut query = Message::query();
        query.metadata.recursion_desired = false;
        query.add_query(Query::query(Name::root(), RecordType::SOA));
        let answer = self
            .governor
            .call(&what, Idempotency::Idempotent, || {
                self.exchange(&query, &what)
            })
            .await?;
        if answer.signature().is_none() {
            tracing::info!(
                server = %self.server,
                rcode = %rcode_text(answer.metadata.response_code),
                "the server answered the connection test unsigned; the write probe checks the key"
            );
        }
        Ok(())
    }

    /// An UPDATE adding a TXT record `_zentralink-probe.<zone>`, then one
    /// deleting it.
    async fn probe_write(&self, zone: &ZoneName) -> Result<(), ProviderError> {
        let name = Name::from_ascii(PROBE_LABEL)
            .and_then(|label| label.append_domain(zone.as_name()))
            .map_err(|e| ProviderError::Unsupported(format!("no probe name in {zone}: {e}")))?;
        let mut add = new_update(zone.as_name());
        add.add_update(Record::from_rdata(
            name.clone(),
            60,
            RData::TXT(TXT::new(vec!["zentralink write probe".to_owned()])),
        ));
        self.send_update(&add, zone, 1).await?;
        let mut delete = new_update(zone.as_name());
        delete.add_update(class_record(name.clone(), RecordType::TXT, DNSClass::ANY));
        self.send_update(&delete, zone, 1).await.map_err(|e| {
            ProviderError::Io(format!(
                "the probe record {} TXT was created but could not be deleted; delete it by hand: {e}",
                name.to_ascii()
            ))
        })
    }
}

/// An empty UPDATE message for `zone` (the zone section names its SOA, class IN).
fn new_update(zone: &Name) -> Message {
    let mut message = Message::query();
    message.metadata.op_code = OpCode::Update;
    message.metadata.recursion_desired = false;
    let mut zone_section = Query::query(zone.clone(), RecordType::SOA);
    zone_section.set_query_class(DNSClass::IN);
    message.add_zone(zone_section);
    message
}

/// The AXFR request for a zone.
fn axfr_request(zone: &ZoneName) -> Message {
    let mut message = Message::query();
    message.metadata.recursion_desired = false;
    let mut query = Query::query(zone.as_name().clone(), RecordType::AXFR);
    query.set_query_class(DNSClass::IN);
    message.add_query(query);
    message
}

/// A record with empty data and TTL 0 in class ANY or NONE: the RFC 2136
/// form of "RRset does not exist" (NONE, prerequisite) and "delete the
/// RRset" (ANY, update).
fn class_record(name: Name, rtype: RecordType, class: DNSClass) -> Record {
    let mut record = Record::update0(name, 0, rtype);
    record.dns_class = class;
    record
}

/// Whether `name` is the zone's apex.
fn is_apex(zone: &Name, name: &Name) -> bool {
    zone == name
}

/// Refuses operations no RFC 2136 server carries out as asked.
fn check_change(zone: &ZoneName, change: &Change) -> Result<(), ProviderError> {
    let key = &change.key;
    if !zone.contains(&key.name()) {
        return Err(ProviderError::Unsupported(format!(
            "{key}: the name is outside zone {zone}"
        )));
    }
    if key.rtype == RecordType::ANAME {
        return Err(ProviderError::Unsupported(format!(
            "{key}: RFC 2136 servers do not support ALIAS records"
        )));
    }
    let apex = is_apex(zone.as_name(), &key.name());
    if apex
        && change.op == ChangeOp::Delete
        && matches!(key.rtype, RecordType::SOA | RecordType::NS)
    {
        return Err(ProviderError::Unsupported(format!(
            "{key}: RFC 2136 servers ignore deleting the apex {} set (RFC 2136 section 3.4.2.4); it cannot be deleted through an update",
            type_name(key.rtype)
        )));
    }
    Ok(())
}

fn rdata(key: &RrKey, value: &RecordValue) -> Result<RData, ProviderError> {
    value
        .to_rdata(key.rtype)
        .map_err(|e| ProviderError::Unsupported(format!("{key}: {e}")))
}

/// RFC 2136 section 2.4.2 (the exact before-records, TTL 0, class IN) for an
/// update or delete; section 2.4.3 ("RRset does not exist") for a create.
fn add_prerequisite(message: &mut Message, change: &Change) -> Result<(), ProviderError> {
    let key = &change.key;
    match change.before.as_ref().filter(|s| !s.values().is_empty()) {
        Some(before) => {
            for value in before.values() {
                message.add_pre_requisite(Record::from_rdata(key.name(), 0, rdata(key, value)?));
            }
        }
        None => message.add_pre_requisite(class_record(key.name(), key.rtype, DNSClass::NONE)),
    }
    Ok(())
}

/// The update records of one operation: delete the RRset (class ANY) when
/// it exists, then add the after-records. The apex SOA and NS differ (see
/// the module documentation).
fn add_updates(message: &mut Message, zone: &Name, change: &Change) -> Result<(), ProviderError> {
    let key = &change.key;
    let apex = is_apex(zone, &key.name());
    let add = |message: &mut Message, set: &RecordSet| -> Result<(), ProviderError> {
        for value in set.values() {
            message.add_update(Record::from_rdata(key.name(), set.ttl, rdata(key, value)?));
        }
        Ok(())
    };
    match (&change.before, &change.after) {
        (_, Some(after)) if apex && key.rtype == RecordType::SOA => {
            // The server keeps an SOA whose serial is not newer (RFC 2136 3.4.2.2).
            let before_serial = change
                .before
                .as_ref()
                .and_then(|b| b.values().first())
                .and_then(|v| v.to_rdata(RecordType::SOA).ok())
                .and_then(|r| match r {
                    RData::SOA(soa) => Some(soa.serial),
                    _ => None,
                });
            for value in after.values() {
                let mut data = rdata(key, value)?;
                if let (RData::SOA(soa), Some(serial)) = (&mut data, before_serial) {
                    soa.serial = match serial.wrapping_add(1) {
                        0 => 1,
                        n => n,
                    };
                }
                message.add_update(Record::from_rdata(key.name(), after.ttl, data));
            }
        }
        (Some(before), Some(after)) if apex && key.rtype == RecordType::NS => {
            // Add first, so the set is never empty, then delete the records no longer wanted.
            add(message, after)?;
            for value in before.values() {
                if !after.values().contains(value) {
                    let mut record = Record::from_rdata(key.name(), 0, rdata(key, value)?);
                    record.dns_class = DNSClass::NONE;
                    message.add_update(record);
                }
            }
        }
        (before, after) => {
            if before.is_some() {
                message.add_update(class_record(key.name(), key.rtype, DNSClass::ANY));
            }
            if let Some(after) = after {
                add(message, after)?;
            }
        }
    }
    Ok(())
}

/// Groups transferred records into record sets. Records the server
/// generates (RRSIG, NSEC, ...) and records of other classes are skipped; a
/// set whose records carry different TTLs gets the smallest.
fn zone_content(zone: &ZoneName, records: Vec<Record>) -> Result<ZoneContent, String> {
    let mut sets: BTreeMap<RrKey, (u32, Vec<RecordValue>)> = BTreeMap::new();
    for record in records {
        let rtype = record.record_type();
        if record.dns_class != DNSClass::IN || is_server_generated(rtype) {
            continue;
        }
        if !zone.contains(&record.name) {
            return Err(format!(
                "the transfer holds {} {}, which is outside the zone",
                record.name.to_ascii(),
                type_name(rtype)
            ));
        }
        let value = RecordValue::from_rdata(&record.data)
            .map_err(|e| format!("{} {}: {e}", record.name.to_ascii(), type_name(rtype)))?;
        let entry = sets
            .entry(RrKey::new(record.name, rtype))
            .or_insert((record.ttl, Vec::new()));
        entry.0 = entry.0.min(record.ttl);
        entry.1.push(value);
    }
    let mut content = ZoneContent::new(zone.clone());
    content.sets = sets
        .into_iter()
        .map(|(key, (ttl, values))| (key, RecordSet::new(ttl, values)))
        .collect();
    Ok(content)
}

/// A zone transfer that went on past a limit: refused, not retried.
fn transfer_too_large(what: &str, how_much: &str) -> AttemptError {
    AttemptError::Permanent(ProviderError::InvalidAnswer(format!(
        "{what}: the transfer holds {how_much}, the most ZentraLink reads of one zone; reading stopped there and nothing of it is used (a zone this large is not supported)"
    )))
}

/// A DNS message framed for TCP: a two-byte length, then the message.
fn frame(message: &[u8]) -> Result<Vec<u8>, ProviderError> {
    let len = u16::try_from(message.len()).map_err(|_| {
        ProviderError::Unsupported(format!(
            "the request is {} bytes; one DNS message holds at most {MAX_MESSAGE_LEN}",
            message.len()
        ))
    })?;
    let mut out = Vec::with_capacity(message.len() + 2);
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(message);
    Ok(out)
}

/// Reads one length-prefixed DNS message from a TCP stream.
async fn read_frame(stream: &mut TcpStream) -> std::io::Result<Vec<u8>> {
    let len = stream.read_u16().await?;
    let mut buf = vec![0; usize::from(len)];
    stream.read_exact(&mut buf).await?;
    Ok(buf)
}

/// Seconds since the Unix epoch, for TSIG's time signed.
fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

fn algorithm_name(algorithm: &TsigAlgorithm) -> String {
    algorithm
        .to_name()
        .to_ascii()
        .trim_end_matches('.')
        .to_owned()
}

/// An rcode as DNS people write it, with hickory's description.
fn rcode_text(rcode: ResponseCode) -> String {
    let mnemonic = match u16::from(rcode) {
        0 => "NOERROR",
        1 => "FORMERR",
        2 => "SERVFAIL",
        3 => "NXDOMAIN",
        4 => "NOTIMP",
        5 => "REFUSED",
        6 => "YXDOMAIN",
        7 => "YXRRSET",
        8 => "NXRRSET",
        9 => "NOTAUTH",
        10 => "NOTZONE",
        _ => return format!("rcode {} ({})", u16::from(rcode), rcode.to_str()),
    };
    format!("{mnemonic} ({})", rcode.to_str())
}

/// Decodes the standard base64 (RFC 4648 section 4) `tsig-keygen` prints;
/// `None` when the text is not base64 (the text itself is never part of an error).
fn decode_base64(text: &str) -> Option<Vec<u8>> {
    let t = text.trim();
    data_encoding::BASE64
        .decode(t.as_bytes())
        .ok()
        .or_else(|| data_encoding::BASE64_NOPAD.decode(t.as_bytes()).ok())
}

#[cfg(test)]
mod tests {
    use zentralink_model::plan::{PlanScope, plan_zone};

    use super::*;

    fn zone() -> ZoneName {
        ZoneName::parse("t.example.").unwrap_or_else(|e| panic!("{e}"))
    }

    fn provider() -> Rfc2136Provider {
        Rfc2136Provider::new(
            &Rfc2136Settings {
                server: "127.0.0.1:53".into(),
                tsig_key_name: "zl-sha256".into(),
                tsig_algorithm: None,
            },
            SecretString::new("3rZ3YG9NNYmDBjQrIXvjYXkrSFdSAy9iciRl21iR/TU="),
            Limits::default(),
        )
        .unwrap_or_else(|e| panic!("{e}"))
    }

    fn set(name: &str, t: &str, ttl: u32, values: &[&str]) -> (RrKey, RecordSet) {
        let z = zone();
        let rtype =
            zentralink_model::record::parse_record_type(t).unwrap_or_else(|e| panic!("{e}"));
        let values = values
            .iter()
            .map(|v| RecordValue::parse(rtype, v, &z).unwrap_or_else(|e| panic!("{e}")))
            .collect();
        (
            RrKey::new(z.owner(name).unwrap_or_else(|e| panic!("{e}")), rtype),
            RecordSet::new(ttl, values),
        )
    }

    fn content(sets: &[(RrKey, RecordSet)]) -> ZoneContent {
        let mut c = ZoneContent::new(zone());
        c.sets.extend(sets.iter().cloned());
        c
    }

    #[test]
    fn base64_as_tsig_keygen_writes_it() {
        assert_eq!(decode_base64("AAEC"), Some(vec![0, 1, 2]));
        assert_eq!(decode_base64("AAE="), Some(vec![0, 1]));
        assert_eq!(decode_base64("AA=="), Some(vec![0]));
        assert_eq!(decode_base64(" AA== "), Some(vec![0]));
        assert_eq!(decode_base64("AA"), Some(vec![0]));
        assert_eq!(decode_base64("+/+/"), Some(vec![0xfb, 0xff, 0xbf]));
        assert_eq!(decode_base64("A"), None);
        assert_eq!(decode_base64("AB=="), None, "non-zero bits left over");
        assert_eq!(decode_base64("AA="), None);
        assert_eq!(decode_base64("AA==="), None);
        assert_eq!(decode_base64("A-AA"), None);
        assert_eq!(decode_base64("hmac-sha256:k:AAAA"), None);
        let key = decode_base64("3rZ3YG9NNYmDBjQrIXvjYXkrSFdSAy9iciRl21iR/TU=");
        assert_eq!(key.map(|k| k.len()), Some(32));
    }

    #[test]
    fn settings_are_checked_and_the_secret_never_shows() {
        let settings = |server: &str, alg: Option<&str>| Rfc2136Settings {
            server: server.into(),
            tsig_key_name: "zl".into(),
            tsig_algorithm: alg.map(str::to_owned),
        };
        let secret = || SecretString::new("c2VjcmV0LXNlY3JldA==");
        let err = |s: Rfc2136Settings, secret: SecretString| {
            Rfc2136Provider::new(&s, secret, Limits::default())
                .err()
                .map(|e| e.to_string())
                .unwrap_or_default()
        };
        assert!(err(settings("localhost", None), secret()).contains("not an address with a port"));
        assert!(err(settings("127.0.0.1:53", Some("hmac-md5")), secret()).contains("hmac-sha512"));
        let bad = err(
            settings("127.0.0.1:53", None),
            SecretString::new("not base64 *secret*"),
        );
        assert!(bad.contains("not base64"), "{bad}");
        assert!(!bad.contains("*secret*"), "{bad}");
        let p = Rfc2136Provider::new(
            &settings("127.0.0.1:53", Some("HMAC-SHA512")),
            secret(),
            Limits::default(),
        )
        .unwrap_or_else(|e| panic!("{e}"));
        let debug = format!("{p:?}");
        assert!(
            debug.contains("hmac-sha512") && debug.contains("<redacted>"),
            "{debug}"
        );
        assert!(!debug.contains("c2VjcmV0"), "{debug}");
        assert!(!p.capabilities().lists_zones);
        assert!(!p.capabilities().alias);
    }

    #[test]
    fn an_update_pins_every_touched_set() {
        let p = provider();
        let before = content(&[
            set("www", "A", 300, &["192.0.2.1", "192.0.2.2"]),
            set("old", "TXT", 300, &["\"bye\""]),
        ]);
        let after = content(&[
            set("www", "A", 60, &["192.0.2.3"]),
            set("new", "MX", 300, &["10 mx"]),
        ]);
        let plan = plan_zone(&after, &before, &PlanScope::default());
        let m = p.update_message(&plan).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(m.metadata.op_code, OpCode::Update);
        assert_eq!(m.queries.len(), 1);
        assert_eq!(m.queries[0].query_type(), RecordType::SOA);
        // Prerequisites: "new" MX absent (NONE), "old" TXT with its record, "www" A with both.
        let prereq: Vec<(String, DNSClass, u32)> = m
            .answers
            .iter()
            .map(|r| {
                (
                    format!("{} {}", r.name, r.record_type()),
                    r.dns_class,
                    r.ttl,
                )
            })
            .collect();
        assert_eq!(
            prereq,
            vec![
                ("new.t.example. MX".into(), DNSClass::NONE, 0),
                ("old.t.example. TXT".into(), DNSClass::IN, 0),
                ("www.t.example. A".into(), DNSClass::IN, 0),
                ("www.t.example. A".into(), DNSClass::IN, 0),
            ]
        );
        // Updates: add MX; delete TXT set; delete A set, add the new A.
        let updates: Vec<(String, DNSClass, u32)> = m
            .authorities
            .iter()
            .map(|r| {
                (
                    format!("{} {}", r.name, r.record_type()),
                    r.dns_class,
                    r.ttl,
                )
            })
            .collect();
        assert_eq!(
            updates,
            vec![
                ("new.t.example. MX".into(), DNSClass::IN, 300),
                ("old.t.example. TXT".into(), DNSClass::ANY, 0),
                ("www.t.example. A".into(), DNSClass::ANY, 0),
                ("www.t.example. A".into(), DNSClass::IN, 60),
            ]
        );
    }

    #[test]
    fn apex_soa_and_ns_are_updated_the_way_servers_accept() {
        let p = provider();
        let soa = "ns1.t.example. hostmaster.t.example. 7 3600 600 1209600 300";
        let before = content(&[
            set("@", "SOA", 3600, &[soa]),
            set("@", "NS", 3600, &["ns1.t.example.", "ns2.t.example."]),
        ]);
        let after = content(&[
            set(
                "@",
                "SOA",
                3600,
                &["ns1.t.example. hostmaster.t.example. 7 3600 600 1209600 60"],
            ),
            set("@", "NS", 3600, &["ns1.t.example.", "ns3.t.example."]),
        ]);
        let plan = plan_zone(&after, &before, &PlanScope::default());
        let m = p.update_message(&plan).unwrap_or_else(|e| panic!("{e}"));
        let updates: Vec<String> = m
            .authorities
            .iter()
            .map(|r| format!("{} {} {}", r.dns_class, r.record_type(), r.data))
            .collect();
        assert!(
            updates.contains(&"IN NS ns3.t.example.".to_owned()),
            "{updates:?}"
        );
        assert!(
            updates.contains(&"NONE NS ns2.t.example.".to_owned()),
            "{updates:?}"
        );
        assert!(
            updates
                .iter()
                .any(|u| u.starts_with("IN SOA") && u.contains(" 8 ")),
            "the SOA goes out with the next serial: {updates:?}"
        );
        assert!(!updates.iter().any(|u| u.starts_with("ANY")), "{updates:?}");

        let gone = plan_zone(&content(&[]), &before, &PlanScope::default());
        // The plan engine keeps the apex SOA/NS; a hand-made delete is refused.
        assert!(gone.is_empty());
        let delete = Plan {
            zone: zone(),
            changes: vec![Change {
                op: ChangeOp::Delete,
                key: set("@", "NS", 3600, &["ns1.t.example."]).0,
                before: Some(set("@", "NS", 3600, &["ns1.t.example."]).1),
                after: None,
            }],
        };
        assert!(matches!(
            p.update_message(&delete),
            Err(ProviderError::Unsupported(_))
        ));
    }

    #[test]
    fn a_plan_that_does_not_fit_one_message_is_measured() {
        let p = provider();
        let sets: Vec<_> = (0..700)
            .map(|i| {
                set(
                    &format!("h{i}"),
                    "TXT",
                    300,
                    &[&format!("\"{}\"", "x".repeat(90))],
                )
            })
            .collect();
        let plan = plan_zone(&content(&sets), &content(&[]), &PlanScope::default());
        assert_eq!(p.update_len(&plan).ok(), Some(None));
        let small = plan_zone(&content(&sets[..10]), &content(&[]), &PlanScope::default());
        let len = p.update_len(&small).ok().flatten().unwrap_or(0);
        assert!(len > 1000 && len < 2000, "{len}");
    }

    #[test]
    fn transferred_records_become_record_sets() {
        let z = zone();
        let name = |s: &str| Name::from_ascii(s).unwrap_or_else(|e| panic!("{e}"));
        let a = |ttl, ip: [u8; 4]| {
            Record::from_rdata(
                name("WWW.t.example."),
                ttl,
                RData::A(std::net::Ipv4Addr::from(ip).into()),
            )
        };
        let records = vec![
            a(300, [192, 0, 2, 1]),
            a(60, [192, 0, 2, 2]),
            Record::from_rdata(
                name("t.example."),
                3600,
                RData::TXT(TXT::new(vec!["hello".into()])),
            ),
        ];
        let c = zone_content(&z, records).unwrap_or_else(|e| panic!("{e}"));
        let stored = c.to_stored();
        assert_eq!(stored.len(), 2);
        assert_eq!(stored[1].name, "www.t.example.");
        assert_eq!(stored[1].ttl, 60);
        assert_eq!(stored[1].values, vec!["192.0.2.1", "192.0.2.2"]);
        let outside = vec![Record::from_rdata(
            name("x.other."),
            1,
            RData::A(std::net::Ipv4Addr::new(1, 2, 3, 4).into()),
        )];
        assert!(zone_content(&z, outside).is_err());
    }
}
