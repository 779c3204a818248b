//! A session's socket: the WebSocket frames read from it ([`Reader`]) and
//! written to it ([`Writer`]), on actix-http's WebSocket codec.
//!
//! The handshake hands the session the raw TCP stream ([`Upgraded`]); no
//! HTTP connection state stays behind. Neither side keeps a buffer while
//! idle: the reader reads into a buffer of its thread and keeps bytes only
//! while a frame is incomplete; the writer encodes every queued frame into
//! another buffer of its thread and writes it with one system call,
//! keeping only what the socket would not take (and its frame queue's room
//! until the heartbeat says the session is quiet).

use std::{
    any::Any,
    cell::RefCell,
    collections::VecDeque,
    io::{self, Read},
    mem::MaybeUninit,
    pin::Pin,
    rc::Rc,
    task::{Context, Poll},
    time::Duration,
};

use actix_codec::Decoder;
use actix_http::ws::{CloseCode, CloseReason, Codec, Frame, Item, OpCode, Parser, ProtocolError};
use actix_rt::net::TcpStream;
use bytes::{Buf, Bytes, BytesMut};
use bytestring::ByteString;
use futures_core::Stream;
use tokio::io::Interest;

use crate::links::Outgoing;

thread_local! {
    /// Where a thread's sessions read into before keeping what they need:
    /// one buffer per thread, made once.
    static READ: RefCell<Vec<u8>> = RefCell::new(vec![0; READ_CHUNK]);
}

/// How much one read takes from the socket at most.
const READ_CHUNK: usize = 4096;

/// What the handshake hands over to a session.
pub struct Upgraded {
    /// The connection.
    pub io: TcpStream,
    /// Bytes the client sent after its handshake, read with it.
    pub read_ahead: BytesMut,
    /// The `101 Switching Protocols` answer, written before any frame.
    pub response: BytesMut,
    /// The session's place among the open sessions, held until the last
    /// frame (a Close) is written, or given back at once when the client
    /// does not read.
    pub slot: Box<dyn Any + Send>,
}

/// What the client sent, one message at a time.
#[derive(Debug)]
pub(super) enum Incoming {
    /// A text message (reassembled from its fragments), valid UTF-8.
    Text(ByteString),
    /// A binary message.
    Binary,
    /// A Ping, with its payload to echo.
    Ping(Bytes),
    /// A Pong.
    Pong,
    /// A Close frame.
    Close,
    /// A frame that breaks the protocol or the size limit: the connection
    /// must close with this code.
    Broken(CloseCode, String),
}

/// A message arriving in fragments.
struct Fragments {
    /// Text (else binary).
    text: bool,
    /// The payload so far.
    payload: BytesMut,
}

/// The frames read from the client, as a stream of messages. Ends when
/// the client closes the connection or it fails.
pub(super) struct Reader {
    io: Rc<TcpStream>,
    codec: Codec,
    /// The largest message, fragments included (`limits.max_frame_bytes`).
    max_message: usize,
    /// Bytes of an incomplete frame; empty (and unallocated) between frames.
    partial: BytesMut,
    /// A fragmented message in progress.
    fragments: Option<Fragments>,
    /// Set once the stream has ended or broken.
    done: bool,
}

impl Reader {
    fn new(io: Rc<TcpStream>, read_ahead: BytesMut, max_message: usize) -> Reader {
        Reader {
            io,
            codec: Codec::new().max_size(max_message),
            max_message,
            partial: read_ahead,
            fragments: None,
            done: false,
        }
    }

    /// The next whole message in `partial`, if there is one.
    fn decode(&mut self) -> Option<Incoming> {
        loop {
            let frame = match self.codec.decode(&mut self.partial) {
                Ok(Some(frame)) => frame,
                Ok(None) => {
                    // actix-http's codec refuses an oversized frame only once
                    // it has all arrived: refuse it at its header instead,
                    // counting the fragments of its message already kept.
                    let kept = self.fragments.as_ref().map_or(0, |f| f.payload.len());
                    let announced = announced_length(&self.partial);
                    let limit = self.max_message.saturating_sub(kept) as u64;
                    if announced.is_some_and(|length| length > limit) {
                        return Some(too_big());
                    }
                    return None;
                }
                Err(err) => return Some(broken(err)),
            };
            if let Some(message) = self.message(frame) {
                return Some(message);
            }
        }
    }

    /// What a decoded frame means: a message, or `None` while a fragmented
    /// message is still coming.
    fn message(&mut self, frame: Frame) -> Option<Incoming> {
        match frame {
            Frame::Text(payload) => Some(text(payload)),
            Frame::Binary(_) => Some(Incoming::Binary),
            Frame::Ping(payload) => Some(Incoming::Ping(payload)),
            Frame::Pong(_) => Some(Incoming::Pong),
            Frame::Close(_) => Some(Incoming::Close),
            Frame::Continuation(item) => self.fragment(item),
        }
    }

