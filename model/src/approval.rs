//! Approvals: the canonical message an approver signs, OpenSSH `SSHSIG`
//! signatures over it, and the rules by which an approval is accepted and
//! approvals are counted (docs/approval-message.md). Pure: no I/O; time is a
//! parameter.
//!
//! An approval is accepted only when all of these hold ([`judge`]):
//! - the signature verifies over the message rebuilt from the change
//!   request's tenant, namespace and name and the approval's digest,
//!   decision, approver and time;
//! - the signing key is listed for the approver the approval names, and that
//!   approver's role is in `approverRoles`;
//! - the digest is the change request's digest;
//! - the approver is not the requester;
//! - the change request is pending and not past its expiry;
//! - it was signed no earlier than the request was opened and not more than
//!   five minutes in the future.
//!
//! [`tally`] counts accepted decisions: one rejection rejects, and
//! `minApprovals` distinct approvers approve.

use std::collections::BTreeSet;
use std::fmt;

use k8s_openapi::jiff::{SignedDuration, Timestamp};
use serde::Serialize;
use ssh_encoding::{Decode, Reader};
use ssh_key::public::KeyData;
use ssh_key::{Algorithm, HashAlg, LineEnding, PrivateKey, PublicKey, SshSig};

use crate::catalog::{ApproverEntry, Policy, parse_ssh_public_key};
use crate::digest::PlanDigest;
use crate::reconcile::RequestState;
use crate::resources::{ApprovalSpec, Decision};

/// The `SSHSIG` namespace of approvals (`ssh-keygen -Y sign -n zentralink-approval`).
pub const APPROVAL_NAMESPACE: &str = "zentralink-approval";
/// The `SSHSIG` namespace of requests signed by their requester (rollbacks from the CLI).
pub const REQUEST_NAMESPACE: &str = "zentralink-request";
/// The first line of an approval message.
pub const APPROVAL_MESSAGE_VERSION: &str = "zentralink-approval-v1";
/// The first line of a request message.
pub const REQUEST_MESSAGE_VERSION: &str = "zentralink-request-v1";
/// How far in the future an approval's time may be (clock skew between the
/// signer and the operator).
pub const MAX_FUTURE_SKEW_SECS: i64 = 300;

/// The FIDO "user present" flag: the security key was touched.
const SK_USER_PRESENT: u8 = 0x01;
/// A FIDO signature ends with the flags byte and a 32-bit counter.
const SK_TRAILER_LEN: usize = 5;
/// OpenSSH wraps the base64 of armored signatures at 70 columns.
const ARMOR_LINE_WIDTH: usize = 70;

// ---------------------------------------------------------------- messages

/// Why a message cannot be built: a field that would make its text ambiguous.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MessageError {
    #[error("the {field} is empty; every line of a signed message needs a value")]
    Empty { field: &'static str },
    #[error(
        "the {field} {value:?} contains a control character or line break; a signed message holds one value per line, so remove it"
    )]
    ControlCharacter { field: &'static str, value: String },
    #[error(
        "the {field} {value:?} starts or ends with white space; signed messages carry values exactly, so remove it"
    )]
    SurroundingSpace { field: &'static str, value: String },
    #[error(
        "the time {time} has a fraction of a second; signed messages carry whole seconds (truncate it)"
    )]
    SubsecondTime { time: String },
}

fn check_field(field: &'static str, value: &str) -> Result<(), MessageError> {
    if value.is_empty() {
        return Err(MessageError::Empty { field });
    }
    if value
        .chars()
        .any(|c| c.is_control() || matches!(c, '\u{2028}' | '\u{2029}'))
    {
        return Err(MessageError::ControlCharacter {
            field,
            value: crate::text::shorten(value, 80).into_owned(),
        });
    }
    if value.starts_with(char::is_whitespace) || value.ends_with(char::is_whitespace) {
        return Err(MessageError::SurroundingSpace {
            field,
            value: crate::text::shorten(value, 80).into_owned(),
        });
    }
    Ok(())
}

fn check_time(time: Timestamp) -> Result<(), MessageError> {
    if time.subsec_nanosecond() == 0 {
        Ok(())
    } else {
        Err(MessageError::SubsecondTime {
            time: time.to_string(),
        })
    }
}

/// A time as signed messages carry it: RFC 3339, UTC, whole seconds
/// (`2026-11-30T21:00:00Z`).
pub fn format_message_time(time: Timestamp) -> String {
    truncate_to_second(time).to_string()
}

/// Parses a time written as [`format_message_time`] writes it, and only
/// that way: another spelling of the same instant (an offset, a fraction of
/// a second, a lower-case `z`) would make the signed text differ from what
/// the signer saw.
pub fn parse_message_time(text: &str) -> Result<Timestamp, String> {
    let shape = "an RFC 3339 UTC time with whole seconds, like 2026-11-30T21:00:00Z";
    let time: Timestamp = text
        .parse()
        .map_err(|_| format!("{:?} is not {shape}", crate::text::shorten(text, 60)))?;
    if time.subsec_nanosecond() != 0 || time.to_string() != text {
        return Err(format!(
            "{:?} is not written as {shape}; write it exactly as the signed message has it",
            crate::text::shorten(text, 60)
        ));
    }
    Ok(time)
}

