//! Reading zones while the manifests are still being validated, for
//! `zentralink plan`: a quick scan of the manifest texts guesses each
//! DnsZone's namespace, `spec.zone` and `spec.providerRef.name` without
//! parsing its record sets, the Tenant and ProviderConnection documents are
//! validated on their own, and the reads of those zones start while the full
//! load runs (docs/benchmarks.md, "The reconciler", section 3).
//!
//! The guess is never trusted. A read is used only for a zone the validated
//! catalog has, in the same namespace and on a connection with the same
//! tenant, name, file and spec as the one the read was started with; every
//! other read is aborted and its result dropped unseen, and all of them are
//! when the manifests do not validate. Credentials are resolved by
//! [`connect_in`] from the caller's sources, as on the normal path.
//!
//! Does I/O: reads manifest files and reads zones from providers (never writes).

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use tokio::runtime::Handle;
use tokio::task::JoinHandle;
use tracing::Instrument;
use zentralink_model::catalog::{Catalog, ConnectionEntry, ZoneEntry};
use zentralink_model::digest::{PlanDigest, zone_digest};
use zentralink_model::documents::{SourceFile, parse_documents};
use zentralink_model::resources::ProviderConnectionSpec;
use zentralink_model::{ZoneContent, ZoneName};
use zentralink_providers::credentials::CredentialSources;
use zentralink_providers::fsread::read_text;
use zentralink_providers::{Provider, ProviderError, connect_in};

use crate::source::directory::{MAX_MANIFEST_BYTES, manifest_files};

mod scan;
pub use scan::{FileScan, ScannedZone, scan_text};

/// The most zones read ahead: the first ones in the order `plan` takes them
/// (zone name). Each holds its zone's content until `plan` gets to it.
pub const MAX_PREFETCHED_READS: usize = 4;

/// What a provider answered for one zone.
pub type ZoneRead = Result<Option<ZoneContent>, ProviderError>;

/// A read ahead as [`ClaimedRead::wait`] gives it.
#[derive(Debug)]
pub struct ReadAhead {
    pub read: ZoneRead,
    /// The [`zone_digest`] of the content read, computed beside the load
    /// when the reads were started by [`Prefetch::start_digested`].
    pub digest: Option<PlanDigest>,
}

/// What the quick scan found under the manifest paths: the zones, and the
/// tenants and connections validated on their own.
#[derive(Debug, Default)]
pub struct Scan {
    pub zones: Vec<ScannedZone>,
    /// Only tenants and connections: the zones are not parsed.
    pub catalog: Catalog,
}

/// Scans every manifest under the paths. Files that cannot be read and
/// documents that do not validate are left out silently: the full load
/// reports them.
pub fn scan_manifests(paths: &[PathBuf]) -> Scan {
    let (files, _) = manifest_files(paths);
    let mut zones = Vec::new();
    let mut objects = Vec::new();
    for file in files {
        let Ok(text) = read_text(&file, MAX_MANIFEST_BYTES, "manifests") else {
            continue;
        };
        let scan = scan_text(&text);
        zones.extend(scan.zones);
        if !scan.head.is_empty() {
            // Named as the full load names it: a zone-file directory is
            // relative to its connection's file.
            let head = SourceFile::new(file.display().to_string(), scan.head);
            objects.extend(parse_documents(&head).0);
        }
    }
    Scan {
        zones,
        catalog: Catalog::build(objects).0,
    }
}

// ------------------------------------------------------------------ the reads

/// Everything a connection's provider is built from besides the credential
/// sources: a read started through one connection is used for another only
/// when all of it is equal.
#[derive(Debug, Clone, PartialEq)]
struct ConnectionIdentity {
    /// The tenant and the connection's namespace and name bind its `enc:v1` credentials.
    tenant: String,
    namespace: String,
    name: String,
    /// A zone-file directory is relative to the file and the root.
    file: String,
    files_root: Option<PathBuf>,
    /// Provider type, URL and settings, credentials reference, mode and limits.
    spec: ProviderConnectionSpec,
}