    fn fragment(&mut self, item: Item) -> Option<Incoming> {
        let (first, last, piece) = match item {
            Item::FirstText(piece) => (Some(true), false, piece),
            Item::FirstBinary(piece) => (Some(false), false, piece),
            Item::Continue(piece) => (None, false, piece),
            Item::Last(piece) => (None, true, piece),
        };
        if let Some(text) = first {
            self.fragments = Some(Fragments {
                text,
                payload: BytesMut::new(),
            });
        }
        let Some(fragments) = self.fragments.as_mut() else {
            return Some(broken(ProtocolError::ContinuationNotStarted));
        };
        if fragments.payload.len() + piece.len() > self.max_message {
            return Some(too_big());
        }
        fragments.payload.extend_from_slice(&piece);
        if !last {
            return None;
        }
        let Fragments {
            text: is_text,
            payload,
        } = self.fragments.take()?;
        Some(if is_text {
            text(payload.freeze())
        } else {
            Incoming::Binary
        })
    }
}

/// The bits of a frame's second byte that hold its payload length.
const LENGTH_BITS: u8 = 0x7f;

/// Payload length values that say a 16-bit or a 64-bit length follows.
const LENGTH_16: u8 = 126;
const LENGTH_64: u8 = 127;

/// The payload length the frame at the head of `bytes` announces, once its
/// length field has arrived (RFC 6455, section 5.2).
fn announced_length(bytes: &[u8]) -> Option<u64> {
    match bytes.get(1)? & LENGTH_BITS {
        LENGTH_16 => Some(u64::from(u16::from_be_bytes(
            bytes.get(2..4)?.try_into().ok()?,
        ))),
        LENGTH_64 => Some(u64::from_be_bytes(bytes.get(2..10)?.try_into().ok()?)),
        short => Some(u64::from(short)),
    }
}

/// A text message, checked for UTF-8.
fn text(payload: Bytes) -> Incoming {
    match ByteString::try_from(payload) {
        Ok(text) => Incoming::Text(text),
        Err(_) => Incoming::Broken(CloseCode::Invalid, "a text frame is not UTF-8".into()),
    }
}

fn too_big() -> Incoming {
    Incoming::Broken(
        CloseCode::Size,
        "a message over limits.max_frame_bytes".into(),
    )
}

fn broken(err: ProtocolError) -> Incoming {
    match err {
        ProtocolError::Overflow => too_big(),
        err => Incoming::Broken(CloseCode::Protocol, err.to_string()),
    }
}

impl Stream for Reader {
    type Item = Incoming;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Incoming>> {
        let this = &mut *self;
        if this.done {
            return Poll::Ready(None);
        }
        loop {
            if let Some(message) = this.decode() {
                this.done = matches!(message, Incoming::Broken(..) | Incoming::Close);
                return Poll::Ready(Some(message));
            }
            if this.partial.is_empty() {
                // Nothing kept between frames.
                this.partial = BytesMut::new();
            }
            match this.io.poll_read_ready(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Ok(())) => {}
                Poll::Ready(Err(_)) => break,
            }
            let read = READ.with(|chunk| {
                let mut chunk = chunk.borrow_mut();
                let read = read_now(&this.io, &mut chunk)?;
                this.partial.extend_from_slice(&chunk[..read]);
                Ok::<_, io::Error>(read)
            });
            match read {
                Ok(0) => break,
                Ok(_) => {}
                Err(err)
                    if matches!(
                        err.kind(),
                        io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted
                    ) => {}
                Err(_) => break,
            }
        }
        this.done = true;
        Poll::Ready(None)
    }
}

/// Reads what the socket holds into `chunk`. A read that does not fill
/// `chunk` took everything there was, so it also clears the socket's
/// readiness: the next read waits for new bytes instead of making a system
/// call only to hear there are none. (Bytes arriving meanwhile set it
/// again: tokio clears it only if no event came since it was set.)
fn read_now(io: &TcpStream, chunk: &mut [u8]) -> io::Result<usize> {
    let mut read = 0;
    let result = io.try_io(Interest::READABLE, || {
        read = (&*socket2::SockRef::from(io)).read(chunk)?;
        if read > 0 && read < chunk.len() {
            return Err(io::ErrorKind::WouldBlock.into());
        }
        Ok(read)
    });
    match result {
        Err(err) if err.kind() == io::ErrorKind::WouldBlock && read > 0 => Ok(read),
        result => result,
    }
}

