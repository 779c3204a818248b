//! Rooms across nodes, from the Lobby's side (ARCHITECTURE.md, *Many nodes
//! on Redis*). Every room has one owner node, which runs its Room actor and
//! counts its members wherever they are.
//!
//! - A join of a room this node does not run is held while the room is
//!   claimed (atomically, in Redis). If the claim takes, the room opens
//!   here and the join goes on as on one node; else the join is forwarded
//!   to the owner, which checks it and answers through the room's channel
//!   ([`JoinAnswered`]). No answer within `cluster.request_timeout_ms` is
//!   `unavailable`.
//! - A member on another node reaches its room through a remote
//!   [`RoomLink`]; its leave, drop, return and new name are forwarded.
//! - As owner, the Lobby takes other nodes' forwarded requests
//!   ([`Forwarded`]) for its rooms, reaching their members through remote
//!   [`SessionHandle`](crate::links::SessionHandle)s.

use std::sync::Arc;

use actix::prelude::*;

use actix_http::ws::CloseCode;

use super::{rooms::CheckedJoin, Entry, Lobby};
use crate::{
    cluster::{
        redis::RedisNode,
        redis::Taken,
        wire::{ForwardedJoin, NodeMsg, SessionData},
        Claim, Forwarded, JoinAnswered, NodesChanged, Unavailable, GAME_KEY,
    },
    identity,
    links::{
        Admission, AdmitOutcome, JoinRoomRequest, Presence, PresenceChange, RoomLink, RoomRequest,
        RoomSeat,
    },
    protocol::RoomKind,
    protocol::{self, ErrorCode, JoinRoom, LeaveReason, MemberInfo, Refusal, RequestId, Role},
    room::{Enter, MemberAway, MemberBack, Renamed, Resend},
};

/// A room another node owns, with members here.
pub(super) struct RemoteRoom {
    /// The owner node.
    pub(super) owner: String,
    /// The room's kind.
    pub(super) kind: RoomKind,
    /// How this node's members reach it.
    pub(super) link: RoomLink,
    /// This node's members in it.
    pub(super) members: usize,
}

/// A join waiting for the room's claim.
pub(super) enum HeldJoin {
    /// By a session of this node.
    Here(JoinRoomRequest),
    /// Forwarded by another node, which took this one for the owner.
    Forwarded(ForwardedJoin),
    /// The room's owner died: this node's members join it again wherever
    /// it is claimed.
    Reclaim,
}

/// The serial a member's join again of a room whose owner died is
/// awaited under (its session made no new join).
const REJOIN: u64 = u64::MAX;

/// A forwarded join's answer is overdue.
#[derive(Message)]
#[rtype(result = "()")]
struct JoinOverdue {
    session: String,
    room: String,
    serial: u64,
}

impl Lobby {
    /// The Redis node; the cluster paths are only taken with one.
    pub(super) fn redis(&self) -> Option<Arc<RedisNode>> {
        self.backplane.node().cloned()
    }

    /// A join of a room this node does not run: claim it, or forward the
    /// join to its owner.
    pub(super) fn join_elsewhere(&mut self, msg: JoinRoomRequest, ctx: &mut Context<Self>) {
        let Some(entry) = self.sessions.get(&msg.session) else {
            return;
        };
        let Some(handle) = entry.handle.clone() else {
            return;
        };
        let room = msg.join.room.clone();
        let already_in = entry.rooms.iter().any(|seat| seat.room == room);
        let refuse = |refusal: Refusal| {
            handle.refuse(&refusal.with_id(msg.id.as_ref()));
            if !already_in {
                handle.refuse_room(room.clone(), msg.serial);
            }
        };
        if !protocol::valid_room_name(&room) {
            // The owner checks every other field; the name says where it is.
            return refuse(super::rooms::bad_room_name());
        }
        if !already_in && entry.rooms.len() >= self.room_limits.max_per_session {
            let message = format!(
                "already in {} rooms, the most a session may be in",
                entry.rooms.len()
            );
            return refuse(Refusal::new(ErrorCode::TooManyRooms, "join_room", message));
        }
        if let Some(remote) = self.remote_rooms.get(&room) {
            let owner = remote.owner.clone();
            return self.forward_join(msg, &owner, already_in, ctx);
        }
        self.claim(room, HeldJoin::Here(msg), ctx);
    }

