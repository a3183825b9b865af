//! DNS providers behind one trait: list zones, read a zone, apply a batch of
//! record-set operations with a per-operation outcome, test the connection,
//! probe write permission, read the DNSKEYs of a zone the provider signs;
//! with their resilience (timeouts, retries, limits), credentials and the
//! connection checks. Does I/O.

pub mod cloudflare;
pub mod credentials;
pub mod fsread;
pub mod hetzner;
mod http;
pub mod liveness;
pub mod powerdns;
pub mod resilience;
pub mod rfc2136;
pub mod zonefile;

use std::collections::BTreeSet;
use std::fmt;
use std::path::{Path, PathBuf};

use async_trait::async_trait;
use hickory_proto::rr::RecordType;
use zentralink_model::catalog::ConnectionEntry;
use zentralink_model::plan::{ApplyError, ChangeOp, Plan, apply_plan};
use zentralink_model::record::{RecordSet, RrKey, type_name};
use zentralink_model::resources::ProviderType;
use zentralink_model::{ZoneContent, ZoneName};

/// What a provider can do, so a plan can be refused before anything is written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Capabilities {
    /// Record types the provider stores; `None` means every type, including RFC 3597 data.
    pub record_types: Option<BTreeSet<u16>>,
    /// Whether a batch is applied all-or-nothing.
    pub atomic_batch: bool,
    /// Whether ALIAS/ANAME records are supported.
    pub alias: bool,
    /// Most operations in one batch; `None` for no limit.
    pub max_batch: Option<usize>,
    /// Whether `list_zones` can enumerate the provider's zones (RFC 2136 cannot).
    pub lists_zones: bool,
}

/// The owner label of the TXT record the write probe creates and deletes.
pub const PROBE_LABEL: &str = "_zentralink-probe";

/// Why a provider call failed. Messages never hold credentials.
///
/// For a write (`apply`), the variant says what happened to the batch:
/// [`ProviderError::Uncertain`] means it may or may not have been applied
/// (re-read the zone to know); every other variant means this call applied
/// nothing: it was not sent ([`ProviderError::NotSent`],
/// [`ProviderError::NotLive`]) or the provider refused it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProviderError {
    /// The request never reached the provider (connection refused, name not
    /// resolved, TLS failed before the request was written).
    #[error("provider unreachable, nothing was sent: {0}")]
    NotSent(String),
    /// The provider did not answer usefully (timeout, 5xx); for a read only,
    /// since a write in that state is [`ProviderError::Uncertain`].
    #[error("provider unreachable: {0}")]
    Unreachable(String),
    #[error("provider refused the credentials: {0}")]
    Authentication(String),
    #[error("zone {0} does not exist at the provider")]
    ZoneNotFound(String),
    #[error("conflict: {0}")]
    Conflict(String),
    #[error("provider answer could not be read: {0}")]
    InvalidAnswer(String),
    #[error("refused before sending: {0}")]
    NotLive(String),
    #[error("rate limited by the provider: {0}")]
    RateLimited(String),
    #[error("outcome unknown: {0}")]
    Uncertain(String),
    #[error("{0}")]
    Unsupported(String),
    #[error("{0}")]
    Io(String),
}

/// The outcome of one operation of a batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpOutcome {
    pub op: ChangeOp,
    pub key: RrKey,
    pub result: Result<(), String>,
}

/// What happened to each operation of an applied batch.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ApplyReport {
    pub outcomes: Vec<OpOutcome>,
    /// The zone as the provider holds it after the batch, when the provider
    /// knows it without reading the zone again: an all-or-nothing batch
    /// applied to the content its before-value check just read (with what
    /// the provider itself changed on the way, such as the SOA serial).
    /// `None`: whoever needs the zone after the batch reads it.
    pub after: Option<ZoneContent>,
}

impl ApplyReport {
    /// Every operation of the plan applied (an all-or-nothing batch that succeeded).
    pub fn all_applied(plan: &Plan) -> Self {
        Self {
            outcomes: plan
                .changes
                .iter()
                .map(|c| OpOutcome {
                    op: c.op,
                    key: c.key.clone(),
                    result: Ok(()),
                })
                .collect(),
            after: None,
        }
    }

