//! The service over real TCP (`zentralink_web::serve`): a client that
//! trickles its headers is cut off, a whole request is answered with the
//! peer's address reaching the handlers, and shutdown lets the request in
//! flight finish.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::time::Duration;

use sqlx::PgPool;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use zentralink_store::MIGRATOR;
use zentralink_web::{AppState, WebConfig, serve};

struct Running {
    addr: std::net::SocketAddr,
    stop: tokio::sync::oneshot::Sender<()>,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
}

async fn start(pool: PgPool, config: WebConfig) -> Running {
    let h = common::harness_with(pool, config.clone());
    let state = AppState::new(h.store.clone(), config).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(serve(listener, state, async move {
        let _ = stopped.await;
    }));
    Running { addr, stop, task }
}

/// Everything the server sends until it closes, within `limit`.
async fn read_all(stream: &mut TcpStream, limit: Duration) -> Option<String> {
    let mut out = Vec::new();
    tokio::time::timeout(limit, stream.read_to_end(&mut out))
        .await
        .ok()?
        .ok()?;
    Some(String::from_utf8_lossy(&out).into_owned())
}

#[sqlx::test(migrator = "MIGRATOR")]
async fn a_client_trickling_its_headers_is_cut_off(pool: PgPool) {
    let server = start(
        pool,
        WebConfig {
            secure_cookies: false,
            header_read_timeout: Duration::from_secs(1),
            ..WebConfig::default()
        },
    )
    .await;
    let mut slow = TcpStream::connect(server.addr).await.unwrap();
    slow.write_all(b"GET /login HTTP/1.1\r\nHost: zl.test\r\n")
        .await
        .unwrap();
    // The rest of the headers never come: the server closes the connection
    // (perhaps after a 408) well before 10 s.
    let answer = read_all(&mut slow, Duration::from_secs(10))
        .await
        .expect("the connection was still open after 10 s");
    assert!(
        answer.is_empty() || answer.starts_with("HTTP/1.1 408"),
        "{answer}"
    );

    // A whole request on another connection is answered.
    let mut quick = TcpStream::connect(server.addr).await.unwrap();
    quick
        .write_all(b"GET /login HTTP/1.1\r\nHost: zl.test\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let answer = read_all(&mut quick, Duration::from_secs(10)).await.unwrap();
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(answer.contains("content-security-policy"), "{answer}");

    server.stop.send(()).unwrap();
    server.task.await.unwrap().unwrap();
}

#[sqlx::test(migrator = "MIGRATOR")]
async fn the_peer_address_reaches_the_audit_log(pool: PgPool) {
    let server = start(
        pool.clone(),
        WebConfig {
            secure_cookies: false,
            ..WebConfig::default()
        },
    )
    .await;
    // The sign-in form's token and its cookie, then a wrong password.
    let mut page = TcpStream::connect(server.addr).await.unwrap();
    page.write_all(b"GET /login HTTP/1.1\r\nHost: zl.test\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let answer = read_all(&mut page, Duration::from_secs(10)).await.unwrap();
    let csrf = answer
        .split("name=\"csrf\" value=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .unwrap()
        .to_owned();
    let cookie = answer
        .lines()
        .find_map(|l| l.strip_prefix("set-cookie: "))
        .and_then(|c| c.split(';').next())
        .unwrap()
        .to_owned();
    let body = format!("email=nobody%40acme.example&password=wrong-password-1&csrf={csrf}");
    let request = format!(
        "POST /login HTTP/1.1\r\nHost: zl.test\r\nOrigin: http://zl.test\r\nCookie: {cookie}\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let mut post = TcpStream::connect(server.addr).await.unwrap();
    post.write_all(request.as_bytes()).await.unwrap();
    let answer = read_all(&mut post, Duration::from_secs(30)).await.unwrap();
    assert!(answer.starts_with("HTTP/1.1 401"), "{answer}");
    let ip: Option<String> = sqlx::query_scalar(
        "SELECT ip FROM audit_events WHERE action = 'login.failed' ORDER BY id DESC LIMIT 1",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(ip.as_deref(), Some("127.0.0.1"));
    server.stop.send(()).unwrap();
    server.task.await.unwrap().unwrap();
}
