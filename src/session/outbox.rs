//! A session's outbox: the bounded queue of frames for its client, and the
//! writer task that drains it into the socket.
//!
//! The session and, through its [`SessionHandle`](crate::links::SessionHandle),
//! the Lobby, rooms and games push into the queue; one writer task per
//! connection takes frames out in order and hands everything it has to the
//! connection at once, which writes it with one system call. With
//! `server.write_delay_ms` above 0 an event waits that long for others to
//! go out with it, unless an answer to the client's own request (or a
//! control frame) comes first. A full queue means the client is not
//! reading: it is dropped, never buffered without bound.

use std::time::Duration;

use tokio::time::Instant;

use actix_ws::CloseCode;
use tokio::{
    sync::mpsc::{self, error::TrySendError},
    task::JoinHandle,
};

use crate::links::Outgoing;

/// Why a frame could not be queued.
pub(super) enum Refused {
    /// The client does not read: the queue is full.
    Full,
    /// The writer has ended: the socket is gone.
    Closed,
}

/// The queue and its writer.
pub(super) struct Outbox {
    /// Frames for the writer; bounded by `limits.max_outbox`.
    queue: mpsc::Sender<Outgoing>,
    /// The writer task, aborted when the client must be dropped at once.
    writer: JoinHandle<()>,
    /// The socket, kept to send a last Close when the queue is full.
    socket: actix_ws::Session,
}

impl Outbox {
    /// Opens an outbox of `capacity` frames over `socket`. `slot` (the
    /// session's place among the open sessions) is held until the writer
    /// ends, so a session counts until its last frame is handed over.
    pub(super) fn open(
        capacity: usize,
        write_delay: Duration,
        socket: actix_ws::Session,
        slot: impl Send + 'static,
    ) -> Outbox {
        let (queue, frames) = mpsc::channel(capacity);
        let gathering = Gathering {
            delay: write_delay,
            most: capacity,
        };
        let writer = actix_rt::spawn(write_frames(frames, gathering, socket.clone(), slot));
        Outbox {
            queue,
            writer,
            socket,
        }
    }

    /// Where others put frames (see `SessionHandle`).
    pub(super) fn sender(&self) -> mpsc::Sender<Outgoing> {
        self.queue.clone()
    }

    /// Queues a frame.
    pub(super) fn push(&self, frame: Outgoing) -> Result<(), Refused> {
        self.queue.try_send(frame).map_err(|err| match err {
            TrySendError::Full(_) => Refused::Full,
            TrySendError::Closed(_) => Refused::Closed,
        })
    }

    /// Stops writing at once: an evicted peer is simply dropped.
    pub(super) fn abort(&self) {
        self.writer.abort();
    }

    /// Stops writing what is queued and tries one last Close with `code`,
    /// waiting for it at most `patience`.
    pub(super) fn close_now(&self, code: CloseCode, patience: Duration) {
        self.writer.abort();
        let socket = self.socket.clone();
        actix_rt::spawn(async move {
            let close = socket.close(Some(code.into()));
            let _ = tokio::time::timeout(patience, close).await;
        });
    }

    /// Lets the writer flush what is queued (a Close last) for at most
    /// `patience`, then ends it.
    pub(super) fn finish(&self, patience: Duration) {
        let writer = self.writer.abort_handle();
        actix_rt::spawn(async move {
            tokio::time::sleep(patience).await;
            writer.abort();
        });
    }
}

/// How long events wait for others, and how many may wait at once (the
/// outbox's own bound: gathering never holds more than the queue would).
struct Gathering {
    /// `server.write_delay_ms`.
    delay: Duration,
    /// `limits.max_outbox`.
    most: usize,
}

/// Drains the queue into the socket until a Close is sent, the socket
/// fails, or every sender is gone.
async fn write_frames(
    mut frames: mpsc::Receiver<Outgoing>,
    gathering: Gathering,
    mut socket: actix_ws::Session,
    slot: impl Send + 'static,
) {
    let _slot = slot;
    let mut gathered = Vec::new();
    while let Some(frame) = frames.recv().await {
        let urgent = frame.is_urgent();
        gathered.push(frame);
        if !urgent && !gathering.delay.is_zero() {
            let deadline = Instant::now() + gathering.delay;
            gather(&mut frames, &mut gathered, deadline, gathering.most).await;
        }
        for frame in gathered.drain(..) {
            if !write(&mut socket, frame).await {
                return;
            }
        }
    }
}

/// Adds what comes into `gathered` until `deadline`, an urgent frame, the
/// queue's end, or `most` frames.
async fn gather(
    frames: &mut mpsc::Receiver<Outgoing>,
    gathered: &mut Vec<Outgoing>,
    deadline: Instant,
    most: usize,
) {
    while gathered.len() < most {
        tokio::select! {
            () = tokio::time::sleep_until(deadline) => return,
            frame = frames.recv() => {
                let Some(frame) = frame else { return };
                let urgent = frame.is_urgent();
                gathered.push(frame);
                if urgent {
                    return;
                }
            }
        }
    }
}

/// Hands one frame to the connection; `false` once nothing more may be
/// written (a Close was sent, or the socket failed).
async fn write(socket: &mut actix_ws::Session, frame: Outgoing) -> bool {
    let sent = match frame {
        Outgoing::Text(text) | Outgoing::Answer(text) => socket.text(text).await,
        Outgoing::Ping => socket.ping(b"").await,
        Outgoing::Pong(payload) => socket.pong(&payload).await,
        Outgoing::Close(code) => {
            let _ = socket.clone().close(Some(code.into())).await;
            return false;
        }
    };
    sent.is_ok()
}