/// The time without its fraction of a second, as messages carry it.
pub fn truncate_to_second(time: Timestamp) -> Timestamp {
    Timestamp::from_second(time.as_second()).unwrap_or(time)
}

/// The decision as an approval message writes it.
pub fn decision_text(decision: Decision) -> &'static str {
    match decision {
        Decision::Approve => "Approve",
        Decision::Reject => "Reject",
    }
}

/// The text an approver signs (namespace [`APPROVAL_NAMESPACE`]); it binds
/// the tenant, the change request, its plan digest, the decision, the
/// approver and the time. Built only from fields that keep it unambiguous.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApprovalMessage {
    tenant: String,
    namespace: String,
    change_request: String,
    digest: PlanDigest,
    decision: Decision,
    approver: String,
    created: Timestamp,
}

impl ApprovalMessage {
    /// Fails when a text field is empty, has a control character or line
    /// break, or starts or ends with white space, or when `created` has a
    /// fraction of a second.
    pub fn new(
        tenant: impl Into<String>,
        namespace: impl Into<String>,
        change_request: impl Into<String>,
        digest: PlanDigest,
        decision: Decision,
        approver: impl Into<String>,
        created: Timestamp,
    ) -> Result<Self, MessageError> {
        let message = Self {
            tenant: tenant.into(),
            namespace: namespace.into(),
            change_request: change_request.into(),
            digest,
            decision,
            approver: approver.into(),
            created,
        };
        check_field("tenant", &message.tenant)?;
        check_field("namespace", &message.namespace)?;
        check_field("change request", &message.change_request)?;
        check_field("approver", &message.approver)?;
        check_time(message.created)?;
        Ok(message)
    }

    pub fn tenant(&self) -> &str {
        &self.tenant
    }
    pub fn namespace(&self) -> &str {
        &self.namespace
    }
    pub fn change_request(&self) -> &str {
        &self.change_request
    }
    pub fn digest(&self) -> PlanDigest {
        self.digest
    }
    pub fn decision(&self) -> Decision {
        self.decision
    }
    pub fn approver(&self) -> &str {
        &self.approver
    }
    pub fn created(&self) -> Timestamp {
        self.created
    }

    /// The exact bytes that are signed (UTF-8, one `key: value` line each,
    /// every line ending with a single LF).
    pub fn to_bytes(&self) -> Vec<u8> {
        format!(
            "{APPROVAL_MESSAGE_VERSION}\n\
             tenant: {}\n\
             namespace: {}\n\
             change-request: {}\n\
             digest: {}\n\
             decision: {}\n\
             approver: {}\n\
             created: {}\n",
            self.tenant,
            self.namespace,
            self.change_request,
            self.digest,
            decision_text(self.decision),
            self.approver,
            format_message_time(self.created),
        )
        .into_bytes()
    }
}

/// The text a requester signs when asking for a rollback from the CLI
/// (namespace [`REQUEST_NAMESPACE`]): it binds the tenant, the zone, the
/// snapshot to return to, the plan digest, the requester and the time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestMessage {
    tenant: String,
    namespace: String,
    zone: String,
    rollback_to: String,
    digest: PlanDigest,
    requester: String,
    created: Timestamp,
}

impl RequestMessage {
    /// `zone` is the DnsZone object's name in `namespace`; `rollback_to` the
    /// snapshot's id. Fails on the same fields as [`ApprovalMessage::new`].
    pub fn new(
        tenant: impl Into<String>,
        namespace: impl Into<String>,
        zone: impl Into<String>,
        rollback_to: impl Into<String>,
        digest: PlanDigest,
        requester: impl Into<String>,
        created: Timestamp,
    ) -> Result<Self, MessageError> {
        let message = Self {
            tenant: tenant.into(),
            namespace: namespace.into(),
            zone: zone.into(),
            rollback_to: rollback_to.into(),
            digest,
            requester: requester.into(),
            created,
        };
        check_field("tenant", &message.tenant)?;
        check_field("namespace", &message.namespace)?;
        check_field("zone", &message.zone)?;
        check_field("rollback-to snapshot", &message.rollback_to)?;
        check_field("requester", &message.requester)?;
        check_time(message.created)?;
        Ok(message)
    }

    pub fn tenant(&self) -> &str {
        &self.tenant
    }
    pub fn namespace(&self) -> &str {
        &self.namespace
    }
    pub fn zone(&self) -> &str {
        &self.zone
    }
    pub fn rollback_to(&self) -> &str {
        &self.rollback_to
    }
    pub fn digest(&self) -> PlanDigest {
        self.digest
    }
    pub fn requester(&self) -> &str {
        &self.requester
    }
    pub fn created(&self) -> Timestamp {
        self.created
    }

