//! Bringing back, as the server starts, the games that were in play when it
//! last stopped and the sessions seated in them (PROTOCOL.md,
//! *Persistence*): each session is away, held for
//! `games.reconnect_grace_ms` from now, so its player resumes with its
//! latest token and plays on.

use std::time::SystemTime;

use actix::prelude::*;

use super::{matchmaking::GameEntry, Entry, Lobby};
use crate::{
    links::{GameLink, SessionHandle},
    protocol::{LeaveReason, PlayerInfo},
};

/// A session seated in a game in play, brought back.
pub struct RestoredSession {
    pub id: String,
    /// The display name.
    pub name: String,
    /// The color.
    pub color: String,
    /// The hash of its latest resume token's secret.
    pub resume_hash: String,
    /// Its actor, away.
    pub handle: SessionHandle,
    /// The games it sits in.
    pub games: Vec<String>,
}

/// A game in play, brought back.
pub struct RestoredGame {
    /// How to reach it.
    pub link: GameLink,
    /// The hash of its watch key's secret.
    pub watch_hash: String,
    /// A listed game's whole watch key.
    pub watch_key: Option<String>,
    /// The seated players, in seat order.
    pub players: Vec<PlayerInfo>,
    /// Their session ids, in seat order.
    pub seated: Vec<String>,
    /// When it started.
    pub started_at: SystemTime,
}

/// What the store kept of the games in play; sent once, before any
/// connection is admitted.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Restore {
    /// The seated sessions.
    pub sessions: Vec<RestoredSession>,
    /// The games.
    pub games: Vec<RestoredGame>,
}

impl Handler<Restore> for Lobby {
    type Result = ();

    fn handle(&mut self, msg: Restore, ctx: &mut Context<Self>) {
        for game in msg.games {
            let id = game.link.id.clone();
            self.games.insert(id, GameEntry::restored(game));
        }
        for session in msg.sessions {
            let connection = self.next_connection();
            let entry = Entry {
                name: session.name,
                color: session.color,
                resume_hash: session.resume_hash,
                handle: Some(session.handle),
                connection,
                away: Some(LeaveReason::Disconnected),
                drops: 0,
                queued: None,
                bot_offer: None,
                games: session.games,
                since: std::time::SystemTime::now(),
                rooms: Vec::new(),
                lost_rooms: Vec::new(),
            };
            self.sessions.insert(session.id.clone(), entry);
            self.hold(session.id, ctx);
        }
    }
}
