//! TLS for the admission webhook: the serving certificate read from a
//! directory as cert-manager writes it (`tls.crt`, `tls.key`, optional
//! `ca.crt`) and read again when it is renewed, or a CA and a serving
//! certificate generated at start-up whose CA is patched into the webhook
//! configurations' `caBundle`. Certificate generation and the patches are
//! pure; loading does I/O (files), injection does I/O (the Kubernetes API).

use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use chrono::{DateTime, Datelike, Days, Utc};
use k8s_openapi::api::admissionregistration::v1::{
    MutatingWebhookConfiguration, ValidatingWebhookConfiguration,
};
use kube::api::{Api, Patch, PatchParams};
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};
use rustls::ServerConfig;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use serde_json::json;
use sha2::{Digest, Sha256};
use zentralink_model::secrets::SecretString;

use super::AdmissionError;
use crate::cluster::FIELD_MANAGER;

/// The serving certificate chain in a certificate directory.
pub const CERT_FILE: &str = "tls.crt";
/// Its private key.
pub const KEY_FILE: &str = "tls.key";
/// The CA that signed it (optional; cert-manager writes it).
pub const CA_FILE: &str = "ca.crt";

/// How long a generated CA and serving certificate are valid. They are made
/// anew at every start, so this only bounds an operator that never restarts.
pub const GENERATED_VALIDITY_DAYS: u64 = 365;

/// How often a certificate directory is read again for a renewed certificate.
pub const RELOAD_INTERVAL: Duration = Duration::from_secs(60);

/// The ring crypto provider, the one the workspace's rustls is built with.
fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// The names the serving certificate is for: the webhook Service's DNS
/// names (`<svc>.<ns>.svc`, `<svc>.<ns>.svc.cluster.local`), then the extra
/// ones (`127.0.0.1`, `localhost`, ...), each once, in that order.
pub fn serving_names(service: &str, namespace: &str, extra_sans: &[String]) -> Vec<String> {
    let mut names = vec![
        format!("{service}.{namespace}.svc"),
        format!("{service}.{namespace}.svc.cluster.local"),
    ];
    for extra in extra_sans {
        let extra = extra.trim();
        if !extra.is_empty() && !names.iter().any(|n| n == extra) {
            names.push(extra.to_owned());
        }
    }
    names
}

/// A CA and a serving certificate it signed, in PEM.
#[derive(Debug, Clone)]
pub struct GeneratedCertificates {
    /// The CA certificate: what the webhook configurations' `caBundle` holds.
    pub ca_pem: String,
    /// The serving certificate.
    pub cert_pem: String,
    /// The serving certificate's private key.
    pub key_pem: SecretString,
}

/// The webhook's CA: its certificate (what `caBundle` holds) and key.
#[derive(Debug, Clone)]
pub struct GeneratedCa {
    pub ca_pem: String,
    pub key_pem: SecretString,
}

/// How long a generated CA is valid: it is shared by the replicas through a
/// Secret and outlives any one of them; the serving certificates it signs
/// are made anew at every start.
pub const CA_VALIDITY_DAYS: u64 = 3650;

/// Midnight UTC of a day, as rcgen takes it.
macro_rules! day {
    ($d:expr) => {{
        let d: chrono::NaiveDate = $d;
        rcgen::date_time_ymd(
            d.year(),
            u8::try_from(d.month()).unwrap_or(1),
            u8::try_from(d.day()).unwrap_or(1),
        )
    }};
}

/// The CA's fixed parameters: what a serving certificate names as its
/// issuer (the same whichever replica signs it).
fn ca_params(start: chrono::NaiveDate, days: u64) -> CertificateParams {
    let mut ca = CertificateParams::default();
    ca.distinguished_name = rcgen::DistinguishedName::new();
    ca.distinguished_name
        .push(DnType::CommonName, "zentralink admission webhook CA");
    ca.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    ca.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    ca.not_before = day!(start);
    ca.not_after = day!(start + Days::new(days + 1));
    ca
}