/// The most a thread's encoding buffer keeps between writes.
const ENCODED_KEPT: usize = 1 << 20;

thread_local! {
    /// Where a thread's sessions encode their frames before writing them:
    /// one buffer per thread rather than one per session.
    static ENCODED: RefCell<BytesMut> = RefCell::new(BytesMut::new());
}

/// How a flush went.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Flushed {
    /// Everything queued is written.
    All,
    /// The socket takes no more for now: wait until it is writable.
    Blocked,
    /// The connection is gone.
    Failed,
}

/// The frames waiting for the client, and what the socket has not taken
/// yet.
pub(super) struct Writer {
    io: Rc<TcpStream>,
    /// Frames not yet encoded.
    queue: VecDeque<Outgoing>,
    /// Encoded bytes the socket has not taken; empty (and unallocated)
    /// while it keeps up.
    unwritten: BytesMut,
    /// How many frames `unwritten` holds (the last perhaps in part).
    unwritten_frames: usize,
    /// Set once a Close frame is encoded: nothing is written after it.
    closed: bool,
    /// Free the queue's room once it is next emptied.
    shrink: bool,
    /// The session's place among the open sessions.
    slot: Box<dyn Any + Send>,
}

/// Opens a session's socket: its reader and its writer. The handshake's
/// answer goes out first.
pub(super) fn open(upgraded: Upgraded, max_message: usize) -> (Reader, Writer) {
    let Upgraded {
        io,
        read_ahead,
        response,
        slot,
    } = upgraded;
    let io = Rc::new(io);
    let reader = Reader::new(io.clone(), read_ahead, max_message);
    let writer = Writer {
        io,
        queue: VecDeque::new(),
        unwritten: response,
        unwritten_frames: 0,
        closed: false,
        shrink: false,
        slot,
    };
    (reader, writer)
}

impl Writer {
    /// Queues a frame; nothing is queued after a Close.
    pub(super) fn push(&mut self, frame: Outgoing) {
        if !self.closed {
            self.queue.push_back(frame);
        }
    }

    /// Encodes every queued frame and writes everything in one system call
    /// (after what the socket did not take last time, if any). Returns how
    /// many frames are written whole (they no longer fill the outbox), and
    /// how the write went. Frames the socket did not take whole still count
    /// until their last byte is written, so a client that does not read
    /// never holds more than `limits.max_outbox` frames.
    pub(super) fn flush(&mut self) -> (usize, Flushed) {
        let mut written = 0;
        if !self.unwritten.is_empty() {
            match write_some(&self.io, &mut self.unwritten) {
                Flushed::All => {
                    self.unwritten = BytesMut::new();
                    written = std::mem::take(&mut self.unwritten_frames);
                }
                other => return (0, other),
            }
        }
        if self.queue.is_empty() {
            return (written, Flushed::All);
        }
        let frames = self.queue.len();
        let flushed = ENCODED.with(|encoded| {
            let mut encoded = encoded.borrow_mut();
            encoded.clear();
            self.encode_queue(&mut encoded);
            let flushed = write_some(&self.io, &mut encoded);
            if !encoded.is_empty() {
                self.unwritten = BytesMut::from(&encoded[..]);
            }
            if encoded.capacity() > ENCODED_KEPT {
                // One large batch does not keep its buffer for good.
                *encoded = BytesMut::new();
            }
            flushed
        });
        if self.unwritten.is_empty() {
            written += frames;
        } else {
            self.unwritten_frames = frames;
        }
        (written, flushed)
    }

    /// Appends every queued frame's bytes to `out`, up to a Close. The
    /// emptied queue keeps its room for the next frames, unless the session
    /// said it is quiet (`shrink`).
    fn encode_queue(&mut self, out: &mut BytesMut) {
        for frame in self.queue.drain(..) {
            if !self.closed {
                self.closed = encode(frame, out);
            }
        }
        if std::mem::take(&mut self.shrink) {
            self.queue = VecDeque::new();
        }
    }

    /// Frees the frame queue's room the next time it is emptied: a quiet
    /// session keeps no buffer, a busy one does not allocate at every write.
    pub(super) fn shrink(&mut self) {
        self.shrink = true;
    }

    /// Whether the client has sent bytes not read yet: a session whose
    /// frames wait in its socket is not silent, however late the server
    /// gets to them (a process stopped or starved past the heartbeat's
    /// timeout reads them only after its timers have fired).
    pub(super) fn unread(&self) -> bool {
        let mut byte = [MaybeUninit::uninit()];
        matches!(socket2::SockRef::from(&*self.io).peek(&mut byte), Ok(1..))
    }

