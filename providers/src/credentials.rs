//! Resolving a connection's credentials: an environment variable the
//! operator allowed, an `enc:v1:` value bound to this tenant and connection
//! and decrypted with PLATFORM_ENCRYPTION_KEY, or a Kubernetes Secret
//! (through a resolver the cluster mode provides). The value is a
//! `SecretString` from the moment it is read; errors never contain it.
//! Does no I/O: the binary collects the environment and the keys and passes them in.

use std::collections::BTreeMap;

use zentralink_model::catalog::ConnectionEntry;
use zentralink_model::resources::Credentials;
use zentralink_model::secrets::{
    Keyring, SecretBinding, SecretError, SecretString, credential_env_allowed, is_reserved_env,
};

use super::ProviderError;

/// Reads a key of a Kubernetes Secret (implemented by the cluster mode).
pub trait SecretResolver: Send + Sync {
    fn secret(&self, namespace: &str, name: &str, key: &str)
    -> Result<SecretString, ProviderError>;
}

/// The environment variables credentials may be read from, with their values:
/// those named `ZENTRALINK_CREDENTIAL_*` and those the operator allowed. The
/// process's own variables (PLATFORM_ENCRYPTION_KEY, DATABASE_URL, ...) are
/// never among them.
#[derive(Default, Clone)]
pub struct CredentialEnv {
    vars: BTreeMap<String, SecretString>,
    allowed: Vec<String>,
}

impl std::fmt::Debug for CredentialEnv {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CredentialEnv")
            .field("variables", &self.vars.keys().collect::<Vec<_>>())
            .field("allowed", &self.allowed)
            .finish()
    }
}

impl CredentialEnv {
    /// Keeps, of the given variables, only those credentials may come from.
    /// An allowed name that the process uses itself is refused.
    pub fn new(
        vars: impl IntoIterator<Item = (String, String)>,
        allowed: &[String],
    ) -> Result<Self, String> {
        for name in allowed {
            if is_reserved_env(name) {
                return Err(format!(
                    "--allow-credential-env {name}: {name} is the process's own configuration and is never sent to a provider"
                ));
            }
            zentralink_model::secrets::check_credential_env_name(name)
                .map_err(|e| format!("--allow-credential-env: {e}"))?;
        }
        let vars = vars
            .into_iter()
            .filter(|(name, value)| {
                !value.is_empty() && credential_env_allowed(name, allowed).is_ok()
            })
            .map(|(name, value)| (name, SecretString::new(value)))
            .collect();
        Ok(Self {
            vars,
            allowed: allowed.to_vec(),
        })
    }

    fn get(&self, name: &str) -> Result<SecretString, ProviderError> {
        credential_env_allowed(name, &self.allowed).map_err(ProviderError::Authentication)?;
        self.vars.get(name).cloned().ok_or_else(|| {
            ProviderError::Authentication(format!("environment variable {name} is not set"))
        })
    }
}

/// Where credentials may come from in this process.
pub struct CredentialSources<'a> {
    /// Decrypts `enc:v1:` values; the error says why there is no keyring
    /// (not set, or what is wrong with the key).
    pub keyring: Result<&'a Keyring, SecretError>,
    /// Reads Kubernetes Secrets.
    pub secrets: Option<&'a dyn SecretResolver>,
    /// The allowed environment variables.
    pub env: &'a CredentialEnv,
}

impl Default for CredentialSources<'_> {
    fn default() -> Self {
        static EMPTY: std::sync::OnceLock<CredentialEnv> = std::sync::OnceLock::new();
        Self {
            keyring: Err(SecretError::MissingKey),
            secrets: None,
            env: EMPTY.get_or_init(CredentialEnv::default),
        }
    }
}

impl std::fmt::Debug for CredentialSources<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CredentialSources")
            .field("keyring", &self.keyring.is_ok())
            .field("secrets", &self.secrets.is_some())
            .field("env", &self.env)
            .finish()
    }
}

