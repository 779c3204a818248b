//! The Session actor: one per WebSocket connection.
//!
//! It owns the connection's socket (`socket`: the WebSocket frames read
//! and written on actix-http's codec), its identity (id, name, color), its
//! rate limiter and its outbox (`outbox`: when queued frames are written),
//! and enrols in its thread's heartbeat sweep (`heartbeat`), which tells it
//! to Ping its client or evict it. Incoming messages arrive as a stream
//! (`ctx.add_stream`); each text message is parsed into a request and
//! answered or routed (`routes`): lobby requests to the Lobby, moves
//! straight to their Game, room messages straight to their Room.
//!
//! Takes [`Deliver`] (a frame for its client), [`Overflowed`] (its outbox
//! is full), [`Linked`] (a game to route moves to), [`RoomLinked`] and
//! [`RoomRefused`] (the answer to a room join) and [`CloseSession`]; from
//! its thread's sweeps, `Beat` (Ping or evict) and `Gathered` (write what
//! `server.write_delay_ms` held back). Sends
//! [`Register`], [`Unregister`], [`Rename`], `LobbyRequest`,
//! `JoinRoomRequest` and `LeaveRoomRequest` to the Lobby through its
//! [`LobbyLink`], `PlayerRequest` and [`Presence`] to its games, and
//! `RoomRequest` to its rooms. Others queue frames for its client through
//! its [`SessionHandle`].
//!
//! [`Linked`]: crate::links::Linked
//! [`RoomLinked`]: crate::links::RoomLinked
//! [`RoomRefused`]: crate::links::RoomRefused

mod gather;
mod heartbeat;
mod outbox;
mod routes;
mod socket;

use std::{
    collections::{HashMap, HashSet},
    sync::{
        atomic::{AtomicU64, Ordering},
        Arc,
    },
    time::{Duration, Instant},
};

use actix::prelude::*;
use actix_http::ws::CloseCode;
use bytestring::ByteString;

