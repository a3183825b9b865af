//! Resolving a connection's credentials: an environment variable, an
//! `enc:v1:` value decrypted with PLATFORM_ENCRYPTION_KEY, or a Kubernetes
//! Secret (through a resolver the cluster mode provides). The value is a
//! `SecretString` from the moment it is read; errors never contain it.

use zentralink_model::resources::Credentials;
use zentralink_model::secrets::{Keyring, SecretString};

use super::ProviderError;

/// Reads a key of a Kubernetes Secret (implemented by the cluster mode).
pub trait SecretResolver: Send + Sync {
    fn secret(&self, namespace: &str, name: &str, key: &str)
    -> Result<SecretString, ProviderError>;
}

/// Looks up an environment variable.
pub type EnvLookup<'a> = &'a dyn Fn(&str) -> Option<String>;

/// Where credentials may come from in this process.
#[derive(Default)]
pub struct CredentialSources<'a> {
    /// Decrypts `enc:v1:` values.
    pub keyring: Option<&'a Keyring>,
    /// Reads Kubernetes Secrets.
    pub secrets: Option<&'a dyn SecretResolver>,
    /// Looks up environment variables (tests pass their own).
    pub env: Option<EnvLookup<'a>>,
}

impl std::fmt::Debug for CredentialSources<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CredentialSources")
            .field("keyring", &self.keyring.is_some())
            .field("secrets", &self.secrets.is_some())
            .finish()
    }
}

impl CredentialSources<'_> {
    fn env_var(&self, name: &str) -> Option<String> {
        match self.env {
            Some(f) => f(name),
            None => std::env::var(name).ok(),
        }
    }

    /// The secret a connection's `spec.credentials` names.
    pub fn resolve(
        &self,
        namespace: &str,
        credentials: &Credentials,
    ) -> Result<SecretString, ProviderError> {
        if let Some(var) = &credentials.env {
            return self
                .env_var(var)
                .filter(|v| !v.is_empty())
                .map(SecretString::new)
                .ok_or_else(|| {
                    ProviderError::Authentication(format!("environment variable {var} is not set"))
                });
        }
        if let Some(value) = &credentials.value {
            let keyring = self.keyring.ok_or_else(|| {
                ProviderError::Authentication(
                    "the credentials are encrypted (enc:v1:...) and PLATFORM_ENCRYPTION_KEY is not set".into(),
                )
            })?;
            return keyring.open(value).map_err(|e| {
                ProviderError::Authentication(format!(
                    "the encrypted credentials cannot be read: {e}"
                ))
            });
        }
        if let Some(r) = &credentials.secret_ref {
            let resolver = self.secrets.ok_or_else(|| {
                ProviderError::Authentication(format!(
                    "credentials come from Kubernetes Secret {namespace}/{} key {}, which only the operator in a cluster can read; use env or an enc:v1 value outside a cluster",
                    r.name, r.key
                ))
            })?;
            return resolver.secret(namespace, &r.name, &r.key);
        }
        Err(ProviderError::Authentication(
            "no credentials configured".into(),
        ))
    }
}

#[cfg(test)]
mod tests {
    use zentralink_model::resources::SecretKeyRef;
    use zentralink_model::secrets::EncryptionKey;

    use super::*;

    #[test]
    fn env_values_and_secret_refs() {
        let env = |k: &str| (k == "PDNS_KEY").then(|| "from-env".to_owned());
        let ring = Keyring::new(EncryptionKey::from_bytes([1; 32]), None);
        let sealed = ring.seal(&SecretString::new("from-value"), [0; 12]);
        let sources = CredentialSources {
            keyring: Some(&ring),
            secrets: None,
            env: Some(&env),
        };
        let by_env = Credentials {
            env: Some("PDNS_KEY".into()),
            ..Default::default()
        };
        assert_eq!(
            sources.resolve("acme", &by_env).unwrap().expose(),
            "from-env"
        );
        let missing = Credentials {
            env: Some("NOPE".into()),
            ..Default::default()
        };
        assert!(
            sources
                .resolve("acme", &missing)
                .unwrap_err()
                .to_string()
                .contains("NOPE is not set")
        );
        let by_value = Credentials {
            value: Some(sealed.clone()),
            ..Default::default()
        };
        assert_eq!(
            sources.resolve("acme", &by_value).unwrap().expose(),
            "from-value"
        );
        let no_key = CredentialSources {
            keyring: None,
            secrets: None,
            env: Some(&env),
        };
        let err = no_key.resolve("acme", &by_value).unwrap_err().to_string();
        assert!(err.contains("PLATFORM_ENCRYPTION_KEY"), "{err}");
        assert!(!err.contains("from-value"));
        let by_ref = Credentials {
            secret_ref: Some(SecretKeyRef {
                name: "pdns".into(),
                key: "apiKey".into(),
            }),
            ..Default::default()
        };
        assert!(
            sources
                .resolve("acme", &by_ref)
                .unwrap_err()
                .to_string()
                .contains("Kubernetes Secret acme/pdns")
        );
    }
}
