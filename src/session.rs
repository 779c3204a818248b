//! The Session actor: one per WebSocket connection.
//!
//! It owns the connection's identity (id, name, color), its heartbeat, its
//! rate limiter and its outbox. Incoming frames arrive as a stream
//! (`ctx.add_stream`); each text frame is parsed into a request and answered
//! or routed. Takes [`Outbound`] (a frame another actor wants delivered),
//! [`Linked`] (a game to route moves to), [`RoomLinked`] and [`RoomRefused`]
//! (the answer to a room join), and [`CloseSession`]. Sends [`Register`],
//! [`Unregister`], [`Rename`], [`LobbyRequest`], [`JoinRoomRequest`] and
//! [`LeaveRoomRequest`] to the Lobby, [`PlayerRequest`] and [`Presence`]
//! straight to its games, and [`RoomRequest`] straight to its rooms.
//!
//! Outgoing frames go into a bounded outbox of `limits.max_outbox` frames that
//! one writer task drains into the socket. A full outbox means the client is
//! not reading: the session drops it (1008) instead of buffering without
//! bound.

use std::{
    collections::{HashMap, HashSet},
    sync::atomic::{AtomicU64, Ordering},
    sync::Arc,
    time::{Duration, Instant},
};

use actix::prelude::*;
use actix_ws::{AggregatedMessage, CloseCode, CloseReason, ProtocolError};
use bytes::Bytes;
use bytestring::ByteString;
use tokio::{sync::mpsc, task::JoinHandle};

use crate::{
    game::{Action, GameLink, PlayerRequest, Presence},
    lobby::{
        Admission, AdmitOutcome, JoinRoomRequest, LeaveRoomRequest, LobbyAction, LobbyRequest,
        Register, Rename, RoomSeat, Unregister,
    },
    protocol::{
        self, BadRequest, Broadcast, ClientMsg, Direct, Echo, ErrorCode, GameChoice, GameTarget,
        JoinGame, JoinRoom, LeaveReason, MoveRequest, Pos, Request, RequestId, Role, RoomKind,
        RoomTarget, ServerMsg, SetName, StateUpdate, WatchGame,
    },
    rate_limit::{RateLimiter, Verdict},
    room::{RoomAction, RoomLink, RoomRequest},
    AppState, SessionSlot,
};

/// A frame for the client, already serialised (often shared by many recipients).
#[derive(Message, Clone)]
#[rtype(result = "()")]
pub struct Outbound(pub ByteString);

/// A game this session plays or watches: route its moves there.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Linked(pub GameLink);

/// Numbers connections, so that a game can tell a session's old
/// connection from the one that took it over.
static NEXT_CONNECTION: AtomicU64 = AtomicU64::new(1);

/// How games and rooms reach a session: its frames and its game links.
/// Built from a session's address, or (in tests) from any actor that takes
/// both; cheap to clone (every room message carries one).
#[derive(Clone)]
pub struct SessionHandle(Arc<Reach>);

/// What a [`SessionHandle`] holds.
struct Reach {
    /// Where frames go.
    frames: Recipient<Outbound>,
    /// Where game links go.
    links: Recipient<Linked>,
    /// Which connection of the session this is.
    connection: u64,
}

impl SessionHandle {
    /// The handle of a session actor serving `connection`.
    pub fn new(addr: Addr<Session>, connection: u64) -> SessionHandle {
        SessionHandle::from_recipients(addr.clone().recipient(), addr.recipient(), connection)
    }

    /// A handle over any two recipients.
    pub fn from_recipients(
        frames: Recipient<Outbound>,
        links: Recipient<Linked>,
        connection: u64,
    ) -> SessionHandle {
        SessionHandle(Arc::new(Reach {
            frames,
            links,
            connection,
        }))
    }

    /// Which connection of the session this handle reaches.
    pub fn connection(&self) -> u64 {
        self.0.connection
    }

    /// Queues a frame for the session.
    pub fn send(&self, frame: ByteString) {
        self.0.frames.do_send(Outbound(frame));
    }

