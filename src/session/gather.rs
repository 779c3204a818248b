//! `server.write_delay_ms`: one tick per worker thread over the sessions
//! that hold events back, instead of a timer per session. The tick beats
//! every half delay; a session whose event may wait joins its thread's
//! list ([`Gatherer::wait`]) and is told to write everything gathered
//! meanwhile ([`Gathered`]) at the second beat after: its first event has
//! waited between half the delay and the whole of it. As with the
//! heartbeat's sweep, the tick and its sessions share one thread and no
//! lock.

use std::{
    cell::RefCell,
    collections::HashMap,
    rc::{Rc, Weak},
    time::Duration,
};

use actix::prelude::*;
use tokio::time::MissedTickBehavior;

use super::{heartbeat::running, Session};

/// The shortest pause between two beats, however short the delay.
const SHORTEST_BEAT: Duration = Duration::from_millis(1);

/// Time to write the events held back.
#[derive(Message)]
#[rtype(result = "()")]
pub(super) struct Gathered;

/// The sessions to tell: at the next beat, and at the one after.
#[derive(Default)]
struct Lists {
    next: Vec<Rc<Addr<Session>>>,
    after: Vec<Rc<Addr<Session>>>,
}

type Due = RefCell<Lists>;

thread_local! {
    /// This thread's ticks, one per delay (servers started side by side in
    /// one process, as the tests do, may differ). Once the last session
    /// using a tick has gone, the tick ends and the next one starts anew.
    static TICKS: RefCell<HashMap<Duration, Weak<Due>>> = RefCell::default();
}

/// A session's place in its thread's tick.
pub(super) struct Gatherer {
    /// The tick's list.
    due: Rc<Due>,
    /// The session, as the list holds it.
    session: Rc<Addr<Session>>,
}

impl Gatherer {
    /// Joins `session` to the calling thread's tick for `delay`, starting
    /// the tick if it is the first.
    pub(super) fn join(delay: Duration, session: Addr<Session>) -> Gatherer {
        let due = running(&TICKS, delay, |due| tick(delay, due));
        Gatherer {
            due,
            session: Rc::new(session),
        }
    }

    /// Has the session told to write at the next tick.
    pub(super) fn wait(&self) {
        self.due.borrow_mut().after.push(Rc::clone(&self.session));
    }
}

/// Tells the sessions on the list to write, beating every half `delay`,
/// for as long as any session uses the list.
async fn tick(delay: Duration, due: Weak<Due>) {
    let beat = (delay / 2).max(SHORTEST_BEAT);
    let mut tick = tokio::time::interval(beat);
    tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let Some(due) = due.upgrade() else {
            return;
        };
        // `do_send` only queues: no session runs while the list is taken.
        let sessions = {
            let mut lists = due.borrow_mut();
            let after = std::mem::take(&mut lists.after);
            std::mem::replace(&mut lists.next, after)
        };
        for session in sessions {
            session.do_send(Gathered);
        }
    }
}
