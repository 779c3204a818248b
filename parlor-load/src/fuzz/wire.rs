//! One fuzzing connection: the handshake, the case's bytes, and what the
//! server answered, read frame by frame with tungstenite's header parser
//! and judged against the case's expectation.

use std::{io::Cursor, net::SocketAddr, time::Duration};

use rand::{rngs::StdRng, Rng};
use serde_json::{json, Value};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpStream,
    time::{timeout_at, Instant},
};
use tokio_tungstenite::tungstenite::protocol::frame::{
    coding::{Control, Data, OpCode},
    FrameHeader,
};

use super::cases::{frame, Case, Expect};
use crate::client::tcp;

/// How long the server has to answer a case it must answer.
const ANSWER: Duration = Duration::from_secs(5);

/// How long to wait on a case that has no one right answer (random bytes
/// may be the start of a frame or a request the server waits to finish).
const SETTLE: Duration = Duration::from_millis(500);

/// The echo sent after a case the connection must survive.
const SENTINEL: &str = "fuzz-sentinel";

/// Where the fuzzer connects.
#[derive(Clone)]
pub(crate) struct Target {
    pub(crate) addr: SocketAddr,
    /// The handshake a well-behaved client sends.
    pub(crate) handshake: String,
    /// The server's `limits.max_frame_bytes`.
    pub(crate) frame_limit: usize,
}

impl Target {
    pub(crate) fn new(url: &str, frame_limit: usize) -> Result<Target, String> {
        let addr = crate::client::server_addr(url)?;
        let path = url
            .split_once("://")
            .and_then(|(_, rest)| rest.find('/').map(|at| rest[at..].to_string()))
            .unwrap_or_else(|| "/".to_string());
        let handshake = format!(
            "GET {path} HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
        );
        Ok(Target {
            addr,
            handshake,
            frame_limit,
        })
    }
}

/// How one connection went.
pub(crate) struct Verdict {
    /// The case sent; `None` when the connection could not be opened.
    pub(crate) case: Option<Case>,
    /// How the server answered, in a few words (`close 1002`, `open`,
    /// `HTTP 400`…), or why the connection failed.
    pub(crate) answer: String,
    /// Why the answer is not what PROTOCOL.md says, if it is not.
    pub(crate) unexpected: Option<String>,
    /// The codes of the `error` frames received.
    pub(crate) errors: Vec<String>,
}

/// What the server did, as read.
#[derive(Default)]
struct Answer {
    /// The handshake's status, when it was answered.
    status: Option<u16>,
    /// The code of the server's Close, if one came (1005 for none given).
    close: Option<u16>,
    /// The sentinel echo came back.
    echoed: bool,
    /// The connection ended (EOF or reset) without a Close.
    dropped: bool,
    /// `error` frames' codes.
    errors: Vec<String>,
}

impl Answer {
    fn describe(&self) -> String {
        match (self.status, self.close) {
            (Some(status), _) if status != 101 => format!("HTTP {status}"),
            (None, _) if self.dropped => "closed before answering the handshake".to_string(),
            (None, _) => "no answer to the handshake".to_string(),
            (_, Some(code)) => format!("close {code}"),
            _ if self.echoed => "open".to_string(),
            _ if self.dropped => "dropped".to_string(),
            _ => "silent".to_string(),
        }
    }
}

/// Opens connection `n` to `target`, sends `case` and judges the answer.
pub(crate) async fn connection(target: &Target, n: u32, case: Case, rng: &mut StdRng) -> Verdict {
    let plan = case.plan(rng, &target.handshake, target.frame_limit);
    let connected = tokio::time::timeout(ANSWER, tcp(target.addr, n)).await;
    let mut stream = match connected.unwrap_or_else(|_| Err("connect: timed out".to_string())) {
        Ok(stream) => stream,
        Err(err) => {
            return Verdict {
                case: None,
                answer: err,
                unexpected: None,
                errors: Vec::new(),
            }
        }
    };
    let mut answer = Answer::default();
    let wait = if plan.expect == Expect::NoFault {
        SETTLE
    } else {
        ANSWER
    };
    let handshake = plan
        .handshake
        .unwrap_or_else(|| target.handshake.clone().into_bytes());
    let mut buffer = Vec::new();
    if stream.write_all(&handshake).await.is_ok() {
        read_head(&mut stream, &mut buffer, &mut answer, Instant::now() + wait).await;
    }
    if answer.status == Some(101) {
        let mut bytes = plan.bytes;
        if matches!(plan.expect, Expect::Open | Expect::Refused(_)) {
            let echo = json!({"type":"echo","data":SENTINEL}).to_string();
            bytes.extend(frame(rng, OpCode::Data(Data::Text), true, echo.as_bytes()));
        }
        // The server may close before reading it all: what it answered is
        // still read below.
        let _ = stream.write_all(&bytes).await;
        read_frames(
            &mut stream,
            &mut buffer,
            &mut answer,
            plan.expect,
            Instant::now() + wait,
        )
        .await;
        if answer.close.is_none() && !answer.dropped && rng.gen_bool(0.5) {
            // Half the connections still open say goodbye; the others just go.
            let close = frame(
                rng,
                OpCode::Control(Control::Close),
                true,
                &1000u16.to_be_bytes(),
            );
            let _ = stream.write_all(&close).await;
            let mut ignored = Answer::default();
            read_frames(
                &mut stream,
                &mut buffer,
                &mut ignored,
                Expect::Close(&[]),
                Instant::now() + ANSWER,
            )
            .await;
        }
    }
    Verdict {
        case: Some(case),
        answer: answer.describe(),
        unexpected: judge(&answer, plan.expect),
        errors: answer.errors,
    }
}

