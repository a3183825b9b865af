//! Secrets: a wrapper type that never prints or serializes its value, and
//! AES-256-GCM envelopes `enc:v1:<key-id>:<nonce>:<ciphertext>` under
//! PLATFORM_ENCRYPTION_KEY, with a previous key for rotation. Pure: the caller
//! supplies each fresh random nonce.

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
    #[error("not an encrypted value (expected enc:v1:<key-id>:<nonce>:<ciphertext>)")]
    Malformed,
    #[error(
        "the value was encrypted with key {0}, which is neither PLATFORM_ENCRYPTION_KEY nor PLATFORM_ENCRYPTION_KEY_PREVIOUS"
    )]
    UnknownKey(String),
    #[error("the value does not decrypt with key {0}: it was altered or the key is wrong")]
    Tampered(String),
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
            .map_err(|_| SecretError::BadKey { name, len: 0 })?;
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

    /// Encrypts with the current key. `nonce` must be fresh random bytes for every call.
    pub fn seal(&self, secret: &SecretString, nonce: [u8; 12]) -> String {
        let key = &self.current;
        let aad = aad(key.id());
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

    /// Decrypts an envelope with whichever key it names.
    pub fn open(&self, envelope: &str) -> Result<SecretString, SecretError> {
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
        let aad = aad(kid);
        let plain = key
            .cipher()
            .decrypt(
                Nonce::from_slice(&nonce),
                Payload {
                    msg: &ct,
                    aad: &aad,
                },
            )
            .map_err(|_| SecretError::Tampered(kid.to_owned()))?;
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

    /// Re-encrypts an envelope under the current key.
    pub fn reencrypt(&self, envelope: &str, nonce: [u8; 12]) -> Result<String, SecretError> {
        let secret = self.open(envelope)?;
        Ok(self.seal(&secret, nonce))
    }
}

/// The key id is authenticated, so an envelope cannot be relabelled to another key.
fn aad(kid: &str) -> Vec<u8> {
    format!("zentralink-secret-v1:{kid}").into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(b: u8) -> EncryptionKey {
        EncryptionKey::from_bytes([b; 32])
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
        let a = ring.seal(&s, [1; 12]);
        let b = ring.seal(&s, [2; 12]);
        assert_ne!(a, b);
        assert!(a.starts_with(&format!("enc:v1:{}:", ring.current_id())));
        assert!(!a.contains("api-key-123"));
        assert_eq!(ring.open(&a).unwrap(), s);
        assert_eq!(ring.open(&b).unwrap(), s);
    }

    #[test]
    fn tampering_and_wrong_keys_are_errors() {
        let ring = Keyring::new(key(1), None);
        let env = ring.seal(&SecretString::new("x"), [3; 12]);
        let mut tampered = env.clone().into_bytes();
        let last = tampered.len() - 2;
        tampered[last] = if tampered[last] == b'A' { b'B' } else { b'A' };
        let tampered = String::from_utf8(tampered).unwrap();
        assert!(matches!(
            ring.open(&tampered),
            Err(SecretError::Tampered(_))
        ));
        let other = Keyring::new(key(2), None);
        assert!(matches!(other.open(&env), Err(SecretError::UnknownKey(_))));
        // relabelling the envelope with another key id does not help
        let relabelled = env.replace(ring.current_id(), other.current_id());
        assert!(matches!(
            other.open(&relabelled),
            Err(SecretError::Tampered(_))
        ));
        assert_eq!(ring.open("plain"), Err(SecretError::Malformed));
        assert_eq!(ring.open("enc:v1:abc"), Err(SecretError::Malformed));
    }

    #[test]
    fn rotation_reads_old_values_and_moves_them() {
        let old = Keyring::new(key(1), None);
        let env = old.seal(&SecretString::new("s3cret"), [4; 12]);
        let rotated = Keyring::new(key(2), Some(key(1)));
        assert!(rotated.needs_reencryption(&env));
        assert_eq!(rotated.open(&env).unwrap().expose(), "s3cret");
        let moved = rotated.reencrypt(&env, [5; 12]).unwrap();
        assert!(!rotated.needs_reencryption(&moved));
        let new_only = Keyring::new(key(2), None);
        assert_eq!(new_only.open(&moved).unwrap().expose(), "s3cret");
    }

    #[test]
    fn keys_from_environment_values() {
        assert_eq!(
            Keyring::from_values(None, None).unwrap_err(),
            SecretError::MissingKey
        );
        assert!(Keyring::from_values(Some("   "), None).is_err());
        let short = data_encoding::BASE64.encode(&[0u8; 16]);
        assert_eq!(
            Keyring::from_values(Some(&short), None).unwrap_err(),
            SecretError::BadKey {
                name: "PLATFORM_ENCRYPTION_KEY",
                len: 16
            }
        );
        let good = key(9).to_base64();
        assert!(Keyring::from_values(Some(&good), Some(&good)).is_ok());
        assert!(
            SecretError::MissingKey
                .to_string()
                .contains("zentralink secrets generate-key")
        );
    }
}
