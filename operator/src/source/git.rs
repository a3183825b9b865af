//! A git repository as a source of desired state. Does I/O: the network
//! (fetching with libgit2 through `git2`) and one local bare clone per source
//! under the caller's state directory.
//!
//! What a fetch does:
//! - fetches the configured branch or tag into the local clone with a force
//!   refspec (`+refs/heads/main:refs/heads/main`), so a force-pushed branch
//!   is followed, and takes the commit the server advertises for it; no
//!   redirect is followed and no proxy is used. This module reads no
//!   environment variable (libgit2 itself still reads the user's and the
//!   system's git configuration, and `~/.ssh/known_hosts` for
//!   [`HostKeyCheck::UserKnownHosts`]);
//! - reads the manifests straight from that commit's tree, never from a
//!   working tree: every `*.yaml` / `*.yml` blob under the configured
//!   sub-directory, skipping hidden path components, refusing symbolic links
//!   (to manifests or to directories) and submodules, blobs larger than
//!   [`MAX_MANIFEST_BYTES`] and more than [`MAX_MANIFEST_FILES`] files. Each
//!   file is named by its path in the repository (`acme/providers.yaml`), so
//!   errors read `acme/providers.yaml:14: spec...`;
//! - validates them like a directory source, and names each zone's requester
//!   (see [`GitSource`] for the rule).
//!
//! Credentials (a token, an SSH key file and its passphrase) are values given
//! by the caller; a token never appears in a message, in [`GitSource`]'s
//! `Debug` or in [`Source::name`].

use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, BTreeSet, BinaryHeap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};

use git2::cert::Cert;
use git2::{
    AutotagOption, CertificateCheckStatus, Commit, Cred, CredentialType, ErrorClass, ErrorCode,
    FetchOptions, ObjectType, Oid, RemoteCallbacks, RemoteRedirect, Repository,
    RepositoryInitOptions, Tree,
};
use sha2::{Digest, Sha256};
use zentralink_model::catalog::{Catalog, CatalogBuilder};
use zentralink_model::diagnostics::{Diagnostic, Diagnostics};
use zentralink_model::documents::{SourceFile, parse_documents};
use zentralink_model::secrets::{REDACTED, SecretString};
use zentralink_providers::fsread::ReadError;

use super::directory::{MAX_DIRECTORY_DEPTH, MAX_MANIFEST_BYTES, MAX_MANIFEST_FILES};
use super::{Fetched, Revision, Source, SourceError};

/// The branch read when none is given.
pub const DEFAULT_REFERENCE: &str = "main";
/// The user name sent with a token when none is given (GitHub and Gitea take
/// any name with a token; GitLab wants `oauth2`).
pub const DEFAULT_TOKEN_USERNAME: &str = "x-access-token";
/// The user name of SSH URLs that name none (`ssh://host/zones.git`).
pub const DEFAULT_SSH_USERNAME: &str = "git";
/// The largest known_hosts file read.
const MAX_KNOWN_HOSTS_BYTES: u64 = 4 << 20;
/// The largest symbolic link target read when checking where a link points.
const MAX_LINK_TARGET_BYTES: usize = 4096;
/// How many links in a row are followed to see whether one leads to a directory.
const MAX_LINK_HOPS: usize = 8;

// Git's file modes (what `git ls-tree` prints).
const MODE_TREE: i32 = 0o040000;
const MODE_LINK: i32 = 0o120000;
const MODE_SUBMODULE: i32 = 0o160000;

/// Where and what to read, and how to authenticate. Build it with
/// [`GitSourceOptions::new`] and the `with_*` methods.
#[derive(Debug, Clone)]
pub struct GitSourceOptions {
    /// The repository: `file:///srv/zones.git` or a local path,
    /// `https://host/zones.git`, `ssh://git@host:2222/zones.git` or
    /// `git@host:zones.git`, `git://host/zones.git` (anonymous, read-only).
    /// `http://` is accepted too, but a token is sent over it only to a
    /// loopback address. A password in the URL is refused: pass a token.
    pub url: String,
    /// A branch or a tag name (`main`, `v1.4`), or a full reference name
    /// (`refs/heads/main`). A name that is both a branch and a tag is the branch.
    pub reference: String,
    /// The sub-directory of the repository whose manifests are read (`zones`);
    /// `None` reads the whole repository.
    pub path: Option<String>,
    pub credentials: GitCredentials,
    /// How SSH host keys are checked (ignored for other transports).
    pub host_keys: HostKeyCheck,
    /// Where the local clone is kept: `state_dir/git/<sha256 of "url#reference">`.
    pub state_dir: PathBuf,
    /// Put in [`Revision::files_root`]: relative zone-file directories of
    /// `type: zonefile` connections resolve against
    /// `files_root/<the manifest's repository path>/..`. Set it to where those
    /// files are (a checkout of the same repository, kept by whoever needs it);
    /// `None` resolves them against the process's working directory.
    pub files_root: Option<PathBuf>,
}

impl GitSourceOptions {
    /// The branch [`DEFAULT_REFERENCE`] of `url`, the whole repository, no
    /// credentials, host keys checked by libgit2 against the user's known_hosts.
    pub fn new(url: impl Into<String>, state_dir: impl Into<PathBuf>) -> Self {
        Self {
            url: url.into(),
            reference: DEFAULT_REFERENCE.to_owned(),
            path: None,
            credentials: GitCredentials::Anonymous,
            host_keys: HostKeyCheck::default(),
            state_dir: state_dir.into(),
            files_root: None,
        }
    }

    pub fn with_reference(mut self, reference: impl Into<String>) -> Self {
        self.reference = reference.into();
        self
    }

    pub fn with_path(mut self, path: impl Into<String>) -> Self {
        self.path = Some(path.into());
        self
    }

    pub fn with_credentials(mut self, credentials: GitCredentials) -> Self {
        self.credentials = credentials;
        self
    }

    pub fn with_host_keys(mut self, host_keys: HostKeyCheck) -> Self {
        self.host_keys = host_keys;
        self
    }

    pub fn with_files_root(mut self, files_root: impl Into<PathBuf>) -> Self {
        self.files_root = Some(files_root.into());
        self
    }
}

/// How the source proves who it is to the server.
#[derive(Debug, Clone, Default)]
pub enum GitCredentials {
    /// No credentials: public repositories, `file://`, `git://`.
    #[default]
    Anonymous,
    /// HTTP basic authentication with a token as the password (`https://`).
    Token {
        username: String,
        token: SecretString,
    },
    /// An SSH private key file (`ssh://`, `user@host:path`), OpenSSH or PEM
    /// format, with its passphrase when it has one. The user is the URL's,
    /// else [`DEFAULT_SSH_USERNAME`].
    SshKey {
        private_key: PathBuf,
        passphrase: Option<SecretString>,
    },
}

impl GitCredentials {
    /// A token sent with the user name [`DEFAULT_TOKEN_USERNAME`] (or the URL's).
    pub fn token(token: SecretString) -> Self {
        GitCredentials::Token {
            username: DEFAULT_TOKEN_USERNAME.to_owned(),
            token,
        }
    }

    /// A private key file without a passphrase.
    pub fn ssh_key(private_key: impl Into<PathBuf>) -> Self {
        GitCredentials::SshKey {
            private_key: private_key.into(),
            passphrase: None,
        }
    }

    fn secrets(&self) -> impl Iterator<Item = &str> {
        let (token, passphrase) = match self {
            GitCredentials::Anonymous => (None, None),
            GitCredentials::Token { token, .. } => (Some(token), None),
            GitCredentials::SshKey { passphrase, .. } => (None, passphrase.as_ref()),
        };
        token
            .into_iter()
            .chain(passphrase)
            .map(SecretString::expose)
            .filter(|s| !s.is_empty())
    }
}