/// Generates a CA (ECDSA P-256, from the system's random source), valid from
/// the start of yesterday (UTC, for clocks a little behind).
pub fn generate_ca(now: DateTime<Utc>) -> Result<GeneratedCa, AdmissionError> {
    let start = now.date_naive() - Days::new(1);
    let key = KeyPair::generate().map_err(AdmissionError::Generate)?;
    let cert = ca_params(start, CA_VALIDITY_DAYS)
        .self_signed(&key)
        .map_err(AdmissionError::Generate)?;
    Ok(GeneratedCa {
        ca_pem: cert.pem(),
        key_pem: SecretString::new(key.serialize_pem()),
    })
}

/// A serving certificate for `names` (DNS names or IP addresses), signed by
/// `ca`, valid from the start of yesterday for [`GENERATED_VALIDITY_DAYS`].
pub fn issue(
    ca: &GeneratedCa,
    names: &[String],
    now: DateTime<Utc>,
) -> Result<GeneratedCertificates, AdmissionError> {
    if names.is_empty() {
        return Err(AdmissionError::NoServingNames);
    }
    for name in names {
        check_san(name)?;
    }
    let start = now.date_naive() - Days::new(1);
    let ca_key = KeyPair::from_pem(ca.key_pem.expose()).map_err(AdmissionError::Generate)?;
    let mut serving = CertificateParams::new(names.to_vec()).map_err(AdmissionError::Generate)?;
    serving.distinguished_name = rcgen::DistinguishedName::new();
    serving
        .distinguished_name
        .push(DnType::CommonName, names[0].as_str());
    serving.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyEncipherment,
    ];
    serving.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    serving.use_authority_key_identifier_extension = true;
    serving.not_before = day!(start);
    serving.not_after = day!(start + Days::new(GENERATED_VALIDITY_DAYS + 1));
    let key = KeyPair::generate().map_err(AdmissionError::Generate)?;
    // the issuer is named by its subject and key identifier, both the same as
    // in the CA certificate whoever made it
    let ca_params = ca_params(start, CA_VALIDITY_DAYS);
    let issuer = Issuer::from_params(&ca_params, &ca_key);
    let cert = serving
        .signed_by(&key, &issuer)
        .map_err(AdmissionError::Generate)?;
    Ok(GeneratedCertificates {
        ca_pem: ca.ca_pem.clone(),
        cert_pem: cert.pem(),
        key_pem: SecretString::new(key.serialize_pem()),
    })
}

/// Generates a CA and a serving certificate for `names`.
pub fn generate(
    names: &[String],
    now: DateTime<Utc>,
) -> Result<GeneratedCertificates, AdmissionError> {
    issue(&generate_ca(now)?, names, now)
}

/// The CA the replicas share: read from the Secret `name` in `namespace`,
/// or generated and stored there by the first replica to start (another
/// that raced it reads the one stored). Every replica then signs its own
/// serving certificate with it and patches the same `caBundle`, so they
/// never overwrite each other's.
pub async fn shared_ca(
    client: &kube::Client,
    namespace: &str,
    name: &str,
    now: DateTime<Utc>,
) -> Result<GeneratedCa, AdmissionError> {
    use k8s_openapi::api::core::v1::Secret;
    let api: Api<Secret> = Api::namespaced(client.clone(), namespace);
    let failed = |action: &str| {
        let action = format!("{action} Secret {namespace}/{name}");
        move |source| AdmissionError::Kubernetes { action, source }
    };
    let read = |secret: &Secret| -> Option<GeneratedCa> {
        let data = secret.data.as_ref()?;
        let ca_pem = String::from_utf8(data.get(CA_FILE)?.0.clone()).ok()?;
        let key_pem = String::from_utf8(data.get(CA_KEY)?.0.clone()).ok()?;
        KeyPair::from_pem(&key_pem).ok()?;
        Some(GeneratedCa {
            ca_pem,
            key_pem: SecretString::new(key_pem),
        })
    };
    if let Some(found) = api.get_opt(name).await.map_err(failed("read"))? {
        return read(&found).ok_or_else(|| AdmissionError::Pem {
            path: PathBuf::from(format!("Secret {namespace}/{name}")),
            reason: format!(
                "it lacks {CA_FILE} or {CA_KEY}; delete it and the operator makes a new CA"
            ),
        });
    }
    let ca = generate_ca(now)?;
    let secret: Secret = serde_json::from_value(json!({
        "apiVersion": "v1",
        "kind": "Secret",
        "type": "Opaque",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "labels": {crate::cluster::MANAGED_BY_LABEL: crate::cluster::MANAGED_BY},
        },
        "stringData": {CA_FILE: ca.ca_pem, CA_KEY: ca.key_pem.expose()},
    }))
    .map_err(|e| AdmissionError::Pem {
        path: PathBuf::from(format!("Secret {namespace}/{name}")),
        reason: e.to_string(),
    })?;
    match api.create(&kube::api::PostParams::default(), &secret).await {
        Ok(_) => Ok(ca),
        // another replica stored one first: use it
        Err(kube::Error::Api(e)) if e.code == 409 => {
            let found = api.get(name).await.map_err(failed("read"))?;
            read(&found).ok_or_else(|| AdmissionError::Pem {
                path: PathBuf::from(format!("Secret {namespace}/{name}")),
                reason: format!("it lacks {CA_FILE} or {CA_KEY}"),
            })
        }
        Err(e) => Err(failed("create")(e)),
    }
}