impl ConnectionIdentity {
    fn of(entry: &ConnectionEntry, files_root: Option<&Path>) -> Self {
        Self {
            tenant: entry.tenant.clone(),
            namespace: entry.namespace.clone(),
            name: entry.name.clone(),
            file: entry.origin.file.to_string(),
            files_root: files_root.map(Path::to_path_buf),
            spec: entry.spec.clone(),
        }
    }
}

/// (namespace, connection name, zone).
type ReadKey = (String, String, ZoneName);

struct StartedRead {
    connection: ConnectionIdentity,
    task: JoinHandle<ReadAhead>,
}

/// Zone reads started before the manifests were validated. Dropping it
/// aborts every read not taken.
#[derive(Default)]
pub struct Prefetch {
    reads: BTreeMap<ReadKey, StartedRead>,
    /// The providers the reads were started on, one per connection; `None`
    /// where building it failed (the normal path reports why).
    providers: Vec<(ConnectionIdentity, Option<Arc<dyn Provider>>)>,
}

impl fmt::Debug for Prefetch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Prefetch")
            .field("reads", &self.reads.keys().collect::<Vec<_>>())
            .field("providers", &self.providers.len())
            .finish()
    }
}

impl Prefetch {
    /// Scans the manifests under `paths` and starts, on `runtime`, the reads
    /// of the first [`MAX_PREFETCHED_READS`] zones found. Reports nothing:
    /// what it cannot do, the normal path does and reports.
    pub fn start(
        runtime: &Handle,
        paths: &[PathBuf],
        sources: &CredentialSources<'_>,
        files_root: Option<&Path>,
    ) -> Self {
        Self::from_scan(runtime, scan_manifests(paths), sources, files_root)
    }

    /// [`Prefetch::start`] for a reconcile pass: each read's content is
    /// digested as soon as it is read, while the manifests still load (the
    /// pass compares that digest with the zone's last applied state).
    pub fn start_digested(
        runtime: &Handle,
        paths: &[PathBuf],
        sources: &CredentialSources<'_>,
        files_root: Option<&Path>,
    ) -> Self {
        Self::reading(runtime, scan_manifests(paths), sources, files_root, true)
    }

    /// Starts the reads of a scan's zones: those whose connection the scan's
    /// catalog has and that lie under its tenant's allowed domains, the first
    /// [`MAX_PREFETCHED_READS`] by zone name.
    pub fn from_scan(
        runtime: &Handle,
        scan: Scan,
        sources: &CredentialSources<'_>,
        files_root: Option<&Path>,
    ) -> Self {
        Self::reading(runtime, scan, sources, files_root, false)
    }

    fn reading(
        runtime: &Handle,
        scan: Scan,
        sources: &CredentialSources<'_>,
        files_root: Option<&Path>,
        digest: bool,
    ) -> Self {
        let mut candidates: Vec<(ZoneName, &ConnectionEntry)> = scan
            .zones
            .iter()
            .filter_map(|z| {
                let zone = ZoneName::parse(&z.zone).ok()?;
                let connection = scan.catalog.connection(&z.namespace, &z.connection)?;
                let tenant = scan.catalog.tenants.get(&connection.tenant)?;
                let allowed = tenant.allowed_domains.iter().any(|d| zone.is_within(d));
                allowed.then_some((zone, connection))
            })
            .collect();
        candidates.sort_by(|(a, ca), (b, cb)| {
            (a, &ca.namespace, &ca.name).cmp(&(b, &cb.namespace, &cb.name))
        });
        // Providers are built inside the runtime, as on the normal path.
        let _inside = runtime.enter();
        let mut prefetch = Prefetch::default();
        for (zone, connection) in candidates {
            if prefetch.reads.len() >= MAX_PREFETCHED_READS {
                break;
            }
            let key = (
                connection.namespace.clone(),
                connection.name.clone(),
                zone.clone(),
            );
            if prefetch.reads.contains_key(&key) {
                continue;
            }
            let identity = ConnectionIdentity::of(connection, files_root);
            let Some(provider) = prefetch.provider_for(identity.clone(), || {
                connect_in(connection, sources, files_root)
                    .ok()
                    .map(Arc::<dyn Provider>::from)
            }) else {
                continue;
            };
            let span = tracing::debug_span!("prefetch", %zone);
            let task = runtime.spawn(
                async move {
                    let read = provider.read_zone(&zone).await;
                    let digest = match &read {
                        Ok(Some(content)) if digest => Some(zone_digest(content)),
                        _ => None,
                    };
                    ReadAhead { read, digest }
                }
                .instrument(span),
            );
            prefetch.reads.insert(
                key,
                StartedRead {
                    connection: identity,
                    task,
                },
            );
        }
        prefetch
    }