    /// Holds `join` while `room` is claimed (one claim per room at a time).
    fn claim(&mut self, room: String, join: HeldJoin, ctx: &mut Context<Self>) {
        let Some(node) = self.redis() else {
            return;
        };
        let kind = match &join {
            HeldJoin::Here(msg) => msg.join.kind,
            HeldJoin::Forwarded(forwarded) => forwarded.join.kind,
            HeldJoin::Reclaim => self.remote_rooms.get(&room).map(|remote| remote.kind),
        }
        .unwrap_or_default();
        let held = self.claiming.entry(room.clone()).or_default();
        held.push(join);
        if held.len() > 1 {
            return;
        }
        ctx.spawn(
            node.claim_room(&room, kind)
                .into_actor(self)
                .map(move |claim, lobby, ctx| lobby.claimed(&room, claim, ctx)),
        );
    }

    /// A claim of `room` came back: open the room here, or forward its
    /// held joins to the owner.
    fn claimed(&mut self, room: &str, claim: Result<Claim, Unavailable>, ctx: &mut Context<Self>) {
        let held = self.claiming.remove(room).unwrap_or_default();
        let Some(node) = self.redis() else {
            return;
        };
        let claim = match claim {
            Ok(claim) => claim,
            Err(Unavailable) => {
                for join in held {
                    self.refuse_unavailable(join);
                }
                return;
            }
        };
        let here = claim.owner == node.id();
        if here && !self.rooms.contains_key(room) {
            let zombies = held
                .iter()
                .find_map(|join| match join {
                    HeldJoin::Here(msg) => msg.join.zombies,
                    HeldJoin::Forwarded(forwarded) => forwarded.join.zombies,
                    HeldJoin::Reclaim => None,
                })
                .and_then(|zombies| u32::try_from(zombies).ok())
                .filter(|zombies| *zombies <= protocol::MAX_ZOMBIES)
                .unwrap_or(0);
            let opened = CheckedJoin {
                kind: claim.kind,
                role: claim.kind.default_role(),
                zombies,
            };
            self.open_room(room, &opened, ctx);
            node.owned(room, claim.epoch);
            if let Some(entry) = self.rooms.get(room) {
                node.serve(room, entry.link.clone());
            }
        }
        for join in held {
            match (join, here) {
                (HeldJoin::Here(msg), true) => self.join_here(msg, ctx),
                (HeldJoin::Here(msg), false) => {
                    let already_in = self.sessions.get(&msg.session).is_some_and(|entry| {
                        entry.rooms.iter().any(|seat| seat.room == msg.join.room)
                    });
                    self.forward_join(msg, &claim.owner, already_in, ctx);
                }
                (HeldJoin::Forwarded(forwarded), true) => self.join_from(forwarded),
                (HeldJoin::Forwarded(forwarded), false) => {
                    node.forward(&claim.owner, NodeMsg::Join(forwarded));
                }
                (HeldJoin::Reclaim, true) => self.reenter_here(room),
                (HeldJoin::Reclaim, false) => self.rejoin_at(room, &claim.owner, ctx),
            }
        }
        // Every held join may have been refused: a room opened for nobody
        // closes again.
        if here {
            self.close_if_empty(room);
        }
    }

    /// Closes (and gives up) a room this node runs that has no members.
    fn close_if_empty(&mut self, name: &str) {
        if self.rooms.get(name).is_some_and(|room| room.members == 0) {
            if let Some(room) = self.rooms.remove(name) {
                room.addr.do_send(crate::room::CloseRoom);
                self.closing.insert(name.to_string());
            }
            self.remote_members.remove(name);
            if let Some(node) = self.redis() {
                node.release_room(name);
            }
        }
    }

    /// This node took over a room whose owner died: its members here
    /// enter it again, each getting `room_joined` and `room_state` (from
    /// the snapshot the last owner wrote).
    fn reenter_here(&mut self, name: &str) {
        let Some(node) = self.redis() else {
            return;
        };
        self.remote_rooms.remove(name);
        // Until its members are linked to it afresh, their requests come
        // through the backplane: to this node, now.
        node.route(name, node.id());
        let Some(room) = self.rooms.get_mut(name) else {
            return;
        };
        for (id, entry) in &self.sessions {
            let Some(seat) = entry.rooms.iter().find(|seat| seat.room == name) else {
                continue;
            };
            let Some(handle) = entry.handle.clone() else {
                continue;
            };
            room.members += 1;
            room.addr.do_send(Enter {
                member: MemberInfo {
                    session: id.clone(),
                    name: entry.name.clone(),
                    color: entry.color.clone(),
                    role: seat.role,
                    away: entry.away.is_some(),
                },
                handle: handle.clone(),
                id: None,
                resync: false,
            });
            // The room is here now: straight to it (after the room has
            // heard of the member).
            handle.relink_room(room.link.clone());
            node.unlisten(name, id);
        }
        let (kind, members) = (room.kind, room.members);
        log::info!("cluster: took over room {name} ({members} members here)");
        self.list(name, kind, members);
    }

