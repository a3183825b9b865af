//! Secrets: a wrapper type that never prints or serializes its value, and
//! AES-256-GCM envelopes `enc:v1:<key-id>:<nonce>:<ciphertext>` under
//! PLATFORM_ENCRYPTION_KEY, with a previous key for rotation. Every envelope
//! is bound to the one place it may be used (a tenant's connection, a user's
//! TOTP secret, ...): the binding is authenticated data, so a value copied
//! elsewhere does not decrypt. Pure: the caller supplies each fresh random nonce.

use std::fmt;

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use serde::{Serialize, Serializer};
use sha2::{Digest, Sha256};

/// Prefix of every encrypted value.
pub const ENVELOPE_PREFIX: &str = "enc:v1:";
/// Shown instead of a secret wherever one would be printed.
pub const REDACTED: &str = "[redacted]";

/// A secret value. `Debug`, `Display` and `Serialize` print `[redacted]`;
/// the value is reachable only through [`SecretString::expose`].
#[derive(Clone, PartialEq, Eq)]
pub struct SecretString(String);

impl SecretString {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The secret itself, for the one place that must use it (a request header, a TSIG key).
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for SecretString {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(REDACTED)
    }
}

impl fmt::Display for SecretString {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(REDACTED)
    }
}

impl Serialize for SecretString {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(REDACTED)
    }
}

/// Environment variables with this prefix may hold provider credentials
/// (`credentials: { env: ZENTRALINK_CREDENTIAL_PDNS }`). Any other variable
/// must be allowed by the operator explicitly (`--allow-credential-env NAME`).
pub const CREDENTIAL_ENV_PREFIX: &str = "ZENTRALINK_CREDENTIAL_";

/// Variables the process itself uses, and prefixes of such variables: a
/// manifest can never name them as credentials, whatever is allowed.
const RESERVED_ENV: [&str; 9] = [
    "DATABASE_URL",
    "CRON_TOKEN",
    "KUBECONFIG",
    "RUST_LOG",
    "NO_COLOR",
    "HOME",
    "PATH",
    "USER",
    "SHELL",
];
const RESERVED_ENV_PREFIXES: [&str; 5] = ["PLATFORM_", "ZENTRALINK_", "PG", "KUBERNETES_", "SSH_"];

/// Whether the process itself uses the variable (so it is never a credential).
pub fn is_reserved_env(name: &str) -> bool {
    if name.starts_with(CREDENTIAL_ENV_PREFIX) {
        return false;
    }
    RESERVED_ENV.contains(&name) || RESERVED_ENV_PREFIXES.iter().any(|p| name.starts_with(p))
}

/// Checks the name a manifest gives in `credentials.env` (at validation: no
/// allow-list is known there, only what can never be allowed).
pub fn check_credential_env_name(name: &str) -> Result<(), String> {
    let well_formed = name
        .bytes()
        .next()
        .is_some_and(|b| b.is_ascii_uppercase() || b == b'_')
        && name
            .bytes()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_')
        && name.len() <= 128;
    if !well_formed {
        return Err(format!(
            "{:?} is not an environment variable name (upper-case letters, digits and '_', at most 128 characters)",
            shorten(name, 64)
        ));
    }
    if is_reserved_env(name) {
        return Err(format!(
            "{name} is the process's own configuration and is never sent to a provider; put the credential in {CREDENTIAL_ENV_PREFIX}<NAME>"
        ));
    }
    Ok(())
}

/// Whether a credential may be read from the variable: it has the credential
/// prefix, or the operator allowed it, and it is not the process's own.
pub fn credential_env_allowed(name: &str, allowed: &[String]) -> Result<(), String> {
    check_credential_env_name(name)?;
    if name.starts_with(CREDENTIAL_ENV_PREFIX) || allowed.iter().any(|a| a == name) {
        Ok(())
    } else {
        Err(format!(
            "environment variable {name} may not hold credentials: name it {CREDENTIAL_ENV_PREFIX}<NAME>, or let the operator allow it with --allow-credential-env {name}"
        ))
    }
}

pub use crate::text::shorten;

