//! A session handed over whole from a live node to another (PROTOCOL.md,
//! *Running several nodes*: a resume on another node is `recovered:true`
//! when the old node is alive and still keeps the frames).
//!
//! The new node first listens to the session's rooms' and games' channels
//! and holds its frames there. The old node then, in this order, stops
//! delivering channel frames to it (noting where each channel stood), has
//! the rooms and games it runs reach the member through their channels,
//! and takes from the session actor the frames after the client's count
//! (the actor closes the connection with 4001 and stops). The session stays
//! a member everywhere; the owners of its rooms and games elsewhere learn
//! its new node. The new node resumes it with those frames and numbers on,
//! then delivers the held frames past the old node's cutoffs: nothing is
//! lost or sent twice. If the old node no longer keeps the frames, the new
//! node resyncs the client instead (still a member everywhere).

use actix::prelude::*;

use super::{cluster::RemoteRoom, Lobby};
use crate::{
    cluster::{
        game_key,
        wire::{Carried, NodeMsg, SessionData},
    },
    identity,
    links::{
        Admission, AdmitOutcome, Adopted, CarriedFrames, GameLink, MovedOut, Rehome, RoomLink,
        RoomSeat,
    },
    protocol::RoomKind,
};

/// A session this node has handed over to node `to`, for its answer.
struct HandOff {
    session: String,
    to: String,
    /// The request's number, echoed.
    nonce: u64,
    /// Its rooms, each with its owner node and kind.
    rooms: Vec<(RoomSeat, String, RoomKind)>,
    /// Its games, each with its owner node.
    games: Vec<(String, String)>,
    /// Where each channel it was delivered from stood.
    cutoffs: Vec<(String, u64, u64)>,
    /// What its actor left: the frames after the count, if kept.
    moved: Option<MovedOut>,
}

/// What a session handed over here still needs once it registers.
pub(super) struct Adopting {
    /// Its rooms.
    rooms: Vec<RoomSeat>,
    /// The games that reach it anew (with `game_state`), each with its
    /// owner node: all of them when it resyncs, else those it has no link
    /// to yet.
    rehome: Vec<(String, String)>,
    /// Whether its frames came along (else it resyncs).
    recovered: bool,
}

impl Lobby {
    /// Node `to` resumes session `session`, live here, with the client's
    /// count `received`: hand it over whole (see the module).
    pub(super) fn hand_over_session(
        &mut self,
        session: &str,
        to: &str,
        nonce: u64,
        received: u64,
        ctx: &mut Context<Self>,
    ) {
        let (Some(node), Some(entry)) = (self.redis(), self.sessions.get_mut(session)) else {
            return;
        };
        let Some(handle) = entry.handle.clone() else {
            return;
        };
        let queued = entry.queued.take();
        let (seats, games) = (entry.rooms.clone(), entry.games.clone());
        if let Some(kind) = queued {
            self.leave_queue(kind, session);
        }
        let me = node.id().to_string();
        let mut rooms: Vec<(RoomSeat, String, RoomKind)> = Vec::new();
        let mut swaps = Vec::new();
        for seat in seats {
            if let Some(room) = self.rooms.get(&seat.room) {
                let handle = node.remote_session(&seat.room, session);
                let rehome = Rehome {
                    session: session.to_string(),
                    handle,
                    resync: false,
                };
                swaps.push(room.addr.send(rehome));
                rooms.push((seat, me.clone(), room.kind));
            } else if let Some(remote) = self.remote_rooms.get(&seat.room) {
                rooms.push((seat, remote.owner.clone(), remote.kind));
            }
        }
        let mut owned_games = Vec::new();
        let mut game_swaps = Vec::new();
        for game in games {
            if let Some(entry) = self.games.get(&game) {
                let handle = node.remote_session(&game_key(&game), session);
                game_swaps.push(entry.link.rehome_now(Rehome {
                    session: session.to_string(),
                    handle,
                    resync: false,
                }));
                owned_games.push((game, me.clone()));
            } else if let Some(elsewhere) = self.games_elsewhere.get(&game) {
                owned_games.push((game, elsewhere.owner.clone()));
            }
        }
        // In order: no channel frame, then no room's or game's, reaches the
        // actor after it has given its frames up.
        let cutoffs = node.move_out(session);
        let session = session.to_string();
        let to = to.to_string();
        let handing = async move {
            let cutoffs = cutoffs.await;
            for swap in swaps {
                let _ = swap.await;
            }
            for swap in game_swaps {
                swap.await;
            }
            let moved = handle.move_out(received).await;
            (cutoffs, moved)
        };
        ctx.spawn(
            handing
                .into_actor(self)
                .map(move |(cutoffs, moved), lobby, _| {
                    lobby.handed_over(HandOff {
                        session,
                        to,
                        nonce,
                        rooms,
                        games: owned_games,
                        cutoffs,
                        moved,
                    });
                }),
        );
    }