/// The key of the CA's private key in its Secret.
pub const CA_KEY: &str = "ca.key";

/// A name the certificate can carry: an IP address, or a DNS name of
/// letters, digits, '-' and '.' (a leading `*.` for a wildcard).
fn check_san(name: &str) -> Result<(), AdmissionError> {
    if name.parse::<std::net::IpAddr>().is_ok() {
        return Ok(());
    }
    let host = name.strip_prefix("*.").unwrap_or(name);
    let ok = !host.is_empty()
        && host.len() <= 253
        && host.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-')
                && !label.starts_with('-')
                && !label.ends_with('-')
        });
    if ok {
        Ok(())
    } else {
        Err(AdmissionError::InvalidServingName {
            name: zentralink_model::text::shorten(name, 80).into_owned(),
        })
    }
}

/// The certificate chain and key parsed from PEM, checked to belong together.
pub fn certified_key(
    cert_pem: &[u8],
    key_pem: &[u8],
    what: &Path,
) -> Result<CertifiedKey, AdmissionError> {
    let chain = CertificateDer::pem_slice_iter(cert_pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| AdmissionError::Pem {
            path: what.join(CERT_FILE),
            reason: e.to_string(),
        })?;
    if chain.is_empty() {
        return Err(AdmissionError::Pem {
            path: what.join(CERT_FILE),
            reason: "no CERTIFICATE block found".into(),
        });
    }
    let key = PrivateKeyDer::from_pem_slice(key_pem).map_err(|e| AdmissionError::Pem {
        path: what.join(KEY_FILE),
        reason: e.to_string(),
    })?;
    CertifiedKey::from_der(chain, key, &provider()).map_err(|source| AdmissionError::KeyMismatch {
        dir: what.to_path_buf(),
        source,
    })
}

/// The serving certificate rustls answers every handshake with; replaced
/// in place when its directory holds a renewed one.
#[derive(Debug)]
pub struct ServingCertificate {
    current: RwLock<Arc<CertifiedKey>>,
    /// The directory it is read from, and a digest of what was read last.
    source: Option<(PathBuf, RwLock<[u8; 32]>)>,
}

impl ServingCertificate {
    /// A certificate that never changes (a generated one).
    pub fn fixed(key: CertifiedKey) -> Self {
        Self {
            current: RwLock::new(Arc::new(key)),
            source: None,
        }
    }

    /// Reads `tls.crt` and `tls.key` from `dir`; returns the certificate and
    /// the CA of `ca.crt`, when there is one.
    pub async fn load(dir: &Path) -> Result<(Self, Option<String>), AdmissionError> {
        let (cert, key) = read_pair(dir).await?;
        let certified = certified_key(&cert, key.expose().as_bytes(), dir)?;
        let ca_path = dir.join(CA_FILE);
        let ca = match tokio::fs::read_to_string(&ca_path).await {
            Ok(ca) => Some(ca),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(source) => {
                return Err(AdmissionError::ReadFile {
                    path: ca_path,
                    source,
                });
            }
        };
        Ok((
            Self {
                current: RwLock::new(Arc::new(certified)),
                source: Some((dir.to_path_buf(), RwLock::new(pair_digest(&cert, &key)))),
            },
            ca,
        ))
    }