/// Why a key or an envelope was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SecretError {
    #[error(
        "PLATFORM_ENCRYPTION_KEY is not set. Generate one with `zentralink secrets generate-key` (or `openssl rand -base64 32`) and keep it safe: without it, stored secrets cannot be read"
    )]
    MissingKey,
    #[error(
        "{name} is not a base64-encoded 32-byte key (it decodes to {len} bytes); generate one with `zentralink secrets generate-key`"
    )]
    BadKey { name: &'static str, len: usize },
    #[error(
        "{name} is not valid base64 (it must be 32 random bytes in base64, 44 characters); generate one with `zentralink secrets generate-key`"
    )]
    NotBase64 { name: &'static str },
    #[error("not an encrypted value (expected enc:v1:<key-id>:<nonce>:<ciphertext>)")]
    Malformed,
    #[error(
        "the value was encrypted with key {0}, which is neither PLATFORM_ENCRYPTION_KEY nor PLATFORM_ENCRYPTION_KEY_PREVIOUS"
    )]
    UnknownKey(String),
    #[error(
        "the value does not decrypt with key {key} for {binding}: it was encrypted for another place (another connection or tenant), altered, or the key is wrong; encrypt it for this place with `zentralink secrets encrypt`"
    )]
    Tampered { key: String, binding: String },
    #[error("no randomness available for a nonce: {0}")]
    NoRandomness(String),
    #[error("the decrypted value is not UTF-8")]
    NotText,
}

/// One AES-256 key and its id (the first 8 hex digits of SHA-256 of the key).
#[derive(Clone)]
pub struct EncryptionKey {
    id: String,
    key: [u8; 32],
}

impl fmt::Debug for EncryptionKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "EncryptionKey({}, {REDACTED})", self.id)
    }
}

impl EncryptionKey {
    pub fn from_bytes(key: [u8; 32]) -> Self {
        let digest = Sha256::digest(key);
        let id = data_encoding::HEXLOWER.encode(&digest[..4]);
        Self { id, key }
    }

    /// Parses a base64 key as PLATFORM_ENCRYPTION_KEY holds it.
    pub fn from_base64(name: &'static str, value: &str) -> Result<Self, SecretError> {
        let bytes = data_encoding::BASE64
            .decode(value.trim().as_bytes())
            .map_err(|_| SecretError::NotBase64 { name })?;
        let len = bytes.len();
        let key: [u8; 32] = bytes
            .try_into()
            .map_err(|_| SecretError::BadKey { name, len })?;
        Ok(Self::from_bytes(key))
    }

    pub fn id(&self) -> &str {
        &self.id
    }

    /// The key as base64, for `zentralink secrets generate-key`.
    pub fn to_base64(&self) -> String {
        data_encoding::BASE64.encode(&self.key)
    }

    fn cipher(&self) -> Aes256Gcm {
        Aes256Gcm::new(&self.key.into())
    }
}

/// Where an encrypted value may be used. It is part of the envelope's
/// authenticated data: the same value encrypted for acme's connection does
/// not decrypt as globex's, nor as acme's other connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecretBinding(String);

impl SecretBinding {
    /// The credentials of a ProviderConnection: its tenant, namespace and name.
    pub fn connection(tenant: &str, namespace: &str, name: &str) -> Self {
        Self::from_parts("connection", &[tenant, namespace, name])
    }

    /// A value stored in a table row of the store (`table`, then the row's identifying columns).
    pub fn stored(table: &str, row: &[&str]) -> Self {
        let mut parts = vec![table];
        parts.extend_from_slice(row);
        Self::from_parts("stored", &parts)
    }

    /// Parts are length-prefixed, so no choice of names can make two bindings equal.
    fn from_parts(kind: &str, parts: &[&str]) -> Self {
        let mut s = String::from(kind);
        for p in parts {
            s.push_str(&format!(":{}:{p}", p.len()));
        }
        Self(s)
    }

    /// The binding as it enters the authenticated data.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// A reader's description (no secret is ever part of a binding).
    pub fn describe(&self) -> String {
        let mut parts = Vec::new();
        let mut rest = self.0.as_str();
        let kind = match rest.split_once(':') {
            Some((k, r)) => {
                rest = r;
                k
            }
            None => return self.0.clone(),
        };
        while let Some((len, r)) = rest.split_once(':') {
            let Ok(n) = len.parse::<usize>() else { break };
            let Some(part) = r.get(..n) else { break };
            parts.push(part);
            rest = r.get(n..).unwrap_or("").trim_start_matches(':');
        }
        match (kind, parts.as_slice()) {
            ("connection", [tenant, ns, name]) => {
                format!("tenant {tenant}, connection {ns}/{name}")
            }
            _ => format!("{kind} {}", parts.join("/")),
        }
    }
}