    /// Tells the session to route a game's requests to `link`.
    pub fn link(&self, link: GameLink) {
        self.0.links.do_send(Linked(link));
    }
}

/// Where a room's messages go: queued while the join is on its way, then
/// straight to the room.
enum RoomRoute {
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

/// A resumed session's room joins, held until its games have linked back,
/// so that every `game_state` comes before any `room_joined` (PROTOCOL.md,
/// *Reconnecting*): games and rooms answer from different threads.
struct Resuming {
    /// Games that have not yet linked back.
    games: HashSet<String>,
    /// Joins for the Lobby, in order.
    joins: Vec<JoinRoomRequest>,
}

/// The Lobby admitted this session to a room: route its messages there.
#[derive(Message)]
#[rtype(result = "()")]
pub struct RoomLinked {
    /// How to reach the room.
    pub link: RoomLink,
    /// The join it answers; an answer to an earlier join is stale.
    pub serial: u64,
}

/// The Lobby refused this session's join of a room.
#[derive(Message)]
#[rtype(result = "()")]
pub struct RoomRefused {
    /// The room.
    pub room: String,
    /// The join it answers.
    pub serial: u64,
}

/// Close the connection with this code and stop.
#[derive(Message)]
#[rtype(result = "()")]
pub struct CloseSession(pub CloseCode);

/// What the writer task sends to the socket.
enum Outgoing {
    /// A text frame.
    Text(ByteString),
    /// A heartbeat Ping.
    Ping,
    /// The answer to a client's Ping.
    Pong(Bytes),
    /// A Close frame; the writer stops after it.
    Close(CloseReason),
}

/// One WebSocket connection.
pub struct Session {
    /// The session id, stable across reconnections.
    id: String,
    /// This connection's number (see [`SessionHandle`]).
    connection: u64,
    /// Games this session plays or watches, by id: moves go straight there.
    games: HashMap<String, GameLink>,
    /// Rooms this session is in or joining, by name: messages go straight there.
    rooms: HashMap<String, RoomRoute>,
    /// Why the session's rooms will see it leave when it stops.
    leave_reason: LeaveReason,
    /// Numbers this session's room joins (see [`RoomRoute`]).
    join_serial: u64,
    /// The display name.
    name: String,
    /// The `#rrggbb` color.
    color: String,
    /// Config, Lobby address and metrics shared by every session.
    state: Arc<AppState>,
    /// Frames waiting for the writer task; bounded by `limits.max_outbox`.
    outbox: mpsc::Sender<Outgoing>,
    /// The writer task, aborted when the client must be dropped at once.
    writer: JoinHandle<()>,
    /// The socket, kept to send a last Close when the outbox is full.
    socket: actix_ws::Session,
    /// When the client last sent anything, Pongs included.
    last_seen: Instant,
    /// The message rate limit.
    rate: RateLimiter,
    /// The welcome (and anything before `started`) still to send.
    admission: Option<Admission>,
    /// Set once a Close frame is queued, so nothing is queued after it.
    closing: bool,
    /// Set while a resumed session's room joins wait for its games.
    resuming: Option<Resuming>,
    /// How rooms and games reach this session (made once, shared).
    handle: SessionHandle,
}

impl Session {
    /// Starts the actor for an accepted handshake.
    pub fn start(
        state: Arc<AppState>,
        admission: Admission,
        socket: actix_ws::Session,
        stream: actix_ws::AggregatedMessageStream,
        slot: SessionSlot,
    ) -> Addr<Session> {
        let (outbox, queue) = mpsc::channel(state.config.limits.max_outbox);
        let writer = actix_rt::spawn(write_frames(queue, socket.clone(), slot));
        let now = Instant::now();
        let limits = &state.config.limits;
        let rate = RateLimiter::new(limits.msgs_per_sec, limits.burst, now);
        let games = admission
            .games
            .iter()
            .map(|link| (link.id.clone(), link.clone()))
            .collect();
        let connection = NEXT_CONNECTION.fetch_add(1, Ordering::Relaxed);
        Session::create(move |ctx| {
            ctx.add_stream(stream);
            Session {
                games,
                rooms: HashMap::new(),
                leave_reason: LeaveReason::Disconnected,
                join_serial: 0,
                connection,
                id: admission.id.clone(),
                name: admission.name.clone(),
                color: admission.color.clone(),
                rate,
                state,
                outbox,
                writer,
                socket,
                last_seen: now,
                admission: Some(admission),
                closing: false,
                resuming: None,
                handle: SessionHandle::new(ctx.address(), connection),
            }
        })
    }