    /// The same report, with the zone as it is after the batch.
    pub fn with_after(self, after: ZoneContent) -> Self {
        Self {
            after: Some(after),
            ..self
        }
    }

    pub fn all_ok(&self) -> bool {
        self.outcomes.iter().all(|o| o.result.is_ok())
    }
}

impl ProviderError {
    /// The same error with more said about it (a zone not found stays as it is).
    pub fn with_context(self, context: &str) -> ProviderError {
        use ProviderError::*;
        let add = |m: String| format!("{m}; {context}");
        match self {
            NotSent(m) => NotSent(add(m)),
            Unreachable(m) => Unreachable(add(m)),
            Authentication(m) => Authentication(add(m)),
            ZoneNotFound(m) => ZoneNotFound(m),
            Conflict(m) => Conflict(add(m)),
            InvalidAnswer(m) => InvalidAnswer(add(m)),
            NotLive(m) => NotLive(add(m)),
            RateLimited(m) => RateLimited(add(m)),
            Uncertain(m) => Uncertain(add(m)),
            Unsupported(m) => Unsupported(add(m)),
            Io(m) => Io(add(m)),
        }
    }

    /// True when the failed call may have changed the zone (only an uncertain write).
    pub fn may_have_applied(&self) -> bool {
        matches!(self, ProviderError::Uncertain(_))
    }
}

/// Every record set the plan touches must still hold the plan's before-value
/// ([`apply_plan`]'s check); returns the zone as it will be. A provider calls
/// this on the content it just read, and sends nothing when it fails.
pub fn check_before_values(
    current: &ZoneContent,
    plan: &Plan,
) -> Result<ZoneContent, ProviderError> {
    apply_plan(current, plan).map_err(|e| match e {
        ApplyError::Conflict { .. } => ProviderError::Conflict(format!(
            "{e}; nothing was sent: plan again from the current state"
        )),
    })
}

/// [`check_before_values`] on content the caller owns and no longer needs:
/// the plan is applied in place, without a copy of the zone. Same check,
/// same error.
pub fn check_before_values_owned(
    mut current: ZoneContent,
    plan: &Plan,
) -> Result<ZoneContent, ProviderError> {
    for change in &plan.changes {
        let now = current.sets.get(&change.key);
        if now != change.before.as_ref() {
            let conflict = ApplyError::Conflict {
                key: change.key.to_string(),
                expected: describe_set(change.before.as_ref()),
                found: describe_set(now),
            };
            return Err(ProviderError::Conflict(format!(
                "{conflict}; nothing was sent: plan again from the current state"
            )));
        }
        match &change.after {
            Some(set) => {
                current.sets.insert(change.key.clone(), set.clone());
            }
            None => {
                current.sets.remove(&change.key);
            }
        }
    }
    Ok(current)
}

/// A record set as a conflict names it (as [`apply_plan`]'s error does).
fn describe_set(set: Option<&RecordSet>) -> String {
    match set {
        None => "no record set".into(),
        Some(s) => format!("ttl {} [{}]", s.ttl, s.texts().join(", ")),
    }
}

