//! The session registry: admitting connections (new or resumed), live
//! connections registering and leaving, renames, and holding a dropped
//! session for `games.reconnect_grace_ms` so its token brings back the same
//! id, name, color and seats.
//!
//! Held sessions wait in one queue ordered by deadline, swept by one timer
//! set for the first deadline, not one timer per session.

use std::time::Instant;

use actix::prelude::*;
use actix_http::ws::CloseCode;

use super::{Entry, Lobby};
use crate::{
    identity,
    links::{Admission, AdmitOutcome, Register, Rename, SessionHandle, Unregister},
    protocol::{LeaveReason, CLOSE_TAKEN_OVER},
    room::Renamed,
};

/// A connection is being opened: decide who it is.
#[derive(Message)]
#[rtype(result = "Admission")]
pub struct Admit {
    /// The `?resume=` token, if any.
    pub resume: Option<String>,
    /// The `?name=` name, already validated; `None` picks a random one.
    pub name: Option<String>,
}

/// A session held for reconnection, until `deadline`.
pub(super) struct Held {
    /// The session id.
    id: String,
    /// The entry's `drops` when it was held: a session that came back (and
    /// maybe dropped again since) is not this hold's to expire.
    drops: u64,
    /// When its grace runs out.
    deadline: Instant,
}

impl Lobby {
    fn resume(&mut self, token: &str) -> Option<Admission> {
        let (id, secret) = identity::split_token(token, identity::SESSION_PREFIX)?;
        let entry = self.sessions.get_mut(&id)?;
        if !identity::secrets_match(secret, &entry.resume_secret) {
            return None;
        }
        if let Some(older) = entry.handle.take() {
            older.close(CloseCode::Other(CLOSE_TAKEN_OVER));
        }
        // The older connection will not unregister (it is no longer the
        // entry's), so its place in a queue and its rooms go with it here;
        // the new connection rejoins those rooms.
        let queued = entry.queued.take();
        let left_rooms = std::mem::take(&mut entry.rooms);
        let mut rooms = std::mem::take(&mut entry.away_rooms);
        rooms.extend(left_rooms.iter().cloned());
        entry.resume_secret = identity::new_secret();
        let games = entry
            .games
            .iter()
            .filter_map(|game| self.games.get(game))
            .map(|game| game.link.clone());
        let admission = Admission {
            resume: identity::token(&id, &entry.resume_secret),
            name: entry.name.clone(),
            color: entry.color.clone(),
            games: games.collect(),
            rooms,
            id,
            outcome: AdmitOutcome::Resumed,
        };
        self.step_out(&admission.id, left_rooms, LeaveReason::Disconnected);
        if let Some(kind) = queued {
            self.leave_queue(kind, &admission.id);
        }
        Some(admission)
    }

    fn admit_new(&mut self, name: Option<String>, outcome: AdmitOutcome) -> Admission {
        let id = identity::new_id(identity::SESSION_PREFIX);
        let entry = Entry {
            name: name.unwrap_or_else(identity::random_name),
            color: identity::random_color(),
            resume_secret: identity::new_secret(),
            handle: None,
            drops: 0,
            queued: None,
            games: Vec::new(),
            rooms: Vec::new(),
            away_rooms: Vec::new(),
        };
        let admission = Admission {
            resume: identity::token(&id, &entry.resume_secret),
            name: entry.name.clone(),
            color: entry.color.clone(),
            id: id.clone(),
            games: Vec::new(),
            rooms: Vec::new(),
            outcome,
        };
        self.sessions.insert(id, entry);
        admission
    }

    /// Holds session `id` for the reconnect grace; it is forgotten then
    /// unless a connection has registered for it again.
    fn hold(&mut self, id: String, ctx: &mut Context<Self>) {
        let Some(entry) = self.sessions.get_mut(&id) else {
            return;
        };
        entry.drops += 1;
        self.held.push_back(Held {
            id,
            drops: entry.drops,
            deadline: Instant::now() + self.settings.reconnect_grace,
        });
        if self.sweep.is_none() {
            self.arm_sweep(ctx);
        }
    }

    /// Sets the sweep's timer for the first held session's deadline.
    fn arm_sweep(&mut self, ctx: &mut Context<Self>) {
        self.sweep = self.held.front().map(|first| {
            let wait = first.deadline.saturating_duration_since(Instant::now());
            ctx.run_later(wait, |lobby, ctx| {
                lobby.expire_due(Instant::now());
                lobby.arm_sweep(ctx);
            })
        });
    }

    /// Forgets every held session whose grace ran out by `now` and that
    /// has not come back.
    fn expire_due(&mut self, now: Instant) {
        while let Some(held) = self.held.front() {
            if held.deadline > now {
                return;
            }
            let still_held = self
                .sessions
                .get(&held.id)
                .is_some_and(|entry| entry.handle.is_none() && entry.drops == held.drops);
            if still_held {
                self.sessions.remove(&held.id);
            }
            self.held.pop_front();
        }
    }
}

impl Handler<Admit> for Lobby {
    type Result = MessageResult<Admit>;

    fn handle(&mut self, msg: Admit, ctx: &mut Context<Self>) -> Self::Result {
        let admission = match msg.resume {
            None => self.admit_new(msg.name, AdmitOutcome::New),
            Some(token) => match self.resume(&token) {
                Some(admission) => admission,
                None => self.admit_new(msg.name, AdmitOutcome::ResumeRefused),
            },
        };
        // Until its actor registers, the session is held like a dropped one,
        // so a handshake that never completes leaves nothing behind.
        self.hold(admission.id.clone(), ctx);
        MessageResult(admission)
    }
}

impl Handler<Register> for Lobby {
    type Result = ();

    fn handle(&mut self, msg: Register, _: &mut Context<Self>) {
        match self.sessions.get_mut(&msg.id) {
            Some(entry) => entry.handle = Some(msg.handle),
            None => msg.handle.close(CloseCode::Error),
        }
    }
}

impl Handler<Unregister> for Lobby {
    type Result = ();

    fn handle(&mut self, msg: Unregister, ctx: &mut Context<Self>) {
        let Some(entry) = self.sessions.get_mut(&msg.id) else {
            return;
        };
        let current = entry.handle.as_ref().map(SessionHandle::connection);
        if current != Some(msg.connection) {
            return;
        }
        entry.handle = None;
        let queued = entry.queued.take();
        let rooms = std::mem::take(&mut entry.rooms);
        entry.away_rooms = rooms.clone();
        if let Some(kind) = queued {
            self.leave_queue(kind, &msg.id);
        }
        self.step_out(&msg.id, rooms, msg.reason);
        self.hold(msg.id, ctx);
    }
}

impl Handler<Rename> for Lobby {
    type Result = ();

    fn handle(&mut self, msg: Rename, _: &mut Context<Self>) {
        let Some(entry) = self.sessions.get_mut(&msg.id) else {
            return;
        };
        entry.name = msg.name.clone();
        for seat in &entry.rooms {
            if let Some(room) = self.rooms.get(&seat.room) {
                room.addr.do_send(Renamed {
                    session: msg.id.clone(),
                    name: msg.name.clone(),
                });
            }
        }
    }
}
