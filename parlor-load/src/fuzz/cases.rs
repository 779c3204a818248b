//! What one fuzzing connection sends, and what PROTOCOL.md says the server
//! must answer: each case is bytes for the wire (frames made with
//! tungstenite's own frame writer, which also writes what a well-behaved
//! client never would) and an expectation.

use rand::{rngs::StdRng, seq::SliceRandom, Rng};
use serde::Serialize;
use strum::{EnumIter, IntoStaticStr};
use tokio_tungstenite::tungstenite::protocol::frame::{
    coding::{Control, Data, OpCode},
    Frame, FrameHeader,
};

use super::mutate::mutated_request;

/// Kinds of bad input, one per connection.
#[derive(
    Clone,
    Copy,
    Debug,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    EnumIter,
    IntoStaticStr,
    Serialize,
    clap::ValueEnum,
)]
#[strum(serialize_all = "snake_case")]
#[serde(rename_all = "snake_case")]
#[value(rename_all = "snake_case")]
pub(crate) enum Case {
    /// Mutated requests in well-formed text frames.
    Mutated,
    /// A request split into continuations, with a Ping between them.
    Fragmented,
    /// `{"type":"echo","data":[[[…]]]}` nested thousands deep.
    DeepNesting,
    /// A binary frame.
    Binary,
    /// A text frame, whole or in pieces, that is not UTF-8.
    InvalidUtf8,
    /// A data or control opcode RFC 6455 reserves.
    ReservedOpcode,
    /// A continuation with no message begun, or a new message inside one.
    BadFragmentation,
    /// A Ping, Pong or Close over 125 bytes, or one not final.
    BadControl,
    /// A frame with a reserved bit set (no extension was agreed).
    ReservedBits,
    /// A client frame without a mask.
    Unmasked,
    /// A header announcing more than the frame limit.
    Oversized,
    /// A Close with a one-byte body, a code no one may send, or a reason
    /// that is not UTF-8.
    BadClose,
    /// Random bytes after a good handshake.
    Garbage,
    /// A handshake with a line dropped, changed or doubled, or random bytes.
    BadHandshake,
}

