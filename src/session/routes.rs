//! Where a session's requests go: game requests to the Lobby, moves and
//! resignations straight to their Game, room messages straight to their
//! Room (queued while the Lobby answers a join). Also the links that
//! answer: [`Linked`], [`RoomLinked`], [`RoomRefused`].

use actix::prelude::*;

use super::Session;
use crate::{
    links::{
        Action, JoinRoomRequest, LeaveRoomRequest, Linked, LobbyAction, LobbyRequest,
        PlayerRequest, RoomAction, RoomLink, RoomLinked, RoomRefused, RoomRequest, RoomSeat,
        CLOSED, RELINK,
    },
    protocol::{
        Broadcast, ClientMsg, Direct, ErrorCode, GameChoice, GameTarget, JoinGame, JoinRoom,
        MoveRequest, Pos, Refusal, RequestId, RoomTarget, StateUpdate, WatchGame,
    },
};

/// Where a room's messages go: queued while the join is on its way, then
/// straight to the room.
pub(super) enum RoomRoute {
    /// Joining: messages wait, in order, for the room's link.
    Joining {
        /// The join that opened this route; a link answering it or any
        /// later join is this route's.
        since: u64,
        /// The newest join of the room; only its refusal ends the route
        /// (an earlier join may be refused and a later one admitted).
        latest: u64,
        /// Messages for the room, in order.
        queued: Vec<RoomRequest>,
    },
    /// In the room.
    Joined(RoomLink),
}

impl Session {
    /// Routes every request that another actor answers.
    pub(super) fn route(
        &mut self,
        msg: ClientMsg,
        kind: &str,
        id: Option<RequestId>,
        ctx: &mut Context<Self>,
    ) {
        match msg {
            ClientMsg::FindGame(GameChoice { game }) => self.ask_lobby(LobbyAction::Find(game), id),
            ClientMsg::CancelFind(GameChoice { game }) => {
                self.ask_lobby(LobbyAction::Cancel(game), id)
            }
            ClientMsg::CreateGame(GameChoice { game }) => {
                self.ask_lobby(LobbyAction::Create(game), id)
            }
            ClientMsg::PlayBot(play) => self.ask_lobby(LobbyAction::PlayBot(play), id),
            ClientMsg::JoinGame(JoinGame { join_key }) => {
                self.ask_lobby(LobbyAction::Join(join_key), id)
            }
            ClientMsg::WatchGame(WatchGame { watch_key }) => {
                self.ask_lobby(LobbyAction::Watch(watch_key), id)
            }
            ClientMsg::Move(MoveRequest { game_id, fields }) => {
                self.ask_game(&game_id, Action::Move(fields), kind, id, ctx)
            }
            ClientMsg::Resign(GameTarget { game_id }) => {
                self.ask_game(&game_id, Action::Resign, kind, id, ctx)
            }
            ClientMsg::JoinRoom(join) => self.request_join(join, id, false),
            ClientMsg::LeaveRoom(RoomTarget { room }) => self.leave_room(room, id, ctx),
            ClientMsg::Broadcast(Broadcast { room, data }) => {
                self.ask_room(room, RoomAction::Broadcast(data), id, ctx)
            }
            ClientMsg::Direct(Direct { room, to, data }) => {
                self.ask_room(room, RoomAction::Direct { to, data }, id, ctx)
            }
            ClientMsg::State(StateUpdate {
                room,
                data,
                action,
                newcomer,
            }) => {
                let action = RoomAction::State {
                    data,
                    action,
                    newcomer,
                };
                self.ask_room(room, action, id, ctx)
            }
            ClientMsg::Pos(Pos { room, x, y }) => {
                self.ask_room(room, RoomAction::Pos { x, y }, id, ctx)
            }
            // The session answers these itself.
            ClientMsg::SetName(_) | ClientMsg::Echo(_) | ClientMsg::Unknown => {}
        }
    }

    /// Rejoins the rooms a resumed session was in, as `join_room` would;
    /// those in `stay` (it never left them) answer as part of the resync.
    pub(super) fn rejoin(&mut self, seats: Vec<RoomSeat>, stay: &[RoomSeat]) {
        for seat in seats {
            let resync = stay.iter().any(|stayed| stayed.room == seat.room);
            let join = JoinRoom {
                room: seat.room,
                kind: Some(seat.kind),
                role: Some(seat.role),
                zombies: Some(i64::from(seat.zombies)),
            };
            self.request_join(join, None, resync);
        }
    }

    /// Asks the Lobby, which checks every field, for a room; until it
    /// answers, the room's messages wait in a `Joining` route.
    fn request_join(&mut self, join: JoinRoom, id: Option<RequestId>, resync: bool) {
        self.join_serial += 1;
        let serial = self.join_serial;
        // Already in: the Lobby answers this join, but the room's link came
        // with an earlier one.
        let route = self
            .rooms
            .entry(join.room.clone())
            .or_insert_with(|| RoomRoute::Joining {
                since: serial,
                latest: serial,
                queued: Vec::new(),
            });
        if let RoomRoute::Joining { latest, .. } = route {
            *latest = serial;
        }
        let join = JoinRoomRequest {
            session: self.id.clone(),
            join,
            id,
            serial,
            resync,
        };
        if let Some(join) = self.hold_join(join) {
            self.shared.lobby.join(join);
        }
    }

