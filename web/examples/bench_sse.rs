//! The live-update benchmark's client (scripts/bench-sse.sh runs it against
//! the release `zentralink web`): signs in as a tenant's owner, opens a
//! ticket, connects SUBSCRIBERS event streams to it (`GET
//! /tickets/{id}/events`, each its own TCP connection), then posts COMMENTS
//! replies one after another and measures, for every reply, the time from
//! just before its POST to its arrival on each stream. Prints the latency
//! percentiles over all (reply, stream) pairs, the time until the last of
//! the streams had each reply, and the web process's memory (VmRSS, VmHWM
//! from /proc/PID/status) before the streams, with them open, and after.
//! Does I/O: HTTP on loopback, /proc.
//!
//!   bench_sse SITE EMAIL SUBSCRIBERS COMMENTS WEB_PID   (password in BENCH_PASSWORD)

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};
use axum::body::Body;
use axum::http::header::{CONTENT_TYPE, COOKIE, LOCATION, ORIGIN, SET_COOKIE};
use axum::http::{Request, StatusCode};
use futures_util::StreamExt;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use tokio::sync::Mutex;

type HttpClient = Client<HttpConnector, Body>;

/// How long the benchmark waits for a reply to reach every stream.
const DELIVERY_DEADLINE: Duration = Duration::from_secs(60);

struct Answer {
    status: StatusCode,
    headers: axum::http::HeaderMap,
    body: String,
}

async fn send(client: &HttpClient, request: Request<Body>) -> Result<Answer> {
    let response = client.request(request).await?;
    let status = response.status();
    let headers = response.headers().clone();
    let bytes = axum::body::to_bytes(Body::new(response.into_body()), usize::MAX).await?;
    Ok(Answer {
        status,
        headers,
        body: String::from_utf8_lossy(&bytes).into_owned(),
    })
}

fn csrf_of(html: &str) -> Result<String> {
    let marker = "name=\"csrf\" value=\"";
    let start = html.find(marker).ok_or_else(|| anyhow!("no csrf field"))? + marker.len();
    let end = html[start..]
        .find('"')
        .ok_or_else(|| anyhow!("csrf field unterminated"))?
        + start;
    Ok(html[start..end].to_owned())
}

fn encode(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn form(fields: &[(&str, &str)]) -> Body {
    let pairs: Vec<String> = fields
        .iter()
        .map(|(k, v)| format!("{}={}", encode(k), encode(v)))
        .collect();
    Body::from(pairs.join("&"))
}

fn memory(pid: &str) -> String {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.split_whitespace().next()?.parse::<f64>().ok())
            .map_or_else(|| "?".into(), |kib| format!("{:.1} MiB", kib / 1024.0))
    };
    format!("VmRSS {}, VmHWM {}", field("VmRSS:"), field("VmHWM:"))
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1000.0)
}

/// Reads one stream until it has seen `comments` replies; records when each arrived.
async fn subscriber(
    client: HttpClient,
    url: String,
    cookie: String,
    comments: usize,
    arrivals: Arc<Mutex<Vec<Vec<Option<Instant>>>>>,
    index: usize,
    connected: tokio::sync::mpsc::Sender<Result<()>>,
) {
    let request = Request::get(&url)
        .header(COOKIE, &cookie)
        .body(Body::empty())
        .unwrap();
    let response = match client.request(request).await {
        Ok(r) if r.status() == StatusCode::OK => r,
        Ok(r) => {
            let _ = connected
                .send(Err(anyhow!("stream {index} answered {}", r.status())))
                .await;
            return;
        }
        Err(e) => {
            let _ = connected.send(Err(anyhow!("stream {index}: {e}"))).await;
            return;
        }
    };
    let mut body = Body::new(response.into_body()).into_data_stream();
    let mut buffer = String::new();
    let mut seen = 0;
    let mut told = false;
    while seen < comments {
        let Some(Ok(chunk)) = body.next().await else {
            return;
        };
        let at = Instant::now();
        buffer.push_str(&String::from_utf8_lossy(&chunk));
        while let Some(end) = buffer.find("\n\n") {
            let frame: String = buffer.drain(..end + 2).collect();
            // The opening event (replayed) says the stream is live.
            if !told {
                told = true;
                let _ = connected.send(Ok(())).await;
            }
            if let Some(k) = frame
                .split("bench-reply-")
                .nth(1)
                .and_then(|rest| rest.split(|c: char| !c.is_ascii_digit()).next())
                .and_then(|n| n.parse::<usize>().ok())
                && k < comments
            {
                arrivals.lock().await[index][k] = Some(at);
                seen += 1;
            }
        }
    }
}

