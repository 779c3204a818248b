//! A resync: a resume that could not recover the missed frames sends the
//! state of everything the session is in instead, in PROTOCOL.md's order
//! (*Reconnecting and recovery*): every game's `game_state`, then every
//! room's `room_joined` and `room_state`, then live frames. Games and rooms
//! answer from their own threads, so the session orders them: its room
//! joins wait until every game has sent its state ([`Resynced`]), and live
//! frames wait, unnumbered, until every game and every room it is still in
//! has sent its own, or for one heartbeat at most.

use std::{
    collections::HashSet,
    sync::atomic::{AtomicU64, Ordering},
};

use actix::prelude::*;

use super::Session;
use crate::links::{JoinRoomRequest, Outgoing, ResyncPart, Resynced, RoomSeat};

/// A resync under way.
pub(super) struct Resync {
    /// Numbers resyncs, so that the timer of an earlier one leaves a later
    /// one alone.
    serial: u64,
    /// Games and rooms whose state has not come yet.
    awaited: HashSet<ResyncPart>,
    /// Room joins, held until every game has sent its state.
    joins: Vec<JoinRoomRequest>,
    /// Live frames, held (unnumbered) until the resync is done.
    held: Vec<Outgoing>,
}

impl Resync {
    /// Whether a game's state is still awaited (room joins wait for them).
    fn awaits_games(&self) -> bool {
        self.awaited
            .iter()
            .any(|part| matches!(part, ResyncPart::Game(_)))
    }
}

impl Session {
    /// Starts a resync: asks every game for its state, and every room in
    /// `seats` to be joined again once the games have answered; `stay`
    /// are the rooms the session is still in, which answer with their
    /// state too.
    pub(super) fn start_resync(
        &mut self,
        seats: Vec<RoomSeat>,
        stay: &[RoomSeat],
        ctx: &mut Context<Self>,
    ) {
        static SERIAL: AtomicU64 = AtomicU64::new(0);
        let serial = SERIAL.fetch_add(1, Ordering::Relaxed);
        let games = self.live_games().map(ResyncPart::Game);
        let rooms = stay.iter().map(|seat| ResyncPart::Room(seat.room.clone()));
        self.resync = Some(Box::new(Resync {
            serial,
            awaited: games.chain(rooms).collect(),
            joins: Vec::new(),
            held: Vec::new(),
        }));
        // A game or room that never answers holds the rest back no longer
        // than one heartbeat.
        ctx.run_later(
            self.shared.config.heartbeat_interval(),
            move |session, _| {
                if session.resync.as_ref().is_some_and(|r| r.serial == serial) {
                    session.end_resync();
                }
            },
        );
        self.tell_games(crate::links::PresenceChange::Back { resync: true });
        self.rejoin(seats, stay);
        self.resync_progress();
    }

    /// Holds a room join while games' states are awaited; `Some(join)`
    /// when it may go now.
    pub(super) fn hold_join(&mut self, join: JoinRoomRequest) -> Option<JoinRoomRequest> {
        match &mut self.resync {
            Some(resync) if resync.awaits_games() => {
                resync.joins.push(join);
                None
            }
            _ => Some(join),
        }
    }

    /// Holds a live frame while a resync is under way; `Some(frame)` when
    /// it may go now.
    pub(super) fn hold_live(&mut self, frame: Outgoing) -> Option<Outgoing> {
        match &mut self.resync {
            Some(resync) => {
                resync.held.push(frame);
                None
            }
            None => Some(frame),
        }
    }

    /// Sends the joins once no game is awaited, and ends the resync once
    /// nothing is.
    fn resync_progress(&mut self) {
        let Some(resync) = &mut self.resync else {
            return;
        };
        if !resync.awaits_games() {
            for join in std::mem::take(&mut resync.joins) {
                self.shared.lobby.join(join);
            }
        }
        if self.resync.as_ref().is_some_and(|r| r.awaited.is_empty()) {
            self.end_resync();
        }
    }

    /// Ends the resync: held joins go to the Lobby, held live frames are
    /// numbered and go out, in the order they came.
    pub(super) fn end_resync(&mut self) {
        let Some(resync) = self.resync.take() else {
            return;
        };
        for join in resync.joins {
            self.shared.lobby.join(join);
        }
        for frame in resync.held {
            self.deliver(frame);
        }
    }
}

impl Handler<Resynced> for Session {
    type Result = ();

    fn handle(&mut self, msg: Resynced, ctx: &mut Context<Self>) {
        for frame in msg.frames {
            self.replay.number(&frame);
            self.push(Outgoing::Text(frame), ctx);
        }
        if let Some(resync) = &mut self.resync {
            resync.awaited.remove(&msg.part);
        }
        self.resync_progress();
    }
}
