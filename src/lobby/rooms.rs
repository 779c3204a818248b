//! Rooms from the Lobby's side: who is in which room. The Lobby alone
//! decides joins (every field of `join_room` is checked here, in one
//! place) and leaves, opens a room on its first join and closes it when its
//! last member leaves; `/api/rooms` lists them.

use std::sync::Arc;

use actix::prelude::*;

use super::Lobby;
use crate::{
    links::{JoinRoomRequest, LeaveRoomRequest, RoomClosed, RoomLink, RoomSeat},
    protocol::{
        self, ErrorCode, JoinRoom, LeaveReason, MemberInfo, Refusal, RequestId, Role, RoomKind,
        RoomListing, MAX_SUGGESTIONS, MAX_ZOMBIES,
    },
    room::{CloseRoom, Enter, Exit, NewRoom, Revive, Room, RoomSettings},
};

/// Room sizes and what every room shares; from `[rooms]` and `[store]`.
#[derive(Debug, Clone)]
pub struct RoomLimits {
    /// Members per room (`rooms.max_members`).
    pub max_members: usize,
    /// Rooms one session may be in (`rooms.max_per_session`).
    pub max_per_session: usize,
    /// Timings and transient actions every room uses.
    pub settings: RoomSettings,
}

/// What the Lobby knows of one live room.
pub(super) struct RoomEntry {
    /// The room actor.
    pub(super) addr: Addr<Room>,
    /// How sessions reach it.
    pub(super) link: RoomLink,
    /// Its kind.
    pub(super) kind: RoomKind,
    /// How many members it has (on every node).
    pub(super) members: usize,
}

/// A `join_room` whose fields passed every check.
pub(super) struct CheckedJoin {
    /// The room's kind: as asked, the existing room's, or chat.
    pub(super) kind: RoomKind,
    /// The role, allowed in that kind.
    pub(super) role: Role,
    /// Zombies for a new canvas room.
    pub(super) zombies: u32,
}

/// Lists the live rooms, for `/api/rooms`.
#[derive(Message)]
#[rtype(result = "Vec<RoomListing>")]
pub struct ListRooms;

impl Handler<JoinRoomRequest> for Lobby {
    type Result = ();

    fn handle(&mut self, msg: JoinRoomRequest, ctx: &mut Context<Self>) {
        if !self.backplane.is_local() && !self.rooms.contains_key(&msg.join.room) {
            return self.join_elsewhere(msg, ctx);
        }
        self.join_here(msg, ctx);
    }
}

impl Lobby {
    /// A join of a room on this node (or of a new room, with no cluster).
    pub(super) fn join_here(&mut self, msg: JoinRoomRequest, ctx: &mut Context<Self>) {
        let Some(entry) = self.sessions.get(&msg.session) else {
            return;
        };
        let Some(handle) = entry.handle.clone() else {
            return;
        };
        let room = msg.join.room.clone();
        let already_in = entry.rooms.iter().any(|seat| seat.room == room);
        let admitted = self
            .check_join(&msg.join)
            .and_then(|join| self.admit_to_room(&msg, join, already_in, ctx));
        match admitted {
            Ok((link, join)) => {
                // The room hears of the member before the member's messages
                // can reach it.
                self.enter(&msg, &join, already_in);
                if !already_in {
                    handle.link_room(link, msg.serial);
                }
            }
            Err(refusal) => {
                handle.refuse(&refusal.with_id(msg.id.as_ref()));
                if !already_in {
                    handle.refuse_room(room, msg.serial);
                }
            }
        }
    }

    /// Checks the fields of a `join_room`: the room's name, its kind
    /// against an existing room's, the role against the kind, the zombies.
    pub(super) fn check_join(&self, join: &JoinRoom) -> Result<CheckedJoin, Refusal> {
        let bad = |message: String| Refusal::new(ErrorCode::BadRequest, "join_room", message);
        if !protocol::valid_room_name(&join.room) {
            return Err(bad_room_name());
        }
        let existing = self.rooms.get(&join.room).map(|room| room.kind);
        let kind = match (existing, join.kind) {
            (Some(existing), Some(asked)) if existing != asked => {
                let message = format!("room {} is a {} room", join.room, existing.as_str());
                return Err(bad(message));
            }
            (Some(existing), _) => existing,
            (None, asked) => asked.unwrap_or_default(),
        };
        let role = join.role.unwrap_or(kind.default_role());
        if !kind.allows(role) {
            let message = format!(
                "`role` {} does not exist in a {} room",
                role.as_str(),
                kind.as_str()
            );
            return Err(bad(message));
        }
        let zombies = join.zombies.unwrap_or(0);
        let zombies = u32::try_from(zombies)
            .ok()
            .filter(|zombies| *zombies <= MAX_ZOMBIES)
            .ok_or_else(|| {
                bad(format!(
                    "`zombies` must be 0 to {MAX_ZOMBIES}, not {zombies}"
                ))
            })?;
        Ok(CheckedJoin {
            kind,
            role,
            zombies,
        })
    }