    /// Another node took over a room whose owner died: this node's members
    /// join it there.
    fn rejoin_at(&mut self, name: &str, owner: &str, ctx: &mut Context<Self>) {
        let Some(node) = self.redis() else {
            return;
        };
        let Some(remote) = self.remote_rooms.get_mut(name) else {
            return;
        };
        remote.owner = owner.to_string();
        let kind = remote.kind;
        node.route(name, owner);
        for (id, entry) in &self.sessions {
            let Some(seat) = entry.rooms.iter().find(|seat| seat.room == name) else {
                continue;
            };
            self.answering
                .insert((id.clone(), name.to_string()), (REJOIN, owner.to_string()));
            ctx.notify_later(
                JoinOverdue {
                    session: id.clone(),
                    room: name.to_string(),
                    serial: REJOIN,
                },
                self.request_timeout,
            );
            let member = MemberInfo {
                session: id.clone(),
                name: entry.name.clone(),
                color: entry.color.clone(),
                role: seat.role,
                away: entry.away.is_some(),
            };
            let join = ForwardedJoin {
                from: node.id().to_string(),
                member,
                join: JoinRoom {
                    room: name.to_string(),
                    kind: Some(kind),
                    role: Some(seat.role),
                    zombies: None,
                },
                id: None,
                serial: REJOIN,
                resync: false,
                already_in: false,
            };
            node.forward(owner, NodeMsg::Join(join));
        }
    }

    /// Answers a held join `unavailable`.
    fn refuse_unavailable(&self, join: HeldJoin) {
        let message = "the room's node or the cluster's Redis did not answer in time";
        let refusal = Refusal::new(ErrorCode::Unavailable, "join_room", message.to_string());
        match join {
            HeldJoin::Here(msg) => {
                let Some(entry) = self.sessions.get(&msg.session) else {
                    return;
                };
                let Some(handle) = &entry.handle else {
                    return;
                };
                handle.refuse(&refusal.with_id(msg.id.as_ref()));
                if !entry.rooms.iter().any(|seat| seat.room == msg.join.room) {
                    handle.refuse_room(msg.join.room, msg.serial);
                }
            }
            HeldJoin::Reclaim => {
                log::warn!("cluster: a room whose owner died could not be claimed");
            }
            HeldJoin::Forwarded(forwarded) => {
                // The member's node answers it when no answer comes.
                log::debug!(
                    "cluster: join of {} from {} not claimed",
                    forwarded.join.room,
                    forwarded.from
                );
            }
        }
    }

    /// Forwards a session's join to the room's owner; the session listens
    /// to the room's channel first, so that the answer reaches it.
    fn forward_join(
        &mut self,
        msg: JoinRoomRequest,
        owner: &str,
        already_in: bool,
        ctx: &mut Context<Self>,
    ) {
        let Some(node) = self.redis() else {
            return;
        };
        let Some(entry) = self.sessions.get(&msg.session) else {
            return;
        };
        let room = msg.join.room.clone();
        let role = entry
            .rooms
            .iter()
            .find(|seat| seat.room == room)
            .map(|seat| seat.role)
            .or(msg.join.role)
            .unwrap_or(Role::Member);
        let member = MemberInfo {
            session: msg.session.clone(),
            name: entry.name.clone(),
            color: entry.color.clone(),
            role,
            away: entry.away.is_some(),
        };
        node.listen(&room, &msg.session);
        let key = (msg.session.clone(), room.clone());
        // A second join while the first is unanswered: the owner greets the
        // member again; the first join's answer links it.
        let already_in = already_in || self.answering.contains_key(&key);
        if !already_in {
            self.answering.insert(key, (msg.serial, owner.to_string()));
            let overdue = JoinOverdue {
                session: msg.session.clone(),
                room: room.clone(),
                serial: msg.serial,
            };
            ctx.notify_later(overdue, self.request_timeout);
        }
        let forwarded = ForwardedJoin {
            from: node.id().to_string(),
            member,
            join: msg.join,
            id: msg.id,
            serial: msg.serial,
            resync: msg.resync,
            already_in,
        };
        node.forward(owner, NodeMsg::Join(forwarded));
    }