    fn provider_for(
        &mut self,
        identity: ConnectionIdentity,
        connect: impl FnOnce() -> Option<Arc<dyn Provider>>,
    ) -> Option<Arc<dyn Provider>> {
        if let Some((_, provider)) = self.providers.iter().find(|(i, _)| *i == identity) {
            return provider.clone();
        }
        // No more connections than reads are tried, failed ones included.
        if self.providers.len() >= MAX_PREFETCHED_READS {
            return None;
        }
        let provider = connect();
        self.providers.push((identity, provider.clone()));
        provider
    }

    /// The zones whose reads are in flight or done and not yet taken, as
    /// (namespace, connection, zone).
    pub fn pending(&self) -> impl Iterator<Item = (&str, &str, &ZoneName)> {
        self.reads
            .keys()
            .map(|(namespace, connection, zone)| (namespace.as_str(), connection.as_str(), zone))
    }

    /// How many of the reads not yet taken have finished (answered, failed
    /// or been aborted).
    pub fn finished(&self) -> usize {
        self.reads.values().filter(|r| r.task.is_finished()).count()
    }

    /// Aborts every read that no zone of the validated catalog can take.
    pub fn keep_only(&mut self, catalog: &Catalog, files_root: Option<&Path>) {
        self.reads.retain(|(namespace, name, zone), read| {
            let wanted = catalog.zones.iter().any(|z| {
                z.namespace == *namespace
                    && z.connection == *name
                    && z.zone == *zone
                    && catalog
                        .connection(namespace, name)
                        .is_some_and(|c| ConnectionIdentity::of(c, files_root) == read.connection)
            });
            if !wanted {
                tracing::debug!(%namespace, connection = %name, %zone, "read ahead aborted: the validated catalog has no such zone on that connection");
                read.task.abort();
            }
            wanted
        });
    }

    /// The answer read ahead for a validated zone on its validated
    /// connection, waiting for it if need be; `None` when there is none the
    /// zone can use (read it as usual then).
    pub async fn take(
        &mut self,
        zone: &ZoneEntry,
        connection: &ConnectionEntry,
        files_root: Option<&Path>,
    ) -> Option<ZoneRead> {
        Some(self.claim(zone, connection, files_root)?.wait().await?.read)
    }

    /// The read started for a validated zone on its validated connection,
    /// still in flight or done, to be waited for later (by another task);
    /// `None` when there is none the zone can use. Dropping it unwaited
    /// aborts the read.
    pub fn claim(
        &mut self,
        zone: &ZoneEntry,
        connection: &ConnectionEntry,
        files_root: Option<&Path>,
    ) -> Option<ClaimedRead> {
        let key = (
            zone.namespace.clone(),
            zone.connection.clone(),
            zone.zone.clone(),
        );
        let read = self.reads.remove(&key)?;
        if read.connection != ConnectionIdentity::of(connection, files_root) {
            tracing::debug!(zone = %zone.zone, "read ahead aborted: the validated connection differs");
            read.task.abort();
            return None;
        }
        Some(ClaimedRead {
            zone: zone.zone.clone(),
            task: Some(read.task),
        })
    }