/// How an SSH server's host key is checked.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum HostKeyCheck {
    /// libgit2's own check, against the known_hosts file of the user running
    /// the process (`~/.ssh/known_hosts`).
    #[default]
    UserKnownHosts,
    /// Only a key this OpenSSH known_hosts file lists for the host (plain or
    /// hashed names, `[host]:port` for other ports than 22, patterns with `*`,
    /// `?` and `!`) is accepted, and never one marked `@revoked`.
    KnownHostsFile(PathBuf),
}

/// Why a [`GitSource`] could not be set up. Nothing here holds a credential.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GitConfigError {
    #[error(
        "{0:?} is not a repository URL this source reads: use file:///path or a local path, https://host/repo.git, ssh://user@host/repo.git, user@host:repo.git or git://host/repo.git"
    )]
    UnsupportedUrl(String),
    #[error(
        "the repository URL holds a password; remove it and pass the token as the source's credentials, so it is never shown with the URL"
    )]
    PasswordInUrl,
    #[error(
        "a token is sent only over https:// (or http:// to a loopback address such as 127.0.0.1); {0} would send it in clear text"
    )]
    TokenNeedsHttps(String),
    #[error("a token authenticates https:// repositories only; {0} does not use HTTP")]
    TokenNeedsHttp(String),
    #[error(
        "an SSH key authenticates ssh:// and user@host:path repositories only; {0} does not use SSH"
    )]
    KeyNeedsSsh(String),
    #[error(
        "{0:?} is not a branch or tag name git accepts (for example main, release/1.4, v1.4 or refs/heads/main)"
    )]
    InvalidReference(String),
    #[error(
        "{0:?} is not a sub-directory of the repository: give a relative path such as zones or teams/acme, without . or .. components"
    )]
    InvalidPath(String),
}

/// Who wrote or committed a commit, as git recorded it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GitPerson {
    pub name: String,
    pub email: String,
    /// Seconds since the Unix epoch.
    pub time: i64,
    /// The recorded time zone, in minutes east of UTC.
    pub offset_minutes: i32,
}

impl GitPerson {
    /// `Name <email>`: how requesters are named.
    pub fn identity(&self) -> String {
        format!("{} <{}>", self.name, self.email)
    }

    /// The recorded time in its recorded time zone.
    pub fn when(&self) -> Option<chrono::DateTime<chrono::FixedOffset>> {
        let offset = chrono::FixedOffset::east_opt(self.offset_minutes.checked_mul(60)?)?;
        Some(chrono::DateTime::from_timestamp(self.time, 0)?.with_timezone(&offset))
    }

    fn from_git(signature: &git2::Signature<'_>) -> Self {
        let when = signature.when();
        Self {
            name: String::from_utf8_lossy(signature.name_bytes()).into_owned(),
            email: String::from_utf8_lossy(signature.email_bytes()).into_owned(),
            time: when.seconds(),
            offset_minutes: when.offset_minutes(),
        }
    }
}

/// A commit's signature (the `gpgsig` header) and the bytes it signs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommitSignature {
    /// The armored signature: `-----BEGIN SSH SIGNATURE-----...` for SSH
    /// signatures, `-----BEGIN PGP SIGNATURE-----...` for OpenPGP ones.
    pub signature: Vec<u8>,
    /// The commit object without its `gpgsig` header: what was signed.
    pub signed_data: Vec<u8>,
}

impl CommitSignature {
    /// Whether this is an SSH signature (`git config gpg.format ssh`).
    pub fn is_ssh(&self) -> bool {
        self.signature.starts_with(b"-----BEGIN SSH SIGNATURE-----")
    }
}

/// The commit a revision was read from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommitInfo {
    /// 40 hexadecimal digits.
    pub id: String,
    pub author: GitPerson,
    pub committer: GitPerson,
    /// The first line of the message.
    pub summary: String,
    /// `None` when the commit is not signed.
    pub signature: Option<CommitSignature>,
}

/// A branch or tag of a git repository as a source of desired state.
///
/// Requesters: a zone's requester is the author of the commit that last
/// changed the file holding its `DnsZone` document, found the way
/// `git log -1 -- <file>` finds it. From the revision's commit the file is
/// followed into the first parent where it is identical (so a merge that
/// only brought the change in passes it on to the branch that made it); the
/// first commit where it differs from every parent, or that has no parent,
/// is the one that changed it. History is walked once, newest commit first,
/// for all zone files together, and only as far back as the oldest of those
/// changes; unchanged directories are compared by id, not read. The
/// revision's default requester is the author of its commit.
///
/// One fetch at a time runs per source (the local clone is locked); the git
/// work runs on tokio's blocking threads.
#[derive(Debug, Clone)]
pub struct GitSource {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    options: GitSourceOptions,
    remote: RemoteUrl,
    /// The sub-directory, normalized (`zones/acme`), or empty for the whole repository.
    path: String,
    mirror_dir: PathBuf,
    mirror_lock: Mutex<()>,
}

impl GitSource {
    /// Checks the options (URL, reference, sub-directory, that the
    /// credentials fit the URL); touches neither the network nor the disk.
    pub fn new(options: GitSourceOptions) -> Result<Self, GitConfigError> {
        let remote = RemoteUrl::parse(&options.url)?;
        check_credentials(&remote, &options.credentials)?;
        check_reference(&options.reference)?;
        let path = normalize_sub_directory(options.path.as_deref())?;
        let mirror_dir = options
            .state_dir
            .join("git")
            .join(mirror_name(&options.url, &options.reference));
        Ok(Self {
            inner: Arc::new(Inner {
                options,
                remote,
                path,
                mirror_dir,
                mirror_lock: Mutex::new(()),
            }),
        })
    }

    /// The local bare clone.
    pub fn mirror_dir(&self) -> &Path {
        &self.inner.mirror_dir
    }

    /// Fetches, then reads and validates the reference's commit; returns the
    /// revision and the commit it was read from.
    pub async fn fetch_with_commit(&self) -> Result<(Revision, CommitInfo), SourceError> {
        let inner = Arc::clone(&self.inner);
        self.blocking(move || inner.fetch_and_read()).await
    }

    /// Reads and validates a commit already in the local clone, without
    /// fetching: the revision in force before a restart. `commit` is the
    /// 40-digit commit id or a revision id of this source (`main@sha1:<id>`).
    pub async fn fetch_commit(&self, commit: &str) -> Result<Revision, SourceError> {
        self.fetch_commit_with_info(commit)
            .await
            .map(|(revision, _)| revision)
    }

    /// [`GitSource::fetch_commit`] with the commit's details.
    pub async fn fetch_commit_with_info(
        &self,
        commit: &str,
    ) -> Result<(Revision, CommitInfo), SourceError> {
        let inner = Arc::clone(&self.inner);
        let commit = commit.to_owned();
        self.blocking(move || inner.read_known_commit(&commit))
            .await
    }

    async fn blocking<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> Result<T, SourceError> + Send + 'static,
    ) -> Result<T, SourceError> {
        tokio::task::spawn_blocking(work).await.map_err(|e| {
            self.inner
                .unreachable(format!("reading the repository stopped: {e}"))
        })?
    }
}

#[async_trait::async_trait]
impl Source for GitSource {
    /// `git:<url>#<reference>`, then `:<sub-directory>` when one is read.
    fn name(&self) -> String {
        self.inner.name()
    }

