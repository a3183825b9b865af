//! Manifest files and directories set up to hang, exhaust or leak: special
//! files, symlink loops, links out of the tree, huge files. Each is refused
//! with a clear error and the rest still loads.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};

use zentralink_operator::source::directory::{load_catalog, manifest_files};

const TENANT: &str = "apiVersion: dns.zentralink.net/v1alpha1\nkind: Tenant\nmetadata: { name: acme }\nspec: { displayName: Acme, namespaces: [acme], allowedDomains: [acme.example.] }\n";

fn mkfifo(path: &Path) {
    let ok = std::process::Command::new("mkfifo")
        .arg(path)
        .status()
        .unwrap()
        .success();
    assert!(ok, "mkfifo {}", path.display());
}

fn repo() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("repo");
    std::fs::create_dir_all(root.join("tenants")).unwrap();
    std::fs::write(root.join("tenants/acme.yaml"), TENANT).unwrap();
    (dir, root)
}

#[test]
fn symlink_loops_and_links_to_the_root_are_not_followed() {
    let (_dir, root) = repo();
    symlink(".", root.join("a")).unwrap();
    symlink(".", root.join("b")).unwrap();
    symlink("..", root.join("tenants/up")).unwrap();
    symlink("/", root.join("slash")).unwrap();
    let (files, errors) = manifest_files(std::slice::from_ref(&root));
    // the one manifest, counted once, however many links lead to it
    assert_eq!(files, vec![root.join("tenants/acme.yaml")], "{errors}");
    assert_eq!(errors.len(), 1, "{errors}");
    assert!(errors.0[0].file.ends_with("slash"), "{errors}");
    assert!(
        errors.0[0]
            .message
            .contains("points out of the scanned directory"),
        "{errors}"
    );
}

#[test]
fn a_link_to_a_file_out_of_the_tree_is_not_read() {
    let (dir, root) = repo();
    let outside = dir.path().join("secret.yaml");
    std::fs::write(&outside, "password: hunter2\n").unwrap();
    symlink(&outside, root.join("leak.yaml")).unwrap();
    let (catalog, errors) = load_catalog(std::slice::from_ref(&root));
    assert_eq!(catalog.tenants.len(), 1);
    assert_eq!(errors.len(), 1, "{errors}");
    assert!(errors.to_string().contains("out of the scanned directory"));
    assert!(!errors.to_string().contains("hunter2"));
}

#[test]
fn links_inside_the_tree_are_followed_once() {
    let (_dir, root) = repo();
    std::fs::create_dir_all(root.join("zones")).unwrap();
    symlink("../tenants/acme.yaml", root.join("zones/also-acme.yaml")).unwrap();
    symlink("tenants", root.join("tenants-again")).unwrap();
    let (catalog, errors) = load_catalog(std::slice::from_ref(&root));
    assert!(errors.is_empty(), "{errors}");
    assert_eq!(catalog.tenants.len(), 1);
}

#[test]
fn special_files_are_refused_in_scanned_directories_and_when_named() {
    let (_dir, root) = repo();
    mkfifo(&root.join("pipe.yaml"));
    symlink("/dev/zero", root.join("zero.yaml")).unwrap();
    let (catalog, errors) = load_catalog(std::slice::from_ref(&root));
    assert_eq!(catalog.tenants.len(), 1, "the regular file still loads");
    let text = errors.to_string();
    // the link to /dev/zero points out of the tree; the FIFO is not a regular file
    assert_eq!(errors.len(), 2, "{text}");
    assert!(text.contains("pipe.yaml: is a FIFO"), "{text}");
    // named explicitly: the FIFO, a device, a link to a device
    let fifo = root.join("pipe.yaml");
    let zero = root.join("zero.yaml");
    for (path, kind) in [
        (fifo.as_path(), "a FIFO"),
        (Path::new("/dev/zero"), "a character device"),
        (Path::new("/dev/urandom"), "a character device"),
        (zero.as_path(), "a character device"),
    ] {
        let (_, errors) = load_catalog(&[path.to_path_buf()]);
        assert_eq!(errors.len(), 1, "{errors}");
        assert!(
            errors.0[0].message.contains(kind)
                && errors.0[0].message.contains("not a regular file"),
            "{errors}"
        );
    }
}

#[test]
fn a_manifest_over_the_limit_is_refused_without_reading_it() {
    let (_dir, root) = repo();
    let big = root.join("big.yaml");
    let file = std::fs::File::create(&big).unwrap();
    // sparse: 1 GiB that takes no disk
    file.set_len(1 << 30).unwrap();
    let (catalog, errors) = load_catalog(std::slice::from_ref(&root));
    assert_eq!(catalog.tenants.len(), 1);
    assert_eq!(errors.len(), 1, "{errors}");
    assert!(
        errors.0[0]
            .message
            .contains("files larger than 67108864 bytes are not read (manifests)"),
        "{errors}"
    );
}