/// The current key, and optionally the previous one (for reading values not yet re-encrypted).
#[derive(Debug, Clone)]
pub struct Keyring {
    current: EncryptionKey,
    previous: Option<EncryptionKey>,
}

impl Keyring {
    pub fn new(current: EncryptionKey, previous: Option<EncryptionKey>) -> Self {
        Self { current, previous }
    }

    /// From the values of PLATFORM_ENCRYPTION_KEY and PLATFORM_ENCRYPTION_KEY_PREVIOUS.
    pub fn from_values(current: Option<&str>, previous: Option<&str>) -> Result<Self, SecretError> {
        let current = match current {
            Some(v) if !v.trim().is_empty() => {
                EncryptionKey::from_base64("PLATFORM_ENCRYPTION_KEY", v)?
            }
            _ => return Err(SecretError::MissingKey),
        };
        let previous = match previous {
            Some(v) if !v.trim().is_empty() => Some(EncryptionKey::from_base64(
                "PLATFORM_ENCRYPTION_KEY_PREVIOUS",
                v,
            )?),
            _ => None,
        };
        Ok(Self { current, previous })
    }

    pub fn current_id(&self) -> &str {
        self.current.id()
    }

    /// Encrypts with the current key for one place. `nonce` must be fresh random bytes for every call.
    pub fn seal(&self, secret: &SecretString, binding: &SecretBinding, nonce: [u8; 12]) -> String {
        let key = &self.current;
        let aad = aad(key.id(), binding);
        // Encryption with a valid key and in-memory buffers cannot fail.
        let ciphertext = key
            .cipher()
            .encrypt(
                Nonce::from_slice(&nonce),
                Payload {
                    msg: secret.expose().as_bytes(),
                    aad: &aad,
                },
            )
            .unwrap_or_default();
        format!(
            "{ENVELOPE_PREFIX}{}:{}:{}",
            key.id(),
            data_encoding::BASE64URL_NOPAD.encode(&nonce),
            data_encoding::BASE64URL_NOPAD.encode(&ciphertext)
        )
    }

    /// Decrypts an envelope with whichever key it names, for the place it is used.
    pub fn open(
        &self,
        envelope: &str,
        binding: &SecretBinding,
    ) -> Result<SecretString, SecretError> {
        let rest = envelope
            .strip_prefix(ENVELOPE_PREFIX)
            .ok_or(SecretError::Malformed)?;
        let mut parts = rest.split(':');
        let (Some(kid), Some(nonce), Some(ct), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(SecretError::Malformed);
        };
        let key = [Some(&self.current), self.previous.as_ref()]
            .into_iter()
            .flatten()
            .find(|k| k.id() == kid)
            .ok_or_else(|| SecretError::UnknownKey(kid.to_owned()))?;
        let nonce = data_encoding::BASE64URL_NOPAD
            .decode(nonce.as_bytes())
            .map_err(|_| SecretError::Malformed)?;
        let nonce: [u8; 12] = nonce.try_into().map_err(|_| SecretError::Malformed)?;
        let ct = data_encoding::BASE64URL_NOPAD
            .decode(ct.as_bytes())
            .map_err(|_| SecretError::Malformed)?;
        let aad = aad(kid, binding);
        let plain = key
            .cipher()
            .decrypt(
                Nonce::from_slice(&nonce),
                Payload {
                    msg: &ct,
                    aad: &aad,
                },
            )
            .map_err(|_| SecretError::Tampered {
                key: kid.to_owned(),
                binding: binding.describe(),
            })?;
        String::from_utf8(plain)
            .map(SecretString)
            .map_err(|_| SecretError::NotText)
    }

    /// True when the envelope is not under the current key and should be re-encrypted.
    pub fn needs_reencryption(&self, envelope: &str) -> bool {
        envelope
            .strip_prefix(ENVELOPE_PREFIX)
            .and_then(|r| r.split(':').next())
            .is_some_and(|kid| kid != self.current.id())
    }

