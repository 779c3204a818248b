//! A session's outbox: when the frames queued for its client are written.
//!
//! Frames reach the session's [`Writer`] from the session itself and,
//! through its mailbox ([`Deliver`](crate::links::Deliver)), from the
//! Lobby, rooms and games: the mailbox is the one queue between them and
//! the socket. Whatever is queued during one wakeup of the actor goes out
//! in one write, after its mailbox and its reader ([`Flusher`]). With
//! `server.write_delay_ms` above 0 an event waits (until its thread's
//! gathering tick, between half the delay and the whole of it: `gather`)
//! for others to go out with it, unless an answer to the client's own
//! request (or a control frame) comes first or half the outbox is waiting. A socket that takes no more is waited on
//! without blocking anything; the frames it would not take stay queued,
//! bounded by `limits.max_outbox` (see `SessionHandle::reserve`).

use std::{
    pin::Pin,
    task::{Context as TaskContext, Poll},
    time::Duration,
};

use actix::{fut::ActorFuture, prelude::*};
use actix_http::ws::CloseCode;

use super::{
    gather::{Gathered, Gatherer},
    socket::{Flushed, Writer},
    Session,
};
use crate::{links::Outgoing, protocol::LeaveReason};

/// The writer and when it next writes.
pub(super) struct Outbox {
    /// The socket's writing side; `None` while the session is away (it
    /// has no connection, or has handed it over to close it).
    writer: Option<Writer>,
    /// `server.write_delay_ms`.
    delay: Duration,
    /// Frames that may wait before a write is due at once: half of
    /// `limits.max_outbox`.
    most_waiting: usize,
    /// The [`Flusher`] writes at the end of this wakeup.
    due: bool,
    /// The thread's gathering tick, when `delay` is above 0.
    gatherer: Option<Gatherer>,
    /// Events wait for the next gathering tick.
    gathering: bool,
    /// The socket took no more last time: the session waits for it.
    blocked: bool,
    /// Frames queued and not yet written.
    waiting: usize,
}

impl Outbox {
    pub(super) fn new(writer: Option<Writer>, delay: Duration, max_outbox: usize) -> Outbox {
        Outbox {
            writer,
            delay,
            most_waiting: (max_outbox / 2).max(1),
            due: false,
            gatherer: None,
            gathering: false,
            blocked: false,
            waiting: 0,
        }
    }

    /// Queues a frame (already counted by the session's handle) and
    /// schedules its write.
    pub(super) fn push(&mut self, frame: Outgoing) {
        let Some(writer) = self.writer.as_mut() else {
            return;
        };
        let urgent = frame.is_urgent();
        writer.push(frame);
        self.waiting += 1;
        if self.blocked || self.due {
            // The write already planned takes this frame too.
            return;
        }
        match self.gatherer.as_ref() {
            Some(gatherer) if !urgent && self.waiting < self.most_waiting => {
                if !self.gathering {
                    self.gathering = true;
                    gatherer.wait();
                }
            }
            // The Flusher writes it at the end of this wakeup.
            _ => self.due = true,
        }
    }

    /// Whether the session has a connection to write to.
    pub(super) fn is_open(&self) -> bool {
        self.writer.is_some()
    }

    /// Takes a new connection's writer (the session has none).
    pub(super) fn attach(&mut self, writer: Writer) {
        self.writer = Some(writer);
        self.due = false;
        self.blocked = false;
        self.waiting = 0;
    }

    /// Joins the thread's gathering tick, if events are to wait.
    pub(super) fn gather(&mut self, session: Addr<Session>) {
        if !self.delay.is_zero() {
            self.gatherer = Some(Gatherer::join(self.delay, session));
        }
    }

    /// Whether the client has sent bytes not read yet (see
    /// [`Writer::unread`]); never while away.
    pub(super) fn unread(&self) -> bool {
        self.writer.as_ref().is_some_and(Writer::unread)
    }

