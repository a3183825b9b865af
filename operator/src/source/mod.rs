//! Sources of desired state behind one trait: a directory of manifests, a
//! git repository (Kubernetes later). A source reads a revision, validates
//! it, and says who asked for each zone. Does I/O.

pub mod directory;
pub mod git;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use async_trait::async_trait;
use zentralink_model::catalog::Catalog;
use zentralink_model::diagnostics::Diagnostics;

/// One validated revision of the desired state.
#[derive(Debug, Clone)]
pub struct Revision {
    /// What was read: `main@sha1:<commit>` (git), `dir@sha256:<digest of the manifests>` (directory).
    pub id: String,
    /// Shared, so that a pass's zones borrow it instead of copying their entries.
    pub catalog: Arc<Catalog>,
    /// Who asked for each zone's current declaration, by (namespace, DnsZone name):
    /// the author of the commit that last changed its document (git).
    pub requesters: BTreeMap<(String, String), String>,
    /// The requester of what has no entry in `requesters`.
    pub default_requester: String,
    /// Where relative zone-file directories resolve: `None` when manifest
    /// names are real paths (directory source), else the root they are relative to.
    pub files_root: Option<PathBuf>,
    /// For every manifest file (by its name as in the catalog's origins), the
    /// commit that last changed it (git sources; empty for a directory).
    pub changes: BTreeMap<String, FileChange>,
}

/// The commit that last changed a manifest file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileChange {
    /// `Name <email>` of the author.
    pub author: String,
    /// The commit id (40 hex digits).
    pub commit: String,
    /// The commit's SSH or OpenPGP signature and the bytes it signs, when signed.
    pub signature: Option<(String, Vec<u8>)>,
}

/// The prefix of revisions read from the Kubernetes API: there, the API
/// server authenticated whoever changed an object and the admission webhook
/// stamped their name, so requesters need no commit signature.
pub const KUBERNETES_REVISION_PREFIX: &str = "kubernetes:";

impl Revision {
    /// Whether the requesters of this revision were authenticated by the
    /// source itself (the Kubernetes API), so `requireSignedCommits` (a git
    /// rule) has nothing to check.
    pub fn requesters_authenticated(&self) -> bool {
        self.id.starts_with(KUBERNETES_REVISION_PREFIX)
    }

    /// The commit that last changed the file an object was read from.
    pub fn change_of(&self, file: &str) -> Option<&FileChange> {
        self.changes.get(file)
    }

    /// Who asked for the zone `namespace/name` as declared now.
    pub fn requester(&self, namespace: &str, name: &str) -> &str {
        self.requesters
            .get(&(namespace.to_owned(), name.to_owned()))
            .map_or(self.default_requester.as_str(), String::as_str)
    }
}

/// Why a source gave no revision. Either way the last good revision stays in force.
#[derive(Debug, Clone, thiserror::Error)]
pub enum SourceError {
    /// The source could not be read (repository unreachable, directory missing).
    #[error("cannot read {origin}: {message}")]
    Unreachable { origin: String, message: String },
    /// The revision was read but its documents do not validate.
    #[error("{revision} of {origin} does not validate ({} error(s)):\n{errors}", errors.len())]
    Invalid {
        origin: String,
        revision: String,
        errors: Diagnostics,
    },
}

impl SourceError {
    /// The revision that was read, when it was.
    pub fn revision(&self) -> Option<&str> {
        match self {
            SourceError::Unreachable { .. } => None,
            SourceError::Invalid { revision, .. } => Some(revision),
        }
    }
}

/// What a fetch found, given the revision in force.
#[derive(Debug)]
pub enum Fetched {
    /// The source is still at the revision in force; nothing was parsed.
    Unchanged,
    /// Another revision, read and validated.
    New(Revision),
}

/// A source of desired state.
#[async_trait]
pub trait Source: Send + Sync + std::fmt::Debug {
    /// A stable name for status and metrics: `dir:/srv/zones`, `git:https://host/zones.git#main:zones`.
    fn name(&self) -> String;
    /// Reads (fetching first, when remote) and validates the current revision.
    async fn fetch(&self) -> Result<Revision, SourceError>;
    /// [`Source::fetch`], unless the source is still at `in_force` (a
    /// revision id): then nothing is parsed or validated, so a long-running
    /// operator never holds a second copy of an unchanged catalog. Sources
    /// that can tell their revision before parsing (a commit id, a digest of
    /// the files) say so; the default reads and compares.
    async fn fetch_if_changed(&self, in_force: Option<&str>) -> Result<Fetched, SourceError> {
        let revision = self.fetch().await?;
        Ok(if in_force == Some(revision.id.as_str()) {
            Fetched::Unchanged
        } else {
            Fetched::New(revision)
        })
    }
}