    /// A forwarded join of a room this node runs: checked and entered as
    /// on one node; its answer goes back through the room's channel.
    fn join_from(&mut self, join: ForwardedJoin) {
        let Some(node) = self.redis() else {
            return;
        };
        let name = join.join.room.clone();
        let session = join.member.session.clone();
        let handle = node.remote_session(&name, &session);
        // A member the room has already counts once, whatever its node thinks.
        let counted = self
            .remote_members
            .get(&name)
            .is_some_and(|members| members.contains_key(&session));
        let checked = self.check_join(&join.join).and_then(|checked| {
            let Some(room) = self.rooms.get(&name) else {
                return Err(Refusal::new(
                    ErrorCode::Unavailable,
                    "join_room",
                    format!("room {name} moved; try again"),
                ));
            };
            if !join.already_in && !counted && room.members >= self.room_limits.max_members {
                let suggestions = self.suggestions(checked.kind, &name);
                let refusal = Refusal::new(
                    ErrorCode::RoomFull,
                    "join_room",
                    format!("room {name} is full"),
                );
                return Err(refusal.with_suggestions(suggestions));
            }
            Ok(checked)
        });
        match checked {
            Ok(checked) => {
                let Some(room) = self.rooms.get_mut(&name) else {
                    return;
                };
                if !join.already_in && !counted {
                    room.members += 1;
                    self.remote_members
                        .entry(name.clone())
                        .or_default()
                        .insert(session.clone(), join.from.clone());
                }
                let (kind, members) = (room.kind, room.members);
                let mut member = join.member;
                if !join.already_in {
                    member.role = checked.role;
                }
                room.addr.do_send(Enter {
                    member,
                    handle,
                    id: join.id,
                    resync: join.resync,
                });
                if !join.already_in {
                    node.answer_join(
                        &name,
                        &session,
                        join.serial,
                        Some((checked.kind, checked.role)),
                    );
                    self.list(&name, kind, members);
                }
            }
            Err(refusal) => {
                handle.refuse(&refusal.with_id(join.id.as_ref()));
                if !join.already_in {
                    node.answer_join(&name, &session, join.serial, None);
                }
            }
        }
    }

    /// A member of a room another node owns leaves it.
    pub(super) fn exit_elsewhere(
        &mut self,
        name: &str,
        session: &str,
        reason: LeaveReason,
        id: Option<RequestId>,
    ) {
        let Some(node) = self.redis() else {
            return;
        };
        let Some(remote) = self.remote_rooms.get_mut(name) else {
            return;
        };
        node.forward(
            &remote.owner,
            NodeMsg::Exit {
                room: name.to_string(),
                session: session.to_string(),
                reason,
                id,
            },
        );
        remote.members = remote.members.saturating_sub(1);
        if remote.members == 0 {
            self.remote_rooms.remove(name);
        }
        node.unlisten(name, session);
    }

    /// Tells the owner of `room`, if another node owns it, `msg`; `true`
    /// when it did.
    pub(super) fn tell_owner(&self, room: &str, msg: impl FnOnce() -> NodeMsg) -> bool {
        let (Some(node), Some(remote)) = (self.redis(), self.remote_rooms.get(room)) else {
            return false;
        };
        node.forward(&remote.owner, msg());
        true
    }
}

impl Handler<JoinOverdue> for Lobby {
    type Result = ();

    fn handle(&mut self, msg: JoinOverdue, _: &mut Context<Self>) {
        let key = (msg.session, msg.room);
        if self.answering.get(&key).map(|(serial, _)| *serial) != Some(msg.serial) {
            return;
        }
        let Some((_, owner)) = self.answering.remove(&key) else {
            return;
        };
        let (session, room) = key;
        if let Some(node) = self.redis() {
            // The owner may have taken the member and its answer be lost.
            node.forward(
                &owner,
                NodeMsg::Exit {
                    room: room.clone(),
                    session: session.clone(),
                    reason: LeaveReason::Left,
                    id: None,
                },
            );
            node.unlisten(&room, &session);
        }
        if msg.serial == REJOIN {
            log::warn!("cluster: room {room} did not take session {session} back in time");
            if let Some(entry) = self.sessions.get_mut(&session) {
                entry.rooms.retain(|seat| seat.room != room);
            }
            self.exit_elsewhere(&room, &session, LeaveReason::Disconnected, None);
            return;
        }
        let join = JoinRoomRequest {
            session,
            join: JoinRoom {
                room,
                kind: None,
                role: None,
                zombies: None,
            },
            id: None,
            serial: msg.serial,
            resync: false,
        };
        self.refuse_unavailable(HeldJoin::Here(join));
    }
}

impl Handler<JoinAnswered> for Lobby {
    type Result = ();

