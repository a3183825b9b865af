//! Helpers the command-line tests share: the environment scripts/test.sh
//! sets, output as text, and the lock that gives one test at a time the
//! PowerDNS server (its sqlite backend refuses concurrent writes).
#![allow(dead_code, clippy::unwrap_used, clippy::panic)]

use std::path::{Path, PathBuf};
use std::time::Duration;

/// A variable scripts/test.sh sets (server addresses, keys).
pub fn env(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| {
        panic!("{name} is not set: scripts/test.sh starts the servers and sets it")
    })
}

pub fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// One test at a time writes to the PowerDNS server at `url`: a lock file
/// per port, taken over when the process that held it is gone.
pub struct PdnsLock(PathBuf);

impl PdnsLock {
    pub fn acquire(url: &str) -> PdnsLock {
        let port = url.rsplit(':').next().unwrap_or("0");
        let path = std::env::temp_dir().join(format!("zentralink-pdns-tests-{port}.lock"));
        loop {
            match std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(&path)
            {
                Ok(mut f) => {
                    use std::io::Write;
                    write!(f, "{}", std::process::id()).unwrap();
                    return PdnsLock(path);
                }
                Err(_) => {
                    let holder = std::fs::read_to_string(&path).unwrap_or_default();
                    if !holder.trim().is_empty()
                        && !Path::new(&format!("/proc/{}", holder.trim())).exists()
                    {
                        let _ = std::fs::remove_file(&path);
                        continue;
                    }
                    std::thread::sleep(Duration::from_millis(20));
                }
            }
        }
    }
}

impl Drop for PdnsLock {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// A database of its own for one test on the PostgreSQL in `DATABASE_URL`:
/// the admin pool (to drop it at the end), the new database's URL and name.
pub async fn fresh_database(prefix: &str) -> (sqlx::PgPool, String, String) {
    use sqlx::Executor;
    let admin_url = env("DATABASE_URL");
    let admin = sqlx::postgres::PgPoolOptions::new()
        .max_connections(1)
        .connect(&admin_url)
        .await
        .unwrap();
    let id = uuid::Uuid::new_v4().simple().to_string();
    let name = format!("{prefix}_{}", &id[..16]);
    admin
        .execute(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .await
        .unwrap();
    let opts: sqlx::postgres::PgConnectOptions = admin_url.parse().unwrap();
    let url = format!(
        "postgres://{}{}@{}:{}/{name}",
        opts.get_username(),
        std::env::var("PGPASSWORD")
            .map(|p| format!(":{p}"))
            .unwrap_or_default(),
        opts.get_host(),
        opts.get_port()
    );
    (admin, url, name)
}

/// Sends a request a test proxy received on to `upstream` (the real server)
/// and gives back the upstream's status and body: what the misbehaving
/// proxies of the fault tests build on.
pub async fn pass_on(
    client: &reqwest::Client,
    upstream: &str,
    method: &axum::http::Method,
    uri: &axum::http::Uri,
    headers: &axum::http::HeaderMap,
    body: axum::body::Bytes,
) -> (axum::http::StatusCode, Vec<u8>) {
    let url = format!(
        "{upstream}{}",
        uri.path_and_query().map_or("", |q| q.as_str())
    );
    let mut req = client.request(
        reqwest::Method::from_bytes(method.as_str().as_bytes()).unwrap(),
        url,
    );
    for (k, v) in headers {
        if k != "host" && k != "content-length" {
            req = req.header(k.as_str(), v.as_bytes());
        }
    }
    let answer = req.body(body.to_vec()).send().await.unwrap();
    let status = axum::http::StatusCode::from_u16(answer.status().as_u16()).unwrap();
    (status, answer.bytes().await.unwrap().to_vec())
}

/// Runs git in `repo` as `author` ("Name email"), author and committer alike.
pub fn git_as(repo: &Path, args: &[&str], author: &str) -> std::process::Output {
    let (name, email) = author.split_once(' ').unwrap();
    std::process::Command::new("git")
        .args(args)
        .current_dir(repo)
        .env("GIT_AUTHOR_NAME", name)
        .env("GIT_AUTHOR_EMAIL", email)
        .env("GIT_COMMITTER_NAME", name)
        .env("GIT_COMMITTER_EMAIL", email)
        .output()
        .unwrap()
}