    /// Reads the directory again; takes the certificate when the files
    /// changed and hold a valid pair (a half-written pair is left for the
    /// next time). Returns whether it was replaced.
    pub async fn reload(&self) -> Result<bool, AdmissionError> {
        let Some((dir, last)) = &self.source else {
            return Ok(false);
        };
        let (cert, key) = read_pair(dir).await?;
        let digest = pair_digest(&cert, &key);
        if last.read().map(|l| *l == digest).unwrap_or(false) {
            return Ok(false);
        }
        let certified = certified_key(&cert, key.expose().as_bytes(), dir)?;
        if let Ok(mut current) = self.current.write() {
            *current = Arc::new(certified);
        }
        if let Ok(mut last) = last.write() {
            *last = digest;
        }
        Ok(true)
    }

    /// The certificate chain served now (leaf first).
    pub fn chain(&self) -> Vec<CertificateDer<'static>> {
        self.current
            .read()
            .map(|c| c.cert.clone())
            .unwrap_or_default()
    }
}

impl ResolvesServerCert for ServingCertificate {
    fn resolve(&self, _client_hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        self.current.read().ok().map(|c| Arc::clone(&c))
    }
}

async fn read_pair(dir: &Path) -> Result<(Vec<u8>, SecretString), AdmissionError> {
    let read = |name: &'static str| {
        let path = dir.join(name);
        async move {
            tokio::fs::read(&path)
                .await
                .map_err(|source| AdmissionError::ReadFile { path, source })
        }
    };
    let cert = read(CERT_FILE).await?;
    let key = read(KEY_FILE).await?;
    let key = String::from_utf8(key).map_err(|_| AdmissionError::Pem {
        path: dir.join(KEY_FILE),
        reason: "not PEM text".into(),
    })?;
    Ok((cert, SecretString::new(key)))
}

fn pair_digest(cert: &[u8], key: &SecretString) -> [u8; 32] {
    let mut hasher = Sha256::new();
    hasher.update(cert);
    hasher.update([0]);
    hasher.update(key.expose().as_bytes());
    hasher.finalize().into()
}

/// The server side of TLS: TLS 1.2 and 1.3, HTTP/1.1, the given certificate.
pub fn server_config(
    certificate: Arc<ServingCertificate>,
) -> Result<Arc<ServerConfig>, AdmissionError> {
    let mut config = ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(AdmissionError::Tls)?
        .with_no_client_auth()
        .with_cert_resolver(certificate);
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// The two kinds of webhook configuration a `caBundle` goes into.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WebhookConfigKind {
    Validating,
    Mutating,
}

impl WebhookConfigKind {
    pub fn as_str(self) -> &'static str {
        match self {
            WebhookConfigKind::Validating => "ValidatingWebhookConfiguration",
            WebhookConfigKind::Mutating => "MutatingWebhookConfiguration",
        }
    }
}

/// The server-side apply patch that sets `caBundle` (base64 of the PEM) on
/// each named webhook of one configuration, and nothing else.
pub fn ca_bundle_patch(
    kind: WebhookConfigKind,
    config: &str,
    webhooks: &[String],
    ca_pem: &str,
) -> serde_json::Value {
    let bundle = data_encoding::BASE64.encode(ca_pem.as_bytes());
    json!({
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": kind.as_str(),
        "metadata": { "name": config },
        "webhooks": webhooks
            .iter()
            .map(|name| json!({ "name": name, "clientConfig": { "caBundle": bundle } }))
            .collect::<Vec<_>>(),
    })
}