    fn handle(&mut self, msg: JoinAnswered, _: &mut Context<Self>) {
        let Some(node) = self.redis() else {
            return;
        };
        let key = (msg.session, msg.room);
        let awaited = self.answering.get(&key).map(|(serial, _)| *serial) == Some(msg.serial);
        let (session, room) = key;
        if !awaited {
            // Answered too late (the session was told `unavailable`) or
            // for a session gone since: take it out again.
            if msg.outcome.is_some() {
                node.forward(
                    &msg.owner,
                    NodeMsg::Exit {
                        room: room.clone(),
                        session: session.clone(),
                        reason: LeaveReason::Left,
                        id: None,
                    },
                );
            }
            return;
        }
        self.answering.remove(&(session.clone(), room.clone()));
        if msg.serial == REJOIN {
            // The seat and the link are there already; only a refusal
            // (the room filled meanwhile) takes the member out.
            if msg.outcome.is_none() {
                log::warn!("cluster: session {session} could not join room {room} again");
                if let Some(entry) = self.sessions.get_mut(&session) {
                    entry.rooms.retain(|seat| seat.room != room);
                }
                node.unlisten(&room, &session);
            }
            return;
        }
        let exit = NodeMsg::Exit {
            room: room.clone(),
            session: session.clone(),
            reason: LeaveReason::Disconnected,
            id: None,
        };
        let Some(entry) = self.sessions.get_mut(&session) else {
            // Gone meanwhile: out of the room again.
            if msg.outcome.is_some() {
                node.forward(&msg.owner, exit);
            }
            return;
        };
        let Some(handle) = entry.handle.clone() else {
            if msg.outcome.is_some() {
                node.forward(&msg.owner, exit);
            }
            return;
        };
        let Some((kind, role)) = msg.outcome else {
            node.unlisten(&room, &session);
            return handle.refuse_room(room, msg.serial);
        };
        entry.rooms.push(RoomSeat {
            room: room.clone(),
            kind,
            role,
            zombies: 0,
        });
        let remote = self.remote_rooms.entry(room.clone()).or_insert_with(|| {
            node.route(&room, &msg.owner);
            RemoteRoom {
                owner: msg.owner.clone(),
                kind,
                link: RoomLink::remote(room.clone(), node.remote_rooms()),
                members: 0,
            }
        });
        remote.members += 1;
        handle.link_room(remote.link.clone(), msg.serial);
        self.record_session(&session);
    }
}

impl Handler<Forwarded> for Lobby {
    type Result = ();

    fn handle(&mut self, Forwarded(msg): Forwarded, ctx: &mut Context<Self>) {
        let Some(node) = self.redis() else {
            return;
        };
        match msg {
            NodeMsg::Join(forwarded) => {
                if self.rooms.contains_key(&forwarded.join.room) {
                    self.join_from(forwarded);
                } else {
                    let room = forwarded.join.room.clone();
                    self.claim(room, HeldJoin::Forwarded(forwarded), ctx);
                }
            }
            NodeMsg::Room {
                room,
                session,
                action,
                id,
            } => {
                let reply = node.remote_session(&room, &session);
                match self.rooms.get(&room) {
                    Some(entry) => entry.link.request(RoomRequest {
                        session,
                        reply,
                        action,
                        id,
                    }),
                    None => {
                        let message = format!("you are not in room {room}");
                        let refusal = Refusal::new(ErrorCode::NotInRoom, action.kind(), message);
                        reply.refuse(&refusal.with_id(id.as_ref()));
                    }
                }
            }
            NodeMsg::Exit {
                room,
                session,
                reason,
                id,
            } => {
                // Only a member the room counts: an exit for a join it never
                // took changes nothing.
                let member = self
                    .remote_members
                    .get(&room)
                    .is_some_and(|members| members.contains_key(&session));
                if member {
                    self.exit(&room, &session, reason, id);
                }
            }
            NodeMsg::Away {
                room,
                session,
                reason,
            } => {
                if let Some(entry) = self.rooms.get(&room) {
                    entry.addr.do_send(MemberAway { session, reason });
                }
            }
            NodeMsg::Back { room, session } => {
                if let Some(entry) = self.rooms.get(&room) {
                    entry.addr.do_send(MemberBack { session });
                }
            }
            NodeMsg::Rename {
                room,
                session,
                name,
            } => {
                if let Some(entry) = self.rooms.get(&room) {
                    entry.addr.do_send(Renamed { session, name });
                }
            }
            NodeMsg::Evict {
                session,
                from,
                hash,
                nonce,
                received,
            } => self.evict(&session, &from, &hash, nonce, received, ctx),
            NodeMsg::Evicted {
                nonce,
                ended,
                carried,
            } => {
                if let Some(done) = self.evicting.remove(&nonce) {
                    let _ = done.send((ended, carried));
                }
            }
            NodeMsg::Resend { room, sessions } => match room.strip_prefix(GAME_KEY) {
                // A game's players and spectators get `game_state` again.
                Some(game) => {
                    if let Some(entry) = self.games.get(game) {
                        for session in sessions {
                            entry.link.presence(Presence {
                                session,
                                change: PresenceChange::Back { resync: true },
                            });
                        }
                    }
                }
                None => {
                    if let Some(entry) = self.rooms.get(&room) {
                        entry.addr.do_send(Resend { sessions });
                    }
                }
            },
            msg => self.game_forwarded(msg, ctx),
        }
    }
}