    /// Queues a frame; drops the client if its outbox is full.
    fn push(&mut self, frame: Outgoing, ctx: &mut Context<Self>) {
        if self.closing {
            return;
        }
        match self.outbox.try_send(frame) {
            Ok(()) => {}
            Err(mpsc::error::TrySendError::Full(_)) => self.drop_slow_client(ctx),
            // The writer has ended: the socket is gone.
            Err(mpsc::error::TrySendError::Closed(_)) => ctx.stop(),
        }
    }

    /// Queues a server event as a text frame.
    fn send(&mut self, frame: ByteString, ctx: &mut Context<Self>) {
        self.state.metrics.frames_out.inc();
        self.push(Outgoing::Text(frame), ctx);
    }

    /// Sends `msg` as the reply to request `id`.
    fn reply(&mut self, msg: &ServerMsg, id: Option<&RequestId>, ctx: &mut Context<Self>) {
        self.send(msg.encode_reply(id), ctx);
    }

    /// Sends an `error` frame.
    fn error(
        &mut self,
        code: ErrorCode,
        message: String,
        request: Option<String>,
        id: Option<&RequestId>,
        ctx: &mut Context<Self>,
    ) {
        self.state.metrics.error_sent(code);
        let msg = ServerMsg::Error {
            code,
            message,
            request,
        };
        self.reply(&msg, id, ctx);
    }

    /// Queues a Close frame and stops; the writer sends what was queued
    /// before it, then the Close.
    fn close(&mut self, code: CloseCode, ctx: &mut Context<Self>) {
        self.push(Outgoing::Close(code.into()), ctx);
        self.closing = true;
        ctx.stop();
    }

    /// The client does not read: stop writing to it, try one last Close
    /// (1008) without waiting for it, and stop.
    fn drop_slow_client(&mut self, ctx: &mut Context<Self>) {
        log::info!("session {} dropped: it does not read its frames", self.id);
        self.state.metrics.slow_client_drops.inc();
        self.closing = true;
        self.writer.abort();
        let socket = self.socket.clone();
        let patience = self.state.config.heartbeat_timeout();
        actix_rt::spawn(async move {
            let close = socket.close(Some(CloseCode::Policy.into()));
            let _ = tokio::time::timeout(patience, close).await;
        });
        ctx.stop();
    }

    /// Sends `welcome` (and `resumed` or the resume error); returns the
    /// rooms a resumed session rejoins.
    fn welcome(&mut self, ctx: &mut Context<Self>) -> Vec<RoomSeat> {
        let Some(admission) = self.admission.take() else {
            return Vec::new();
        };
        let heartbeat = &self.state.config.heartbeat;
        let welcome = ServerMsg::Welcome {
            protocol: protocol::PROTOCOL_VERSION,
            session: self.id.clone(),
            name: self.name.clone(),
            color: self.color.clone(),
            resume: admission.resume,
            heartbeat_ms: heartbeat.interval_ms,
            timeout_ms: heartbeat.timeout_ms,
        };
        self.send(welcome.encode(), ctx);
        match admission.outcome {
            AdmitOutcome::New => {}
            AdmitOutcome::Resumed => {
                let resumed = ServerMsg::Resumed {
                    session: self.id.clone(),
                    games: self.games.keys().cloned().collect(),
                    rooms: admission
                        .rooms
                        .iter()
                        .map(|seat| seat.room.clone())
                        .collect(),
                };
                self.send(resumed.encode(), ctx);
                return admission.rooms;
            }
            AdmitOutcome::ResumeRefused => {
                let message =
                    "no session to resume with that token; this is a new session".to_string();
                self.error(
                    ErrorCode::NotFound,
                    message,
                    Some("resume".to_string()),
                    None,
                    ctx,
                );
            }
        }
        Vec::new()
    }