/// Puts `ca_pem` into the `caBundle` of every webhook of the configurations
/// named `configs`: for each name, the ValidatingWebhookConfiguration and the
/// MutatingWebhookConfiguration of that name, whichever exist (at least one
/// must). A configuration whose bundles already hold it is not written.
/// Returns how many configurations were patched.
pub async fn inject_ca_bundle(
    client: &kube::Client,
    configs: &[String],
    ca_pem: &str,
) -> Result<usize, AdmissionError> {
    let mut patched = 0;
    for name in configs {
        let validating: Api<ValidatingWebhookConfiguration> = Api::all(client.clone());
        let mutating: Api<MutatingWebhookConfiguration> = Api::all(client.clone());
        let read = |kind: WebhookConfigKind| {
            move |source| AdmissionError::Kubernetes {
                action: format!("read {} {name}", kind.as_str()),
                source,
            }
        };
        let v = validating
            .get_opt(name)
            .await
            .map_err(read(WebhookConfigKind::Validating))?
            .map(|c| {
                let hooks = c.webhooks.unwrap_or_default();
                (
                    hooks.iter().map(|h| h.name.clone()).collect::<Vec<_>>(),
                    hooks
                        .iter()
                        .all(|h| holds(h.client_config.ca_bundle.as_ref(), ca_pem)),
                )
            });
        let m = mutating
            .get_opt(name)
            .await
            .map_err(read(WebhookConfigKind::Mutating))?
            .map(|c| {
                let hooks = c.webhooks.unwrap_or_default();
                (
                    hooks.iter().map(|h| h.name.clone()).collect::<Vec<_>>(),
                    hooks
                        .iter()
                        .all(|h| holds(h.client_config.ca_bundle.as_ref(), ca_pem)),
                )
            });
        if v.is_none() && m.is_none() {
            return Err(AdmissionError::NoWebhookConfiguration { name: name.clone() });
        }
        let params = PatchParams::apply(FIELD_MANAGER).force();
        for (kind, found) in [
            (WebhookConfigKind::Validating, v),
            (WebhookConfigKind::Mutating, m),
        ] {
            let Some((hooks, current)) = found else {
                continue;
            };
            if current || hooks.is_empty() {
                continue;
            }
            let patch = Patch::Apply(ca_bundle_patch(kind, name, &hooks, ca_pem));
            let written = match kind {
                WebhookConfigKind::Validating => {
                    validating.patch(name, &params, &patch).await.map(|_| ())
                }
                WebhookConfigKind::Mutating => {
                    mutating.patch(name, &params, &patch).await.map(|_| ())
                }
            };
            written.map_err(|source| AdmissionError::Kubernetes {
                action: format!("patch the caBundle of {} {name}", kind.as_str()),
                source,
            })?;
            patched += 1;
        }
    }
    Ok(patched)
}

/// Whether a webhook's `caBundle` already holds the PEM.
fn holds(bundle: Option<&k8s_openapi::ByteString>, ca_pem: &str) -> bool {
    bundle.is_some_and(|b| b.0 == ca_pem.as_bytes())
}

/// Keeps the CA in the configurations: injects it at once, again every few
/// seconds until that worked (the configurations may be created after the
/// operator starts), then every few minutes, so a chart upgrade that empties
/// `caBundle` is repaired. Runs until dropped.
pub async fn keep_ca_bundle(client: kube::Client, configs: Vec<String>, ca_pem: String) {
    const RETRY: Duration = Duration::from_secs(5);
    const RECHECK: Duration = Duration::from_secs(300);
    loop {
        let wait = match inject_ca_bundle(&client, &configs, &ca_pem).await {
            Ok(0) => RECHECK,
            Ok(n) => {
                tracing::info!(configurations = n, "admission webhook CA bundle patched");
                RECHECK
            }
            Err(e) => {
                tracing::warn!("{e}");
                RETRY
            }
        };
        tokio::time::sleep(wait).await;
    }
}

/// Reads a certificate directory again every [`RELOAD_INTERVAL`]. Runs until dropped.
pub async fn keep_reloading(certificate: Arc<ServingCertificate>) {
    loop {
        tokio::time::sleep(RELOAD_INTERVAL).await;
        match certificate.reload().await {
            Ok(true) => tracing::info!("admission webhook certificate reloaded"),
            Ok(false) => {}
            Err(e) => tracing::warn!("{e}; still serving the previous certificate"),
        }
    }
}