/// Why `answer` is not what `expect` asks for, if it is not.
fn judge(answer: &Answer, expect: Expect) -> Option<String> {
    let described = answer.describe();
    if answer.close == Some(1011) || answer.errors.iter().any(|code| code == "internal") {
        return Some(format!("{described}: an internal fault"));
    }
    if answer.status.is_some_and(|status| status >= 500) {
        return Some(format!("{described}: a server error"));
    }
    let ok = match expect {
        Expect::NoFault => true,
        _ if answer.status != Some(101) => false,
        Expect::Open => answer.echoed,
        Expect::Refused(code) => answer.echoed && answer.errors.iter().any(|got| got == code),
        Expect::Close(codes) => answer.close.is_some_and(|code| codes.contains(&code)),
    };
    (!ok).then(|| match expect {
        Expect::Open => format!("{described}, where the connection should stay open and answer"),
        Expect::Refused(code) => format!(
            "{described} with errors {:?}, where it should answer error {code} and stay open",
            answer.errors
        ),
        Expect::Close(codes) => format!("{described}, where PROTOCOL.md closes with {codes:?}"),
        Expect::NoFault => described,
    })
}

/// Reads the handshake's answer into `answer.status`; bytes past its head
/// stay in `buffer`.
async fn read_head(
    stream: &mut TcpStream,
    buffer: &mut Vec<u8>,
    answer: &mut Answer,
    until: Instant,
) {
    loop {
        if let Some(end) = buffer.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buffer[..end]).to_string();
            answer.status = head
                .split_whitespace()
                .nth(1)
                .and_then(|code| code.parse().ok());
            buffer.drain(..end + 4);
            return;
        }
        if !read_more(stream, buffer, answer, until).await {
            return;
        }
    }
}

/// Reads into `buffer`; false when the connection ended or `until` passed.
async fn read_more(
    stream: &mut TcpStream,
    buffer: &mut Vec<u8>,
    answer: &mut Answer,
    until: Instant,
) -> bool {
    let mut chunk = [0u8; 8192];
    match timeout_at(until, stream.read(&mut chunk)).await {
        Ok(Ok(0)) | Ok(Err(_)) => {
            answer.dropped = true;
            false
        }
        Ok(Ok(read)) => {
            buffer.extend_from_slice(&chunk[..read]);
            true
        }
        Err(_) => false,
    }
}

/// Reads the server's frames until its Close, the end of the connection,
/// the sentinel's echo (for `Expect::Open`), or `until`.
async fn read_frames(
    stream: &mut TcpStream,
    buffer: &mut Vec<u8>,
    answer: &mut Answer,
    expect: Expect,
    until: Instant,
) {
    loop {
        while let Some((opcode, payload)) = next_frame(buffer) {
            match opcode {
                OpCode::Data(Data::Text) => {
                    let event: Value = serde_json::from_slice(&payload).unwrap_or(Value::Null);
                    if event["type"] == "error" {
                        let code = event["code"].as_str().unwrap_or("?").to_string();
                        answer.errors.push(code);
                    }
                    if event["type"] == "echo" && event["data"] == SENTINEL {
                        answer.echoed = true;
                        if matches!(expect, Expect::Open | Expect::Refused(_)) {
                            return;
                        }
                    }
                }
                OpCode::Control(Control::Close) => {
                    answer.close = Some(match payload.get(..2) {
                        Some(code) => u16::from_be_bytes([code[0], code[1]]),
                        None => 1005,
                    });
                    return;
                }
                _ => {}
            }
        }
        if !read_more(stream, buffer, answer, until).await {
            return;
        }
    }
}

/// The next whole frame the server sent, taken off `buffer`: its opcode
/// and payload (server frames are not masked).
fn next_frame(buffer: &mut Vec<u8>) -> Option<(OpCode, Vec<u8>)> {
    let mut cursor = Cursor::new(&buffer[..]);
    let (header, length) = FrameHeader::parse(&mut cursor).ok()??;
    let start = cursor.position() as usize;
    let end = start.checked_add(usize::try_from(length).ok()?)?;
    if buffer.len() < end {
        return None;
    }
    let payload = buffer[start..end].to_vec();
    buffer.drain(..end);
    Some((header.opcode, payload))
}
