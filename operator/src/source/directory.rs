//! Reads manifests from files and directories (recursively): the same
//! documents `kubectl apply` takes. Does I/O (file reads).
//!
//! A scanned directory is walked once: symlinks are followed only to files
//! and directories inside it (never out of the tree, never into a loop),
//! each file is read once however many links lead to it, and only regular
//! files of at most [`MAX_MANIFEST_BYTES`] are read.

use std::collections::HashSet;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use zentralink_model::catalog::{Catalog, CatalogBuilder};
use zentralink_model::diagnostics::{Diagnostic, Diagnostics};
use zentralink_model::documents::{SourceFile, parse_documents};

pub use zentralink_providers::fsread::MAX_MANIFEST_BYTES;
use zentralink_providers::fsread::{ReadError, file_kind, read_text};

/// The most manifest files one load reads.
pub const MAX_MANIFEST_FILES: usize = 100_000;
/// The deepest directory nesting walked.
pub const MAX_DIRECTORY_DEPTH: usize = 32;

/// Every `*.yaml` / `*.yml` file under the paths, in a stable order. Hidden
/// files and directories (`.git`) are skipped. A path given explicitly is
/// taken whatever its name.
pub fn manifest_files(paths: &[PathBuf]) -> (Vec<PathBuf>, Diagnostics) {
    let mut walk = Walk::default();
    for path in paths {
        match std::fs::metadata(path) {
            Ok(meta) if meta.is_dir() => match path.canonicalize() {
                Ok(root) => {
                    walk.visited_dirs.insert((meta.dev(), meta.ino()));
                    walk.dir(&root, path, path, 0);
                }
                Err(e) => walk.error(path, format!("cannot read directory: {e}")),
            },
            Ok(meta) => walk.file(path, &meta),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                walk.error(path, "no such file or directory".into())
            }
            Err(e) => walk.error(path, format!("cannot read: {e}")),
        }
    }
    (walk.files, walk.errors)
}

#[derive(Default)]
struct Walk {
    files: Vec<PathBuf>,
    errors: Diagnostics,
    /// (device, inode) of every directory entered and every file taken.
    visited_dirs: HashSet<(u64, u64)>,
    seen_files: HashSet<(u64, u64)>,
    refused_too_many: bool,
}

impl Walk {
    fn error(&mut self, path: &Path, message: String) {
        self.errors
            .push(Diagnostic::file(path.display().to_string(), message));
    }

    fn file(&mut self, shown: &Path, meta: &std::fs::Metadata) {
        if !self.seen_files.insert((meta.dev(), meta.ino())) {
            return;
        }
        if self.files.len() >= MAX_MANIFEST_FILES {
            if !self.refused_too_many {
                self.refused_too_many = true;
                self.error(
                    shown,
                    format!("more than {MAX_MANIFEST_FILES} manifest files; the rest are not read"),
                );
            }
            return;
        }
        self.files.push(shown.to_path_buf());
    }

    /// Walks `shown` (the path as the user sees it), whose real location is
    /// `real`, inside the tree rooted (canonically) at `root`.
    fn dir(&mut self, root: &Path, shown: &Path, real: &Path, depth: usize) {
        if depth > MAX_DIRECTORY_DEPTH {
            self.error(
                shown,
                format!("directories nested more than {MAX_DIRECTORY_DEPTH} deep are not read"),
            );
            return;
        }
        let entries = match std::fs::read_dir(real) {
            Ok(e) => e,
            Err(e) => {
                self.error(shown, format!("cannot read directory: {e}"));
                return;
            }
        };
        let mut names: Vec<std::ffi::OsString> = entries
            .filter_map(|e| e.ok().map(|e| e.file_name()))
            .collect();
        names.sort();
        for name in names {
            if name.to_str().is_some_and(|n| n.starts_with('.')) {
                continue;
            }
            let shown_child = shown.join(&name);
            let real_child = real.join(&name);
            let Ok(link_meta) = std::fs::symlink_metadata(&real_child) else {
                continue;
            };
            let yaml = matches!(
                Path::new(&name).extension().and_then(|e| e.to_str()),
                Some("yaml" | "yml")
            );
            if link_meta.file_type().is_symlink() {
                let target = match real_child.canonicalize() {
                    Ok(t) => t,
                    Err(e) => {
                        if yaml {
                            self.error(&shown_child, format!("broken symbolic link: {e}"));
                        }
                        continue;
                    }
                };
                if !target.starts_with(root) {
                    self.error(
                        &shown_child,
                        format!(
                            "symbolic link to {} points out of the scanned directory; it is not followed",
                            target.display()
                        ),
                    );
                    continue;
                }
                let Ok(meta) = std::fs::metadata(&target) else {
                    continue;
                };
                if meta.is_dir() {
                    if self.visited_dirs.insert((meta.dev(), meta.ino())) {
                        self.dir(root, &shown_child, &target, depth + 1);
                    }
                } else if yaml {
                    self.take_file(&shown_child, &meta);
                }
            } else if link_meta.is_dir() {
                if self.visited_dirs.insert((link_meta.dev(), link_meta.ino())) {
                    self.dir(root, &shown_child, &real_child, depth + 1);
                }
            } else if yaml {
                self.take_file(&shown_child, &link_meta);
            }
        }
    }