#[cfg(test)]
mod tests {
    use rustls::client::danger::ServerCertVerifier;

    use super::*;

    fn now() -> DateTime<Utc> {
        "2026-03-01T12:00:00Z".parse().unwrap()
    }

    #[test]
    fn serving_names_are_the_service_names_then_the_extra_ones_once() {
        let names = serving_names(
            "zentralink-webhook",
            "zentralink",
            &[
                "127.0.0.1".into(),
                "localhost".into(),
                "zentralink-webhook.zentralink.svc".into(),
                " ".into(),
            ],
        );
        assert_eq!(
            names,
            [
                "zentralink-webhook.zentralink.svc",
                "zentralink-webhook.zentralink.svc.cluster.local",
                "127.0.0.1",
                "localhost"
            ]
        );
    }

    #[test]
    fn replicas_sharing_a_ca_chain_to_the_one_bundle() {
        use rustls::client::danger::ServerCertVerifier;
        let ca = generate_ca(now()).unwrap();
        let names = serving_names("webhook", "zl", &[]);
        // two replicas, one CA: each signs its own certificate, a day apart
        let first = issue(&ca, &names, now()).unwrap();
        let second = issue(&ca, &names, now() + chrono::Duration::days(1)).unwrap();
        assert_eq!(first.ca_pem, second.ca_pem, "one caBundle for all");
        assert_ne!(first.cert_pem, second.cert_pem);
        let mut roots = rustls::RootCertStore::empty();
        roots
            .add(CertificateDer::from_pem_slice(ca.ca_pem.as_bytes()).unwrap())
            .unwrap();
        let verifier = rustls::client::WebPkiServerVerifier::builder_with_provider(
            Arc::new(roots),
            provider(),
        )
        .build()
        .unwrap();
        let at = rustls::pki_types::UnixTime::since_unix_epoch(Duration::from_secs(
            u64::try_from((now() + chrono::Duration::days(2)).timestamp()).unwrap(),
        ));
        let server = rustls::pki_types::ServerName::try_from("webhook.zl.svc").unwrap();
        for generated in [&first, &second] {
            let key = certified_key(
                generated.cert_pem.as_bytes(),
                generated.key_pem.expose().as_bytes(),
                Path::new("generated"),
            )
            .unwrap();
            verifier
                .verify_server_cert(&key.cert[0], &[], &server, &[], at)
                .unwrap();
        }
        // a CA of its own would not do
        let stranger = generate(&names, now()).unwrap();
        let key = certified_key(
            stranger.cert_pem.as_bytes(),
            stranger.key_pem.expose().as_bytes(),
            Path::new("generated"),
        )
        .unwrap();
        assert!(
            verifier
                .verify_server_cert(&key.cert[0], &[], &server, &[], at)
                .is_err()
        );
    }

    #[test]
    fn a_generated_certificate_fits_its_key_and_chains_to_its_ca() {
        let names = serving_names("webhook", "zl", &["127.0.0.1".into()]);
        let generated = generate(&names, now()).unwrap();
        assert!(generated.ca_pem.starts_with("-----BEGIN CERTIFICATE-----"));
        assert!(
            !format!("{generated:?}").contains("PRIVATE KEY"),
            "the key is redacted"
        );
        let key = certified_key(
            generated.cert_pem.as_bytes(),
            generated.key_pem.expose().as_bytes(),
            Path::new("generated"),
        )
        .unwrap();
        // webpki accepts it for each name, with the CA as the only root
        let mut roots = rustls::RootCertStore::empty();
        roots
            .add(CertificateDer::from_pem_slice(generated.ca_pem.as_bytes()).unwrap())
            .unwrap();
        let verifier = rustls::client::WebPkiServerVerifier::builder_with_provider(
            Arc::new(roots),
            provider(),
        )
        .build()
        .unwrap();
        let at = rustls::pki_types::UnixTime::since_unix_epoch(Duration::from_secs(
            u64::try_from(now().timestamp()).unwrap(),
        ));
        for name in [
            "webhook.zl.svc",
            "webhook.zl.svc.cluster.local",
            "127.0.0.1",
        ] {
            let server = rustls::pki_types::ServerName::try_from(name).unwrap();
            verifier
                .verify_server_cert(&key.cert[0], &[], &server, &[], at)
                .unwrap_or_else(|e| panic!("{name}: {e}"));
        }
        let other = rustls::pki_types::ServerName::try_from("other.zl.svc").unwrap();
        assert!(
            verifier
                .verify_server_cert(&key.cert[0], &[], &other, &[], at)
                .is_err()
        );
        // and it has expired a year and a few days later
        let later = rustls::pki_types::UnixTime::since_unix_epoch(Duration::from_secs(
            u64::try_from(now().timestamp()).unwrap() + 370 * 86_400,
        ));
        let server = rustls::pki_types::ServerName::try_from("127.0.0.1").unwrap();
        assert!(
            verifier
                .verify_server_cert(&key.cert[0], &[], &server, &[], later)
                .is_err()
        );
    }