/// A DNS provider.
#[async_trait]
pub trait Provider: Send + Sync + fmt::Debug {
    fn provider_type(&self) -> ProviderType;
    fn capabilities(&self) -> Capabilities;
    /// Zones the connection can see.
    async fn list_zones(&self) -> Result<Vec<ZoneName>, ProviderError>;
    /// The zone's record sets, or `None` when the zone does not exist.
    async fn read_zone(&self, zone: &ZoneName) -> Result<Option<ZoneContent>, ProviderError>;
    /// Applies a plan's operations. Providers check before-values where they can.
    async fn apply(&self, plan: &Plan) -> Result<ApplyReport, ProviderError>;
    /// Applies a plan made from `observed`, the zone as this provider
    /// answered [`Provider::read_zone`] moments ago. A provider that can tell
    /// cheaply that the zone has not changed since then checks the plan's
    /// before-values against `observed` instead of reading the whole zone
    /// again; otherwise (and by default) this is [`Provider::apply`].
    async fn apply_observed(
        &self,
        plan: &Plan,
        observed: &ZoneContent,
    ) -> Result<ApplyReport, ProviderError> {
        let _ = observed;
        self.apply(plan).await
    }
    /// Whether the zone is, for certain, still as `observed` (an answer of
    /// [`Provider::read_zone`] a moment ago): a provider that can tell
    /// cheaply (PowerDNS: its SOA serial, where every API change moves it)
    /// says `true` only when nothing can have changed; `false` (the
    /// default) means "read it again".
    async fn still_as_read(
        &self,
        zone: &ZoneName,
        observed: &ZoneContent,
    ) -> Result<bool, ProviderError> {
        let _ = (zone, observed);
        Ok(false)
    }
    /// Checks that the provider answers and accepts the credentials.
    async fn test_connection(&self) -> Result<(), ProviderError>;
    /// Creates and deletes a [`PROBE_LABEL`] TXT record in the zone.
    async fn probe_write(&self, zone: &ZoneName) -> Result<(), ProviderError>;
    /// The zone's DNSKEY set as the provider serves it, when it signs the
    /// zone itself; `None` when it does not know (it does not sign the zone,
    /// or cannot say). A zone whose DNSKEYs are records of its content
    /// (pre-signed, or a zone file) has them in [`Provider::read_zone`] instead.
    async fn dnskeys(&self, zone: &ZoneName) -> Result<Option<RecordSet>, ProviderError> {
        let _ = zone;
        Ok(None)
    }
}

#[cfg(test)]
mod path_tests {
    use super::*;

    #[test]
    fn directories_of_manifests_in_a_revision_resolve_by_name() {
        let root = Path::new("/srv/zones");
        assert_eq!(
            resolve_relative("acme/zone.yaml", "../zonefiles/acme", Some(root)),
            PathBuf::from("/srv/zones/zonefiles/acme")
        );
        assert_eq!(
            resolve_relative("zone.yaml", "./files", Some(root)),
            PathBuf::from("/srv/zones/files")
        );
        assert_eq!(
            resolve_relative("acme/zone.yaml", "/var/zones", Some(root)),
            PathBuf::from("/var/zones")
        );
        assert_eq!(
            resolve_relative("repo/acme/zone.yaml", "../zones", None),
            PathBuf::from("repo/acme/../zones")
        );
    }
}

#[cfg(test)]
mod before_value_tests {
    use super::*;
    use zentralink_model::plan::Change;

    fn zone() -> ZoneName {
        ZoneName::parse("acme.example.").unwrap_or_else(|e| panic!("{e}"))
    }

    fn key(name: &str) -> RrKey {
        let name = zone().owner(name).unwrap_or_else(|e| panic!("{e}"));
        RrKey::new(name, RecordType::A)
    }

    fn set(address: &str) -> RecordSet {
        let value = zentralink_model::record::RecordValue::parse(RecordType::A, address, &zone())
            .unwrap_or_else(|e| panic!("{e}"));
        RecordSet::new(300, vec![value])
    }

    fn content(sets: &[(&str, &str)]) -> ZoneContent {
        let mut c = ZoneContent::new(zone());
        for (name, address) in sets {
            c.sets.insert(key(name), set(address));
        }
        c
    }

    fn change(op: ChangeOp, name: &str, before: Option<&str>, after: Option<&str>) -> Change {
        Change {
            op,
            key: key(name),
            before: before.map(set),
            after: after.map(set),
        }
    }

    fn plan() -> Plan {
        Plan {
            zone: zone(),
            changes: vec![
                change(ChangeOp::Create, "api", None, Some("192.0.2.3")),
                change(ChangeOp::Delete, "old", Some("192.0.2.9"), None),
                change(
                    ChangeOp::Update,
                    "www",
                    Some("192.0.2.1"),
                    Some("192.0.2.2"),
                ),
            ],
        }
    }