    /// The exact bytes that are signed.
    pub fn to_bytes(&self) -> Vec<u8> {
        format!(
            "{REQUEST_MESSAGE_VERSION}\n\
             tenant: {}\n\
             namespace: {}\n\
             zone: {}\n\
             rollback-to: {}\n\
             digest: {}\n\
             requester: {}\n\
             created: {}\n",
            self.tenant,
            self.namespace,
            self.zone,
            self.rollback_to,
            self.digest,
            self.requester,
            format_message_time(self.created),
        )
        .into_bytes()
    }
}

// ---------------------------------------------------------------- signatures

/// Why a signature is not accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error(
        "the signature is not a readable OpenSSH signature ({reason}); paste the whole block from -----BEGIN SSH SIGNATURE----- to -----END SSH SIGNATURE----- as `ssh-keygen -Y sign` or `zentralink approve` wrote it"
    )]
    Malformed { reason: String },
    #[error(
        "the signature was made with a {key_type} key, which ZentraLink does not accept; sign with an Ed25519, ECDSA (P-256, P-384, P-521), RSA (2048 bits or more) or FIDO security key (sk-ssh-ed25519, sk-ecdsa-sha2-nistp256)"
    )]
    UnsupportedKeyType { key_type: String },
    #[error(
        "the signature uses the {algorithm} algorithm ({why}), which ZentraLink does not accept; sign again with a current OpenSSH (RSA keys then sign with rsa-sha2-512)"
    )]
    UnsupportedAlgorithm {
        algorithm: String,
        why: &'static str,
    },
    #[error(
        "the signature was made for the namespace {found:?}, not {expected:?}; sign with `ssh-keygen -Y sign -n {expected}` (or `zentralink approve`)"
    )]
    WrongNamespace { expected: String, found: String },
    #[error(
        "the signature hashes the message with {found}; ZentraLink requires sha512, the default of `ssh-keygen -Y sign` (do not pass -O hashalg={found})"
    )]
    WrongHash { found: String },
    #[error(
        "the signature does not verify: it was made over another message (another change request, tenant, digest, decision, approver or time) or it was altered; sign the message again"
    )]
    DoesNotVerify,
    #[error(
        "the security key signed without the user's touch (the user-presence flag is not set); sign again and touch the key when it blinks"
    )]
    UserNotPresent,
}

/// Why a key cannot sign here.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignError {
    #[error(
        "the private key is encrypted; decrypt it first (with `zentralink approve`, name the environment variable that holds its passphrase with --passphrase-env)"
    )]
    Encrypted,
    #[error(
        "a {key_type} key signs only on its security key; print the message with `zentralink approve --print-message` and sign it with `ssh-keygen -Y sign -n {APPROVAL_NAMESPACE} -f KEY`"
    )]
    SecurityKey { key_type: String },
    #[error(transparent)]
    Unsupported(SignatureError),
    #[error("signing failed: {0}")]
    Failed(String),
}

/// The key types whose signatures are accepted, as their wire names.
const ACCEPTED_KEY_TYPES: [&str; 7] = [
    "ssh-ed25519",
    "ecdsa-sha2-nistp256",
    "ecdsa-sha2-nistp384",
    "ecdsa-sha2-nistp521",
    "ssh-rsa",
    "sk-ssh-ed25519@openssh.com",
    "sk-ecdsa-sha2-nistp256@openssh.com",
];

fn check_key_type(key: &KeyData) -> Result<(), SignatureError> {
    match key {
        KeyData::Ed25519(_)
        | KeyData::Ecdsa(_)
        | KeyData::SkEd25519(_)
        | KeyData::SkEcdsaSha2NistP256(_) => Ok(()),
        KeyData::Rsa(rsa) => {
            let bits = rsa.n.as_positive_bytes().map_or(0, |b| b.len() * 8);
            if bits >= 2048 {
                Ok(())
            } else {
                Err(SignatureError::UnsupportedKeyType {
                    key_type: format!("{bits}-bit RSA"),
                })
            }
        }
        other => Err(SignatureError::UnsupportedKeyType {
            key_type: other.algorithm().as_str().to_owned(),
        }),
    }
}

fn is_security_key(key: &KeyData) -> bool {
    matches!(key, KeyData::SkEd25519(_) | KeyData::SkEcdsaSha2NistP256(_))
}

/// The signature's algorithm belongs to the key: RSA keys sign with
/// rsa-sha2-256 or rsa-sha2-512 (never ssh-rsa, SHA-1), every other key with
/// its own algorithm.
fn check_signature_algorithm(key: &KeyData, signature: &Algorithm) -> Result<(), SignatureError> {
    let fits = match (key.algorithm(), signature) {
        (Algorithm::Rsa { .. }, Algorithm::Rsa { hash }) => hash.is_some(),
        (k, s) => &k == s,
    };
    if fits {
        Ok(())
    } else {
        Err(SignatureError::Malformed {
            reason: format!(
                "a {} key cannot make a {} signature",
                key.algorithm().as_str(),
                signature.as_str()
            ),
        })
    }
}

