//! The binary against hostile input and a hostile environment: credentials
//! go only where the operator meant them to, a closed standard output is an
//! error and never a panic, wrong keys and database URLs say what is wrong.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::mpsc;
use std::time::Duration;

fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn command(args: &[&str], envs: &[(&str, &str)]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_zentralink"));
    cmd.args(args)
        .current_dir(repo_root())
        .env("NO_COLOR", "1")
        .env_remove("DATABASE_URL")
        .env_remove("PLATFORM_ENCRYPTION_KEY")
        .env_remove("PLATFORM_ENCRYPTION_KEY_PREVIOUS")
        .env_remove("ZENTRALINK_ALLOW_CREDENTIAL_ENV");
    for (k, v) in envs {
        cmd.env(k, v);
    }
    cmd
}

fn run(args: &[&str], envs: &[(&str, &str)], stdin: Option<&str>) -> Output {
    let mut child = command(args, envs)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    if let Some(input) = stdin {
        let _ = child.stdin.take().unwrap().write_all(input.as_bytes());
    }
    drop(child.stdin.take());
    child.wait_with_output().unwrap()
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn generate_key() -> String {
    text(&run(&["secrets", "generate-key"], &[], None).stdout)
        .trim()
        .to_owned()
}

/// A one-shot HTTP server that records the headers of every request it gets
/// and answers 401. Returns its URL and the receiver of header blocks.
fn header_recorder() -> (String, mpsc::Receiver<String>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { return };
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut headers = String::new();
            loop {
                let mut line = String::new();
                if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                    break;
                }
                headers.push_str(&line);
            }
            let _ = stream.write_all(
                b"HTTP/1.1 401 Unauthorized\r\ncontent-length: 0\r\nconnection: close\r\n\r\n",
            );
            if tx.send(headers).is_err() {
                return;
            }
        }
    });
    (url, rx)
}

