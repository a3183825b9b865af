//! Helpers for the git source tests: repositories made with the `git` CLI in
//! temporary directories, manifests to put in them, and the servers that
//! serve them (git daemon, git http-backend behind a small HTTP server, the
//! sshd of scripts/sshd-server.sh). Does I/O (files, processes, sockets).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, dead_code)]

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::Response;

/// Someone who commits.
#[derive(Debug, Clone, Copy)]
pub struct Person {
    pub name: &'static str,
    pub email: &'static str,
}

impl Person {
    /// How a revision names them as a requester.
    pub fn identity(&self) -> String {
        format!("{} <{}>", self.name, self.email)
    }
}

pub const ALICE: Person = Person {
    name: "Alice Admin",
    email: "alice@acme.example",
};
pub const BOB: Person = Person {
    name: "Bob Builder",
    email: "bob@acme.example",
};

/// Runs git in `dir` with no user or system configuration, as `who`;
/// panics with git's error output when it fails. Returns its output, trimmed.
pub fn git_as(dir: &Path, who: Person, args: &[&str]) -> String {
    let output = git_command(dir, who)
        .args(args)
        .output()
        .unwrap_or_else(|e| {
            panic!("git is not installed or not runnable ({e}): install the git package")
        });
    assert!(
        output.status.success(),
        "git {args:?} in {} failed: {}",
        dir.display(),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).trim().to_owned()
}

pub fn git(dir: &Path, args: &[&str]) -> String {
    git_as(dir, ALICE, args)
}

fn git_command(dir: &Path, who: Person) -> Command {
    let mut command = Command::new("git");
    command
        .current_dir(dir)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_TERMINAL_PROMPT", "0")
        .env("GIT_AUTHOR_NAME", who.name)
        .env("GIT_AUTHOR_EMAIL", who.email)
        .env("GIT_COMMITTER_NAME", who.name)
        .env("GIT_COMMITTER_EMAIL", who.email)
        .args([
            "-c",
            "init.defaultBranch=main",
            "-c",
            "user.name=Test",
            "-c",
            "user.email=test@example.invalid",
            "-c",
            "core.symlinks=true",
        ]);
    command
}

/// A bare repository (the "server") and a working clone that pushes to it.
pub struct Upstream {
    pub dir: tempfile::TempDir,
    pub bare: PathBuf,
    pub work: PathBuf,
}