/// Verifies an armored OpenSSH signature (`-----BEGIN SSH SIGNATURE-----`)
/// over `message`: made for `namespace`, hashed with sha512, by a key of an
/// accepted type and, for a security key, with the user's touch. Returns the
/// key that signed; whether that key may sign is the caller's question.
pub fn verify_signature(
    namespace: &str,
    message: &[u8],
    armored: &str,
) -> Result<PublicKey, SignatureError> {
    let armored = armored.trim();
    let signature = SshSig::from_pem(armored).map_err(|e| diagnose_unreadable(armored, &e))?;
    let key = signature.public_key();
    check_key_type(key)?;
    if signature.namespace() != namespace {
        return Err(SignatureError::WrongNamespace {
            expected: namespace.to_owned(),
            found: crate::text::shorten(signature.namespace(), 60).into_owned(),
        });
    }
    if signature.hash_alg() != HashAlg::Sha512 {
        return Err(SignatureError::WrongHash {
            found: signature.hash_alg().as_str().to_owned(),
        });
    }
    check_signature_algorithm(key, &signature.algorithm())?;
    let public = PublicKey::from(key.clone());
    public
        .verify(namespace, message, &signature)
        .map_err(|_| SignatureError::DoesNotVerify)?;
    if is_security_key(key) {
        let bytes = signature.signature_bytes();
        let flags = bytes
            .len()
            .checked_sub(SK_TRAILER_LEN)
            .and_then(|at| bytes.get(at))
            .copied()
            .unwrap_or(0);
        if flags & SK_USER_PRESENT == 0 {
            return Err(SignatureError::UserNotPresent);
        }
    }
    Ok(public)
}

/// Says why `ssh-key` could not read a signature: the armor, or the first
/// field of the `SSHSIG` structure that is not accepted (read with
/// `ssh-encoding`'s decoders), or else the library's own error.
fn diagnose_unreadable(armored: &str, error: &ssh_key::Error) -> SignatureError {
    const BEGIN: &str = "-----BEGIN SSH SIGNATURE-----";
    const END: &str = "-----END SSH SIGNATURE-----";
    let malformed = |reason: String| SignatureError::Malformed { reason };
    if !armored.starts_with(BEGIN) {
        return malformed(format!("it does not start with {BEGIN}"));
    }
    if !armored.ends_with(END) {
        return malformed(format!("it is cut short: it does not end with {END}"));
    }
    let mut bytes = Vec::new();
    let decoded = ssh_encoding::pem::Decoder::new_wrapped(armored.as_bytes(), ARMOR_LINE_WIDTH)
        .and_then(|mut d| d.decode_to_end(&mut bytes).map(|_| ()));
    if let Err(e) = decoded {
        return malformed(format!("its base64 armor is damaged: {e}"));
    }
    peek_unaccepted(&bytes).unwrap_or_else(|| malformed(error.to_string()))
}

/// Reads an `SSHSIG` structure field by field (PROTOCOL.sshsig) and returns
/// the refusal for the first field that is readable but not accepted.
fn peek_unaccepted(bytes: &[u8]) -> Option<SignatureError> {
    let reader = &mut &bytes[..];
    let mut magic = [0u8; 6];
    reader.read(&mut magic).ok()?;
    if &magic != b"SSHSIG" {
        return Some(SignatureError::Malformed {
            reason: "it is not an SSHSIG signature".into(),
        });
    }
    let _version = u32::decode(reader).ok()?;
    let key_blob = Vec::<u8>::decode(reader).ok()?;
    let key_type = String::decode(&mut key_blob.as_slice()).ok()?;
    if !ACCEPTED_KEY_TYPES.contains(&key_type.as_str()) {
        return Some(SignatureError::UnsupportedKeyType {
            key_type: crate::text::shorten(&key_type, 60).into_owned(),
        });
    }
    let _namespace = String::decode(reader).ok()?;
    let _reserved = Vec::<u8>::decode(reader).ok()?;
    let hash = String::decode(reader).ok()?;
    if hash != HashAlg::Sha512.as_str() {
        return Some(SignatureError::WrongHash {
            found: crate::text::shorten(&hash, 30).into_owned(),
        });
    }
    let signature_blob = Vec::<u8>::decode(reader).ok()?;
    let algorithm = String::decode(&mut signature_blob.as_slice()).ok()?;
    if algorithm == "ssh-rsa" {
        return Some(SignatureError::UnsupportedAlgorithm {
            algorithm,
            why: "RSA with SHA-1",
        });
    }
    None
}