    /// Re-encrypts an envelope under the current key, for the same place.
    pub fn reencrypt(
        &self,
        envelope: &str,
        binding: &SecretBinding,
        nonce: [u8; 12],
    ) -> Result<String, SecretError> {
        let secret = self.open(envelope, binding)?;
        Ok(self.seal(&secret, binding, nonce))
    }
}

/// The key id and the binding are authenticated: an envelope can be neither
/// relabelled to another key nor used anywhere but where it was made for.
fn aad(kid: &str, binding: &SecretBinding) -> Vec<u8> {
    format!("zentralink-secret-v1:{kid}:{}", binding.as_str()).into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(b: u8) -> EncryptionKey {
        EncryptionKey::from_bytes([b; 32])
    }

    fn acme() -> SecretBinding {
        SecretBinding::connection("acme", "acme", "pdns-main")
    }

    #[test]
    fn secrets_never_print() {
        let s = SecretString::new("hunter2");
        assert_eq!(format!("{s}"), REDACTED);
        assert_eq!(format!("{s:?}"), REDACTED);
        assert_eq!(serde_json::to_string(&s).unwrap(), "\"[redacted]\"");
        assert_eq!(s.expose(), "hunter2");
        assert!(!format!("{:?}", key(1)).contains(&key(1).to_base64()));
    }

    #[test]
    fn round_trip_and_fresh_nonces() {
        let ring = Keyring::new(key(1), None);
        let s = SecretString::new("api-key-123");
        let a = ring.seal(&s, &acme(), [1; 12]);
        let b = ring.seal(&s, &acme(), [2; 12]);
        assert_ne!(a, b);
        assert!(a.starts_with(&format!("enc:v1:{}:", ring.current_id())));
        assert!(!a.contains("api-key-123"));
        assert_eq!(ring.open(&a, &acme()).unwrap(), s);
        assert_eq!(ring.open(&b, &acme()).unwrap(), s);
    }

    #[test]
    fn a_value_decrypts_only_where_it_was_bound() {
        let ring = Keyring::new(key(1), None);
        let sealed = ring.seal(&SecretString::new("acme-token"), &acme(), [7; 12]);
        for elsewhere in [
            SecretBinding::connection("globex", "globex", "pdns-main"),
            SecretBinding::connection("acme", "acme", "pdns-other"),
            SecretBinding::connection("acme", "acme-staging", "pdns-main"),
            SecretBinding::connection("globex", "acme", "pdns-main"),
            SecretBinding::stored("provider_connections", &["acme", "pdns-main"]),
        ] {
            let err = ring.open(&sealed, &elsewhere).unwrap_err();
            assert!(matches!(err, SecretError::Tampered { .. }), "{err}");
            let text = err.to_string();
            assert!(text.contains("another place"), "{text}");
            assert!(text.contains(&elsewhere.describe()), "{text}");
            assert!(!text.contains("acme-token"));
        }
        // length-prefixed parts: moving a separator does not make another binding equal
        assert_ne!(
            SecretBinding::connection("a", "b:c", "d"),
            SecretBinding::connection("a:b", "c", "d")
        );
        assert_eq!(acme().describe(), "tenant acme, connection acme/pdns-main");
    }

    #[test]
    fn tampering_and_wrong_keys_are_errors() {
        let ring = Keyring::new(key(1), None);
        let env = ring.seal(&SecretString::new("x"), &acme(), [3; 12]);
        let mut tampered = env.clone().into_bytes();
        let last = tampered.len() - 2;
        tampered[last] = if tampered[last] == b'A' { b'B' } else { b'A' };
        let tampered = String::from_utf8(tampered).unwrap();
        assert!(matches!(
            ring.open(&tampered, &acme()),
            Err(SecretError::Tampered { .. })
        ));
        let other = Keyring::new(key(2), None);
        assert!(matches!(
            other.open(&env, &acme()),
            Err(SecretError::UnknownKey(_))
        ));
        // relabelling the envelope with another key id does not help
        let relabelled = env.replace(ring.current_id(), other.current_id());
        assert!(matches!(
            other.open(&relabelled, &acme()),
            Err(SecretError::Tampered { .. })
        ));
        assert_eq!(ring.open("plain", &acme()), Err(SecretError::Malformed));
        assert_eq!(
            ring.open("enc:v1:abc", &acme()),
            Err(SecretError::Malformed)
        );
    }

    #[test]
    fn rotation_reads_old_values_and_keeps_their_binding() {
        let old = Keyring::new(key(1), None);
        let env = old.seal(&SecretString::new("s3cret"), &acme(), [4; 12]);
        let rotated = Keyring::new(key(2), Some(key(1)));
        assert!(rotated.needs_reencryption(&env));
        assert_eq!(rotated.open(&env, &acme()).unwrap().expose(), "s3cret");
        let moved = rotated.reencrypt(&env, &acme(), [5; 12]).unwrap();
        assert!(!rotated.needs_reencryption(&moved));
        let new_only = Keyring::new(key(2), None);
        assert_eq!(new_only.open(&moved, &acme()).unwrap().expose(), "s3cret");
        let globex = SecretBinding::connection("globex", "globex", "pdns-main");
        assert!(new_only.open(&moved, &globex).is_err());
    }

    #[test]
    fn credentials_come_only_from_allowed_variables() {
        let none: Vec<String> = Vec::new();
        assert!(credential_env_allowed("ZENTRALINK_CREDENTIAL_PDNS", &none).is_ok());
        let err = credential_env_allowed("PDNS_API_KEY", &none).unwrap_err();
        assert!(err.contains("--allow-credential-env PDNS_API_KEY"), "{err}");
        assert!(credential_env_allowed("PDNS_API_KEY", &["PDNS_API_KEY".to_owned()]).is_ok());
        // the process's own variables can never be allowed
        for own in [
            "PLATFORM_ENCRYPTION_KEY",
            "PLATFORM_ENCRYPTION_KEY_PREVIOUS",
            "DATABASE_URL",
            "CRON_TOKEN",
            "ZENTRALINK_WEBHOOK_SECRET",
            "PGPASSWORD",
            "KUBECONFIG",
        ] {
            let err = credential_env_allowed(own, &[own.to_owned()]).unwrap_err();
            assert!(err.contains("never sent to a provider"), "{own}: {err}");
            assert!(check_credential_env_name(own).is_err(), "{own}");
        }
        for bad in ["", "lower", "1ABC", "A-B", "A B", "A=B"] {
            assert!(check_credential_env_name(bad).is_err(), "{bad:?}");
        }
        let long = "A".repeat(10_000);
        let err = check_credential_env_name(&long).unwrap_err();
        assert!(err.len() < 300, "{err}");
    }

    #[test]
    fn shorten_cuts_long_text_on_a_character_boundary() {
        assert_eq!(shorten("short", 10), "short");
        let cut = shorten("ééééé", 2);
        assert!(cut.starts_with("éé..."), "{cut}");
        assert!(cut.contains("10 bytes"), "{cut}");
    }

    #[test]
    fn keys_from_environment_values() {
        assert_eq!(
            Keyring::from_values(None, None).unwrap_err(),
            SecretError::MissingKey
        );
        assert!(Keyring::from_values(Some("   "), None).is_err());
        let good = key(9).to_base64();
        for (bytes, len) in [(16, 16), (31, 31), (33, 33)] {
            let wrong = data_encoding::BASE64.encode(&vec![0u8; bytes]);
            assert_eq!(
                Keyring::from_values(Some(&wrong), None).unwrap_err(),
                SecretError::BadKey {
                    name: "PLATFORM_ENCRYPTION_KEY",
                    len
                }
            );
            assert_eq!(
                Keyring::from_values(Some(&good), Some(&wrong)).unwrap_err(),
                SecretError::BadKey {
                    name: "PLATFORM_ENCRYPTION_KEY_PREVIOUS",
                    len
                }
            );
        }
        let err = Keyring::from_values(Some("not base64 at all!"), None).unwrap_err();
        assert_eq!(
            err,
            SecretError::NotBase64 {
                name: "PLATFORM_ENCRYPTION_KEY"
            }
        );
        assert!(err.to_string().contains("not valid base64"), "{err}");
        assert!(Keyring::from_values(Some(&good), Some(&good)).is_ok());
        assert!(
            SecretError::MissingKey
                .to_string()
                .contains("zentralink secrets generate-key")
        );
    }
}