    /// Rejoins the rooms a resumed session was in, as `join_room` would.
    fn rejoin(&mut self, seats: Vec<RoomSeat>) {
        for RoomSeat {
            room,
            kind,
            role,
            zombies,
        } in seats
        {
            self.request_join(room, kind, role, zombies, None);
        }
    }

    /// Asks the Lobby for a room; until it answers, the room's messages
    /// wait in a `Joining` route.
    fn request_join(
        &mut self,
        room: String,
        kind: RoomKind,
        role: Role,
        zombies: u32,
        id: Option<RequestId>,
    ) {
        self.join_serial += 1;
        let serial = self.join_serial;
        // Already in: the Lobby answers this join, but the room's link came
        // with an earlier one.
        let route = self
            .rooms
            .entry(room.clone())
            .or_insert_with(|| RoomRoute::Joining {
                since: serial,
                latest: serial,
                queued: Vec::new(),
            });
        if let RoomRoute::Joining { latest, .. } = route {
            *latest = serial;
        }
        let (session, connection) = (self.id.clone(), self.connection);
        let join = JoinRoomRequest {
            session,
            room,
            kind,
            role,
            zombies,
            id,
            connection,
            serial,
        };
        match &mut self.resuming {
            Some(resuming) => resuming.joins.push(join),
            None => self.state.lobby.do_send(join),
        }
    }

    /// The resumed session's games have linked back (or had their time):
    /// its room joins go to the Lobby.
    fn resumed(&mut self) {
        if let Some(resuming) = self.resuming.take() {
            for join in resuming.joins {
                self.state.lobby.do_send(join);
            }
        }
    }

    /// Pings the client, or evicts it if it has been silent too long.
    fn heartbeat(&mut self, ctx: &mut Context<Self>) {
        if self.last_seen.elapsed() >= self.state.config.heartbeat_timeout() {
            log::info!(
                "session {} evicted: silent for {:?}",
                self.id,
                self.last_seen.elapsed()
            );
            self.state.metrics.evictions.inc();
            self.leave_reason = LeaveReason::Timeout;
            // An evicted peer is simply dropped: no Close frame.
            self.writer.abort();
            ctx.stop();
            return;
        }
        self.push(Outgoing::Ping, ctx);
    }

    /// Applies the rate limit to one text or binary frame; `true` if it may
    /// be handled.
    fn admit_frame(&mut self, ctx: &mut Context<Self>) -> bool {
        self.state.metrics.frames_in.inc();
        match self.rate.check(self.last_seen) {
            Verdict::Allow => true,
            Verdict::Drop { notify } => {
                if notify {
                    let message = format!(
                        "over {} messages a second; frames are being dropped",
                        self.state.config.limits.msgs_per_sec
                    );
                    self.error(ErrorCode::RateLimited, message, None, None, ctx);
                }
                false
            }
            Verdict::Close => {
                log::info!(
                    "session {} closed: over the message rate for too long",
                    self.id
                );
                self.close(CloseCode::Policy, ctx);
                false
            }
        }
    }

    fn on_text(&mut self, text: &str, ctx: &mut Context<Self>) {
        match protocol::parse_request(text) {
            Ok(request) => self.on_request(request, ctx),
            Err(BadRequest {
                id,
                kind,
                code,
                message,
            }) => self.error(code, message, kind, id.as_ref(), ctx),
        }
    }

