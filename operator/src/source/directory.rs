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

use zentralink_model::catalog::Catalog;
use zentralink_model::diagnostics::{Diagnostic, Diagnostics};
use zentralink_model::documents::{LoadedObject, SourceFile, parse_documents};

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

/// Reads and parses every manifest under the paths.
pub fn load_objects(paths: &[PathBuf]) -> (Vec<LoadedObject>, Diagnostics) {
    let (files, mut errors) = manifest_files(paths);
    let mut objects = Vec::new();
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
        let source: Arc<SourceFile> = SourceFile::new(file.display().to_string(), text);
        let (objs, errs) = parse_documents(&source);
        objects.extend(objs);
        errors.extend(errs);
    }
    (objects, errors)
}

/// Reads, parses and validates every manifest under the paths.
pub fn load_catalog(paths: &[PathBuf]) -> (Catalog, Diagnostics) {
    let (objects, mut errors) = load_objects(paths);
    let (catalog, more) = Catalog::build(objects);
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
            let (objects, errors) = load_objects(&paths);
            let digest = manifests_digest(&objects);
            (objects, errors, digest)
        })
        .await
        .map_err(|e| super::SourceError::Unreachable {
            origin: self.name(),
            message: format!("reading the manifests stopped: {e}"),
        })?;
        let (objects, mut errors, digest) = loaded;
        let id = format!("dir@sha256:{digest}");
        if objects.is_empty() && !errors.is_empty() && self.paths.iter().all(|p| !p.exists()) {
            return Err(super::SourceError::Unreachable {
                origin: self.name(),
                message: errors.to_string(),
            });
        }
        let (catalog, more) = Catalog::build(objects);
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
            catalog,
            requesters: std::collections::BTreeMap::new(),
            default_requester: self.requester.clone(),
            files_root: None,
            changes: std::collections::BTreeMap::new(),
        })
    }
}

/// SHA-256 over every manifest file's name and text, in load order.
fn manifests_digest(objects: &[LoadedObject]) -> String {
    use sha2::{Digest, Sha256};
    let mut hasher = Sha256::new();
    let mut last: Option<*const SourceFile> = None;
    for o in objects {
        let file = Arc::as_ptr(&o.origin.file);
        if last == Some(file) {
            continue;
        }
        last = Some(file);
        hasher.update(o.origin.file.name.as_bytes());
        hasher.update([0]);
        hasher.update(o.origin.file.text().as_bytes());
        hasher.update([0]);
    }
    let digest = hasher.finalize();
    digest.iter().map(|b| format!("{b:02x}")).collect()
}
