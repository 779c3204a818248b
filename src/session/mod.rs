//! The Session actor: one per WebSocket connection.
//!
//! It owns the connection's identity (id, name, color), its rate limiter
//! and its outbox (`outbox`), and enrols in its thread's heartbeat sweep
//! (`heartbeat`), which Pings it and tells it when it has gone silent
//! (`Silent`). Incoming frames arrive as a
//! stream (`ctx.add_stream`); each text frame is parsed into a request and
//! answered or routed (`routes`): lobby requests to the Lobby, moves
//! straight to their Game, room messages straight to their Room.
//!
//! Takes [`Overflowed`] (its outbox is full), [`Linked`] (a game to route
//! moves to), [`RoomLinked`] and [`RoomRefused`] (the answer to a room
//! join) and [`CloseSession`]. Sends [`Register`], [`Unregister`],
//! [`Rename`], `LobbyRequest`, `JoinRoomRequest` and `LeaveRoomRequest` to
//! the Lobby through its [`LobbyLink`], `PlayerRequest` and [`Presence`]
//! to its games, and `RoomRequest` to its rooms. Others write frames
//! straight into its outbox through its [`SessionHandle`].
//!
//! [`Linked`]: crate::links::Linked
//! [`RoomLinked`]: crate::links::RoomLinked
//! [`RoomRefused`]: crate::links::RoomRefused

mod heartbeat;
mod outbox;
mod routes;

use std::{
    cell::Cell,
    collections::{HashMap, HashSet},
    rc::Rc,
    sync::{
        atomic::{AtomicU64, Ordering},
        Arc,
    },
    time::{Duration, Instant},
};

use actix::prelude::*;
use actix_ws::{AggregatedMessage, CloseCode, ProtocolError};
use bytestring::ByteString;

use self::{
    heartbeat::{Enrolment, Silent},
    outbox::{Outbox, Refused},
    routes::{Resuming, RoomRoute},
};
use crate::{
    config::Config,
    links::{
        Admission, AdmitOutcome, CloseSession, GameLink, LobbyLink, Outgoing, Overflowed, Presence,
        Register, Rename, RoomSeat, SessionHandle, Unregister,
    },
    metrics::Metrics,
    protocol::{
        self, ClientMsg, Echo, ErrorCode, LeaveReason, Refusal, Request, RequestId, ServerMsg,
        SetName,
    },
    rate_limit::{RateLimiter, Verdict},
};

/// Numbers connections, so that a game or the Lobby can tell a session's
/// old connection from the one that took it over.
static NEXT_CONNECTION: AtomicU64 = AtomicU64::new(1);

/// What every session shares: made once at start.
pub struct SessionShared {
    /// The configuration.
    pub config: Arc<Config>,
    /// Prometheus metrics.
    pub metrics: Arc<Metrics>,
    /// The Lobby.
    pub lobby: LobbyLink,
}

/// One WebSocket connection.
pub struct Session {
    /// The session id, stable across reconnections.
    id: String,
    /// This connection's number (see [`SessionHandle::connection`]).
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
    /// Config, Lobby and metrics shared by every session.
    shared: Arc<SessionShared>,
    /// Frames for the client and the task that writes them.
    outbox: Outbox,
    /// When the client last sent anything, Pongs included; the heartbeat's
    /// sweep reads it.
    last_seen: Rc<Cell<Instant>>,
    /// The session's place in its thread's heartbeat, from `started` on.
    heartbeat: Option<Enrolment>,
    /// The message rate limit.
    rate: RateLimiter,
    /// The welcome (and anything before `started`) still to send.
    admission: Option<Admission>,
    /// Set once a Close frame is queued, so nothing is queued after it.
    closing: bool,
    /// Set while a resumed session's room joins wait for its games.
    resuming: Option<Resuming>,
    /// How the Lobby, rooms and games reach this connection (made once, shared).
    handle: SessionHandle,
}