/// `secrets encrypt` of `value` for acme's connection acme/pdns.
fn encrypt_for_acme(key: &str, value: &str) -> String {
    let out = run(
        &[
            "secrets",
            "encrypt",
            "--tenant",
            "acme",
            "--namespace",
            "acme",
            "--connection",
            "pdns",
        ],
        &[("PLATFORM_ENCRYPTION_KEY", key)],
        Some(value),
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    text(&out.stdout).trim().to_owned()
}

/// A tenant with a PowerDNS connection whose credentials block is `credentials`.
fn manifests(dir: &Path, tenant: &str, url: &str, credentials: &str) -> PathBuf {
    let path = dir.join(format!("{tenant}.yaml"));
    std::fs::write(
        &path,
        format!(
            "apiVersion: dns.zentralink.net/v1alpha1
kind: Tenant
metadata: {{ name: {tenant} }}
spec: {{ displayName: {tenant}, namespaces: [{tenant}], allowedDomains: [{tenant}.example.] }}
---
apiVersion: dns.zentralink.net/v1alpha1
kind: ProviderConnection
metadata: {{ name: pdns, namespace: {tenant} }}
spec:
  type: powerdns
  powerdns: {{ url: \"{url}\" }}
  credentials: {credentials}
---
apiVersion: dns.zentralink.net/v1alpha1
kind: DnsZone
metadata: {{ name: zone, namespace: {tenant} }}
spec:
  zone: {tenant}.example.
  providerRef: {{ name: pdns }}
  recordSets:
    - {{ name: www, type: A, values: [192.0.2.1] }}
"
        ),
    )
    .unwrap();
    path
}

// ------------------------------------------------------------ credentials from the environment

#[test]
fn only_allowed_environment_variables_are_sent() {
    let (url, requests) = header_recorder();
    let dir = tempfile::tempdir().unwrap();
    let key = generate_key();

    // the platform key, named by a manifest: refused at validation, nothing sent
    let m = manifests(dir.path(), "acme", &url, "{ env: PLATFORM_ENCRYPTION_KEY }");
    let out = run(
        &["plan", m.to_str().unwrap()],
        &[("PLATFORM_ENCRYPTION_KEY", &key)],
        None,
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("never sent to a provider"),
        "{}",
        text(&out.stderr)
    );
    assert!(!text(&out.stderr).contains(&key));
    assert!(
        requests.recv_timeout(Duration::from_millis(300)).is_err(),
        "nothing was sent"
    );

    // an arbitrary variable, not allowed: refused before anything is sent
    let m = manifests(dir.path(), "acme", &url, "{ env: SOME_APP_SECRET }");
    let out = run(
        &["plan", m.to_str().unwrap()],
        &[("SOME_APP_SECRET", "app-secret-value")],
        None,
    );
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stdout) + &text(&out.stderr);
    assert!(
        err.contains("--allow-credential-env SOME_APP_SECRET"),
        "{err}"
    );
    assert!(
        requests.recv_timeout(Duration::from_millis(300)).is_err(),
        "nothing was sent"
    );

    // the same variable, allowed by the operator: sent as the API key
    let out = run(
        &[
            "plan",
            m.to_str().unwrap(),
            "--allow-credential-env",
            "SOME_APP_SECRET",
        ],
        &[("SOME_APP_SECRET", "app-secret-value")],
        None,
    );
    assert_eq!(out.status.code(), Some(1), "the recorder answers 401");
    let headers = requests.recv_timeout(Duration::from_secs(10)).unwrap();
    assert!(
        headers
            .to_ascii_lowercase()
            .contains("x-api-key: app-secret-value"),
        "{headers}"
    );

    // the conventional prefix needs no allowing
    let m = manifests(
        dir.path(),
        "acme",
        &url,
        "{ env: ZENTRALINK_CREDENTIAL_PDNS }",
    );
    let _ = run(
        &["plan", m.to_str().unwrap()],
        &[("ZENTRALINK_CREDENTIAL_PDNS", "prefixed-value")],
        None,
    );
    let headers = requests.recv_timeout(Duration::from_secs(10)).unwrap();
    assert!(
        headers
            .to_ascii_lowercase()
            .contains("x-api-key: prefixed-value"),
        "{headers}"
    );

    // the operator cannot allow the process's own variables
    for own in ["PLATFORM_ENCRYPTION_KEY", "DATABASE_URL", "CRON_TOKEN"] {
        let out = run(
            &["plan", m.to_str().unwrap(), "--allow-credential-env", own],
            &[],
            None,
        );
        assert_eq!(out.status.code(), Some(2), "{own}");
        assert!(
            text(&out.stderr).contains("never sent to a provider"),
            "{}",
            text(&out.stderr)
        );
    }
}

// ------------------------------------------------------------ encrypted credentials are bound

#[test]
fn an_encrypted_credential_copied_to_another_tenant_does_not_decrypt() {
    let (url, requests) = header_recorder();
    let dir = tempfile::tempdir().unwrap();
    let key = generate_key();
    let env = [("PLATFORM_ENCRYPTION_KEY", key.as_str())];
    let sealed = encrypt_for_acme(&key, "acme-api-key\n");
    assert!(sealed.starts_with("enc:v1:"));

    // in acme's own connection it decrypts and is sent
    let acme = manifests(
        dir.path(),
        "acme",
        &url,
        &format!("{{ value: \"{sealed}\" }}"),
    );
    let _ = run(&["plan", acme.to_str().unwrap()], &env, None);
    let headers = requests.recv_timeout(Duration::from_secs(10)).unwrap();
    assert!(
        headers
            .to_ascii_lowercase()
            .contains("x-api-key: acme-api-key"),
        "{headers}"
    );

    // copied into globex's connection, it does not decrypt and nothing is sent
    let globex_dir = tempfile::tempdir().unwrap();
    let globex = manifests(
        globex_dir.path(),
        "globex",
        &url,
        &format!("{{ value: \"{sealed}\" }}"),
    );
    let out = run(&["plan", globex.to_str().unwrap()], &env, None);
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stdout) + &text(&out.stderr);
    assert!(
        err.contains("tenant globex, connection globex/pdns"),
        "{err}"
    );
    assert!(err.contains("encrypted for another place"), "{err}");
    assert!(!err.contains("acme-api-key"));
    assert!(
        requests.recv_timeout(Duration::from_millis(300)).is_err(),
        "nothing was sent"
    );

    // encrypting needs the binding
    let out = run(&["secrets", "encrypt"], &env, Some("x"));
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("--tenant"));
}