    /// Frees the frame queue's room at the next write (the heartbeat says
    /// when: a quiet session keeps no buffer between beats).
    pub(super) fn shrink(&mut self) {
        if let Some(writer) = self.writer.as_mut() {
            writer.shrink();
        }
    }

    /// Writes what is queued; returns how many frames left the queue
    /// (written whole), and `false` when the connection turned out gone.
    fn write(&mut self, ctx: &mut Context<Session>) -> (usize, bool) {
        self.due = false;
        let Some(writer) = self.writer.as_mut() else {
            return (0, false);
        };
        let (written, flushed) = writer.flush();
        self.waiting = self.waiting.saturating_sub(written);
        match flushed {
            Flushed::All => {}
            Flushed::Blocked => {
                self.blocked = true;
                ctx.spawn(Writable);
            }
            Flushed::Failed => return (written, false),
        }
        (written, true)
    }

    /// Drops every queued frame (the client does not read) and gives the
    /// session's place back at once; returns how many frames were dropped.
    pub(super) fn discard(&mut self) -> usize {
        let Some(writer) = self.writer.as_mut() else {
            return 0;
        };
        writer.release_slot();
        let dropped = writer.discard();
        self.waiting = self.waiting.saturating_sub(dropped);
        dropped
    }

    /// Hands the writer over to close the connection: what is queued goes
    /// out, then a Close with `code`, within `patience`. Returns how many frames were
    /// queued: the session no longer counts them.
    pub(super) fn finish(&mut self, code: CloseCode, patience: Duration) -> usize {
        if let Some(mut writer) = self.writer.take() {
            // Not counted: a Close goes out even when the outbox is full.
            writer.push(Outgoing::Close(code));
            writer.close(patience);
        }
        std::mem::take(&mut self.waiting)
    }

    /// Drops the connection at once, without a Close frame. Returns how
    /// many frames were queued, as [`finish`](Outbox::finish) does.
    pub(super) fn abort(&mut self) -> usize {
        self.writer = None;
        std::mem::take(&mut self.waiting)
    }
}

impl Session {
    /// Writes what is queued and tells the handle how much left the queue;
    /// stops the session if the connection is gone.
    fn write(&mut self, ctx: &mut Context<Session>) {
        let (written, open) = self.outbox.write(ctx);
        // Frames written before a failure no longer fill the outbox either.
        self.handle.written(written);
        if !open {
            self.lost_connection(LeaveReason::Disconnected, ctx);
        }
    }
}

impl Handler<Gathered> for Session {
    type Result = ();

    fn handle(&mut self, _: Gathered, ctx: &mut Context<Session>) {
        let outbox = &mut self.outbox;
        outbox.gathering = false;
        if !outbox.due && !outbox.blocked {
            self.write(ctx);
        }
    }
}

/// Makes the write due at the end of a wakeup. Added as the session
/// starts, right after its socket's reader, it is polled at every wakeup
/// after the session's mailbox and its reader: whatever either queued goes
/// out in one write, with no future spawned per write. It never ends.
pub(super) struct Flusher;

impl ActorFuture<Session> for Flusher {
    type Output = ();

    fn poll(
        self: Pin<&mut Self>,
        session: &mut Session,
        ctx: &mut Context<Session>,
        _: &mut TaskContext<'_>,
    ) -> Poll<()> {
        if session.outbox.due {
            session.write(ctx);
        }
        Poll::Pending
    }
}

/// Resolves once the socket takes bytes again, then writes.
struct Writable;

impl ActorFuture<Session> for Writable {
    type Output = ();

    fn poll(
        self: Pin<&mut Self>,
        session: &mut Session,
        ctx: &mut Context<Session>,
        task: &mut TaskContext<'_>,
    ) -> Poll<()> {
        let Some(writer) = session.outbox.writer.as_ref() else {
            return Poll::Ready(());
        };
        match writer.poll_writable(task) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(ready) => {
                session.outbox.blocked = false;
                if ready.is_err() {
                    session.lost_connection(LeaveReason::Disconnected, ctx);
                } else {
                    session.write(ctx);
                }
                Poll::Ready(())
            }
        }
    }
}