/// Signs `message` for `namespace` as `ssh-keygen -Y sign` does (sha512),
/// and returns the armored signature. RSA keys sign with rsa-sha2-512.
/// Security keys cannot sign here: they need their device.
pub fn sign(
    namespace: &str,
    message: &[u8],
    private_key: &PrivateKey,
) -> Result<String, SignError> {
    if private_key.is_encrypted() {
        return Err(SignError::Encrypted);
    }
    let key = private_key.public_key().key_data();
    if is_security_key(key) {
        return Err(SignError::SecurityKey {
            key_type: key.algorithm().as_str().to_owned(),
        });
    }
    check_key_type(key).map_err(SignError::Unsupported)?;
    let signature = match private_key.key_data() {
        ssh_key::private::KeypairData::Rsa(rsa) => sign_rsa(namespace, message, rsa)?,
        _ => private_key
            .sign(namespace, HashAlg::Sha512, message)
            .map_err(|e| SignError::Failed(e.to_string()))?,
    };
    let armored = signature
        .to_pem(LineEnding::LF)
        .map_err(|e| SignError::Failed(e.to_string()))?;
    // What is handed out must be what the operator accepts.
    verify_signature(namespace, message, &armored)
        .map_err(|e| SignError::Failed(format!("the new signature does not verify: {e}")))?;
    Ok(armored)
}

/// RSA signing (rsa-sha2-512) with the `rsa` crate, the SSHSIG structure
/// still built by `ssh-key`. ssh-key 0.6.7 converts an RSA key pair with its
/// first prime twice (RustCrypto/SSH#217, fixed after that release), which
/// `rsa` 0.9.7 and later refuse, so its own RSA signer always fails.
fn sign_rsa(
    namespace: &str,
    message: &[u8],
    keypair: &ssh_key::private::RsaKeypair,
) -> Result<SshSig, SignError> {
    use rsa::signature::{SignatureEncoding, Signer};
    let failed = |e: &dyn fmt::Display| SignError::Failed(e.to_string());
    let number = |m: &ssh_key::Mpint| {
        m.as_positive_bytes()
            .map(rsa::BigUint::from_bytes_be)
            .ok_or_else(|| SignError::Failed("the RSA key has a negative component".into()))
    };
    let private = rsa::RsaPrivateKey::from_components(
        number(&keypair.public.n)?,
        number(&keypair.public.e)?,
        number(&keypair.private.d)?,
        vec![number(&keypair.private.p)?, number(&keypair.private.q)?],
    )
    .map_err(|e| failed(&e))?;
    let signed =
        SshSig::signed_data(namespace, HashAlg::Sha512, message).map_err(|e| failed(&e))?;
    let raw = rsa::pkcs1v15::SigningKey::<sha2::Sha512>::new(private)
        .try_sign(&signed)
        .map_err(|e| failed(&e))?;
    let signature = ssh_key::Signature::new(
        Algorithm::Rsa {
            hash: Some(HashAlg::Sha512),
        },
        raw.to_vec(),
    )
    .map_err(|e| failed(&e))?;
    SshSig::new(
        KeyData::Rsa(keypair.public.clone()),
        namespace,
        HashAlg::Sha512,
        signature,
    )
    .map_err(|e| failed(&e))
}

/// A key's fingerprint as `ssh-keygen -l` prints it (`SHA256:...`).
pub fn fingerprint(key: &PublicKey) -> String {
    key.fingerprint(HashAlg::Sha256).to_string()
}

// ---------------------------------------------------------------- judging

/// What an Approval document says, with the tenant that owns its namespace
/// (found by the caller).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApprovalInput {
    pub namespace: String,
    pub tenant: String,
    pub change_request: String,
    pub plan_digest: String,
    pub approver: String,
    pub decision: Decision,
    /// The armored `SSHSIG` signature.
    pub signature: String,
    pub created_at: String,
}

impl ApprovalInput {
    /// The input for an Approval's spec in `namespace`, owned by `tenant`.
    pub fn from_spec(
        tenant: impl Into<String>,
        namespace: impl Into<String>,
        spec: &ApprovalSpec,
    ) -> Self {
        Self {
            namespace: namespace.into(),
            tenant: tenant.into(),
            change_request: spec.change_request.clone(),
            plan_digest: spec.plan_digest.clone(),
            approver: spec.approver.clone(),
            decision: spec.decision,
            signature: spec.signature.clone(),
            created_at: spec.created_at.clone(),
        }
    }
}

/// What is known of the change request an approval decides on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestFacts {
    pub tenant: String,
    pub namespace: String,
    pub name: String,
    /// The request's current plan digest.
    pub digest: PlanDigest,
    pub state: RequestState,
    /// Who asked: an approver's name, a git identity `Name <email>`, or `user (local)`.
    pub requester: String,
    pub created_at: Timestamp,
    pub expires_at: Timestamp,
}