    async fn fetch(&self) -> Result<Revision, SourceError> {
        self.fetch_with_commit().await.map(|(revision, _)| revision)
    }

    /// Fetches; the commit's tree is read and validated only when the
    /// reference moved away from the revision in force.
    async fn fetch_if_changed(&self, in_force: Option<&str>) -> Result<Fetched, SourceError> {
        let inner = Arc::clone(&self.inner);
        let in_force = in_force.map(str::to_owned);
        let read = self
            .blocking(move || inner.fetch_and_read_unless(in_force.as_deref()))
            .await?;
        Ok(match read {
            Some((revision, _)) => Fetched::New(revision),
            None => Fetched::Unchanged,
        })
    }
}

impl Inner {
    fn name(&self) -> String {
        let mut name = format!("git:{}#{}", self.options.url, self.options.reference);
        if !self.path.is_empty() {
            name.push(':');
            name.push_str(&self.path);
        }
        name
    }

    /// An `Unreachable` error whose message has every credential blanked out.
    fn unreachable(&self, message: impl Into<String>) -> SourceError {
        let mut message = message.into();
        for secret in self.options.credentials.secrets() {
            if message.contains(secret) {
                message = message.replace(secret, REDACTED);
            }
        }
        SourceError::Unreachable {
            origin: self.name(),
            message,
        }
    }

    fn revision_id(&self, commit: Oid) -> String {
        format!("{}@sha1:{commit}", self.options.reference)
    }

    /// The reference names the configured one may be on the server, in order of preference.
    fn candidate_refs(&self) -> Vec<String> {
        let reference = &self.options.reference;
        if reference.starts_with("refs/") {
            vec![reference.clone()]
        } else {
            vec![
                format!("refs/heads/{reference}"),
                format!("refs/tags/{reference}"),
            ]
        }
    }

    fn fetch_and_read(&self) -> Result<(Revision, CommitInfo), SourceError> {
        let _clone = self
            .mirror_lock
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let repo = open_or_create_mirror(&self.mirror_dir).map_err(|m| self.unreachable(m))?;
        let commit = self.fetch_reference(&repo)?;
        self.read_revision(&repo, commit)
    }

    /// [`Inner::fetch_and_read`], or `None` when the fetched commit is the
    /// revision `in_force` (nothing is read).
    fn fetch_and_read_unless(
        &self,
        in_force: Option<&str>,
    ) -> Result<Option<(Revision, CommitInfo)>, SourceError> {
        let _clone = self
            .mirror_lock
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let repo = open_or_create_mirror(&self.mirror_dir).map_err(|m| self.unreachable(m))?;
        let commit = self.fetch_reference(&repo)?;
        if in_force == Some(self.revision_id(commit).as_str()) {
            return Ok(None);
        }
        self.read_revision(&repo, commit).map(Some)
    }

    fn read_known_commit(&self, commit: &str) -> Result<(Revision, CommitInfo), SourceError> {
        let hex = commit.rsplit_once("@sha1:").map_or(commit, |(_, hex)| hex);
        let id = (hex.len() == 40 && hex.bytes().all(|b| b.is_ascii_hexdigit()))
            .then(|| Oid::from_str(hex).ok())
            .flatten()
            .ok_or_else(|| {
                self.unreachable(format!(
                    "{:?} is not a commit id: give its 40 hexadecimal digits or a revision id such as {}",
                    zentralink_model::secrets::shorten(commit, 100),
                    self.revision_id(Oid::ZERO_SHA1)
                ))
            })?;
        let _clone = self
            .mirror_lock
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let repo = Repository::open_bare(&self.mirror_dir).map_err(|e| {
            self.unreachable(format!(
                "there is no local clone at {} to read commit {id} from ({}); fetch first",
                self.mirror_dir.display(),
                e.message()
            ))
        })?;
        if repo.find_commit(id).is_err() {
            return Err(self.unreachable(format!(
                "commit {id} is not in the local clone at {}; it was never fetched by this source",
                self.mirror_dir.display()
            )));
        }
        self.read_revision(&repo, id)
    }

    /// Fetches the reference and returns the commit the server advertises for it.
    fn fetch_reference(&self, repo: &Repository) -> Result<Oid, SourceError> {
        if let GitCredentials::SshKey { private_key, .. } = &self.options.credentials
            && let Err(e) = std::fs::metadata(private_key)
        {
            return Err(self.unreachable(format!(
                "cannot read the SSH private key {}: {e}",
                private_key.display()
            )));
        }
        let mut remote = repo
            .remote_anonymous(&self.remote.for_libgit2)
            .map_err(|e| {
                self.unreachable(format!("the repository URL is not usable: {}", e.message()))
            })?;
        let candidates = self.candidate_refs();
        let refspecs: Vec<String> = candidates.iter().map(|r| format!("+{r}:{r}")).collect();
        let credential_requests = Cell::new(0u32);
        // Why a callback refused, kept because libgit2 may replace the
        // message of the error a callback returns with its own.
        let refusal: RefCell<Option<String>> = RefCell::new(None);
        let refused = |message: String| {
            let error = git2::Error::from_str(&message);
            *refusal.borrow_mut() = Some(message);
            error
        };
        let mut callbacks = RemoteCallbacks::new();
        callbacks.credentials(|_url, username_from_url, allowed| {
            self.credentials_for(&credential_requests, username_from_url, allowed)
                .map_err(|e| refused(e.message().to_owned()))
        });
        callbacks.certificate_check(|cert, _host| {
            self.check_certificate(cert)
                .map_err(|e| refused(e.message().to_owned()))
        });
        let mut options = FetchOptions::new();
        options
            .remote_callbacks(callbacks)
            .download_tags(AutotagOption::None)
            .follow_redirects(RemoteRedirect::None)
            .update_fetchhead(false);
        remote
            .fetch(&refspecs, Some(&mut options), None)
            .map_err(|e| self.unreachable(self.describe_fetch_error(&e, refusal.take())))?;
        let advertised: Vec<(String, Oid)> = remote
            .list()
            .map_err(|e| {
                self.unreachable(format!(
                    "the server's reference list is unreadable: {}",
                    e.message()
                ))
            })?
            .iter()
            .map(|head| (head.name().to_owned(), head.oid()))
            .collect();
        let Some(&(_, target)) = candidates
            .iter()
            .find_map(|wanted| advertised.iter().find(|(name, _)| name == wanted))
        else {
            return Err(self.unreachable(self.unknown_reference_message(&advertised)));
        };
        repo.find_object(target, None)
            .and_then(|object| object.peel(ObjectType::Commit))
            .map(|commit| commit.id())
            .map_err(|e| {
                self.unreachable(format!(
                    "{} points at {target}, which is not a commit, or which the fetch did not bring: {}",
                    self.options.reference,
                    e.message()
                ))
            })
    }

    fn unknown_reference_message(&self, advertised: &[(String, Oid)]) -> String {
        let branches: Vec<&str> = advertised
            .iter()
            .filter_map(|(name, _)| name.strip_prefix("refs/heads/"))
            .take(10)
            .collect();
        let kind = if self.options.reference.starts_with("refs/") {
            "reference"
        } else {
            "branch or tag"
        };
        if branches.is_empty() {
            format!(
                "the repository has no {kind} named {} (and no branches at all)",
                self.options.reference
            )
        } else {
            format!(
                "the repository has no {kind} named {}; its branches include {}",
                self.options.reference,
                branches.join(", ")
            )
        }
    }