/// What the server must do with a case.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Expect {
    /// Stay open and answer the echo sent after the case.
    Open,
    /// Answer with an `error` of this code, then stay open and answer the
    /// echo sent after the case.
    Refused(&'static str),
    /// Close with one of these codes.
    Close(&'static [u16]),
    /// Anything but a 5xx answer to the handshake, a 1011 close or an
    /// `internal` error: random input has no one right answer.
    NoFault,
}

/// The bytes of one case.
pub(crate) struct Plan {
    /// Sent instead of the usual handshake (`BadHandshake`).
    pub(crate) handshake: Option<Vec<u8>>,
    /// Sent after the handshake's answer.
    pub(crate) bytes: Vec<u8>,
    /// What the server must do.
    pub(crate) expect: Expect,
}

impl Case {
    /// What the server must do with this case (PROTOCOL.md, *Close codes*
    /// and *Errors*).
    pub(crate) fn expect(self) -> Expect {
        match self {
            Case::Mutated | Case::Fragmented => Expect::Open,
            Case::DeepNesting => Expect::Refused("bad_json"),
            Case::Binary => Expect::Refused("unsupported"),
            Case::InvalidUtf8 => Expect::Close(&[1007]),
            Case::ReservedOpcode
            | Case::BadFragmentation
            | Case::BadControl
            | Case::ReservedBits
            | Case::Unmasked => Expect::Close(&[1002]),
            Case::Oversized => Expect::Close(&[1009]),
            // "1000 when the client asked to (whatever code the client's
            // Close carried)"; a Close body RFC 6455 forbids is a protocol
            // error.
            Case::BadClose => Expect::Close(&[1000, 1002]),
            Case::Garbage | Case::BadHandshake => Expect::NoFault,
        }
    }

    /// The bytes of this case, drawn from `rng`, for a server whose frame
    /// limit is `frame_limit` and whose handshake is `handshake`.
    pub(crate) fn plan(self, rng: &mut StdRng, handshake: &str, frame_limit: usize) -> Plan {
        // Text that stays well within the limit, whole or in pieces.
        let max_text = frame_limit * 9 / 10;
        let mut bytes = Vec::new();
        let mut handshake_bytes = None;
        match self {
            Case::Mutated => {
                for _ in 0..rng.gen_range(1..=20) {
                    let text = mutated_request(rng, max_text);
                    bytes.extend(frame(rng, text_op(), true, text.as_bytes()));
                }
            }
            Case::Fragmented => {
                let text = mutated_request(rng, max_text);
                let pieces = split(rng, text.as_bytes());
                let last = pieces.len() - 1;
                for (i, piece) in pieces.into_iter().enumerate() {
                    let op = if i == 0 { text_op() } else { continue_op() };
                    bytes.extend(frame(rng, op, i == last, piece));
                    if i != last && rng.gen_bool(0.5) {
                        bytes.extend(frame(rng, OpCode::Control(Control::Ping), true, b"between"));
                    }
                }
            }
            Case::DeepNesting => {
                let depth = rng.gen_range(200..30_000);
                let (open, close) = if rng.gen_bool(0.5) {
                    ("[", "]")
                } else {
                    ("{\"a\":", "}")
                };
                let text = format!(
                    "{{\"type\":\"echo\",\"data\":{}1{}}}",
                    open.repeat(depth),
                    close.repeat(depth)
                );
                bytes.extend(frame(
                    rng,
                    text_op(),
                    true,
                    &text.as_bytes()[..text.len().min(max_text)],
                ));
            }
            Case::Binary => {
                let payload: Vec<u8> = (0..rng.gen_range(0..200)).map(|_| rng.gen()).collect();
                bytes.extend(frame(rng, OpCode::Data(Data::Binary), true, &payload));
            }
            Case::InvalidUtf8 => {
                let mut text = mutated_request(rng, max_text).into_bytes();
                let at = rng.gen_range(0..=text.len());
                let bad: &[u8] = [
                    &[0xff][..],
                    &[0xc3, 0x28],
                    &[0xed, 0xa0, 0x80],
                    &[0xf8, 0x88, 0x80, 0x80, 0x80],
                ]
                .choose(rng)
                .copied()
                .unwrap_or(&[0xff]);
                text.splice(at..at, bad.iter().copied());
                if rng.gen_bool(0.5) {
                    let pieces = split(rng, &text);
                    let last = pieces.len() - 1;
                    for (i, piece) in pieces.into_iter().enumerate() {
                        let op = if i == 0 { text_op() } else { continue_op() };
                        bytes.extend(frame(rng, op, i == last, piece));
                    }
                } else {
                    bytes.extend(frame(rng, text_op(), true, &text));
                }
            }
            Case::ReservedOpcode => {
                let code = *[3u8, 4, 5, 6, 7, 0xb, 0xc, 0xd, 0xe, 0xf]
                    .choose(rng)
                    .unwrap_or(&3);
                let payload: Vec<u8> = (0..rng.gen_range(0..100)).map(|_| rng.gen()).collect();
                bytes.extend(frame(rng, OpCode::from(code), true, &payload));
            }
            Case::BadFragmentation => {
                if rng.gen_bool(0.5) {
                    let is_final = rng.gen();
                    bytes.extend(frame(rng, continue_op(), is_final, b"{\"type\":\"echo\"}"));
                } else {
                    bytes.extend(frame(rng, text_op(), false, b"{\"type\":"));
                    bytes.extend(frame(rng, text_op(), true, b"\"echo\"}"));
                }
            }
            Case::BadControl => {
                let op = *[Control::Ping, Control::Pong, Control::Close]
                    .choose(rng)
                    .unwrap_or(&Control::Ping);
                if rng.gen_bool(0.5) {
                    let mut payload = vec![b'x'; rng.gen_range(126..2_000)];
                    if op == Control::Close {
                        payload[..2].copy_from_slice(&1000u16.to_be_bytes());
                    }
                    bytes.extend(frame(rng, OpCode::Control(op), true, &payload));
                } else {
                    let payload: &[u8] = if op == Control::Close {
                        &[0x03, 0xe8]
                    } else {
                        b"part"
                    };
                    bytes.extend(frame(rng, OpCode::Control(op), false, payload));
                }
            }
            Case::ReservedBits => {
                let text = mutated_request(rng, max_text);
                let mut frame = Frame::message(text.into_bytes(), text_op(), true);
                let header = frame.header_mut();
                let bit = rng.gen_range(0..3);
                (header.rsv1, header.rsv2, header.rsv3) = (bit == 0, bit == 1, bit == 2);
                header.mask = Some(rng.gen());
                bytes.extend(formatted(frame));
            }
            Case::Unmasked => {
                let text = mutated_request(rng, max_text);
                let frame = Frame::message(text.into_bytes(), text_op(), true);
                bytes.extend(formatted(frame));
            }
            Case::Oversized => {
                // Just over the limit half the time, anything up to 2^63 else.
                let over = frame_limit as u64 + 1;
                let most = if rng.gen_bool(0.5) {
                    over + 1_000
                } else {
                    i64::MAX as u64
                };
                let announced = rng.gen_range(over..=most);
                let header = FrameHeader {
                    opcode: *[text_op(), OpCode::Data(Data::Binary), continue_op()]
                        .choose(rng)
                        .unwrap_or(&text_op()),
                    mask: Some(rng.gen()),
                    ..FrameHeader::default()
                };
                if header.opcode == continue_op() {
                    // A continuation over the limit, of a message begun.
                    bytes.extend(frame(rng, text_op(), false, b"{\"type\":"));
                }
                header
                    .format(announced, &mut bytes)
                    .unwrap_or_else(|_| unreachable!("writing to a Vec"));
                bytes.extend((0..rng.gen_range(0..1_000)).map(|_| rng.gen::<u8>()));
            }
            Case::BadClose => {
                let payload: Vec<u8> = match rng.gen_range(0..3) {
                    0 => vec![0x03],
                    1 => {
                        let code = *[0u16, 999, 1004, 1005, 1006, 1015, 1100, 2999, 5000, 65535]
                            .choose(rng)
                            .unwrap_or(&999);
                        code.to_be_bytes().to_vec()
                    }
                    _ => vec![0x03, 0xe8, 0xff, 0xfe],
                };
                bytes.extend(frame(rng, OpCode::Control(Control::Close), true, &payload));
            }
            Case::Garbage => {
                bytes.extend((0..rng.gen_range(1..4_000)).map(|_| rng.gen::<u8>()));
            }
            Case::BadHandshake => handshake_bytes = Some(bad_handshake(rng, handshake)),
        }
        Plan {
            handshake: handshake_bytes,
            bytes,
            expect: self.expect(),
        }
    }
}

fn text_op() -> OpCode {
    OpCode::Data(Data::Text)
}

fn continue_op() -> OpCode {
    OpCode::Data(Data::Continue)
}

/// A masked client frame, of any opcode (tungstenite's own constructors
/// allow only the ones a well-behaved peer sends).
pub(crate) fn frame(rng: &mut StdRng, opcode: OpCode, is_final: bool, payload: &[u8]) -> Vec<u8> {
    let header = FrameHeader {
        is_final,
        opcode,
        mask: Some(rng.gen()),
        ..FrameHeader::default()
    };
    formatted(Frame::from_payload(header, payload.to_vec()))
}

/// A frame's bytes on the wire.
fn formatted(frame: Frame) -> Vec<u8> {
    let mut bytes = Vec::with_capacity(frame.len());
    frame
        .format(&mut bytes)
        .unwrap_or_else(|_| unreachable!("writing to a Vec"));
    bytes
}

/// `bytes` in two to five pieces (some may be empty).
fn split<'a>(rng: &mut StdRng, bytes: &'a [u8]) -> Vec<&'a [u8]> {
    let mut cuts: Vec<usize> = (0..rng.gen_range(1..5))
        .map(|_| rng.gen_range(0..=bytes.len()))
        .collect();
    cuts.sort_unstable();
    let mut pieces = Vec::new();
    let mut from = 0;
    for cut in cuts {
        pieces.push(&bytes[from..cut]);
        from = cut;
    }
    pieces.push(&bytes[from..]);
    pieces
}

/// A handshake with one of its lines dropped, changed or doubled, or
/// random bytes instead.
fn bad_handshake(rng: &mut StdRng, handshake: &str) -> Vec<u8> {
    let mut lines: Vec<String> = handshake
        .trim_end()
        .split("\r\n")
        .map(str::to_string)
        .collect();
    let at = rng.gen_range(0..lines.len());
    match rng.gen_range(0..5) {
        0 => {
            lines.remove(at);
        }
        1 => {
            let line = lines[at].clone();
            lines.insert(at, line);
        }
        2 => {
            let mut chars: Vec<char> = lines[at].chars().collect();
            if !chars.is_empty() {
                let i = rng.gen_range(0..chars.len());
                chars[i] = rng.gen_range(' '..='~');
            }
            lines[at] = chars.into_iter().collect();
        }
        3 => lines[at].push_str(&"x".repeat(rng.gen_range(1..20_000))),
        _ => return (0..rng.gen_range(1..2_000)).map(|_| rng.gen()).collect(),
    }
    format!("{}\r\n\r\n", lines.join("\r\n")).into_bytes()
}