    #[test]
    fn applying_in_place_gives_what_the_copying_check_gives() {
        let current = content(&[
            ("www", "192.0.2.1"),
            ("old", "192.0.2.9"),
            ("mail", "192.0.2.5"),
        ]);
        let copied = check_before_values(&current, &plan());
        let in_place = check_before_values_owned(current, &plan());
        assert_eq!(in_place, copied);
        assert_eq!(
            in_place.map(|c| c.sets),
            Ok(content(&[
                ("www", "192.0.2.2"),
                ("api", "192.0.2.3"),
                ("mail", "192.0.2.5")
            ])
            .sets)
        );
    }

    #[test]
    fn a_conflict_in_place_reads_as_the_copying_check_says_it() {
        // Someone changed www meanwhile: nothing is applied, and the error says so alike.
        let current = content(&[("www", "192.0.2.7"), ("old", "192.0.2.9")]);
        let copied = check_before_values(&current, &plan());
        let in_place = check_before_values_owned(current, &plan());
        assert!(
            matches!(&in_place, Err(ProviderError::Conflict(m)) if m.contains("www.acme.example.")),
            "{in_place:?}"
        );
        assert_eq!(in_place, copied);
    }
}

/// Refuses a plan the provider cannot carry out, before anything is written.
pub fn check_capabilities(caps: &Capabilities, plan: &Plan) -> Result<(), ProviderError> {
    let mut problems = Vec::new();
    for c in &plan.changes {
        let t = c.key.rtype;
        if t == RecordType::ANAME && !caps.alias {
            problems.push(format!(
                "{}: the provider does not support ALIAS records",
                c.key
            ));
        } else if let Some(types) = &caps.record_types
            && !types.contains(&u16::from(t))
        {
            problems.push(format!(
                "{}: the provider does not support {} records",
                c.key,
                type_name(t)
            ));
        }
    }
    if let Some(max) = caps.max_batch
        && plan.changes.len() > max
    {
        problems.push(format!(
            "the plan has {} operations; the provider takes at most {max} in one batch",
            plan.changes.len()
        ));
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(ProviderError::Unsupported(problems.join("; ")))
    }
}

/// Resolves a directory named in a manifest against the manifest's own
/// directory, itself under `files_root` when the manifest's name is relative
/// to a root that is not the file system's (a git revision's files).
pub fn resolve_relative(manifest_file: &str, dir: &str, files_root: Option<&Path>) -> PathBuf {
    let p = Path::new(dir);
    if p.is_absolute() {
        return p.to_path_buf();
    }
    match files_root {
        // The manifest's directory does not exist on disk (it is a path in a
        // git revision): resolve `..` by the names alone.
        Some(root) => {
            let manifest_dir = Path::new(manifest_file).parent().unwrap_or(Path::new(""));
            lexical_join(root, &manifest_dir.join(p))
        }
        None => Path::new(manifest_file)
            .parent()
            .map(|parent| parent.join(p))
            .unwrap_or_else(|| p.to_path_buf()),
    }
}

/// `root` joined with a relative path whose `.` and `..` are resolved by name.
fn lexical_join(root: &Path, relative: &Path) -> PathBuf {
    use std::path::Component;
    let mut out = root.to_path_buf();
    for part in relative.components() {
        match part {
            Component::ParentDir => {
                out.pop();
            }
            Component::CurDir => {}
            Component::Normal(name) => out.push(name),
            Component::RootDir | Component::Prefix(_) => {}
        }
    }
    out
}

/// Builds the provider a connection describes, resolving its credentials.
pub fn connect_with(
    entry: &ConnectionEntry,
    sources: &credentials::CredentialSources<'_>,
) -> Result<Box<dyn Provider>, ProviderError> {
    connect_in(entry, sources, None)
}

