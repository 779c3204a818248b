//! Helpers every test story uses: a real server on port 0 (in-process or as
//! the `parlor` binary), a real WebSocket client, and plain HTTP GETs.

use std::{
    io::{BufRead, BufReader, Read},
    net::SocketAddr,
    process::{Child, Command, Stdio},
    time::Duration,
};

use futures_util::{SinkExt, StreamExt};
use parlor::config::Config;
use serde_json::Value;
use tokio::net::TcpStream;
use tokio_tungstenite::{
    tungstenite::{
        client::IntoClientRequest,
        protocol::frame::{
            coding::{CloseCode, Data, OpCode},
            Frame,
        },
        Message,
    },
    MaybeTlsStream, WebSocketStream,
};

/// Small frames go out at once instead of waiting for the peer's delayed ACK.
const DISABLE_NAGLE: bool = true;

/// How long a test waits for any one frame before it fails.
pub const PATIENCE: Duration = Duration::from_secs(5);

/// A server running in a thread of the test process.
pub struct TestServer {
    /// Where it listens.
    pub addr: SocketAddr,
    /// Tells the server thread to shut down.
    stop: Option<tokio::sync::oneshot::Sender<()>>,
}

/// The configuration tests start from: port 0, nothing stored, one worker,
/// the built-in pages.
pub fn test_config() -> Config {
    let mut config = Config::defaults();
    config.server.bind = "127.0.0.1:0".to_string();
    config.server.workers = 1;
    config.store.path = ":memory:".to_string();
    config
}

impl TestServer {
    /// A server with the test configuration.
    pub fn start() -> TestServer {
        TestServer::with(|_| {})
    }

    /// A server with the test configuration changed by `tweak`.
    pub fn with(tweak: impl FnOnce(&mut Config)) -> TestServer {
        // The server's log, with RUST_LOG, shown for a failing test.
        let _ = env_logger::builder().is_test(true).try_init();
        let mut config = test_config();
        tweak(&mut config);
        config.validate().expect("test configuration is valid");
        let (addr_tx, addr_rx) = std::sync::mpsc::channel();
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        std::thread::spawn(move || {
            actix_rt::System::new().block_on(async move {
                let server = parlor::start(config).expect("server binds");
                addr_tx.send(server.addr()).expect("test is waiting");
                let stop = async {
                    let _ = stop_rx.await;
                };
                server.run_until(stop).await.expect("server runs");
            });
        });
        let addr = addr_rx.recv_timeout(PATIENCE).expect("server starts");
        TestServer {
            addr,
            stop: Some(stop_tx),
        }
    }

    /// `ws://…/ws` with `query` (e.g. `"name=Ada"`), or none.
    pub fn ws_url(&self, query: &str) -> String {
        match query {
            "" => format!("ws://{}/ws", self.addr),
            query => format!("ws://{}/ws?{query}", self.addr),
        }
    }

    /// Connects and reads the `welcome`.
    pub async fn connect(&self) -> (Client, Value) {
        self.connect_with("").await
    }

    /// Connects with a query string and reads the `welcome`.
    pub async fn connect_with(&self, query: &str) -> (Client, Value) {
        let mut client = Client::open(&self.ws_url(query)).await;
        let welcome = client.recv_type("welcome").await;
        (client, welcome)
    }

    /// `GET path` → (status, body).
    pub async fn get(&self, path: &str) -> (u16, String) {
        http_get(self.addr, path).await
    }

