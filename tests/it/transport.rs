//! The WebSocket transport: the handshake taken through actix-http's
//! upgrade hook, and Parlor's own frame loop.

use std::{num::NonZero, time::Duration};

use serde_json::{json, Value};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpStream,
};
use tokio_tungstenite::{
    tungstenite::{protocol::Role, Message},
    MaybeTlsStream, WebSocketStream,
};

use crate::support::{Client, Ending, TestServer, PATIENCE};

/// A masked client frame with opcode byte `first` (FIN included) whose
/// header announces `announced` payload bytes, of which `payload` follows.
fn masked_frame(first: u8, announced: usize, payload: &[u8]) -> Vec<u8> {
    let mask = [0x11, 0x22, 0x33, 0x44];
    let mut frame = vec![first];
    match announced {
        0..=125 => frame.push(0x80 | announced as u8),
        126..=0xffff => {
            frame.push(0x80 | 126);
            frame.extend_from_slice(&(announced as u16).to_be_bytes());
        }
        _ => {
            frame.push(0x80 | 127);
            frame.extend_from_slice(&(announced as u64).to_be_bytes());
        }
    }
    frame.extend_from_slice(&mask);
    frame.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
    frame
}

/// A WebSocket handshake request for `path` on `server`.
fn handshake(server: &TestServer, path: &str) -> String {
    format!(
        "GET {path} HTTP/1.1\r\nHost: {}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
        server.addr
    )
}

/// Reads an HTTP answer's head; returns it and any bytes read past it.
async fn read_head(tcp: &mut TcpStream) -> (String, Vec<u8>) {
    let mut bytes = Vec::new();
    let mut chunk = [0u8; 1024];
    loop {
        if let Some(end) = bytes.windows(4).position(|w| w == b"\r\n\r\n") {
            let rest = bytes.split_off(end + 4);
            return (String::from_utf8(bytes).expect("an ASCII head"), rest);
        }
        let read = tokio::time::timeout(PATIENCE, tcp.read(&mut chunk))
            .await
            .expect("an answer within the patience")
            .expect("readable");
        assert!(read > 0, "the server closed before answering: {bytes:?}");
        bytes.extend_from_slice(&chunk[..read]);
    }
}

/// The next text frame of `ws` as JSON, within the patience.
async fn next_json(ws: &mut WebSocketStream<TcpStream>) -> Value {
    use futures_util::StreamExt;
    let deadline = tokio::time::Instant::now() + PATIENCE;
    loop {
        let frame = tokio::time::timeout_at(deadline, ws.next())
            .await
            .expect("a text frame within the patience")
            .expect("open")
            .expect("readable");
        if let Message::Text(text) = frame {
            return serde_json::from_str(&text).expect("JSON");
        }
    }
}

#[tokio::test]
async fn a_frame_sent_with_the_handshake_is_answered() {
    let server = TestServer::start();
    let mut tcp = TcpStream::connect(server.addr).await.expect("connects");
    tcp.set_nodelay(true).expect("nodelay");
    // The request and a first frame in one write: the server reads both
    // together and must keep the frame for the session.
    let mut bytes = handshake(&server, "/ws").into_bytes();
    bytes.extend(masked_frame(0x81, 24, br#"{"type":"echo","data":7}"#));
    tcp.write_all(&bytes).await.expect("writes");
    let (head, rest) = read_head(&mut tcp).await;
    assert!(head.starts_with("HTTP/1.1 101"), "{head}");
    assert!(
        head.to_ascii_lowercase()
            .contains("sec-websocket-accept: s3pplmbitxaq9kygzzhzrbk+xoo="),
        "{head}"
    );
    let mut ws = WebSocketStream::from_partially_read(tcp, rest, Role::Client, None).await;
    assert_eq!(next_json(&mut ws).await["type"], "welcome");
    assert_eq!(next_json(&mut ws).await, json!({"type":"echo","data":7}));
}

#[tokio::test]
async fn a_handshake_anywhere_but_ws_is_refused_with_404() {
    let server = TestServer::start();
    for path in ["/elsewhere", "/api/anything", "/ws/deeper"] {
        let url = format!("ws://{}{path}", server.addr);
        assert_eq!(Client::try_open(&url, &[]).await.err(), Some(404), "{path}");
    }
    // And the server goes on serving.
    let (mut client, _) = server.connect().await;
    assert_eq!(client.ask(json!({"type":"echo"})).await["type"], "echo");
}

#[tokio::test]
async fn a_broken_handshake_gets_the_handshake_error() {
    let server = TestServer::start();
    let mut tcp = TcpStream::connect(server.addr).await.expect("connects");
    let request = handshake(&server, "/ws").replace("Sec-WebSocket-Version: 13", "");
    tcp.write_all(request.as_bytes()).await.expect("writes");
    let (head, _) = read_head(&mut tcp).await;
    assert!(head.starts_with("HTTP/1.1 400"), "{head}");
    assert_eq!(server.get_json("/healthz").await["sessions"], 0);
}

#[tokio::test]
async fn ws_opened_as_a_page_says_what_it_is() {
    let server = TestServer::start();
    let (status, body) = server.get("/ws").await;
    assert_eq!(status, 426);
    assert!(body.contains("WebSocket"), "{body}");
}

/// Writes `bytes` raw on a connection to a server with frame limit
/// `limit`, and says how the connection ended within 3 s.
async fn ending_after(limit: usize, bytes: &[u8]) -> Option<Ending> {
    let server = TestServer::with(|config| {
        config.limits.max_frame_bytes = NonZero::new(limit).expect("a limit")
    });
    let (mut client, _) = server.connect().await;
    let MaybeTlsStream::Plain(tcp) = client.ws.get_mut() else {
        panic!("a plain connection");
    };
    tcp.write_all(bytes).await.expect("writes");
    tokio::time::timeout(Duration::from_secs(3), client.ending())
        .await
        .ok()
}

/// Found by the socket fuzzer: a header announcing more than the limit,
/// followed by fewer bytes than the limit, was held open waiting for the
/// rest instead of being refused.
#[tokio::test]
async fn fuzz_found_an_oversized_frame_is_refused_at_its_header() {
    let frame = masked_frame(0x82, 1 << 40, b"only a few bytes");
    assert_eq!(
        ending_after(65_536, &frame).await,
        Some(Ending::Closed(1009))
    );
}

/// Found in review: a continuation announcing less than the limit, but
/// more than the limit less the fragments already kept, was buffered
/// until it had all arrived.
#[tokio::test]
async fn review_found_a_continuation_past_the_limit_is_refused_at_its_header() {
    let mut bytes = masked_frame(0x01, 1000, &[b'x'; 1000]);
    bytes.extend(masked_frame(0x80, 60_000, b"a few more"));
    assert_eq!(
        ending_after(60_500, &bytes).await,
        Some(Ending::Closed(1009))
    );
}

#[tokio::test]
async fn a_frame_announcing_more_than_the_limit_closes_with_1009_before_it_is_sent() {
    // A header announcing 100,000 bytes, and only 3,000 of them: the server
    // must not wait for (and hold) the rest.
    let frame = masked_frame(0x81, 100_000, &[b'x'; 3000]);
    assert_eq!(ending_after(1024, &frame).await, Some(Ending::Closed(1009)));
}
