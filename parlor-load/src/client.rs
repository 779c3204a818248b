//! Opening a session's WebSocket (from one of several loopback source
//! addresses, with Nagle off) and reading its frames as JSON.

use futures_util::{SinkExt, StreamExt};
use serde_json::Value;
use tokio_tungstenite::tungstenite::Message;

use crate::report::Shared;

pub(crate) type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

thread_local! {
    /// How many source addresses connections are spread over.
    pub(crate) static SOURCES: std::cell::Cell<u8> = const { std::cell::Cell::new(1) };
}

/// The server's address in a `ws://` URL (an IP address, or localhost).
pub(crate) fn server_addr(url: &str) -> Result<std::net::SocketAddr, String> {
    let uri: tokio_tungstenite::tungstenite::http::Uri =
        url.parse().map_err(|err| format!("bad url: {err}"))?;
    let host = uri.host().unwrap_or("127.0.0.1");
    let port = uri.port_u16().unwrap_or(80);
    format!("{}:{port}", host.replace("localhost", "127.0.0.1"))
        .parse()
        .map_err(|_| format!("{host} is not an IP address"))
}

/// Connects session `n`, from source address 127.0.0.(1 + n mod K) when
/// the server is on loopback.
pub(crate) async fn dial(url: &str, n: u32) -> Result<Socket, String> {
    let stream = tcp(server_addr(url)?, n).await?;
    let (socket, _) =
        tokio_tungstenite::client_async(url, tokio_tungstenite::MaybeTlsStream::Plain(stream))
            .await
            .map_err(|err| match err {
                // Its Display would add the reason phrase, or nothing useful.
                tokio_tungstenite::tungstenite::Error::Http(response) => {
                    format!("HTTP {}", response.status().as_u16())
                }
                err => format!("handshake: {err}"),
            })?;
    Ok(socket)
}

/// A TCP connection to `server` for session `n`, from source address
/// 127.0.0.(1 + n mod K) when the server is on loopback, with Nagle off.
pub(crate) async fn tcp(
    server: std::net::SocketAddr,
    n: u32,
) -> Result<tokio::net::TcpStream, String> {
    let socket = tokio::net::TcpSocket::new_v4().map_err(|err| err.to_string())?;
    if server.ip().is_loopback() {
        let sources = u32::from(SOURCES.with(std::cell::Cell::get));
        let source = std::net::Ipv4Addr::new(127, 0, 0, 1 + (n % sources) as u8);
        socket
            .bind((source, 0).into())
            .map_err(|err| format!("bind: {err}"))?;
    }
    let stream = socket
        .connect(server)
        .await
        .map_err(|err| format!("connect: {err}"))?;
    // Nagle's algorithm would hold small frames back for the peer's delayed ACK.
    stream.set_nodelay(true).map_err(|err| err.to_string())?;
    Ok(stream)
}

pub(crate) async fn open(url: &str, n: u32, tally: &Shared) -> Option<Socket> {
    match dial(url, n).await {
        Ok(socket) => {
            tally.borrow_mut().connected += 1;
            Some(socket)
        }
        Err(err) => {
            tally.borrow_mut().fail(err);
            None
        }
    }
}

/// A frame read from the server as JSON: `None` when the connection ended
/// (counted as a failure, with how it ended), `Some(None)` for a frame that
/// is not a JSON text.
pub(crate) fn event_of(
    frame: Option<Result<Message, tokio_tungstenite::tungstenite::Error>>,
    tally: &Shared,
) -> Option<Option<Value>> {
    let reason = match frame {
        Some(Ok(Message::Text(text))) => return Some(serde_json::from_str(&text).ok()),
        Some(Ok(Message::Close(Some(close)))) => {
            format!("closed by the server ({})", u16::from(close.code))
        }
        Some(Ok(Message::Close(None))) => "closed by the server".to_string(),
        Some(Ok(_)) => return Some(None),
        Some(Err(err)) => format!("dropped: {err}"),
        None => "dropped by the server".to_string(),
    };
    tally.borrow_mut().fail(reason);
    None
}

/// How long a plain HTTP request may take.
const HTTP_PATIENCE: std::time::Duration = std::time::Duration::from_secs(10);

/// The `http://` address of the server behind a `ws://…/ws` URL, without
/// its path: `path` is added after it.
pub(crate) fn http_url(ws_url: &str, path: &str) -> String {
    let base = ws_url
        .replacen("ws://", "http://", 1)
        .rsplit_once('/')
        .map(|(base, _)| base.to_string())
        .unwrap_or_default();
    format!("{base}{path}")
}

/// GET `url` (off this thread): its status and body, or why there is none.
pub(crate) async fn http_get(url: &str) -> Result<(u16, String), String> {
    let url = url.to_string();
    tokio::task::spawn_blocking(move || {
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(HTTP_PATIENCE))
            .build()
            .into();
        let mut response = agent.get(&url).call().map_err(|err| err.to_string())?;
        let status = response.status().as_u16();
        let body = response
            .body_mut()
            .read_to_string()
            .map_err(|err| err.to_string())?;
        Ok((status, body))
    })
    .await
    .map_err(|err| err.to_string())?
}

/// What `next_json` says when nothing came in time.
pub(crate) const NO_FRAME: &str = "no frame in time";

/// Sends `request` as a text frame.
pub(crate) async fn send_json(socket: &mut Socket, request: &Value) -> Result<(), String> {
    socket
        .send(Message::text(request.to_string()))
        .await
        .map_err(|err| format!("sending {request}: {err}"))
}

/// The next JSON frame until `until`, or why there is none (`NO_FRAME`
/// when nothing came in time).
pub(crate) async fn next_json(
    socket: &mut Socket,
    until: tokio::time::Instant,
) -> Result<Value, String> {
    loop {
        match tokio::time::timeout_at(until, socket.next()).await {
            Err(_) => return Err(NO_FRAME.to_string()),
            Ok(Some(Ok(Message::Text(text)))) => {
                return serde_json::from_str(&text).map_err(|err| format!("{err}: {text}"))
            }
            Ok(Some(Ok(Message::Close(close)))) => {
                return Err(format!(
                    "closed by the server ({})",
                    close.map_or(1005, |close| u16::from(close.code))
                ))
            }
            Ok(Some(Ok(_))) => {}
            Ok(Some(Err(err))) => return Err(format!("dropped: {err}")),
            Ok(None) => return Err("dropped by the server".to_string()),
        }
    }
}