#[test]
fn wrong_platform_keys_say_what_is_wrong() {
    let (url, _requests) = header_recorder();
    let dir = tempfile::tempdir().unwrap();
    let key = generate_key();
    let sealed = encrypt_for_acme(&key, "k");
    let m = manifests(
        dir.path(),
        "acme",
        &url,
        &format!("{{ value: \"{sealed}\" }}"),
    );
    let b64 = |n: usize| {
        let mut child = Command::new("base64")
            .arg("-w0")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(&vec![7u8; n])
            .unwrap();
        text(&child.wait_with_output().unwrap().stdout)
    };
    let (k31, k33) = (b64(31), b64(33));
    for (current, previous, expected) in [
        (
            k31.as_str(),
            None,
            "PLATFORM_ENCRYPTION_KEY is not a base64-encoded 32-byte key (it decodes to 31 bytes)",
        ),
        (k33.as_str(), None, "(it decodes to 33 bytes)"),
        (
            "not base64!",
            None,
            "PLATFORM_ENCRYPTION_KEY is not valid base64",
        ),
        (
            key.as_str(),
            Some(k31.as_str()),
            "PLATFORM_ENCRYPTION_KEY_PREVIOUS is not a base64-encoded 32-byte key",
        ),
    ] {
        let mut env = vec![("PLATFORM_ENCRYPTION_KEY", current)];
        if let Some(p) = previous {
            env.push(("PLATFORM_ENCRYPTION_KEY_PREVIOUS", p));
        }
        let out = run(&["plan", m.to_str().unwrap()], &env, None);
        let all = text(&out.stdout) + &text(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{all}");
        assert!(all.contains(expected), "expected {expected:?} in {all}");
        assert!(!all.contains("is not set"), "{all}");
    }
}

#[test]
fn rotating_manifest_credentials_keeps_their_binding() {
    let (url, requests) = header_recorder();
    let dir = tempfile::tempdir().unwrap();
    let old = generate_key();
    let sealed = encrypt_for_acme(&old, "rotated-secret");
    let m = manifests(
        dir.path(),
        "acme",
        &url,
        &format!("{{ value: \"{sealed}\" }}"),
    );
    let new = generate_key();
    let out = run(
        &["secrets", "rotate", dir.path().to_str().unwrap()],
        &[
            ("PLATFORM_ENCRYPTION_KEY", &new),
            ("PLATFORM_ENCRYPTION_KEY_PREVIOUS", &old),
        ],
        None,
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("re-encrypted 1 manifest value(s)"));
    let rewritten = std::fs::read_to_string(&m).unwrap();
    assert!(!rewritten.contains(&sealed));
    // only the new key is needed now, and the value still reaches the server
    let _ = run(
        &["plan", m.to_str().unwrap()],
        &[("PLATFORM_ENCRYPTION_KEY", &new)],
        None,
    );
    let headers = requests.recv_timeout(Duration::from_secs(10)).unwrap();
    assert!(
        headers
            .to_ascii_lowercase()
            .contains("x-api-key: rotated-secret"),
        "{headers}"
    );
}

// ------------------------------------------------------------ closed standard output

/// Runs with standard output a pipe whose reading end is already closed.
fn with_closed_stdout(args: &[&str], envs: &[(&str, &str)]) -> Output {
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    let child = command(args, envs)
        .stdin(Stdio::null())
        .stdout(writer)
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.wait_with_output().unwrap()
}

fn with_full_stdout(args: &[&str], envs: &[(&str, &str)]) -> Output {
    let full = std::fs::OpenOptions::new()
        .write(true)
        .open("/dev/full")
        .unwrap();
    command(args, envs)
        .stdin(Stdio::null())
        .stdout(full)
        .stderr(Stdio::piped())
        .output()
        .unwrap()
}

#[test]
fn a_closed_or_full_standard_output_is_an_error_not_a_panic() {
    let scratch = tempfile::tempdir().unwrap();
    let status = Command::new("cp")
        .arg("-a")
        .arg(repo_root().join("examples"))
        .arg(scratch.path())
        .status()
        .unwrap();
    assert!(status.success());
    let examples = scratch.path().join("examples");
    let examples = examples.to_str().unwrap();
    let commands: Vec<Vec<&str>> = vec![
        vec!["validate", examples],
        vec!["plan", examples],
        vec!["provider", "test", examples],
        vec![
            "import",
            examples,
            "--connection",
            "acme/files",
            "--zone",
            "acme.example.",
        ],
        vec!["secrets", "generate-key"],
        vec!["crds"],
        vec!["--help"],
    ];
    for args in &commands {
        for (how, out) in [
            ("closed pipe", with_closed_stdout(args, &[])),
            ("/dev/full", with_full_stdout(args, &[])),
        ] {
            let err = text(&out.stderr);
            assert_ne!(
                out.status.code(),
                Some(101),
                "{args:?} on a {how} panicked: {err}"
            );
            assert!(!err.contains("panicked"), "{args:?} on a {how}: {err}");
            assert_eq!(out.status.code(), Some(1), "{args:?} on a {how}: {err}");
            assert!(
                err.contains("cannot write to standard output") || err.contains("error"),
                "{args:?} on a {how}: {err}"
            );
        }
    }
}

// ------------------------------------------------------------ database URLs

#[test]
fn other_databases_are_refused_at_once() {
    for url in ["mysql://root@127.0.0.1:3306/zentralink", "sqlite://zl.db"] {
        let out = run(
            &["migrate"],
            &[
                ("DATABASE_URL", url),
                ("PLATFORM_ENCRYPTION_KEY", &generate_key()),
            ],
            None,
        );
        assert_eq!(out.status.code(), Some(1));
        let err = text(&out.stderr);
        assert!(
            err.contains("ZentraLink stores its data in PostgreSQL"),
            "{err}"
        );
        assert!(!err.contains("waiting for"), "no retries: {err}");
    }
}

#[test]
fn an_unreachable_database_says_what_it_waits_for() {
    let out = run(
        &["migrate"],
        &[
            (
                "DATABASE_URL",
                "postgres://zl:do-not-print@127.0.0.1:1/zentralink",
            ),
            ("PLATFORM_ENCRYPTION_KEY", &generate_key()),
        ],
        None,
    );
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    assert!(
        err.contains("waiting for PostgreSQL at 127.0.0.1:1/zentralink"),
        "{err}"
    );
    assert!(err.contains("attempt 1 of 8"), "{err}");
    assert!(err.contains("could not reach PostgreSQL"), "{err}");
    assert!(!err.contains("do-not-print"), "{err}");
}