impl Upstream {
    pub fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let bare = dir.path().join("zones.git");
        let work = dir.path().join("work");
        std::fs::create_dir_all(&work).unwrap();
        git(dir.path(), &["init", "-q", "--bare", "zones.git"]);
        git(&work, &["init", "-q"]);
        git(&work, &["remote", "add", "origin", bare.to_str().unwrap()]);
        Self { dir, bare, work }
    }

    /// The bare repository as a `file://` URL.
    pub fn url(&self) -> String {
        format!("file://{}", self.bare.display())
    }

    /// A state directory for sources, inside the temporary directory.
    pub fn state_dir(&self) -> PathBuf {
        self.dir.path().join("state")
    }

    pub fn write(&self, path: &str, text: &str) {
        let file = self.work.join(path);
        std::fs::create_dir_all(file.parent().unwrap()).unwrap();
        std::fs::write(file, text).unwrap();
    }

    pub fn remove(&self, path: &str) {
        std::fs::remove_file(self.work.join(path)).unwrap();
    }

    /// Writes the files of the standard fixture (see [`acme_files`]).
    pub fn write_acme(&self, prefix: &str) {
        for (path, text) in acme_files() {
            self.write(&join(prefix, path), &text);
        }
    }

    /// Commits everything as `who`; returns the commit id.
    pub fn commit(&self, who: Person, message: &str) -> String {
        git_as(&self.work, who, &["add", "-A"]);
        git_as(
            &self.work,
            who,
            &["commit", "-q", "--allow-empty", "-m", message],
        );
        self.head()
    }

    pub fn head(&self) -> String {
        git(&self.work, &["rev-parse", "HEAD"])
    }

    /// Pushes the current branch to the same branch upstream, forcing.
    pub fn push(&self) {
        git(&self.work, &["push", "-q", "--force", "origin", "HEAD"]);
    }

    pub fn push_tags(&self) {
        git(&self.work, &["push", "-q", "--force", "origin", "--tags"]);
    }

    pub fn git(&self, args: &[&str]) -> String {
        git(&self.work, args)
    }

    pub fn git_as(&self, who: Person, args: &[&str]) -> String {
        git_as(&self.work, who, args)
    }

    /// Puts a blob made from `content` at `path` in the index, without
    /// writing it to the working tree.
    pub fn stage_blob(&self, path: &str, mode: &str, content: &[u8]) -> String {
        let mut child = git_command(&self.work, ALICE)
            .args(["hash-object", "-w", "--stdin"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        child.stdin.take().unwrap().write_all(content).unwrap();
        let output = child.wait_with_output().unwrap();
        assert!(output.status.success());
        let id = String::from_utf8(output.stdout).unwrap().trim().to_owned();
        self.git(&[
            "update-index",
            "--add",
            "--cacheinfo",
            &format!("{mode},{id},{path}"),
        ]);
        id
    }

    /// Commits what is in the index only (not `add -A`).
    pub fn commit_index(&self, who: Person, message: &str) -> String {
        git_as(&self.work, who, &["commit", "-q", "-m", message]);
        self.head()
    }
}

pub fn join(prefix: &str, path: &str) -> String {
    if prefix.is_empty() {
        path.to_owned()
    } else {
        format!("{prefix}/{path}")
    }
}

pub const TENANT: &str = "\
apiVersion: dns.zentralink.net/v1alpha1
kind: Tenant
metadata:
  name: acme
spec:
  displayName: ACME Corporation
  namespaces: [acme]
  allowedDomains: [acme.example.]
";

pub const PROVIDERS: &str = "\
apiVersion: dns.zentralink.net/v1alpha1
kind: ProviderConnection
metadata:
  name: files
  namespace: acme
spec:
  type: zonefile
  zonefile:
    directory: ../zonefiles/acme
  mode: ReadOnly
";

/// A DnsZone `name` for `zone` with one A record set `www` holding `address`.
pub fn zone_yaml(name: &str, zone: &str, address: &str) -> String {
    format!(
        "\
apiVersion: dns.zentralink.net/v1alpha1
kind: DnsZone
metadata:
  name: {name}
  namespace: acme
spec:
  zone: {zone}
  providerRef: {{ name: files }}
  ownership: Owned
  drift: Report
  recordSets:
    - {{ name: \"@\", type: TXT, values: ['\"hello\"'] }}
    - {{ name: www, type: A, values: [{address}] }}
"
    )
}

/// One tenant, one connection and two zones, in four files:
/// `tenants/acme.yaml`, `acme/providers.yaml`, `acme/acme.example.yaml`
/// (zone `acme-example`) and `acme/mail.yaml` (zone `mail-acme-example`).
pub fn acme_files() -> Vec<(&'static str, String)> {
    vec![
        ("tenants/acme.yaml", TENANT.to_owned()),
        ("acme/providers.yaml", PROVIDERS.to_owned()),
        (
            "acme/acme.example.yaml",
            zone_yaml("acme-example", "acme.example.", "192.0.2.10"),
        ),
        (
            "acme/mail.yaml",
            zone_yaml("mail-acme-example", "mail.acme.example.", "192.0.2.25"),
        ),
    ]
}

/// A port on 127.0.0.1 nothing listened on a moment ago.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Waits until something accepts connections on the port.
fn wait_for_port(port: u16, child: &mut Child, what: &str) -> bool {
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if let Ok(Some(status)) = child.try_wait() {
            eprintln!("{what} exited: {status}");
            return false;
        }
        if TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    false
}

/// `git daemon` serving every repository under a directory on 127.0.0.1;
/// killed when dropped.
pub struct GitDaemon {
    child: Child,
    pub port: u16,
}

impl GitDaemon {
    pub fn start(base_path: &Path) -> Self {
        for _ in 0..5 {
            let port = free_port();
            let mut child = git_command(base_path, ALICE)
                .args([
                    "daemon",
                    "--reuseaddr",
                    "--export-all",
                    "--listen=127.0.0.1",
                    &format!("--port={port}"),
                    &format!("--base-path={}", base_path.display()),
                    &base_path.display().to_string(),
                ])
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap_or_else(|e| panic!("cannot run git daemon ({e}): install the git package"));
            if wait_for_port(port, &mut child, "git daemon") {
                return Self { child, port };
            }
            let _ = child.kill();
            let _ = child.wait();
        }
        panic!("git daemon did not start on 127.0.0.1");
    }
}

impl Drop for GitDaemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Repositories under `project_root` served over smart HTTP by
/// `git http-backend` (CGI), to requests carrying `Authorization: Basic`
/// with `token` as the password. Stops with the test's runtime.
pub struct HttpGitServer {
    pub addr: SocketAddr,
    pub requests: Arc<std::sync::Mutex<Vec<String>>>,
}

struct HttpGitState {
    project_root: PathBuf,
    token: String,
    /// `METHOD path status` of each request.
    requests: Arc<std::sync::Mutex<Vec<String>>>,
}

impl HttpGitServer {
    pub async fn start(project_root: &Path, token: &str) -> Self {
        let requests = Arc::new(std::sync::Mutex::new(Vec::new()));
        let state = Arc::new(HttpGitState {
            project_root: project_root.to_path_buf(),
            token: token.to_owned(),
            requests: Arc::clone(&requests),
        });
        let router = axum::Router::new().fallback(serve_git).with_state(state);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            axum::serve(listener, router).await.unwrap();
        });
        Self { addr, requests }
    }

    pub fn url(&self, repository: &str) -> String {
        format!("http://{}/{repository}", self.addr)
    }
}

fn authorized(request: &Request, token: &str) -> bool {
    let Some(value) = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
    else {
        return false;
    };
    let Some(encoded) = value.strip_prefix("Basic ") else {
        return false;
    };
    let Ok(decoded) = data_encoding::BASE64.decode(encoded.trim().as_bytes()) else {
        return false;
    };
    let decoded = String::from_utf8_lossy(&decoded);
    decoded
        .split_once(':')
        .is_some_and(|(_, password)| password == token)
}

async fn serve_git(State(state): State<Arc<HttpGitState>>, request: Request) -> Response {
    let line = format!("{} {}", request.method(), request.uri());
    if !authorized(&request, &state.token) {
        state.requests.lock().unwrap().push(format!("{line} 401"));
        return Response::builder()
            .status(StatusCode::UNAUTHORIZED)
            .header(header::WWW_AUTHENTICATE, "Basic realm=\"zentralink-test\"")
            .body(Body::from("authentication required\n"))
            .unwrap();
    }
    let (parts, body) = request.into_parts();
    let method = parts.method.to_string();
    let path = parts.uri.path().to_owned();
    let query = parts.uri.query().unwrap_or_default().to_owned();
    let header_text = |name: &str| {
        parts
            .headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned()
    };
    let content_type = header_text("content-type");
    let content_encoding = header_text("content-encoding");
    let git_protocol = header_text("git-protocol");
    let body = axum::body::to_bytes(body, 64 << 20).await.unwrap();
    let project_root = state.project_root.clone();
    let output = tokio::task::spawn_blocking(move || {
        let mut child = Command::new("git")
            .arg("http-backend")
            .env_clear()
            .env("PATH", "/usr/local/bin:/usr/bin:/bin")
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .env("GIT_CONFIG_GLOBAL", "/dev/null")
            .env("GIT_PROJECT_ROOT", &project_root)
            .env("GIT_HTTP_EXPORT_ALL", "1")
            .env("GATEWAY_INTERFACE", "CGI/1.1")
            .env("SERVER_PROTOCOL", "HTTP/1.1")
            .env("REQUEST_METHOD", &method)
            .env("PATH_INFO", &path)
            .env("QUERY_STRING", &query)
            .env("CONTENT_TYPE", &content_type)
            .env("CONTENT_LENGTH", body.len().to_string())
            .env("HTTP_CONTENT_ENCODING", &content_encoding)
            .env("GIT_PROTOCOL", &git_protocol)
            .env("REMOTE_USER", "token")
            .env("REMOTE_ADDR", "127.0.0.1")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut stdin = child.stdin.take().unwrap();
        let writer = std::thread::spawn(move || {
            let _ = stdin.write_all(&body);
        });
        let mut stdout = Vec::new();
        child
            .stdout
            .take()
            .unwrap()
            .read_to_end(&mut stdout)
            .unwrap();
        let _ = writer.join();
        let _ = child.wait();
        stdout
    })
    .await
    .unwrap();
    let response = cgi_response(&output);
    state
        .requests
        .lock()
        .unwrap()
        .push(format!("{line} {}", response.status().as_u16()));
    response
}

/// An HTTP response from a CGI program's output: headers, a blank line, the body.
fn cgi_response(output: &[u8]) -> Response {
    let (head, body) = match output.windows(4).position(|w| w == b"\r\n\r\n") {
        Some(at) => (&output[..at], &output[at + 4..]),
        None => match output.windows(2).position(|w| w == b"\n\n") {
            Some(at) => (&output[..at], &output[at + 2..]),
            None => (output, &[][..]),
        },
    };
    let mut response = Response::builder();
    let mut status = StatusCode::OK;
    for line in String::from_utf8_lossy(head).lines() {
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        let value = value.trim();
        if name.eq_ignore_ascii_case("status") {
            let code = value.split_whitespace().next().unwrap_or("500");
            status = code
                .parse::<u16>()
                .ok()
                .and_then(|c| StatusCode::from_u16(c).ok())
                .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        } else if let Ok(value) = HeaderValue::from_str(value) {
            response = response.header(name.trim(), value);
        }
    }
    response
        .status(status)
        .body(Body::from(body.to_vec()))
        .unwrap()
}

/// The sshd scripts/sshd-server.sh runs: where it listens, who may log in,
/// with which key, and a known_hosts file holding its host key.
pub struct SshServer {
    pub port: u16,
    pub user: String,
    pub client_key: PathBuf,
    pub known_hosts: PathBuf,
}

/// The running sshd, from the environment (`source .zentralink/servers/sshd.env`)
/// or else from that file; fails with how to start it.
pub fn ssh_server() -> SshServer {
    let how =
        "sshd is not running: start it with scripts/sshd-server.sh start (scripts/test.sh does)";
    let mut values = std::collections::HashMap::new();
    for name in [
        "ZL_SSHD_PORT",
        "ZL_SSHD_USER",
        "ZL_SSHD_CLIENT_KEY",
        "ZL_SSHD_KNOWN_HOSTS",
    ] {
        if let Ok(value) = std::env::var(name) {
            values.insert(name.to_owned(), value);
        }
    }
    if values.len() < 4 {
        let env_file =
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../.zentralink/servers/sshd.env");
        let text = std::fs::read_to_string(&env_file)
            .unwrap_or_else(|e| panic!("{how} ({} is unreadable: {e})", env_file.display()));
        for pair in text.split_whitespace().filter(|w| *w != "export") {
            if let Some((name, value)) = pair.split_once('=') {
                values
                    .entry(name.to_owned())
                    .or_insert_with(|| value.to_owned());
            }
        }
    }
    let get = |name: &str| {
        values
            .get(name)
            .cloned()
            .unwrap_or_else(|| panic!("{how} ({name} is not set)"))
    };
    let server = SshServer {
        port: get("ZL_SSHD_PORT")
            .parse()
            .unwrap_or_else(|_| panic!("{how} (ZL_SSHD_PORT is not a port)")),
        user: get("ZL_SSHD_USER"),
        client_key: PathBuf::from(get("ZL_SSHD_CLIENT_KEY")),
        known_hosts: PathBuf::from(get("ZL_SSHD_KNOWN_HOSTS")),
    };
    if TcpStream::connect(("127.0.0.1", server.port)).is_err() {
        panic!("{how} (nothing listens on 127.0.0.1:{})", server.port);
    }
    server
}

/// Makes an ed25519 key pair with ssh-keygen; returns the private key's path.
pub fn ssh_keygen(dir: &Path, name: &str) -> PathBuf {
    let key = dir.join(name);
    let status = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-C", name, "-f"])
        .arg(&key)
        .status()
        .unwrap_or_else(|e| panic!("cannot run ssh-keygen ({e}): install openssh-client"));
    assert!(status.success());
    key
}

/// A child process killed when dropped.
pub struct KillOnDrop(pub Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `openssl s_server` on 127.0.0.1 with a fresh self-signed certificate for
/// 127.0.0.1 that nobody trusts; returns it and its port.
pub fn untrusted_tls_server(dir: &Path) -> (KillOnDrop, u16) {
    let (cert, key) = (dir.join("tls.crt"), dir.join("tls.key"));
    let made = Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
        ])
        .args(["-nodes", "-days", "1", "-subj", "/CN=127.0.0.1"])
        .args(["-addext", "subjectAltName=IP:127.0.0.1", "-keyout"])
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .unwrap_or_else(|e| panic!("cannot run openssl ({e}): install the openssl package"));
    assert!(made.success(), "openssl req failed");
    for _ in 0..5 {
        let port = free_port();
        let mut child = Command::new("openssl")
            .args(["s_server", "-quiet", "-www", "-accept"])
            .arg(format!("127.0.0.1:{port}"))
            .arg("-cert")
            .arg(&cert)
            .arg("-key")
            .arg(&key)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        if wait_for_port(port, &mut child, "openssl s_server") {
            return (KillOnDrop(child), port);
        }
        let _ = child.kill();
        let _ = child.wait();
    }
    panic!("openssl s_server did not start on 127.0.0.1");
}
