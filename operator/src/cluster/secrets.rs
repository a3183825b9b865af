//! Credentials from Kubernetes Secrets: a key of a Secret in the
//! connection's own namespace (so a tenant reads only its own Secrets), read
//! from the reflector's cache of Secrets labelled
//! `dns.zentralink.net/credentials=true`. Does no I/O itself (the reflector
//! that fills the cache does).

use k8s_openapi::api::core::v1::Secret;
use kube::runtime::reflector::{ObjectRef, Store};
use zentralink_model::secrets::SecretString;
use zentralink_providers::ProviderError;
use zentralink_providers::credentials::SecretResolver;

use super::CREDENTIALS_LABEL;

/// Reads credentials from the cached Secrets.
#[derive(Clone)]
pub struct CachedSecrets {
    store: Store<Secret>,
}

impl std::fmt::Debug for CachedSecrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CachedSecrets")
            .field("secrets", &self.store.state().len())
            .finish()
    }
}

impl CachedSecrets {
    pub fn new(store: Store<Secret>) -> Self {
        Self { store }
    }
}

impl SecretResolver for CachedSecrets {
    fn secret(
        &self,
        namespace: &str,
        name: &str,
        key: &str,
    ) -> Result<SecretString, ProviderError> {
        let found = self
            .store
            .get(&ObjectRef::new(name).within(namespace))
            .ok_or_else(|| {
                ProviderError::Authentication(format!(
                    "Secret {namespace}/{name} was not found among the Secrets labelled {CREDENTIALS_LABEL}=true: create it in the connection's namespace with that label"
                ))
            })?;
        value_of(&found, namespace, name, key)
    }
}

/// The value of `key` in a Secret: `data` (bytes, which must be UTF-8) or `stringData`.
pub fn value_of(
    secret: &Secret,
    namespace: &str,
    name: &str,
    key: &str,
) -> Result<SecretString, ProviderError> {
    if let Some(bytes) = secret.data.as_ref().and_then(|d| d.get(key)) {
        return String::from_utf8(bytes.0.clone())
            .map(|s| SecretString::new(s.trim_end_matches(['\n', '\r']).to_owned()))
            .map_err(|_| {
                ProviderError::Authentication(format!(
                    "key {key} of Secret {namespace}/{name} is not UTF-8 text"
                ))
            });
    }
    if let Some(text) = secret.string_data.as_ref().and_then(|d| d.get(key)) {
        return Ok(SecretString::new(text.clone()));
    }
    Err(ProviderError::Authentication(format!(
        "Secret {namespace}/{name} has no key {key}"
    )))
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use k8s_openapi::ByteString;
    use kube::api::ObjectMeta;

    use super::*;

    fn secret(data: &[(&str, &[u8])]) -> Secret {
        Secret {
            metadata: ObjectMeta {
                name: Some("pdns".into()),
                namespace: Some("acme".into()),
                ..ObjectMeta::default()
            },
            data: Some(
                data.iter()
                    .map(|(k, v)| ((*k).to_owned(), ByteString(v.to_vec())))
                    .collect::<BTreeMap<_, _>>(),
            ),
            ..Secret::default()
        }
    }

    #[test]
    fn a_key_is_read_and_a_trailing_newline_dropped() {
        let s = secret(&[("apiKey", b"s3cret\n")]);
        let v = value_of(&s, "acme", "pdns", "apiKey").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(v.expose(), "s3cret");
    }

    #[test]
    fn a_missing_key_or_binary_value_says_which() {
        let s = secret(&[("apiKey", &[0xff, 0xfe])]);
        let e = value_of(&s, "acme", "pdns", "apiKey")
            .err()
            .map(|e| e.to_string());
        assert!(e.is_some_and(|e| e.contains("not UTF-8")));
        let e = value_of(&s, "acme", "pdns", "token")
            .err()
            .map(|e| e.to_string());
        assert!(e.is_some_and(|e| e.contains("has no key token")));
    }

    #[test]
    fn only_the_connections_namespace_is_looked_in() {
        let (store, mut writer) = kube::runtime::reflector::store();
        writer.apply_watcher_event(&kube::runtime::watcher::Event::Apply(secret(&[(
            "apiKey", b"x",
        )])));
        let cached = CachedSecrets::new(store);
        assert!(cached.secret("acme", "pdns", "apiKey").is_ok());
        let other = cached
            .secret("globex", "pdns", "apiKey")
            .err()
            .map(|e| e.to_string());
        assert!(other.is_some_and(|e| e.contains("Secret globex/pdns was not found")));
    }
}
