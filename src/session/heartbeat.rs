//! The heartbeat: one sweep per worker thread over the sessions running on
//! it, instead of one timer per session. Every `heartbeat.interval_ms` the
//! sweep queues a Ping into each session's outbox, and tells a session that
//! has been silent for `heartbeat.timeout_ms` to go ([`Silent`]): it is
//! evicted between `timeout_ms` and `timeout_ms + interval_ms` after its
//! last frame, as PROTOCOL.md says.
//!
//! A session enrols as it starts and leaves as its [`Enrolment`] is
//! dropped; sessions never move between threads, so the sweep and its
//! sessions share one thread and no lock.

use std::{
    cell::{Cell, RefCell},
    collections::HashMap,
    rc::{Rc, Weak},
    time::{Duration, Instant},
};

use actix::prelude::*;
use tokio::{
    sync::mpsc::{self, error::TrySendError},
    time::MissedTickBehavior,
};

use super::Session;
use crate::links::{Outgoing, Overflowed};

/// The session has been silent for `heartbeat.timeout_ms`: evict it.
#[derive(Message)]
#[rtype(result = "()")]
pub(super) struct Silent;

/// One session as its sweep sees it.
struct Pulse {
    /// When the client last sent anything; the session updates it.
    last_seen: Rc<Cell<Instant>>,
    /// Where the Ping goes.
    outbox: mpsc::Sender<Outgoing>,
    /// Told when the client is silent or its outbox full.
    session: Addr<Session>,
}

/// The sessions of one sweep, by connection number.
type Sessions = RefCell<HashMap<u64, Pulse>>;

/// The heartbeat settings a sweep runs with: interval and timeout.
type Beat = (Duration, Duration);

thread_local! {
    /// This thread's sweeps, one per setting (servers started side by side
    /// in one process, as the tests do, may differ). Enrolments keep a
    /// sweep's sessions alive; once the last has left, the sweep ends at
    /// its next tick and the next session to enrol starts a new one.
    static SWEEPS: RefCell<HashMap<Beat, Weak<Sessions>>> = RefCell::default();
}

/// A session's place in its thread's sweep; it leaves when this is dropped.
pub(super) struct Enrolment {
    /// The sweep.
    sessions: Rc<Sessions>,
    /// The session's connection number, its key there.
    connection: u64,
}

impl Drop for Enrolment {
    fn drop(&mut self) {
        self.sessions.borrow_mut().remove(&self.connection);
    }
}

/// Enrols the session at `session` (serving `connection`) in the sweep of
/// the calling thread for `interval` and `timeout`, starting that sweep if
/// it is the thread's first.
pub(super) fn enrol(
    (interval, timeout): Beat,
    connection: u64,
    last_seen: Rc<Cell<Instant>>,
    outbox: mpsc::Sender<Outgoing>,
    session: Addr<Session>,
) -> Enrolment {
    let sessions = SWEEPS.with(|sweeps| {
        let mut sweeps = sweeps.borrow_mut();
        let running = sweeps.get(&(interval, timeout)).and_then(Weak::upgrade);
        running.unwrap_or_else(|| {
            let sessions = Rc::new(Sessions::default());
            actix_rt::spawn(sweep(interval, timeout, Rc::downgrade(&sessions)));
            sweeps.insert((interval, timeout), Rc::downgrade(&sessions));
            sessions
        })
    });
    let pulse = Pulse {
        last_seen,
        outbox,
        session,
    };
    sessions.borrow_mut().insert(connection, pulse);
    Enrolment {
        sessions,
        connection,
    }
}

/// Beats `sessions` every `interval` for as long as any session is enrolled.
async fn sweep(interval: Duration, timeout: Duration, sessions: Weak<Sessions>) {
    let mut tick = tokio::time::interval(interval);
    tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
    // The first tick is at once: nobody is due yet.
    tick.tick().await;
    loop {
        tick.tick().await;
        let Some(sessions) = sessions.upgrade() else {
            return;
        };
        beat(&sessions, timeout);
    }
}

/// One beat: a Ping for every session, eviction for the silent ones.
fn beat(sessions: &Sessions, timeout: Duration) {
    let now = Instant::now();
    // `do_send` only queues, so no session handler runs (and enrols or
    // leaves) while the map is borrowed.
    for pulse in sessions.borrow().values() {
        if now.saturating_duration_since(pulse.last_seen.get()) >= timeout {
            pulse.session.do_send(Silent);
            continue;
        }
        match pulse.outbox.try_send(Outgoing::Ping) {
            Err(TrySendError::Full(_)) => pulse.session.do_send(Overflowed),
            Ok(()) | Err(TrySendError::Closed(_)) => {}
        }
    }
}