/// [`connect_with`], for manifests whose file names are relative to `files_root`.
pub fn connect_in(
    entry: &ConnectionEntry,
    sources: &credentials::CredentialSources<'_>,
    files_root: Option<&Path>,
) -> Result<Box<dyn Provider>, ProviderError> {
    let spec = &entry.spec;
    let limits = resilience::Limits::from_spec(spec.limits.as_ref());
    let missing = |block: &str| {
        ProviderError::Unsupported(format!(
            "connection {}/{}: spec.{block} is missing",
            entry.namespace, entry.name
        ))
    };
    let secret = || sources.resolve(entry);
    match spec.provider_type {
        ProviderType::Zonefile => {
            let dir = spec
                .zonefile
                .as_ref()
                .map(|z| resolve_relative(&entry.origin.file, &z.directory, files_root))
                .ok_or_else(|| missing("zonefile"))?;
            Ok(Box::new(zonefile::ZoneFileProvider::new(dir)))
        }
        ProviderType::Powerdns => {
            let settings = spec.powerdns.as_ref().ok_or_else(|| missing("powerdns"))?;
            Ok(Box::new(powerdns::PowerDnsProvider::new(
                settings,
                secret()?,
                limits,
            )?))
        }
        ProviderType::Rfc2136 => {
            let settings = spec.rfc2136.as_ref().ok_or_else(|| missing("rfc2136"))?;
            Ok(Box::new(rfc2136::Rfc2136Provider::new(
                settings,
                secret()?,
                limits,
            )?))
        }
        ProviderType::Hetzner => {
            let settings = spec.hetzner.clone().unwrap_or_default();
            Ok(Box::new(hetzner::HetznerProvider::new(
                &settings,
                secret()?,
                limits,
            )?))
        }
        ProviderType::Cloudflare => {
            let settings = spec.cloudflare.clone().unwrap_or_default();
            Ok(Box::new(cloudflare::CloudflareProvider::new(
                &settings,
                secret()?,
                limits,
            )?))
        }
    }
}

/// Makes rustls use the `ring` crypto provider (once per process) for HTTPS providers.
pub fn install_tls_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// A provider with the connection's write gate: nothing is written unless the
/// connection is live-enabled. The check happens before any request leaves the process.
#[derive(Debug)]
pub struct GatedProvider {
    inner: std::sync::Arc<dyn Provider>,
    live: bool,
    why_not_live: String,
}

impl GatedProvider {
    pub fn new(inner: Box<dyn Provider>, live: bool, why_not_live: impl Into<String>) -> Self {
        Self::shared(inner.into(), live, why_not_live)
    }

    /// A gate over a provider shared by several zones of one connection.
    pub fn shared(
        inner: std::sync::Arc<dyn Provider>,
        live: bool,
        why_not_live: impl Into<String>,
    ) -> Self {
        Self {
            inner,
            live,
            why_not_live: why_not_live.into(),
        }
    }

    pub fn provider(&self) -> &dyn Provider {
        self.inner.as_ref()
    }

    pub fn is_live(&self) -> bool {
        self.live
    }

    pub async fn read_zone(&self, zone: &ZoneName) -> Result<Option<ZoneContent>, ProviderError> {
        self.inner.read_zone(zone).await
    }

    /// [`Provider::still_as_read`]: a read, never gated.
    pub async fn still_as_read(
        &self,
        zone: &ZoneName,
        observed: &ZoneContent,
    ) -> Result<bool, ProviderError> {
        self.inner.still_as_read(zone, observed).await
    }

    pub async fn apply(&self, plan: &Plan) -> Result<ApplyReport, ProviderError> {
        if !self.live {
            return Err(ProviderError::NotLive(self.why_not_live.clone()));
        }
        check_capabilities(&self.inner.capabilities(), plan)?;
        self.inner.apply(plan).await
    }

    /// [`Provider::apply_observed`] through the same gate as [`GatedProvider::apply`].
    pub async fn apply_observed(
        &self,
        plan: &Plan,
        observed: &ZoneContent,
    ) -> Result<ApplyReport, ProviderError> {
        if !self.live {
            return Err(ProviderError::NotLive(self.why_not_live.clone()));
        }
        check_capabilities(&self.inner.capabilities(), plan)?;
        self.inner.apply_observed(plan, observed).await
    }
}