    fn on_request(&mut self, request: Request, ctx: &mut Context<Self>) {
        let Request { id, kind, msg } = request;
        match msg {
            ClientMsg::SetName(SetName { name }) => self.set_name(&name, kind, id.as_ref(), ctx),
            ClientMsg::Echo(Echo { data }) => {
                self.reply(&ServerMsg::Echo { data }, id.as_ref(), ctx)
            }
            ClientMsg::FindGame(GameChoice { game }) => self.ask_lobby(LobbyAction::Find(game), id),
            ClientMsg::CancelFind(GameChoice { game }) => {
                self.ask_lobby(LobbyAction::Cancel(game), id)
            }
            ClientMsg::CreateGame(GameChoice { game }) => {
                self.ask_lobby(LobbyAction::Create(game), id)
            }
            ClientMsg::JoinGame(JoinGame { join_key }) => {
                self.ask_lobby(LobbyAction::Join(join_key), id)
            }
            ClientMsg::WatchGame(WatchGame { watch_key }) => {
                self.ask_lobby(LobbyAction::Watch(watch_key), id)
            }
            ClientMsg::Move(MoveRequest { game_id, fields }) => {
                self.ask_game(&game_id, Action::Move(fields), &kind, id, ctx)
            }
            ClientMsg::Resign(GameTarget { game_id }) => {
                self.ask_game(&game_id, Action::Resign, &kind, id, ctx)
            }
            ClientMsg::JoinRoom(join) => self.join_room(join, id, ctx),
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
            }) => self.ask_room(
                room,
                RoomAction::State {
                    data,
                    action,
                    newcomer,
                },
                id,
                ctx,
            ),
            ClientMsg::Pos(Pos { room, x, y }) => {
                self.ask_room(room, RoomAction::Pos { x, y }, id, ctx)
            }
            ClientMsg::Unknown => {
                let message = format!("unknown request type `{kind}`");
                self.error(
                    ErrorCode::UnknownType,
                    message,
                    Some(kind),
                    id.as_ref(),
                    ctx,
                );
            }
        }
    }

    /// Checks a `join_room` and hands it to the Lobby; messages for the
    /// room wait here until the Lobby links the room.
    fn join_room(&mut self, join: JoinRoom, id: Option<RequestId>, ctx: &mut Context<Self>) {
        let JoinRoom {
            room,
            kind,
            role,
            zombies,
        } = join;
        let role = role.unwrap_or(kind.default_role());
        let zombies = zombies.unwrap_or(0);
        let problem = if !protocol::valid_room_name(&room) {
            Some(format!(
                "`room` must be 1 to {} letters, digits, '-', '_' or '.'",
                protocol::ROOM_NAME_MAX_CHARS
            ))
        } else if !kind.allows(role) {
            Some(
                format!("`role` {role:?} does not exist in a {} room", kind.as_str())
                    .to_lowercase(),
            )
        } else if !(0..=i64::from(protocol::MAX_ZOMBIES)).contains(&zombies) {
            Some(format!(
                "`zombies` must be 0 to {}, not {zombies}",
                protocol::MAX_ZOMBIES
            ))
        } else {
            None
        };
        if let Some(message) = problem {
            return self.error(
                ErrorCode::BadRequest,
                message,
                Some("join_room".to_string()),
                id.as_ref(),
                ctx,
            );
        }
        let zombies = u32::try_from(zombies).unwrap_or(0);
        self.request_join(room, kind, role, zombies, id);
    }

    fn leave_room(&mut self, room: String, id: Option<RequestId>, ctx: &mut Context<Self>) {
        if self.rooms.remove(&room).is_none() {
            let message = format!("you are not in room {room}");
            return self.error(
                ErrorCode::NotInRoom,
                message,
                Some("leave_room".to_string()),
                id.as_ref(),
                ctx,
            );
        }
        let session = self.id.clone();
        self.state.lobby.do_send(LeaveRoomRequest {
            session,
            room,
            id,
            connection: self.connection,
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
        let reply = self.handle.clone();
        let request = RoomRequest {
            session: self.id.clone(),
            reply,
            action,
            id,
        };
        let burst = self.state.config.limits.burst as usize;
        match self.rooms.get_mut(&room) {
            Some(RoomRoute::Joined(link)) => link.request(request),
            // The rate limit bounds this queue too; the cap is a backstop.
            Some(RoomRoute::Joining { queued, .. }) if queued.len() < burst => {
                queued.push(request);
            }
            _ => {
                let kind = request.action.kind().to_string();
                let message = format!("you are not in room {room}");
                self.error(
                    ErrorCode::NotInRoom,
                    message,
                    Some(kind),
                    request.id.as_ref(),
                    ctx,
                );
            }
        }
    }

    fn ask_lobby(&self, action: LobbyAction, id: Option<RequestId>) {
        let session = self.id.clone();
        self.state.lobby.do_send(LobbyRequest {
            session,
            connection: self.connection,
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
                self.error(
                    ErrorCode::NotFound,
                    message,
                    Some(kind.to_string()),
                    id.as_ref(),
                    ctx,
                );
            }
        }
    }

    fn set_name(
        &mut self,
        name: &str,
        kind: String,
        id: Option<&RequestId>,
        ctx: &mut Context<Self>,
    ) {
        let Some(name) = protocol::valid_name(name) else {
            let message = format!(
                "a name is 1 to {} characters after trimming, with no control characters",
                protocol::NAME_MAX_CHARS
            );
            return self.error(ErrorCode::NameInvalid, message, Some(kind), id, ctx);
        };
        self.name = name.clone();
        self.state.lobby.do_send(Rename {
            id: self.id.clone(),
            name: name.clone(),
        });
        let profile = ServerMsg::Profile {
            session: self.id.clone(),
            name,
            color: self.color.clone(),
        };
        self.reply(&profile, id, ctx);
    }

    fn on_protocol_error(&mut self, err: ProtocolError, ctx: &mut Context<Self>) {
        match err {
            ProtocolError::Overflow => {
                log::info!(
                    "session {} closed: frame over limits.max_frame_bytes",
                    self.id
                );
                self.close(CloseCode::Size, ctx);
            }
            ProtocolError::Io(err) if err.kind() == std::io::ErrorKind::InvalidData => {
                self.close(CloseCode::Invalid, ctx);
            }
            ProtocolError::Io(err) if is_continuation_overflow(&err) => {
                log::info!(
                    "session {} closed: fragmented message over limits.max_frame_bytes",
                    self.id
                );
                self.close(CloseCode::Size, ctx);
            }
            ProtocolError::Io(_) => ctx.stop(),
            err => {
                log::debug!("session {} closed: {err}", self.id);
                self.close(CloseCode::Protocol, ctx);
            }
        }
    }
}

impl Actor for Session {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        self.state.metrics.sessions_opened.inc();
        self.state.lobby.do_send(Register {
            id: self.id.clone(),
            addr: ctx.address(),
            connection: self.connection,
        });
        let rooms = self.welcome(ctx);
        let games: HashSet<String> = self
            .games
            .iter()
            .filter(|(_, link)| link.alive())
            .map(|(id, _)| id.clone())
            .collect();
        if !games.is_empty() && !rooms.is_empty() {
            self.resuming = Some(Resuming {
                games,
                joins: Vec::new(),
            });
            // A game that stops before it answers holds the rooms back no
            // longer than one heartbeat.
            ctx.run_later(self.state.config.heartbeat_interval(), |session, _| {
                session.resumed()
            });
        }
        for link in self.games.values() {
            link.presence(Presence {
                session: self.id.clone(),
                connection: self.connection,
                addr: Some(self.handle.clone()),
            });
        }
        self.rejoin(rooms);
        ctx.run_interval(self.state.config.heartbeat_interval(), |session, ctx| {
            session.heartbeat(ctx)
        });
    }

    fn stopped(&mut self, ctx: &mut Context<Self>) {
        for link in self.games.values() {
            link.presence(Presence {
                session: self.id.clone(),
                connection: self.connection,
                addr: None,
            });
        }
        self.state.lobby.do_send(Unregister {
            id: self.id.clone(),
            addr: ctx.address(),
            reason: self.leave_reason,
        });
        if self.closing {
            // Give the writer time to flush the Close frame, no more.
            let writer = self.writer.abort_handle();
            let patience: Duration = self.state.config.heartbeat_timeout();
            actix_rt::spawn(async move {
                tokio::time::sleep(patience).await;
                writer.abort();
            });
        } else {
            self.writer.abort();
        }
    }
}

