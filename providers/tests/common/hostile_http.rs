//! Local HTTP servers that misbehave, for the hardening tests of the HTTP
//! providers: one that records whatever reaches it, one that answers with
//! redirects (forwarding the rest to a real or fake API), one whose answers
//! are huge or endless (generated as they are sent, never held in memory),
//! and one that answers from a script. Does I/O (TCP listeners on loopback).

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{Method, StatusCode};
use axum::response::Response;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// Starts an axum app on a free loopback port; gives its `http://` address.
async fn serve(app: axum::Router) -> String {
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind a loopback port");
    let url = format!("http://{}", listener.local_addr().expect("local address"));
    tokio::spawn(async move { axum::serve(listener, app).await });
    url
}

/// Copies the request's method, path, query, headers and body to `upstream`
/// and gives back its answer.
async fn forward(client: &reqwest::Client, upstream: &str, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let path = parts
        .uri
        .path_and_query()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_default();
    let body = axum::body::to_bytes(body, usize::MAX)
        .await
        .expect("read the request body");
    let method = reqwest::Method::from_bytes(parts.method.as_str().as_bytes()).expect("a method");
    let mut forwarded = client.request(method, format!("{upstream}{path}"));
    for (name, value) in &parts.headers {
        if name != "host" {
            forwarded = forwarded.header(name.as_str(), value.as_bytes());
        }
    }
    let answer = forwarded
        .body(body.to_vec())
        .send()
        .await
        .expect("forward the request upstream");
    let mut response = Response::builder().status(answer.status().as_u16());
    for (name, value) in answer.headers() {
        if name != "transfer-encoding" && name != "content-length" {
            response = response.header(name.as_str(), value.as_bytes());
        }
    }
    let bytes = answer.bytes().await.expect("read the upstream answer");
    response
        .body(Body::from(bytes.to_vec()))
        .expect("a response")
}

// ------------------------------------------------------------------ recorder

/// A server that answers 200 `{}` to everything and remembers each request
/// with its headers: where a redirect would have led.
#[derive(Debug, Clone)]
pub struct Recorder {
    url: String,
    seen: Arc<Mutex<Vec<String>>>,
}

impl Recorder {
    pub async fn start() -> Recorder {
        let seen: Arc<Mutex<Vec<String>>> = Arc::default();
        let app = axum::Router::new()
            .fallback(
                |State(seen): State<Arc<Mutex<Vec<String>>>>, request: Request| async move {
                    let headers: Vec<String> = request
                        .headers()
                        .iter()
                        .map(|(n, v)| format!("{n}: {}", String::from_utf8_lossy(v.as_bytes())))
                        .collect();
                    seen.lock().unwrap().push(format!(
                        "{} {} [{}]",
                        request.method(),
                        request.uri(),
                        headers.join("; ")
                    ));
                    Response::new(Body::from("{}"))
                },
            )
            .with_state(seen.clone());
        Recorder {
            url: serve(app).await,
            seen,
        }
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    /// Every request received, as `METHOD uri [headers]`.
    pub fn requests(&self) -> Vec<String> {
        self.seen.lock().unwrap().clone()
    }
}

// ------------------------------------------------------------------ redirector

/// A server that answers requests with a redirect to `target` (every
/// request, or only writes), forwarding the others to an upstream API.
#[derive(Debug, Clone)]
pub struct Redirector {
    url: String,
    state: Arc<RedirectState>,
}

#[derive(Debug)]
struct RedirectState {
    target: String,
    /// 302 for reads; writes get 307, which keeps the method and the body.
    only_writes: bool,
    upstream: Option<String>,
    client: reqwest::Client,
    redirected: AtomicUsize,
    forwarded: AtomicUsize,
}

impl Redirector {
    /// Answers every request `302 Found` with `Location: <target><path>`.
    pub async fn everything_to(target: &str) -> Redirector {
        Redirector::start(target, false, None).await
    }

    /// Forwards reads to `upstream` and answers writes `307 Temporary
    /// Redirect` with `Location: <target><path>`.
    pub async fn writes_to(target: &str, upstream: &str) -> Redirector {
        Redirector::start(target, true, Some(upstream.to_owned())).await
    }

