//! The session registry: admitting connections (new or resumed), session
//! actors registering, connections ending (the session is away: it stays
//! in its rooms for `rooms.away_grace_ms`), renames, and holding an away
//! session for `games.reconnect_grace_ms` so its token brings back the
//! same session, with its seats and the frames it missed.
//!
//! Held sessions wait in one queue ordered by deadline, swept by one timer
//! set for the first deadline, not one timer per session.

use std::time::Instant;

use actix::prelude::*;
use actix_http::ws::CloseCode;

use super::{Entry, Lobby};
use crate::{
    cluster::wire::NodeMsg,
    identity,
    links::{
        Admission, AdmitOutcome, Away, LiveSession, Register, Rename, RoomSeat, SaveSession,
        SessionHandle,
    },
    protocol::LeaveReason,
    room::{MemberAway, MemberBack, Renamed},
};

/// A connection is being opened: decide who it is. `None` when that
/// needs the cluster and it did not answer in time (the client tries
/// again).
#[derive(Message)]
#[rtype(result = "Option<Admission>")]
pub struct Admit {
    /// The `?resume=` token, if any.
    pub resume: Option<String>,
    /// The `?name=` name, already validated; `None` picks a random one.
    pub name: Option<String>,
    /// `?received=`: the frames the client counted, if it said.
    pub received: Option<u64>,
}

/// The away grace of a session's rooms ran out.
#[derive(Message)]
#[rtype(result = "()")]
struct RoomGraceOver {
    id: String,
    /// The entry's `drops` when it went away.
    drops: u64,
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
    /// The number of the next connection.
    pub(super) fn next_connection(&mut self) -> u64 {
        self.connections += 1;
        self.connections
    }

    /// A resume of the session `token` names, if its actor still runs: a
    /// new token (the old one is void), and its rooms. An away session is
    /// back in its rooms at once; a connected one is taken over.
    fn resume(&mut self, token: &str) -> Option<Admission> {
        let (id, secret) = identity::split_token(token, identity::SESSION_PREFIX)?;
        let connection = self.next_connection();
        let entry = self.sessions.get_mut(&id)?;
        if !identity::matches_hash(secret, &entry.resume_hash) {
            return None;
        }
        let running = entry.handle.clone().filter(SessionHandle::alive)?;
        let secret = identity::new_secret();
        entry.resume_hash = identity::secret_hash(&secret);
        entry.connection = connection;
        let was_away = entry.away.take().is_some();
        // A takeover leaves the queue as a drop does: the client that took
        // over may not know it was queued.
        let queued = entry.queued.take();
        let admission = Admission {
            resume: identity::token(&id, &secret),
            name: entry.name.clone(),
            color: entry.color.clone(),
            outcome: AdmitOutcome::Resumed,
            connection,
            running: Some(running),
            rooms: entry.rooms.clone(),
            lost_rooms: std::mem::take(&mut entry.lost_rooms),
            games: Vec::new(),
            carried: None,
            adopted: None,
            id,
        };
        if was_away {
            self.step_back(&admission.id, &admission.rooms);
        }
        if let Some(kind) = queued {
            self.leave_queue(kind, &admission.id);
        }
        let seated = self.sessions.get(&admission.id);
        if seated.is_some_and(|entry| !entry.games.is_empty()) {
            self.keep_seated(&admission.id);
        }
        Some(admission)
    }

    fn admit_new(&mut self, name: Option<String>, outcome: AdmitOutcome) -> Admission {
        let id = identity::new_id(identity::SESSION_PREFIX);
        let connection = self.next_connection();
        let secret = identity::new_secret();
        let entry = Entry::new(
            name.unwrap_or_else(identity::random_name),
            identity::random_color(),
            identity::secret_hash(&secret),
            connection,
        );
        let admission = Admission {
            resume: identity::token(&id, &secret),
            name: entry.name.clone(),
            color: entry.color.clone(),
            id: id.clone(),
            outcome,
            connection,
            running: None,
            rooms: Vec::new(),
            lost_rooms: Vec::new(),
            games: Vec::new(),
            carried: None,
            adopted: None,
        };
        self.sessions.insert(id, entry);
        admission
    }