    /// Checks a join against the session's room count and the room's size,
    /// opening the room if it does not exist.
    fn admit_to_room(
        &mut self,
        msg: &JoinRoomRequest,
        join: CheckedJoin,
        already_in: bool,
        ctx: &mut Context<Self>,
    ) -> Result<(RoomLink, CheckedJoin), Refusal> {
        let name = &msg.join.room;
        let refuse = |code, message: String| Refusal::new(code, "join_room", message);
        if !already_in {
            let in_rooms = self
                .sessions
                .get(&msg.session)
                .map_or(0, |entry| entry.rooms.len());
            if in_rooms >= self.room_limits.max_per_session {
                let message = format!("already in {in_rooms} rooms, the most a session may be in");
                return Err(refuse(ErrorCode::TooManyRooms, message));
            }
            let full = self
                .rooms
                .get(name)
                .is_some_and(|room| room.members >= self.room_limits.max_members);
            if full {
                let suggestions = self.suggestions(join.kind, name);
                let refusal = refuse(ErrorCode::RoomFull, format!("room {name} is full"));
                return Err(refusal.with_suggestions(suggestions));
            }
        }
        if !self.rooms.contains_key(name) {
            self.open_room(name, &join, ctx);
        }
        match self.rooms.get(name) {
            Some(room) => Ok((room.link.clone(), join)),
            None => Err(refuse(
                ErrorCode::Internal,
                "the room could not be opened".to_string(),
            )),
        }
    }

    /// Up to three rooms of `kind` with space, by name.
    pub(super) fn suggestions(&self, kind: RoomKind, full: &str) -> Vec<String> {
        let max = self.room_limits.max_members;
        let mut open: Vec<String> = self
            .rooms
            .iter()
            .filter(|(name, room)| room.kind == kind && room.members < max && *name != full)
            .map(|(name, _)| name.clone())
            .collect();
        if let Some(node) = self.backplane.node() {
            // Other nodes' rooms, as of the last heartbeat.
            let directory = node.status().directory();
            open.extend(
                directory
                    .iter()
                    .filter(|listed| {
                        listed.kind == kind
                            && listed.members < max
                            && listed.room != full
                            && !self.rooms.contains_key(&listed.room)
                    })
                    .map(|listed| listed.room.clone()),
            );
        }
        open.sort();
        open.dedup();
        open.truncate(MAX_SUGGESTIONS);
        open
    }

    pub(super) fn open_room(&mut self, name: &str, join: &CheckedJoin, ctx: &mut Context<Self>) {
        let (addr, link) = Room::launch(
            &self.workers,
            NewRoom {
                name: name.to_string(),
                kind: join.kind,
                zombies: join.zombies,
                settings: self.room_limits.settings.clone(),
                closed: ctx.address().recipient(),
                metrics: Arc::clone(&self.metrics),
                store: self.store.clone(),
                seed: rand::random(),
            },
        );
        let entry = RoomEntry {
            addr,
            link,
            kind: join.kind,
            members: 0,
        };
        self.rooms.insert(name.to_string(), entry);
    }

    /// Seats the session in the room (or greets it again) and tells the room.
    fn enter(&mut self, msg: &JoinRoomRequest, join: &CheckedJoin, already_in: bool) {
        let Some(entry) = self.sessions.get_mut(&msg.session) else {
            return;
        };
        let Some(handle) = entry.handle.clone() else {
            return;
        };
        let name = &msg.join.room;
        let role = match entry.rooms.iter().find(|seat| seat.room == *name) {
            Some(seat) => seat.role,
            None => join.role,
        };
        if !already_in {
            entry.rooms.push(RoomSeat {
                room: name.clone(),
                kind: join.kind,
                role,
                zombies: join.zombies,
            });
        }
        let member = MemberInfo {
            session: msg.session.clone(),
            name: entry.name.clone(),
            color: entry.color.clone(),
            role,
            away: entry.away.is_some(),
        };
        let Some(room) = self.rooms.get_mut(name) else {
            return;
        };
        if !already_in {
            room.members += 1;
        }
        let (kind, members) = (room.kind, room.members);
        room.addr.do_send(Enter {
            member,
            handle,
            id: msg.id.clone(),
            resync: msg.resync,
        });
        if !already_in {
            self.list(name, kind, members);
            self.record_session(&msg.session);
        }
    }