    async fn start(target: &str, only_writes: bool, upstream: Option<String>) -> Redirector {
        zentralink_providers::install_tls_provider();
        let state = Arc::new(RedirectState {
            target: target.trim_end_matches('/').to_owned(),
            only_writes,
            upstream,
            client: reqwest::Client::new(),
            redirected: AtomicUsize::new(0),
            forwarded: AtomicUsize::new(0),
        });
        let app = axum::Router::new()
            .fallback(redirect_handler)
            .with_state(state.clone());
        Redirector {
            url: serve(app).await,
            state,
        }
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    /// How many requests were answered with a redirect.
    pub fn redirected(&self) -> usize {
        self.state.redirected.load(Ordering::SeqCst)
    }

    /// How many requests were forwarded upstream.
    pub fn forwarded(&self) -> usize {
        self.state.forwarded.load(Ordering::SeqCst)
    }
}

async fn redirect_handler(State(state): State<Arc<RedirectState>>, request: Request) -> Response {
    let is_read = request.method() == Method::GET;
    if state.only_writes
        && is_read
        && let Some(upstream) = &state.upstream
    {
        state.forwarded.fetch_add(1, Ordering::SeqCst);
        return forward(&state.client, upstream, request).await;
    }
    state.redirected.fetch_add(1, Ordering::SeqCst);
    let status = if state.only_writes {
        StatusCode::TEMPORARY_REDIRECT
    } else {
        StatusCode::FOUND
    };
    let location = format!(
        "{}{}",
        state.target,
        request
            .uri()
            .path_and_query()
            .map(|p| p.as_str())
            .unwrap_or("/")
    );
    Response::builder()
        .status(status)
        .header("Location", location)
        .body(Body::empty())
        .expect("a response")
}

// ------------------------------------------------------------------ huge answers

/// How a [`HugeAnswer`] sends its body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Size {
    /// `Transfer-Encoding: chunked`, without end.
    Endless,
    /// `Transfer-Encoding: chunked`, this many bytes.
    Chunked(u64),
    /// `Content-Length: n`, then n bytes (as long as the client reads).
    Announced(u64),
}

/// A raw HTTP/1.1 server answering every request with `status` and a body
/// of `size`, generated as it is written: the test process never holds it.
#[derive(Debug, Clone)]
pub struct HugeAnswer {
    url: String,
    state: Arc<HugeState>,
}

#[derive(Debug)]
struct HugeState {
    status: u16,
    size: Size,
    requests: AtomicUsize,
    /// Body bytes written to sockets, over all requests.
    sent: AtomicU64,
    /// Connections whose answer is still being written.
    open: AtomicUsize,
    stopped: AtomicBool,
}

/// Bytes per write; one chunk of a chunked body.
const PIECE: usize = 16 * 1024;

impl HugeAnswer {
    pub async fn start(status: u16, size: Size) -> HugeAnswer {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind a loopback port");
        let url = format!("http://{}", listener.local_addr().expect("local address"));
        let state = Arc::new(HugeState {
            status,
            size,
            requests: AtomicUsize::new(0),
            sent: AtomicU64::new(0),
            open: AtomicUsize::new(0),
            stopped: AtomicBool::new(false),
        });
        let shared = state.clone();
        tokio::spawn(async move {
            while let Ok((socket, _)) = listener.accept().await {
                if shared.stopped.load(Ordering::SeqCst) {
                    break;
                }
                let state = shared.clone();
                state.open.fetch_add(1, Ordering::SeqCst);
                tokio::spawn(async move {
                    answer_hugely(socket, &state).await;
                    state.open.fetch_sub(1, Ordering::SeqCst);
                });
            }
        });
        HugeAnswer { url, state }
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    pub fn requests(&self) -> usize {
        self.state.requests.load(Ordering::SeqCst)
    }

    /// Body bytes written so far, over all requests.
    pub fn sent(&self) -> u64 {
        self.state.sent.load(Ordering::SeqCst)
    }

    /// Waits until no answer is being written any more (the client hung up),
    /// at most `limit`; whether that happened.
    pub async fn all_closed_within(&self, limit: Duration) -> bool {
        let start = std::time::Instant::now();
        while self.state.open.load(Ordering::SeqCst) > 0 {
            if start.elapsed() > limit {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        true
    }
}

impl Drop for HugeAnswer {
    fn drop(&mut self) {
        self.state.stopped.store(true, Ordering::SeqCst);
    }
}

/// Reads one request head, then writes the answer until it is complete, the
/// client hangs up, or the server is dropped.
async fn answer_hugely(mut socket: TcpStream, state: &HugeState) {
    let mut head = Vec::new();
    let mut buf = [0u8; 4096];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        match socket.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => head.extend_from_slice(&buf[..n]),
        }
    }
    state.requests.fetch_add(1, Ordering::SeqCst);
    let (framing, total) = match state.size {
        Size::Endless => ("Transfer-Encoding: chunked".to_owned(), None),
        Size::Chunked(n) => ("Transfer-Encoding: chunked".to_owned(), Some(n)),
        Size::Announced(n) => (format!("Content-Length: {n}"), Some(n)),
    };
    let chunked = !matches!(state.size, Size::Announced(_));
    let head = format!(
        "HTTP/1.1 {} Whatever\r\nContent-Type: application/json\r\n{framing}\r\nConnection: close\r\n\r\n",
        state.status
    );
    if socket.write_all(head.as_bytes()).await.is_err() {
        return;
    }
    // A JSON-looking start, then filler.
    let mut piece = vec![b' '; PIECE];
    piece[0] = b'[';
    let mut written = 0u64;
    loop {
        if state.stopped.load(Ordering::SeqCst) {
            return;
        }
        let len = match total {
            Some(t) if written >= t => break,
            Some(t) => usize::try_from((t - written).min(PIECE as u64)).unwrap(),
            None => PIECE,
        };
        let ok = if chunked {
            socket
                .write_all(format!("{len:x}\r\n").as_bytes())
                .await
                .is_ok()
                && socket.write_all(&piece[..len]).await.is_ok()
                && socket.write_all(b"\r\n").await.is_ok()
        } else {
            socket.write_all(&piece[..len]).await.is_ok()
        };
        if !ok {
            return;
        }
        written += len as u64;
        state.sent.fetch_add(len as u64, Ordering::SeqCst);
        piece[0] = b' ';
    }
    if chunked {
        let _ = socket.write_all(b"0\r\n\r\n").await;
    }
    let _ = socket.shutdown().await;
}

// ------------------------------------------------------------------ scripted answers

/// What a [`Scripted`] server answers: from the method, the path and the
/// query, a status and a JSON body.
pub type Script = Arc<dyn Fn(&Method, &str, &str) -> (u16, String) + Send + Sync>;

/// A server answering from a script and logging every request as
/// `METHOD path?query`.
#[derive(Clone)]
pub struct Scripted {
    url: String,
    log: Arc<Mutex<Vec<String>>>,
}

impl std::fmt::Debug for Scripted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Scripted").field("url", &self.url).finish()
    }
}

impl Scripted {
    pub async fn start(script: Script) -> Scripted {
        let log: Arc<Mutex<Vec<String>>> = Arc::default();
        let state = (script, log.clone());
        let app = axum::Router::new()
            .fallback(
                |State((script, log)): State<(Script, Arc<Mutex<Vec<String>>>)>,
                 request: Request| async move {
                    let method = request.method().clone();
                    let path = request.uri().path().to_owned();
                    let query = request.uri().query().unwrap_or_default().to_owned();
                    log.lock()
                        .unwrap()
                        .push(format!("{method} {}", request.uri()));
                    let (status, body) = script(&method, &path, &query);
                    Response::builder()
                        .status(status)
                        .header("Content-Type", "application/json")
                        .body(Body::from(body))
                        .expect("a response")
                },
            )
            .with_state(state);
        Scripted {
            url: serve(app).await,
            log,
        }
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    pub fn requests(&self) -> Vec<String> {
        self.log.lock().unwrap().clone()
    }

    /// Requests other than GET.
    pub fn writes(&self) -> Vec<String> {
        self.requests()
            .into_iter()
            .filter(|r| !r.starts_with("GET "))
            .collect()
    }
}