impl Handler<NodesChanged> for Lobby {
    type Result = ();

    fn handle(&mut self, msg: NodesChanged, ctx: &mut Context<Self>) {
        let Some(node) = self.redis() else {
            return;
        };
        // Rooms whose owner died: claim them; whoever gets one, every
        // node's members join it there.
        let orphaned: Vec<String> = self
            .remote_rooms
            .iter()
            .filter(|(name, remote)| {
                msg.lost.contains(&remote.owner) || msg.released.contains(name)
            })
            .map(|(name, _)| name.clone())
            .collect();
        for room in orphaned {
            self.claim(room, HeldJoin::Reclaim, ctx);
        }
        // Members of this node's rooms that were on a lost node have gone
        // with it.
        let ghosts: Vec<(String, String)> = self
            .remote_members
            .iter()
            .flat_map(|(room, members)| {
                members
                    .iter()
                    .filter(|(_, node)| msg.lost.contains(node))
                    .map(|(session, _)| (room.clone(), session.clone()))
            })
            .collect();
        for (room, session) in ghosts {
            self.exit(&room, &session, LeaveReason::Disconnected, None);
        }
        self.games_lost(&msg.lost, &msg.released, ctx);

        if msg.back {
            // Taken for dead (its sessions' records were given a grace to
            // expire in), or Redis lost what was written meanwhile (or all
            // of it): keep the records again.
            for id in self.sessions.keys() {
                self.record_session(id);
            }
        }
        if msg.fenced {
            // Taken for dead: the rooms elsewhere dropped this node's
            // members; they join them again.
            let elsewhere: Vec<(String, String)> = self
                .remote_rooms
                .iter()
                .map(|(name, remote)| (name.clone(), remote.owner.clone()))
                .collect();
            for (room, owner) in elsewhere {
                self.rejoin_at(&room, &owner, ctx);
            }
        }
        if msg.back {
            // Redis may have lost everything, or this node was taken for
            // dead: claim its rooms again and list them; a room claimed by
            // another node meanwhile is that node's.
            for (name, room) in &self.rooms {
                let (name, kind, members) = (name.clone(), room.kind, room.members);
                self.list(&name, kind, members);
                ctx.spawn(node.claim_room(&name, kind).into_actor(self).map(
                    move |claim, lobby, ctx| {
                        let Some(node) = lobby.redis() else {
                            return;
                        };
                        match claim {
                            Ok(claim) if claim.owner == node.id() => {
                                node.owned(&name, claim.epoch);
                                if let Some(entry) = lobby.rooms.get(&name) {
                                    node.serve(&name, entry.link.clone());
                                }
                            }
                            Ok(claim) => lobby.yield_room(&name, &claim.owner, ctx),
                            Err(Unavailable) => {
                                log::warn!("cluster: room {name} could not be claimed again")
                            }
                        }
                    },
                ));
            }
        }
    }
}

/// The node is stopping: the rooms it owns, to flush their snapshots
/// before they are handed over.
#[derive(Message)]
#[rtype(result = "Vec<Addr<crate::room::Room>>")]
pub struct OwnedRooms;

impl Handler<OwnedRooms> for Lobby {
    type Result = MessageResult<OwnedRooms>;

    fn handle(&mut self, _: OwnedRooms, _: &mut Context<Self>) -> Self::Result {
        MessageResult(self.rooms.values().map(|room| room.addr.clone()).collect())
    }
}

/// The node is stopping and its rooms' snapshots are written: give every
/// room and game in play up, so that nodes with members or players carry
/// it on at once (a game's moves are in Redis as they are played).
#[derive(Message)]
#[rtype(result = "usize")]
pub struct HandOver;

impl Handler<HandOver> for Lobby {
    type Result = usize;

    fn handle(&mut self, _: HandOver, _: &mut Context<Self>) -> usize {
        let Some(node) = self.redis() else {
            return 0;
        };
        // The rooms stop here (their snapshots are written): what their
        // members send from now on goes nowhere, and they are closing.
        let handed = self.rooms.len();
        for (name, room) in self.rooms.drain() {
            node.hand_over(&name);
            node.unlist_room(&name);
            room.addr.do_send(crate::room::CloseRoom);
            self.closing.insert(name);
        }
        self.remote_members.clear();
        let playing: Vec<String> = self
            .games
            .iter()
            .filter(|(_, game)| !game.finished)
            .map(|(id, _)| id.clone())
            .collect();
        for id in playing {
            if let Some(game) = self.games.remove(&id) {
                game.link.retire();
                node.hand_over(&crate::cluster::game_key(&id));
                node.unlist_game(&id);
            }
        }
        handed
    }
}