    /// Holds session `id` for the reconnect grace; it is forgotten then
    /// unless it has come back.
    pub(super) fn hold(&mut self, id: String, ctx: &mut Context<Self>) {
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

    /// Ends every held session whose grace ran out by `now` and that has
    /// not come back: it leaves its rooms, and its actor stops.
    fn expire_due(&mut self, now: Instant) {
        while let Some(held) = self.held.front() {
            if held.deadline > now {
                return;
            }
            let still_held = self.sessions.get(&held.id).is_some_and(|entry| {
                (entry.away.is_some() || entry.handle.is_none()) && entry.drops == held.drops
            });
            let id = held.id.clone();
            self.held.pop_front();
            if !still_held {
                continue;
            }
            let Some(entry) = self.sessions.remove(&id) else {
                continue;
            };
            let reason = entry.away.unwrap_or(LeaveReason::Disconnected);
            self.step_out(&id, entry.rooms, reason);
            if let Some(node) = self.backplane.node() {
                node.detach(&id);
                node.forget_session(&id, true);
            }
            if let Some(handle) = entry.handle {
                handle.end(CloseCode::Away);
            }
        }
    }

    /// Keeps session `id`'s identity in the store, as a session seated in a
    /// game: after a restart its player resumes with its latest token.
    pub(super) fn keep_seated(&self, id: &str) {
        let Some(entry) = self.sessions.get(id).filter(|_| self.settings.keep_in_play) else {
            return;
        };
        self.store.save_session(SaveSession(LiveSession {
            session: id.to_string(),
            name: entry.name.clone(),
            color: entry.color.clone(),
            resume_hash: entry.resume_hash.clone(),
        }));
    }

    /// The away grace of session `id`'s rooms ran out: it leaves them, to
    /// join them again if it comes back.
    fn rooms_grace_over(&mut self, id: &str, drops: u64) {
        let Some(entry) = self.sessions.get_mut(id) else {
            return;
        };
        let Some(reason) = entry.away.filter(|_| entry.drops == drops) else {
            return;
        };
        let rooms = std::mem::take(&mut entry.rooms);
        entry.lost_rooms.extend(rooms.iter().cloned());
        self.step_out(id, rooms, reason);
    }
}

/// The answer to an [`Admit`]: at once (every admission on one node), or
/// after the cluster was asked. A future the Lobby spawns is polled only
/// once its mailbox is empty, so an answer that is ready goes at once.
pub enum AdmitAnswer {
    Now(Option<Admission>),
    Later(ResponseActFuture<Lobby, Option<Admission>>),
}

impl actix::dev::MessageResponse<Lobby, Admit> for AdmitAnswer {
    fn handle(
        self,
        ctx: &mut Context<Lobby>,
        tx: Option<actix::dev::OneshotSender<Option<Admission>>>,
    ) {
        match self {
            AdmitAnswer::Now(admission) => {
                if let Some(tx) = tx {
                    let _ = tx.send(admission);
                }
            }
            AdmitAnswer::Later(later) => {
                actix::dev::MessageResponse::<Lobby, Admit>::handle(later, ctx, tx)
            }
        }
    }
}

impl Handler<Admit> for Lobby {
    type Result = AdmitAnswer;

    fn handle(&mut self, msg: Admit, ctx: &mut Context<Self>) -> Self::Result {
        if let Some(admission) = msg.resume.as_deref().and_then(|token| self.resume(token)) {
            self.record_session(&admission.id);
            return AdmitAnswer::Now(Some(admission));
        }
        // A token this node does not know may be another node's.
        if let (Some(node), Some(token)) = (self.backplane.node().cloned(), &msg.resume) {
            if let Some((id, secret)) = identity::split_token(token, identity::SESSION_PREFIX) {
                if !self.sessions.contains_key(&id) {
                    return AdmitAnswer::Later(self.resume_elsewhere(
                        node,
                        id,
                        secret.to_string(),
                        msg.name,
                        msg.received,
                    ));
                }
            }
        }
        let outcome = match msg.resume {
            None => AdmitOutcome::New,
            Some(_) => AdmitOutcome::ResumeRefused,
        };
        AdmitAnswer::Now(Some(self.admit_fresh(msg.name, outcome, ctx)))
    }
}

impl Lobby {
    /// A new session, held until its actor registers (so a handshake that
    /// never completes leaves nothing behind), and kept for the cluster.
    pub(super) fn admit_fresh(
        &mut self,
        name: Option<String>,
        outcome: AdmitOutcome,
        ctx: &mut Context<Self>,
    ) -> Admission {
        let admission = self.admit_new(name, outcome);
        self.hold(admission.id.clone(), ctx);
        self.record_session(&admission.id);
        admission
    }
}

impl Handler<Register> for Lobby {
    type Result = ();

