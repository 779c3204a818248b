//! The heartbeat: one sweep per worker thread over the sessions running on
//! it, instead of one timer per session. Every `heartbeat.interval_ms` the
//! sweep tells each session to beat ([`Beat`]): it Pings its client, or
//! goes if its client has been silent for `heartbeat.timeout_ms`, so that
//! it is evicted between `timeout_ms` and `timeout_ms + interval_ms` after
//! its last frame, as PROTOCOL.md says. The sessions are spread over
//! [`SLICES`] slices beaten in turn, one every `interval_ms / SLICES`, so
//! that thousands of Pings (and their Pongs) never arrive in one burst that
//! would hold up everything else on the thread.
//!
//! A session enrols as it starts and leaves as its [`Enrolment`] is
//! dropped; sessions never move between threads, so the sweep and its
//! sessions share one thread and no lock.

use std::{
    cell::{Cell, RefCell},
    collections::HashMap,
    future::Future,
    rc::{Rc, Weak},
    thread::LocalKey,
    time::Duration,
};

use actix::prelude::*;
use tokio::time::MissedTickBehavior;

use super::Session;

/// Time to Ping the client, or to evict it if it has been silent for
/// `heartbeat.timeout_ms`.
#[derive(Message)]
#[rtype(result = "()")]
pub(super) struct Beat;

/// How many slices a sweep's sessions are spread over.
const SLICES: usize = 100;

/// The shortest pause between two beats, however short the interval.
const SHORTEST_BEAT: Duration = Duration::from_millis(1);

/// The sessions of one sweep, in slices, by connection number.
struct Sessions {
    slices: RefCell<[HashMap<u64, Addr<Session>>; SLICES]>,
    /// The slice the next session joins: sessions join the slices in turn.
    next: Cell<usize>,
}

impl Default for Sessions {
    fn default() -> Sessions {
        Sessions {
            slices: RefCell::new(std::array::from_fn(|_| HashMap::new())),
            next: Cell::new(0),
        }
    }
}

thread_local! {
    /// This thread's sweeps, one per interval (servers started side by
    /// side in one process, as the tests do, may differ). Enrolments keep a
    /// sweep's sessions alive; once the last has left, the sweep ends at
    /// its next tick and the next session to enrol starts a new one.
    static SWEEPS: RefCell<HashMap<Duration, Weak<Sessions>>> = RefCell::default();
}

/// A session's place in its thread's sweep; it leaves when this is dropped.
pub(super) struct Enrolment {
    /// The sweep.
    sessions: Rc<Sessions>,
    /// The slice it is in.
    slice: usize,
    /// The session's connection number, its key there.
    connection: u64,
}

impl Drop for Enrolment {
    fn drop(&mut self) {
        self.sessions.slices.borrow_mut()[self.slice].remove(&self.connection);
    }
}

/// Enrols the session at `session` (serving `connection`) in the sweep of
/// the calling thread for `interval`, starting that sweep if it is the
/// thread's first.
pub(super) fn enrol(interval: Duration, connection: u64, session: Addr<Session>) -> Enrolment {
    let sessions = running(&SWEEPS, interval, |sessions| sweep(interval, sessions));
    let slice = sessions.next.get();
    sessions.next.set((slice + 1) % SLICES);
    sessions.slices.borrow_mut()[slice].insert(connection, session);
    Enrolment {
        sessions,
        slice,
        connection,
    }
}

/// What the calling thread's sweep for `period` in `sweeps` works on,
/// starting that sweep (`start`, given a weak reference to it) if none
/// runs: a sweep runs while anyone holds what it works on.
pub(super) fn running<T, F>(
    sweeps: &'static LocalKey<RefCell<HashMap<Duration, Weak<T>>>>,
    period: Duration,
    start: impl FnOnce(Weak<T>) -> F,
) -> Rc<T>
where
    T: Default,
    F: Future<Output = ()> + 'static,
{
    sweeps.with(|sweeps| {
        let mut sweeps = sweeps.borrow_mut();
        let running = sweeps.get(&period).and_then(Weak::upgrade);
        running.unwrap_or_else(|| {
            let state = Rc::new(T::default());
            actix_rt::spawn(start(Rc::downgrade(&state)));
            sweeps.insert(period, Rc::downgrade(&state));
            state
        })
    })
}

/// Beats one slice of `sessions` every `interval / SLICES`, so each
/// session every `interval`, for as long as any session is enrolled.
async fn sweep(interval: Duration, sessions: Weak<Sessions>) {
    let period = (interval / SLICES as u32).max(SHORTEST_BEAT);
    let mut tick = tokio::time::interval(period);
    tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
    // The first tick is at once: nobody is due yet.
    tick.tick().await;
    for turn in (0..SLICES).cycle() {
        tick.tick().await;
        let Some(sessions) = sessions.upgrade() else {
            return;
        };
        // `do_send` only queues, so no session handler runs (and enrols or
        // leaves) while the slice is borrowed.
        for session in sessions.slices.borrow()[turn].values() {
            session.do_send(Beat);
        }
    }
}