impl Lobby {
    /// Keeps session `id`'s record in the cluster (this node, its token's
    /// hash, its name, color and rooms), so that it may resume on any node.
    pub(super) fn record_session(&self, id: &str) {
        let (Some(node), Some(entry)) = (self.redis(), self.sessions.get(id)) else {
            return;
        };
        let data = SessionData {
            name: entry.name.clone(),
            color: entry.color.clone(),
            rooms: entry
                .rooms
                .iter()
                .chain(&entry.lost_rooms)
                .cloned()
                .collect(),
            games: entry.games.clone(),
        };
        node.keep_session(id, &entry.resume_hash, &data);
    }

    /// A token this node does not know: the session may be another node's.
    /// It is taken here atomically (one node at most wins it), after its
    /// node, when alive, has ended it there (closing its connection with
    /// 4001); it resumes `recovered:false` (its frames stayed behind) and
    /// joins its rooms anew. No such session is a new session, as on one
    /// node; no answer in time is `None` (503: the client tries again).
    pub(super) fn resume_elsewhere(
        &mut self,
        node: Arc<RedisNode>,
        id: String,
        secret: String,
        name: Option<String>,
        received: Option<u64>,
    ) -> ResponseActFuture<Self, Option<Admission>> {
        let given = identity::secret_hash(&secret);
        let fresh = identity::new_secret();
        let new = identity::secret_hash(&fresh);
        let grace = self.settings.reconnect_grace;
        let take = node.take_session(&id, &given, &new, "", grace);
        Box::pin(take.into_actor(self).then(move |taken, lobby, ctx| {
            let owner = match taken {
                Err(Unavailable) => return ready(None),
                Ok(Taken::None) => {
                    return ready(Some(lobby.admit_fresh(
                        name,
                        AdmitOutcome::ResumeRefused,
                        ctx,
                    )))
                }
                Ok(Taken::Taken(data)) => return ready(lobby.admit_moved(id, data, &fresh, ctx)),
                Ok(Taken::Live(owner, data)) => {
                    if received.is_some() {
                        // Handed over whole: its frames are held here from now.
                        let rooms = data.rooms.iter().map(|seat| seat.room.clone());
                        let games = data.games.iter().map(|game| crate::cluster::game_key(game));
                        node.arrive(&id, rooms.chain(games).collect());
                    }
                    owner
                }
            };
            // Its node ends it first, if this is still its secret.
            lobby.evictions += 1;
            let nonce = lobby.evictions;
            let (done, ended) = tokio::sync::oneshot::channel();
            lobby.evicting.insert(nonce, done);
            node.forward(
                &owner,
                NodeMsg::Evict {
                    session: id.clone(),
                    from: node.id().to_string(),
                    hash: given.clone(),
                    nonce,
                    received,
                },
            );
            let timeout = lobby.request_timeout;
            let id_held = id.clone();
            Box::pin(
                async move {
                    match tokio::time::timeout(timeout, ended).await {
                        Ok(Ok((true, carried))) => node
                            .take_session(&id, &given, &new, &owner, grace)
                            .await
                            .map(|taken| (id, taken, carried)),
                        // Not there: a stale token (the take finds another
                        // secret), or a session its node gave up on, say a
                        // hand-over it finished after an earlier attempt
                        // had stopped waiting: that one is taken here.
                        Ok(Ok((false, _))) => node
                            .take_session(&id, &given, &new, &owner, grace)
                            .await
                            .map(|taken| (id, taken, None)),
                        _ => Err(Unavailable),
                    }
                }
                .into_actor(lobby)
                .map(move |taken, lobby, ctx| {
                    lobby.evicting.remove(&nonce);
                    match taken {
                        Ok((id, Taken::Taken(data), Some(carried))) => {
                            lobby.admit_carried(id, data, carried, &fresh, received, ctx)
                        }
                        Ok((id, taken, _)) => {
                            lobby.depart(&id);
                            match taken {
                                Taken::Taken(data) => lobby.admit_moved(id, data, &fresh, ctx),
                                _ => {
                                    Some(lobby.admit_fresh(name, AdmitOutcome::ResumeRefused, ctx))
                                }
                            }
                        }
                        Err(Unavailable) => {
                            // The client tries again; what was held for it
                            // goes.
                            lobby.depart(&id_held);
                            None
                        }
                    }
                }),
            )
        }))
    }