impl StreamHandler<Result<AggregatedMessage, ProtocolError>> for Session {
    fn handle(&mut self, item: Result<AggregatedMessage, ProtocolError>, ctx: &mut Context<Self>) {
        if self.closing {
            return;
        }
        self.last_seen = Instant::now();
        match item {
            Ok(AggregatedMessage::Text(text)) => {
                if self.admit_frame(ctx) {
                    self.on_text(&text, ctx);
                }
            }
            Ok(AggregatedMessage::Binary(_)) => {
                if self.admit_frame(ctx) {
                    let message = "binary frames are not supported; send JSON text".to_string();
                    self.error(ErrorCode::Unsupported, message, None, None, ctx);
                }
            }
            Ok(AggregatedMessage::Ping(payload)) => self.push(Outgoing::Pong(payload), ctx),
            Ok(AggregatedMessage::Pong(_)) => {}
            Ok(AggregatedMessage::Close(_)) => self.close(CloseCode::Normal, ctx),
            Err(err) => self.on_protocol_error(err, ctx),
        }
    }

    fn finished(&mut self, ctx: &mut Context<Self>) {
        ctx.stop();
    }
}

impl Handler<Outbound> for Session {
    type Result = ();

    fn handle(&mut self, msg: Outbound, ctx: &mut Context<Self>) {
        self.send(msg.0, ctx);
    }
}