/// Why an approval was refused, as a stable machine code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub enum RefusalCode {
    BadSignature,
    UnknownKey,
    NotTheApprover,
    RoleNotAllowed,
    DigestMismatch,
    RequesterCannotApprove,
    RequestNotPending,
    RequestExpired,
    SignedBeforeRequest,
    SignedInTheFuture,
    Malformed,
    ReplayedElsewhere,
}

impl RefusalCode {
    pub const ALL: [RefusalCode; 12] = [
        RefusalCode::BadSignature,
        RefusalCode::UnknownKey,
        RefusalCode::NotTheApprover,
        RefusalCode::RoleNotAllowed,
        RefusalCode::DigestMismatch,
        RefusalCode::RequesterCannotApprove,
        RefusalCode::RequestNotPending,
        RefusalCode::RequestExpired,
        RefusalCode::SignedBeforeRequest,
        RefusalCode::SignedInTheFuture,
        RefusalCode::Malformed,
        RefusalCode::ReplayedElsewhere,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            RefusalCode::BadSignature => "BadSignature",
            RefusalCode::UnknownKey => "UnknownKey",
            RefusalCode::NotTheApprover => "NotTheApprover",
            RefusalCode::RoleNotAllowed => "RoleNotAllowed",
            RefusalCode::DigestMismatch => "DigestMismatch",
            RefusalCode::RequesterCannotApprove => "RequesterCannotApprove",
            RefusalCode::RequestNotPending => "RequestNotPending",
            RefusalCode::RequestExpired => "RequestExpired",
            RefusalCode::SignedBeforeRequest => "SignedBeforeRequest",
            RefusalCode::SignedInTheFuture => "SignedInTheFuture",
            RefusalCode::Malformed => "Malformed",
            RefusalCode::ReplayedElsewhere => "ReplayedElsewhere",
        }
    }

    pub fn parse(s: &str) -> Option<RefusalCode> {
        RefusalCode::ALL.into_iter().find(|c| c.as_str() == s)
    }
}

impl fmt::Display for RefusalCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A refused approval: the code, and what was wrong and what to do.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct Refusal {
    pub code: RefusalCode,
    pub message: String,
}

fn refuse(code: RefusalCode, message: impl Into<String>) -> Refusal {
    Refusal {
        code,
        message: message.into(),
    }
}

/// An accepted approval.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    /// The approver's name as the policy lists it.
    pub approver: String,
    pub decision: Decision,
    /// The signing key's fingerprint as `ssh-keygen -l` prints it.
    pub key_fingerprint: String,
}