    /// The session is handed over: it leaves this node (a member still of
    /// its rooms and games, reached on node `to`), and `to` gets what it
    /// needs to resume it.
    fn handed_over(&mut self, handoff: HandOff) {
        let Some(node) = self.redis() else {
            return;
        };
        let HandOff {
            session,
            to,
            nonce,
            rooms,
            games,
            cutoffs,
            moved,
        } = handoff;
        let (session, to) = (session.as_str(), to.as_str());
        self.sessions.remove(session);
        node.forget_session(session, false);
        let me = node.id();
        for (seat, owner, _) in &rooms {
            if owner == me {
                let members = self.remote_members.entry(seat.room.clone()).or_default();
                members.insert(session.to_string(), to.to_string());
            } else {
                if let Some(remote) = self.remote_rooms.get_mut(&seat.room) {
                    remote.members = remote.members.saturating_sub(1);
                    if remote.members == 0 {
                        self.remote_rooms.remove(&seat.room);
                    }
                }
                node.forward(
                    owner,
                    NodeMsg::MemberMoved {
                        room: seat.room.clone(),
                        session: session.to_string(),
                        node: to.to_string(),
                    },
                );
            }
        }
        for (game, owner) in &games {
            if owner == me {
                let players = self.remote_players.entry(game.clone()).or_default();
                players.insert(session.to_string(), to.to_string());
            } else {
                if let Some(elsewhere) = self.games_elsewhere.get_mut(game) {
                    elsewhere.sessions.remove(session);
                }
                node.forward(
                    owner,
                    NodeMsg::PlayerMoved {
                        game: game.clone(),
                        session: session.to_string(),
                        node: to.to_string(),
                    },
                );
            }
        }
        let (frames, last, kinds) = match moved {
            Some(moved) => (
                moved
                    .frames
                    .map(|frames| frames.into_iter().map(String::from).collect()),
                moved.last,
                moved.games,
            ),
            None => (None, 0, Vec::new()),
        };
        let games = games
            .into_iter()
            .map(|(game, owner)| {
                let kind = kinds
                    .iter()
                    .find(|(id, _)| *id == game)
                    .map(|(_, kind)| *kind);
                (game, owner, kind)
            })
            .collect();
        let carried = Carried {
            frames,
            last,
            cutoffs,
            rooms,
            games,
        };
        node.forward(
            to,
            NodeMsg::Evicted {
                nonce,
                ended: true,
                carried: Some(carried),
            },
        );
    }