    fn describe_fetch_error(&self, e: &git2::Error, refusal: Option<String>) -> String {
        if let Some(refusal) = refusal {
            return format!("fetching {} failed: {refusal}", self.options.reference);
        }
        let hint = match (e.class(), e.code()) {
            (_, ErrorCode::Auth) | (ErrorClass::Ssh, _) if e.message().contains("auth") => {
                "; check the source's credentials"
            }
            (_, ErrorCode::Certificate) | (ErrorClass::Ssl, _) => {
                "; the server's certificate or host key was not accepted"
            }
            (ErrorClass::Net | ErrorClass::Os, _) => {
                "; check the URL and that the server is reachable"
            }
            _ => "",
        };
        format!(
            "fetching {} failed: {}{hint}",
            self.options.reference,
            e.message()
        )
    }

    /// Answers the server's request for credentials: once per fetch (a second
    /// request means the first were refused).
    fn credentials_for(
        &self,
        requests: &Cell<u32>,
        username_from_url: Option<&str>,
        allowed: CredentialType,
    ) -> Result<Cred, git2::Error> {
        match &self.options.credentials {
            GitCredentials::Token { username, token }
                if allowed.contains(CredentialType::USER_PASS_PLAINTEXT) =>
            {
                if requests.replace(requests.get() + 1) > 0 {
                    return Err(git2::Error::from_str(
                        "the server refused the token: check that it is valid, not expired, and allowed to read this repository",
                    ));
                }
                Cred::userpass_plaintext(username_from_url.unwrap_or(username), token.expose())
            }
            GitCredentials::SshKey {
                private_key,
                passphrase,
            } => {
                let user = username_from_url.unwrap_or(DEFAULT_SSH_USERNAME);
                if allowed.contains(CredentialType::USERNAME) {
                    return Cred::username(user);
                }
                if !allowed.contains(CredentialType::SSH_KEY) {
                    return Err(git2::Error::from_str(&format!(
                        "the server asks for {} authentication; this source has an SSH key",
                        describe_credential_types(allowed)
                    )));
                }
                if requests.replace(requests.get() + 1) > 0 {
                    return Err(git2::Error::from_str(&format!(
                        "the server refused the SSH key {} for user {user}: check that its public key is authorized there",
                        private_key.display()
                    )));
                }
                Cred::ssh_key(
                    user,
                    None,
                    private_key,
                    passphrase.as_ref().map(SecretString::expose),
                )
            }
            GitCredentials::Token { .. } => Err(git2::Error::from_str(&format!(
                "the server asks for {} authentication; this source has a token",
                describe_credential_types(allowed)
            ))),
            GitCredentials::Anonymous => Err(git2::Error::from_str(
                "the server asks for credentials and this source has none: give it a token (https://) or an SSH key (ssh://)",
            )),
        }
    }

    fn check_certificate(&self, cert: &Cert<'_>) -> Result<CertificateCheckStatus, git2::Error> {
        let (HostKeyCheck::KnownHostsFile(file), Some(host_key), Transport::Ssh { host, port }) = (
            &self.options.host_keys,
            cert.as_hostkey(),
            &self.remote.transport,
        ) else {
            return Ok(CertificateCheckStatus::CertificatePassthrough);
        };
        let Some(key) = host_key.hostkey() else {
            return Err(git2::Error::from_str(
                "the SSH server's host key was not made available to check it",
            ));
        };
        known_hosts::check(file, host, *port, key)
            .map(|()| CertificateCheckStatus::CertificateOk)
            .map_err(|message| git2::Error::from_str(&message))
    }

    /// Reads and validates the tree of a commit of the local clone.
    fn read_revision(
        &self,
        repo: &Repository,
        commit_id: Oid,
    ) -> Result<(Revision, CommitInfo), SourceError> {
        let id = self.revision_id(commit_id);
        let git_error = |what: &str, e: git2::Error| {
            self.unreachable(format!(
                "{what} of {id} failed in the local clone: {}",
                e.message()
            ))
        };
        let commit = repo
            .find_commit(commit_id)
            .map_err(|e| git_error("reading the commit", e))?;
        let info = commit_info(repo, &commit);
        let tree = commit
            .tree()
            .map_err(|e| git_error("reading the tree", e))?;
        let mut builder = CatalogBuilder::new();
        let mut errors = load_tree_manifests(repo, &tree, &self.path, &mut builder);
        let (catalog, more) = builder.finish();
        errors.extend(more);
        if !errors.is_empty() {
            return Err(SourceError::Invalid {
                origin: self.name(),
                revision: id,
                errors,
            });
        }
        let files = manifest_files(&catalog);
        let last =
            last_changes(repo, &commit, files).map_err(|e| git_error("reading the history", e))?;
        let requesters = catalog
            .zones
            .iter()
            .filter_map(|zone| {
                let change = last.get(&*zone.origin.file)?;
                Some((
                    (zone.namespace.clone(), zone.name.clone()),
                    change.author.clone(),
                ))
            })
            .collect();
        let revision = Revision {
            id,
            catalog: Arc::new(catalog),
            requesters,
            default_requester: info.author.identity(),
            files_root: self.options.files_root.clone(),
            changes: last,
        };
        Ok((revision, info))
    }
}

fn describe_credential_types(allowed: CredentialType) -> String {
    let names = [
        (CredentialType::USER_PASS_PLAINTEXT, "user and password"),
        (CredentialType::SSH_KEY, "SSH key"),
        (CredentialType::SSH_MEMORY, "SSH key"),
        (CredentialType::SSH_CUSTOM, "custom SSH"),
        (CredentialType::SSH_INTERACTIVE, "interactive SSH"),
        (CredentialType::DEFAULT, "Negotiate/NTLM"),
        (CredentialType::USERNAME, "user name"),
    ];
    let mut found: Vec<&str> = names
        .iter()
        .filter(|(bit, _)| allowed.contains(*bit))
        .map(|(_, name)| *name)
        .collect();
    found.dedup();
    if found.is_empty() {
        "an unknown kind of".to_owned()
    } else {
        found.join(" or ")
    }
}

