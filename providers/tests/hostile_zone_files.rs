//! Zone files set up to hang, exhaust or leak: `$INCLUDE` of host files,
//! FIFOs, devices, huge files; and the line endings BIND accepts.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::os::unix::fs::symlink;
use std::path::Path;

use zentralink_model::ZoneName;
use zentralink_providers::Provider;
use zentralink_providers::zonefile::{ZoneFileProvider, parse_zone_file};

fn mkfifo(path: &Path) {
    let ok = std::process::Command::new("mkfifo")
        .arg(path)
        .status()
        .unwrap()
        .success();
    assert!(ok, "mkfifo {}", path.display());
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