    /// The provider the reads of a validated connection were started on, so
    /// that its rate and concurrency limits hold across all its reads.
    pub fn provider(
        &self,
        connection: &ConnectionEntry,
        files_root: Option<&Path>,
    ) -> Option<Arc<dyn Provider>> {
        let identity = ConnectionIdentity::of(connection, files_root);
        self.providers
            .iter()
            .find(|(i, _)| *i == identity)
            .and_then(|(_, p)| p.clone())
    }

    /// Aborts every read not taken; none of their answers is used.
    pub fn abort(mut self) {
        self.abort_all();
    }

    fn abort_all(&mut self) {
        for (_, read) in std::mem::take(&mut self.reads) {
            read.task.abort();
        }
    }
}

/// A read ahead claimed for one zone ([`Prefetch::claim`]).
#[derive(Debug)]
pub struct ClaimedRead {
    zone: ZoneName,
    task: Option<JoinHandle<ReadAhead>>,
}

impl ClaimedRead {
    /// The provider's answer, waiting for it if need be; `None` when the
    /// read did not finish (it panicked or was aborted).
    pub async fn wait(mut self) -> Option<ReadAhead> {
        let task = self.task.take()?;
        let taken = task.await.ok();
        tracing::debug!(zone = %self.zone, used = taken.is_some(), "read ahead taken");
        taken
    }
}

impl Drop for ClaimedRead {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            tracing::debug!(zone = %self.zone, "read ahead aborted: not wanted");
            task.abort();
        }
    }
}

impl Drop for Prefetch {
    fn drop(&mut self) {
        self.abort_all();
    }
}

#[cfg(test)]
mod tests {
    use k8s_openapi::jiff::Timestamp;
    use zentralink_model::secrets::{EncryptionKey, Keyring, SecretBinding, SecretString};
    use zentralink_providers::credentials::CredentialEnv;

    use super::*;
    use crate::planner::{plan_all, plan_all_prefetched};
    use crate::source::directory::load_catalog;

    const TENANT: &str = "apiVersion: dns.zentralink.net/v1alpha1\nkind: Tenant\nmetadata: { name: acme }\nspec: { displayName: Acme, namespaces: [acme], allowedDomains: [example.] }\n";

    fn connection(name: &str, directory: &Path) -> String {
        format!(
            "---\napiVersion: dns.zentralink.net/v1alpha1\nkind: ProviderConnection\nmetadata: {{ name: {name}, namespace: acme }}\nspec:\n  type: zonefile\n  zonefile: {{ directory: \"{}\" }}\n",
            directory.display()
        )
    }

    fn dns_zone(zone: &str, connection: &str) -> String {
        format!(
            "---\napiVersion: dns.zentralink.net/v1alpha1\nkind: DnsZone\nmetadata: {{ name: {}, namespace: acme }}\nspec:\n  zone: {zone}\n  providerRef: {{ name: {connection} }}\n  recordSets:\n    - {{ name: www, type: A, ttl: 300, values: [192.0.2.1] }}\n",
            zone.trim_end_matches('.').replace('.', "-")
        )
    }

    /// A directory of zone files, each holding `www A address`.
    fn zone_files(root: &Path, name: &str, zones: &[&str], address: &str) -> PathBuf {
        let dir = root.join(name);
        std::fs::create_dir_all(&dir).unwrap();
        for zone in zones {
            std::fs::write(
                dir.join(format!("{}zone", zone)),
                format!(
                    "$ORIGIN {zone}\n@ 3600 IN SOA ns1.example.net. hostmaster.example.net. 1 3600 600 1209600 300\n@ 3600 IN NS ns1.example.net.\nwww 300 IN A {address}\n"
                ),
            )
            .unwrap();
        }
        dir
    }