fn mirror_name(url: &str, reference: &str) -> String {
    let digest = Sha256::digest(format!("{url}#{reference}").as_bytes());
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

/// Opens the local bare clone, creating it (and the directories above it)
/// when missing, and replacing a directory there that is not a repository.
fn open_or_create_mirror(dir: &Path) -> Result<Repository, String> {
    if dir.exists() {
        match Repository::open_bare(dir) {
            Ok(repo) => return Ok(repo),
            Err(e) => {
                tracing::warn!(
                    clone = %dir.display(),
                    error = e.message(),
                    "the local git clone is unreadable; making a new one"
                );
                std::fs::remove_dir_all(dir).map_err(|e| {
                    format!(
                        "cannot remove the unreadable local clone {}: {e}",
                        dir.display()
                    )
                })?;
            }
        }
    }
    Repository::init_opts(dir, RepositoryInitOptions::new().bare(true).mkpath(true)).map_err(|e| {
        format!(
            "cannot create the local clone {}: {}",
            dir.display(),
            e.message()
        )
    })
}

fn check_credentials(
    remote: &RemoteUrl,
    credentials: &GitCredentials,
) -> Result<(), GitConfigError> {
    let url = || remote.shown.clone();
    match (credentials, &remote.transport) {
        (GitCredentials::Anonymous, _) => Ok(()),
        (GitCredentials::Token { .. }, Transport::Http { tls, loopback }) => {
            if *tls || *loopback {
                Ok(())
            } else {
                Err(GitConfigError::TokenNeedsHttps(url()))
            }
        }
        (GitCredentials::Token { .. }, _) => Err(GitConfigError::TokenNeedsHttp(url())),
        (GitCredentials::SshKey { .. }, Transport::Ssh { .. }) => Ok(()),
        (GitCredentials::SshKey { .. }, _) => Err(GitConfigError::KeyNeedsSsh(url())),
    }
}

fn check_reference(reference: &str) -> Result<(), GitConfigError> {
    let full = if reference.starts_with("refs/") {
        reference.to_owned()
    } else {
        format!("refs/heads/{reference}")
    };
    let plausible = !reference.is_empty()
        && !reference.starts_with('-')
        && !reference.contains("@{")
        && reference != "HEAD"
        && git2::Reference::is_valid_name(&full);
    if plausible {
        Ok(())
    } else {
        Err(GitConfigError::InvalidReference(reference.to_owned()))
    }
}

/// `zones/acme` from `/zones/acme/`; empty for none.
fn normalize_sub_directory(path: Option<&str>) -> Result<String, GitConfigError> {
    let Some(path) = path else {
        return Ok(String::new());
    };
    let invalid = || GitConfigError::InvalidPath(path.to_owned());
    let mut parts = Vec::new();
    for part in path.trim_matches('/').split('/') {
        match part {
            "" if parts.is_empty() && path.trim_matches('/').is_empty() => {}
            "" | "." | ".." => return Err(invalid()),
            _ if part.contains('\0') || part.contains('\\') => return Err(invalid()),
            _ => parts.push(part),
        }
    }
    Ok(parts.join("/"))
}

/// A repository URL, checked.
#[derive(Debug, Clone)]
struct RemoteUrl {
    /// As the user gave it (it holds no password).
    shown: String,
    /// What libgit2 is given: the same, or an absolute path for a local path.
    for_libgit2: String,
    transport: Transport,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Transport {
    Local,
    Http { tls: bool, loopback: bool },
    Ssh { host: String, port: u16 },
    Git,
}

impl RemoteUrl {
    fn parse(url: &str) -> Result<Self, GitConfigError> {
        let unsupported = || GitConfigError::UnsupportedUrl(url.to_owned());
        let trimmed = url.trim();
        if trimmed.is_empty() || trimmed != url || url.contains(char::is_control) {
            return Err(unsupported());
        }
        let remote = |for_libgit2: String, transport| Self {
            shown: url.to_owned(),
            for_libgit2,
            transport,
        };
        if url.contains("://") {
            let parsed = url::Url::parse(url).map_err(|_| unsupported())?;
            if parsed.password().is_some() {
                return Err(GitConfigError::PasswordInUrl);
            }
            let host = || {
                parsed
                    .host_str()
                    .filter(|h| !h.is_empty())
                    .map(|h| h.trim_start_matches('[').trim_end_matches(']').to_owned())
                    .ok_or_else(unsupported)
            };
            let transport = match parsed.scheme() {
                "file" => Transport::Local,
                scheme @ ("http" | "https") => Transport::Http {
                    tls: scheme == "https",
                    loopback: is_loopback(&host()?),
                },
                "ssh" => Transport::Ssh {
                    host: host()?,
                    port: parsed.port().unwrap_or(22),
                },
                "git" => {
                    host()?;
                    Transport::Git
                }
                _ => return Err(unsupported()),
            };
            return Ok(remote(url.to_owned(), transport));
        }
        if let Some((user_host, path)) = url.split_once(':')
            && !user_host.contains('/')
            && !user_host.is_empty()
            && !path.is_empty()
        {
            // scp-like: [user@]host:path
            let host = user_host
                .rsplit_once('@')
                .map_or(user_host, |(_, host)| host);
            let host = host.trim_start_matches('[').trim_end_matches(']');
            let host_like = !host.is_empty()
                && !host.starts_with('-')
                && host
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_' | ':'));
            // `ext::command` and other `transport::address` forms are not hosts.
            if !host_like || path.starts_with(':') {
                return Err(unsupported());
            }
            return Ok(remote(
                url.to_owned(),
                Transport::Ssh {
                    host: host.to_owned(),
                    port: 22,
                },
            ));
        }
        if url.starts_with('-') {
            return Err(unsupported());
        }
        let absolute = std::path::absolute(url).map_err(|_| unsupported())?;
        let absolute = absolute.to_str().ok_or_else(unsupported)?.to_owned();
        Ok(remote(absolute, Transport::Local))
    }
}

fn is_loopback(host: &str) -> bool {
    host.eq_ignore_ascii_case("localhost")
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

fn commit_info(repo: &Repository, commit: &Commit<'_>) -> CommitInfo {
    let signature =
        repo.extract_signature(&commit.id(), None)
            .ok()
            .map(|(signature, signed_data)| CommitSignature {
                signature: signature.to_vec(),
                signed_data: signed_data.to_vec(),
            });
    CommitInfo {
        id: commit.id().to_string(),
        author: GitPerson::from_git(&commit.author()),
        committer: GitPerson::from_git(&commit.committer()),
        summary: String::from_utf8_lossy(
            commit
                .message_bytes()
                .split(|b| *b == b'\n')
                .next()
                .unwrap_or_default(),
        )
        .trim_end()
        .to_owned(),
        signature,
    }
}

/// Parses every manifest under `sub_directory` of the tree into `builder`,
/// one file at a time (as the directory source does); returns the errors
/// of reading and parsing.
fn load_tree_manifests(
    repo: &Repository,
    root: &Tree<'_>,
    sub_directory: &str,
    builder: &mut CatalogBuilder,
) -> Diagnostics {
    let mut walk = TreeWalk {
        repo,
        root,
        files: Vec::new(),
        errors: Diagnostics::default(),
        refused_too_many: false,
    };
    if sub_directory.is_empty() {
        walk.dir(root, "", 0);
    } else {
        match root.get_path(Path::new(sub_directory)) {
            Ok(entry) if entry.filemode() == MODE_TREE => match repo.find_tree(entry.id()) {
                Ok(tree) => walk.dir(&tree, sub_directory, 0),
                Err(e) => walk.error(
                    sub_directory,
                    format!("cannot read directory: {}", e.message()),
                ),
            },
            Ok(_) => walk.error(
                sub_directory,
                "is not a directory in this revision; the source reads a directory of manifests",
            ),
            Err(_) => walk.error(sub_directory, "no such directory in this revision"),
        }
    }
    let TreeWalk {
        files, mut errors, ..
    } = walk;
    for file in files {
        match read_manifest(repo, &file) {
            Ok(source) => {
                let (parsed, errs) = parse_documents(&source);
                drop(source);
                for object in parsed {
                    builder.add(object);
                }
                errors.extend(errs);
            }
            Err(d) => errors.push(d),
        }
    }
    errors
}

/// A manifest blob found in the tree, by its repository path.
struct ManifestBlob {
    path: String,
    id: Oid,
}

struct TreeWalk<'r> {
    repo: &'r Repository,
    root: &'r Tree<'r>,
    files: Vec<ManifestBlob>,
    errors: Diagnostics,
    refused_too_many: bool,
}

impl TreeWalk<'_> {
    fn error(&mut self, path: &str, message: impl Into<String>) {
        self.errors.push(Diagnostic::file(path, message));
    }

    fn dir(&mut self, tree: &Tree<'_>, prefix: &str, depth: usize) {
        if depth > MAX_DIRECTORY_DEPTH {
            self.error(
                prefix,
                format!("directories nested more than {MAX_DIRECTORY_DEPTH} deep are not read"),
            );
            return;
        }
        for entry in tree.iter() {
            let name_bytes = entry.name_bytes();
            let yaml = name_bytes.ends_with(b".yaml") || name_bytes.ends_with(b".yml");
            if name_bytes.starts_with(b".") {
                continue;
            }
            let shown = String::from_utf8_lossy(name_bytes);
            let path = if prefix.is_empty() {
                shown.into_owned()
            } else {
                format!("{prefix}/{shown}")
            };
            if entry.name().is_err() {
                if yaml || entry.filemode() == MODE_TREE {
                    self.error(&path, "the name is not UTF-8; such files are not read");
                }
                continue;
            }
            match entry.filemode() {
                MODE_TREE => match self.repo.find_tree(entry.id()) {
                    Ok(sub) => self.dir(&sub, &path, depth + 1),
                    Err(e) => self.error(&path, format!("cannot read directory: {}", e.message())),
                },
                MODE_SUBMODULE => self.error(
                    &path,
                    "is a git submodule; submodules are not read (manifests in them would be missed): put the manifests in this repository",
                ),
                MODE_LINK if yaml => self.error(
                    &path,
                    "is a symbolic link; links are not followed in a git source: commit the manifest itself here",
                ),
                MODE_LINK if self.link_leads_to_directory(&path, entry.id()) => self.error(
                    &path,
                    "is a symbolic link to a directory; links are not followed in a git source, so manifests there would be missed: move them here or read that directory instead",
                ),
                // A link to anything else is not a manifest.
                MODE_LINK => {}
                _ if yaml => self.take(path, entry.id()),
                _ => {}
            }
        }
    }

    fn take(&mut self, path: String, id: Oid) {
        if self.files.len() >= MAX_MANIFEST_FILES {
            if !self.refused_too_many {
                self.refused_too_many = true;
                self.error(
                    &path,
                    format!("more than {MAX_MANIFEST_FILES} manifest files; the rest are not read"),
                );
            }
            return;
        }
        self.files.push(ManifestBlob { path, id });
    }

    /// Whether the link at `path` (whose target is blob `id`), followed inside
    /// the commit, ends at a directory.
    fn link_leads_to_directory(&self, path: &str, id: Oid) -> bool {
        let (mut path, mut id) = (path.to_owned(), id);
        for _ in 0..MAX_LINK_HOPS {
            let Ok(blob) = self.repo.find_blob(id) else {
                return false;
            };
            if blob.size() > MAX_LINK_TARGET_BYTES {
                return false;
            }
            let Ok(target) = std::str::from_utf8(blob.content()) else {
                return false;
            };
            let Some(resolved) = resolve_link(&path, target) else {
                return false;
            };
            if resolved.is_empty() {
                return true;
            }
            let Ok(entry) = self.root.get_path(Path::new(&resolved)) else {
                return false;
            };
            match entry.filemode() {
                MODE_TREE => return true,
                MODE_LINK => (path, id) = (resolved, entry.id()),
                _ => return false,
            }
        }
        false
    }
}

/// Where a relative link at `link_path` points, as a repository path (empty
/// for the root); `None` when it is absolute or leaves the repository.
fn resolve_link(link_path: &str, target: &str) -> Option<String> {
    if target.starts_with('/') {
        return None;
    }
    let mut parts: Vec<&str> = link_path.split('/').collect();
    parts.pop();
    for part in target.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop()?;
            }
            _ => parts.push(part),
        }
    }
    Some(parts.join("/"))
}