pub use self::socket::Upgraded;
use self::{
    heartbeat::{Beat, Enrolment},
    outbox::{Flusher, Outbox},
    routes::{Resuming, RoomRoute},
    socket::Incoming,
};
use crate::{
    config::Config,
    links::{
        Admission, AdmitOutcome, CloseSession, Deliver, GameLink, LobbyLink, Outgoing, Overflowed,
        Presence, Register, Rename, RoomSeat, SessionHandle, Unregister,
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
    /// Frames for the client, and when they are written.
    outbox: Outbox,
    /// When the client last sent anything, Pongs included.
    last_seen: Instant,
    /// The session's place in its thread's heartbeat, from `started` on.
    heartbeat: Option<Enrolment>,
    /// The message rate limit.
    rate: RateLimiter,
    /// The welcome (and anything before `started`) still to send; boxed,
    /// as it is used once and the actor's size is every session's cost.
    admission: Option<Box<Admission>>,
    /// Set once a Close frame is queued, so nothing is queued after it.
    closing: bool,
    /// Set while a resumed session's room joins wait for its games (boxed:
    /// seldom set).
    resuming: Option<Box<Resuming>>,
    /// How the Lobby, rooms and games reach this connection (made once, shared).
    handle: SessionHandle,
}

impl Session {
    /// Starts the actor for an accepted handshake, on the calling thread.
    /// The connection's place among the open sessions (`upgraded.slot`) is
    /// given back once its socket is closed.
    pub fn start(
        shared: Arc<SessionShared>,
        admission: Admission,
        upgraded: Upgraded,
    ) -> Addr<Session> {
        let limits = &shared.config.limits;
        let write_delay = Duration::from_millis(shared.config.server.write_delay_ms);
        let max_outbox = limits.max_outbox.get();
        let (reader, writer) = socket::open(upgraded, limits.max_frame_bytes.get());
        let outbox = Outbox::new(writer, write_delay, max_outbox);
        let now = Instant::now();
        let rate = RateLimiter::new(limits.msgs_per_sec.get(), limits.burst.get(), now);
        let games = admission
            .games
            .iter()
            .map(|link| (link.id.clone(), link.clone()))
            .collect();
        let connection = NEXT_CONNECTION.fetch_add(1, Ordering::Relaxed);
        Session::create(move |ctx| {
            ctx.add_stream(reader);
            // After the reader, so that it writes what the reader queued.
            ctx.spawn(Flusher);
            let handle = SessionHandle::new(
                &ctx.address(),
                connection,
                max_outbox,
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
                last_seen: now,
                heartbeat: None,
                admission: Some(Box::new(admission)),
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
        if !self.handle.reserve() {
            self.drop_slow_client(ctx);
            return false;
        }
        self.outbox.push(frame);
        true
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

    /// Queues a Close frame and stops; what was queued before it goes out
    /// first (see `stopped`).
    fn close(&mut self, code: CloseCode, ctx: &mut Context<Self>) {
        if self.closing {
            return;
        }
        // A Close goes out even when the outbox is full.
        self.outbox.push(Outgoing::Close(code));
        self.closing = true;
        ctx.stop();
    }

    /// The client does not read: drop what is queued for it, try one last
    /// Close (1008) for no longer than the heartbeat's timeout, and stop.
    fn drop_slow_client(&mut self, ctx: &mut Context<Self>) {
        if self.closing {
            return;
        }
        log::info!("session {} dropped: it does not read its frames", self.id);
        self.shared.metrics.slow_client_drops.inc();
        let dropped = self.outbox.discard();
        self.handle.written(dropped);
        self.close(CloseCode::Policy, ctx);
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
        let silent = self.last_seen.elapsed();
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
        match self.rate.check(self.last_seen) {
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
        // `welcome` first: once registered, the Lobby may send frames
        // (they queue behind it).
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
            self.resuming = Some(Box::new(Resuming::new(games)));
            // A game that stops before it answers holds the rooms back no
            // longer than one heartbeat.
            ctx.run_later(self.shared.config.heartbeat_interval(), |session, _| {
                session.resumed()
            });
        }
        self.announce_presence(true);
        self.rejoin(rooms);
        self.outbox.gather(ctx.address());
        self.heartbeat = Some(heartbeat::enrol(
            self.shared.config.heartbeat_interval(),
            self.connection,
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
            // What is queued, the Close last, gets the heartbeat's timeout.
            self.outbox.finish(self.shared.config.heartbeat_timeout());
        } else {
            self.outbox.abort();
        }
    }
}

impl StreamHandler<Incoming> for Session {
    fn handle(&mut self, item: Incoming, ctx: &mut Context<Self>) {
        if self.closing {
            return;
        }
        self.last_seen = Instant::now();
        match item {
            Incoming::Text(text) => {
                if self.admit_frame(ctx) {
                    self.on_text(&text, ctx);
                }
            }
            Incoming::Binary => {
                if self.admit_frame(ctx) {
                    let message = "binary frames are not supported; send JSON text";
                    let refusal = Refusal::unreferenced(ErrorCode::Unsupported, message);
                    self.refuse(&refusal, ctx);
                }
            }
            Incoming::Ping(payload) => {
                self.push(Outgoing::Pong(payload), ctx);
            }
            Incoming::Pong => {}
            Incoming::Close => self.close(CloseCode::Normal, ctx),
            Incoming::Broken(code, why) => {
                log::info!("session {} closed ({}): {why}", self.id, u16::from(code));
                self.close(code, ctx);
            }
        }
    }

    fn finished(&mut self, ctx: &mut Context<Self>) {
        ctx.stop();
    }
}

impl Handler<Deliver> for Session {
    type Result = ();

    fn handle(&mut self, Deliver(frame): Deliver, _: &mut Context<Self>) {
        if self.closing {
            self.handle.written(1);
            return;
        }
        self.outbox.push(frame);
    }
}

impl Handler<Overflowed> for Session {
    type Result = ();

    fn handle(&mut self, _: Overflowed, ctx: &mut Context<Self>) {
        self.drop_slow_client(ctx);
    }
}

impl Handler<Beat> for Session {
    type Result = ();

    fn handle(&mut self, _: Beat, ctx: &mut Context<Self>) {
        if self.closing {
            return;
        }
        if self.last_seen.elapsed() >= self.shared.config.heartbeat_timeout() {
            self.evict(ctx);
        } else {
            // Once a beat, the frame queue gives its room back.
            self.outbox.shrink();
            self.push(Outgoing::Ping, ctx);
        }
    }
}

impl Handler<CloseSession> for Session {
    type Result = ();

    fn handle(&mut self, msg: CloseSession, ctx: &mut Context<Self>) {
        self.close(msg.0, ctx);
    }
}