    fn handle(&mut self, msg: Register, ctx: &mut Context<Self>) {
        match self.sessions.get_mut(&msg.id) {
            Some(entry) => {
                if let Some(node) = self.backplane.node() {
                    node.attach(&msg.id, msg.handle.clone());
                }
                entry.handle = Some(msg.handle);
            }
            None => return msg.handle.end(CloseCode::Error),
        }
        // A session moved here gets its games back, now that its frames
        // can be delivered.
        for game in self.recovering.remove(&msg.id).unwrap_or_default() {
            self.recover_game(&msg.id, game, ctx);
        }
        self.adopt(&msg.id);
    }
}

impl Handler<Away> for Lobby {
    type Result = ();

    fn handle(&mut self, msg: Away, ctx: &mut Context<Self>) {
        let Some(entry) = self.sessions.get_mut(&msg.id) else {
            return;
        };
        // The end of a connection since taken over changes nothing.
        if entry.connection != msg.connection || entry.away.is_some() {
            return;
        }
        entry.away = Some(msg.reason);
        let queued = entry.queued.take();
        if let Some(kind) = queued {
            self.leave_queue(kind, &msg.id);
        }
        self.hold(msg.id.clone(), ctx);
        let drops = self.sessions.get(&msg.id).map_or(0, |entry| entry.drops);
        if self.away_grace.is_zero() {
            self.rooms_grace_over(&msg.id, drops);
        } else {
            self.step_away(&msg.id, msg.reason);
            let grace_over = RoomGraceOver { id: msg.id, drops };
            ctx.notify_later(grace_over, self.away_grace);
        }
    }
}

impl Lobby {
    /// Tells every room in `rooms` that session `id` is back.
    pub(super) fn step_back(&self, id: &str, rooms: &[RoomSeat]) {
        for seat in rooms {
            if let Some(room) = self.rooms.get(&seat.room) {
                room.addr.do_send(MemberBack {
                    session: id.to_string(),
                });
            } else {
                self.tell_owner(&seat.room, || NodeMsg::Back {
                    room: seat.room.clone(),
                    session: id.to_string(),
                });
            }
        }
    }

    /// Tells every room of session `id` that it is away.
    fn step_away(&self, id: &str, reason: LeaveReason) {
        let Some(entry) = self.sessions.get(id) else {
            return;
        };
        for seat in &entry.rooms {
            if let Some(room) = self.rooms.get(&seat.room) {
                room.addr.do_send(MemberAway {
                    session: id.to_string(),
                    reason,
                });
            } else {
                self.tell_owner(&seat.room, || NodeMsg::Away {
                    room: seat.room.clone(),
                    session: id.to_string(),
                    reason,
                });
            }
        }
    }
}

impl Handler<RoomGraceOver> for Lobby {
    type Result = ();

    fn handle(&mut self, msg: RoomGraceOver, _: &mut Context<Self>) {
        self.rooms_grace_over(&msg.id, msg.drops);
    }
}

impl Handler<Rename> for Lobby {
    type Result = ();

    fn handle(&mut self, msg: Rename, _: &mut Context<Self>) {
        let Some(entry) = self.sessions.get_mut(&msg.id) else {
            return;
        };
        entry.name = msg.name.clone();
        if !entry.games.is_empty() {
            self.keep_seated(&msg.id);
        }
        self.record_session(&msg.id);
        let Some(entry) = self.sessions.get(&msg.id) else {
            return;
        };
        for seat in &entry.rooms {
            if let Some(room) = self.rooms.get(&seat.room) {
                room.addr.do_send(Renamed {
                    session: msg.id.clone(),
                    name: msg.name.clone(),
                });
            } else {
                self.tell_owner(&seat.room, || NodeMsg::Rename {
                    room: seat.room.clone(),
                    session: msg.id.clone(),
                    name: msg.name.clone(),
                });
            }
        }
    }
}