impl CredentialSources<'_> {
    /// The secret a connection's `spec.credentials` names.
    pub fn resolve(&self, entry: &ConnectionEntry) -> Result<SecretString, ProviderError> {
        let Some(credentials) = &entry.spec.credentials else {
            return Err(ProviderError::Authentication(format!(
                "connection {}/{} has no credentials",
                entry.namespace, entry.name
            )));
        };
        self.resolve_for(&entry.tenant, &entry.namespace, &entry.name, credentials)
    }

    /// The secret `credentials` names, for the connection `namespace/name` of `tenant`.
    pub fn resolve_for(
        &self,
        tenant: &str,
        namespace: &str,
        name: &str,
        credentials: &Credentials,
    ) -> Result<SecretString, ProviderError> {
        if let Some(var) = &credentials.env {
            return self.env.get(var);
        }
        if let Some(value) = &credentials.value {
            let keyring = self.keyring.as_ref().map_err(|e| {
                ProviderError::Authentication(format!(
                    "the credentials are encrypted (enc:v1:...) but cannot be decrypted: {e}"
                ))
            })?;
            let binding = SecretBinding::connection(tenant, namespace, name);
            return keyring.open(value, &binding).map_err(|e| {
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

    fn env(vars: &[(&str, &str)], allowed: &[&str]) -> Result<CredentialEnv, String> {
        let allowed: Vec<String> = allowed.iter().map(|s| (*s).to_owned()).collect();
        CredentialEnv::new(
            vars.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())),
            &allowed,
        )
    }

    fn by_env(name: &str) -> Credentials {
        Credentials {
            env: Some(name.into()),
            ..Default::default()
        }
    }

    #[test]
    fn only_allowed_variables_are_read() {
        let process = [
            ("ZENTRALINK_CREDENTIAL_PDNS", "from-env"),
            ("PDNS_KEY", "allowed-explicitly"),
            ("OTHER_KEY", "never"),
            ("PLATFORM_ENCRYPTION_KEY", "the-platform-key"),
            ("DATABASE_URL", "postgres://secret@db/zl"),
        ];
        let env = env(&process, &["PDNS_KEY"]).unwrap();
        let sources = CredentialSources {
            env: &env,
            ..Default::default()
        };
        let get = |name: &str| sources.resolve_for("acme", "acme", "pdns", &by_env(name));
        assert_eq!(
            get("ZENTRALINK_CREDENTIAL_PDNS").unwrap().expose(),
            "from-env"
        );
        assert_eq!(get("PDNS_KEY").unwrap().expose(), "allowed-explicitly");
        let err = get("OTHER_KEY").unwrap_err().to_string();
        assert!(err.contains("may not hold credentials"), "{err}");
        for own in ["PLATFORM_ENCRYPTION_KEY", "DATABASE_URL"] {
            let err = get(own).unwrap_err().to_string();
            assert!(err.contains("never sent to a provider"), "{err}");
            assert!(!err.contains("the-platform-key") && !err.contains("secret@db"));
        }
        assert!(
            get("ZENTRALINK_CREDENTIAL_MISSING")
                .unwrap_err()
                .to_string()
                .contains("is not set")
        );
        // the debug form lists names, never values
        let debug = format!("{env:?}");
        assert!(!debug.contains("from-env"), "{debug}");
        assert!(!debug.contains("the-platform-key"), "{debug}");
    }

    #[test]
    fn the_operator_cannot_allow_the_processs_own_variables() {
        for own in ["PLATFORM_ENCRYPTION_KEY", "DATABASE_URL", "CRON_TOKEN"] {
            let err = env(&[], &[own]).unwrap_err();
            assert!(err.contains("never sent to a provider"), "{err}");
        }
        assert!(env(&[], &["not a name"]).is_err());
    }

    #[test]
    fn encrypted_values_open_only_for_their_connection() {
        let ring = Keyring::new(EncryptionKey::from_bytes([1; 32]), None);
        let sealed = ring.seal(
            &SecretString::new("from-value"),
            &SecretBinding::connection("acme", "acme", "pdns"),
            [0; 12],
        );
        let by_value = Credentials {
            value: Some(sealed),
            ..Default::default()
        };
        let sources = CredentialSources {
            keyring: Ok(&ring),
            ..Default::default()
        };
        assert_eq!(
            sources
                .resolve_for("acme", "acme", "pdns", &by_value)
                .unwrap()
                .expose(),
            "from-value"
        );
        let err = sources
            .resolve_for("globex", "globex", "pdns", &by_value)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("tenant globex, connection globex/pdns"),
            "{err}"
        );
        assert!(!err.contains("from-value"));
        for (why, expected) in [
            (SecretError::MissingKey, "is not set"),
            (
                SecretError::BadKey {
                    name: "PLATFORM_ENCRYPTION_KEY",
                    len: 31,
                },
                "decodes to 31 bytes",
            ),
            (
                SecretError::NotBase64 {
                    name: "PLATFORM_ENCRYPTION_KEY",
                },
                "not valid base64",
            ),
        ] {
            let no_key = CredentialSources {
                keyring: Err(why),
                ..Default::default()
            };
            let err = no_key
                .resolve_for("acme", "acme", "pdns", &by_value)
                .unwrap_err()
                .to_string();
            assert!(err.contains(expected), "{err}");
        }
    }

    #[test]
    fn secret_refs_need_the_cluster() {
        let by_ref = Credentials {
            secret_ref: Some(SecretKeyRef {
                name: "pdns".into(),
                key: "apiKey".into(),
            }),
            ..Default::default()
        };
        let err = CredentialSources::default()
            .resolve_for("acme", "acme", "pdns", &by_ref)
            .unwrap_err()
            .to_string();
        assert!(err.contains("Kubernetes Secret acme/pdns"), "{err}");
    }
}