    /// The same catalog planned without and with the prefetch: both JSON reports.
    async fn plans(paths: &[PathBuf], prefetch: Prefetch) -> (String, String) {
        let (catalog, errors) = load_catalog(paths);
        assert!(errors.is_empty(), "{errors}");
        let sources = CredentialSources::default();
        let now = Timestamp::now();
        let usual = plan_all(&catalog, &sources, None, None, now).await;
        let prefetched = plan_all_prefetched(&catalog, &sources, None, None, now, prefetch).await;
        (
            serde_json::to_string_pretty(&usual).unwrap(),
            serde_json::to_string_pretty(&prefetched).unwrap(),
        )
    }

    fn pending(prefetch: &Prefetch) -> Vec<String> {
        prefetch
            .pending()
            .map(|(namespace, connection, zone)| format!("{namespace}/{connection} {zone}"))
            .collect()
    }

    fn changes(report: &str) -> usize {
        let json: serde_json::Value = serde_json::from_str(report).unwrap();
        json["zones"][0]["changes"].as_array().map_or(0, Vec::len)
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_read_the_validated_catalog_agrees_with_is_used() {
        let dir = tempfile::tempdir().unwrap();
        let files = zone_files(dir.path(), "files", &["a.example."], "192.0.2.1");
        let manifest = dir.path().join("zones.yaml");
        std::fs::write(
            &manifest,
            format!(
                "{TENANT}{}{}",
                connection("p", &files),
                dns_zone("a.example.", "p")
            ),
        )
        .unwrap();
        let paths = vec![manifest];
        let sources = CredentialSources::default();

        let mut prefetch = Prefetch::start(&Handle::current(), &paths, &sources, None);
        assert_eq!(pending(&prefetch), ["acme/p a.example."]);
        let (catalog, _) = load_catalog(&paths);
        let (zone, conn) = (&catalog.zones[0], catalog.connection("acme", "p").unwrap());
        assert!(prefetch.provider(conn, None).is_some());
        let read = prefetch.take(zone, conn, None).await;
        let content = read.expect("the prefetched read").unwrap().unwrap();
        assert_eq!(content.len(), 3, "SOA, NS and www A");
        assert!(
            prefetch.take(zone, conn, None).await.is_none(),
            "taken once"
        );

        let prefetch = Prefetch::start(&Handle::current(), &paths, &sources, None);
        let (usual, prefetched) = plans(&paths, prefetch).await;
        assert_eq!(prefetched, usual);
        assert_eq!(changes(&usual), 0);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_wrong_scan_is_read_again_from_the_validated_connection() {
        let dir = tempfile::tempdir().unwrap();
        let old = zone_files(dir.path(), "old", &["a.example."], "192.0.2.99");
        let new = zone_files(dir.path(), "new", &["a.example."], "192.0.2.1");
        let manifest = dir.path().join("zones.yaml");
        std::fs::write(
            &manifest,
            format!(
                "{TENANT}{}{}{}",
                connection("old", &old),
                connection("new", &new),
                dns_zone("a.example.", "new")
            ),
        )
        .unwrap();
        let paths = vec![manifest];
        let mut scan = scan_manifests(&paths);
        assert_eq!(scan.zones[0].connection, "new");
        // The scan guessed the other connection.
        scan.zones[0].connection = "old".into();
        let sources = CredentialSources::default();
        let prefetch = Prefetch::from_scan(&Handle::current(), scan, &sources, None);
        assert_eq!(pending(&prefetch), ["acme/old a.example."]);

        let (usual, prefetched) = plans(&paths, prefetch).await;
        assert_eq!(prefetched, usual);
        assert_eq!(
            changes(&prefetched),
            0,
            "read from `new`, not `old`: {prefetched}"
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_connection_changed_after_the_scan_is_read_again() {
        let dir = tempfile::tempdir().unwrap();
        let before = zone_files(dir.path(), "before", &["a.example."], "192.0.2.99");
        let after = zone_files(dir.path(), "after", &["a.example."], "192.0.2.1");
        let manifest = dir.path().join("zones.yaml");
        let write = |files: &Path| {
            std::fs::write(
                &manifest,
                format!(
                    "{TENANT}{}{}",
                    connection("p", files),
                    dns_zone("a.example.", "p")
                ),
            )
            .unwrap();
        };
        write(&before);
        let paths = vec![manifest.clone()];
        let sources = CredentialSources::default();
        let mut prefetch = Prefetch::start(&Handle::current(), &paths, &sources, None);
        assert_eq!(pending(&prefetch), ["acme/p a.example."]);
        // The file changes between the scan and the load.
        write(&after);

        let (catalog, _) = load_catalog(&paths);
        let (zone, conn) = (&catalog.zones[0], catalog.connection("acme", "p").unwrap());
        assert!(prefetch.provider(conn, None).is_none());
        assert!(prefetch.take(zone, conn, None).await.is_none());

        let prefetch = Prefetch::start(&Handle::current(), &paths, &sources, None);
        write(&before);
        let (usual, prefetched) = plans(&paths, prefetch).await;
        assert_eq!(prefetched, usual);
        assert_eq!(changes(&prefetched), 1, "www from `before`: {prefetched}");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn zones_the_scan_misses_or_cannot_read_ahead_are_read_as_usual() {
        let dir = tempfile::tempdir().unwrap();
        let files = zone_files(
            dir.path(),
            "files",
            &["a.example.", "b.example."],
            "192.0.2.1",
        );
        let manifest = dir.path().join("zones.yaml");
        // a.example.: its name on the line after its key, which the scan
        // does not look at; b.example.: found.
        let hidden = "---\napiVersion: dns.zentralink.net/v1alpha1\nkind: DnsZone\nmetadata: { name: a, namespace: acme }\nspec:\n  zone:\n    a.example.\n  providerRef: { name: p }\n  recordSets:\n    - { name: www, type: A, ttl: 300, values: [192.0.2.1] }\n";
        std::fs::write(
            &manifest,
            format!(
                "{TENANT}{}{hidden}{}",
                connection("p", &files),
                dns_zone("b.example.", "p")
            ),
        )
        .unwrap();
        let paths = vec![manifest];
        let sources = CredentialSources::default();
        let prefetch = Prefetch::start(&Handle::current(), &paths, &sources, None);
        assert_eq!(pending(&prefetch), ["acme/p b.example."]);
        let (usual, prefetched) = plans(&paths, prefetch).await;
        assert_eq!(prefetched, usual);
        assert!(usual.contains("\"zone\": \"a.example.\""), "{usual}");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn only_zones_the_connections_may_serve_are_read_ahead_the_first_by_name() {
        let dir = tempfile::tempdir().unwrap();
        let files = dir.path().join("files");
        let mut text = format!("{TENANT}{}", connection("p", &files));
        for zone in ["f", "e", "d", "c", "b", "a"] {
            text.push_str(&dns_zone(&format!("{zone}.example."), "p"));
        }
        // Outside the tenant's domains, and on a connection that is not declared.
        text.push_str(&dns_zone("a.other.", "p"));
        text.push_str(&dns_zone("0.example.", "missing"));
        let manifest = dir.path().join("zones.yaml");
        std::fs::write(&manifest, text).unwrap();
        let sources = CredentialSources::default();
        let prefetch = Prefetch::start(&Handle::current(), &[manifest], &sources, None);
        assert_eq!(
            pending(&prefetch),
            [
                "acme/p a.example.",
                "acme/p b.example.",
                "acme/p c.example.",
                "acme/p d.example."
            ]
        );
        prefetch.abort();
    }

    /// A reconcile pass claims a zone's read when it schedules the zone and
    /// waits for it later; the digest comes with it (computed beside the
    /// load) and is the content's; a claim dropped unwaited is aborted.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn claimed_reads_carry_their_digest_and_are_claimed_once() {
        let dir = tempfile::tempdir().unwrap();
        let files = zone_files(
            dir.path(),
            "files",
            &["a.example.", "b.example."],
            "192.0.2.1",
        );
        let manifest = dir.path().join("zones.yaml");
        std::fs::write(
            &manifest,
            format!(
                "{TENANT}{}{}{}",
                connection("p", &files),
                dns_zone("a.example.", "p"),
                dns_zone("b.example.", "p")
            ),
        )
        .unwrap();
        let paths = vec![manifest];
        let sources = CredentialSources::default();
        let mut prefetch = Prefetch::start_digested(&Handle::current(), &paths, &sources, None);
        for _ in 0..500 {
            if prefetch.finished() == 2 {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        assert_eq!(prefetch.finished(), 2, "both reads answered");
        let (catalog, _) = load_catalog(&paths);
        let conn = catalog.connection("acme", "p").unwrap();
        let claimed = prefetch
            .claim(&catalog.zones[0], conn, None)
            .expect("a read ahead");
        assert!(
            prefetch.claim(&catalog.zones[0], conn, None).is_none(),
            "claimed once"
        );
        assert_eq!(prefetch.finished(), 1, "the claimed read left the prefetch");
        let ahead = claimed.wait().await.expect("answered");
        let content = ahead.read.unwrap().unwrap();
        assert_eq!(ahead.digest, Some(zone_digest(&content)));
        drop(
            prefetch
                .claim(&catalog.zones[1], conn, None)
                .expect("a read ahead"),
        );
        assert!(prefetch.pending().next().is_none());

        // Reads started for `plan` are not digested.
        let mut prefetch = Prefetch::start(&Handle::current(), &paths, &sources, None);
        let ahead = prefetch
            .claim(&catalog.zones[0], conn, None)
            .expect("a read ahead")
            .wait()
            .await
            .expect("answered");
        assert!(ahead.read.unwrap().is_some());
        assert_eq!(ahead.digest, None);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn encrypted_credentials_are_opened_only_for_their_own_connection() {
        let key = EncryptionKey::from_bytes([7; 32]);
        let keyring = Keyring::new(key, None);
        let secret = SecretString::new("pdns-key");
        let sealed_for = |name: &str| {
            keyring.seal(
                &secret,
                &SecretBinding::connection("acme", "acme", name),
                [1; 12],
            )
        };
        let pdns = |name: &str, sealed: &str| {
            format!(
                "---\napiVersion: dns.zentralink.net/v1alpha1\nkind: ProviderConnection\nmetadata: {{ name: {name}, namespace: acme }}\nspec:\n  type: powerdns\n  powerdns: {{ url: \"http://127.0.0.1:9\" }}\n  credentials: {{ value: \"{sealed}\" }}\n"
            )
        };
        let dir = tempfile::tempdir().unwrap();
        let manifest = dir.path().join("zones.yaml");
        std::fs::write(
            &manifest,
            format!(
                "{TENANT}{}{}{}{}",
                pdns("own", &sealed_for("own")),
                pdns("copied", &sealed_for("own")),
                dns_zone("a.example.", "own"),
                dns_zone("b.example.", "copied")
            ),
        )
        .unwrap();
        let paths = vec![manifest];
        let env = CredentialEnv::default();
        let sources = CredentialSources {
            keyring: Ok(&keyring),
            secrets: None,
            env: &env,
        };
        let prefetch = Prefetch::start(&Handle::current(), &paths, &sources, None);
        assert_eq!(pending(&prefetch), ["acme/own a.example."]);
        let (catalog, _) = load_catalog(&paths);
        assert!(
            prefetch
                .provider(catalog.connection("acme", "own").unwrap(), None)
                .is_some()
        );
        assert!(
            prefetch
                .provider(catalog.connection("acme", "copied").unwrap(), None)
                .is_none()
        );
        prefetch.abort();
    }
}
