//! The operators' requests (PROTOCOL.md, *Operators*): the sessions as
//! they are now, kicking a session, closing a room, and ending a game. The HTTP side checks
//! the token; the Lobby only carries them out.

use actix::prelude::*;
use actix_http::ws::CloseCode;
use serde::Serialize;

use super::Lobby;
use crate::{
    links::{Action, PlayerRequest},
    protocol::{self, LeaveReason},
    room::ShutRoom,
};

/// One session in `GET /api/admin/sessions`.
#[derive(Debug, Clone, Serialize)]
pub struct AdminSession {
    /// Its id.
    pub session: String,
    /// Its display name.
    pub name: String,
    /// Its color.
    pub color: String,
    /// `false` while away.
    pub connected: bool,
    /// The rooms it is in.
    pub rooms: Vec<String>,
    /// The games it sits in.
    pub games: Vec<String>,
    /// When it was admitted here, RFC 3339.
    pub since: String,
    /// This node's id, with a cluster.
    pub node: Option<String>,
}

/// Lists up to `limit` sessions of this node, the longest-standing first.
#[derive(Message)]
#[rtype(result = "Vec<AdminSession>")]
pub struct ListSessions {
    /// The most to list.
    pub limit: usize,
}

/// Kicks session `session`: `false` if there is none here.
#[derive(Message)]
#[rtype(result = "bool")]
pub struct Kick {
    /// The session.
    pub session: String,
}

/// Closes room `room`, which this node runs: `false` if it runs none.
#[derive(Message)]
#[rtype(result = "bool")]
pub struct ShutRoomNow {
    /// The room.
    pub room: String,
}

/// Ends game `game_id`, abandoned: `false` if there is none here.
#[derive(Message)]
#[rtype(result = "bool")]
pub struct EndGame {
    /// The game.
    pub game_id: String,
}

impl Handler<ListSessions> for Lobby {
    type Result = MessageResult<ListSessions>;

    fn handle(&mut self, msg: ListSessions, _: &mut Context<Self>) -> Self::Result {
        let node = self.backplane.node().map(|node| node.id().to_string());
        let mut sessions: Vec<AdminSession> = self
            .sessions
            .iter()
            .map(|(id, entry)| AdminSession {
                session: id.clone(),
                name: entry.name.clone(),
                color: entry.color.clone(),
                connected: entry.connected().is_some(),
                rooms: entry.rooms.iter().map(|seat| seat.room.clone()).collect(),
                games: entry.games.clone(),
                since: protocol::rfc3339(entry.since),
                node: node.clone(),
            })
            .collect();
        sessions.sort_by(|a, b| {
            a.since
                .cmp(&b.since)
                .then_with(|| a.session.cmp(&b.session))
        });
        sessions.truncate(msg.limit);
        MessageResult(sessions)
    }
}

impl Handler<Kick> for Lobby {
    type Result = bool;

    /// The session ends here and now: its token is void, its rooms see it
    /// leave `kicked`, its seats are forfeited, and its connection closes
    /// with 4003.
    fn handle(&mut self, msg: Kick, _: &mut Context<Self>) -> bool {
        let id = msg.session;
        let Some(entry) = self.sessions.remove(&id) else {
            return false;
        };
        log::info!("session {id} kicked by an operator");
        if let Some(kind) = entry.queued {
            self.leave_queue(kind, &id);
        }
        for game in &entry.games {
            if let Some(game) = self.games.get(game) {
                game.link.request(PlayerRequest {
                    session: id.clone(),
                    action: Action::Resign,
                    id: None,
                });
            }
        }
        self.step_out(&id, entry.rooms, LeaveReason::Kicked);
        if let Some(node) = self.backplane.node() {
            node.detach(&id);
            node.forget_session(&id, true);
        }
        if let Some(handle) = entry.handle {
            handle.end(CloseCode::Other(protocol::CLOSE_KICKED));
        }
        true
    }
}

impl Handler<ShutRoomNow> for Lobby {
    type Result = bool;

    /// Every member is out of the room at once (the room tells them,
    /// `room_left{reason:"closed"}`); the room stops and keeps its snapshot.
    fn handle(&mut self, msg: ShutRoomNow, _: &mut Context<Self>) -> bool {
        let Some(room) = self.rooms.remove(&msg.room) else {
            return false;
        };
        log::info!("room {} closed by an operator", msg.room);
        for entry in self.sessions.values_mut() {
            entry.rooms.retain(|seat| seat.room != msg.room);
            entry.lost_rooms.retain(|seat| seat.room != msg.room);
        }
        self.remote_members.remove(&msg.room);
        room.addr.do_send(ShutRoom);
        self.closing.insert(msg.room.clone());
        self.list(&msg.room, room.kind, 0);
        if let Some(node) = self.backplane.node() {
            node.release_room(&msg.room);
        }
        true
    }
}

impl Handler<EndGame> for Lobby {
    type Result = bool;

    fn handle(&mut self, msg: EndGame, _: &mut Context<Self>) -> bool {
        let Some(game) = self.games.get(&msg.game_id).filter(|game| !game.finished) else {
            return false;
        };
        log::info!("game {} ended by an operator", msg.game_id);
        game.link.request(PlayerRequest {
            session: String::new(),
            action: Action::End,
            id: None,
        });
        true
    }
}