fn read_manifest(repo: &Repository, file: &ManifestBlob) -> Result<Arc<SourceFile>, Diagnostic> {
    let unreadable =
        |e: git2::Error| Diagnostic::file(&file.path, format!("cannot read: {}", e.message()));
    let (size, _) = repo
        .odb()
        .and_then(|odb| odb.read_header(file.id))
        .map_err(unreadable)?;
    if size as u64 > MAX_MANIFEST_BYTES {
        let refused = ReadError::TooLarge {
            size: size as u64,
            limit: MAX_MANIFEST_BYTES,
            what: "manifests",
        };
        return Err(Diagnostic::file(&file.path, refused.to_string()));
    }
    let blob = repo.find_blob(file.id).map_err(unreadable)?;
    let text = std::str::from_utf8(blob.content()).map_err(|e| {
        Diagnostic::file(&file.path, ReadError::NotUtf8(e.valid_up_to()).to_string())
    })?;
    Ok(SourceFile::new(file.path.clone(), text))
}

/// For each path (all present in `head`'s tree), `Name <email>` of the author
/// of the commit that last changed it: the rule of [`GitSource`].
/// Every file an object of the catalog was read from.
fn manifest_files(catalog: &Catalog) -> BTreeSet<String> {
    let mut files = BTreeSet::new();
    files.extend(catalog.tenants.values().map(|o| o.origin.file.to_string()));
    files.extend(catalog.policies.values().map(|o| o.origin.file.to_string()));
    files.extend(
        catalog
            .connections
            .values()
            .map(|o| o.origin.file.to_string()),
    );
    files.extend(catalog.zones.iter().map(|o| o.origin.file.to_string()));
    files.extend(
        catalog
            .change_requests
            .iter()
            .map(|o| o.origin.file.to_string()),
    );
    files.extend(catalog.approvals.iter().map(|o| o.origin.file.to_string()));
    files.extend(catalog.snapshots.iter().map(|o| o.origin.file.to_string()));
    files
}

/// For each path, the commit that last changed it: its author, id and signature.
fn last_changes(
    repo: &Repository,
    head: &Commit<'_>,
    paths: BTreeSet<String>,
) -> Result<BTreeMap<String, crate::source::FileChange>, git2::Error> {
    let commits = last_authors(repo, head, paths)?;
    let mut infos: HashMap<Oid, crate::source::FileChange> = HashMap::new();
    let mut out = BTreeMap::new();
    for (path, id) in commits {
        let change = match infos.entry(id) {
            std::collections::hash_map::Entry::Occupied(e) => e.get().clone(),
            std::collections::hash_map::Entry::Vacant(e) => {
                let commit = repo.find_commit(id)?;
                let info = commit_info(repo, &commit);
                e.insert(crate::source::FileChange {
                    author: info.author.identity(),
                    commit: info.id.clone(),
                    signature: info.signature.map(|s| {
                        (
                            String::from_utf8_lossy(&s.signature).into_owned(),
                            s.signed_data,
                        )
                    }),
                })
                .clone()
            }
        };
        out.insert(path, change);
    }
    Ok(out)
}

/// For each path, the id of the commit that last changed it.
fn last_authors(
    repo: &Repository,
    head: &Commit<'_>,
    paths: BTreeSet<String>,
) -> Result<BTreeMap<String, Oid>, git2::Error> {
    let mut authors = BTreeMap::new();
    if paths.is_empty() {
        return Ok(authors);
    }
    // The paths still followed, by the commit they are at; newest commit first.
    let mut pending: HashMap<Oid, BTreeSet<String>> = HashMap::new();
    let mut queue = BinaryHeap::new();
    pending.insert(head.id(), paths);
    queue.push((head.time().seconds(), head.id()));
    while let Some((_, id)) = queue.pop() {
        let Some(mut paths) = pending.remove(&id) else {
            continue;
        };
        let commit = repo.find_commit(id)?;
        for parent in commit.parents() {
            if paths.is_empty() {
                break;
            }
            let changed = changed_paths(repo, commit.tree_id(), parent.tree_id(), &paths)?;
            let same: BTreeSet<String> = paths.difference(&changed).cloned().collect();
            paths = changed;
            if same.is_empty() {
                continue;
            }
            let slot = pending.entry(parent.id()).or_default();
            if slot.is_empty() {
                queue.push((parent.time().seconds(), parent.id()));
            }
            slot.extend(same);
        }
        if !paths.is_empty() {
            for path in paths {
                authors.insert(path, commit.id());
            }
        }
    }
    Ok(authors)
}

