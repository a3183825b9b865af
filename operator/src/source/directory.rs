//! Reads manifests from files and directories (recursively): the same
//! documents `kubectl apply` takes. Does I/O (file reads).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use zentralink_model::catalog::Catalog;
use zentralink_model::diagnostics::{Diagnostic, Diagnostics};
use zentralink_model::documents::{LoadedObject, SourceFile, parse_documents};

/// Every `*.yaml` / `*.yml` file under the paths, in a stable order. Hidden
/// files and directories (`.git`) are skipped.
pub fn manifest_files(paths: &[PathBuf]) -> (Vec<PathBuf>, Diagnostics) {
    let mut files = Vec::new();
    let mut errors = Diagnostics::default();
    for path in paths {
        if path.is_dir() {
            walk(path, &mut files, &mut errors);
        } else if path.exists() {
            files.push(path.clone());
        } else {
            errors.push(file_error(path, "no such file or directory"));
        }
    }
    (files, errors)
}

fn walk(dir: &Path, files: &mut Vec<PathBuf>, errors: &mut Diagnostics) {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) => {
            errors.push(file_error(dir, &format!("cannot read directory: {e}")));
            return;
        }
    };
    let mut paths: Vec<PathBuf> = entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
    paths.sort();
    for p in paths {
        let hidden = p
            .file_name()
            .and_then(|n| n.to_str())
            .is_some_and(|n| n.starts_with('.'));
        if hidden {
            continue;
        }
        if p.is_dir() {
            walk(&p, files, errors);
        } else if matches!(p.extension().and_then(|e| e.to_str()), Some("yaml" | "yml")) {
            files.push(p);
        }
    }
}

fn file_error(path: &Path, message: &str) -> Diagnostic {
    Diagnostic {
        file: path.display().to_string(),
        line: None,
        path: String::new(),
        message: message.to_owned(),
    }
}

/// Reads and parses every manifest under the paths.
pub fn load_objects(paths: &[PathBuf]) -> (Vec<LoadedObject>, Diagnostics) {
    let (files, mut errors) = manifest_files(paths);
    let mut objects = Vec::new();
    for file in files {
        let text = match std::fs::read_to_string(&file) {
            Ok(t) => t,
            Err(e) => {
                errors.push(file_error(&file, &format!("cannot read: {e}")));
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