    #[test]
    fn names_that_cannot_be_in_a_certificate_are_refused() {
        for bad in ["a b", "-x.svc", "x..svc", ""] {
            let err = generate(&[bad.to_owned()], now()).unwrap_err();
            assert!(
                err.to_string().contains("DNS name or an IP address"),
                "{err}"
            );
        }
        assert!(matches!(
            generate(&[], now()),
            Err(AdmissionError::NoServingNames)
        ));
    }

    #[tokio::test]
    async fn a_certificate_directory_is_read_and_read_again_when_renewed() {
        let dir = tempfile::tempdir().unwrap();
        let first = generate(&["a.svc".into()], now()).unwrap();
        std::fs::write(dir.path().join(CERT_FILE), &first.cert_pem).unwrap();
        std::fs::write(dir.path().join(KEY_FILE), first.key_pem.expose()).unwrap();
        let (cert, ca) = ServingCertificate::load(dir.path()).await.unwrap();
        assert_eq!(ca, None);
        let before = cert.chain();
        assert!(!cert.reload().await.unwrap(), "nothing changed");

        // a renewal whose key is not written yet is not taken
        let second = generate(&["a.svc".into()], now()).unwrap();
        std::fs::write(dir.path().join(CERT_FILE), &second.cert_pem).unwrap();
        let err = cert.reload().await.unwrap_err();
        assert!(matches!(err, AdmissionError::KeyMismatch { .. }), "{err}");
        assert_eq!(cert.chain(), before);

        std::fs::write(dir.path().join(KEY_FILE), second.key_pem.expose()).unwrap();
        std::fs::write(dir.path().join(CA_FILE), &second.ca_pem).unwrap();
        assert!(cert.reload().await.unwrap());
        assert_ne!(cert.chain(), before);
        let (_, ca) = ServingCertificate::load(dir.path()).await.unwrap();
        assert_eq!(ca.as_deref(), Some(second.ca_pem.as_str()));
    }

    #[tokio::test]
    async fn a_missing_or_broken_certificate_directory_says_what_to_do() {
        let dir = tempfile::tempdir().unwrap();
        let err = ServingCertificate::load(dir.path()).await.unwrap_err();
        assert!(err.to_string().contains("tls.crt"), "{err}");
        std::fs::write(dir.path().join(CERT_FILE), "not pem").unwrap();
        std::fs::write(dir.path().join(KEY_FILE), "not pem").unwrap();
        let err = ServingCertificate::load(dir.path()).await.unwrap_err();
        assert!(err.to_string().contains("tls.crt"), "{err}");
    }

    #[test]
    fn the_ca_bundle_patch_names_each_webhook_and_sets_only_its_bundle() {
        let patch = ca_bundle_patch(
            WebhookConfigKind::Mutating,
            "zentralink",
            &["mutate.dns.zentralink.net".into()],
            "PEM",
        );
        assert_eq!(
            patch,
            json!({
                "apiVersion": "admissionregistration.k8s.io/v1",
                "kind": "MutatingWebhookConfiguration",
                "metadata": { "name": "zentralink" },
                "webhooks": [
                    { "name": "mutate.dns.zentralink.net", "clientConfig": { "caBundle": "UEVN" } }
                ]
            })
        );
    }
}