/// The paths whose entry (id or mode) differs between two trees; subtrees
/// with the same id are not read.
fn changed_paths(
    repo: &Repository,
    new: Oid,
    old: Oid,
    paths: &BTreeSet<String>,
) -> Result<BTreeSet<String>, git2::Error> {
    let mut changed = BTreeSet::new();
    let relative: Vec<(&str, &str)> = paths.iter().map(|p| (p.as_str(), p.as_str())).collect();
    compare_trees(repo, new, old, &relative, &mut changed)?;
    Ok(changed)
}

/// `paths` holds (full path, path relative to these trees).
fn compare_trees(
    repo: &Repository,
    new: Oid,
    old: Oid,
    paths: &[(&str, &str)],
    changed: &mut BTreeSet<String>,
) -> Result<(), git2::Error> {
    if new == old {
        return Ok(());
    }
    let new_tree = repo.find_tree(new)?;
    let old_tree = repo.find_tree(old)?;
    // By first path component: (full path, the rest below it when it is a directory).
    let mut groups: BTreeMap<&str, Vec<(&str, Option<&str>)>> = BTreeMap::new();
    for &(full, relative) in paths {
        let (first, rest) = match relative.split_once('/') {
            Some((first, rest)) => (first, Some(rest)),
            None => (relative, None),
        };
        groups.entry(first).or_default().push((full, rest));
    }
    for (name, members) in groups {
        let entries = (new_tree.get_name(name), old_tree.get_name(name));
        if let (Some(n), Some(o)) = &entries {
            if n.id() == o.id() && n.filemode() == o.filemode() {
                continue;
            }
            if n.filemode() == MODE_TREE && o.filemode() == MODE_TREE {
                let mut below = Vec::new();
                for (full, rest) in members {
                    match rest {
                        Some(rest) => below.push((full, rest)),
                        None => {
                            changed.insert(full.to_owned());
                        }
                    }
                }
                compare_trees(repo, n.id(), o.id(), &below, changed)?;
                continue;
            }
        }
        changed.extend(members.into_iter().map(|(full, _)| full.to_owned()));
    }
    Ok(())
}

/// Checking an SSH host key against an OpenSSH known_hosts file.
mod known_hosts {
    use std::path::Path;

    use data_encoding::{BASE64, BASE64_NOPAD};
    use sha2::{Digest, Sha256};
    use zentralink_providers::fsread::read_text;

    use super::MAX_KNOWN_HOSTS_BYTES;

    /// `Ok` when `file` lists `key` (the server's key in SSH wire format) for
    /// `host`:`port` and does not mark it `@revoked`; else why not.
    pub(super) fn check(file: &Path, host: &str, port: u16, key: &[u8]) -> Result<(), String> {
        let text = read_text(file, MAX_KNOWN_HOSTS_BYTES, "known_hosts files")
            .map_err(|e| format!("cannot read the known_hosts file {}: {e}", file.display()))?;
        let host = host.to_ascii_lowercase();
        let name = if port == 22 {
            host.clone()
        } else {
            format!("[{host}]:{port}")
        };
        let mut host_listed = false;
        let mut key_listed = false;
        for line in text.lines() {
            let Some(entry) = Entry::parse(line) else {
                continue;
            };
            if entry.marker == Some("@cert-authority") || !entry.matches_host(&name) {
                continue;
            }
            let same_key = entry.key.as_deref() == Some(key);
            if entry.marker == Some("@revoked") {
                if same_key {
                    return Err(format!(
                        "the host key {} of {name} is marked @revoked in {}",
                        fingerprint(key),
                        file.display()
                    ));
                }
                continue;
            }
            host_listed = true;
            key_listed |= same_key;
        }
        if key_listed {
            Ok(())
        } else if host_listed {
            Err(format!(
                "the host key {} of {name} is not the one {} lists for it: the server's key changed, or something is in between; check the key with the server's administrator before updating the file",
                fingerprint(key),
                file.display()
            ))
        } else {
            Err(format!(
                "{} lists no host key for {name}: add the server's key to it (ssh-keyscan -p {port} {host}, then check the fingerprint {})",
                file.display(),
                fingerprint(key)
            ))
        }
    }

    fn fingerprint(key: &[u8]) -> String {
        format!("SHA256:{}", BASE64_NOPAD.encode(&Sha256::digest(key)))
    }