/// Decides whether one approval counts for `request` under `policy` at `now`.
pub fn judge(
    approval: &ApprovalInput,
    request: &RequestFacts,
    policy: &Policy,
    now: Timestamp,
) -> Result<Verdict, Refusal> {
    use RefusalCode::*;
    let digest: PlanDigest = approval
        .plan_digest
        .parse()
        .map_err(|e| refuse(Malformed, format!("spec.planDigest: {e}")))?;
    let created = parse_message_time(&approval.created_at)
        .map_err(|e| refuse(Malformed, format!("spec.createdAt: {e}")))?;
    if approval.tenant != request.tenant
        || approval.namespace != request.namespace
        || approval.change_request != request.name
    {
        return Err(refuse(
            ReplayedElsewhere,
            format!(
                "the approval names change request {}/{} of tenant {:?}, not {}/{} of tenant {:?}; an approval counts only for the request it was signed for: sign one for this request",
                approval.namespace,
                approval.change_request,
                approval.tenant,
                request.namespace,
                request.name,
                request.tenant
            ),
        ));
    }
    let message = ApprovalMessage::new(
        &request.tenant,
        &request.namespace,
        &request.name,
        digest,
        approval.decision,
        &approval.approver,
        created,
    )
    .map_err(|e| refuse(Malformed, e.to_string()))?;
    let key = verify_signature(APPROVAL_NAMESPACE, &message.to_bytes(), &approval.signature)
        .map_err(|e| refuse(BadSignature, format!("spec.signature: {e}")))?;
    let key_fingerprint = fingerprint(&key);

    let owners: Vec<&ApproverEntry> = policy
        .approvers
        .iter()
        .filter(|a| lists_key(a, &key))
        .collect();
    if owners.is_empty() {
        return Err(refuse(
            UnknownKey,
            format!(
                "the approval is signed with the {} key {key_fingerprint}, which no approver of tenant {:?} lists; sign with a key listed in the TenantPolicy, or add this key to the approver's publicKeys (a policy change, itself approved first)",
                key.algorithm().as_str(),
                request.tenant
            ),
        ));
    }
    let Some(approver) = owners.iter().find(|a| a.name == approval.approver) else {
        let names: Vec<&str> = owners.iter().map(|a| a.name.as_str()).collect();
        return Err(refuse(
            NotTheApprover,
            format!(
                "the approval names approver {:?} but is signed with key {key_fingerprint} of {}; an approver signs with their own key: set spec.approver to the key's owner, or sign with a key of {:?}",
                approval.approver,
                names.join(", "),
                approval.approver
            ),
        ));
    };
    if !policy.approver_roles.contains(&approver.role) {
        let roles: Vec<&str> = policy.approver_roles.iter().map(|r| r.as_str()).collect();
        return Err(refuse(
            RoleNotAllowed,
            format!(
                "{:?} has the role {}, and tenant {:?} accepts approvals only from {}; ask an approver with one of those roles",
                approver.name,
                approver.role.as_str(),
                request.tenant,
                if roles.is_empty() {
                    "no role".to_owned()
                } else {
                    roles.join(", ")
                }
            ),
        ));
    }
    if is_requester(approver, &request.requester) {
        return Err(refuse(
            RequesterCannotApprove,
            format!(
                "{:?} asked for change request {} (requester {:?}) and cannot decide on it too; ask another approver",
                approver.name, request.name, request.requester
            ),
        ));
    }
    if digest != request.digest {
        return Err(refuse(
            DigestMismatch,
            format!(
                "the approval signs plan digest {digest}, but change request {} has digest {}: what was approved is not this plan; review the current plan and sign again",
                request.name, request.digest
            ),
        ));
    }
    if request.state != RequestState::Pending {
        return Err(refuse(
            RequestNotPending,
            format!(
                "change request {} is {}, no longer waiting for approvals; decisions count only while a request is Pending{}",
                request.name,
                request.state,
                if request.state == RequestState::Superseded {
                    " (approve the request that replaced it)"
                } else {
                    ""
                }
            ),
        ));
    }
    if now >= request.expires_at {
        return Err(refuse(
            RequestExpired,
            format!(
                "change request {} expired at {}; it can no longer be decided on: the change has to be requested again",
                request.name,
                format_message_time(request.expires_at)
            ),
        ));
    }
    // Messages carry whole seconds, so the request's time is compared at that precision.
    let opened = truncate_to_second(request.created_at);
    if created < opened {
        return Err(refuse(
            SignedBeforeRequest,
            format!(
                "the approval says it was signed at {}, before change request {} was opened ({}); an approval cannot predate its request: check the signer's clock and sign again",
                approval.created_at,
                request.name,
                format_message_time(opened)
            ),
        ));
    }
    if created.duration_since(now) > SignedDuration::from_secs(MAX_FUTURE_SKEW_SECS) {
        return Err(refuse(
            SignedInTheFuture,
            format!(
                "the approval says it was signed at {}, more than {} minutes after now ({}); check the signer's clock and sign again",
                approval.created_at,
                MAX_FUTURE_SKEW_SECS / 60,
                format_message_time(now)
            ),
        ));
    }
    Ok(Verdict {
        approver: approver.name.clone(),
        decision: approval.decision,
        key_fingerprint,
    })
}

/// Whether the approver lists `key` (keys compared parsed, not as text).
fn lists_key(approver: &ApproverEntry, key: &PublicKey) -> bool {
    approver
        .public_keys
        .iter()
        .filter_map(|line| parse_ssh_public_key(line).ok())
        .any(|listed| listed.key_data() == key.key_data())
}

fn same_text(a: &str, b: &str) -> bool {
    let (a, b) = (a.trim(), b.trim());
    !a.is_empty() && a.to_lowercase() == b.to_lowercase()
}

/// Whether `requester` (an approver name `alice`, a git identity
/// `Alice Example <alice@example.com>`, an e-mail address, or `alice (local)`;
/// several of them separated by `;` when several people asked together) is
/// this approver: by name or e-mail, ignoring case. Any one of several
/// requesters is a requester.
pub fn is_requester(approver: &ApproverEntry, requester: &str) -> bool {
    requester
        .split(REQUESTER_SEPARATOR)
        .any(|one| is_one_requester(approver, one))
}

/// Separates the requesters of a request several people asked for together.
pub const REQUESTER_SEPARATOR: char = ';';

fn is_one_requester(approver: &ApproverEntry, requester: &str) -> bool {
    let requester = requester.trim();
    let same_name = |name: &str| same_text(name, &approver.name);
    let same_email = |email: &str| {
        approver
            .email
            .as_deref()
            .is_some_and(|listed| same_text(listed, email))
    };
    if same_name(requester) || same_email(requester) {
        return true;
    }
    if let Some(user) = requester.strip_suffix("(local)")
        && same_name(user)
    {
        return true;
    }
    if let (Some(open), Some(close)) = (requester.find('<'), requester.rfind('>'))
        && open < close
    {
        let name = requester.get(..open).unwrap_or("");
        let email = requester.get(open + 1..close).unwrap_or("");
        return same_name(name) || same_email(email);
    }
    false
}