    /// Waits until the socket takes bytes again.
    pub(super) fn poll_writable(&self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.io.poll_write_ready(cx)
    }

    /// Drops every queued frame (the client does not read them).
    pub(super) fn discard(&mut self) -> usize {
        let dropped = self.queue.len();
        self.queue.clear();
        dropped
    }

    /// Gives the session's place among the open sessions back now, before
    /// the connection is closed (a client that does not read is not kept
    /// counted while its last Close waits).
    pub(super) fn release_slot(&mut self) {
        self.slot = Box::new(());
    }

    /// Ends the connection gracefully: writes what is queued (a Close
    /// last) within `patience`, gives the session's place back, says the
    /// connection is over (FIN), and reads whatever the client still sends
    /// until it closes too, for at most [`LINGER`]: closing with unread
    /// bytes would reset the connection, which may destroy the Close frame
    /// before the client reads it.
    pub(super) fn close(mut self, patience: Duration) {
        self.flush();
        // What the socket would not take yet waits behind what it has not
        // taken: the Close goes last, whatever happens.
        let mut queued = std::mem::take(&mut self.unwritten);
        self.encode_queue(&mut queued);
        self.unwritten = queued;
        let Writer {
            io,
            mut unwritten,
            slot,
            ..
        } = self;
        actix_rt::spawn(async move {
            let written = tokio::time::timeout(patience, write_all(&io, &mut unwritten)).await;
            drop(slot);
            if !matches!(written, Ok(true)) {
                return;
            }
            if socket2::SockRef::from(&*io)
                .shutdown(std::net::Shutdown::Write)
                .is_ok()
            {
                let _ = tokio::time::timeout(LINGER, drain(&io)).await;
            }
        });
    }
}

/// How long a closed connection waits for the client to close its side.
const LINGER: Duration = Duration::from_secs(1);

/// Writes all of `bytes`; `false` if the connection failed.
async fn write_all(io: &TcpStream, bytes: &mut BytesMut) -> bool {
    while !bytes.is_empty() {
        if io.writable().await.is_err() || write_some(io, bytes) == Flushed::Failed {
            return false;
        }
    }
    true
}

/// Reads and drops what the client sends until it closes the connection.
async fn drain(io: &TcpStream) {
    let mut chunk = [0u8; READ_CHUNK];
    loop {
        if io.readable().await.is_err() {
            return;
        }
        match io.try_read(&mut chunk) {
            Ok(0) => return,
            Ok(_) => {}
            Err(err) if err.kind() == io::ErrorKind::WouldBlock => {}
            Err(_) => return,
        }
    }
}

/// Writes as much of `bytes` as the socket takes now, removing it.
fn write_some(io: &TcpStream, bytes: &mut BytesMut) -> Flushed {
    while !bytes.is_empty() {
        match io.try_write(bytes) {
            Ok(0) => return Flushed::Failed,
            Ok(written) => bytes.advance(written),
            Err(err) if err.kind() == io::ErrorKind::WouldBlock => return Flushed::Blocked,
            Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => return Flushed::Failed,
        }
    }
    Flushed::All
}

/// Appends one frame's bytes to `out`; `true` for a Close, after which
/// nothing more may be written.
fn encode(frame: Outgoing, out: &mut BytesMut) -> bool {
    match frame {
        Outgoing::Text(text) | Outgoing::Answer(text) => {
            Parser::write_message(out, text.as_bytes(), OpCode::Text, true, false);
        }
        Outgoing::Ping => Parser::write_message(out, b"", OpCode::Ping, true, false),
        Outgoing::Pong(payload) => Parser::write_message(out, payload, OpCode::Pong, true, false),
        Outgoing::Close(code) => {
            Parser::write_close(out, Some(CloseReason::from(code)), false);
            return true;
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::announced_length;

    #[test]
    fn the_announced_length_is_read_in_each_of_its_three_forms() {
        assert_eq!(announced_length(&[0x81, 0x80 | 5]), Some(5));
        assert_eq!(announced_length(&[0x81, 0x80 | 126, 0x01, 0x00]), Some(256));
        let mut long = vec![0x82, 0x80 | 127];
        long.extend_from_slice(&(1u64 << 40).to_be_bytes());
        assert_eq!(announced_length(&long), Some(1 << 40));
    }

    #[test]
    fn a_length_not_yet_arrived_is_not_guessed() {
        assert_eq!(announced_length(&[]), None);
        assert_eq!(announced_length(&[0x81]), None);
        assert_eq!(announced_length(&[0x81, 0x80 | 126, 0x01]), None);
        assert_eq!(
            announced_length(&[0x81, 0x80 | 127, 0, 0, 0, 0, 0, 0, 1]),
            None
        );
    }
}