    /// Lists a room this node owns in the cluster's directory (with `0`
    /// members: takes it out).
    pub(super) fn list(&self, name: &str, kind: RoomKind, members: usize) {
        let Some(node) = self.backplane.node() else {
            return;
        };
        if members == 0 {
            node.unlist_room(name);
        } else {
            node.list_room(name, kind, members);
        }
    }

    /// Takes `session` out of `rooms`, telling each room why; a room left
    /// empty is closed.
    pub(super) fn step_out(&mut self, session: &str, rooms: Vec<RoomSeat>, reason: LeaveReason) {
        for seat in rooms {
            self.exit(&seat.room, session, reason, None);
        }
    }

    pub(super) fn exit(
        &mut self,
        name: &str,
        session: &str,
        reason: LeaveReason,
        id: Option<RequestId>,
    ) {
        if self.remote_rooms.contains_key(name) {
            return self.exit_elsewhere(name, session, reason, id);
        }
        let Some(room) = self.rooms.get_mut(name) else {
            return;
        };
        if let Some(members) = self.remote_members.get_mut(name) {
            members.remove(session);
        }
        room.addr.do_send(Exit {
            session: session.to_string(),
            reason,
            id,
        });
        room.members = room.members.saturating_sub(1);
        let (kind, members) = (room.kind, room.members);
        self.list(name, kind, members);
        if members > 0 {
            return;
        }
        self.remote_members.remove(name);
        if let Some(room) = self.rooms.remove(name) {
            room.addr.do_send(CloseRoom);
            self.closing.insert(name.to_string());
            if let Some(node) = self.backplane.node() {
                node.release_room(name);
            }
        }
    }
}

/// The refusal of a `join_room` whose room name breaks the rule.
pub(super) fn bad_room_name() -> Refusal {
    let message = format!(
        "`room` must be 1 to {} letters, digits, '-', '_' or '.'",
        protocol::ROOM_NAME_MAX_CHARS
    );
    Refusal::new(ErrorCode::BadRequest, "join_room", message)
}

impl Handler<LeaveRoomRequest> for Lobby {
    type Result = ();

    fn handle(&mut self, msg: LeaveRoomRequest, _: &mut Context<Self>) {
        let Some(entry) = self.sessions.get_mut(&msg.session) else {
            return;
        };
        let Some(index) = entry.rooms.iter().position(|seat| seat.room == msg.room) else {
            if let Some(handle) = &entry.handle {
                let message = format!("you are not in room {}", msg.room);
                let refusal = Refusal::new(ErrorCode::NotInRoom, "leave_room", message);
                handle.refuse(&refusal.with_id(msg.id.as_ref()));
            }
            return;
        };
        entry.rooms.remove(index);
        self.exit(&msg.room, &msg.session, LeaveReason::Left, msg.id);
        self.record_session(&msg.session);
    }
}

impl Handler<RoomClosed> for Lobby {
    type Result = ();

    fn handle(&mut self, msg: RoomClosed, _: &mut Context<Self>) {
        self.closing.remove(&msg.room);
        // The room came back to life before its old self closed: hand the
        // newer snapshot over (the store has it too).
        if let (Some(room), false) = (self.rooms.get(&msg.room), msg.snapshot.is_null()) {
            room.addr.do_send(Revive(msg.snapshot));
        }
    }
}

impl Handler<ListRooms> for Lobby {
    type Result = MessageResult<ListRooms>;

    fn handle(&mut self, _: ListRooms, _: &mut Context<Self>) -> Self::Result {
        if let Some(node) = self.backplane.node() {
            // Every node's rooms, as of the last heartbeat, with this
            // node's own as they are now.
            let mut listings: Vec<RoomListing> = node
                .status()
                .directory()
                .iter()
                .filter(|listed| !self.rooms.contains_key(&listed.room))
                .cloned()
                .collect();
            listings.extend(self.rooms.iter().map(|(name, room)| RoomListing {
                room: name.clone(),
                kind: room.kind,
                members: room.members,
            }));
            listings.sort_by(|a, b| a.room.cmp(&b.room));
            return MessageResult(listings);
        }
        let mut listings: Vec<RoomListing> = self
            .rooms
            .iter()
            .map(|(name, room)| RoomListing {
                room: name.clone(),
                kind: room.kind,
                members: room.members,
            })
            .collect();
        listings.sort_by(|a, b| a.room.cmp(&b.room));
        MessageResult(listings)
    }
}