/// The identity of a signed document: the SHA-256 over every field the
/// approval message is built from and its signature (white space in the
/// armor ignored). Two documents with one signature but different fields
/// (a tampered digest beside the genuine one) are two documents, each
/// judged. Every place that stores or judges approvals (the operator,
/// `zentralink approve --submit`, the web service) names documents by it.
pub fn document_fingerprint(input: &ApprovalInput) -> String {
    use sha2::{Digest, Sha256};
    let normalized: String = input.signature.split_whitespace().collect();
    let mut hash = Sha256::new();
    for field in [
        input.tenant.as_str(),
        input.namespace.as_str(),
        input.change_request.as_str(),
        input.plan_digest.as_str(),
        input.approver.as_str(),
        decision_text(input.decision),
        input.created_at.as_str(),
        normalized.as_str(),
    ] {
        // length-prefixed: no field can run into the next
        hash.update((field.len() as u64).to_be_bytes());
        hash.update(field.as_bytes());
    }
    format!(
        "sha256:{}",
        hash.finalize()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<String>()
    )
}

/// A time given as seconds and nanoseconds since the Unix epoch, as the
/// judging rules take it (the epoch itself when out of range), for callers
/// that keep time in another type.
pub fn timestamp_from_unix(seconds: i64, nanoseconds: u32) -> Timestamp {
    Timestamp::new(seconds, i32::try_from(nanoseconds).unwrap_or(0))
        .unwrap_or(Timestamp::UNIX_EPOCH)
}

// ---------------------------------------------------------------- counting

/// Where a change request stands with its accepted decisions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Tally {
    /// `minApprovals` distinct approvers approved (names sorted).
    Approved { by: Vec<String> },
    /// A valid rejection (the first one given).
    Rejected { by: String },
    /// Not enough approvals yet: who approved (sorted) and how many more
    /// distinct approvers are needed.
    Waiting { have: Vec<String>, need: u32 },
}

/// Counts accepted decisions: one rejection rejects; an approver counts once
/// however many keys or approvals they used; at least one approval is always
/// needed.
pub fn tally(verdicts: &[Verdict], policy: &Policy) -> Tally {
    if let Some(rejection) = verdicts.iter().find(|v| v.decision == Decision::Reject) {
        return Tally::Rejected {
            by: rejection.approver.clone(),
        };
    }
    let approvers: BTreeSet<&str> = verdicts
        .iter()
        .filter(|v| v.decision == Decision::Approve)
        .map(|v| v.approver.as_str())
        .collect();
    let have: Vec<String> = approvers.into_iter().map(str::to_owned).collect();
    let required = policy.min_approvals.max(1);
    let count = u32::try_from(have.len()).unwrap_or(u32::MAX);
    if count >= required {
        Tally::Approved { by: have }
    } else {
        Tally::Waiting {
            have,
            need: required - count,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn time(s: &str) -> Timestamp {
        s.parse().unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn message_times_have_one_spelling() {
        let t = time("2026-11-30T21:00:00Z");
        assert_eq!(format_message_time(t), "2026-11-30T21:00:00Z");
        assert_eq!(parse_message_time("2026-11-30T21:00:00Z"), Ok(t));
        for other in [
            "2026-11-30T21:00:00+00:00",
            "2026-11-30T22:00:00+01:00",
            "2026-11-30T21:00:00.000Z",
            "2026-11-30T21:00:00.5Z",
            "2026-11-30t21:00:00z",
            "2026-11-30 21:00:00Z",
            " 2026-11-30T21:00:00Z",
            "",
        ] {
            assert!(parse_message_time(other).is_err(), "{other:?} was accepted");
        }
        assert_eq!(
            format_message_time(time("2026-11-30T21:00:00.999Z")),
            "2026-11-30T21:00:00Z"
        );
    }

    #[test]
    fn message_fields_cannot_smuggle_lines() {
        let t = time("2026-11-30T21:00:00Z");
        let d = PlanDigest([1; 32]);
        let build = |approver: &str| {
            ApprovalMessage::new("acme", "acme", "cr", d, Decision::Approve, approver, t)
        };
        assert!(build("alice").is_ok());
        assert!(matches!(build(""), Err(MessageError::Empty { .. })));
        assert!(matches!(
            build("alice\ndecision: Reject"),
            Err(MessageError::ControlCharacter { .. })
        ));
        assert!(matches!(
            build("alice\u{2028}x"),
            Err(MessageError::ControlCharacter { .. })
        ));
        assert!(matches!(
            build(" alice"),
            Err(MessageError::SurroundingSpace { .. })
        ));
        assert!(matches!(
            ApprovalMessage::new(
                "acme",
                "acme",
                "cr",
                d,
                Decision::Approve,
                "alice",
                time("2026-11-30T21:00:00.5Z")
            ),
            Err(MessageError::SubsecondTime { .. })
        ));
    }

    #[test]
    fn refusal_codes_round_trip() {
        for code in RefusalCode::ALL {
            assert_eq!(RefusalCode::parse(code.as_str()), Some(code));
        }
    }
}
