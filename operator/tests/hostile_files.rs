//! Files and directories set up to hang, exhaust or leak: special files,
//! symlink loops, links out of the tree, huge files, `$INCLUDE` of host
//! files. Each is refused with a clear error and the rest still loads.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};

use zentralink_model::ZoneName;
use zentralink_operator::provider::Provider;
use zentralink_operator::provider::zonefile::{ZoneFileProvider, parse_zone_file};
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

// ------------------------------------------------------------------ zone files

fn zone() -> ZoneName {
    ZoneName::parse("acme.example.").unwrap()
}

const ZONE_TEXT: &str = "$ORIGIN acme.example.\n$TTL 3600\n@ IN SOA ns1 hostmaster ( 1 3600 600 1209600 300 )\n@ IN NS ns1\nns1 IN A 192.0.2.1\nwww IN TXT ( \"v=spf1\" \"-all\" )\n";

#[test]
fn include_is_refused_and_reads_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let secret = dir.path().join("app.env");
    std::fs::write(&secret, "leaked IN TXT \"DB_PASSWORD=hunter2\"\n").unwrap();
    for include in [
        format!("$INCLUDE {}\n", secret.display()),
        format!("$include {} sub\n", secret.display()),
        "$INCLUDE /dev/zero\n".to_owned(),
        "$INCLUDE app.env\n".to_owned(),
    ] {
        let text = format!("{ZONE_TEXT}{include}");
        let err = parse_zone_file(&text, &zone()).unwrap_err();
        assert!(err.contains("line 7: $INCLUDE is not allowed"), "{err}");
        assert!(!err.contains("hunter2"));
    }
}

#[tokio::test]
async fn crlf_zone_files_read_as_bind_reads_them() {
    let lf = parse_zone_file(ZONE_TEXT, &zone()).unwrap();
    let crlf = parse_zone_file(&ZONE_TEXT.replace('\n', "\r\n"), &zone()).unwrap();
    assert_eq!(lf, crlf);
    let bom = parse_zone_file(&format!("\u{feff}{ZONE_TEXT}"), &zone()).unwrap();
    assert_eq!(lf, bom);
    // through the provider, from disk
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("acme.example.zone"),
        ZONE_TEXT.replace('\n', "\r\n"),
    )
    .unwrap();
    let p = ZoneFileProvider::new(dir.path());
    assert_eq!(p.read_zone(&zone()).await.unwrap(), Some(lf));
}

#[tokio::test]
async fn special_and_huge_zone_files_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let p = ZoneFileProvider::new(dir.path());
    mkfifo(&dir.path().join("acme.example.zone"));
    let err = p.read_zone(&zone()).await.unwrap_err().to_string();
    assert!(err.contains("is a FIFO"), "{err}");
    std::fs::remove_file(dir.path().join("acme.example.zone")).unwrap();
    symlink("/dev/zero", dir.path().join("acme.example.zone")).unwrap();
    let err = p.read_zone(&zone()).await.unwrap_err().to_string();
    assert!(err.contains("character device"), "{err}");
    std::fs::remove_file(dir.path().join("acme.example.zone")).unwrap();
    let f = std::fs::File::create(dir.path().join("acme.example.zone")).unwrap();
    f.set_len(1 << 30).unwrap();
    let err = p.read_zone(&zone()).await.unwrap_err().to_string();
    assert!(err.contains("larger than 268435456 bytes"), "{err}");
}

#[test]
fn a_garbage_line_is_not_echoed_whole() {
    let garbage = format!("{}\n", "x".repeat(100_000));
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("acme.example.zone"),
        format!("{ZONE_TEXT}{garbage}"),
    )
    .unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let shown = rt
        .block_on(ZoneFileProvider::new(dir.path()).read_zone(&zone()))
        .unwrap_err()
        .to_string();
    assert!(
        shown.len() < 1_000,
        "{} bytes: {}",
        shown.len(),
        &shown[..200]
    );
}