    fn leave_room(&mut self, room: String, id: Option<RequestId>, ctx: &mut Context<Self>) {
        if self.rooms.remove(&room).is_none() {
            let message = format!("you are not in room {room}");
            let refusal = Refusal::new(ErrorCode::NotInRoom, "leave_room", message);
            return self.refuse(&refusal.with_id(id.as_ref()), ctx);
        }
        self.shared.lobby.leave(LeaveRoomRequest {
            session: self.id.clone(),
            room,
            id,
        });
    }

    /// Hands a room message to the room, queues it while the join is on its
    /// way, or answers `not_in_room`.
    fn ask_room(
        &mut self,
        room: String,
        action: RoomAction,
        id: Option<RequestId>,
        ctx: &mut Context<Self>,
    ) {
        let request = RoomRequest {
            session: self.id.clone(),
            reply: self.handle.clone(),
            action,
            id,
        };
        let burst = self.shared.config.limits.burst.get() as usize;
        match self.rooms.get_mut(&room) {
            Some(RoomRoute::Joined(link)) => link.request(request),
            // The rate limit bounds this queue too; the cap is a backstop.
            Some(RoomRoute::Joining { queued, .. }) if queued.len() < burst => {
                queued.push(request);
            }
            _ => self.refuse(&not_in_room(&room, &request), ctx),
        }
    }

    fn ask_lobby(&self, action: LobbyAction, id: Option<RequestId>) {
        self.shared.lobby.request(LobbyRequest {
            session: self.id.clone(),
            action,
            id,
        });
    }

    /// Hands a move or resignation straight to the game, or answers
    /// `not_found` for a game this session neither plays nor watches.
    fn ask_game(
        &mut self,
        game_id: &str,
        action: Action,
        kind: &str,
        id: Option<RequestId>,
        ctx: &mut Context<Self>,
    ) {
        match self.games.get(game_id) {
            Some(link) if link.alive() => {
                link.request(PlayerRequest {
                    session: self.id.clone(),
                    action,
                    id,
                });
            }
            _ => {
                self.games.remove(game_id);
                let message = format!("no game {game_id} that you play or watch");
                let refusal = Refusal::new(ErrorCode::NotFound, kind, message);
                self.refuse(&refusal.with_id(id.as_ref()), ctx);
            }
        }
    }
}

/// The `not_in_room` answer to a room request.
fn not_in_room(room: &str, request: &RoomRequest) -> Refusal {
    let message = format!("you are not in room {room}");
    Refusal::new(ErrorCode::NotInRoom, request.action.kind(), message).with_id(request.id.as_ref())
}

impl Handler<Linked> for Session {
    type Result = ();

    fn handle(&mut self, msg: Linked, _: &mut Context<Self>) {
        // Games stop after lingering; forget them as new ones come.
        self.games.retain(|_, link| link.alive());
        self.games.insert(msg.0.id.clone(), msg.0);
    }
}

impl Handler<RoomLinked> for Session {
    type Result = ();

    fn handle(&mut self, msg: RoomLinked, _: &mut Context<Self>) {
        let RoomLinked { link, serial } = msg;
        if serial == RELINK {
            // The room moved: a route still joined goes the new way.
            if let Some(RoomRoute::Joined(joined)) = self.rooms.get_mut(&link.name) {
                *joined = link;
            }
            return;
        }
        // An answer to a join that was since left (and joined again) is stale.
        let Some(RoomRoute::Joining {
            since,
            latest,
            queued,
        }) = self.rooms.get_mut(&link.name)
        else {
            return;
        };
        if !(*since..=*latest).contains(&serial) {
            return;
        }
        for request in std::mem::take(queued) {
            link.request(request);
        }
        self.rooms
            .insert(link.name.clone(), RoomRoute::Joined(link));
    }
}

impl Handler<RoomRefused> for Session {
    type Result = ();

    fn handle(&mut self, msg: RoomRefused, ctx: &mut Context<Self>) {
        if msg.serial == CLOSED {
            // The room is closed: whatever the route, it ends.
            if let Some(RoomRoute::Joining { queued, .. }) = self.rooms.remove(&msg.room) {
                for request in queued {
                    self.refuse(&not_in_room(&msg.room, &request), ctx);
                }
            }
            return;
        }
        // Only the refusal of the newest join ends the route: an earlier
        // join's refusal is stale, and so is one for a route since left.
        let newest = matches!(self.rooms.get(&msg.room),
            Some(RoomRoute::Joining { latest, .. }) if *latest == msg.serial);
        if !newest {
            return;
        }
        let Some(RoomRoute::Joining { queued, .. }) = self.rooms.remove(&msg.room) else {
            return;
        };
        for request in queued {
            self.refuse(&not_in_room(&msg.room, &request), ctx);
        }
    }
}