    /// The entry of a session taken here from another node, under its new
    /// `secret`, and its connection's number.
    pub(super) fn moved_entry(&mut self, data: &SessionData, secret: &str) -> (Entry, u64) {
        let connection = self.next_connection();
        let entry = Entry::new(
            data.name.clone(),
            data.color.clone(),
            identity::secret_hash(secret),
            connection,
        );
        (entry, connection)
    }

    /// Session `id`, taken here from another node, resumes: the new
    /// secret, and its rooms to join anew. `None` if it is here already (a
    /// second connection of the same client won the race).
    fn admit_moved(
        &mut self,
        id: String,
        data: SessionData,
        secret: &str,
        ctx: &mut Context<Self>,
    ) -> Option<Admission> {
        if self.sessions.contains_key(&id) {
            return None;
        }
        let (mut entry, connection) = self.moved_entry(&data, secret);
        entry.lost_rooms = data.rooms.clone();
        self.sessions.insert(id.clone(), entry);
        if !data.games.is_empty() {
            self.recovering.insert(id.clone(), data.games.clone());
        }
        self.hold(id.clone(), ctx);
        // Its record is this node's now (with its rooms, until joined).
        self.record_session(&id);
        if let Some(entry) = self.sessions.get_mut(&id) {
            entry.lost_rooms.clear();
        }
        Some(Admission {
            resume: identity::token(&id, secret),
            name: data.name,
            color: data.color,
            outcome: AdmitOutcome::Resumed,
            connection,
            running: None,
            rooms: Vec::new(),
            lost_rooms: data.rooms,
            games: data.games,
            carried: None,
            adopted: None,
            id,
        })
    }

    /// Node `from` resumes session `session` with the secret hashed
    /// `hash`: if that is its secret here, it ends here, leaving its rooms
    /// (its new node joins them anew), its connection closed with 4001.
    /// `from` is told whether it did.
    fn evict(
        &mut self,
        session: &str,
        from: &str,
        hash: &str,
        nonce: u64,
        received: Option<u64>,
        ctx: &mut Context<Self>,
    ) {
        let Some(node) = self.redis() else {
            return;
        };
        let ours = self
            .sessions
            .get(session)
            .is_some_and(|entry| entry.resume_hash == hash);
        let running = self
            .sessions
            .get(session)
            .is_some_and(|entry| entry.handle.is_some());
        if let (true, true, Some(received)) = (ours, running, received) {
            return self.hand_over_session(session, from, nonce, received, ctx);
        }
        if ours {
            if let Some(entry) = self.sessions.remove(session) {
                if let Some(kind) = entry.queued {
                    self.leave_queue(kind, session);
                }
                self.step_out(session, entry.rooms, LeaveReason::Disconnected);
                node.detach(session);
                node.forget_session(session, false);
                if let Some(handle) = entry.handle {
                    handle.end(CloseCode::Other(protocol::CLOSE_TAKEN_OVER));
                }
            }
        }
        node.forward(
            from,
            NodeMsg::Evicted {
                nonce,
                ended: ours,
                carried: None,
            },
        );
    }
}

/// An admission ready now, or after a future.
fn ready(admission: Option<Admission>) -> ResponseActFuture<Lobby, Option<Admission>> {
    Box::pin(actix::fut::ready(admission))
}

impl Lobby {
    /// Room `name`, which this node runs, was claimed by `owner` while this
    /// node was taken for dead: it stops here, this node's members join it
    /// there, and the nodes with members elsewhere are told to look for
    /// it again.
    fn yield_room(&mut self, name: &str, owner: &str, ctx: &mut Context<Self>) {
        let Some(node) = self.redis() else {
            return;
        };
        let Some(room) = self.rooms.remove(name) else {
            return;
        };
        log::warn!("cluster: room {name} is {owner}'s now; its members here join it there");
        room.addr.do_send(crate::room::Discard);
        self.closing.insert(name.to_string());
        self.remote_members.remove(name);
        // Nodes that still send this room's members' requests here claim
        // it, and find the new owner.
        node.release_to_claim(name);
        let link = RoomLink::remote(name.to_string(), node.remote_rooms());
        let mut members = 0;
        for (id, entry) in &self.sessions {
            if !entry.rooms.iter().any(|seat| seat.room == name) {
                continue;
            }
            node.listen(name, id);
            if let Some(handle) = &entry.handle {
                handle.relink_room(link.clone());
            }
            members += 1;
        }
        self.remote_rooms.insert(
            name.to_string(),
            RemoteRoom {
                owner: owner.to_string(),
                kind: room.kind,
                link,
                members,
            },
        );
        self.rejoin_at(name, owner, ctx);
    }
}