    fn take_file(&mut self, shown: &Path, meta: &std::fs::Metadata) {
        if meta.is_file() {
            self.file(shown, meta);
        } else {
            self.error(
                shown,
                format!(
                    "is {}, not a regular file; only regular files are read",
                    file_kind(meta)
                ),
            );
        }
    }
}

/// Reads and parses every manifest under the paths into `builder`, one
/// file at a time: each file's objects are checked on their own and its
/// zones converted before the next file is read, so that the typed
/// documents and texts of every file are never held at once. Returns the
/// errors of reading and parsing, and the digest of the files read (SHA-256
/// over each file's name and text, the directory source's revision);
/// [`CatalogBuilder::finish`] gives the rest.
pub fn load_into(paths: &[PathBuf], builder: &mut CatalogBuilder) -> (Diagnostics, String) {
    let (files, mut errors) = manifest_files(paths);
    let mut digest = FilesDigest::default();
    for file in files {
        let text = match read_text(&file, MAX_MANIFEST_BYTES, "manifests") {
            Ok(t) => t,
            Err(ReadError::NotFound) => {
                errors.push(Diagnostic::file(
                    file.display().to_string(),
                    "no such file or directory",
                ));
                continue;
            }
            Err(e) => {
                errors.push(Diagnostic::file(file.display().to_string(), e.to_string()));
                continue;
            }
        };
        let name = file.display().to_string();
        digest.add(&name, &text);
        let source: Arc<SourceFile> = SourceFile::new(name, text);
        let (objects, errs) = parse_documents(&source);
        drop(source);
        for object in objects {
            builder.add(object);
        }
        errors.extend(errs);
    }
    (errors, digest.finish())
}

/// The digest of the manifests under the paths, as [`load_into`]
/// gives it, without parsing them; `None` when a file cannot be read (the
/// load says why).
fn manifests_digest(paths: &[PathBuf]) -> Option<String> {
    let (files, errors) = manifest_files(paths);
    if !errors.is_empty() {
        return None;
    }
    let mut digest = FilesDigest::default();
    for file in files {
        let text = read_text(&file, MAX_MANIFEST_BYTES, "manifests").ok()?;
        digest.add(&file.display().to_string(), &text);
    }
    Some(digest.finish())
}

/// SHA-256 over every manifest file's name and text, in load order: the
/// revision of a directory.
#[derive(Default)]
struct FilesDigest(sha2::Sha256);

impl FilesDigest {
    fn add(&mut self, name: &str, text: &str) {
        use sha2::Digest;
        self.0.update(name.as_bytes());
        self.0.update([0]);
        self.0.update(text.as_bytes());
        self.0.update([0]);
    }

    fn finish(self) -> String {
        use sha2::Digest;
        let digest = self.0.finalize();
        digest.iter().map(|b| format!("{b:02x}")).collect()
    }
}

/// Reads, parses and validates every manifest under the paths.
pub fn load_catalog(paths: &[PathBuf]) -> (Catalog, Diagnostics) {
    let mut builder = CatalogBuilder::new();
    let (mut errors, _) = load_into(paths, &mut builder);
    let (catalog, more) = builder.finish();
    errors.extend(more);
    (catalog, errors)
}

