//! The binary's web service: `web create-owner` with the password from
//! standard input, then `web` serving the sign-in page and signing that
//! owner in over real HTTP. Needs DATABASE_URL (scripts/test.sh sets it).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::Write;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use sqlx::Executor;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};

const PASSWORD: &str = "a password long enough";

fn zentralink(args: &[&str], envs: &[(&str, &str)]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_zentralink"));
    cmd.args(args)
        .env_remove("DATABASE_URL")
        .env_remove("PLATFORM_ENCRYPTION_KEY")
        .env_remove("PLATFORM_ENCRYPTION_KEY_PREVIOUS");
    for (k, v) in envs {
        cmd.env(k, v);
    }
    cmd
}

fn run_with_stdin(mut cmd: Command, input: &str) -> Output {
    cmd.stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    let _ = child.stdin.take().unwrap().write_all(input.as_bytes());
    child.wait_with_output().unwrap()
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// Kills the server when the test ends, passing or not.
struct Server(std::process::Child);
impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

async fn fresh_database() -> String {
    let admin_url = std::env::var("DATABASE_URL")
        .expect("DATABASE_URL must point at PostgreSQL; run scripts/test.sh, which starts it");
    let admin = PgPoolOptions::new()
        .max_connections(1)
        .connect(&admin_url)
        .await
        .unwrap();
    let db = format!("zl_web_{}", uuid::Uuid::new_v4().simple());
    admin
        .execute(sqlx::AssertSqlSafe(format!("CREATE DATABASE {db}")))
        .await
        .unwrap();
    let opts: PgConnectOptions = admin_url.parse().unwrap();
    format!(
        "postgres://{}{}@{}:{}/{db}",
        opts.get_username(),
        std::env::var("PGPASSWORD")
            .map(|p| format!(":{p}"))
            .unwrap_or_default(),
        opts.get_host(),
        opts.get_port()
    )
}

#[tokio::test]
async fn create_owner_then_sign_in_over_http() {
    let url = fresh_database().await;
    let key_out = zentralink(&["secrets", "generate-key"], &[])
        .output()
        .unwrap();
    let key = text(&key_out.stdout).trim().to_owned();
    let env = [
        ("DATABASE_URL", url.as_str()),
        ("PLATFORM_ENCRYPTION_KEY", key.as_str()),
    ];
    let create = [
        "web",
        "create-owner",
        "--email",
        "Ann@Acme.example",
        "--tenant",
        "acme",
    ];

    let out = run_with_stdin(zentralink(&create, &env), "short\n");
    assert_eq!(
        out.status.code(),
        Some(1),
        "a short password must be refused"
    );
    assert!(
        text(&out.stderr).contains("at least 12 characters"),
        "{}",
        text(&out.stderr)
    );

    let out = run_with_stdin(zentralink(&create, &env), &format!("{PASSWORD}\n"));
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains("ann@acme.example"),
        "{}",
        text(&out.stdout)
    );
    assert!(!text(&out.stdout).contains(PASSWORD) && !text(&out.stderr).contains(PASSWORD));

    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let listen = format!("127.0.0.1:{port}");
    let mut cmd = zentralink(&["web", "--listen", &listen, "--insecure-cookies"], &env);
    cmd.stdout(Stdio::null()).stderr(Stdio::null());
    let _server = Server(cmd.spawn().unwrap());
    let base = format!("http://{listen}");
    // reqwest is built without a default TLS provider; plain HTTP still needs one installed.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let mut ready = false;
    for _ in 0..100 {
        if let Ok(r) = client.get(format!("{base}/api/healthz")).send().await
            && r.status().is_success()
        {
            ready = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(ready, "zentralink web did not answer on {listen}");

    let page = client.get(format!("{base}/login")).send().await.unwrap();
    assert!(
        page.headers()["content-security-policy"]
            .to_str()
            .unwrap()
            .contains("frame-ancestors 'none'")
    );
    let login_cookie = page.headers()["set-cookie"].to_str().unwrap().to_owned();
    assert!(login_cookie.starts_with("zl_login=") && !login_cookie.contains("Secure"));
    let login_cookie = login_cookie.split(';').next().unwrap().to_owned();
    let body = page.text().await.unwrap();
    let marker = "name=\"csrf\" value=\"";
    let start = body.find(marker).unwrap() + marker.len();
    let csrf = &body[start..start + body[start..].find('"').unwrap()];

    let form = format!(
        "email=ann%40acme.example&password={}&csrf={csrf}",
        PASSWORD.replace(' ', "+")
    );
    let signed = client
        .post(format!("{base}/login"))
        .header("origin", &base)
        .header("cookie", &login_cookie)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(form)
        .send()
        .await
        .unwrap();
    assert_eq!(signed.status(), 303);
    assert_eq!(signed.headers()["location"], "/dashboard");
    let session = signed
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .find(|c| c.starts_with("zl_session="))
        .expect("no session cookie");
    let session = session.split(';').next().unwrap().to_owned();
    let dashboard = client
        .get(format!("{base}/dashboard"))
        .header("cookie", &session)
        .send()
        .await
        .unwrap();
    assert_eq!(dashboard.status(), 200);
    let html = dashboard.text().await.unwrap();
    assert!(
        html.contains("ann@acme.example") && html.contains("OWNER"),
        "{html}"
    );
}