impl Session {
    /// Starts the actor for an accepted handshake. `slot`, the session's
    /// place among the open sessions, is given back when its writer ends.
    pub fn start(
        shared: Arc<SessionShared>,
        admission: Admission,
        socket: actix_ws::Session,
        stream: actix_ws::AggregatedMessageStream,
        slot: impl Send + 'static,
    ) -> Addr<Session> {
        let limits = &shared.config.limits;
        let write_delay = Duration::from_millis(shared.config.server.write_delay_ms);
        let outbox = Outbox::open(limits.max_outbox.get(), write_delay, socket, slot);
        let now = Instant::now();
        let rate = RateLimiter::new(limits.msgs_per_sec.get(), limits.burst.get(), now);
        let games = admission
            .games
            .iter()
            .map(|link| (link.id.clone(), link.clone()))
            .collect();
        let connection = NEXT_CONNECTION.fetch_add(1, Ordering::Relaxed);
        Session::create(move |ctx| {
            ctx.add_stream(stream);
            let handle = SessionHandle::new(
                &ctx.address(),
                connection,
                outbox.sender(),
                shared.metrics.clone(),
            );
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
                shared,
                outbox,
                last_seen: Rc::new(Cell::new(now)),
                heartbeat: None,
                admission: Some(admission),
                closing: false,
                resuming: None,
                handle,
            }
        })
    }

    /// Queues a frame; drops the client if its outbox is full. Says
    /// whether the frame was queued.
    fn push(&mut self, frame: Outgoing, ctx: &mut Context<Self>) -> bool {
        if self.closing {
            return false;
        }
        match self.outbox.push(frame) {
            Ok(()) => return true,
            Err(Refused::Full) => self.drop_slow_client(ctx),
            Err(Refused::Closed) => ctx.stop(),
        }
        false
    }

    /// Queues a frame the session itself sends: an answer to its client's
    /// request (or the welcome), which goes out at once.
    fn send(&mut self, frame: ByteString, ctx: &mut Context<Self>) {
        if self.push(Outgoing::Answer(frame), ctx) {
            self.shared.metrics.frames_out.inc();
        }
    }

    /// Sends `msg` as the reply to request `id`.
    fn reply(&mut self, msg: &ServerMsg, id: Option<&RequestId>, ctx: &mut Context<Self>) {
        self.send(msg.encode_reply(id), ctx);
    }

    /// Sends the `error` frame of a refused request.
    fn refuse(&mut self, refusal: &Refusal, ctx: &mut Context<Self>) {
        self.shared.metrics.error_sent(refusal.code);
        self.send(refusal.encode(), ctx);
    }

    /// Queues a Close frame and stops; the writer sends what was queued
    /// before it, then the Close.
    fn close(&mut self, code: CloseCode, ctx: &mut Context<Self>) {
        self.push(Outgoing::Close(code), ctx);
        self.closing = true;
        ctx.stop();
    }

    /// The client does not read: stop writing to it, try one last Close
    /// (1008) without waiting for it, and stop.
    fn drop_slow_client(&mut self, ctx: &mut Context<Self>) {
        log::info!("session {} dropped: it does not read its frames", self.id);
        self.shared.metrics.slow_client_drops.inc();
        self.closing = true;
        let patience = self.shared.config.heartbeat_timeout();
        self.outbox.close_now(CloseCode::Policy, patience);
        ctx.stop();
    }

    /// Sends `welcome` (and `resumed` or the resume error); returns the
    /// rooms a resumed session rejoins.
    fn welcome(&mut self, ctx: &mut Context<Self>) -> Vec<RoomSeat> {
        let Some(admission) = self.admission.take() else {
            return Vec::new();
        };
        let heartbeat = &self.shared.config.heartbeat;
        let welcome = ServerMsg::Welcome {
            protocol: protocol::PROTOCOL_VERSION,
            session: self.id.clone(),
            name: self.name.clone(),
            color: self.color.clone(),
            resume: admission.resume,
            heartbeat_ms: heartbeat.interval_ms.get(),
            timeout_ms: heartbeat.timeout_ms.get(),
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
                let message = "no session to resume with that token; this is a new session";
                self.refuse(&Refusal::new(ErrorCode::NotFound, "resume", message), ctx);
            }
        }
        Vec::new()
    }

    /// The client has been silent for `heartbeat.timeout_ms`: evict it.
    fn evict(&mut self, ctx: &mut Context<Self>) {
        let silent = self.last_seen.get().elapsed();
        log::info!("session {} evicted: silent for {silent:?}", self.id);
        self.shared.metrics.evictions.inc();
        self.leave_reason = LeaveReason::Timeout;
        // An evicted peer is simply dropped: no Close frame.
        self.outbox.abort();
        ctx.stop();
    }

    /// Applies the rate limit to one text or binary frame; `true` if it may
    /// be handled.
    fn admit_frame(&mut self, ctx: &mut Context<Self>) -> bool {
        self.shared.metrics.frames_in.inc();
        match self.rate.check(self.last_seen.get()) {
            Verdict::Allow => true,
            Verdict::Drop { notify } => {
                if notify {
                    let message = format!(
                        "over {} messages a second; frames are being dropped",
                        self.shared.config.limits.msgs_per_sec
                    );
                    let refusal = Refusal::unreferenced(ErrorCode::RateLimited, message);
                    self.refuse(&refusal, ctx);
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
            Err(refusal) => self.refuse(&refusal, ctx),
        }
    }

    fn on_request(&mut self, request: Request, ctx: &mut Context<Self>) {
        let Request { id, kind, msg } = request;
        match msg {
            ClientMsg::SetName(SetName { name }) => self.set_name(&name, &kind, id.as_ref(), ctx),
            ClientMsg::Echo(Echo { data }) => {
                self.reply(&ServerMsg::Echo { data }, id.as_ref(), ctx)
            }
            ClientMsg::Unknown => {
                let message = format!("unknown request type `{kind}`");
                let refusal = Refusal::new(ErrorCode::UnknownType, &kind, message);
                self.refuse(&refusal.with_id(id.as_ref()), ctx);
            }
            msg => self.route(msg, &kind, id, ctx),
        }
    }

    fn set_name(
        &mut self,
        name: &str,
        kind: &str,
        id: Option<&RequestId>,
        ctx: &mut Context<Self>,
    ) {
        let Some(name) = protocol::valid_name(name) else {
            let message = format!(
                "a name is 1 to {} characters after trimming, with no control or \
                 text-direction characters",
                protocol::NAME_MAX_CHARS
            );
            let refusal = Refusal::new(ErrorCode::NameInvalid, kind, message).with_id(id);
            return self.refuse(&refusal, ctx);
        };
        self.name = name.clone();
        self.shared.lobby.rename(Rename {
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

    /// Tells every game this session sits in or watches that this
    /// connection came (`here`) or went.
    fn announce_presence(&self, here: bool) {
        for link in self.games.values() {
            link.presence(Presence {
                session: self.id.clone(),
                connection: self.connection,
                handle: here.then(|| self.handle.clone()),
            });
        }
    }
}

impl Actor for Session {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        self.shared.metrics.sessions_opened.inc();
        // `welcome` first: once registered, the Lobby may write to the
        // outbox itself.
        let rooms = self.welcome(ctx);
        self.shared.lobby.register(Register {
            id: self.id.clone(),
            handle: self.handle.clone(),
        });
        let games: HashSet<String> = self
            .games
            .iter()
            .filter(|(_, link)| link.alive())
            .map(|(id, _)| id.clone())
            .collect();
        if !games.is_empty() && !rooms.is_empty() {
            self.resuming = Some(Resuming::new(games));
            // A game that stops before it answers holds the rooms back no
            // longer than one heartbeat.
            ctx.run_later(self.shared.config.heartbeat_interval(), |session, _| {
                session.resumed()
            });
        }
        self.announce_presence(true);
        self.rejoin(rooms);
        let config = &self.shared.config;
        self.heartbeat = Some(heartbeat::enrol(
            (config.heartbeat_interval(), config.heartbeat_timeout()),
            self.connection,
            Rc::clone(&self.last_seen),
            self.outbox.sender(),
            ctx.address(),
        ));
    }

    fn stopped(&mut self, _: &mut Context<Self>) {
        self.heartbeat = None;
        self.announce_presence(false);
        self.shared.lobby.unregister(Unregister {
            id: self.id.clone(),
            connection: self.connection,
            reason: self.leave_reason,
        });
        if self.closing {
            // Give the writer time to flush the Close frame, no more.
            self.outbox.finish(self.shared.config.heartbeat_timeout());
        } else {
            self.outbox.abort();
        }
    }
}

impl StreamHandler<Result<AggregatedMessage, ProtocolError>> for Session {
    fn handle(&mut self, item: Result<AggregatedMessage, ProtocolError>, ctx: &mut Context<Self>) {
        if self.closing {
            return;
        }
        self.last_seen.set(Instant::now());
        match item {
            Ok(AggregatedMessage::Text(text)) => {
                if self.admit_frame(ctx) {
                    self.on_text(&text, ctx);
                }
            }
            Ok(AggregatedMessage::Binary(_)) => {
                if self.admit_frame(ctx) {
                    let message = "binary frames are not supported; send JSON text";
                    let refusal = Refusal::unreferenced(ErrorCode::Unsupported, message);
                    self.refuse(&refusal, ctx);
                }
            }
            Ok(AggregatedMessage::Ping(payload)) => {
                self.push(Outgoing::Pong(payload), ctx);
            }
            Ok(AggregatedMessage::Pong(_)) => {}
            Ok(AggregatedMessage::Close(_)) => self.close(CloseCode::Normal, ctx),
            Err(err) => self.on_protocol_error(err, ctx),
        }
    }

    fn finished(&mut self, ctx: &mut Context<Self>) {
        ctx.stop();
    }
}

impl Handler<Overflowed> for Session {
    type Result = ();

    fn handle(&mut self, _: Overflowed, ctx: &mut Context<Self>) {
        if !self.closing {
            self.drop_slow_client(ctx);
        }
    }
}

impl Handler<Silent> for Session {
    type Result = ();

    fn handle(&mut self, _: Silent, ctx: &mut Context<Self>) {
        // The client may have spoken since the sweep looked.
        let silent = self.last_seen.get().elapsed() >= self.shared.config.heartbeat_timeout();
        if silent && !self.closing {
            self.evict(ctx);
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