    /// `POST path` with request `headers`, any status.
    pub async fn post(&self, path: &str, headers: &[(&'static str, &str)]) -> Reply {
        http_post(self.addr, path, headers).await
    }

    /// `GET path` with request `headers`, any status.
    pub async fn fetch(&self, path: &str, headers: &[(&'static str, &str)]) -> Reply {
        http_fetch(self.addr, path, headers).await
    }

    /// `GET path` as JSON; panics unless 200.
    pub async fn get_json(&self, path: &str) -> Value {
        let (status, body) = self.get(path).await;
        assert_eq!(status, 200, "GET {path}: {body}");
        serde_json::from_str(&body).expect("JSON body")
    }

    /// The value of an unlabelled metric, or of one series `name{labels}`.
    pub async fn metric(&self, series: &str) -> f64 {
        metric_value(&self.get("/metrics").await.1, series)
    }

    /// Waits until `/healthz` reports `sessions` open sessions.
    pub async fn wait_for_sessions(&self, sessions: u64) {
        wait_for_sessions(self.addr, sessions, PATIENCE).await;
    }
}

/// Waits (for `within` at most) until `/healthz` on `addr` reports
/// `sessions` open sessions.
pub async fn wait_for_sessions(addr: SocketAddr, sessions: u64, within: Duration) {
    let deadline = tokio::time::Instant::now() + within;
    let mut seen = Value::Null;
    while tokio::time::Instant::now() < deadline {
        let (status, body) = http_get(addr, "/healthz").await;
        assert_eq!(status, 200, "GET /healthz: {body}");
        seen = serde_json::from_str(&body).expect("JSON body");
        if seen["sessions"] == sessions {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("waited for {sessions} sessions, /healthz says {seen}");
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// Reads one series from a Prometheus text exposition (0 when absent).
pub fn metric_value(text: &str, series: &str) -> f64 {
    text.lines()
        .filter(|line| !line.starts_with('#'))
        .find_map(|line| {
            let (name, value) = line.rsplit_once(' ')?;
            (name == series).then(|| value.parse().ok()).flatten()
        })
        .unwrap_or(0.0)
}

/// `GET path` on `addr` → (status, body), any status.
pub async fn http_get(addr: SocketAddr, path: &str) -> (u16, String) {
    let reply = http_fetch(addr, path, &[]).await;
    (reply.status, reply.body)
}

/// An HTTP answer, any status.
#[derive(Debug)]
pub struct Reply {
    /// The status code.
    pub status: u16,
    /// `Content-Type`, empty when absent.
    pub content_type: String,
    /// `ETag`, if any.
    pub etag: Option<String>,
    /// The body as text.
    pub body: String,
}

/// `GET path` on `addr` with request `headers`.
pub async fn http_fetch(addr: SocketAddr, path: &str, headers: &[(&'static str, &str)]) -> Reply {
    http_request("GET", addr, path, headers).await
}

/// `POST path` (no body) on `addr` with request `headers`.
pub async fn http_post(addr: SocketAddr, path: &str, headers: &[(&'static str, &str)]) -> Reply {
    http_request("POST", addr, path, headers).await
}

/// `method path` (no body) on `addr` with request `headers`, any status.
async fn http_request(
    method: &'static str,
    addr: SocketAddr,
    path: &str,
    headers: &[(&'static str, &str)],
) -> Reply {
    let mut request = ureq::http::Request::builder()
        .method(method)
        .uri(format!("http://{addr}{path}"));
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let request = request.body(()).expect("a valid request");
    tokio::task::spawn_blocking(move || reply_of(agent().run(request).expect("HTTP request")))
        .await
        .expect("HTTP thread")
}

/// An HTTP client that returns every status as an answer.
fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into()
}

/// The parts of `response` the tests read.
fn reply_of(mut response: ureq::http::Response<ureq::Body>) -> Reply {
    let header = |name: &str| {
        response
            .headers()
            .get(name)
            .and_then(|value| value.to_str().ok())
            .map(str::to_string)
    };
    let content_type = header("content-type").unwrap_or_default();
    let etag = header("etag");
    Reply {
        status: response.status().as_u16(),
        content_type,
        etag,
        body: response.body_mut().read_to_string().expect("HTTP body"),
    }
}

/// A WebSocket client that answers Pings whenever it reads, and counts
/// the numbered frames it reads as PROTOCOL.md's clients do (every text
/// frame but `welcome` and `resumed`; a `resumed` that did not recover sets
/// the count to its `last`).
pub struct Client {
    /// The connection.
    pub ws: WebSocketStream<MaybeTlsStream<TcpStream>>,
    /// The numbered frames read.
    pub counted: u64,
}

/// How a connection ended, seen from the client.
#[derive(Debug, PartialEq)]
pub enum Ending {
    /// A Close frame with this code.
    Closed(u16),
    /// The connection dropped without a Close frame.
    Dropped,
}

impl Client {
    /// Opens `url`; panics if the handshake fails.
    pub async fn open(url: &str) -> Client {
        let (ws, _) = tokio_tungstenite::connect_async(url)
            .await
            .expect("handshake");
        Client { ws, counted: 0 }
    }

    /// Tries a handshake with extra headers; `Err(status)` if refused.
    pub async fn try_open(url: &str, headers: &[(&'static str, &str)]) -> Result<Client, u16> {
        let mut request = url.into_client_request().expect("valid URL");
        for (name, value) in headers {
            request
                .headers_mut()
                .insert(*name, value.parse().expect("header value"));
        }
        match tokio_tungstenite::connect_async_with_config(request, None, DISABLE_NAGLE).await {
            Ok((ws, _)) => Ok(Client { ws, counted: 0 }),
            Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
                Err(response.status().as_u16())
            }
            Err(err) => panic!("handshake failed without an HTTP status: {err}"),
        }
    }

    /// Sends a JSON value as a text frame.
    pub async fn send(&mut self, value: Value) {
        self.send_text(&value.to_string()).await;
    }

    /// Sends a raw text frame.
    pub async fn send_text(&mut self, text: &str) {
        self.ws.send(Message::text(text)).await.expect("send");
    }

    /// Sends several JSON values as text frames in one write, so that the
    /// server reads them together, before any answer to the first.
    pub async fn send_together(&mut self, values: &[Value]) {
        for value in values {
            self.ws
                .feed(Message::text(value.to_string()))
                .await
                .expect("send");
        }
        self.ws.flush().await.expect("send");
    }

    /// Sends a raw frame of any kind.
    pub async fn send_frame(&mut self, message: Message) {
        self.ws.send(message).await.expect("send");
    }

    /// Sends `text` as one message split over `pieces` frames (a first text
    /// frame, then continuation frames).
    pub async fn send_fragmented(&mut self, text: &str, pieces: usize) {
        let bytes = text.as_bytes();
        let size = bytes.len().div_ceil(pieces);
        for (n, piece) in bytes.chunks(size).enumerate() {
            let opcode = if n == 0 { Data::Text } else { Data::Continue };
            let last = (n + 1) * size >= bytes.len();
            let frame = Frame::message(piece.to_vec(), OpCode::Data(opcode), last);
            self.send_frame(Message::Frame(frame)).await;
        }
    }

    /// The next text frame as JSON, within the patience; Pings are answered
    /// on the way (and do not extend the patience).
    pub async fn recv(&mut self) -> Value {
        let deadline = tokio::time::Instant::now() + PATIENCE;
        loop {
            let frame = tokio::time::timeout_at(deadline, self.ws.next())
                .await
                .expect("a frame within the patience")
                .expect("connection open")
                .expect("frame readable");
            match frame {
                Message::Text(text) => {
                    let frame: Value = serde_json::from_str(&text).expect("server sends JSON");
                    self.count(&frame);
                    return frame;
                }
                Message::Ping(_) | Message::Pong(_) => {}
                other => panic!("expected a text frame, got {other:?}"),
            }
        }
    }

    /// The next text frame as JSON, read and counted as [`Client::recv`]
    /// does, without panicking: `Ok(None)` when nothing comes within
    /// `wait`, `Err` with how the connection ended when it has.
    pub async fn try_recv(&mut self, wait: Duration) -> Result<Option<Value>, Ending> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            let Ok(frame) = tokio::time::timeout_at(deadline, self.ws.next()).await else {
                return Ok(None);
            };
            match frame {
                Some(Ok(Message::Text(text))) => {
                    let frame: Value = serde_json::from_str(&text).expect("server sends JSON");
                    self.count(&frame);
                    return Ok(Some(frame));
                }
                Some(Ok(Message::Close(close))) => {
                    let code = close.map_or(CloseCode::Status, |close| close.code);
                    return Err(Ending::Closed(code.into()));
                }
                Some(Ok(_)) => {}
                Some(Err(_)) | None => return Err(Ending::Dropped),
            }
        }
    }

    /// Counts `frame` as PROTOCOL.md's clients do.
    fn count(&mut self, frame: &Value) {
        match frame["type"].as_str() {
            Some("welcome") => {}
            Some("resumed") => {
                if frame["recovered"] != true {
                    self.counted = frame["last"].as_u64().expect("resumed.last");
                }
            }
            _ => self.counted += 1,
        }
    }

    /// The next text frame, which must have `type` = `kind`.
    pub async fn recv_type(&mut self, kind: &str) -> Value {
        let frame = self.recv().await;
        assert_eq!(frame["type"], kind, "expected {kind}, got {frame}");
        frame
    }

    /// Sends `request` and returns the next frame.
    pub async fn ask(&mut self, request: Value) -> Value {
        self.send(request).await;
        self.recv().await
    }

    /// The text frames that arrive within `wait` of each other (answering
    /// Pings), as JSON; stops at the first quiet `wait`.
    pub async fn drain(&mut self, wait: Duration) -> Vec<Value> {
        let mut frames = Vec::new();
        while let Ok(Some(Ok(frame))) = tokio::time::timeout(wait, self.ws.next()).await {
            if let Message::Text(text) = frame {
                let frame: Value = serde_json::from_str(&text).expect("server sends JSON");
                self.count(&frame);
                frames.push(frame);
            }
        }
        frames
    }

    /// Reads (answering Pings) for `duration`; panics on any text frame or
    /// on the connection ending.
    pub async fn idle(&mut self, duration: Duration) {
        let until = tokio::time::Instant::now() + duration;
        while let Ok(frame) = tokio::time::timeout_at(until, self.ws.next()).await {
            match frame {
                Some(Ok(Message::Ping(_) | Message::Pong(_))) => {}
                other => panic!("expected silence, got {other:?}"),
            }
        }
    }

    /// Reads until the connection ends; says how. Text frames on the way
    /// are skipped.
    pub async fn ending(&mut self) -> Ending {
        loop {
            let frame = tokio::time::timeout(PATIENCE * 4, self.ws.next())
                .await
                .expect("the connection ends within the patience");
            match frame {
                Some(Ok(Message::Close(Some(close)))) => return Ending::Closed(close.code.into()),
                Some(Ok(Message::Close(None))) => return Ending::Closed(CloseCode::Status.into()),
                Some(Ok(_)) => {}
                Some(Err(_)) | None => return Ending::Dropped,
            }
        }
    }
}

/// The `parlor` binary, started as a child process.
pub struct ServerProcess {
    /// The child.
    pub child: Child,
    /// Where it listens.
    pub addr: SocketAddr,
}

/// The `parlor` binary with `args`, port 0 and `env` added to the
/// environment; waits for its "listening" line.
pub fn spawn_binary(args: &[&str], env: &[(&str, &str)]) -> ServerProcess {
    attach(
        binary(args, env)
            .stdout(Stdio::piped())
            .spawn()
            .expect("parlor starts"),
    )
}

/// A started `parlor` child (with stdout piped), once it prints its
/// "listening" line.
pub fn attach(mut child: Child) -> ServerProcess {
    let stdout = child.stdout.take().expect("piped stdout");
    let mut line = String::new();
    BufReader::new(stdout)
        .read_line(&mut line)
        .expect("parlor prints a line");
    let url = line
        .trim()
        .strip_prefix("Parlor is listening on http://")
        .unwrap_or_else(|| panic!("unexpected first line: {line:?}"));
    let addr = url.trim_end_matches('/').parse().expect("an address");
    ServerProcess { child, addr }
}

/// A command for the `parlor` binary with test defaults in its environment.
pub fn binary(args: &[&str], env: &[(&str, &str)]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_parlor"));
    command
        .args(args)
        .env("PARLOR_SERVER__BIND", "127.0.0.1:0")
        .env("PARLOR_STORE__PATH", ":memory:")
        .env("RUST_LOG", "warn")
        .envs(env.iter().copied());
    command
}

impl ServerProcess {
    /// Sends SIGTERM.
    pub fn terminate(&self) {
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .expect("kill runs");
        assert!(status.success());
    }
}

impl ServerProcess {
    /// Sends SIGTERM and returns all the server wrote to its stderr (which
    /// must be piped) by the time it exited.
    pub async fn stop_and_read_stderr(mut self) -> String {
        let mut stderr = self.child.stderr.take().expect("piped stderr");
        self.terminate();
        tokio::task::spawn_blocking(move || {
            let mut text = String::new();
            stderr.read_to_string(&mut text).expect("stderr readable");
            text
        })
        .await
        .expect("reading thread")
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