    /// Session `id`, handed over here whole from a live node: it resumes
    /// with the frames its client missed (`recovered:true`), a member
    /// still of its rooms and games, which reach it here from now.
    pub(super) fn admit_carried(
        &mut self,
        id: String,
        data: SessionData,
        carried: Carried,
        secret: &str,
        received: Option<u64>,
        ctx: &mut Context<Self>,
    ) -> Option<Admission> {
        let node = self.redis()?;
        if self.sessions.contains_key(&id) {
            node.depart(&id);
            return None;
        }
        let (mut entry, connection) = self.moved_entry(&data, secret);
        let seats: Vec<RoomSeat> = carried
            .rooms
            .iter()
            .map(|(seat, _, _)| seat.clone())
            .collect();
        entry.rooms = seats.clone();
        entry.games = carried
            .games
            .iter()
            .map(|(game, ..)| game.clone())
            .collect();
        self.sessions.insert(id.clone(), entry);
        self.hold(id.clone(), ctx);
        let me = node.id().to_string();
        for (seat, owner, kind) in &carried.rooms {
            if *owner == me {
                // A member here now, reached through the room's channel.
                if let Some(members) = self.remote_members.get_mut(&seat.room) {
                    members.remove(&id);
                }
                continue;
            }
            node.route(&seat.room, owner);
            let link = RoomLink::remote(seat.room.clone(), node.remote_rooms());
            let remote = self
                .remote_rooms
                .entry(seat.room.clone())
                .or_insert_with(|| RemoteRoom {
                    owner: owner.clone(),
                    kind: *kind,
                    link,
                    members: 0,
                });
            remote.members += 1;
        }
        for (game, owner, _) in &carried.games {
            if *owner == me {
                if let Some(players) = self.remote_players.get_mut(game) {
                    players.remove(&id);
                }
            } else {
                node.route(&game_key(game), owner);
                self.play_elsewhere(&id, game, owner);
            }
        }
        node.arrived(&id, carried.cutoffs);
        let recovered = carried.frames.is_some() && received.is_some();
        // Its links, from its first request on: a resync join, without its
        // frames, is answered without one.
        let mut adopted = Adopted::default();
        for (seat, ..) in &carried.rooms {
            adopted.rooms.push(match self.rooms.get(&seat.room) {
                Some(room) => room.link.clone(),
                None => RoomLink::remote(seat.room.clone(), node.remote_rooms()),
            });
        }
        let mut rehome = Vec::new();
        for (game, owner, kind) in &carried.games {
            let link = match (self.games.get(game), kind) {
                (Some(entry), _) => Some(entry.link.clone()),
                (None, Some(kind)) => {
                    Some(GameLink::remote(game.clone(), *kind, node.remote_games()))
                }
                (None, None) => None,
            };
            if !recovered || link.is_none() {
                rehome.push((game.clone(), owner.clone()));
            }
            adopted.games.extend(link);
        }
        self.adopting.insert(
            id.clone(),
            Adopting {
                rooms: seats.clone(),
                rehome,
                recovered,
            },
        );
        self.record_session(&id);
        let frames = carried.frames.filter(|_| recovered).map(|frames| {
            Box::new(CarriedFrames {
                frames: frames.into_iter().map(Into::into).collect(),
                last: carried.last,
                received: received.unwrap_or_default(),
            })
        });
        Some(Admission {
            resume: identity::token(&id, secret),
            name: data.name,
            color: data.color,
            outcome: AdmitOutcome::Resumed,
            connection,
            running: None,
            rooms: seats,
            lost_rooms: Vec::new(),
            games: carried.games.into_iter().map(|(game, ..)| game).collect(),
            carried: frames,
            adopted: Some(Box::new(adopted)),
            id,
        })
    }

    /// A session handed over here has registered: the rooms this node
    /// runs reach it anew when it resyncs, and so do games it has no link
    /// to yet (with `game_state`).
    pub(super) fn adopt(&mut self, id: &str) {
        let (Some(node), Some(adopting)) = (self.redis(), self.adopting.remove(id)) else {
            return;
        };
        let Some(handle) = self.sessions.get(id).and_then(|entry| entry.handle.clone()) else {
            return;
        };
        if !adopting.recovered {
            // It resyncs: the rooms this node runs answer its joins again
            // on this node (the rest answer through their channels).
            for seat in &adopting.rooms {
                if let Some(room) = self.rooms.get(&seat.room) {
                    room.addr.do_send(Rehome {
                        session: id.to_string(),
                        handle: handle.clone(),
                        resync: false,
                    });
                }
            }
        }
        // Away on its old node, if its client had dropped: back now.
        self.step_back(id, &adopting.rooms);
        for (game, owner) in adopting.rehome {
            match self.games.get(&game) {
                Some(entry) => entry.link.rehome(Rehome {
                    session: id.to_string(),
                    handle: handle.clone(),
                    resync: true,
                }),
                None => node.forward(
                    &owner,
                    NodeMsg::Rehome {
                        game,
                        session: id.to_string(),
                        from: node.id().to_string(),
                    },
                ),
            }
        }
    }

    /// The hand-over of session `id` to this node fell through: its frames
    /// are no longer held.
    pub(super) fn depart(&self, id: &str) {
        if let Some(node) = self.redis() {
            node.depart(id);
        }
    }
}