/// A directory (or files) of manifests as a source. Its revision is the
/// digest of the manifests read; the requester is the one given (the user
/// running `zentralink reconcile`).
#[derive(Debug, Clone)]
pub struct DirectorySource {
    paths: Vec<PathBuf>,
    requester: String,
}

impl DirectorySource {
    pub fn new(paths: Vec<PathBuf>, requester: impl Into<String>) -> Self {
        Self {
            paths,
            requester: requester.into(),
        }
    }
}

#[async_trait::async_trait]
impl super::Source for DirectorySource {
    fn name(&self) -> String {
        let paths: Vec<String> = self.paths.iter().map(|p| p.display().to_string()).collect();
        format!("dir:{}", paths.join(","))
    }

    async fn fetch(&self) -> Result<super::Revision, super::SourceError> {
        let paths = self.paths.clone();
        let loaded = tokio::task::spawn_blocking(move || {
            let mut builder = CatalogBuilder::new();
            let (errors, digest) = load_into(&paths, &mut builder);
            (builder, errors, digest)
        })
        .await
        .map_err(|e| super::SourceError::Unreachable {
            origin: self.name(),
            message: format!("reading the manifests stopped: {e}"),
        })?;
        let (builder, mut errors, digest) = loaded;
        let id = format!("dir@sha256:{digest}");
        if builder.is_empty() && !errors.is_empty() && self.paths.iter().all(|p| !p.exists()) {
            return Err(super::SourceError::Unreachable {
                origin: self.name(),
                message: errors.to_string(),
            });
        }
        let (catalog, more) = builder.finish();
        errors.extend(more);
        if !errors.is_empty() {
            return Err(super::SourceError::Invalid {
                origin: self.name(),
                revision: id,
                errors,
            });
        }
        Ok(super::Revision {
            id,
            catalog: Arc::new(catalog),
            requesters: std::collections::BTreeMap::new(),
            default_requester: self.requester.clone(),
            files_root: None,
            changes: std::collections::BTreeMap::new(),
        })
    }

    /// The files are hashed first (read, not parsed): the same digest as the
    /// revision in force means the same manifests.
    async fn fetch_if_changed(
        &self,
        in_force: Option<&str>,
    ) -> Result<super::Fetched, super::SourceError> {
        if let Some(in_force) = in_force {
            let paths = self.paths.clone();
            let digest = tokio::task::spawn_blocking(move || manifests_digest(&paths))
                .await
                .ok()
                .flatten();
            if digest.is_some_and(|d| in_force.strip_prefix("dir@sha256:") == Some(d.as_str())) {
                return Ok(super::Fetched::Unchanged);
            }
        }
        self.fetch().await.map(super::Fetched::New)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::source::{Fetched, Source};

    async fn fetched_id(source: &DirectorySource, in_force: Option<&str>) -> Option<String> {
        match source.fetch_if_changed(in_force).await {
            Ok(Fetched::New(revision)) => Some(revision.id),
            Ok(Fetched::Unchanged) => None,
            Err(e) => panic!("{e}"),
        }
    }

    #[tokio::test]
    async fn an_unchanged_directory_is_not_read_into_a_new_revision() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("a.yaml"), "# nothing declared yet\n").unwrap();
        let source = DirectorySource::new(vec![dir.path().to_path_buf()], "me");
        let first = source.fetch().await.unwrap().id;
        assert!(first.starts_with("dir@sha256:"), "{first}");
        assert_eq!(fetched_id(&source, Some(&first)).await, None);
        assert_eq!(fetched_id(&source, None).await, Some(first.clone()));
        assert_eq!(
            fetched_id(&source, Some("dir@sha256:0")).await,
            Some(first.clone())
        );

        // Any change of a manifest's text, or a new manifest, is a new revision.
        std::fs::write(dir.path().join("a.yaml"), "# still nothing\n").unwrap();
        let second = fetched_id(&source, Some(&first)).await.unwrap();
        assert_ne!(second, first);
        std::fs::write(dir.path().join("b.yml"), "").unwrap();
        let third = fetched_id(&source, Some(&second)).await.unwrap();
        assert_ne!(third, second);
        assert_eq!(source.fetch().await.unwrap().id, third);
    }
}