#[tokio::main]
async fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let [_, site, email, subscribers, comments, pid] = args.as_slice() else {
        bail!(
            "usage: bench_sse SITE EMAIL SUBSCRIBERS COMMENTS WEB_PID (password in BENCH_PASSWORD)"
        );
    };
    let password = std::env::var("BENCH_PASSWORD").context("BENCH_PASSWORD is not set")?;
    let subscribers: usize = subscribers.parse()?;
    let comments: usize = comments.parse()?;
    let client: HttpClient = Client::builder(TokioExecutor::new())
        .pool_max_idle_per_host(usize::MAX)
        .build_http();

    // Sign in.
    let login = send(
        &client,
        Request::get(format!("{site}/login")).body(Body::empty())?,
    )
    .await?;
    let login_cookie = login
        .headers
        .get_all(SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok()?.split(';').next().map(str::to_owned))
        .collect::<Vec<_>>()
        .join("; ");
    let signed = send(
        &client,
        Request::post(format!("{site}/login"))
            .header(ORIGIN, site.as_str())
            .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
            .header(COOKIE, &login_cookie)
            .body(form(&[
                ("email", email),
                ("password", &password),
                ("csrf", &csrf_of(&login.body)?),
            ]))?,
    )
    .await?;
    if signed.status != StatusCode::SEE_OTHER {
        bail!("signing in answered {}", signed.status);
    }
    let cookie = signed
        .headers
        .get_all(SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok()?.split(';').next().map(str::to_owned))
        .find(|c| c.starts_with("zl_session="))
        .ok_or_else(|| anyhow!("no session cookie"))?;

    // Open a ticket.
    let new = send(
        &client,
        Request::get(format!("{site}/tickets/new"))
            .header(COOKIE, &cookie)
            .body(Body::empty())?,
    )
    .await?;
    let csrf = csrf_of(&new.body)?;
    let opened = send(
        &client,
        Request::post(format!("{site}/tickets"))
            .header(ORIGIN, site.as_str())
            .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
            .header(COOKIE, &cookie)
            .body(form(&[
                ("subject", "Live-update benchmark"),
                ("body", "opened"),
                ("priority", "NORMAL"),
                ("csrf", &csrf),
            ]))?,
    )
    .await?;
    let ticket_path = opened
        .headers
        .get(LOCATION)
        .and_then(|v| v.to_str().ok())
        .ok_or_else(|| anyhow!("opening the ticket answered {}", opened.status))?
        .to_owned();
    println!("ticket: {ticket_path}");
    println!("memory before the streams: {}", memory(pid));

    // Connect the streams, a hundred at a time.
    let arrivals = Arc::new(Mutex::new(vec![vec![None; comments]; subscribers]));
    let (connected_tx, mut connected_rx) = tokio::sync::mpsc::channel(subscribers.max(1));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for index in 0..subscribers {
        tasks.push(tokio::spawn(subscriber(
            client.clone(),
            format!("{site}{ticket_path}/events"),
            cookie.clone(),
            comments,
            arrivals.clone(),
            index,
            connected_tx.clone(),
        )));
        if index % 100 == 99 {
            tokio::task::yield_now().await;
        }
    }
    drop(connected_tx);
    for _ in 0..subscribers {
        match tokio::time::timeout(DELIVERY_DEADLINE, connected_rx.recv()).await {
            Ok(Some(Ok(()))) => {}
            Ok(Some(Err(e))) => bail!("{e}"),
            Ok(None) | Err(_) => bail!("not every stream connected"),
        }
    }
    println!(
        "streams: {subscribers} connected in {:.2} s",
        started.elapsed().as_secs_f64()
    );
    tokio::time::sleep(Duration::from_secs(1)).await;
    println!("memory with {subscribers} streams: {}", memory(pid));

    // Post the replies, one after another.
    let mut posted = Vec::new();
    for k in 0..comments {
        let page = send(
            &client,
            Request::get(format!("{site}{ticket_path}"))
                .header(COOKIE, &cookie)
                .body(Body::empty())?,
        )
        .await?;
        let csrf = csrf_of(&page.body)?;
        let body = format!("bench-reply-{k} ");
        let at = Instant::now();
        let answer = send(
            &client,
            Request::post(format!("{site}{ticket_path}/comments"))
                .header(ORIGIN, site.as_str())
                .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
                .header(COOKIE, &cookie)
                .body(form(&[("body", &body), ("csrf", &csrf)]))?,
        )
        .await?;
        if answer.status != StatusCode::SEE_OTHER {
            bail!("reply {k} answered {}", answer.status);
        }
        posted.push(at);
        // Let it spread before the next one (one reply at a time is measured).
        let deadline = Instant::now() + DELIVERY_DEADLINE;
        loop {
            let all = arrivals.lock().await.iter().all(|a| a[k].is_some());
            if all {
                break;
            }
            if Instant::now() > deadline {
                bail!("reply {k} did not reach every stream within {DELIVERY_DEADLINE:?}");
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
    for task in tasks {
        task.await?;
    }
    let arrivals = arrivals.lock().await;
    let mut each = Vec::new();
    let mut last_of_each = Vec::new();
    for (k, at) in posted.iter().enumerate() {
        let mut slowest = Duration::ZERO;
        for stream in arrivals.iter() {
            let d = stream[k].map_or(Duration::MAX, |r| r.duration_since(*at));
            slowest = slowest.max(d);
            each.push(d);
        }
        last_of_each.push(slowest);
    }
    each.sort_unstable();
    last_of_each.sort_unstable();
    println!(
        "delivery, each (reply, stream) pair ({} deliveries): p50 {}, p99 {}, max {}",
        each.len(),
        ms(percentile(&each, 50.0)),
        ms(percentile(&each, 99.0)),
        ms(percentile(&each, 100.0))
    );
    println!(
        "delivery to all {subscribers} streams, per reply ({comments} replies): p50 {}, p99 {}, max {}",
        ms(percentile(&last_of_each, 50.0)),
        ms(percentile(&last_of_each, 99.0)),
        ms(percentile(&last_of_each, 100.0))
    );
    println!("memory after the replies: {}", memory(pid));
    Ok(())
}