impl Handler<Linked> for Session {
    type Result = ();

    fn handle(&mut self, msg: Linked, _: &mut Context<Self>) {
        // Games stop after lingering; forget them as new ones come.
        self.games.retain(|_, link| link.alive());
        if let Some(resuming) = &mut self.resuming {
            resuming.games.remove(&msg.0.id);
            if resuming.games.is_empty() {
                // The game queued its `game_state` before its link.
                self.resumed();
            }
        }
        self.games.insert(msg.0.id.clone(), msg.0);
    }
}

impl Handler<RoomLinked> for Session {
    type Result = ();

    fn handle(&mut self, msg: RoomLinked, _: &mut Context<Self>) {
        let RoomLinked { link, serial } = msg;
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
            let message = format!("you are not in room {}", msg.room);
            let kind = request.action.kind().to_string();
            self.error(
                ErrorCode::NotInRoom,
                message,
                Some(kind),
                request.id.as_ref(),
                ctx,
            );
        }
    }
}

impl Handler<CloseSession> for Session {
    type Result = ();

    fn handle(&mut self, msg: CloseSession, ctx: &mut Context<Self>) {
        self.close(msg.0, ctx);
    }
}

/// actix-ws reports a reassembled message over `max_continuation_size` as a
/// plain `io::Error` of kind `Other`; every other `Other` error it yields
/// wraps the connection's `PayloadError`.
fn is_continuation_overflow(err: &std::io::Error) -> bool {
    let payload_error = err.get_ref().is_some_and(|inner| {
        inner
            .downcast_ref::<actix_web::error::PayloadError>()
            .is_some()
    });
    err.kind() == std::io::ErrorKind::Other && !payload_error
}

/// Drains the outbox into the socket until a Close is sent, the socket
/// fails, or the session drops its end of the outbox. Holds the session's
/// place (`slot`) until then, so a session counts until its last frame is
/// handed to the connection.
async fn write_frames(
    mut queue: mpsc::Receiver<Outgoing>,
    mut socket: actix_ws::Session,
    slot: SessionSlot,
) {
    let _slot = slot;
    while let Some(frame) = queue.recv().await {
        let sent = match frame {
            Outgoing::Text(text) => socket.text(text).await,
            Outgoing::Ping => socket.ping(b"").await,
            Outgoing::Pong(payload) => socket.pong(&payload).await,
            Outgoing::Close(reason) => {
                let _ = socket.close(Some(reason)).await;
                return;
            }
        };
        if sent.is_err() {
            return;
        }
    }
}