    struct Entry<'a> {
        marker: Option<&'a str>,
        hosts: &'a str,
        /// `None` when the key does not decode.
        key: Option<Vec<u8>>,
    }

    impl<'a> Entry<'a> {
        fn parse(line: &'a str) -> Option<Self> {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                return None;
            }
            let mut fields = line.split_whitespace();
            let mut first = fields.next()?;
            let marker = if first.starts_with('@') {
                let marker = first;
                first = fields.next()?;
                Some(marker)
            } else {
                None
            };
            let _key_type = fields.next()?;
            let key = BASE64.decode(fields.next()?.as_bytes()).ok();
            Some(Self {
                marker,
                hosts: first,
                key,
            })
        }

        /// OpenSSH's rule: some pattern matches the name and no negated one does.
        fn matches_host(&self, name: &str) -> bool {
            if let Some(hashed) = self.hosts.strip_prefix("|1|") {
                return matches_hashed(hashed, name);
            }
            let mut matched = false;
            for pattern in self.hosts.split(',') {
                let pattern = pattern.to_ascii_lowercase();
                if let Some(negated) = pattern.strip_prefix('!') {
                    if glob(negated.as_bytes(), name.as_bytes()) {
                        return false;
                    }
                } else if glob(pattern.as_bytes(), name.as_bytes()) {
                    matched = true;
                }
            }
            matched
        }
    }

    /// `salt|hash` (both base64): HMAC-SHA1 of the name under the salt.
    fn matches_hashed(hashed: &str, name: &str) -> bool {
        let Some((salt, hash)) = hashed.split_once('|') else {
            return false;
        };
        match (
            BASE64.decode(salt.as_bytes()),
            BASE64.decode(hash.as_bytes()),
        ) {
            (Ok(salt), Ok(hash)) => hmac_sha1(&salt, name.as_bytes())[..] == hash[..],
            _ => false,
        }
    }

    /// HMAC (RFC 2104) with SHA-1, as OpenSSH hashes known_hosts names.
    pub(super) fn hmac_sha1(key: &[u8], message: &[u8]) -> [u8; 20] {
        use sha1::{Digest as _, Sha1};
        const BLOCK: usize = 64;
        let mut block_key = [0u8; BLOCK];
        if key.len() > BLOCK {
            block_key[..20].copy_from_slice(Sha1::digest(key).as_slice());
        } else {
            block_key[..key.len()].copy_from_slice(key);
        }
        let inner_pad: Vec<u8> = block_key.iter().map(|b| b ^ 0x36).collect();
        let outer_pad: Vec<u8> = block_key.iter().map(|b| b ^ 0x5c).collect();
        let inner = Sha1::new()
            .chain_update(&inner_pad)
            .chain_update(message)
            .finalize();
        let outer = Sha1::new()
            .chain_update(&outer_pad)
            .chain_update(inner.as_slice())
            .finalize();
        let mut out = [0u8; 20];
        out.copy_from_slice(outer.as_slice());
        out
    }

    /// `*` (any run) and `?` (any one character) globbing, as in OpenSSH's `match_pattern`.
    fn glob(pattern: &[u8], text: &[u8]) -> bool {
        let (mut p, mut t) = (0, 0);
        let mut backtrack: Option<(usize, usize)> = None;
        while t < text.len() {
            match pattern.get(p) {
                Some(b'*') => {
                    backtrack = Some((p, t));
                    p += 1;
                }
                Some(&c) if c == b'?' || c == text[t] => {
                    p += 1;
                    t += 1;
                }
                _ => match backtrack {
                    Some((star, matched)) => {
                        p = star + 1;
                        t = matched + 1;
                        backtrack = Some((star, matched + 1));
                    }
                    None => return false,
                },
            }
        }
        pattern[p..].iter().all(|&c| c == b'*')
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn hmac_sha1_matches_rfc_2202() {
            let mac = hmac_sha1(&[0x0b; 20], b"Hi There");
            assert_eq!(
                data_encoding::HEXLOWER.encode(&mac),
                "b617318655057264e28bc0b6fb378c8ef146be00"
            );
            let long_key = hmac_sha1(
                &[0xaa; 80],
                b"Test Using Larger Than Block-Size Key - Hash Key First",
            );
            assert_eq!(
                data_encoding::HEXLOWER.encode(&long_key),
                "aa4ae5e15272d00e95705637ce8a3b55ed402112"
            );
        }

        #[test]
        fn host_patterns_follow_openssh() {
            let entry = |hosts: &'static str| Entry {
                marker: None,
                hosts,
                key: None,
            };
            assert!(entry("git.example,10.0.0.1").matches_host("git.example"));
            assert!(entry("*.example").matches_host("git.example"));
            assert!(entry("git?.example").matches_host("git1.example"));
            assert!(!entry("*.example,!git.example").matches_host("git.example"));
            assert!(entry("[127.0.0.1]:2222").matches_host("[127.0.0.1]:2222"));
            assert!(!entry("127.0.0.1").matches_host("[127.0.0.1]:2222"));
            assert!(!entry("git.example").matches_host("git.example.evil"));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_sorted_by_transport() {
        let transport = |url: &str| RemoteUrl::parse(url).map(|r| r.transport);
        assert_eq!(transport("file:///srv/zones.git"), Ok(Transport::Local));
        assert_eq!(transport("/srv/zones.git"), Ok(Transport::Local));
        assert_eq!(
            transport("https://git.example/zones.git"),
            Ok(Transport::Http {
                tls: true,
                loopback: false
            })
        );
        assert_eq!(
            transport("http://127.0.0.1:8080/zones.git"),
            Ok(Transport::Http {
                tls: false,
                loopback: true
            })
        );
        assert_eq!(
            transport("ssh://git@git.example:2222/zones.git"),
            Ok(Transport::Ssh {
                host: "git.example".into(),
                port: 2222
            })
        );
        assert_eq!(
            transport("git@git.example:team/zones.git"),
            Ok(Transport::Ssh {
                host: "git.example".into(),
                port: 22
            })
        );
        assert_eq!(transport("git://git.example/zones.git"), Ok(Transport::Git));
        assert!(matches!(
            transport("ext::sh -c touch% /tmp/pwned"),
            Err(GitConfigError::UnsupportedUrl(_))
        ));
        assert!(matches!(
            transport("ftp://git.example/zones.git"),
            Err(GitConfigError::UnsupportedUrl(_))
        ));
        assert_eq!(
            transport("https://bot:hunter2@git.example/zones.git"),
            Err(GitConfigError::PasswordInUrl)
        );
    }

    #[test]
    fn a_token_is_refused_where_it_would_travel_in_clear_text() {
        let options = |url: &str| {
            GitSourceOptions::new(url, "/var/lib/zentralink")
                .with_credentials(GitCredentials::token(SecretString::new("hunter2")))
        };
        let refused = GitSource::new(options("http://git.example/zones.git")).map(|_| ());
        assert!(matches!(refused, Err(GitConfigError::TokenNeedsHttps(_))));
        assert!(!format!("{refused:?}").contains("hunter2"));
        assert!(GitSource::new(options("http://127.0.0.1:1/zones.git")).is_ok());
        assert!(matches!(
            GitSource::new(options("ssh://git.example/zones.git")),
            Err(GitConfigError::TokenNeedsHttp(_))
        ));
    }

    #[test]
    fn references_and_sub_directories_are_checked() {
        assert!(check_reference("main").is_ok());
        assert!(check_reference("release/1.4").is_ok());
        assert!(check_reference("refs/tags/v1").is_ok());
        for bad in ["", "-main", "a..b", "main@{1}", "HEAD", "a b", "x.lock"] {
            assert!(check_reference(bad).is_err(), "{bad:?}");
        }
        assert_eq!(normalize_sub_directory(None), Ok(String::new()));
        assert_eq!(
            normalize_sub_directory(Some("/zones/acme/")),
            Ok("zones/acme".into())
        );
        assert_eq!(normalize_sub_directory(Some("/")), Ok(String::new()));
        for bad in ["../x", "a/./b", "a//b", "a/.."] {
            assert!(normalize_sub_directory(Some(bad)).is_err(), "{bad:?}");
        }
    }

    /// A commit of `files` on `main` of the repository at `dir`.
    fn commit(repo: &Repository, dir: &Path, files: &[(&str, &str)]) {
        let mut index = repo.index().unwrap();
        for (name, text) in files {
            std::fs::write(dir.join(name), text).unwrap();
            index.add_path(Path::new(name)).unwrap();
        }
        index.write().unwrap();
        let tree = repo.find_tree(index.write_tree().unwrap()).unwrap();
        let who = git2::Signature::now("Alice Admin", "alice@acme.example").unwrap();
        let parent = repo
            .find_reference("refs/heads/main")
            .ok()
            .and_then(|r| r.peel_to_commit().ok());
        let parents: Vec<&git2::Commit<'_>> = parent.iter().collect();
        repo.commit(
            Some("refs/heads/main"),
            &who,
            &who,
            "zones",
            &tree,
            &parents,
        )
        .unwrap();
    }

    #[tokio::test]
    async fn a_fetch_that_finds_the_commit_in_force_reads_nothing() {
        let upstream = tempfile::tempdir().unwrap();
        let state = tempfile::tempdir().unwrap();
        let repo = Repository::init(upstream.path()).unwrap();
        commit(&repo, upstream.path(), &[("zones.yaml", "# none yet\n")]);
        let url = format!("file://{}", upstream.path().display());
        let source = GitSource::new(GitSourceOptions::new(url, state.path())).unwrap();
        let first = source.fetch().await.unwrap().id;
        let again = source.fetch_if_changed(Some(&first)).await.unwrap();
        assert!(matches!(again, Fetched::Unchanged), "{again:?}");
        let fresh = source.fetch_if_changed(None).await.unwrap();
        assert!(
            matches!(&fresh, Fetched::New(r) if r.id == first),
            "{fresh:?}"
        );

        commit(&repo, upstream.path(), &[("zones.yaml", "# still none\n")]);
        match source.fetch_if_changed(Some(&first)).await.unwrap() {
            Fetched::New(revision) => {
                assert_ne!(revision.id, first);
                assert!(revision.id.starts_with("main@sha1:"), "{}", revision.id);
            }
            Fetched::Unchanged => panic!("a new commit was taken for the one in force"),
        }
    }

    #[test]
    fn links_resolve_inside_the_repository_only() {
        assert_eq!(
            resolve_link("zones/link", "../shared"),
            Some("shared".into())
        );
        assert_eq!(
            resolve_link("zones/link", "./a/b"),
            Some("zones/a/b".into())
        );
        assert_eq!(resolve_link("link", "."), Some(String::new()));
        assert_eq!(resolve_link("link", "../outside"), None);
        assert_eq!(resolve_link("zones/link", "/etc"), None);
    }
}
